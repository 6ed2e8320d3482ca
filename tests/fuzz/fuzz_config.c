/* fuzz_config.c - libFuzzer target for the JSON config layer (keys, types,
 * ranges, tenants): any input is either applied or refused with a
 * diagnostic, never a crash. `make fuzz` runs it. */
#include <slora/config.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slora_config *c = slora_config_new_defaults();
    if (!c)
        return 0;
    char diag[512] = "";
    int err = slora_config_apply_json(c, (const char *)data, size, diag, sizeof(diag));
    if (err && !diag[0])
        abort();
    slora_config_free(c);
    return 0;
}
