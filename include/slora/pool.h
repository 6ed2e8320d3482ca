/* pool.h - a persistent team of threads for the forward pass: every thread
 * runs the same function on its own share (ith of nth), meeting at
 * barriers between the steps that depend on each other (ggml's graph
 * compute does the same).
 *
 * Between runs the workers sleep on a condition variable after a short
 * spin, so an idle pool costs no CPU (spinning idle threads starve the
 * rest of a small machine). Inside a run the barrier spins, yielding the
 * core after a while, so a step costs microseconds, not a wake-up.
 *
 * slora_pool_run is called by one thread at a time (the pool's owner);
 * slora_pool_barrier only from inside the run's function, by every thread.
 */
#ifndef SLORA_POOL_H
#define SLORA_POOL_H

struct slora_pool;

typedef void (*slora_pool_fn)(void *arg, int ith, int nth);

/* A team of n_threads (the caller plus n_threads - 1 workers); NULL on
 * ENOMEM. When a worker cannot start the team is smaller. */
struct slora_pool *slora_pool_new(int n_threads);
void slora_pool_free(struct slora_pool *p);
int slora_pool_size(const struct slora_pool *p);
/* Run fn(arg, ith, nth) on every thread (the caller is ith 0); returns when
 * all have returned. */
void slora_pool_run(struct slora_pool *p, slora_pool_fn fn, void *arg);
/* Wait until every thread of the run has reached this barrier. */
void slora_pool_barrier(struct slora_pool *p);

#endif
