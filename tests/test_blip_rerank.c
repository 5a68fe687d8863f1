/* BLIP's ITC-then-ITM re-ranking on the tiny model of tests/golden/blip.h5:
 * the ITM logits of pairs against PyTorch's (the positives of the golden
 * ITM batch), then vlp_blip_rerank both ways and with both scores against
 * the same logits computed pair by pair here: the top-k set is ITC's, each
 * score is what it should be, the order is the score's, and crafted
 * similarities ranked against ITM's order come back in ITM's order. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "golden_blip.h"
#include "models/blip_rerank.h"
#include "testutil.h"
#include "train/weights.h"

enum { MAXB = 8, MAXT = 16 };

typedef struct golden {
    vlp_blip m;
    int B, T;
    float images[1 << 14];
    int text[MAXB * MAXT], lengths[MAXB];
    float itm_logits[3 * MAXB * 2];
} golden;

static void golden_open(golden *g) {
    const char *path = VLP_SOURCE_DIR "/tests/golden/blip.h5";
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", path);
    g->B = (int)attr_number(f, "batch");
    golden_blip(f, path, &g->m, 3);
    g->T = g->m.cfg.context_length;
    ck_assert(g->B <= MAXB && g->T <= MAXT);
    read_array(f, "inputs/images", H5T_NATIVE_FLOAT, g->images, 1 << 14);
    read_array(f, "inputs/text", H5T_NATIVE_INT, g->text, MAXB * MAXT);
    read_array(f, "inputs/lengths", H5T_NATIVE_INT, g->lengths, MAXB);
    read_array(f, "outputs/itm_logits", H5T_NATIVE_FLOAT, g->itm_logits, 3 * MAXB * 2);
    H5Fclose(f);
}

START_TEST(test_rerank) {
    static golden g;
    golden_open(&g);
    vlp_blip *m = &g.m;
    int B = g.B, T = g.T, S = m->cfg.image_size;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tape_no_grad_begin(&t);
    vlp_tensor *images = vlp_tape_wrap(&t, g.images, 4, (int[]){B, 3, S, S});
    vlp_tensor *embeds = vlp_blip_encode_image(m, &t, images);
    vlp_tensor *img = vlp_blip_image_features(m, &t, embeds);
    vlp_tensor *txt = vlp_blip_text_features(m, &t, g.text, g.lengths, B);
    vlp_tensor *sims = vlp_op_matmul(&t, img, txt, false, true); /* (B images, B texts) */
    /* The positives' ITM logits against PyTorch's. */
    vlp_tensor *pos = vlp_blip_itm_logits(m, &t, embeds, g.text, g.lengths);
    expect_match("ITM logits of the positive pairs", pos->data, g.itm_logits, 2L * B, 1e-5);
    /* Every pair's match logit and probability, one pass of B * B pairs. */
    int Ti = embeds->shape[1], Cv = embeds->shape[2];
    vlp_tensor *pair_img = vlp_tape_tensor(&t, 3, (int[]){B * B, Ti, Cv});
    static int pair_ids[MAXB * MAXB * MAXT], pair_len[MAXB * MAXB];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            int p = i * B + j; /* image i, text j */
            memcpy(pair_img->data + (size_t)p * Ti * Cv, embeds->data + (size_t)i * Ti * Cv,
                   (size_t)Ti * Cv * sizeof(float));
            memcpy(pair_ids + p * T, g.text + j * T, (size_t)T * sizeof(int));
            pair_len[p] = g.lengths[j];
        }
    vlp_tensor *all = vlp_blip_itm_logits(m, &t, pair_img, pair_ids, pair_len);
    float yes[MAXB * MAXB], prob[MAXB * MAXB];
    for (int p = 0; p < B * B; p++) {
        yes[p] = all->data[2 * p + 1];
        prob[p] = 1.0f / (1.0f + expf(all->data[2 * p] - all->data[2 * p + 1]));
    }
    vlp_tape_no_grad_end(&t);

    for (int dir = 0; dir < 2; dir++) {
        bool image_queries = dir == 0;
        for (int kind = 0; kind < 2; kind++) {
            int k = B - 1, top[MAXB * MAXB];
            float score[MAXB * MAXB], mp[MAXB * MAXB];
            int rc = vlp_blip_rerank(m, sims->data, B, B, embeds->data, g.text, g.lengths,
                                     image_queries, k, 2, kind, top, score, mp);
            ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
            for (int q = 0; q < B; q++) {
                /* ITC's top k: every candidate but the least similar. */
                int worst = 0;
                for (int c = 1; c < B; c++) {
                    float vc = image_queries ? sims->data[q * B + c] : sims->data[c * B + q];
                    float vw = image_queries ? sims->data[q * B + worst] : sims->data[worst * B + q];
                    worst = vc < vw ? c : worst;
                }
                for (int r = 0; r < k; r++) {
                    int c = top[q * k + r];
                    ck_assert_msg(c != worst, "query %d kept candidate %d, ITC's last", q, c);
                    for (int s = 0; s < r; s++) ck_assert_int_ne(top[q * k + s], c);
                    int p = image_queries ? q * B + c : c * B + q;
                    float itc = image_queries ? sims->data[q * B + c] : sims->data[c * B + q];
                    float want = kind == VLP_BLIP_RERANK_ITM_PROB ? prob[p] : itc + yes[p];
                    ck_assert_float_eq_tol(score[q * k + r], want, 1e-5);
                    ck_assert_float_eq_tol(mp[q * k + r], prob[p], 1e-5);
                    if (r > 0) ck_assert_float_le(score[q * k + r], score[q * k + r - 1]);
                }
            }
        }
    }

    /* Crafted similarities that rank every text against ITM's order for
     * each image: re-ranking by ITM's probability must turn it around. */
    float crafted[MAXB * MAXB];
    for (int p = 0; p < B * B; p++) crafted[p] = -prob[p];
    int top[MAXB * MAXB], changed = 0;
    float score[MAXB * MAXB];
    ck_assert_int_eq(vlp_blip_rerank(m, crafted, B, B, embeds->data, g.text, g.lengths, true, B, 3,
                                     VLP_BLIP_RERANK_ITM_PROB, top, score, NULL),
                     VLP_OK);
    for (int q = 0; q < B; q++) {
        printf("image %d: texts by ITM", q);
        for (int r = 0; r < B; r++) {
            printf(" %d (%.3f)", top[q * B + r], score[q * B + r]);
            if (r > 0) ck_assert_float_le(prob[q * B + top[q * B + r]], prob[q * B + top[q * B + r - 1]]);
        }
        printf("\n");
        int itc_first = 0; /* ITC's best: ITM's worst */
        for (int c = 1; c < B; c++) itc_first = crafted[q * B + c] > crafted[q * B + itc_first] ? c : itc_first;
        changed += top[q * B] != itc_first;
    }
    ck_assert_int_eq(changed, B);
    int bad[4];
    ck_assert_int_eq(vlp_blip_rerank(m, crafted, B, B, embeds->data, g.text, g.lengths, true, B + 1,
                                     1, VLP_BLIP_RERANK_ITM_PROB, bad, score, NULL),
                     VLP_EINVAL);
    vlp_tape_free(&t);
    vlp_blip_free(m);
}
END_TEST

VLP_SUITE(blip_rerank_suite, "blip_rerank", test_rerank)

VLP_TEST_MAIN(blip_rerank_suite)
