/* INT8 convolution with output channels as rows (family 7, QCONVCW; kernels/quant.pyx).
 *
 *   Y[co, p] = sum_k (X[k, p] - za) * W[co, k]      (NCHW: p = oh * OW + ow, contiguous)
 *
 * The weights are the broadcast operand and the pixels the vector dimension, so each
 * output plane is written contiguously and no transposed store is needed (the pixel-rows
 * QCONV of csrc/q8_gemm.h scatters its outputs with a stride of P). vpdpbusd multiplies
 * 4 u8 activation bytes by 4 s8 weight bytes per int32 lane, so K runs in groups of 4
 * input channels at one tap: k-group g = (c4 * KH + kh) * KW + kw holds channels
 * 4 c4 .. 4 c4 + 3 (the input channels padded to a multiple of 4 with zero weights).
 *
 * Layouts:
 *   Xi  the input interleaved once per step (q8c_interleave): [c4][HWp] u32 words, word p
 *       = bytes (x[4c4][p], x[4c4+1][p], x[4c4+2][p], x[4c4+3][p]) in the u8 domain
 *       (int8 activations xor 0x80), HWp = H*W rounded up to 16 (the tail words zero);
 *   Xc  the k-group rows a tile reads: [g][gs/4] words. A 1x1 stride-1 unpadded conv
 *       reads Xi in place (gs = 4 HWp); any other conv gathers a block of pixels of Xi
 *       per thread (q8c_im2col: the pad word is za in every byte);
 *   Wp  packed at compile time per 16 output channels and 16 k-groups: [cb16][kc][16][64]
 *       int8 (row = one channel's 64 K bytes: AMX's A tile; kg and the channels padded to
 *       16 with zero weights); an 8-channel tile's word (g, r) sits at Q8C_WOFF(g, r) from
 *       its base (the block's base + 512 for the odd half);
 *   a tile is 8 channels x up to Q8C_PX pixels (3 vectors of 16); pixels past the tile's
 *   count are computed from whatever the row holds and never stored.
 *
 * Forms (KV_QCONV, dsl_form_vnni): generic C (the integer reference), AVX2 without VNNI
 * (u8 / s8 widened to int16, vpmaddwd: exact, pairs summed at the end) and AVX-512 VNNI
 * (vpdpbusd with the weight word broadcast from memory). The epilogue (int32 / fp32 /
 * requantized u8 / s8, as csrc/q8_gemm.h's) is plain C per row, vectorised by the
 * compiler under each form's target.
 */
#ifndef DSL_Q8_CONV_H
#define DSL_Q8_CONV_H
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#include "dsl_simd.h"
#include "q8_gemm.h"

#define Q8C_MR 8
#define Q8C_PX 48
#define Q8C_WOFF(g, r) (((int64_t)(g) >> 4) * 1024 + (int64_t)(r) * 64 + ((int64_t)(g) & 15) * 4)

typedef struct {
    const uint8_t* x;          /* the tile's first pixel word of group 0 */
    int64_t gs;                /* bytes between k groups */
    int64_t kg;                /* k groups */
    const int8_t* w;           /* the tile's 8 channels in the [cb16][kc][16][64] layout */
    int npx;                   /* pixels of the tile (1..48) */
} q8c_tile_args;

/* acc[r * Q8C_PX + j] = sum_g dot4(X word (g, j), W word (g, r)) */
typedef void (*q8c_tile_fn)(const q8c_tile_args* t, int32_t* acc);

typedef struct {
    const int32_t* ibias;
    const int32_t* cz;
    const float* mult;
    const float* fbias;
    int32_t za, zy;
    int out_mode, relu;
} q8c_epi;

/* ---- generic C ------------------------------------------------------------------------ */
static void q8c_tile__generic(const q8c_tile_args* t, int32_t* acc) {
    for (int r = 0; r < Q8C_MR; ++r)
        for (int j = 0; j < t->npx; ++j) acc[r * Q8C_PX + j] = 0;
    for (int64_t g = 0; g < t->kg; ++g) {
        const uint8_t* xg = t->x + g * t->gs;
        for (int r = 0; r < Q8C_MR; ++r) {
            const int8_t* wr = t->w + Q8C_WOFF(g, r);
            int32_t* ar = acc + r * Q8C_PX;
            for (int j = 0; j < t->npx; ++j) {
                const uint8_t* xp = xg + 4 * j;
                ar[j] += (int32_t)xp[0] * wr[0] + (int32_t)xp[1] * wr[1] + (int32_t)xp[2] * wr[2] +
                         (int32_t)xp[3] * wr[3];
            }
        }
    }
}

/* The epilogue of one tile: rows [0, nch) of acc, pixels [0, npx), into Y at y (element
 * offset of (co0, p0)); element (r, j) at y[r * P + j * cs] (NCHW: cs = 1; token rows
 * [pixels][channels]: P = 1, cs = Cout). */
#define Q8C_STORE(T, src)                                                                     \
    {                                                                                         \
        T* o = (T*)y + r * P;                                                                 \
        if (cs == 1) {                                                                        \
            for (int j = 0; j < npx; ++j) o[j] = (T)src[j];                                   \
        } else {                                                                              \
            for (int j = 0; j < npx; ++j) o[j * cs] = (T)src[j];                              \
        }                                                                                     \
    }
#define Q8C_EPILOGUE_BODY                                                                     \
    {                                                                                         \
        float lo = 0, hi = 0;                                                                 \
        if (e->out_mode == Q8_OUT_U8 || e->out_mode == Q8_OUT_S8) {                           \
            lo = (e->out_mode == Q8_OUT_S8 ? -128.0f : 0.0f) - (float)e->zy;                  \
            hi = (e->out_mode == Q8_OUT_S8 ? 127.0f : 255.0f) - (float)e->zy;                 \
            if (e->relu && lo < 0.0f) lo = 0.0f;                                              \
        }                                                                                     \
        const float magic = 12582912.0f; /* 1.5 * 2^23: round half to even of |v| < 2^22 */  \
        int32_t q[Q8C_PX];                                                                    \
        float fv[Q8C_PX];                                                                     \
        for (int r = 0; r < nch; ++r) {                                                       \
            const int64_t co = co0 + r;                                                       \
            const int32_t add = e->ibias[co] - e->za * e->cz[co];                             \
            const int32_t* ar = acc + r * Q8C_PX;                                             \
            if (e->out_mode == Q8_OUT_I32) {                                                  \
                for (int j = 0; j < npx; ++j) q[j] = ar[j] + add;                             \
                Q8C_STORE(int32_t, q)                                                         \
            } else if (e->out_mode == Q8_OUT_F32) {                                           \
                const float m = e->mult[co], b = e->fbias[co];                                \
                if (e->relu) {                                                                \
                    for (int j = 0; j < npx; ++j) {                                           \
                        const float f = (float)(ar[j] + add) * m + b;                         \
                        fv[j] = f > 0.0f ? f : 0.0f;                                          \
                    }                                                                         \
                } else {                                                                      \
                    for (int j = 0; j < npx; ++j) fv[j] = (float)(ar[j] + add) * m + b;       \
                }                                                                             \
                Q8C_STORE(float, fv)                                                          \
            } else {                                                                          \
                const float m = e->mult[co];                                                  \
                for (int j = 0; j < npx; ++j) {                                               \
                    float f = (float)(ar[j] + add) * m;                                       \
                    f = f < lo ? lo : (f > hi ? hi : f);                                      \
                    q[j] = (int32_t)((f + magic) - magic) + e->zy;                            \
                }                                                                             \
                if (e->out_mode == Q8_OUT_U8) Q8C_STORE(uint8_t, q)                           \
                else Q8C_STORE(int8_t, q)                                                     \
            }                                                                                 \
        }                                                                                     \
    }

typedef void (*q8c_epi_fn)(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch, int npx,
                           void* y, int64_t P, int64_t cs);

static void q8c_epilogue__generic(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch,
                                  int npx, void* y, int64_t P, int64_t cs) Q8C_EPILOGUE_BODY

/* Interleave 4 planes of n bytes (rows of stride `plane` bytes; `have` < 4 planes are
 * real, the rest zero) into n words, xor xr; words n .. np zero. */
#define Q8C_INTERLEAVE_BODY                                                                   \
    {                                                                                         \
        const uint8_t* a = src;                                                               \
        const uint8_t* b = have > 1 ? src + plane : NULL;                                     \
        const uint8_t* c = have > 2 ? src + 2 * plane : NULL;                                 \
        const uint8_t* d = have > 3 ? src + 3 * plane : NULL;                                 \
        if (have == 4) {                                                                      \
            for (int64_t p = 0; p < n; ++p)                                                   \
                dst[p] = ((uint32_t)a[p] | ((uint32_t)b[p] << 8) | ((uint32_t)c[p] << 16) |   \
                          ((uint32_t)d[p] << 24)) ^ xr;                                       \
        } else {                                                                              \
            for (int64_t p = 0; p < n; ++p) {                                                 \
                uint32_t w = a[p];                                                            \
                if (b) w |= (uint32_t)b[p] << 8;                                              \
                if (c) w |= (uint32_t)c[p] << 16;                                             \
                dst[p] = w ^ (xr & (have == 1 ? 0xFFu : have == 2 ? 0xFFFFu : 0xFFFFFFu));    \
            }                                                                                 \
        }                                                                                     \
        for (int64_t p = n; p < np; ++p) dst[p] = 0;                                          \
    }

typedef void (*q8c_interleave_fn)(const uint8_t* src, int64_t plane, int have, int64_t n,
                                  int64_t np, uint32_t xr, uint32_t* dst);

static void q8c_interleave__generic(const uint8_t* src, int64_t plane, int have, int64_t n,
                                    int64_t np, uint32_t xr, uint32_t* dst) Q8C_INTERLEAVE_BODY

/* Token rows: word p = the 4 bytes at src + p * stride (channels 4 c4 .. of row p; `have`
 * < 4 of them real), xor xr; words n .. np zero. */
static inline void q8c_interleave_rows(const uint8_t* src, int64_t stride, int have, int64_t n,
                                       int64_t np, uint32_t xr, uint32_t* dst) {
    if (have == 4) {
        for (int64_t p = 0; p < n; ++p) {
            uint32_t w;
            memcpy(&w, src + p * stride, 4);
            dst[p] = w ^ xr;
        }
    } else {
        for (int64_t p = 0; p < n; ++p) {
            uint32_t w = 0;
            for (int i = 0; i < have; ++i) w |= (uint32_t)src[p * stride + i] << (8 * i);
            dst[p] = w ^ xr;
        }
    }
    for (int64_t p = n; p < np; ++p) dst[p] = 0;
}

/* ---- group-sparse weights (sparse INT8): per output channel the nonzero k-groups -------
 * rp[r] .. rp[r + 1] index idx (the k-group) and wd (its 4 weight bytes as one word) for
 * the tile's channel r; rows r >= nch are not computed. */
typedef struct {
    const uint8_t* x;
    int64_t gs;
    const int32_t* rp;
    const int32_t* idx;
    const int32_t* wd;
    int nch;
    int npx;
} q8c_sp_args;

typedef void (*q8c_sptile_fn)(const q8c_sp_args* t, int32_t* acc);

static void q8c_sptile__generic(const q8c_sp_args* t, int32_t* acc) {
    for (int r = 0; r < t->nch; ++r) {
        int32_t* ar = acc + r * Q8C_PX;
        for (int j = 0; j < t->npx; ++j) ar[j] = 0;
        for (int32_t i = t->rp[r]; i < t->rp[r + 1]; ++i) {
            const uint8_t* xg = t->x + (int64_t)t->idx[i] * t->gs;
            int8_t wr[4];
            memcpy(wr, &t->wd[i], 4);
            for (int j = 0; j < t->npx; ++j) {
                const uint8_t* xp = xg + 4 * j;
                ar[j] += (int32_t)xp[0] * wr[0] + (int32_t)xp[1] * wr[1] + (int32_t)xp[2] * wr[2] +
                         (int32_t)xp[3] * wr[3];
            }
        }
    }
}

#ifdef DSL_SIMD_X86
/* ---- AVX2 without VNNI ---------------------------------------------------------------- */
#define Q8C_AVX2_INL static inline __attribute__((always_inline, target(DSL_TARGET_AVX2)))

/* 4 channels x 8 pixels: per channel two accumulators of 4 pixels x (k0k1, k2k3) pairs */
Q8C_AVX2_INL void q8c_quad__avx2(const q8c_tile_args* t, int r0, int j0, int32_t* acc) {
    __m256i c[4][2];
    for (int r = 0; r < 4; ++r) c[r][0] = c[r][1] = _mm256_setzero_si256();
    for (int64_t g = 0; g < t->kg; ++g) {
        const __m256i xv = _mm256_loadu_si256((const __m256i*)(t->x + g * t->gs + 4 * j0));
        const __m256i x0 = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(xv));
        const __m256i x1 = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(xv, 1));
        for (int r = 0; r < 4; ++r) {
            uint32_t ww;
            memcpy(&ww, t->w + Q8C_WOFF(g, r0 + r), 4);
            const __m256i wv = _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128((int)ww)));
            c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(x0, wv));
            c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(x1, wv));
        }
    }
    for (int r = 0; r < 4; ++r) {
        /* lanes: p0(a b) p1(a b) p2 p3 | p4 .. p7: hadd gives p0 p1 p4 p5 | p2 p3 p6 p7 */
        const __m256i h = _mm256_hadd_epi32(c[r][0], c[r][1]);
        const __m256i s = _mm256_permute4x64_epi64(h, 0xD8);
        _mm256_storeu_si256((__m256i*)(acc + (r0 + r) * Q8C_PX + j0), s);
    }
}

static __attribute__((target(DSL_TARGET_AVX2)))
void q8c_tile__avx2(const q8c_tile_args* t, int32_t* acc) {
    for (int j0 = 0; j0 < t->npx; j0 += 8) {
        q8c_quad__avx2(t, 0, j0, acc);
        q8c_quad__avx2(t, 4, j0, acc);
    }
}

static __attribute__((target(DSL_TARGET_AVX2)))
void q8c_epilogue__avx2(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch, int npx,
                        void* y, int64_t P, int64_t cs) Q8C_EPILOGUE_BODY

static __attribute__((target(DSL_TARGET_AVX2)))
void q8c_interleave__avx2(const uint8_t* src, int64_t plane, int have, int64_t n, int64_t np,
                          uint32_t xr, uint32_t* dst) Q8C_INTERLEAVE_BODY

static __attribute__((target(DSL_TARGET_AVX2)))
void q8c_sptile__avx2(const q8c_sp_args* t, int32_t* acc) {
    for (int r = 0; r < t->nch; ++r) {
        for (int j0 = 0; j0 < t->npx; j0 += 8) {
            __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
            for (int32_t i = t->rp[r]; i < t->rp[r + 1]; ++i) {
                const __m256i xv = _mm256_loadu_si256(
                    (const __m256i*)(t->x + (int64_t)t->idx[i] * t->gs + 4 * j0));
                const __m256i wv = _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(t->wd[i])));
                c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_castsi256_si128(xv)), wv));
                c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm256_extracti128_si256(xv, 1)), wv));
            }
            _mm256_storeu_si256((__m256i*)(acc + r * Q8C_PX + j0),
                                _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0, c1), 0xD8));
        }
    }
}

/* ---- AVX-512 VNNI --------------------------------------------------------------------- */
#define Q8C_VNNI_INL static inline __attribute__((always_inline, target(DSL_TARGET_AVX512_VNNI)))

Q8C_VNNI_INL void q8c_tile_body__avx512(const q8c_tile_args* t, int32_t* acc, const int nv) {
    __m512i c[Q8C_MR][3];
    for (int r = 0; r < Q8C_MR; ++r)
        for (int v = 0; v < nv; ++v) c[r][v] = _mm512_setzero_si512();
    const uint8_t* xg = t->x;
    for (int64_t g = 0; g < t->kg; ++g, xg += t->gs) {
        const int32_t* wg = (const int32_t*)(const void*)(t->w + Q8C_WOFF(g, 0));
        __m512i xv[3];
        for (int v = 0; v < nv; ++v) xv[v] = _mm512_loadu_si512((const void*)(xg + 64 * v));
        for (int r = 0; r < Q8C_MR; ++r) {
            const __m512i wv = _mm512_set1_epi32(wg[16 * r]);
            for (int v = 0; v < nv; ++v) c[r][v] = _mm512_dpbusd_epi32(c[r][v], xv[v], wv);
        }
    }
    for (int r = 0; r < Q8C_MR; ++r)
        for (int v = 0; v < nv; ++v) _mm512_storeu_si512((void*)(acc + r * Q8C_PX + 16 * v), c[r][v]);
}

static __attribute__((target(DSL_TARGET_AVX512_VNNI)))
void q8c_tile__avx512(const q8c_tile_args* t, int32_t* acc) {
    if (t->npx > 32) q8c_tile_body__avx512(t, acc, 3);
    else if (t->npx > 16) q8c_tile_body__avx512(t, acc, 2);
    else q8c_tile_body__avx512(t, acc, 1);
}

/* one channel at a time, two nonzero groups per step into two accumulator sets (2 nv
 * independent chains hide vpdpbusd's latency) */
Q8C_VNNI_INL void q8c_sptile_body__avx512(const q8c_sp_args* t, int32_t* acc, const int nv) {
    for (int r = 0; r < t->nch; ++r) {
        __m512i a[3], b[3];
        for (int v = 0; v < nv; ++v) a[v] = b[v] = _mm512_setzero_si512();
        int32_t i = t->rp[r];
        const int32_t e = t->rp[r + 1];
        for (; i + 1 < e; i += 2) {
            const uint8_t* x0 = t->x + (int64_t)t->idx[i] * t->gs;
            const uint8_t* x1 = t->x + (int64_t)t->idx[i + 1] * t->gs;
            const __m512i w0 = _mm512_set1_epi32(t->wd[i]), w1 = _mm512_set1_epi32(t->wd[i + 1]);
            for (int v = 0; v < nv; ++v) {
                a[v] = _mm512_dpbusd_epi32(a[v], _mm512_loadu_si512((const void*)(x0 + 64 * v)), w0);
                b[v] = _mm512_dpbusd_epi32(b[v], _mm512_loadu_si512((const void*)(x1 + 64 * v)), w1);
            }
        }
        if (i < e) {
            const uint8_t* x0 = t->x + (int64_t)t->idx[i] * t->gs;
            const __m512i w0 = _mm512_set1_epi32(t->wd[i]);
            for (int v = 0; v < nv; ++v)
                a[v] = _mm512_dpbusd_epi32(a[v], _mm512_loadu_si512((const void*)(x0 + 64 * v)), w0);
        }
        for (int v = 0; v < nv; ++v)
            _mm512_storeu_si512((void*)(acc + r * Q8C_PX + 16 * v), _mm512_add_epi32(a[v], b[v]));
    }
}

static __attribute__((target(DSL_TARGET_AVX512_VNNI)))
void q8c_sptile__avx512(const q8c_sp_args* t, int32_t* acc) {
    if (t->npx > 32) q8c_sptile_body__avx512(t, acc, 3);
    else if (t->npx > 16) q8c_sptile_body__avx512(t, acc, 2);
    else q8c_sptile_body__avx512(t, acc, 1);
}

static __attribute__((target(DSL_TARGET_AVX512)))
void q8c_epilogue_c__avx512(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch, int npx,
                            void* y, int64_t P, int64_t cs) Q8C_EPILOGUE_BODY

/* Contiguous rows (NCHW), fp32 / u8 / s8 out: 16 lanes at a time with masked tails, the
 * same arithmetic as Q8C_EPILOGUE_BODY (product then sum, no FMA; clamp, then the
 * conversion rounds half to even as the magic-number trick does). */
static __attribute__((target(DSL_TARGET_AVX512)))
void q8c_epilogue__avx512(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch, int npx,
                          void* y, int64_t P, int64_t cs) {
    if (cs != 1 || e->out_mode == Q8_OUT_I32) {
        q8c_epilogue_c__avx512(e, acc, co0, nch, npx, y, P, cs);
        return;
    }
    float lo = 0, hi = 0;
    if (e->out_mode != Q8_OUT_F32) {
        lo = (e->out_mode == Q8_OUT_S8 ? -128.0f : 0.0f) - (float)e->zy;
        hi = (e->out_mode == Q8_OUT_S8 ? 127.0f : 255.0f) - (float)e->zy;
        if (e->relu && lo < 0.0f) lo = 0.0f;
    }
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    const __m512i vzy = _mm512_set1_epi32(e->zy);
    for (int r = 0; r < nch; ++r) {
        const int64_t co = co0 + r;
        const __m512i vadd = _mm512_set1_epi32(e->ibias[co] - e->za * e->cz[co]);
        const __m512 vm = _mm512_set1_ps(e->mult[co]);
        const int32_t* ar = acc + r * Q8C_PX;
        for (int j = 0; j < npx; j += 16) {
            const __mmask16 k = npx - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (npx - j)) - 1);
            const __m512i v = _mm512_add_epi32(_mm512_loadu_si512((const void*)(ar + j)), vadd);
            __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(v), vm);
            if (e->out_mode == Q8_OUT_F32) {
                f = _mm512_add_ps(f, _mm512_set1_ps(e->fbias[co]));
                if (e->relu) f = _mm512_max_ps(f, zero);
                _mm512_mask_storeu_ps((float*)y + r * P + j, k, f);
                continue;
            }
            f = _mm512_min_ps(_mm512_max_ps(f, vlo), vhi);
            const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(f), vzy);
            if (e->out_mode == Q8_OUT_U8)
                _mm512_mask_cvtusepi32_storeu_epi8((uint8_t*)y + r * P + j, k, q);
            else
                _mm512_mask_cvtsepi32_storeu_epi8((int8_t*)y + r * P + j, k, q);
        }
    }
}

static __attribute__((target(DSL_TARGET_AVX512)))
void q8c_interleave__avx512(const uint8_t* src, int64_t plane, int have, int64_t n, int64_t np,
                            uint32_t xr, uint32_t* dst) Q8C_INTERLEAVE_BODY
#endif

typedef struct {
    q8c_tile_fn tile;
    q8c_epi_fn epi;
    q8c_interleave_fn inter;
    q8c_sptile_fn sptile;
} q8c_forms;

static inline q8c_forms q8c_select(int form) {
    q8c_forms f = {q8c_tile__generic, q8c_epilogue__generic, q8c_interleave__generic,
                   q8c_sptile__generic};
#ifdef DSL_SIMD_X86
    if (form == DSL_FORM_AVX512) {
        f.tile = q8c_tile__avx512;
        f.epi = q8c_epilogue__avx512;
        f.inter = q8c_interleave__avx512;
        f.sptile = q8c_sptile__avx512;
    } else if (form == DSL_FORM_AVX2) {
        f.tile = q8c_tile__avx2;
        f.epi = q8c_epilogue__avx2;
        f.inter = q8c_interleave__avx2;
        f.sptile = q8c_sptile__avx2;
    }
#endif
    (void)form;
    return f;
}

/* ---- AMX (tdpbsud: s8 weights x u8 activations, 16 x 16 x 64 per instruction) ----------
 * Inside the AVX-512 form when the CPU has AMX-INT8 and Linux grants the tile data
 * (arch_prctl ARCH_REQ_XCOMP_PERM, once per process); q8c_amx_enabled switches it off
 * (DSL_AMX=0, tests). A block is 32 channels x 32 pixels: C tiles 0-3, A (weights, 16
 * channels x 64 K bytes straight from the packed layout) 4-5, B (16 k-groups x 16 pixels,
 * rows gs bytes apart: the X rows as they are) 6-7. K past kg reads rows whose weights
 * are zero: the buffers hold those rows (garbage x 0 = 0 in integers). */
static int q8c_amx_state = -1;     /* -1 not probed, 0 no, 1 yes */
static int q8c_amx_enabled = 1;
static uint64_t q8c_amx_blocks = 0;

#if defined(DSL_SIMD_X86) && defined(__linux__)
#include <cpuid.h>
#include <unistd.h>
#include <sys/syscall.h>
static inline int q8c_amx_usable(void) {
    int st = __atomic_load_n(&q8c_amx_state, __ATOMIC_ACQUIRE);
    if (st < 0) {
        unsigned a = 0, b = 0, c = 0, d = 0;
        st = 0;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 25)) &&
            dsl_cpu_has_vnni() && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */,
                                          18 /* XFEATURE_XTILEDATA */) == 0)
            st = 1;
        __atomic_store_n(&q8c_amx_state, st, __ATOMIC_RELEASE);
    }
    return st;
}

typedef struct {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} q8c_tilecfg;

#define Q8C_AMX static __attribute__((target(DSL_TARGET_AMX_INT8)))
#define Q8C_AMX_INL static inline __attribute__((always_inline, target(DSL_TARGET_AMX_INT8)))

/* a constant object in memory: gcc does not model ldtilecfg's read of a stack buffer and
 * drops the stores that fill one */
static const q8c_tilecfg q8c_tile_config __attribute__((aligned(64))) = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

Q8C_AMX void q8c_amx_begin(void) {
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&q8c_tile_config);
}

Q8C_AMX void q8c_amx_end(void) { _tile_release(); }

Q8C_AMX_INL void q8c_amx_body(const uint8_t* x, int64_t gs, const int8_t* w0, int64_t kc16,
                              int32_t* acc, const int two_a, const int two_b) {
    const int8_t* w1 = w0 + kc16 * 1024;
    _tile_zero(0);
    if (two_b) _tile_zero(1);
    if (two_a) _tile_zero(2);
    if (two_a && two_b) _tile_zero(3);
    for (int64_t kc = 0; kc < kc16; ++kc) {
        const uint8_t* xk = x + kc * 16 * gs;
        _tile_loadd(4, w0 + kc * 1024, 64);
        _tile_loadd(6, xk, gs);
        _tile_dpbsud(0, 4, 6);
        if (two_b) {
            _tile_loadd(7, xk + 64, gs);
            _tile_dpbsud(1, 4, 7);
        }
        if (two_a) {
            _tile_loadd(5, w1 + kc * 1024, 64);
            _tile_dpbsud(2, 5, 6);
            if (two_b) _tile_dpbsud(3, 5, 7);
        }
    }
    _tile_stored(0, acc, Q8C_PX * 4);
    if (two_b) _tile_stored(1, acc + 16, Q8C_PX * 4);
    if (two_a) _tile_stored(2, acc + 16 * Q8C_PX, Q8C_PX * 4);
    if (two_a && two_b) _tile_stored(3, acc + 16 * Q8C_PX + 16, Q8C_PX * 4);
}

/* acc[r * Q8C_PX + j] for channels r < nch (<= 32) and pixels j < npx (<= 32) */
Q8C_AMX void q8c_amx_block(const uint8_t* x, int64_t gs, const int8_t* w0, int64_t kc16,
                           int nch, int npx, int32_t* acc) {
    const int a2 = nch > 16, b2 = npx > 16;
    if (a2 && b2) q8c_amx_body(x, gs, w0, kc16, acc, 1, 1);
    else if (a2) q8c_amx_body(x, gs, w0, kc16, acc, 1, 0);
    else if (b2) q8c_amx_body(x, gs, w0, kc16, acc, 0, 1);
    else q8c_amx_body(x, gs, w0, kc16, acc, 0, 0);
}
#else
static inline int q8c_amx_usable(void) { return 0; }
static inline void q8c_amx_begin(void) {}
static inline void q8c_amx_end(void) {}
static inline void q8c_amx_block(const uint8_t* x, int64_t gs, const int8_t* w0, int64_t kc16,
                                 int nch, int npx, int32_t* acc) {
    (void)x; (void)gs; (void)w0; (void)kc16; (void)nch; (void)npx; (void)acc;
}
#endif

static inline int q8c_amx_on(void) { return q8c_amx_enabled && q8c_amx_usable(); }

/* ---- im2col of a pixel block from the interleaved input -------------------------------- */
typedef struct {
    int64_t C4, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW, HWp;
} q8c_geom;

/* Rows g of pixels [p0, p0 + npx) into dst[g * ldw + j] (words), pad word outside the
 * image; words npx .. ldw of each row hold the pad word too. */
static void q8c_im2col(const uint32_t* xi, const q8c_geom* q, int64_t p0, int64_t npx,
                       int64_t ldw, uint32_t pad, uint32_t* dst) {
    int64_t g = 0;
    for (int64_t c4 = 0; c4 < q->C4; ++c4) {
        const uint32_t* plane = xi + c4 * q->HWp;
        for (int64_t kh = 0; kh < q->KH; ++kh)
            for (int64_t kw = 0; kw < q->KW; ++kw, ++g) {
                uint32_t* row = dst + g * ldw;
                /* ow valid iff 0 <= ow*SW - PW + kw*DW < W: ow in [lo, hi) */
                const int64_t off = kw * q->DW - q->PW;
                const int64_t lo = off >= 0 ? 0 : (-off + q->SW - 1) / q->SW;
                const int64_t hi = (q->W - 1 - off) >= 0 ? (q->W - 1 - off) / q->SW + 1 : 0;
                int64_t j = 0;
                int64_t oh = p0 / q->OW, ow = p0 % q->OW;
                while (j < npx) {
                    int64_t seg = q->OW - ow;
                    if (seg > npx - j) seg = npx - j;
                    const int64_t ih = oh * q->SH - q->PH + kh * q->DH;
                    uint32_t* o = row + j;
                    if (ih < 0 || ih >= q->H || hi <= lo) {
                        for (int64_t i = 0; i < seg; ++i) o[i] = pad;
                    } else {
                        const uint32_t* src = plane + ih * q->W + off;
                        int64_t a = lo - ow, e = hi - ow;
                        a = a < 0 ? 0 : (a > seg ? seg : a);
                        e = e < a ? a : (e > seg ? seg : e);
                        for (int64_t i = 0; i < a; ++i) o[i] = pad;
                        if (q->SW == 1) {
                            memcpy(o + a, src + ow + a, (size_t)(e - a) * 4);
                        } else if (q->SW == 2) {   /* a literal stride: it vectorises */
                            const uint32_t* sp = src + (ow + a) * 2;
                            for (int64_t i = 0; i < e - a; ++i) o[a + i] = sp[2 * i];
                        } else {
                            const uint32_t* sp = src + (ow + a) * q->SW;
                            for (int64_t i = a; i < e; ++i, sp += q->SW) o[i] = *sp;
                        }
                        for (int64_t i = e; i < seg; ++i) o[i] = pad;
                    }
                    j += seg;
                    ow = 0;
                    ++oh;
                }
                for (; j < ldw; ++j) row[j] = pad;
            }
    }
}

/* Pixels per block: the plane cut into equal blocks (multiples of 16 pixels) whose
 * k-group rows take <= 256 KB (at least one 48-pixel tile). */
static inline int64_t q8c_block_pixels(int64_t P, int64_t kg) {
    int64_t cap = (256 * 1024) / (kg * 4 > 0 ? kg * 4 : 1) / 16 * 16;
    if (cap < Q8C_PX) cap = Q8C_PX;
    const int64_t nb = (P + cap - 1) / cap;
    return ((P + nb - 1) / nb + 15) / 16 * 16;
}
#endif
