/* AdamW over a parameter store's flat buffers, global-norm gradient clipping,
 * and the learning-rate schedule (linear warmup, then cosine).
 * Follows torch.optim.AdamW and OpenCLIP's schedule; no other optimizer. */
#ifndef VLP_OPTIM_H
#define VLP_OPTIM_H

#include "autograd/params.h"

typedef struct vlp_adamw {
    float beta1, beta2, eps, weight_decay;
    long step; /* steps taken, for bias correction */
} vlp_adamw;

/* CLIP's defaults: betas (0.9, 0.98), eps 1e-6, weight decay 0.2. */
void vlp_adamw_init(vlp_adamw *opt);

/* One step with learning rate lr. Decoupled decay (p -= lr * wd * p) only
 * on parameters of 2 or more dims; frozen parameters are left untouched. */
void vlp_adamw_step(vlp_adamw *opt, vlp_params *p, float lr);

/* Global L2 norm of the trainable gradients, computed in double; when
 * max_norm > 0 and the norm exceeds it, scales them down to max_norm.
 * Returns the norm before clipping. */
float vlp_grad_clip(vlp_params *p, float max_norm);

/* Learning rate at `step` (0-based): base * (step + 1) / warmup during
 * warmup, then a cosine from base to min_lr at step == total. */
float vlp_lr_schedule(long step, long warmup, long total, float base, float min_lr);

#endif
