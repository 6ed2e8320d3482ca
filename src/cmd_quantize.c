/* cmd_quantize.c - `slorad quantize IN OUT --type T`: any model slorad
 * loads (GGUF, Hugging Face checkpoint directory, llama2.c .bin with
 * --tokenizer) written as a GGUF whose matrices are in type T, with
 * llama.cpp's per-tensor choices so that the file matches what
 * `llama-quantize IN OUT T` writes (same types per tensor, same
 * general.file_type), its vocabulary and chat template copied.
 *
 * The per-tensor rules (llama.cpp's llama_tensor_get_type, for the types
 * offered here; norms and biases stay F32):
 *   - the classifier (output.weight, or token_embd.weight when the
 *     embeddings are tied) takes Q6_K for every quantized T but Q8_0, and
 *     Q8_0 when its columns do not hold whole blocks of T;
 *   - Q4_K_M / Q5_K_M: Q4_K / Q5_K, with attn_v and ffn_down in Q6_K on the
 *     layers that "use more bits": the first and last eighth of the layers
 *     and every third layer in between (i < n/8, i >= 7n/8, or
 *     (i - n/8) % 3 == 2);
 *   - Q4_K_S: Q4_K, with attn_v in Q5_K on layers 0..3 and ffn_down in
 *     Q5_K on the first eighth of the layers; Q5_K_S: Q5_K throughout;
 *   - a K-quant whose block does not divide a tensor's columns falls back
 *     to Q5_0 (Q4_K), Q5_1 (Q5_K) or Q8_0 (Q6_K), and that to F16 when
 *     even 32 does not divide them. Where llama.cpp refuses (a 32-element
 *     type on such columns) we fall back to F16 as well.
 * As in llama-quantize, q4_k and q5_k name the _M mixtures.
 * --pure puts every matrix in T (llama-quantize --pure).
 */
#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/model.h>
#include <slora/tensor.h>

#include "cmd_convert.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
    "usage: slorad quantize IN OUT --type T [--pure] [--tokenizer T.bin] [--threads N]\n"
    "  IN               GGUF, Hugging Face checkpoint directory, or llama2.c .bin\n"
    "  OUT              GGUF v3 file to write\n"
    "  --type T         q4_k_m, q5_k_m, q4_k_s, q5_k_s, q4_0, q4_1, q5_0, q5_1, q8_0,\n"
    "                   q6_k, f16, bf16 or f32 (q4_k, q5_k: the _m mixtures); llama.cpp's\n"
    "                   per-tensor choices\n"
    "  --pure           every matrix in T (no per-tensor choices)\n"
    "  --tokenizer T    llama2.c tok*.bin for a .bin model\n"
    "  --threads N      quantizing threads (default 2)\n";

/* The --type names: the base type, llama.cpp's llama_ftype number, and
 * the mixture's rules. */
enum mix { MIX_NONE, MIX_M, MIX_K4S };
static const struct ftype {
    const char *name;
    enum slora_dtype type;
    int ftype;
    enum mix mix;
} ftypes[] = {
    {"f32", SLORA_DTYPE_F32, 0, MIX_NONE},    {"f16", SLORA_DTYPE_F16, 1, MIX_NONE},
    {"q4_0", SLORA_DTYPE_Q4_0, 2, MIX_NONE},  {"q4_1", SLORA_DTYPE_Q4_1, 3, MIX_NONE},
    {"q8_0", SLORA_DTYPE_Q8_0, 7, MIX_NONE},  {"q5_0", SLORA_DTYPE_Q5_0, 8, MIX_NONE},
    {"q5_1", SLORA_DTYPE_Q5_1, 9, MIX_NONE},  {"q4_k_s", SLORA_DTYPE_Q4_K, 14, MIX_K4S},
    {"q4_k_m", SLORA_DTYPE_Q4_K, 15, MIX_M},  {"q4_k", SLORA_DTYPE_Q4_K, 15, MIX_M},
    {"q5_k_s", SLORA_DTYPE_Q5_K, 16, MIX_NONE}, {"q5_k_m", SLORA_DTYPE_Q5_K, 17, MIX_M},
    {"q5_k", SLORA_DTYPE_Q5_K, 17, MIX_M},    {"q6_k", SLORA_DTYPE_Q6_K, 18, MIX_NONE},
    {"bf16", SLORA_DTYPE_BF16, 32, MIX_NONE},
};

static int usage_error(const char *msg, const char *arg)
{
    return slora_cliarg_usage_error("quantize", usage_text, msg, arg);
}

static bool is_quantized(enum slora_dtype t)
{
    return t != SLORA_DTYPE_F32 && t != SLORA_DTYPE_F16 && t != SLORA_DTYPE_BF16;
}

static bool more_bits(int layer, int n_layers)
{
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

/* A type whose block divides cols: t, or llama.cpp's fallback for it. */
static enum slora_dtype fit(enum slora_dtype t, int64_t cols)
{
    if (slora_dtype_row_bytes(t, cols))
        return t;
    enum slora_dtype f = t == SLORA_DTYPE_Q4_K   ? SLORA_DTYPE_Q5_0
                         : t == SLORA_DTYPE_Q5_K ? SLORA_DTYPE_Q5_1
                         : t == SLORA_DTYPE_Q6_K ? SLORA_DTYPE_Q8_0
                                                 : SLORA_DTYPE_F16;
    return slora_dtype_row_bytes(f, cols) ? f : SLORA_DTYPE_F16;
}

/* The type llama.cpp gives model tensor t under f. */
static enum slora_dtype tensor_type(const struct slora_model *m, const struct ftype *f, bool pure,
                                    const struct slora_model_tensor *t)
{
    enum slora_dtype type = f->type;
    if (pure || !is_quantized(type))
        return fit(type, t->t.cols);
    bool classifier = !strcmp(t->name, "output.weight") ||
                      (m->cfg.shared_classifier && !strcmp(t->name, "token_embd.weight"));
    if (classifier)
        type = type == SLORA_DTYPE_Q8_0 ? SLORA_DTYPE_Q8_0 : SLORA_DTYPE_Q6_K; /* fit() below */
    else if (t->module == SLORA_MOD_WV || t->module == SLORA_MOD_W2) {
        int layer = t->layer, n_layers = m->cfg.shape.n_layers;
        if (f->mix == MIX_M && more_bits(layer, n_layers))
            type = SLORA_DTYPE_Q6_K;
        else if (f->mix == MIX_K4S &&
                 (t->module == SLORA_MOD_WV ? layer < 4 : layer < n_layers / 8))
            type = SLORA_DTYPE_Q5_K;
    }
    return fit(type, t->t.cols);
}

int slora_cmd_quantize(int argc, char **argv)
{
    enum { O_TYPE = 256, O_PURE, O_TOK, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"type", required_argument, NULL, O_TYPE},       {"pure", no_argument, NULL, O_PURE},
        {"tokenizer", required_argument, NULL, O_TOK},   {"threads", required_argument, NULL, O_THREADS},
        {"help", no_argument, NULL, O_HELP},             {NULL, 0, NULL, 0},
    };
    const struct ftype *f = NULL;
    const char *tok_path = NULL;
    bool pure = false;
    long long threads = 2;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_TYPE:
            f = NULL;
            for (size_t i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++)
                if (!strcasecmp(optarg, ftypes[i].name))
                    f = &ftypes[i];
            if (!f)
                return usage_error("unknown --type ", optarg);
            break;
        case O_PURE:
            pure = true;
            break;
        case O_TOK:
            tok_path = optarg;
            break;
        case O_THREADS:
            if (!slora_cliarg_int(optarg, 1, 64, &threads))
                return usage_error("--threads must be 1..64, got ", optarg);
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("bad option ", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return usage_error("IN and OUT are required (and nothing else)", NULL);
    if (!f)
        return usage_error("--type is required", NULL);

    struct slora__convert_src src;
    if (slora__convert_open("quantize", argv[optind], tok_path, &src))
        return 1;
    const struct slora_model *m = src.model;
    int n = slora_model_n_tensors(m);
    uint32_t *types = calloc((size_t)n, sizeof(*types));
    if (!types) {
        fprintf(stderr, "slorad quantize: out of memory\n");
        slora__convert_close(&src);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        types[i] = t.t.rows == 1 ? SLORA_DTYPE_F32 : tensor_type(m, f, pure, &t);
    }
    struct slora_model_write_opts wo = {
        .version = 3, .dtype = -1, .types = types, .file_type = f->ftype, .n_threads = (int)threads};
    int rc = slora__convert_write("quantize", &src, &wo, argv[optind + 1]);
    free(types);
    slora__convert_close(&src);
    return rc;
}
