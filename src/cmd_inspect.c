/* cmd_inspect.c - `slorad inspect ADAPTER [--model M]`: print an adapter's
 * config, target list and group table with its sizes; with --model, validate
 * it fully against the model (deltas generated once). Exit 1 with the
 * diagnostic on stderr when the adapter is invalid. */
#include <slora/adapter.h>
#include <slora/cli.h>
#include <slora/model.h>

#include "cmd_offline.h"

#include <stdio.h>

static const char usage_text[] =
    "usage: slorad inspect ADAPTER [--model M] [--threads N]\n"
    "  ADAPTER        SuperLoRA adapter (.safetensors)\n"
    "  --model M      validate against this model (deltas generated once)\n"
    "  --threads N    threads for the validation (default 1)\n";

static const char *const groups_names[] = {"count", "matrix", "layer", "module"};

static void print_config(const struct slora_adapter *a)
{
    const struct slora_adapter_config *c = &a->cfg;
    printf("base: dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d\n",
           c->base.dim, c->base.hidden_dim, c->base.n_layers, c->base.n_heads, c->base.n_kv_heads,
           c->base.vocab_size);
    printf("modules:");
    for (int i = 0; i < c->n_modules; i++)
        printf(" %s", slora_arch_module_name(c->modules[i]));
    printf("\nlayers:");
    for (int i = 0; i < c->n_layers; i++)
        printf(" %d", c->layers[i]);
    printf("\norder: %s\ngroups: ", c->order == SLORA_ORDER_LAYER ? "layer" : "module");
    if (c->groups_kind == SLORA_GROUPS_COUNT)
        printf("%lld\n", (long long)c->groups_count);
    else
        printf("\"%s\"\n", groups_names[c->groups_kind]);
    if (c->shuffle)
        printf("shuffle: seed %llu\n", (unsigned long long)c->shuffle_seed);
    else
        printf("shuffle: none\n");
    if (c->projection)
        printf("projection: fastfood, seed %llu\n", (unsigned long long)c->projection_seed);
    else
        printf("projection: none\n");
    printf("alpha: %.9g\n", c->alpha);
}

static void print_tables(const struct slora_adapter *a)
{
    printf("\ntargets: J = %d, N = %lld\n", a->n_targets, (long long)a->total);
    printf("  %4s %5s %6s %8s %8s %10s\n", "j", "layer", "module", "rows", "cols", "offset");
    for (int j = 0; j < a->n_targets; j++) {
        const struct slora_target *t = &a->targets[j];
        printf("  %4d %5d %6s %8lld %8lld %10lld\n", j, t->layer, slora_arch_module_name(t->module),
               (long long)t->rows, (long long)t->cols, (long long)t->offset);
    }
    printf("\ngroups: G = %d\n", a->n_groups);
    printf("  %4s %10s %10s %2s %2s %9s  %s\n", "g", "N_g", "P_g", "K", "M", "projected",
           "factors (k: kind n x r)");
    for (int g = 0; g < a->n_groups; g++) {
        const struct slora_group *gr = &a->groups[g];
        printf("  %4d %10lld %10lld %2d %2d %9s ", g, (long long)gr->len, (long long)gr->code_len,
               gr->n_kron, gr->order, a->cfg.projection ? "yes" : "no");
        for (int k = 0; k < gr->n_kron; k++) {
            const struct slora_factor *f = &gr->k[k];
            printf(" k%d: %s", k, f->core ? "tucker" : "cp");
            for (int m = 0; m < gr->order; m++)
                printf("%s%lldx%lld", m ? "," : " ", (long long)f->n[m], (long long)f->r[m]);
        }
        printf("\n");
    }
    long long compact = (long long)a->n_params * 4, dense = slora_adapter_dense_bytes(a);
    printf("\nparameters: %lld\n", (long long)a->n_params);
    printf("compact bytes: %lld (float32; file %zu bytes)\n", compact, a->file_bytes);
    printf("dense delta bytes: %lld\n", dense);
    printf("compression ratio: %.1fx\n", compact ? (double)dense / (double)compact : 0.0);
}

int slora_cmd_inspect(int argc, char **argv)
{
    struct slora__offline o;
    int status;
    if (slora__offline_open(argc, argv, "inspect", usage_text, true, &o, &status))
        return status;
    printf("adapter: %s\n", argv[argc - 1]);
    print_config(o.adapter);
    print_tables(o.adapter);
    if (o.model)
        printf("\nvalid for model %s (deltas generated)\n", o.model->path);
    slora__offline_close(&o);
    return 0;
}
