/* adapter_config.h - the __metadata__.superlora JSON of an adapter file
 * (spec section 7): version, base, modules, layers, order, groups,
 * shuffle, projection, alpha. Unknown keys, null values and duplicate keys
 * are errors; every rejection is SLORA_EFORMAT (SLORA_EMISMATCH for a base
 * that is not the model's, SLORA_ENONFINITE for alpha) with a message
 * naming the key. Pure: any thread may call it.
 */
#ifndef SLORA_ADAPTER_CONFIG_H
#define SLORA_ADAPTER_CONFIG_H

#include <slora/adapter.h>

#include <stddef.h>

/* Parse text into c (zeroed by the caller). model NULL: the base shape is
 * taken from the text. c->layers is malloc'd when the text lists layers
 * (NULL: all layers), also on error: the caller frees it. */
int slora_adapter_config_parse(const char *text, const struct slora_shape *model,
                               struct slora_adapter_config *c, char *diag, size_t diag_len);

#endif
