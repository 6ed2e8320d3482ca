/* http.h - a socket-free HTTP/1.1 request parser and response serializer.
 *
 * One struct slora_http_conn per connection turns received bytes into
 * requests (llhttp underneath): the owner feeds bytes and gets one event at
 * a time, so pipelined requests are handled strictly one after another:
 *   SLORA_HTTP_HEAD     the request line and headers are complete
 *                       (slora_http_conn_request); the body is not read yet,
 *                       so the owner can answer `Expect: 100-continue` or
 *                       reject the request before it;
 *   SLORA_HTTP_REQUEST  the body is complete (slora_http_conn_take_body);
 *   SLORA_HTTP_ERROR    malformed (400), header bytes over the limit (431),
 *                       body over the limit (413): answer and close.
 * Bytes after a request stay unconsumed (*used tells how far the parser
 * went); the owner feeds them again once the response is out.
 *
 * Limits: the request line plus header fields and values count against
 * max_header_bytes; a body (chunked or not) is refused at max_body_bytes
 * (or the request's own limit, slora_http_conn_set_body_limit) as it
 * arrives. A Content-Length over the limit is visible at HEAD time
 * (slora_api_request.content_length) so it can be refused unread.
 *
 * Not thread-safe: a conn belongs to the loop thread. The serializer
 * functions are pure and may be called from any thread.
 */
#ifndef SLORA_HTTP_H
#define SLORA_HTTP_H

#include <slora/api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct slora_http_limits {
    size_t max_header_bytes;
    uint64_t max_body_bytes;
};

enum slora_http_event {
    SLORA_HTTP_NEED_MORE, /* every byte consumed, no event yet */
    SLORA_HTTP_HEAD,
    SLORA_HTTP_REQUEST,
    SLORA_HTTP_ERROR,
};

struct slora_http_conn;

struct slora_http_conn *slora_http_conn_new(const struct slora_http_limits *lim);
void slora_http_conn_free(struct slora_http_conn *c);
/* New limits for the next request (SIGHUP). */
void slora_http_conn_set_limits(struct slora_http_conn *c, const struct slora_http_limits *lim);
/* After HEAD, before the body is fed: the current request's body limit
 * (the route's); the next request starts again with max_body_bytes. */
void slora_http_conn_set_body_limit(struct slora_http_conn *c, uint64_t bytes);

/* Parse up to len bytes; *used = bytes consumed. After HEAD or REQUEST call
 * again with the rest (len may be 0 to collect a pending event). After
 * REQUEST the next call starts the next request. After ERROR the conn is
 * dead: slora_http_conn_error() says why. */
enum slora_http_event slora_http_conn_feed(struct slora_http_conn *c, const char *data, size_t len,
                                           size_t *used);
/* The current request's head; valid from HEAD until the next request
 * starts. Borrowed from the conn. */
const struct slora_api_request *slora_http_conn_request(const struct slora_http_conn *c);
/* After REQUEST: the body (malloc'd, NULL when empty); caller owns it. */
void *slora_http_conn_take_body(struct slora_http_conn *c, size_t *len);
/* After REQUEST: whether the connection may carry another request. Also
 * meaningful after HEAD (Connection: close / HTTP/1.0). */
bool slora_http_conn_keep_alive(const struct slora_http_conn *c);
/* True while inside a request (some of it received, not yet complete). */
bool slora_http_conn_in_request(const struct slora_http_conn *c);
/* After ERROR: SLORA_EINVAL, SLORA_EHDRTOOLARGE or SLORA_ETOOLARGE and a
 * message; the request id (possibly generated) of the failed request. */
int slora_http_conn_error(const struct slora_http_conn *c, const char **msg,
                          const char **request_id);

/* ---- serializer --------------------------------------------------------- */

enum slora_http_body_mode {
    SLORA_HTTP_BODY_LENGTH,  /* Content-Length: content_length */
    SLORA_HTTP_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    SLORA_HTTP_BODY_NONE,    /* 1xx, 204, 304: no body, no length */
};

/* Status line and headers, ending with the blank line; malloc'd, *len set.
 * content_type may be NULL. Always adds Date, X-Request-Id and Connection.
 * NULL on ENOMEM. */
char *slora_http_format_head(int status, const char *content_type,
                             const struct slora_api_header *headers, int n_headers,
                             const char *request_id, bool keep_alive,
                             enum slora_http_body_mode mode, uint64_t content_length, size_t *len);
/* The body mode a status implies for a non-streamed body. */
enum slora_http_body_mode slora_http_body_mode_for(int status);
/* "OK", "Not Found", ... ("Unknown" for unlisted codes). */
const char *slora_http_reason(int status);
/* Chunk framing: writes "<hex len>\r\n" into buf (>= 20 bytes); returns its
 * length. A chunk is that, the data, then "\r\n"; the last is "0\r\n\r\n". */
size_t slora_http_chunk_head(char *buf, size_t data_len);
/* A fresh 16-hex-digit request id into buf (>= 17 bytes). Any thread. */
void slora_http_request_id(char *buf);

#endif
