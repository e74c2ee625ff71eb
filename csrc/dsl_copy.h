/* N-d strided copy: the one data-movement primitive behind Transpose, Slice, Concat,
 * Split, Expand, Tile, Pad (constant / edge / reflect / wrap via zero and negative strides),
 * DepthToSpace and layout changes. Shapes and byte strides are fixed at compile time (dims
 * already merged where contiguous); strides may be zero (broadcast) or negative (reversed).
 *
 * Two paths:
 *  - dsl_copy_rows: rows [lo, hi) of the outer iteration space (all dims but the last) are
 *    copied, each row a memcpy when both sides are contiguous, a strided loop otherwise.
 *    The row index is decoded once per call and then advanced like an odometer, so no
 *    division runs per row.
 *  - dsl_copy_transpose_items: when the innermost destination dim is contiguous but the
 *    source walks it with a large stride while another dim is contiguous in the source
 *    (a transpose of the two innermost dims, e.g. [S,H,D] -> [H,D,S]), the copy is done
 *    in 8x8 tiles so that both sides touch whole cache lines; 4- and 8-byte elements use
 *    AVX2 register transposes when the CPU has them.
 */
#ifndef DSL_COPY_H
#define DSL_COPY_H
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DSL_COPY_X86 1
#endif

/* One strided row of n elements of esz bytes. */
static inline void dsl_copy_row(const char* sp, char* dp, int64_t n, int64_t esz,
                                int64_t s_in, int64_t d_in) {
    if (s_in == esz && d_in == esz) {
        memcpy(dp, sp, (size_t)(n * esz));
    } else if (s_in == 0) {
        /* broadcast one element (Expand, Tile, edge padding): a fill the compiler vectorises */
        if (esz == 4) {
            uint32_t v = *(const uint32_t*)sp;
            if (d_in == 4) { uint32_t* d = (uint32_t*)dp; for (int64_t k = 0; k < n; ++k) d[k] = v; }
            else for (int64_t k = 0; k < n; ++k) *(uint32_t*)(dp + k * d_in) = v;
        } else if (esz == 8) {
            uint64_t v = *(const uint64_t*)sp;
            if (d_in == 8) { uint64_t* d = (uint64_t*)dp; for (int64_t k = 0; k < n; ++k) d[k] = v; }
            else for (int64_t k = 0; k < n; ++k) *(uint64_t*)(dp + k * d_in) = v;
        } else if (esz == 1 && d_in == 1) {
            memset(dp, *(const unsigned char*)sp, (size_t)n);
        } else {
            for (int64_t k = 0; k < n; ++k) memcpy(dp + k * d_in, sp, (size_t)esz);
        }
    } else if (esz == 4) {
        for (int64_t k = 0; k < n; ++k)
            *(uint32_t*)(dp + k * d_in) = *(const uint32_t*)(sp + k * s_in);
    } else if (esz == 8) {
        for (int64_t k = 0; k < n; ++k)
            *(uint64_t*)(dp + k * d_in) = *(const uint64_t*)(sp + k * s_in);
    } else if (esz == 1) {
        for (int64_t k = 0; k < n; ++k) dp[k * d_in] = sp[k * s_in];
    } else {
        for (int64_t k = 0; k < n; ++k) memcpy(dp + k * d_in, sp + k * s_in, (size_t)esz);
    }
}

static inline void dsl_copy_rows(const char* src, char* dst, int ndim, int64_t esz,
                                 const int64_t* shape, const int64_t* ss, const int64_t* ds,
                                 int64_t lo, int64_t hi) {
    if (lo >= hi) return;
    int64_t n_in = shape[ndim - 1], s_in = ss[ndim - 1], d_in = ds[ndim - 1];
    int64_t idx[8];
    int64_t rem = lo, so = 0, dof = 0;
    for (int d = ndim - 2; d >= 0; --d) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
        so += idx[d] * ss[d];
        dof += idx[d] * ds[d];
    }
    for (int64_t r = lo; r < hi; ++r) {
        dsl_copy_row(src + so, dst + dof, n_in, esz, s_in, d_in);
        for (int d = ndim - 2; d >= 0; --d) { /* odometer step */
            so += ss[d];
            dof += ds[d];
            if (++idx[d] < shape[d]) break;
            so -= ss[d] * shape[d];
            dof -= ds[d] * shape[d];
            idx[d] = 0;
        }
    }
}

/* Work items [lo, hi) when there are fewer rows than threads: item = (row, segment), each
 * row cut into nseg nearly equal segments, so one long contiguous copy still uses every
 * thread. */
static inline void dsl_copy_row_segments(const char* src, char* dst, int ndim, int64_t esz,
                                         const int64_t* shape, const int64_t* ss,
                                         const int64_t* ds, int64_t nseg, int64_t lo,
                                         int64_t hi) {
    int64_t n_in = shape[ndim - 1], s_in = ss[ndim - 1], d_in = ds[ndim - 1];
    for (int64_t it = lo; it < hi; ++it) {
        int64_t rem = it / nseg, seg = it % nseg, so = 0, dof = 0;
        for (int d = ndim - 2; d >= 0; --d) {
            int64_t q = rem % shape[d];
            rem /= shape[d];
            so += q * ss[d];
            dof += q * ds[d];
        }
        int64_t k0 = n_in * seg / nseg, k1 = n_in * (seg + 1) / nseg;
        dsl_copy_row(src + so + k0 * s_in, dst + dof + k0 * d_in, k1 - k0, esz, s_in, d_in);
    }
}

/* ---- blocked transpose ---------------------------------------------------------------
 * Tile: dst[b*dB + a*esz] = src[b*esz + a*sA] for b < nb (<= 8), a < na (<= 8). */
static inline void dsl_copy_tile_scalar(const char* src, char* dst, int64_t esz, int64_t nb,
                                        int64_t na, int64_t sA, int64_t dB) {
    if (esz == 4) {
        for (int64_t b = 0; b < nb; ++b)
            for (int64_t a = 0; a < na; ++a)
                *(uint32_t*)(dst + b * dB + a * 4) = *(const uint32_t*)(src + b * 4 + a * sA);
    } else if (esz == 8) {
        for (int64_t b = 0; b < nb; ++b)
            for (int64_t a = 0; a < na; ++a)
                *(uint64_t*)(dst + b * dB + a * 8) = *(const uint64_t*)(src + b * 8 + a * sA);
    } else if (esz == 1) {
        for (int64_t b = 0; b < nb; ++b)
            for (int64_t a = 0; a < na; ++a) dst[b * dB + a] = src[b + a * sA];
    } else {
        for (int64_t b = 0; b < nb; ++b)
            for (int64_t a = 0; a < na; ++a)
                memcpy(dst + b * dB + a * esz, src + b * esz + a * sA, (size_t)esz);
    }
}

#ifdef DSL_COPY_X86
/* 8x8 transpose of 32-bit elements: 8 source rows (stride sA) of 8 contiguous elements
 * become 8 destination rows (stride dB). */
__attribute__((target(DSL_TARGET_AVX2))) static void x32_transpose_ukernel_8x8__avx2(
        const char* src, char* dst, int64_t sA, int64_t dB) {
    __m256 r0 = _mm256_loadu_ps((const float*)(src + 0 * sA));
    __m256 r1 = _mm256_loadu_ps((const float*)(src + 1 * sA));
    __m256 r2 = _mm256_loadu_ps((const float*)(src + 2 * sA));
    __m256 r3 = _mm256_loadu_ps((const float*)(src + 3 * sA));
    __m256 r4 = _mm256_loadu_ps((const float*)(src + 4 * sA));
    __m256 r5 = _mm256_loadu_ps((const float*)(src + 5 * sA));
    __m256 r6 = _mm256_loadu_ps((const float*)(src + 6 * sA));
    __m256 r7 = _mm256_loadu_ps((const float*)(src + 7 * sA));
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    _mm256_storeu_ps((float*)(dst + 0 * dB), _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps((float*)(dst + 1 * dB), _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps((float*)(dst + 2 * dB), _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps((float*)(dst + 3 * dB), _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps((float*)(dst + 4 * dB), _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps((float*)(dst + 5 * dB), _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps((float*)(dst + 6 * dB), _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps((float*)(dst + 7 * dB), _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* 4x4 transpose of 64-bit elements. */
__attribute__((target(DSL_TARGET_AVX2))) static void x64_transpose_ukernel_4x4__avx2(
        const char* src, char* dst, int64_t sA, int64_t dB) {
    __m256d r0 = _mm256_loadu_pd((const double*)(src + 0 * sA));
    __m256d r1 = _mm256_loadu_pd((const double*)(src + 1 * sA));
    __m256d r2 = _mm256_loadu_pd((const double*)(src + 2 * sA));
    __m256d r3 = _mm256_loadu_pd((const double*)(src + 3 * sA));
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd((double*)(dst + 0 * dB), _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd((double*)(dst + 1 * dB), _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd((double*)(dst + 2 * dB), _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd((double*)(dst + 3 * dB), _mm256_permute2f128_pd(t1, t3, 0x31));
}
#endif

/* One band of up to 8 destination rows (b) over the whole a range. */
static inline void dsl_copy_transpose_band(const char* src, char* dst, int64_t esz, int64_t nb,
                                           int64_t nA, int64_t sA, int64_t dB, int use_avx2) {
    int64_t a = 0;
#ifdef DSL_COPY_X86
    if (use_avx2 && nb == 8 && esz == 4) {
        for (; a + 8 <= nA; a += 8)
            x32_transpose_ukernel_8x8__avx2(src + a * sA, dst + a * 4, sA, dB);
    } else if (use_avx2 && nb == 8 && esz == 8) {
        for (; a + 4 <= nA; a += 4) {
            x64_transpose_ukernel_4x4__avx2(src + a * sA, dst + a * 8, sA, dB);
            x64_transpose_ukernel_4x4__avx2(src + a * sA + 32, dst + 4 * dB + a * 8, sA, dB);
        }
    }
#else
    (void)use_avx2;
#endif
    for (; a < nA; a += 8) {
        int64_t na = nA - a < 8 ? nA - a : 8;
        dsl_copy_tile_scalar(src + a * sA, dst + a * esz, esz, nb, na, sA, dB);
    }
}

/* Work items [lo, hi) of a transpose: item = (outer row, band of 8 b's). The outer rows
 * span dims 0..nouter-1 (oshape / oss / ods); b has extent nB (source stride esz,
 * destination stride dB), a has extent nA (source stride sA, destination stride esz). */
static inline void dsl_copy_transpose_items(const char* src, char* dst, int64_t esz, int nouter,
                                            const int64_t* oshape, const int64_t* oss,
                                            const int64_t* ods, int64_t nB, int64_t dB,
                                            int64_t nA, int64_t sA, int64_t lo, int64_t hi,
                                            int use_avx2) {
    int64_t nbands = (nB + 7) / 8;
    for (int64_t it = lo; it < hi; ++it) {
        int64_t o = it / nbands, band = it % nbands;
        int64_t so = 0, dof = 0;
        for (int d = nouter - 1; d >= 0; --d) {
            int64_t q = o % oshape[d];
            o /= oshape[d];
            so += q * oss[d];
            dof += q * ods[d];
        }
        int64_t b0 = band * 8, nb = nB - b0 < 8 ? nB - b0 : 8;
        dsl_copy_transpose_band(src + so + b0 * esz, dst + dof + b0 * dB, esz, nb, nA, sA, dB,
                                use_avx2);
    }
}
#endif
