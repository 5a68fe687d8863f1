/* Multi-label prompts from captions (see labels.h). */
#include "train/labels.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/error.h"
#include "train/config.h"

#define LABELS_MAX 64
#define LABEL_CHARS 64

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vlp_labeler_open(vlp_labeler *l, int rule, const char *nouns_path, const char *templates_path) {
    memset(l, 0, sizeof *l);
    l->rule = rule;
    if (rule == VLP_LABELS_NOUNS) {
        errno = 0;
        l->nouns = vlp_read_lines(nouns_path, &l->n_nouns);
        if (!l->n_nouns) {
            int rc = vlp_error_set(VLP_ECONFIG, "%s: %s", nouns_path, l->nouns ? "no noun in it" : strerror(errno));
            vlp_labeler_close(l);
            return rc;
        }
        for (int i = 0; i < l->n_nouns; i++)
            for (char *p = l->nouns[i]; *p; p++) *p = (char)tolower((unsigned char)*p);
        qsort(l->nouns, (size_t)l->n_nouns, sizeof *l->nouns, cmp_str);
    }
    if (templates_path && templates_path[0]) {
        errno = 0;
        l->templates = vlp_read_lines(templates_path, &l->n_templates);
        if (!l->n_templates) {
            int rc = vlp_error_set(VLP_ECONFIG, "%s: %s", templates_path,
                                   l->templates ? "no template in it" : strerror(errno));
            vlp_labeler_close(l);
            return rc;
        }
    }
    return VLP_OK;
}

void vlp_labeler_close(vlp_labeler *l) {
    if (l->nouns) vlp_free_lines(l->nouns, l->n_nouns);
    if (l->templates) vlp_free_lines(l->templates, l->n_templates);
    memset(l, 0, sizeof *l);
}

/* Adds label (len chars of s) unless empty or already there. */
static void add_label(char labels[][LABEL_CHARS], int *n, const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    if (!len || len >= LABEL_CHARS || *n == LABELS_MAX) return;
    for (int i = 0; i < *n; i++)
        if (strlen(labels[i]) == len && !strncmp(labels[i], s, len)) return;
    memcpy(labels[*n], s, len);
    labels[(*n)++][len] = '\0';
}

int vlp_labeler_prompts(const vlp_labeler *l, const char *caption, int K, char *out, size_t size) {
    char labels[LABELS_MAX][LABEL_CHARS];
    int n = 0;
    if (l->rule == VLP_LABELS_TAGS) {
        const char *colon = strchr(caption, ':');
        for (const char *p = colon ? colon + 1 : NULL; p && *p;) {
            size_t len = strcspn(p, ",");
            add_label(labels, &n, p, len);
            p += len + (p[len] == ',');
        }
    } else {
        for (const char *p = caption; *p;) {
            if (!isalpha((unsigned char)*p)) {
                p++;
                continue;
            }
            char word[LABEL_CHARS];
            size_t len = 0;
            for (; isalpha((unsigned char)*p); p++)
                if (len + 1 < sizeof word) word[len++] = (char)tolower((unsigned char)*p);
            word[len] = '\0';
            const char *key = word;
            if (bsearch(&key, l->nouns, (size_t)l->n_nouns, sizeof *l->nouns, cmp_str))
                add_label(labels, &n, word, len);
        }
    }
    for (int k = 0; k < K; k++) {
        char *dst = out + (size_t)k * size;
        if (!n) {
            snprintf(dst, size, "%s", caption);
            continue;
        }
        const char *label = labels[k % n];
        const char *tmpl = l->n_templates ? l->templates[k % l->n_templates] : VLP_DEFAULT_TEMPLATE;
        const char *hole = strstr(tmpl, "{}");
        if (hole) snprintf(dst, size, "%.*s%s%s", (int)(hole - tmpl), tmpl, label, hole + 2);
        else snprintf(dst, size, "%s %s", tmpl, label);
    }
    return n;
}
