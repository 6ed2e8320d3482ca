/* api_chat.c - POST /v1/chat/completions (OpenAI chat completions) and the
 * chat prompt shared with /v1/tokenize (see api_chat.h): messages rendered
 * by the model's own template, generation as completions (api_gen.h),
 * answers in the chat shapes: `message` or streamed `delta`s (the first
 * carrying the role), logprobs as content[{token, logprob, bytes,
 * top_logprobs}]. */
#include "api_chat.h"
#include "api_gen.h"

#include <slora/error.h>
#include <slora/model.h>
#include <slora/template.h>
#include <slora/tokenizer.h>

#include <stdio.h>
#include <stdlib.h>

/* ---- the template context ---------------------------------------------- */

static bool is_role(const char *r)
{
    static const char *const roles[] = {"system", "user", "assistant", "tool"};
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (!strcmp(r, roles[i]))
            return true;
    return false;
}

/* content of message i: a string as is; text parts joined by "\n" (as
 * llama.cpp and vLLM flatten them for string templates). *out is a new
 * reference, or NULL for an assistant message without content. */
static int content(struct slora__api_diag *d, size_t i, json_t *msg, bool assistant, json_t **out)
{
    json_t *c = json_object_get(msg, "content");
    *out = NULL;
    if (!c || json_is_null(c)) {
        if (assistant && json_object_get(msg, "tool_calls"))
            return 0;
        return slora__api_fail(d, SLORA_EINVAL, "'messages[%zu].content' is required", i);
    }
    /* (the body parser already refused strings holding NUL) */
    if (json_is_string(c)) {
        *out = json_incref(c);
        return 0;
    }
    if (!json_is_array(c))
        return slora__api_fail(d, SLORA_EINVAL,
                               "'messages[%zu].content' must be a string or an array of "
                               "{\"type\": \"text\", \"text\": ...} parts",
                               i);
    struct slora__api_buf b = {0};
    size_t k;
    json_t *part;
    json_array_foreach(c, k, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(text)) {
            free(b.b.p);
            return slora__api_fail(d, SLORA_EINVAL,
                                   "'messages[%zu].content[%zu]' must be {\"type\": \"text\", "
                                   "\"text\": string} (only text parts are supported)",
                                   i, k);
        }
        if (k)
            buf_lit(&b, "\n");
        buf_add(&b, json_string_value(text), json_string_length(text));
    }
    *out = b.oom ? NULL : json_stringn(b.b.p ? b.b.p : "", b.b.len);
    free(b.b.p);
    return *out ? 0 : slora__api_fail(d, SLORA_ENOMEM, "out of memory");
}

/* messages[i] as the template sees it: its fields as sent, content a
 * string. */
static int message(struct slora__api_diag *d, size_t i, json_t *msg, json_t **out)
{
    if (!json_is_object(msg))
        return slora__api_fail(d, SLORA_EINVAL, "'messages[%zu]' must be an object", i);
    json_t *role = json_object_get(msg, "role");
    if (!json_is_string(role))
        return slora__api_fail(d, SLORA_EINVAL, "'messages[%zu].role' is required (a string)", i);
    if (!is_role(json_string_value(role)))
        return slora__api_fail(d, SLORA_EINVAL,
                               "'messages[%zu].role' must be system, user, assistant or tool", i);
    json_t *name = json_object_get(msg, "name");
    if (name && !json_is_null(name) && !json_is_string(name))
        return slora__api_fail(d, SLORA_EINVAL, "'messages[%zu].name' must be a string", i);
    json_t *calls = json_object_get(msg, "tool_calls");
    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return slora__api_fail(d, SLORA_EINVAL, "'messages[%zu].tool_calls' must be an array", i);
    json_t *c;
    int err = content(d, i, msg, !strcmp(json_string_value(role), "assistant"), &c);
    if (err)
        return err;
    *out = json_copy(msg);
    if (!*out || (c && json_object_set_new(*out, "content", c))) {
        json_decref(*out);
        return slora__api_fail(d, SLORA_ENOMEM, "out of memory");
    }
    return 0;
}

/* The text of a special token, when the vocabulary has one. */
static int set_token(json_t *ctx, const char *key, const struct slora_tokenizer *tok,
                     enum slora_tok_special role)
{
    int id = slora_tokenizer_special(tok, role);
    if (id < 0)
        return 0;
    size_t len;
    const char *s = slora_tokenizer_piece(tok, id, true, &len);
    json_t *v = json_stringn(s, len);
    return v ? json_object_set_new(ctx, key, v) : 0; /* ill-formed UTF-8: left undefined */
}

/* The template context of a chat request req (borrowed): validated
 * `messages` (role system, user, assistant or tool; content a string, an
 * array of {"type": "text", "text"} parts, or null/absent for an assistant
 * message with tool_calls; name a string), `tools` (an array of objects),
 * add_generation_prompt and the vocabulary's bos_token / eos_token. 0 and
 * *ctx (a new reference), or SLORA_EINVAL / SLORA_ENOMEM with d naming the
 * message and field. */
static int chat_context(struct slora__api_diag *d, json_t *req, const struct slora_tokenizer *tok,
                        bool add_generation_prompt, json_t **ctx)
{
    json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || !json_array_size(msgs))
        return slora__api_fail(d, SLORA_EINVAL, "'messages' must be a non-empty array");
    json_t *tools = json_object_get(req, "tools");
    if (tools && !json_is_null(tools)) {
        size_t i;
        json_t *t;
        if (!json_is_array(tools))
            return slora__api_fail(d, SLORA_EINVAL, "'tools' must be an array");
        json_array_foreach(tools, i, t) {
            if (!json_is_object(t))
                return slora__api_fail(d, SLORA_EINVAL, "'tools[%zu]' must be an object", i);
        }
    }
    json_t *list = json_array();
    *ctx = json_pack("{sosOsb}", "messages", list, "tools", tools ? tools : json_null(),
                     "add_generation_prompt", add_generation_prompt);
    if (!list || !*ctx || set_token(*ctx, "bos_token", tok, SLORA_TOK_SPECIAL_BOS) ||
        set_token(*ctx, "eos_token", tok, SLORA_TOK_SPECIAL_EOS))
        goto err_nomem;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *one = NULL;
        int err = message(d, i, m, &one);
        if (err) {
            json_decref(*ctx);
            *ctx = NULL;
            return err;
        }
        if (json_array_append_new(list, one))
            goto err_nomem;
    }
    return 0;
err_nomem:
    json_decref(*ctx);
    *ctx = NULL;
    return slora__api_fail(d, SLORA_ENOMEM, "out of memory");
}

/* ---- the prompt ------------------------------------------------------------ */

/* Does text[0..len) start (at_end: end) with the text of special token
 * role? */
static bool has_special(const struct slora_tokenizer *tok, enum slora_tok_special role,
                        const char *text, size_t len, bool at_end)
{
    int id = slora_tokenizer_special(tok, role);
    size_t n;
    const char *s = id >= 0 ? slora_tokenizer_piece(tok, id, true, &n) : NULL;
    return s && n && n <= len && !memcmp(at_end ? text + len - n : text, s, n);
}

int slora__api_chat_prompt(struct slora__api_job *j, json_t *req,
                           const struct slora__api_chat_opts *o)
{
    const struct slora_template *tmpl = j->deps->chat_template;
    if (!tmpl)
        return slora__api_fail(&j->d, SLORA_EINVAL, "chat is not available for this model: %s",
                               j->deps->chat_template_error ? j->deps->chat_template_error
                                                            : "it has no chat template");
    json_t *ctx;
    int err = chat_context(&j->d, req, j->tok, o->add_generation_prompt, &ctx);
    if (err)
        return err;
    int seq_len = j->model->cfg.seq_len;
    size_t max_len = slora_tokenizer_max_text_bytes(j->tok, seq_len - 1);
    struct slora_template_opts to = {.max_output = max_len < SIZE_MAX ? max_len + 1 : max_len};
    char *text, diag[SLORA__API_MSG_LEN - 64];
    size_t len;
    err = slora_template_render(tmpl, ctx, &to, &text, &len, diag, sizeof(diag));
    json_decref(ctx);
    if (err == SLORA_ENOMEM)
        return slora__api_fail(&j->d, err, "out of memory rendering the chat template");
    if (err == SLORA_ELIMIT)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "the chat template cannot render this request: %s (the prompt "
                               "must fit the model's context of %d tokens)",
                               diag, seq_len);
    if (err)
        return slora__api_fail(&j->d, SLORA_EINVAL,
                               "the chat template cannot render this request: %s", diag);
    unsigned flags = SLORA_TOK_PARSE_SPECIAL;
    bool bos = o->bos > 0 || (o->bos < 0 && o->add_special && slora_tokenizer_add_bos(j->tok) &&
                              !has_special(j->tok, SLORA_TOK_SPECIAL_BOS, text, len, false));
    if (bos)
        flags |= SLORA_TOK_ADD_BOS;
    if (o->add_special && slora_tokenizer_add_eos(j->tok) &&
        !has_special(j->tok, SLORA_TOK_SPECIAL_EOS, text, len, true))
        flags |= SLORA_TOK_ADD_EOS;
    err = slora__api_job_encode(j, "the rendered chat prompt", text, len, flags, seq_len - 1,
                                &j->prompt, &j->n_prompt);
    free(text);
    if (err)
        return err;
    if (!j->n_prompt)
        return slora__api_fail(&j->d, SLORA_EINVAL, "the rendered chat prompt is empty");
    return slora__api_job_check_context(j);
}

/* ---- chat completions ------------------------------------------------------ */

struct chat {
    struct slora__api_gen g;
    struct slora__api_buf lp; /* logprobs content entries since the last choice */
};

/* "token": the piece as text (ill-formed UTF-8 cleaned), "logprob",
 * "bytes": the piece's raw bytes. */
static void token_fields(struct slora__api_buf *b, const struct slora_tokenizer *tok, int prev,
                         int id, float logprob)
{
    size_t len, n;
    const char *p = slora_tokenizer_decode(tok, prev, id, &len);
    char *text = slora_tokenizer_render(tok, prev, &id, 1, &n); /* as completions' */
    if (!text) {
        b->oom = true;
        return;
    }
    buf_lit(b, "\"token\":");
    buf_str(b, text, n);
    free(text);
    buf_printf(b, ",\"logprob\":%.9g,\"bytes\":[", logprob);
    for (size_t i = 0; i < len; i++)
        buf_printf(b, i ? ",%u" : "%u", (unsigned char)p[i]);
    buf_lit(b, "]");
}

static void logprob(struct slora__api_gen *g, const struct slora__api_ev *ev)
{
    struct chat *c = (struct chat *)g;
    const struct slora_tokenizer *tok = g->job.tok;
    if (c->lp.b.len)
        buf_lit(&c->lp, ",");
    buf_lit(&c->lp, "{");
    token_fields(&c->lp, tok, ev->prev, ev->token, ev->logprob);
    buf_lit(&c->lp, ",\"top_logprobs\":[");
    for (int k = 0; k < ev->n_top; k++) {
        if (k)
            buf_lit(&c->lp, ",");
        buf_lit(&c->lp, "{");
        token_fields(&c->lp, tok, ev->prev, ev->top_id[k], ev->top_logprob[k]);
        buf_lit(&c->lp, "}");
    }
    buf_lit(&c->lp, "]}");
}

static void choice(struct slora__api_gen *g, struct slora__api_buf *b, enum slora__api_choice kind,
                   const char *text, size_t len, const char *finish)
{
    struct chat *c = (struct chat *)g;
    buf_lit(b, "{\"index\":0,");
    if (kind == SLORA__API_CHOICE_ROLE) {
        buf_lit(b, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,"
                   "\"finish_reason\":null}");
        return;
    }
    if (kind == SLORA__API_CHOICE_WHOLE) {
        buf_lit(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        buf_str(b, text, len);
        buf_lit(b, "}");
    } else if (len) {
        buf_lit(b, "\"delta\":{\"content\":");
        buf_str(b, text, len);
        buf_lit(b, "}");
    } else {
        buf_lit(b, "\"delta\":{}");
    }
    buf_lit(b, ",\"logprobs\":");
    if (g->s.logprobs < 0) {
        buf_lit(b, "null");
    } else {
        buf_lit(b, "{\"content\":[");
        buf_add(b, c->lp.b.p, c->lp.b.len);
        buf_lit(b, "]}");
        b->oom |= c->lp.oom;
        c->lp.b.len = 0;
    }
    buf_lit(b, ",\"finish_reason\":");
    if (finish)
        buf_printf(b, "\"%s\"}", finish);
    else
        buf_lit(b, "null}");
}

static const struct slora__api_gen_ops ops = {
    .object = "chat.completion",
    .chunk_object = "chat.completion.chunk",
    .role_chunk = true,
    .logprob = logprob,
    .choice = choice,
};

static int prepare(struct slora__api_job *j, json_t *req)
{
    struct chat *c = (struct chat *)j;
    struct slora__api_chat_opts o = {.add_generation_prompt = true, .add_special = true, .bos = -1};
    int err;
    if ((err = slora__api_sampling_parse(&j->d, req, SLORA__API_CHAT, &c->g.s)) ||
        (err = slora__api_job_resolve_model(j, req)) || (err = slora__api_chat_prompt(j, req, &o)))
        return err;
    return slora__api_gen_prepare(&c->g, &ops);
}

static void release(struct slora__api_job *j)
{
    struct chat *c = (struct chat *)j;
    slora__api_gen_release(&c->g);
    free(c->lp.b.p);
}

static const struct slora__api_endpoint endpoint = {
    .size = sizeof(struct chat),
    .needs_engine = true,
    .prepare = prepare,
    .run = slora__api_gen_run,
    .release = release,
};

void slora__api_chat_handler(struct slora_api_call *c)
{
    slora__api_job_start(c, &endpoint, "chatcmpl");
}
