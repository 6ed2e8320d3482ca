/* api_gen.c - generation jobs of completions and chat (see api_gen.h):
 * the engine thread records, a worker formats. */
#include "api_gen.h"

#include <slora/engine.h>
#include <slora/error.h>
#include <slora/model.h>
#include <slora/tokenizer.h>

#include <stdio.h>
#include <stdlib.h>

/* ---- the log (engine thread, under the lock) ----------------------------- */

static void log_free(struct slora__api_evlog *l)
{
    free(l->ev);
    free(l->text.p);
}

/* Record ev and its text[0..ev->text_len); the log marks itself lost when
 * out of memory. */
static void log_add(struct slora__api_evlog *l, const struct slora__api_ev *ev, const char *text)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        struct slora__api_ev *p = realloc(l->ev, cap * sizeof(*p));
        if (!p) {
            l->lost = true;
            return;
        }
        l->ev = p;
        l->cap = cap;
    }
    if (ev->text_len && slora__buf_add(&l->text, text, ev->text_len)) {
        l->lost = true;
        return;
    }
    l->ev[l->n++] = *ev;
}

static void log_swap(struct slora__api_evlog *a, struct slora__api_evlog *b)
{
    struct slora__api_evlog t = *a;
    *a = *b;
    *b = t;
}

/* ---- formatting (worker) -------------------------------------------------- */

/* Out of the job: the call's stream (begun at the first bytes, so that
 * anything refused before is a plain error with its own status), or
 * job.out when prepared without the engine. */
static void emit(struct slora__api_gen *g, const char *data, size_t len)
{
    struct slora__api_job *j = &g->job;
    if (g->to_out) {
        buf_add(&j->out, data, len);
        return;
    }
    if (!g->stream_begun) {
        slora_api_call_stream_begin(j->call, 200, "text/event-stream");
        g->stream_begun = true;
    }
    slora_api_call_stream_write(j->call, data, len);
}

/* Append `"usage":{...}` (no leading comma). */
static void usage(const struct slora__api_gen *g, struct slora__api_buf *b)
{
    int n_prompt = g->job.n_prompt;
    buf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}",
               n_prompt, g->n_generated, n_prompt + g->n_generated);
}

/* One SSE event with one choice. */
static void write_chunk(struct slora__api_gen *g, enum slora__api_choice kind, const char *text,
                        size_t len, const char *finish)
{
    if (g->ops->role_chunk && !g->opened) {
        g->opened = true;
        write_chunk(g, SLORA__API_CHOICE_ROLE, "", 0, NULL);
    }
    struct slora__api_buf b = {0};
    buf_lit(&b, "data: ");
    buf_add(&b, g->head.b.p, g->head.b.len);
    buf_lit(&b, ",\"choices\":[");
    g->ops->choice(g, &b, kind, text, len, finish);
    buf_lit(&b, "]");
    if (g->s.include_usage)
        buf_lit(&b, ",\"usage\":null");
    buf_lit(&b, "}\n\n");
    if (!b.oom)
        emit(g, b.b.p, b.b.len);
    free(b.b.p);
}

/* The text gathered since the last chunk, as one chunk. */
static void flush_text(struct slora__api_gen *g)
{
    if (!g->text.b.len)
        return;
    write_chunk(g, SLORA__API_CHOICE_DELTA, g->text.b.p, g->text.b.len, NULL);
    g->text.b.len = 0;
}

/* echo: the prompt's text goes first, as its own chunk when streaming. */
static void echo(struct slora__api_gen *g)
{
    size_t len;
    char *text = slora_tokenizer_render(g->job.tok, -1, g->job.prompt, g->job.n_prompt, &len);
    if (!text) {
        g->text.oom = true;
        return;
    }
    g->text_offset = len;
    if (g->s.stream)
        write_chunk(g, SLORA__API_CHOICE_DELTA, text, len, NULL);
    else
        buf_add(&g->text, text, len);
    free(text);
}

/* An error once the stream began goes as one SSE error event. */
static void stream_error(struct slora__api_gen *g, int err, const char *msg)
{
    struct slora_api_call *c = g->job.call;
    json_t *e = json_pack("{s{sssss}}", "error", "message", msg, "type", slora_err_type(err),
                          "code", slora_err_name(err));
    struct slora__api_buf b = {0};
    buf_lit(&b, "data: ");
    slora__api_buf_json(&b, e);
    buf_lit(&b, "\n\ndata: [DONE]\n\n");
    if (!b.oom)
        emit(g, b.b.p, b.b.len);
    free(b.b.p);
    slora_api_call_stream_end(c);
}

/* The end: complete the call (or fill job.out). Nothing may touch g
 * afterwards unless to_out. */
static void finish(struct slora__api_gen *g)
{
    struct slora__api_job *j = &g->job;
    int err = g->result_err;
    const char *diag = g->result_diag;
    if (!err && (g->batch.lost || g->text.oom)) {
        err = SLORA_ENOMEM;
        diag = "out of memory formatting the response";
    }
    if (err) {
        if (g->s.stream && g->stream_begun)
            stream_error(g, err, diag);
        else if (g->to_out)
            slora__api_fail(&j->d, err, "%s", diag);
        else
            slora_api_call_error(j->call, err, "%s", diag);
        return;
    }
    if (g->s.stream) {
        flush_text(g);
        write_chunk(g, SLORA__API_CHOICE_DELTA, "", 0, g->finish);
        struct slora__api_buf b = {0};
        if (g->s.include_usage) {
            buf_lit(&b, "data: ");
            buf_add(&b, g->head.b.p, g->head.b.len);
            buf_lit(&b, ",\"choices\":[],");
            usage(g, &b);
            buf_lit(&b, "}\n\n");
        }
        buf_lit(&b, "data: [DONE]\n\n");
        if (!b.oom)
            emit(g, b.b.p, b.b.len);
        free(b.b.p);
        if (!g->to_out)
            slora_api_call_stream_end(j->call);
        return;
    }
    struct slora__api_buf b = {0};
    buf_add(&b, g->head.b.p, g->head.b.len);
    buf_lit(&b, ",\"choices\":[");
    g->ops->choice(g, &b, SLORA__API_CHOICE_WHOLE, g->text.b.p ? g->text.b.p : "", g->text.b.len,
                   g->finish);
    buf_lit(&b, "],");
    usage(g, &b);
    buf_lit(&b, "}\n");
    if (g->to_out) {
        j->out = b;
    } else if (b.oom) {
        free(b.b.p);
        slora_api_call_error(j->call, SLORA_ENOMEM, NULL);
    } else {
        slora_api_call_respond(j->call, 200, "application/json", b.b.p, b.b.len);
    }
}

/* Format g->batch; true when it ended the job (the call is complete). */
static bool format_batch(struct slora__api_gen *g)
{
    struct slora__api_evlog *l = &g->batch;
    size_t off = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct slora__api_ev *ev = &l->ev[i];
        switch (ev->kind) {
        case SLORA__API_EV_PROMPT:
            g->ops->logprob(g, ev);
            break;
        case SLORA__API_EV_ECHO:
            echo(g);
            break;
        case SLORA__API_EV_TOKEN:
            if (g->s.logprobs >= 0)
                g->ops->logprob(g, ev);
            buf_add(&g->text, l->text.p + off, ev->text_len);
            off += ev->text_len;
            break;
        }
    }
    if (l->end) {
        finish(g);
        return true;
    }
    if (g->s.stream)
        flush_text(g);
    return false;
}

/* Worker: format what the engine recorded until the log is empty. */
static void format_work(void *arg)
{
    struct slora__api_gen *g = arg;
    for (;;) {
        pthread_mutex_lock(&g->lock);
        log_swap(&g->pending, &g->batch);
        bool idle = !g->batch.n && !g->batch.end && !g->batch.lost;
        if (idle)
            g->formatting = false;
        pthread_mutex_unlock(&g->lock);
        if (idle || format_batch(g))
            return;
        bool lost = g->batch.lost;
        g->batch.n = g->batch.text.len = 0;
        g->batch.lost = false;
        /* a lost event fails the response at the end */
        if (lost)
            g->text.oom = true;
    }
}

/* The job may be gone by now: the formatter completed the call. */
static void format_done(void *arg)
{
    (void)arg;
}

/* Engine thread: queue a formatter (g->formatting was set), or format
 * here when no worker can be queued. */
static void schedule(struct slora__api_gen *g)
{
    if (slora_api_call_queue_work(g->job.call, format_work, format_done, g))
        format_work(g);
}

/* ---- engine thread -------------------------------------------------------- */

static void record(struct slora__api_gen *g, const struct slora__api_ev *ev, const char *text)
{
    pthread_mutex_lock(&g->lock);
    log_add(&g->pending, ev, text);
    bool go = g->s.stream && !g->formatting;
    if (go)
        g->formatting = true;
    pthread_mutex_unlock(&g->lock);
    if (go)
        schedule(g);
}

/* The logprobs a step reported, into ev. */
static void set_logprobs(struct slora__api_ev *ev, const struct slora_gen_step *st)
{
    ev->has_logprob = true;
    ev->logprob = st->logprob;
    ev->n_top = st->n_top;
    memcpy(ev->top_id, st->top_id, sizeof(ev->top_id));
    memcpy(ev->top_logprob, st->top_logprob, sizeof(ev->top_logprob));
}

static int gen_step(void *arg, float *logits, int pos, bool *stop)
{
    struct slora__api_gen *g = arg;
    const int *prompt = g->job.prompt;
    int n_prompt = g->job.n_prompt;
    *stop = false;
    if (g->s.echo && g->s.logprobs >= 0) {
        if (pos == 0)
            record(g, &(struct slora__api_ev){.kind = SLORA__API_EV_PROMPT, .token = prompt[0], .prev = -1},
                   NULL);
        if (pos < n_prompt - 1) {
            /* Echoed prompt: the logprob of the next prompt token. */
            struct slora_gen_step st;
            slora_gen_logprobs(logits, g->job.model->cfg.shape.vocab_size, prompt[pos + 1],
                               g->s.logprobs, &st);
            struct slora__api_ev ev = {
                .kind = SLORA__API_EV_PROMPT, .token = prompt[pos + 1], .prev = prompt[pos]};
            set_logprobs(&ev, &st);
            record(g, &ev, NULL);
            return -1;
        }
    }
    if (g->s.echo && pos == n_prompt - 1)
        record(g, &(struct slora__api_ev){.kind = SLORA__API_EV_ECHO}, NULL);
    if (slora_gen_is_done(g->gen)) {
        *stop = true;
        return -1;
    }
    struct slora_gen_step st;
    int prev = slora_gen_last_token(g->gen);
    if (slora_gen_accept(g->gen, logits, &st)) {
        *stop = true;
        return -1;
    }
    struct slora__api_ev ev = {
        .kind = SLORA__API_EV_TOKEN, .token = st.token, .prev = prev, .text_len = st.text_len};
    if (g->s.logprobs >= 0)
        set_logprobs(&ev, &st);
    record(g, &ev, st.text);
    *stop = slora_gen_is_done(g->gen);
    return st.token;
}

/* The engine's result, then the end flag: the formatter that sees it
 * completes the call. */
static void gen_done(void *arg, const struct slora_engine_result *r)
{
    struct slora__api_gen *g = arg;
    const char *f = slora_gen_finish_name(slora_gen_finish(g->gen));
    pthread_mutex_lock(&g->lock);
    g->result_err = r->err;
    snprintf(g->result_diag, sizeof(g->result_diag), "%s", r->diag);
    g->finish = f ? f : "length";
    g->n_generated = slora_gen_n_generated(g->gen);
    g->pending.end = true;
    bool go = !g->formatting;
    g->formatting = true;
    pthread_mutex_unlock(&g->lock);
    if (go)
        schedule(g);
}

/* ---- prepare (worker) and submit (loop) ----------------------------------- */

int slora__api_gen_prepare(struct slora__api_gen *g, const struct slora__api_gen_ops *ops)
{
    struct slora__api_job *j = &g->job;
    g->ops = ops;
    if (pthread_mutex_init(&g->lock, NULL))
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    g->has_lock = true;
    int seq_len = j->model->cfg.seq_len;
    int64_t max_tokens = g->s.max_tokens;
    if (max_tokens > j->max_tokens_cap)
        max_tokens = j->max_tokens_cap;
    if (max_tokens > seq_len - j->n_prompt)
        max_tokens = seq_len - j->n_prompt;
    struct slora_gen_params p = {
        .max_tokens = (int)max_tokens,
        .seq_len = seq_len,
        .stop = (const char *const *)g->s.stop,
        .n_stop = g->s.n_stop,
        .sampler = {(float)g->s.temperature, (float)g->s.top_p, (int)g->s.top_k, g->s.seed},
        .logprobs = g->s.logprobs,
    };
    int err = slora_gen_new(j->tok, j->prompt, j->n_prompt, &p, &g->gen);
    if (err)
        return slora__api_fail(&j->d, err, "invalid generation parameters: %s",
                               slora_strerror(err));
    slora__api_job_head(j, g->s.stream ? ops->chunk_object : ops->object, &g->head);
    if (g->head.oom)
        return slora__api_fail(&j->d, SLORA_ENOMEM, "out of memory");
    if (slora_gen_is_done(g->gen) && !(g->s.echo && g->s.logprobs >= 0)) {
        /* max_tokens 0 and nothing to score: nothing to run */
        g->to_out = true;
        if (g->s.echo)
            log_add(&g->batch, &(struct slora__api_ev){.kind = SLORA__API_EV_ECHO}, NULL);
        const char *f = slora_gen_finish_name(slora_gen_finish(g->gen));
        g->finish = f ? f : "length";
        g->batch.end = true;
        format_batch(g);
        if (g->s.stream)
            j->out_type = "text/event-stream";
    }
    return j->d.err;
}

void slora__api_gen_run(struct slora__api_job *j)
{
    struct slora__api_gen *g = (struct slora__api_gen *)j;
    struct slora_engine_job ej = {
        .all_logits = g->s.echo && g->s.logprobs >= 0,
        .step = gen_step,
        .done = gen_done,
    };
    slora__api_job_submit(j, &ej);
}

void slora__api_gen_release(struct slora__api_gen *g)
{
    slora__api_sampling_deinit(&g->s);
    slora_gen_free(g->gen);
    if (g->has_lock)
        pthread_mutex_destroy(&g->lock);
    log_free(&g->pending);
    log_free(&g->batch);
    free(g->head.b.p);
    free(g->text.b.p);
}
