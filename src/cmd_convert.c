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

#include "cmd_convert.h"

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

    struct slora__convert_src src;
    if (slora__convert_open("convert", model_path, tok_path, &src))
        return 1;
    struct slora_model_write_opts wo = {
        .version = 3, .dtype = dtype < 0 && src.is_bin ? SLORA_DTYPE_F32 : dtype};
    int rc = slora__convert_write("convert", &src, &wo, out);
    slora__convert_close(&src);
    return rc;
}

int slora__convert_open(const char *cmd, const char *model_path, const char *tok_path,
                        struct slora__convert_src *s)
{
    char diag[512];
    *s = (struct slora__convert_src){0};
    int rc = slora_model_load(model_path, NULL, &s->model, diag, sizeof(diag));
    if (rc) {
        fprintf(stderr, "slorad %s: %s\n", cmd, diag);
        return 1;
    }
    /* the mapped file again, for the GGUF's own keys */
    const uint8_t *buf = s->model->map;
    size_t len = s->model->map_len;
    if (len >= 4 && !memcmp(buf, "GGUF", 4)) {
        if (tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a GGUF carries its own vocabulary: drop --tokenizer");
        } else {
            char gdiag[256];
            if ((rc = slora_gguf_parse(buf, len, &s->gguf, gdiag, sizeof(gdiag))))
                snprintf(diag, sizeof(diag), "%s: %s", model_path, gdiag);
        }
    } else if (s->model->n_shards) {
        if (tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a checkpoint directory has its own tokenizer");
        }
    } else {
        s->is_bin = true;
        if (!tok_path) {
            rc = SLORA_EINVAL;
            snprintf(diag, sizeof(diag), "a llama2.c .bin needs --tokenizer");
        } else {
            rc = slora_tokenizer_load(tok_path, s->model->cfg.shape.vocab_size, &s->tok, diag,
                                      sizeof(diag));
        }
    }
    if (rc) {
        fprintf(stderr, "slorad %s: %s\n", cmd, diag);
        slora__convert_close(s);
        return 1;
    }
    return 0;
}

int slora__convert_write(const char *cmd, struct slora__convert_src *s,
                         struct slora_model_write_opts *o, const char *out)
{
    char diag[512];
    /* a checkpoint directory's vocabulary is the one loaded from tokenizer.json */
    o->tok = s->tok ? s->tok : s->gguf ? NULL : s->model->gguf_vocab;
    o->vocab_from = s->gguf;
    if (slora_model_write_gguf(s->model, o, out, diag, sizeof(diag))) {
        fprintf(stderr, "slorad %s: %s\n", cmd, diag);
        return 1;
    }
    return 0;
}

void slora__convert_close(struct slora__convert_src *s)
{
    slora_tokenizer_free(s->tok);
    slora_gguf_free(s->gguf);
    slora_model_free(s->model);
    *s = (struct slora__convert_src){0};
}
