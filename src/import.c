/* import.c - PEFT and llama.cpp GGUF LoRA adapters to SuperLoRA v1 files
 * (import.h). Both readers fill one table of per-(layer, module) LoRA
 * pairs (factors converted to float32, their scale); emit() writes the
 * SuperLoRA file from it. */
#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/import.h>
#include <slora/model.h>
#include <slora/quant.h>
#include <slora/safetensors.h>
#include <slora/tar.h>
#include <slora/tensor.h>

#include "internal.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATTERNS 256    /* keys of rank_pattern or alpha_pattern */
#define MAX_PATTERN_LEN 256 /* bytes of one key */
#define MAX_QUANTIFIERS 8   /* * + ? in one key */

/* One LoRA pair: dW = scale * B A (rows in the source's order). */
struct lora {
    int64_t r;
    double scale;
    float *a; /* (r, in), owned */
    float *b; /* (out, r), owned */
};

/* (n_layers, SLORA_MOD_COUNT) pairs; r == 0: absent. */
struct lora_set {
    const struct slora_import_target *t;
    bool permute_qk; /* HF-ordered q/k rows (PEFT on a llama base) */
    struct lora *p;
};

static const char *const peft_names[SLORA_MOD_COUNT] = {
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj"};
static const char *const gguf_names[SLORA_MOD_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"};

void slora_import_target_init(struct slora_import_target *t, const struct slora_model *m)
{
    /* llama's GGUF keeps Meta's interleaved q/k rows; qwen2's keeps HF's order */
    bool llama = m->cfg.arch == SLORA_ARCH_LLAMA;
    *t = (struct slora_import_target){.shape = m->cfg.shape,
                                      .head_size = m->cfg.head_dim,
                                      .permute_qk = llama,
                                      .arch = llama ? "llama" : "qwen2"};
}

static int set_init(struct lora_set *s, const struct slora_import_target *t, bool permute_qk)
{
    s->t = t;
    s->permute_qk = permute_qk;
    s->p = calloc((size_t)t->shape.n_layers * SLORA_MOD_COUNT, sizeof(*s->p));
    return s->p ? 0 : SLORA_ENOMEM;
}

static void set_free(struct lora_set *s)
{
    if (!s->p)
        return;
    for (int i = 0; i < s->t->shape.n_layers * SLORA_MOD_COUNT; i++) {
        free(s->p[i].a);
        free(s->p[i].b);
    }
    free(s->p);
}

static struct lora *pair(struct lora_set *s, int layer, int m)
{
    return &s->p[(size_t)layer * SLORA_MOD_COUNT + m];
}

/* Check a factor's shape against (rows, cols) and return its float32
 * copy; kind names it ("lora_A"). r receives/compares the rank. */
static int take_factor(const char *name, int64_t rows, int64_t cols, int64_t want_rows,
                       int64_t want_cols, float **out, char *diag, size_t diag_len)
{
    if (rows != want_rows || cols != want_cols)
        return slora__diag(diag, diag_len, SLORA_EMISMATCH,
                           "tensor %s: shape (%lld, %lld), the base needs (%lld, %lld)", name,
                           (long long)rows, (long long)cols, (long long)want_rows,
                           (long long)want_cols);
    *out = malloc((size_t)rows * (size_t)cols * sizeof(float));
    return *out ? 0 : SLORA_ENOMEM;
}

static int check_finite(const char *name, const float *v, int64_t n, char *diag, size_t diag_len)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return slora__diag(diag, diag_len, SLORA_ENONFINITE,
                               "tensor %s: non-finite value at element %lld", name, (long long)i);
    return 0;
}

/* ---- emit ------------------------------------------------------------- */

/* Row of the GGUF (interleaved pairs) order that HF's rotate-half row hf
 * of a head_size-row head holds: hf = h hs + p hs/2 + i  ->  h hs + 2 i + p. */
static int64_t gguf_row(int64_t hf, int hs)
{
    int64_t h = hf / hs, k = hf % hs, half = hs / 2;
    return h * hs + 2 * (k % half) + k / half;
}

struct emitted {
    float **bufs; /* (2 J) owned factor copies */
    struct slora_st_out *ts;
    char (*names)[24];
};

static int write_file(const struct slora_st_out *ts, int n, const char *meta, void **out,
                      size_t *out_len, char *diag, size_t diag_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return SLORA_ENOMEM;
    const char *kv[2] = {"superlora", meta};
    int err = slora_st_write(f, ts, n, kv, 1);
    if (fclose(f) && !err)
        err = SLORA_ENOMEM;
    if (err) {
        free(buf);
        return slora__diag(diag, diag_len, err, "writing the SuperLoRA file: %s",
                           slora_strerror(err));
    }
    *out = buf;
    *out_len = len;
    return 0;
}

static json_t *config_json(const struct slora_shape *b, const bool *mods, const bool *layers,
                           int n_layers, double alpha)
{
    json_t *m = json_array(), *l = json_array();
    for (int i = 0; i < SLORA_MOD_COUNT; i++)
        if (mods[i])
            json_array_append_new(m, json_string(slora_arch_module_name(i)));
    for (int i = 0; i < n_layers; i++)
        if (layers[i])
            json_array_append_new(l, json_integer(i));
    return json_pack("{s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:o, s:o, s:s, s:f}", "version", 1,
                     "base", "dim", b->dim, "n_layers", b->n_layers, "n_heads", b->n_heads,
                     "n_kv_heads", b->n_kv_heads, "hidden_dim", b->hidden_dim, "vocab_size",
                     b->vocab_size, "modules", m, "layers", l, "groups", "matrix", "alpha", alpha);
}

static int emit(struct lora_set *s, void **out, size_t *out_len, char *diag, size_t diag_len)
{
    const struct slora_import_target *t = s->t;
    int L = t->shape.n_layers;
    bool mods[SLORA_MOD_COUNT] = {0}, *layers = calloc(L > 0 ? (size_t)L : 1, 1);
    if (!layers)
        return SLORA_ENOMEM;
    bool common = true, any = false;
    double scale = 0;
    for (int l = 0; l < L; l++)
        for (int m = 0; m < SLORA_MOD_COUNT; m++) {
            struct lora *p = pair(s, l, m);
            if (!p->r)
                continue;
            mods[m] = layers[l] = true;
            common = common && (!any || p->scale == scale);
            scale = p->scale;
            any = true;
        }
    int err = 0;
    json_t *cfg = NULL;
    char *meta = NULL;
    struct emitted e = {0};
    if (!any) {
        err = slora__diag(diag, diag_len, SLORA_EFORMAT, "the adapter has no LoRA factors");
        goto done;
    }
    int J = 0;
    for (int l = 0; l < L; l++)
        for (int m = 0; m < SLORA_MOD_COUNT; m++)
            J += layers[l] && mods[m];
    e.bufs = calloc((size_t)J * 2, sizeof(*e.bufs));
    e.ts = calloc((size_t)J * 2, sizeof(*e.ts));
    e.names = calloc((size_t)J * 2, sizeof(*e.names));
    if (!e.bufs || !e.ts || !e.names) {
        err = SLORA_ENOMEM;
        goto done;
    }
    int j = 0;
    for (int l = 0; l < L; l++) {
        for (int m = 0; m < SLORA_MOD_COUNT; m++) {
            if (!layers[l] || !mods[m])
                continue;
            struct lora *p = pair(s, l, m);
            int64_t rows, cols, r = p->r ? p->r : 1;
            slora_arch_module_dims(&t->shape, m, &rows, &cols);
            float *b = calloc((size_t)(rows * r), sizeof(float));
            float *at = calloc((size_t)(cols * r), sizeof(float));
            e.bufs[2 * j] = b;
            e.bufs[2 * j + 1] = at;
            if (!b || !at) {
                err = SLORA_ENOMEM;
                goto done;
            }
            if (p->r) {
                /* A_{0,0} = B, rows moved to GGUF order; A_{0,1} = A^T */
                bool perm = s->permute_qk && (m == SLORA_MOD_WQ || m == SLORA_MOD_WK);
                for (int64_t i = 0; i < rows; i++) {
                    float *dst = b + (perm ? gguf_row(i, t->head_size) : i) * r;
                    for (int64_t k = 0; k < r; k++)
                        dst[k] = common ? p->b[i * r + k] : (float)(p->b[i * r + k] * p->scale);
                }
                for (int64_t k = 0; k < r; k++)
                    for (int64_t i = 0; i < cols; i++)
                        at[i * r + k] = p->a[k * cols + i];
            }
            for (int f = 0; f < 2; f++) {
                snprintf(e.names[2 * j + f], sizeof(e.names[0]), "g%d.k0.f%d", j, f);
                e.ts[2 * j + f] = (struct slora_st_out){
                    .name = e.names[2 * j + f],
                    .n_dims = 2,
                    .shape = {f ? cols : rows, r},
                    .data = e.bufs[2 * j + f],
                };
            }
            j++;
        }
    }
    cfg = config_json(&t->shape, mods, layers, L, common ? scale : 1.0);
    meta = cfg ? json_dumps(cfg, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    if (!meta) {
        err = SLORA_ENOMEM;
        goto done;
    }
    err = write_file(e.ts, 2 * J, meta, out, out_len, diag, diag_len);
done:
    if (e.bufs)
        for (int i = 0; i < 2 * J; i++)
            free(e.bufs[i]);
    free(e.bufs);
    free(e.ts);
    free(e.names);
    free(meta);
    json_decref(cfg);
    free(layers);
    return err;
}

/* ---- PEFT ------------------------------------------------------------- */

struct peft {
    int64_t r;
    double alpha;
    bool rslora;
    json_t *layers; /* layers_to_transform: NULL (all), an integer or an array */
    int n_pat[2];   /* rank_pattern, alpha_pattern */
    regex_t *pat[2];
    json_t *pat_val[2][MAX_PATTERNS];
};

static bool unset(const json_t *v)
{
    return !v || json_is_null(v) || json_is_false(v) || (json_is_array(v) && !json_array_size(v)) ||
           (json_is_object(v) && !json_object_size(v));
}

/* Options that change what a PEFT adapter computes, and why they cannot
 * be imported. */
static const char *const refused[][2] = {
    {"use_dora", "DoRA rescales each column of W + B A: not a LoRA delta"},
    {"modules_to_save",
     "fully trained modules (lm_head, embeddings) are not deltas slorad targets"},
    {"layer_replication", "replicated layers change the base model"},
    {"use_qalora", "QA-LoRA pools the input: not W + B A"},
    {"trainable_token_indices", "trained embedding rows cannot be targeted"},
    {"lora_bias", "a trained bias of lora_B is not a weight delta"},
    {"alora_invocation_tokens", "activated LoRA applies only after its tokens"},
    {"target_parameters", "LoRA on raw parameters (MoE experts) cannot be targeted"},
};

/* A pattern key Python's re and POSIX ERE read alike, and cheap to
 * compile: names, '.', "\\.", alternation, groups, bracket classes and
 * at most MAX_QUANTIFIERS single quantifiers (none stacked: "a++" or
 * "(a*)*"-like blow-ups of the regex compiler are refused, as are {n,m},
 * Python's \d \w (?...) and back-references). */
static bool pattern_ok(const char *key)
{
    size_t n = strlen(key);
    int quantifiers = 0;
    if (n == 0 || n > MAX_PATTERN_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (c == '\\') {
            if (key[i + 1] != '.')
                return false;
            i++;
        } else if (c == '*' || c == '+' || c == '?') {
            char prev = i ? key[i - 1] : '(';
            if (++quantifiers > MAX_QUANTIFIERS || prev == '*' || prev == '+' || prev == '?' ||
                prev == '(' || prev == '|' || (prev == ')' && quantifiers > 1))
                return false;
        } else if (!isalnum((unsigned char)c) && !strchr("_.-|()[]^$", c)) {
            return false;
        }
    }
    return true;
}

static int compile_patterns(struct peft *pc, int k, const json_t *obj, const char *what, char *diag,
                            size_t diag_len)
{
    if (unset(obj))
        return 0;
    if (!json_is_object(obj))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: not an object", what);
    if (json_object_size(obj) > MAX_PATTERNS)
        return slora__diag(diag, diag_len, SLORA_ELIMIT, "%s: more than %d keys", what,
                           MAX_PATTERNS);
    pc->pat[k] = calloc(json_object_size(obj), sizeof(regex_t));
    if (!pc->pat[k])
        return SLORA_ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = k == 0 ? json_is_integer(v) && json_integer_value(v) >= 1
                         : json_is_number(v) && isfinite(json_number_value(v));
        if (!ok)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s['%s']: %s", what, key,
                               k == 0 ? "not a positive integer" : "not a finite number");
        if (!pattern_ok(key))
            return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                               "%s key '%.64s': only simple regular expressions are read (names, "
                               "'.', '\\.', '|', groups, classes, single * + ?; up to %d bytes)",
                               what, key, MAX_PATTERN_LEN);
        char *re = malloc(strlen(key) + 16);
        if (!re)
            return SLORA_ENOMEM;
        sprintf(re, "^(.*\\.)?(%s)$", key);
        int rc = regcomp(&pc->pat[k][pc->n_pat[k]], re, REG_EXTENDED | REG_NOSUB);
        free(re);
        if (rc)
            return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                               "%s key '%s': not a regular expression slorad reads", what, key);
        pc->pat_val[k][pc->n_pat[k]++] = v;
    }
    return 0;
}

static void peft_free(struct peft *pc)
{
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < pc->n_pat[k]; i++)
            regfree(&pc->pat[k][i]);
        free(pc->pat[k]);
    }
}

static int peft_config(const json_t *c, struct peft *pc, char *diag, size_t diag_len)
{
    if (!json_is_object(c))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "adapter_config.json: not an object");
    const json_t *v = json_object_get(c, "peft_type");
    if (v && !(json_is_string(v) && !strcmp(json_string_value(v), "LORA")))
        return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                           "peft_type %s: only LORA adapters import",
                           json_is_string(v) ? json_string_value(v) : "(not a string)");
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (!unset(json_object_get(c, refused[i][0])))
            return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE, "%s is set: %s", refused[i][0],
                               refused[i][1]);
    v = json_object_get(c, "bias");
    if (v && !json_is_null(v) && !(json_is_string(v) && !strcmp(json_string_value(v), "none")))
        return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                           "bias = %s: trained biases cannot be imported (only \"none\")",
                           json_is_string(v) ? json_string_value(v) : "(not a string)");
    v = json_object_get(c, "target_modules");
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (!json_is_string(x))
                return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                   "target_modules[%zu]: not a string", i);
            if (slora_arch_module_parse(json_string_value(x)) < 0)
                return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                                   "target_modules: '%s' cannot be targeted (slorad adapts q_proj, "
                                   "k_proj, v_proj, o_proj, gate_proj, down_proj, up_proj)",
                                   json_string_value(x));
        }
    }
    v = json_object_get(c, "r");
    pc->r = 8; /* PEFT's defaults */
    if (v && !(json_is_integer(v) && json_integer_value(v) >= 1))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "r: not a positive integer");
    if (v)
        pc->r = json_integer_value(v);
    v = json_object_get(c, "lora_alpha");
    pc->alpha = 8;
    if (v && !(json_is_number(v) && isfinite(json_number_value(v))))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "lora_alpha: not a finite number");
    if (v)
        pc->alpha = json_number_value(v);
    v = json_object_get(c, "use_rslora");
    if (v && !json_is_boolean(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "use_rslora: not a boolean");
    pc->rslora = json_is_true(v);
    v = json_object_get(c, "fan_in_fan_out");
    if (v && !json_is_boolean(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "fan_in_fan_out: not a boolean");
    v = json_object_get(c, "layers_to_transform");
    if (v && !json_is_null(v)) {
        size_t i;
        json_t *x;
        bool ok = json_is_integer(v) || json_is_array(v);
        json_array_foreach(v, i, x) ok = ok && json_is_integer(x);
        if (!ok)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "layers_to_transform: not an integer or a list of integers");
        pc->layers = (json_t *)v;
    }
    int err =
        compile_patterns(pc, 0, json_object_get(c, "rank_pattern"), "rank_pattern", diag, diag_len);
    return err ? err
               : compile_patterns(pc, 1, json_object_get(c, "alpha_pattern"), "alpha_pattern", diag,
                                  diag_len);
}

/* First pattern of kind k matching name, or NULL. */
static const json_t *pattern(const struct peft *pc, int k, const char *name)
{
    for (int i = 0; i < pc->n_pat[k]; i++)
        if (!regexec(&pc->pat[k][i], name, 0, NULL, 0))
            return pc->pat_val[k][i];
    return NULL;
}

static bool layer_listed(const json_t *layers, int l)
{
    if (!layers)
        return true;
    if (json_is_integer(layers))
        return json_integer_value(layers) == l;
    size_t i;
    json_t *x;
    json_array_foreach(layers, i, x) if (json_integer_value(x) == l) return true;
    return false;
}

/* Parse `base_model.model.model.layers.{l}.{parent}.{module}.lora_{A|B}.weight`:
 * 0 with layer, module and which ('A'/'B'), else -1. */
static int peft_name(const char *s, int *layer, int *module, char *which)
{
    static const char pre[] = "base_model.model.model.layers.";
    if (strncmp(s, pre, sizeof(pre) - 1))
        return -1;
    s += sizeof(pre) - 1;
    char *end;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '.'))
        return -1;
    long l = strtol(s, &end, 10);
    if (*end != '.' || end - s > 9)
        return -1;
    s = end + 1;
    for (int m = 0; m < SLORA_MOD_COUNT; m++) {
        const char *parent = m <= SLORA_MOD_WO ? "self_attn." : "mlp.";
        size_t pl = strlen(parent), ml = strlen(peft_names[m]);
        if (strncmp(s, parent, pl) || strncmp(s + pl, peft_names[m], ml))
            continue;
        const char *rest = s + pl + ml;
        if ((!strcmp(rest, ".lora_A.weight") || !strcmp(rest, ".lora_B.weight"))) {
            *layer = (int)l;
            *module = m;
            *which = rest[6];
            return 0;
        }
    }
    return -1;
}

static int peft_tensor(struct lora_set *s, const struct peft *pc, const struct slora_st_tensor *te,
                       char *diag, size_t diag_len)
{
    int l, m;
    char which;
    if (peft_name(te->name, &l, &m, &which))
        return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                           "tensor %s: not a LoRA factor of a module slorad can target "
                           "(base_model.model.model.layers.N.{self_attn.{q,k,v,o}_proj, "
                           "mlp.{gate,down,up}_proj}.lora_{A,B}.weight)",
                           te->name);
    if (l >= s->t->shape.n_layers)
        return slora__diag(diag, diag_len, SLORA_EMISMATCH, "tensor %s: layer %d, the base has %d",
                           te->name, l, s->t->shape.n_layers);
    if (!layer_listed(pc->layers, l))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor %s: layer %d not in layers_to_transform", te->name, l);
    if (te->n_dims != 2)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor %s: %d dimensions, want 2",
                           te->name, te->n_dims);
    struct lora *p = pair(s, l, m);
    char full[96];
    snprintf(full, sizeof(full), "model.layers.%d.%s.%s", l,
             m <= SLORA_MOD_WO ? "self_attn" : "mlp", peft_names[m]);
    const json_t *rv = pattern(pc, 0, full), *av = pattern(pc, 1, full);
    int64_t r = rv ? json_integer_value(rv) : pc->r;
    double alpha = av ? json_number_value(av) : pc->alpha;
    int64_t rows, cols;
    slora_arch_module_dims(&s->t->shape, m, &rows, &cols);
    int64_t got_r = which == 'A' ? te->shape[0] : te->shape[1];
    if (got_r != r)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tensor %s: rank %lld, the config says r = %lld for %s", te->name,
                           (long long)got_r, (long long)r, full);
    float **dst = which == 'A' ? &p->a : &p->b;
    int err = which == 'A'
                  ? take_factor(te->name, te->shape[0], te->shape[1], r, cols, dst, diag, diag_len)
                  : take_factor(te->name, te->shape[0], te->shape[1], rows, r, dst, diag, diag_len);
    if (err)
        return err;
    slora_st_to_f32(te, *dst);
    p->r = r;
    p->scale = pc->rslora ? alpha / sqrt((double)r) : alpha / (double)r;
    return check_finite(te->name, *dst, te->n_elems, diag, diag_len);
}

/* Check that every pair read has both factors (fa, fb name them), then
 * emit the SuperLoRA file. */
static int finish(struct lora_set *s, const char *const *names, const char *fa, const char *fb,
                  void **out, size_t *out_len, char *diag, size_t diag_len)
{
    for (int l = 0; l < s->t->shape.n_layers; l++)
        for (int m = 0; m < SLORA_MOD_COUNT; m++) {
            struct lora *p = pair(s, l, m);
            if (p->r && (!p->a || !p->b))
                return slora__diag(diag, diag_len, SLORA_EFORMAT, "layer %d %s: %s without %s", l,
                                   names[m], p->a ? fa : fb, p->a ? fb : fa);
        }
    return emit(s, out, out_len, diag, diag_len);
}

int slora_import_peft(const void *config, size_t config_len, const void *weights,
                      size_t weights_len, const struct slora_import_target *t, void **out,
                      size_t *out_len, char *diag, size_t diag_len)
{
    if (config_len > SLORA_IMPORT_MAX_CONFIG)
        return slora__diag(diag, diag_len, SLORA_ELIMIT, "adapter_config.json: %zu bytes (max %u)",
                           config_len, SLORA_IMPORT_MAX_CONFIG);
    json_error_t je;
    json_t *c = json_loadb(config, config_len, JSON_REJECT_DUPLICATES, &je);
    if (!c)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "adapter_config.json: %s at byte %d",
                           je.text, je.position);
    struct peft pc = {0};
    struct slora_st *st = NULL;
    struct lora_set s = {0};
    int err = peft_config(c, &pc, diag, diag_len);
    if (!err && (err = slora_st_parse(weights, weights_len, &st, diag, diag_len)))
        goto done;
    if (!err)
        err = set_init(&s, t, t->permute_qk);
    for (int i = 0; !err && i < st->n_tensors; i++)
        err = peft_tensor(&s, &pc, &st->tensors[i], diag, diag_len);
    if (!err)
        err = finish(&s, peft_names, "lora_A", "lora_B", out, out_len, diag, diag_len);
done:
    set_free(&s);
    slora_st_free(st);
    peft_free(&pc);
    json_decref(c);
    return err;
}

int slora_import_peft_tar(const void *tar, size_t len, const struct slora_import_target *t,
                          void **out, size_t *out_len, char *diag, size_t diag_len)
{
    static const char *const names[2] = {"adapter_config.json", "adapter_model.safetensors"};
    struct slora_tar_file f[2];
    int err = slora_tar_find(tar, len, names, 2, f, diag, diag_len);
    if (err)
        return err;
    for (int i = 0; i < 2; i++)
        if (!f[i].data)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "PEFT upload: the tar has no %s (want adapter_config.json and "
                               "adapter_model.safetensors)",
                               names[i]);
    return slora_import_peft(f[0].data, f[0].size, f[1].data, f[1].size, t, out, out_len, diag,
                             diag_len);
}

/* ---- GGUF LoRA -------------------------------------------------------- */

/* `blk.{l}.{name}.weight.lora_{a|b}` over exactly n bytes: 0 or -1. */
static int gguf_name(const char *s, size_t n, int *layer, int *module, char *which)
{
    char buf[64];
    if (n >= sizeof(buf) || memchr(s, '\0', n))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strncmp(buf, "blk.", 4) || buf[4] < '0' || buf[4] > '9' || (buf[4] == '0' && buf[5] != '.'))
        return -1;
    char *end;
    long l = strtol(buf + 4, &end, 10);
    if (*end != '.' || end - (buf + 4) > 9)
        return -1;
    for (int m = 0; m < SLORA_MOD_COUNT; m++) {
        size_t ml = strlen(gguf_names[m]);
        const char *rest = end + 1 + ml;
        if (!strncmp(end + 1, gguf_names[m], ml) &&
            (!strcmp(rest, ".weight.lora_a") || !strcmp(rest, ".weight.lora_b"))) {
            *layer = (int)l;
            *module = m;
            *which = rest[13];
            return 0;
        }
    }
    return -1;
}

static int gguf_str_is(const struct slora_gguf *g, const char *key, const char *want, int err,
                       char *diag, size_t diag_len)
{
    const char *s;
    size_t n;
    int rc = slora_gguf_get_str(g, key, &s, &n);
    if (rc == 0 && n == strlen(want) && !memcmp(s, want, n))
        return 0;
    if (rc)
        return slora__diag(diag, diag_len, err, "%s missing or not a string (want \"%s\")", key,
                           want);
    return slora__diag(diag, diag_len, err, "%s is \"%.*s\", want \"%s\"", key,
                       (int)(n > 64 ? 64 : n), s, want);
}

static int gguf_tensor(struct lora_set *s, float alpha, const struct slora_gguf_tensor *te,
                       char *diag, size_t diag_len)
{
    int l, m;
    char which, name[72];
    snprintf(name, sizeof(name), "%.*s", (int)(te->name_len > 64 ? 64 : te->name_len), te->name);
    if (gguf_name(te->name, te->name_len, &l, &m, &which))
        return slora__diag(diag, diag_len, SLORA_EUNIMPORTABLE,
                           "tensor %s: not a LoRA factor of a module slorad can target "
                           "(blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_down,ffn_up}"
                           ".weight.lora_{a,b})",
                           name);
    if (l >= s->t->shape.n_layers)
        return slora__diag(diag, diag_len, SLORA_EMISMATCH, "tensor %s: layer %d, the base has %d",
                           name, l, s->t->shape.n_layers);
    if (te->n_dims != 2)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor %s: %u dimensions, want 2", name,
                           te->n_dims);
    if (te->dtype != SLORA_DTYPE_F32 && te->dtype != SLORA_DTYPE_F16 &&
        te->dtype != SLORA_DTYPE_BF16)
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                           "tensor %s: type %s (F32, F16 and BF16 only)", name,
                           slora_dtype_name(te->dtype));
    struct lora *p = pair(s, l, m);
    int64_t rows, cols, tr = (int64_t)te->ne[1], tc = (int64_t)te->ne[0];
    slora_arch_module_dims(&s->t->shape, m, &rows, &cols);
    /* lora_a (r, in): r from its rows; lora_b (out, r): r from its columns */
    int64_t r = which == 'a' ? tr : tc;
    if (p->r && p->r != r)
        return slora__diag(diag, diag_len, SLORA_EMISMATCH,
                           "tensor %s: rank %lld, its pair has rank %lld", name, (long long)r,
                           (long long)p->r);
    if (r < 1)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor %s: rank 0", name);
    float **dst = which == 'a' ? &p->a : &p->b;
    if (*dst)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tensor %s: twice", name);
    int err = take_factor(name, tr, tc, which == 'a' ? r : rows, which == 'a' ? cols : r, dst, diag,
                          diag_len);
    if (err)
        return err;
    int64_t n = tr * tc;
    slora_quant_dequantize(te->dtype, te->data, *dst, n); /* F32, F16 or BF16 */
    p->r = r;
    p->scale = alpha != 0.0f ? (double)alpha / (double)r : 1.0;
    return check_finite(name, *dst, n, diag, diag_len);
}

int slora_import_gguf_lora(const void *buf, size_t len, const struct slora_import_target *t,
                           void **out, size_t *out_len, char *diag, size_t diag_len)
{
    struct slora_gguf *g;
    int err = slora_gguf_parse(buf, len, &g, diag, diag_len);
    if (err)
        return err;
    struct lora_set s = {0};
    float alpha = 0.0f;
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, "adapter.lora.alpha");
    if ((err = gguf_str_is(g, "general.type", "adapter", SLORA_EFORMAT, diag, diag_len)) ||
        (err = gguf_str_is(g, "adapter.type", "lora", SLORA_EUNIMPORTABLE, diag, diag_len)) ||
        (t->arch &&
         (err = gguf_str_is(g, "general.architecture", t->arch, SLORA_EMISMATCH, diag, diag_len))))
        goto done;
    if (slora_gguf_find_kv(g, "adapter.alora_invocation_tokens")) {
        err = slora__diag(
            diag, diag_len, SLORA_EUNIMPORTABLE,
            "adapter.alora_invocation_tokens: activated LoRA cannot be served as W + dW");
        goto done;
    }
    if (kv) {
        if (kv->type != SLORA_GGUF_F32) {
            err = slora__diag(diag, diag_len, SLORA_EFORMAT, "adapter.lora.alpha: not an F32");
            goto done;
        }
        memcpy(&alpha, kv->value, 4);
        if (!isfinite(alpha)) {
            err = slora__diag(diag, diag_len, SLORA_ENONFINITE, "adapter.lora.alpha: not finite");
            goto done;
        }
    }
    if ((err = set_init(&s, t, false))) /* GGUF LoRA rows are in GGUF order */
        goto done;
    for (size_t i = 0; !err && i < g->n_tensors; i++)
        err = gguf_tensor(&s, alpha, &g->tensors[i], diag, diag_len);
    if (!err)
        err = finish(&s, gguf_names, "lora_a", "lora_b", out, out_len, diag, diag_len);
done:
    set_free(&s);
    slora_gguf_free(g);
    return err;
}
