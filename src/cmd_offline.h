/* cmd_offline.h - the argument parsing and loading shared by the offline
 * adapter commands `slorad delta`, `slorad merge` and `slorad inspect`
 * (private to src/). */
#ifndef SLORA_CMD_OFFLINE_H
#define SLORA_CMD_OFFLINE_H

#include <slora/adapter.h>
#include <slora/model.h>

#include <stdbool.h>

struct slora__offline {
    struct slora_model *model;     /* owned; NULL for inspect without --model */
    struct slora_adapter *adapter; /* owned reference, parsed against the model's shape */
    const char *out_path;          /* borrowed from argv */
    int n_threads;
};

/* Parse `--model M ADAPTER -o OUT [--threads N]` for command `name` and load
 * both files. With inspect, `-o` is not accepted and --model is optional;
 * the adapter is then fully validated (deltas generated) when a model is
 * given. Returns -1 with *status the exit status (usage or load error
 * already reported on stderr; 0 after --help), else 0. */
int slora__offline_open(int argc, char **argv, const char *name, const char *usage, bool inspect,
                        struct slora__offline *o, int *status);
void slora__offline_close(struct slora__offline *o);

#endif
