/* tmpl_render.c - test-only driver of the chat-template engine (never
 * linked into slorad). Reads a JSON array of jobs on stdin,
 *   [{"template": "...", "context": {...}}, ...]
 * renders each with a fixed clock (--now EPOCH, shown in the TZ of the
 * environment) and writes a JSON array of results on stdout, one per job:
 *   {"ok": true, "out": "..."} or
 *   {"ok": false, "stage": "parse"|"render", "code": "inval"|..., "diag": "..."}
 * Consecutive jobs with the same template share one parse. Used by
 * tests/template/ref_render.py, which compares with python3-jinja2.
 */
#include <slora/error.h>
#include <slora/template.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    struct slora_template_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--now") && i + 1 < argc) {
            opts.fixed_now = true;
            opts.now = strtoll(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--max-output") && i + 1 < argc) {
            opts.max_output = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: tmpl_render [--now EPOCH] [--max-output N] < jobs.json\n");
            return 2;
        }
    }
    json_error_t jerr;
    json_t *jobs = json_loadf(stdin, 0, &jerr);
    if (!json_is_array(jobs)) {
        fprintf(stderr, "tmpl_render: stdin is not a JSON array: %s\n", jerr.text);
        return 2;
    }
    json_t *results = json_array();
    struct slora_template *t = NULL;
    const char *t_src = NULL;
    size_t t_len = 0;
    int t_err = 0;
    char t_diag[512] = "";
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job) {
        json_t *src = json_object_get(job, "template");
        json_t *ctx = json_object_get(job, "context");
        if (!json_is_string(src) || !json_is_object(ctx)) {
            fprintf(stderr, "tmpl_render: job %zu needs a template string and a context object\n", i);
            return 2;
        }
        size_t len = json_string_length(src);
        if (!t_src || len != t_len || memcmp(t_src, json_string_value(src), len)) {
            slora_template_free(t);
            t = NULL;
            t_src = json_string_value(src);
            t_len = len;
            t_err = slora_template_new(t_src, len, &t, t_diag, sizeof(t_diag));
        }
        json_t *r;
        if (t_err) {
            r = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "stage", "parse", "code",
                          slora_err_name(t_err), "diag", t_diag);
        } else {
            char *out = NULL, diag[1024] = "";
            size_t out_len = 0;
            int err = slora_template_render(t, ctx, &opts, &out, &out_len, diag, sizeof(diag));
            if (err)
                r = json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "stage", "render", "code",
                              slora_err_name(err), "diag", diag);
            else
                r = json_pack("{s:b, s:s%}", "ok", 1, "out", out, out_len);
            free(out);
        }
        if (!r) {
            fprintf(stderr, "tmpl_render: cannot encode result %zu\n", i);
            return 1;
        }
        json_array_append_new(results, r);
    }
    slora_template_free(t);
    if (json_dumpf(results, stdout, JSON_COMPACT) || fflush(stdout))
        return 1;
    json_decref(results);
    json_decref(jobs);
    return 0;
}
