/* cmd_convert.h - what `slorad convert` and `slorad quantize` share
 * (private to src/): opening any model slorad loads together with the
 * vocabulary the GGUF written from it carries, and writing that GGUF. */
#ifndef SLORA_CMD_CONVERT_H
#define SLORA_CMD_CONVERT_H

#include <slora/gguf.h>
#include <slora/model.h>
#include <slora/model_write.h>

struct slora_tokenizer;

struct slora__convert_src {
    struct slora_model *model;   /* owned */
    struct slora_tokenizer *tok; /* a .bin's tokenizer, owned; NULL otherwise */
    struct slora_gguf *gguf;     /* a GGUF input's keys (vocabulary copied verbatim), owned */
    bool is_bin;                 /* the input is a llama2.c .bin */
};

/* Load model_path: a llama2.c .bin (with tok_path, its tok*.bin), a GGUF or
 * a Hugging Face checkpoint directory (both carry their vocabulary, so
 * tok_path must be NULL). Returns 0, or 1 after printing
 * "slorad <cmd>: <diagnostic>" on stderr. */
int slora__convert_open(const char *cmd, const char *model_path, const char *tok_path,
                        struct slora__convert_src *s);
/* Write s's model to out as a GGUF v3 with o's types (o's vocabulary
 * fields are filled in from s). Returns 0, or 1 after printing the
 * diagnostic. */
int slora__convert_write(const char *cmd, struct slora__convert_src *s,
                         struct slora_model_write_opts *o, const char *out);
void slora__convert_close(struct slora__convert_src *s);

#endif
