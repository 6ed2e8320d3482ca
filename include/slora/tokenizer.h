/* tokenizer.h - llama2.c BPE tokenizer (tok*.bin, or a GGUF vocabulary).
 *
 * Encode/decode match karpathy/llama2.c run.c exactly: dummy-prefix space,
 * byte fallback <0xXX> at id + 3, greedy merges by best score, BOS = 1,
 * EOS = 2. Immutable after construction; safe to share across threads.
 */
#ifndef SLORA_TOKENIZER_H
#define SLORA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>

#define SLORA_TOK_BOS 1
#define SLORA_TOK_EOS 2

struct slora_tokenizer;

/* Load a llama2.c tok*.bin holding exactly vocab_size pieces. Returns 0,
 * SLORA_EIO (cannot read), SLORA_EFORMAT (truncated, a length outside
 * [0, max_token_length], trailing bytes, fewer than 3 pieces) or
 * SLORA_ENONFINITE (a score); diag names the file, piece and byte offset. */
int slora_tokenizer_load(const char *path, int vocab_size, struct slora_tokenizer **out, char *diag,
                         size_t diag_len);
/* Build from arrays (GGUF vocabulary): pieces are copied; a GGUF piece uses
 * U+2581 for space, converted here to llama2.c's ' ', and ids 1 and 2 when
 * "<s>" and "</s>" become llama2.c's "\n<s>\n" and "\n</s>\n", so the
 * result equals the tok*.bin tokenizer of the same vocabulary. Errors as
 * slora_tokenizer_load (diag without a file name). */
int slora_tokenizer_new_from_vocab(const char *const *pieces, const size_t *lens,
                                   const float *scores, int n, struct slora_tokenizer **out,
                                   char *diag, size_t diag_len);
void slora_tokenizer_free(struct slora_tokenizer *t);
int slora_tokenizer_vocab_size(const struct slora_tokenizer *t);

/* Encode text; bos adds BOS (1) first. tokens must hold strlen(text) + 3
 * entries. Returns 0, SLORA_ENOMEM, or SLORA_ERANGE when a byte fallback id
 * (byte + 3) is outside a small vocabulary. A vocabulary without a " "
 * piece gets the byte token of ' ' as the dummy prefix. Encoding costs
 * O(n log n) (run.c's O(n^2) scan, same result). */
int slora_tokenizer_encode(const struct slora_tokenizer *t, const char *text, bool bos, int *tokens,
                           int *n_tokens);
/* Longest text (bytes) that can encode to at most n_tokens tokens, BOS
 * included: every token covers at most max_piece_len bytes. Encoding needs
 * about 80 bytes of scratch per text byte, so a caller with a token budget
 * (seq_len) rejects longer text before encoding. */
size_t slora_tokenizer_max_text_bytes(const struct slora_tokenizer *t, int n_tokens);
/* Piece for `token` following `prev` exactly as run.c's decode does (a
 * leading space is stripped after BOS; <0xXX> becomes the raw byte). Sets
 * *len. Never NULL for a valid id; returns "" for invalid ids. */
const char *slora_tokenizer_decode(const struct slora_tokenizer *t, int prev, int token,
                                   size_t *len);
/* Text of ids[0..n) as generation renders it: each piece decoded after its
 * predecessor (ids[0] after prev; pass -1 for none), BOS and EOS not
 * rendered, ill-formed UTF-8 cleaned as slora_tokenizer_utf8_clean(final).
 * Returns a new NUL-terminated string (caller frees; *len excludes the NUL)
 * or NULL on ENOMEM. Invalid ids render as "". */
char *slora_tokenizer_detokenize(const struct slora_tokenizer *t, int prev, const int *ids, int n,
                                 size_t *len);
/* Copy s[0..n) to out as well-formed UTF-8: each ill-formed sequence (a
 * maximal subpart, Unicode 3.9 table 3-7) becomes U+FFFD. An incomplete
 * character at the end is left unconsumed, or with `final` replaced by one
 * U+FFFD. out needs 3 * n bytes. Returns the bytes written; *used = bytes
 * of s consumed. */
size_t slora_tokenizer_utf8_clean(const char *s, size_t n, bool final, char *out, size_t *used);
/* Raw piece (llama2.c form, NUL-terminated) and score, for writing a GGUF
 * vocabulary; "" / 0 for invalid ids. */
const char *slora_tokenizer_piece(const struct slora_tokenizer *t, int id, size_t *len);
float slora_tokenizer_score(const struct slora_tokenizer *t, int id);
int slora_tokenizer_max_piece_len(const struct slora_tokenizer *t);

#endif
