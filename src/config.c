/* config.c - defaults, JSON file and flags (see config.h).
 *
 * One table lists every scalar key with its type, place in the struct and
 * accepted range; the JSON layer, the flags, conf/slorad.json and
 * docs/configuration.md all follow it. Tenants and the admin key are
 * parsed separately because they have structure.
 */
#include "internal.h"

#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>
#include <slora/log.h>

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB (INT64_C(1) << 10)
#define MIB (INT64_C(1) << 20)
#define GIB (INT64_C(1) << 30)

enum key_type { KEY_STRING, KEY_INT, KEY_BOOL };

struct key {
    const char *name;
    enum key_type type;
    size_t offset;
    const char *def_str; /* KEY_STRING default */
    int64_t def;         /* KEY_INT / KEY_BOOL default */
    int64_t min, max;    /* KEY_INT range */
    const char *flag;    /* command-line flag, or NULL */
};

#define OFF(f) offsetof(struct slora_config, f)

static const struct key keys[] = {
    {"listen", KEY_STRING, OFF(listen), "127.0.0.1:8080", 0, 0, 0, "--listen"},
    {"model", KEY_STRING, OFF(model), "models/stories260K.bin", 0, 0, 0, "--model"},
    {"tokenizer", KEY_STRING, OFF(tokenizer), "", 0, 0, 0, "--tokenizer"},
    {"model_id", KEY_STRING, OFF(model_id), "", 0, 0, 0, "--model-id"},
    {"state_dir", KEY_STRING, OFF(state_dir), "", 0, 0, 0, "--state-dir"},
    {"threads", KEY_INT, OFF(threads), NULL, 0, 0, 256, "--threads"},
    {"log_level", KEY_STRING, OFF(log_level), "info", 0, 0, 0, "--log-level"},
    {"max_header_bytes", KEY_INT, OFF(max_header_bytes), NULL, 16 * KIB, KIB, MIB, NULL},
    {"max_body_bytes", KEY_INT, OFF(max_body_bytes), NULL, 64 * MIB, KIB, 4 * GIB, NULL},
    {"max_json_bytes", KEY_INT, OFF(max_json_bytes), NULL, MIB, KIB, GIB, NULL},
    {"max_json_depth", KEY_INT, OFF(max_json_depth), NULL, 32, 2, 1024, NULL},
    {"max_json_elements", KEY_INT, OFF(max_json_elements), NULL, 65536, 16, 1 << 24, NULL},
    {"max_queued_reply_bytes", KEY_INT, OFF(max_queued_reply_bytes), NULL, MIB, 4 * KIB, GIB,
     NULL},
    {"max_queued_replies", KEY_INT, OFF(max_queued_replies), NULL, 64, 2, 65536, NULL},
    {"tcp_send_buffer_bytes", KEY_INT, OFF(tcp_send_buffer_bytes), NULL, 0, 0, 64 * MIB, NULL},
    {"max_connections", KEY_INT, OFF(max_connections), NULL, 512, 1, 65536, NULL},
    {"header_timeout_ms", KEY_INT, OFF(header_timeout_ms), NULL, 10000, 100, 600000, NULL},
    {"body_timeout_ms", KEY_INT, OFF(body_timeout_ms), NULL, 30000, 100, 3600000, NULL},
    {"body_deadline_ms", KEY_INT, OFF(body_deadline_ms), NULL, 60000, 100, 3600000, NULL},
    {"idle_timeout_ms", KEY_INT, OFF(idle_timeout_ms), NULL, 60000, 100, 3600000, NULL},
    {"drain_timeout_ms", KEY_INT, OFF(drain_timeout_ms), NULL, 10000, 0, 600000, NULL},
    {"max_adapter_params", KEY_INT, OFF(max_adapter_params), NULL, 10000000, 1, INT64_C(1) << 31,
     NULL},
    {"max_expand_bytes", KEY_INT, OFF(max_expand_bytes), NULL, 256 * MIB, MIB, INT64_C(1) << 40,
     NULL},
    {"max_expand_work", KEY_INT, OFF(max_expand_work), NULL, INT64_C(1) << 34, INT64_C(1) << 20,
     INT64_C(1) << 50, NULL},
    {"max_uploads_per_tenant", KEY_INT, OFF(max_uploads_per_tenant), NULL, 2, 1, 1 << 20, NULL},
    {"delta_cache_bytes", KEY_INT, OFF(delta_cache_bytes), NULL, 512 * MIB, 0, INT64_C(1) << 40,
     NULL},
    {"max_pinned_bytes_per_tenant", KEY_INT, OFF(max_pinned_bytes_per_tenant), NULL, 256 * MIB, 0,
     INT64_C(1) << 40, NULL},
    {"max_generations_per_tenant", KEY_INT, OFF(max_generations_per_tenant), NULL, 2, 1, 1 << 20,
     NULL},
    {"delta_dtype", KEY_STRING, OFF(delta_dtype), "auto", 0, 0, 0, "--delta-dtype"},
    {"max_context", KEY_INT, OFF(max_context), NULL, 4096, 16, 1 << 20, "--max-context"},
    {"max_tokens", KEY_INT, OFF(max_tokens), NULL, 512, 1, 1 << 20, NULL},
    {"max_batch", KEY_INT, OFF(max_batch), NULL, 16, 1, 1024, NULL},
    {"queue_depth", KEY_INT, OFF(queue_depth), NULL, 256, 1, 1 << 20, NULL},
    {"max_sequences_per_tenant", KEY_INT, OFF(max_sequences_per_tenant), NULL, 16, 1, 1 << 20,
     NULL},
    {"max_logits_bytes", KEY_INT, OFF(max_logits_bytes), NULL, 64 * MIB, KIB, 4 * GIB, NULL},
    {"worker_threads", KEY_INT, OFF(worker_threads), NULL, 4, 1, 128, NULL},
    {"allow_insecure_remote", KEY_BOOL, OFF(allow_insecure_remote), NULL, 0, 0, 1, NULL},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static char **str_at(struct slora_config *c, const struct key *k)
{
    return (char **)((char *)c + k->offset);
}

static int64_t *int_at(struct slora_config *c, const struct key *k)
{
    return (int64_t *)((char *)c + k->offset);
}

static bool *bool_at(struct slora_config *c, const struct key *k)
{
    return (bool *)((char *)c + k->offset);
}

static int set_string(struct slora_config *c, const struct key *k, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return SLORA_ENOMEM;
    free(*str_at(c, k));
    *str_at(c, k) = s;
    return 0;
}

static int check_int(const struct key *k, int64_t v, char *diag, size_t diag_len)
{
    if (v < k->min || v > k->max)
        return slora__diag(diag, diag_len, SLORA_ERANGE,
                           "config key '%s': %" PRId64 " is out of range [%" PRId64 ", %" PRId64
                           "]",
                           k->name, v, k->min, k->max);
    return 0;
}

void slora_config_free(struct slora_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].type == KEY_STRING)
            free(*str_at(c, &keys[i]));
    free(c->config_path);
    free(c->store.kind);
    free(c->store.url);
    free(c->store.prefix);
    free(c->store.password_file);
    slora_auth_unref(c->auth);
    free(c);
}

struct slora_config *slora_config_new_defaults(void)
{
    struct slora_config *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (!(c->auth = slora_auth_new())) {
        free(c);
        return NULL;
    }
    c->store.timeout_ms = 1000;
    c->store.stream_max_len = 10000;
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        if (k->type == KEY_STRING && set_string(c, k, k->def_str)) {
            slora_config_free(c);
            return NULL;
        } else if (k->type == KEY_INT) {
            *int_at(c, k) = k->def;
        } else if (k->type == KEY_BOOL) {
            *bool_at(c, k) = k->def != 0;
        }
    }
    return c;
}

/* "tenants[i].key_sha256": one hex string or an array of them. */
static int tenant_keys(json_t *v, const char *where, const char ***out, int *n, char *diag,
                       size_t diag_len)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if ((!json_is_array(v) && !json_is_string(v)) || count == 0 || count > 1024)
        return slora__diag(
            diag, diag_len, SLORA_EINVAL,
            "config key '%s.key_sha256': expected a hex string or a non-empty array of "
            "them",
            where);
    const char **keys = calloc(count, sizeof(*keys));
    if (!keys)
        return SLORA_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(e)) {
            free(keys);
            return slora__diag(diag, diag_len, SLORA_EINVAL,
                               "config key '%s.key_sha256[%zu]': expected a string", where, i);
        }
        keys[i] = json_string_value(e);
    }
    *out = keys;
    *n = (int)count;
    return 0;
}

static int tenant_limit(json_t *v, const char *where, const char *key, int64_t *out, char *diag,
                        size_t diag_len)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return slora__diag(diag, diag_len, SLORA_ERANGE,
                           "config key '%s.%s': expected an integer in [0, %" PRId64 "]", where,
                           key, (int64_t)INT64_MAX);
    *out = json_integer_value(v);
    return 0;
}

static int parse_tenant(struct slora_config *c, json_t *obj, size_t index, char *diag,
                        size_t diag_len)
{
    char where[48];
    snprintf(where, sizeof(where), "tenants[%zu]", index);
    if (!json_is_object(obj))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "config key '%s': expected an object",
                           where);
    const char *name = NULL;
    const char **keys = NULL;
    int n_keys = 0;
    struct slora_quota quota = {-1, -1}; /* absent: unlimited */
    const char *key;
    json_t *v;
    int err = 0;
    json_object_foreach(obj, key, v)
    {
        if (!strcmp(key, "name") && json_is_string(v))
            name = json_string_value(v);
        else if (!strcmp(key, "name"))
            err = slora__diag(diag, diag_len, SLORA_EINVAL,
                              "config key '%s.name': expected a string", where);
        else if (!strcmp(key, "key_sha256") && !keys)
            err = tenant_keys(v, where, &keys, &n_keys, diag, diag_len);
        else if (!strcmp(key, "max_adapters"))
            err = tenant_limit(v, where, key, &quota.max_adapters, diag, diag_len);
        else if (!strcmp(key, "max_bytes"))
            err = tenant_limit(v, where, key, &quota.max_bytes, diag, diag_len);
        else
            err = slora__diag(diag, diag_len, SLORA_EINVAL,
                              "config key '%s.%s' is unknown (accepted: name, key_sha256, "
                              "max_adapters, max_bytes)",
                              where, key);
        if (err)
            goto out_free_keys;
    }
    if (!name || !keys) {
        err = slora__diag(diag, diag_len, SLORA_EINVAL,
                          "config key '%s': needs name and key_sha256", where);
        goto out_free_keys;
    }
    char inner[256];
    err = slora_auth_add_tenant(c->auth, name, keys, n_keys, &quota, inner, sizeof(inner));
    if (err)
        slora__diag(diag, diag_len, err, "config key '%s': %s", where, inner);
out_free_keys:
    free(keys);
    return err;
}

static int parse_tenants(struct slora_config *c, json_t *arr, char *diag, size_t diag_len)
{
    if (!json_is_array(arr))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "config key 'tenants': expected an array");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        int err = parse_tenant(c, v, i, diag, diag_len);
        if (err)
            return err;
        c->n_tenants++;
    }
    return 0;
}

static int parse_admin_key(struct slora_config *c, json_t *v, char *diag, size_t diag_len)
{
    if (json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
        return 0;
    if (!json_is_string(v))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "config key 'admin_key_sha256': expected 64 hex digits or \"\"");
    char inner[256];
    int err = slora_auth_add_admin_key(c->auth, json_string_value(v), inner, sizeof(inner));
    if (err)
        slora__diag(diag, diag_len, err, "config key 'admin_key_sha256': %s", inner);
    return err;
}

/* "store": {"kind", "url", "prefix", "password_file", "timeout_ms",
 * "stream_max_len"}. */
static int parse_store(struct slora_config *c, json_t *obj, char *diag, size_t diag_len)
{
    static const struct {
        const char *name;
        size_t offset;
    } strs[] = {{"kind", offsetof(struct slora_config_store, kind)},
                {"url", offsetof(struct slora_config_store, url)},
                {"prefix", offsetof(struct slora_config_store, prefix)},
                {"password_file", offsetof(struct slora_config_store, password_file)}};
    static const struct key ints[] = {
        {"store.timeout_ms", KEY_INT, offsetof(struct slora_config_store, timeout_ms), NULL, 1000,
         50, 600000, NULL},
        {"store.stream_max_len", KEY_INT, offsetof(struct slora_config_store, stream_max_len),
         NULL, 10000, 1, 1000000000, NULL},
    };
    if (!json_is_object(obj))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "config key 'store': expected an object");
    const char *name;
    json_t *v;
    json_object_foreach(obj, name, v)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            if (strcmp(name, strs[i].name))
                continue;
            known = true;
            if (!json_is_string(v))
                return slora__diag(diag, diag_len, SLORA_EINVAL,
                                   "config key 'store.%s': expected a string", name);
            char **at = (char **)((char *)&c->store + strs[i].offset), *copy;
            if (!(copy = strdup(json_string_value(v))))
                return SLORA_ENOMEM;
            free(*at);
            *at = copy;
        }
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
            if (strcmp(name, ints[i].name + sizeof("store.") - 1))
                continue;
            known = true;
            if (!json_is_integer(v))
                return slora__diag(diag, diag_len, SLORA_EINVAL,
                                   "config key '%s': expected an integer", ints[i].name);
            if (check_int(&ints[i], json_integer_value(v), diag, diag_len))
                return SLORA_ERANGE;
            *(int64_t *)((char *)&c->store + ints[i].offset) = json_integer_value(v);
        }
        if (!known)
            return slora__diag(diag, diag_len, SLORA_EINVAL, "config key 'store.%s' is unknown",
                               name);
    }
    const char *kind = c->store.kind ? c->store.kind : "dir";
    if (strcmp(kind, "dir") && strcmp(kind, "redis"))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "config key 'store.kind': '%s' is not one of dir, redis", kind);
    if (!strcmp(kind, "redis") && !c->store.url)
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "config key 'store.url': required with kind redis "
                           "(redis://host:port[/db])");
    return 0;
}

static const struct key *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

static int apply_value(struct slora_config *c, const struct key *k, json_t *v, char *diag,
                       size_t diag_len)
{
    switch (k->type) {
    case KEY_STRING:
        if (!json_is_string(v))
            return slora__diag(diag, diag_len, SLORA_EINVAL, "config key '%s': expected a string",
                               k->name);
        return set_string(c, k, json_string_value(v));
    case KEY_INT:
        if (!json_is_integer(v))
            return slora__diag(diag, diag_len, SLORA_EINVAL,
                               "config key '%s': expected an integer in [%" PRId64 ", %" PRId64 "]",
                               k->name, k->min, k->max);
        if (check_int(k, json_integer_value(v), diag, diag_len))
            return SLORA_ERANGE;
        *int_at(c, k) = json_integer_value(v);
        return 0;
    case KEY_BOOL:
        if (!json_is_boolean(v))
            return slora__diag(diag, diag_len, SLORA_EINVAL,
                               "config key '%s': expected true or false", k->name);
        *bool_at(c, k) = json_is_true(v);
        return 0;
    }
    return SLORA_EINTERNAL;
}

int slora_config_apply_json(struct slora_config *c, const char *text, size_t len, char *diag,
                            size_t diag_len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return slora__diag(diag, diag_len, SLORA_EINVAL, "config: line %d column %d: %s", jerr.line,
                           jerr.column, jerr.text);
    int err = 0;
    if (!json_is_object(root)) {
        err = slora__diag(diag, diag_len, SLORA_EINVAL, "config: expected a JSON object");
        goto out_decref;
    }
    const char *name;
    json_t *v;
    json_object_foreach(root, name, v)
    {
        const struct key *k = find_key(name);
        if (k) {
            err = apply_value(c, k, v, diag, diag_len);
        } else if (!strcmp(name, "tenants")) {
            err = parse_tenants(c, v, diag, diag_len);
        } else if (!strcmp(name, "admin_key_sha256")) {
            err = parse_admin_key(c, v, diag, diag_len);
        } else if (!strcmp(name, "store")) {
            err = parse_store(c, v, diag, diag_len);
        } else {
            err = slora__diag(diag, diag_len, SLORA_EINVAL, "config key '%s' is unknown", name);
        }
        if (err)
            break;
    }
out_decref:
    json_decref(root);
    return err;
}

static int load_file(struct slora_config *c, const char *path, char *diag, size_t diag_len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return slora__diag(diag, diag_len, SLORA_EIO, "config %s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    int err = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap > 64 * MIB) {
                err = slora__diag(diag, diag_len, SLORA_ERANGE, "config %s: larger than 64 MiB",
                                  path);
                goto err_close;
            }
            char *t = realloc(text, cap);
            if (!t) {
                err = SLORA_ENOMEM;
                goto err_close;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        err = slora__diag(diag, diag_len, SLORA_EIO, "config %s: read error", path);
        goto err_close;
    }
    char inner[512];
    err = slora_config_apply_json(c, text, len, inner, sizeof(inner));
    if (err)
        slora__diag(diag, diag_len, err, "%s: %s", path, inner);
    else if (!(c->config_path = strdup(path)))
        err = SLORA_ENOMEM;
err_close:
    free(text);
    fclose(f);
    return err;
}

int slora_config_listen_split(const char *listen, char *host, size_t host_len, int *port)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return SLORA_EINVAL;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || strchr(listen, ':') != colon)
            return SLORA_EINVAL;
        hlen = (size_t)(colon - listen);
    }
    if (hlen == 0 || hlen >= host_len)
        return SLORA_EINVAL;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || errno || p < 0 || p > 65535)
        return SLORA_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

bool slora_config_host_is_loopback(const char *host)
{
    return !strcmp(host, "localhost") || !strcmp(host, "::1") || !strncmp(host, "127.", 4);
}

bool slora_config_auth_enabled(const struct slora_config *c)
{
    return slora_auth_is_enabled(c->auth);
}

const char *slora_config_key_name(size_t i)
{
    return i < N_KEYS ? keys[i].name : NULL;
}

const char *slora_config_usage(void)
{
    return "usage: slorad serve [options]\n"
           "  --config PATH      JSON config file (default: $SLORAD_CONFIG)\n"
           "  --listen HOST:PORT listen address (default 127.0.0.1:8080; port 0 = any)\n"
           "  --model PATH       base model (.bin or .gguf)\n"
           "  --tokenizer PATH   llama2.c tok*.bin of a .bin model (default: next to it)\n"
           "  --model-id ID      model id in the API (default: model file name)\n"
           "  --state-dir DIR    adapter storage (default $STATE_DIRECTORY or /var/lib/slorad)\n"
           "  --threads N        compute threads (0 = one per CPU)\n"
           "  --log-level LEVEL  debug, info, warn or error\n"
           "Every other setting is a config file key; see docs/configuration.md.\n";
}

static int apply_flag(struct slora_config *c, const char *flag, const char *value, char *diag,
                      size_t diag_len)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        if (!k->flag || strcmp(k->flag, flag))
            continue;
        if (k->type == KEY_STRING)
            return set_string(c, k, value);
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno)
            return slora__diag(diag, diag_len, SLORA_EINVAL, "%s: expected an integer, got '%s'",
                               flag, value);
        if (check_int(k, v, diag, diag_len))
            return SLORA_ERANGE;
        *int_at(c, k) = v;
        return 0;
    }
    return slora__diag(diag, diag_len, SLORA_EINVAL, "unknown option '%s'", flag);
}

/* Values derived from others, then cross-key checks. */
static int finish(struct slora_config *c, char *diag, size_t diag_len)
{
    if (!c->model_id[0]) {
        /* The path's last component (a Hugging Face directory's name, so
         * "Qwen2.5-0.5B-Instruct/" stays whole) without a model file's
         * extension. */
        const char *m = c->model;
        size_t end = strlen(m), start;
        while (end > 1 && m[end - 1] == '/')
            end--;
        for (start = end; start > 0 && m[start - 1] != '/'; start--)
            ;
        if (start == end) /* "/": the path itself */
            start = 0;
        char id[256];
        snprintf(id, sizeof(id), "%.*s", (int)(end - start), m + start);
        size_t n = strlen(id);
        if (n > 5 && !strcmp(id + n - 5, ".gguf"))
            id[n - 5] = '\0';
        else if (n > 4 && !strcmp(id + n - 4, ".bin"))
            id[n - 4] = '\0';
        if (set_string(c, find_key("model_id"), id))
            return SLORA_ENOMEM;
    }
    if (!c->state_dir[0]) {
        const char *sd = getenv("STATE_DIRECTORY");
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", sd && sd[0] ? sd : "/var/lib/slorad");
        char *colon = strchr(dir, ':'); /* systemd lists several as a:b */
        if (colon)
            *colon = '\0';
        if (set_string(c, find_key("state_dir"), dir))
            return SLORA_ENOMEM;
    }
    if (slora_log_level_parse(c->log_level) < 0)
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "config key 'log_level': '%s' is not one of debug, info, warn, error",
                           c->log_level);
    if (strcmp(c->delta_dtype, "auto") && strcmp(c->delta_dtype, "f32") &&
        strcmp(c->delta_dtype, "f16") && strcmp(c->delta_dtype, "bf16"))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "config key 'delta_dtype': '%s' is not one of auto, f32, f16, bf16",
                           c->delta_dtype);
    char host[256];
    int port;
    if (slora_config_listen_split(c->listen, host, sizeof(host), &port))
        return slora__diag(
            diag, diag_len, SLORA_EINVAL,
            "config key 'listen': '%s' is not HOST:PORT or [IPv6]:PORT (port 0-65535)", c->listen);
    if (!slora_config_auth_enabled(c) && !slora_config_host_is_loopback(host) &&
        !c->allow_insecure_remote)
        return slora__diag(
            diag, diag_len, SLORA_EINVAL,
            "config key 'listen': refusing non-loopback address '%s' with no API keys "
            "configured; set tenants or admin_key_sha256, or allow_insecure_remote: true",
            c->listen);
    return 0;
}

int slora_config_load(int argc, char **argv, struct slora_config **out, bool *help, char *diag,
                      size_t diag_len)
{
    *out = NULL;
    *help = false;
    const char *path = getenv("SLORAD_CONFIG");
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            *help = true;
            return 0;
        }
        if (strncmp(argv[i], "--", 2))
            return slora__diag(diag, diag_len, SLORA_EINVAL, "unexpected argument '%s'", argv[i]);
        if (i + 1 >= argc)
            return slora__diag(diag, diag_len, SLORA_EINVAL, "%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--config"))
            path = argv[i + 1];
    }
    struct slora_config *c = slora_config_new_defaults();
    if (!c)
        return SLORA_ENOMEM;
    int err = 0;
    if (path && path[0])
        err = load_file(c, path, diag, diag_len);
    for (int i = 1; !err && i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--config"))
            err = apply_flag(c, argv[i], argv[i + 1], diag, diag_len);
    if (!err)
        err = finish(c, diag, diag_len);
    if (err) {
        slora_config_free(c);
        return err;
    }
    *out = c;
    return 0;
}
