/* quant_k.c - the K-quants (Q4_K, Q5_K, Q6_K and the Q8_K activations):
 * dequantization from the layouts of quant.h and the reference quantizers.
 *
 * Q4_K/Q5_K: each 32-element sub-block is fitted as x ~ scale * q - min
 * (q in 0..nmax) by weighted least squares, weights av + |x| (av the
 * sub-block's RMS), over candidate grids iscale = (nmax + rmin + k rdelta)
 * / (max - min); the 8 scales and mins are then quantized to 6 bits
 * against the super-block's largest, and the elements requantized against
 * the stored (rounded) scales. Q6_K fits each 16-element sub-block's
 * symmetric scale with weights x^2 over 19 grids around nmax = 32, then
 * the 16 scales to signed 8 bits. These are ggml's reference choices; a
 * file quantized here dequantizes to what llama.cpp's would, up to ties.
 */
#include "quant_internal.h"

#include <string.h>

#define QK_K SLORA_QUANT_QK_K

static inline float h2f(uint16_t h)
{
    return slora_quant_f16_to_f32(h);
}

static inline int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* One Q4_K or Q5_K super-block (qh NULL for Q4_K) into y[0..255]. */
static void dequant_k4(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *qs,
                       const uint8_t *qh, float *y)
{
    float d = h2f(d16), dmin = h2f(dmin16);
    for (int c = 0; c < 4; c++, y += 64) {
        const uint8_t *q = qs + 32 * c;
        int sc0, m0, sc1, m1;
        slora__quant_scale_min_k4(scales, 2 * c, &sc0, &m0);
        slora__quant_scale_min_k4(scales, 2 * c + 1, &sc1, &m1);
        float d0 = d * (float)sc0, n0 = dmin * (float)m0;
        float d1 = d * (float)sc1, n1 = dmin * (float)m1;
        for (int l = 0; l < 32; l++) {
            int h0 = qh ? qh[l] >> (2 * c) & 1 : 0, h1 = qh ? qh[l] >> (2 * c + 1) & 1 : 0;
            y[l] = d0 * (float)((q[l] & 15) | h0 << 4) - n0;
            y[l + 32] = d1 * (float)((q[l] >> 4) | h1 << 4) - n1;
        }
    }
}

void slora__quant_dequant_q4_k(const struct slora_quant_q4_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        dequant_k4(b[i].d, b[i].dmin, b[i].scales, b[i].qs, NULL, y + QK_K * i);
}

void slora__quant_dequant_q5_k(const struct slora_quant_q5_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++)
        dequant_k4(b[i].d, b[i].dmin, b[i].scales, b[i].qs, b[i].qh, y + QK_K * i);
}

void slora__quant_dequant_q6_k(const struct slora_quant_q6_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = h2f(b[i].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            const int8_t *sc = b[i].scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                int t = l / 16;
                int q0 = ((ql[l] & 15) | (qh[l] & 3) << 4) - 32;
                int q1 = ((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32;
                int q2 = ((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32;
                int q3 = ((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) - 32;
                y[l] = d * (float)sc[t] * (float)q0;
                y[l + 32] = d * (float)sc[t + 2] * (float)q1;
                y[l + 64] = d * (float)sc[t + 4] * (float)q2;
                y[l + 96] = d * (float)sc[t + 6] * (float)q3;
            }
            y += 128;
        }
    }
}

void slora__quant_dequant_q8_k(const struct slora_quant_q8_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++)
            y[j] = b[i].d * (float)b[i].qs[j];
}

/* Fit x (32 values) as scale * L - min with L in 0..nmax minimising the
 * w-weighted squared error, trying the grids described above; returns
 * scale (>= 0), sets *min_out (>= 0, the subtracted offset) and L. */
static float fit_scale_min(const float *x, const float *w, int nmax, float rmin, float rdelta,
                           int nstep, uint8_t *L, float *min_out)
{
    enum { N = 32 };
    float mn = x[0], mx = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < N; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0)
        mn = 0;
    if (!(mx > mn)) { /* constant (or NaN): everything at 0 */
        memset(L, 0, N);
        *min_out = -mn;
        return 0;
    }
    float iscale = (float)nmax / (mx - mn), scale = 1 / iscale, best = 0;
    for (int i = 0; i < N; i++) {
        L[i] = (uint8_t)clampi(slora__quant_nearest(iscale * (x[i] - mn)), 0, nmax);
        float e = scale * L[i] + mn - x[i];
        best += w[i] * e * e;
    }
    uint8_t aux[N];
    for (int s = 0; s <= nstep; s++) {
        iscale = (rmin + rdelta * (float)s + (float)nmax) / (mx - mn);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < N; i++) {
            int l = clampi(slora__quant_nearest(iscale * (x[i] - mn)), 0, nmax);
            aux[i] = (uint8_t)l;
            sl += w[i] * (float)l;
            sl2 += w[i] * (float)(l * l);
            sxl += w[i] * (float)l * x[i];
        }
        /* the weighted least-squares line through (l, x): x ~ a l + b */
        float det = sum_w * sl2 - sl * sl;
        if (!(det > 0))
            continue;
        float a = (sum_w * sxl - sum_x * sl) / det, b = (sl2 * sum_x - sl * sxl) / det;
        if (b > 0) { /* the offset may only lower values: refit through 0 */
            b = 0;
            a = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < N; i++) {
            float e = a * aux[i] + b - x[i];
            err += w[i] * e * e;
        }
        if (err < best) {
            memcpy(L, aux, N);
            best = err;
            scale = a;
            mn = b;
        }
    }
    *min_out = -mn;
    return scale;
}

/* Q4_K and Q5_K share everything but the quant range and its search. */
static void quant_k_min(const float *x, uint8_t *scales, uint16_t *d16, uint16_t *dmin16,
                        uint8_t *L, int nmax)
{
    float sc[8], mins[8], w[32], max_sc = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float s2 = 0;
        for (int l = 0; l < 32; l++)
            s2 += xs[l] * xs[l];
        float av = sqrtf(s2 / 32);
        for (int l = 0; l < 32; l++)
            w[l] = av + fabsf(xs[l]);
        sc[j] = nmax == 15 ? fit_scale_min(xs, w, 15, -1.0f, 0.1f, 20, L + 32 * j, &mins[j])
                           : fit_scale_min(xs, w, 31, -0.5f, 0.1f, 15, L + 32 * j, &mins[j]);
        max_sc = sc[j] > max_sc ? sc[j] : max_sc;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    float inv_sc = max_sc > 0 ? 63 / max_sc : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        int ls = clampi(slora__quant_nearest(inv_sc * sc[j]), 0, 63);
        int lm = clampi(slora__quant_nearest(inv_min * mins[j]), 0, 63);
        if (j < 4) {
            scales[j] = (uint8_t)ls;
            scales[j + 4] = (uint8_t)lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 15) | (lm & 15) << 4);
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d16 = slora_quant_f32_to_f16(max_sc / 63);
    *dmin16 = slora_quant_f32_to_f16(max_min / 63);
    /* requantize against the scales as stored */
    for (int j = 0; j < 8; j++) {
        int s, m;
        slora__quant_scale_min_k4(scales, j, &s, &m);
        float d = h2f(*d16) * (float)s;
        if (!d)
            continue;
        float dm = h2f(*dmin16) * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(slora__quant_nearest((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

void slora__quant_q4_k(const float *x, struct slora_quant_q4_k *b, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quant_k_min(x, b[i].scales, &b[i].d, &b[i].dmin, L, 15);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
}

void slora__quant_q5_k(const float *x, struct slora_quant_q5_k *b, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        quant_k_min(x, b[i].scales, &b[i].d, &b[i].dmin, L, 31);
        memset(b[i].qh, 0, sizeof(b[i].qh));
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int l0 = L[64 * c + l], l1 = L[64 * c + 32 + l];
                b[i].qs[32 * c + l] = (uint8_t)((l0 & 15) | (l1 & 15) << 4);
                b[i].qh[l] |= (uint8_t)((l0 >> 4) << (2 * c) | (l1 >> 4) << (2 * c + 1));
            }
    }
}

/* Symmetric fit of 16 values: x ~ scale * l, l in -nmax..nmax-1, weights
 * x^2, the grid around -nmax / (extreme) searched in steps of 0.1 (ggml's
 * make_qx_quants with rmse_type 1). L gets l + nmax. */
static float fit_scale_sym(const float *x, int nmax, int8_t *L)
{
    enum { N = 16 };
    float amax = 0, max = 0;
    for (int i = 0; i < N; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (!(amax >= 1e-15f)) {
        memset(L, 0, N);
        return 0;
    }
    float scale = 0, best = 0;
    for (int k = 0; k <= 18; k++) {
        /* k = 0 is the plain grid -nmax / max; then offsets -0.9..+0.9 */
        int is = k == 0 ? 0 : k <= 9 ? k - 10 : k - 9;
        float iscale = -((float)nmax + 0.1f * (float)is) / max;
        float slx = 0, sl2 = 0;
        int8_t aux[N];
        for (int i = 0; i < N; i++) {
            int l = clampi(slora__quant_nearest(iscale * x[i]), -nmax, nmax - 1);
            aux[i] = (int8_t)(l + nmax);
            float w = x[i] * x[i];
            slx += w * x[i] * (float)l;
            sl2 += w * (float)(l * l);
        }
        if (k == 0) {
            memcpy(L, aux, N);
            scale = sl2 ? slx / sl2 : 0;
            best = scale * slx;
        } else if (sl2 > 0 && slx * slx > best * sl2) {
            memcpy(L, aux, N);
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    return scale;
}

void slora__quant_q6_k(const float *x, struct slora_quant_q6_k *b, int64_t nb)
{
    int8_t L[QK_K];
    float sc[16];
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_scale_sym(x + 16 * j, 32, L + 16 * j);
            if (fabsf(sc[j]) > amax) {
                amax = fabsf(sc[j]);
                max = sc[j];
            }
        }
        memset(&b[i], 0, sizeof(b[i]));
        if (!(amax >= 1e-15f))
            continue;
        float iscale = -128 / max;
        b[i].d = slora_quant_f32_to_f16(1 / iscale);
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (int8_t)clampi(slora__quant_nearest(iscale * sc[j]), -128, 127);
        for (int j = 0; j < 16; j++) {
            float d = h2f(b[i].d) * (float)b[i].scales[j];
            if (!d)
                continue;
            for (int l = 0; l < 16; l++)
                L[16 * j + l] =
                    (int8_t)(clampi(slora__quant_nearest(x[16 * j + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const int8_t *Lh = L + 128 * h;
            uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                int q0 = Lh[l], q1 = Lh[l + 32], q2 = Lh[l + 64], q3 = Lh[l + 96];
                ql[l] = (uint8_t)((q0 & 15) | (q2 & 15) << 4);
                ql[l + 32] = (uint8_t)((q1 & 15) | (q3 & 15) << 4);
                qh[l] = (uint8_t)(q0 >> 4 | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6);
            }
        }
    }
}

void slora__quant_q8_k(const float *x, struct slora_quant_q8_k *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        memset(&b[i], 0, sizeof(b[i]));
        if (!amax)
            continue;
        /* the signed extreme maps to -127 (never -128: the dots' sign
         * tricks need |q| <= 127) */
        float iscale = -127 / max;
        for (int j = 0; j < QK_K; j++)
            b[i].qs[j] = (int8_t)clampi(slora__quant_nearest(iscale * x[j]), -127, 127);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)s;
        }
        b[i].d = 1 / iscale;
    }
}
