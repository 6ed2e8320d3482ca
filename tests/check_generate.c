/* check_generate.c - the generation state machine on a hand-made vocabulary:
 * stop rules, stop strings spanning tokens, UTF-8 split across tokens, the
 * U+FFFD tail, max_tokens, seq_len and logprobs. Tokens are forced through
 * greedy sampling of one-hot logits. */
#include "tokutil.h"

#include <slora/error.h>
#include <slora/generate.h>

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FFFD "\xef\xbf\xbd"
#define V 16

static const char *const vocab[V] = {
    "<unk>",  "<s>", "</s>", "Hello", " wor", "ld", "<0xE6>", "<0x97>",
    "<0xA5>", "END", "E",    "ND",    " ",    "x",  "<0xFF>", "\xe6\x97\xa5",
};

static struct slora_tokenizer *make_vocab(void)
{
    return tok_spm_from_pieces(vocab, V);
}

static const struct slora_gen_params base_params = {
    .max_tokens = 100,
    .seq_len = 64,
    .sampler = {.temperature = 0.0f, .top_p = 1.0f},
    .logprobs = -1,
};

static void one_hot(float *logits, int tok)
{
    for (int i = 0; i < V; i++)
        logits[i] = i == tok ? 1.0f : 0.0f;
}

#define MAX_STEPS 6
/* clang-format off */
static const struct {
    const char *name;
    int prompt[3];
    int n_prompt;
    int max_tokens;
    int seq_len;
    const char *stop[2];
    int steps[MAX_STEPS];
    int n_steps;
    const char *text[MAX_STEPS]; /* emitted by each step */
    enum slora_finish finish;
} cases[] = {
    {"max tokens", {1}, 1, 3, 64, {0}, {3, 4, 5}, 3, {"Hello", " wor", "ld"}, SLORA_FINISH_LENGTH},
    {"space stripped after BOS, EOS stops", {1}, 1, 100, 64, {0}, {4, 5, 2}, 3,
     {"wor", "ld", ""}, SLORA_FINISH_STOP},
    {"BOS stops", {1}, 1, 100, 64, {0}, {3, 1}, 2, {"Hello", ""}, SLORA_FINISH_STOP},
    {"UTF-8 split across tokens", {1}, 1, 100, 64, {0}, {6, 7, 8, 13}, 4,
     {"", "", "\xe6\x97\xa5", "x"}, SLORA_FINISH_NONE},
    {"incomplete tail at max tokens", {1}, 1, 3, 64, {0}, {3, 6, 7}, 3, {"Hello", "", FFFD},
     SLORA_FINISH_LENGTH},
    {"incomplete tail at EOS", {1}, 1, 100, 64, {0}, {6, 2}, 2, {"", FFFD}, SLORA_FINISH_STOP},
    {"invalid byte", {1}, 1, 100, 64, {0}, {14, 3}, 2, {FFFD, "Hello"}, SLORA_FINISH_NONE},
    {"lead byte then ASCII", {1}, 1, 100, 64, {0}, {6, 13}, 2, {"", FFFD "x"}, SLORA_FINISH_NONE},
    {"stop string spanning tokens", {1}, 1, 100, 64, {"END"}, {3, 10, 11}, 3, {"Hello", "", ""},
     SLORA_FINISH_STOP},
    {"stop prefix released", {1}, 1, 4, 64, {"END"}, {3, 10, 13, 5}, 4, {"Hello", "", "Ex", "ld"},
     SLORA_FINISH_LENGTH},
    {"held prefix flushed at the end", {1}, 1, 2, 64, {"END"}, {3, 10}, 2, {"Hello", "E"},
     SLORA_FINISH_LENGTH},
    {"stop inside a token", {1}, 1, 100, 64, {"ll"}, {3}, 1, {"He"}, SLORA_FINISH_STOP},
    {"earliest of two stops", {3}, 1, 100, 64, {"ld", "wor"}, {4, 5}, 1, {" "}, SLORA_FINISH_STOP},
    {"seq_len", {1, 3}, 2, 100, 4, {0}, {4, 5}, 2, {" wor", "ld"}, SLORA_FINISH_LENGTH},
    {"UTF-8 stop string", {1}, 1, 100, 64, {"\xe6\x97\xa5"}, {13, 6, 7, 8}, 4, {"x", "", "", ""},
     SLORA_FINISH_STOP},
    {"stop spanning a split character", {1}, 1, 100, 64, {"x\xe6\x97\xa5"}, {3, 13, 6, 7, 8}, 5,
     {"Hello", "", "", "", ""}, SLORA_FINISH_STOP},
    {"stop held across a whole character", {1}, 1, 100, 64, {"x\xe6\x97\xa5!"}, {13, 15, 3}, 3,
     {"", "", "x\xe6\x97\xa5Hello"}, SLORA_FINISH_NONE},
    {"max_tokens 0", {1}, 1, 0, 64, {0}, {0}, 0, {0}, SLORA_FINISH_LENGTH},
};
/* clang-format on */

START_TEST(state_machine)
{
    struct slora_tokenizer *t = make_vocab();
    struct slora_gen_params p = base_params;
    p.max_tokens = cases[_i].max_tokens;
    p.seq_len = cases[_i].seq_len;
    p.stop = cases[_i].stop;
    p.n_stop = cases[_i].stop[1] ? 2 : cases[_i].stop[0] ? 1 : 0;
    struct slora_gen *g;
    ck_assert_int_eq(slora_gen_new(t, cases[_i].prompt, cases[_i].n_prompt, &p, &g), 0);
    for (int s = 0; s < cases[_i].n_steps; s++) {
        ck_assert_msg(!slora_gen_is_done(g), "%s: done before step %d", cases[_i].name, s);
        float logits[V];
        one_hot(logits, cases[_i].steps[s]);
        struct slora_gen_step st;
        ck_assert_int_eq(slora_gen_accept(g, logits, &st), 0);
        ck_assert_int_eq(st.token, cases[_i].steps[s]);
        const char *want = cases[_i].text[s];
        ck_assert_msg(st.text_len == strlen(want) && !memcmp(st.text, want, st.text_len),
                      "%s step %d: got '%.*s' want '%s'", cases[_i].name, s, (int)st.text_len,
                      st.text, want);
        ck_assert_int_eq(slora_gen_last_token(g), cases[_i].steps[s]);
    }
    ck_assert_msg(slora_gen_finish(g) == cases[_i].finish, "%s: finish %d", cases[_i].name,
                  slora_gen_finish(g));
    ck_assert_int_eq(slora_gen_n_generated(g), cases[_i].n_steps);
    ck_assert_int_eq(slora_gen_n_prompt(g), cases[_i].n_prompt);
    int n;
    const int *toks = slora_gen_tokens(g, &n);
    ck_assert_int_eq(n, cases[_i].n_prompt + cases[_i].n_steps);
    ck_assert_int_eq(slora_gen_n_tokens(g), n);
    ck_assert(!memcmp(toks + cases[_i].n_prompt, cases[_i].steps,
                      (size_t)cases[_i].n_steps * sizeof(int)));
    if (slora_gen_is_done(g)) {
        float logits[V];
        one_hot(logits, 3);
        struct slora_gen_step st;
        ck_assert_int_eq(slora_gen_accept(g, logits, &st), SLORA_EINVAL);
    }
    slora_gen_free(g);
    slora_tokenizer_free(t);
}
END_TEST

/* Streaming equals batch: for random token runs and stop strings, the
 * emitted chunks concatenate to the batch detokenization cut at the first
 * stop string, and every chunk is well-formed UTF-8 on its own. */
START_TEST(stream_equals_batch)
{
    static const char *const stops[] = {
        "END", "ll", "x\xe6\x97\xa5", "o w", "ldE", "\xe6\x97\xa5\xe6\x97\xa5", FFFD "x"};
    const int n_stops = (int)(sizeof(stops) / sizeof(stops[0]));
    struct slora_tokenizer *t = make_vocab();
    unsigned rng = 99;
    for (int round = 0; round < 400; round++) {
        rng = rng * 1103515245u + 12345u;
        struct slora_gen_params p = base_params;
        const char *chosen[2];
        p.n_stop = (int)((rng >> 16) % 3);
        for (int k = 0; k < p.n_stop; k++) {
            rng = rng * 1103515245u + 12345u;
            chosen[k] = stops[(rng >> 16) % (unsigned)n_stops];
        }
        p.stop = chosen;
        rng = rng * 1103515245u + 12345u;
        p.max_tokens = 1 + (int)((rng >> 16) % 12);
        int prompt[1] = {1};
        struct slora_gen *g;
        ck_assert_int_eq(slora_gen_new(t, prompt, 1, &p, &g), 0);
        char text[512];
        size_t len = 0;
        while (!slora_gen_is_done(g)) {
            rng = rng * 1103515245u + 12345u;
            /* ids 3..15, EOS now and then */
            int tok = (rng >> 16) % 40 == 0 ? 2 : 3 + (int)((rng >> 16) % 13);
            float logits[V];
            one_hot(logits, tok);
            struct slora_gen_step st;
            ck_assert_int_eq(slora_gen_accept(g, logits, &st), 0);
            char clean[64];
            size_t used;
            ck_assert_uint_eq(slora_tokenizer_utf8_clean(st.text, st.text_len, false, clean, &used),
                              st.text_len);
            ck_assert_uint_eq(used, st.text_len);
            memcpy(text + len, st.text, st.text_len);
            len += st.text_len;
        }
        int n;
        const int *toks = slora_gen_tokens(g, &n);
        size_t want_len;
        char *want = slora_tokenizer_render(t, toks[0], toks + 1, n - 1, &want_len);
        const char *cut = NULL;
        for (int k = 0; k < p.n_stop; k++) {
            const char *at = memmem(want, want_len, chosen[k], strlen(chosen[k]));
            if (at && (!cut || at < cut))
                cut = at;
        }
        if (cut)
            want_len = (size_t)(cut - want);
        ck_assert_msg(len == want_len && !memcmp(text, want, len),
                      "round %d: streamed '%.*s' batch '%.*s'", round, (int)len, text,
                      (int)want_len, want);
        ck_assert_int_eq(slora_gen_finish(g),
                         cut || toks[n - 1] == 2 ? SLORA_FINISH_STOP : SLORA_FINISH_LENGTH);
        free(want);
        slora_gen_free(g);
    }
    slora_tokenizer_free(t);
}
END_TEST

START_TEST(finish_names)
{
    ck_assert_str_eq(slora_gen_finish_name(SLORA_FINISH_STOP), "stop");
    ck_assert_str_eq(slora_gen_finish_name(SLORA_FINISH_LENGTH), "length");
    ck_assert_ptr_null(slora_gen_finish_name(SLORA_FINISH_NONE));
}
END_TEST

START_TEST(bad_params)
{
    struct slora_tokenizer *t = make_vocab();
    int prompt[3] = {1, 3, 4}, bad_prompt[2] = {1, V};
    const char *empty_stop[1] = {""};
    struct slora_gen *g = (void *)1;
    struct slora_gen_params p = base_params;
    ck_assert_int_eq(slora_gen_new(t, prompt, 0, &p, &g), SLORA_EINVAL);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(slora_gen_new(t, bad_prompt, 2, &p, &g), SLORA_EINVAL);
    p.seq_len = 3;
    ck_assert_int_eq(slora_gen_new(t, prompt, 3, &p, &g), SLORA_ERANGE);
    p = base_params;
    p.stop = empty_stop;
    p.n_stop = 1;
    ck_assert_int_eq(slora_gen_new(t, prompt, 3, &p, &g), SLORA_EINVAL);
    struct {
        float temperature, top_p;
        int top_k, logprobs, max_tokens;
    } ranges[] = {{-1, 1, 0, -1, 1},   {NAN, 1, 0, -1, 1}, {INFINITY, 1, 0, -1, 1},
                  {1, 1.5f, 0, -1, 1}, {1, NAN, 0, -1, 1}, {1, 1, -1, -1, 1},
                  {1, 1, 0, 6, 1},     {1, 1, 0, -2, 1},   {1, 1, 0, -1, -1}};
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        p = base_params;
        p.sampler.temperature = ranges[i].temperature;
        p.sampler.top_p = ranges[i].top_p;
        p.sampler.top_k = ranges[i].top_k;
        p.logprobs = ranges[i].logprobs;
        p.max_tokens = ranges[i].max_tokens;
        ck_assert_msg(slora_gen_new(t, prompt, 3, &p, &g) == SLORA_ERANGE, "range case %zu", i);
    }
    slora_gen_free(NULL);
    slora_tokenizer_free(t);
}
END_TEST

/* p = 0.15 for ids 7 and 9, 0.05 for the 14 others (logits ln 3 vs 0). */
START_TEST(logprobs)
{
    struct slora_tokenizer *t = make_vocab();
    struct slora_gen_params p = base_params;
    p.logprobs = 3;
    int prompt[1] = {1};
    struct slora_gen *g;
    ck_assert_int_eq(slora_gen_new(t, prompt, 1, &p, &g), 0);
    float logits[V] = {0};
    logits[7] = logits[9] = logf(3.0f);
    struct slora_gen_step st;
    ck_assert_int_eq(slora_gen_accept(g, logits, &st), 0);
    ck_assert_int_eq(st.token, 7);
    ck_assert_int_eq(st.n_top, 3);
    ck_assert_int_eq(st.top_id[0], 7);
    ck_assert_int_eq(st.top_id[1], 9);
    ck_assert_int_eq(st.top_id[2], 0);
    ck_assert_float_eq_tol(st.logprob, logf(0.15f), 1e-6);
    ck_assert_float_eq_tol(st.top_logprob[0], logf(0.15f), 1e-6);
    ck_assert_float_eq_tol(st.top_logprob[1], logf(0.15f), 1e-6);
    ck_assert_float_eq_tol(st.top_logprob[2], logf(0.05f), 1e-6);
    slora_gen_free(g);

    /* temperature changes the draw, not the reported (raw) logprobs */
    p.logprobs = 0;
    p.sampler.temperature = 5.0f;
    p.sampler.seed = 3;
    ck_assert_int_eq(slora_gen_new(t, prompt, 1, &p, &g), 0);
    memset(logits, 0, sizeof(logits));
    logits[7] = logits[9] = logf(3.0f);
    ck_assert_int_eq(slora_gen_accept(g, logits, &st), 0);
    ck_assert_int_eq(st.n_top, 0);
    float want = st.token == 7 || st.token == 9 ? logf(0.15f) : logf(0.05f);
    ck_assert_float_eq_tol(st.logprob, want, 1e-6);
    slora_gen_free(g);
    slora_tokenizer_free(t);
}
END_TEST

START_TEST(logprobs_direct)
{
    float logits[V] = {0};
    logits[5] = logits[6] = 1.0f;
    logits[12] = 2.0f;
    double lse = log(13.0 + 2.0 * exp(1.0) + exp(2.0));
    struct slora_gen_step st;
    slora_gen_logprobs(logits, V, 6, 5, &st);
    ck_assert_int_eq(st.n_top, 5);
    const int want[5] = {12, 5, 6, 0, 1};
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(st.top_id[k], want[k]);
        ck_assert_double_eq_tol(st.top_logprob[k], logits[want[k]] - lse, 1e-6);
    }
    ck_assert_double_eq_tol(st.logprob, 1.0 - lse, 1e-6);
    slora_gen_logprobs(logits, V, 0, 0, &st);
    ck_assert_int_eq(st.n_top, 0);
    ck_assert_double_eq_tol(st.logprob, -lse, 1e-6);
}
END_TEST

Suite *slora_generate_suite(void)
{
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, state_machine, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, stream_equals_batch);
    tcase_add_test(tc, finish_names);
    tcase_add_test(tc, bad_params);
    tcase_add_test(tc, logprobs);
    tcase_add_test(tc, logprobs_direct);
    suite_add_tcase(s, tc);
    return s;
}
