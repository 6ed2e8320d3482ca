/* check_tok_load.c - every rejection of the vocabulary loaders, and the
 * special-token behaviour built on what they read.
 *
 * bad_gguf: a small valid vocabulary-only GGUF (SPM or BPE) with one key
 * removed or replaced; each must be refused with its error and a message
 * naming the key. bad_hf: the same for tokenizer.json /
 * tokenizer_config.json. The remaining tests load small vocabularies and
 * check the partitioning on special tokens, end-of-generation tokens and
 * the export to GGUF.
 */
#include "tok_internal.h"
#include "tokutil.h"

#include <slora/error.h>
#include <slora/gguf.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { K_MODEL = 1, K_PRE = 2, K_TOKENS = 4, K_SCORES = 8, K_TYPES = 16, K_MERGES = 32 };

static const char *const spm_tokens[] = {"<unk>", "<s>", "</s>", "a", "b", "\xe2\x96\x81" "a"};
static const char *const bpe_tokens[] = {"a", "b", "ab", "\xc4\xa0", "<|endoftext|>"};

static void add_tokens(struct slora_gguf_writer *w, const char *const *tok, size_t n)
{
    size_t lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(tok[i]);
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tok, lens, n);
}

static void add_merges(struct slora_gguf_writer *w, const char *m)
{
    size_t len = strlen(m);
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", &m, &len, 1);
}

/* replacements of the base keys */
static void model_bert(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_str(w, "tokenizer.ggml.model", "bert");
}
static void model_u32(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.model", 1);
}
static void pre_unknown(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_str(w, "tokenizer.ggml.pre", "llama-4000");
}
static void merge_nospace(struct slora_gguf_writer *w)
{
    add_merges(w, "ab");
}
static void merge_unknown(struct slora_gguf_writer *w)
{
    add_merges(w, "zz b");
}
static void merges_empty(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", NULL, NULL, 0);
}
static void tokens_f32(struct slora_gguf_writer *w)
{
    float v[6] = {0};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.tokens", SLORA_GGUF_F32, v, 6);
}
static void tokens_none(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", NULL, NULL, 0);
}
static void tokens_dup(struct slora_gguf_writer *w)
{
    static const char *const t[] = {"<unk>", "<s>", "</s>", "a", "b", "a"};
    add_tokens(w, t, 6);
}
static void tokens_utf8(struct slora_gguf_writer *w)
{
    static const char *const t[] = {"<unk>", "<s>", "</s>", "a", "\xc3", "b"};
    add_tokens(w, t, 6);
}
static void scores_short(struct slora_gguf_writer *w)
{
    float v[5] = {0};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, v, 5);
}
static void scores_nan(struct slora_gguf_writer *w)
{
    float v[6] = {0, NAN, 0, 0, 0, 0};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, v, 6);
}
static void types_bad(struct slora_gguf_writer *w)
{
    int32_t v[6] = {2, 3, 9, 1, 1, 1};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, v, 6);
}
static void types_byte(struct slora_gguf_writer *w)
{
    int32_t v[6] = {2, 3, 3, 6, 1, 1};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, v, 6);
}
static void types_f32(struct slora_gguf_writer *w)
{
    float v[6] = {0};
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_F32, v, 6);
}
static void bos_range(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 99);
}
static void eot_str(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_str(w, "tokenizer.ggml.eot_token_id", "2");
}
static void fim_range(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.fim_pad_token_id", 6);
}
static void add_bos_u32(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.add_bos_token", 1);
}

/* a normal byte-level token of 5000 CJK characters: llama.cpp renders each
 * as "[UNK_BYTE_0x..<the whole token>]", 75 MB for this one token */
static void huge_piece(struct slora_gguf_writer *w)
{
    static char big[3 * 5000 + 1];
    for (int i = 0; i < 5000; i++)
        memcpy(big + 3 * i, "\xe6\x97\xa5", 3);
    const char *t[] = {"a", "b", "ab", "\xc4\xa0", big};
    add_tokens(w, t, 5);
}

static const struct {
    const char *name;
    bool bpe;
    unsigned omit;
    void (*extra)(struct slora_gguf_writer *);
    int err;
    const char *diag;
} bad[] = {
    {"no model", false, K_MODEL, NULL, SLORA_EFORMAT, "tokenizer.ggml.model is missing"},
    {"model bert", false, K_MODEL, model_bert, SLORA_EUNSUPPORTED,
     "tokenizer.ggml.model 'bert' is not supported"},
    {"model not a string", false, K_MODEL, model_u32, SLORA_EFORMAT,
     "tokenizer.ggml.model must be a string"},
    {"gpt2 without pre", true, K_PRE, NULL, SLORA_EUNSUPPORTED, "tokenizer.ggml.pre is missing"},
    {"unknown pre", true, K_PRE, pre_unknown, SLORA_EUNSUPPORTED,
     "tokenizer.ggml.pre 'llama-4000' is not a supported pre-tokenizer"},
    {"no merges", true, K_MERGES, NULL, SLORA_EFORMAT, "tokenizer.ggml.merges is missing"},
    {"empty merges", true, K_MERGES, merges_empty, SLORA_EFORMAT,
     "tokenizer.ggml.merges is missing or empty"},
    {"merge without a space", true, K_MERGES, merge_nospace, SLORA_EFORMAT,
     "tokenizer.ggml.merges[0] is not 'left right'"},
    {"merge of an unknown token", true, K_MERGES, merge_unknown, SLORA_EFORMAT,
     "tokenizer.ggml.merges[0]: 'zz' is not a token"},
    {"no tokens", false, K_TOKENS, NULL, SLORA_EFORMAT, "tokenizer.ggml.tokens is missing"},
    {"tokens not strings", false, K_TOKENS, tokens_f32, SLORA_EFORMAT,
     "tokenizer.ggml.tokens has the wrong type"},
    {"zero tokens", false, K_TOKENS | K_SCORES | K_TYPES, tokens_none, SLORA_EFORMAT,
     "tokenizer.ggml.tokens has 0 tokens"},
    {"duplicate token", false, K_TOKENS, tokens_dup, SLORA_EFORMAT,
     "tokenizer.ggml.tokens[3] and [5] are the same token 'a'"},
    {"ill-formed UTF-8", false, K_TOKENS, tokens_utf8, SLORA_EFORMAT,
     "tokenizer.ggml.tokens[4] is not valid UTF-8"},
    {"scores count", false, K_SCORES, scores_short, SLORA_EFORMAT,
     "tokenizer.ggml.scores has 5 elements, tokenizer.ggml.tokens 6"},
    {"NaN score", false, K_SCORES, scores_nan, SLORA_ENONFINITE,
     "tokenizer.ggml.scores[1] is not finite"},
    {"token type 9", false, K_TYPES, types_bad, SLORA_EFORMAT,
     "tokenizer.ggml.token_type[2] = 9 is not a token type"},
    {"byte token not <0xHH>", false, K_TYPES, types_byte, SLORA_EFORMAT,
     "tokenizer.ggml.token_type[3] is a byte token but not <0xHH>"},
    {"token types not i32", false, K_TYPES, types_f32, SLORA_EFORMAT,
     "tokenizer.ggml.token_type has the wrong type"},
    {"BOS out of range", false, 0, bos_range, SLORA_EFORMAT,
     "tokenizer.ggml.bos_token_id = 99 is not a token id"},
    {"EOT not an integer", false, 0, eot_str, SLORA_EFORMAT,
     "tokenizer.ggml.eot_token_id must be an integer"},
    {"FIM pad out of range", false, 0, fim_range, SLORA_EFORMAT, "FIM token id 6"},
    {"add_bos not a bool", false, 0, add_bos_u32, SLORA_EFORMAT,
     "tokenizer.ggml.add_bos_token must be a bool"},
    {"pieces too large", true, K_TOKENS, huge_piece, SLORA_ELIMIT,
     "the pieces of tokens 0..4 need more than 67108864 bytes"},
};

/* Write the base vocabulary minus `omit`, plus extra; parse it. */
static struct slora_tokenizer *build(bool bpe, unsigned omit, void (*extra)(struct slora_gguf_writer *),
                                     int *err, char *diag, size_t diag_len)
{
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    if (!(omit & K_MODEL))
        slora_gguf_writer_add_str(w, "tokenizer.ggml.model", bpe ? "gpt2" : "llama");
    if (bpe && !(omit & K_PRE))
        slora_gguf_writer_add_str(w, "tokenizer.ggml.pre", "gpt-2");
    if (!(omit & K_TOKENS))
        add_tokens(w, bpe ? bpe_tokens : spm_tokens, bpe ? 5 : 6);
    float scores[6] = {0, 0, 0, -1, -2, -3};
    int32_t types[6] = {2, 3, 3, 1, 1, 1};
    if (!bpe && !(omit & K_SCORES))
        slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, scores, 6);
    if (!bpe && !(omit & K_TYPES))
        slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, 6);
    if (bpe && !(omit & K_MERGES))
        add_merges(w, "a b");
    if (extra)
        extra(w);
    char path[] = "/tmp/slora-tokload-XXXXXX";
    close(mkstemp(path));
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, diag_len), 0);
    slora_gguf_writer_free(w);
    struct slora_tokenizer *t = tok_load_gguf_file(path, err, diag, diag_len);
    unlink(path);
    return t;
}

START_TEST(bad_gguf)
{
    char diag[256] = "";
    int err;
    struct slora_tokenizer *t = build(bad[_i].bpe, bad[_i].omit, bad[_i].extra, &err, diag,
                                      sizeof(diag));
    ck_assert_msg(err == bad[_i].err, "%s: err %d (%s)", bad[_i].name, err, diag);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(diag, bad[_i].diag), "%s: diag '%s'", bad[_i].name, diag);
}
END_TEST

/* The bases load; defaults and llama.cpp's "none" id. */
START_TEST(good_gguf)
{
    char diag[256] = "";
    int err;
    struct slora_tokenizer *t = build(false, 0, NULL, &err, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    /* SPM defaults: BOS 1, EOS 2, UNK 0, BOS added */
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), 1);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOS), 2);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_UNK), 0);
    ck_assert(slora_tokenizer_add_bos(t) && !slora_tokenizer_add_eos(t));
    ck_assert(slora_tokenizer_is_eog(t, 2) && !slora_tokenizer_is_eog(t, 1));
    int ids[16];
    size_t n;
    /* " a" merges to the "\u2581a" piece after the space prefix */
    ck_assert_int_eq(slora_tokenizer_encode(t, "ab", 2, SLORA_TOK_ADD_BOS, ids, 16, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 5);
    ck_assert_int_eq(ids[2], 4);
    slora_tokenizer_free(t);
    t = build(true, 0, NULL, &err, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    /* gpt2 defaults: BOS = EOS = 11 (absent here: 5 tokens), no BOS added */
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), -1);
    ck_assert(!slora_tokenizer_add_bos(t));
    ck_assert_int_eq(slora_tokenizer_encode(t, "ab", 2, SLORA_TOK_ADD_BOS, ids, 16, &n),
                     SLORA_EINVAL);
    ck_assert_int_eq(slora_tokenizer_encode(t, "aab", 3, 0, ids, 16, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[1], 2);
    /* "<|endoftext|>" is an end of generation (and EOT) by its name */
    ck_assert(slora_tokenizer_is_eog(t, 4));
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOT), 4);
    slora_tokenizer_free(t);
}
END_TEST

static void bos_none(struct slora_gguf_writer *w)
{
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", UINT32_MAX);
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.padding_token_id", UINT32_MAX);
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 5);
}

/* 0xFFFFFFFF ("none" in llama.cpp's converter) keeps the model's default. */
START_TEST(none_id)
{
    char diag[256] = "";
    int err;
    struct slora_tokenizer *t = build(false, 0, bos_none, &err, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), 1);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_PAD), -1);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOS), 5);
    ck_assert(slora_tokenizer_is_eog(t, 5) && slora_tokenizer_is_eog(t, 2));
    slora_tokenizer_free(t);
}
END_TEST

/* ---- tokenizer.json ------------------------------------------------------ */

#define BL "{\"type\": \"ByteLevel\", \"add_prefix_space\": false}"
#define VOCAB "{\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3}"
#define HF(model, pre, decoder, extra)                                                            \
    "{\"model\": " model ", \"pre_tokenizer\": " pre ", \"decoder\": " decoder extra "}"
#define BPE(vocab, merges, extra) "{\"type\": \"BPE\", \"vocab\": " vocab ", \"merges\": " merges extra "}"
#define GOOD_MODEL BPE(VOCAB, "[\"a b\"]", "")

static const struct {
    const char *name;
    const char *json;
    const char *config;
    int err;
    const char *diag;
} bad_hf[] = {
    {"not JSON", "{\"model\": ", NULL, SLORA_EFORMAT, "tokenizer.json: line 1"},
    {"WordPiece", HF("{\"type\": \"WordPiece\"}", BL, BL, ""), NULL, SLORA_EUNSUPPORTED,
     "model.type must be \"BPE\""},
    {"byte fallback", HF(BPE(VOCAB, "[]", ", \"byte_fallback\": true"), BL, BL, ""), NULL,
     SLORA_EUNSUPPORTED, "model.byte_fallback is not supported"},
    {"word suffix", HF(BPE(VOCAB, "[]", ", \"end_of_word_suffix\": \"</w>\""), BL, BL, ""), NULL,
     SLORA_EUNSUPPORTED, "end_of_word_suffix are not supported"},
    {"lowercase normalizer", HF(GOOD_MODEL, BL, BL, ", \"normalizer\": {\"type\": \"Lowercase\"}"),
     NULL, SLORA_EUNSUPPORTED, "normalizer: only none or NFC"},
    {"no decoder", HF(GOOD_MODEL, BL, "null", ""), NULL, SLORA_EUNSUPPORTED,
     "decoder must be ByteLevel"},
    {"Metaspace", HF(GOOD_MODEL, "{\"type\": \"Metaspace\"}", BL, ""), NULL, SLORA_EUNSUPPORTED,
     "pre_tokenizer is none of the supported ones"},
    {"prefix space", HF(GOOD_MODEL, "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", BL, ""),
     NULL, SLORA_EUNSUPPORTED, "pre_tokenizer is none of the supported ones"},
    {"other Split regex",
     HF(GOOD_MODEL,
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
        "\"\\\\s+\"}, \"behavior\": \"Isolated\"}, {\"type\": \"ByteLevel\", \"add_prefix_space\": "
        "false, \"use_regex\": false}]}",
        BL, ""),
     NULL, SLORA_EUNSUPPORTED, "pre_tokenizer is none of the supported ones"},
    {"vocab not an object", HF(BPE("[]", "[]", ""), BL, BL, ""), NULL, SLORA_EFORMAT,
     "model.vocab (object)"},
    {"negative id", HF(BPE("{\"a\": -1}", "[]", ""), BL, BL, ""), NULL, SLORA_EFORMAT,
     "model.vocab['a'] is not a token id"},
    {"two tokens one id", HF(BPE("{\"a\": 0, \"b\": 0}", "[]", ""), BL, BL, ""), NULL,
     SLORA_EFORMAT, "model.vocab has two tokens with id 0"},
    {"added token clash",
     HF(GOOD_MODEL, BL, BL, ", \"added_tokens\": [{\"id\": 1, \"content\": \"<x>\", \"special\": true}]"),
     NULL, SLORA_EFORMAT, "added_tokens[0] '<x>' has the id of 'b'"},
    {"added token without id", HF(GOOD_MODEL, BL, BL, ", \"added_tokens\": [{\"content\": \"<x>\"}]"),
     NULL, SLORA_EFORMAT, "added_tokens[0] needs an id and a content"},
    {"merge of an unknown token", HF(BPE(VOCAB, "[\"zz b\"]", ""), BL, BL, ""), NULL, SLORA_EFORMAT,
     "model.merges[0]: 'zz' is not a token"},
    {"merge without a space", HF(BPE(VOCAB, "[\"ab\"]", ""), BL, BL, ""), NULL, SLORA_EFORMAT,
     "model.merges[0] is not \"left right\""},
    {"no merges", HF(BPE(VOCAB, "[]", ""), BL, BL, ""), NULL, SLORA_EFORMAT,
     "model.merges is missing or empty"},
    {"ids with a huge gap", HF(BPE("{\"a\": 0, \"b\": 5000}", "[]", ""), BL, BL, ""), NULL,
     SLORA_EFORMAT, "token id 5000 leaves more than 1024 ids unused"},
    {"config not JSON", HF(GOOD_MODEL, BL, BL, ""), "{", SLORA_EFORMAT,
     "tokenizer_config.json: line 1"},
    {"unknown bos_token", HF(GOOD_MODEL, BL, BL, ""), "{\"bos_token\": \"<s>\"}", SLORA_EFORMAT,
     "tokenizer_config.json: bos_token is not a token"},
};

START_TEST(bad_tokenizer_json)
{
    struct slora_tokenizer *t = (void *)1;
    char diag[256] = "";
    const char *c = bad_hf[_i].config;
    int err = slora_tokenizer_new_from_hf(bad_hf[_i].json, strlen(bad_hf[_i].json), c,
                                          c ? strlen(c) : 0, 0, &t, diag, sizeof(diag));
    ck_assert_msg(err == bad_hf[_i].err, "%s: err %d (%s)", bad_hf[_i].name, err, diag);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(diag, bad_hf[_i].diag), "%s: diag '%s'", bad_hf[_i].name, diag);
}
END_TEST

/* Added tokens, padding ids and the config's special tokens. */
START_TEST(good_tokenizer_json)
{
    static const char json[] = HF(
        GOOD_MODEL, BL, BL,
        ", \"normalizer\": {\"type\": \"NFC\"}, \"added_tokens\": ["
        "{\"id\": 6, \"content\": \"<|im_end|>\", \"special\": true},"
        "{\"id\": 7, \"content\": \"<tool>\", \"special\": false},"
        "{\"id\": 8, \"content\": \"<|fake|>\", \"special\": false}]");
    static const char config[] = "{\"eos_token\": {\"content\": \"<|im_end|>\"}, "
                                 "\"bos_token\": null, \"add_eos_token\": true}";
    struct slora_tokenizer *t;
    char diag[256] = "";
    int err = slora_tokenizer_new_from_hf(json, strlen(json), config, strlen(config), 12, &t, diag,
                                          sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    ck_assert_int_eq(slora_tokenizer_vocab_size(t), 12);
    size_t n;
    /* ids 4, 5, 9..11 are unused padding, named as llama.cpp's converter
     * does, and render as nothing */
    ck_assert_str_eq(t->text[5], "[PAD5]");
    ck_assert(t->attr[5] == SLORA__TOK_ATTR_UNUSED);
    slora_tokenizer_piece(t, 5, true, &n);
    ck_assert_uint_eq(n, 0);
    /* special: control; not special: user-defined unless it looks special */
    ck_assert(slora_tokenizer_is_control(t, 6));
    ck_assert(!slora_tokenizer_is_control(t, 7) && t->attr[7] == SLORA__TOK_ATTR_USER_DEFINED);
    ck_assert(slora_tokenizer_is_control(t, 8));
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOS), 6);
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS), -1);
    ck_assert(slora_tokenizer_add_eos(t) && !slora_tokenizer_add_bos(t));
    ck_assert(slora_tokenizer_is_eog(t, 6));
    slora_tokenizer_free(t);
    /* an id beyond the model's vocabulary size */
    ck_assert_int_eq(slora_tokenizer_new_from_hf(json, strlen(json), config, strlen(config), 8,
                                                 &t, diag, sizeof(diag)),
                     SLORA_EFORMAT);
    ck_assert_msg(strstr(diag, "token id 8 is outside the model's 8 tokens"), "%s", diag);
    ck_assert_int_eq(slora_tokenizer_new_from_hf(json, strlen(json), config, strlen(config), 12,
                                                 &t, diag, sizeof(diag)),
                     0);
    /* a user-defined token is split out of plain text; a control one is not */
    int ids[32];
    const char *text = "ab<tool>a<|im_end|>";
    ck_assert_int_eq(slora_tokenizer_encode(t, text, strlen(text), 0, ids, 32, &n), 0);
    ck_assert_int_eq(ids[0], 2);
    ck_assert_int_eq(ids[1], 7);
    ck_assert_int_eq(ids[2], 0);
    /* characters this tiny vocabulary lacks are dropped, as in llama.cpp */
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(slora_tokenizer_encode(t, text, strlen(text), SLORA_TOK_PARSE_SPECIAL |
                                            SLORA_TOK_ADD_EOS, ids, 32, &n), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(ids[3], 6);
    ck_assert_int_eq(ids[4], 6);
    slora_tokenizer_free(t);
}
END_TEST

/* ---- partitioning and export ---------------------------------------------- */

/* llama.cpp strips the spaces after Phi-3's special tokens (general.name),
 * and SPM gives the text after a special token its own space prefix. */
static void phi3(struct slora_gguf_writer *w)
{
    static const char *const t[] = {"<unk>", "<s>", "</s>", "a", "<|end|>", "\xe2\x96\x81" "a"};
    int32_t types[6] = {2, 3, 3, 1, 3, 1};
    add_tokens(w, t, 6);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, 6);
    slora_gguf_writer_add_str(w, "general.name", "Phi3 mini");
}

START_TEST(special_partition)
{
    char diag[256] = "";
    int err;
    struct slora_tokenizer *t = build(false, K_TOKENS | K_TYPES, phi3, &err, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    int ids[32];
    size_t n;
    const char *text = "a<|end|>  a";
    ck_assert_int_eq(slora_tokenizer_encode(t, text, strlen(text), SLORA_TOK_PARSE_SPECIAL, ids,
                                            32, &n),
                     0);
    /* "\u2581a" <|end|> then "a" (its spaces stripped) with a new prefix */
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[0], 5);
    ck_assert_int_eq(ids[1], 4);
    ck_assert_int_eq(ids[2], 5);
    /* <|end|> is an end-of-generation token and EOT by its name */
    ck_assert(slora_tokenizer_is_eog(t, 4));
    ck_assert_int_eq(slora_tokenizer_special(t, SLORA_TOK_SPECIAL_EOT), 4);
    /* rendering: control tokens only with UNPARSE_SPECIAL */
    size_t len;
    char *s = slora_tokenizer_detokenize(t, ids, 3, 0, &len);
    ck_assert_str_eq(s, "a a");
    free(s);
    s = slora_tokenizer_detokenize(t, ids, 3, SLORA_TOK_UNPARSE_SPECIAL, &len);
    ck_assert_str_eq(s, "a<|end|> a");
    free(s);
    slora_tokenizer_free(t);
}
END_TEST

/* A token with a space after another character lets merges cross spaces:
 * the text is then merged as a whole, not word by word. */
static void space_inside(struct slora_gguf_writer *w)
{
    static const char *const t[] = {"<unk>", "<s>", "</s>", "a", "b", "\xe2\x96\x81",
                                    "a\xe2\x96\x81", "a\xe2\x96\x81" "b", "\xe2\x96\x81" "a"};
    float scores[9] = {0, 0, 0, 0, 0, 0, -1, -2, -3};
    add_tokens(w, t, 9);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, scores, 9);
}

START_TEST(merge_across_space)
{
    char diag[256] = "";
    int err;
    struct slora_tokenizer *t = build(false, K_TOKENS | K_SCORES | K_TYPES, space_inside, &err,
                                      diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    ck_assert(!t->word_merges);
    int ids[8];
    size_t n;
    /* \u2581 a \u2581 b: "a\u2581" (-1) first, then "a\u2581b" (-2) */
    ck_assert_int_eq(slora_tokenizer_encode(t, "a b", 3, 0, ids, 8, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ids[0], 5);
    ck_assert_int_eq(ids[1], 7);
    slora_tokenizer_free(t);
}
END_TEST

/* An SPM and a BPE vocabulary written back with slora_tokenizer_write_gguf
 * load as the same tokenizers (attributes llama.cpp derives from
 * general.name, Phi-3's, are not exported). */
START_TEST(export_roundtrip)
{
    static const char *const files[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-starcoder.gguf"};
    static const char text[] = "Hello <|end|> world <fim_prefix>12345 caf\xc3\xa9 \xff  !";
    struct slora_tokenizer *a = tok_load_vocab(files[_i], NULL), *b = tok_reload(a);
    ck_assert(slora_tokenizer_same_vocab(a, b));
    for (unsigned flags = 0; flags < 8; flags++) {
        int x[128], y[128];
        size_t nx, ny;
        if (flags & 1 && !slora_tokenizer_add_bos(a))
            continue;
        ck_assert_int_eq(slora_tokenizer_encode(a, text, sizeof(text) - 1, flags, x, 128, &nx), 0);
        ck_assert_int_eq(slora_tokenizer_encode(b, text, sizeof(text) - 1, flags, y, 128, &ny), 0);
        ck_assert_uint_eq(nx, ny);
        ck_assert(!memcmp(x, y, nx * sizeof(int)));
    }
    for (int id = 0; id < slora_tokenizer_vocab_size(a); id++)
        ck_assert_int_eq(slora_tokenizer_is_eog(a, id), slora_tokenizer_is_eog(b, id));
    slora_tokenizer_free(a);
    slora_tokenizer_free(b);
}
END_TEST

Suite *slora_tok_load_suite(void)
{
    Suite *s = suite_create("tok_load");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, bad_gguf, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, good_gguf);
    tcase_add_test(tc, none_id);
    tcase_add_loop_test(tc, bad_tokenizer_json, 0, (int)(sizeof(bad_hf) / sizeof(bad_hf[0])));
    tcase_add_test(tc, good_tokenizer_json);
    tcase_add_test(tc, special_partition);
    tcase_add_test(tc, merge_across_space);
    tcase_add_loop_test(tc, export_roundtrip, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
