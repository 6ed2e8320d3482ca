/* check_http.c - the HTTP parser on raw byte transcripts, each fed whole,
 * split in two at every byte boundary, and one byte at a time; the event
 * log must be identical for every split. Plus the response serializer. */
#include <slora/error.h>
#include <slora/http.h>

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct transcript {
    const char *name;
    const char *data;
    size_t max_header;
    size_t max_body;
    const char *expect; /* event log */
};

static const struct transcript transcripts[] = {
    {"simple get", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1024, 1024,
     "HEAD GET /healthz q= cl=-1 ka=1 ec=0\nREQ 0:\n"},
    {"query and headers",
     "GET /v1/adapters/a/b?dry_run=1&pin HTTP/1.1\r\nAuthorization: Bearer k1\r\n"
     "If-None-Match: \"abc\"\r\nX-Request-Id: req-42\r\n\r\n",
     1024, 1024,
     "HEAD GET /v1/adapters/a/b q=dry_run=1&pin cl=-1 ka=1 ec=0 auth=Bearer k1 inm=\"abc\" "
     "id=req-42\nREQ 0:\n"},
    {"pipelined three",
     "GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 5\r\nIf-Match: \"v1\"\r\n\r\n"
     "hello"
     "DELETE /c HTTP/1.1\r\nConnection: close\r\n\r\n",
     1024, 1024,
     "HEAD GET /a q= cl=-1 ka=1 ec=0\nREQ 0:\n"
     "HEAD PUT /b q= cl=5 ka=1 ec=0 im=\"v1\"\nREQ 5:hello\n"
     "HEAD DELETE /c q= cl=-1 ka=0 ec=0\nREQ 0:\n"},
    {"chunked with extension and trailer",
     "POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nTrailer-X: 1\r\n\r\n",
     1024, 1024, "HEAD POST /v1/x q= cl=-1 ka=1 ec=0 chunked\nREQ 19:abc0123456789abcdef\n"},
    {"expect continue",
     "PUT /v1/adapters/t/n HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nxyz", 1024,
     1024, "HEAD PUT /v1/adapters/t/n q= cl=3 ka=1 ec=1\nREQ 3:xyz\n"},
    {"expect other than 100-continue is refused",
     "PUT /v1/adapters/t/n HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 3\r\n\r\nxyz", 1024,
     1024, "ERR expect\n"},
    {"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 1024, 1024,
     "HEAD GET / q= cl=-1 ka=0 ec=0\nREQ 0:\n"},
    {"header too large",
     "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nX-Long: "
     "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n",
     64, 1024, "ERR hdrtoolarge\n"},
    {"chunked body too large",
     "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n",
     1024, 8, "HEAD POST /x q= cl=-1 ka=1 ec=0 chunked\nERR toolarge\n"},
    {"declared body too large", "PUT /x HTTP/1.1\r\nContent-Length: 20\r\n\r\n01234567890123456789",
     1024, 8, "HEAD PUT /x q= cl=20 ka=1 ec=0\nERR toolarge\n"},
    {"malformed header line", "GET / HTTP/1.1\r\nHost\r\n\r\n", 1024, 1024, "ERR inval\n"},
    {"bad request line", "GARBAGE\r\n\r\n", 1024, 1024, "ERR inval\n"},
    {"duplicate authorization",
     "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n", 1024, 1024,
     "ERR inval\n"},
    {"bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1024, 1024,
     "HEAD POST / q= cl=-1 ka=1 ec=0 chunked\nERR inval\n"},
    {"chunked upload with 100-continue, mixed-case headers",
     "PUT /v1/adapters/t/n?dry_run=1 HTTP/1.1\r\nEXPECT: 100-Continue\r\n"
     "transfer-encoding: chunked\r\nconnection: Close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     1024, 1024, "HEAD PUT /v1/adapters/t/n q=dry_run=1 cl=-1 ka=0 ec=1 chunked\nREQ 2:ab\n"},
    {"content-length and chunked together is refused",
     "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 1024,
     1024, "ERR inval\n"},
    {"empty line between pipelined requests", "GET /a HTTP/1.1\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
     1024, 1024,
     "HEAD GET /a q= cl=-1 ka=1 ec=0\nREQ 0:\nHEAD GET /b q= cl=-1 ka=1 ec=0\nREQ 0:\n"},
    {"unsafe request id replaced", "GET / HTTP/1.1\r\nX-Request-Id: has space\r\n\r\n", 1024, 1024,
     "HEAD GET / q= cl=-1 ka=1 ec=0\nREQ 0:\n"},
};

static void append(char *log, size_t cap, const char *fmt, const char *a)
{
    size_t n = strlen(log);
    snprintf(log + n, cap - n, fmt, a);
}

static bool is_generated_id(const char *s)
{
    if (strlen(s) != 16)
        return false;
    for (int i = 0; i < 16; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* Feeds t->data in pieces of the given sizes (the last repeats) and logs
 * every event. */
static void run(const struct transcript *t, size_t first, size_t step, char *log, size_t cap)
{
    struct slora_http_limits lim = {t->max_header, t->max_body};
    struct slora_http_conn *c = slora_http_conn_new(&lim);
    ck_assert_ptr_nonnull(c);
    size_t total = strlen(t->data), off = 0;
    char *pending = malloc(total + 1);
    size_t plen = 0;
    log[0] = '\0';
    bool done = false;
    while (!done && off < total) {
        size_t n = off == 0 ? first : step;
        if (n > total - off)
            n = total - off;
        memcpy(pending + plen, t->data + off, n);
        plen += n;
        off += n;
        for (;;) {
            size_t used;
            enum slora_http_event ev = slora_http_conn_feed(c, pending, plen, &used);
            ck_assert_uint_le(used, plen);
            memmove(pending, pending + used, plen - used);
            plen -= used;
            if (ev == SLORA_HTTP_NEED_MORE) {
                ck_assert_uint_eq(plen, 0);
                break;
            }
            if (ev == SLORA_HTTP_ERROR) {
                const char *msg, *rid;
                int err = slora_http_conn_error(c, &msg, &rid);
                ck_assert(is_generated_id(rid) || rid[0]);
                append(log, cap, "ERR %s\n", slora_err_name(err));
                done = true;
                break;
            }
            const struct slora_api_request *r = slora_http_conn_request(c);
            if (ev == SLORA_HTTP_HEAD) {
                char line[512];
                snprintf(line, sizeof(line), "HEAD %s %s q=%s cl=%lld ka=%d ec=%d", r->method_name,
                         r->path, r->query, (long long)r->content_length,
                         slora_http_conn_keep_alive(c), r->expect_continue);
                append(log, cap, "%s", line);
                if (r->chunked)
                    append(log, cap, "%s", " chunked");
                if (r->authorization)
                    append(log, cap, " auth=%s", r->authorization);
                if (r->if_match)
                    append(log, cap, " im=%s", r->if_match);
                if (r->if_none_match)
                    append(log, cap, " inm=%s", r->if_none_match);
                if (!is_generated_id(r->request_id))
                    append(log, cap, " id=%s", r->request_id);
                append(log, cap, "%s", "\n");
            } else {
                size_t blen;
                char *body = slora_http_conn_take_body(c, &blen);
                char line[64];
                snprintf(line, sizeof(line), "REQ %zu:", blen);
                append(log, cap, "%s", line);
                size_t n0 = strlen(log);
                ck_assert_uint_lt(n0 + blen + 2, cap);
                if (blen)
                    memcpy(log + n0, body, blen);
                strcpy(log + n0 + blen, "\n");
                free(body);
            }
        }
    }
    free(pending);
    slora_http_conn_free(c);
}

START_TEST(transcript_splits)
{
    const struct transcript *t = &transcripts[_i];
    size_t total = strlen(t->data);
    char log[2048];
    run(t, total, total, log, sizeof(log));
    ck_assert_msg(!strcmp(log, t->expect), "%s whole: got\n%s", t->name, log);
    for (size_t k = 1; k < total; k++) {
        run(t, k, total, log, sizeof(log));
        ck_assert_msg(!strcmp(log, t->expect), "%s split at %zu: got\n%s", t->name, k, log);
    }
    run(t, 1, 1, log, sizeof(log));
    ck_assert_msg(!strcmp(log, t->expect), "%s bytewise: got\n%s", t->name, log);
}
END_TEST

START_TEST(rest_stays_unconsumed)
{
    /* After HEAD of a request with a body, nothing past the headers is
     * consumed, so the owner can reject before reading the body. */
    struct slora_http_limits lim = {1024, 1024};
    struct slora_http_conn *c = slora_http_conn_new(&lim);
    const char *req = "PUT /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
    size_t used;
    ck_assert_int_eq(slora_http_conn_feed(c, req, strlen(req), &used), SLORA_HTTP_HEAD);
    ck_assert_uint_eq(used, strlen(req) - 4);
    ck_assert(slora_http_conn_in_request(c));
    ck_assert_int_eq(slora_http_conn_feed(c, req + used, 4, &used), SLORA_HTTP_REQUEST);
    ck_assert_uint_eq(used, 4);
    ck_assert(!slora_http_conn_in_request(c));
    size_t blen;
    char *body = slora_http_conn_take_body(c, &blen);
    ck_assert_uint_eq(blen, 4);
    ck_assert_int_eq(memcmp(body, "body", 4), 0);
    free(body);
    slora_http_conn_free(c);
}
END_TEST

START_TEST(per_request_body_limit)
{
    /* The owner's limit for one request: a chunked body past it is 413
     * with the limit in the message; the next request has the
     * connection's limit again. */
    struct slora_http_limits lim = {1024, 1024};
    struct slora_http_conn *c = slora_http_conn_new(&lim);
    const char *a = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                    "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    size_t used, off = 0, blen;
    ck_assert_int_eq(slora_http_conn_feed(c, a, strlen(a), &used), SLORA_HTTP_HEAD);
    slora_http_conn_set_body_limit(c, 3);
    off += used;
    ck_assert_int_eq(slora_http_conn_feed(c, a + off, strlen(a) - off, &used), SLORA_HTTP_REQUEST);
    free(slora_http_conn_take_body(c, &blen));
    ck_assert_uint_eq(blen, 3);
    off += used;
    ck_assert_int_eq(slora_http_conn_feed(c, a + off, strlen(a) - off, &used), SLORA_HTTP_HEAD);
    off += used;
    ck_assert_int_eq(slora_http_conn_feed(c, a + off, strlen(a) - off, &used), SLORA_HTTP_REQUEST);
    free(slora_http_conn_take_body(c, &blen));
    ck_assert_uint_eq(blen, 5);
    slora_http_conn_free(c);

    c = slora_http_conn_new(&lim);
    const char *b = "GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n";
    ck_assert_int_eq(slora_http_conn_feed(c, b, strlen(b), &used), SLORA_HTTP_HEAD);
    slora_http_conn_set_body_limit(c, 6);
    ck_assert_int_eq(slora_http_conn_feed(c, b + used, strlen(b) - used, &used), SLORA_HTTP_ERROR);
    const char *msg, *rid;
    ck_assert_int_eq(slora_http_conn_error(c, &msg, &rid), SLORA_ETOOLARGE);
    ck_assert_str_eq(msg, "request body exceeds the limit of 6 bytes");
    slora_http_conn_free(c);
}
END_TEST

START_TEST(serialize_head)
{
    struct slora_api_header h[] = {{"ETag", "\"0123456789abcdef\""}};
    size_t len;
    char *s = slora_http_format_head(201, "application/json", h, 1, "rid1", true,
                                     SLORA_HTTP_BODY_LENGTH, 42, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), len);
    ck_assert_int_eq(strncmp(s, "HTTP/1.1 201 Created\r\nDate: ", 28), 0);
    ck_assert_ptr_nonnull(strstr(s, "\r\nConnection: keep-alive\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nX-Request-Id: rid1\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nContent-Length: 42\r\n"));
    ck_assert_ptr_nonnull(strstr(s, "\r\nETag: \"0123456789abcdef\"\r\n\r\n"));
    ck_assert_str_eq(s + len - 4, "\r\n\r\n");
    free(s);

    s = slora_http_format_head(304, "application/json", NULL, 0, "r", false,
                               slora_http_body_mode_for(304), 0, &len);
    ck_assert_ptr_null(strstr(s, "Content-Length"));
    ck_assert_ptr_null(strstr(s, "Content-Type"));
    ck_assert_ptr_nonnull(strstr(s, "Connection: close\r\n"));
    free(s);

    s = slora_http_format_head(200, "text/event-stream", NULL, 0, "r", true,
                               SLORA_HTTP_BODY_CHUNKED, 0, &len);
    ck_assert_ptr_nonnull(strstr(s, "Transfer-Encoding: chunked\r\n"));
    ck_assert_ptr_null(strstr(s, "Content-Length"));
    free(s);

    char buf[24];
    ck_assert_uint_eq(slora_http_chunk_head(buf, 255), 4);
    ck_assert_str_eq(buf, "ff\r\n");
    ck_assert_int_eq(slora_http_body_mode_for(204), SLORA_HTTP_BODY_NONE);
    ck_assert_int_eq(slora_http_body_mode_for(404), SLORA_HTTP_BODY_LENGTH);
    ck_assert_str_eq(slora_http_reason(431), "Request Header Fields Too Large");
    char a[17], b[17];
    slora_http_request_id(a);
    slora_http_request_id(b);
    ck_assert(is_generated_id(a));
    ck_assert_str_ne(a, b);
}
END_TEST

Suite *slora_http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, transcript_splits, 0,
                        (int)(sizeof(transcripts) / sizeof(transcripts[0])));
    tcase_add_test(tc, rest_stays_unconsumed);
    tcase_add_test(tc, per_request_body_limit);
    tcase_add_test(tc, serialize_head);
    suite_add_tcase(s, tc);
    return s;
}
