/* fuzz_model.c - libFuzzer target for the model loaders (`make fuzz`).
 *
 * Even first byte: the rest goes to slora_gguf_parse; every string array it
 * accepts is then walked element by element. Odd first byte: the rest is a
 * model file (a .bin, or a GGUF when it starts with "GGUF") loaded through
 * slora_model_load from a memfd; a model that loads runs one forward row.
 * Either way: no crash, no leak, no sanitizer report.
 */
#include "fuzz_forward.h"

#include <slora/gguf.h>
#include <slora/model.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static void walk_gguf(const uint8_t *data, size_t size)
{
    struct slora_gguf *g;
    char diag[256];
    if (slora_gguf_parse(data, size, &g, diag, sizeof(diag)))
        return;
    size_t total = 0;
    for (size_t i = 0; i < g->n_kv; i++) {
        const struct slora_gguf_kv *kv = &g->kv[i];
        if (kv->type != SLORA_GGUF_ARRAY || kv->arr_type != SLORA_GGUF_STRING)
            continue;
        for (uint64_t j = 0; j < kv->n && j < 64; j++) {
            size_t len;
            const char *s = slora_gguf_array_str(kv, j, &len);
            total += len ? (unsigned char)s[len - 1] : 0;
        }
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        total += g->tensors[i].nbytes ? g->tensors[i].data[g->tensors[i].nbytes - 1] : 0;
    slora_gguf_free(g);
    if (total == 1)
        fputc(' ', stderr);
}

static void load_model(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-model", MFD_CLOEXEC);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char path[64], diag[512];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    struct slora_model *m;
    if (!slora_model_load(path, NULL, &m, diag, sizeof(diag))) {
        fuzz_forward(m);
        slora_model_free(m);
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 2)
        load_model(data + 1, size - 1);
    else
        walk_gguf(data + 1, size - 1);
    return 0;
}
