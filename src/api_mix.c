/* api_mix.c - per-request adapter mixes (see api_mix.h). */
#include "api_mix.h"

#include <slora/api.h>
#include <slora/error.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_SHAPE "{\"id\": \"tenant/name\", \"weight\": number}"

int slora__api_mix_resolve(struct slora__api_mix *mix, json_t *v, struct slora_registry *reg,
                           const struct slora_principal *p, char *msg, size_t msg_len)
{
    if (!json_is_array(v)) {
        snprintf(msg, msg_len, "'adapters' must be an array of " ENTRY_SHAPE);
        return SLORA_EINVAL;
    }
    size_t n = json_array_size(v);
    if (n < 1 || n > SLORA_WEIGHTS_MAX_TERMS) {
        snprintf(msg, msg_len, "'adapters' has %zu entries; a mix takes 1 to %d", n,
                 SLORA_WEIGHTS_MAX_TERMS);
        return SLORA_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(v, i), *id = json_object_get(o, "id");
        json_t *w = json_object_get(o, "weight");
        if (!json_is_object(o)) {
            snprintf(msg, msg_len, "adapters[%zu] must be an object " ENTRY_SHAPE, i);
            return SLORA_EINVAL;
        }
        if (!json_is_string(id)) {
            snprintf(msg, msg_len, "adapters[%zu].id must be a string 'tenant/name'", i);
            return SLORA_EINVAL;
        }
        /* The engine computes with floats: 1e39 is a finite double but not
         * a finite float. */
        float f = json_is_number(w) ? (float)json_number_value(w) : NAN;
        if (!isfinite(f)) {
            snprintf(msg, msg_len,
                     "adapters[%zu].weight must be a finite number (|weight| <= %g)", i,
                     (double)FLT_MAX);
            return SLORA_EINVAL;
        }
        const char *name = json_string_value(id);
        struct slora_registry_entry *e = NULL;
        int err = reg ? slora_registry_get_id(reg, name, &e) : SLORA_ENOTFOUND;
        if (!err && slora_auth_check_tenant(p, e->tenant)) {
            slora_registry_entry_unref(e);
            err = SLORA_ENOTFOUND;
        }
        if (err) {
            /* the same answer for another tenant's adapter as for none */
            snprintf(msg, msg_len, "adapter '%s' not found", name);
            return SLORA_ENOTFOUND;
        }
        mix->entry[mix->n] = e;
        mix->weight[mix->n++] = f;
        for (int k = 0; k < mix->n - 1; k++)
            if (!strcmp(mix->entry[k]->id, e->id)) {
                snprintf(msg, msg_len, "adapters[%zu].id '%s' is listed twice", i, e->id);
                return SLORA_EINVAL;
            }
    }
    return 0;
}

void slora__api_mix_clear(struct slora__api_mix *mix)
{
    for (int k = 0; k < mix->n; k++)
        slora_registry_entry_unref(mix->entry[k]);
    mix->n = 0;
}

void slora__api_mix_engine(const struct slora__api_mix *mix, struct slora_engine_adapter *ads)
{
    for (int k = 0; k < mix->n; k++) {
        const struct slora_registry_entry *e = mix->entry[k];
        ads[k] = (struct slora_engine_adapter){e->id, e->version, e->adapter, mix->weight[k]};
    }
}

/* The shortest %g text of w that reads back as w. */
static void format_weight(float w, char *out, size_t len)
{
    for (int prec = 1; prec <= FLT_DECIMAL_DIG; prec++) {
        snprintf(out, len, "%.*g", prec, (double)w);
        if (strtof(out, NULL) == w)
            return;
    }
}

int slora__api_mix_json(const struct slora__api_mix *mix, struct slora__buf *b)
{
    int err = slora__buf_printf(b, ",\"adapters\":[");
    for (int k = 0; k < mix->n && !err; k++) {
        const struct slora_registry_entry *e = mix->entry[k];
        char w[32];
        format_weight(mix->weight[k], w, sizeof(w));
        if ((err = slora__buf_printf(b, "%s{\"id\":", k ? "," : "")) ||
            (err = slora__buf_add_json_string(b, e->id, strlen(e->id))) ||
            (err = slora__buf_printf(b, ",\"version\":\"%s\",\"weight\":%s}", e->version, w)))
            break;
    }
    return err ? SLORA_ENOMEM : slora__buf_add(b, "]", 1) ? SLORA_ENOMEM : 0;
}

void slora__api_mix_log(const struct slora__api_mix *mix, struct slora_api_call *c,
                        const char *tenant)
{
    struct slora__buf ids = {0}, versions = {0};
    bool oom = false;
    for (int k = 0; k < mix->n; k++)
        oom |= slora__buf_printf(&ids, "%s%s", k ? "," : "", mix->entry[k]->id) != 0 ||
               slora__buf_printf(&versions, "%s%s", k ? "," : "", mix->entry[k]->version) != 0;
    if (!oom)
        slora_api_call_set_log(c, tenant, ids.p, versions.p);
    free(ids.p);
    free(versions.p);
}
