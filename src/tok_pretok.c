/* tok_pretok.c - the BPE pre-tokenizers: the split of a text into words
 * before merging, as llama.cpp's llm_tokenizer_bpe and unicode_regex_split
 * do it for each tokenizer.ggml.pre value.
 *
 * A pre-tokenizer is a list of splits applied in turn, each within the
 * pieces of the previous one. The GPT-2, Llama-3 and Qwen2 regexes run as
 * hand-written matchers (llama.cpp's unicode_regex_split_custom_* fast
 * paths: the same words as the regexes, on llama.cpp's Unicode tables); the
 * others run on tok_regex.c over llama.cpp's text transforms: a pattern with
 * Unicode categories (\p{L} ...) sees each codepoint collapsed to one byte
 * (ASCII as is, other spaces 0x0B, letters 0xD2, ...) and the categories
 * replaced by those bytes; any other pattern sees the codepoints with
 * non-ASCII spaces as 0x0B.
 */
#include "tok_internal.h"

#include <slora/error.h>

#include <stdlib.h>
#include <string.h>

/* llama.cpp's tokenizer.ggml.pre values that select these splits, with the
 * flags llama_vocab::load sets for them. */
static const struct slora__tok_pre_info pres[] = {
    {"default", SLORA__PRE_DEFAULT, true, false, false},
    {"llama3", SLORA__PRE_LLAMA3, true, true, true},
    {"llama-v3", SLORA__PRE_LLAMA3, true, true, true},
    {"llama-bpe", SLORA__PRE_LLAMA3, true, true, true},
    {"falcon3", SLORA__PRE_LLAMA3, true, true, true},
    {"falcon-h1", SLORA__PRE_LLAMA3, true, true, true},
    {"pixtral", SLORA__PRE_LLAMA3, true, true, true},
    {"midm-2.0", SLORA__PRE_LLAMA3, true, true, true},
    {"lfm2", SLORA__PRE_LLAMA3, true, true, true},
    {"jina-v5-nano", SLORA__PRE_LLAMA3, true, true, true},
    {"dbrx", SLORA__PRE_LLAMA3, true, false, false},
    {"smaug-bpe", SLORA__PRE_LLAMA3, true, false, false},
    {"deepseek-llm", SLORA__PRE_DEEPSEEK_LLM, false, false, false},
    {"deepseek-coder", SLORA__PRE_DEEPSEEK_CODER, false, false, false},
    {"falcon", SLORA__PRE_FALCON, true, false, false},
    {"gpt-2", SLORA__PRE_GPT2, true, false, false},
    {"phi-2", SLORA__PRE_GPT2, true, false, false},
    {"gigachat", SLORA__PRE_GPT2, true, false, false},
    {"a.x-4.0", SLORA__PRE_GPT2, true, false, false},
    {"mellum", SLORA__PRE_GPT2, true, false, false},
    {"mpt", SLORA__PRE_GPT2, true, false, false},
    {"olmo", SLORA__PRE_GPT2, true, false, false},
    {"jais", SLORA__PRE_GPT2, true, false, false},
    {"exaone4", SLORA__PRE_GPT2, true, false, false},
    {"trillion", SLORA__PRE_GPT2, false, false, false},
    {"granite-docling", SLORA__PRE_GPT2, false, false, false},
    {"starcoder", SLORA__PRE_STARCODER, true, false, false},
    {"refact", SLORA__PRE_STARCODER, true, false, false},
    {"codeshell", SLORA__PRE_STARCODER, true, false, false},
    {"exaone", SLORA__PRE_STARCODER, true, false, false},
    {"minerva-7b", SLORA__PRE_STARCODER, true, false, false},
    {"mellum2", SLORA__PRE_STARCODER, true, false, false},
    {"command-r", SLORA__PRE_STARCODER, false, false, false},
    {"smollm", SLORA__PRE_STARCODER, false, false, false},
    {"qwen2", SLORA__PRE_QWEN2, false, false, false},
    {"deepseek-r1-qwen", SLORA__PRE_QWEN2, false, false, false},
    {"kormo", SLORA__PRE_QWEN2, false, false, false},
    {"f2llmv2", SLORA__PRE_QWEN2, false, false, false},
    {"hunyuan", SLORA__PRE_QWEN2, false, false, false},
    {"solar-open", SLORA__PRE_QWEN2, false, false, false},
    {"grok-2", SLORA__PRE_QWEN2, false, false, false},
    {"stablelm2", SLORA__PRE_QWEN2, true, false, false},
    {"megrez", SLORA__PRE_QWEN2, true, false, false},
};

const struct slora__tok_pre_info *slora__tok_pre_find(const char *name)
{
    for (size_t i = 0; i < sizeof(pres) / sizeof(pres[0]); i++)
        if (!strcmp(pres[i].name, name))
            return &pres[i];
    return NULL;
}

/* Splits: a hand-written matcher or a pattern for tok_regex.c. */
#define GPT2 "\x01"
#define LLAMA3 "\x02"
#define QWEN2 "\x03"
#define MAX_SPLITS 6
static const char *const splits[][MAX_SPLITS + 1] = {
    [SLORA__PRE_DEFAULT] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL},
    [SLORA__PRE_GPT2] = {GPT2, NULL},
    [SLORA__PRE_LLAMA3] = {LLAMA3, NULL},
    [SLORA__PRE_QWEN2] = {QWEN2, NULL},
    [SLORA__PRE_DEEPSEEK_LLM] =
        {"[\r\n]",
         "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
         "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
         "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+", NULL},
    [SLORA__PRE_DEEPSEEK_CODER] =
        {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}", NULL},
    [SLORA__PRE_FALCON] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]", NULL},
    [SLORA__PRE_STARCODER] = {"\\p{N}", GPT2, NULL},
};

/* llama.cpp's collapsed form of a pattern using Unicode categories: each
 * \p{X} becomes a class of X's collapse byte and X's ASCII members. NULL
 * when the pattern has no category (or on ENOMEM: *oom). */
static const struct {
    const char *name;
    const char *set; /* collapse byte and ASCII members, as class text */
} categories[] = {
    {"\\p{N}", "\xD1" "0-9"},
    {"\\p{L}", "\xD2" "A-Za-z"},
    {"\\p{P}", "\xD3" "!-#%-*,-/:-;?-@\\[-\\]_\\{\\}"},
    {"\\p{M}", "\xD4"},
    {"\\p{S}", "\xD5" "\\$\\+<->^`\\|\\~"},
    {"\\p{Lu}", "\xD2" "A-Za-z"},
    {"\\p{Ll}", "\xD2" "A-Za-z"},
    {"\\p{Lt}", "\xD2" "A-Za-z"},
    {"\\p{Lm}", "\xD2" "A-Za-z"},
    {"\\p{Lo}", "\xD2" "A-Za-z"},
};
#define N_CATEGORIES (sizeof(categories) / sizeof(categories[0]))

static bool has_category(const char *re)
{
    for (size_t c = 0; c < N_CATEGORIES; c++)
        if (strstr(re, categories[c].name))
            return true;
    return false;
}

static char *collapse(const char *re, bool *oom)
{
    *oom = false;
    if (!has_category(re))
        return NULL;
    size_t n = strlen(re), o = 0;
    char *out = malloc(n * 8 + 1);
    if (!out) {
        *oom = true;
        return NULL;
    }
    bool inside = false;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '[' && (i == 0 || re[i - 1] != '\\')) {
            out[o++] = '[';
            inside = true;
            continue;
        }
        if (inside && re[i] == ']' && re[i - 1] != '\\') {
            out[o++] = ']';
            inside = false;
            continue;
        }
        size_t c = N_CATEGORIES;
        const char *close = re[i] == '\\' && i + 3 < n && re[i + 1] == 'p' && re[i + 2] == '{'
                                ? strchr(re + i + 3, '}')
                                : NULL;
        if (close && close <= re + i + 10)
            for (c = 0; c < N_CATEGORIES; c++)
                if (strlen(categories[c].name) == (size_t)(close - re - (long)i + 1) &&
                    !memcmp(categories[c].name, re + i, (size_t)(close - re) - i + 1))
                    break;
        if (c == N_CATEGORIES) {
            out[o++] = re[i];
            continue;
        }
        if (!inside)
            out[o++] = '[';
        size_t k = strlen(categories[c].set);
        memcpy(out + o, categories[c].set, k);
        o += k;
        if (!inside)
            out[o++] = ']';
        i = (size_t)(close - re);
    }
    out[o] = '\0';
    return out;
}

int slora__tok_pre_init(struct slora_tokenizer *t)
{
    const char *const *list = splits[t->pre];
    t->regex = calloc(MAX_SPLITS, sizeof(*t->regex));
    if (!t->regex)
        return SLORA_ENOMEM;
    for (t->n_regex = 0; list[t->n_regex]; t->n_regex++) {
        const char *re = list[t->n_regex];
        if ((unsigned char)re[0] < 0x04)
            continue; /* a hand-written matcher */
        bool oom;
        char *collapsed = collapse(re, &oom);
        if (oom)
            return SLORA_ENOMEM;
        t->regex[t->n_regex] = slora__tok_regex_new(collapsed ? collapsed : re, collapsed != NULL);
        free(collapsed);
        if (!t->regex[t->n_regex])
            return SLORA_ENOMEM; /* every listed pattern compiles (tests) */
    }
    return 0;
}

void slora__tok_pre_free(struct slora_tokenizer *t)
{
    for (int i = 0; t->regex && i < t->n_regex; i++)
        slora__tok_regex_free(t->regex[i]);
    free(t->regex);
}

/* ---- the hand-written matchers ----------------------------------------- */

/* One piece of the previous split: codepoints [ini, end) with their flags.
 * Words go to out[*n_out], lengths in codepoints. */
struct seg {
    const uint32_t *cpt;
    const uint16_t *fl;
    size_t ini, end;
    size_t prev_end;
    size_t *out;
    size_t *n_out;
};

#define OUT_OF_RANGE 0xFFFFFFFFu
#define L SLORA__UCD_LETTER
#define N SLORA__UCD_NUMBER
#define S SLORA__UCD_SPACE

static uint32_t cpt_at(const struct seg *g, size_t pos)
{
    return pos < g->end ? g->cpt[pos] : OUT_OF_RANGE;
}

static unsigned fl_at(const struct seg *g, size_t pos)
{
    return pos < g->end ? g->fl[pos] : 0;
}

static void add_word(struct seg *g, size_t end)
{
    if (end > g->prev_end)
        g->out[(*g->n_out)++] = end - g->prev_end;
    g->prev_end = end;
}

static uint32_t lower(uint32_t c)
{
    /* only ASCII letters lowercase to the contraction letters (src/tok_unicode.py) */
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* 's 't 're 've 'm 'll 'd at pos (case-insensitive when `icase`): its
 * length, else 0. */
static size_t contraction(const struct seg *g, size_t pos, bool icase)
{
    if (g->cpt[pos] != '\'' || pos + 1 >= g->end)
        return 0;
    uint32_t a = g->cpt[pos + 1], b = pos + 2 < g->end ? g->cpt[pos + 2] : OUT_OF_RANGE;
    if (icase) {
        a = lower(a);
        b = lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (pos + 2 < g->end && ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
                             (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

/* \s+(?!\S) | \s+ (and \s*[\r\n]+ first when `newlines`) at pos; else
 * one codepoint. */
static void spaces(struct seg *g, size_t pos, bool newlines)
{
    size_t n = 0, last_rn = 0;
    while (fl_at(g, pos + n) & S) {
        uint32_t c = g->cpt[pos + n];
        if (c == '\r' || c == '\n')
            last_rn = pos + n + 1;
        n++;
    }
    if (newlines && last_rn > 0)
        add_word(g, last_rn);
    else if (n > 1 && cpt_at(g, pos + n) != OUT_OF_RANGE)
        add_word(g, pos + n - 1);
    else
        add_word(g, pos + (n > 0 ? n : 1));
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct seg *g)
{
    for (size_t pos = g->ini; pos < g->end; pos = g->prev_end) {
        uint32_t c = g->cpt[pos];
        size_t k = contraction(g, pos, false);
        if (k) {
            add_word(g, pos + k);
            continue;
        }
        unsigned f2 = c == ' ' ? fl_at(g, pos + 1) : g->fl[pos];
        unsigned run = f2 & L ? L : f2 & N ? N : 0;
        if (run) {
            pos += c == ' ';
            while (fl_at(g, pos) & run)
                pos++;
            add_word(g, pos);
        } else if (!(f2 & (S | L | N)) && f2) {
            pos += c == ' ';
            while (!(fl_at(g, pos) & (S | L | N)) && fl_at(g, pos))
                pos++;
            add_word(g, pos);
        } else {
            spaces(g, pos, false);
        }
    }
}

/* Llama-3 (max_digits 3) and Qwen2 (1):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(struct seg *g, size_t max_digits)
{
    for (size_t pos = g->ini; pos < g->end; pos = g->prev_end) {
        uint32_t c = g->cpt[pos];
        unsigned f = g->fl[pos];
        size_t k = contraction(g, pos, true);
        if (k) {
            add_word(g, pos + k);
            continue;
        }
        if (!(c == '\r' || c == '\n' || (f & N)) && ((f & L) || (fl_at(g, pos + 1) & L))) {
            pos++;
            while (fl_at(g, pos) & L)
                pos++;
            add_word(g, pos);
            continue;
        }
        if (f & N) {
            size_t ini = pos;
            while (fl_at(g, pos) & N) {
                if (++pos - ini >= max_digits) {
                    add_word(g, pos);
                    ini = pos;
                }
            }
            add_word(g, pos);
            continue;
        }
        unsigned f2 = c == ' ' ? fl_at(g, pos + 1) : f;
        if (!(f2 & (S | L | N)) && f) {
            pos += c == ' ';
            while (!(fl_at(g, pos) & (S | L | N)) && fl_at(g, pos))
                pos++;
            while (cpt_at(g, pos) == '\r' || cpt_at(g, pos) == '\n')
                pos++;
            add_word(g, pos);
            continue;
        }
        spaces(g, pos, true);
    }
}

#undef L
#undef N
#undef S

/* ---- splitting --------------------------------------------------------- */

/* The text a generic pattern runs on (see the top of the file). */
static void transform(const uint32_t *cpt, const uint16_t *fl, size_t n, bool collapsed,
                      uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cpt[i];
        if (c < 128)
            out[i] = c;
        else if (fl[i] & SLORA__UCD_SPACE)
            out[i] = 0x0B;
        else if (!collapsed)
            out[i] = c;
        else
            switch (fl[i] & 0xFF) {
            case SLORA__UCD_NUMBER: out[i] = 0xD1; break;
            case SLORA__UCD_LETTER: out[i] = 0xD2; break;
            case SLORA__UCD_PUNCT: out[i] = 0xD3; break;
            case SLORA__UCD_MARK: out[i] = 0xD4; break;
            case SLORA__UCD_SYMBOL: out[i] = 0xD5; break;
            default: out[i] = 0xD0; break;
            }
    }
}

/* unicode_regex_split_stl: every match and every gap between matches of a
 * piece becomes a word. */
static void split_regex(const struct slora__tok_regex *re, const uint32_t *s, size_t ini,
                        size_t end, size_t *out, size_t *n_out)
{
    size_t at = 0, n = end - ini, mb, me;
    s += ini;
    while (at < n && !slora__tok_regex_search(re, s, at, n, &mb, &me) && me > mb) {
        if (mb > at)
            out[(*n_out)++] = mb - at;
        out[(*n_out)++] = me - mb;
        at = me;
    }
    if (at < n)
        out[(*n_out)++] = n - at;
}

long slora__tok_pre_split(const struct slora_tokenizer *t, const uint32_t *cpt, size_t n,
                          struct slora__tok_scratch *s, size_t **words)
{
    size_t *a = slora__tok_scratch_get(s, SLORA__SCR_SPLIT, (n + 1) * sizeof(*a));
    size_t *b = slora__tok_scratch_get(s, SLORA__SCR_SPLIT2, (n + 1) * sizeof(*b));
    uint16_t *fl = slora__tok_scratch_get(s, SLORA__SCR_FLAGS, (n + 1) * sizeof(*fl));
    uint32_t *alt = t->n_regex ? slora__tok_scratch_get(s, SLORA__SCR_WORD, (n + 1) * 4) : NULL;
    if (!a || !b || !fl || (t->n_regex && !alt))
        return -1;
    for (size_t i = 0; i < n; i++)
        fl[i] = (uint16_t)slora__tok_ucd(cpt[i]);
    size_t n_a = 0;
    if (n)
        a[n_a++] = n;
    const char *const *list = splits[t->pre];
    for (int k = 0; list[k]; k++) {
        size_t n_b = 0, start = 0;
        const struct slora__tok_regex *re = t->regex[k];
        if (re)
            transform(cpt, fl, n, has_category(list[k]), alt);
        for (size_t w = 0; w < n_a; w++) {
            struct seg g = {cpt, fl, start, start + a[w], start, b, &n_b};
            if (re)
                split_regex(re, alt, start, start + a[w], b, &n_b);
            else if (list[k][0] == GPT2[0])
                split_gpt2(&g);
            else
                split_llama3(&g, list[k][0] == LLAMA3[0] ? 3 : 1);
            start += a[w];
        }
        size_t *tmp = a;
        a = b;
        b = tmp;
        n_a = n_b;
    }
    *words = a;
    return (long)n_a;
}
