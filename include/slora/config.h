/* config.h - the daemon's configuration: every key, its default, its range.
 *
 * Precedence: compiled defaults < the JSON config file (--config PATH, else
 * $SLORAD_CONFIG, else none) < command-line flags. Unknown keys, wrong types
 * and out-of-range values are errors naming the key and the accepted range.
 * A loaded config is immutable: SIGHUP builds a new one with the same argv
 * and swaps pointers; readers on the loop thread borrow it, workers get
 * copies of the values they need.
 */
#ifndef SLORA_CONFIG_H
#define SLORA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_auth;

/* "store": where adapters are kept (store.h). Strings NULL when unset. */
struct slora_config_store {
    char *kind;             /* "dir" (default: state_dir) or "redis" */
    char *url;              /* redis://host:port[/db] */
    char *prefix;           /* key prefix; default "slorad:" */
    char *password_file;    /* AUTH password file, NULL: none */
    int64_t timeout_ms;     /* connect/command deadline; default 1000 */
    int64_t stream_max_len; /* change-stream entries kept; default 10000 */
};

struct slora_config {
    char *config_path; /* the file loaded, or NULL */
    char *listen;      /* "host:port" or "[v6]:port" */
    char *model;       /* base model path */
    char *tokenizer;   /* tokenizer path */
    char *model_id;    /* default: model file name without extension */
    char *state_dir;   /* default: $STATE_DIRECTORY, else /var/lib/slorad */
    int64_t threads;   /* total compute threads (engine, BLAS, delta generation); 0 = one per CPU */
    char *log_level;   /* debug, info, warn, error */
    int64_t max_header_bytes;
    int64_t max_body_bytes;          /* adapter uploads */
    int64_t max_json_bytes;          /* JSON request bodies */
    int64_t max_json_depth;          /* nesting of arrays/objects in a JSON body */
    int64_t max_json_elements;       /* values plus object keys in a JSON body */
    int64_t max_queued_reply_bytes;  /* unsent output per connection before it blocks */
    int64_t max_queued_replies;      /* write requests per connection before it blocks */
    int64_t tcp_send_buffer_bytes;   /* SO_SNDBUF of client sockets; 0 = the kernel's */
    int64_t max_connections;
    int64_t header_timeout_ms; /* first byte to end of headers */
    int64_t body_timeout_ms;   /* longest silence while a body is read */
    int64_t body_deadline_ms;  /* end of headers to end of body, however it trickles */
    int64_t idle_timeout_ms;   /* keep-alive connection without a request */
    int64_t drain_timeout_ms;  /* SIGTERM: in-flight requests get this long */
    int64_t max_adapter_params;
    int64_t max_expand_bytes;       /* intermediates of an adapter's delta generation */
    int64_t max_expand_work;        /* multiply-adds of an adapter's delta generation */
    int64_t max_uploads_per_tenant; /* uploads validated at once per tenant; more wait */
    int64_t delta_cache_bytes;
    char *delta_dtype;         /* dense deltas: auto (F32, BF16 on quantized bases), f32, f16, bf16 */
    int64_t max_context;       /* served context (KV cache per sequence), at most the model's */
    int64_t max_tokens;               /* cap on a completion's max_tokens */
    int64_t max_batch;                /* sequences decoded together */
    int64_t queue_depth;              /* waiting sequences before 503 */
    int64_t max_sequences_per_tenant; /* concurrent sequences before 429 */
    int64_t max_logits_bytes;         /* /v1/logits response size before 400 */
    int64_t worker_threads;           /* uploads, hashing, file I/O */
    int64_t max_pinned_bytes_per_tenant; /* delta-cache bytes one tenant may pin */
    int64_t max_generations_per_tenant;  /* sequences one tenant may have waiting for a delta */
    bool allow_insecure_remote;
    struct slora_config_store store;
    int n_tenants;
    struct slora_auth *auth; /* tenants and admin key (auth.h); a reference the config owns */
};

/* Build a config from argv (after the command name) and the environment.
 * Returns 0, SLORA_EINVAL (bad flag or value) or SLORA_ERANGE, with diag
 * naming the key or flag; *help set when --help was given (then *out is
 * NULL and 0 is returned). */
int slora_config_load(int argc, char **argv, struct slora_config **out, bool *help, char *diag,
                      size_t diag_len);
/* Parse a JSON document over the values already in cfg (file layer). */
int slora_config_apply_json(struct slora_config *cfg, const char *text, size_t len, char *diag,
                            size_t diag_len);
/* Compiled defaults; NULL on ENOMEM. */
struct slora_config *slora_config_new_defaults(void);
void slora_config_free(struct slora_config *cfg);

/* Auth is on when a tenant or the admin key is configured. */
bool slora_config_auth_enabled(const struct slora_config *cfg);
/* Split cfg->listen into host (without brackets) and port. 0 or EINVAL. */
int slora_config_listen_split(const char *listen, char *host, size_t host_len, int *port);
/* 127.0.0.0/8, ::1 or "localhost". */
bool slora_config_host_is_loopback(const char *host);
/* Name of the i-th scalar key (tests, docs), NULL past the last. */
const char *slora_config_key_name(size_t i);
/* Usage text for the flags. */
const char *slora_config_usage(void);

#endif
