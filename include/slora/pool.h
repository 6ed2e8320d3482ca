/* pool.h - a persistent team of threads for the forward pass: every thread
 * runs the same function on its own share (ith of nth), meeting at
 * barriers between the steps that depend on each other (ggml's graph
 * compute does the same).
 *
 * Every wait (a worker for the next run, the caller for the end of a run,
 * a thread at a barrier) spins briefly, then sleeps on a futex until the
 * thread it waits for wakes it. A bounded spin keeps a step at
 * microseconds when every thread has a core; the sleep hands the core to
 * the thread being waited for when they do not (a team sharing two cores
 * with the event loop and the clients), instead of burning its time slices.
 *
 * A run may use fewer threads than the team (slora_pool_team picks how many
 * a run's work is worth): with one, the caller runs alone, the workers stay
 * asleep and barriers return at once. The function sees the run's nth.
 *
 * slora_pool_run is called by one thread at a time (the pool's owner);
 * slora_pool_barrier only from inside the run's function, by every thread
 * of the run.
 */
#ifndef SLORA_POOL_H
#define SLORA_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct slora_pool;

typedef void (*slora_pool_fn)(void *arg, int ith, int nth);

/* A team of n_threads (the caller plus n_threads - 1 workers); NULL on
 * ENOMEM. When a worker cannot start the team is smaller. */
struct slora_pool *slora_pool_new(int n_threads);
void slora_pool_free(struct slora_pool *p);
int slora_pool_size(const struct slora_pool *p);

/* Operations a thread's share of one phase (the work between two barriers)
 * must hold by default to be worth waking it: 10-25 microseconds of work
 * at 20-50 GFLOP/s, against a barrier round trip of about a microsecond
 * when both threads have a core and a futex wake-up (5-10 microseconds
 * plus the sleeper's return to a core) when they do not. */
#define SLORA_POOL_MIN_SHARE 5.0e5

/* Threads worth using (1 to the team's size) for a run of `ops` operations
 * split into `phases` phases by barriers: each thread's share of a phase is
 * at least the pool's minimum share. NaN or negative ops: 1. */
int slora_pool_team(const struct slora_pool *p, double ops, int phases);
/* Set that minimum share (SLORA_POOL_MIN_SHARE until set); 0 or less: every
 * run is worth the whole team. By the owner, between runs. */
void slora_pool_set_min_share(struct slora_pool *p, double ops);

/* Run fn(arg, ith, nth) on nth threads (the caller is ith 0; nth is clamped
 * to 1..size); returns when all have returned. */
void slora_pool_run_team(struct slora_pool *p, int nth, slora_pool_fn fn, void *arg);
/* The same on the whole team. */
void slora_pool_run(struct slora_pool *p, slora_pool_fn fn, void *arg);

/* Claimed work, first come first served (a thread that lost its core for
 * a while does not hold the others at the next barrier): every thread of a
 * run, ith, calls slora_pool_claim for the same sequence of spaces of n
 * items each, each space until it returns false; every item of a space
 * (0..n-1, into *item) goes to exactly one thread. Claims order no memory:
 * what one thread wrote another reads after a barrier. */
bool slora_pool_claim(struct slora_pool *p, int ith, int64_t n, int64_t *item);

/* Wait until every thread of the run has reached this barrier. */
void slora_pool_barrier(struct slora_pool *p);

/* How often threads went to sleep waiting (for a run, the end of a run or a
 * barrier) since slora_pool_new; read by the owner between runs. */
unsigned long slora_pool_sleeps(const struct slora_pool *p);

#endif
