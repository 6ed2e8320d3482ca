/* fuzz_http.c - libFuzzer target for the HTTP request parser: the input is
 * fed in pieces (the first byte picks the piece size) the way the server
 * does, taking every body; checks the parser's promises (never consumes
 * more than it is given; NEED_MORE means everything was consumed; nothing
 * after ERROR). `make fuzz` runs it. */
#include <slora/http.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    struct slora_http_limits lim = {512, 1024};
    struct slora_http_conn *c = slora_http_conn_new(&lim);
    if (!c)
        return 0;
    char *pending = malloc(len + 1);
    size_t plen = 0, off = 0;
    bool dead = false;
    while (!dead && off < len) {
        size_t n = len - off < step ? len - off : step;
        memcpy(pending + plen, p + off, n);
        plen += n;
        off += n;
        for (;;) {
            size_t used;
            enum slora_http_event ev = slora_http_conn_feed(c, pending, plen, &used);
            if (used > plen)
                abort();
            memmove(pending, pending + used, plen - used);
            plen -= used;
            if (ev == SLORA_HTTP_NEED_MORE) {
                if (plen)
                    abort();
                break;
            }
            if (ev == SLORA_HTTP_ERROR) {
                const char *msg, *rid;
                if (slora_http_conn_error(c, &msg, &rid) >= 0 || !msg || !rid[0])
                    abort();
                dead = true;
                break;
            }
            const struct slora_api_request *r = slora_http_conn_request(c);
            if (!r->path || !r->query || !r->request_id || !r->method_name)
                abort();
            if (ev == SLORA_HTTP_REQUEST) {
                size_t blen;
                void *body = slora_http_conn_take_body(c, &blen);
                if (blen > lim.max_body_bytes)
                    abort();
                free(body);
            }
        }
    }
    free(pending);
    slora_http_conn_free(c);
    return 0;
}
