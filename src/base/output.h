/* Checks on a program's output path before any work: an output that is one
 * of the inputs (it would be destroyed), or that exists and is not a
 * regular file (a folder, a FIFO, a device), is refused with a message
 * naming the option and both paths. Not the writing itself. */
#ifndef VLP_OUTPUT_H
#define VLP_OUTPUT_H

/* 0, or VLP_EINVAL with a message ("-o x.tsv is the input x.tsv: ...").
 * path NULL (not given) and "-" (stdout) pass. inputs[0..n) may hold NULL
 * or ""; an input that is a folder stands for the files of a run folder in
 * it (model.h5, config.ini, tokenizer.bpe, metrics.jsonl). The check is by
 * device and inode, so other spellings of the same file are caught. */
int vlp_output_check(const char *option, const char *path, const char *const *inputs, int n_inputs);

/* The same for an output folder: empty, or existing and not a folder, is
 * refused; so is an output folder that is one of the inputs. */
int vlp_output_check_dir(const char *option, const char *path, const char *const *inputs, int n_inputs);

/* Removes path.tmp when it is a regular file: a write through path.tmp and
 * rename that a kill cut short leaves it, and the next start that owns
 * path removes it. */
void vlp_output_remove_stale_tmp(const char *path);

#endif
