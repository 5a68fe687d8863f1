/* GroupViT's multi-label prompts: the labels of a caption by a simple rule
 * ([groupvit] labels: its emoji-style tags, or its words found in a list of
 * nouns), each put into a prompt template. GroupViT's own code takes nouns
 * with a part-of-speech tagger; a list given by the user is the C-sized
 * stand-in. Not tokenizing: the trainer does that. */
#ifndef VLP_LABELS_H
#define VLP_LABELS_H

#include <stddef.h>

typedef struct vlp_labeler {
    int rule;      /* VLP_LABELS_* */
    char **nouns;  /* sorted, lower case */
    int n_nouns;
    char **templates; /* "a photo of a {}." */
    int n_templates;
} vlp_labeler;

/* nouns_path: one noun per line (rule nouns); templates_path: one template
 * per line with {} for the label, or "" for "a photo of a {}.". */
int vlp_labeler_open(vlp_labeler *l, int rule, const char *nouns_path, const char *templates_path);
void vlp_labeler_close(vlp_labeler *l);

/* The K prompts of a caption into out (K strings of size each): label k
 * mod n in template k mod n_templates, labels distinct and in caption
 * order; a caption without labels is its own prompt, K times. Returns the
 * number of labels found. */
int vlp_labeler_prompts(const vlp_labeler *l, const char *caption, int K, char *out, size_t size);

#endif
