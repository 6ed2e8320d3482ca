/* engine.c - the continuous-batching scheduler (see engine.h).
 *
 * A job ("sequence") moves WAITING (in its tenant's queue) -> ACQUIRING
 * (its adapters' cache entries being fetched, all at once; holds a batch
 * slot; ready when the cache has answered every one) -> ACTIVE (prefilling,
 * then decoding) -> finished (done called, freed). The engine mutex guards
 * the tenant table, the queues, the `seqs` list and the counters; the
 * per-sequence compute state (kv, pos, logits) is touched only by the
 * engine thread once the sequence is ACTIVE. Cancellation is a flag the
 * engine thread checks before each step.
 *
 * KV caches of finished sequences are kept for the next ones (engine
 * thread only): allocating and freeing one per request cost more than its
 * whole prefill on small models (calloc of (n_layers, seq_len, kv_dim)
 * twice, page faults and zeroing included). A reused cache needs no
 * clearing: a sequence writes each position before attending to it. At
 * most max_batch caches exist, active or spare.
 */
#include <slora/blas.h>
#include <slora/engine.h>
#include <slora/error.h>
#include <slora/forward.h>
#include <slora/log.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prompt rows per forward pass: bounds the scratch at (max_batch + 512)
 * rows while a long prompt joins over several steps. */
#define PREFILL_CHUNK 512

enum seq_state { SEQ_WAITING, SEQ_ACQUIRING, SEQ_ACTIVE };

struct tenant {
    char *name;
    int n_seqs;           /* waiting + running */
    int n_acquiring;      /* adapters its admitted sequences still wait for */
    struct seq *q_head;   /* waiting, FIFO */
    struct seq *q_tail;
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    struct tenant *next;
};

/* One adapter of a sequence. */
struct seq_adapter {
    struct seq *seq;
    char *id;
    char *version;
    struct slora_adapter *adapter;     /* ref held until the sequence ends */
    float weight;
    struct slora_cache_handle *handle; /* once the cache answered, until the end */
};

struct seq {
    struct slora_engine *engine;
    uint64_t ticket;
    struct tenant *tenant;
    struct seq_adapter ad[SLORA_WEIGHTS_MAX_TERMS]; /* (n_ad); none = the base */
    int n_ad;
    int n_pending;                   /* acquires the cache has not answered yet */
    int *prompt;                     /* (n_prompt) */
    int n_prompt;
    bool all_logits;
    slora_engine_step_cb step;
    slora_engine_done_cb done;
    void *arg;
    enum seq_state state;
    bool admitted;                   /* holds a batch slot */
    atomic_bool canceled;
    bool weights_ready;              /* cache answered every acquire (handles or error) */
    struct slora_weights mix;        /* a mix's own weight set (bind_weights) */
    const struct slora_weights *ws;
    struct slora_kv *kv;
    int pos;                         /* tokens in the KV cache */
    int next_token;                  /* fed at pos when decoding */
    int rows_this_step;              /* rows of this sequence in the current batch */
    int step_pos;                    /* position of its first row in that batch */
    float *logits;                   /* (vocab), or (n_prompt, vocab) in all_logits mode */
    struct slora_engine_result res;
    struct seq *q_next;              /* tenant queue */
    struct seq *next;                /* engine list of every sequence */
};

struct slora_engine {
    const struct slora_model *model;
    struct slora_cache *cache;
    struct slora_engine_config cfg;
    struct slora_weights base;
    struct slora_fwd *fwd;
    struct slora_fwd_row *rows; /* (max_rows) */
    int max_rows;               /* max_batch + a prefill chunk */
    struct seq **active;        /* (max_batch) ACTIVE sequences; engine thread only */
    int n_active;
    struct slora_kv **spare_kv; /* (max_batch) KV caches of finished sequences; engine thread */
    int n_spare_kv;

    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stopping;
    bool joined;                /* slora_engine_stop finished (loop of the caller) */
    struct tenant *tenants;
    struct tenant *rr;          /* tenant to try first at the next admission */
    struct seq *seqs;           /* every sequence not yet finished */
    uint64_t next_ticket;
    struct slora_engine_stats st;
};

static struct tenant *get_tenant(struct slora_engine *e, const char *name)
{
    struct tenant *t;
    for (t = e->tenants; t; t = t->next)
        if (!strcmp(t->name, name))
            return t;
    t = calloc(1, sizeof(*t));
    if (!t || !(t->name = strdup(name))) {
        free(t);
        return NULL;
    }
    t->next = e->tenants;
    e->tenants = t;
    return t;
}

static void free_seq(struct seq *s)
{
    slora_kv_free(s->kv);
    free(s->logits);
    free(s->prompt);
    for (int k = 0; k < s->n_ad; k++) {
        free(s->ad[k].id);
        free(s->ad[k].version);
    }
    slora_weights_deinit(&s->mix);
    free(s);
}

/* May t's next job take a batch slot? Not while its sequences already
 * wait for tenant_max_acquiring generations (an acquire of a resident
 * entry is answered within the admission that started it). */
static bool may_admit(const struct slora_engine *e, const struct tenant *t)
{
    return t->q_head && (!t->q_head->n_ad || !e->cfg.tenant_max_acquiring ||
                         t->n_acquiring < e->cfg.tenant_max_acquiring);
}

/* Take the next waiting sequence, round-robin over tenants. Lock held. */
static struct seq *pop_round_robin(struct slora_engine *e)
{
    if (!e->tenants)
        return NULL;
    struct tenant *start = e->rr ? e->rr : e->tenants, *t = start;
    do {
        if (may_admit(e, t)) {
            struct seq *s = t->q_head;
            t->q_head = s->q_next;
            if (!t->q_head)
                t->q_tail = NULL;
            e->rr = t->next ? t->next : e->tenants;
            e->st.waiting--;
            return s;
        }
        t = t->next ? t->next : e->tenants;
    } while (t != start);
    return NULL;
}

static void unqueue(struct seq *s)
{
    struct tenant *t = s->tenant;
    struct seq **pp = &t->q_head, *prev = NULL;
    while (*pp != s) {
        prev = *pp;
        pp = &(*pp)->q_next;
    }
    *pp = s->q_next;
    if (t->q_tail == s)
        t->q_tail = prev;
}

/* The cache's answer for one adapter of a sequence; the first failure is
 * the sequence's. */
static void on_weights(void *arg, struct slora_cache_handle *h, int err, const char *diag)
{
    struct seq_adapter *ad = arg;
    struct seq *s = ad->seq;
    struct slora_engine *e = s->engine;
    pthread_mutex_lock(&e->lock);
    ad->handle = h;
    if (err && !s->res.err) {
        s->res.err = err;
        snprintf(s->res.diag, sizeof(s->res.diag), "%s", diag);
    }
    s->tenant->n_acquiring--;
    if (--s->n_pending == 0) {
        s->weights_ready = true;
        pthread_cond_signal(&e->wake);
    }
    pthread_mutex_unlock(&e->lock);
}

/* Every adapter named, at most SLORA_WEIGHTS_MAX_TERMS, finite weights,
 * distinct ids. */
static bool adapters_valid(const struct slora_engine_job *job)
{
    if (job->n_adapters < 0 || job->n_adapters > SLORA_WEIGHTS_MAX_TERMS ||
        (job->n_adapters && !job->adapters))
        return false;
    for (int k = 0; k < job->n_adapters; k++) {
        const struct slora_engine_adapter *a = &job->adapters[k];
        if (!a->id || !a->version || !a->adapter || !isfinite(a->weight))
            return false;
        for (int i = 0; i < k; i++)
            if (!strcmp(job->adapters[i].id, a->id))
                return false;
    }
    return true;
}

int slora_engine_submit(struct slora_engine *e, const struct slora_engine_job *job,
                        uint64_t *ticket)
{
    int seq_len = e->model->cfg.seq_len, vocab = e->model->cfg.shape.vocab_size;
    if (job->n_prompt < 1 || job->n_prompt >= seq_len)
        return SLORA_EINVAL;
    for (int i = 0; i < job->n_prompt; i++)
        if (job->prompt[i] < 0 || job->prompt[i] >= vocab)
            return SLORA_EINVAL;
    if (!adapters_valid(job))
        return SLORA_EINVAL;

    struct seq *s = calloc(1, sizeof(*s));
    if (!s)
        return SLORA_ENOMEM;
    size_t logit_rows = job->all_logits ? (size_t)job->n_prompt : 1;
    s->prompt = malloc((size_t)job->n_prompt * sizeof(*s->prompt));
    s->logits = malloc(logit_rows * (size_t)vocab * sizeof(*s->logits));
    if (!s->prompt || !s->logits)
        goto err_free_seq;
    for (; s->n_ad < job->n_adapters; s->n_ad++) {
        const struct slora_engine_adapter *a = &job->adapters[s->n_ad];
        struct seq_adapter *ad = &s->ad[s->n_ad];
        ad->seq = s;
        ad->weight = a->weight;
        if (!(ad->id = strdup(a->id)) || !(ad->version = strdup(a->version))) {
            s->n_ad++;
            goto err_free_seq;
        }
    }
    memcpy(s->prompt, job->prompt, (size_t)job->n_prompt * sizeof(*s->prompt));
    s->n_prompt = job->n_prompt;
    s->all_logits = job->all_logits;
    s->step = job->step;
    s->done = job->done;
    s->arg = job->arg;
    atomic_init(&s->canceled, false);

    pthread_mutex_lock(&e->lock);
    int err = 0;
    struct tenant *t = get_tenant(e, job->tenant ? job->tenant : "");
    if (!t) {
        err = SLORA_ENOMEM;
    } else if (e->stopping || e->st.waiting >= e->cfg.max_queue) {
        e->st.rejected_busy++;
        err = SLORA_EBUSY;
    } else if (e->cfg.tenant_max_seqs && t->n_seqs >= e->cfg.tenant_max_seqs) {
        e->st.rejected_quota++;
        err = SLORA_EQUOTA;
    }
    if (err) {
        pthread_mutex_unlock(&e->lock);
        free_seq(s);
        return err;
    }
    s->engine = e;
    s->tenant = t;
    s->ticket = ++e->next_ticket;
    for (int k = 0; k < s->n_ad; k++)
        s->ad[k].adapter = slora_adapter_ref(job->adapters[k].adapter);
    s->state = SEQ_WAITING;
    if (t->q_tail)
        t->q_tail->q_next = s;
    else
        t->q_head = s;
    t->q_tail = s;
    t->n_seqs++;
    s->next = e->seqs;
    e->seqs = s;
    e->st.waiting++;
    e->st.submitted++;
    *ticket = s->ticket;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    return 0;

err_free_seq:
    free_seq(s);
    return SLORA_ENOMEM;
}

void slora_engine_cancel(struct slora_engine *e, uint64_t ticket)
{
    pthread_mutex_lock(&e->lock);
    for (struct seq *s = e->seqs; s; s = s->next)
        if (s->ticket == ticket) {
            atomic_store(&s->canceled, true);
            pthread_cond_signal(&e->wake);
            break;
        }
    pthread_mutex_unlock(&e->lock);
}

/* Hand a sequence back: release its weights, settle the counters, call
 * done, free it. Engine thread, lock not held. */
static void finish(struct slora_engine *e, struct seq *s, int err)
{
    if (err) {
        s->res.err = err;
        if (!s->res.diag[0])
            snprintf(s->res.diag, sizeof(s->res.diag), "%s", slora_strerror(err));
    }
    for (int k = 0; k < s->n_ad; k++) {
        slora_cache_release(e->cache, s->ad[k].handle);
        s->ad[k].handle = NULL;
        slora_adapter_unref(s->ad[k].adapter);
        s->ad[k].adapter = NULL;
    }
    pthread_mutex_lock(&e->lock);
    struct seq **pp = &e->seqs;
    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    s->tenant->n_seqs--;
    s->tenant->prompt_tokens += (uint64_t)s->res.n_prompt;
    s->tenant->completion_tokens += (uint64_t)s->res.n_completion;
    if (s->admitted)
        e->st.running--;
    if (s->res.err == SLORA_ECANCELED)
        e->st.canceled++;
    pthread_mutex_unlock(&e->lock);
    s->done(s->arg, &s->res);
    if (s->kv && e->n_spare_kv < e->cfg.max_batch) {
        e->spare_kv[e->n_spare_kv++] = s->kv;
        s->kv = NULL;
    }
    free_seq(s);
}

/* After the step callback chose `tok` (position s->pos) from the logits of
 * position s->pos - 1: count it and either keep decoding or finish. A token
 * at the last context position is never fed. Returns true when finished. */
static bool after_sample(struct slora_engine *e, struct seq *s, int tok, bool stop)
{
    if (tok >= 0)
        s->res.n_completion++;
    if (stop || tok < 0) {
        finish(e, s, 0);
        return true;
    }
    if (s->pos + 1 >= e->model->cfg.seq_len) {
        s->res.length = true;
        finish(e, s, 0);
        return true;
    }
    s->next_token = tok;
    return false;
}

/* Feed the rows of one sequence's step through its callback. Returns true
 * when the sequence finished. */
static bool deliver(struct slora_engine *e, struct seq *s, int first_pos)
{
    int vocab = e->model->cfg.shape.vocab_size;
    bool stop = false;
    if (first_pos >= s->n_prompt) {
        int tok = s->step(s->arg, s->logits, first_pos, &stop);
        return after_sample(e, s, tok, stop);
    }
    if (s->all_logits)
        for (int p = first_pos; p < s->pos && p < s->n_prompt - 1; p++) {
            s->step(s->arg, s->logits + (size_t)p * vocab, p, &stop);
            if (stop) {
                s->res.n_prompt = s->pos;
                finish(e, s, 0);
                return true;
            }
        }
    if (s->pos < s->n_prompt)
        return false;
    s->res.n_prompt = s->n_prompt;
    float *last = s->logits + (s->all_logits ? (size_t)(s->n_prompt - 1) * vocab : 0);
    int tok = s->step(s->arg, last, s->n_prompt - 1, &stop);
    return after_sample(e, s, tok, stop);
}

/* One batched forward over every active sequence: one decode row each for
 * those past their prompt, then as many prompt rows as fit. */
static void run_step(struct slora_engine *e)
{
    int vocab = e->model->cfg.shape.vocab_size, n = 0;
    for (int i = 0; i < e->n_active; i++) {
        struct seq *s = e->active[i];
        s->rows_this_step = 0;
        s->step_pos = s->pos;
        if (s->pos < s->n_prompt)
            continue;
        e->rows[n++] = (struct slora_fwd_row){s->next_token, s->pos, s->kv, s->ws, s->logits};
        s->rows_this_step = 1;
    }
    for (int i = 0; i < e->n_active && n < e->max_rows; i++) {
        struct seq *s = e->active[i];
        if (s->pos >= s->n_prompt)
            continue;
        int k = s->n_prompt - s->pos;
        if (k > e->max_rows - n)
            k = e->max_rows - n;
        for (int p = s->pos; p < s->pos + k; p++) {
            float *out = NULL;
            if (s->all_logits)
                out = s->logits + (size_t)p * vocab;
            else if (p == s->n_prompt - 1)
                out = s->logits;
            e->rows[n++] = (struct slora_fwd_row){s->prompt[p], p, s->kv, s->ws, out};
        }
        s->rows_this_step = k;
    }
    if (!n)
        return;
    int err = slora_fwd_run(e->fwd, e->rows, n);
    struct slora_fwd_stats fs;
    slora_fwd_stats(e->fwd, &fs);
    pthread_mutex_lock(&e->lock);
    e->st.steps++;
    e->st.rows += (uint64_t)n;
    e->st.base_products = fs.base_products;
    e->st.delta_products = fs.delta_products;
    pthread_mutex_unlock(&e->lock);

    int kept = 0;
    for (int i = 0; i < e->n_active; i++) {
        struct seq *s = e->active[i];
        bool done = false;
        if (s->rows_this_step) {
            s->pos += s->rows_this_step;
            if (err)
                finish(e, s, err), done = true;
            else
                done = deliver(e, s, s->step_pos);
        }
        if (!done)
            e->active[kept++] = s;
    }
    e->n_active = kept;
}

/* Drop canceled active sequences before building the next batch. */
static void reap_canceled(struct slora_engine *e)
{
    int kept = 0;
    for (int i = 0; i < e->n_active; i++) {
        struct seq *s = e->active[i];
        if (atomic_load(&s->canceled))
            finish(e, s, SLORA_ECANCELED);
        else
            e->active[kept++] = s;
    }
    e->n_active = kept;
}

/* Lock held: cancel what is still queued, admit waiting jobs round-robin
 * into free batch slots. Base-model jobs are ready at once; adapter jobs
 * are chained on *to_acquire (via q_next), canceled ones on *to_finish. */
static void admit(struct slora_engine *e, struct seq **to_acquire, struct seq **to_finish)
{
    for (struct seq *s = e->seqs; s; s = s->next) {
        if (e->stopping)
            atomic_store(&s->canceled, true);
        if (s->state == SEQ_WAITING && atomic_load(&s->canceled)) {
            unqueue(s);
            e->st.waiting--;
            s->res.err = SLORA_ECANCELED;
            s->q_next = *to_finish;
            *to_finish = s;
        }
    }
    for (int slots = e->cfg.max_batch - e->st.running; slots > 0; slots--) {
        struct seq *s = pop_round_robin(e);
        if (!s)
            break;
        s->state = SEQ_ACQUIRING;
        s->admitted = true;
        e->st.running++;
        if (s->n_ad) {
            s->tenant->n_acquiring += s->n_ad;
            s->n_pending = s->n_ad;
            e->st.acquiring++;
            s->q_next = *to_acquire;
            *to_acquire = s;
        } else {
            s->ws = &e->base;
            s->weights_ready = true;
        }
    }
}

/* The sequence's weight set once every handle is in: the engine's base
 * when no adapter has a nonzero weight, the cache entry's own set for one
 * adapter of weight 1 (rows on that adapter, alone or not, share it), else
 * the sequence's own set with a term per nonzero weight pointing at its
 * entry's deltas, scaled by the weight. Lock held. */
static int bind_weights(struct slora_engine *e, struct seq *s)
{
    int n_terms = 0, last = 0;
    for (int k = 0; k < s->n_ad; k++)
        if (s->ad[k].weight != 0.0f)
            n_terms++, last = k;
    if (!n_terms) {
        s->ws = &e->base;
        return 0;
    }
    if (n_terms == 1 && s->ad[last].weight == 1.0f) {
        s->ws = slora_cache_handle_weights(s->ad[last].handle);
        return 0;
    }
    int err = slora_weights_init(&s->mix, e->model, n_terms);
    if (err)
        return err;
    s->mix.id = slora_weights_new_id();
    for (int k = 0, t = 0; k < s->n_ad; k++)
        if (s->ad[k].weight != 0.0f)
            slora_weights_copy_term(&s->mix, t++, slora_cache_handle_weights(s->ad[k].handle), 0,
                                    s->ad[k].weight);
    s->ws = &s->mix;
    return 0;
}

/* Lock held: sequences whose weights arrived become ACTIVE (with a KV
 * cache) or, on error or cancel, are chained on *to_finish. */
static void activate(struct slora_engine *e, struct seq **to_finish)
{
    for (struct seq *s = e->seqs; s; s = s->next) {
        if (s->state != SEQ_ACQUIRING || !s->weights_ready)
            continue;
        if (s->n_ad)
            e->st.acquiring--;
        s->state = SEQ_ACTIVE;
        if (!s->res.err && atomic_load(&s->canceled))
            s->res.err = SLORA_ECANCELED;
        if (!s->res.err && s->n_ad)
            s->res.err = bind_weights(e, s);
        if (!s->res.err) {
            s->kv = e->n_spare_kv ? e->spare_kv[--e->n_spare_kv] : slora_kv_new(e->model);
            if (!s->kv)
                s->res.err = SLORA_ENOMEM;
        }
        if (s->res.err) {
            s->q_next = *to_finish;
            *to_finish = s;
        } else {
            e->active[e->n_active++] = s;
        }
    }
}

static void *engine_thread(void *arg)
{
    struct slora_engine *e = arg;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        struct seq *to_acquire = NULL, *to_finish = NULL;
        admit(e, &to_acquire, &to_finish);
        bool unlocked = to_acquire != NULL;
        if (to_acquire) {
            /* A hit answers inline (on_weights takes the lock); a mix's
             * misses are all queued before any is waited for. */
            pthread_mutex_unlock(&e->lock);
            while (to_acquire) {
                struct seq *s = to_acquire;
                to_acquire = s->q_next;
                for (int k = 0; k < s->n_ad; k++) {
                    struct seq_adapter *ad = &s->ad[k];
                    int err = slora_cache_acquire(e->cache, ad->id, ad->version, ad->adapter,
                                                  on_weights, ad);
                    if (err)
                        on_weights(ad, NULL, err, slora_strerror(err));
                }
            }
            pthread_mutex_lock(&e->lock);
        }
        activate(e, &to_finish);
        if (!to_finish && !e->n_active) {
            if (e->stopping && !e->seqs)
                break;
            /* A submit or cancel while the lock was released for the
             * acquires signalled nobody: look at the queues again first. */
            if (!unlocked)
                pthread_cond_wait(&e->wake, &e->lock);
            continue;
        }
        pthread_mutex_unlock(&e->lock);
        while (to_finish) {
            struct seq *s = to_finish;
            to_finish = s->q_next;
            finish(e, s, s->res.err);
        }
        reap_canceled(e);
        run_step(e);
        pthread_mutex_lock(&e->lock);
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

struct slora_engine *slora_engine_new(const struct slora_model *m, struct slora_cache *cache,
                                      const struct slora_engine_config *cfg)
{
    struct slora_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->model = m;
    e->cache = cache;
    e->cfg = *cfg;
    if (e->cfg.threads <= 0)
        e->cfg.threads = 1;
    if (e->cfg.max_batch <= 0)
        e->cfg.max_batch = 16;
    if (e->cfg.max_queue <= 0)
        e->cfg.max_queue = 64;
    /* a prompt joins in chunks of at most PREFILL_CHUNK rows per pass */
    e->max_rows = e->cfg.max_batch + (m->cfg.seq_len < PREFILL_CHUNK ? m->cfg.seq_len : PREFILL_CHUNK);
    if (slora_weights_init(&e->base, m, 0))
        goto err_free_engine;
    e->fwd = slora_fwd_new(m, e->max_rows, e->cfg.threads);
    e->rows = calloc((size_t)e->max_rows, sizeof(*e->rows));
    e->active = calloc((size_t)e->cfg.max_batch, sizeof(*e->active));
    e->spare_kv = calloc((size_t)e->cfg.max_batch, sizeof(*e->spare_kv));
    if (!e->fwd || !e->rows || !e->active || !e->spare_kv)
        goto err_free_buffers;
    /* the forward pass threads itself; BLAS calls run on its threads' slices */
    slora_blas_set_threads(1);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->wake, NULL);
    if (pthread_create(&e->thread, NULL, engine_thread, e))
        goto err_destroy_sync;
    return e;

err_destroy_sync:
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
err_free_buffers:
    free(e->spare_kv);
    free(e->active);
    free(e->rows);
    slora_fwd_free(e->fwd);
    slora_weights_deinit(&e->base);
err_free_engine:
    free(e);
    return NULL;
}

void slora_engine_stop(struct slora_engine *e)
{
    if (e->joined)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = true;
    pthread_cond_signal(&e->wake);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    e->joined = true;
}

void slora_engine_free(struct slora_engine *e)
{
    if (!e)
        return;
    slora_engine_stop(e);
    while (e->tenants) {
        struct tenant *t = e->tenants;
        e->tenants = t->next;
        free(t->name);
        free(t);
    }
    pthread_cond_destroy(&e->wake);
    pthread_mutex_destroy(&e->lock);
    while (e->n_spare_kv)
        slora_kv_free(e->spare_kv[--e->n_spare_kv]);
    free(e->spare_kv);
    free(e->active);
    free(e->rows);
    slora_fwd_free(e->fwd);
    slora_weights_deinit(&e->base);
    free(e);
}

void slora_engine_stats(struct slora_engine *e, struct slora_engine_stats *out)
{
    pthread_mutex_lock(&e->lock);
    *out = e->st;
    out->stopping = e->stopping;
    pthread_mutex_unlock(&e->lock);
}

void slora_engine_tenants(struct slora_engine *e,
                          void (*cb)(void *arg, const struct slora_engine_tenant_stats *t),
                          void *arg)
{
    pthread_mutex_lock(&e->lock);
    for (struct tenant *t = e->tenants; t; t = t->next) {
        struct slora_engine_tenant_stats ts = {t->name, t->prompt_tokens, t->completion_tokens,
                                               t->n_seqs};
        cb(arg, &ts);
    }
    pthread_mutex_unlock(&e->lock);
}
