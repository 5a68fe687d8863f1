/* BLIP decoding: the cached decoder against the whole-sequence decoder
 * (vlp_bert_forward), greedy and beam search against the PyTorch reference
 * (scripts/blip_decode_ref.py: the same weights must give the same ids, and
 * the same scores to 1e-5), and nucleus sampling by its distribution: the
 * kept set on crafted logits, the draws of many rows against the nucleus's
 * probabilities, and top_p -> 0 giving greedy. The golden file defaults to
 * the committed tests/golden/blip_decode.h5; VLP_BLIP_DECODE_GOLDEN points
 * at a fresh one. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "golden_blip.h"
#include "models/blip_decode.h"
#include "testutil.h"
#include "train/weights.h"

typedef struct golden {
    vlp_blip m;
    int B, end_token, n_prompt;
    int prompt[16];
    float images[1 << 14];
} golden;

static hid_t golden_open(golden *g) {
    char path[4096];
    const char *env = getenv("VLP_BLIP_DECODE_GOLDEN");
    snprintf(path, sizeof path, "%s", env ? env : VLP_SOURCE_DIR "/tests/golden/blip_decode.h5");
    printf("golden %s\n", path);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s (run scripts/blip_decode_ref.py golden)", path);
    g->B = (int)attr_number(f, "batch");
    g->end_token = (int)attr_number(f, "end_token_id");
    golden_blip(f, path, &g->m, 7);
    long n = read_array(f, "inputs/images", H5T_NATIVE_FLOAT, g->images, 1 << 14);
    ck_assert_int_eq(n, (long)g->B * 3 * g->m.cfg.image_size * g->m.cfg.image_size);
    g->n_prompt = (int)read_array(f, "inputs/prompt", H5T_NATIVE_INT, g->prompt, 16);
    return f;
}

/* The golden images' tokens, on t (no gradient). */
static vlp_tensor *image_tokens(golden *g, vlp_tape *t) {
    int S = g->m.cfg.image_size;
    vlp_tape_no_grad_begin(t);
    vlp_tensor *images = vlp_tape_wrap(t, g->images, 4, (int[]){g->B, 3, S, S});
    vlp_tensor *x = vlp_blip_encode_image(&g->m, t, images);
    vlp_tape_no_grad_end(t);
    return x;
}

static double case_attr(hid_t f, const char *group, const char *name) {
    double v = 0;
    hid_t a = H5Aopen_by_name(f, group, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "golden %s has no %s", group, name);
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

/* ---- the cached decoder ------------------------------------------------------------ */

/* Steps of the decoder, with a beam-style reorder half way, against the
 * decoder run on each row's whole sequence: logits at every position. */
START_TEST(test_cached_step) {
    static golden g;
    hid_t f = golden_open(&g);
    vlp_blip *m = &g.m;
    int B = g.B, R = 2, N = B * R, T = m->cfg.context_length, V = m->cfg.vocab_size;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *img = image_tokens(&g, &t);
    vlp_blip_decoder *d;
    ck_assert_int_eq(vlp_blip_decoder_init(&d, m, img, R, T), VLP_OK);
    ck_assert_int_eq(vlp_blip_decoder_rows(d), N);
    /* Row sequences: [DEC] then random tokens; after position `swap` row r
     * continues the sequence of perm[r], the other row of its image. */
    static int seq[64 * 16], feed[64], perm[64];
    static float got[64 * 16 * 64];
    vlp_rng rng;
    vlp_rng_init(&rng, 5);
    for (int r = 0; r < N; r++) {
        seq[r * T] = m->cfg.dec_token_id;
        for (int i = 1; i < T; i++) seq[r * T + i] = (int)vlp_rng_below(&rng, (uint64_t)V);
        perm[r] = r ^ 1;
    }
    int swap = T / 2;
    for (int pos = 0; pos < T; pos++) {
        if (pos == swap) {
            vlp_blip_decoder_reorder(d, perm);
            static int moved[64 * 16];
            for (int r = 0; r < N; r++) { /* history from perm[r], future its own */
                memcpy(moved + r * T, seq + perm[r] * T, (size_t)swap * sizeof(int));
                memcpy(moved + r * T + swap, seq + r * T + swap, (size_t)(T - swap) * sizeof(int));
            }
            /* row r's logits so far are perm[r]'s */
            memcpy(seq, moved, (size_t)N * T * sizeof(int));
            static float moved_logits[64 * 16 * 64];
            for (int r = 0; r < N; r++)
                memcpy(moved_logits + (size_t)r * T * V, got + (size_t)perm[r] * T * V,
                       (size_t)swap * V * sizeof(float));
            for (int r = 0; r < N; r++)
                memcpy(got + (size_t)r * T * V, moved_logits + (size_t)r * T * V,
                       (size_t)swap * V * sizeof(float));
        }
        for (int r = 0; r < N; r++) feed[r] = seq[r * T + pos];
        const float *logits = vlp_blip_decoder_step(d, feed);
        for (int r = 0; r < N; r++)
            memcpy(got + ((size_t)r * T + pos) * V, logits + (size_t)r * V, (size_t)V * sizeof(float));
    }
    /* The whole-sequence decoder, each row with its image. */
    vlp_tape_no_grad_begin(&t);
    int Ti = img->shape[1], Cv = img->shape[2];
    vlp_tensor *imgs = vlp_tape_tensor(&t, 3, (int[]){N, Ti, Cv});
    int *lengths = vlp_tape_alloc(&t, (size_t)N * sizeof(int));
    for (int r = 0; r < N; r++) {
        memcpy(imgs->data + (size_t)r * Ti * Cv, img->data + (size_t)(r / R) * Ti * Cv,
               (size_t)Ti * Cv * sizeof(float));
        lengths[r] = T;
    }
    vlp_tensor *x = vlp_bert_forward(&m->text_decoder, &t, seq, lengths, N, imgs, true);
    vlp_tensor *want = vlp_bert_lm_head_forward(&m->lm_head, &t, x, m->text_decoder.word_embeddings);
    vlp_tape_no_grad_end(&t);
    double err = expect_match("cached decoder logits, every position", got, want->data,
                              (long)N * T * V, 1e-5);
    printf("cached decoder: %d rows x %d positions, max relative error %.2e\n", N, T, err);
    vlp_blip_decoder_free(d);
    vlp_tape_free(&t);
    vlp_blip_free(m);
    H5Fclose(f);
}
END_TEST

/* ---- greedy and beam search against PyTorch ------------------------------------------ */

START_TEST(test_golden) {
    static golden g;
    hid_t f = golden_open(&g);
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *img = image_tokens(&g, &t);
    static const char *const cases[] = {"greedy", "greedy_penalties", "beam3", "beam3_min_length",
                                        "beam4_penalties", "beam2_long", "beam1"};
    int B = g.B, tokens_total = 0, ended = 0;
    double worst = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        char group[256], name[300];
        snprintf(group, sizeof group, "cases/%s", cases[c]);
        vlp_blip_decode_options o = vlp_blip_decode_defaults(
            case_attr(f, group, "beam") ? VLP_BLIP_DECODE_BEAM : VLP_BLIP_DECODE_GREEDY, g.end_token);
        o.max_length = (int)case_attr(f, group, "max_length");
        o.min_length = (int)case_attr(f, group, "min_length");
        o.num_beams = (int)case_attr(f, group, "num_beams");
        o.length_penalty = (float)case_attr(f, group, "length_penalty");
        o.repetition_penalty = (float)case_attr(f, group, "repetition_penalty");
        int T = o.max_length;
        static int ids[64 * 32], want_ids[64 * 32], lengths[64], want_lengths[64];
        static float scores[64], want_scores[64];
        int rc = vlp_blip_generate(&g.m, img, g.prompt, g.n_prompt, &o, NULL, ids, lengths, scores);
        ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
        snprintf(name, sizeof name, "%s/ids", group);
        ck_assert_int_eq(read_array(f, name, H5T_NATIVE_INT, want_ids, 64 * 32), (long)B * T);
        snprintf(name, sizeof name, "%s/lengths", group);
        read_array(f, name, H5T_NATIVE_INT, want_lengths, 64);
        snprintf(name, sizeof name, "%s/scores", group);
        read_array(f, name, H5T_NATIVE_FLOAT, want_scores, 64);
        printf("%s:\n", cases[c]);
        for (int b = 0; b < B; b++) {
            printf("  image %d: %d tokens, score %.6f (torch %.6f):", b, lengths[b], scores[b],
                   want_scores[b]);
            for (int i = 0; i < lengths[b]; i++) printf(" %d", ids[b * T + i]);
            printf("\n");
            ck_assert_msg(lengths[b] == want_lengths[b], "%s image %d: %d tokens, torch %d",
                          cases[c], b, lengths[b], want_lengths[b]);
            for (int i = 0; i < lengths[b]; i++)
                ck_assert_msg(ids[b * T + i] == want_ids[b * T + i],
                              "%s image %d token %d: %d, torch %d", cases[c], b, i, ids[b * T + i],
                              want_ids[b * T + i]);
            tokens_total += lengths[b];
            ended += lengths[b] + 1 + g.n_prompt < T;
        }
        snprintf(name, sizeof name, "%s scores", cases[c]);
        worst = fmax(worst, expect_match(name, scores, want_scores, B, 1e-5));
    }
    printf("greedy and beam search vs PyTorch: %d generated tokens identical (%d captions ended "
           "before max_length), scores max relative error %.2e\n",
           tokens_total, ended, worst);
    vlp_tape_free(&t);
    vlp_blip_free(&g.m);
    H5Fclose(f);
}
END_TEST

/* ---- the logits processors -------------------------------------------------------- */

START_TEST(test_repetition_penalty) {
    float s[6] = {2.0f, -1.0f, 0.5f, -3.0f, 0.0f, 4.0f};
    int prev[5] = {0, 1, 1, 3, 4}; /* 1 twice: penalised once */
    vlp_blip_repetition_penalty(s, 6, prev, 5, 2.0f);
    float want[6] = {1.0f, -2.0f, 0.5f, -6.0f, 0.0f, 4.0f};
    for (int i = 0; i < 6; i++) ck_assert_float_eq(s[i], want[i]);
}
END_TEST

/* The kept set of crafted logits: the smallest set of most probable tokens
 * with mass >= top_p, found here by trying every size. */
START_TEST(test_nucleus_set) {
    enum { V = 8 };
    /* probabilities 0.4, 0.25, 0.15, 0.1, 0.05, 0.03, 0.015, 0.005, shuffled */
    const float p[V] = {0.05f, 0.4f, 0.015f, 0.15f, 0.25f, 0.005f, 0.1f, 0.03f};
    float logits[V];
    for (int j = 0; j < V; j++) logits[j] = logf(p[j]) + 3.0f;
    const int order[V] = {1, 4, 3, 6, 0, 7, 2, 5};
    /* cumulative masses 0.4, 0.65, 0.8, 0.9, 0.95, 0.98, 0.995, 1: top_p on
     * both sides of each, none on a boundary (float rounding decides there) */
    const float tops[] = {0.1f,  0.39f, 0.41f, 0.64f, 0.66f, 0.79f, 0.81f,
                          0.89f, 0.91f, 0.97f, 0.99f, 0.996f, 1.0f};
    vlp_blip_decode_options o = vlp_blip_decode_defaults(VLP_BLIP_DECODE_NUCLEUS, 0);
    for (size_t c = 0; c < sizeof tops / sizeof *tops; c++) {
        o.top_p = tops[c];
        int want = 0;
        double mass = 0;
        while (want < V && (want == 0 || mass < o.top_p)) mass += p[order[want++]];
        int tokens[V];
        float probs[V];
        int n = vlp_blip_nucleus(logits, V, &o, tokens, probs);
        printf("top_p %.2f: keeps %d tokens (mass %.3f)\n", o.top_p, n, mass);
        ck_assert_int_eq(n, want);
        for (int j = 0; j < n; j++) {
            ck_assert_int_eq(tokens[j], order[j]);
            ck_assert_float_eq_tol(probs[j], p[order[j]] / mass, 1e-5);
        }
    }
    /* top_k cuts first; top_p then counts mass within the k kept. */
    o.top_p = 0.9f, o.top_k = 2;
    int tokens[V];
    float probs[V];
    ck_assert_int_eq(vlp_blip_nucleus(logits, V, &o, tokens, probs), 2);
    o.top_p = 0.6f; /* 0.4 / 0.65 = 0.615 >= 0.6 */
    ck_assert_int_eq(vlp_blip_nucleus(logits, V, &o, tokens, probs), 1);
    /* temperature 2 flattens: probabilities sqrt(p) renormalised. */
    o.top_k = 0, o.top_p = 1.0f, o.temperature = 2.0f;
    ck_assert_int_eq(vlp_blip_nucleus(logits, V, &o, tokens, probs), V);
    double z = 0;
    for (int j = 0; j < V; j++) z += sqrt(p[j]);
    for (int j = 0; j < V; j++) ck_assert_float_eq_tol(probs[j], sqrt(p[order[j]]) / z, 1e-5);
}
END_TEST

/* The first sampled token of many rows of one image follows the nucleus of
 * that step's logits (penalties applied): never outside it, and each kept
 * token about as often as its probability. */
START_TEST(test_nucleus_draws) {
    static golden g;
    hid_t f = golden_open(&g);
    vlp_blip *m = &g.m;
    int V = m->cfg.vocab_size, R = 4000, start = 1 + g.n_prompt;
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *img = image_tokens(&g, &t);
    vlp_tensor *one = vlp_tape_tensor(&t, 3, (int[]){R, img->shape[1], img->shape[2]});
    for (int r = 0; r < R; r++) /* image 1's tokens R times */
        memcpy(one->data + (size_t)r * img->shape[1] * img->shape[2],
               img->data + (size_t)img->shape[1] * img->shape[2],
               (size_t)img->shape[1] * img->shape[2] * sizeof(float));
    vlp_blip_decode_options o = vlp_blip_decode_defaults(VLP_BLIP_DECODE_NUCLEUS, g.end_token);
    o.max_length = start + 1, o.min_length = 0, o.top_p = 0.8f, o.temperature = 0.7f;
    /* The nucleus of the first step, as generate computes it. */
    vlp_blip_decoder *d;
    ck_assert_int_eq(vlp_blip_decoder_init(&d, m, img, 1, start), VLP_OK);
    int seq[16] = {m->cfg.dec_token_id};
    memcpy(seq + 1, g.prompt, (size_t)g.n_prompt * sizeof(int));
    const float *logits = NULL;
    for (int pos = 0; pos < start; pos++) {
        int feed[16];
        for (int b = 0; b < g.B; b++) feed[b] = seq[pos];
        logits = vlp_blip_decoder_step(d, feed);
    }
    float row[64];
    memcpy(row, logits + V, (size_t)V * sizeof(float)); /* image 1 */
    vlp_blip_repetition_penalty(row, V, seq, start, o.repetition_penalty);
    int tokens[64];
    float probs[64];
    int n = vlp_blip_nucleus(row, V, &o, tokens, probs);
    vlp_blip_decoder_free(d);
    ck_assert_msg(n >= 3 && n < V, "the nucleus has %d of %d tokens: pick another top_p", n, V);

    static int ids[4000 * 8], lengths[4000];
    vlp_rng rng;
    vlp_rng_init(&rng, 11);
    vlp_rng draws = vlp_rng_split(&rng, VLP_RNG_STREAM_SAMPLE);
    int rc = vlp_blip_generate(m, one, g.prompt, g.n_prompt, &o, &draws, ids, lengths, NULL);
    ck_assert_msg(rc == VLP_OK, "%s", vlp_error_message());
    int count[64] = {0};
    for (int r = 0; r < R; r++) {
        /* a zero length is the end token drawn first */
        int tok = lengths[r] ? ids[r * o.max_length] : g.end_token;
        count[tok]++;
    }
    int inside = 0;
    double chi2 = 0;
    for (int j = 0; j < n; j++) {
        double e = probs[j] * R;
        inside += count[tokens[j]];
        chi2 += (count[tokens[j]] - e) * (count[tokens[j]] - e) / e;
        printf("  token %2d: p %.4f, drawn %4d of %d (expected %.1f)\n", tokens[j], probs[j],
               count[tokens[j]], R, e);
    }
    printf("nucleus of %d tokens: %d of %d draws inside, chi-square %.2f on %d degrees\n", n,
           inside, R, chi2, n - 1);
    ck_assert_int_eq(inside, R);
    /* chi-square's 99.9% quantile is below 3 dof + 20 for the sizes here */
    ck_assert_msg(chi2 < 3.0 * (n - 1) + 20.0, "draws far from the nucleus: chi-square %.1f", chi2);

    /* top_p -> 0 keeps the most probable token alone: greedy's captions. */
    vlp_blip_decode_options near = vlp_blip_decode_defaults(VLP_BLIP_DECODE_NUCLEUS, g.end_token);
    near.max_length = m->cfg.context_length, near.top_p = 1e-6f;
    vlp_blip_decode_options greedy = near;
    greedy.method = VLP_BLIP_DECODE_GREEDY;
    static int a[64 * 16], b[64 * 16], la[64], lb[64];
    float sa[64], sb[64];
    ck_assert_int_eq(vlp_blip_generate(m, img, g.prompt, g.n_prompt, &near, &draws, a, la, sa), VLP_OK);
    ck_assert_int_eq(vlp_blip_generate(m, img, g.prompt, g.n_prompt, &greedy, NULL, b, lb, sb), VLP_OK);
    for (int r = 0; r < g.B; r++) {
        ck_assert_int_eq(la[r], lb[r]);
        for (int i = 0; i < la[r]; i++) ck_assert_int_eq(a[r * near.max_length + i], b[r * near.max_length + i]);
        ck_assert_float_eq(sa[r], sb[r]);
    }
    vlp_tape_free(&t);
    vlp_blip_free(m);
    H5Fclose(f);
}
END_TEST

/* Options a model cannot run are errors, not crashes. */
START_TEST(test_bad_options) {
    static golden g;
    hid_t f = golden_open(&g);
    vlp_tape t;
    vlp_tape_init(&t);
    vlp_tensor *img = image_tokens(&g, &t);
    int ids[64 * 64], lengths[64];
    vlp_blip_decode_options o = vlp_blip_decode_defaults(VLP_BLIP_DECODE_BEAM, g.end_token);
    o.max_length = g.m.cfg.context_length + 1;
    ck_assert_int_eq(vlp_blip_generate(&g.m, img, g.prompt, g.n_prompt, &o, NULL, ids, lengths, NULL),
                     VLP_EINVAL);
    printf("%s\n", vlp_error_message());
    o.max_length = 1 + g.n_prompt;
    ck_assert_int_eq(vlp_blip_generate(&g.m, img, g.prompt, g.n_prompt, &o, NULL, ids, lengths, NULL),
                     VLP_EINVAL);
    o.max_length = 8, o.num_beams = 0;
    ck_assert_int_eq(vlp_blip_generate(&g.m, img, g.prompt, g.n_prompt, &o, NULL, ids, lengths, NULL),
                     VLP_EINVAL);
    o = vlp_blip_decode_defaults(VLP_BLIP_DECODE_NUCLEUS, g.end_token);
    o.max_length = 8;
    ck_assert_int_eq(vlp_blip_generate(&g.m, img, g.prompt, g.n_prompt, &o, NULL, ids, lengths, NULL),
                     VLP_EINVAL); /* no generator */
    printf("%s\n", vlp_error_message());
    vlp_tape_free(&t);
    vlp_blip_free(&g.m);
    H5Fclose(f);
}
END_TEST

VLP_SUITE(blip_decode_suite, "blip_decode", test_cached_step, test_golden, test_repetition_penalty,
          test_nucleus_set, test_nucleus_draws, test_bad_options)

VLP_TEST_MAIN(blip_decode_suite)
