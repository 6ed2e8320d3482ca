/* cmd_gen_model.c - `slorad gen-model`: a deterministic random model (same
 * flags and seed, same bytes) for tests and benchmarks at realistic sizes,
 * and optionally a matching synthetic tokenizer in llama2.c tok*.bin format.
 *
 * tok*.bin layout: int32 max_token_length, then per token: float32 score,
 * int32 length, bytes. Synthetic vocabulary: <unk>, "\n<s>\n", "\n</s>\n",
 * <0x00>..<0xFF> (byte fallback), the printable ASCII characters, then
 * strings over "a..z " of length 2, 3, ...; later pieces score lower.
 */
#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/gguf.h>
#include <slora/model.h>
#include <slora/model_write.h>
#include <slora/tokenizer.h>

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: slorad gen-model -o OUT [options]\n"
    "  --dim D            model width (default 64)\n"
    "  --hidden H         FFN width (default 172)\n"
    "  --layers L         layers (default 5)\n"
    "  --heads NH         attention heads (default 8)\n"
    "  --kv-heads NKV     key/value heads (default 4)\n"
    "  --vocab V          vocabulary size (default 512)\n"
    "  --seq-len S        context length (default 512)\n"
    "  --seed X           random seed (default 1)\n"
    "  -o, --output OUT   model file to write (.bin or .gguf)\n"
    "  --format F         bin, gguf2 or gguf3 (default: from OUT's extension)\n"
    "  --dtype T          f32 or f16 (f16 only for GGUF; default f32)\n"
    "  --shared-classifier  classifier tied to the token embedding\n"
    "  --tokenizer-out T  also write a matching synthetic tok*.bin\n";

static int usage_error(const char *msg, const char *arg)
{
    return slora_cliarg_usage_error("gen-model", usage_text, msg, arg);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float uniform(uint64_t *state)
{
    return (float)((double)(splitmix64(state) >> 40) / (double)(1ull << 23) - 1.0);
}

/* Norms near 1, matrices scaled by 1/sqrt(cols) so activations stay O(1). */
static void fill(struct slora_model *m, uint64_t seed)
{
    uint64_t state = seed;
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        float *data = slora_model_blank_data(m, i);
        int is_norm = t.t.rows == 1;
        int is_emb = !strcmp(t.name, "token_embd.weight");
        float scale = is_norm ? 0.1f : is_emb ? 1.0f : 1.0f / sqrtf((float)t.t.cols);
        size_t count = (size_t)(t.t.rows * t.t.cols);
        for (size_t j = 0; j < count; j++)
            data[j] = (is_norm ? 1.0f : 0.0f) + scale * uniform(&state);
    }
}

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz ";
#define ALPHA 27
#define N_PRINTABLE 95

/* Piece of synthetic token id into buf (at least 16 bytes); returns length. */
static size_t synthetic_piece(int id, char *buf)
{
    if (id == 0)
        return (size_t)sprintf(buf, "<unk>");
    if (id == 1)
        return (size_t)sprintf(buf, "\n<s>\n");
    if (id == 2)
        return (size_t)sprintf(buf, "\n</s>\n");
    if (id < 3 + 256)
        return (size_t)sprintf(buf, "<0x%02X>", id - 3);
    id -= 3 + 256;
    if (id < N_PRINTABLE) {
        buf[0] = (char)(' ' + id);
        return 1;
    }
    id -= N_PRINTABLE;
    size_t len = 2;
    long span = ALPHA * ALPHA;
    while (id >= span) {
        id -= (int)span;
        span *= ALPHA;
        len++;
    }
    for (size_t i = len; i-- > 0;) {
        buf[i] = alphabet[id % ALPHA];
        id /= ALPHA;
    }
    return len;
}

static int write_tokenizer_cb(FILE *f, void *ctx)
{
    int vocab = *(const int *)ctx;
    char buf[32];
    int32_t max_len = 0;
    for (int i = 0; i < vocab; i++) {
        int32_t len = (int32_t)synthetic_piece(i, buf);
        if (len > max_len)
            max_len = len;
    }
    if (fwrite(&max_len, 4, 1, f) != 1)
        return -1;
    for (int i = 0; i < vocab; i++) {
        int32_t len = (int32_t)synthetic_piece(i, buf);
        float score = i < 3 + 256 ? 0.0f : -(float)(i - 3 - 256);
        if (fwrite(&score, 4, 1, f) != 1 || fwrite(&len, 4, 1, f) != 1 ||
            fwrite(buf, 1, (size_t)len, f) != (size_t)len)
            return -1;
    }
    return 0;
}

int slora_cmd_gen_model(int argc, char **argv)
{
    enum {
        O_DIM = 256,
        O_HIDDEN,
        O_LAYERS,
        O_HEADS,
        O_KV,
        O_VOCAB,
        O_SEQ,
        O_SEED,
        O_FORMAT,
        O_DTYPE,
        O_SHARED,
        O_TOK,
        O_HELP
    };
    static const struct option opts[] = {
        {"dim", required_argument, NULL, O_DIM},
        {"hidden", required_argument, NULL, O_HIDDEN},
        {"layers", required_argument, NULL, O_LAYERS},
        {"heads", required_argument, NULL, O_HEADS},
        {"kv-heads", required_argument, NULL, O_KV},
        {"vocab", required_argument, NULL, O_VOCAB},
        {"seq-len", required_argument, NULL, O_SEQ},
        {"seed", required_argument, NULL, O_SEED},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, O_FORMAT},
        {"dtype", required_argument, NULL, O_DTYPE},
        {"shared-classifier", no_argument, NULL, O_SHARED},
        {"tokenizer-out", required_argument, NULL, O_TOK},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    struct slora_model_config cfg = {
        .arch = SLORA_ARCH_LLAMA,
        .shape = {64, 172, 5, 8, 4, 512},
        .seq_len = 512,
        .rope_style = SLORA_ROPE_NORM,
        .rope_theta = 10000.0f,
        .rope_freq_scale = 1.0f,
        .rms_eps = 1e-5f,
        .bos_id = 1,
        .eos_id = 2,
        .add_bos = true,
    };
    int *int_flag[] = {&cfg.shape.dim,     &cfg.shape.hidden_dim, &cfg.shape.n_layers,
                       &cfg.shape.n_heads, &cfg.shape.n_kv_heads, &cfg.shape.vocab_size,
                       &cfg.seq_len};
    long long seed = 1, v;
    const char *out = NULL, *format = NULL, *tok_out = NULL;
    int dtype = SLORA_DTYPE_F32;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case O_DIM:
        case O_HIDDEN:
        case O_LAYERS:
        case O_HEADS:
        case O_KV:
        case O_VOCAB:
        case O_SEQ:
            if (!slora_cliarg_int(optarg, 1, INT32_MAX, &v))
                return usage_error("expected a positive integer, got ", optarg);
            *int_flag[c - O_DIM] = (int)v;
            break;
        case O_SEED:
            if (!slora_cliarg_int(optarg, 0, INT64_MAX, &seed))
                return usage_error("bad --seed ", optarg);
            break;
        case 'o':
            out = optarg;
            break;
        case O_FORMAT:
            if (strcmp(optarg, "bin") && strcmp(optarg, "gguf2") && strcmp(optarg, "gguf3"))
                return usage_error("--format must be bin, gguf2 or gguf3, got ", optarg);
            format = optarg;
            break;
        case O_DTYPE:
            if (!slora_cliarg_dtype(optarg, &dtype))
                return usage_error("--dtype must be f32 or f16, got ", optarg);
            break;
        case O_SHARED:
            cfg.shared_classifier = true;
            break;
        case O_TOK:
            tok_out = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("bad option ", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument ", argv[optind]);
    if (!out)
        return usage_error("-o is required", NULL);
    if (!format) {
        size_t n = strlen(out);
        format = n >= 5 && !strcmp(out + n - 5, ".gguf") ? "gguf3" : "bin";
    }
    if (!strcmp(format, "bin") && dtype != SLORA_DTYPE_F32)
        return usage_error("--dtype f16 needs a GGUF --format", NULL);

    cfg.head_dim = cfg.shape.n_heads > 0 ? cfg.shape.dim / cfg.shape.n_heads : 0;
    cfg.n_ctx_train = cfg.seq_len;
    char diag[512];
    struct slora_model *m;
    int rc = slora_model_new_blank(&cfg, &m, diag, sizeof(diag));
    if (rc) {
        fprintf(stderr, "slorad gen-model: %s\n", rc == SLORA_ENOMEM ? "out of memory" : diag);
        return 1;
    }
    fill(m, (uint64_t)seed);
    struct slora_tokenizer *tok = NULL;
    if (tok_out &&
        (slora_fsio_write(tok_out, write_tokenizer_cb, &cfg.shape.vocab_size, diag,
                            sizeof(diag)) ||
         slora_tokenizer_load(tok_out, cfg.shape.vocab_size, &tok, diag, sizeof(diag)))) {
        fprintf(stderr, "slorad gen-model: %s\n", diag);
        rc = SLORA_EIO;
        goto out_free_model;
    }
    /* a GGUF carries the synthetic vocabulary when one was written */
    if (!strcmp(format, "bin"))
        rc = slora_model_write_bin(m, NULL, out, diag, sizeof(diag));
    else
        rc = slora_model_write_gguf(
            m, &(struct slora_model_write_opts){.version = format[4] - '0', .dtype = dtype, .tok = tok},
            out, diag, sizeof(diag));
    if (rc)
        fprintf(stderr, "slorad gen-model: %s\n", diag);
    slora_tokenizer_free(tok);
out_free_model:
    slora_model_free(m);
    return rc ? 1 : 0;
}
