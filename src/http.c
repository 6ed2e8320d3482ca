/* http.c - HTTP/1.1 request parsing over llhttp and response serialization
 * (see http.h).
 *
 * llhttp is paused in on_headers_complete (HEAD) when a body follows and in
 * on_message_complete (REQUEST), so one feed call never runs past a request
 * boundary. A request without a body completes without pausing at its
 * headers: both events are then reported from the same bytes, HEAD first.
 * Header pieces may arrive split at any byte; they are accumulated in `field`
 * and `value` and kept when the name is one the API reads.
 */
#include "util/buf.h"

#include <slora/error.h>
#include <slora/http.h>

#include <llhttp.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define REQUEST_ID_MAX 128
#define FIELD_MAX 64 /* longer names are never ones we keep */

enum kept_header { H_AUTHORIZATION, H_IF_MATCH, H_IF_NONE_MATCH, H_REQUEST_ID, H_EXPECT, H_COUNT };

static const char *const kept_names[H_COUNT] = {"authorization", "if-match", "if-none-match",
                                                "x-request-id", "expect"};

struct slora_http_conn {
    llhttp_t parser;
    llhttp_settings_t settings;
    struct slora_http_limits lim;
    bool in_request;     /* message begun, not complete */
    bool head_reported;  /* HEAD already returned for this request */
    bool paused_at_head; /* the last execute stopped at the end of the headers */
    bool complete;       /* message complete, REQUEST not yet returned */
    bool dead;           /* an error was returned */
    bool keep_alive;
    size_t header_bytes; /* request line + fields + values so far */
    uint64_t body_limit; /* this request's: lim.max_body_bytes unless the owner set one */
    int err;             /* SLORA_E* set by a callback */
    const char *errmsg;
    char errbuf[96];     /* errmsg when formatted */
    struct slora__buf url;
    struct slora__buf field; /* current header name (truncated at FIELD_MAX) */
    struct slora__buf value; /* current header value */
    bool field_long;         /* current name exceeded FIELD_MAX */
    char *kept[H_COUNT];     /* values of the headers the API reads */
    char request_id[REQUEST_ID_MAX + 1];
    char method[24];
    struct slora__buf body;
    struct slora_api_request req;
};

static struct slora_http_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static int fail(struct slora_http_conn *c, int err, const char *msg)
{
    c->err = err;
    c->errmsg = msg;
    return -1;
}

static int count_header(struct slora_http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->lim.max_header_bytes)
        return fail(c, SLORA_EHDRTOOLARGE, "request header fields too large");
    return 0;
}

static void reset_request(struct slora_http_conn *c)
{
    c->url.len = 0;
    c->field.len = 0;
    c->value.len = 0;
    c->field_long = false;
    for (int i = 0; i < H_COUNT; i++) {
        free(c->kept[i]);
        c->kept[i] = NULL;
    }
    free(c->body.p);
    c->body = (struct slora__buf){0};
    c->header_bytes = 0;
    c->body_limit = c->lim.max_body_bytes;
    c->head_reported = false;
    c->complete = false;
    c->request_id[0] = '\0';
    memset(&c->req, 0, sizeof(c->req));
}

static int on_message_begin(llhttp_t *p)
{
    struct slora_http_conn *c = conn_of(p);
    reset_request(c);
    c->in_request = true;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct slora_http_conn *c = conn_of(p);
    if (count_header(c, len))
        return -1;
    return slora__buf_add(&c->url, at, len) ? fail(c, SLORA_ENOMEM, "out of memory") : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct slora_http_conn *c = conn_of(p);
    if (count_header(c, len + 4)) /* ": " and CRLF once per piece at most */
        return -1;
    if (c->field.len + len > FIELD_MAX) {
        c->field_long = true;
        return 0;
    }
    return slora__buf_add(&c->field, at, len) ? fail(c, SLORA_ENOMEM, "out of memory") : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct slora_http_conn *c = conn_of(p);
    if (count_header(c, len))
        return -1;
    return slora__buf_add(&c->value, at, len) ? fail(c, SLORA_ENOMEM, "out of memory") : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct slora_http_conn *c = conn_of(p);
    int which = -1;
    if (!c->field_long && c->field.len)
        for (int i = 0; i < H_COUNT; i++)
            if (!strcasecmp(c->field.p, kept_names[i]))
                which = i;
    if (which >= 0) {
        if (c->kept[which])
            return fail(c, SLORA_EINVAL, "duplicate header field");
        c->kept[which] = strdup(c->value.len ? c->value.p : "");
        if (!c->kept[which])
            return fail(c, SLORA_ENOMEM, "out of memory");
    }
    c->field.len = 0;
    c->value.len = 0;
    c->field_long = false;
    return 0;
}

/* A client's id is kept when it is short printable ASCII without spaces
 * (it is echoed in a header and written to the log). */
static bool request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '"')
            return false;
    return true;
}

static enum slora_api_method method_of(int m)
{
    switch (m) {
    case HTTP_GET:
        return SLORA_API_GET;
    case HTTP_HEAD:
        return SLORA_API_HEAD;
    case HTTP_POST:
        return SLORA_API_POST;
    case HTTP_PUT:
        return SLORA_API_PUT;
    case HTTP_DELETE:
        return SLORA_API_DELETE;
    case HTTP_OPTIONS:
        return SLORA_API_OPTIONS;
    default:
        return SLORA_API_OTHER;
    }
}

static int on_headers_complete(llhttp_t *p)
{
    struct slora_http_conn *c = conn_of(p);
    if (c->kept[H_REQUEST_ID] && request_id_ok(c->kept[H_REQUEST_ID]))
        snprintf(c->request_id, sizeof(c->request_id), "%s", c->kept[H_REQUEST_ID]);
    else
        slora_http_request_id(c->request_id);
    snprintf(c->method, sizeof(c->method), "%s", llhttp_method_name(p->method));
    if (!c->url.p && slora__buf_add(&c->url, "", 0))
        return fail(c, SLORA_ENOMEM, "out of memory");
    char *q = strchr(c->url.p, '?');
    if (q)
        *q = '\0';
    const char *expect = c->kept[H_EXPECT];
    if (expect && strcasecmp(expect, "100-continue"))
        return fail(c, SLORA_EEXPECT, "the only supported Expect value is 100-continue");
    bool chunked = p->flags & F_CHUNKED;
    bool has_length = p->flags & F_CONTENT_LENGTH;
    c->req = (struct slora_api_request){
        .method = method_of(p->method),
        .method_name = c->method,
        .path = c->url.p,
        .query = q ? q + 1 : "",
        .authorization = c->kept[H_AUTHORIZATION],
        .if_match = c->kept[H_IF_MATCH],
        .if_none_match = c->kept[H_IF_NONE_MATCH],
        .request_id = c->request_id,
        .expect_continue = expect != NULL,
        .content_length = has_length ? (int64_t)p->content_length : -1,
        .chunked = chunked,
    };
    c->keep_alive = llhttp_should_keep_alive(p);
    if (chunked || (has_length && p->content_length > 0)) {
        c->head_reported = true;
        c->paused_at_head = true;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct slora_http_conn *c = conn_of(p);
    if (c->body.len + len > c->body_limit) {
        snprintf(c->errbuf, sizeof(c->errbuf),
                 "request body exceeds the limit of %" PRIu64 " bytes", c->body_limit);
        return fail(c, SLORA_ETOOLARGE, c->errbuf);
    }
    /* A declared length is allocated once, when the body starts to
     * arrive: after the owner accepted the headers, not for anyone who
     * merely claims a length, and never beyond the limit (an owner that
     * reads on past an oversized Content-Length gets 413 at the limit). */
    if (!c->body.cap && c->req.content_length > 0 &&
        (uint64_t)c->req.content_length <= c->body_limit &&
        slora__buf_reserve(&c->body, (size_t)c->req.content_length))
        return fail(c, SLORA_ENOMEM, "out of memory");
    return slora__buf_add(&c->body, at, len) ? fail(c, SLORA_ENOMEM, "out of memory") : 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct slora_http_conn *c = conn_of(p);
    c->in_request = false;
    c->complete = true;
    c->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED;
}

struct slora_http_conn *slora_http_conn_new(const struct slora_http_limits *lim)
{
    struct slora_http_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    llhttp_settings_init(&c->settings);
    c->settings.on_message_begin = on_message_begin;
    c->settings.on_url = on_url;
    c->settings.on_header_field = on_header_field;
    c->settings.on_header_value = on_header_value;
    c->settings.on_header_value_complete = on_header_value_complete;
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_message_complete;
    llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
    c->parser.data = c;
    c->lim = *lim;
    c->body_limit = lim->max_body_bytes;
    return c;
}

void slora_http_conn_free(struct slora_http_conn *c)
{
    if (!c)
        return;
    reset_request(c);
    free(c->url.p);
    free(c->field.p);
    free(c->value.p);
    free(c);
}

void slora_http_conn_set_limits(struct slora_http_conn *c, const struct slora_http_limits *lim)
{
    c->lim = *lim;
}

void slora_http_conn_set_body_limit(struct slora_http_conn *c, uint64_t bytes)
{
    c->body_limit = bytes;
}

static enum slora_http_event die(struct slora_http_conn *c, int err, const char *msg)
{
    c->dead = true;
    if (!c->err) {
        c->err = err;
        c->errmsg = msg;
    }
    if (!c->request_id[0])
        slora_http_request_id(c->request_id);
    return SLORA_HTTP_ERROR;
}

enum slora_http_event slora_http_conn_feed(struct slora_http_conn *c, const char *data, size_t len,
                                           size_t *used)
{
    *used = 0;
    if (c->dead)
        return SLORA_HTTP_ERROR;
    if (c->complete) {
        if (!c->head_reported) {
            c->head_reported = true;
            return SLORA_HTTP_HEAD;
        }
        c->complete = false;
        return SLORA_HTTP_REQUEST;
    }
    if (len == 0)
        return SLORA_HTTP_NEED_MORE;
    c->paused_at_head = false;
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (e == HPE_OK) {
        *used = len;
        return SLORA_HTTP_NEED_MORE;
    }
    if (e != HPE_PAUSED) {
        if (c->err)
            return die(c, c->err, c->errmsg);
        return die(c, SLORA_EINVAL, llhttp_get_error_reason(&c->parser));
    }
    *used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    llhttp_resume(&c->parser);
    if (c->complete)
        return slora_http_conn_feed(c, NULL, 0, &(size_t){0});
    if (c->paused_at_head)
        return SLORA_HTTP_HEAD;
    return SLORA_HTTP_NEED_MORE;
}

const struct slora_api_request *slora_http_conn_request(const struct slora_http_conn *c)
{
    return &c->req;
}

void *slora_http_conn_take_body(struct slora_http_conn *c, size_t *len)
{
    void *p = c->body.p;
    *len = c->body.len;
    c->body = (struct slora__buf){0};
    return p;
}

bool slora_http_conn_keep_alive(const struct slora_http_conn *c)
{
    return c->keep_alive;
}

bool slora_http_conn_in_request(const struct slora_http_conn *c)
{
    return c->in_request || c->complete;
}

int slora_http_conn_error(const struct slora_http_conn *c, const char **msg,
                          const char **request_id)
{
    *msg = c->errmsg ? c->errmsg : slora_strerror(c->err);
    *request_id = c->request_id;
    return c->err ? c->err : SLORA_EINVAL;
}

/* ---- serializer --------------------------------------------------------- */

struct reason {
    int status;
    const char *text;
};

static const struct reason reasons[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {499, "Client Closed Request"},
    {500, "Internal Server Error"},
    {503, "Service Unavailable"},
    {507, "Insufficient Storage"},
};

const char *slora_http_reason(int status)
{
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        if (reasons[i].status == status)
            return reasons[i].text;
    return "Unknown";
}

enum slora_http_body_mode slora_http_body_mode_for(int status)
{
    if (status < 200 || status == 204 || status == 304)
        return SLORA_HTTP_BODY_NONE;
    return SLORA_HTTP_BODY_LENGTH;
}

char *slora_http_format_head(int status, const char *content_type,
                             const struct slora_api_header *headers, int n_headers,
                             const char *request_id, bool keep_alive,
                             enum slora_http_body_mode mode, uint64_t content_length, size_t *len)
{
    char date[64];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    struct slora__buf b = {0};
    int err = slora__buf_printf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
                                slora_http_reason(status), date);
    if (!err && status >= 200)
        err = slora__buf_printf(&b, "Connection: %s\r\n", keep_alive ? "keep-alive" : "close");
    if (!err && request_id)
        err = slora__buf_printf(&b, "X-Request-Id: %s\r\n", request_id);
    if (!err && content_type && mode != SLORA_HTTP_BODY_NONE)
        err = slora__buf_printf(&b, "Content-Type: %s\r\n", content_type);
    if (!err && mode == SLORA_HTTP_BODY_LENGTH)
        err = slora__buf_printf(&b, "Content-Length: %" PRIu64 "\r\n", content_length);
    else if (!err && mode == SLORA_HTTP_BODY_CHUNKED)
        err = slora__buf_printf(&b, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    for (int i = 0; !err && i < n_headers; i++)
        err = slora__buf_printf(&b, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (!err)
        err = slora__buf_add(&b, "\r\n", 2);
    if (err) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

size_t slora_http_chunk_head(char *buf, size_t data_len)
{
    return (size_t)sprintf(buf, "%zx\r\n", data_len);
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void slora_http_request_id(char *buf)
{
    static uint64_t seed;
    static uint64_t counter;
    uint64_t s = __atomic_load_n(&seed, __ATOMIC_RELAXED);
    if (!s) {
        if (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s))
            s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)buf;
        s |= 1;
        __atomic_store_n(&seed, s, __ATOMIC_RELAXED);
    }
    uint64_t k = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    sprintf(buf, "%016" PRIx64, splitmix64(s ^ splitmix64(k)));
}
