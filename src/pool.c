/* pool.c - the forward pass's thread team (see pool.h).
 *
 * Three kinds of event, each a counter that only grows (a futex word): a
 * worker's `run` (a run that uses it is published), `done` (the workers of
 * a run have all returned) and `phase` (the last thread reached a
 * barrier). A waiter remembers the value
 * it saw, spins a little while it is unchanged, then registers as a
 * sleeper and sleeps on the word; whoever bumps a word wakes its sleepers,
 * and makes the system call only when there are some. The sleeper count is
 * raised before the waiter's last check of the word and the bump comes
 * before the waker reads the count (both sequentially consistent), so a
 * wake-up is never lost.
 */
#include <slora/pool.h>

#include <linux/futex.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Pauses before a waiting thread sleeps: about 10 microseconds (a pause is
 * 10-50 ns on current x86). Longer than a balanced phase's skew between two
 * threads that both have a core, short enough that a thread whose partner
 * was descheduled gives its core back quickly. */
#define SPINS 256

struct event {
    atomic_uint word;
    atomic_int sleepers;
};

/* One per thread of the team (index 0, the caller, has no thread), each on
 * its own cache line: a run wakes only the workers it uses. */
struct worker {
    alignas(64) struct event run; /* runs published to this worker */
    pthread_t thread;
    struct slora_pool *p;
    int ith;
    int64_t mark; /* claim count where this thread's current claim space starts */
};

struct slora_pool {
    int n;
    struct worker *w; /* (n) */
    /* the current run, written by the caller before it signals the workers */
    slora_pool_fn fn;
    void *arg;
    int nth;
    atomic_bool stop;
    double min_share;
    alignas(64) atomic_int pending; /* workers of the run still inside fn */
    struct event done;              /* runs finished by the workers */
    alignas(64) atomic_llong claimed; /* items claimed in the run, over all spaces */
    alignas(64) atomic_int arrived;   /* threads at the current barrier */
    struct event phase;             /* barriers passed */
    atomic_ulong sleeps;
};

static void futex(atomic_uint *word, int op, unsigned val)
{
    syscall(SYS_futex, (unsigned *)word, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* Wait until ev's word differs from seen; returns the new value. */
static unsigned event_wait(struct slora_pool *p, struct event *ev, unsigned seen)
{
    unsigned w;
    for (int i = 0; i < SPINS; i++) {
        if ((w = atomic_load_explicit(&ev->word, memory_order_acquire)) != seen)
            return w;
        CPU_RELAX();
    }
    atomic_fetch_add(&ev->sleepers, 1);
    while ((w = atomic_load(&ev->word)) == seen) {
        atomic_fetch_add_explicit(&p->sleeps, 1, memory_order_relaxed);
        futex(&ev->word, FUTEX_WAIT, seen); /* returns at once if the word moved */
    }
    atomic_fetch_sub(&ev->sleepers, 1);
    return w;
}

static void event_signal(struct event *ev)
{
    atomic_fetch_add(&ev->word, 1);
    if (atomic_load(&ev->sleepers))
        futex(&ev->word, FUTEX_WAKE, INT_MAX);
}

static void *worker_main(void *varg)
{
    struct worker *w = varg;
    struct slora_pool *p = w->p;
    unsigned seen = 0;
    for (;;) {
        seen = event_wait(p, &w->run, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        p->fn(p->arg, w->ith, p->nth);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1)
            event_signal(&p->done);
    }
}

struct slora_pool *slora_pool_new(int n_threads)
{
    struct slora_pool *p = aligned_alloc(64, sizeof(*p));
    if (!p)
        return NULL;
    memset(p, 0, sizeof(*p));
    if (n_threads < 1)
        n_threads = 1;
    p->w = aligned_alloc(64, (size_t)n_threads * sizeof(*p->w));
    if (!p->w) {
        free(p);
        return NULL;
    }
    memset(p->w, 0, (size_t)n_threads * sizeof(*p->w));
    p->min_share = SLORA_POOL_MIN_SHARE;
    p->n = 1;
    for (int i = 1; i < n_threads; i++) {
        struct worker *w = &p->w[i];
        w->p = p;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, worker_main, w))
            break;
        p->n++;
    }
    return p;
}

void slora_pool_free(struct slora_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    for (int i = 1; i < p->n; i++) {
        event_signal(&p->w[i].run);
        pthread_join(p->w[i].thread, NULL);
    }
    free(p->w);
    free(p);
}

int slora_pool_size(const struct slora_pool *p)
{
    return p->n;
}

int slora_pool_team(const struct slora_pool *p, double ops, int phases)
{
    if (!(ops >= 0)) /* also NaN */
        return 1;
    if (p->min_share <= 0)
        return p->n;
    double share = ops / (phases > 1 ? phases : 1) / p->min_share;
    if (share < 1.0)
        return 1;
    return share >= p->n ? p->n : (int)share;
}

void slora_pool_set_min_share(struct slora_pool *p, double ops)
{
    p->min_share = ops;
}

void slora_pool_run_team(struct slora_pool *p, int nth, slora_pool_fn fn, void *arg)
{
    p->nth = nth < 1 ? 1 : nth > p->n ? p->n : nth;
    atomic_store_explicit(&p->claimed, 0, memory_order_relaxed);
    for (int i = 0; i < p->nth; i++)
        p->w[i].mark = 0;
    if (p->nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->nth - 1, memory_order_relaxed);
    unsigned done = atomic_load_explicit(&p->done.word, memory_order_relaxed);
    for (int i = 1; i < p->nth; i++)
        event_signal(&p->w[i].run); /* releases fn, arg, nth and pending */
    fn(arg, 0, p->nth);
    event_wait(p, &p->done, done);
}

void slora_pool_run(struct slora_pool *p, slora_pool_fn fn, void *arg)
{
    slora_pool_run_team(p, p->n, fn, arg);
}

void slora_pool_barrier(struct slora_pool *p)
{
    int nth = p->nth;
    if (nth == 1)
        return;
    unsigned g = atomic_load_explicit(&p->phase.word, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) == nth - 1) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        event_signal(&p->phase);
        return;
    }
    event_wait(p, &p->phase, g);
}

unsigned long slora_pool_sleeps(const struct slora_pool *p)
{
    return atomic_load_explicit(&p->sleeps, memory_order_relaxed);
}

/* Spaces follow each other on one counter: a thread's space starts where
 * the previous one ended (its mark), and no thread enters a space before
 * the previous one is exhausted, so a claim never takes a later space's
 * item (compare-and-swap stops at the end of the space). */
bool slora_pool_claim(struct slora_pool *p, int ith, int64_t n, int64_t *item)
{
    struct worker *w = &p->w[ith];
    long long end = w->mark + n;
    long long cur = atomic_load_explicit(&p->claimed, memory_order_relaxed);
    while (cur < end) {
        if (atomic_compare_exchange_weak_explicit(&p->claimed, &cur, cur + 1,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            *item = cur - w->mark;
            return true;
        }
    }
    w->mark = end;
    return false;
}
