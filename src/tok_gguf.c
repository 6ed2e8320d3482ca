/* tok_gguf.c - a tokenizer from a GGUF's tokenizer.* keys (llama.cpp's
 * names and types; see llama-arch.cpp LLM_KV_TOKENIZER_*):
 *
 *   tokenizer.ggml.model        string   "llama" (SPM) or "gpt2" (BPE)
 *   tokenizer.ggml.pre          string   BPE pre-tokenizer (required for gpt2)
 *   tokenizer.ggml.tokens       [string] the vocabulary
 *   tokenizer.ggml.scores       [f32 or i32]  (n tokens; SPM merge scores)
 *   tokenizer.ggml.token_type   [i32]    (n tokens; 1 normal ... 6 byte)
 *   tokenizer.ggml.merges       [string] "left right", rank order (BPE)
 *   tokenizer.ggml.{bos,eos,eot,eom,padding,unknown,seperator}_token_id,
 *   tokenizer.ggml.fim_{pre,suf,mid,pad,rep,sep}_token_id and the older
 *   {prefix,suffix,middle}_token_id      integers (0xFFFFFFFF or -1: none)
 *   tokenizer.ggml.add_{bos,eos}_token, tokenizer.ggml.add_space_prefix  bool
 *   general.name                string   (Phi-3 special-token spacing)
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>
#include <slora/gguf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_string(const struct slora_gguf *g, const char *key, char *out, size_t cap,
                      bool *present, char *diag, size_t diag_len)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    *present = kv != NULL;
    if (!kv)
        return 0;
    const char *s;
    size_t len;
    if (slora_gguf_get_str(g, key, &s, &len))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s must be a string", key);
    snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), s);
    return 0;
}

/* An id key: -1 when absent or llama.cpp's "none" (0xFFFFFFFF). */
static int get_id(const struct slora_gguf *g, const char *key, int64_t *id, char *diag,
                  size_t diag_len)
{
    int64_t v;
    int err = slora_gguf_get_int(g, key, &v);
    if (err == SLORA_ENOTFOUND)
        return 0;
    if (err)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s must be an integer", key);
    *id = v == UINT32_MAX ? -1 : v;
    if (*id < -1)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s = %lld is not a token id", key,
                           (long long)v);
    return 0;
}

static int get_flag(const struct slora_gguf *g, const char *key, int *flag, char *diag,
                    size_t diag_len)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    if (!kv)
        return 0;
    if (kv->type != SLORA_GGUF_BOOL)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s must be a bool", key);
    *flag = kv->value[0] != 0;
    return 0;
}

/* An array key of n elements of one of the given types (or absent when
 * optional). */
static int get_array(const struct slora_gguf *g, const char *key, uint32_t type1, uint32_t type2,
                     size_t n, bool required, const struct slora_gguf_kv **out, char *diag,
                     size_t diag_len)
{
    const struct slora_gguf_kv *kv = slora_gguf_find_kv(g, key);
    *out = kv;
    if (!kv)
        return required ? slora__diag(diag, diag_len, SLORA_EFORMAT, "%s is missing", key) : 0;
    if (kv->type != SLORA_GGUF_ARRAY || (kv->arr_type != type1 && kv->arr_type != type2))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s has the wrong type", key);
    if (n != SIZE_MAX && kv->n != n)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s has %llu elements, tokenizer.ggml.tokens %zu", key,
                           (unsigned long long)kv->n, n);
    return 0;
}

/* The strings of an array kv (validated by the GGUF parser), walked once. */
static void strings(const struct slora_gguf_kv *kv, const char **s, size_t *len)
{
    const uint8_t *p = kv->value;
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t n;
        memcpy(&n, p, 8);
        s[i] = (const char *)p + 8;
        len[i] = (size_t)n;
        p += 8 + n;
    }
}

struct arrays {
    const char **text;
    size_t *len;
    float *score;
    int32_t *type;
    const char **merge;
    size_t *merge_len;
    const char **merge_r;
    size_t *merge_r_len;
};

static void arrays_free(struct arrays *a)
{
    free(a->text);
    free(a->len);
    free(a->score);
    free(a->type);
    free(a->merge);
    free(a->merge_len);
    free(a->merge_r);
    free(a->merge_r_len);
}

static int read_arrays(const struct slora_gguf *g, struct slora__tok_src *src, struct arrays *a,
                       char *diag, size_t diag_len)
{
    const struct slora_gguf_kv *tok, *sc, *ty, *mg;
    int err = get_array(g, src->key_tokens, SLORA_GGUF_STRING, SLORA_GGUF_STRING, SIZE_MAX, true,
                        &tok, diag, diag_len);
    size_t n = err ? 0 : (size_t)tok->n;
    if (err || (err = get_array(g, src->key_scores, SLORA_GGUF_F32, SLORA_GGUF_I32, n, false, &sc,
                                diag, diag_len)) ||
        (err = get_array(g, src->key_types, SLORA_GGUF_I32, SLORA_GGUF_I32, n, false, &ty, diag,
                         diag_len)) ||
        (err = get_array(g, src->key_merges, SLORA_GGUF_STRING, SLORA_GGUF_STRING, SIZE_MAX,
                         false, &mg, diag, diag_len)))
        return err;
    if (n == 0 || n > (1 << 24))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s has %zu tokens (1 to %d)",
                           src->key_tokens, n, 1 << 24);
    size_t m = mg && src->algo == SLORA__TOK_BPE ? (size_t)mg->n : 0;
    a->text = malloc(n * sizeof(*a->text));
    a->len = malloc(n * sizeof(*a->len));
    a->score = sc ? malloc(n * sizeof(*a->score)) : NULL;
    a->type = ty ? malloc(n * sizeof(*a->type)) : NULL;
    a->merge = malloc((m ? m : 1) * sizeof(*a->merge));
    a->merge_len = malloc((m ? m : 1) * sizeof(*a->merge_len));
    a->merge_r = malloc((m ? m : 1) * sizeof(*a->merge_r));
    a->merge_r_len = malloc((m ? m : 1) * sizeof(*a->merge_r_len));
    if (!a->text || !a->len || (sc && !a->score) || (ty && !a->type) || !a->merge ||
        !a->merge_len || !a->merge_r || !a->merge_r_len)
        return SLORA_ENOMEM;
    strings(tok, a->text, a->len);
    for (size_t i = 0; sc && i < n; i++) {
        if (sc->arr_type == SLORA_GGUF_F32) {
            a->score[i] = slora_gguf_array_f32(sc, i);
        } else {
            int32_t v;
            memcpy(&v, sc->value + 4 * i, 4);
            a->score[i] = (float)v;
        }
    }
    for (size_t i = 0; ty && i < n; i++)
        memcpy(&a->type[i], ty->value + 4 * i, 4);
    if (m)
        strings(mg, a->merge, a->merge_len);
    for (size_t i = 0; i < m; i++) {
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = a->merge_len[i] > 1 ? memchr(a->merge[i] + 1, ' ', a->merge_len[i] - 1)
                                             : NULL;
        if (!sp)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s[%zu] is not 'left right'",
                               src->key_merges, i);
        a->merge_r[i] = sp + 1;
        a->merge_r_len[i] = a->merge_len[i] - (size_t)(sp + 1 - a->merge[i]);
        a->merge_len[i] = (size_t)(sp - a->merge[i]);
    }
    src->n = n;
    src->text = a->text;
    src->len = a->len;
    src->score = a->score;
    src->type = a->type;
    src->n_merges = m;
    src->merge_l = a->merge;
    src->merge_l_len = a->merge_len;
    src->merge_r = a->merge_r;
    src->merge_r_len = a->merge_r_len;
    return 0;
}

static int read_ids(const struct slora_gguf *g, struct slora__tok_src *src, char *diag,
                    size_t diag_len)
{
    static const char *const fim[6] = {"fim_pre", "fim_suf", "fim_mid",
                                       "fim_pad", "fim_rep", "fim_sep"};
    static const char *const old[3] = {"prefix", "suffix", "middle"};
    char key[64];
    int err = 0;
    for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT && !err; r++)
        err = get_id(g, src->key_id[r], &src->id[r], diag, diag_len);
    for (int f = 0; f < 6 && !err; f++) {
        snprintf(key, sizeof(key), "tokenizer.ggml.%s_token_id", fim[f]);
        err = get_id(g, key, &src->fim[f], diag, diag_len);
    }
    for (int f = 0; f < 3 && !err; f++) { /* llama.cpp reads these last */
        snprintf(key, sizeof(key), "tokenizer.ggml.%s_token_id", old[f]);
        err = get_id(g, key, &src->fim[f], diag, diag_len);
    }
    if (!err)
        err = get_flag(g, "tokenizer.ggml.add_bos_token", &src->add_bos, diag, diag_len);
    if (!err)
        err = get_flag(g, "tokenizer.ggml.add_eos_token", &src->add_eos, diag, diag_len);
    if (!err)
        err = get_flag(g, "tokenizer.ggml.add_space_prefix", &src->add_space_prefix, diag,
                       diag_len);
    return err;
}

int slora_tokenizer_new_from_gguf(const struct slora_gguf *g, struct slora_tokenizer **out,
                                  char *diag, size_t diag_len)
{
    *out = NULL;
    char model[64], pre[64], name[256];
    bool has_model, has_pre, has_name;
    int err = get_string(g, "tokenizer.ggml.model", model, sizeof(model), &has_model, diag,
                         diag_len);
    if (err)
        return err;
    if (!has_model)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "tokenizer.ggml.model is missing");
    enum slora__tok_algo algo;
    if (!strcmp(model, "llama"))
        algo = SLORA__TOK_SPM;
    else if (!strcmp(model, "gpt2"))
        algo = SLORA__TOK_BPE;
    else
        return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED,
                           "tokenizer.ggml.model '%s' is not supported (llama or gpt2)", model);
    struct slora__tok_src src;
    slora__tok_src_init(&src, algo);
    if ((err = get_string(g, src.key_pre, pre, sizeof(pre), &has_pre, diag, diag_len)) ||
        (err = get_string(g, "general.name", name, sizeof(name), &has_name, diag, diag_len)))
        return err;
    src.pre = has_pre ? pre : NULL;
    src.name = has_name ? name : NULL;
    struct arrays a = {0};
    err = read_arrays(g, &src, &a, diag, diag_len);
    if (!err)
        err = read_ids(g, &src, diag, diag_len);
    if (!err)
        err = slora__tok_build(&src, out, diag, diag_len);
    else if (err == SLORA_ENOMEM)
        slora__diag(diag, diag_len, err, "tokenizer: out of memory");
    arrays_free(&a);
    return err;
}
