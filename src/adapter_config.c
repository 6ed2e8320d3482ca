/* adapter_config.c - the superlora config JSON (see adapter_config.h).
 *
 * Keys are parsed in the order later ones depend on earlier ones (layers on
 * base, groups on order); jansson rejects duplicate keys.
 */
#include "internal.h"

#include <slora/adapter_config.h>
#include <slora/error.h>

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEED ((1LL << 53) - 1)

/* Reject null anywhere; path names the offending key or index. */
static int find_null(json_t *v, char *path, size_t cap, size_t used, char *diag, size_t diag_len)
{
    if (json_is_null(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "superlora%s is null", path);
    if (json_is_object(v)) {
        const char *key;
        json_t *c;
        json_object_foreach(v, key, c)
        {
            snprintf(path + used, cap - used, ".%s", key);
            size_t n = strlen(path);
            int err = find_null(c, path, cap, n, diag, diag_len);
            if (err)
                return err;
        }
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            snprintf(path + used, cap - used, "[%zu]", i);
            size_t n = strlen(path);
            int err = find_null(json_array_get(v, i), path, cap, n, diag, diag_len);
            if (err)
                return err;
        }
    }
    path[used] = '\0';
    return 0;
}

/* Every key of obj must be in the NULL-terminated list. */
static int check_keys(json_t *obj, const char *where, const char *const *allowed, char *diag,
                      size_t diag_len)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s: unknown key '%s'", where, key);
    }
    return 0;
}

static int parse_seed(json_t *v, const char *where, uint64_t *out, char *diag, size_t diag_len)
{
    if (!json_is_integer(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s must be an integer in [0, 2^53 - 1]",
                           where);
    json_int_t s = json_integer_value(v);
    if (s < 0 || s > MAX_SEED)
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "%s = %lld is outside [0, 2^53 - 1]",
                           where, (long long)s);
    *out = (uint64_t)s;
    return 0;
}

static int parse_base(json_t *b, const struct slora_shape *model, struct slora_shape *out,
                      char *diag, size_t diag_len)
{
    static const char *const keys[] = {"dim",        "n_layers",   "n_heads", "n_kv_heads",
                                       "hidden_dim", "vocab_size", NULL};
    if (!json_is_object(b))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "superlora.base must be an object");
    int err = check_keys(b, "superlora.base", keys, diag, diag_len);
    if (err)
        return err;
    int vals[6];
    for (int i = 0; i < 6; i++) {
        json_t *v = json_object_get(b, keys[i]);
        if (!v)
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "superlora.base.%s missing", keys[i]);
        json_int_t x = json_is_integer(v) ? json_integer_value(v) : 0;
        if (i == 5 && x < 0 && x >= -INT_MAX)
            x = -x;
        if (x < 1 || x > INT_MAX)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.base.%s must be a positive integer", keys[i]);
        vals[i] = (int)x;
    }
    *out = (struct slora_shape){.dim = vals[0],
                                .n_layers = vals[1],
                                .n_heads = vals[2],
                                .n_kv_heads = vals[3],
                                .hidden_dim = vals[4],
                                .vocab_size = vals[5]};
    if (out->dim % out->n_heads || out->n_heads % out->n_kv_heads)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.base: dim %d, n_heads %d, n_kv_heads %d are inconsistent",
                           out->dim, out->n_heads, out->n_kv_heads);
    if (!model)
        return 0;
    const int want[6] = {model->dim,        model->n_layers,   model->n_heads,
                         model->n_kv_heads, model->hidden_dim, model->vocab_size};
    for (int i = 0; i < 6; i++)
        if (vals[i] != want[i])
            return slora__diag(diag, diag_len, SLORA_EMISMATCH,
                               "superlora.base.%s is %d, the loaded model has %d", keys[i], vals[i],
                               want[i]);
    return 0;
}

static int parse_modules(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.modules must be a non-empty list");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.modules[%zu] is not a string", i);
        int m = slora_arch_module_parse(json_string_value(e));
        if (m < 0)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.modules[%zu]: unknown module '%s'", i,
                               json_string_value(e));
        for (int j = 0; j < c->n_modules; j++)
            if ((int)c->modules[j] == m)
                return slora__diag(diag, diag_len, SLORA_EFORMAT,
                                   "superlora.modules[%zu]: '%s' repeats module '%s'", i,
                                   json_string_value(e), slora_arch_module_name(m));
        c->modules[c->n_modules++] = m;
    }
    return 0;
}

/* Explicit layers (bounded by the header size) or, when absent, all layers
 * (the list is filled in once N has been checked against the limits). */
static int parse_layers(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    if (!v) {
        c->n_layers = c->base.n_layers;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.layers must be a non-empty list");
    if (json_array_size(v) > (size_t)c->base.n_layers)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.layers has %zu entries, the model has %d layers",
                           json_array_size(v), c->base.n_layers);
    c->n_layers = (int)json_array_size(v);
    c->layers = malloc(sizeof(*c->layers) * (size_t)c->n_layers);
    if (!c->layers)
        return slora__diag(diag, diag_len, SLORA_ENOMEM, "out of memory for superlora.layers");
    for (int i = 0; i < c->n_layers; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e))
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.layers[%d] is not an integer", i);
        json_int_t l = json_integer_value(e);
        if (l < 0 || l >= c->base.n_layers)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.layers[%d] = %lld is outside [0, %d)", i, (long long)l,
                               c->base.n_layers);
        if (i > 0 && l <= c->layers[i - 1])
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.layers[%d] = %lld: layers must be strictly ascending", i,
                               (long long)l);
        c->layers[i] = (int)l;
    }
    return 0;
}

static int parse_groups(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    if (!v) {
        c->groups_kind = SLORA_GROUPS_MATRIX;
        return 0;
    }
    if (json_is_integer(v)) {
        c->groups_kind = SLORA_GROUPS_COUNT;
        c->groups_count = json_integer_value(v);
        if (c->groups_count < 1)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.groups = %lld must be >= 1", (long long)c->groups_count);
        return 0;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    if (!strcmp(s, "matrix")) {
        c->groups_kind = SLORA_GROUPS_MATRIX;
    } else if (!strcmp(s, "layer")) {
        c->groups_kind = SLORA_GROUPS_LAYER;
        if (c->order != SLORA_ORDER_LAYER)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.groups \"layer\" requires order \"layer\"");
    } else if (!strcmp(s, "module")) {
        c->groups_kind = SLORA_GROUPS_MODULE;
        if (c->order != SLORA_ORDER_MODULE)
            return slora__diag(diag, diag_len, SLORA_EFORMAT,
                               "superlora.groups \"module\" requires order \"module\"");
    } else {
        return slora__diag(
            diag, diag_len, SLORA_EFORMAT,
            "superlora.groups must be an integer or \"matrix\", \"layer\", \"module\"");
    }
    return 0;
}

/* The last object key before byte pos of a JSON text ("" if none), so a
 * syntax error such as a number overflow names the key it belongs to. */
static void last_key(const char *text, int pos, char *key, size_t cap)
{
    key[0] = '\0';
    int colon = pos - 1;
    while (colon >= 0 && text[colon] != ':')
        colon--;
    int end = colon - 1;
    while (end >= 0 && (text[end] == ' ' || text[end] == '\t' || text[end] == '\n'))
        end--;
    if (end < 1 || text[end] != '"')
        return;
    int start = end - 1;
    while (start >= 0 && text[start] != '"')
        start--;
    if (start < 0 || (size_t)(end - start) > cap)
        return;
    memcpy(key, text + start + 1, (size_t)(end - start - 1));
    key[end - start - 1] = '\0';
}

static int parse_order(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    const char *s = !v ? "layer" : json_is_string(v) ? json_string_value(v) : "";
    if (strcmp(s, "layer") && strcmp(s, "module"))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.order must be \"layer\" or \"module\"");
    c->order = !strcmp(s, "module") ? SLORA_ORDER_MODULE : SLORA_ORDER_LAYER;
    return 0;
}

static int parse_shuffle(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    static const char *const keys[] = {"seed", NULL};
    if (!v)
        return 0;
    c->shuffle = true;
    if (!json_is_object(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.shuffle must be an object {\"seed\"}");
    int err = check_keys(v, "superlora.shuffle", keys, diag, diag_len);
    return err ? err
               : parse_seed(json_object_get(v, "seed"), "superlora.shuffle.seed", &c->shuffle_seed,
                            diag, diag_len);
}

static int parse_projection(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    static const char *const keys[] = {"kind", "seed", NULL};
    if (!v)
        return 0;
    c->projection = true;
    if (!json_is_object(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.projection must be an object {\"kind\", \"seed\"}");
    int err = check_keys(v, "superlora.projection", keys, diag, diag_len);
    if (err)
        return err;
    json_t *kind = json_object_get(v, "kind");
    if (!json_is_string(kind) || strcmp(json_string_value(kind), "fastfood"))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.projection.kind must be \"fastfood\"");
    return parse_seed(json_object_get(v, "seed"), "superlora.projection.seed", &c->projection_seed,
                      diag, diag_len);
}

static int parse_alpha(json_t *v, struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    c->alpha = 1.0f;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return slora__diag(diag, diag_len, SLORA_EFORMAT, "superlora.alpha must be a number");
    c->alpha = (float)json_number_value(v);
    if (!isfinite(c->alpha))
        return slora__diag(diag, diag_len, SLORA_ENONFINITE,
                           "superlora.alpha = %g is not a finite float32", json_number_value(v));
    return 0;
}

/* The config object: keys in the order later ones depend on earlier ones
 * (layers on base, groups on order). */
static int parse_root(json_t *root, const struct slora_shape *model, struct slora_adapter_config *c,
                      char *diag, size_t diag_len)
{
    static const char *const keys[] = {"version", "base",    "modules",    "layers", "order",
                                       "groups",  "shuffle", "projection", "alpha",  NULL};
    char path[256] = "";
    if (!json_is_object(root))
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "__metadata__.superlora is not a JSON object");
    int err = find_null(root, path, sizeof(path), 0, diag, diag_len);
    if (err || (err = check_keys(root, "superlora", keys, diag, diag_len)))
        return err;
    static const char *const required[] = {"version", "base", "modules"};
    for (int i = 0; i < 3; i++)
        if (!json_object_get(root, required[i]))
            return slora__diag(diag, diag_len, SLORA_EFORMAT, "superlora.%s missing", required[i]);
    json_t *v = json_object_get(root, "version");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return slora__diag(diag, diag_len, SLORA_EFORMAT,
                           "superlora.version must be the integer 1");
    if ((err = parse_base(json_object_get(root, "base"), model, &c->base, diag, diag_len)) ||
        (err = parse_modules(json_object_get(root, "modules"), c, diag, diag_len)) ||
        (err = parse_layers(json_object_get(root, "layers"), c, diag, diag_len)) ||
        (err = parse_order(json_object_get(root, "order"), c, diag, diag_len)) ||
        (err = parse_groups(json_object_get(root, "groups"), c, diag, diag_len)) ||
        (err = parse_shuffle(json_object_get(root, "shuffle"), c, diag, diag_len)) ||
        (err = parse_projection(json_object_get(root, "projection"), c, diag, diag_len)))
        return err;
    return parse_alpha(json_object_get(root, "alpha"), c, diag, diag_len);
}

int slora_adapter_config_parse(const char *text, const struct slora_shape *model,
                               struct slora_adapter_config *c, char *diag, size_t diag_len)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char key[64];
        last_key(text, jerr.position, key, sizeof(key));
        return slora__diag(
            diag, diag_len, SLORA_EFORMAT,
            "__metadata__.superlora is not valid JSON (line %d, column %d%s%s%s): %s", jerr.line,
            jerr.column, *key ? ", after key '" : "", key, *key ? "'" : "", jerr.text);
    }
    int err = parse_root(root, model, c, diag, diag_len);
    json_decref(root);
    return err;
}
