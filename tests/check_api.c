/* check_api.c - the API layer without a socket: a fake host runs worker
 * jobs inline and records wakes. Routing (404, 405 + Allow, captures),
 * the JSON error shape, auth per route, query parsing, streaming from
 * another thread, cancellation, and that output is handed over once. */
#include <slora/api.h>
#include <slora/api_infer.h>
#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_host {
    int wakes;
    int works;
};

static int fake_queue_work(void *host, slora_api_work_cb work, slora_api_done_cb done, void *arg)
{
    struct fake_host *h = host;
    h->works++;
    work(arg);
    done(arg);
    return 0;
}

static void fake_wake(void *host, struct slora_api_call *c)
{
    struct fake_host *h = host;
    __atomic_add_fetch(&h->wakes, 1, __ATOMIC_RELAXED);
    slora_api_call_unref(c); /* the wake's reference */
}

static const struct slora_api_host fake = {fake_queue_work, fake_wake};

struct response {
    int status;
    char headers[512];
    char body[65536];
    bool stream;
    int n_done;
};

/* Run one request through head + dispatch and collect all output. */
static void run(struct slora_api *api, struct fake_host *host, enum slora_api_method m,
                const char *method_name, const char *path, const char *query, const char *auth,
                struct response *r)
{
    struct slora_api_request req = {
        .method = m,
        .method_name = method_name,
        .path = path,
        .query = query,
        .authorization = auth,
        .request_id = "t1",
        .content_length = -1,
    };
    memset(r, 0, sizeof(*r));
    struct slora_api_call *c = slora_api_call_new(api, &fake, host, &req);
    ck_assert_ptr_nonnull(c);
    if (slora_api_call_head(c) == 0)
        slora_api_call_dispatch(c, NULL, 0);
    struct slora_api_output out;
    while (slora_api_call_take(c, &out)) {
        if (out.has_head) {
            r->status = out.status;
            r->stream = out.stream;
            for (int i = 0; i < out.n_headers; i++) {
                strcat(r->headers, out.headers[i].name);
                strcat(r->headers, ": ");
                strcat(r->headers, out.headers[i].value);
                strcat(r->headers, "\n");
            }
        }
        if (out.data)
            strncat(r->body, out.data, out.len);
        free(out.data);
        r->n_done += out.done;
    }
    slora_api_call_finish(c, r->status, strlen(r->body), 0.001);
    slora_api_call_unref(c);
}

static void echo_handler(struct slora_api_call *c)
{
    char body[256];
    const char *dry = slora_api_call_query(c, "dry_run");
    const char *pin = slora_api_call_query(c, "pin");
    const char *none = slora_api_call_query(c, "none");
    snprintf(body, sizeof(body), "%s|%s|dry=%s|pin=%s|none=%s", slora_api_call_param(c, 0),
             slora_api_call_param(c, 1), dry ? dry : "NULL", pin ? pin : "NULL",
             none ? none : "NULL");
    slora_api_call_set_header(c, "ETag", "\"v1\"");
    slora_api_call_respond(c, 200, "text/plain", strdup(body), strlen(body));
}

struct stream_job {
    struct slora_api_call *call;
    pthread_t thread;
};

static void *stream_thread(void *arg)
{
    struct stream_job *j = arg;
    slora_api_call_stream_begin(j->call, 200, "text/event-stream");
    for (int i = 0; i < 3; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "data: %d\n\n", i);
        ck_assert_int_eq(slora_api_call_stream_write(j->call, line, (size_t)n), 0);
    }
    slora_api_call_stream_end(j->call);
    return NULL;
}

static void stream_handler(struct slora_api_call *c)
{
    struct stream_job j = {.call = c};
    pthread_create(&j.thread, NULL, stream_thread, &j);
    pthread_join(j.thread, NULL);
}

static void never_handler(struct slora_api_call *c)
{
    (void)c; /* completed later by the test */
}

/* /tenant/{t}/{ok|missing}: names tenant t, then succeeds or fails. */
static void tenant_handler(struct slora_api_call *c)
{
    slora_api_call_set_log(c, slora_api_call_param(c, 0), slora_api_call_param(c, 1), NULL);
    if (strcmp(slora_api_call_param(c, 1), "ok")) {
        slora_api_call_error(c, SLORA_ENOTFOUND, "no such adapter");
        return;
    }
    slora_api_call_respond(c, 200, "text/plain", strdup("ok"), 2);
}

static const struct slora_api_route test_routes[] = {
    {SLORA_API_GET, "/t/{a}/{b}", "echo", SLORA_API_AUTH_NONE, NULL, echo_handler},
    {SLORA_API_POST, "/t/{a}/{b}", "echo_post", SLORA_API_AUTH_NONE, NULL, echo_handler},
    {SLORA_API_POST, "/stream", "stream", SLORA_API_AUTH_ANY, NULL, stream_handler},
    {SLORA_API_POST, "/never", "never", SLORA_API_AUTH_NONE, NULL, never_handler},
    {SLORA_API_GET, "/tenant/{t}/{outcome}", "tenant", SLORA_API_AUTH_NONE, NULL, tenant_handler},
};

static struct slora_api *new_api(struct slora_config **cfg_out, const char *json)
{
    struct slora_config *cfg = slora_config_new_defaults();
    char diag[256];
    if (json)
        ck_assert_int_eq(slora_config_apply_json(cfg, json, strlen(json), diag, sizeof(diag)), 0);
    struct slora_api_deps deps = {.model_id = "base", .auth = cfg->auth, .config = cfg};
    struct slora_api *api = slora_api_new(&deps);
    ck_assert_ptr_nonnull(api);
    ck_assert_int_eq(slora_api_add_routes(api, test_routes, 5), 0);
    *cfg_out = cfg;
    return api;
}

START_TEST(routing)
{
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, NULL);
    struct fake_host host = {0};
    struct response r;

    run(api, &host, SLORA_API_GET, "GET", "/t/x/y", "dry_run=1&pin&x=2", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "x|y|dry=1|pin=|none=NULL");
    ck_assert_str_eq(r.headers, "ETag: \"v1\"\n");
    ck_assert_int_eq(r.n_done, 1);

    run(api, &host, SLORA_API_GET, "GET", "/t/x", "", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(r.body, "{\"error\":{\"message\":\"no such endpoint: /t/x\",\"type\":"
                             "\"not_found_error\",\"code\":\"notfound\"}}\n");

    run(api, &host, SLORA_API_DELETE, "DELETE", "/t/x/y", "", NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(r.headers, "Allow: GET, HEAD, POST\n");
    ck_assert_ptr_nonnull(strstr(r.body, "\"type\":\"invalid_request_error\",\"code\":\"method\""));

    run(api, &host, SLORA_API_GET, "GET", "/healthz", "", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}\n");

    run(api, &host, SLORA_API_GET, "GET", "/readyz", "", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    slora_api_set_ready(api, true);
    run(api, &host, SLORA_API_GET, "GET", "/readyz", "", NULL, &r);
    ck_assert_int_eq(r.status, 200);

    run(api, &host, SLORA_API_GET, "GET", "/v1/adapters/a/b", "", NULL, &r);
    ck_assert_int_eq(r.status, 503); /* no registry */

    run(api, &host, SLORA_API_GET, "GET", "/metrics", "", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(
        strstr(r.body, "slorad_requests_total{route=\"echo\",status=\"200\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(r.body, "slorad_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "slorad_request_duration_seconds_count 7\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "slorad_response_bytes_total "));
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

#define ADMIN_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  /* "test" */
#define TENANT_HEX "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" /* "secret"  \
                                                                                       */

struct auth_case {
    const char *path;
    enum slora_api_method method;
    const char *auth;
    int status;
    const char *fragment;
};

static const struct auth_case auth_cases[] = {
    {"/healthz", SLORA_API_GET, NULL, 200, "ok"},
    {"/metrics", SLORA_API_GET, NULL, 401, "authentication_error"},
    {"/metrics", SLORA_API_GET, "Bearer nope", 401, "unknown API key"},
    {"/metrics", SLORA_API_GET, "Basic dGVzdA==", 401, "expected 'Authorization: Bearer <key>'"},
    {"/metrics", SLORA_API_GET, "Bearer secret", 403, "permission_error"},
    {"/metrics", SLORA_API_GET, "Bearer test", 200, "slorad_open_connections"},
    {"/v1/models", SLORA_API_GET, NULL, 401, "authentication_error"},
    {"/v1/models", SLORA_API_GET, "Bearer secret", 200, "\"id\":\"base\""},
    {"/stream", SLORA_API_POST, NULL, 401, "authentication_error"},
};

START_TEST(auth_per_route)
{
    const struct auth_case *a = &auth_cases[_i];
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, "{\"admin_key_sha256\": \"" ADMIN_HEX
                                          "\", \"tenants\": [{\"name\": \"acme\", "
                                          "\"key_sha256\": \"" TENANT_HEX "\"}]}");
    struct fake_host host = {0};
    struct response r;
    run(api, &host, a->method, "X", a->path, "", a->auth, &r);
    ck_assert_msg(r.status == a->status, "%s %s: %d", a->path, a->auth, r.status);
    ck_assert_msg(strstr(r.body, a->fragment), "%s: body %s", a->path, r.body);
    if (a->status == 401)
        ck_assert_str_eq(r.headers, "WWW-Authenticate: Bearer\n");
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

static int count_substr(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Failed requests naming made-up tenants add no series; successful ones
 * add at most 255 named series, the rest count under "_other". */
START_TEST(tenant_series_bounded)
{
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, NULL);
    struct fake_host host = {0};
    struct response r;
    char path[64];
    for (int i = 0; i < 50; i++) {
        snprintf(path, sizeof(path), "/tenant/made-up-%d/missing", i);
        run(api, &host, SLORA_API_GET, "GET", path, "", NULL, &r);
        ck_assert_int_eq(r.status, 404);
    }
    run(api, &host, SLORA_API_GET, "GET", "/metrics", "", NULL, &r);
    ck_assert_int_eq(count_substr(r.body, "slorad_tenant_requests_total{"), 0);

    for (int i = 0; i < 300; i++) {
        snprintf(path, sizeof(path), "/tenant/t%d/ok", i);
        run(api, &host, SLORA_API_GET, "GET", path, "", NULL, &r);
        ck_assert_int_eq(r.status, 200);
    }
    run(api, &host, SLORA_API_GET, "GET", "/tenant/t0/ok", "", NULL, &r);
    run(api, &host, SLORA_API_GET, "GET", "/tenant/t299/ok", "", NULL, &r);
    run(api, &host, SLORA_API_GET, "GET", "/metrics", "", NULL, &r);
    ck_assert_int_eq(count_substr(r.body, "slorad_tenant_requests_total{"), 256);
    ck_assert_ptr_nonnull(strstr(r.body, "slorad_tenant_requests_total{tenant=\"t0\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "slorad_tenant_requests_total{tenant=\"t254\"} 1\n"));
    ck_assert_ptr_null(strstr(r.body, "tenant=\"t255\""));
    ck_assert_ptr_nonnull(
        strstr(r.body, "slorad_tenant_requests_total{tenant=\"_other\"} 46\n"));
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

START_TEST(stream_from_thread)
{
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, NULL);
    struct fake_host host = {0};
    struct response r;
    run(api, &host, SLORA_API_POST, "POST", "/stream", "", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.stream);
    ck_assert_str_eq(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
    ck_assert_int_eq(r.n_done, 1);
    ck_assert_int_ge(host.wakes, 1);
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

static int cancels;

static void on_cancel(void *arg)
{
    (void)arg;
    cancels++;
}

START_TEST(cancel_and_late_completion)
{
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, NULL);
    struct fake_host host = {0};
    struct slora_api_request req = {.method = SLORA_API_POST,
                                    .method_name = "POST",
                                    .path = "/never",
                                    .query = "",
                                    .request_id = "r",
                                    .content_length = -1};
    struct slora_api_call *c = slora_api_call_new(api, &fake, &host, &req);
    ck_assert_int_eq(slora_api_call_head(c), 0);
    slora_api_call_dispatch(c, strdup("body"), 4);
    size_t len;
    ck_assert_str_eq(slora_api_call_body(c, &len), "body");
    cancels = 0;
    slora_api_call_on_cancel(c, on_cancel, NULL);
    slora_api_call_stream_begin(c, 200, "text/event-stream");
    struct slora_api_output out;
    ck_assert(slora_api_call_take(c, &out));
    ck_assert(out.has_head);
    free(out.data);
    slora_api_call_cancel(c);
    slora_api_call_cancel(c);
    ck_assert_int_eq(cancels, 1);
    ck_assert(slora_api_call_is_canceled(c));
    ck_assert_int_eq(slora_api_call_stream_write(c, "x", 1), SLORA_ECANCELED);
    slora_api_call_stream_end(c);
    ck_assert(slora_api_call_take(c, &out));
    ck_assert(out.done);
    free(out.data);
    ck_assert(!slora_api_call_take(c, &out));               /* done is reported once */
    slora_api_call_respond(c, 200, "x", strdup("late"), 4); /* second completion ignored */
    ck_assert(!slora_api_call_take(c, &out));
    slora_api_call_finish(c, 499, 0, 0);
    slora_api_call_unref(c);
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

/* `threads` is the forward team's size; the generation thread comes on top. */
static const struct {
    int64_t threads;
    long cpus;
    int engine, gen;
} splits[] = {
    {1, 8, 1, 1}, {2, 8, 2, 1}, {4, 1, 4, 1}, {0, 6, 6, 1}, {0, 2, 2, 1}, {0, -1, 1, 1},
    {256, 2, 256, 1},
};

START_TEST(thread_split)
{
    int engine = -1, gen = -1;
    slora_api_infer_split_threads(splits[_i].threads, splits[_i].cpus, &engine, &gen);
    ck_assert_int_eq(engine, splits[_i].engine);
    ck_assert_int_eq(gen, splits[_i].gen);
}
END_TEST

/* Body limits by route, decided at the head (Content-Length unread). */
struct body_case {
    enum slora_api_method m;
    const char *method_name, *path;
    int64_t content_length;
    int status;         /* 0: the head accepts */
    int64_t limit;      /* when accepted */
    const char *needle; /* in the 413 message */
};

static const struct body_case body_cases[] = {
    {SLORA_API_GET, "GET", "/t/a/b", SLORA_API_BODYLESS_MAX, 0, SLORA_API_BODYLESS_MAX, NULL},
    {SLORA_API_GET, "GET", "/t/a/b", SLORA_API_BODYLESS_MAX + 1, 413, 0,
     "GET /t/{a}/{b} takes no request body (1025 bytes declared, at most 1024 accepted)"},
    {SLORA_API_GET, "GET", "/healthz", 64 << 20, 413, 0, "takes no request body"},
    {SLORA_API_POST, "POST", "/t/a/b", 2048, 0, 2048, NULL},
    {SLORA_API_POST, "POST", "/t/a/b", 2049, 413, 0,
     "request body of 2049 bytes exceeds the limit of 2048 bytes (max_json_bytes)"},
    {SLORA_API_POST, "POST", "/t/a/b", -1, 0, 2048, NULL}, /* chunked: limit while reading */
};

START_TEST(body_limits)
{
    const struct body_case *t = &body_cases[_i];
    struct slora_config *cfg;
    struct slora_api *api = new_api(&cfg, "{\"max_json_bytes\": 2048}");
    struct fake_host host = {0};
    struct slora_api_request req = {.method = t->m,
                                    .method_name = t->method_name,
                                    .path = t->path,
                                    .query = "",
                                    .request_id = "b1",
                                    .content_length = t->content_length,
                                    .chunked = t->content_length < 0};
    struct slora_api_call *c = slora_api_call_new(api, &fake, &host, &req);
    int err = slora_api_call_head(c);
    struct slora_api_output out;
    if (t->status) {
        ck_assert_int_eq(err, SLORA_ETOOLARGE);
        ck_assert(slora_api_call_take(c, &out));
        ck_assert_int_eq(out.status, t->status);
        ck_assert_msg(strstr(out.data, t->needle), "%s", out.data);
        free(out.data);
    } else {
        ck_assert_int_eq(err, 0);
        ck_assert_int_eq(slora_api_call_body_limit(c), t->limit);
        slora_api_call_dispatch(c, NULL, 0);
        while (slora_api_call_take(c, &out))
            free(out.data);
    }
    slora_api_call_finish(c, 200, 0, 0.001);
    slora_api_call_unref(c);
    slora_api_free(api);
    slora_config_free(cfg);
}
END_TEST

START_TEST(error_body)
{
    size_t len;
    char *b = slora_api_error_body(SLORA_ETOOLARGE, "too big", &len);
    ck_assert_str_eq(b, "{\"error\":{\"message\":\"too big\",\"type\":\"invalid_request_error\","
                        "\"code\":\"toolarge\"}}\n");
    ck_assert_uint_eq(len, strlen(b));
    free(b);
    b = slora_api_error_body(SLORA_EQUOTA, NULL, &len);
    ck_assert_str_eq(b, "{\"error\":{\"message\":\"quota exceeded\",\"type\":\"rate_limit_error\","
                        "\"code\":\"quota\"}}\n");
    free(b);
}
END_TEST

Suite *slora_api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, routing);
    tcase_add_test(tc, tenant_series_bounded);
    tcase_add_loop_test(tc, auth_per_route, 0, (int)(sizeof(auth_cases) / sizeof(auth_cases[0])));
    tcase_add_test(tc, stream_from_thread);
    tcase_add_test(tc, cancel_and_late_completion);
    tcase_add_test(tc, error_body);
    tcase_add_loop_test(tc, body_limits, 0, (int)(sizeof(body_cases) / sizeof(body_cases[0])));
    tcase_add_loop_test(tc, thread_split, 0, (int)(sizeof(splits) / sizeof(splits[0])));
    suite_add_tcase(s, tc);
    return s;
}
