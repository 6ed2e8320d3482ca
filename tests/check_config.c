/* check_config.c - defaults, precedence (defaults < file < flags), every bad
 * config refused with its key and range named, conf/slorad.json complete. */
#include <slora/auth.h>
#include <slora/config.h>
#include <slora/error.h>

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define KEY_B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

struct bad_config {
    const char *json;
    int err;
    const char *fragment;
};

static const struct bad_config bad_configs[] = {
    {"{\"listne\": \"x\"}", SLORA_EINVAL, "config key 'listne' is unknown"},
    {"{\"threads\": \"4\"}", SLORA_EINVAL, "config key 'threads': expected an integer in [0, 256]"},
    {"{\"threads\": 1000}", SLORA_ERANGE, "'threads': 1000 is out of range [0, 256]"},
    {"{\"max_header_bytes\": 10}", SLORA_ERANGE,
     "'max_header_bytes': 10 is out of range [1024, 1048576]"},
    {"{\"max_connections\": 0}", SLORA_ERANGE, "'max_connections': 0 is out of range [1, 65536]"},
    {"{\"max_batch\": 0}", SLORA_ERANGE, "'max_batch': 0 is out of range [1, 1024]"},
    {"{\"max_batch\": 1025}", SLORA_ERANGE, "'max_batch': 1025 is out of range [1, 1024]"},
    {"{\"body_deadline_ms\": 99}", SLORA_ERANGE,
     "'body_deadline_ms': 99 is out of range [100, 3600000]"},
    {"{\"max_body_bytes\": 1.5}", SLORA_EINVAL, "'max_body_bytes': expected an integer"},
    {"{\"allow_insecure_remote\": 1}", SLORA_EINVAL,
     "'allow_insecure_remote': expected true or false"},
    {"{\"listen\": 8080}", SLORA_EINVAL, "'listen': expected a string"},
    {"[1, 2]", SLORA_EINVAL, "expected a JSON object"},
    {"{\"listen\": ", SLORA_EINVAL, "config: line 1"},
    {"{\"threads\": 1, \"threads\": 2}", SLORA_EINVAL, "duplicate"},
    {"{\"admin_key_sha256\": \"abc\"}", SLORA_EINVAL,
     "'admin_key_sha256': admin_key_sha256 is not 64 hex digits"},
    {"{\"tenants\": {}}", SLORA_EINVAL, "'tenants': expected an array"},
    {"{\"store\": \"redis\"}", SLORA_EINVAL, "'store': expected an object"},
    {"{\"store\": {\"kind\": \"etcd\"}}", SLORA_EINVAL,
     "'store.kind': 'etcd' is not one of dir, redis"},
    {"{\"store\": {\"kind\": \"redis\"}}", SLORA_EINVAL, "'store.url': required with kind redis"},
    {"{\"store\": {\"kind\": \"redis\", \"urll\": \"x\"}}", SLORA_EINVAL,
     "'store.urll' is unknown"},
    {"{\"store\": {\"url\": 6379}}", SLORA_EINVAL, "'store.url': expected a string"},
    {"{\"store\": {\"timeout_ms\": 10}}", SLORA_ERANGE,
     "'store.timeout_ms': 10 is out of range [50, 600000]"},
    {"{\"store\": {\"stream_max_len\": \"9\"}}", SLORA_EINVAL,
     "'store.stream_max_len': expected an integer"},
    {"{\"tenants\": [{\"name\": \"Acme\", \"key_sha256\": \"" KEY_A "\"}]}", SLORA_EINVAL,
     "'tenants[0]': tenant name"},
    {"{\"tenants\": [{\"name\": \"acme\"}]}", SLORA_EINVAL,
     "'tenants[0]': needs name and key_sha256"},
    {"{\"tenants\": [{\"name\": \"acme\", \"key_sha256\": []}]}", SLORA_EINVAL,
     "'tenants[0].key_sha256': expected a hex string or a non-empty array"},
    {"{\"tenants\": [{\"name\": \"acme\", \"key_sha256\": [\"zz\"]}]}", SLORA_EINVAL,
     "'tenants[0]': tenant 'acme': key_sha256[0] is not 64 hex digits"},
    {"{\"tenants\": [{\"name\": \"acme\", \"key_sha256\": \"" KEY_A "\", \"quota\": 1}]}",
     SLORA_EINVAL, "'tenants[0].quota' is unknown"},
    {"{\"tenants\": [{\"name\": \"acme\", \"key_sha256\": \"" KEY_A "\", \"max_adapters\": -1}]}",
     SLORA_ERANGE, "'tenants[0].max_adapters': expected an integer in [0, "},
    {"{\"tenants\": [{\"name\": \"a\", \"key_sha256\": \"" KEY_A "\"}, {\"name\": \"a\", "
     "\"key_sha256\": \"" KEY_B "\"}]}",
     SLORA_EINVAL, "'tenants[1]': tenant 'a' is listed twice"},
    {"{\"tenants\": [{\"name\": \"a\", \"key_sha256\": \"" KEY_A "\"}, {\"name\": \"b\", "
     "\"key_sha256\": [\"" KEY_B "\", \"" KEY_A "\"]}]}",
     SLORA_EINVAL, "'tenants[1]': tenant 'b': key_sha256[1] is already a key of"},
};

START_TEST(bad_config_refused)
{
    const struct bad_config *b = &bad_configs[_i];
    struct slora_config *c = slora_config_new_defaults();
    char diag[512] = "";
    int err = slora_config_apply_json(c, b->json, strlen(b->json), diag, sizeof(diag));
    ck_assert_msg(err == b->err, "%s: got %d (%s)", b->json, err, diag);
    ck_assert_msg(strstr(diag, b->fragment), "%s: diag '%s' lacks '%s'", b->json, diag,
                  b->fragment);
    slora_config_free(c);
}
END_TEST

struct bad_flags {
    const char *argv[6];
    int err;
    const char *fragment;
};

static const struct bad_flags bad_flag_cases[] = {
    {{"serve", "--listne", "x"}, SLORA_EINVAL, "unknown option '--listne'"},
    {{"serve", "--threads", "x"}, SLORA_EINVAL, "--threads: expected an integer, got 'x'"},
    {{"serve", "--threads", "999"}, SLORA_ERANGE, "'threads': 999 is out of range [0, 256]"},
    {{"serve", "--threads"}, SLORA_EINVAL, "--threads needs a value"},
    {{"serve", "extra"}, SLORA_EINVAL, "unexpected argument 'extra'"},
    {{"serve", "--listen", "0.0.0.0:8080"},
     SLORA_EINVAL,
     "refusing non-loopback address '0.0.0.0:8080' with no API keys"},
    {{"serve", "--listen", "127.0.0.1"}, SLORA_EINVAL, "'listen': '127.0.0.1' is not HOST:PORT"},
    {{"serve", "--listen", "127.0.0.1:70000"}, SLORA_EINVAL, "(port 0-65535)"},
    {{"serve", "--log-level", "loud"}, SLORA_EINVAL, "'log_level': 'loud' is not one of"},
    {{"serve", "--config", "/nonexistent/slorad.json"},
     SLORA_EIO,
     "config /nonexistent/slorad.json: No such file"},
};

static int argc_of(const char *const *argv)
{
    int n = 0;
    while (n < 6 && argv[n])
        n++;
    return n;
}

START_TEST(bad_flags_refused)
{
    const struct bad_flags *b = &bad_flag_cases[_i];
    unsetenv("SLORAD_CONFIG");
    struct slora_config *c;
    bool help;
    char diag[512] = "";
    int err = slora_config_load(argc_of(b->argv), (char **)b->argv, &c, &help, diag, sizeof(diag));
    ck_assert_msg(err == b->err, "%s: got %d (%s)", b->fragment, err, diag);
    ck_assert_msg(strstr(diag, b->fragment), "diag '%s' lacks '%s'", diag, b->fragment);
    ck_assert_ptr_null(c);
}
END_TEST

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/slorad-config-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

START_TEST(precedence)
{
    char *path = write_temp("{\"threads\": 3, \"listen\": \"127.0.0.1:9000\", \"max_tokens\": 7,"
                            " \"model\": \"/m/tiny.model.gguf\", \"admin_key_sha256\": \"" KEY_A
                            "\", \"tenants\": [{\"name\": \"acme\", \"key_sha256\": [\"" KEY_B
                            "\"], \"max_adapters\": 5, \"max_bytes\": 1000}]}");
    setenv("SLORAD_CONFIG", path, 1);
    setenv("STATE_DIRECTORY", "/run/state-a:/run/state-b", 1);
    const char *argv[] = {"serve", "--threads", "5", "--listen", "0.0.0.0:0"};
    struct slora_config *c;
    bool help;
    char diag[256];
    ck_assert_int_eq(slora_config_load(5, (char **)argv, &c, &help, diag, sizeof(diag)), 0);
    ck_assert_int_eq(c->threads, 5);                /* flag over file */
    ck_assert_int_eq(c->max_tokens, 7);             /* file over default */
    ck_assert_int_eq(c->max_connections, 512);      /* default */
    ck_assert_str_eq(c->listen, "0.0.0.0:0");       /* allowed: auth is on */
    ck_assert_str_eq(c->model_id, "tiny.model");    /* file name without extension */
    ck_assert_str_eq(c->state_dir, "/run/state-a"); /* first of $STATE_DIRECTORY */
    ck_assert_str_eq(c->config_path, path);
    ck_assert(slora_config_auth_enabled(c));
    ck_assert_int_eq(c->auth->n_admin_keys, 1);
    ck_assert_int_eq(c->auth->admin_keys[0][0], 0x9f);
    ck_assert_int_eq(c->n_tenants, 1);
    const struct slora_tenant *t = slora_auth_find_tenant(c->auth, "acme");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->n_keys, 1);
    ck_assert_int_eq(t->keys[0][31], 0x52);
    ck_assert_int_eq(t->quota.max_adapters, 5);
    ck_assert_int_eq(t->quota.max_bytes, 1000);
    slora_config_free(c);

    const char *argv2[] = {"serve", "--config", path, "--state-dir", "/x", "--model-id", "m"};
    unsetenv("SLORAD_CONFIG");
    ck_assert_int_eq(slora_config_load(7, (char **)argv2, &c, &help, diag, sizeof(diag)), 0);
    ck_assert_str_eq(c->state_dir, "/x");
    ck_assert_str_eq(c->model_id, "m");
    ck_assert_str_eq(c->listen, "127.0.0.1:9000");
    slora_config_free(c);
    unsetenv("STATE_DIRECTORY");
    unlink(path);
    free(path);

    const char *argv3[] = {"serve"};
    ck_assert_int_eq(slora_config_load(1, (char **)argv3, &c, &help, diag, sizeof(diag)), 0);
    ck_assert_str_eq(c->state_dir, "/var/lib/slorad");
    ck_assert_str_eq(c->model_id, "stories260K");
    ck_assert_str_eq(c->listen, "127.0.0.1:8080");
    ck_assert(!slora_config_auth_enabled(c));
    slora_config_free(c);

    const char *argv4[] = {"serve", "--help"};
    ck_assert_int_eq(slora_config_load(2, (char **)argv4, &c, &help, diag, sizeof(diag)), 0);
    ck_assert(help);
    ck_assert_ptr_null(c);

    /* a directory keeps its whole name; only .gguf and .bin are cut */
    const char *ids[][2] = {{"/m/Qwen2.5-0.5B-Instruct/", "Qwen2.5-0.5B-Instruct"},
                            {"models/Llama-3.2-1B//", "Llama-3.2-1B"},
                            {"tiny.q4_k_m.gguf", "tiny.q4_k_m"},
                            {"stories15M.bin", "stories15M"}};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const char *argv5[] = {"serve", "--model", ids[i][0]};
        ck_assert_int_eq(slora_config_load(3, (char **)argv5, &c, &help, diag, sizeof(diag)), 0);
        ck_assert_str_eq(c->model_id, ids[i][1]);
        slora_config_free(c);
    }
    /* a path longer than the id's 255 bytes: still its last component */
    char longp[400];
    memset(longp, 'd', 300);
    snprintf(longp + 300, sizeof(longp) - 300, "/deep/model.gguf");
    const char *argv6[] = {"serve", "--model", longp};
    ck_assert_int_eq(slora_config_load(3, (char **)argv6, &c, &help, diag, sizeof(diag)), 0);
    ck_assert_str_eq(c->model_id, "model");
    slora_config_free(c);
}
END_TEST

START_TEST(store_section)
{
    struct slora_config *c = slora_config_new_defaults();
    ck_assert_ptr_null(c->store.kind); /* the state directory */
    const char *json = "{\"store\": {\"kind\": \"redis\", \"url\": \"redis://10.0.0.5:6380/2\", "
                       "\"prefix\": \"p:\", \"password_file\": \"/etc/pw\", \"timeout_ms\": 250, "
                       "\"stream_max_len\": 50}}";
    char diag[256] = "";
    ck_assert_msg(slora_config_apply_json(c, json, strlen(json), diag, sizeof(diag)) == 0, "%s",
                  diag);
    ck_assert_str_eq(c->store.kind, "redis");
    ck_assert_str_eq(c->store.url, "redis://10.0.0.5:6380/2");
    ck_assert_str_eq(c->store.prefix, "p:");
    ck_assert_str_eq(c->store.password_file, "/etc/pw");
    ck_assert_int_eq(c->store.timeout_ms, 250);
    ck_assert_int_eq(c->store.stream_max_len, 50);
    slora_config_free(c);
}
END_TEST

START_TEST(shipped_config_lists_every_default)
{
    json_error_t jerr;
    json_t *root = json_load_file("conf/slorad.json", 0, &jerr);
    ck_assert_msg(root != NULL, "conf/slorad.json: %s", jerr.text);
    struct slora_config *def = slora_config_new_defaults();
    struct slora_config *shipped = slora_config_new_defaults();
    char diag[256];
    char *text = json_dumps(root, 0);
    ck_assert_int_eq(slora_config_apply_json(shipped, text, strlen(text), diag, sizeof(diag)), 0);
    for (size_t i = 0; slora_config_key_name(i); i++)
        ck_assert_msg(json_object_get(root, slora_config_key_name(i)) != NULL,
                      "conf/slorad.json lacks '%s'", slora_config_key_name(i));
    ck_assert_ptr_nonnull(json_object_get(root, "tenants"));
    ck_assert_ptr_nonnull(json_object_get(root, "admin_key_sha256"));
    ck_assert_int_eq(shipped->max_body_bytes, def->max_body_bytes);
    ck_assert_int_eq(shipped->max_connections, def->max_connections);
    ck_assert_int_eq(shipped->delta_cache_bytes, def->delta_cache_bytes);
    ck_assert_int_eq(shipped->header_timeout_ms, def->header_timeout_ms);
    ck_assert_str_eq(shipped->listen, def->listen);
    ck_assert_str_eq(shipped->model, def->model);
    ck_assert_str_eq(shipped->store.kind, "dir");
    ck_assert_int_eq(shipped->store.timeout_ms, def->store.timeout_ms);
    ck_assert_int_eq(shipped->store.stream_max_len, def->store.stream_max_len);
    free(text);
    json_decref(root);
    slora_config_free(def);
    slora_config_free(shipped);
}
END_TEST

struct listen_case {
    const char *in;
    const char *host;
    int port;
    bool loopback;
};

static const struct listen_case listen_cases[] = {
    {"127.0.0.1:8080", "127.0.0.1", 8080, true},
    {"[::1]:0", "::1", 0, true},
    {"localhost:1", "localhost", 1, true},
    {"0.0.0.0:80", "0.0.0.0", 80, false},
    {"[::]:443", "::", 443, false},
};

START_TEST(listen_split)
{
    const struct listen_case *l = &listen_cases[_i];
    char host[64];
    int port;
    ck_assert_int_eq(slora_config_listen_split(l->in, host, sizeof(host), &port), 0);
    ck_assert_str_eq(host, l->host);
    ck_assert_int_eq(port, l->port);
    ck_assert_int_eq(slora_config_host_is_loopback(host), l->loopback);
    ck_assert_int_eq(slora_config_listen_split("::1:80", host, sizeof(host), &port), SLORA_EINVAL);
    ck_assert_int_eq(slora_config_listen_split(":80", host, sizeof(host), &port), SLORA_EINVAL);
}
END_TEST

Suite *slora_config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, bad_config_refused, 0,
                        (int)(sizeof(bad_configs) / sizeof(bad_configs[0])));
    tcase_add_loop_test(tc, bad_flags_refused, 0,
                        (int)(sizeof(bad_flag_cases) / sizeof(bad_flag_cases[0])));
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, store_section);
    tcase_add_test(tc, shipped_config_lists_every_default);
    tcase_add_loop_test(tc, listen_split, 0, (int)(sizeof(listen_cases) / sizeof(listen_cases[0])));
    suite_add_tcase(s, tc);
    return s;
}
