#include "internal.h"
#include "store_internal.h"
#include <slora/error.h>
int slora__store_redis_open(const struct slora_store_options *opt, struct slora_store **out,
                            char *diag, size_t diag_len)
{
    (void)opt; (void)out;
    return slora__diag(diag, diag_len, SLORA_EUNSUPPORTED, "todo");
}
