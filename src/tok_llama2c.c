/* tok_llama2c.c - the llama2.c tokenizer file (tok*.bin), and its pieces
 * in the form of the GGUF "llama" vocabulary llama.cpp's llama2.c
 * converter writes.
 *
 * tok*.bin layout (little-endian, written by llama2.c tokenizer.py):
 *   int32 max_token_length
 *   vocab_size times: float32 score, int32 len, len bytes of piece (no NUL)
 * and nothing after the last piece.
 *
 * Pieces keep run.c's form (a space is ' ', BOS and EOS are "\n<s>\n" and
 * "\n</s>\n"); ids are run.c's: <unk> 0, BOS 1, EOS 2, byte b at b + 3.
 * Token types are the converter's: 0 unknown, 1 and 2 control, "<0xHH>"
 * byte, the rest normal.
 */
#include "internal.h"
#include "tok_internal.h"

#include <slora/error.h>
#include <slora/fsio.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* run.c reads pieces into buffers of max_token_length; real files: <= 64. */
#define MAX_PIECE_LEN 4096
/* Largest tok*.bin read (a 32000-piece file is about 0.5 MiB). */
#define MAX_FILE_BYTES ((size_t)256 << 20)

static int32_t read_i32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static float read_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)read_i32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static int32_t piece_type(int id, const char *p, size_t n)
{
    if (id == 0)
        return SLORA__TOK_TYPE_UNKNOWN;
    if (id == 1 || id == 2)
        return SLORA__TOK_TYPE_CONTROL;
    if (n == 6 && !memcmp(p, "<0x", 3) && p[5] == '>')
        return SLORA__TOK_TYPE_BYTE;
    return SLORA__TOK_TYPE_NORMAL;
}

/* Parse buf into pieces/lens/scores (pointing into buf). */
static int parse(const char *path, const unsigned char *buf, size_t size, int vocab_size,
                 const char **pieces, size_t *lens, float *scores, char *diag, size_t diag_len)
{
    if (size < 4)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: truncated: %zu bytes, no max_token_length header", path, size);
    int32_t max_len = read_i32(buf);
    if (max_len < 1 || max_len > MAX_PIECE_LEN)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: max_token_length %d out of range [1, %d]", path, (int)max_len,
                           MAX_PIECE_LEN);
    size_t off = 4;
    for (int i = 0; i < vocab_size; i++) {
        if (size - off < 8)
            return slora__diag(
                diag, diag_len, SLORA_EFORMAT,
                "%s: truncated at byte %zu: piece %d of %d missing (vocab_size mismatch?)", path,
                off, i, vocab_size);
        scores[i] = read_f32(buf + off);
        int32_t len = read_i32(buf + off + 4);
        if (len < 0 || len > max_len)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "%s: piece %d at byte %zu has length %d, outside [0, %d]", path, i,
                               off + 4, (int)len, (int)max_len);
        off += 8;
        if (size - off < (size_t)len)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "%s: truncated at byte %zu: piece %d needs %d bytes", path, off, i,
                               (int)len);
        pieces[i] = (const char *)buf + off;
        lens[i] = (size_t)len;
        off += (size_t)len;
    }
    if (off != size)
        return slora__diag(
            diag, diag_len, SLORA_EFORMAT,
            "%s: %zu trailing bytes after %d pieces (tokenizer is for a larger vocabulary)", path,
            size - off, vocab_size);
    return 0;
}

int slora_tokenizer_load(const char *path, int vocab_size, struct slora_tokenizer **out,
                         char *diag, size_t diag_len)
{
    *out = NULL;
    if (vocab_size < 3 || vocab_size > (1 << 24))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "%s: vocabulary size %d: need at least 3 pieces (<unk>, BOS, EOS)",
                           path, vocab_size);
    void *file = NULL;
    size_t size = 0, n = (size_t)vocab_size;
    int err = slora_fsio_read_file(path, MAX_FILE_BYTES, &file, &size, diag, diag_len);
    if (err)
        return err;
    const unsigned char *buf = file;
    const char **pieces = malloc(n * sizeof(*pieces));
    size_t *lens = malloc(n * sizeof(*lens));
    float *scores = malloc(n * sizeof(*scores));
    int32_t *types = malloc(n * sizeof(*types));
    err = SLORA_ENOMEM;
    if (!pieces || !lens || !scores || !types)
        goto out_free;
    err = parse(path, buf, size, vocab_size, pieces, lens, scores, diag, diag_len);
    if (err)
        goto out_free;
    for (size_t i = 0; i < n; i++)
        types[i] = piece_type((int)i, pieces[i], lens[i]);
    struct slora__tok_src src;
    slora__tok_src_init(&src, SLORA__TOK_LLAMA2C);
    src.key_tokens = src.key_scores = "piece";
    src.n = n;
    src.text = pieces;
    src.len = lens;
    src.score = scores;
    src.type = types;
    char sub[200];
    err = slora__tok_build(&src, out, sub, sizeof(sub));
    if (err)
        slora__diag(diag, diag_len, err, "%s: %s", path, sub);
out_free:
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    free(file);
    return err;
}

size_t slora__tok_llama2c_text(const struct slora_tokenizer *t, int id, char *out)
{
    const char *p = t->text[id];
    size_t len = t->len[id], o = 0;
    if (id == 1 || id == 2) {
        p = id == 1 ? "<s>" : "</s>";
        len = strlen(p);
    }
    for (size_t j = 0; j < len; j++) {
        if (p[j] == ' ') {
            memcpy(out + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            out[o++] = p[j];
        }
    }
    return o;
}
