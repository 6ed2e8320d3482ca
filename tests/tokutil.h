/* tokutil.h - helpers of the tokenizer suites: the shared vocabulary-only
 * GGUFs (../shared/models/vocab), optionally with tokenizer.ggml.pre
 * replaced as tests/tok_oracle.py does. Test code only. */
#ifndef SLORA_TOKUTIL_H
#define SLORA_TOKUTIL_H

#include <slora/fsio.h>
#include <slora/gguf.h>
#include <slora/tokenizer.h>

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_VOCAB_DIR "../shared/models/vocab/"

static inline char *tok_slurp(const char *path, size_t *len)
{
    void *buf;
    char diag[256] = "";
    int err = slora_fsio_read_file(path, (size_t)1 << 30, &buf, len, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    return buf;
}

/* The tokenizer of TEST_VOCAB_DIR/file, with tokenizer.ggml.pre set to pre
 * when not NULL (the GGUF keeps pointers into its buffer, so the string
 * value is swapped for one built here). */
static inline struct slora_tokenizer *tok_load_vocab(const char *file, const char *pre)
{
    char path[512], diag[256] = "";
    snprintf(path, sizeof(path), TEST_VOCAB_DIR "%s", file);
    size_t len;
    char *buf = tok_slurp(path, &len);
    struct slora_gguf *g;
    ck_assert_msg(!slora_gguf_parse((const uint8_t *)buf, len, &g, diag, sizeof(diag)), "%s: %s",
                  path, diag);
    uint8_t value[8 + 64];
    if (pre) {
        uint64_t n = strlen(pre);
        ck_assert_uint_le(n, 64);
        memcpy(value, &n, 8);
        memcpy(value + 8, pre, n);
        bool found = false;
        for (size_t i = 0; i < g->n_kv; i++)
            if (g->kv[i].key_len == 18 && !memcmp(g->kv[i].key, "tokenizer.ggml.pre", 18)) {
                g->kv[i].value = value;
                found = true;
            }
        ck_assert(found);
    }
    struct slora_tokenizer *t;
    int err = slora_tokenizer_new_from_gguf(g, &t, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s: %s", path, diag);
    slora_gguf_free(g);
    free(buf);
    return t;
}

/* A tokenizer parsed from a GGUF file (the file is read whole). */
static inline struct slora_tokenizer *tok_load_gguf_file(const char *path, int *err, char *diag,
                                                         size_t diag_len)
{
    size_t len;
    char *buf = tok_slurp(path, &len);
    struct slora_gguf *g;
    struct slora_tokenizer *t = NULL;
    *err = slora_gguf_parse((const uint8_t *)buf, len, &g, diag, diag_len);
    if (!*err) {
        *err = slora_tokenizer_new_from_gguf(g, &t, diag, diag_len);
        slora_gguf_free(g);
    }
    free(buf);
    return t;
}

/* An SPM ("llama") vocabulary of the given pieces, scores 0, written as a
 * vocabulary-only GGUF and loaded back: id 0 unknown, 1 and 2 control
 * (BOS, EOS), "<0xHH>" byte tokens, the rest normal. */
static inline struct slora_tokenizer *tok_spm_from_pieces(const char *const *pieces, int n)
{
    size_t *lens = calloc((size_t)n, sizeof(*lens));
    float *scores = calloc((size_t)n, sizeof(*scores));
    int32_t *types = calloc((size_t)n, sizeof(*types));
    for (int i = 0; i < n; i++) {
        lens[i] = strlen(pieces[i]);
        bool byte = lens[i] == 6 && !memcmp(pieces[i], "<0x", 3);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : byte ? 6 : 1;
    }
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    slora_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", pieces, lens, (size_t)n);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, scores, (size_t)n);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, (size_t)n);
    char path[] = "/tmp/slora-tokvocab-XXXXXX", diag[256] = "";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, sizeof(diag)), 0);
    slora_gguf_writer_free(w);
    int err;
    struct slora_tokenizer *t = tok_load_gguf_file(path, &err, diag, sizeof(diag));
    ck_assert_msg(err == 0, "%s", diag);
    unlink(path);
    free(lens);
    free(scores);
    free(types);
    return t;
}

/* t written with slora_tokenizer_write_gguf and loaded back. */
static inline struct slora_tokenizer *tok_reload(const struct slora_tokenizer *t)
{
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    ck_assert_int_eq(slora_tokenizer_write_gguf(t, w), 0);
    char path[] = "/tmp/slora-tokexport-XXXXXX", diag[256] = "";
    int fd = mkstemp(path), err;
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(slora_gguf_writer_write(w, path, diag, sizeof(diag)), 0);
    slora_gguf_writer_free(w);
    struct slora_tokenizer *back = tok_load_gguf_file(path, &err, diag, sizeof(diag));
    unlink(path);
    ck_assert_msg(err == 0, "%s", diag);
    return back;
}

#endif
