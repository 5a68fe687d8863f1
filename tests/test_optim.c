/* AdamW, clipping and the schedule against values worked out by hand. */
#include <math.h>

#include "base/error.h"
#include "autograd/optim.h"
#include "testutil.h"

/* w (1, 2) decays, b (2) does not; both start at 1 with gradients
 * w: (0.5, -0.25), b: (0.5, 0); lr 0.1, wd 0.2, betas (0.9, 0.98), eps 1e-6.
 * Step 1, w0: decay 1 - 0.1*0.2 = 0.98; m = 0.05, v = 0.005; mhat = 0.5,
 * vhat = 0.25; update 0.1*0.5/(0.5 + 1e-6) = 0.0999998 -> 0.8800002.
 * w1: 0.98 + 0.1*0.25/(0.25 + 1e-6) = 1.0799996. b0: 1 - 0.0999998 = 0.9000002.
 * b1: zero gradient, no decay: stays 1. Step 2, same gradients: m and v keep
 * mhat = g, vhat = g^2, so w0 = 0.8800002 * 0.98 - 0.0999998 = 0.7624004. */
START_TEST(test_adamw_by_hand) {
    vlp_params p;
    vlp_params_init(&p);
    vlp_tensor *w = vlp_params_add(&p, "w", 2, (int[]){1, 2});
    vlp_tensor *b = vlp_params_add(&p, "b", 1, (int[]){2});
    vlp_tensor *frozen = vlp_params_add(&p, "frozen.w", 2, (int[]){1, 1});
    ck_assert_int_eq(vlp_params_alloc(&p), VLP_OK);
    ck_assert_int_eq(vlp_params_set_trainable(&p, "frozen.", false), 1);
    for (int i = 0; i < 2; i++) w->data[i] = b->data[i] = 1.0f;
    frozen->data[0] = 1.0f;
    vlp_adamw opt;
    vlp_adamw_init(&opt);
    ck_assert_float_eq(opt.beta2, 0.98f);
    for (int step = 0; step < 2; step++) {
        w->grad[0] = 0.5f, w->grad[1] = -0.25f, b->grad[0] = 0.5f, b->grad[1] = 0.0f;
        frozen->grad[0] = 1.0f;
        vlp_adamw_step(&opt, &p, 0.1f);
        if (step == 0) {
            ck_assert_float_eq_tol(w->data[0], 0.8800002f, 2e-7f);
            ck_assert_float_eq_tol(w->data[1], 1.0799996f, 2e-7f);
            ck_assert_float_eq_tol(b->data[0], 0.9000002f, 2e-7f);
            ck_assert_float_eq(b->data[1], 1.0f);
        }
    }
    ck_assert_float_eq_tol(w->data[0], 0.7624004f, 3e-7f);
    ck_assert_int_eq(opt.step, 2);
    ck_assert_float_eq(frozen->data[0], 1.0f); /* neither decayed nor stepped */
    vlp_params_free(&p);
}
END_TEST

START_TEST(test_schedule_by_hand) {
    /* warmup 10 of 110 steps to base 1: (step + 1) / 10, then a cosine over 100. */
    ck_assert_float_eq_tol(vlp_lr_schedule(0, 10, 110, 1.0f, 0.0f), 0.1f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(4, 10, 110, 1.0f, 0.0f), 0.5f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(9, 10, 110, 1.0f, 0.0f), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(10, 10, 110, 1.0f, 0.0f), 1.0f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(60, 10, 110, 1.0f, 0.0f), 0.5f, 1e-6f);
    ck_assert_float_eq_tol(vlp_lr_schedule(35, 10, 110, 1.0f, 0.0f), 0.8535534f, 1e-6f); /* (1 + cos(pi/4)) / 2 */
    ck_assert_float_eq_tol(vlp_lr_schedule(110, 10, 110, 1.0f, 0.0f), 0.0f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(500, 10, 110, 1.0f, 0.0f), 0.0f, 1e-7f);
    ck_assert_float_eq_tol(vlp_lr_schedule(60, 10, 110, 1.0f, 0.1f), 0.55f, 1e-6f);
}
END_TEST

START_TEST(test_clip_by_hand) {
    vlp_params p;
    vlp_params_init(&p);
    vlp_tensor *a = vlp_params_add(&p, "a", 1, (int[]){2});
    vlp_tensor *b = vlp_params_add(&p, "b", 1, (int[]){1});
    ck_assert_int_eq(vlp_params_alloc(&p), VLP_OK);
    a->grad[0] = 3.0f, a->grad[1] = 0.0f, b->grad[0] = 4.0f; /* norm 5 */
    ck_assert_float_eq_tol(vlp_grad_clip(&p, 10.0f), 5.0f, 1e-6f);
    ck_assert_float_eq(a->grad[0], 3.0f); /* under the limit: untouched */
    ck_assert_float_eq_tol(vlp_grad_clip(&p, 1.0f), 5.0f, 1e-6f);
    ck_assert_float_eq_tol(a->grad[0], 0.6f, 1e-6f);
    ck_assert_float_eq_tol(b->grad[0], 0.8f, 1e-6f);
    ck_assert_float_eq_tol(vlp_grad_clip(&p, 0.0f), 1.0f, 1e-5f); /* 0: measure only */
    vlp_params_free(&p);
}
END_TEST

VLP_SUITE(optim_suite, "optim", test_adamw_by_hand, test_schedule_by_hand, test_clip_by_hand)

VLP_TEST_MAIN(optim_suite)
