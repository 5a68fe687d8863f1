/* The run report (see report.h). */
#include "apps/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/error.h"
#include "base/mem.h"
#include "autograd/kernels.h"
#include "train/checkpoint.h"
#include "eval/eval.h"
#include "apps/html.h"

/* One curve: (step, value) points of one metric. */
typedef struct series {
    char name[64];
    double *x, *y;
    int n, cap;
} series;

typedef struct curves {
    series *s;
    int n, cap;
} curves;

static series *find_series(curves *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->s[i].name, name)) return &c->s[i];
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->s = vlp_realloc(c->s, sizeof *c->s * c->cap);
    }
    series *s = &c->s[c->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static void add_point(curves *c, const char *name, double x, double y) {
    if (!isfinite(y)) return;
    series *s = find_series(c, name);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = vlp_realloc(s->x, sizeof(double) * s->cap);
        s->y = vlp_realloc(s->y, sizeof(double) * s->cap);
    }
    s->x[s->n] = x, s->y[s->n] = y, s->n++;
}

/* Every numeric field of metrics.jsonl, training lines and "eval" objects. */
static int read_metrics(const char *path, curves *c) {
    char *text = vlp_read_text(path);
    if (!text) return vlp_error_set(VLP_ENOTFOUND, "%s: no metrics (has vlptrain run?)", path);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        cJSON *step = cJSON_GetObjectItem(j, "step");
        if (!j || !cJSON_IsNumber(step)) {
            cJSON_Delete(j);
            continue;
        }
        cJSON *eval = cJSON_GetObjectItem(j, "eval"), *fields = eval ? eval : j, *item;
        cJSON_ArrayForEach(item, fields) {
            if (!cJSON_IsNumber(item) || !strcmp(item->string, "step") || !strcmp(item->string, "epoch") ||
                !strcmp(item->string, "elapsed_s") || !strcmp(item->string, "samples") ||
                !strcmp(item->string, "epoch_done"))
                continue;
            char name[64];
            snprintf(name, sizeof name, "%s%s", eval ? "eval " : "", item->string);
            add_point(c, name, step->valuedouble, item->valuedouble);
        }
        cJSON_Delete(j);
    }
    free(text);
    return VLP_OK;
}

/* A line chart in SVG: the series, its range, a smoothed line for noisy
 * training curves. */
static void chart(FILE *f, const series *s) {
    const int W = 360, H = 200, L = 62, R = 10, T = 24, B = 28;
    double x0 = s->x[0], x1 = s->x[s->n - 1], y0 = s->y[0], y1 = s->y[0];
    for (int i = 0; i < s->n; i++) y0 = fmin(y0, s->y[i]), y1 = fmax(y1, s->y[i]);
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + fabs(y0) * 0.01 + 1e-9;
#define PX(v) (L + (double)((v) - x0) / (x1 - x0) * (W - L - R))
#define PY(v) (T + (1.0 - ((v) - y0) / (y1 - y0)) * (H - T - B))
    fprintf(f, "<svg class=\"chart\" data-points=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
               "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><text x=\"%d\" y=\"15\" font-size=\"13\" font-weight=\"bold\">",
            s->n, W, H, W, H, W, H, L);
    vlp_html_text(f, s->name);
    fprintf(f, "</text><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
               "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>",
            L, H - B, W - R, H - B, L, T, L, H - B);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.4g</text>", L - 4, T + 4, y1);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.4g</text>", L - 4, H - B, y0);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\">step %.0f</text>", L, H - 8, x0);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.0f</text>", W - R, H - 8, x1);
    /* Smooth only a noisy curve (loss, gradient norm): one whose path
     * length is many times its range; a smooth one (lr) would only lag. */
    double path = 0;
    for (int i = 1; i < s->n; i++) path += fabs(s->y[i] - s->y[i - 1]);
    bool noisy = s->n > 50 && path > 6 * (y1 - y0);
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1\" points=\"", noisy ? "#9ecae1" : "#1f77b4");
    for (int i = 0; i < s->n; i++) fprintf(f, "%.1f,%.1f ", PX(s->x[i]), PY(s->y[i]));
    fputs("\"/>", f);
    if (noisy) { /* an exponential moving average over the raw points */
        double ema = s->y[0], a = 10.0 / s->n < 0.2 ? 10.0 / s->n : 0.2;
        fputs("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"", f);
        for (int i = 0; i < s->n; i++) {
            ema = a * s->y[i] + (1 - a) * ema;
            fprintf(f, "%.1f,%.1f ", PX(s->x[i]), PY(ema));
        }
        fputs("\"/>", f);
    }
    if (s->n < 30)
        for (int i = 0; i < s->n; i++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"/>", PX(s->x[i]), PY(s->y[i]));
    fputs("</svg>\n", f);
#undef PX
#undef PY
}

/* Validation images, each with the captions the model ranks first among all
 * of the validation captions; the true caption in bold. */
static int image_grid(FILE *f, const char *run_dir, const vlp_config *cfg, const vlp_report_opts *o) {
    vlp_model m;
    vlp_tokenizer *tok;
    vlp_dataset ds;
    int rc = vlp_model_load(run_dir, &m, &tok);
    if (rc) return rc;
    if ((rc = vlp_dataset_open(&ds, cfg->data.val, NULL))) {
        vlp_model_free(&m), vlp_tokenizer_free(tok);
        return rc;
    }
    int D = m.embed_dim;
    float *img = vlp_malloc(sizeof(float) * ds.n * D), *txt = vlp_malloc(sizeof(float) * ds.n * D);
    float *sim = vlp_malloc(sizeof(float) * ds.n);
    vlp_dist alone = {.rank = 0, .world = 1};
    bool *read = vlp_malloc(sizeof(bool) * ((size_t)ds.n + 1));
    rc = vlp_eval_embed(&m, tok, &ds, &alone, 256, 2, img, txt, read);
    /* the page shows and ranks only what was read */
    vlp_dataset all = ds;
    vlp_eval_keep_read(&ds, &all, read, img, txt, D);
    free(read);
    /* Distinct captions only: a class-name caption repeated 1000 times is one candidate. */
    long *first = vlp_malloc(sizeof(long) * ds.n), n_unique = 0;
    for (long i = 0; i < ds.n && !rc; i++) {
        bool seen = false;
        for (long u = 0; u < n_unique && !seen; u++) seen = !strcmp(ds.samples[first[u]].caption, ds.samples[i].caption);
        if (!seen) first[n_unique++] = i;
        if (n_unique > 5000) break;
    }
    fprintf(f, "<h2>Validation images and their top captions</h2><p>%s: each image with the %d captions "
               "the model ranks first among the %ld distinct validation captions; the true one in bold.</p>\n<div class=\"grid\">",
            cfg->data.val, o->captions, n_unique);
    long step = ds.n / o->images > 0 ? ds.n / o->images : 1;
    for (long i = 0, shown = 0; i < ds.n && shown < o->images && !rc; i += step, shown++) {
        for (long u = 0; u < n_unique; u++) {
            sim[u] = 0;
            for (int d = 0; d < D; d++) sim[u] += img[i * D + d] * txt[first[u] * D + d];
        }
        vlp_image im;
        fputs("<figure>", f);
        if (vlp_dataset_image(&ds, i, &im, NULL) == VLP_OK) {
            vlp_html_image(f, &im, 96, ds.samples[i].caption);
            vlp_image_free(&im);
        }
        fputs("<figcaption><ol>", f);
        for (int r = 0; r < o->captions && r < n_unique; r++) {
            long best = -1;
            for (long u = 0; u < n_unique; u++)
                if (sim[u] > -2 && (best < 0 || sim[u] > sim[best])) best = u;
            bool truth = !strcmp(ds.samples[first[best]].caption, ds.samples[i].caption);
            fprintf(f, "<li>%s", truth ? "<b>" : "");
            vlp_html_text(f, ds.samples[first[best]].caption);
            fprintf(f, "%s <small>%.3f</small></li>", truth ? "</b>" : "", sim[best]);
            sim[best] = -3;
        }
        fputs("</ol></figcaption></figure>\n", f);
    }
    fputs("</div>\n", f);
    free(img), free(txt), free(sim), free(first);
    vlp_eval_view_free(&ds);
    vlp_dataset_free(&all);
    vlp_tokenizer_free(tok);
    vlp_model_free(&m);
    return rc;
}

int vlp_report_write(const char *run_dir, const char *out_path, const vlp_report_opts *o) {
    char path[VLP_PATH_MAX + 32];
    curves c = {0};
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    int rc = read_metrics(path, &c);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/config.ini", run_dir);
    char *config_text = vlp_read_text(path);
    vlp_config cfg;
    if (!config_text || vlp_config_parse_text(&cfg, config_text, path)) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: missing or unreadable", path);
        goto done;
    }
    FILE *f = fopen(out_path, "w");
    if (!f) {
        rc = vlp_error_set(VLP_EIO, "%s: cannot write", out_path);
        goto done;
    }
    fputs("<!doctype html><html><head><meta charset=\"utf-8\"><title>vlp run report</title><style>"
          "body{font-family:sans-serif;margin:2em;color:#222}svg.chart{margin:6px;border:1px solid #ddd}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
          ".grid figure{display:inline-block;width:300px;margin:8px;vertical-align:top}"
          "figure img{float:left;margin-right:8px}ol{font-size:12px;margin:0;padding-left:1.2em}"
          "pre{background:#f6f6f6;padding:1em;font-size:12px}</style></head><body>\n<h1>", f);
    vlp_html_text(f, run_dir);
    fputs("</h1>\n<h2>Final metrics</h2><table><tr><th>metric</th><th>step</th><th>value</th></tr>\n", f);
    for (int i = 0; i < c.n; i++) {
        fputs("<tr><td style=\"text-align:left\">", f);
        vlp_html_text(f, c.s[i].name);
        fprintf(f, "</td><td>%.0f</td><td>%.6g</td></tr>\n", c.s[i].x[c.s[i].n - 1], c.s[i].y[c.s[i].n - 1]);
    }
    fputs("</table>\n<h2>Curves</h2><div>\n", f);
    for (int i = 0; i < c.n; i++) chart(f, &c.s[i]);
    fputs("</div>\n", f);
    if (o->images > 0 && cfg.data.val[0]) {
        int grid = image_grid(f, run_dir, &cfg, o);
        if (grid) {
            fputs("<p>(no image grid: ", f);
            vlp_html_text(f, vlp_error_message());
            fputs(")</p>", f);
        }
    }
    fputs("<h2>Configuration</h2><pre>", f);
    vlp_html_text(f, config_text);
    fputs("</pre></body></html>\n", f);
    if (fclose(f) != 0) rc = vlp_error_set(VLP_EIO, "%s: write error", out_path);
done:
    for (int i = 0; i < c.n; i++) free(c.s[i].x), free(c.s[i].y);
    free(c.s);
    free(config_text);
    return rc;
}
