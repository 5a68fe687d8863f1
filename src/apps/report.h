/* vlpreport's page: one self-contained HTML file per run folder (no network,
 * no files beside it): curves of every logged metric drawn as inline SVG,
 * validation images beside their top retrieved captions, the final
 * metrics and the configuration. Reads what vlptrain wrote; trains nothing. */
#ifndef VLP_REPORT_H
#define VLP_REPORT_H

typedef struct vlp_report_opts {
    int images;   /* validation images in the grid (0: none) */
    int captions; /* retrieved captions shown per image */
} vlp_report_opts;

int vlp_report_write(const char *run_dir, const char *out_path, const vlp_report_opts *o);

#endif
