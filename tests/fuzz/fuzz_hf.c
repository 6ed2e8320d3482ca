/* fuzz_hf.c - libFuzzer target for the Hugging Face checkpoint loader
 * (src/model_hf.c through slora_model_load on a directory; `make fuzz`).
 *
 * The input is a whole checkpoint directory: its first part is config.json;
 * every "@@@" followed by a tag byte starts the next file:
 *   i  model.safetensors.index.json    s  model.safetensors
 *   1..4  model-0000N-of-00004.safetensors (the shards an index names)
 *   t  tokenizer_config.json           j  tokenizer.json
 * (other tags: the part is dropped). The files are written to a private
 * directory (emptied before each input, removed at exit) and the directory
 * is loaded; a model that loads runs one forward row. No crash, no leak,
 * no sanitizer report; a refusal always says why.
 */
#include "fuzz_forward.h"

#include <slora/error.h>
#include <slora/model.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    char tag;
    const char *name;
} files[] = {
    {'c', "config.json"},
    {'i', "model.safetensors.index.json"},
    {'s', "model.safetensors"},
    {'1', "model-00001-of-00004.safetensors"},
    {'2', "model-00002-of-00004.safetensors"},
    {'3', "model-00003-of-00004.safetensors"},
    {'4', "model-00004-of-00004.safetensors"},
    {'t', "tokenizer_config.json"},
    {'j', "tokenizer.json"},
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static char dir[256];

static void path_of(size_t i, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", dir, files[i].name);
}

static void empty_dir(void)
{
    char path[512];
    for (size_t i = 0; i < N_FILES; i++) {
        path_of(i, path, sizeof(path));
        unlink(path);
    }
}

static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

static void make_dir(void)
{
    if (dir[0])
        return;
    const char *base = access("/dev/shm", W_OK) ? getenv("TMPDIR") : "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/fuzz-hf-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("fuzz_hf: mkdtemp");
        abort();
    }
    atexit(remove_dir);
}

/* Write part [p, end) as the file of tag; a later part of the same tag wins. */
static void write_part(char tag, const uint8_t *p, const uint8_t *end)
{
    for (size_t i = 0; i < N_FILES; i++) {
        if (files[i].tag != tag)
            continue;
        char path[512];
        path_of(i, path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            abort();
        size_t len = (size_t)(end - p);
        if (write(fd, p, len) != (ssize_t)len)
            abort();
        close(fd);
        return;
    }
}

static const uint8_t *next_marker(const uint8_t *p, const uint8_t *end)
{
    for (; end - p >= 4; p++)
        if (p[0] == '@' && p[1] == '@' && p[2] == '@')
            return p;
    return end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_dir();
    empty_dir();
    const uint8_t *end = data + size, *p = data;
    char tag = 'c';
    while (p <= end) {
        const uint8_t *q = next_marker(p, end);
        write_part(tag, p, q);
        if (q == end)
            break;
        tag = (char)q[3];
        p = q + 4;
    }
    struct slora_model *m;
    char diag[512] = "";
    int rc = slora_model_load(dir, NULL, &m, diag, sizeof(diag));
    if (rc) {
        if (rc != SLORA_ENOMEM && !diag[0]) /* every refusal names its reason */
            abort();
        return 0;
    }
    fuzz_forward(m);
    slora_model_free(m);
    return 0;
}
