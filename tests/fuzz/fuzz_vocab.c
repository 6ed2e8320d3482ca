/* fuzz_vocab.c - libFuzzer target for the vocabulary loaders (`make fuzz`).
 *
 * Even first byte: the rest is a GGUF (slora_gguf_parse, then
 * slora_tokenizer_new_from_gguf). Odd first byte: the rest is a Hugging
 * Face tokenizer.json, optionally followed by a NUL and a
 * tokenizer_config.json (slora_tokenizer_new_from_hf). A vocabulary that
 * loads must then encode, decode and detokenize without fault, with every
 * id in range.
 */
#include <slora/gguf.h>
#include <slora/tokenizer.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void exercise(const struct slora_tokenizer *t)
{
    static const char text[] = "Hello world! <s></s> <|endoftext|> \xe2\x96\x81 12345 caf\xc3\xa9 "
                               "\xf0\x9f\x98\x80\xff\xc3 it's  \t\n\n";
    int ids[2 * sizeof(text) + 2];
    int vocab = slora_tokenizer_vocab_size(t);
    for (unsigned flags = 0; flags < 8; flags++) {
        size_t n;
        int err = slora_tokenizer_encode(t, text, sizeof(text) - 1, flags, ids,
                                         sizeof(ids) / sizeof(ids[0]), &n);
        if (err)
            continue;
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= vocab)
                abort();
        size_t len;
        free(slora_tokenizer_render(t, -1, ids, (int)n, &len));
        free(slora_tokenizer_detokenize(t, ids, (int)n, flags & 3, &len));
    }
    for (int id = 0; id < vocab && id < 4096; id++) {
        size_t len;
        slora_tokenizer_piece(t, id, id & 1, &len);
        slora_tokenizer_decode(t, id - 1, id, &len);
        slora_tokenizer_is_eog(t, id);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char diag[256];
    struct slora_tokenizer *t = NULL;
    if (!(data[0] & 1)) {
        struct slora_gguf *g;
        if (!slora_gguf_parse(data + 1, size - 1, &g, diag, sizeof(diag))) {
            if (slora_tokenizer_new_from_gguf(g, &t, diag, sizeof(diag)))
                t = NULL;
            slora_gguf_free(g);
        }
    } else {
        const char *json = (const char *)data + 1;
        const char *nul = memchr(json, '\0', size - 1);
        size_t json_len = nul ? (size_t)(nul - json) : size - 1;
        const char *config = nul ? nul + 1 : NULL;
        size_t config_len = nul ? size - 1 - json_len - 1 : 0;
        if (slora_tokenizer_new_from_hf(json, json_len, config, config_len, 0, &t, diag,
                                        sizeof(diag)))
            t = NULL;
    }
    if (t)
        exercise(t);
    slora_tokenizer_free(t);
    return 0;
}
