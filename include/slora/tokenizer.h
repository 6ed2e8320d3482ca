/* tokenizer.h - the model's tokenizer, built from the model file's own
 * vocabulary and matching llama.cpp (llama-vocab.cpp) token for token.
 *
 * Three implementations behind one interface:
 * - SPM: a GGUF "llama" vocabulary (SentencePiece-style): U+2581 spaces, a
 *   space prefix, merges of adjacent pieces by best score, byte fallback;
 * - BPE: a GGUF "gpt2" vocabulary or a Hugging Face tokenizer.json
 *   (byte-level BPE): the file's named pre-tokenizer splits the text into
 *   words, merges apply by rank;
 * - llama2.c: a tok*.bin file, encoded and decoded exactly as
 *   karpathy/llama2.c run.c does (BOS 1, EOS 2, byte fallback at id + 3).
 * Special and added tokens come from the file (token types, BOS/EOS/EOT/...
 * ids, add_bos); they are recognised in text only with
 * SLORA_TOK_PARSE_SPECIAL, never produced from plain text otherwise.
 *
 * Immutable after construction: any thread may use one tokenizer
 * concurrently. Token ids are ints in [0, vocab_size).
 */
#ifndef SLORA_TOKENIZER_H
#define SLORA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

struct slora_tokenizer;
struct slora_gguf;
struct slora_gguf_writer;

/* Encode flags. */
#define SLORA_TOK_ADD_BOS 1u       /* prepend BOS (callers pass slora_tokenizer_add_bos()) */
#define SLORA_TOK_ADD_EOS 2u       /* append EOS */
#define SLORA_TOK_PARSE_SPECIAL 4u /* control tokens in the text become their ids */
/* Detokenize flags (llama.cpp's llama_detokenize). */
#define SLORA_TOK_REMOVE_SPECIAL 1u  /* drop a leading BOS / trailing EOS the file adds */
#define SLORA_TOK_UNPARSE_SPECIAL 2u /* render control tokens as their text */

/* Special token roles (slora_tokenizer_special). */
enum slora_tok_special {
    SLORA_TOK_SPECIAL_BOS,
    SLORA_TOK_SPECIAL_EOS,
    SLORA_TOK_SPECIAL_EOT,
    SLORA_TOK_SPECIAL_EOM,
    SLORA_TOK_SPECIAL_PAD,
    SLORA_TOK_SPECIAL_UNK,
    SLORA_TOK_SPECIAL_SEP,
    SLORA_TOK_SPECIAL_COUNT
};

/* The vocabulary of a parsed GGUF (g may hold only tokenizer keys):
 * tokenizer.ggml.model "llama" (SPM) or "gpt2" (BPE, whose
 * tokenizer.ggml.pre must name a supported pre-tokenizer), tokens, scores,
 * token_type, merges, special ids and flags. Everything is copied; g may be
 * freed afterwards. Returns 0, SLORA_EFORMAT (a missing, mistyped or
 * inconsistent key: counts, ids out of range, ill-formed UTF-8, duplicate
 * tokens, merges of unknown tokens), SLORA_EUNSUPPORTED (another tokenizer
 * model or pre-tokenizer), SLORA_ENONFINITE (a score) or SLORA_ENOMEM; diag
 * names the key and index. */
int slora_tokenizer_new_from_gguf(const struct slora_gguf *g, struct slora_tokenizer **out,
                                  char *diag, size_t diag_len);
/* A Hugging Face byte-level BPE tokenizer: tokenizer.json (json, json_len
 * bytes) and tokenizer_config.json (config, or NULL) for BOS/EOS and
 * add_bos_token. model.type must be "BPE"; the pre_tokenizer must be one of
 * the named pre-tokenizers' (its Split patterns compared exactly) with
 * byte-level encoding; added_tokens become control (special) or
 * user-defined tokens; ids missing below n_vocab (the model's vocabulary
 * size, which every id must be below; 0: the tokenizer's own count, with at
 * most 1024 ids unused) are unused "[PAD<i>]" tokens, as llama.cpp's
 * converter writes them. Errors as slora_tokenizer_new_from_gguf, diag
 * naming the JSON field. */
int slora_tokenizer_new_from_hf(const char *json, size_t json_len, const char *config,
                                size_t config_len, int n_vocab, struct slora_tokenizer **out,
                                char *diag, size_t diag_len);
/* A llama2.c tok*.bin holding exactly vocab_size pieces. Returns 0,
 * slora_fsio_read_file's errors (SLORA_ENOTFOUND, SLORA_EIO...), SLORA_EFORMAT (truncated, a length outside
 * [0, max_token_length], trailing bytes, fewer than 3 pieces, duplicate
 * pieces) or SLORA_ENONFINITE (a score); diag names the file, piece and
 * byte offset. */
int slora_tokenizer_load(const char *path, int vocab_size, struct slora_tokenizer **out,
                         char *diag, size_t diag_len);
void slora_tokenizer_free(struct slora_tokenizer *t);

int slora_tokenizer_vocab_size(const struct slora_tokenizer *t);
/* The id of a special role, -1 when the file has none. */
int slora_tokenizer_special(const struct slora_tokenizer *t, enum slora_tok_special role);
/* Whether the file asks for BOS before / EOS after an encoded text. */
bool slora_tokenizer_add_bos(const struct slora_tokenizer *t);
bool slora_tokenizer_add_eos(const struct slora_tokenizer *t);
/* End of generation: EOS, EOT, EOM and the other end tokens the file
 * declares (llama.cpp's special_eog_ids); false for invalid ids. */
bool slora_tokenizer_is_eog(const struct slora_tokenizer *t, int id);
/* Control or unknown tokens: never rendered as text by default. */
bool slora_tokenizer_is_control(const struct slora_tokenizer *t, int id);

/* Encode text[0..len) (any bytes, NUL included) into tokens[0..cap);
 * *n = the token count. Returns 0, SLORA_ELIMIT when more than cap tokens
 * are needed, SLORA_EINVAL when a flag asks for a BOS/EOS the file lacks,
 * SLORA_ERANGE when byte fallback needs a byte token the vocabulary lacks,
 * or SLORA_ENOMEM. */
int slora_tokenizer_encode(const struct slora_tokenizer *t, const char *text, size_t len,
                           unsigned flags, int *tokens, size_t cap, size_t *n);
/* Most tokens a text of len bytes can encode to, any flags (a byte may
 * become several byte tokens: a BPE bad byte is U+FFFD, an SPM space
 * U+2581); SIZE_MAX when that overflows. */
size_t slora_tokenizer_max_tokens(const struct slora_tokenizer *t, size_t len);
/* Longest text (bytes) that can encode to at most n_tokens tokens: a caller
 * with a token budget rejects longer text before encoding (encoding needs
 * scratch proportional to the text). */
size_t slora_tokenizer_max_text_bytes(const struct slora_tokenizer *t, int n_tokens);

/* llama.cpp's token_to_piece(id, lstrip 0, special): the bytes of one
 * token (U+2581 as space, byte tokens as their byte, byte-level BPE
 * decoded); control and unknown tokens are "" unless special. Sets *len;
 * "" for invalid ids. Borrowed from t, not NUL-terminated. */
const char *slora_tokenizer_piece(const struct slora_tokenizer *t, int id, bool special,
                                  size_t *len);
/* The piece of `id` as generation renders it after `prev` (-1: at the start
 * of the text): control tokens are "", and the space an SPM vocabulary
 * prefixes to a text is dropped after BOS or at the start (llama2.c: only
 * after BOS, as run.c). Borrowed from t, not NUL-terminated. */
const char *slora_tokenizer_decode(const struct slora_tokenizer *t, int prev, int id,
                                   size_t *len);
/* Longest piece any token renders to (bytes). */
int slora_tokenizer_max_piece_len(const struct slora_tokenizer *t);
/* Text of ids[0..n) as generation renders it: each piece decoded after its
 * predecessor (ids[0] after prev), ill-formed UTF-8 cleaned as
 * slora_tokenizer_utf8_clean(final). Returns a new NUL-terminated string
 * (caller frees; *len excludes the NUL) or NULL on ENOMEM. Invalid ids
 * render as "". */
char *slora_tokenizer_render(const struct slora_tokenizer *t, int prev, const int *ids, int n,
                             size_t *len);
/* llama.cpp's llama_detokenize(ids, n, flags): raw bytes, which are
 * ill-formed UTF-8 exactly when the tokens' bytes are. New NUL-terminated
 * string (caller frees) or NULL on ENOMEM. */
char *slora_tokenizer_detokenize(const struct slora_tokenizer *t, const int *ids, int n,
                                 unsigned flags, size_t *len);
/* Copy s[0..n) to out as well-formed UTF-8: each ill-formed sequence (a
 * maximal subpart, Unicode 3.9 table 3-7) becomes U+FFFD. An incomplete
 * character at the end is left unconsumed, or with `final` replaced by one
 * U+FFFD. out needs 3 * n bytes. Returns the bytes written; *used = bytes
 * of s consumed. */
size_t slora_tokenizer_utf8_clean(const char *s, size_t n, bool final, char *out, size_t *used);

/* Whether a and b hold the same vocabulary (token texts in GGUF form and
 * scores), e.g. a tok*.bin and the GGUF converted from it. */
bool slora_tokenizer_same_vocab(const struct slora_tokenizer *a, const struct slora_tokenizer *b);

/* Add the tokenizer.* keys that rebuild this tokenizer to a GGUF writer
 * (a llama2.c vocabulary becomes the "llama" vocabulary llama.cpp's
 * converter writes for it). 0 or SLORA_ENOMEM. */
int slora_tokenizer_write_gguf(const struct slora_tokenizer *t, struct slora_gguf_writer *w);

#endif
