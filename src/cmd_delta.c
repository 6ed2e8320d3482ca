/* cmd_delta.c - `slorad delta --model M ADAPTER -o deltas.safetensors`: the
 * dense deltas dW_j of every target as F32 tensors "layers.{l}.{module}"
 * of shape (out, in), in target order. Also the argument handling shared
 * with `slorad merge` (cmd_offline.h). */
#include "cmd_offline.h"

#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/error.h>
#include <slora/fsio.h>
#include <slora/safetensors.h>
#include <slora/superlora.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

int slora__offline_open(int argc, char **argv, const char *name, const char *usage, bool inspect,
                        struct slora__offline *o, int *status)
{
    enum { O_MODEL = 256, O_THREADS, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"threads", required_argument, NULL, O_THREADS},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL;
    long long threads = 1;
    int c;
    *o = (struct slora__offline){.n_threads = 1};
    *status = 2;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, inspect ? "" : "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o->out_path = optarg;
            break;
        case O_MODEL:
            model_path = optarg;
            break;
        case O_THREADS:
            if (!slora_cliarg_int(optarg, 1, 256, &threads)) {
                fprintf(stderr, "slorad %s: --threads must be in 1..256\n%s", name, usage);
                return -1;
            }
            break;
        case O_HELP:
            fputs(usage, stdout);
            *status = 0;
            return -1;
        default:
            fprintf(stderr, "slorad %s: bad option %s\n%s", name, argv[optind - 1], usage);
            return -1;
        }
    }
    if (inspect && optind + 1 != argc) {
        fprintf(stderr, "slorad %s: exactly one ADAPTER is required\n%s", name, usage);
        return -1;
    }
    if (!inspect && (!model_path || !o->out_path || optind + 1 != argc)) {
        fprintf(stderr, "slorad %s: --model, -o and one ADAPTER are required\n%s", name, usage);
        return -1;
    }
    o->n_threads = (int)threads;
    *status = 1;
    char diag[512];
    if (model_path && slora_model_load(model_path, NULL, &o->model, diag, sizeof(diag))) {
        fprintf(stderr, "slorad %s: %s\n", name, diag);
        return -1;
    }
    /* inspect validates (generates the deltas once); delta and merge
     * generate them anyway, so parsing is enough there. */
    int err = slora_adapter_load(argv[optind], o->model ? &o->model->cfg.shape : NULL, NULL,
                                 inspect && o->model ? o->n_threads : 0, &o->adapter, diag,
                                 sizeof(diag));
    if (err) {
        fprintf(stderr, "slorad %s: %s: invalid adapter (%s): %s\n", name, argv[optind],
                slora_err_name(err), diag);
        slora__offline_close(o);
        return -1;
    }
    return 0;
}

void slora__offline_close(struct slora__offline *o)
{
    slora_adapter_unref(o->adapter);
    slora_model_free(o->model);
    o->adapter = NULL;
    o->model = NULL;
}

static const char usage_text[] =
    "usage: slorad delta --model M ADAPTER -o OUT.safetensors [--threads N]\n"
    "  writes dW for every target as F32 tensors layers.{l}.{module}, shape (out, in)\n";

struct deltas {
    const struct slora_adapter *a;
    const float *dw; /* (N) dW_all */
};

/* slora_fsio_write callback: one F32 tensor per target, in target order. */
static int write_deltas(FILE *f, void *ctx)
{
    const struct deltas *d = ctx;
    const struct slora_adapter *a = d->a;
    struct slora_st_out *ts = calloc((size_t)a->n_targets, sizeof(*ts));
    char(*names)[32] = calloc((size_t)a->n_targets, sizeof(*names));
    int rc = -1;
    if (ts && names) {
        for (int j = 0; j < a->n_targets; j++) {
            const struct slora_target *t = &a->targets[j];
            snprintf(names[j], sizeof(names[j]), "layers.%d.%s", t->layer,
                     slora_arch_module_name(t->module));
            ts[j] = (struct slora_st_out){names[j], 2, {t->rows, t->cols}, d->dw + t->offset};
        }
        rc = slora_st_write(f, ts, a->n_targets, NULL, 0) ? -1 : 0;
    }
    free(names);
    free(ts);
    return rc;
}

int slora_cmd_delta(int argc, char **argv)
{
    struct slora__offline o;
    int status;
    if (slora__offline_open(argc, argv, "delta", usage_text, false, &o, &status))
        return status;
    char diag[512];
    const struct slora_adapter *a = o.adapter;
    float *dw = malloc(sizeof(float) * (size_t)(a->total ? a->total : 1));
    int err = dw ? slora_superlora_generate(a, dw, o.n_threads, diag, sizeof(diag)) : SLORA_ENOMEM;
    if (err) {
        fprintf(stderr, "slorad delta: %s\n", dw ? diag : "out of memory for the deltas");
    } else {
        struct deltas d = {a, dw};
        if ((err = slora_fsio_write(o.out_path, write_deltas, &d, diag, sizeof(diag))))
            fprintf(stderr, "slorad delta: %s\n", diag);
    }
    free(dw);
    slora__offline_close(&o);
    return err ? 1 : 0;
}
