/* import.h - LoRA adapters from other tools, converted exactly into
 * SuperLoRA v1 files (spec section 8: LoRA is per-matrix groups, K = 1,
 * M = 2, A_{0,0} = B (out, r), A_{0,1} = A^T (in, r)).
 *
 * Sources:
 * - PEFT (Hugging Face): adapter_config.json + adapter_model.safetensors
 *   with `base_model.model.model.layers.{l}.{self_attn|mlp}.{q_proj..}
 *   .lora_A.weight` (r, in) and `.lora_B.weight` (out, r); dW = s B A,
 *   s = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; r and
 *   alpha per module from rank_pattern / alpha_pattern (keys are regular
 *   expressions matched as PEFT does, `^(.*\.)?(KEY)$` against
 *   `model.layers.{l}.self_attn.q_proj`, first match in file order).
 *   layers_to_transform is checked against the tensors present;
 *   fan_in_fan_out only describes how a Conv1D base stores W (A is (r, in)
 *   and B (out, r) either way). Also as a tar of the two files (the
 *   daemon's PEFT upload).
 * - llama.cpp GGUF LoRA: general.type "adapter", adapter.type "lora",
 *   adapter.lora.alpha (F32, optional), tensors `blk.{l}.{attn_q..}.weight
 *   .lora_a` (ggml ne [in, r]) and `.lora_b` (ne [r, out]), F32, F16 or
 *   BF16; s = alpha / r
 *   per pair (r = lora_b's ne[0]), 1 when alpha is 0 or absent.
 *
 * Row order (spec section 1): deltas are in the base's GGUF row order. For
 * llama-architecture bases an HF/PEFT adapter's wq/wk delta rows are in
 * rotate-half order; with permute_qk the importer moves them to GGUF's
 * interleaved pairs by permuting B's rows (exact). GGUF LoRA tensors are
 * in GGUF order already.
 *
 * The spec has one alpha per adapter: when every module has the same scale
 * it becomes alpha (factors copied bit for bit); otherwise alpha = 1 and
 * each module's scale is multiplied into its B. Targets missing from the
 * layers x modules product get zero factors of rank 1 (dW = 0).
 *
 * Refused with SLORA_EUNIMPORTABLE (422) and the reason: DoRA, bias
 * training, modules_to_save and the other options that change what the
 * adapter computes, modules slorad cannot target (embeddings, lm_head,
 * norms); SLORA_EMISMATCH: shapes or layers that disagree with the base;
 * SLORA_EFORMAT: malformed files. The output is a new malloc'd buffer
 * (caller frees); callers validate it like any upload. Pure functions on
 * their arguments: any thread.
 */
#ifndef SLORA_IMPORT_H
#define SLORA_IMPORT_H

#include <slora/arch.h>

#include <stdbool.h>
#include <stddef.h>

#define SLORA_IMPORT_MAX_CONFIG (1u << 20) /* bytes of adapter_config.json */

struct slora_model;

/* What an import converts for. */
struct slora_import_target {
    struct slora_shape shape;
    int head_size;    /* rows of one attention head of wq and wk */
    bool permute_qk;  /* HF q/k rows are rotate-half, the base's GGUF rows interleaved (llama) */
    const char *arch; /* general.architecture a GGUF LoRA must name; NULL: not checked */
};

/* The target of a loaded base model (its shape and architecture). */
void slora_import_target_init(struct slora_import_target *t, const struct slora_model *m);

/* PEFT: config (adapter_config.json) and weights (adapter_model.safetensors). */
int slora_import_peft(const void *config, size_t config_len, const void *weights,
                      size_t weights_len, const struct slora_import_target *t, void **out,
                      size_t *out_len, char *diag, size_t diag_len);
/* PEFT as a tar of its two files (slora_tar_is_tar detects one). */
int slora_import_peft_tar(const void *tar, size_t len, const struct slora_import_target *t,
                          void **out, size_t *out_len, char *diag, size_t diag_len);
/* llama.cpp GGUF LoRA file. */
int slora_import_gguf_lora(const void *buf, size_t len, const struct slora_import_target *t,
                           void **out, size_t *out_len, char *diag, size_t diag_len);

#endif
