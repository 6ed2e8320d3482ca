/* quant.h - ggml's element formats: F16 and BF16 scalars, and the block
 * quantized types of tensor.h, with row (de)quantizers and the checks a
 * loader runs on untrusted tensors.
 *
 * All multi-byte fields are little-endian; "f16" is an IEEE half, stored as
 * its 16 bits. A row of cols elements is cols / QK blocks laid end to end
 * (QK = 32 for the legacy types, 256 for the K-quants); blocks are packed
 * with no padding (sizes in the _Static_asserts of quant.c).
 *
 * Legacy types, 32 elements y[0..31] per block:
 *   Q8_0 (34 B)  f16 d | i8 qs[32]:            y[j] = d * qs[j]
 *   Q4_0 (18 B)  f16 d | u8 qs[16]:            y[j] = d * ((qs[j] & 15) - 8),
 *                                              y[j + 16] = d * ((qs[j] >> 4) - 8)   (j < 16)
 *   Q4_1 (20 B)  f16 d | f16 m | u8 qs[16]:    y[j] = d * (qs[j] & 15) + m,
 *                                              y[j + 16] = d * (qs[j] >> 4) + m
 *   Q5_0 (22 B)  f16 d | u8 qh[4] | u8 qs[16]: with h = qh read as a u32 (LE),
 *                                              y[j] = d * ((qs[j] & 15 | bit j of h << 4) - 16),
 *                                              y[j + 16] = d * ((qs[j] >> 4 | bit (j + 16) of h << 4) - 16)
 *   Q5_1 (24 B)  f16 d | f16 m | u8 qh[4] | u8 qs[16]: as Q5_0 without the -16, plus m
 *   Q8_1 (36 B)  f16 d | f16 s | i8 qs[32]:    y[j] = d * qs[j]; s = d * sum(qs)
 *                (activations only: the Q4_1/Q5_1 dots use s for the m term)
 *
 * K-quants, 256 elements per super-block, in sub-blocks:
 *   Q4_K (144 B) f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *       8 sub-blocks of 32, each with a 6-bit scale sc[i] and min m[i]
 *       packed in scales[12]: for i < 4, sc[i] = scales[i] & 63,
 *       m[i] = scales[i + 4] & 63; for i >= 4,
 *       sc[i] = (scales[i + 4] & 15) | (scales[i - 4] >> 6) << 4,
 *       m[i] = (scales[i + 4] >> 4) | (scales[i] >> 6) << 4.
 *       qs holds 4 chunks of 32 bytes; chunk c's low nibbles are the 32
 *       elements of sub-block 2c, its high nibbles those of sub-block 2c+1:
 *       y[64c + l] = d * sc[2c] * (qs[32c + l] & 15) - dmin * m[2c],
 *       y[64c + 32 + l] = d * sc[2c+1] * (qs[32c + l] >> 4) - dmin * m[2c+1].
 *   Q5_K (176 B) f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
 *       as Q4_K with a fifth bit: sub-block s takes bit s of qh[l] as its
 *       value 16, q = (nibble) + 16 * (qh[l] >> s & 1) for element l of it.
 *   Q6_K (210 B) u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
 *       16 sub-blocks of 16 with signed 8-bit scales; two halves of 128
 *       elements, half h using ql[64h..], qh[32h..], scales[8h..]; within a
 *       half, for l < 32 and t = l / 16:
 *         q0 = (ql[l] & 15 | (qh[l] & 3) << 4) - 32       -> y[l],      scale[t]
 *         q1 = (ql[l + 32] & 15 | (qh[l] >> 2 & 3) << 4) - 32 -> y[l + 32], scale[t + 2]
 *         q2 = (ql[l] >> 4 | (qh[l] >> 4 & 3) << 4) - 32  -> y[l + 64], scale[t + 4]
 *         q3 = (ql[l + 32] >> 4 | (qh[l] >> 6) << 4) - 32 -> y[l + 96], scale[t + 6]
 *       y = d * scale * q.
 *   Q8_K (292 B) f32 d | i8 qs[256] | i16 bsums[16]: y[j] = d * qs[j];
 *       bsums[i] = sum of qs[16i .. 16i+15] (activations only).
 *
 * Quantizers follow ggml's reference ones: Q8_0/Q8_1 scale by amax / 127,
 * Q4_0/Q5_0 by the signed extreme / -8 (-16), Q4_1/Q5_1 by (max - min) /
 * 15 (31) from min; Q4_K/Q5_K search each sub-block's scale and min by
 * weighted least squares over a range of candidate scales, Q6_K each
 * sub-block's scale the same way without a min, then quantize the scales
 * to 6 (8) bits and requantize the elements against the stored scales.
 * Pure functions on caller memory; any thread may call them.
 */
#ifndef SLORA_QUANT_H
#define SLORA_QUANT_H

#include <slora/tensor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLORA_QUANT_QK 32    /* elements per legacy block */
#define SLORA_QUANT_QK_K 256 /* elements per K-quant super-block */

struct slora_quant_q8_0 {
    uint16_t d; /* f16 scale */
    int8_t qs[32];
};

struct slora_quant_q4_0 {
    uint16_t d;
    uint8_t qs[16]; /* element j in the low nibble of qs[j], j + 16 in the high */
};

struct slora_quant_q4_1 {
    uint16_t d;
    uint16_t m; /* f16 offset added to every element */
    uint8_t qs[16];
};

struct slora_quant_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* bit j: fifth bit of element j (u32, little-endian) */
    uint8_t qs[16];
};

struct slora_quant_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[16];
};

struct slora_quant_q8_1 {
    uint16_t d;
    uint16_t s; /* f16 d * sum(qs) */
    int8_t qs[32];
};

struct slora_quant_q4_k {
    uint16_t d;          /* f16 super-scale of the sub-block scales */
    uint16_t dmin;       /* f16 super-scale of the sub-block mins */
    uint8_t scales[12];  /* 8 six-bit scales and 8 six-bit mins, packed */
    uint8_t qs[128];     /* 4-bit quants */
};

struct slora_quant_q5_k {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[32];  /* fifth bits: bit s of qh[l] for element l of sub-block s */
    uint8_t qs[128]; /* low 4 bits, as Q4_K */
};

struct slora_quant_q6_k {
    uint8_t ql[128];   /* low 4 bits */
    uint8_t qh[64];    /* high 2 bits */
    int8_t scales[16]; /* sub-block scales */
    uint16_t d;        /* f16 super-scale */
};

struct slora_quant_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16]; /* sums of 16 consecutive qs */
};

/* IEEE half <-> float. Rounding is to nearest even; overflow gives
 * infinity; NaN stays NaN (quiet). */
float slora_quant_f16_to_f32(uint16_t h);
uint16_t slora_quant_f32_to_f16(float f);
/* bfloat16 (the top 16 bits of a float) <-> float, same rounding rules. */
float slora_quant_bf16_to_f32(uint16_t h);
uint16_t slora_quant_f32_to_bf16(float f);

/* Can slora_quant_quantize produce / slora_quant_dequantize read type t?
 * (Every known type; Q8_K and Q8_1 included.) */
bool slora_quant_is_supported(uint32_t t);

/* dst (n floats) = the n elements of type t at src. n must be a positive
 * multiple of t's block; returns SLORA_EINVAL otherwise (or for an
 * unknown type) and 0 on success. */
int slora_quant_dequantize(uint32_t t, const void *src, float *dst, int64_t n);

/* Quantize n floats into slora_dtype_row_bytes(t, n) bytes at dst with the
 * reference quantizer of type t (see above). Same errors as dequantize.
 * Non-finite inputs give a defined but meaningless block (no crash). */
int slora_quant_quantize(uint32_t t, const float *src, void *dst, int64_t n);

/* Loader checks for an untrusted tensor `name` (NUL-terminated, used only
 * in diag) of ggml type t and shape (rows, cols) stored in nbytes bytes:
 * t must be a weight type (else SLORA_EUNSUPPORTED), cols a positive
 * multiple of t's block (ggml requires the row to hold whole blocks), and
 * nbytes == rows * row bytes without overflow (else SLORA_EFORMAT). The
 * diag names the tensor, the type and the numbers that disagree. */
int slora_quant_check_shape(const char *name, uint32_t t, int64_t rows, int64_t cols,
                            uint64_t nbytes, char *diag, size_t diag_len);

/* The values of such a tensor: F32/F16/BF16 elements, and every block's f16
 * scales (d, and m or dmin where the type has one), must be finite (the
 * quants themselves cannot be invalid). A loader should refuse such a file
 * (llama.cpp's validation does the same); the kernels never fault on one,
 * they only produce NaN/Inf outputs. Returns SLORA_ENONFINITE naming the tensor and the byte offset of the
 * first bad value, 0 when all are finite. nbytes must be a whole number of
 * t's blocks (as slora_quant_check_shape ensures). Reads every block. */
int slora_quant_check_data(const char *name, uint32_t t, const void *data, size_t nbytes,
                           char *diag, size_t diag_len);

#endif
