/* cmd_generate.c - `slorad generate`: one completion on the command line.
 *
 * stdout carries only the continuation (exactly the text /v1/completions
 * returns for the same request: the generation state machine is shared) and
 * a final newline; statistics go to stderr. Exit 0 ok, 1 runtime error,
 * 2 usage. Single-threaded: the prompt is prefilled in one batch, then one
 * decode row per step.
 */
#include "internal.h"

#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/error.h>
#include <slora/forward.h>
#include <slora/generate.h>
#include <slora/merged.h>
#include <slora/model.h>
#include <slora/tokenizer.h>
#include <slora/weights.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: slorad generate --model M [--tokenizer T] --prompt P [-n N]\n"
               "                       [--temperature F] [--top-p F] [--top-k K] [--seed S]\n"
               "                       [--stop S]... [--adapter A] [--threads N]\n"
               "\n"
               "Prints the continuation of P (encoded as /v1/completions does: BOS first when\n"
               "the vocabulary adds one) and a newline; statistics go to stderr.\n"
               "\n"
               "  --model M        llama2.c .bin or GGUF model\n"
               "  --tokenizer T    llama2.c tok*.bin for a .bin model; default tok<vocab_size>.bin,\n"
               "                   then tokenizer.bin, next to the model. A GGUF's own\n"
               "                   vocabulary is always used (T must then be the same one)\n"
               "  --prompt P       prompt text (\"\" = just BOS)\n"
               "  -n N             maximum tokens to generate (default 256; generation also\n"
               "                   ends at an end-of-generation token or BOS, a stop string\n"
               "                   or the model's seq_len)\n"
               "  --temperature F  0 = greedy (argmax, lowest id on ties); default 1\n"
               "  --top-p F        nucleus sampling in (0, 1); 1 = off (default)\n"
               "  --top-k K        keep the K most likely tokens; 0 = off (default)\n"
               "  --seed S         RNG seed (unsigned 64-bit); default random, printed to stderr\n"
               "  --stop S         stop before the first occurrence of S (repeatable)\n"
               "  --adapter A      apply this SuperLoRA adapter (W' = W + dW)\n"
               "  --threads N      compute threads (default 1)\n");
}

struct options {
    const char *model;
    const char *tokenizer;
    const char *prompt;
    const char *adapter;
    int max_tokens;
    int threads;
    struct slora_sampler_params sampler;
    bool have_seed;
    const char **stop;
    int n_stop;
};

static bool parse_float(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

/* 0 ok, 1 --help shown, 2 usage error (message printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        OPT_MODEL = 256,
        OPT_TOKENIZER,
        OPT_PROMPT,
        OPT_TEMP,
        OPT_TOP_P,
        OPT_TOP_K,
        OPT_SEED,
        OPT_STOP,
        OPT_ADAPTER,
        OPT_THREADS
    };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, OPT_MODEL},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"prompt", required_argument, NULL, OPT_PROMPT},
        {"temperature", required_argument, NULL, OPT_TEMP},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"top-k", required_argument, NULL, OPT_TOP_K},
        {"seed", required_argument, NULL, OPT_SEED},
        {"stop", required_argument, NULL, OPT_STOP},
        {"adapter", required_argument, NULL, OPT_ADAPTER},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct options){
        .max_tokens = 256, .threads = 1, .sampler = {.temperature = 1.0f, .top_p = 1.0f}};
    o->stop = calloc((size_t)argc + 1, sizeof(*o->stop));
    if (!o->stop) {
        fprintf(stderr, "slorad generate: out of memory\n");
        return 2;
    }
    optind = 1;
    opterr = 0;
    int c, idx = -1;
    while ((c = getopt_long(argc, argv, ":n:h", longopts, &idx)) != -1) {
        bool ok = true;
        long long v = 0;
        switch (c) {
        case OPT_MODEL:
            o->model = optarg;
            break;
        case OPT_TOKENIZER:
            o->tokenizer = optarg;
            break;
        case OPT_PROMPT:
            o->prompt = optarg;
            break;
        case 'n':
            ok = slora_cliarg_int(optarg, 0, INT_MAX, &v);
            o->max_tokens = (int)v;
            break;
        case OPT_THREADS:
            ok = slora_cliarg_int(optarg, 1, 256, &v);
            o->threads = (int)v;
            break;
        case OPT_TEMP:
            ok = parse_float(optarg, 0.0f, INFINITY, &o->sampler.temperature) &&
                 isfinite(o->sampler.temperature);
            break;
        case OPT_TOP_P:
            ok = parse_float(optarg, 0.0f, 1.0f, &o->sampler.top_p) && o->sampler.top_p > 0.0f;
            break;
        case OPT_TOP_K:
            ok = slora_cliarg_int(optarg, 0, INT_MAX, &v);
            o->sampler.top_k = (int)v;
            break;
        case OPT_SEED:
            ok = parse_u64(optarg, &o->sampler.seed);
            o->have_seed = true;
            break;
        case OPT_STOP:
            ok = optarg[0] != '\0';
            o->stop[o->n_stop++] = optarg;
            break;
        case OPT_ADAPTER:
            o->adapter = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "slorad generate: %s needs a value\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        default:
            fprintf(stderr, "slorad generate: unknown option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "slorad generate: invalid value '%s' for %s%s\n", optarg,
                    c == 'n' ? "-n" : "--", c == 'n' ? "" : longopts[idx].name);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "slorad generate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!o->model || !o->prompt) {
        fprintf(stderr, "slorad generate: --model and --prompt are required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return s;
}

struct run {
    struct slora_model *model;
    struct slora_tokenizer *owned_tok;
    const struct slora_tokenizer *tok;
    struct slora_weights ws;
    struct slora_merged *merged; /* --adapter: W' = W + dW, else NULL */
    struct slora_kv *kv;
    struct slora_fwd *fwd;
    struct slora_fwd_row *rows;
    float *logits;
    int *prompt;
    struct slora_gen *gen;
};

static void run_free(struct run *r)
{
    slora_gen_free(r->gen);
    free(r->prompt);
    free(r->logits);
    free(r->rows);
    slora_fwd_free(r->fwd);
    slora_kv_free(r->kv);
    slora_merged_free(r->merged);
    slora_weights_deinit(&r->ws);
    slora_tokenizer_free(r->owned_tok);
    slora_model_free(r->model);
}

static int generate(const struct options *o, char *diag, size_t diag_len)
{
    struct run r = {0};
    int err = slora_model_load(o->model, NULL, &r.model, diag, diag_len);
    if (err)
        return err;
    err = slora__cmd_tokenizer(r.model, o->tokenizer, &r.tok, &r.owned_tok, diag, diag_len);
    if (err)
        goto out;
    int vocab = r.model->cfg.shape.vocab_size, seq_len = r.model->cfg.seq_len, n_prompt;
    size_t prompt_len = strlen(o->prompt);
    if (prompt_len > slora_tokenizer_max_text_bytes(r.tok, seq_len - 1)) {
        snprintf(diag, diag_len, "prompt of %zu bytes cannot fit the model's context of %d tokens",
                 prompt_len, seq_len);
        err = SLORA_ERANGE;
        goto out;
    }
    err = SLORA_ENOMEM;
    size_t cap = slora_tokenizer_max_tokens(r.tok, prompt_len), count;
    r.prompt = malloc(cap * sizeof(*r.prompt));
    if (!r.prompt)
        goto out;
    err = slora_tokenizer_encode(r.tok, o->prompt, prompt_len,
                                 slora_tokenizer_add_bos(r.tok) ? SLORA_TOK_ADD_BOS : 0, r.prompt,
                                 cap, &count);
    if (err) {
        snprintf(diag, diag_len, "cannot encode the prompt with this vocabulary");
        goto out;
    }
    n_prompt = (int)count;
    if (n_prompt == 0) {
        snprintf(diag, diag_len, "the prompt is empty and the vocabulary adds no BOS");
        err = SLORA_EINVAL;
        goto out;
    }
    if (n_prompt >= seq_len) {
        snprintf(diag, diag_len, "prompt is %d tokens; the model's context is %d", n_prompt,
                 seq_len);
        err = SLORA_ERANGE;
        goto out;
    }
    struct slora_gen_params gp = {
        .max_tokens = o->max_tokens,
        .seq_len = seq_len,
        .stop = o->stop,
        .n_stop = o->n_stop,
        .sampler = o->sampler,
        .logprobs = -1,
    };
    err = slora_gen_new(r.tok, r.prompt, n_prompt, &gp, &r.gen);
    if (err)
        goto out;
    err = slora_weights_init(&r.ws, r.model, 0);
    if (err || (o->adapter &&
                (err = slora_merged_load(r.model, o->adapter, 1, 1, &r.merged, diag, diag_len))))
        goto out;
    const struct slora_weights *ws = r.merged ? &r.merged->ws : &r.ws;
    err = SLORA_ENOMEM;
    r.kv = slora_kv_new(r.model);
    r.fwd = slora_fwd_new(r.model, n_prompt, o->threads);
    r.rows = malloc((size_t)n_prompt * sizeof(*r.rows));
    r.logits = malloc((size_t)vocab * sizeof(*r.logits));
    if (!r.kv || !r.fwd || !r.rows || !r.logits)
        goto out;

    double t0 = now(), t_prefill = t0;
    if (!slora_gen_is_done(r.gen)) {
        for (int i = 0; i < n_prompt; i++)
            r.rows[i] = (struct slora_fwd_row){r.prompt[i], i, r.kv, ws,
                                               i == n_prompt - 1 ? r.logits : NULL};
        err = slora_fwd_run(r.fwd, r.rows, n_prompt);
        if (err)
            goto out;
        t_prefill = now();
    }
    while (!slora_gen_is_done(r.gen)) {
        struct slora_gen_step step;
        err = slora_gen_accept(r.gen, r.logits, &step);
        if (err)
            goto out;
        fwrite(step.text, 1, step.text_len, stdout);
        fflush(stdout);
        if (slora_gen_is_done(r.gen))
            break;
        int n = slora_gen_n_tokens(r.gen);
        struct slora_fwd_row row = {slora_gen_last_token(r.gen), n - 1, r.kv, ws, r.logits};
        err = slora_fwd_run(r.fwd, &row, 1);
        if (err)
            goto out;
    }
    double t1 = now();
    putchar('\n');
    fflush(stdout);
    int n_gen = slora_gen_n_generated(r.gen);
    /* decode time: every step after the first token, which the prefill paid for */
    fprintf(stderr,
            "prompt %d tokens, prefill %.1f tok/s; generated %d tokens, decode %.1f tok/s; "
            "finish %s; seed %llu\n",
            n_prompt, n_prompt / (t_prefill - t0 > 0 ? t_prefill - t0 : 1e-9), n_gen,
            n_gen > 1 ? (n_gen - 1) / (t1 - t_prefill > 0 ? t1 - t_prefill : 1e-9) : 0.0,
            slora_gen_finish_name(slora_gen_finish(r.gen)), (unsigned long long)o->sampler.seed);
    err = 0;
out:
    run_free(&r);
    return err;
}

int slora_cmd_generate(int argc, char **argv)
{
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        free(o.stop);
        return rc == 1 ? 0 : 2;
    }
    if (!o.have_seed)
        o.sampler.seed = random_seed();
    char diag[512] = "";
    int err = generate(&o, diag, sizeof(diag));
    free(o.stop);
    if (err) {
        fprintf(stderr, "slorad generate: %s%s%s\n", slora_strerror(err), diag[0] ? ": " : "",
                diag);
        return 1;
    }
    return 0;
}
