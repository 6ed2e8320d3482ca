/* check_store.c - the store interface against both kinds: the state
 * directory and Redis (a real redis-server the fixture starts on a free
 * loopback port, in a fresh directory, for every test). Round trips,
 * removal and scans for both (loop tests, _i: 0 dir, 1 redis); Redis
 * alone: the atomic precondition and quota checks, the change stream's
 * consecutive revisions and the gap a trim leaves, lookups, and a server
 * that is absent or stopped (SIGSTOP) failing calls with SLORA_EUNAVAIL
 * instead of hanging them. Bad store URLs are refused.
 */
#include <slora/error.h>
#include <slora/store.h>

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char dir[64];
static int redis_port;
static pid_t redis_pid;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t n = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &n);
    close(fd);
    return ntohs(a.sin_port);
}

static bool port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/slora-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    redis_port = free_port();
    char port[16], log[96];
    snprintf(port, sizeof(port), "%d", redis_port);
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    char *argv[] = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", dir, "--logfile", log, NULL};
    ck_assert_msg(posix_spawnp(&redis_pid, "redis-server", NULL, NULL, argv, environ) == 0,
                  "redis-server (Debian package redis-server) must be installed");
    for (int i = 0; i < 400 && !port_open(redis_port); i++)
        usleep(10000);
    ck_assert_msg(port_open(redis_port), "redis-server did not start on port %d", redis_port);
}

static void teardown(void)
{
    kill(redis_pid, SIGCONT);
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct slora_store *open_kind(bool redis, int port, int64_t max_len)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    struct slora_store_options o = {
        .kind = redis ? SLORA_STORE_REDIS : SLORA_STORE_DIR,
        .dir = dir,
        .url = url,
        .prefix = "t:",
        .timeout_ms = 300,
        .stream_max_len = max_len,
    };
    struct slora_store *s;
    char diag[256] = "";
    ck_assert_msg(slora_store_open(&o, &s, diag, sizeof(diag)) == 0, "open: %s", diag);
    return s;
}

static int put(struct slora_store *s, const char *name, const char *body, const char *version,
               const char *expect, struct slora_store_result *res)
{
    struct slora_store_write w = {.tenant = "acme", .name = name, .buf = body,
                                  .len = strlen(body), .version = version, .created = 1700000000,
                                  .pin = -1, .expect = expect, .max_adapters = -1,
                                  .max_bytes = -1};
    char diag[256];
    return slora_store_put(s, &w, res, diag, sizeof(diag));
}

static int del(struct slora_store *s, const char *name, const char *expect,
               struct slora_store_result *res)
{
    struct slora_store_write w = {.tenant = "acme", .name = name, .expect = expect,
                                  .max_adapters = -1, .max_bytes = -1};
    char diag[256];
    return slora_store_remove(s, &w, res, diag, sizeof(diag));
}

static void expect_read(struct slora_store *s, const char *name, const char *body)
{
    void *buf;
    size_t len;
    char diag[256];
    ck_assert_int_eq(slora_store_read(s, "acme", name, 1 << 20, &buf, &len, diag, sizeof(diag)),
                     0);
    ck_assert_uint_eq(len, strlen(body));
    ck_assert(!memcmp(buf, body, len));
    free(buf);
}

struct seen {
    int n;
    char names[8][SLORA_STORE_NAME_MAX + 1];
    char bodies[8][32];
    char versions[8][SLORA_STORE_VERSION_LEN + 1];
};

static void collect(void *arg, const struct slora_store_item *it, const void *buf, size_t len)
{
    struct seen *s = arg;
    ck_assert_int_lt(s->n, 8);
    ck_assert_str_eq(it->tenant, "acme");
    ck_assert_uint_eq((size_t)it->bytes, len);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", it->name);
    snprintf(s->bodies[s->n], sizeof(s->bodies[0]), "%.*s", (int)len, (const char *)buf);
    snprintf(s->versions[s->n], sizeof(s->versions[0]), "%s", it->version);
    s->n++;
}

/* Put, read, replace, scan, remove: the same through both kinds. */
START_TEST(round_trip)
{
    bool redis = _i == 1;
    struct slora_store *s = open_kind(redis, redis_port, 100);
    ck_assert_str_eq(slora_store_kind_name(s), redis ? "redis" : "dir");
    ck_assert(slora_store_is_shared(s) == redis);
    struct slora_store_result res;
    ck_assert_int_eq(put(s, "one", "first bytes", "00000000000000a1", NULL, &res), 0);
    ck_assert_int_eq(res.rev, redis ? 1 : 0);
    ck_assert_int_eq(put(s, "two", "other", "00000000000000b1", NULL, &res), 0);
    ck_assert_int_eq(put(s, "one", "second bytes", "00000000000000a2", NULL, &res), 0);
    ck_assert_int_eq(res.rev, redis ? 3 : 0);
    expect_read(s, "one", "second bytes");
    struct seen seen = {0};
    struct slora_store_scan_report rep;
    char diag[256] = "";
    ck_assert_int_eq(slora_store_scan(s, 1 << 20, NULL, collect, &seen, NULL, &rep, diag,
                                      sizeof(diag)),
                     0);
    ck_assert_int_eq(rep.listed, 2);
    ck_assert_int_eq(seen.n, 2);
    int one = strcmp(seen.names[0], "one") ? 1 : 0;
    ck_assert_str_eq(seen.names[one], "one");
    ck_assert_str_eq(seen.bodies[one], "second bytes");
    ck_assert_str_eq(seen.versions[one], redis ? "00000000000000a2" : "");
    ck_assert_int_eq(del(s, "one", NULL, &res), 0);
    void *buf;
    size_t len;
    ck_assert_int_eq(slora_store_read(s, "acme", "one", 1 << 20, &buf, &len, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    ck_assert_int_eq(slora_store_read(s, "acme", "two", 3, &buf, &len, diag, sizeof(diag)),
                     SLORA_ETOOLARGE);
    slora_store_free(s);
    /* what was stored outlives the process that stored it */
    s = open_kind(redis, redis_port, 100);
    expect_read(s, "two", "other");
    slora_store_free(s);
}
END_TEST

/* Preconditions and quotas are checked by the write itself. */
START_TEST(redis_conditions_and_quotas)
{
    struct slora_store *s = open_kind(true, redis_port, 100);
    struct slora_store_result res;
    ck_assert_int_eq(put(s, "one", "aaaa", "00000000000000a1", "", &res), 0);
    ck_assert(res.created);
    ck_assert_int_eq(put(s, "one", "bbbb", "00000000000000b1", "", &res), SLORA_EPRECOND);
    ck_assert_str_eq(res.current, "00000000000000a1");
    ck_assert_int_eq(put(s, "one", "bbbb", "00000000000000b1", "0000000000000000", &res),
                     SLORA_EPRECOND);
    ck_assert_int_eq(put(s, "one", "bbbb", "00000000000000b1", "00000000000000a1", &res), 0);
    ck_assert(!res.created);
    ck_assert_int_eq(del(s, "one", "00000000000000a1", &res), SLORA_EPRECOND);
    ck_assert_str_eq(res.current, "00000000000000b1");
    ck_assert_int_eq(del(s, "absent", NULL, &res), SLORA_ENOTFOUND);

    struct slora_store_write w = {.tenant = "acme", .name = "two", .buf = "cc", .len = 2,
                                  .version = "00000000000000c1", .pin = 1, .max_adapters = 1,
                                  .max_bytes = -1};
    char diag[256];
    ck_assert_int_eq(slora_store_put(s, &w, &res, diag, sizeof(diag)), SLORA_EQUOTA);
    ck_assert_int_eq(res.usage, 1);
    ck_assert_ptr_nonnull(strstr(diag, "quota max_adapters is 1"));
    w.max_adapters = 2;
    w.max_bytes = 5; /* 4 stored + 2 */
    ck_assert_int_eq(slora_store_put(s, &w, &res, diag, sizeof(diag)), SLORA_ENOSPC);
    ck_assert_int_eq(res.usage, 6);
    w.max_bytes = 6;
    ck_assert_int_eq(slora_store_put(s, &w, &res, diag, sizeof(diag)), 0);
    ck_assert(res.pinned);
    /* the pin flag is kept by a replacement that does not say */
    w.pin = -1;
    w.buf = "dd";
    w.version = "00000000000000d1";
    ck_assert_int_eq(slora_store_put(s, &w, &res, diag, sizeof(diag)), 0);
    ck_assert(res.pinned);
    struct slora_store_item it;
    void *buf;
    size_t len;
    ck_assert_int_eq(slora_store_get(s, "acme", "two", 100, &it, &buf, &len, diag, sizeof(diag)),
                     0);
    ck_assert_str_eq(it.version, "00000000000000d1");
    ck_assert(it.pinned);
    ck_assert_int_eq(it.rev, res.rev);
    ck_assert_uint_eq(len, 2);
    free(buf);
    ck_assert_int_eq(del(s, "two", NULL, &res), 0);
    ck_assert_int_eq(slora_store_get(s, "acme", "two", 100, &it, &buf, &len, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    ck_assert_int_eq(it.rev, res.rev);
    slora_store_free(s);
}
END_TEST

/* The stream announces every write in order; a trim shows as a gap. */
START_TEST(redis_change_stream)
{
    struct slora_store *s = open_kind(true, redis_port, 2);
    struct slora_store_cursor cur;
    struct slora_store_scan_report rep;
    struct seen seen = {0};
    char diag[256];
    ck_assert_int_eq(slora_store_scan(s, 100, NULL, collect, &seen, &cur, &rep, diag,
                                      sizeof(diag)),
                     0);
    ck_assert_int_eq(cur.rev, 0);
    struct slora_store_result res;
    ck_assert_int_eq(put(s, "one", "aaaa", "00000000000000a1", NULL, &res), 0);
    ck_assert_int_eq(del(s, "one", NULL, &res), 0);
    struct slora_store_event ev[8];
    size_t n;
    bool gap;
    ck_assert_int_eq(slora_store_changes(s, &cur, ev, 8, &n, &gap, 100, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(!gap);
    ck_assert(!ev[0].deleted && ev[1].deleted);
    ck_assert_str_eq(ev[0].name, "one");
    ck_assert_str_eq(ev[0].version, "00000000000000a1");
    ck_assert_int_eq(ev[0].rev, 1);
    ck_assert_int_eq(ev[1].rev, 2);
    ck_assert_int_eq(cur.rev, 2);
    /* nothing new: the blocking read times out empty */
    ck_assert_int_eq(slora_store_changes(s, &cur, ev, 8, &n, &gap, 50, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert(!gap);
    /* three writes into a stream that keeps two: the first one is gone */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(put(s, "one", i ? "bbbb" : "cccc", "00000000000000b1", NULL, &res), 0);
    ck_assert_int_eq(slora_store_changes(s, &cur, ev, 8, &n, &gap, 100, diag, sizeof(diag)), 0);
    ck_assert(gap);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(cur.rev, 2);
    /* a rescan gives the position to follow from */
    ck_assert_int_eq(slora_store_scan(s, 100, NULL, collect, &seen, &cur, &rep, diag,
                                      sizeof(diag)),
                     0);
    ck_assert_int_eq(cur.rev, 5);
    ck_assert_int_eq(put(s, "two", "dd", "00000000000000d1", NULL, &res), 0);
    ck_assert_int_eq(slora_store_changes(s, &cur, ev, 8, &n, &gap, 100, diag, sizeof(diag)), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(!gap);
    ck_assert_int_eq(ev[0].rev, 6);
    slora_store_free(s);
}
END_TEST

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process is in state T (stopped): the signal has taken effect. */
static bool is_stopped(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'T';
}

/* A stopped server (SIGSTOP: TCP still accepts) and an absent one fail
 * calls with SLORA_EUNAVAIL; a write sent to the stopped one does not
 * apply when it resumes. */
START_TEST(redis_unreachable)
{
    struct slora_store *s = open_kind(true, redis_port, 100);
    struct slora_store_stats st;
    slora_store_stats(s, &st);
    ck_assert(st.up);
    ck_assert_int_eq(kill(redis_pid, SIGSTOP), 0);
    for (int i = 0; i < 1000 && !is_stopped(redis_pid); i++)
        usleep(1000);
    ck_assert(is_stopped(redis_pid));
    struct slora_store_result res;
    ck_assert_int_eq(put(s, "late", "aaaa", "00000000000000a1", NULL, &res), SLORA_EUNAVAIL);
    slora_store_stats(s, &st);
    ck_assert(!st.up);
    ck_assert_uint_ge(st.timeouts, 1);
    ck_assert_int_eq(put(s, "late", "aaaa", "00000000000000a1", NULL, &res), SLORA_EUNAVAIL);
    ck_assert_int_eq(kill(redis_pid, SIGCONT), 0);
    double t0 = now_s();
    do {
        usleep(20000);
        slora_store_stats(s, &st);
    } while (!st.up && now_s() - t0 < 30);
    ck_assert(st.up);
    void *buf;
    size_t len;
    char diag[256];
    ck_assert_int_eq(slora_store_read(s, "acme", "late", 100, &buf, &len, diag, sizeof(diag)),
                     SLORA_ENOTFOUND);
    slora_store_free(s);

    s = open_kind(true, free_port(), 100); /* nobody listens there */
    slora_store_stats(s, &st);
    ck_assert(!st.up);
    ck_assert_int_eq(put(s, "one", "aaaa", "00000000000000a1", NULL, &res), SLORA_EUNAVAIL);
    slora_store_free(s);
}
END_TEST

static const struct {
    const char *url;
    const char *msg;
} bad_urls[] = {
    {"http://127.0.0.1:6379", "redis://host:port"},
    {"redis://user:pw@127.0.0.1:6379", "password_file"},
    {"redis://127.0.0.1", "with a port"},
    {"redis://127.0.0.1:0", "port must be"},
    {"redis://127.0.0.1:70000", "port must be"},
    {"redis://127.0.0.1:6379/x", "database"},
};

START_TEST(bad_url_table)
{
    struct slora_store_options o = {.kind = SLORA_STORE_REDIS, .url = bad_urls[_i].url};
    struct slora_store *s = NULL;
    char diag[256] = "";
    ck_assert_int_eq(slora_store_open(&o, &s, diag, sizeof(diag)), SLORA_EINVAL);
    ck_assert_msg(strstr(diag, bad_urls[_i].msg), "%s: %s", bad_urls[_i].url, diag);
    ck_assert_ptr_null(s);
}
END_TEST

Suite *slora_store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, round_trip, 0, 2);
    tcase_add_test(tc, redis_conditions_and_quotas);
    tcase_add_test(tc, redis_change_stream);
    tcase_add_test(tc, redis_unreachable);
    tcase_add_loop_test(tc, bad_url_table, 0, sizeof(bad_urls) / sizeof(bad_urls[0]));
    suite_add_tcase(s, tc);
    return s;
}
