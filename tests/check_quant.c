/* check_quant.c - ggml's element formats (quant.h):
 *   - F16 and BF16 conversions against IEEE encodings worked out by hand;
 *   - dequantization of hand-built blocks of every type, the expected
 *     values computed here from the layout's definition (element by
 *     element, not with the library's loops), plus literal spot values;
 *   - quantize -> dequantize: bit-exact for values the format represents,
 *     bounded error (and the K-quants' fitted scales) for random rows;
 *   - the loader checks: each malformed shape/byte count/type and each
 *     non-finite scale refused with the tensor named. */
#include <slora/error.h>
#include <slora/quant.h>

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* IEEE 754 binary16 encodings. */
static const struct {
    float f;
    uint16_t h;
} f16_table[] = {
    {1.0f, 0x3c00},           {-2.0f, 0xc000},         {0.5f, 0x3800},
    {65504.0f, 0x7bff},       {65520.0f, 0x7c00},      {-1e6f, 0xfc00},
    {0.1f, 0x2e66},           {6.1035156e-5f, 0x0400}, {5.9604645e-8f, 0x0001},
    {2.9802322e-8f, 0x0000},  {8.940697e-8f, 0x0002},  {1.0009766f, 0x3c01},
    {1.00048828125f, 0x3c00}, /* tie: rounds to even */
    {1.00146484375f, 0x3c02}, /* tie: rounds to even (up) */
    {-0.0f, 0x8000},
};

START_TEST(f16_values)
{
    float f = f16_table[_i].f;
    uint16_t h = f16_table[_i].h;
    ck_assert_uint_eq(slora_quant_f32_to_f16(f), h);
}
END_TEST

START_TEST(f16_round_trip_all)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = slora_quant_f16_to_f32((uint16_t)h);
        if (isnan(f))
            ck_assert_uint_eq(slora_quant_f32_to_f16(f) & 0x7e00, 0x7e00);
        else
            ck_assert_uint_eq(slora_quant_f32_to_f16(f), h);
    }
    ck_assert(slora_quant_f16_to_f32(0x0001) == 5.9604645e-8f);
    ck_assert(slora_quant_f16_to_f32(0x7bff) == 65504.0f);
    ck_assert(isinf(slora_quant_f16_to_f32(0xfc00)));
}
END_TEST

/* bfloat16: the top half of the float, rounded to nearest even. */
static const struct {
    float f;
    uint16_t h;
} bf16_table[] = {
    {1.0f, 0x3f80},
    {-2.0f, 0xc000},
    {1.00390625f, 0x3f80},    /* 1 + 2^-8: tie, stays even */
    {1.01171875f, 0x3f82},    /* 1 + 3 2^-8: tie, rounds up to even */
    {1.0039065f, 0x3f81},     /* just above the tie */
    {3.4028235e38f, 0x7f80},  /* FLT_MAX rounds up to infinity */
    {1e-40f, 0x0001},         /* subnormal 0x000116c2 */
    {-0.0f, 0x8000},
};

START_TEST(bf16_values)
{
    ck_assert_uint_eq(slora_quant_f32_to_bf16(bf16_table[_i].f), bf16_table[_i].h);
}
END_TEST

START_TEST(bf16_round_trip_all)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = slora_quant_bf16_to_f32((uint16_t)h);
        uint32_t bits;
        memcpy(&bits, &f, 4);
        ck_assert_uint_eq(bits, h << 16);
        if (isnan(f))
            ck_assert_uint_eq(slora_quant_f32_to_bf16(f) & 0x7fc0, 0x7fc0);
        else
            ck_assert_uint_eq(slora_quant_f32_to_bf16(f), h);
    }
}
END_TEST

static void dequant(uint32_t t, const void *blk, float *y, int64_t n)
{
    ck_assert_int_eq(slora_quant_dequantize(t, blk, y, n), 0);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Legacy blocks, bytes written at their documented offsets. */
START_TEST(dequant_q8_0)
{
    uint8_t b[34];
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j * 9 - 140); /* -140 wraps: int8 -128..127 */
    float y[32];
    dequant(SLORA_DTYPE_Q8_0, b, y, 32);
    for (int j = 0; j < 32; j++)
        ck_assert(y[j] == 0.5f * (float)(int8_t)(uint8_t)(j * 9 - 140));
    ck_assert(y[0] == 0.5f * 116); /* -140 + 256 */
    ck_assert(y[31] == 0.5f * (31 * 9 - 140 - 256)); /* 139 wraps to -117 */
}
END_TEST

START_TEST(dequant_q4_0)
{
    uint8_t b[18];
    put16(b, 0x4000); /* d = 2 */
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    dequant(SLORA_DTYPE_Q4_0, b, y, 32);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == 2.0f * (float)(j - 8));
        ck_assert(y[j + 16] == 2.0f * (float)(15 - j - 8));
    }
    ck_assert(y[0] == -16 && y[16] == 14);
}
END_TEST

START_TEST(dequant_q4_1)
{
    uint8_t b[20];
    put16(b, 0x3c00);     /* d = 1 */
    put16(b + 2, 0xbc00); /* m = -1 */
    for (int j = 0; j < 16; j++)
        b[4 + j] = (uint8_t)(j | (15 - j) << 4);
    float y[32];
    dequant(SLORA_DTYPE_Q4_1, b, y, 32);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == (float)j - 1);
        ck_assert(y[j + 16] == (float)(15 - j) - 1);
    }
}
END_TEST

/* Q5_0 / Q5_1 with qh = 0xAAAAAAAA: elements with odd index get 16. */
START_TEST(dequant_q5)
{
    uint8_t b0[22], b1[24];
    put16(b0, 0x3c00);
    put16(b1, 0x3c00);
    put16(b1 + 2, 0x3800); /* m = 0.5 */
    for (int k = 0; k < 4; k++)
        b0[2 + k] = b1[4 + k] = 0xAA;
    for (int j = 0; j < 16; j++)
        b0[6 + j] = b1[8 + j] = (uint8_t)(j | (15 - j) << 4);
    float y0[32], y1[32];
    dequant(SLORA_DTYPE_Q5_0, b0, y0, 32);
    dequant(SLORA_DTYPE_Q5_1, b1, y1, 32);
    for (int e = 0; e < 32; e++) {
        int lo = e < 16 ? e : 15 - (e - 16); /* the nibble of element e */
        int q = lo + (e % 2 ? 16 : 0);
        ck_assert_msg(y0[e] == (float)(q - 16), "Q5_0 element %d: %g", e, y0[e]);
        ck_assert_msg(y1[e] == (float)q + 0.5f, "Q5_1 element %d: %g", e, y1[e]);
    }
    ck_assert(y0[1] == 1 && y0[17] == (14 + 16) - 16);
}
END_TEST

/* The Q4_K/Q5_K scale bytes for sc = {1,2,3,4,33,40,50,63} and
 * m = {5,6,7,8,20,17,60,1}, packed by hand: bytes 0-3 sc[0..3] with the
 * top two bits of sc[4..7] at bit 6, bytes 4-7 likewise for m, bytes 8-11
 * the low nibbles of sc[4..7] | m[4..7] << 4. */
static const uint8_t k_scales[12] = {0x81, 0x82, 0xC3, 0xC4, 0x45, 0x46,
                                     0xC7, 0x08, 0x41, 0x18, 0xC2, 0x1F};
static const int k_sc[8] = {1, 2, 3, 4, 33, 40, 50, 63};
static const int k_m[8] = {5, 6, 7, 8, 20, 17, 60, 1};

START_TEST(dequant_q4_k)
{
    uint8_t b[144];
    put16(b, 0x3c00);     /* d = 1 */
    put16(b + 2, 0x3800); /* dmin = 0.5 */
    memcpy(b + 4, k_scales, 12);
    for (int k = 0; k < 128; k++)
        b[16 + k] = (uint8_t)(k * 29 + 3);
    float y[256];
    dequant(SLORA_DTYPE_Q4_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, l = e % 32;            /* sub-block, index in it */
        uint8_t byte = b[16 + 32 * (s / 2) + l]; /* chunk s/2 */
        int q = s % 2 ? byte >> 4 : byte & 15;
        ck_assert_msg(y[e] == (float)(k_sc[s] * q) - 0.5f * (float)k_m[s], "element %d", e);
    }
    /* e = 100: sub-block 3, l = 4, byte 16 + 32 + 4 = qs[36] = 36*29+3 = 1047 = 0x17 -> high 1 */
    ck_assert(y[100] == 4 * 1 - 0.5f * 8);
}
END_TEST

START_TEST(dequant_q5_k)
{
    uint8_t b[176];
    put16(b, 0x3c00);
    put16(b + 2, 0x3800);
    memcpy(b + 4, k_scales, 12);
    for (int k = 0; k < 32; k++)
        b[16 + k] = (uint8_t)(k * 57 + 11); /* qh */
    for (int k = 0; k < 128; k++)
        b[48 + k] = (uint8_t)(k * 29 + 3);
    float y[256];
    dequant(SLORA_DTYPE_Q5_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        int s = e / 32, l = e % 32;
        uint8_t byte = b[48 + 32 * (s / 2) + l];
        int q = (s % 2 ? byte >> 4 : byte & 15) + 16 * (b[16 + l] >> s & 1);
        ck_assert_msg(y[e] == (float)(k_sc[s] * q) - 0.5f * (float)k_m[s], "element %d", e);
    }
    /* e = 0: qs[0] = 3, qh[0] = 11 = 0b1011 -> bit 0 set: q = 19 */
    ck_assert(y[0] == 19 - 2.5f);
}
END_TEST

START_TEST(dequant_q6_k)
{
    uint8_t b[210];
    static const int8_t sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -16};
    for (int k = 0; k < 128; k++)
        b[k] = (uint8_t)(k * 37);
    for (int k = 0; k < 64; k++)
        b[128 + k] = (uint8_t)(k * 91);
    memcpy(b + 192, sc, 16);
    put16(b + 208, 0x3400); /* d = 0.25 */
    float y[256];
    dequant(SLORA_DTYPE_Q6_K, b, y, 256);
    for (int e = 0; e < 256; e++) {
        /* half h, group g of 32 in it, index l in the group */
        int h = e / 128, g = e % 128 / 32, l = e % 32;
        uint8_t lo = b[64 * h + l + 32 * (g & 1)];
        int low4 = g >= 2 ? lo >> 4 : lo & 15;
        int hi2 = b[128 + 32 * h + l] >> (2 * g) & 3;
        int s = sc[8 * h + l / 16 + 2 * g];
        ck_assert_msg(y[e] == 0.25f * (float)(s * ((low4 | hi2 << 4) - 32)), "element %d", e);
    }
    ck_assert(y[0] == -8.0f);   /* ql 0, qh 0: q = -32, scale 1 */
    ck_assert(y[200] == 71.5f); /* ql[72] = 0x68 high 6, qh[40] = 56 bits 4-5 = 3: q = 22, scale 13 */
}
END_TEST

START_TEST(dequant_q8_k)
{
    struct slora_quant_q8_k b;
    b.d = 0.125f;
    for (int j = 0; j < 256; j++)
        b.qs[j] = (int8_t)(j - 128);
    float y[256];
    dequant(SLORA_DTYPE_Q8_K, &b, y, 256);
    for (int j = 0; j < 256; j++)
        ck_assert(y[j] == 0.125f * (float)(j - 128));
}
END_TEST

/* Rows the format represents exactly come back bit for bit: q * d with a
 * power-of-two d and the extreme the quantizer scales by. */
START_TEST(round_trip_exact)
{
    enum { N = 512 };
    static float x[N], y[N];
    static uint8_t buf[N * 2];
    uint32_t s = 7;
    /* Q8_0 / Q8_1: q in -127..127, each block reaching 127 */
    for (int j = 0; j < N; j++) {
        s = s * 1664525u + 1013904223u;
        x[j] = j % 32 == 5 ? 127 * 0.25f : (float)((int)(s >> 24) % 255 - 127) * 0.25f;
    }
    static const uint32_t q8[] = {SLORA_DTYPE_Q8_0, SLORA_DTYPE_Q8_1, SLORA_DTYPE_Q8_K};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(slora_quant_quantize(q8[k], x, buf, N), 0);
        dequant(q8[k], buf, y, N);
        for (int j = 0; j < N; j++)
            ck_assert_msg(y[j] == x[j], "%s %d: %g vs %g", slora_dtype_name(q8[k]), j, y[j], x[j]);
    }
    /* Q4_0 (Q5_0): d (q - 8 (16)) with -8 d (-16 d) in each block */
    for (int bits = 4; bits <= 5; bits++) {
        int half = 1 << (bits - 1);
        for (int j = 0; j < N; j++) {
            s = s * 1664525u + 1013904223u;
            int q = j % 32 == 3 ? 0 : (int)(s >> 8) % (2 * half);
            x[j] = (float)(q - half) * 0.5f;
        }
        uint32_t t = bits == 4 ? SLORA_DTYPE_Q4_0 : SLORA_DTYPE_Q5_0;
        ck_assert_int_eq(slora_quant_quantize(t, x, buf, N), 0);
        dequant(t, buf, y, N);
        for (int j = 0; j < N; j++)
            ck_assert_msg(y[j] == x[j], "%s %d: %g vs %g", slora_dtype_name(t), j, y[j], x[j]);
        /* Q4_1 (Q5_1): m + d q with q = 0 and the top level in each block */
        for (int j = 0; j < N; j++) {
            s = s * 1664525u + 1013904223u;
            int q = j % 32 == 1 ? 0 : j % 32 == 2 ? 2 * half - 1 : (int)(s >> 8) % (2 * half);
            x[j] = -3.0f + (float)q * 0.25f;
        }
        t = bits == 4 ? SLORA_DTYPE_Q4_1 : SLORA_DTYPE_Q5_1;
        ck_assert_int_eq(slora_quant_quantize(t, x, buf, N), 0);
        dequant(t, buf, y, N);
        for (int j = 0; j < N; j++)
            ck_assert_msg(y[j] == x[j], "%s %d: %g vs %g", slora_dtype_name(t), j, y[j], x[j]);
    }
}
END_TEST

/* Random rows: the error of each type stays within its resolution. For
 * the legacy types that is half a step everywhere (plus the f16 rounding
 * of the scale); the K-quants' fitted scales may clip a little, so their
 * bound is on the RMS error relative to the row's RMS, about 1.5 times
 * what a uniform grid of their levels gives on uniform data. */
START_TEST(round_trip_error)
{
    enum { N = 4096 };
    static float x[N], y[N];
    static uint8_t buf[N * 2];
    static const struct {
        uint32_t t;
        double rel_rms;
    } cases[] = {
        {SLORA_DTYPE_Q8_0, 0.005}, {SLORA_DTYPE_Q4_0, 0.09}, {SLORA_DTYPE_Q4_1, 0.07},
        {SLORA_DTYPE_Q5_0, 0.045}, {SLORA_DTYPE_Q5_1, 0.035}, {SLORA_DTYPE_Q4_K, 0.09},
        {SLORA_DTYPE_Q5_K, 0.045}, {SLORA_DTYPE_Q6_K, 0.025}, {SLORA_DTYPE_F16, 0.0005},
        {SLORA_DTYPE_BF16, 0.004},
    };
    uint32_t s = 11;
    for (int j = 0; j < N; j++) {
        s = s * 1664525u + 1013904223u;
        x[j] = ((float)(s >> 8) / 8388608.0f - 1.0f) * (j % 512 < 256 ? 1.0f : 0.01f);
    }
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ck_assert_int_eq(slora_quant_quantize(cases[c].t, x, buf, N), 0);
        dequant(cases[c].t, buf, y, N);
        /* per 256-element span (each of one magnitude): relative RMS */
        for (int b = 0; b < N; b += 256) {
            double e2 = 0, x2 = 0;
            for (int j = b; j < b + 256; j++) {
                e2 += (double)(y[j] - x[j]) * (y[j] - x[j]);
                x2 += (double)x[j] * x[j];
            }
            ck_assert_msg(sqrt(e2 / x2) <= cases[c].rel_rms, "%s span %d: relative RMS %g",
                          slora_dtype_name(cases[c].t), b, sqrt(e2 / x2));
        }
    }
    /* the legacy symmetric types: every element within half a step */
    ck_assert_int_eq(slora_quant_quantize(SLORA_DTYPE_Q8_0, x, buf, N), 0);
    dequant(SLORA_DTYPE_Q8_0, buf, y, N);
    for (int b = 0; b < N; b += 32) {
        float amax = 0;
        for (int j = b; j < b + 32; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        for (int j = b; j < b + 32; j++)
            ck_assert(fabsf(y[j] - x[j]) <= amax / 127 * (0.5f + 1.0f / 16));
    }
}
END_TEST

START_TEST(nonfinite_input)
{
    /* NaN/Inf in a row give some block, never a crash or a trap */
    float x[256];
    for (int j = 0; j < 256; j++)
        x[j] = j % 3 ? (float)j : (j % 2 ? NAN : INFINITY);
    uint8_t buf[512];
    static const uint32_t ts[] = {SLORA_DTYPE_Q8_0, SLORA_DTYPE_Q4_0, SLORA_DTYPE_Q4_1,
                                  SLORA_DTYPE_Q5_0, SLORA_DTYPE_Q5_1, SLORA_DTYPE_Q4_K,
                                  SLORA_DTYPE_Q5_K, SLORA_DTYPE_Q6_K, SLORA_DTYPE_Q8_K};
    for (size_t k = 0; k < sizeof(ts) / sizeof(ts[0]); k++)
        ck_assert_int_eq(slora_quant_quantize(ts[k], x, buf, 256), 0);
    /* bad sizes and types */
    ck_assert_int_eq(slora_quant_quantize(SLORA_DTYPE_Q4_K, x, buf, 255), SLORA_EINVAL);
    ck_assert_int_eq(slora_quant_dequantize(SLORA_DTYPE_Q4_0, buf, x, 48), SLORA_EINVAL);
    ck_assert_int_eq(slora_quant_dequantize(4, buf, x, 32), SLORA_EINVAL);
    ck_assert_int_eq(slora_quant_quantize(SLORA_DTYPE_F32, x, buf, 0), SLORA_EINVAL);
}
END_TEST

static const struct {
    uint32_t t;
    int64_t rows, cols;
    uint64_t nbytes;
    int err;
    const char *diag;
} shape_cases[] = {
    {SLORA_DTYPE_Q4_K, 2, 512, 2 * 2 * 144, 0, ""},
    {SLORA_DTYPE_F32, 3, 5, 60, 0, ""},
    {4, 2, 32, 64, SLORA_EUNSUPPORTED, "unknown type id 4"},
    {99, 2, 32, 64, SLORA_EUNSUPPORTED, "unknown type id 99"},
    {SLORA_DTYPE_Q8_K, 1, 256, 292, SLORA_EUNSUPPORTED, "Q8_K, which is not a weight type"},
    {SLORA_DTYPE_Q4_K, 2, 384, 2 * 144, SLORA_EFORMAT, "(2, 384)"},
    {SLORA_DTYPE_Q8_0, 1, 16, 34, SLORA_EFORMAT, "32-element blocks"},
    {SLORA_DTYPE_Q8_0, 0, 32, 0, SLORA_EFORMAT, "(0, 32)"},
    {SLORA_DTYPE_Q6_K, 2, 256, 419, SLORA_EFORMAT, "holds 419 bytes"},
    {SLORA_DTYPE_F16, INT64_MAX / 2, 4, 64, SLORA_EFORMAT, "holds 64 bytes"},
};

START_TEST(check_shape)
{
    char diag[256] = "";
    int rc = slora_quant_check_shape("blk.0.attn_q.weight", shape_cases[_i].t, shape_cases[_i].rows,
                                     shape_cases[_i].cols, shape_cases[_i].nbytes, diag,
                                     sizeof(diag));
    ck_assert_int_eq(rc, shape_cases[_i].err);
    if (rc) {
        ck_assert_msg(strstr(diag, "'blk.0.attn_q.weight'") != NULL, "%s", diag);
        ck_assert_msg(strstr(diag, shape_cases[_i].diag) != NULL, "%s", diag);
    }
}
END_TEST

START_TEST(check_data)
{
    char diag[256];
    /* clean data of each kind passes */
    uint8_t q4k[2 * 144] = {0}, q6k[210] = {0}, q80[2 * 34] = {0};
    float f[4] = {1, -2, 0, 3e38f};
    ck_assert_int_eq(slora_quant_check_data("w", SLORA_DTYPE_Q4_K, q4k, sizeof(q4k), diag, 256), 0);
    ck_assert_int_eq(slora_quant_check_data("w", SLORA_DTYPE_F32, f, sizeof(f), diag, 256), 0);
    /* Q4_K second block's dmin (byte 144 + 2) is +Inf */
    put16(q4k + 146, 0x7c00);
    ck_assert_int_eq(slora_quant_check_data("w.q", SLORA_DTYPE_Q4_K, q4k, sizeof(q4k), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "'w.q'") && strstr(diag, "byte 146"), "%s", diag);
    /* Q6_K's d sits at the end of the block */
    put16(q6k + 208, 0xfe00); /* NaN */
    ck_assert_int_eq(slora_quant_check_data("w6", SLORA_DTYPE_Q6_K, q6k, sizeof(q6k), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "byte 208"), "%s", diag);
    /* quants that happen to look like NaN halves are fine; the scale is not */
    memset(q80 + 2, 0xff, 32);
    ck_assert_int_eq(slora_quant_check_data("w8", SLORA_DTYPE_Q8_0, q80, sizeof(q80), diag, 256), 0);
    put16(q80 + 34, 0xfc00);
    ck_assert_int_eq(slora_quant_check_data("w8", SLORA_DTYPE_Q8_0, q80, sizeof(q80), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "byte 34"), "%s", diag);
    f[2] = NAN;
    ck_assert_int_eq(slora_quant_check_data("wf", SLORA_DTYPE_F32, f, sizeof(f), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "byte 8"), "%s", diag);
    uint16_t h[3] = {0x3c00, 0x7f80, 0}; /* bf16 +Inf; as a half, 0x7f80 is a NaN too */
    ck_assert_int_eq(slora_quant_check_data("wb", SLORA_DTYPE_BF16, h, sizeof(h), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_int_eq(slora_quant_check_data("wh", SLORA_DTYPE_F16, h, sizeof(h), diag, 256),
                     SLORA_ENONFINITE);
    ck_assert_msg(strstr(diag, "byte 2"), "%s", diag);
    h[1] = 0x7bff; /* 65504: the largest finite half */
    ck_assert_int_eq(slora_quant_check_data("wh", SLORA_DTYPE_F16, h, sizeof(h), diag, 256), 0);
    /* a byte count that is not whole blocks */
    ck_assert_int_eq(slora_quant_check_data("w", SLORA_DTYPE_Q4_K, q4k, 100, diag, 256),
                     SLORA_EFORMAT);
}
END_TEST

/* Long tensors go through the chunked scan (2048 values a chunk): one bad
 * value anywhere, first chunk, later chunk, a chunk's last value, the tail
 * after the whole chunks, is found at its exact byte; two bad values give
 * the first; a clean tensor passes. 5000 values: two whole chunks and a
 * tail. The bad patterns: F32 +Inf and a NaN, F16 -Inf, BF16 NaN. */
static const struct long_case {
    uint32_t t;
    size_t size;
    uint32_t bad;
} long_cases[] = {
    {SLORA_DTYPE_F32, 4, 0x7f800000},
    {SLORA_DTYPE_F32, 4, 0xffc00001},
    {SLORA_DTYPE_F16, 2, 0xfc00},
    {SLORA_DTYPE_BF16, 2, 0x7fc1},
};

START_TEST(check_data_long)
{
    const struct long_case *c = &long_cases[_i];
    enum { N = 5000 };
    static const size_t at[] = {0, 17, 2047, 2048, 4095, 4096, 4999};
    uint8_t *buf = malloc(N * c->size);
    char diag[256];
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        /* a clean pattern with every exponent bit but one set: the largest finites */
        for (size_t i = 0; i < N; i++) {
            uint32_t v = c->size == 4 ? 0x7f7fffff : c->t == SLORA_DTYPE_F16 ? 0x7bff : 0x7f7f;
            memcpy(buf + i * c->size, &v, c->size);
        }
        ck_assert_int_eq(slora_quant_check_data("w", c->t, buf, N * c->size, diag, 256), 0);
        memcpy(buf + at[k] * c->size, &c->bad, c->size);
        if (at[k] + 100 < N) /* a later bad value does not hide the first */
            memcpy(buf + (at[k] + 100) * c->size, &c->bad, c->size);
        ck_assert_int_eq(slora_quant_check_data("w", c->t, buf, N * c->size, diag, 256),
                         SLORA_ENONFINITE);
        char want[32];
        snprintf(want, sizeof(want), "at byte %zu ", at[k] * c->size);
        ck_assert_msg(strstr(diag, want), "%s: want '%s'", diag, want);
    }
    free(buf);
}
END_TEST

Suite *slora_quant_suite(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, f16_values, 0, sizeof(f16_table) / sizeof(f16_table[0]));
    tcase_add_test(tc, f16_round_trip_all);
    tcase_add_loop_test(tc, bf16_values, 0, sizeof(bf16_table) / sizeof(bf16_table[0]));
    tcase_add_test(tc, bf16_round_trip_all);
    tcase_add_test(tc, dequant_q8_0);
    tcase_add_test(tc, dequant_q4_0);
    tcase_add_test(tc, dequant_q4_1);
    tcase_add_test(tc, dequant_q5);
    tcase_add_test(tc, dequant_q4_k);
    tcase_add_test(tc, dequant_q5_k);
    tcase_add_test(tc, dequant_q6_k);
    tcase_add_test(tc, dequant_q8_k);
    tcase_add_test(tc, round_trip_exact);
    tcase_add_test(tc, round_trip_error);
    tcase_add_test(tc, nonfinite_input);
    tcase_add_loop_test(tc, check_shape, 0, sizeof(shape_cases) / sizeof(shape_cases[0]));
    tcase_add_loop_test(tc, check_data_long, 0, sizeof(long_cases) / sizeof(long_cases[0]));
    tcase_add_test(tc, check_data);
    suite_add_tcase(s, tc);
    return s;
}
