/* cmd_convert.c - `slorad convert`: a model to one GGUF that slorad and
 * llama.cpp load: a llama2.c .bin with its tok*.bin, a Hugging Face
 * checkpoint directory (q/k rows permuted into GGUF order), or a GGUF
 * rewritten with other matrix types (its vocabulary and chat template
 * copied). */
#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/error.h>
#include <slora/gguf.h>
#include <slora/model.h>
#include <slora/model_write.h>
#include <slora/tokenizer.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static const char usage_text[] =
    "usage: slorad convert --model M [--tokenizer T.bin] -o OUT.gguf [--dtype T]\n"
    "  --model M          llama2.c .bin, GGUF, or Hugging Face checkpoint directory\n"
    "  --tokenizer T      llama2.c tok*.bin for a .bin model\n"
    "  -o, --output OUT   GGUF v3 file to write\n"
    "  --dtype T          matrices as f32 (default for .bin), f16 or bf16; default for a\n"
    "                     GGUF: as stored\n";

static int usage_error(const char *msg, const char *arg)
{
    return slora_cliarg_usage_error("convert", usage_text, msg, arg);
}

int slora_cmd_convert(int argc, char **argv)
{
    enum { O_MODEL = 256, O_TOK, O_DTYPE, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, NULL, O_MODEL}, {"tokenizer", required_argument, NULL, O_TOK},
        {"output", required_argument, NULL, 'o'},    {"dtype", required_argument, NULL, O_DTYPE},
        {"help", no_argument, NULL, O_HELP},         {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL, *tok_path = NULL, *out = NULL;
    int dtype = -1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL:
            model_path = optarg;
            break;
        case O_TOK:
            tok_path = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case O_DTYPE:
            if (!slora_cliarg_dtype(optarg, &dtype) ||
                (dtype != SLORA_DTYPE_F32 && dtype != SLORA_DTYPE_F16 &&
                 dtype != SLORA_DTYPE_BF16))
                return usage_error("--dtype must be f32, f16 or bf16, got ", optarg);
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
    if (!model_path || !out)
        return usage_error("--model and -o are required", NULL);

    char diag[512];
    struct slora_model *m;
    struct slora_tokenizer *tok = NULL;
    struct slora_gguf *g = NULL;
    int rc = slora_model_load(model_path, NULL, &m, diag, sizeof(diag));
    if (rc) {
        fprintf(stderr, "slorad convert: %s\n", diag);
        return 1;
    }
    /* the mapped file again, for the GGUF's own keys */
    const uint8_t *buf = m->map;
    size_t len = m->map_len;
    if (len >= 4 && !memcmp(buf, "GGUF", 4)) {
        if (tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a GGUF carries its own vocabulary: drop --tokenizer");
        } else {
            char gdiag[256];
            if ((rc = slora_gguf_parse(buf, len, &g, gdiag, sizeof(gdiag))))
                snprintf(diag, sizeof(diag), "%s: %s", model_path, gdiag);
        }
    } else if (m->n_shards) {
        if (tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a checkpoint directory has its own tokenizer");
        }
    } else {
        if (!tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a llama2.c .bin needs --tokenizer");
        } else {
            rc = slora_tokenizer_load(tok_path, m->cfg.shape.vocab_size, &tok, diag,
                                      sizeof(diag));
        }
        if (dtype < 0)
            dtype = SLORA_DTYPE_F32;
    }
    if (!rc) {
        /* a checkpoint directory's vocabulary is its tokenizer.json */
        struct slora_model_write_opts wo = {
            .version = 3, .dtype = dtype, .tok = tok ? tok : m->gguf_vocab, .vocab_from = g};
        rc = slora_model_write_gguf(m, &wo, out, diag, sizeof(diag));
    }
    slora_tokenizer_free(tok);
    slora_gguf_free(g);
    slora_model_free(m);
    if (rc) {
        fprintf(stderr, "slorad convert: %s\n", diag);
        return 1;
    }
    return 0;
}
