/* fuzz_import.c - libFuzzer target over the LoRA importers (import.h) and
 * the tar reader (tar.h) for a tiny base (dim 8, 2 heads, 1 kv head,
 * hidden 12, 2 layers): accepted imports are parsed back as SuperLoRA
 * adapters. Built by `make fuzz-import`; tests/fuzz/replay.c runs the same
 * entry point over the committed corpus in `make check`.
 *
 * Inputs: a tar (a PEFT upload), a GGUF file (a llama.cpp LoRA), or "PEFT"
 * CONFIG "\n" SPEC: an adapter_config.json and a weights list
 * (tests/st_build.h syntax) built into a well-formed safetensors file.
 */
#include "../st_build.h"

#include <slora/adapter.h>
#include <slora/import.h>
#include <slora/tar.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct slora_import_target target = {
    .shape = {.dim = 8,
              .hidden_dim = 12,
              .n_layers = 2,
              .n_heads = 2,
              .n_kv_heads = 1,
              .vocab_size = 32},
    .head_size = 4,
    .permute_qk = true,
    .arch = "llama",
};

/* An accepted import must parse as a SuperLoRA adapter. */
static void check(int err, void *out, size_t len)
{
    struct slora_adapter *a;
    char diag[256];
    if (!err && slora_adapter_parse(out, len, &target.shape, NULL, &a, diag, sizeof(diag)) == 0)
        slora_adapter_unref(a);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    void *out = NULL;
    size_t len = 0;
    char diag[256];
    int err;
    /* (the import runs before check reads out: never in one argument list) */
    if (slora_tar_is_tar(data, size)) {
        err = slora_import_peft_tar(data, size, &target, &out, &len, diag, sizeof(diag));
        check(err, out, len);
    } else if (size >= 4 && !memcmp(data, "GGUF", 4)) {
        err = slora_import_gguf_lora(data, size, &target, &out, &len, diag, sizeof(diag));
        check(err, out, len);
    } else if (size >= 4 && !memcmp(data, "PEFT", 4)) {
        char *text = malloc(size - 3);
        if (!text)
            return 0;
        memcpy(text, data + 4, size - 4);
        text[size - 4] = '\0';
        char *nl = strchr(text, '\n');
        if (nl)
            *nl = '\0';
        size_t wlen;
        unsigned char *w = tb_build(NULL, nl ? nl + 1 : "", NULL, NULL, &wlen);
        err =
            slora_import_peft(text, strlen(text), w, wlen, &target, &out, &len, diag, sizeof(diag));
        check(err, out, len);
        free(w);
        free(text);
    }
    return 0;
}
