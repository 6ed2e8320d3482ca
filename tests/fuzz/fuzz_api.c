/* fuzz_api.c - libFuzzer target for the JSON request bodies of the
 * inference endpoints, through the API layer exactly as the server drives
 * it (slora_api_call_new, _head, _dispatch, then output taken until done),
 * with the real engine on the stories260K model (models/, `make model`; or
 * $SLORA_FUZZ_MODEL and $SLORA_FUZZ_TOKENIZER) and no registry.
 *
 * Input: the first byte picks the endpoint (completions, logits, tokenize,
 * detokenize), the rest is the body. Every call must complete exactly once
 * with a status in [200, 600) and, for an error, the JSON error shape; a
 * 5xx other than 503 (a full queue) is a finding. SLORA_FUZZ_VERBOSE=1
 * prints each call's status and the start of its body. max_tokens is capped at 4
 * and logits responses at 256 KiB to keep executions short.
 *
 * Threads: the fuzzer's thread plays the loop thread; worker jobs run
 * inline; the engine completes calls from its own thread and wakes us.
 */
#include <slora/api.h>
#include <slora/api_infer.h>
#include <slora/config.h>
#include <slora/model.h>
#include <slora/tokenizer.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const paths[] = {"/v1/completions", "/v1/logits", "/v1/tokenize",
                                    "/v1/detokenize"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t woken = PTHREAD_COND_INITIALIZER;
static unsigned wakes;

static int inline_work(void *host, slora_api_work_cb work, slora_api_done_cb done, void *arg)
{
    (void)host;
    work(arg);
    done(arg);
    return 0;
}

static void wake(void *host, struct slora_api_call *c)
{
    (void)host;
    pthread_mutex_lock(&lock);
    wakes++;
    pthread_cond_signal(&woken);
    pthread_mutex_unlock(&lock);
    slora_api_call_unref(c); /* the wake's reference */
}

static const struct slora_api_host host = {inline_work, wake};

/* Built once, alive for the whole process (static so leak checkers see
 * them reachable). */
static struct slora_model *model;
static struct slora_tokenizer *tok;
static struct slora_config *cfg;
static struct slora_api_infer *inf;
static struct slora_api *api;

static void die(const char *what, const char *diag)
{
    fprintf(stderr, "fuzz_api: %s: %s\n", what, diag);
    abort();
}

static void setup(void)
{
    const char *mpath = getenv("SLORA_FUZZ_MODEL");
    const char *tpath = getenv("SLORA_FUZZ_TOKENIZER");
    char diag[256];
    if (slora_model_load(mpath ? mpath : "models/stories260K.bin", NULL, &model, diag, sizeof(diag)))
        die("model", diag);
    if (slora_tokenizer_load(tpath ? tpath : "models/tok512.bin", model->cfg.shape.vocab_size, &tok,
                             diag, sizeof(diag)))
        die("tokenizer", diag);
    cfg = slora_config_new_defaults();
    if (!cfg)
        die("config", "out of memory");
    cfg->threads = 1;
    cfg->max_tokens = 4;
    cfg->max_logits_bytes = 256 << 10;
    if (slora_api_infer_start(model, NULL, cfg, &inf))
        die("engine", "out of memory");
    struct slora_api_deps deps = {
        .model = model,
        .tokenizer = tok,
        .model_id = "stories260K",
        .engine = inf->engine,
        .config = cfg,
    };
    api = slora_api_new(&deps);
    if (!api || slora_api_infer_register(api, inf))
        die("api", "out of memory");
}

/* Take output until the call is done; returns the status. */
static int collect(struct slora_api_call *c, char **body, size_t *body_len)
{
    int status = 0;
    bool done = false;
    while (!done) {
        pthread_mutex_lock(&lock);
        unsigned seen = wakes;
        pthread_mutex_unlock(&lock);
        struct slora_api_output out;
        bool any = false;
        while (slora_api_call_take(c, &out)) {
            any = true;
            if (out.has_head)
                status = out.status;
            if (out.len) {
                char *nb = realloc(*body, *body_len + out.len + 1);
                if (!nb)
                    abort();
                memcpy(nb + *body_len, out.data, out.len);
                *body_len += out.len;
                nb[*body_len] = '\0';
                *body = nb;
            }
            free(out.data);
            done |= out.done;
        }
        if (done || any)
            continue;
        pthread_mutex_lock(&lock);
        while (wakes == seen)
            pthread_cond_wait(&woken, &lock);
        pthread_mutex_unlock(&lock);
    }
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!api)
        setup();
    if (size < 1)
        return 0;
    const char *path = paths[data[0] % (sizeof(paths) / sizeof(paths[0]))];
    size_t len = size - 1;
    void *body = len ? malloc(len) : NULL;
    if (len) {
        if (!body)
            abort();
        memcpy(body, data + 1, len);
    }
    struct slora_api_request req = {
        .method = SLORA_API_POST,
        .method_name = "POST",
        .path = path,
        .query = "",
        .request_id = "fuzz",
        .content_length = (int64_t)len,
    };
    struct slora_api_call *c = slora_api_call_new(api, &host, NULL, &req);
    if (!c)
        abort();
    if (slora_api_call_head(c) == 0)
        slora_api_call_dispatch(c, body, len);
    else
        free(body);
    char *out = NULL;
    size_t out_len = 0;
    int status = collect(c, &out, &out_len);
    if (getenv("SLORA_FUZZ_VERBOSE"))
        fprintf(stderr, "%s %d %.160s\n", path, status, out ? out : "");
    if (status < 200 || status >= 600 || (status >= 500 && status != 503))
        abort();
    if (status >= 400 && (!out || !strstr(out, "{\"error\":{")))
        abort();
    slora_api_call_finish(c, status, out_len, 0.0);
    slora_api_call_unref(c);
    free(out);
    return 0;
}
