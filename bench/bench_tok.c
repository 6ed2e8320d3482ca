/* bench_tok.c - per-request and per-token CPU cost outside the forward pass
 * (`make bench` via bench/tok.sh): prompt encoding, sampling and logprobs
 * at the vocabulary sizes we serve (512: stories260K; 32000: llama-sized),
 * and the generation state machine's accept() with stop strings.
 * Times are this thread's CPU time (single-threaded work; robust to other
 * processes sharing the cores).
 *
 * With --text, also the encoding speed of each --gguf vocabulary on that
 * text (bench/tok.sh: >= 1 MiB of mixed text, compared with llama.cpp's
 * tokenize on the same vocabulary files): best of 3 runs, thread CPU time,
 * written as JSON to --speed-json.
 *
 * usage: bench_tok --tok T.bin --vocab V [--tok T.bin --vocab V]...
 *                  [--json OUT] [--md OUT]
 *                  [--text FILE --gguf LABEL=V.gguf... --speed-json OUT]
 */
#include <slora/cliarg.h>
#include <slora/fsio.h>
#include <slora/generate.h>
#include <slora/gguf.h>
#include <slora/sampler.h>
#include <slora/tokenizer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TOKS 4
#define TEXT_BYTES ((size_t)1 << 20)
#define SAMPLES 2000

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char story[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. \"Can I play?\" asked Tim. They played until "
    "the sun went down, and then they went home happy.\n";

/* Logits shaped like a language model's: a few strong candidates over a
 * long tail (deterministic LCG + Box-Muller, scaled). */
static void fake_logits(float *l, int n, unsigned seed)
{
    unsigned s = seed * 2654435761u + 1;
    for (int i = 0; i < n; i += 2) {
        s = s * 1103515245u + 12345u;
        double u1 = ((s >> 8) + 1.0) / 16777217.0;
        s = s * 1103515245u + 12345u;
        double u2 = (s >> 8) / 16777216.0;
        double r = sqrt(-2.0 * log(u1));
        l[i] = (float)(3.0 * r * cos(6.283185307179586 * u2));
        if (i + 1 < n)
            l[i + 1] = (float)(3.0 * r * sin(6.283185307179586 * u2));
    }
}

struct row {
    int vocab;
    double encode_mb_s, encode_tok_s, prompt_us;
    double sample_us[5]; /* greedy, T=1, top-p 0.9, top-k 40, top-k 40 + top-p 0.9 */
    double logprobs_us, accept_us;
};

static const char *const sample_names[5] = {"greedy", "T=1", "top-p 0.9", "top-k 40",
                                            "top-k 40 + top-p 0.9"};

static double time_sampler(int vocab, struct slora_sampler_params p, const float *base, float *work)
{
    struct slora_sampler *s = slora_sampler_new(vocab, &p);
    if (!s)
        exit(1);
    double t0 = now();
    long sink = 0;
    for (int i = 0; i < SAMPLES; i++) {
        memcpy(work, base + (size_t)(i % 8) * (size_t)vocab, (size_t)vocab * sizeof(*work));
        sink += slora_sampler_sample(s, work);
    }
    double us = (now() - t0) / SAMPLES * 1e6;
    slora_sampler_free(s);
    if (sink == -1)
        fputc(' ', stderr);
    return us;
}

static int bench(const char *path, int vocab, struct row *r)
{
    struct slora_tokenizer *t;
    char diag[256];
    if (slora_tokenizer_load(path, vocab, &t, diag, sizeof(diag))) {
        fprintf(stderr, "bench_tok: %s\n", diag);
        return 1;
    }
    r->vocab = vocab;
    char *text = malloc(TEXT_BYTES + 1);
    size_t cap = slora_tokenizer_max_tokens(t, TEXT_BYTES);
    int *ids = malloc(cap * sizeof(*ids));
    float *base = malloc(8 * (size_t)vocab * sizeof(*base));
    float *work = malloc((size_t)vocab * sizeof(*work));
    if (!text || !ids || !base || !work)
        return 1;
    size_t len = strlen(story);
    for (size_t i = 0; i < TEXT_BYTES; i++)
        text[i] = story[i % len];
    text[TEXT_BYTES] = '\0';
    size_t n;
    double t0 = now();
    if (slora_tokenizer_encode(t, text, TEXT_BYTES, SLORA_TOK_ADD_BOS, ids, cap, &n))
        return 1;
    double dt = now() - t0;
    r->encode_mb_s = TEXT_BYTES / dt / 1e6;
    r->encode_tok_s = n / dt;
    /* a typical prompt: the story once (~230 bytes) */
    t0 = now();
    for (int i = 0; i < 1000; i++)
        slora_tokenizer_encode(t, story, sizeof(story) - 1, SLORA_TOK_ADD_BOS, ids, cap, &n);
    r->prompt_us = (now() - t0) / 1000 * 1e6;

    for (int k = 0; k < 8; k++)
        fake_logits(base + (size_t)k * (size_t)vocab, vocab, (unsigned)k + 1);
    const struct slora_sampler_params params[5] = {
        {0.0f, 1.0f, 0, 1},  {1.0f, 1.0f, 0, 1},  {1.0f, 0.9f, 0, 1},
        {1.0f, 1.0f, 40, 1}, {1.0f, 0.9f, 40, 1},
    };
    for (int k = 0; k < 5; k++)
        r->sample_us[k] = time_sampler(vocab, params[k], base, work);

    struct slora_gen_step step;
    t0 = now();
    for (int i = 0; i < SAMPLES; i++)
        slora_gen_logprobs(base + (size_t)(i % 8) * (size_t)vocab, vocab, i % vocab, 5, &step);
    r->logprobs_us = (now() - t0) / SAMPLES * 1e6;

    /* accept() with 4 stop strings, greedy, one sequence of seq_len 4096 */
    const char *stops[4] = {"The End", "\n\n", "Tim said", "zzz"};
    struct slora_gen_params gp = {.max_tokens = SAMPLES,
                                  .seq_len = SAMPLES + 2,
                                  .stop = stops,
                                  .n_stop = 4,
                                  .sampler = {0.0f, 1.0f, 0, 1},
                                  .logprobs = -1};
    int prompt[1] = {slora_tokenizer_special(t, SLORA_TOK_SPECIAL_BOS)};
    struct slora_gen *g;
    if (slora_gen_new(t, prompt, 1, &gp, &g))
        return 1;
    double spent = 0;
    int steps = 0;
    while (!slora_gen_is_done(g) && steps < SAMPLES) {
        /* force a plain text token so no stop fires; time accept() minus the argmax */
        memset(work, 0, (size_t)vocab * sizeof(*work));
        work[ids[1 + steps % 40]] = 1.0f;
        t0 = now();
        slora_gen_accept(g, work, &step);
        spent += now() - t0;
        steps++;
    }
    r->accept_us = spent / steps * 1e6;
    slora_gen_free(g);
    free(text);
    free(ids);
    free(base);
    free(work);
    slora_tokenizer_free(t);
    return 0;
}

static char *slurp(const char *path, size_t *len)
{
    void *buf;
    char diag[256];
    if (slora_fsio_read_file(path, (size_t)1 << 30, &buf, len, diag, sizeof(diag))) {
        fprintf(stderr, "bench_tok: %s\n", diag);
        return NULL;
    }
    return buf;
}

/* Encode text with the GGUF vocabulary `spec` (LABEL=PATH): one JSON row. */
static int bench_gguf(const char *spec, const char *text, size_t len, FILE *out, bool first)
{
    const char *eq = strchr(spec, '=');
    size_t glen;
    char *g = eq ? slurp(eq + 1, &glen) : NULL, diag[256] = "";
    struct slora_gguf *gguf;
    struct slora_tokenizer *t;
    if (!g || slora_gguf_parse((const uint8_t *)g, glen, &gguf, diag, sizeof(diag)) ||
        slora_tokenizer_new_from_gguf(gguf, &t, diag, sizeof(diag))) {
        fprintf(stderr, "bench_tok: %s: %s\n", spec, diag);
        return 1;
    }
    slora_gguf_free(gguf);
    free(g);
    size_t cap = slora_tokenizer_max_tokens(t, len), n = 0;
    int *ids = malloc(cap * sizeof(*ids));
    double best = 0;
    for (int r = 0; ids && r < 3; r++) {
        double t0 = now();
        if (slora_tokenizer_encode(t, text, len, 0, ids, cap, &n))
            return 1;
        double dt = now() - t0;
        best = r == 0 || dt < best ? dt : best;
    }
    fprintf(out, "%s\n {\"label\": \"%.*s\", \"tokens\": %zu, \"seconds\": %.6f, \"tok_s\": %.0f}",
            first ? "" : ",", (int)(eq - spec), spec, n, best, n / best);
    free(ids);
    slora_tokenizer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    const char *toks[MAX_TOKS], *json = NULL, *md = NULL, *text_path = NULL, *speed = NULL;
    const char *ggufs[16];
    int vocabs[MAX_TOKS], n_tok = 0, n_vocab = 0, n_gguf = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        long long v;
        if (!strcmp(argv[i], "--text"))
            text_path = argv[i + 1];
        else if (!strcmp(argv[i], "--gguf") && n_gguf < 16)
            ggufs[n_gguf++] = argv[i + 1];
        else if (!strcmp(argv[i], "--speed-json"))
            speed = argv[i + 1];
        else if (!strcmp(argv[i], "--tok") && n_tok < MAX_TOKS)
            toks[n_tok++] = argv[i + 1];
        else if (!strcmp(argv[i], "--vocab") && n_vocab < MAX_TOKS &&
                 slora_cliarg_int(argv[i + 1], 3, 1 << 24, &v))
            vocabs[n_vocab++] = (int)v;
        else if (!strcmp(argv[i], "--json"))
            json = argv[i + 1];
        else if (!strcmp(argv[i], "--md"))
            md = argv[i + 1];
        else
            n_tok = -1;
    }
    if (n_tok < 1 || n_tok != n_vocab || argc % 2 != 1 || !text_path != !speed) {
        fprintf(stderr, "usage: bench_tok --tok T.bin --vocab V [...] [--json OUT] [--md OUT]\n"
                        "                 [--text FILE --gguf LABEL=V.gguf... --speed-json OUT]\n");
        return 2;
    }
    if (text_path) {
        size_t len;
        char *text = slurp(text_path, &len);
        FILE *f = fopen(speed, "w");
        if (!text || !f)
            return 1;
        fprintf(f, "{\"bytes\": %zu, \"rows\": [", len);
        for (int i = 0; i < n_gguf; i++)
            if (bench_gguf(ggufs[i], text, len, f, i == 0))
                return 1;
        fprintf(f, "\n]}\n");
        fclose(f);
        free(text);
    }
    struct row rows[MAX_TOKS];
    for (int i = 0; i < n_tok; i++)
        if (bench(toks[i], vocabs[i], &rows[i]))
            return 1;
    FILE *f = json ? fopen(json, "w") : NULL;
    if (f) {
        fprintf(f, "{\"rows\": [");
        for (int i = 0; i < n_tok; i++) {
            const struct row *r = &rows[i];
            fprintf(f,
                    "%s\n {\"vocab\": %d, \"encode_mb_s\": %.2f, \"encode_tok_s\": %.0f, "
                    "\"prompt_encode_us\": %.2f, \"sample_us\": {",
                    i ? "," : "", r->vocab, r->encode_mb_s, r->encode_tok_s, r->prompt_us);
            for (int k = 0; k < 5; k++)
                fprintf(f, "%s\"%s\": %.2f", k ? ", " : "", sample_names[k], r->sample_us[k]);
            fprintf(f, "}, \"logprobs5_us\": %.2f, \"accept_us\": %.3f}", r->logprobs_us,
                    r->accept_us);
        }
        fprintf(f, "\n]}\n");
        fclose(f);
    }
    FILE *m = md ? fopen(md, "w") : stdout;
    if (!m)
        return 1;
    fprintf(m, "## Tokenizer and sampling (per request / per token, CPU outside the forward)\n\n"
               "| vocab | encode MB/s | encode tok/s | 230-byte prompt us |");
    for (int k = 0; k < 5; k++)
        fprintf(m, " sample %s us |", sample_names[k]);
    fprintf(m, " logprobs(5) us | accept() us |\n|---|---|---|---|");
    for (int k = 0; k < 5; k++)
        fprintf(m, "---|");
    fprintf(m, "---|---|\n");
    for (int i = 0; i < n_tok; i++) {
        const struct row *r = &rows[i];
        fprintf(m, "| %d | %.1f | %.0f | %.1f |", r->vocab, r->encode_mb_s, r->encode_tok_s,
                r->prompt_us);
        for (int k = 0; k < 5; k++)
            fprintf(m, " %.1f |", r->sample_us[k]);
        fprintf(m, " %.1f | %.2f |\n", r->logprobs_us, r->accept_us);
    }
    if (m != stdout)
        fclose(m);
    return 0;
}
