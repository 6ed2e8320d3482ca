/* gguf_quantize.c - benchmark helper: rewrite a GGUF (F32/F16 tensors) with
 * every 2-D tensor whose rows hold whole blocks quantized to one type by
 * quant.h's reference quantizers; everything else (keys, 1-D tensors) is
 * copied. It makes the "all matrices one type" models on which
 * bench/matmul.sh times llama.cpp next to bench_matmul, and on which
 * llama.cpp's logits check our quantizers (slorad quantize is the product
 * command; this is a bench tool).
 *
 * usage: gguf_quantize IN.gguf OUT.gguf TYPE [PART=TYPE2 ...]
 *   a 2-D tensor whose name contains PART gets TYPE2 instead (mixed files
 *   like Q4_K_M: ffn_down=Q6_K attn_v=Q6_K).
 */
#include <slora/gguf.h>
#include <slora/quant.h>
#include <slora/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void put(FILE *f, const void *p, size_t n)
{
    if (fwrite(p, 1, n, f) != n) {
        perror("write");
        exit(1);
    }
}

static void pad(FILE *f, size_t align)
{
    static const uint8_t zero[64];
    long at = ftell(f);
    size_t k = (align - (size_t)at % align) % align;
    put(f, zero, k);
}

struct out_tensor {
    uint32_t type;
    uint8_t *data;
    size_t nbytes;
};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s IN.gguf OUT.gguf TYPE [PART=TYPE2 ...]\n", argv[0]);
        return 2;
    }
    for (int a = 3; a < argc; a++) {
        const char *eq = strchr(argv[a], '=');
        int t = slora_dtype_parse(eq ? eq + 1 : argv[a]);
        if (t < 0 || !slora_dtype_is_weight((uint32_t)t) || (a == 3) != !eq) {
            fprintf(stderr, "bad type argument %s\n", argv[a]);
            return 2;
        }
    }
    size_t len;
    uint8_t *buf = read_all(argv[1], &len);
    char diag[256];
    struct slora_gguf *g = NULL;
    if (!buf || slora_gguf_parse(buf, len, &g, diag, sizeof(diag))) {
        fprintf(stderr, "%s: %s\n", argv[1], buf ? diag : "cannot read");
        return 1;
    }
    struct out_tensor *ot = calloc(g->n_tensors, sizeof(*ot));
    for (size_t i = 0; i < g->n_tensors; i++) {
        const struct slora_gguf_tensor *t = &g->tensors[i];
        int64_t cols = (int64_t)t->ne[0], rows = (int64_t)(t->nbytes / (t->dtype ? 2 : 4)) / cols;
        float *f = malloc((size_t)(rows * cols) * sizeof(float));
        slora_quant_dequantize(t->dtype, t->data, f, rows * cols);
        int qt = slora_dtype_parse(argv[3]);
        for (int a = 4; a < argc; a++) {
            const char *eq = strchr(argv[a], '=');
            char part[128];
            snprintf(part, sizeof(part), "%.*s", (int)(eq - argv[a]), argv[a]);
            if (memmem(t->name, t->name_len, part, strlen(part)))
                qt = slora_dtype_parse(eq + 1);
        }
        uint32_t type = t->n_dims == 2 && slora_dtype_row_bytes((uint32_t)qt, cols) ? (uint32_t)qt
                                                                                   : 0;
        size_t rb = slora_dtype_row_bytes(type, cols);
        ot[i] = (struct out_tensor){type, malloc(rb * (size_t)rows), rb * (size_t)rows};
        for (int64_t r = 0; r < rows; r++)
            slora_quant_quantize(type, f + r * cols, ot[i].data + (size_t)r * rb, cols);
        free(f);
    }
    FILE *f = fopen(argv[2], "wb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    /* header, then the key/values exactly as read (they sit between the
     * 24-byte header and the first tensor record, whose name is preceded by
     * its u64 length) */
    uint32_t version = 3;
    uint64_t nt = g->n_tensors, nkv = g->n_kv;
    put(f, "GGUF", 4);
    put(f, &version, 4);
    put(f, &nt, 8);
    put(f, &nkv, 8);
    const uint8_t *kv_end = (const uint8_t *)g->tensors[0].name - 8;
    put(f, buf + 24, (size_t)(kv_end - (buf + 24)));
    uint64_t off = 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        const struct slora_gguf_tensor *t = &g->tensors[i];
        uint64_t nl = t->name_len;
        put(f, &nl, 8);
        put(f, t->name, t->name_len);
        put(f, &t->n_dims, 4);
        put(f, t->ne, 8 * t->n_dims);
        put(f, &ot[i].type, 4);
        put(f, &off, 8);
        off += (ot[i].nbytes + g->alignment - 1) / g->alignment * g->alignment;
    }
    pad(f, g->alignment);
    for (size_t i = 0; i < g->n_tensors; i++) {
        put(f, ot[i].data, ot[i].nbytes);
        pad(f, g->alignment);
        free(ot[i].data);
    }
    fclose(f);
    free(ot);
    slora_gguf_free(g);
    free(buf);
    return 0;
}
