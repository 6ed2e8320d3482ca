/* cmd_gen_model.c - `slorad gen-model`: a deterministic random model (same
 * flags and seed, same bytes) for tests and benchmarks at realistic sizes:
 * any supported architecture and hyper-parameters, optionally with a real
 * vocabulary (and chat template) copied from another GGUF, or a matching
 * synthetic tokenizer in llama2.c tok*.bin format.
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
    "  --dtype T          f32, f16 or bf16 (16-bit types only for GGUF; default f32)\n"
    "  --shared-classifier  classifier tied to the token embedding\n"
    "  --tokenizer-out T  also write a matching synthetic tok*.bin\n"
    "  --arch A           llama (default) or qwen2 (NeoX RoPE, q/k/v biases)\n"
    "  --rope-theta F     RoPE frequency base (default 10000)\n"
    "  --rope-scale F     linear RoPE scaling factor (default 1: none)\n"
    "  --rope-freqs       Llama 3 style per-dimension RoPE divisors (rope_freqs.weight)\n"
    "  --rms-eps F        RMSNorm epsilon (default 1e-5)\n"
    "  --bias             q/k/v biases on a llama model\n"
    "  --vocab-from G     copy G's vocabulary, special tokens and chat template (GGUF);\n"
    "                     the vocabulary size becomes G's, or --vocab if larger (padded\n"
    "                     with unused [PAD<i>] tokens)\n";

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

/* Norms near 1, matrices scaled by 1/sqrt(cols) so activations stay O(1),
 * biases small, RoPE divisors in [1, 8] growing towards low frequencies. */
static void fill(struct slora_model *m, uint64_t seed)
{
    uint64_t state = seed;
    int n = slora_model_n_tensors(m);
    for (int i = 0; i < n; i++) {
        struct slora_model_tensor t;
        slora_model_tensor(m, i, &t);
        float *data = slora_model_blank_data(m, i);
        size_t count = (size_t)(t.t.rows * t.t.cols);
        if (!strcmp(t.name, "rope_freqs.weight")) {
            for (size_t j = 0; j < count; j++)
                data[j] = 1.0f + 7.0f * (float)j / (float)count;
            continue;
        }
        int is_norm = t.t.rows == 1 && strstr(t.name, "norm");
        int is_bias = strstr(t.name, ".bias") != NULL;
        int is_emb = !strcmp(t.name, "token_embd.weight");
        float scale = is_norm ? 0.1f : is_bias ? 0.2f : is_emb ? 1.0f : 1.0f / sqrtf((float)t.t.cols);
        for (size_t j = 0; j < count; j++)
            data[j] = (is_norm ? 1.0f : 0.0f) + scale * uniform(&state);
    }
}

/* The vocabulary of a GGUF to copy: its token count and special ids. */
struct vocab_src {
    void *buf;
    size_t len;
    struct slora_gguf *g;
};

static int open_vocab(const char *path, struct vocab_src *v, struct slora_model_config *cfg,
                      char *diag, size_t diag_len)
{
    int rc = slora_fsio_read_file(path, (size_t)1 << 32, &v->buf, &v->len, diag, diag_len);
    if (rc)
        return rc;
    char gdiag[256];
    if ((rc = slora_gguf_parse(v->buf, v->len, &v->g, gdiag, sizeof(gdiag)))) {
        snprintf(diag, diag_len, "%s: %s", path, gdiag);
        return rc;
    }
    const struct slora_gguf_kv *toks = slora_gguf_find_kv(v->g, "tokenizer.ggml.tokens");
    if (!toks || toks->type != SLORA_GGUF_ARRAY || toks->arr_type != SLORA_GGUF_STRING ||
        toks->n < 4 || toks->n > INT32_MAX) {
        snprintf(diag, diag_len, "%s: no tokenizer.ggml.tokens array", path);
        return SLORA_EFORMAT;
    }
    /* the file's vocabulary, or a larger --vocab padded with unused tokens */
    if (cfg->shape.vocab_size < (int)toks->n)
        cfg->shape.vocab_size = (int)toks->n;
    int64_t id;
    cfg->bos_id = slora_gguf_get_int(v->g, "tokenizer.ggml.bos_token_id", &id) ? -1 : (int)id;
    cfg->eos_id = slora_gguf_get_int(v->g, "tokenizer.ggml.eos_token_id", &id) ? -1 : (int)id;
    bool add_bos = cfg->bos_id >= 0;
    slora_gguf_get_bool(v->g, "tokenizer.ggml.add_bos_token", &add_bos);
    cfg->add_bos = add_bos && cfg->bos_id >= 0;
    return 0;
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
        O_ARCH,
        O_THETA,
        O_ROPE_SCALE,
        O_ROPE_FREQS,
        O_EPS,
        O_BIAS,
        O_VOCAB_FROM,
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
        {"arch", required_argument, NULL, O_ARCH},
        {"rope-theta", required_argument, NULL, O_THETA},
        {"rope-scale", required_argument, NULL, O_ROPE_SCALE},
        {"rope-freqs", no_argument, NULL, O_ROPE_FREQS},
        {"rms-eps", required_argument, NULL, O_EPS},
        {"bias", no_argument, NULL, O_BIAS},
        {"vocab-from", required_argument, NULL, O_VOCAB_FROM},
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
    const char *out = NULL, *format = NULL, *tok_out = NULL, *vocab_from = NULL;
    bool rope_freqs = false;
    double fv;
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
        case O_ARCH:
            if (!strcmp(optarg, "llama")) {
                cfg.arch = SLORA_ARCH_LLAMA;
                cfg.rope_style = SLORA_ROPE_NORM;
            } else if (!strcmp(optarg, "qwen2")) {
                cfg.arch = SLORA_ARCH_QWEN2;
                cfg.rope_style = SLORA_ROPE_NEOX;
                cfg.qkv_bias = true;
            } else {
                return usage_error("--arch must be llama or qwen2, got ", optarg);
            }
            break;
        case O_THETA:
            if (!slora_cliarg_float(optarg, 1.0, 1e12, &fv))
                return usage_error("bad --rope-theta ", optarg);
            cfg.rope_theta = (float)fv;
            break;
        case O_ROPE_SCALE:
            if (!slora_cliarg_float(optarg, 1e-3, 1e6, &fv))
                return usage_error("bad --rope-scale ", optarg);
            cfg.rope_freq_scale = (float)(1.0 / fv);
            break;
        case O_ROPE_FREQS:
            rope_freqs = true;
            break;
        case O_EPS:
            if (!slora_cliarg_float(optarg, 1e-12, 0.5, &fv))
                return usage_error("bad --rms-eps ", optarg);
            cfg.rms_eps = (float)fv;
            break;
        case O_BIAS:
            cfg.qkv_bias = true;
            break;
        case O_VOCAB_FROM:
            vocab_from = optarg;
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
        return usage_error("--dtype other than f32 needs a GGUF --format", NULL);
    if (dtype != SLORA_DTYPE_F32 && dtype != SLORA_DTYPE_F16 && dtype != SLORA_DTYPE_BF16)
        return usage_error("--dtype must be f32, f16 or bf16 (see `slorad quantize`)", NULL);
    if (vocab_from && (tok_out || !strcmp(format, "bin")))
        return usage_error("--vocab-from needs a GGUF --format and no --tokenizer-out", NULL);

    cfg.head_dim = cfg.shape.n_heads > 0 ? cfg.shape.dim / cfg.shape.n_heads : 0;
    cfg.n_ctx_train = cfg.seq_len;
    char diag[512];
    struct vocab_src vs = {0};
    struct slora_model *m = NULL;
    int rc = vocab_from ? open_vocab(vocab_from, &vs, &cfg, diag, sizeof(diag)) : 0;
    if (!rc)
        rc = slora_model_new_blank(&cfg, &m, diag, sizeof(diag));
    if (!rc && rope_freqs)
        rc = slora_model_blank_add_rope_freqs(m);
    if (rc) {
        fprintf(stderr, "slorad gen-model: %s\n", rc == SLORA_ENOMEM ? "out of memory" : diag);
        goto out_free_model;
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
        rc = slora_model_write_gguf(m,
                                    &(struct slora_model_write_opts){.version = format[4] - '0',
                                                                     .dtype = dtype,
                                                                     .tok = tok,
                                                                     .vocab_from = vs.g},
                                    out, diag, sizeof(diag));
    if (rc)
        fprintf(stderr, "slorad gen-model: %s\n", diag);
    slora_tokenizer_free(tok);
out_free_model:
    slora_model_free(m);
    slora_gguf_free(vs.g);
    free(vs.buf);
    return rc ? 1 : 0;
}
