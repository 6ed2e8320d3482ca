/* store_redis.h - private to the Redis store (store_redis.c over
 * store_redis_link.c): the connection thread's interface. The only files
 * that include hiredis (and, through its adapter, libuv).
 *
 * A link thread runs its own libuv loop (never the HTTP server's) with two
 * hiredis async connections: COMMANDS for everything short, FEED for the
 * blocking XREAD of the change stream (a blocked connection answers
 * nothing else). hiredis 0.14 has no timeouts of its own, so every command
 * and every connect gets a uv timer: when it fires the caller gets
 * SLORA_EUNAVAIL and the connection is dropped (a stopped server may
 * still accept TCP connections and never answer), then re-established with
 * a backoff. A PING on COMMANDS every second keeps `up` true to the
 * server's state even when nobody writes. Each connect reads the server's
 * TIME, so writes can carry a deadline in the server's clock.
 */
#ifndef SLORA_STORE_REDIS_H
#define SLORA_STORE_REDIS_H

#include <slora/store.h>

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>

enum { SLORA__REDIS_COMMANDS, SLORA__REDIS_FEED, SLORA__REDIS_N_LINKS };

struct slora__redis_target {
    char host[256];
    int port;
    int db;
    const char *password; /* NULL: no AUTH */
    int timeout_ms;
};

struct slora__redis;

/* Called on the link thread with the reply (never NULL, never an error
 * reply: those fail the call). Writes the caller's result. */
typedef int (*slora__redis_parse_cb)(void *out, const redisReply *reply, char *diag,
                                     size_t diag_len);

/* Start the link thread and connect both links, waiting up to timeout_ms
 * for COMMANDS (a server that is down is not an error). */
int slora__redis_start(const struct slora__redis_target *t, struct slora__redis **out,
                       char *diag, size_t diag_len);
void slora__redis_stop(struct slora__redis *r);
/* Send argv (borrowed for the call) on link and wait for the reply, at most
 * timeout_ms + extra_ms (extra: how long a BLOCK may wait). */
int slora__redis_call(struct slora__redis *r, int link, int argc, const char **argv,
                      const size_t *argvlen, int extra_ms, slora__redis_parse_cb parse, void *out,
                      char *diag, size_t diag_len);
void slora__redis_stats(struct slora__redis *r, struct slora_store_stats *out);
/* When a command sent now stops being worth running, in the server's
 * clock (ms since the epoch), well before the call's own timeout: a write
 * queued behind a stopped server must not happen after its caller was told
 * it failed. */
int64_t slora__redis_deadline_ms(struct slora__redis *r);

#endif
