/* api_gen.h - generation jobs: what completions (api_completions.c) and
 * chat (api_chat.c) share once the prompt is known; not a public interface.
 *
 * Threads: the engine thread only samples and records what happened, one
 * compact event per token (id, the text it released, its logprobs) in the
 * job's pending log under the job's lock. A formatter on an API worker
 * swaps that log out and turns it into JSON: every SSE chunk, the whole
 * response and all token-to-text rendering of logprobs happen there, never
 * on the engine thread (which every sequence of the batch waits for) nor
 * on the loop. At most one formatter per job runs at a time: the engine
 * queues one when it records an event while none is queued (streams: at
 * every token; whole responses: at the end), and the formatter returns
 * when the log is empty. The end of the sequence is a flag in the log, so
 * it arrives even when recording an event ran out of memory; the
 * formatter that sees it completes the call and touches the job no more.
 */
#ifndef SLORA_API_GEN_H
#define SLORA_API_GEN_H

#include "api_job.h"

#include <slora/generate.h>

#include <pthread.h>

enum slora__api_ev_kind {
    SLORA__API_EV_TOKEN,  /* a sampled token and the text it released */
    SLORA__API_EV_PROMPT, /* echo with logprobs: a prompt token's logprobs */
    SLORA__API_EV_ECHO,   /* echo: the prompt's text goes here */
};

struct slora__api_ev {
    enum slora__api_ev_kind kind;
    int token;          /* the token */
    int prev;           /* the token before it, -1 at the start */
    size_t text_len;    /* EV_TOKEN: bytes it released, in the log's text after the previous's */
    bool has_logprob;   /* false: logprobs off, or the first prompt token (no logprob) */
    float logprob;
    int n_top;
    int top_id[SLORA_GEN_MAX_LOGPROBS];
    float top_logprob[SLORA_GEN_MAX_LOGPROBS];
};

/* Events recorded and not yet formatted. */
struct slora__api_evlog {
    struct slora__api_ev *ev; /* (n) of (cap) */
    size_t n, cap;
    struct slora__buf text; /* the EV_TOKEN texts, back to back */
    bool lost;              /* an event could not be recorded (out of memory) */
    bool end;               /* the sequence is over: nothing follows */
};

enum slora__api_choice {
    SLORA__API_CHOICE_ROLE,  /* a stream's opening chunk (chat: the assistant role) */
    SLORA__API_CHOICE_DELTA, /* a stream chunk */
    SLORA__API_CHOICE_WHOLE, /* the whole response's choice */
};

struct slora__api_gen;

/* What the endpoint formats (worker, one formatter at a time). */
struct slora__api_gen_ops {
    const char *object;       /* of the whole response */
    const char *chunk_object; /* of each stream chunk */
    bool role_chunk;          /* streams open with a SLORA__API_CHOICE_ROLE chunk */
    /* Account a token's logprobs (logprobs asked for): an EV_TOKEN or
     * EV_PROMPT event. */
    void (*logprob)(struct slora__api_gen *g, const struct slora__api_ev *ev);
    /* Append one choice object holding text[0..len) and the logprobs
     * accounted since the previous choice; finish NULL while streaming. */
    void (*choice)(struct slora__api_gen *g, struct slora__api_buf *b, enum slora__api_choice kind,
                   const char *text, size_t len, const char *finish);
};

/* The job of a generating endpoint; the endpoint's own job starts with it. */
struct slora__api_gen {
    struct slora__api_job job;
    const struct slora__api_gen_ops *ops;
    struct slora__api_sampling s;
    struct slora_gen *gen; /* the engine thread's once submitted */

    /* engine -> formatter, under lock */
    pthread_mutex_t lock;
    bool has_lock;
    struct slora__api_evlog pending;
    bool formatting;        /* a formatter is queued or running */
    int result_err;         /* set with pending.end: the engine's result */
    char result_diag[256];
    const char *finish;     /* "stop" or "length" */
    int n_generated;

    /* the formatter's */
    struct slora__api_evlog batch; /* being formatted */
    struct slora__api_buf head;    /* `{"id":...,"model":...` of every answer (worker) */
    struct slora__api_buf text;    /* text not yet sent (stream), or all of it */
    size_t text_offset;            /* completions logprobs: bytes of text before the next token */
    bool to_out;                   /* answer into job.out (prepared without the engine) */
    bool stream_begun;             /* SSE headers sent (at the first chunk) */
    bool opened;                   /* the role chunk was sent */
};

/* Worker, in the endpoint's prepare once g->s is parsed, the model resolved
 * and the prompt encoded: cap max_tokens (config cap, context left), create
 * the generator, build the head. A request with nothing to run (max_tokens
 * 0 and no prompt to score) is answered right here into job.out. */
int slora__api_gen_prepare(struct slora__api_gen *g, const struct slora__api_gen_ops *ops);
/* slora__api_endpoint.run of generating endpoints: submit to the engine. */
void slora__api_gen_run(struct slora__api_job *j);
/* slora__api_endpoint.release part of generating endpoints. */
void slora__api_gen_release(struct slora__api_gen *g);

#endif
