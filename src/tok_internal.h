/* tok_internal.h - the tokenizer's private state and the helpers shared by
 * tokenizer.c (interface: construction, special tokens, encode dispatch,
 * decode) and its parts: tok_vocab.c (vocabulary building and validation),
 * tok_gguf.c / tok_hf.c / tok_llama2c.c (sources), tok_spm.c, tok_bpe.c
 * (algorithms), tok_merge.c (the pair-merging loop both use), tok_pretok.c
 * and tok_regex.c (BPE pre-tokenizers), tok_unicode.c (generated tables).
 *
 * A tokenizer is built once and then only read, so every function taking a
 * const tokenizer may run on any thread; scratch lives in the caller's
 * struct slora__tok_scratch.
 */
#ifndef SLORA_TOK_INTERNAL_H
#define SLORA_TOK_INTERNAL_H

#include <slora/tokenizer.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Token attributes: llama.cpp's llama_token_attr bits, plus EOG. */
enum {
    SLORA__TOK_ATTR_UNKNOWN = 1 << 0,
    SLORA__TOK_ATTR_UNUSED = 1 << 1,
    SLORA__TOK_ATTR_NORMAL = 1 << 2,
    SLORA__TOK_ATTR_CONTROL = 1 << 3,
    SLORA__TOK_ATTR_USER_DEFINED = 1 << 4,
    SLORA__TOK_ATTR_BYTE = 1 << 5,
    SLORA__TOK_ATTR_RSTRIP = 1 << 8,
    SLORA__TOK_ATTR_EOG = 1 << 15, /* in llama.cpp's special_eog_ids */
};

/* GGUF token types (tokenizer.ggml.token_type values). */
enum {
    SLORA__TOK_TYPE_UNDEFINED = 0,
    SLORA__TOK_TYPE_NORMAL = 1,
    SLORA__TOK_TYPE_UNKNOWN = 2,
    SLORA__TOK_TYPE_CONTROL = 3,
    SLORA__TOK_TYPE_USER_DEFINED = 4,
    SLORA__TOK_TYPE_UNUSED = 5,
    SLORA__TOK_TYPE_BYTE = 6,
};

enum slora__tok_algo { SLORA__TOK_LLAMA2C, SLORA__TOK_SPM, SLORA__TOK_BPE };

/* Unicode category flags (llama.cpp's unicode_cpt_flags low byte). */
enum {
    SLORA__UCD_UNDEFINED = 0x01,
    SLORA__UCD_NUMBER = 0x02,
    SLORA__UCD_LETTER = 0x04,
    SLORA__UCD_SEPARATOR = 0x08,
    SLORA__UCD_MARK = 0x10,
    SLORA__UCD_PUNCT = 0x20,
    SLORA__UCD_SYMBOL = 0x40,
    SLORA__UCD_CONTROL = 0x80,
    SLORA__UCD_SPACE = 0x100, /* White_Space (llama.cpp's set) */
};

/* tok_unicode.c (generated) */
extern const int slora__tok_ucd_n;
extern const uint32_t slora__tok_ucd_start[];
extern const uint8_t slora__tok_ucd_flags[];
bool slora__tok_is_space(uint32_t c);
/* Category flags | SLORA__UCD_SPACE of a codepoint; UNDEFINED beyond U+10FFFF. */
unsigned slora__tok_ucd(uint32_t c);

/* Open-addressing hash map from byte strings to ids; the keys are the
 * strings key[id][0..klen[id]) the owner keeps. */
struct slora__tok_map {
    int32_t *slot; /* (mask + 1) ids, -1 empty */
    size_t mask;
    const char *const *key;
    const uint32_t *klen;
};
int slora__tok_map_init(struct slora__tok_map *m, const char *const *key, const uint32_t *klen,
                        int n);
/* Inserts id unless its key is present; returns the id holding the key. */
int slora__tok_map_add(struct slora__tok_map *m, int id);
int slora__tok_map_find(const struct slora__tok_map *m, const char *s, size_t n);
void slora__tok_map_free(struct slora__tok_map *m);

/* BPE merges: (left id, right id) -> rank and the merged token (or -1 when
 * the concatenation is not a token). */
struct slora__tok_merge_entry {
    uint64_t key; /* left << 32 | right; UINT64_MAX empty */
    int32_t rank;
    int32_t result;
};
struct slora__tok_merges {
    struct slora__tok_merge_entry *e; /* (mask + 1) */
    size_t mask;
};

/* Named BPE pre-tokenizers (tokenizer.ggml.pre values they answer to are in
 * tok_pretok.c). */
enum slora__tok_pre {
    SLORA__PRE_DEFAULT,
    SLORA__PRE_GPT2,
    SLORA__PRE_LLAMA3,
    SLORA__PRE_QWEN2,
    SLORA__PRE_DEEPSEEK_LLM,
    SLORA__PRE_DEEPSEEK_CODER,
    SLORA__PRE_FALCON,
    SLORA__PRE_STARCODER, /* also refact and smollm: same splits */
};
struct slora__tok_regex;

struct slora_tokenizer {
    enum slora__tok_algo algo;
    enum slora__tok_pre pre;
    int n_vocab;
    char *arena;      /* every token text, NUL-terminated */
    const char **text; /* (n_vocab) into arena: GGUF form (U+2581, byte-level) */
    uint32_t *len;     /* (n_vocab) */
    float *score;      /* (n_vocab) */
    uint16_t *attr;    /* (n_vocab) SLORA__TOK_ATTR_* */
    uint8_t *type;     /* (n_vocab) the file's token types, for export */
    char pre_name[32]; /* BPE: the tokenizer.ggml.pre value */
    struct slora__tok_map by_text;
    char *piece;        /* token_to_piece(special) of every token, concatenated */
    uint32_t *piece_at; /* (n_vocab + 1) offsets into piece */
    int max_piece;      /* longest piece */
    int max_text;       /* longest text */
    int id[SLORA_TOK_SPECIAL_COUNT]; /* -1: none */
    int *special;   /* (n_special) partition order: text length desc, id asc */
    int n_special;
    bool add_bos;
    bool add_eos;
    bool add_space_prefix;
    bool clean_spaces;
    bool ignore_merges;
    int byte_id[256]; /* byte fallback (SPM: <0xXX>; BPE: its encoded character), -1 */
    /* SPM, llama2.c: no token has a space (U+2581, ' ') after another
     * character, so no merge crosses a space that follows a non-space:
     * the text is merged word by word (the same result, faster) */
    bool word_merges;
    /* BPE only */
    char *raw_arena;            /* every token's bytes (byte-level decoded) */
    const char **raw;           /* (n_vocab) NULL when not byte-level text */
    uint32_t *raw_len;          /* (n_vocab) */
    struct slora__tok_map by_raw; /* raw bytes -> id */
    struct slora__tok_merges merges;
    struct slora__tok_regex **regex; /* (n_regex) generic splits of the pre-tokenizer */
    int n_regex;
};

/* A vocabulary as a source describes it, before validation. Arrays are
 * borrowed for the duration of slora__tok_build. */
struct slora__tok_src {
    enum slora__tok_algo algo;
    /* names of the fields in diagnostics ("tokenizer.ggml.tokens", ...) */
    const char *key_tokens;
    const char *key_scores;
    const char *key_types;
    const char *key_merges;
    const char *key_pre;
    const char *key_id[SLORA_TOK_SPECIAL_COUNT];
    size_t n;                 /* tokens */
    const char *const *text;  /* (n) */
    const size_t *len;        /* (n) */
    const float *score;       /* (n) or NULL */
    const int32_t *type;      /* (n) GGUF token types or NULL */
    size_t n_merges;
    const char *const *merge_l; /* (n_merges) */
    const size_t *merge_l_len;
    const char *const *merge_r;
    const size_t *merge_r_len;
    const char *pre; /* BPE pre-tokenizer name, NUL-terminated; NULL: absent */
    const char *name; /* general.name (llama.cpp sets phi-3 strip attributes by it) */
    /* ids from the file; -1 absent (or llama.cpp's "none" 0xFFFFFFFF): the
     * tokenizer model's default applies; -2: explicitly none */
    int64_t id[SLORA_TOK_SPECIAL_COUNT];
    int64_t fim[6]; /* pre suf mid pad rep sep, -1 absent */
    int add_bos, add_eos, add_space_prefix; /* -1 absent, else 0 / 1 */
};
/* Everything absent; key names GGUF's. */
void slora__tok_src_init(struct slora__tok_src *s, enum slora__tok_algo algo);
/* Validate src and build the tokenizer (attributes, special ids and EOG set
 * as llama.cpp's llama_vocab::load decides them, piece cache, maps). */
int slora__tok_build(const struct slora__tok_src *src, struct slora_tokenizer **out, char *diag,
                     size_t diag_len);

/* UTF-8 */
/* llama.cpp's unicode_len_utf8: length announced by a lead byte (1 for a
 * continuation byte). */
static inline size_t slora__tok_utf8_len(unsigned char c)
{
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}
/* Decode s[0..n) as llama.cpp's unicode_cpts_from_utf8 (every byte that
 * does not start a sequence of the announced length with continuation bytes
 * becomes U+FFFD; overlong forms and surrogates decode as they are; a value
 * above U+10FFFF, where llama.cpp aborts, becomes U+FFFD per byte too).
 * out needs n entries; returns the count. */
size_t slora__tok_utf8_decode(const char *s, size_t n, uint32_t *out);
/* UTF-8 of c (c <= 0x10FFFF) into out[0..4); returns its length. */
size_t slora__tok_utf8_put(uint32_t c, char *out);
/* The character at s[0..n): > 0 its length when well-formed, 0 when s is a
 * well-formed but incomplete prefix, -k when ill-formed with a maximal
 * subpart of k bytes (Unicode 3.9, table 3-7). */
int slora__tok_utf8_char(const unsigned char *s, size_t n);
/* Whether s[0..n) is well-formed UTF-8. */
bool slora__tok_utf8_valid(const char *s, size_t n);

/* Per-call scratch: buffers grown on demand, freed by _free. */
struct slora__tok_scratch {
    void *p[8];
    size_t cap[8];
};
/* Buffer slot of at least bytes; NULL on ENOMEM. Contents are kept. */
void *slora__tok_scratch_get(struct slora__tok_scratch *s, int slot, size_t bytes);
void slora__tok_scratch_free(struct slora__tok_scratch *s);
enum { /* scratch slots */
       SLORA__SCR_SYM,
       SLORA__SCR_HEAP,
       SLORA__SCR_TEXT,
       SLORA__SCR_CPT,
       SLORA__SCR_FLAGS,
       SLORA__SCR_SPLIT,
       SLORA__SCR_SPLIT2,
       SLORA__SCR_WORD };

/* Output token buffer of one encode call. */
struct slora__tok_out {
    int *tok;
    size_t cap;
    size_t n;
    int err; /* first error: SLORA_ELIMIT, SLORA_ERANGE, SLORA_ENOMEM */
};
void slora__tok_emit(struct slora__tok_out *o, int id);

/* Pair merging shared by SPM, llama2.c and BPE: symbols are spans of a text
 * linked in order; `pair` says whether l and r merge, with which priority
 * (lower first; ties go to the leftmost pair) and into which token. The
 * loop repeatedly merges the best adjacent pair, as llama.cpp's sessions
 * and run.c do. */
struct slora__tok_sym {
    uint32_t at;  /* first byte in the text */
    uint32_t len; /* bytes; 0 once merged into its left neighbour */
    int32_t id;   /* token, or -1 */
    int32_t prev; /* -1 at the start */
    int32_t next; /* -1 at the end */
};
typedef bool (*slora__tok_pair_fn)(const void *ctx, const struct slora__tok_sym *l,
                                   const struct slora__tok_sym *r, double *prio, int *id);
/* Merge sym[0..n) (linked 0 -> n-1); 0 or SLORA_ENOMEM. */
int slora__tok_merge(struct slora__tok_sym *sym, int n, slora__tok_pair_fn pair, const void *ctx,
                     struct slora__tok_scratch *s);

/* Algorithms: encode one text fragment (no special tokens inside). */
void slora__tok_spm_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           bool prefix, struct slora__tok_out *o, struct slora__tok_scratch *s);
void slora__tok_llama2c_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                               struct slora__tok_out *o, struct slora__tok_scratch *s);
void slora__tok_bpe_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           struct slora__tok_out *o, struct slora__tok_scratch *s);
/* BPE construction: byte-level maps and merges from the validated src. */
int slora__tok_bpe_init(struct slora_tokenizer *t, const struct slora__tok_src *src, char *diag,
                        size_t diag_len);
void slora__tok_bpe_free(struct slora_tokenizer *t);
/* llama.cpp's llama_decode_text: a byte-level text back to bytes (other
 * characters become "[UNK_BYTE_0x<hex>" + the text + "]") into out (NULL:
 * count only); returns the byte count. */
size_t slora__tok_bpe_decode_text(const char *text, size_t len, char *out);
/* The byte-level character (1 or 2 bytes) of byte b. */
size_t slora__tok_bpe_byte_char(unsigned char b, char *out);

/* Pre-tokenizers (tok_pretok.c): the named pre-tokenizer of a
 * tokenizer.ggml.pre value (and its llama.cpp flags), its generic regexes,
 * and the split of a codepoint text into words. */
struct slora__tok_pre_info {
    const char *name;
    enum slora__tok_pre pre;
    bool clean_spaces;
    bool ignore_merges;
    bool add_bos;
};
const struct slora__tok_pre_info *slora__tok_pre_find(const char *name);
int slora__tok_pre_init(struct slora_tokenizer *t);
void slora__tok_pre_free(struct slora_tokenizer *t);
/* Split cpt[0..n) into words: writes word lengths (codepoints) to *words
 * (scratch slot SLORA__SCR_SPLIT), returns their count or -1 on ENOMEM. */
long slora__tok_pre_split(const struct slora_tokenizer *t, const uint32_t *cpt, size_t n,
                          struct slora__tok_scratch *s, size_t **words);

/* Backtracking regex (tok_regex.c) over codepoint arrays: the subset of
 * ECMAScript std::regex the generic splits use (classes, ranges, escapes,
 * \s, ?, *, +, {m,n}, $). `bytes`: the pattern is read byte by byte
 * (llama.cpp's "collapsed" category patterns) instead of as UTF-8. */
struct slora__tok_regex *slora__tok_regex_new(const char *pattern, bool bytes);
void slora__tok_regex_free(struct slora__tok_regex *re);
/* Leftmost match in s[from..n), s[0..n) being the whole searched text (`^`
 * matches at 0, `$` at n): 0 and [*mb, *me), or -1. */
int slora__tok_regex_search(const struct slora__tok_regex *re, const uint32_t *s, size_t from,
                            size_t n, size_t *mb, size_t *me);

/* tok_llama2c.c: a llama2.c piece in GGUF form (U+2581 for ' ', BOS and
 * EOS "<s>", "</s>") into out (3 * len + 8 bytes). */
size_t slora__tok_llama2c_text(const struct slora_tokenizer *t, int id, char *out);

#endif
