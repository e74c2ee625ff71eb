/* INT8 GEMM: uint8 activations x int8 weights, int32 accumulation (family 7, kernels/quant.pyx).
 *
 *   C[m, n] = sum_k (A[m, k] - za) * (B[k, n] - zw[n])
 *           = sum_k A B  + ibias[n]  - za * cz[n]  - zw[n] * rowsum_k(A[m])
 * with cz[n] = colsum_k(B[:, n]) - K * zw[n] and ibias (QLinearConv's int32 bias) computed
 * when the weights are packed; za may be a runtime value (DynamicQuantizeLinear's zero
 * point), so its product is taken in the epilogue, and the row-sum term only runs when
 * some zw[n] != 0 (row_zp). int8 activations are xor-ed with 0x80 on the fly (u = a + 128,
 * za + 128), uint8 weights become int8 at pack time (w - 128, zw - 128): every case is the
 * one u8 x s8 product that vpdpbusd computes.
 *
 * Layouts (one geometry for every level and form):
 *   A  runtime rows, K contiguous bytes, row stride rsa (a K % 4 tail is read into a
 *      zero-padded word, never past the row);
 *   B  packed at compile time in panels of Q8_NR = 16 columns, groups of 4 along K:
 *      b[panel][k / 4][column][k % 4] (K padded with zero bytes to K4 groups, columns to 16);
 *   a tile is Q8_MR = 8 rows x 2 panels (32 columns); rows past M repeat the last row
 *   (integer sums: the extra rows cost time, never accuracy) and are not stored.
 *
 * Forms (KV_QGEMM, dsl_form_vnni):
 *   generic  portable C, the integer reference;
 *   avx2     no VNNI: u8 and s8 widened to int16 and vpmaddwd (pairs of exact int16 products
 *            summed in int32: nothing saturates; vpmaddubsw would saturate to int16);
 *   avx512   AVX-512 VNNI vpdpbusd, 16 accumulators of 16 columns x 4 k each.
 * The epilogue (int32 -> int32 / fp32 / requantized u8 / s8) is shared C on a tile buffer.
 */
#ifndef DSL_Q8_GEMM_H
#define DSL_Q8_GEMM_H
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#include "dsl_simd.h"

#define Q8_NR 16
#define Q8_MR 8
#define Q8_TN 32

#define Q8_OUT_I32 0
#define Q8_OUT_F32 1
#define Q8_OUT_U8 2
#define Q8_OUT_S8 3

typedef void (*q8_tile_fn)(const uint8_t* const* ar, int64_t kg, const uint32_t* tail,
                           const int8_t* b0, const int8_t* b1, uint32_t xr, int32_t* out);

typedef struct {
    int64_t M, N, K;            /* K: bytes of A per row that count (conv: padded to 4) */
    const uint8_t* a;
    int64_t rsa;
    uint32_t xr;                /* 0, or 0x80808080 for int8 activations */
    const int8_t* b;            /* packed panels, K4 * 64 bytes each */
    const int32_t* ibias;       /* per column (padded to the panel width): int32 bias */
    const int32_t* cz;          /* colsum - K * zw */
    const float* mult;          /* F32: sa * sw[n]; Q8: sa * sw[n] / sy */
    const float* fbias;         /* F32: fp32 bias */
    const int32_t* wzp;         /* zw[n] (row_zp) */
    int32_t za;                 /* activation zero point in the u8 domain */
    int row_zp;
    int out_mode;
    void* c;
    int64_t rsc, csc;           /* elements */
    int32_t zy;                 /* Q8 output zero point */
    int relu;                   /* F32: max(0, y); Q8: clamp below at zy */
    q8_tile_fn tile;
} q8_gemm_desc;

static inline uint32_t q8_word(const uint8_t* p) {
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* ---- generic C ------------------------------------------------------------------------ */
static void q8_tile__generic(const uint8_t* const* ar, int64_t kg, const uint32_t* tail,
                             const int8_t* b0, const int8_t* b1, uint32_t xr, int32_t* out) {
    const int64_t ng = kg + (tail != NULL);
    for (int pn = 0; pn < 2; ++pn) {
        const int8_t* bp = pn ? b1 : b0;
        if (!bp) break;
        for (int r = 0; r < Q8_MR; ++r) {
            int32_t acc[Q8_NR];
            for (int c = 0; c < Q8_NR; ++c) acc[c] = 0;
            for (int64_t g = 0; g < ng; ++g) {
                const uint32_t w = g < kg ? q8_word(ar[r] + 4 * g) ^ xr : tail[r];
                const int8_t* bg = bp + g * 64;
                for (int c = 0; c < Q8_NR; ++c)
                    for (int i = 0; i < 4; ++i)
                        acc[c] += (int32_t)((w >> (8 * i)) & 0xFFu) * (int32_t)bg[c * 4 + i];
            }
            for (int c = 0; c < Q8_NR; ++c) out[r * Q8_TN + pn * Q8_NR + c] = acc[c];
        }
    }
}

#ifdef DSL_SIMD_X86
/* ---- AVX2 without VNNI: int16 widening + vpmaddwd ------------------------------------ */
#define Q8_AVX2_INL static inline __attribute__((always_inline, target(DSL_TARGET_AVX2)))

Q8_AVX2_INL __m256i q8_bcast_u16x4__avx2(uint32_t w) {   /* 4 u8 -> 4 u16, repeated 4x */
    return _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128((int)w)));
}

Q8_AVX2_INL void q8_pair_panel__avx2(const uint8_t* a0, const uint8_t* a1, int64_t kg,
                                     uint32_t t0, uint32_t t1, int has_tail, const int8_t* bp,
                                     uint32_t xr, int32_t* o0, int32_t* o1) {
    __m256i c0[4], c1[4];
    for (int j = 0; j < 4; ++j) c0[j] = c1[j] = _mm256_setzero_si256();
    const int64_t ng = kg + has_tail;
    for (int64_t g = 0; g < ng; ++g) {
        const uint32_t w0 = g < kg ? q8_word(a0 + 4 * g) ^ xr : t0;
        const uint32_t w1 = g < kg ? q8_word(a1 + 4 * g) ^ xr : t1;
        const __m256i va0 = q8_bcast_u16x4__avx2(w0), va1 = q8_bcast_u16x4__avx2(w1);
        for (int j = 0; j < 4; ++j) {   /* columns 4j..4j+3: 16 bytes -> 16 int16 */
            const __m256i vb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(bp + g * 64 + j * 16)));
            c0[j] = _mm256_add_epi32(c0[j], _mm256_madd_epi16(va0, vb));
            c1[j] = _mm256_add_epi32(c1[j], _mm256_madd_epi16(va1, vb));
        }
    }
    /* lanes hold (k0k1, k2k3) half sums per column: add the pairs, restore column order */
    _mm256_storeu_si256((__m256i*)o0, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0[0], c0[1]), 0xD8));
    _mm256_storeu_si256((__m256i*)(o0 + 8), _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0[2], c0[3]), 0xD8));
    _mm256_storeu_si256((__m256i*)o1, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c1[0], c1[1]), 0xD8));
    _mm256_storeu_si256((__m256i*)(o1 + 8), _mm256_permute4x64_epi64(_mm256_hadd_epi32(c1[2], c1[3]), 0xD8));
}

static __attribute__((target(DSL_TARGET_AVX2)))
void q8_tile__avx2(const uint8_t* const* ar, int64_t kg, const uint32_t* tail, const int8_t* b0,
                   const int8_t* b1, uint32_t xr, int32_t* out) {
    const int ht = tail != NULL;
    for (int pn = 0; pn < 2; ++pn) {
        const int8_t* bp = pn ? b1 : b0;
        if (!bp) break;
        for (int r = 0; r < Q8_MR; r += 2)
            q8_pair_panel__avx2(ar[r], ar[r + 1], kg, ht ? tail[r] : 0, ht ? tail[r + 1] : 0, ht,
                                bp, xr, out + r * Q8_TN + pn * Q8_NR, out + (r + 1) * Q8_TN + pn * Q8_NR);
    }
}

/* ---- AVX-512 VNNI --------------------------------------------------------------------- */
#define Q8_VNNI_INL static inline __attribute__((always_inline, target(DSL_TARGET_AVX512_VNNI)))

Q8_VNNI_INL void q8_tile_body__avx512(const uint8_t* const* ar, int64_t kg, const uint32_t* tail,
                                      const int8_t* b0, const int8_t* b1, uint32_t xr,
                                      int32_t* out, const int np, const int xor_a) {
    __m512i c[Q8_MR][2];
    for (int r = 0; r < Q8_MR; ++r) c[r][0] = c[r][1] = _mm512_setzero_si512();
    const __m512i vx = _mm512_set1_epi32((int)xr);
    const uint8_t* p[Q8_MR];
    for (int r = 0; r < Q8_MR; ++r) p[r] = ar[r];
    for (int64_t g = 0; g < kg; ++g) {
        const __m512i v0 = _mm512_loadu_si512((const void*)(b0 + g * 64));
        const __m512i v1 = np == 2 ? _mm512_loadu_si512((const void*)(b1 + g * 64)) : v0;
        for (int r = 0; r < Q8_MR; ++r) {
            __m512i va = _mm512_set1_epi32((int)q8_word(p[r] + 4 * g));
            if (xor_a) va = _mm512_xor_si512(va, vx);
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], va, v0);
            if (np == 2) c[r][1] = _mm512_dpbusd_epi32(c[r][1], va, v1);
        }
    }
    if (tail) {
        const __m512i v0 = _mm512_loadu_si512((const void*)(b0 + kg * 64));
        const __m512i v1 = np == 2 ? _mm512_loadu_si512((const void*)(b1 + kg * 64)) : v0;
        for (int r = 0; r < Q8_MR; ++r) {
            const __m512i va = _mm512_set1_epi32((int)tail[r]);
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], va, v0);
            if (np == 2) c[r][1] = _mm512_dpbusd_epi32(c[r][1], va, v1);
        }
    }
    for (int r = 0; r < Q8_MR; ++r) {
        _mm512_storeu_si512((void*)(out + r * Q8_TN), c[r][0]);
        if (np == 2) _mm512_storeu_si512((void*)(out + r * Q8_TN + Q8_NR), c[r][1]);
    }
}

static __attribute__((target(DSL_TARGET_AVX512_VNNI)))
void q8_tile__avx512(const uint8_t* const* ar, int64_t kg, const uint32_t* tail, const int8_t* b0,
                     const int8_t* b1, uint32_t xr, int32_t* out) {
    if (b1) {
        if (xr) q8_tile_body__avx512(ar, kg, tail, b0, b1, xr, out, 2, 1);
        else q8_tile_body__avx512(ar, kg, tail, b0, b1, xr, out, 2, 0);
    } else {
        if (xr) q8_tile_body__avx512(ar, kg, tail, b0, b1, xr, out, 1, 1);
        else q8_tile_body__avx512(ar, kg, tail, b0, b1, xr, out, 1, 0);
    }
}
#endif

static inline q8_tile_fn q8_tile_select(int form) {
#ifdef DSL_SIMD_X86
    if (form == DSL_FORM_AVX512) return q8_tile__avx512;
    if (form == DSL_FORM_AVX2) return q8_tile__avx2;
#endif
    (void)form;
    return q8_tile__generic;
}

/* ---- epilogue and the loop over tiles ------------------------------------------------- */

/* round half to even of |v| < 2^22 (the default rounding mode; no libm call) */
static inline float q8_rint_small(float v) {
    volatile float magic = 12582912.0f;   /* 1.5 * 2^23 */
    const float m = magic;
    return (v + m) - m;
}

static void q8_epilogue(const q8_gemm_desc* d, const int32_t* acc, int64_t m0, int mr,
                        int64_t n0, int nc, const int32_t* rs) {
    float lo = 0, hi = 0;
    if (d->out_mode == Q8_OUT_U8 || d->out_mode == Q8_OUT_S8) {
        lo = (d->out_mode == Q8_OUT_S8 ? -128.0f : 0.0f) - (float)d->zy;
        hi = (d->out_mode == Q8_OUT_S8 ? 127.0f : 255.0f) - (float)d->zy;
        if (d->relu && lo < 0.0f) lo = 0.0f;
    }
    for (int r = 0; r < mr; ++r) {
        const int64_t m = m0 + r;
        for (int j = 0; j < nc; ++j) {
            const int64_t n = n0 + j;
            int32_t v = acc[r * Q8_TN + j] + d->ibias[n] - d->za * d->cz[n];
            if (d->row_zp) v -= d->wzp[n] * rs[r];
            const int64_t off = m * d->rsc + n * d->csc;
            switch (d->out_mode) {
            case Q8_OUT_I32: ((int32_t*)d->c)[off] = v; break;
            case Q8_OUT_F32: {
                float f = (float)v * d->mult[n] + d->fbias[n];
                if (d->relu && !(f > 0.0f)) f = 0.0f;
                ((float*)d->c)[off] = f;
                break;
            }
            default: {
                float f = (float)v * d->mult[n];
                f = f < lo ? lo : (f > hi ? hi : f);   /* NaN cannot occur: v is finite */
                const int32_t q = (int32_t)q8_rint_small(f) + d->zy;
                if (d->out_mode == Q8_OUT_U8) ((uint8_t*)d->c)[off] = (uint8_t)q;
                else ((int8_t*)d->c)[off] = (int8_t)q;
            }
            }
        }
    }
}

/* One 8 x 32 tile at rows m0.., columns n0.. (n0 a multiple of 32). */
static void q8_gemm_tile(const q8_gemm_desc* d, int64_t m0, int64_t n0) {
    const int mr = (int)(d->M - m0 < Q8_MR ? d->M - m0 : Q8_MR);
    const int nc = (int)(d->N - n0 < Q8_TN ? d->N - n0 : Q8_TN);
    const int64_t kg = d->K / 4, K4 = (d->K + 3) / 4, rem = d->K % 4;
    const uint8_t* ar[Q8_MR];
    uint32_t tail[Q8_MR];
    int32_t rs[Q8_MR];
    int32_t acc[Q8_MR * Q8_TN];
    for (int r = 0; r < Q8_MR; ++r) ar[r] = d->a + (m0 + (r < mr ? r : mr - 1)) * d->rsa;
    if (rem) {
        for (int r = 0; r < Q8_MR; ++r) {
            uint32_t w = 0;
            for (int i = 0; i < rem; ++i)
                w |= (uint32_t)(ar[r][4 * kg + i] ^ (uint8_t)d->xr) << (8 * i);
            tail[r] = w;
        }
    }
    if (d->row_zp) {
        const uint8_t xb = (uint8_t)d->xr;
        for (int r = 0; r < mr; ++r) {
            int32_t s = 0;
            for (int64_t k = 0; k < d->K; ++k) s += (uint8_t)(ar[r][k] ^ xb);
            rs[r] = s;
        }
    }
    const int8_t* b0 = d->b + (n0 / Q8_NR) * K4 * 64;
    const int8_t* b1 = n0 + Q8_NR < d->N ? b0 + K4 * 64 : NULL;
    d->tile(ar, kg, rem ? tail : NULL, b0, b1, d->xr, acc);
    q8_epilogue(d, acc, m0, mr, n0, nc, rs);
}

/* Rows [m_lo, m_hi) x tile columns [t_lo, t_hi) (32 columns each): for each column pair,
 * every row tile, so a 32-column slice of B stays in L1 while A streams from L2. */
static void q8_gemm_block(const q8_gemm_desc* d, int64_t m_lo, int64_t m_hi, int64_t t_lo,
                          int64_t t_hi) {
    for (int64_t t = t_lo; t < t_hi; ++t)
        for (int64_t m = m_lo; m < m_hi; m += Q8_MR) q8_gemm_tile(d, m, t * Q8_TN);
}

/* ---- im2col for QLinearConv / ConvInteger: pixel-major rows ---------------------------- */
typedef struct {
    int64_t C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW;
} q8_conv_geom;

/* Rows p0 .. p0 + np of the [pixels][Kp] column matrix of one (image, group): row p holds
 * x[ci, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW] for k = (ci, kh, kw), in the u8 domain
 * (xor xb), `pad` (the activation zero point) outside the image, zero bytes from K to Kp. */
static void q8_im2col_rows(const uint8_t* x, const q8_conv_geom* g, int64_t p0, int64_t np,
                           int64_t Kp, uint8_t pad, uint8_t xb, uint8_t* dst) {
    const int64_t K = g->C * g->KH * g->KW;
    for (int64_t p = p0; p < p0 + np; ++p) {
        uint8_t* row = dst + (p - p0) * Kp;
        const int64_t oh = p / g->OW, ow = p % g->OW;
        int64_t k = 0;
        for (int64_t ci = 0; ci < g->C; ++ci) {
            const uint8_t* xc = x + ci * g->H * g->W;
            for (int64_t kh = 0; kh < g->KH; ++kh) {
                const int64_t ih = oh * g->SH - g->PH + kh * g->DH;
                if (ih < 0 || ih >= g->H) {
                    for (int64_t kw = 0; kw < g->KW; ++kw) row[k++] = pad;
                    continue;
                }
                const uint8_t* xr = xc + ih * g->W;
                for (int64_t kw = 0; kw < g->KW; ++kw) {
                    const int64_t iw = ow * g->SW - g->PW + kw * g->DW;
                    row[k++] = (iw >= 0 && iw < g->W) ? (uint8_t)(xr[iw] ^ xb) : pad;
                }
            }
        }
        for (; k < Kp; ++k) row[k] = 0;
    }
    (void)K;
}

/* Rows of the column buffer a conv block keeps per thread (<= 128 KB, a multiple of 8). */
static inline int64_t q8_conv_block_rows(int64_t P, int64_t Kp) {
    int64_t mb = (128 * 1024) / (Kp > 0 ? Kp : 1);
    mb = mb / Q8_MR * Q8_MR;
    if (mb < Q8_MR) mb = Q8_MR;
    const int64_t pr = (P + Q8_MR - 1) / Q8_MR * Q8_MR;
    return mb < pr ? mb : pr;
}
#endif
