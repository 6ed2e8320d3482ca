/* api_chat.h - chat prompts: OpenAI `messages` rendered by the model's own
 * chat template and tokenized (api_chat.c); not a public interface. Used
 * by POST /v1/chat/completions and by /v1/tokenize with messages.
 *
 * Conventions (Hugging Face's apply_chat_template for the rendering,
 * llama.cpp's server for the tokens):
 * - the template sees `messages` (each as sent, content parts joined into
 *   one string), `tools` (the request's, else none), `add_generation_prompt`,
 *   and `bos_token` / `eos_token`, the text of the vocabulary's BOS and EOS
 *   tokens (absent when it has none);
 * - the rendered text is tokenized with special tokens parsed; BOS is
 *   prepended only when the file asks for it and the text does not already
 *   start with the BOS text (EOS likewise appended at the end).
 * Worker threads only: rendering and tokenizing are computation.
 */
#ifndef SLORA_API_CHAT_H
#define SLORA_API_CHAT_H

#include "api_job.h"

struct slora_tokenizer;

struct slora__api_chat_opts {
    bool add_generation_prompt;
    bool add_special; /* BOS/EOS as the file asks (llama.cpp's add_special) */
    int bos;          /* -1: by add_special and the text; 0: never; 1: always */
};

/* Render req's messages with the model's chat template and tokenize them
 * into j->prompt (checked against the context). A model without a
 * template, a template that failed to parse at load or cannot render this
 * request (raise_exception, an unsupported construct, a limit) is
 * SLORA_EINVAL with a message naming it. */
int slora__api_chat_prompt(struct slora__api_job *j, json_t *req,
                           const struct slora__api_chat_opts *o);

#endif
