/* server.h - the libuv HTTP server: listening socket, connections, timeouts,
 * worker pool, signals, systemd notification, access log.
 *
 * slora_server_run owns the event loop thread from start to exit: it binds
 * cfg->listen, logs `listening on HOST:PORT`, sends READY=1 and serves api
 * until SIGTERM/SIGINT, then stops accepting, lets in-flight requests finish
 * (at most drain_timeout_ms), sends STOPPING=1, runs hooks->stop, waits
 * for every call to be completed, closes the loop and returns 0. SIGHUP runs
 * hooks->reload_load on a worker (file I/O and parsing stay off the loop),
 * then hooks->reload_apply on the loop thread; the new config applies to
 * limits of requests that start afterwards (configs are kept until exit, so
 * calls may borrow them; after 1024 reloads SIGHUP is refused with a
 * warning and the hooks are not called). SIGHUPs arriving while a reload is
 * in flight are coalesced into one more reload after it. Worker jobs
 * (slora_api_call_queue_work) run on libuv's thread pool, sized by
 * worker_threads.
 */
#ifndef SLORA_SERVER_H
#define SLORA_SERVER_H

#include <slora/api.h>
#include <slora/config.h>

struct slora_server_hooks {
    /* SIGHUP, worker thread: read and parse a new config, touching no
     * shared state. 0 with *out set (ownership passes to the server), or
     * an error: logged, the running config stays. */
    int (*reload_load)(void *arg, struct slora_config **out);
    /* Loop thread, after a successful reload_load: install cfg (api
     * config, auth, log level). cfg is borrowed; the server keeps it until
     * exit. */
    void (*reload_apply)(void *arg, const struct slora_config *cfg);
    /* Shutdown, loop thread, once: after the drain (every connection
     * closed, its call canceled) and before the loop is closed. Stop what
     * completes calls from other threads (cancel engine jobs, wait for the
     * compute threads), so every call is completed while the loop still
     * runs; work submitted later must be refused. Optional. */
    void (*stop)(void *arg);
    void *arg;
};

/* Serve until a stop signal. Returns 0 after a clean drain, or a negative
 * SLORA_E* when the listener could not be set up (diag says why). cfg is
 * borrowed; it must outlive the call. */
int slora_server_run(const struct slora_config *cfg, struct slora_api *api,
                     const struct slora_server_hooks *hooks, char *diag, size_t diag_len);

/* sd_notify(3) by hand: send state ("READY=1", ...) to $NOTIFY_SOCKET when
 * set. 0, or a negative SLORA_E* when sending failed. Any thread. */
int slora_server_notify(const char *state);

#endif
