/* cmd_logits.c - `slorad logits`: run the base model over a token list (or an
 * encoded prompt) in one prefill batch and print the logits as JSON:
 *   {"tokens":[...],"logits":[[...],...]}  (floats as %.9g)
 * one logits row for the last position, or for every position with
 * --positions all. For tests against independent references. */
#include "internal.h"

#include <slora/cli.h>
#include <slora/cliarg.h>
#include <slora/forward.h>
#include <slora/merged.h>
#include <slora/model.h>
#include <slora/tokenizer.h>
#include <slora/weights.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
    "usage: slorad logits --model M [--tokenizer T] (--tokens 1,2,3 | --prompt TEXT)\n"
    "                     [--positions last|all] [--adapter A]\n"
    "  --model M          llama2.c .bin or GGUF model\n"
    "  --tokenizer T      tok*.bin (for --prompt; a GGUF's own vocabulary otherwise)\n"
    "  --tokens LIST      comma-separated token ids\n"
    "  --prompt TEXT      text encoded with BOS\n"
    "  --positions P      logits of the last position (default) or of all\n"
    "  --adapter A        apply this SuperLoRA adapter (W' = W + dW)\n";

static int usage_error(const char *msg, const char *arg)
{
    return slora_cliarg_usage_error("logits", usage_text, msg, arg);
}

static void print_json(const int *tokens, int n, const float *logits, int first, int vocab)
{
    printf("{\"tokens\":[");
    for (int i = 0; i < n; i++)
        printf("%s%d", i ? "," : "", tokens[i]);
    printf("],\"logits\":[");
    for (int i = first; i < n; i++) {
        printf("%s[", i > first ? "," : "");
        for (int j = 0; j < vocab; j++)
            printf("%s%.9g", j ? "," : "", logits[(size_t)(i - first) * vocab + j]);
        printf("]");
    }
    printf("]}\n");
}

/* Encode the prompt, or parse the token list; *tokens is a new array. */
static int get_tokens(const struct slora_model *m, const char *tok_path, const char *list,
                      const char *prompt, int **tokens, int *n)
{
    char diag[512];
    size_t cap = strlen(list ? list : prompt) / 2 + 1;
    if (list) {
        if (!(*tokens = malloc(cap * sizeof(int))))
            return -1;
        *n = slora_cliarg_int_list(list, 0, m->cfg.shape.vocab_size - 1, *tokens, (int)cap);
        if (*n < 1) {
            fprintf(stderr, "slorad logits: --tokens must list ids in 0..%d\n",
                    m->cfg.shape.vocab_size - 1);
            return -1;
        }
        return 0;
    }
    struct slora_tokenizer *own = NULL;
    const struct slora_tokenizer *tok = m->gguf_vocab;
    if (!tok && !tok_path) {
        fprintf(stderr,
                "slorad logits: --prompt needs --tokenizer (the model has no vocabulary)\n");
        return -1;
    }
    if (slora__cmd_tokenizer(m, tok_path, &tok, &own, diag, sizeof(diag))) {
        fprintf(stderr, "slorad logits: %s\n", diag);
        return -1;
    }
    size_t count;
    cap = slora_tokenizer_max_tokens(tok, strlen(prompt));
    if (!(*tokens = malloc(cap * sizeof(int)))) {
        slora_tokenizer_free(own);
        return -1;
    }
    int rc = slora_tokenizer_encode(tok, prompt, strlen(prompt),
                                    slora_tokenizer_add_bos(tok) ? SLORA_TOK_ADD_BOS : 0, *tokens,
                                    cap, &count);
    slora_tokenizer_free(own);
    *n = (int)count;
    if (rc || count == 0) {
        fprintf(stderr, "slorad logits: cannot encode the prompt\n");
        return -1;
    }
    return 0;
}

/* adapted: the weight set of --adapter, or NULL for the base weights. */
static int run(const struct slora_model *m, const struct slora_weights *adapted, const int *tokens,
               int n, int all)
{
    int vocab = m->cfg.shape.vocab_size, first = all ? 0 : n - 1;
    if (n > m->cfg.seq_len) {
        fprintf(stderr, "slorad logits: %d tokens exceed the context of %d\n", n, m->cfg.seq_len);
        return -1;
    }
    struct slora_weights ws;
    if (slora_weights_init(&ws, m, 0))
        return -1;
    struct slora_kv *kv = slora_kv_new(m);
    struct slora_fwd *f = slora_fwd_new(m, n, 1);
    struct slora_fwd_row *rows = calloc((size_t)n, sizeof(*rows));
    float *logits = malloc((size_t)(n - first) * vocab * sizeof(float));
    int rc = -1;
    if (kv && f && rows && logits) {
        for (int i = 0; i < n; i++)
            rows[i] =
                (struct slora_fwd_row){tokens[i], i, kv, adapted ? adapted : &ws,
                                       i >= first ? logits + (size_t)(i - first) * vocab : NULL};
        rc = slora_fwd_run(f, rows, n);
        if (!rc)
            print_json(tokens, n, logits, first, vocab);
    } else {
        fprintf(stderr, "slorad logits: out of memory\n");
    }
    free(logits);
    free(rows);
    slora_fwd_free(f);
    slora_kv_free(kv);
    slora_weights_deinit(&ws);
    return rc;
}

int slora_cmd_logits(int argc, char **argv)
{
    enum { O_MODEL = 256, O_TOK, O_TOKENS, O_PROMPT, O_POS, O_ADAPTER, O_HELP };
    static const struct option opts[] = {
        {"model", required_argument, NULL, O_MODEL},
        {"tokenizer", required_argument, NULL, O_TOK},
        {"tokens", required_argument, NULL, O_TOKENS},
        {"prompt", required_argument, NULL, O_PROMPT},
        {"positions", required_argument, NULL, O_POS},
        {"adapter", required_argument, NULL, O_ADAPTER},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *model_path = NULL, *tok_path = NULL, *list = NULL, *prompt = NULL;
    const char *adapter = NULL;
    int all = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL:
            model_path = optarg;
            break;
        case O_TOK:
            tok_path = optarg;
            break;
        case O_TOKENS:
            list = optarg;
            break;
        case O_PROMPT:
            prompt = optarg;
            break;
        case O_POS:
            if (strcmp(optarg, "last") && strcmp(optarg, "all"))
                return usage_error("--positions must be last or all, got ", optarg);
            all = !strcmp(optarg, "all");
            break;
        case O_ADAPTER:
            adapter = optarg;
            break;
        case O_HELP:
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage_error("bad option ", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument ", argv[optind]);
    if (!model_path || !list == !prompt)
        return usage_error("--model and exactly one of --tokens or --prompt are required", NULL);

    char diag[512];
    struct slora_model *m;
    if (slora_model_load(model_path, NULL, &m, diag, sizeof(diag))) {
        fprintf(stderr, "slorad logits: %s\n", diag);
        return 1;
    }
    struct slora_merged *mg = NULL;
    if (adapter && slora_merged_load(m, adapter, 1, 1, &mg, diag, sizeof(diag))) {
        fprintf(stderr, "slorad logits: %s\n", diag);
        slora_model_free(m);
        return 1;
    }
    int *tokens = NULL, n = 0;
    int rc = get_tokens(m, tok_path, list, prompt, &tokens, &n);
    if (!rc)
        rc = run(m, mg ? &mg->ws : NULL, tokens, n, all);
    free(tokens);
    slora_merged_free(mg);
    slora_model_free(m);
    return rc ? 1 : 0;
}
