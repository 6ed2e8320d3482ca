/* pool.c - the forward pass's thread team (see pool.h).
 *
 * A run is published by bumping `gen`; workers spin on it briefly, then
 * sleep on `cv`. The barrier is sense-reversing: the last thread to arrive
 * resets the count and bumps `bar_gen`, which the others spin on.
 */
#include <slora/pool.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spins before a waiting thread yields its core or goes to sleep: about
 * 20-50 microseconds of pause instructions. */
#define SPINS 4096

struct slora_pool {
    int n;
    pthread_t *threads;
    slora_pool_fn fn;
    void *arg;
    atomic_uint gen;     /* runs published */
    atomic_int pending;  /* workers still in the current run */
    atomic_bool stop;
    atomic_int sleepers; /* workers waiting on cv */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int bar_count;
    atomic_uint bar_gen;
};

struct worker_arg {
    struct slora_pool *p;
    int ith;
};

static void *worker_main(void *varg)
{
    struct worker_arg *wa = varg;
    struct slora_pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < SPINS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        seen = g;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

struct slora_pool *slora_pool_new(int n_threads)
{
    struct slora_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (n_threads < 1)
        n_threads = 1;
    p->threads = calloc((size_t)n_threads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->n = 1;
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = malloc(sizeof(*wa));
        if (!wa)
            break;
        wa->p = p;
        wa->ith = p->n;
        if (pthread_create(&p->threads[p->n], NULL, worker_main, wa)) {
            free(wa);
            break;
        }
        p->n++;
    }
    return p;
}

void slora_pool_free(struct slora_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int slora_pool_size(const struct slora_pool *p)
{
    return p->n;
}

/* Spin on *v while it equals old, yielding the core after SPINS. */
static void wait_change(atomic_uint *v, unsigned old)
{
    int spins = 0;
    while (atomic_load_explicit(v, memory_order_acquire) == old) {
        if (++spins < SPINS) {
            CPU_RELAX();
        } else {
            sched_yield();
            spins = 0;
        }
    }
}

void slora_pool_run(struct slora_pool *p, slora_pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with a worker going to sleep */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        if (++spins < SPINS) {
            CPU_RELAX();
        } else {
            sched_yield();
            spins = 0;
        }
    }
}

void slora_pool_barrier(struct slora_pool *p)
{
    if (p->n == 1)
        return;
    unsigned g = atomic_load_explicit(&p->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->bar_count, 1, memory_order_acq_rel) == p->n - 1) {
        atomic_store_explicit(&p->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->bar_gen, 1, memory_order_release);
        return;
    }
    wait_change(&p->bar_gen, g);
}
