/* Zero-shot classification and retrieval (see eval.h). */
#include "eval/eval.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "autograd/kernels.h"
#include "data/loader.h"
#include "train/checkpoint.h"

int vlp_eval_embed(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds,
                   const vlp_dist *d, int batch, int workers, float *img, float *txt, bool *read) {
    memset(read, 0, sizeof(bool) * (size_t)ds->n);
    int S = m->image_size, ctx = m->context_length, D = m->embed_dim;
    vlp_loader_opts o = vlp_model_eval_loader(m, batch, workers);
    o.rank = d->rank, o.world = d->world;
    vlp_loader *l;
    int rc = vlp_loader_open(&l, ds, &o, 0, 0);
    if (rc) return rc;
    memset(img, 0, sizeof(float) * ds->n * D);
    memset(txt, 0, sizeof(float) * ds->n * D);
    /* 1 where a rank embedded the image: the loader passes over one it cannot read */
    float *done = calloc((size_t)ds->n + 1, sizeof *done);
    if (!done) rc = vlp_error_set(VLP_ENOMEM, "out of memory for %ld samples", ds->n);
    int *ids = malloc(sizeof(int) * batch * ctx);
    vlp_tape t;
    vlp_tape_init(&t);
    long steps = vlp_loader_steps_per_epoch(l);
    for (long s = 0; s < steps && !rc; s++) {
        vlp_batch *b;
        if ((rc = vlp_loader_next(l, &b))) break;
        if (b->n == 0) continue;
        for (int j = 0; j < b->n && !rc; j++)
            rc = vlp_tokenizer_encode(tok, b->caption[j], ids + (long)j * ctx, ctx, NULL);
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *x = vlp_tape_wrap(&t, b->images, 4, (int[]){b->n, 3, S, S});
        vlp_tensor *fi = vlp_model_encode_image(m, &t, x);
        vlp_tensor *ft = vlp_model_encode_text(m, &t, ids, b->n);
        for (int j = 0; j < b->n; j++) {
            done[b->index[j]] = 1.0f;
            memcpy(img + b->index[j] * D, fi->data + (long)j * D, sizeof(float) * D);
            memcpy(txt + b->index[j] * D, ft->data + (long)j * D, sizeof(float) * D);
        }
        vlp_tape_no_grad_end(&t);
    }
    /* Each row was written by one rank, zeros elsewhere: a sum gathers them. */
    if (!rc) {
        vlp_dist_allreduce_sum(d, img, (size_t)ds->n * D);
        vlp_dist_allreduce_sum(d, txt, (size_t)ds->n * D);
        vlp_dist_allreduce_sum(d, done, (size_t)ds->n);
        for (long i = 0; i < ds->n; i++) read[i] = done[i] > 0.0f;
    }
    free(done);
    vlp_tape_free(&t);
    free(ids);
    vlp_loader_close(l);
    return rc;
}

long vlp_eval_keep_read(vlp_dataset *view, const vlp_dataset *ds, const bool *read, float *img, float *txt,
                        int D) {
    *view = *ds;
    view->samples = malloc(sizeof *view->samples * ((size_t)ds->n + 1));
    VLP_ASSERT(view->samples, "out of memory for %ld samples", ds->n);
    long n = 0;
    for (long i = 0; i < ds->n; i++) {
        if (!read[i]) continue;
        view->samples[n] = ds->samples[i];
        if (n != i) {
            memmove(img + n * D, img + i * D, sizeof(float) * D);
            memmove(txt + n * D, txt + i * D, sizeof(float) * D);
        }
        n++;
    }
    view->n = n;
    return ds->n - n;
}

void vlp_eval_view_free(vlp_dataset *view) {
    free(view->samples);
    memset(view, 0, sizeof *view);
}

int vlp_eval_embed_texts(const vlp_model *m, const vlp_tokenizer *tok, const char *const *texts, long n,
                         int batch, float *out) {
    int ctx = m->context_length, D = m->embed_dim;
    int *ids = malloc(sizeof(int) * (size_t)batch * ctx);
    if (!ids) return vlp_error_set(VLP_ENOMEM, "out of memory for %d texts of %d tokens", batch, ctx);
    vlp_tape t;
    vlp_tape_init(&t);
    int rc = VLP_OK;
    for (long start = 0; start < n && !rc; start += batch) {
        int B = (int)(n - start < batch ? n - start : batch);
        for (int j = 0; j < B && !rc; j++) rc = vlp_tokenizer_encode(tok, texts[start + j], ids + (long)j * ctx, ctx, NULL);
        if (rc) break;
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *f = vlp_model_encode_text(m, &t, ids, B);
        memcpy(out + start * D, f->data, sizeof(float) * (size_t)B * D);
        vlp_tape_no_grad_end(&t);
    }
    vlp_tape_free(&t);
    free(ids);
    return rc;
}

int vlp_eval_class_embeddings(const vlp_model *m, const vlp_tokenizer *tok,
                              const char *const *classes, int n_classes,
                              const char *const *templates, int n_templates, float *out) {
    static const char *const fallback[] = {VLP_DEFAULT_TEMPLATE};
    if (!templates || n_templates == 0) templates = fallback, n_templates = 1;
    int ctx = m->context_length, D = m->embed_dim;
    int *ids = malloc(sizeof(int) * n_templates * ctx);
    char prompt[1024];
    vlp_tape t;
    vlp_tape_init(&t);
    int rc = VLP_OK;
    for (int c = 0; c < n_classes && !rc; c++) {
        for (int k = 0; k < n_templates && !rc; k++) {
            const char *hole = strstr(templates[k], "{}");
            if (hole) snprintf(prompt, sizeof prompt, "%.*s%s%s", (int)(hole - templates[k]),
                               templates[k], classes[c], hole + 2);
            else snprintf(prompt, sizeof prompt, "%s %s", templates[k], classes[c]);
            rc = vlp_tokenizer_encode(tok, prompt, ids + (long)k * ctx, ctx, NULL);
        }
        if (rc) break;
        vlp_tape_reset(&t);
        vlp_tape_no_grad_begin(&t);
        vlp_tensor *f = vlp_model_encode_text(m, &t, ids, n_templates);
        vlp_tensor *mean = vlp_op_mean_last(&t, vlp_op_transpose(&t, f)); /* (D) */
        vlp_tensor *unit = vlp_op_l2_normalize(&t, mean);
        memcpy(out + (long)c * D, unit->data, sizeof(float) * D);
        vlp_tape_no_grad_end(&t);
    }
    vlp_tape_free(&t);
    free(ids);
    return rc;
}

void vlp_eval_zeroshot(const float *img, const int *labels, long n, const float *classes,
                       int n_classes, int D, vlp_zeroshot_result *r) {
    memset(r, 0, sizeof *r);
    r->n_classes = n_classes, r->n = n;
    r->per_class = calloc((size_t)n_classes, sizeof *r->per_class);
    r->confusion = calloc((size_t)n_classes * n_classes, sizeof *r->confusion);
    float *sim = malloc(sizeof(float) * n_classes);
    long *count = calloc((size_t)n_classes, sizeof *count);
    VLP_ASSERT(r->per_class && r->confusion && sim && count, "out of memory");
    long top1 = 0, top5 = 0;
    for (long i = 0; i < n; i++) {
        vlp_gemm(false, true, 1, n_classes, D, 1.0f, img + i * D, D, classes, D, 0.0f, sim, n_classes);
        int best = 0, above = 0, y = labels[i];
        for (int c = 1; c < n_classes; c++)
            if (sim[c] > sim[best]) best = c;
        for (int c = 0; c < n_classes; c++) above += sim[c] > sim[y];
        top1 += best == y;
        top5 += above < 5;
        r->confusion[(long)y * n_classes + best]++;
        count[y]++;
        r->per_class[y] += best == y;
    }
    for (int c = 0; c < n_classes; c++) r->per_class[c] = count[c] ? r->per_class[c] / count[c] : 0;
    r->top1 = n ? (double)top1 / n : 0, r->top5 = n ? (double)top5 / n : 0;
    free(sim);
    free(count);
}

void vlp_zeroshot_result_free(vlp_zeroshot_result *r) {
    free(r->per_class);
    free(r->confusion);
    memset(r, 0, sizeof *r);
}

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* For each query row of q against all rows of k: the rank of its best match. */
static void ranks(const float *q, const float *k, const int *groups, long n, int D, long *rank) {
    float *sim = malloc(sizeof(float) * n);
    VLP_ASSERT(sim, "out of memory");
    for (long i = 0; i < n; i++) {
        vlp_gemm(false, true, 1, (int)n, D, 1.0f, q + i * D, D, k, D, 0.0f, sim, (int)n);
        float best = -2.0f; /* the best similarity of a match */
        for (long j = 0; j < n; j++)
            if ((groups ? groups[j] == groups[i] : j == i) && sim[j] > best) best = sim[j];
        long above = 0;
        for (long j = 0; j < n; j++) above += sim[j] > best;
        rank[i] = above + 1;
    }
    free(sim);
}

static void summarise(long *rank, long n, double *r1, double *r5, double *r10, double *mean,
                      double *median) {
    long a = 0, b = 0, c = 0;
    double sum = 0;
    for (long i = 0; i < n; i++) {
        a += rank[i] <= 1, b += rank[i] <= 5, c += rank[i] <= 10;
        sum += rank[i];
    }
    qsort(rank, (size_t)n, sizeof *rank, cmp_long);
    *r1 = (double)a / n, *r5 = (double)b / n, *r10 = (double)c / n;
    *mean = sum / n;
    *median = n % 2 ? rank[n / 2] : 0.5 * (rank[n / 2 - 1] + rank[n / 2]);
}

/* The expected R@k of a random ranking: a query with g matches among n
 * misses the top k with probability C(n-g, k) / C(n, k). */
static double chance_recall(const int *groups, long n, int k) {
    int *sorted = malloc(sizeof(int) * n);
    VLP_ASSERT(sorted, "out of memory");
    for (long i = 0; i < n; i++) sorted[i] = groups ? groups[i] : (int)i;
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_int);
    double sum = 0.0;
    for (long i = 0; i < n;) {
        long g = 1;
        while (i + g < n && sorted[i + g] == sorted[i]) g++;
        double miss = 1.0;
        for (long j = 0; j < k && j < n; j++) miss *= (double)(n - g - j) / (double)(n - j);
        if (miss < 0.0) miss = 0.0;
        sum += (double)g * (1.0 - miss); /* g queries have this group */
        i += g;
    }
    free(sorted);
    return sum / (double)n;
}

void vlp_eval_retrieval(const float *img, const float *txt, const int *groups, long n, int D,
                        vlp_retrieval_result *r) {
    memset(r, 0, sizeof *r);
    r->n = n;
    if (n == 0) return;
    long *rank = malloc(sizeof(long) * n);
    VLP_ASSERT(rank, "out of memory");
    ranks(img, txt, groups, n, D, rank);
    summarise(rank, n, &r->i2t_r1, &r->i2t_r5, &r->i2t_r10, &r->i2t_mean_rank, &r->i2t_median_rank);
    ranks(txt, img, groups, n, D, rank);
    summarise(rank, n, &r->t2i_r1, &r->t2i_r5, &r->t2i_r10, &r->t2i_mean_rank, &r->t2i_median_rank);
    free(rank);
    r->chance_r1 = chance_recall(groups, n, 1);
    r->chance_r5 = chance_recall(groups, n, 5);
    r->chance_r10 = chance_recall(groups, n, 10);
}

int vlp_eval_during_training(vlp_trainer *t) {
    const vlp_config *c = &t->cfg;
    if (!t->val.n || (!t->n_classnames && !c->eval.retrieval)) return VLP_OK;
    int D = c->model.embed_dim;
    float *img = malloc(sizeof(float) * t->val.n * D), *txt = malloc(sizeof(float) * t->val.n * D);
    bool *read = malloc(sizeof(bool) * (size_t)t->val.n);
    VLP_ASSERT(img && txt && read, "out of memory for %ld validation features", t->val.n);
    int rc = vlp_eval_embed(&t->model, t->tok, &t->val, t->dist, c->eval.batch_size, c->data.workers, img, txt, read);
    /* only the samples whose image was read count */
    vlp_dataset val;
    long unreadable = vlp_eval_keep_read(&val, &t->val, read, img, txt, D), n = val.n;
    free(read);
    char line[512] = "";
    FILE *m = t->dist->rank == 0 ? t->metrics : NULL;
    if (m) fprintf(m, "{\"step\": %ld, \"eval\": {\"samples\": %ld, \"unreadable\": %ld", t->step, n, unreadable);
    if (!rc && t->n_classnames) {
        const char *const *tmpl = (const char *const *)t->templates; /* NULL: the default */
        int n_tmpl = t->templates ? t->n_templates : 0;
        float *cls = malloc(sizeof(float) * t->n_classnames * D);
        int *labels = malloc(sizeof(int) * n);
        for (long i = 0; i < n; i++) labels[i] = val.samples[i].class_id;
        rc = vlp_eval_class_embeddings(&t->model, t->tok, (const char *const *)t->classnames,
                                       t->n_classnames, tmpl, n_tmpl, cls);
        if (!rc) {
            vlp_zeroshot_result r;
            vlp_eval_zeroshot(img, labels, n, cls, t->n_classnames, D, &r);
            snprintf(line, sizeof line, "zero-shot top-1 %.2f%% top-5 %.2f%%", 100 * r.top1, 100 * r.top5);
            if (m) fprintf(m, ", \"zeroshot_top1\": %.6f, \"zeroshot_top5\": %.6f", r.top1, r.top5);
            vlp_zeroshot_result_free(&r);
        }
        free(cls), free(labels);
    }
    if (!rc && c->eval.retrieval) {
        int *groups = NULL;
        if (c->eval.retrieval == VLP_RETRIEVAL_CONCEPT) {
            groups = malloc(sizeof(int) * n);
            for (long i = 0; i < n; i++) groups[i] = val.samples[i].concept_id;
        }
        vlp_retrieval_result r;
        vlp_eval_retrieval(img, txt, groups, n, D, &r);
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%sretrieval R@1 i2t %.2f%% t2i %.2f%%, R@5 i2t %.2f%% t2i %.2f%%",
                 len ? "; " : "", 100 * r.i2t_r1, 100 * r.t2i_r1, 100 * r.i2t_r5, 100 * r.t2i_r5);
        if (m) fprintf(m, ", \"i2t_r1\": %.6f, \"i2t_r5\": %.6f, \"i2t_r10\": %.6f, \"t2i_r1\": %.6f, "
                       "\"t2i_r5\": %.6f, \"t2i_r10\": %.6f", r.i2t_r1, r.i2t_r5, r.i2t_r10, r.t2i_r1,
                       r.t2i_r5, r.t2i_r10);
        free(groups);
    }
    if (m) fprintf(m, "}}\n"), fflush(m);
    if (!rc && t->dist->rank == 0)
        printf("eval at step %ld on %s: %s%s\n", t->step, c->data.val, line,
               unreadable ? " (unreadable images left out)" : "");
    vlp_eval_view_free(&val);
    free(img), free(txt);
    return rc;
}
