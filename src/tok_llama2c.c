/* tok_llama2c.c - the llama2.c tokenizer file (tok*.bin) and its export as
 * the GGUF "llama" vocabulary llama.cpp's llama2.c converter writes.
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
#include <slora/gguf.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* run.c reads pieces into buffers of max_token_length; real files: <= 64. */
#define MAX_PIECE_LEN 4096

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

static int read_file(const char *path, unsigned char **buf, size_t *size, char *diag,
                     size_t diag_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return slora__diag(diag, diag_len, SLORA_EIO, "%s: %s", path, strerror(errno));
    int err = SLORA_EIO;
    long end;
    if (fseek(f, 0, SEEK_END) || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        slora__diag(diag, diag_len, err, "%s: cannot determine size: %s", path, strerror(errno));
        goto err_close;
    }
    *size = (size_t)end;
    *buf = malloc(*size ? *size : 1);
    if (!*buf) {
        err = SLORA_ENOMEM;
        goto err_close;
    }
    if (fread(*buf, 1, *size, f) != *size) {
        slora__diag(diag, diag_len, err, "%s: read error", path);
        free(*buf);
        goto err_close;
    }
    fclose(f);
    return 0;
err_close:
    fclose(f);
    return err;
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
    unsigned char *buf = NULL;
    size_t size = 0, n = (size_t)vocab_size;
    int err = read_file(path, &buf, &size, diag, diag_len);
    if (err)
        return err;
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
    free(buf);
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

int slora__tok_llama2c_write_gguf(const struct slora_tokenizer *t, struct slora_gguf_writer *w)
{
    size_t n = (size_t)t->n_vocab;
    char **pieces = calloc(n, sizeof(*pieces));
    size_t *lens = calloc(n, sizeof(*lens));
    int32_t *types = calloc(n, sizeof(*types));
    int err = SLORA_ENOMEM;
    if (!pieces || !lens || !types)
        goto out_free;
    for (size_t i = 0; i < n; i++) {
        if (!(pieces[i] = malloc(3 * t->len[i] + 8)))
            goto out_free;
        lens[i] = slora__tok_llama2c_text(t, (int)i, pieces[i]);
        types[i] = t->type[i];
    }
    slora_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)pieces, lens,
                                    n);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, t->score, n);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, n);
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    err = slora_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
out_free:
    for (size_t i = 0; pieces && i < n; i++)
        free(pieces[i]);
    free(pieces);
    free(lens);
    free(types);
    return err;
}
