/* cmd_vocab.c - which tokenizer a command uses for a model (`generate`,
 * `logits`, `serve`).
 *
 * A model file's own vocabulary (a GGUF's tokenizer.* keys) always wins: a
 * tokenizer file given as well must hold the same vocabulary, else it is an
 * error rather than a silent override. A model without one (a llama2.c
 * .bin) needs a tok*.bin: the one given, else tok<vocab_size>.bin or
 * tokenizer.bin next to the model file.
 */
#include "internal.h"

#include <slora/error.h>
#include <slora/model.h>
#include <slora/tokenizer.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int slora__cmd_tokenizer(const struct slora_model *m, const char *path,
                         const struct slora_tokenizer **tok, struct slora_tokenizer **owned,
                         char *diag, size_t diag_len)
{
    int vocab = m->cfg.shape.vocab_size;
    const char *model_path = m->path;
    char beside[4096];
    *owned = NULL;
    *tok = m->gguf_vocab;
    if (path && !*path)
        path = NULL;
    if (!path && m->gguf_vocab)
        return 0;
    if (!path) {
        const char *slash = strrchr(model_path, '/');
        int dir_len = slash ? (int)(slash - model_path + 1) : 0;
        snprintf(beside, sizeof(beside), "%.*stok%d.bin", dir_len, model_path, vocab);
        if (access(beside, R_OK))
            snprintf(beside, sizeof(beside), "%.*stokenizer.bin", dir_len, model_path);
        if (access(beside, R_OK))
            return slora__diag(diag, diag_len, SLORA_ENOTFOUND,
                               "no tokenizer: %s has no vocabulary and neither tok%d.bin nor "
                               "tokenizer.bin is next to it; pass --tokenizer",
                               model_path, vocab);
        path = beside;
    }
    char sub[512];
    int err = slora_tokenizer_load(path, vocab, owned, sub, sizeof(sub));
    if (!m->gguf_vocab) {
        *tok = *owned;
        return err ? slora__diag(diag, diag_len, err, "%s", sub) : 0;
    }
    bool same = !err && slora_tokenizer_same_vocab(*owned, m->gguf_vocab);
    slora_tokenizer_free(*owned);
    *owned = NULL;
    if (!same)
        return slora__diag(diag, diag_len, SLORA_EINVAL,
                           "tokenizer %s conflicts with the vocabulary in %s (%s); the model "
                           "file's own vocabulary is used: drop the tokenizer setting",
                           path, model_path, err ? sub : "different tokens");
    return 0;
}
