/* st_build.h - a tiny safetensors builder for tests: adapters and corrupted
 * files are generated at test time, never committed.
 *
 * tb_build(config, spec, from, to, &len) returns a malloc'd file:
 * - config: the __metadata__.superlora JSON text (escaped into a string), or
 *   "@<json>" for a raw __metadata__ value, or NULL for no __metadata__;
 * - spec: whitespace-separated tensors "name=d0xd1x...[@F16|@BF16|@F32]",
 *   tensors laid out contiguously in that order;
 * - from/to: optional first-occurrence substitution in the header text
 *   (to corrupt a key, a dtype, an offset) applied before the length prefix
 *   is written.
 * Malformed spec tokens are skipped and dimensions clamped, so fuzz inputs
 * can drive it too.
 * Element i of tensor t holds ((i * 37 + t * 11) % 17 - 8) / 16, exact in
 * every dtype and never all zero.
 */
#ifndef SLORA_TESTS_ST_BUILD_H
#define SLORA_TESTS_ST_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline float tb_value(int64_t i, int t)
{
    return (float)((i * 37 + t * 11) % 17 - 8) / 16.0f;
}

static inline void tb_append(char **s, size_t *len, size_t *cap, const char *add)
{
    size_t n = strlen(add);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *s = realloc(*s, *cap);
    }
    memcpy(*s + *len, add, n + 1);
    *len += n;
}

static inline void tb_put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline unsigned char *tb_build(const char *config, const char *spec, const char *from,
                                      const char *to, size_t *out_len)
{
    char *h = NULL, item[256], *save = NULL;
    size_t hl = 0, hc = 0;
    tb_append(&h, &hl, &hc, "{");
    if (config && config[0] == '@') {
        tb_append(&h, &hl, &hc, "\"__metadata__\":");
        tb_append(&h, &hl, &hc, config + 1);
    } else if (config) {
        tb_append(&h, &hl, &hc, "\"__metadata__\":{\"superlora\":\"");
        for (const char *c = config; *c; c++) {
            char e[3] = {'\\', *c, 0};
            tb_append(&h, &hl, &hc, (*c == '"' || *c == '\\') ? e : (char[]){*c, 0});
        }
        tb_append(&h, &hl, &hc, "\"}");
    }
    /* first pass: header entries and data size */
    struct tb_tensor {
        int64_t elems;
        int esize;
        int dtype; /* 0 F32, 1 F16, 2 BF16 */
    } * ts;
    int nt = 0, cap = 1;
    size_t off = 0;
    char *copy = strdup(spec ? spec : "");
    for (const char *c = copy; *c; c++)
        cap += *c == ' ';
    ts = calloc((size_t)cap, sizeof(*ts));
    for (char *tok = strtok_r(copy, " \n", &save); tok && nt < cap;
         tok = strtok_r(NULL, " \n", &save), nt++) {
        char *eq = strchr(tok, '='), *at = strchr(tok, '@');
        const char *dt = at ? at + 1 : "F32";
        if (!eq || (at && at < eq)) { /* not "name=dims": skipped (fuzz inputs) */
            nt--;
            continue;
        }
        if (at)
            *at = 0;
        *eq = 0;
        ts[nt].dtype = !strcmp(dt, "F16") ? 1 : !strcmp(dt, "BF16") ? 2 : 0;
        ts[nt].esize = ts[nt].dtype ? 2 : 4;
        ts[nt].elems = 1;
        char shape[128] = "";
        size_t sl = 0;
        for (char *d = eq + 1; *d && sl < sizeof(shape) - 24;) {
            long long v = strtoll(d, &d, 10);
            if (v < 0 || v > 4096 || ts[nt].elems * v > (1 << 18))
                v = 1; /* keep fuzz-built files small */
            ts[nt].elems *= v;
            sl += (size_t)snprintf(shape + sl, sizeof(shape) - sl, "%s%lld", sl ? "," : "", v);
            if (*d)
                d++;
        }
        size_t bytes = (size_t)ts[nt].elems * (size_t)ts[nt].esize;
        snprintf(item, sizeof(item),
                 "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%s],\"data_offsets\":[%zu,%zu]}",
                 hl > 1 ? "," : "", tok, dt, shape, off, off + bytes);
        tb_append(&h, &hl, &hc, item);
        off += bytes;
    }
    free(copy);
    tb_append(&h, &hl, &hc, "}");
    if (from) {
        char *p = strstr(h, from);
        if (p) {
            size_t fl = strlen(from), tl = strlen(to), tail = strlen(p + fl);
            char *n = malloc(hl - fl + tl + 1);
            memcpy(n, h, (size_t)(p - h));
            memcpy(n + (p - h), to, tl);
            memcpy(n + (p - h) + tl, p + fl, tail + 1);
            free(h);
            h = n;
            hl = strlen(h);
        }
    }
    *out_len = 8 + hl + off;
    unsigned char *buf = malloc(*out_len + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, h, hl);
    free(h);
    unsigned char *d = buf + 8 + hl;
    for (int t = 0; t < nt; t++)
        for (int64_t i = 0; i < ts[t].elems; i++) {
            float v = tb_value(i, t);
            uint32_t u;
            memcpy(&u, &v, 4);
            if (ts[t].dtype == 0) {
                tb_put16(d, (uint16_t)u);
                tb_put16(d + 2, (uint16_t)(u >> 16));
            } else if (ts[t].dtype == 2) {
                tb_put16(d, (uint16_t)(u >> 16)); /* values are exact in bf16 */
            } else {
                /* |v| in {0, k/16}: build the half by hand (sign, exp, mantissa) */
                uint16_t hbits = 0;
                if (v != 0) {
                    float a = v < 0 ? -v : v;
                    int e = 0;
                    while (a >= 2)
                        a /= 2, e++;
                    while (a < 1)
                        a *= 2, e--;
                    hbits = (uint16_t)((v < 0) << 15 | (e + 15) << 10 | (int)((a - 1) * 1024));
                }
                tb_put16(d, hbits);
            }
            d += ts[t].esize;
        }
    free(ts);
    return buf;
}

#endif
