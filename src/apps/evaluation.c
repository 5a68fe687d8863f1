/* vlpeval's run: a model's evaluation from paths (see evaluation.h). */
#include "apps/evaluation.h"

#include <errno.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "train/checkpoint.h"

/* The lines of a --zeroshot file (NULL path: none), or an error naming
 * the file, what it should hold and why it could not be read. */
static int zeroshot_lines(const char *path, const char *what, const char *form, char ***lines, int *n) {
    *lines = NULL, *n = 0;
    if (!path) return VLP_OK;
    if (!(*lines = vlp_read_lines(path, n))) {
        const char *msg = vlp_error_message(); /* "PATH: reason" from vlp_read_lines */
        size_t len = strlen(path);
        const char *why = !strncmp(msg, path, len) && !strncmp(msg + len, ": ", 2) ? msg + len + 2 : msg;
        return vlp_error_set(VLP_ENOTFOUND, "%s: cannot read the --zeroshot %s: %s", path, what, why);
    }
    if (*n == 0) return vlp_error_set(VLP_EFORMAT, "%s: no %s (%s) for --zeroshot", path, what, form);
    return VLP_OK;
}

int vlp_evaluation_run(const vlp_evaluation_opts *o, const vlp_dist *d, vlp_evaluation *e) {
    memset(e, 0, sizeof *e);
    int rc = vlp_model_load(o->model, &e->model, &e->tok);
    if (rc) return rc;
    if ((rc = vlp_dataset_open(&e->data, o->data, NULL))) goto free_model;
    int n_templates = 0;
    char **classes = NULL, **templates = NULL;
    rc = zeroshot_lines(o->classes, "class names", "one per line", &classes, &e->n_classes);
    if (!rc) rc = zeroshot_lines(o->templates, "templates", "one per line, {} for the class name", &templates,
                                 &n_templates);
    vlp_eval_request q = {.classes = (const char *const *)classes, .n_classes = e->n_classes,
                          .templates = (const char *const *)templates, .n_templates = n_templates,
                          .each_template = true, .details = true, .batch = o->batch, .workers = o->workers,
                          .retrieval = o->retrieval};
    if (!rc) rc = vlp_eval_dataset(&e->model, e->tok, &e->data, d, &q, &e->scores, &e->features);
    if (classes) vlp_free_lines(classes, e->n_classes);
    if (templates) vlp_free_lines(templates, n_templates);
    if (!rc) {
        cJSON_AddStringToObject(e->scores, "model", o->model);
        cJSON_AddStringToObject(e->scores, "data", o->data);
        return VLP_OK;
    }
    vlp_dataset_free(&e->data);
free_model:
    vlp_tokenizer_free(e->tok);
    vlp_model_free(&e->model);
    return rc;
}

int vlp_evaluation_rerank(vlp_evaluation *e, const vlp_dist *d, int k, int workers) {
    cJSON *retrieval = cJSON_GetObjectItem(e->scores, "retrieval");
    if (!retrieval) return vlp_error_set(VLP_EINVAL, "--rerank re-ranks a retrieval: none was run");
    if (d->world > 1) return vlp_error_set(VLP_EINVAL, "--rerank runs in one process");
    const vlp_eval_features *f = &e->features;
    vlp_rerank_result *r = &e->rerank;
    int rc = vlp_eval_rerank(&e->model, e->tok, &f->view, f->img, f->txt, f->groups, k, workers, r);
    if (rc) return rc;
    cJSON *re = cJSON_AddObjectToObject(retrieval, "rerank");
    cJSON_AddNumberToObject(re, "k", r->k);
#define ADD(field) cJSON_AddNumberToObject(re, #field, r->field)
    ADD(i2t_r1), ADD(i2t_r5), ADD(i2t_r10), ADD(t2i_r1), ADD(t2i_r5), ADD(t2i_r10);
#undef ADD
    return VLP_OK;
}

void vlp_evaluation_free(vlp_evaluation *e) {
    cJSON_Delete(e->scores);
    vlp_eval_features_free(&e->features);
    vlp_dataset_free(&e->data);
    vlp_tokenizer_free(e->tok);
    vlp_model_free(&e->model);
    memset(e, 0, sizeof *e);
}
