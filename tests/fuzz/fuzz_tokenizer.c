/* fuzz_tokenizer.c - libFuzzer target for the tokenizer (`make fuzz`).
 *
 * Odd first byte: the rest is a tok*.bin for a vocabulary of
 * 3 + first / 2 pieces; a file that loads must then encode and decode any
 * text without fault. Even first byte: the rest (up to a NUL) is text for a
 * fixed vocabulary (byte pieces and a few merges); encode then detokenize
 * must give back exactly the text with ill-formed UTF-8 replaced by U+FFFD.
 */
#include <slora/tokenizer.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct slora_tokenizer *fixed_vocab(void)
{
    static const char *const merges[] = {" ", "he", "ll", "llo", "hello", " h", "\xc3\xa9", "e "};
    enum { N_MERGES = sizeof(merges) / sizeof(merges[0]), N = 259 + N_MERGES };
    static char bytes[256][8];
    const char *pieces[N] = {"<unk>", "<s>", "</s>"};
    size_t lens[N];
    float scores[N];
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
    }
    for (int i = 0; i < N_MERGES; i++)
        pieces[259 + i] = merges[i];
    for (int i = 0; i < N; i++) {
        lens[i] = strlen(pieces[i]);
        scores[i] = i < 259 ? 0.0f : (float)-i;
    }
    struct slora_tokenizer *t;
    char diag[128];
    if (slora_tokenizer_new_from_vocab(pieces, lens, scores, N, &t, diag, sizeof(diag)))
        abort();
    return t;
}

static void roundtrip(const struct slora_tokenizer *t, const char *text, bool exact)
{
    size_t n = strlen(text);
    int *ids = malloc((n + 3) * sizeof(*ids));
    char *clean = malloc(3 * n + 1);
    int n_ids;
    if (!ids || !clean)
        abort();
    if (!slora_tokenizer_encode(t, text, true, ids, &n_ids)) {
        for (int i = 0; i < n_ids; i++)
            if (ids[i] < 0 || ids[i] >= slora_tokenizer_vocab_size(t))
                abort();
        size_t len, used;
        char *back = slora_tokenizer_detokenize(t, -1, ids, n_ids, &len);
        size_t want = slora_tokenizer_utf8_clean(text, n, true, clean, &used);
        if (!back || used != n)
            abort();
        if (exact && (len != want || memcmp(back, clean, len)))
            abort();
        free(back);
    }
    free(ids);
    free(clean);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct slora_tokenizer *fixed;
    if (size < 1)
        return 0;
    if (!fixed)
        fixed = fixed_vocab();
    if (!(data[0] & 1)) {
        char *text = malloc(size);
        if (!text)
            abort();
        memcpy(text, data + 1, size - 1);
        text[size - 1] = '\0';
        roundtrip(fixed, text, true);
        free(text);
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
        roundtrip(t, "hello h\xc3\xa9llo <0x41> \xff", false);
        slora_tokenizer_free(t);
    }
    close(fd);
    return 0;
}
