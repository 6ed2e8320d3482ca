/* api_adapters.c - the adapter management endpoints over the registry:
 *   PUT    /v1/adapters/{tenant}/{name}        upload (raw body), ?dry_run=1
 *   GET    /v1/adapters                        list visible to the caller
 *   GET    /v1/adapters/{tenant}/{name}        metadata (ETag, 304)
 *   GET    /v1/adapters/{tenant}/{name}/file   the exact stored bytes
 *   DELETE /v1/adapters/{tenant}/{name}        204
 *
 * Names are checked before anything else (400: they never reach the
 * filesystem), then the namespace (another tenant's: 404). A PUT's checks
 * (names, namespace, preconditions, quota, declared length) run in its head
 * hook, before the body is read, so `Expect: 100-continue` gets the final
 * answer at once. Validation, hashing and file I/O run on a worker; the
 * registry op is begun and committed on the loop thread.
 *
 * A PUT body that is a tar (a PEFT adapter: adapter_config.json and
 * adapter_model.safetensors) is converted on the worker into the
 * SuperLoRA file it means (import.h) for the loaded base; that file is
 * what is validated, stored and served by GET .../file, and the reply says
 * "converted_from": "peft".
 */
#include "api_internal.h"

#include <slora/arch.h>
#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>
#include <slora/import.h>
#include <slora/registry.h>
#include <slora/tar.h>

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIAG_LEN 512
#define FILE_READ_TRIES 3

static struct slora_registry *registry_of(struct slora_api_call *c)
{
    return slora_api_deps(slora_api_call_api(c))->registry;
}

/* Checks names and namespace; answers and returns the error otherwise. */
static int check_target(struct slora_api_call *c, const char **tenant, const char **name)
{
    *tenant = slora_api_call_param(c, 0);
    *name = slora_api_call_param(c, 1);
    char diag[DIAG_LEN];
    int err = slora_registry_name_check(*tenant, strlen(*tenant), "tenant", diag, sizeof(diag));
    if (!err)
        err = slora_registry_name_check(*name, strlen(*name), "adapter", diag, sizeof(diag));
    if (err) {
        slora_api_call_error(c, err, "%s", diag);
        return err;
    }
    slora_api_call_set_log(c, *tenant, *name, NULL);
    err = slora_auth_check_tenant(slora_api_call_principal(c), *tenant);
    if (err == SLORA_ENOTFOUND) {
        slora_api_call_error(c, err, "adapter %s/%s not found", *tenant, *name);
        return err;
    }
    if (err) {
        slora_api_call_error(c, err, NULL);
        return err;
    }
    if (!registry_of(c)) {
        slora_api_call_error(c, SLORA_EBUSY, "adapter registry not available");
        return SLORA_EBUSY;
    }
    return 0;
}

static bool query_flag(struct slora_api_call *c, const char *key)
{
    const char *v = slora_api_call_query(c, key);
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !v[0]);
}

static json_t *entry_json(const struct slora_registry_entry *e)
{
    json_t *modules = json_array();
    json_t *layers = json_array();
    const struct slora_adapter_config *cfg = &e->adapter->cfg;
    for (int i = 0; i < cfg->n_modules; i++)
        json_array_append_new(modules, json_string(slora_arch_module_name(cfg->modules[i])));
    for (int i = 0; i < cfg->n_layers; i++)
        json_array_append_new(layers, json_integer(cfg->layers[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:I, s:b}", "id", e->id,
                     "object", "adapter", "tenant", e->tenant, "name", e->name, "version",
                     e->version, "params", (json_int_t)e->params, "bytes",
                     (json_int_t)e->file_bytes, "dense_bytes", (json_int_t)e->dense_bytes,
                     "modules", modules, "layers", layers, "created", (json_int_t)e->created,
                     "pinned", slora_registry_entry_is_pinned(e));
}

static void set_etag(struct slora_api_call *c, const char *version)
{
    char etag[SLORA_VERSION_LEN + 3];
    snprintf(etag, sizeof(etag), "\"%s\"", version);
    slora_api_call_set_header(c, "ETag", etag);
}

static void respond_busy(struct slora_api_call *c, int err, const char *diag)
{
    if (err == SLORA_EBUSY)
        slora_api_call_set_header(c, "Retry-After", "1");
    slora_api_call_error(c, err, "%s", diag[0] ? diag : slora_strerror(err));
}

/* ---- PUT ------------------------------------------------------------------ */

struct put_job {
    struct slora_api_call *call;
    struct upload_tenant *slot; /* holds (running) or waits for (waiting) one of its slots */
    bool running;
    struct put_job *next_waiting;
    bool canceled; /* not validated: the client was gone when a worker took it */
    struct slora_registry_op *op; /* owned until commit or abort */
    void *body;
    size_t len;
    bool dry_run;
    bool converted; /* body was a PEFT tar, now its SuperLoRA file */
    int pin;        /* ?pin: -1 absent, 0 unpin, 1 pin */
    const struct slora_api_deps *deps;
    int err;
    char diag[DIAG_LEN];
    struct slora_registry_entry *entry; /* after commit */
    bool created;
    struct slora_cache_reservation *reservation; /* put_admit's, until the hook or put_release */
};

/* Uploads of one tenant (the path's) validated at once are capped by
 * max_uploads_per_tenant: more wait here, in arrival order, for one of
 * their tenant's slots, so one tenant cannot occupy every worker. A slot
 * is held from validation to the reply (warming and pinning included).
 * Loop thread only. */
struct upload_tenant {
    char name[SLORA_NAME_MAX + 1];
    int running;
    struct put_job *head, *tail; /* waiting */
    struct upload_tenant *next;
};

struct slora__uploads {
    struct upload_tenant *tenants; /* those with uploads running or waiting */
    int64_t waiting;
};

struct slora__uploads *slora__uploads_new(void)
{
    return calloc(1, sizeof(struct slora__uploads));
}

void slora__uploads_free(struct slora__uploads *u)
{
    if (!u)
        return;
    while (u->tenants) {
        struct upload_tenant *t = u->tenants;
        u->tenants = t->next;
        free(t);
    }
    free(u);
}

static struct slora__uploads *uploads_of(struct slora_api_call *c)
{
    return slora__api_uploads(slora_api_call_api(c));
}

static void put_work(void *arg);
static void put_done(void *arg);
static void uploads_leave(struct put_job *j);

static void put_start(struct put_job *j)
{
    j->running = true;
    j->slot->running++;
    int err = slora_api_call_queue_work(j->call, put_work, put_done, j);
    if (err) {
        uploads_leave(j);
        respond_busy(j->call, err, "");
    }
}

/* A waiting upload whose client went away: answer it, never validate it. */
static void put_waiting_canceled(void *arg)
{
    struct put_job *j = arg;
    uploads_leave(j);
    slora_api_call_error(j->call, SLORA_ECANCELED, NULL);
}

/* Run j now, or queue it behind its tenant's running uploads. */
static void uploads_enter(struct put_job *j, const char *tenant)
{
    struct slora__uploads *u = uploads_of(j->call);
    struct upload_tenant *t = u->tenants;
    while (t && strcmp(t->name, tenant))
        t = t->next;
    if (!t && (t = calloc(1, sizeof(*t)))) {
        snprintf(t->name, sizeof(t->name), "%s", tenant);
        t->next = u->tenants;
        u->tenants = t;
    }
    if (!t) {
        slora_api_call_error(j->call, SLORA_ENOMEM, NULL);
        return;
    }
    j->slot = t;
    const struct slora_config *cfg = slora_api_call_config(j->call);
    if (!cfg || t->running < cfg->max_uploads_per_tenant) {
        put_start(j);
        return;
    }
    if (t->tail)
        t->tail->next_waiting = j;
    else
        t->head = j;
    t->tail = j;
    u->waiting++;
    slora_api_call_on_cancel(j->call, put_waiting_canceled, j);
}

/* j no longer holds or waits for a slot; a freed slot goes to the
 * tenant's next waiting upload. */
static void uploads_leave(struct put_job *j)
{
    struct upload_tenant *t = j->slot;
    if (!t)
        return;
    struct slora__uploads *u = uploads_of(j->call);
    j->slot = NULL;
    if (!j->running) {
        struct put_job **pp = &t->head, *prev = NULL;
        while (*pp != j) {
            prev = *pp;
            pp = &(*pp)->next_waiting;
        }
        *pp = j->next_waiting;
        if (t->tail == j)
            t->tail = prev;
        u->waiting--;
    } else {
        j->running = false;
        t->running--;
        struct put_job *next = t->head;
        if (next) {
            t->head = next->next_waiting;
            if (!t->head)
                t->tail = NULL;
            u->waiting--;
            slora_api_call_on_cancel(next->call, NULL, NULL);
            put_start(next);
        }
    }
    if (!t->running && !t->head) {
        struct upload_tenant **tp = &u->tenants;
        while (*tp != t)
            tp = &(*tp)->next;
        *tp = t->next;
        free(t);
    }
}

static void put_job_unreserve(struct put_job *j)
{
    if (j->reservation)
        j->deps->put_release(j->deps->put_hook_arg, j->reservation);
    j->reservation = NULL;
}

static void put_job_free(void *p)
{
    struct put_job *j = p;
    if (!j)
        return;
    uploads_leave(j);
    if (j->op)
        slora_registry_op_abort(j->op);
    put_job_unreserve(j);
    slora_registry_entry_unref(j->entry);
    free(j->body);
    free(j);
}

static int pin_value(struct slora_api_call *c)
{
    const char *v = slora_api_call_query(c, "pin");
    if (!v)
        return -1;
    return strcmp(v, "0") && strcmp(v, "false");
}

/* slora_registry_admit_cb: on the worker, before the upload is persisted. */
static int put_admit(void *arg, const struct slora_registry_entry *e, char *diag, size_t diag_len)
{
    struct put_job *j = arg;
    return j->deps->put_admit(j->deps->put_hook_arg, e, j->pin, &j->reservation, diag, diag_len);
}

static int put_head(struct slora_api_call *c)
{
    const struct slora_config *cfg = slora_api_call_config(c);
    if (cfg)
        slora_api_call_set_body_limit(c, cfg->max_body_bytes, "max_body_bytes");
    const char *tenant, *name;
    int err = check_target(c, &tenant, &name);
    if (err)
        return err;
    struct put_job *j = calloc(1, sizeof(*j));
    if (!j) {
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return SLORA_ENOMEM;
    }
    j->call = c;
    j->dry_run = query_flag(c, "dry_run");
    j->pin = pin_value(c);
    j->deps = slora_api_deps(slora_api_call_api(c));
    slora_api_call_set_data(c, j, put_job_free);
    const struct slora_api_request *req = slora_api_call_request(c);
    struct slora_registry_cond cond = {req->if_match, req->if_none_match};
    struct slora_quota quota;
    slora_auth_quota(slora__api_call_auth(c), tenant, &quota);
    err = slora_registry_begin_put(registry_of(c), tenant, name, &cond, &quota, req->content_length,
                                   j->dry_run, &j->op, j->diag, sizeof(j->diag));
    if (err) {
        respond_busy(c, err, j->diag);
        return err;
    }
    if (j->deps->put_admit)
        slora_registry_op_set_admit(j->op, put_admit, j);
    slora_registry_op_set_pin(j->op, j->pin);
    return 0;
}

static void put_reply(struct slora_api_call *c, int err, const char *message)
{
    struct put_job *j = slora_api_call_data(c);
    uploads_leave(j);
    if (err) {
        slora_api_call_error(c, err, "%s", message ? message : slora_strerror(err));
        return;
    }
    json_t *obj = entry_json(j->entry);
    if (j->dry_run)
        json_object_set_new(obj, "dry_run", json_true());
    if (j->converted)
        json_object_set_new(obj, "converted_from", json_string("peft"));
    set_etag(c, j->entry->version);
    slora_api_call_respond_json(c, j->created && !j->dry_run ? 201 : 200, obj);
}

/* A PEFT tar body becomes its SuperLoRA file (or the PUT is refused). */
static int put_convert(struct put_job *j)
{
    if (!j->deps->model)
        return slora_registry_op_reject(j->op, SLORA_EUNSUPPORTED,
                                        "PEFT uploads need the base model");
    struct slora_import_target t;
    slora_import_target_init(&t, j->deps->model);
    void *out;
    size_t len;
    int err = slora_import_peft_tar(j->body, j->len, &t, &out, &len, j->diag, sizeof(j->diag));
    if (err)
        return slora_registry_op_reject(j->op, err, j->diag);
    free(j->body);
    j->body = out;
    j->len = len;
    j->converted = true;
    return 0;
}

static void put_work(void *arg)
{
    struct put_job *j = arg;
    /* The client left (or the drain cut it) while the job waited for a
     * worker: nobody will read the answer, so validate nothing. */
    if (slora_api_call_is_canceled(j->call)) {
        j->canceled = true;
        return;
    }
    if (slora_tar_is_tar(j->body, j->len) && (j->err = put_convert(j)))
        return;
    j->err = slora_registry_op_run(j->op, j->body, j->len, j->diag, sizeof(j->diag));
}

static void put_done(void *arg)
{
    struct put_job *j = arg;
    struct slora_api_call *c = j->call;
    if (j->canceled) { /* j->op is released with j */
        uploads_leave(j);
        slora_api_call_error(c, SLORA_ECANCELED, NULL);
        return;
    }
    struct slora_registry_op *op = j->op;
    j->op = NULL;
    free(j->body);
    j->body = NULL;
    j->err = slora_registry_op_commit(op, &j->entry, &j->created, j->diag, sizeof(j->diag));
    if (j->err) {
        uploads_leave(j);
        put_job_unreserve(j);
        slora_api_call_error(c, j->err, "%s", j->diag[0] ? j->diag : slora_strerror(j->err));
        return;
    }
    slora_api_call_set_log(c, j->entry->tenant, j->entry->name, j->entry->version);
    const struct slora_api_deps *deps = j->deps;
    int warm = query_flag(c, "warm"), pin = j->pin;
    /* A pinned adapter's pin moves to the new version now (the cache hook). */
    if (!j->dry_run && deps->put_hook &&
        (warm || pin >= 0 || slora_registry_entry_is_pinned(j->entry))) {
        struct slora_cache_reservation *rsv = j->reservation;
        j->reservation = NULL;
        deps->put_hook(deps->put_hook_arg, c, j->entry, warm, pin, rsv, put_reply);
        return;
    }
    put_job_unreserve(j);
    put_reply(c, 0, NULL);
}

static void put_handler(struct slora_api_call *c)
{
    struct put_job *j = slora_api_call_data(c);
    j->body = slora_api_call_take_body(c, &j->len);
    uploads_enter(j, slora_api_call_param(c, 0));
}

/* ---- GET / DELETE ------------------------------------------------------- */

static int lookup(struct slora_api_call *c, struct slora_registry_entry **e)
{
    const char *tenant, *name;
    int err = check_target(c, &tenant, &name);
    if (err)
        return err;
    err = slora_registry_get(registry_of(c), tenant, name, e);
    if (err) {
        slora_api_call_error(c, err, "adapter %s/%s not found", tenant, name);
        return err;
    }
    slora_api_call_set_log(c, tenant, name, (*e)->version);
    set_etag(c, (*e)->version);
    if (slora_registry_etag_match(slora_api_call_request(c)->if_none_match, (*e)->version)) {
        slora_api_call_respond(c, 304, NULL, NULL, 0);
        slora_registry_entry_unref(*e);
        return 1;
    }
    return 0;
}

static void get_handler(struct slora_api_call *c)
{
    struct slora_registry_entry *e;
    if (lookup(c, &e))
        return;
    slora_api_call_respond_json(c, 200, entry_json(e));
    slora_registry_entry_unref(e);
}

struct file_job {
    struct slora_api_call *call;
    struct slora_registry_entry *entry;
    void *buf;
    size_t len;
    int err;
    int tries;
    char diag[DIAG_LEN];
};

static void file_job_free(void *p)
{
    struct file_job *j = p;
    slora_registry_entry_unref(j->entry);
    free(j->buf);
    free(j);
}

static void file_work(void *arg)
{
    struct file_job *j = arg;
    j->err = slora_registry_entry_read_file(j->entry, &j->buf, &j->len, j->diag, sizeof(j->diag));
}

static void file_done(void *arg)
{
    struct file_job *j = arg;
    struct slora_api_call *c = j->call;
    if (j->err == SLORA_EBUSY && ++j->tries < FILE_READ_TRIES) {
        /* Replaced meanwhile: serve the newer version. */
        slora_registry_entry_unref(j->entry);
        j->entry = NULL;
        int err = slora_registry_get(registry_of(c), slora_api_call_param(c, 0),
                                     slora_api_call_param(c, 1), &j->entry);
        if (!err)
            err = slora_api_call_queue_work(c, file_work, file_done, j);
        if (err)
            respond_busy(c, err, "");
        return;
    }
    if (j->err) {
        respond_busy(c, j->err, j->diag);
        return;
    }
    void *buf = j->buf;
    j->buf = NULL;
    slora_api_call_respond(c, 200, "application/octet-stream", buf, j->len);
}

static void file_handler(struct slora_api_call *c)
{
    struct slora_registry_entry *e;
    if (lookup(c, &e))
        return;
    struct file_job *j = calloc(1, sizeof(*j));
    if (!j) {
        slora_registry_entry_unref(e);
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return;
    }
    j->call = c;
    j->entry = e;
    slora_api_call_set_data(c, j, file_job_free);
    int err = slora_api_call_queue_work(c, file_work, file_done, j);
    if (err)
        respond_busy(c, err, "");
}

struct delete_job {
    struct slora_api_call *call;
    struct slora_registry_op *op;
    int err;
    char diag[DIAG_LEN];
};

static void delete_job_free(void *p)
{
    struct delete_job *j = p;
    if (j->op)
        slora_registry_op_abort(j->op);
    free(j);
}

static void delete_work(void *arg)
{
    struct delete_job *j = arg;
    j->err = slora_registry_op_run(j->op, NULL, 0, j->diag, sizeof(j->diag));
}

static void delete_done(void *arg)
{
    struct delete_job *j = arg;
    struct slora_registry_op *op = j->op;
    j->op = NULL;
    int err = slora_registry_op_commit(op, NULL, NULL, j->diag, sizeof(j->diag));
    if (err) {
        respond_busy(j->call, err, j->diag);
        return;
    }
    slora_api_call_respond(j->call, 204, NULL, NULL, 0);
}

static void delete_handler(struct slora_api_call *c)
{
    const char *tenant, *name;
    if (check_target(c, &tenant, &name))
        return;
    struct delete_job *j = calloc(1, sizeof(*j));
    if (!j) {
        slora_api_call_error(c, SLORA_ENOMEM, NULL);
        return;
    }
    j->call = c;
    slora_api_call_set_data(c, j, delete_job_free);
    const struct slora_api_request *req = slora_api_call_request(c);
    struct slora_registry_cond cond = {req->if_match, req->if_none_match};
    int err = slora_registry_begin_delete(registry_of(c), tenant, name, &cond, &j->op, j->diag,
                                          sizeof(j->diag));
    if (!err)
        err = slora_api_call_queue_work(c, delete_work, delete_done, j);
    if (err)
        respond_busy(c, err, j->diag);
}

static void list_handler(struct slora_api_call *c)
{
    struct slora_registry *r = registry_of(c);
    json_t *data = json_array();
    if (r) {
        struct slora_registry_entry **list;
        size_t n;
        int err =
            slora_registry_list(r, slora_auth_list_filter(slora_api_call_principal(c)), &list, &n);
        if (err) {
            json_decref(data);
            slora_api_call_error(c, err, NULL);
            return;
        }
        for (size_t i = 0; i < n; i++)
            json_array_append_new(data, entry_json(list[i]));
        slora_registry_list_free(list, n);
    }
    slora_api_call_respond_json(c, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

void slora__api_adapter_metrics(struct slora_api *api, struct slora_api_text *t)
{
    struct slora_registry *r = slora_api_deps(api)->registry;
    if (!r)
        return;
    struct slora_registry_stats s;
    slora_registry_stats(r, &s);
    int64_t live, live_bytes;
    slora_registry_live(&live, &live_bytes);
    slora_api_text_printf(t,
                          "# HELP slorad_adapters Adapters registered.\n"
                          "# TYPE slorad_adapters gauge\n"
                          "slorad_adapters %lld\n"
                          "# HELP slorad_adapter_bytes Compact bytes of registered adapters.\n"
                          "# TYPE slorad_adapter_bytes gauge\n"
                          "slorad_adapter_bytes %lld\n"
                          "# HELP slorad_adapter_objects_live Adapter versions alive (incl. "
                          "retired ones still in use).\n"
                          "# TYPE slorad_adapter_objects_live gauge\n"
                          "slorad_adapter_objects_live %lld\n"
                          "# HELP slorad_adapter_objects_live_bytes Compact bytes of the adapter "
                          "versions alive.\n"
                          "# TYPE slorad_adapter_objects_live_bytes gauge\n"
                          "slorad_adapter_objects_live_bytes %lld\n"
                          "# HELP slorad_adapter_uploads_total Uploads stored (new and replacements).\n"
                          "# TYPE slorad_adapter_uploads_total counter\n"
                          "slorad_adapter_uploads_total %llu\n"
                          "# HELP slorad_adapter_swaps_total Uploads that replaced a version.\n"
                          "# TYPE slorad_adapter_swaps_total counter\n"
                          "slorad_adapter_swaps_total %llu\n"
                          "# HELP slorad_adapter_deletes_total Adapters deleted.\n"
                          "# TYPE slorad_adapter_deletes_total counter\n"
                          "slorad_adapter_deletes_total %llu\n"
                          "# HELP slorad_adapter_dry_runs_total Successful ?dry_run=1 uploads.\n"
                          "# TYPE slorad_adapter_dry_runs_total counter\n"
                          "slorad_adapter_dry_runs_total %llu\n"
                          "# HELP slorad_adapter_uploads_waiting Uploads waiting for a slot of "
                          "their tenant (max_uploads_per_tenant).\n"
                          "# TYPE slorad_adapter_uploads_waiting gauge\n"
                          "slorad_adapter_uploads_waiting %lld\n"
                          "# HELP slorad_adapter_rejected_total Failed uploads by reason.\n"
                          "# TYPE slorad_adapter_rejected_total counter\n",
                          (long long)s.adapters, (long long)s.bytes, (long long)live,
                          (long long)live_bytes, (unsigned long long)s.uploads,
                          (unsigned long long)s.swaps, (unsigned long long)s.deletes,
                          (unsigned long long)s.dry_runs,
                          (long long)slora__api_uploads(api)->waiting);
    for (int i = 0; i < SLORA_ERR_COUNT; i++)
        if (s.rejected[i])
            slora_api_text_printf(t, "slorad_adapter_rejected_total{reason=\"%s\"} %llu\n",
                                  slora_err_name(SLORA__ERR_FIRST + 1 + i),
                                  (unsigned long long)s.rejected[i]);
}

const struct slora_api_route slora__api_adapter_routes[] = {
    {SLORA_API_GET, "/v1/adapters", "adapters_list", SLORA_API_AUTH_ANY, NULL, list_handler},
    {SLORA_API_PUT, "/v1/adapters/{tenant}/{name}", "adapters_put", SLORA_API_AUTH_ANY, put_head,
     put_handler},
    {SLORA_API_GET, "/v1/adapters/{tenant}/{name}", "adapters_get", SLORA_API_AUTH_ANY, NULL,
     get_handler},
    {SLORA_API_DELETE, "/v1/adapters/{tenant}/{name}", "adapters_delete", SLORA_API_AUTH_ANY, NULL,
     delete_handler},
    {SLORA_API_GET, "/v1/adapters/{tenant}/{name}/file", "adapters_file", SLORA_API_AUTH_ANY, NULL,
     file_handler},
};
const size_t slora__api_n_adapter_routes =
    sizeof(slora__api_adapter_routes) / sizeof(slora__api_adapter_routes[0]);
