/* parallel.h - run a fixed list of independent tasks on n threads.
 *
 * Tasks are numbered 0..n_tasks-1 and handed out in order from an atomic
 * counter; the caller's thread works too. A task must not depend on which
 * thread runs it or on the order tasks run in, so a computation split into
 * tasks by problem size alone gives the same bits at any thread count.
 * Reentrant: nothing is shared between calls.
 */
#ifndef SLORA_PARALLEL_H
#define SLORA_PARALLEL_H

#include <stddef.h>

#define SLORA_PARALLEL_MAX_THREADS 64

/* Run task `task` on worker `worker` (0..n_workers-1, for per-worker scratch). */
typedef void (*slora_task_fn)(void *ctx, size_t task, int worker);

/* Returns the number of workers used (1..n_threads, at most
 * SLORA_PARALLEL_MAX_THREADS). When a thread cannot be started, its share
 * runs on the others; the result is the same. */
int slora_parallel_run(int n_threads, size_t n_tasks, slora_task_fn fn, void *ctx);

#endif
