/* The engine's plumbing: errors, arena, tape (its release of dead
 * gradients, the per-node hook in backward, dropped activations), parameter store, random numbers, and a
 * small MLP trained through the tape to near-zero loss. */
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "autograd/ops.h"
#include "testutil.h"
#include "apps/demo.h"

START_TEST(test_errors) {
    ck_assert_str_eq(vlp_strerror(VLP_ENOMEM), "out of memory");
    ck_assert_str_eq(vlp_strerror(12345), "unknown error");
    int rc = vlp_error_set(VLP_ECONFIG, "%s:%d: unknown key '%s'", "a.ini", 7, "lr");
    ck_assert_int_eq(rc, VLP_ECONFIG);
    ck_assert_str_eq(vlp_error_message(), "a.ini:7: unknown key 'lr'");
    /* A message may wrap the current one, and keeps a 4095-byte path whole. */
    vlp_error_set(VLP_ECONFIG, "%s: %s", "recipe.ini:3: [data] train", vlp_error_message());
    ck_assert_str_eq(vlp_error_message(), "recipe.ini:3: [data] train: a.ini:7: unknown key 'lr'");
    char *path = malloc(4096);
    memset(path, 'p', 4095), path[4095] = '\0';
    vlp_error_set(VLP_EIO, "%s: not a regular file (a FIFO)", path);
    ck_assert_uint_eq(strlen(vlp_error_message()), 4095 + strlen(": not a regular file (a FIFO)"));
    /* Past its room, a message ends in "..." rather than stopping mid-word. */
    vlp_error_set(VLP_EIO, "%s %s %s %s", path, path, path, path);
    const char *m = vlp_error_message();
    ck_assert_str_eq(m + strlen(m) - 3, "...");
    free(path);
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

START_TEST(test_arena_release) {
    vlp_arena a;
    vlp_arena_init(&a);
    char *p = vlp_arena_alloc(&a, 1000), *q = vlp_arena_alloc(&a, 3000);
    vlp_arena_release(&a, p, 1000);
    ck_assert_uint_eq(a.released, 1024);
    /* Another size does not take the hole; the same rounded size does. */
    char *r = vlp_arena_alloc(&a, 2000);
    ck_assert(r != p);
    ck_assert_ptr_eq(vlp_arena_alloc(&a, 1020), p);
    ck_assert_uint_eq(a.released, 0);
    /* Newest hole first, so a hot buffer is reused while in cache. */
    vlp_arena_release(&a, q, 3000);
    vlp_arena_release(&a, r, 2000);
    vlp_arena_release(&a, p, 1000);
    size_t used = a.used;
    ck_assert_ptr_eq(vlp_arena_alloc(&a, 3000), q);
    ck_assert_uint_eq(a.used, used); /* no bump: the step's memory did not grow */
    vlp_arena_reset(&a);
    ck_assert_uint_eq(a.released, 0);
    ck_assert_ptr_eq(vlp_arena_alloc(&a, 2000), p); /* holes forgotten: from the start */
    vlp_arena_free(&a);
}
END_TEST

/* L pre-LN MLP blocks with a reshape round trip in each, loss sum(y * y),
 * on tape t; with keep, every op's output keeps its gradient to the end
 * (the tape before it released them). out[i]: block i's output. */
enum { CHAIN_L = 6, CHAIN_ROWS = 24, CHAIN_C = 16, CHAIN_M = 64 };
typedef struct chain {
    vlp_params p;
    vlp_tensor *x, *ln_w[CHAIN_L], *ln_b[CHAIN_L], *fc_w[CHAIN_L], *fc_b[CHAIN_L],
        *proj_w[CHAIN_L], *proj_b[CHAIN_L], *out[CHAIN_L], *view;
} chain;

static void chain_init(chain *c) {
    vlp_params_init(&c->p);
    c->x = vlp_params_add(&c->p, "x", 2, (int[]){CHAIN_ROWS, CHAIN_C});
    for (int i = 0; i < CHAIN_L; i++) {
        char name[32];
        snprintf(name, sizeof name, "ln_w%d", i);
        c->ln_w[i] = vlp_params_add(&c->p, name, 1, (int[]){CHAIN_C});
        snprintf(name, sizeof name, "ln_b%d", i);
        c->ln_b[i] = vlp_params_add(&c->p, name, 1, (int[]){CHAIN_C});
        snprintf(name, sizeof name, "fc_w%d", i);
        c->fc_w[i] = vlp_params_add(&c->p, name, 2, (int[]){CHAIN_M, CHAIN_C});
        snprintf(name, sizeof name, "fc_b%d", i);
        c->fc_b[i] = vlp_params_add(&c->p, name, 1, (int[]){CHAIN_M});
        snprintf(name, sizeof name, "proj_w%d", i);
        c->proj_w[i] = vlp_params_add(&c->p, name, 2, (int[]){CHAIN_C, CHAIN_M});
        snprintf(name, sizeof name, "proj_b%d", i);
        c->proj_b[i] = vlp_params_add(&c->p, name, 1, (int[]){CHAIN_C});
    }
    ck_assert_int_eq(vlp_params_alloc(&c->p), VLP_OK);
    vlp_rng rng;
    vlp_rng_init(&rng, 5);
    vlp_rng_fill_normal(&rng, c->p.data, (long)c->p.n, 0.0f, 0.3f);
}

static vlp_tensor *kept(vlp_tensor *y, bool keep) {
    if (keep) vlp_tape_keep_grad(y);
    return y;
}

static vlp_tensor *chain_loss(chain *c, vlp_tape *t, bool keep) {
    vlp_params_zero_grad(&c->p);
    vlp_tensor *y = c->x;
    for (int i = 0; i < CHAIN_L; i++) {
        vlp_tensor *h = kept(vlp_op_layernorm(t, y, c->ln_w[i], c->ln_b[i]), keep);
        /* a view of a view: both share h's gradient through base */
        h = vlp_op_reshape(t, vlp_op_reshape(t, h, 3, (int[]){4, -1, CHAIN_C}), 2,
                           (int[]){CHAIN_ROWS, CHAIN_C});
        if (i == CHAIN_L - 1) c->view = h;
        y = c->out[i] = kept(vlp_op_mlp_residual(t, h, c->fc_w[i], c->fc_b[i], c->proj_w[i],
                                                 c->proj_b[i], y, VLP_ACTIVATION_GELU), keep);
    }
    return kept(vlp_op_sum(t, kept(vlp_op_mul(t, y, y), keep)), keep);
}

static void chain_step(chain *c, vlp_tape *t, bool keep) {
    vlp_tape_backward(t, chain_loss(c, t, keep), NULL);
}

/* Backward releases each op's output gradient (and its scratch) once the op
 * is done with it: the same gradients, bit for bit, as keeping every one,
 * in less memory; a gradient the caller asked to keep stays. */
START_TEST(test_tape_releases_dead_gradients) {
    chain c;
    chain_init(&c);
    float *want = malloc(c.p.n * sizeof *want);
    vlp_tape keep, t;
    vlp_tape_init(&keep);
    vlp_tape_init(&t);

    chain_step(&c, &keep, true);
    memcpy(want, c.p.grad, c.p.n * sizeof *want);
    float g_view = vlp_tape_grad(&keep, c.view)[5];
    for (int i = 0; i < CHAIN_L; i++) ck_assert_ptr_nonnull(c.out[i]->grad);
    ck_assert(g_view != 0.0f);

    for (int step = 0; step < 2; step++) { /* the second from the consolidated arena */
        vlp_tape_reset(&t);
        chain_step(&c, &t, false);
        ck_assert_mem_eq(c.p.grad, want, c.p.n * sizeof *want);
        for (int i = 0; i < CHAIN_L; i++) ck_assert_ptr_null(c.out[i]->grad);
    }
    size_t block = (size_t)CHAIN_ROWS * CHAIN_C * sizeof(float);
    printf("arena high-water: %zu bytes keeping every gradient, %zu releasing them; "
           "gradients at most %zu and %zu bytes at once\n", keep.arena.high_water,
           t.arena.high_water, keep.grad_peak, t.grad_peak);
    /* Keeping: the layernorm's and the MLP's output gradient of every block.
     * Releasing: the MLP's output, its residual and its input (the
     * layernorm's output) at most at once, whatever L. */
    ck_assert_uint_ge(keep.grad_peak, 2 * CHAIN_L * block);
    ck_assert_uint_le(t.grad_peak, 3 * block);
    ck_assert_uint_le(t.arena.high_water + (2 * CHAIN_L - 3) * block, keep.arena.high_water);

    /* A caller that reads a gradient after backward keeps it, views too. */
    vlp_tape_reset(&t);
    vlp_params_zero_grad(&c.p);
    vlp_tensor *y = c.x;
    for (int i = 0; i < CHAIN_L; i++) {
        vlp_tensor *h = vlp_op_layernorm(&t, y, c.ln_w[i], c.ln_b[i]);
        h = vlp_op_reshape(&t, vlp_op_reshape(&t, h, 3, (int[]){4, -1, CHAIN_C}), 2,
                           (int[]){CHAIN_ROWS, CHAIN_C});
        if (i == CHAIN_L - 1) vlp_tape_keep_grad(h);
        y = vlp_op_mlp_residual(&t, h, c.fc_w[i], c.fc_b[i], c.proj_w[i], c.proj_b[i], y,
                                VLP_ACTIVATION_GELU);
        if (i == CHAIN_L - 1) c.view = h;
    }
    vlp_tape_backward(&t, vlp_op_sum(&t, vlp_op_mul(&t, y, y)), NULL);
    ck_assert_mem_eq(c.p.grad, want, c.p.n * sizeof *want);
    ck_assert_ptr_nonnull(c.view->base->grad);
    ck_assert_float_eq(vlp_tape_grad(&t, c.view)[5], g_view);

    vlp_tape_free(&keep);
    vlp_tape_free(&t);
    vlp_params_free(&c.p);
    free(want);
}
END_TEST

/* What vlp_tape_backward_each promises, and the overlapped all-reduce
 * relies on: after(i) comes once per node, from the last to the first, and
 * by then every parameter that no node before i reads has its final
 * gradient. */
typedef struct final_check {
    chain *c;
    vlp_tape *t;
    const float *want;
    int next, checked;
} final_check;

static void check_final(void *ctx, int node) {
    final_check *f = ctx;
    ck_assert_int_eq(node, f->next--);
    for (int j = 0; j < f->c->p.count; j++) {
        const vlp_param *e = &f->c->p.table[j];
        bool read_earlier = false;
        for (int i = 0; i < node; i++)
            for (int k = 0; k < f->t->nodes[i].n_in; k++) {
                const vlp_tensor *x = f->t->nodes[i].in[k];
                if (x && (x->base ? x->base : x) == e->t) read_earlier = true;
            }
        if (read_earlier) continue;
        ck_assert_mem_eq(e->t->grad, f->want + e->offset, (size_t)e->t->n * sizeof(float));
        f->checked++;
    }
}

START_TEST(test_tape_backward_each) {
    chain c;
    chain_init(&c);
    float *want = malloc(c.p.n * sizeof *want);
    vlp_tape t;
    vlp_tape_init(&t);
    chain_step(&c, &t, false);
    memcpy(want, c.p.grad, c.p.n * sizeof *want);
    vlp_tape_reset(&t);
    vlp_tensor *loss = chain_loss(&c, &t, false);
    final_check f = {.c = &c, .t = &t, .want = want, .next = t.n_nodes - 1};
    vlp_tape_backward_each(&t, loss, NULL, check_final, &f);
    ck_assert_int_eq(f.next, -1);
    /* at node 0 every parameter; the last block's well before */
    ck_assert_int_ge(f.checked, c.p.count + 6);
    vlp_tape_free(&t);
    vlp_params_free(&c.p);
    free(want);
}
END_TEST

/* Each layernorm's output dropped after its one use: backward refills it
 * for the MLP's backward only, so the gradients are the same bit for bit,
 * with one such activation kept at a time instead of L. */
START_TEST(test_tape_drop_refills) {
    chain c;
    chain_init(&c);
    float *want = malloc(c.p.n * sizeof *want);
    size_t high_water[2];
    for (int drop = 0; drop < 2; drop++) {
        vlp_tape t;
        vlp_tape_init(&t);
        vlp_params_zero_grad(&c.p);
        vlp_tensor *y = c.x, *h[CHAIN_L];
        for (int i = 0; i < CHAIN_L; i++) {
            h[i] = vlp_op_layernorm(&t, y, c.ln_w[i], c.ln_b[i]);
            y = vlp_op_mlp_residual(&t, h[i], c.fc_w[i], c.fc_b[i], c.proj_w[i], c.proj_b[i], y,
                                    VLP_ACTIVATION_GELU);
            if (drop) {
                vlp_tape_drop(&t, h[i]);
                ck_assert_ptr_null(h[i]->data);
            }
        }
        vlp_tape_backward(&t, vlp_op_sum(&t, vlp_op_mul(&t, y, y)), NULL);
        if (!drop) memcpy(want, c.p.grad, c.p.n * sizeof *want);
        else ck_assert_mem_eq(c.p.grad, want, c.p.n * sizeof *want);
        for (int i = 0; i < CHAIN_L && drop; i++) ck_assert_ptr_null(h[i]->data);
        high_water[drop] = t.arena.high_water;
        if (drop) { /* no-grad: no op recorded to refill from, so the data stays */
            vlp_tape_no_grad_begin(&t);
            vlp_tensor *kept_h = vlp_op_layernorm(&t, c.x, c.ln_w[0], c.ln_b[0]);
            vlp_tape_drop(&t, kept_h);
            ck_assert_ptr_nonnull(kept_h->data);
            vlp_tape_no_grad_end(&t);
        }
        vlp_tape_free(&t);
    }
    size_t block = (size_t)CHAIN_ROWS * CHAIN_C * sizeof(float);
    printf("arena high-water: %zu bytes keeping the layernorms' outputs, %zu dropping them\n",
           high_water[0], high_water[1]);
    ck_assert_uint_le(high_water[1] + (CHAIN_L - 1) * block, high_water[0]);
    vlp_params_free(&c.p);
    free(want);
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

/* The checked allocators: zero sizes give pointers to free, copies copy. */
START_TEST(test_mem) {
    free(vlp_malloc(0));
    free(vlp_calloc(0, 8));
    char *s = vlp_strdup("vlp");
    ck_assert_str_eq(s, "vlp");
    s = vlp_realloc(s, 1 << 20);
    ck_assert_str_eq(s, "vlp");
    free(s);
    float *a = vlp_aligned_alloc(64, 100);
    ck_assert_uint_eq((uintptr_t)a % 64, 0);
    free(a);
}
END_TEST

/* n * size past SIZE_MAX aborts (SIGABRT) rather than returning a short
 * block: in a child, so the test sees the signal. */
START_TEST(test_mem_overflow_aborts) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        fclose(stderr); /* the expected message is not the test's output */
        free(vlp_calloc(SIZE_MAX / 4, 8));
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
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

VLP_SUITE(engine_suite, "engine", test_errors, test_arena, test_arena_release, test_tape_releases_dead_gradients,
          test_tape_backward_each, test_tape_drop_refills, test_params_table, test_tape_no_grad_and_freezing,
          test_rng, test_mem, test_mlp_learns_spirals, test_mem_overflow_aborts)

VLP_TEST_MAIN(engine_suite)
