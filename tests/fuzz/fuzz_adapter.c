/* fuzz_adapter.c - libFuzzer target over the whole adapter pipeline: the
 * safetensors reader, the superlora config and tensor validation, the
 * expansion cost and (for accepted adapters) delta generation, under small
 * resource limits so every input stays cheap. Built by `make fuzz-adapter` with clang and
 * -fsanitize=fuzzer,address,undefined; tests/fuzz/replay.c runs the same
 * entry point over the committed corpus in `make check`.
 *
 * Inputs are raw safetensors files, or "SLFZ" CONFIG "\n" SPEC: a superlora
 * config and a tensor list (tests/st_build.h syntax) wrapped into a
 * well-formed file, so mutations reach the config and group rules instead
 * of dying in the header framing.
 */
#include "../st_build.h"

#include <slora/adapter.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const uint8_t *data, size_t size)
{
    struct slora_adapter_limits lim = {
        .max_params = 1 << 18,
        .max_total = 1 << 20,
        .max_fastfood = 1 << 21,
        .max_core = 1 << 16,
        .max_groups = 256,
        .max_expand_bytes = 64 << 20,
        .max_expand_work = 1 << 28,
    };
    struct slora_adapter *a;
    char diag[256];
    /* parse, the expansion cost from the shapes, then one generation */
    if (!slora_adapter_validate(data, size, NULL, &lim, 1, &a, diag, sizeof(diag)))
        slora_adapter_unref(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    if (size < 4 || memcmp(data, "SLFZ", 4)) {
        run(data, size);
        return 0;
    }
    char *text = malloc(size - 3);
    if (!text)
        return 0;
    memcpy(text, data + 4, size - 4);
    text[size - 4] = '\0';
    char *nl = strchr(text, '\n');
    if (nl)
        *nl = '\0';
    size_t len;
    unsigned char *file = tb_build(text, nl ? nl + 1 : "", NULL, NULL, &len);
    run(file, len);
    free(file);
    free(text);
    return 0;
}
