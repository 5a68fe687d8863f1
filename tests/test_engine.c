/* The engine's plumbing: errors, arena, tape, parameter store, random
 * numbers, and a small MLP trained through the tape to near-zero loss. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "autograd/error.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "train/demo.h"

START_TEST(test_errors) {
    ck_assert_str_eq(vlp_strerror(VLP_ENOMEM), "out of memory");
    ck_assert_str_eq(vlp_strerror(12345), "unknown error");
    int rc = vlp_error_set(VLP_ECONFIG, "%s:%d: unknown key '%s'", "a.ini", 7, "lr");
    ck_assert_int_eq(rc, VLP_ECONFIG);
    ck_assert_str_eq(vlp_error_message(), "a.ini:7: unknown key 'lr'");
}
END_TEST

START_TEST(test_arena) {
    vlp_arena a;
    vlp_arena_init(&a);
    char *p = vlp_arena_alloc(&a, 3);
    char *q = vlp_arena_alloc(&a, 100);
    ck_assert_int_eq((uintptr_t)p % VLP_ARENA_ALIGN, 0);
    ck_assert_int_eq((uintptr_t)q % VLP_ARENA_ALIGN, 0);
    ck_assert_ptr_eq(q, p + VLP_ARENA_ALIGN);
    /* A step larger than one block grows the arena... */
    for (int i = 0; i < 5; i++) memset(vlp_arena_alloc(&a, 1 << 20), i, 1 << 20);
    size_t hw = a.high_water;
    ck_assert_uint_eq(hw, 64 + 128 + 5 * (1u << 20)); /* 3 -> 64, 100 -> 128 */
    /* ...and reset folds it into one block holding the high-water mark, */
    vlp_arena_reset(&a);
    ck_assert_uint_eq(a.used, 0);
    ck_assert_uint_eq(a.capacity, hw);
    /* so the same step again needs no new block. */
    vlp_arena_alloc(&a, 3);
    vlp_arena_alloc(&a, 100);
    for (int i = 0; i < 5; i++) vlp_arena_alloc(&a, 1 << 20);
    ck_assert_uint_eq(a.capacity, hw);
    ck_assert_uint_eq(a.high_water, hw);
    int *z = vlp_arena_calloc(&a, 64 * sizeof(int));
    for (int i = 0; i < 64; i++) ck_assert_int_eq(z[i], 0);
    vlp_arena_free(&a);
}
END_TEST

START_TEST(test_params_table) {
    vlp_params p;
    vlp_params_init(&p);
    vlp_tensor *w = vlp_params_add(&p, "visual.proj", 2, (int[]){3, 4});
    vlp_tensor *b = vlp_params_add(&p, "visual.ln_post.bias", 1, (int[]){4});
    vlp_tensor *s = vlp_params_add(&p, "logit_scale", 1, (int[]){1});
    ck_assert_int_eq(vlp_params_alloc(&p), VLP_OK);
    ck_assert_uint_eq(p.n, 17);
    ck_assert_ptr_eq(w->data, p.data);
    ck_assert_ptr_eq(b->data, p.data + 12);
    ck_assert_ptr_eq(s->grad, p.grad + 16);
    ck_assert(p.table[0].decay && !p.table[1].decay && !p.table[2].decay);
    ck_assert_ptr_eq(vlp_params_find(&p, "logit_scale")->t, s);
    ck_assert_ptr_null(vlp_params_find(&p, "nope"));
    ck_assert_int_eq(vlp_params_set_trainable(&p, "visual.", false), 2);
    ck_assert(!w->requires_grad && s->requires_grad);
    vlp_params_free(&p);
}
END_TEST

START_TEST(test_tape_no_grad_and_freezing) {
    vlp_params p;
    vlp_params_init(&p);
    vlp_tensor *w = vlp_params_add(&p, "w", 2, (int[]){2, 3});
    vlp_tensor *frozen = vlp_params_add(&p, "frozen", 2, (int[]){2, 3});
    ck_assert_int_eq(vlp_params_alloc(&p), VLP_OK);
    for (int i = 0; i < 6; i++) w->data[i] = frozen->data[i] = (float)i;
    frozen->requires_grad = false;
    vlp_tape t;
    vlp_tape_init(&t);

    vlp_tape_no_grad_begin(&t);
    vlp_tensor *y = vlp_op_sum(&t, vlp_op_mul(&t, w, w));
    vlp_tape_no_grad_end(&t);
    ck_assert_int_eq(t.n_nodes, 0);
    ck_assert(!y->requires_grad);
    ck_assert_float_eq(y->data[0], 55.0f);

    /* A frozen input records nothing on its own and gets no gradient. */
    vlp_tensor *only_frozen = vlp_op_exp(&t, frozen);
    ck_assert(!only_frozen->requires_grad);
    ck_assert_int_eq(t.n_nodes, 0);
    vlp_tensor *loss = vlp_op_sum(&t, vlp_op_mul(&t, w, frozen));
    ck_assert_int_eq(t.n_nodes, 2);
    vlp_params_zero_grad(&p);
    vlp_tape_backward(&t, loss, NULL);
    for (int i = 0; i < 6; i++) {
        ck_assert_float_eq(w->grad[i], (float)i);
        ck_assert_float_eq(frozen->grad[i], 0.0f);
    }
    vlp_tape_reset(&t);
    ck_assert_int_eq(t.n_nodes, 0);
    vlp_tape_free(&t);
    vlp_params_free(&p);
}
END_TEST

START_TEST(test_rng) {
    vlp_rng a, b;
    vlp_rng_init(&a, 99);
    vlp_rng_init(&b, 99);
    for (int i = 0; i < 100; i++) ck_assert_uint_eq(vlp_rng_u64(&a), vlp_rng_u64(&b));
    /* A child depends on the parent's seed only, not on its consumption. */
    vlp_rng fresh;
    vlp_rng_init(&fresh, 99);
    vlp_rng c1 = vlp_rng_split(&a, 3), c2 = vlp_rng_split(&fresh, 3), c3 = vlp_rng_split(&fresh, 4);
    ck_assert_uint_eq(vlp_rng_u64(&c1), vlp_rng_u64(&c2));
    ck_assert_uint_ne(vlp_rng_u64(&c2), vlp_rng_u64(&c3));
    /* Moments of 200000 draws: mean within 5 standard errors. */
    double su = 0, sn = 0, sn2 = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = vlp_rng_uniform(&a), z = vlp_rng_normal(&a);
        ck_assert(u >= 0.0f && u < 1.0f);
        su += u, sn += z, sn2 += (double)z * z;
    }
    ck_assert_double_eq_tol(su / n, 0.5, 5 * sqrt(1.0 / 12 / n));
    ck_assert_double_eq_tol(sn / n, 0.0, 5 * sqrt(1.0 / n));
    ck_assert_double_eq_tol(sn2 / n, 1.0, 5 * sqrt(2.0 / n));
    for (int i = 0; i < 1000; i++) ck_assert_uint_lt(vlp_rng_below(&a, 7), 7);
}
END_TEST

START_TEST(test_mlp_learns_spirals) {
    vlp_demo d;
    ck_assert_int_eq(vlp_demo_init(&d, 3, 40, 2026), VLP_OK);
    float first = vlp_demo_step(&d, 1e-2f), loss = first;
    for (int step = 1; step < 1500; step++) loss = vlp_demo_step(&d, 1e-2f);
    ck_assert_msg(first > 0.9f, "initial loss %g is not near ln 3", first);
    ck_assert_msg(loss < 0.02f, "loss after 1500 steps is %g", loss);
    ck_assert_float_eq(vlp_demo_accuracy(&d), 1.0f);
    vlp_demo_free(&d);
}
END_TEST

static Suite *engine_suite(void) {
    Suite *s = suite_create("engine");
    VLP_ADD_CASE(s, errors);
    VLP_ADD_CASE(s, arena);
    VLP_ADD_CASE(s, params_table);
    VLP_ADD_CASE(s, tape_no_grad_and_freezing);
    VLP_ADD_CASE(s, rng);
    VLP_ADD_CASE(s, mlp_learns_spirals);
    return s;
}

VLP_TEST_MAIN(engine_suite)
