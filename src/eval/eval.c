/* Zero-shot classification and retrieval (see eval.h). */
#include "eval/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
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
    float *done = vlp_calloc((size_t)ds->n + 1, sizeof *done);
    int *ids = vlp_malloc(sizeof(int) * batch * ctx); /* batch checked by the loader */
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
    view->samples = vlp_malloc(sizeof *view->samples * ((size_t)ds->n + 1));
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

/* A sample for messages: its image's path, or its caption (a packed
 * shard's images have no path). */
static const char *sample_name(const vlp_dataset *ds, long i) {
    const vlp_sample *s = &ds->samples[i];
    return s->path && s->path[0] ? s->path : s->caption ? s->caption : "";
}

static long first_nonfinite(const float *x, long n) {
    for (long i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

int vlp_eval_check_finite(const vlp_dataset *ds, const float *img, const float *txt, int D) {
    for (long i = 0; i < ds->n; i++) {
        if (img && first_nonfinite(img + i * D, D) >= 0)
            return vlp_error_set(VLP_EFORMAT, "%s: the embedding of image %s (sample %ld) is not finite "
                                 "(NaN or infinity): the model's output cannot be used", ds->source,
                                 sample_name(ds, i), i);
        if (txt && first_nonfinite(txt + i * D, D) >= 0)
            return vlp_error_set(VLP_EFORMAT, "%s: the embedding of caption '%s' (sample %ld) is not finite "
                                 "(NaN or infinity): the model's output cannot be used", ds->source,
                                 ds->samples[i].caption ? ds->samples[i].caption : "", i);
    }
    return VLP_OK;
}

void vlp_eval_view_free(vlp_dataset *view) {
    free(view->samples);
    memset(view, 0, sizeof *view);
}

int vlp_eval_embed_texts(const vlp_model *m, const vlp_tokenizer *tok, const char *const *texts, long n,
                         int batch, float *out) {
    int ctx = m->context_length, D = m->embed_dim;
    if (batch < 1) return vlp_error_set(VLP_EINVAL, "embedding texts in batches of %d", batch);
    int *ids = vlp_malloc(sizeof(int) * (size_t)batch * ctx);
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
        for (int j = 0; j < B && !rc; j++)
            if (first_nonfinite(out + (start + j) * D, D) >= 0)
                rc = vlp_error_set(VLP_EFORMAT, "the embedding of text %ld ('%s') is not finite (NaN or "
                                   "infinity): the model's output cannot be used", start + j + 1, texts[start + j]);
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
    int *ids = vlp_malloc(sizeof(int) * n_templates * ctx);
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
        if (first_nonfinite(out + (long)c * D, D) >= 0)
            rc = vlp_error_set(VLP_EFORMAT, "the embedding of class '%s' is not finite (NaN or infinity): the "
                               "model's output cannot be used", classes[c]);
    }
    vlp_tape_free(&t);
    free(ids);
    return rc;
}

void vlp_eval_zeroshot(const float *img, const int *labels, long n, const float *classes,
                       int n_classes, int D, vlp_zeroshot_result *r) {
    memset(r, 0, sizeof *r);
    r->n_classes = n_classes, r->n = n;
    r->per_class = vlp_calloc((size_t)n_classes, sizeof *r->per_class);
    r->confusion = vlp_calloc((size_t)n_classes * n_classes, sizeof *r->confusion);
    float *sim = vlp_malloc(sizeof(float) * n_classes);
    long *count = vlp_calloc((size_t)n_classes, sizeof *count);
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

bool vlp_retrieval_at_least(float a, float b) {
    float m = fabsf(b) > 1.0f ? fabsf(b) : 1.0f;
    return a >= b - VLP_RETRIEVAL_TIE * m;
}

long vlp_retrieval_rank(const float *sim, long stride, const int *groups, long q, long n) {
    float best = -INFINITY;
    for (long j = 0; j < n; j++)
        if ((groups ? groups[j] == groups[q] : j == q) && sim[j * stride] > best) best = sim[j * stride];
    long ahead = 0;
    for (long j = 0; j < n; j++)
        ahead += !(groups ? groups[j] == groups[q] : j == q) && vlp_retrieval_at_least(sim[j * stride], best);
    return ahead + 1;
}

/* For each query row of q against all rows of k: the rank of its best match. */
static void ranks(const float *q, const float *k, const int *groups, long n, int D, long *rank) {
    float *sim = vlp_malloc(sizeof(float) * n);
    for (long i = 0; i < n; i++) {
        vlp_gemm(false, true, 1, (int)n, D, 1.0f, q + i * D, D, k, D, 0.0f, sim, (int)n);
        rank[i] = vlp_retrieval_rank(sim, 1, groups, i, n);
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
    int *sorted = vlp_malloc(sizeof(int) * n);
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
    long *rank = vlp_malloc(sizeof(long) * n);
    ranks(img, txt, groups, n, D, rank);
    summarise(rank, n, &r->i2t_r1, &r->i2t_r5, &r->i2t_r10, &r->i2t_mean_rank, &r->i2t_median_rank);
    ranks(txt, img, groups, n, D, rank);
    summarise(rank, n, &r->t2i_r1, &r->t2i_r5, &r->t2i_r10, &r->t2i_mean_rank, &r->t2i_median_rank);
    free(rank);
    r->chance_r1 = chance_recall(groups, n, 1);
    r->chance_r5 = chance_recall(groups, n, 5);
    r->chance_r10 = chance_recall(groups, n, 10);
}

void vlp_eval_features_free(vlp_eval_features *f) {
    free(f->img), free(f->txt), free(f->groups);
    vlp_eval_view_free(&f->view);
    memset(f, 0, sizeof *f);
}

/* Zero-shot into z: the prompt ensemble, then (q->each_template) each template alone. */
static int zeroshot_json(const vlp_model *m, const vlp_tokenizer *tok, const vlp_eval_request *q, const float *img,
                         const int *labels, long n, cJSON *z) {
    static const char *const fallback[] = {VLP_DEFAULT_TEMPLATE};
    const char *const *tmpl = q->templates && q->n_templates ? q->templates : fallback;
    int D = m->embed_dim, K = q->n_classes, T = q->templates && q->n_templates ? q->n_templates : 1;
    float *cls = vlp_malloc(sizeof(float) * (size_t)K * D);
    cJSON *single = q->each_template ? cJSON_AddArrayToObject(z, "single_template") : NULL;
    int rc = VLP_OK;
    for (int k = -1; k < (single ? T : 0) && !rc; k++) {
        rc = vlp_eval_class_embeddings(m, tok, q->classes, K, k < 0 ? tmpl : tmpl + k, k < 0 ? T : 1, cls);
        if (rc) break;
        vlp_zeroshot_result r;
        vlp_eval_zeroshot(img, labels, n, cls, K, D, &r);
        if (k >= 0) {
            cJSON *one = cJSON_CreateObject();
            cJSON_AddStringToObject(one, "template", tmpl[k]);
            cJSON_AddNumberToObject(one, "top1", r.top1);
            cJSON_AddItemToArray(single, one);
        } else {
            cJSON_AddNumberToObject(z, "top1", r.top1);
            cJSON_AddNumberToObject(z, "top5", r.top5);
            cJSON_AddNumberToObject(z, "templates", T);
            cJSON_AddNumberToObject(z, "classes", K);
        }
        if (k < 0 && q->details) {
            cJSON *pc = cJSON_AddObjectToObject(z, "per_class"), *conf = cJSON_AddArrayToObject(z, "confusion");
            for (int c = 0; c < K; c++) {
                cJSON_AddNumberToObject(pc, q->classes[c], r.per_class[c]);
                cJSON *row = cJSON_CreateArray();
                for (int p = 0; p < K; p++) cJSON_AddItemToArray(row, cJSON_CreateNumber((double)r.confusion[(long)c * K + p]));
                cJSON_AddItemToArray(conf, row);
            }
        }
        vlp_zeroshot_result_free(&r);
    }
    free(cls);
    return rc;
}

int vlp_eval_dataset(const vlp_model *m, const vlp_tokenizer *tok, const vlp_dataset *ds, const vlp_dist *d,
                     const vlp_eval_request *q, cJSON **out, vlp_eval_features *keep) {
    *out = NULL;
    int D = m->embed_dim;
    vlp_eval_features f = {0};
    f.img = vlp_malloc(sizeof(float) * ((size_t)ds->n * D + 1));
    f.txt = vlp_malloc(sizeof(float) * ((size_t)ds->n * D + 1));
    bool *read = vlp_malloc(sizeof(bool) * ((size_t)ds->n + 1));
    int *labels = NULL, rc = VLP_OK;
    /* Class ids first: a missing one should not cost an embedding pass. */
    for (long i = 0; i < ds->n && q->n_classes > 0 && !rc; i++) {
        int id = ds->samples[i].class_id;
        if (id < 0)
            rc = vlp_error_set(VLP_EFORMAT, "%s: sample %ld (%s) has no class id: zero-shot classification "
                               "needs one for every sample (a class_id column in the manifest, or a folder "
                               "of class folders)", ds->source, i, sample_name(ds, i));
        else if (id >= q->n_classes)
            rc = vlp_error_set(VLP_EFORMAT, "%s: sample %ld (%s) has class id %d, not one of the %d class names",
                               ds->source, i, sample_name(ds, i), id, q->n_classes);
    }
    if (rc) goto done;
    if ((rc = vlp_eval_embed(m, tok, ds, d, q->batch, q->workers, f.img, f.txt, read))) goto done;
    /* from here on only the samples whose image was read: no number counts the others */
    f.unreadable = vlp_eval_keep_read(&f.view, ds, read, f.img, f.txt, D);
    long n = f.view.n;
    if ((rc = vlp_eval_check_finite(&f.view, f.img, f.txt, D))) goto done;
    cJSON *o = *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples", (double)n);
    cJSON_AddNumberToObject(o, "unreadable", (double)f.unreadable);
    if (q->n_classes > 0) {
        labels = vlp_malloc(sizeof(int) * ((size_t)n + 1));
        for (long i = 0; i < n && !rc; i++) {
            labels[i] = f.view.samples[i].class_id; /* checked before embedding */
        }
        if (!rc) rc = zeroshot_json(m, tok, q, f.img, labels, n, cJSON_AddObjectToObject(o, "zeroshot"));
    }
    if (!rc && q->retrieval != VLP_RETRIEVAL_NONE) {
        if (q->retrieval == VLP_RETRIEVAL_CONCEPT) {
            f.groups = vlp_malloc(sizeof(int) * ((size_t)n + 1));
            for (long i = 0; i < n && !rc; i++)
                if ((f.groups[i] = f.view.samples[i].concept_id) < 0)
                    rc = vlp_error_set(VLP_EFORMAT, "%s: sample %ld has no concept_id (retrieval by concept needs one)",
                                       ds->source, i);
        }
        if (!rc) {
            vlp_retrieval_result r;
            vlp_eval_retrieval(f.img, f.txt, f.groups, n, D, &r);
            cJSON *rt = cJSON_AddObjectToObject(o, "retrieval");
            cJSON_AddStringToObject(rt, "match", q->retrieval == VLP_RETRIEVAL_CONCEPT ? "concept" : "pair");
#define ADD(field) cJSON_AddNumberToObject(rt, #field, r.field)
            ADD(chance_r1), ADD(chance_r5), ADD(chance_r10);
            ADD(i2t_r1), ADD(i2t_r5), ADD(i2t_r10), ADD(i2t_mean_rank), ADD(i2t_median_rank);
            ADD(t2i_r1), ADD(t2i_r5), ADD(t2i_r10), ADD(t2i_mean_rank), ADD(t2i_median_rank);
#undef ADD
        }
    }
done:
    free(read), free(labels);
    if (rc) cJSON_Delete(*out), *out = NULL;
    if (!rc && keep) *keep = f;
    else vlp_eval_features_free(&f);
    return rc;
}

/* A number of obj's member object (NAN when absent). */
static double member(const cJSON *obj, const char *object, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, object), key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

int vlp_eval_during_training(vlp_trainer *t) {
    const vlp_config *c = &t->cfg;
    if (!t->val.n || (!t->n_classnames && !c->eval.retrieval)) return VLP_OK;
    vlp_eval_request q = {.classes = (const char *const *)t->classnames, .n_classes = t->n_classnames,
                          .templates = (const char *const *)t->templates, .n_templates = t->n_templates,
                          .retrieval = c->eval.retrieval, .batch = c->eval.batch_size, .workers = c->data.workers};
    cJSON *r;
    int rc = vlp_eval_dataset(&t->model, t->tok, &t->val, t->dist, &q, &r, NULL);
    if (rc || t->dist->rank != 0) return cJSON_Delete(r), rc;
    /* metrics.jsonl: {"step", "eval": {...}} with flat keys, as vlpreport plots them */
    char line[512] = "";
    cJSON *log = cJSON_CreateObject();
    cJSON_AddNumberToObject(log, "step", (double)t->step); /* first: resuming reads it so */
    cJSON *e = cJSON_AddObjectToObject(log, "eval");
    cJSON_AddNumberToObject(e, "samples", cJSON_GetObjectItem(r, "samples")->valuedouble);
    cJSON_AddNumberToObject(e, "unreadable", cJSON_GetObjectItem(r, "unreadable")->valuedouble);
    if (t->n_classnames) {
        double top1 = member(r, "zeroshot", "top1"), top5 = member(r, "zeroshot", "top5");
        cJSON_AddNumberToObject(e, "zeroshot_top1", top1);
        cJSON_AddNumberToObject(e, "zeroshot_top5", top5);
        snprintf(line, sizeof line, "zero-shot top-1 %.2f%% top-5 %.2f%%", 100 * top1, 100 * top5);
    }
    if (c->eval.retrieval) {
        static const char *keys[] = {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"};
        for (int k = 0; k < 6; k++) cJSON_AddNumberToObject(e, keys[k], member(r, "retrieval", keys[k]));
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%sretrieval R@1 i2t %.2f%% t2i %.2f%%, R@5 i2t %.2f%% t2i %.2f%%",
                 len ? "; " : "", 100 * member(r, "retrieval", "i2t_r1"), 100 * member(r, "retrieval", "t2i_r1"),
                 100 * member(r, "retrieval", "i2t_r5"), 100 * member(r, "retrieval", "t2i_r5"));
    }
    if (t->metrics) {
        char *text = cJSON_PrintUnformatted(log);
        if (text) fprintf(t->metrics, "%s\n", text), fflush(t->metrics);
        free(text);
    }
    printf("eval at step %ld on %s: %s%s\n", t->step, c->data.val, line,
           member(log, "eval", "unreadable") > 0 ? " (unreadable images left out)" : "");
    cJSON_Delete(log), cJSON_Delete(r);
    return VLP_OK;
}
