/* cmd_merge.c - `slorad merge --model M ADAPTER -o merged.bin`: a llama2.c
 * legacy .bin with W' = W + dW for every target, runnable by karpathy's
 * run.c unchanged. */
#include "cmd_offline.h"

#include <slora/cli.h>
#include <slora/error.h>
#include <slora/merged.h>
#include <slora/model_write.h>

#include <stdio.h>
#include <stdlib.h>

static const char usage_text[] =
    "usage: slorad merge --model M ADAPTER -o OUT.bin [--threads N]\n"
    "  writes a llama2.c .bin with W' = W + dW for every adapted matrix\n";

int slora_cmd_merge(int argc, char **argv)
{
    struct slora__offline o;
    int status;
    if (slora__offline_open(argc, argv, "merge", usage_text, false, &o, &status))
        return status;
    char diag[512];
    struct slora_merged *mg;
    int err = slora_merged_new(o.model, o.adapter, o.n_threads, 1, &mg, diag, sizeof(diag));
    if (err) {
        fprintf(stderr, "slorad merge: %s\n", diag);
    } else {
        float *buf;
        const float **replace;
        if ((err = slora_merged_weights(mg, o.model, &buf, &replace))) {
            fprintf(stderr, "slorad merge: the base's matrices must be F32, F16 or BF16: %s\n",
                    slora_strerror(err));
        } else {
            if ((err = slora_model_write_bin(o.model, replace, o.out_path, diag, sizeof(diag))))
                fprintf(stderr, "slorad merge: %s\n", diag);
            free(buf);
            free(replace);
        }
        slora_merged_free(mg);
    }
    slora__offline_close(&o);
    return err ? 1 : 0;
}
