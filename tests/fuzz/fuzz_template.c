/* fuzz_template.c - libFuzzer target for the chat-template engine: the
 * input is a template, then (after the first NUL byte, if any) a JSON
 * context. Any input parses or is refused with a diagnostic, and renders or
 * is refused with one, within small limits: never a crash, a hang or an
 * unbounded allocation. `make fuzz-template` runs it. */
#include <slora/template.h>

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char default_context[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yo\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"part\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    char diag[512] = "";
    struct slora_template *t;
    int err = slora_template_new((const char *)data, tlen, &t, diag, sizeof(diag));
    if (err) {
        if (!diag[0])
            abort();
        return 0;
    }
    json_t *ctx = nul ? json_loadb((const char *)nul + 1, size - tlen - 1, 0, NULL) : NULL;
    if (!json_is_object(ctx)) {
        json_decref(ctx);
        ctx = json_loads(default_context, 0, NULL);
    }
    struct slora_template_opts o = {.max_output = 1 << 16, .max_memory = 8 << 20,
                                    .max_steps = 200000, .max_depth = 128, .fixed_now = true,
                                    .now = 1721952000};
    char *out = NULL;
    size_t len = 0;
    err = slora_template_render(t, ctx, &o, &out, &len, diag, sizeof(diag));
    if (err ? (!diag[0] || out) : (!out || strlen(out) > len))
        abort();
    free(out);
    json_decref(ctx);
    slora_template_free(t);
    return 0;
}
