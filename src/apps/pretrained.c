/* Import and export of pretrained CLIPs (see pretrained.h). The names are
 * OpenCLIP's, which are vlp's own; Hugging Face's differ by one table
 * (hf_names), read in both directions. */
#include "apps/pretrained.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/file.h"
#include "base/error.h"
#include "base/mem.h"
#include "data/safetensors.h"
#include "data/tokenizer.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/model.h"
#include "train/weights.h"

#define NAME_MAX_LEN (VLP_PARAM_NAME_MAX + 64)

/* OpenAI's CLIP preprocessing: what a folder that names none was trained with. */
static const double OPENAI_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_STD[3] = {0.26862954, 0.26130258, 0.27577711};

/* ---- the tensors of a source: one .safetensors file or a sharded set ---- */

typedef struct source {
    const char *what; /* the folder or file, for messages */
    vlp_safetensors *files;
    bool **used; /* per file, per tensor */
    int n;
} source;

static void source_free(source *s) {
    for (int i = 0; i < s->n; i++) vlp_safetensors_close(&s->files[i]), free(s->used[i]);
    free(s->files), free(s->used);
    memset(s, 0, sizeof *s);
}

static int source_add(source *s, const char *path) {
    s->files = vlp_realloc(s->files, sizeof *s->files * (size_t)(s->n + 1));
    s->used = vlp_realloc(s->used, sizeof *s->used * (size_t)(s->n + 1));
    int rc = vlp_safetensors_open(&s->files[s->n], path);
    if (rc) return rc;
    s->used[s->n] = vlp_calloc((size_t)s->files[s->n].n + 1, sizeof(bool));
    s->n++;
    return VLP_OK;
}

static const vlp_st_tensor *source_find(const source *s, const char *name, int *file) {
    for (int f = 0; f < s->n; f++) {
        const vlp_st_tensor *t = vlp_safetensors_find(&s->files[f], name);
        if (t) return *file = f, t;
    }
    return NULL;
}

/* Buffers a model does not have as parameters (older transformers saved them). */
static bool ignorable(const char *name) {
    return !strcmp(name, "text_model.embeddings.position_ids") ||
           !strcmp(name, "vision_model.embeddings.position_ids");
}

static int source_check_all_used(const source *s) {
    for (int f = 0; f < s->n; f++)
        for (int i = 0; i < s->files[f].n; i++)
            if (!s->used[f][i] && !ignorable(s->files[f].tensors[i].name))
                return vlp_error_set(VLP_ESHAPE, "%s: tensor %s is not part of a vlp CLIP of this architecture "
                                     "(an unsupported variant?)", s->files[f].path, s->files[f].tensors[i].name);
    return VLP_OK;
}

/* ---- names -------------------------------------------------------------- */

enum { COPY, TRANSPOSE, QKV };

/* The Hugging Face tensors holding vlp parameter `name`: one, or q, k and v
 * stacked into in_proj (QKV); TRANSPOSE: a Linear's weight, (out, in). */
static int hf_names(const char *name, char out[3][NAME_MAX_LEN], int *how) {
    static const char *const whole[][3] = {
        {"visual.class_embedding", "vision_model.embeddings.class_embedding", ""},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", ""},
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", ""},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", ""}, /* sic */
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", ""},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight", ""},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias", ""},
        {"visual.proj", "visual_projection.weight", "T"},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", ""},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight", ""},
        {"ln_final.weight", "text_model.final_layer_norm.weight", ""},
        {"ln_final.bias", "text_model.final_layer_norm.bias", ""},
        {"text_projection", "text_projection.weight", "T"},
        {"logit_scale", "logit_scale", ""},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (!strcmp(name, whole[i][0])) {
            snprintf(out[0], NAME_MAX_LEN, "%s", whole[i][1]);
            *how = whole[i][2][0] ? TRANSPOSE : COPY;
            return 1;
        }
    static const char *const towers[][2] = {{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
                                            {"transformer.resblocks.", "text_model.encoder.layers."}};
    static const char *const parts[][2] = {{"ln_1.", "layer_norm1."},
                                           {"ln_2.", "layer_norm2."},
                                           {"attn.out_proj.", "self_attn.out_proj."},
                                           {"mlp.c_fc.", "mlp.fc1."},
                                           {"mlp.c_proj.", "mlp.fc2."}};
    for (int t = 0; t < 2; t++) {
        size_t len = strlen(towers[t][0]);
        if (strncmp(name, towers[t][0], len)) continue;
        const char *rest = name + len;
        size_t digits = strspn(rest, "0123456789");
        if (!digits || rest[digits] != '.') return 0;
        const char *part = rest + digits + 1;
        *how = COPY;
        if (!strcmp(part, "attn.in_proj_weight") || !strcmp(part, "attn.in_proj_bias")) {
            const char *kind = strstr(part, "weight") ? "weight" : "bias";
            for (int k = 0; k < 3; k++)
                snprintf(out[k], NAME_MAX_LEN, "%s%.*sself_attn.%c_proj.%s", towers[t][1], (int)digits + 1, rest,
                         "qkv"[k], kind);
            *how = QKV;
            return 3;
        }
        for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
            size_t plen = strlen(parts[p][0]);
            if (!strncmp(part, parts[p][0], plen)) {
                snprintf(out[0], NAME_MAX_LEN, "%s%.*s%s%s", towers[t][1], (int)digits + 1, rest, parts[p][1],
                         part + plen);
                return 1;
            }
        }
        return 0;
    }
    return 0;
}

static void shape_text(char *buf, size_t size, int ndim, const int64_t *shape) {
    int len = snprintf(buf, size, "(");
    for (int d = 0; d < ndim && len < (int)size; d++)
        len += snprintf(buf + len, size - len, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (len < (int)size) snprintf(buf + len, size - len, ")");
}

/* Reads source tensor `name`, which must hold `ndim`/`shape` (a one-element
 * parameter also takes a 0-d tensor, as OpenCLIP stores logit_scale). */
static int fetch(source *s, const char *name, int ndim, const int64_t *shape, float *dst, const char *param) {
    int f;
    const vlp_st_tensor *t = source_find(s, name, &f);
    char want[96], got[96];
    shape_text(want, sizeof want, ndim, shape);
    if (!t)
        return vlp_error_set(VLP_ESHAPE, "%s: tensor %s is missing (vlp's %s, shape %s)", s->what, name, param, want);
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (!same && !(n == 1 && t->n == 1)) {
        shape_text(got, sizeof got, t->ndim, t->shape);
        return vlp_error_set(VLP_ESHAPE, "%s: tensor %s has shape %s, the architecture needs %s", s->files[f].path,
                             name, got, want);
    }
    s->used[f][t - s->files[f].tensors] = true;
    return vlp_safetensors_read(&s->files[f], t, dst);
}

/* Fills every parameter of p from the source, in its format. */
static int load_params(source *s, vlp_params *p, vlp_pretrained_format format) {
    int rc = VLP_OK;
    float *scratch = NULL;
    for (int i = 0; i < p->count && !rc; i++) {
        const vlp_param *e = &p->table[i];
        float *dst = p->data + e->offset;
        int64_t shape[VLP_ST_MAX_DIMS];
        for (int d = 0; d < e->t->ndim; d++) shape[d] = e->t->shape[d];
        if (format == VLP_PRETRAINED_OPEN_CLIP) {
            rc = fetch(s, e->name, e->t->ndim, shape, dst, e->name);
            continue;
        }
        char names[3][NAME_MAX_LEN];
        int how, n = hf_names(e->name, names, &how);
        VLP_ASSERT(n > 0, "no Hugging Face name for %s", e->name);
        if (how == COPY) {
            rc = fetch(s, names[0], e->t->ndim, shape, dst, e->name);
        } else if (how == QKV) { /* (3W, W) or (3W): q, k, v stacked */
            shape[0] /= 3;
            size_t part = (size_t)e->t->n / 3;
            for (int k = 0; k < 3 && !rc; k++) rc = fetch(s, names[k], e->t->ndim, shape, dst + k * part, e->name);
        } else { /* vlp's (in, out) from a Linear's (out, in) */
            int64_t rows = shape[0], cols = shape[1], flipped[2] = {cols, rows};
            free(scratch);
            scratch = vlp_malloc(sizeof(float) * (size_t)e->t->n);
            rc = fetch(s, names[0], 2, flipped, scratch, e->name);
            for (int64_t r = 0; !rc && r < rows; r++)
                for (int64_t c = 0; c < cols; c++) dst[r * cols + c] = scratch[c * rows + r];
        }
    }
    free(scratch);
    return rc ? rc : source_check_all_used(s);
}

/* ---- JSON ---------------------------------------------------------------- */

static cJSON *read_json(const char *path) {
    char *text = vlp_read_text(path);
    if (!text) return vlp_error_set(VLP_EIO, "%s: %s", path, strerror(errno)), NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        vlp_error_set(VLP_EFORMAT, "%s: not a JSON object", path);
        return NULL;
    }
    return j;
}

/* A whole-number member in [lo, hi], or def when absent (def < 0: required). */
static int json_int(const cJSON *obj, const char *key, long def, long lo, long hi, const char *where, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v && def >= 0) return *out = (int)def, VLP_OK;
    if (!v) return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is missing", where, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is not a whole number in [%ld, %ld]", where, key, lo, hi);
    *out = (int)v->valuedouble;
    return VLP_OK;
}

static int json_number(const cJSON *obj, const char *key, double def, const char *where, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return *out = def, VLP_OK;
    if (!cJSON_IsNumber(v)) return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is not a number", where, key);
    *out = v->valuedouble;
    return VLP_OK;
}

static const char *json_string(const cJSON *obj, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* mean and std: three numbers each, or OpenAI's when absent. */
static int json_triple(const cJSON *obj, const char *key, const double *def, const char *where, char *out,
                       size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    double x[3] = {def[0], def[1], def[2]};
    if (v) {
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
            return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is not a list of 3 numbers", where, key);
        for (int i = 0; i < 3; i++) {
            const cJSON *item = cJSON_GetArrayItem(v, i);
            if (!cJSON_IsNumber(item))
                return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is not a list of 3 numbers", where, key);
            x[i] = item->valuedouble;
        }
    }
    /* each number as the shortest text that reads back as it (0.48145466, not 0.48145466000000002) */
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        char num[32];
        for (int digits = 6; digits <= 17; digits++) {
            snprintf(num, sizeof num, "%.*g", digits, x[i]);
            if (strtod(num, NULL) == x[i]) break;
        }
        len += (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "", num);
    }
    return VLP_OK;
}

/* Refuses a member that changes the architecture away from what vlp runs,
 * unless it holds the value that leaves it unchanged. */
static int refuse_keys(const cJSON *obj, const char *const *keys, const char *where) {
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, keys[i]);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v))
            return vlp_error_set(VLP_EFORMAT, "%s: \"%s\" is set: that variant of CLIP is not supported by vlp",
                                 where, keys[i]);
    }
    return VLP_OK;
}

/* ---- configurations -------------------------------------------------------- */

static void set_mlp_and_act(vlp_config *c, double mlp_ratio, bool quick) {
    c->model.mlp_ratio = (float)mlp_ratio;
    c->model.activation = quick ? 1 : 0;
}

static int config_open_clip(vlp_config *c, const cJSON *root, const char *where) {
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "model_cfg");
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(mc, "vision_cfg");
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(mc, "text_cfg");
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(root, "preprocess_cfg");
    if (!cJSON_IsObject(mc) || !cJSON_IsObject(vc) || !cJSON_IsObject(tc))
        return vlp_error_set(VLP_EFORMAT, "%s: needs \"model_cfg\" with \"vision_cfg\" and \"text_cfg\" objects", where);
    static const char *const bad_model[] = {"custom_text", "init_logit_bias", NULL};
    static const char *const bad_vision[] = {"timm_model_name", "ls_init_value", "attentional_pool", "no_ln_pre",
                                             "final_ln_after_pool", "output_tokens", "act_kwargs", "norm_kwargs", NULL};
    static const char *const bad_text[] = {"hf_model_name", "ls_init_value", "proj_bias", "embed_cls", "no_causal_mask",
                                           "output_tokens", "act_kwargs", "norm_kwargs", NULL};
    int rc = refuse_keys(mc, bad_model, where);
    if (!rc) rc = refuse_keys(vc, bad_vision, where);
    if (!rc) rc = refuse_keys(tc, bad_text, where);
    const char *pool = json_string(vc, "pool_type", "tok"), *tpool = json_string(tc, "pool_type", "argmax");
    const char *proj = json_string(vc, "proj_type", "linear"), *tproj = json_string(tc, "proj_type", "linear");
    const char *pos = json_string(vc, "pos_embed_type", "learnable");
    if (!rc && (strcmp(pool, "tok") || strcmp(tpool, "argmax") || strcmp(proj, "linear") || strcmp(tproj, "linear") ||
                strcmp(pos, "learnable")))
        rc = vlp_error_set(VLP_EFORMAT, "%s: pool_type, proj_type or pos_embed_type other than CLIP's (tok, argmax, "
                           "linear, learnable) is not supported by vlp", where);
    int width = 0, head_width = 0, vocab = 0;
    double vratio = 4, tratio = 4;
    if (!rc) rc = json_int(mc, "embed_dim", -1, 1, 8192, where, &c->model.embed_dim);
    if (!rc) rc = json_int(vc, "image_size", -1, 8, 1024, where, &c->model.image_size);
    if (!rc) rc = json_int(vc, "patch_size", -1, 1, 64, where, &c->model.patch_size);
    if (!rc) rc = json_int(vc, "width", -1, 8, 8192, where, &width);
    if (!rc) rc = json_int(vc, "layers", -1, 1, 48, where, &c->model.vision_layers);
    if (!rc) rc = json_int(vc, "head_width", 64, 1, 8192, where, &head_width);
    if (!rc) rc = json_number(vc, "mlp_ratio", 4, where, &vratio);
    if (!rc) rc = json_int(tc, "context_length", 77, 4, 1024, where, &c->model.context_length);
    if (!rc) rc = json_int(tc, "vocab_size", 49408, 514, 1 << 20, where, &vocab);
    if (!rc) rc = json_int(tc, "width", 512, 8, 8192, where, &c->model.text_width);
    if (!rc) rc = json_int(tc, "heads", 8, 1, 128, where, &c->model.text_heads);
    if (!rc) rc = json_int(tc, "layers", 12, 1, 48, where, &c->model.text_layers);
    if (!rc) rc = json_number(tc, "mlp_ratio", 4, where, &tratio);
    if (rc) return rc;
    if (width % head_width)
        return vlp_error_set(VLP_EFORMAT, "%s: vision_cfg width %d is not a multiple of head_width %d", where, width,
                             head_width);
    if (vratio != tratio)
        return vlp_error_set(VLP_EFORMAT, "%s: the towers' mlp_ratio differ (%g, %g); vlp has one", where, vratio, tratio);
    c->model.vision_width = width, c->model.vision_heads = width / head_width;
    set_mlp_and_act(c, vratio, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(mc, "quick_gelu")));
    c->data.vocab_size = vocab;
    /* preprocess_cfg: absent keys are OpenCLIP's defaults (OpenAI's values) */
    if ((rc = json_triple(pc, "mean", OPENAI_MEAN, where, c->preprocess.mean, sizeof c->preprocess.mean)) ||
        (rc = json_triple(pc, "std", OPENAI_STD, where, c->preprocess.std, sizeof c->preprocess.std)))
        return rc;
    const char *interp = json_string(pc, "interpolation", "bicubic"), *mode = json_string(pc, "resize_mode", "shortest");
    if (strcmp(interp, "bicubic") && strcmp(interp, "bilinear"))
        return vlp_error_set(VLP_EFORMAT, "%s: preprocess_cfg interpolation '%s': vlp has bicubic and bilinear", where,
                             interp);
    if (strcmp(mode, "shortest") && strcmp(mode, "squash"))
        return vlp_error_set(VLP_EFORMAT, "%s: preprocess_cfg resize_mode '%s': vlp has shortest and squash", where,
                             mode);
    c->preprocess.interpolation = strcmp(interp, "bicubic") ? VLP_INTERP_BILINEAR : VLP_INTERP_BICUBIC;
    c->preprocess.resize_mode = strcmp(mode, "shortest") ? VLP_RESIZE_SQUASH : VLP_RESIZE_SHORTEST;
    return VLP_OK;
}

/* transformers' CLIPConfig: a member left out holds its documented default
 * (CLIPTextConfig, CLIPVisionConfig), so the defaults below are those. */
static int config_hf(vlp_config *c, const cJSON *root, const cJSON *pre, const char *where, const char *pre_where) {
    const char *type = json_string(root, "model_type", "");
    if (strcmp(type, "clip"))
        return vlp_error_set(VLP_EFORMAT, "%s: model_type '%s': vlpimport reads CLIP (\"model_type\": \"clip\")", where,
                             type);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if (!cJSON_IsObject(tc) || !cJSON_IsObject(vc))
        return vlp_error_set(VLP_EFORMAT, "%s: needs \"text_config\" and \"vision_config\" objects", where);
    int vw = 0, tw = 0, vi = 0, ti = 0, vocab = 0, channels = 0;
    double veps = 0, teps = 0;
    int rc = json_int(root, "projection_dim", 512, 1, 8192, where, &c->model.embed_dim);
    if (!rc) rc = json_int(vc, "hidden_size", 768, 8, 8192, where, &vw);
    if (!rc) rc = json_int(vc, "intermediate_size", 3072, 1, 1 << 20, where, &vi);
    if (!rc) rc = json_int(vc, "num_attention_heads", 12, 1, 128, where, &c->model.vision_heads);
    if (!rc) rc = json_int(vc, "num_hidden_layers", 12, 1, 48, where, &c->model.vision_layers);
    if (!rc) rc = json_int(vc, "image_size", 224, 8, 1024, where, &c->model.image_size);
    if (!rc) rc = json_int(vc, "patch_size", 32, 1, 64, where, &c->model.patch_size);
    if (!rc) rc = json_int(vc, "num_channels", 3, 1, 16, where, &channels);
    if (!rc) rc = json_number(vc, "layer_norm_eps", 1e-5, where, &veps);
    if (!rc) rc = json_int(tc, "hidden_size", 512, 8, 8192, where, &tw);
    if (!rc) rc = json_int(tc, "intermediate_size", 2048, 1, 1 << 20, where, &ti);
    if (!rc) rc = json_int(tc, "num_attention_heads", 8, 1, 128, where, &c->model.text_heads);
    if (!rc) rc = json_int(tc, "num_hidden_layers", 12, 1, 48, where, &c->model.text_layers);
    if (!rc) rc = json_int(tc, "max_position_embeddings", 77, 4, 1024, where, &c->model.context_length);
    if (!rc) rc = json_int(tc, "vocab_size", 49408, 514, 1 << 20, where, &vocab);
    if (!rc) rc = json_number(tc, "layer_norm_eps", 1e-5, where, &teps);
    if (rc) return rc;
    const char *vact = json_string(vc, "hidden_act", "quick_gelu"), *tact = json_string(tc, "hidden_act", "quick_gelu");
    if (channels != 3) return vlp_error_set(VLP_EFORMAT, "%s: vision_config num_channels %d: vlp takes RGB", where, channels);
    if (fabs(veps - 1e-5) > 1e-12 || fabs(teps - 1e-5) > 1e-12)
        return vlp_error_set(VLP_EFORMAT, "%s: layer_norm_eps %g / %g: vlp's LayerNorm uses 1e-5", where, veps, teps);
    if (strcmp(vact, tact) || (strcmp(vact, "quick_gelu") && strcmp(vact, "gelu")))
        return vlp_error_set(VLP_EFORMAT, "%s: hidden_act '%s' (vision) and '%s' (text): vlp needs both quick_gelu "
                             "or both gelu", where, vact, tact);
    if ((long)vi * tw != (long)ti * vw)
        return vlp_error_set(VLP_EFORMAT, "%s: intermediate_size / hidden_size differ between the towers (%d/%d, "
                             "%d/%d); vlp has one mlp_ratio", where, vi, vw, ti, tw);
    c->model.vision_width = vw, c->model.text_width = tw;
    set_mlp_and_act(c, (double)vi / vw, !strcmp(vact, "quick_gelu"));
    c->data.vocab_size = vocab;
    /* preprocessor_config.json (CLIPImageProcessor), when there is one */
    if ((rc = json_triple(pre, "image_mean", OPENAI_MEAN, pre_where, c->preprocess.mean, sizeof c->preprocess.mean)) ||
        (rc = json_triple(pre, "image_std", OPENAI_STD, pre_where, c->preprocess.std, sizeof c->preprocess.std)))
        return rc;
    int resample = 3;
    if ((rc = json_int(pre, "resample", 3, 0, 5, pre_where, &resample))) return rc;
    if (resample != 3 && resample != 2)
        return vlp_error_set(VLP_EFORMAT, "%s: resample %d: vlp has bicubic (3) and bilinear (2)", pre_where, resample);
    c->preprocess.interpolation = resample == 3 ? VLP_INTERP_BICUBIC : VLP_INTERP_BILINEAR;
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(pre, "do_center_crop");
    c->preprocess.resize_mode = VLP_RESIZE_SHORTEST;
    if (pre && cJSON_IsFalse(crop))
        return vlp_error_set(VLP_EFORMAT, "%s: do_center_crop false leaves images non-square; vlp's ViT needs "
                             "image_size x image_size", pre_where);
    return VLP_OK;
}

/* The shape of tensor name, or NULL. */
static const vlp_st_tensor *shape_of(const source *s, const char *name) {
    int f;
    return source_find(s, name, &f);
}

static int count_blocks(const source *s, const char *prefix) {
    int max = -1;
    size_t len = strlen(prefix);
    for (int f = 0; f < s->n; f++)
        for (int i = 0; i < s->files[f].n; i++) {
            const char *name = s->files[f].tensors[i].name;
            if (strncmp(name, prefix, len)) continue;
            int k = atoi(name + len);
            if (k > max && k < 1000) max = k;
        }
    return max + 1;
}

/* OpenAI's build_model: the architecture read off the tensors' shapes. */
static int config_from_shapes(vlp_config *c, const source *s, bool quick, FILE *log) {
    const vlp_st_tensor *conv = shape_of(s, "visual.conv1.weight"), *pos = shape_of(s, "visual.positional_embedding"),
                        *tproj = shape_of(s, "text_projection"), *tpos = shape_of(s, "positional_embedding"),
                        *tok = shape_of(s, "token_embedding.weight"), *lnf = shape_of(s, "ln_final.weight"),
                        *fc = shape_of(s, "visual.transformer.resblocks.0.mlp.c_fc.weight");
    const char *missing = !conv ? "visual.conv1.weight" : !pos ? "visual.positional_embedding"
                          : !tproj ? "text_projection" : !tpos ? "positional_embedding"
                          : !tok ? "token_embedding.weight" : !lnf ? "ln_final.weight"
                          : !fc ? "visual.transformer.resblocks.0.mlp.c_fc.weight" : NULL;
    if (missing)
        return vlp_error_set(VLP_ESHAPE, "%s: tensor %s is missing: not a CLIP with OpenCLIP's names (give --arch, "
                             "or a folder with its config)", s->what, missing);
    if (conv->ndim != 4 || pos->ndim != 2 || tproj->ndim != 2 || tpos->ndim != 2 || tok->ndim != 2 || fc->ndim != 2 ||
        lnf->ndim != 1 || conv->shape[2] != conv->shape[3] || conv->shape[0] <= 0 || pos->shape[0] < 2)
        return vlp_error_set(VLP_ESHAPE, "%s: the tensors' shapes do not describe a CLIP", s->what);
    int grid = (int)lround(sqrt((double)(pos->shape[0] - 1)));
    c->model.vision_width = (int)conv->shape[0];
    c->model.patch_size = (int)conv->shape[3];
    c->model.image_size = grid * c->model.patch_size;
    c->model.vision_layers = count_blocks(s, "visual.transformer.resblocks.");
    c->model.vision_heads = c->model.vision_width / 64;
    c->model.embed_dim = (int)tproj->shape[1];
    c->model.context_length = (int)tpos->shape[0];
    c->model.text_width = (int)lnf->shape[0];
    c->model.text_heads = c->model.text_width / 64;
    c->model.text_layers = count_blocks(s, "transformer.resblocks.");
    c->data.vocab_size = (int)tok->shape[0];
    if (c->data.vocab_size < VLP_TOKENIZER_VOCAB_SIZE(0))
        return vlp_error_set(VLP_ESHAPE, "%s: token_embedding.weight has %d rows; a byte-level BPE vocabulary has at "
                             "least %d", s->what, c->data.vocab_size, VLP_TOKENIZER_VOCAB_SIZE(0));
    if (grid * grid + 1 != pos->shape[0] || c->model.vision_heads < 1 || c->model.text_heads < 1 ||
        c->model.vision_width % 64 || c->model.text_width % 64)
        return vlp_error_set(VLP_ESHAPE, "%s: the shapes do not follow OpenAI's CLIP (a square grid, 64-wide heads): "
                             "give --arch NAME", s->what);
    set_mlp_and_act(c, (double)fc->shape[0] / c->model.vision_width, quick);
    if (log)
        fprintf(log, "vlpimport: architecture inferred from the shapes: image %d, patch %d, vision %d x %d layers, "
                "text %d x %d layers, embedding %d, context %d, vocabulary %d; %s (the weights do not say; "
                "--gelu or --arch to change)\n", c->model.image_size, c->model.patch_size, c->model.vision_width,
                c->model.vision_layers, c->model.text_width, c->model.text_layers, c->model.embed_dim,
                c->model.context_length, c->data.vocab_size, quick ? "QuickGELU" : "GELU");
    return VLP_OK;
}

/* ---- import ---------------------------------------------------------------- */

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The shards a model.safetensors.index.json names (its "weight_map"). */
static int open_hf_shards(source *s, const char *dir, const char *index) {
    cJSON *j = read_json(index);
    if (!j) return VLP_EFORMAT;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    int rc = cJSON_IsObject(map) ? VLP_OK : vlp_error_set(VLP_EFORMAT, "%s: no \"weight_map\" object", index);
    for (const cJSON *e = map ? map->child : NULL; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !strcmp(e->valuestring, "..")) {
            rc = vlp_error_set(VLP_EFORMAT, "%s: tensor %s: not a file name in this folder", index, e->string);
            break;
        }
        char path[VLP_PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, e->valuestring);
        bool seen = false;
        for (int f = 0; f < s->n && !seen; f++) seen = !strcmp(s->files[f].path, path);
        if (!seen) rc = source_add(s, path);
    }
    if (!rc && s->n == 0) rc = vlp_error_set(VLP_EFORMAT, "%s: the weight_map names no file", index);
    /* every tensor the map names must be in the file it names */
    for (const cJSON *e = map ? map->child : NULL; e && !rc; e = e->next) {
        int f;
        if (!source_find(s, e->string, &f))
            rc = vlp_error_set(VLP_EFORMAT, "%s: tensor %s is not in %s", index, e->string, e->valuestring);
    }
    cJSON_Delete(j);
    return rc;
}

/* The configuration (c, over its defaults) and the tensors (s) of src in
 * its format; merges: the folder's merges.txt, or "" when it has none. */
static int open_source(const char *src, const vlp_import_opts *o, vlp_config *c, source *s,
                       vlp_pretrained_format *format, char *merges, size_t merges_size, const char **kind) {
    char path[VLP_PATH_MAX * 2];
    struct stat st;
    if (stat(src, &st) != 0) return vlp_error_set(VLP_ENOTFOUND, "%s: %s", src, strerror(errno));
    merges[0] = '\0';
    *format = VLP_PRETRAINED_OPEN_CLIP;
    if (!S_ISDIR(st.st_mode)) { /* a bare .safetensors with OpenCLIP's names */
        *kind = "safetensors file";
        int rc = source_add(s, src);
        if (rc || !o->arch) return rc ? rc : config_from_shapes(c, s, o->quick_gelu, o->log);
        /* a preset applies through the config parser, as [model] preset does */
        char text[128];
        snprintf(text, sizeof text, "[model]\npreset = %s\n", o->arch);
        vlp_config parsed;
        if ((rc = vlp_config_parse_text(&parsed, text, "--arch"))) return rc;
        c->model = parsed.model, c->data.vocab_size = parsed.data.vocab_size;
        return VLP_OK;
    }
    snprintf(merges, merges_size, "%s/merges.txt", src);
    if (!is_file(merges)) merges[0] = '\0';
    char config_path[VLP_PATH_MAX * 2], pre_path[VLP_PATH_MAX * 2], index[VLP_PATH_MAX * 2];
    snprintf(config_path, sizeof config_path, "%s/open_clip_config.json", src);
    if (is_file(config_path)) {
        *kind = "OpenCLIP folder";
        cJSON *config = read_json(config_path);
        if (!config) return VLP_EFORMAT;
        int rc = config_open_clip(c, config, config_path);
        cJSON_Delete(config);
        snprintf(path, sizeof path, "%s/open_clip_model.safetensors", src);
        return rc ? rc : source_add(s, path);
    }
    snprintf(config_path, sizeof config_path, "%s/config.json", src);
    if (!is_file(config_path))
        return vlp_error_set(VLP_ENOTFOUND, "%s: neither an OpenCLIP folder (open_clip_config.json) nor a Hugging "
                             "Face CLIP folder (config.json)", src);
    *kind = "Hugging Face folder", *format = VLP_PRETRAINED_HF;
    cJSON *config = read_json(config_path), *pre = NULL;
    snprintf(pre_path, sizeof pre_path, "%s/preprocessor_config.json", src);
    int rc = !config || (is_file(pre_path) && !(pre = read_json(pre_path))) ? VLP_EFORMAT : VLP_OK;
    if (!rc) rc = config_hf(c, config, pre, config_path, pre_path);
    cJSON_Delete(config), cJSON_Delete(pre);
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    snprintf(index, sizeof index, "%s/model.safetensors.index.json", src);
    if (!rc) rc = is_file(path) || !is_file(index) ? source_add(s, path) : open_hf_shards(s, src, index);
    return rc;
}

/* config.ini, tokenizer.bpe and model.h5 into out (model.h5 last, written
 * whole or not at all, so a folder with one is complete). */
static int write_run_folder(const char *out, const vlp_config *c, const vlp_tokenizer *tok, const vlp_params *p) {
    char path[VLP_PATH_MAX * 2];
    if (vlp_make_dirs(out)) return vlp_error_set(VLP_EIO, "%s: cannot create the folder: %s", out, strerror(errno));
    snprintf(path, sizeof path, "%s/tokenizer.bpe", out);
    int rc = vlp_tokenizer_save(tok, path);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/config.ini", out);
    char *text = vlp_config_to_text(c);
    int failed = vlp_write_text(path, text);
    free(text);
    if (failed) return vlp_error_set(VLP_EIO, "cannot write %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/model.h5", out);
    return vlp_weights_save(p, path);
}

int vlp_pretrained_import(const char *src, const char *out, const vlp_import_opts *o) {
    char path[VLP_PATH_MAX * 2], merges[VLP_PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/model.h5", out);
    if (is_file(path))
        return vlp_error_set(VLP_EINVAL, "%s already holds a model.h5: remove it or import into another folder", out);
    vlp_config c;
    vlp_config_defaults(&c);
    c.preprocess.alpha = VLP_ALPHA_PIL; /* what every pretrained CLIP saw */
    source s = {.what = src};
    vlp_pretrained_format format = VLP_PRETRAINED_OPEN_CLIP;
    const char *kind = "";
    vlp_tokenizer *tok = NULL;
    vlp_model m = {0};
    bool model_made = false;
    int rc = open_source(src, o, &c, &s, &format, merges, sizeof merges, &kind);
    if (rc) goto done;

    /* the tokenizer: as many merges as the vocabulary holds */
    const char *vocab = o->vocab ? o->vocab : merges[0] ? merges : NULL;
    int need = c.data.vocab_size - VLP_TOKENIZER_VOCAB_SIZE(0);
    if (!vocab) {
        rc = vlp_error_set(VLP_ENOTFOUND, "%s: no merges.txt here: give CLIP's vocabulary with --vocab "
                           "(bpe_simple_vocab_16e6.txt.gz, from your CLIP or OpenCLIP installation)", src);
        goto done;
    }
    if ((rc = vlp_tokenizer_load(&tok, vocab, need))) goto done;
    if (vlp_tokenizer_n_merges(tok) != need) {
        rc = vlp_error_set(VLP_EFORMAT, "%s: %d merges, but the model's vocabulary of %d tokens needs %d", vocab,
                           vlp_tokenizer_n_merges(tok), c.data.vocab_size, need);
        goto done;
    }
    /* the [model] keys checked as any config's are */
    char *text = vlp_config_to_text(&c);
    vlp_config checked;
    rc = vlp_config_parse_text(&checked, text, src);
    free(text);
    if (rc) goto done;
    if ((rc = vlp_model_init(&m, &c, vlp_tokenizer_vocab_size(tok), 0))) goto done;
    model_made = true;
    if ((rc = load_params(&s, m.params, format))) goto done;
    for (int i = 0; i < m.params->count; i++) {
        const vlp_param *e = &m.params->table[i];
        for (long j = 0; j < e->t->n; j++)
            if (!isfinite(m.params->data[e->offset + j])) {
                rc = vlp_error_set(VLP_ENONFINITE, "%s: tensor %s holds NaN or infinity (element %ld)", src, e->name, j);
                goto done;
            }
    }
    if ((rc = write_run_folder(out, &c, tok, m.params))) goto done;
    if (o->log)
        fprintf(o->log, "vlpimport: %s %s: CLIP %s, %zu parameters, vocabulary %d (%s), image %d (%s, %s), into %s\n",
                kind, src, c.model.activation ? "QuickGELU" : "GELU", m.params->n, vlp_tokenizer_vocab_size(tok),
                vocab, m.image_size, c.preprocess.interpolation ? "bilinear" : "bicubic",
                c.preprocess.resize_mode ? "squash" : "shortest side", out);
done:
    if (model_made) vlp_model_free(&m);
    if (tok) vlp_tokenizer_free(tok);
    source_free(&s);
    return rc;
}

/* ---- export ---------------------------------------------------------------- */

static int write_json(const char *dir, const char *name, cJSON *j) {
    char path[VLP_PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return vlp_error_set(VLP_ENOMEM, "out of memory for %s", path);
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = false;
    free(text);
    return ok ? VLP_OK : vlp_error_set(VLP_EIO, "cannot write %s: %s", path, strerror(errno));
}

/* "a,b,c" (checked by the config parser) as a JSON list, the numbers as written. */
static cJSON *triple(const char *text) {
    cJSON *a = cJSON_CreateArray();
    for (const char *p = text; *p;) {
        char *end;
        cJSON_AddItemToArray(a, cJSON_CreateNumber(strtod(p, &end)));
        p = *end ? end + 1 : end;
    }
    return a;
}

static cJSON *open_clip_config(const vlp_config *c, int vocab) {
    cJSON *root = cJSON_CreateObject(), *mc = cJSON_AddObjectToObject(root, "model_cfg");
    cJSON_AddNumberToObject(mc, "embed_dim", c->model.embed_dim);
    if (c->model.activation) cJSON_AddTrueToObject(mc, "quick_gelu");
    cJSON *vc = cJSON_AddObjectToObject(mc, "vision_cfg"), *tc = cJSON_AddObjectToObject(mc, "text_cfg");
    cJSON_AddNumberToObject(vc, "image_size", c->model.image_size);
    cJSON_AddNumberToObject(vc, "layers", c->model.vision_layers);
    cJSON_AddNumberToObject(vc, "width", c->model.vision_width);
    cJSON_AddNumberToObject(vc, "head_width", c->model.vision_width / c->model.vision_heads);
    cJSON_AddNumberToObject(vc, "mlp_ratio", c->model.mlp_ratio);
    cJSON_AddNumberToObject(vc, "patch_size", c->model.patch_size);
    cJSON_AddNumberToObject(tc, "context_length", c->model.context_length);
    cJSON_AddNumberToObject(tc, "vocab_size", vocab);
    cJSON_AddNumberToObject(tc, "width", c->model.text_width);
    cJSON_AddNumberToObject(tc, "heads", c->model.text_heads);
    cJSON_AddNumberToObject(tc, "layers", c->model.text_layers);
    cJSON_AddNumberToObject(tc, "mlp_ratio", c->model.mlp_ratio);
    cJSON *pc = cJSON_AddObjectToObject(root, "preprocess_cfg");
    cJSON_AddItemToObject(pc, "mean", triple(c->preprocess.mean));
    cJSON_AddItemToObject(pc, "std", triple(c->preprocess.std));
    cJSON_AddStringToObject(pc, "interpolation", c->preprocess.interpolation ? "bilinear" : "bicubic");
    cJSON_AddStringToObject(pc, "resize_mode", c->preprocess.resize_mode ? "squash" : "shortest");
    return root;
}

/* The keys both towers' configs share. */
static cJSON *hf_tower(cJSON *root, const char *name, const char *type, const vlp_config *c, int width, int heads,
                       int layers) {
    cJSON *t = cJSON_AddObjectToObject(root, name);
    cJSON_AddStringToObject(t, "model_type", type);
    cJSON_AddNumberToObject(t, "hidden_size", width);
    cJSON_AddNumberToObject(t, "intermediate_size", (int)lroundf(c->model.mlp_ratio * width));
    cJSON_AddNumberToObject(t, "num_attention_heads", heads);
    cJSON_AddNumberToObject(t, "num_hidden_layers", layers);
    cJSON_AddStringToObject(t, "hidden_act", c->model.activation ? "quick_gelu" : "gelu");
    cJSON_AddNumberToObject(t, "layer_norm_eps", 1e-5);
    cJSON_AddNumberToObject(t, "projection_dim", c->model.embed_dim);
    return t;
}

static cJSON *hf_config(const vlp_config *c, int vocab, double logit_scale) {
    cJSON *root = cJSON_CreateObject(), *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPModel"));
    cJSON_AddStringToObject(root, "model_type", "clip");
    cJSON_AddNumberToObject(root, "projection_dim", c->model.embed_dim);
    cJSON_AddNumberToObject(root, "logit_scale_init_value", logit_scale);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON *tc = hf_tower(root, "text_config", "clip_text_model", c, c->model.text_width, c->model.text_heads,
                         c->model.text_layers);
    cJSON_AddNumberToObject(tc, "max_position_embeddings", c->model.context_length);
    cJSON_AddNumberToObject(tc, "vocab_size", vocab);
    cJSON_AddNumberToObject(tc, "bos_token_id", vocab - 2);
    cJSON_AddNumberToObject(tc, "eos_token_id", vocab - 1);
    cJSON_AddNumberToObject(tc, "pad_token_id", vocab - 1);
    cJSON *vc = hf_tower(root, "vision_config", "clip_vision_model", c, c->model.vision_width, c->model.vision_heads,
                         c->model.vision_layers);
    cJSON_AddNumberToObject(vc, "image_size", c->model.image_size);
    cJSON_AddNumberToObject(vc, "patch_size", c->model.patch_size);
    cJSON_AddNumberToObject(vc, "num_channels", 3);
    return root;
}

static cJSON *hf_preprocessor(const vlp_config *c) {
    cJSON *root = cJSON_CreateObject(), *size = cJSON_CreateObject(), *crop = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "image_processor_type", "CLIPImageProcessor");
    cJSON_AddTrueToObject(root, "do_resize");
    cJSON_AddItemToObject(root, "size", size);
    cJSON_AddNumberToObject(size, "shortest_edge", c->model.image_size);
    cJSON_AddBoolToObject(root, "do_center_crop", true);
    cJSON_AddItemToObject(root, "crop_size", crop);
    cJSON_AddNumberToObject(crop, "height", c->model.image_size);
    cJSON_AddNumberToObject(crop, "width", c->model.image_size);
    cJSON_AddNumberToObject(root, "resample", c->preprocess.interpolation ? 2 : 3);
    cJSON_AddTrueToObject(root, "do_rescale");
    cJSON_AddNumberToObject(root, "rescale_factor", 1.0 / 255);
    cJSON_AddTrueToObject(root, "do_normalize");
    cJSON_AddItemToObject(root, "image_mean", triple(c->preprocess.mean));
    cJSON_AddItemToObject(root, "image_std", triple(c->preprocess.std));
    cJSON_AddTrueToObject(root, "do_convert_rgb");
    return root;
}

/* CLIP's byte-to-character table (byte-level BPE spells every byte as a
 * printable character): printable Latin-1 bytes stand for themselves, the
 * others for 256, 257, ... in byte order. vocab.json lists these first. */
static void byte_symbols(int order[256], int code[256]) {
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) order[n++] = b, code[b] = b;
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)))
            order[n++] = b, code[b] = 256 + extra++;
}

static int utf8_put(char *out, int cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* vocab.json (token -> id, the layout of VLP_TOKENIZER_VOCAB_SIZE) from the
 * merges file just written. */
static int write_vocab_json(const char *dir, const char *merges_path, int vocab) {
    char *text = vlp_read_text(merges_path);
    if (!text) return vlp_error_set(VLP_EIO, "%s: %s", merges_path, strerror(errno));
    cJSON *j = cJSON_CreateObject();
    int order[256], code[256], id = 0;
    byte_symbols(order, code);
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 256; i++) {
            char tok[16];
            int len = utf8_put(tok, code[order[i]]);
            snprintf(tok + len, sizeof tok - (size_t)len, "%s", w ? "</w>" : "");
            cJSON_AddNumberToObject(j, tok, id++);
        }
    char *line = strchr(text, '\n'); /* after the "#version" header */
    while (line && *++line) {
        char *end = strchr(line, '\n'), *space = strchr(line, ' ');
        if (end) *end = '\0';
        if (space && id < vocab - 2) {
            memmove(space, space + 1, strlen(space)); /* "a b" -> "ab" */
            cJSON_AddNumberToObject(j, line, id++);
        }
        line = end;
    }
    free(text);
    cJSON_AddNumberToObject(j, "<|startoftext|>", id++);
    cJSON_AddNumberToObject(j, "<|endoftext|>", id++);
    if (id != vocab) {
        cJSON_Delete(j);
        return vlp_error_set(VLP_EFORMAT, "%s: %d tokens, the model's vocabulary is %d", merges_path, id, vocab);
    }
    return write_json(dir, "vocab.json", j);
}

static int write_hf_tokenizer_files(const char *dir, int context_length) {
    cJSON *special = cJSON_CreateObject();
    cJSON_AddStringToObject(special, "bos_token", "<|startoftext|>");
    cJSON_AddStringToObject(special, "eos_token", "<|endoftext|>");
    cJSON_AddStringToObject(special, "unk_token", "<|endoftext|>");
    cJSON_AddStringToObject(special, "pad_token", "<|endoftext|>");
    cJSON *tc = cJSON_Duplicate(special, true);
    cJSON_AddStringToObject(tc, "tokenizer_class", "CLIPTokenizer");
    cJSON_AddNumberToObject(tc, "model_max_length", context_length);
    cJSON_AddStringToObject(tc, "errors", "replace");
    int rc = write_json(dir, "special_tokens_map.json", special);
    return rc ? (cJSON_Delete(tc), rc) : write_json(dir, "tokenizer_config.json", tc);
}

int vlp_pretrained_export(const char *run, const char *out, vlp_pretrained_format format) {
    vlp_model model;
    vlp_tokenizer *tok;
    int rc = vlp_model_load(run, &model, &tok);
    if (rc) return rc;
    if (model.kind != VLP_MODEL_CLIP) {
        rc = vlp_error_set(VLP_EINVAL, "%s: a %s model; OpenCLIP and Hugging Face folders hold CLIP models", run,
                           vlp_model_kind_name(model.kind));
        vlp_model_free(&model), vlp_tokenizer_free(tok);
        return rc;
    }
    const vlp_clip *mp = &model.clip;
    const vlp_config c = model.cfg;
    int vocab = vlp_tokenizer_vocab_size(tok), count = mp->params.count, n = 0;
    vlp_st_entry *e = vlp_calloc((size_t)count * 3, sizeof *e);
    float **owned = vlp_calloc((size_t)count * 3, sizeof *owned);
    char (*names)[NAME_MAX_LEN] = vlp_calloc((size_t)count * 3, NAME_MAX_LEN);
    for (int i = 0; i < count; i++) {
        const vlp_param *p = &mp->params.table[i];
        const float *data = mp->params.data + p->offset;
        int how = COPY, parts = 1;
        if (format == VLP_PRETRAINED_HF) parts = hf_names(p->name, names + n, &how);
        else snprintf(names[n], NAME_MAX_LEN, "%s", p->name);
        VLP_ASSERT(parts > 0, "no Hugging Face name for %s", p->name);
        for (int k = 0; k < parts; k++) {
            vlp_st_entry *x = &e[n + k];
            x->name = names[n + k];
            x->ndim = p->t->ndim;
            for (int d = 0; d < p->t->ndim; d++) x->shape[d] = p->t->shape[d];
            x->data = data;
            if (how == QKV) x->shape[0] /= 3, x->data = data + k * (p->t->n / 3);
        }
        if (how == TRANSPOSE) {
            int64_t rows = p->t->shape[0], cols = p->t->shape[1];
            float *t = owned[n] = vlp_malloc(sizeof(float) * (size_t)p->t->n);
            for (int64_t r = 0; r < rows; r++)
                for (int64_t col = 0; col < cols; col++) t[col * rows + r] = data[r * cols + col];
            e[n].shape[0] = cols, e[n].shape[1] = rows, e[n].data = t;
        }
        if (!strcmp(p->name, "logit_scale")) e[n].ndim = 0; /* PyTorch's 0-d parameter */
        n += parts;
    }
    char path[VLP_PATH_MAX * 2];
    if (!rc && vlp_make_dirs(out)) rc = vlp_error_set(VLP_EIO, "%s: cannot create the folder: %s", out, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", out,
             format == VLP_PRETRAINED_HF ? "model.safetensors" : "open_clip_model.safetensors");
    if (!rc) rc = vlp_safetensors_write(path, e, n, NULL);
    snprintf(path, sizeof path, "%s/merges.txt", out);
    if (!rc) rc = vlp_tokenizer_save(tok, path);
    if (!rc && format == VLP_PRETRAINED_OPEN_CLIP) rc = write_json(out, "open_clip_config.json", open_clip_config(&c, vocab));
    if (!rc && format == VLP_PRETRAINED_HF) {
        rc = write_json(out, "config.json", hf_config(&c, vocab, mp->logit_scale->data[0]));
        if (!rc) rc = write_json(out, "preprocessor_config.json", hf_preprocessor(&c));
        if (!rc) rc = write_vocab_json(out, path, vocab);
        if (!rc) rc = write_hf_tokenizer_files(out, c.model.context_length);
    }
    for (int i = 0; i < count * 3; i++) free(owned[i]);
    free(owned), free(e), free(names);
    vlp_tokenizer_free(tok);
    vlp_model_free(&model);
    return rc;
}
