/* cmd_import.c - `slorad import --from peft DIR | --from gguf-lora FILE
 * --model M -o OUT`: a PEFT directory (or a tar of its two files) or a
 * llama.cpp GGUF LoRA converted exactly into a SuperLoRA adapter for M
 * (import.h), validated like an upload (deltas generated once) before it
 * is written. */
#include <slora/adapter.h>
#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/import.h>
#include <slora/model.h>
#include <slora/tar.h>

#include "internal.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_INPUT ((size_t)1 << 34) /* bytes of one input file */

static const char usage_text[] =
    "usage: slorad import --from peft DIR|TAR --model M -o OUT.safetensors\n"
    "       slorad import --from gguf-lora FILE.gguf --model M -o OUT.safetensors\n"
    "  --from peft        Hugging Face PEFT LoRA: DIR/adapter_config.json and\n"
    "                     DIR/adapter_model.safetensors (or a tar of the two)\n"
    "  --from gguf-lora   llama.cpp LoRA adapter (convert_lora_to_gguf.py)\n"
    "  --model M          the base model the adapter is for (.bin or .gguf)\n"
    "  -o, --output OUT   SuperLoRA v1 adapter to write (per-matrix LoRA groups)\n"
    "  --threads N        threads for the validation (default 1)\n";

static int usage_error(const char *msg, const char *arg)
{
    return slora_cliarg_usage_error("import", usage_text, msg, arg);
}

static int read_in(const char *dir, const char *name, void **buf, size_t *len, char *diag,
                   size_t diag_len)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "", name ? name : "") >=
        (int)sizeof(path))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "%s: path too long", dir);
    return slora_fsio_read_file(path, MAX_INPUT, buf, len, diag, diag_len);
}

/* Convert the input into a new SuperLoRA buffer. */
static int convert(bool peft, const char *in, const struct slora_import_target *t, void **out,
                   size_t *out_len, char *diag, size_t diag_len)
{
    struct stat st;
    void *a = NULL, *b = NULL;
    size_t alen, blen;
    int err;
    if (peft && stat(in, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (!(err = read_in(in, "adapter_config.json", &a, &alen, diag, diag_len)) &&
            !(err = read_in(in, "adapter_model.safetensors", &b, &blen, diag, diag_len)))
            err = slora_import_peft(a, alen, b, blen, t, out, out_len, diag, diag_len);
    } else if (!(err = read_in(in, NULL, &a, &alen, diag, diag_len))) {
        if (!peft)
            err = slora_import_gguf_lora(a, alen, t, out, out_len, diag, diag_len);
        else if (slora_tar_is_tar(a, alen))
            err = slora_import_peft_tar(a, alen, t, out, out_len, diag, diag_len);
        else
            err = slora__diag(diag, diag_len, SLORA_EFORMAT,
                              "%s: not a directory or a tar of the PEFT files", in);
    }
    free(a);
    free(b);
    return err;
}

int slora_cmd_import(int argc, char **argv)
{
    enum { O_FROM = 256, O_MODEL, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM}, {"model", required_argument, NULL, O_MODEL},
        {"output", required_argument, NULL, 'o'},  {"threads", required_argument, NULL, O_THREADS},
        {"help", no_argument, NULL, O_HELP},       {NULL, 0, NULL, 0},
    };
    const char *from = NULL, *model_path = NULL, *out_path = NULL;
    long long threads = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case O_FROM:
            from = optarg;
            break;
        case O_MODEL:
            model_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case O_THREADS:
            if (!slora_cliarg_int(optarg, 1, 256, &threads))
                return usage_error("--threads must be 1..256, got ", optarg);
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("bad option ", argv[optind - 1]);
        }
    }
    if (!from || (strcmp(from, "peft") && strcmp(from, "gguf-lora")))
        return usage_error("--from must be peft or gguf-lora", NULL);
    if (optind != argc - 1)
        return usage_error("one input (DIR or FILE) is required", NULL);
    if (!model_path || !out_path)
        return usage_error("--model and -o are required", NULL);
    const char *in = argv[optind];

    char diag[512] = "";
    struct slora_model *m;
    if (slora_model_load(model_path, NULL, &m, diag, sizeof(diag))) {
        fprintf(stderr, "slorad import: %s\n", diag);
        return 1;
    }
    struct slora_import_target t;
    slora_import_target_init(&t, m);
    void *out = NULL;
    size_t len = 0;
    struct slora_adapter *a = NULL;
    int err = convert(!strcmp(from, "peft"), in, &t, &out, &len, diag, sizeof(diag));
    if (!err)
        err = slora_adapter_validate(out, len, &m->cfg.shape, NULL, (int)threads, &a, diag,
                                     sizeof(diag));
    if (!err)
        err = slora_fsio_write_file(out_path, out, len, diag, sizeof(diag));
    if (err) {
        fprintf(stderr, "slorad import: %s: %s: %s\n", in, slora_err_name(err), diag);
    } else {
        fprintf(stderr,
                "slorad import: wrote %s (%zu bytes, %d matrices, %lld parameters, alpha %g)\n",
                out_path, len, a->n_targets, (long long)a->n_params, a->cfg.alpha);
    }
    slora_adapter_unref(a);
    free(out);
    slora_model_free(m);
    return err ? 1 : 0;
}
