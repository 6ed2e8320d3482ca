/* tok_hf.c - a byte-level BPE tokenizer from Hugging Face's tokenizer.json
 * (and tokenizer_config.json), read as llama.cpp's converter
 * (convert_hf_to_gguf.py get_vocab_base, gguf-py SpecialVocab) would write
 * it to a GGUF:
 *
 * - model: {"type": "BPE", "vocab": {text: id}, "merges": ["a b" | ["a",
 *   "b"]]}; byte_fallback, continuing_subword_prefix and end_of_word_suffix
 *   must be off;
 * - added_tokens: [{"id", "content", "special"}]: control tokens when
 *   special or looking special (<|...|>), user-defined otherwise;
 *   ids no entry names up to the vocabulary size are unused "[PAD<i>]";
 * - pre_tokenizer: one of the named pre-tokenizers, recognised exactly:
 *   ByteLevel with its regex (gpt-2); Split(Llama-3 or Qwen2 regex,
 *   Isolated) + ByteLevel without regex (llama-bpe, qwen2); Digits
 *   (individual) + ByteLevel with regex (smollm, or starcoder when the
 *   config cleans up tokenization spaces). Anything else is refused;
 * - decoder: ByteLevel; normalizer: none or NFC (which llama.cpp ignores);
 * - tokenizer_config.json: bos/eos/unk/pad_token (a string or {"content"})
 *   and add_bos_token / add_eos_token; without add_bos_token, a
 *   post_processor TemplateProcessing that starts with the BOS adds it.
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unused ids a tokenizer.json may leave below its largest id when the
 * model's vocabulary size is not known. */
#define MAX_GAP 1024

/* The patterns of tokenizer.json as llama.cpp's comments quote them. */
static const char llama3_re[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char qwen2_re[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static bool is_type(json_t *o, const char *type)
{
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) && !strcmp(json_string_value(t), type);
}

/* A boolean field: its value, or dflt when absent or null; -1 otherwise. */
static int get_bool(json_t *o, const char *key, int dflt)
{
    json_t *v = json_object_get(o, key);
    return !v || json_is_null(v) ? dflt : json_is_boolean(v) ? json_is_true(v) : -1;
}

/* ByteLevel without a prefix space, with (use_regex true) or without the
 * GPT-2 regex. */
static bool byte_level(json_t *o, bool regex)
{
    return is_type(o, "ByteLevel") && get_bool(o, "add_prefix_space", 1) == 0 &&
           get_bool(o, "use_regex", 1) == regex;
}

static bool split(json_t *o, const char *re)
{
    json_t *pat = json_object_get(json_object_get(o, "pattern"), "Regex");
    json_t *behavior = json_object_get(o, "behavior");
    return is_type(o, "Split") && json_is_string(pat) && !strcmp(json_string_value(pat), re) &&
           json_is_string(behavior) && !strcmp(json_string_value(behavior), "Isolated") &&
           get_bool(o, "invert", 0) == 0;
}

/* The named pre-tokenizer of a pre_tokenizer object, or NULL. */
static const char *pre_name(json_t *pre, bool clean_spaces)
{
    if (byte_level(pre, true))
        return "gpt-2";
    json_t *seq = json_object_get(pre, "pretokenizers");
    if (!is_type(pre, "Sequence") || json_array_size(seq) != 2)
        return NULL;
    json_t *a = json_array_get(seq, 0), *b = json_array_get(seq, 1);
    if (split(a, llama3_re) && byte_level(b, false))
        return "llama-bpe";
    if (split(a, qwen2_re) && byte_level(b, false))
        return "qwen2";
    if (is_type(a, "Digits") && get_bool(a, "individual_digits", 0) == 1 && byte_level(b, true))
        return clean_spaces ? "starcoder" : "smollm";
    return NULL;
}

/* convert_hf_to_gguf.py does_token_look_special */
static bool looks_special(const char *s, size_t n)
{
    static const char *const names[] = {"<pad>", "<mask>", "<2mass>", "[@BOS@]"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n == strlen(names[i]) && !memcmp(s, names[i], n))
            return true;
#define ENDS(a, b)                                                                                \
    (n >= strlen(a) + strlen(b) && !memcmp(s, a, strlen(a)) &&                                     \
     !memcmp(s + n - strlen(b), b, strlen(b)))
    return ENDS("<|", "|>") || ENDS("<\xef\xbd\x9c", "\xef\xbd\x9c>") || ENDS("<unused", ">");
#undef ENDS
}

struct hf {
    json_t *root, *config;
    size_t n;
    const char **text;
    size_t *len;
    int32_t *type;
    char *pad_names; /* "[PAD<i>]" of the missing ids */
    char *user;      /* user-defined added tokens with U+2581 made ' ' */
    const char **ml, **mr;
    size_t *mll, *mrl;
};

static void hf_free(struct hf *h)
{
    json_decref(h->root);
    json_decref(h->config);
    free(h->text);
    free(h->len);
    free(h->type);
    free(h->pad_names);
    free(h->user);
    free(h->ml);
    free(h->mr);
    free(h->mll);
    free(h->mrl);
}

static int bad(char *diag, size_t diag_len, int err, const char *what)
{
    return slora__diag(diag, diag_len, err, "tokenizer.json: %s", what);
}

/* Place vocab and added tokens by id; types as the converter assigns them. */
static int place_tokens(struct hf *h, json_t *vocab, json_t *added, int n_vocab, char *diag,
                        size_t diag_len)
{
    int64_t max_id = -1;
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= (1 << 24))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer.json: model.vocab['%.64s'] is not a token id", key);
        if (json_integer_value(v) > max_id)
            max_id = json_integer_value(v);
    }
    size_t i, user_len = 0;
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id"), *c = json_object_get(v, "content");
        user_len += json_string_length(c);
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (1 << 24) || !json_is_string(c))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer.json: added_tokens[%zu] needs an id and a content", i);
        if (json_integer_value(id) > max_id)
            max_id = json_integer_value(id);
    }
    /* ids run up to the model's vocab_size, or (none given) leave at most
     * MAX_GAP unused: a file cannot ask for millions of padding tokens */
    size_t entries = json_object_size(vocab) + json_array_size(added);
    if (n_vocab > 0 && max_id >= n_vocab)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tokenizer.json: token id %lld is outside the model's %d tokens",
                           (long long)max_id, n_vocab);
    if (n_vocab <= 0 && (size_t)max_id >= entries + MAX_GAP)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "tokenizer.json: token id %lld leaves more than %d ids unused",
                           (long long)max_id, MAX_GAP);
    h->n = (size_t)(max_id + 1 > n_vocab ? max_id + 1 : n_vocab);
    if (h->n == 0)
        return bad(diag, diag_len, SLORA_EFORMAT, "model.vocab is empty");
    h->text = calloc(h->n, sizeof(*h->text));
    h->len = calloc(h->n, sizeof(*h->len));
    h->type = calloc(h->n, sizeof(*h->type));
    h->pad_names = malloc(h->n * 16);
    h->user = malloc(user_len + 1);
    if (!h->text || !h->len || !h->type || !h->pad_names || !h->user)
        return SLORA_ENOMEM;
    json_object_foreach(vocab, key, v) {
        size_t id = (size_t)json_integer_value(v);
        if (h->text[id])
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer.json: model.vocab has two tokens with id %zu", id);
        h->text[id] = key;
        h->len[id] = strlen(key);
        h->type[id] = SLORA__TOK_TYPE_NORMAL;
    }
    size_t user_at = 0;
    json_array_foreach(added, i, v) {
        size_t id = (size_t)json_integer_value(json_object_get(v, "id"));
        json_t *c = json_object_get(v, "content");
        const char *s = json_string_value(c);
        size_t n = json_string_length(c);
        if (h->text[id] && (h->len[id] != n || memcmp(h->text[id], s, n)))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer.json: added_tokens[%zu] '%.64s' has the id of '%.64s'",
                               i, s, h->text[id]);
        h->text[id] = s;
        h->len[id] = n;
        if (json_is_true(json_object_get(v, "special")) || looks_special(s, n)) {
            h->type[id] = SLORA__TOK_TYPE_CONTROL;
        } else { /* the converter writes U+2581 of user tokens as ' ' */
            h->type[id] = SLORA__TOK_TYPE_USER_DEFINED;
            char *u = h->user + user_at;
            size_t o = 0;
            for (size_t k = 0; k < n; k++) {
                bool sp = k + 3 <= n && !memcmp(s + k, "\xe2\x96\x81", 3);
                u[o++] = sp ? ' ' : s[k];
                k += sp ? 2 : 0;
            }
            h->text[id] = u;
            h->len[id] = o;
            user_at += o;
        }
    }
    for (size_t id = 0; id < h->n; id++)
        if (!h->text[id]) {
            char *p = h->pad_names + id * 16;
            h->len[id] = (size_t)snprintf(p, 16, "[PAD%zu]", id);
            h->text[id] = p;
            h->type[id] = SLORA__TOK_TYPE_UNUSED;
        }
    return 0;
}

static int place_merges(struct hf *h, json_t *merges, char *diag, size_t diag_len)
{
    size_t n = json_array_size(merges), i;
    json_t *m;
    h->ml = malloc((n ? n : 1) * sizeof(*h->ml));
    h->mr = malloc((n ? n : 1) * sizeof(*h->mr));
    h->mll = malloc((n ? n : 1) * sizeof(*h->mll));
    h->mrl = malloc((n ? n : 1) * sizeof(*h->mrl));
    if (!h->ml || !h->mr || !h->mll || !h->mrl)
        return SLORA_ENOMEM;
    json_array_foreach(merges, i, m) {
        json_t *a = json_array_get(m, 0), *b = json_array_get(m, 1);
        if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(a) &&
            json_is_string(b)) {
            h->ml[i] = json_string_value(a);
            h->mll[i] = json_string_length(a);
            h->mr[i] = json_string_value(b);
            h->mrl[i] = json_string_length(b);
            continue;
        }
        const char *s = json_string_value(m);
        size_t len = json_string_length(m);
        const char *sp = s && len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        if (!sp)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer.json: model.merges[%zu] is not \"left right\"", i);
        h->ml[i] = s;
        h->mll[i] = (size_t)(sp - s);
        h->mr[i] = sp + 1;
        h->mrl[i] = len - h->mll[i] - 1;
    }
    return 0;
}

/* tokenizer_config.json's token for `key` (a string or {"content"}): its
 * id, -2 when absent or null, -3 when unknown. */
static int64_t config_token(const struct hf *h, json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    if (!json_is_string(v))
        return -2;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t id = 0; id < h->n; id++)
        if (h->len[id] == n && !memcmp(h->text[id], s, n))
            return (int64_t)id;
    return -3;
}

static int special_tokens(struct hf *h, struct slora__tok_src *src, char *diag, size_t diag_len)
{
    static const struct {
        const char *key;
        int role;
    } roles[] = {{"bos_token", SLORA_TOK_SPECIAL_BOS},
                 {"eos_token", SLORA_TOK_SPECIAL_EOS},
                 {"unk_token", SLORA_TOK_SPECIAL_UNK},
                 {"pad_token", SLORA_TOK_SPECIAL_PAD}};
    for (size_t r = 0; r < sizeof(roles) / sizeof(roles[0]); r++) {
        int64_t id = config_token(h, h->config, roles[r].key);
        if (id == -3)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "tokenizer_config.json: %s is not a token", roles[r].key);
        src->id[roles[r].role] = id;
    }
    src->add_bos = get_bool(h->config, "add_bos_token", -1);
    src->add_eos = get_bool(h->config, "add_eos_token", -1);
    /* a TemplateProcessing post_processor that starts with the BOS adds it */
    json_t *single = json_object_get(json_object_get(h->root, "post_processor"), "single");
    json_t *first = json_object_get(json_object_get(json_array_get(single, 0), "SpecialToken"),
                                    "id");
    int bos = (int)src->id[SLORA_TOK_SPECIAL_BOS];
    if (src->add_bos < 0 && json_array_size(single) > 1 && json_is_string(first) && bos >= 0)
        src->add_bos = h->len[bos] == json_string_length(first) &&
                       !memcmp(h->text[bos], json_string_value(first), h->len[bos]);
    return 0;
}

int slora_tokenizer_new_from_hf(const char *json, size_t json_len, const char *config,
                                size_t config_len, int n_vocab, struct slora_tokenizer **out,
                                char *diag, size_t diag_len)
{
    *out = NULL;
    struct hf h = {0};
    json_error_t jerr;
    int err = SLORA_EFORMAT;
    if (!(h.root = json_loadb(json, json_len, JSON_ALLOW_NUL, &jerr))) {
        slora__diag(diag, diag_len, err, "tokenizer.json: line %d: %s", jerr.line, jerr.text);
        goto out;
    }
    if (config && !(h.config = json_loadb(config, config_len, JSON_ALLOW_NUL, &jerr))) {
        slora__diag(diag, diag_len, err, "tokenizer_config.json: line %d: %s", jerr.line,
                    jerr.text);
        goto out;
    }
    json_t *model = json_object_get(h.root, "model"), *norm = json_object_get(h.root, "normalizer");
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    json_t *added = json_object_get(h.root, "added_tokens");
    json_t *cw = json_object_get(model, "continuing_subword_prefix");
    json_t *ew = json_object_get(model, "end_of_word_suffix");
    err = SLORA_EUNSUPPORTED;
    if (!is_type(model, "BPE")) {
        bad(diag, diag_len, err, "model.type must be \"BPE\"");
    } else if (get_bool(model, "byte_fallback", 0) != 0) {
        bad(diag, diag_len, err, "model.byte_fallback is not supported (byte-level BPE only)");
    } else if ((cw && !json_is_null(cw) && json_string_length(cw)) ||
               (ew && !json_is_null(ew) && json_string_length(ew))) {
        bad(diag, diag_len, err, "model.continuing_subword_prefix/end_of_word_suffix are not supported");
    } else if (norm && !json_is_null(norm) && !is_type(norm, "NFC")) {
        bad(diag, diag_len, err, "normalizer: only none or NFC is supported");
    } else if (!is_type(json_object_get(h.root, "decoder"), "ByteLevel")) {
        bad(diag, diag_len, err, "decoder must be ByteLevel");
    } else {
        err = 0;
    }
    if (err)
        goto out;
    err = SLORA_EFORMAT;
    if (!json_is_object(vocab) || !json_is_array(merges) || (added && !json_is_array(added))) {
        bad(diag, diag_len, err, "model.vocab (object), model.merges and added_tokens (arrays)");
        goto out;
    }
    bool clean = json_is_true(json_object_get(h.config, "clean_up_tokenization_spaces"));
    const char *pre = pre_name(json_object_get(h.root, "pre_tokenizer"), clean);
    if (!pre) {
        err = bad(diag, diag_len, SLORA_EUNSUPPORTED,
                  "pre_tokenizer is none of the supported ones (gpt-2, llama-bpe, qwen2, smollm)");
        goto out;
    }
    struct slora__tok_src src;
    slora__tok_src_init(&src, SLORA__TOK_BPE);
    src.key_tokens = "tokenizer.json: model.vocab";
    src.key_types = "tokenizer.json: added_tokens";
    src.key_merges = "tokenizer.json: model.merges";
    src.key_pre = "tokenizer.json: pre_tokenizer";
    static const char *const ids[SLORA_TOK_SPECIAL_COUNT] = {
        "tokenizer_config.json: bos_token", "tokenizer_config.json: eos_token", "eot", "eom",
        "tokenizer_config.json: pad_token", "tokenizer_config.json: unk_token", "sep"};
    for (int r = 0; r < SLORA_TOK_SPECIAL_COUNT; r++) {
        src.key_id[r] = ids[r];
        src.id[r] = -2; /* only what the files name */
    }
    src.pre = pre;
    if ((err = place_tokens(&h, vocab, added, n_vocab, diag, diag_len)) ||
        (err = place_merges(&h, merges, diag, diag_len)) ||
        (err = special_tokens(&h, &src, diag, diag_len)))
        goto out;
    src.n = h.n;
    src.text = h.text;
    src.len = h.len;
    src.type = h.type;
    src.n_merges = json_array_size(merges);
    src.merge_l = h.ml;
    src.merge_l_len = h.mll;
    src.merge_r = h.mr;
    src.merge_r_len = h.mrl;
    err = slora__tok_build(&src, out, diag, diag_len);
out:
    if (err == SLORA_ENOMEM)
        slora__diag(diag, diag_len, err, "tokenizer.json: out of memory");
    hf_free(&h);
    return err;
}
