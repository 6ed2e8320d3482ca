/* model_hf.c - a Hugging Face checkpoint directory as a slora_model.
 *
 * The directory holds config.json, the weights as model.safetensors or as
 * shards listed by model.safetensors.index.json ({"weight_map": {tensor:
 * file}}), and the tokenizer (tokenizer.json, tokenizer_config.json for the
 * chat template and special tokens). Families: model_type "llama" and
 * "mistral" (architecture llama) and "qwen2"; F32, F16 and BF16 tensors,
 * used in place from the mapped shards.
 *
 * HF's llama q_proj/k_proj rows are in rotate-half order (llama.cpp's
 * converter permutes them for GGUF). They are used as they are, with NEOX
 * RoPE, which computes the same attention; the config's qk_rotate_half
 * tells the adapter path (deltas are defined in GGUF order) and the writers
 * to permute. qwen2 keeps HF's order in GGUF too.
 *
 * Unsupported features are refused naming the config key: other model
 * types or activations, head_dim other than hidden_size / heads, RoPE
 * scaling other than linear and llama3 (applied as per-dimension divisors,
 * as GGUF's rope_freqs.weight), MLP biases, a sliding window shorter than
 * the served context.
 */
#include "internal.h"
#include "model_internal.h"

#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/log.h>
#include <slora/safetensors.h>
#include <slora/tokenizer.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JSON_BYTES ((size_t)64 << 20) /* config, index, tokenizer files */
#define MAX_SHARDS 256

struct hf {
    const char *dir;
    char *diag;
    size_t diag_len;
    json_t *config;
    struct slora_st **st; /* (n_shards) parsed shards, views into m->shards */
    int n_shards;
};

static int read_json(struct hf *h, const char *name, bool required, json_t **out)
{
    char path[4096], rdiag[256];
    snprintf(path, sizeof(path), "%s/%s", h->dir, name);
    void *buf;
    size_t len;
    *out = NULL;
    int rc = slora_fsio_read_file(path, MAX_JSON_BYTES, &buf, &len, rdiag, sizeof(rdiag));
    if (rc == SLORA_ENOTFOUND && !required)
        return 0;
    if (rc)
        return slora__diag(h->diag, h->diag_len, rc, "%s: %s", h->dir, rdiag);
    json_error_t jerr;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/%s: not a JSON object (line %d: %s)", h->dir, name, jerr.line,
                           jerr.text);
    }
    return 0;
}

/* config.json integer key in [lo, hi]; absent: dflt, or required when dflt < lo. */
static int cfg_int(struct hf *h, const char *key, int lo, int hi, int dflt, int *out)
{
    json_t *v = json_object_get(h->config, key);
    if (!v || json_is_null(v)) {
        if (dflt < lo)
            return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                               "%s/config.json: missing key %s", h->dir, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: key %s must be an integer in %d..%d", h->dir, key, lo,
                           hi);
    *out = (int)json_integer_value(v);
    return 0;
}

static int cfg_num(struct hf *h, json_t *obj, const char *key, double dflt, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (isnan(dflt))
            return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                               "%s/config.json: missing key %s", h->dir, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: key %s must be a finite number", h->dir, key);
    *out = json_number_value(v);
    return 0;
}

static bool cfg_true(struct hf *h, const char *key)
{
    return json_is_true(json_object_get(h->config, key));
}

/* A token id key that may be an integer or a list of them (the first). */
static int cfg_token(struct hf *h, const char *key, int vocab, int *out)
{
    json_t *v = json_object_get(h->config, key);
    *out = -1;
    if (json_is_array(v))
        v = json_array_get(v, 0);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= vocab)
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: key %s must be a token id below %d", h->dir, key,
                           vocab);
    *out = (int)json_integer_value(v);
    return 0;
}

/* rope_scaling: linear as a position scale; llama3 as per-dimension
 * divisors (rope_freqs, computed as llama.cpp's converter does); anything
 * else refused. */
static int rope_scaling(struct hf *h, struct slora_model_config *c, float **freqs)
{
    json_t *rs = json_object_get(h->config, "rope_scaling");
    *freqs = NULL;
    if (!rs || json_is_null(rs))
        return 0;
    if (!json_is_object(rs))
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: key rope_scaling must be an object or null", h->dir);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t)
        t = json_object_get(rs, "type");
    const char *type = json_string_value(t);
    double factor;
    int rc;
    if (!type)
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: rope_scaling needs a rope_type", h->dir);
    if (!strcmp(type, "default"))
        return 0;
    if ((rc = cfg_num(h, rs, "factor", NAN, &factor)))
        return rc;
    if (!(factor > 0))
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: rope_scaling.factor must be positive", h->dir);
    if (!strcmp(type, "linear")) {
        c->rope_freq_scale = (float)(1.0 / factor);
        return 0;
    }
    if (strcmp(type, "llama3"))
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: rope_scaling.rope_type '%.32s' is not supported "
                           "(linear, llama3)",
                           h->dir, type);
    double low, high, old_ctx;
    if ((rc = cfg_num(h, rs, "low_freq_factor", NAN, &low)) ||
        (rc = cfg_num(h, rs, "high_freq_factor", NAN, &high)) ||
        (rc = cfg_num(h, rs, "original_max_position_embeddings", NAN, &old_ctx)))
        return rc;
    if (!(high > low) || !(low > 0) || !(old_ctx > 0))
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/config.json: rope_scaling needs 0 < low_freq_factor < "
                           "high_freq_factor and a positive original_max_position_embeddings",
                           h->dir);
    int half = c->head_dim / 2;
    float *f = malloc((size_t)half * sizeof(float));
    if (!f)
        return SLORA_ENOMEM;
    double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
    for (int i = 0; i < half; i++) {
        double freq = 1.0 / pow(c->rope_theta, 2.0 * i / c->head_dim);
        double wavelen = 2 * M_PI / freq;
        if (wavelen < high_wavelen) {
            f[i] = 1.0f;
        } else if (wavelen > low_wavelen) {
            f[i] = (float)factor;
        } else {
            double smooth = (old_ctx / wavelen - low) / (high - low);
            f[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    *freqs = f;
    return 0;
}

static int read_config(struct hf *h, int max_context, struct slora_model_config *c,
                       float **rope_freqs)
{
    int rc = read_json(h, "config.json", true, &h->config);
    if (rc)
        return rc;
    const char *type = json_string_value(json_object_get(h->config, "model_type"));
    memset(c, 0, sizeof(*c));
    if (type && (!strcmp(type, "llama") || !strcmp(type, "mistral"))) {
        c->arch = SLORA_ARCH_LLAMA;
        c->qk_rotate_half = true;
    } else if (type && !strcmp(type, "qwen2")) {
        c->arch = SLORA_ARCH_QWEN2;
        c->qkv_bias = true;
    } else {
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: model_type '%.64s' is not supported (llama, mistral, "
                           "qwen2)",
                           h->dir, type ? type : "(missing)");
    }
    c->rope_style = SLORA_ROPE_NEOX; /* HF's rotate-half, whatever the family */
    struct slora_shape *s = &c->shape;
    double eps, theta;
    int head_dim, window;
    if ((rc = cfg_int(h, "hidden_size", 1, INT32_MAX, -1, &s->dim)) ||
        (rc = cfg_int(h, "intermediate_size", 1, INT32_MAX, -1, &s->hidden_dim)) ||
        (rc = cfg_int(h, "num_hidden_layers", 1, INT32_MAX, -1, &s->n_layers)) ||
        (rc = cfg_int(h, "num_attention_heads", 1, INT32_MAX, -1, &s->n_heads)) ||
        (rc = cfg_int(h, "num_key_value_heads", 1, INT32_MAX, s->n_heads, &s->n_kv_heads)) ||
        (rc = cfg_int(h, "vocab_size", 1, INT32_MAX, -1, &s->vocab_size)) ||
        (rc = cfg_int(h, "max_position_embeddings", 1, INT32_MAX, -1, &c->n_ctx_train)) ||
        (rc = cfg_num(h, h->config, "rms_norm_eps", NAN, &eps)) ||
        (rc = cfg_num(h, h->config, "rope_theta", 10000.0, &theta)))
        return rc;
    c->rms_eps = (float)eps;
    c->rope_theta = (float)theta;
    c->rope_freq_scale = 1.0f;
    c->head_dim = s->dim / s->n_heads;
    if ((rc = cfg_int(h, "head_dim", 1, INT32_MAX, c->head_dim, &head_dim)))
        return rc;
    if (head_dim != c->head_dim || s->dim % s->n_heads)
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: key head_dim is %d, not hidden_size / "
                           "num_attention_heads = %d / %d",
                           h->dir, head_dim, s->dim, s->n_heads);
    const char *act = json_string_value(json_object_get(h->config, "hidden_act"));
    if (act && strcmp(act, "silu"))
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: key hidden_act '%.32s' is not supported (silu)",
                           h->dir, act);
    if (cfg_true(h, "mlp_bias"))
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: key mlp_bias: MLP biases are not supported", h->dir);
    if (c->arch == SLORA_ARCH_LLAMA && cfg_true(h, "attention_bias"))
        c->qkv_bias = true;
    c->shared_classifier = cfg_true(h, "tie_word_embeddings");
    c->seq_len = c->n_ctx_train < max_context ? c->n_ctx_train : max_context;
    /* qwen2 declares a window it does not use unless use_sliding_window */
    bool windowed = c->arch == SLORA_ARCH_LLAMA || cfg_true(h, "use_sliding_window");
    if ((rc = cfg_int(h, "sliding_window", 0, INT32_MAX, 0, &window)))
        return rc;
    if (windowed && window > 0 && window < c->seq_len)
        return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                           "%s/config.json: key sliding_window is %d, shorter than the served "
                           "context %d (sliding-window attention is not supported; serve at most "
                           "%d tokens with max_context)",
                           h->dir, window, c->seq_len, window);
    if ((rc = cfg_token(h, "bos_token_id", s->vocab_size, &c->bos_id)) ||
        (rc = cfg_token(h, "eos_token_id", s->vocab_size, &c->eos_id)))
        return rc;
    c->add_bos = c->arch == SLORA_ARCH_LLAMA && c->bos_id >= 0;
    if ((rc = slora_model_check_config(h->dir, c, h->diag, h->diag_len)))
        return rc;
    return rope_scaling(h, c, rope_freqs);
}

/* Validate a shard file name from the index: a plain file in the directory. */
static bool shard_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 12 && n < 256 && !strchr(s, '/') && s[0] != '.' &&
           !strcmp(s + n - 12, ".safetensors");
}

static int open_shard(struct hf *h, struct slora_model *m, const char *file)
{
    char path[4096], sdiag[256];
    snprintf(path, sizeof(path), "%s/%s", h->dir, file);
    int i = h->n_shards;
    int rc = slora__model_map(path, &m->shards[i], &m->shard_lens[i], h->diag, h->diag_len);
    if (rc)
        return rc;
    m->n_shards++;
    h->n_shards++;
    if ((rc = slora_st_parse(m->shards[i], m->shard_lens[i], &h->st[i], sdiag, sizeof(sdiag))))
        return slora__diag(h->diag, h->diag_len, rc, "%s: %s", path, sdiag);
    return 0;
}

static int open_shards(struct hf *h, struct slora_model *m)
{
    json_t *index = NULL;
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.safetensors", h->dir);
    bool single = !access(path, F_OK);
    int rc = single ? 0 : read_json(h, "model.safetensors.index.json", true, &index);
    if (rc)
        return rc;
    json_t *map = single ? NULL : json_object_get(index, "weight_map");
    if (!single && !json_is_object(map)) {
        json_decref(index);
        return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                           "%s/model.safetensors.index.json: no weight_map object", h->dir);
    }
    /* distinct files, in first-seen order */
    const char *files[MAX_SHARDS];
    int n = 0;
    if (single) {
        files[n++] = "model.safetensors";
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(map, k, v) {
            const char *f = json_string_value(v);
            if (!f || !shard_name_ok(f)) {
                /* k belongs to index: format the message before releasing it */
                rc = slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                                 "%s/model.safetensors.index.json: tensor '%.64s' maps to an "
                                 "invalid file name",
                                 h->dir, k);
                json_decref(index);
                return rc;
            }
            bool seen = false;
            for (int i = 0; i < n && !seen; i++)
                seen = !strcmp(files[i], f);
            if (seen)
                continue;
            if (n == MAX_SHARDS) {
                json_decref(index);
                return slora__diag(h->diag, h->diag_len, SLORA_ELIMIT,
                                   "%s/model.safetensors.index.json: more than %d shards", h->dir,
                                   MAX_SHARDS);
            }
            files[n++] = f;
        }
    }
    m->shards = calloc((size_t)n, sizeof(*m->shards));
    m->shard_lens = calloc((size_t)n, sizeof(*m->shard_lens));
    h->st = calloc((size_t)n, sizeof(*h->st));
    rc = m->shards && m->shard_lens && h->st ? 0 : SLORA_ENOMEM;
    for (int i = 0; !rc && i < n; i++)
        rc = open_shard(h, m, files[i]);
    json_decref(index);
    return rc;
}

/* The HF name of GGUF tensor `name` ("blk.3.attn_q.weight" ->
 * "model.layers.3.self_attn.q_proj.weight"). */
static void hf_name(const char *name, char *out, size_t len)
{
    static const char *const map[][2] = {
        {"attn_norm.weight", "input_layernorm.weight"},
        {"ffn_norm.weight", "post_attention_layernorm.weight"},
        {"attn_q.", "self_attn.q_proj."},
        {"attn_k.", "self_attn.k_proj."},
        {"attn_v.", "self_attn.v_proj."},
        {"attn_output.", "self_attn.o_proj."},
        {"ffn_gate.", "mlp.gate_proj."},
        {"ffn_down.", "mlp.down_proj."},
        {"ffn_up.", "mlp.up_proj."},
    };
    int layer, at;
    if (!strcmp(name, "token_embd.weight")) {
        snprintf(out, len, "model.embed_tokens.weight");
    } else if (!strcmp(name, "output_norm.weight")) {
        snprintf(out, len, "model.norm.weight");
    } else if (!strcmp(name, "output.weight")) {
        snprintf(out, len, "lm_head.weight");
    } else if (sscanf(name, "blk.%d.%n", &layer, &at) == 1) {
        const char *rest = name + at;
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            size_t n = strlen(map[i][0]);
            if (!strncmp(rest, map[i][0], n)) {
                snprintf(out, len, "model.layers.%d.%s%s", layer, map[i][1], rest + n);
                return;
            }
        }
        snprintf(out, len, "%s", name);
    } else {
        snprintf(out, len, "%s", name);
    }
}

static const struct slora_st_tensor *find(struct hf *h, const char *name, int *shard)
{
    for (int i = 0; i < h->n_shards; i++) {
        const struct slora_st_tensor *t = slora_st_find(h->st[i], name);
        if (t) {
            *shard = i;
            return t;
        }
    }
    return NULL;
}

static uint32_t dtype_of(enum slora_st_dtype d)
{
    return d == SLORA_ST_F32 ? SLORA_DTYPE_F32 : d == SLORA_ST_F16 ? SLORA_DTYPE_F16
                                                                    : SLORA_DTYPE_BF16;
}

/* Tensors HF checkpoints carry that the model does not need. */
static bool ignorable(const char *name, bool tied)
{
    return strstr(name, "rotary_emb.inv_freq") || (tied && !strcmp(name, "lm_head.weight"));
}

static int bind(struct hf *h, struct slora_model *m)
{
    int n = slora_model_n_tensors(m), total = 0, used = 0;
    size_t owned = 0;
    for (int i = 0; i < h->n_shards; i++)
        total += h->st[i]->n_tensors;
    m->weight_bytes = 0;
    /* pass 1: find and check; vectors in 16-bit types are converted */
    for (int pass = 0; pass < 2; pass++) {
        float *dst = m->owned;
        for (int i = 0; i < n; i++) {
            struct slora__model_slot sl = slora__model_slot(m, i);
            char name[128];
            hf_name(sl.name, name, sizeof(name));
            int shard;
            const struct slora_st_tensor *t = find(h, name, &shard);
            if (!t)
                return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT, "%s: missing tensor '%s'",
                                   h->dir, name);
            bool shape_ok = sl.vec ? t->n_dims == 1 && t->shape[0] == sl.cols
                                   : t->n_dims == 2 && t->shape[0] == sl.rows &&
                                         t->shape[1] == sl.cols;
            if (!shape_ok)
                return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                                   "%s: tensor '%s' has shape [%lld%s%lld], expected [%lld, %lld]",
                                   h->dir, name, (long long)t->shape[0],
                                   t->n_dims > 1 ? ", " : "",
                                   t->n_dims > 1 ? (long long)t->shape[1] : 0LL,
                                   (long long)sl.rows, (long long)sl.cols);
            uint32_t type = dtype_of(t->dtype);
            bool vec_in_place = type == SLORA_DTYPE_F32 && !((uintptr_t)t->data % 4);
            if (pass == 0) {
                used++;
                m->weight_bytes += t->n_bytes;
                if (sl.vec && !vec_in_place)
                    owned += (size_t)sl.cols;
                continue;
            }
            if (sl.mat) {
                slora_tensor_init(sl.mat, type, t->data, sl.rows, sl.cols);
            } else if (vec_in_place) {
                *sl.vec = t->data;
            } else {
                slora_st_to_f32(t, dst);
                *sl.vec = dst;
                dst += sl.cols;
            }
        }
        if (pass == 1)
            break;
        for (int s = 0; s < h->n_shards; s++)
            for (int j = 0; j < h->st[s]->n_tensors; j++) {
                const char *name = h->st[s]->tensors[j].name;
                if (ignorable(name, m->cfg.shared_classifier)) {
                    used++;
                    continue;
                }
                /* every other tensor must be one the model binds */
                bool known = false;
                for (int i = 0; i < n && !known; i++) {
                    struct slora__model_slot sl = slora__model_slot(m, i);
                    char hn[128];
                    hf_name(sl.name, hn, sizeof(hn));
                    known = !strcmp(hn, name);
                }
                if (!known)
                    return slora__diag(h->diag, h->diag_len, SLORA_EUNSUPPORTED,
                                       "%s: tensor '%.64s' is not part of a supported model",
                                       h->dir, name);
            }
        if (used != total)
            return slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                               "%s: a tensor appears in more than one shard", h->dir);
        if (owned && !(m->owned = malloc(owned * sizeof(float))))
            return SLORA_ENOMEM;
    }
    if (m->cfg.shared_classifier)
        m->wcls = m->tok_emb;
    return 0;
}

/* The chat template and add_bos_token of tokenizer_config.json. */
static int tokenizer_config(struct hf *h, struct slora_model *m)
{
    json_t *tc;
    int rc = read_json(h, "tokenizer_config.json", false, &tc);
    if (rc || !tc)
        return rc;
    json_t *add_bos = json_object_get(tc, "add_bos_token");
    if (json_is_boolean(add_bos))
        m->cfg.add_bos = json_is_true(add_bos) && m->cfg.bos_id >= 0;
    json_t *tpl = json_object_get(tc, "chat_template");
    if (json_is_array(tpl)) { /* named templates: the default one */
        size_t i;
        json_t *e, *pick = NULL;
        json_array_foreach(tpl, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && !strcmp(name, "default"))
                pick = json_object_get(e, "template");
        }
        tpl = pick;
    }
    if (json_is_string(tpl) && !(m->chat_template = strdup(json_string_value(tpl))))
        rc = SLORA_ENOMEM;
    json_decref(tc);
    return rc;
}

/* The vocabulary of tokenizer.json (with tokenizer_config.json's special
 * tokens), when the directory has one, padded to the model's vocab_size. */
static int tokenizer(struct hf *h, struct slora_model *m)
{
    char path[4096], rdiag[256], tdiag[256];
    void *json = NULL, *config = NULL;
    size_t json_len, config_len = 0;
    snprintf(path, sizeof(path), "%s/tokenizer.json", h->dir);
    int rc = slora_fsio_read_file(path, MAX_JSON_BYTES, &json, &json_len, rdiag, sizeof(rdiag));
    if (rc == SLORA_ENOTFOUND)
        return 0;
    snprintf(path, sizeof(path), "%s/tokenizer_config.json", h->dir);
    if (!rc && (rc = slora_fsio_read_file(path, MAX_JSON_BYTES, &config, &config_len, rdiag,
                                          sizeof(rdiag))) == SLORA_ENOTFOUND)
        rc = 0;
    if (rc)
        rc = slora__diag(h->diag, h->diag_len, rc, "%s: %s", h->dir, rdiag);
    else if ((rc = slora_tokenizer_new_from_hf(json, json_len, config, config_len,
                                               m->cfg.shape.vocab_size, &m->gguf_vocab, tdiag,
                                               sizeof(tdiag))))
        rc = slora__diag(h->diag, h->diag_len, rc, "%s: %s", h->dir, tdiag);
    else if (slora_tokenizer_vocab_size(m->gguf_vocab) != m->cfg.shape.vocab_size)
        rc = slora__diag(h->diag, h->diag_len, SLORA_EFORMAT,
                         "%s: tokenizer.json has %d tokens, the model's vocab_size is %d", h->dir,
                         slora_tokenizer_vocab_size(m->gguf_vocab), m->cfg.shape.vocab_size);
    free(json);
    free(config);
    return rc;
}

int slora__model_load_hf(struct slora_model **out, const char *dir, int max_context, char *diag,
                         size_t diag_len)
{
    struct hf h = {.dir = dir, .diag = diag, .diag_len = diag_len};
    struct slora_model_config cfg;
    struct slora_model *m = NULL;
    float *freqs = NULL;
    int rc = read_config(&h, max_context, &cfg, &freqs);
    if (rc)
        goto out;
    if (!(m = slora__model_alloc(dir, &cfg))) {
        rc = SLORA_ENOMEM;
        goto out;
    }
    if ((rc = open_shards(&h, m)) || (rc = bind(&h, m)) || (rc = tokenizer_config(&h, m)) ||
        (rc = tokenizer(&h, m)))
        goto out;
    m->rope_freqs = m->rope_freqs_buf = freqs;
    freqs = NULL;
    *out = m;
    m = NULL;
out:
    for (int i = 0; i < h.n_shards; i++)
        slora_st_free(h.st[i]);
    free(h.st);
    json_decref(h.config);
    free(freqs);
    slora_model_free(m);
    return rc;
}
