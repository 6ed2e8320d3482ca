/* parallel.c - a task list drained by up to n threads (see parallel.h).
 * Threads live for one call: the callers run a few large phases, so the
 * thread start cost (tens of microseconds) is noise against the work. */
#include <slora/parallel.h>

#include <pthread.h>
#include <stdatomic.h>

struct run {
    slora_task_fn fn;
    void *ctx;
    size_t n_tasks;
    atomic_size_t next;
};

struct worker {
    struct run *run;
    int id;
    pthread_t thread;
};

static void drain(struct run *run, int id)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&run->next, 1, memory_order_relaxed);
        if (t >= run->n_tasks)
            return;
        run->fn(run->ctx, t, id);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    drain(w->run, w->id);
    return NULL;
}

int slora_parallel_run(int n_threads, size_t n_tasks, slora_task_fn fn, void *ctx)
{
    struct run run = {.fn = fn, .ctx = ctx, .n_tasks = n_tasks};
    atomic_init(&run.next, 0);
    int n = n_threads < 1                            ? 1
            : n_threads > SLORA_PARALLEL_MAX_THREADS ? SLORA_PARALLEL_MAX_THREADS
                                                     : n_threads;
    if ((size_t)n > n_tasks)
        n = n_tasks > 0 ? (int)n_tasks : 1;
    struct worker w[SLORA_PARALLEL_MAX_THREADS];
    int started = 1;
    for (int i = 1; i < n; i++) {
        w[started].run = &run;
        w[started].id = started;
        if (pthread_create(&w[started].thread, NULL, worker_main, &w[started]) == 0)
            started++;
    }
    drain(&run, 0);
    for (int i = 1; i < started; i++)
        pthread_join(w[i].thread, NULL);
    return started;
}
