/* store_redis.c - the Redis store (see store.h), over the connection
 * thread of store_redis_link.c.
 *
 * Keys, all under the configured prefix P:
 *   P rev                 string  the revision counter (INCR per write)
 *   P changes             stream  one entry per write: op (put|delete),
 *                                 tenant, name, version ("" for delete), rev,
 *                                 pinned (put);
 *                                 XADD MAXLEN stream_max_len (exact)
 *   P ids                 set     "tenant/name" of every stored adapter
 *   P a:{tenant}/{name}   hash    version, rev, pinned (0/1), created,
 *                                 bytes, data (the exact file)
 *   P q:{tenant}          hash    count, bytes: the tenant's usage
 * A write is one Lua script (EVAL): precondition, quota, the hash, the
 * set, the usage and the stream entry change together or not at all, and
 * Redis answers after its AOF policy (appendfsync always: after fsync).
 * The scripts name the adapter and usage keys in KEYS; the snapshot reads
 * the adapter hashes by the prefix it is given (a single Redis, not a
 * cluster).
 */
#include "internal.h"
#include "store_internal.h"
#include "store_redis.h"

#include <slora/error.h>
#include <slora/log.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 512
#define PREFIX_MAX 128
#define SCAN_BATCH 256 /* stream entries read per XREAD */

struct store_redis {
    struct slora_store base;
    struct slora__redis *link;
    char prefix[PREFIX_MAX + 1];
    char maxlen[24]; /* stream_max_len as text */
};

static struct store_redis *redis_of(struct slora_store *s)
{
    return (struct store_redis *)s;
}

static void key(const struct store_redis *s, char out[KEY_MAX], const char *what, const char *a,
                const char *b)
{
    snprintf(out, KEY_MAX, "%s%s%s%s%s", s->prefix, what, a ? a : "", b ? "/" : "", b ? b : "");
}

/* ---- replies ---------------------------------------------------------- */

static bool is_text(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

static int64_t reply_int(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return is_text(r) ? strtoll(r->str, NULL, 10) : 0;
}

/* Copy a text reply into out (out_len bytes with the NUL); false when it
 * is not text or too long. */
static bool reply_copy(const redisReply *r, char *out, size_t out_len)
{
    if (!is_text(r) || r->len >= out_len)
        return false;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return true;
}

static bool reply_is(const redisReply *r, const char *s)
{
    return is_text(r) && r->len == strlen(s) && !memcmp(r->str, s, r->len);
}

static int bad_reply(char *diag, size_t diag_len, const char *what)
{
    return slora__diag(diag, diag_len, SLORA_EUNAVAIL, "redis: unexpected reply to %s", what);
}

/* "tenant/name" into the item's names. */
static bool split_id(const char *id, size_t len, struct slora_store_item *it)
{
    const char *slash = memchr(id, '/', len);
    if (!slash)
        return false;
    size_t nt = (size_t)(slash - id), nn = len - nt - 1;
    if (!nt || !nn || nt > SLORA_STORE_NAME_MAX || nn > SLORA_STORE_NAME_MAX)
        return false;
    memcpy(it->tenant, id, nt);
    it->tenant[nt] = '\0';
    memcpy(it->name, slash + 1, nn);
    it->name[nn] = '\0';
    return true;
}

/* ---- writes ----------------------------------------------------------- */

/* Both write scripts refuse to run past ARGV[1], the caller's deadline in
 * the server's clock: a command that sat in a stopped server's socket
 * buffer while the caller got its 503 must not apply later. */
#define DEADLINE_CHECK                                                                             \
    "local t = redis.call('TIME')\n"                                                               \
    "if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[1]) then\n"      \
    "  return {'expired'}\n"                                                                       \
    "end\n"

static const char PUT_SCRIPT[] = DEADLINE_CHECK
    "local cur = redis.call('HMGET', KEYS[1], 'version', 'bytes', 'pinned')\n"
    "local curv = cur[1] or ''\n"
    "if ARGV[9] == '1' and curv ~= ARGV[10] then return {'precond', curv} end\n"
    "local count = tonumber(redis.call('HGET', KEYS[5], 'count') or '0')\n"
    "local bytes = tonumber(redis.call('HGET', KEYS[5], 'bytes') or '0')\n"
    "local maxa, maxb = tonumber(ARGV[11]), tonumber(ARGV[12])\n"
    "if curv == '' and maxa >= 0 and count + 1 > maxa then return {'quota', tostring(count)} end\n"
    "local after = bytes - tonumber(cur[2] or '0') + string.len(ARGV[6])\n"
    "if maxb >= 0 and after > maxb then return {'nospc', tostring(after)} end\n"
    "local pinned = ARGV[8]\n"
    "if pinned == '-1' then pinned = cur[3] or '0' end\n"
    "local rev = redis.call('INCR', KEYS[2])\n"
    "redis.call('HSET', KEYS[1], 'version', ARGV[5], 'rev', rev, 'pinned', pinned,\n"
    "           'created', ARGV[7], 'bytes', string.len(ARGV[6]), 'data', ARGV[6])\n"
    "redis.call('SADD', KEYS[4], ARGV[2])\n"
    "if curv == '' then redis.call('HINCRBY', KEYS[5], 'count', 1) end\n"
    "redis.call('HINCRBY', KEYS[5], 'bytes', after - bytes)\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[13], '*', 'op', 'put', 'tenant', ARGV[3],\n"
    "           'name', ARGV[4], 'version', ARGV[5], 'rev', rev, 'pinned', pinned)\n"
    "return {'ok', tostring(rev), pinned, curv == '' and '1' or '0'}\n";

static const char REMOVE_SCRIPT[] = DEADLINE_CHECK
    "local cur = redis.call('HMGET', KEYS[1], 'version', 'bytes')\n"
    "local curv = cur[1] or ''\n"
    "if ARGV[5] == '1' and curv ~= ARGV[6] then return {'precond', curv} end\n"
    "if curv == '' then return {'notfound'} end\n"
    "local rev = redis.call('INCR', KEYS[2])\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[4], ARGV[2])\n"
    "redis.call('HINCRBY', KEYS[5], 'count', -1)\n"
    "redis.call('HINCRBY', KEYS[5], 'bytes', -tonumber(cur[2] or '0'))\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[7], '*', 'op', 'delete', 'tenant', ARGV[3],\n"
    "           'name', ARGV[4], 'version', '', 'rev', rev)\n"
    "return {'ok', tostring(rev)}\n";

struct write_out {
    const struct slora_store_write *w;
    struct slora_store_result *res;
};

static int parse_write(void *out, const redisReply *r, char *diag, size_t diag_len)
{
    struct write_out *o = out;
    const struct slora_store_write *w = o->w;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return bad_reply(diag, diag_len, "a write");
    const redisReply *status = r->element[0];
    if (reply_is(status, "ok") && r->elements >= 2) {
        o->res->rev = reply_int(r->element[1]);
        o->res->pinned = r->elements >= 3 && reply_int(r->element[2]) == 1;
        o->res->created = r->elements >= 4 && reply_int(r->element[3]) == 1;
        return 0;
    }
    if (reply_is(status, "precond") && r->elements == 2 &&
        reply_copy(r->element[1], o->res->current, sizeof(o->res->current)))
        return slora__diag(diag, diag_len, SLORA_EPRECOND, "%s/%s changed", w->tenant, w->name);
    if (reply_is(status, "expired"))
        return slora__diag(diag, diag_len, SLORA_EUNAVAIL,
                           "adapter store (redis) took too long; %s/%s unchanged, retry", w->tenant,
                           w->name);
    if (reply_is(status, "notfound"))
        return slora__diag(diag, diag_len, SLORA_ENOTFOUND, "adapter %s/%s not found", w->tenant,
                           w->name);
    if (reply_is(status, "quota") && r->elements == 2) {
        o->res->usage = reply_int(r->element[1]);
        return slora__diag(diag, diag_len, SLORA_EQUOTA,
                           "tenant '%s' has %" PRId64 " adapters; quota max_adapters is %" PRId64,
                           w->tenant, o->res->usage, w->max_adapters);
    }
    if (reply_is(status, "nospc") && r->elements == 2) {
        o->res->usage = reply_int(r->element[1]);
        return slora__diag(diag, diag_len, SLORA_ENOSPC,
                           "tenant '%s' would store %" PRId64 " bytes; quota max_bytes is %" PRId64,
                           w->tenant, o->res->usage, w->max_bytes);
    }
    return bad_reply(diag, diag_len, "a write");
}

static int write_eval(struct store_redis *s, const struct slora_store_write *w,
                      struct slora_store_result *res, char *diag, size_t diag_len)
{
    char kadapter[KEY_MAX], krev[KEY_MAX], kstream[KEY_MAX], kids[KEY_MAX], kusage[KEY_MAX];
    char id[2 * SLORA_STORE_NAME_MAX + 2], created[24], pin[8], maxa[24], maxb[24], deadline[24];
    key(s, kadapter, "a:", w->tenant, w->name);
    key(s, krev, "rev", NULL, NULL);
    key(s, kstream, "changes", NULL, NULL);
    key(s, kids, "ids", NULL, NULL);
    key(s, kusage, "q:", w->tenant, NULL);
    snprintf(id, sizeof(id), "%s/%s", w->tenant, w->name);
    snprintf(deadline, sizeof(deadline), "%" PRId64, slora__redis_deadline_ms(s->link));
    snprintf(created, sizeof(created), "%" PRId64, w->created);
    snprintf(pin, sizeof(pin), "%d", w->pin < 0 ? -1 : w->pin > 0);
    snprintf(maxa, sizeof(maxa), "%" PRId64, w->max_adapters < 0 ? -1 : w->max_adapters);
    snprintf(maxb, sizeof(maxb), "%" PRId64, w->max_bytes < 0 ? -1 : w->max_bytes);
    const char *cond = w->expect ? "1" : "0", *expect = w->expect ? w->expect : "";
    struct write_out o = {w, res};
    if (w->buf) {
        const char *argv[] = {"EVAL",  PUT_SCRIPT, "5",       kadapter, krev,     kstream,
                              kids,    kusage,     deadline,  id,       w->tenant, w->name,
                              w->version, w->buf,  created,   pin,      cond,     expect,
                              maxa,    maxb,       s->maxlen};
        size_t n = sizeof(argv) / sizeof(argv[0]), argvlen[sizeof(argv) / sizeof(argv[0])];
        for (size_t i = 0; i < n; i++)
            argvlen[i] = argv[i] == w->buf ? w->len : strlen(argv[i]);
        return slora__redis_call(s->link, SLORA__REDIS_COMMANDS, (int)n, argv, argvlen, 0,
                                 parse_write, &o, diag, diag_len);
    }
    const char *argv[] = {"EVAL", REMOVE_SCRIPT, "5",       kadapter, krev,    kstream,
                          kids,   kusage,        deadline,  id,       w->tenant, w->name,
                          cond,   expect,        s->maxlen};
    return slora__redis_call(s->link, SLORA__REDIS_COMMANDS, (int)(sizeof(argv) / sizeof(argv[0])),
                             argv, NULL, 0, parse_write, &o, diag, diag_len);
}

static int redis_put(struct slora_store *s, const struct slora_store_write *w,
                     struct slora_store_result *res, char *diag, size_t diag_len)
{
    return write_eval(redis_of(s), w, res, diag, diag_len);
}

static int redis_remove(struct slora_store *s, const struct slora_store_write *w,
                        struct slora_store_result *res, char *diag, size_t diag_len)
{
    struct slora_store_write del = *w;
    del.buf = NULL;
    return write_eval(redis_of(s), &del, res, diag, diag_len);
}

/* ---- reads ------------------------------------------------------------ */

struct bytes_out {
    size_t max;
    void *buf;
    size_t len;
};

/* A bulk string into a new buffer of at most max bytes. */
static int take_bytes(struct bytes_out *o, const redisReply *r, char *diag, size_t diag_len)
{
    if (r->len > o->max)
        return slora__diag(diag, diag_len, SLORA_ETOOLARGE,
                           "stored file of %zu bytes exceeds the limit of %zu", r->len, o->max);
    if (!(o->buf = malloc(r->len ? r->len : 1)))
        return SLORA_ENOMEM;
    memcpy(o->buf, r->str, r->len);
    o->len = r->len;
    return 0;
}

static const char GET_SCRIPT[] =
    "local m = redis.call('HMGET', KEYS[1], 'version', 'rev', 'pinned', 'created', 'bytes', "
    "'data')\n"
    "if not m[1] then return {'notfound', redis.call('GET', KEYS[2]) or '0'} end\n"
    "return {'ok', m[1], m[2], m[3], m[4], m[5], m[6]}\n";

struct get_out {
    struct slora_store_item *it;
    struct bytes_out bytes;
};

static int parse_get(void *out, const redisReply *r, char *diag, size_t diag_len)
{
    struct get_out *o = out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2)
        return bad_reply(diag, diag_len, "a lookup");
    if (reply_is(r->element[0], "notfound")) {
        o->it->rev = reply_int(r->element[1]);
        return slora__diag(diag, diag_len, SLORA_ENOTFOUND, "adapter %s/%s not found",
                           o->it->tenant, o->it->name);
    }
    if (!reply_is(r->element[0], "ok") || r->elements != 7 ||
        !reply_copy(r->element[1], o->it->version, sizeof(o->it->version)) ||
        r->element[6]->type != REDIS_REPLY_STRING)
        return bad_reply(diag, diag_len, "a lookup");
    o->it->rev = reply_int(r->element[2]);
    o->it->pinned = reply_int(r->element[3]) == 1;
    o->it->created = reply_int(r->element[4]);
    o->it->bytes = reply_int(r->element[5]);
    return take_bytes(&o->bytes, r->element[6], diag, diag_len);
}

static int redis_get(struct slora_store *st, const char *tenant, const char *name, size_t max,
                     struct slora_store_item *it, void **buf, size_t *len, char *diag,
                     size_t diag_len)
{
    struct store_redis *s = redis_of(st);
    *it = (struct slora_store_item){.rev = 0};
    snprintf(it->tenant, sizeof(it->tenant), "%s", tenant);
    snprintf(it->name, sizeof(it->name), "%s", name);
    char ka[KEY_MAX], krev[KEY_MAX];
    key(s, ka, "a:", tenant, name);
    key(s, krev, "rev", NULL, NULL);
    const char *argv[] = {"EVAL", GET_SCRIPT, "2", ka, krev};
    struct get_out o = {it, {.max = max}};
    int rc = slora__redis_call(s->link, SLORA__REDIS_COMMANDS, 5, argv, NULL, 0, parse_get, &o,
                               diag, diag_len);
    *buf = o.bytes.buf;
    *len = o.bytes.len;
    return rc;
}

static int redis_read(struct slora_store *st, const char *tenant, const char *name, size_t max,
                      void **out, size_t *len, char *diag, size_t diag_len)
{
    struct slora_store_item it;
    return redis_get(st, tenant, name, max, &it, out, len, diag, diag_len);
}

/* ---- scan ------------------------------------------------------------- */

static const char SNAPSHOT_SCRIPT[] =
    "local rev = redis.call('GET', KEYS[1]) or '0'\n"
    "local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)\n"
    "local out = {rev, '0-0'}\n"
    "if #last > 0 then out[2] = last[1][1] end\n"
    "for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do\n"
    "  local m = redis.call('HMGET', ARGV[1] .. id, 'version', 'rev', 'pinned', 'created', "
    "'bytes')\n"
    "  if m[1] then\n"
    "    table.insert(out, id)\n"
    "    for i = 1, 5 do table.insert(out, m[i]) end\n"
    "  end\n"
    "end\n"
    "return out\n";

#define SNAPSHOT_FIELDS 6 /* id, version, rev, pinned, created, bytes */

struct snapshot_out {
    struct slora_store_cursor cur;
    struct slora_store_item *items; /* (n) */
    size_t n;
    int bad; /* malformed entries skipped */
};

static int parse_snapshot(void *out, const redisReply *r, char *diag, size_t diag_len)
{
    struct snapshot_out *o = out;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        (r->elements - 2) % SNAPSHOT_FIELDS ||
        !reply_copy(r->element[1], o->cur.id, sizeof(o->cur.id)))
        return bad_reply(diag, diag_len, "the snapshot");
    o->cur.rev = reply_int(r->element[0]);
    size_t n = (r->elements - 2) / SNAPSHOT_FIELDS;
    if (!(o->items = calloc(n ? n : 1, sizeof(*o->items))))
        return SLORA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        redisReply **f = &r->element[2 + i * SNAPSHOT_FIELDS];
        struct slora_store_item *it = &o->items[o->n];
        if (!is_text(f[0]) || !split_id(f[0]->str, f[0]->len, it) ||
            !reply_copy(f[1], it->version, sizeof(it->version))) {
            o->bad++;
            continue;
        }
        it->rev = reply_int(f[2]);
        it->pinned = reply_int(f[3]) == 1;
        it->created = reply_int(f[4]);
        it->bytes = reply_int(f[5]);
        o->n++;
    }
    return 0;
}

static int redis_scan(struct slora_store *st, size_t max, slora_store_want_cb want,
                      slora_store_scan_cb cb, void *arg, struct slora_store_cursor *cur,
                      struct slora_store_scan_report *rep, char *diag, size_t diag_len)
{
    struct store_redis *s = redis_of(st);
    char krev[KEY_MAX], kstream[KEY_MAX], kids[KEY_MAX], kprefix[KEY_MAX];
    key(s, krev, "rev", NULL, NULL);
    key(s, kstream, "changes", NULL, NULL);
    key(s, kids, "ids", NULL, NULL);
    key(s, kprefix, "a:", NULL, NULL);
    const char *argv[] = {"EVAL", SNAPSHOT_SCRIPT, "3", krev, kstream, kids, kprefix};
    struct snapshot_out o = {.n = 0};
    int rc = slora__redis_call(s->link, SLORA__REDIS_COMMANDS, 7, argv, NULL, 0, parse_snapshot,
                               &o, diag, diag_len);
    if (rc < 0)
        goto out_free;
    rep->skipped = o.bad;
    for (size_t i = 0; i < o.n; i++) {
        struct slora_store_item *it = &o.items[i];
        rep->listed++;
        if (want && !want(arg, it)) {
            cb(arg, it, NULL, 0);
            continue;
        }
        /* Its bytes as stored now: a newer version than the snapshot's is
         * fine (its stream entry follows the cursor), a deleted one too. */
        struct slora_store_item now;
        void *buf;
        size_t len;
        char why[256];
        rc = redis_get(st, it->tenant, it->name, max, &now, &buf, &len, why, sizeof(why));
        if (rc == SLORA_ENOTFOUND)
            continue;
        if (rc == SLORA_EUNAVAIL || rc == SLORA_ENOMEM) {
            snprintf(diag, diag_len, "%s", why);
            goto out_free;
        }
        if (rc < 0) {
            slora_warn("store scan: skipping %s/%s: %s", it->tenant, it->name, why);
            rep->skipped++;
            continue;
        }
        cb(arg, &now, buf, len);
        free(buf);
    }
    rc = 0;
    if (cur)
        *cur = o.cur;
out_free:
    free(o.items);
    return rc;
}

/* ---- change stream ------------------------------------------------------ */

struct changes_out {
    struct slora_store_cursor *cur;
    struct slora_store_event *ev;
    size_t max;
    size_t *n;
    bool *gap;
    bool empty; /* the XREAD timed out without entries */
};

/* One entry [id, [field, value, ...]] into ev; false when malformed. */
static bool parse_entry(const redisReply *e, struct slora_store_event *ev, char *id,
                        size_t id_len)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !reply_copy(e->element[0], id, id_len))
        return false;
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2)
        return false;
    *ev = (struct slora_store_event){.rev = 0};
    bool op = false, tenant = false, name = false;
    for (size_t i = 0; i < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (reply_is(k, "op")) {
            op = reply_is(v, "put") || reply_is(v, "delete");
            ev->deleted = reply_is(v, "delete");
        } else if (reply_is(k, "tenant")) {
            tenant = reply_copy(v, ev->tenant, sizeof(ev->tenant)) && ev->tenant[0];
        } else if (reply_is(k, "name")) {
            name = reply_copy(v, ev->name, sizeof(ev->name)) && ev->name[0];
        } else if (reply_is(k, "version")) {
            reply_copy(v, ev->version, sizeof(ev->version));
        } else if (reply_is(k, "rev")) {
            ev->rev = reply_int(v);
        } else if (reply_is(k, "pinned")) {
            ev->pinned = reply_int(v) == 1;
        }
    }
    return op && tenant && name && ev->rev > 0;
}

static int parse_changes(void *out, const redisReply *r, char *diag, size_t diag_len)
{
    struct changes_out *o = out;
    if (r->type == REDIS_REPLY_NIL) {
        o->empty = true;
        return 0;
    }
    /* [[stream, [entry, ...]]] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
        r->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
        return bad_reply(diag, diag_len, "XREAD");
    const redisReply *entries = r->element[0]->element[1];
    o->empty = entries->elements == 0;
    for (size_t i = 0; i < entries->elements && *o->n < o->max; i++) {
        struct slora_store_event *ev = &o->ev[*o->n];
        char id[sizeof(o->cur->id)];
        if (!parse_entry(entries->element[i], ev, id, sizeof(id)))
            return bad_reply(diag, diag_len, "XREAD (a malformed stream entry)");
        if (ev->rev != o->cur->rev + 1) {
            *o->gap = true; /* entries between were trimmed: rescan */
            return 0;
        }
        memcpy(o->cur->id, id, sizeof(id));
        o->cur->rev = ev->rev;
        (*o->n)++;
    }
    return 0;
}

static int parse_int(void *out, const redisReply *r, char *diag, size_t diag_len)
{
    (void)diag;
    (void)diag_len;
    *(int64_t *)out = r->type == REDIS_REPLY_NIL ? 0 : reply_int(r);
    return 0;
}

static int redis_changes(struct slora_store *st, struct slora_store_cursor *cur,
                         struct slora_store_event *ev, size_t max, size_t *n, bool *gap,
                         int wait_ms, char *diag, size_t diag_len)
{
    struct store_redis *s = redis_of(st);
    char kstream[KEY_MAX], krev[KEY_MAX], count[24], block[24];
    key(s, kstream, "changes", NULL, NULL);
    key(s, krev, "rev", NULL, NULL);
    snprintf(count, sizeof(count), "%zu", max < SCAN_BATCH ? max : SCAN_BATCH);
    snprintf(block, sizeof(block), "%d", wait_ms);
    struct changes_out o = {cur, ev, max, n, gap, false};
    const char *xread[] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", kstream, cur->id};
    int rc = slora__redis_call(s->link, SLORA__REDIS_FEED, 8, xread, NULL, wait_ms, parse_changes,
                               &o, diag, diag_len);
    if (rc < 0 || !o.empty)
        return rc;
    /* Nothing after the cursor: is that because nothing happened? A lower
     * revision means the server lost its data, a higher one that what came
     * after the cursor was trimmed before it could be read. */
    int64_t rev = 0;
    const char *get[] = {"GET", krev};
    rc = slora__redis_call(s->link, SLORA__REDIS_FEED, 2, get, NULL, 0, parse_int, &rev, diag,
                           diag_len);
    if (rc < 0 || rev == cur->rev)
        return rc;
    if (rev < cur->rev) {
        *gap = true;
        return 0;
    }
    const char *again[] = {"XREAD", "COUNT", count, "STREAMS", kstream, cur->id};
    o.empty = false;
    rc = slora__redis_call(s->link, SLORA__REDIS_FEED, 6, again, NULL, 0, parse_changes, &o, diag,
                           diag_len);
    if (rc == 0 && o.empty)
        *gap = true;
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------- */

static void redis_stats(struct slora_store *s, struct slora_store_stats *out)
{
    slora__redis_stats(redis_of(s)->link, out);
}

static void redis_free(struct slora_store *st)
{
    struct store_redis *s = redis_of(st);
    slora__redis_stop(s->link);
    free(s);
}

static const struct slora_store_ops redis_ops = {
    .kind = "redis",
    .shared = true,
    .put = redis_put,
    .remove = redis_remove,
    .read = redis_read,
    .scan = redis_scan,
    .changes = redis_changes,
    .get = redis_get,
    .stats = redis_stats,
    .free = redis_free,
};

/* redis://host:port[/db]; credentials never in the URL (password_file). */
static int parse_url(const char *url, struct slora__redis_target *t, char *diag, size_t diag_len)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof(scheme) - 1))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "store url must be redis://host:port[/db] (got a different scheme)");
    const char *host = url + sizeof(scheme) - 1;
    if (strchr(host, '@'))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "store url must not carry credentials: use store.password_file");
    const char *colon = strrchr(host, ':'), *slash = strchr(host, '/');
    if (!colon || (slash && colon > slash) || colon == host ||
        (size_t)(colon - host) >= sizeof(t->host))
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "store url must be redis://host:port[/db] with a port");
    memcpy(t->host, host, (size_t)(colon - host));
    t->host[colon - host] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
        return slora__diag(diag, diag_len, SLORA_EINVAL, "store url: port must be 1..65535");
    t->port = (int)port;
    t->db = 0;
    if (*end == '/' && end[1]) {
        const char *dbs = end + 1;
        long db = strtol(dbs, &end, 10);
        if (end == dbs || *end || db < 0 || db > 1000000)
            return slora__diag(diag, diag_len, SLORA_EINVAL,
                               "store url: the database after '/' must be a number");
        t->db = (int)db;
    }
    return 0;
}

/* First line of the file, without its newline. */
static int read_password(const char *path, char *out, size_t out_len, char *diag, size_t diag_len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return slora__diag(diag, diag_len, SLORA_EINVAL, "store.password_file %s: cannot open",
                           path);
    bool ok = fgets(out, (int)out_len, f) != NULL;
    fclose(f);
    out[ok ? strcspn(out, "\r\n") : 0] = '\0';
    if (!out[0])
        return slora__diag(diag, diag_len, SLORA_EINVAL, "store.password_file %s is empty", path);
    return 0;
}

int slora__store_redis_open(const struct slora_store_options *opt, struct slora_store **out,
                            char *diag, size_t diag_len)
{
    struct slora__redis_target t = {.timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 1000};
    int rc = parse_url(opt->url ? opt->url : "", &t, diag, diag_len);
    if (rc < 0)
        return rc;
    const char *prefix = opt->prefix ? opt->prefix : "slorad:";
    if (strlen(prefix) > PREFIX_MAX)
        return slora__diag(diag, diag_len, SLORA_EINVAL, "store.prefix is longer than %d bytes",
                           PREFIX_MAX);
    char password[512] = "";
    if (opt->password_file &&
        (rc = read_password(opt->password_file, password, sizeof(password), diag, diag_len)))
        return rc;
    t.password = password[0] ? password : NULL;
    struct store_redis *s = calloc(1, sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    s->base.ops = &redis_ops;
    snprintf(s->prefix, sizeof(s->prefix), "%s", prefix);
    snprintf(s->maxlen, sizeof(s->maxlen), "%" PRId64,
             opt->stream_max_len > 0 ? opt->stream_max_len : 10000);
    rc = slora__redis_start(&t, &s->link, diag, diag_len);
    explicit_bzero(password, sizeof(password));
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = &s->base;
    return 0;
}
