/* AdamW, clipping and schedule (see optim.h). */
#include "autograd/optim.h"

#include <math.h>

void vlp_adamw_init(vlp_adamw *opt) {
    *opt = (vlp_adamw){.beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f, .weight_decay = 0.2f};
}

void vlp_adamw_step(vlp_adamw *opt, vlp_params *p, float lr) {
    opt->step++;
    float b1 = opt->beta1, b2 = opt->beta2;
    float c1 = (float)(1.0 - pow(b1, (double)opt->step));
    float c2 = (float)(1.0 - pow(b2, (double)opt->step));
    for (int i = 0; i < p->count; i++) {
        const vlp_param *e = &p->table[i];
        if (!e->t->requires_grad) continue;
        float decay = e->decay ? lr * opt->weight_decay : 0.0f;
        float *w = p->data + e->offset, *g = p->grad + e->offset;
        float *m = p->m + e->offset, *v = p->v + e->offset;
        for (long j = 0; j < e->t->n; j++) {
            w[j] -= decay * w[j];
            m[j] = b1 * m[j] + (1.0f - b1) * g[j];
            v[j] = b2 * v[j] + (1.0f - b2) * g[j] * g[j];
            float mhat = m[j] / c1, vhat = v[j] / c2;
            w[j] -= lr * mhat / (sqrtf(vhat) + opt->eps);
        }
    }
}

float vlp_grad_clip(vlp_params *p, float max_norm) {
    double ss = 0.0;
    for (int i = 0; i < p->count; i++) {
        const vlp_param *e = &p->table[i];
        if (!e->t->requires_grad) continue;
        const float *g = p->grad + e->offset;
        for (long j = 0; j < e->t->n; j++) ss += (double)g[j] * g[j];
    }
    float norm = (float)sqrt(ss);
    if (max_norm > 0.0f && norm > max_norm) {
        float s = max_norm / (norm + 1e-6f); /* as torch.nn.utils.clip_grad_norm_ */
        for (int i = 0; i < p->count; i++) {
            const vlp_param *e = &p->table[i];
            if (!e->t->requires_grad) continue;
            float *g = p->grad + e->offset;
            for (long j = 0; j < e->t->n; j++) g[j] *= s;
        }
    }
    return norm;
}

float vlp_lr_schedule(long step, long warmup, long total, float base, float min_lr) {
    if (step < warmup) return base * (float)(step + 1) / (float)warmup;
    long span = total - warmup;
    if (span <= 0) return min_lr;
    double progress = (double)(step - warmup) / (double)span;
    if (progress > 1.0) progress = 1.0;
    return min_lr + (float)(0.5 * (1.0 + cos(M_PI * progress)) * (base - min_lr));
}
