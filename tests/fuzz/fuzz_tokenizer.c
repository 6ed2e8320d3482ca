/* fuzz_tokenizer.c - libFuzzer target for tokenizer encoding (`make fuzz`).
 *
 * Odd first byte: the rest is a tok*.bin for a vocabulary of
 * 3 + first / 2 pieces; a file that loads must then encode and decode any
 * text without fault. Even first byte: the rest is text for a fixed
 * vocabulary, bits 1-2 choosing it and the flags: SPM (byte pieces and a
 * few merges) or byte-level BPE (qwen2 pre-tokenizer), with or without
 * special-token parsing. Decoding gives back exactly a well-formed text
 * encoded without parsing (for SPM: without a user-defined token, after
 * which it adds a space, and without U+2581, which it decodes as a space). Ill-formed text need not round-trip: BPE turns each
 * bad byte into U+FFFD, and SPM's byte fallback may split the U+2581 of a
 * space after a bad lead byte into raw bytes, as llama.cpp does.
 */
#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/tokenizer.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct slora_tokenizer *load(struct slora_gguf_writer *w)
{
    char path[] = "/tmp/slora-fuzztok-XXXXXX", diag[256];
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    close(fd);
    if (slora_gguf_writer_write(w, path, diag, sizeof(diag)))
        abort();
    slora_gguf_writer_free(w);
    FILE *f = fopen(path, "rb");
    static uint8_t buf[1 << 16];
    size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f)
        fclose(f);
    unlink(path);
    struct slora_gguf *g;
    struct slora_tokenizer *t;
    if (slora_gguf_parse(buf, len, &g, diag, sizeof(diag)) ||
        slora_tokenizer_new_from_gguf(g, &t, diag, sizeof(diag))) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", diag);
        abort();
    }
    slora_gguf_free(g);
    return t;
}

/* SPM: <unk> <s> </s>, the 256 byte tokens, some pieces and specials. */
static struct slora_tokenizer *fixed_spm(void)
{
    static const char *const extra[] = {"\xe2\x96\x81", "he", "ll", "llo", "hello", "\xe2\x96\x81h",
                                        "\xc3\xa9", "e\xe2\x96\x81", "<|user|>", "[X]"};
    enum { N_EXTRA = sizeof(extra) / sizeof(extra[0]), N = 259 + N_EXTRA };
    static char bytes[256][8];
    const char *pieces[N] = {"<unk>", "<s>", "</s>"};
    size_t lens[N];
    float scores[N];
    int32_t types[N];
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
    }
    for (int i = 0; i < N_EXTRA; i++)
        pieces[259 + i] = extra[i];
    for (int i = 0; i < N; i++) {
        lens[i] = strlen(pieces[i]);
        scores[i] = i < 259 ? 0.0f : (float)-i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : i == N - 2 ? 3 : i == N - 1 ? 4 : 1;
    }
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    slora_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", pieces, lens, N);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.scores", SLORA_GGUF_F32, scores, N);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, N);
    return load(w);
}

/* Byte-level BPE: the 256 byte characters, a few merges, <|endoftext|>. */
static struct slora_tokenizer *fixed_bpe(void)
{
    static char chars[256][4];
    enum { N_MERGES = 5, N = 256 + N_MERGES + 1 };
    static const char *const merges[N_MERGES] = {"h e", "l l", "he ll", "\xc4\xa0 h", "o \xc4\xa0"};
    static const char *const merged[N_MERGES] = {"he", "ll", "hell", "\xc4\xa0h", "o\xc4\xa0"};
    const char *tokens[N];
    size_t lens[N], mlens[N_MERGES];
    int32_t types[N];
    /* GPT-2's byte map: printable bytes stand for themselves, the rest
     * for U+0100 + k */
    for (int b = 0, k = 0; b < 256; b++) {
        int c = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? b : 256 + k++;
        int n = c < 0x80 ? 1 : 2;
        if (n == 1) {
            chars[b][0] = (char)c;
        } else {
            chars[b][0] = (char)(0xC0 | c >> 6);
            chars[b][1] = (char)(0x80 | (c & 0x3F));
        }
        tokens[b] = chars[b];
        lens[b] = (size_t)n;
        types[b] = 1;
    }
    for (int i = 0; i < N_MERGES; i++) {
        tokens[256 + i] = merged[i];
        mlens[i] = strlen(merges[i]);
    }
    tokens[N - 1] = "<|endoftext|>";
    for (int i = 256; i < N; i++) {
        lens[i] = strlen(tokens[i]);
        types[i] = i == N - 1 ? 3 : 1;
    }
    struct slora_gguf_writer *w = slora_gguf_writer_new(3, SLORA_GGUF_DEFAULT_ALIGNMENT);
    slora_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    slora_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen2");
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", tokens, lens, N);
    slora_gguf_writer_add_array(w, "tokenizer.ggml.token_type", SLORA_GGUF_I32, types, N);
    slora_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", merges, mlens, N_MERGES);
    slora_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", N - 1);
    return load(w);
}

static void roundtrip(const struct slora_tokenizer *t, const char *text, size_t n, unsigned flags,
                      bool exact)
{
    size_t cap = slora_tokenizer_max_tokens(t, n), n_ids;
    int *ids = malloc(cap * sizeof(*ids));
    char *clean = malloc(3 * n + 1);
    if (!ids || !clean)
        abort();
    int err = slora_tokenizer_encode(t, text, n, flags, ids, cap, &n_ids);
    if (!err) {
        for (size_t i = 0; i < n_ids; i++)
            if (ids[i] < 0 || ids[i] >= slora_tokenizer_vocab_size(t))
                abort();
        size_t len, used, raw_len;
        char *back = slora_tokenizer_render(t, -1, ids, (int)n_ids, &len);
        char *raw = slora_tokenizer_detokenize(t, ids, (int)n_ids, SLORA_TOK_UNPARSE_SPECIAL,
                                               &raw_len);
        size_t want = slora_tokenizer_utf8_clean(text, n, true, clean, &used);
        if (!back || !raw || used != n)
            abort();
        if (exact && (len != want || memcmp(back, clean, len)))
            abort();
        free(back);
        free(raw);
    } else if (err != SLORA_ERANGE) {
        abort();
    }
    free(ids);
    free(clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct slora_tokenizer *spm, *bpe;
    if (size < 1)
        return 0;
    if (!spm) {
        spm = fixed_spm();
        bpe = fixed_bpe();
    }
    if (!(data[0] & 1)) {
        const char *text = (const char *)data + 1;
        size_t n = size - 1, used;
        bool parse = data[0] & 4;
        unsigned flags = parse ? SLORA_TOK_PARSE_SPECIAL : 0;
        char *clean = malloc(3 * n + 1);
        if (!clean)
            abort();
        bool valid = slora_tokenizer_utf8_clean(text, n, true, clean, &used) == n &&
                     !memcmp(clean, text, n);
        free(clean);
        if (data[0] & 2)
            roundtrip(bpe, text, n, flags, !parse && valid);
        else /* text after a special token gets SPM's space prefix; SPM reads
              * a U+2581 in the text as the space it stands for */
            roundtrip(spm, text, n, flags | SLORA_TOK_ADD_BOS,
                      !parse && valid && !memmem(text, n, "[X]", 3) &&
                          !memmem(text, n, "\xe2\x96\x81", 3));
        return 0;
    }
    int fd = memfd_create("tok", 0);
    if (fd < 0 || write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
        abort();
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct slora_tokenizer *t;
    char diag[256];
    if (!slora_tokenizer_load(path, 3 + data[0] / 2, &t, diag, sizeof(diag))) {
        /* arbitrary pieces may merge "<0x" prefixes and spaces: no exact
         * round trip, but no fault and ids in range */
        static const char text[] = "hello h\xc3\xa9llo <0x41> \xff";
        roundtrip(t, text, sizeof(text) - 1, SLORA_TOK_ADD_BOS, false);
        slora_tokenizer_free(t);
    }
    close(fd);
    return 0;
}
