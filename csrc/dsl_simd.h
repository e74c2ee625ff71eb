/* The one vector vocabulary of the kernels: helpers behind the primitives that
 * dsl_simd_form.h binds for each kernel form (csrc/dsl_cpu.h).
 *
 * A SIMD kernel is written once, in a template header, against the primitives
 * (VF / VI / VM types, VF_ADD, VF_FMA, VF_LOAD_N, M_ALL, VF_HSUM, ...; the list is in
 * dsl_simd_form.h). The template is included once per form:
 *
 *   form               VM_LEN  VF                      instructions
 *   GENERIC              1     float                   plain C (the accuracy reference)
 *   AVX2                 8     __m256                  AVX2 + FMA
 *   AVX512              16     __m512 (+ k-masks)      AVX-512 F/BW/DQ/VL
 *   AVX512_ON_AVX2      16     two __m256 halves       AVX2 + FMA
 *
 * The last form is the AVX-512 form's source (16 lanes: the same loop bounds, tails,
 * offsets and packing) compiled for AVX2, each vector held as two halves: it runs, and is
 * tested, on every AVX2 machine, so a lane-count or layout bug of the AVX-512 kernels
 * cannot hide on machines without AVX-512. (GCC's generic 64-byte vector types were
 * measured first: on an AVX2 target it lowers them through memory, every operation a
 * store and reloads; the explicit halves stay in registers.) Only these primitives differ
 * between forms; each is tested against the scalar form (tests/test_simd.py).
 *
 * No kernel keeps its own spelling of an ISA: every target attribute is DSL_TARGET_AVX2 or
 * DSL_TARGET_AVX512 (dsl_cpu.h).
 */
#ifndef DSL_SIMD_H
#define DSL_SIMD_H
#include <math.h>
#include <stdint.h>
#include "dsl_cpu.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define DSL_SIMD_X86 1
#include <immintrin.h>

/* ---- AVX2 helpers (8 lanes) ------------------------------------------------------------ */
#define DSL_AVX2_INLINE static inline __attribute__((always_inline, target(DSL_TARGET_AVX2)))

DSL_AVX2_INLINE __m256i dsl_tailmask8(int64_t n) {   /* lanes [0, n) set; n <= 0: none */
    const int m = n < 0 ? 0 : (n > 8 ? 8 : (int)n);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
DSL_AVX2_INLINE float dsl_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DSL_AVX2_INLINE float dsl_hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DSL_AVX2_INLINE float dsl_hmin8(__m256 v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
/* p[0], p[2], ..., p[14] (reads p[0, 16)) */
DSL_AVX2_INLINE __m256 dsl_load_even8(const float* p) {
    /* shuffle -> [a0 a2 b0 b2 | a4 a6 b4 b6], then restore the 64-bit lane order */
    __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}

/* ---- AVX-512 helpers (16 lanes) -------------------------------------------------------- */
#define DSL_AVX512_INLINE static inline __attribute__((always_inline, target(DSL_TARGET_AVX512)))

DSL_AVX512_INLINE __mmask16 dsl_tailmask16(int64_t n) {   /* lanes [0, n) set */
    const unsigned m = n < 0 ? 0u : (n >= 16 ? 16u : (unsigned)n);
    return (__mmask16)((1u << m) - 1u);
}
/* p[0], p[2], ..., p[30] (reads p[0, 32)) */
DSL_AVX512_INLINE __m512 dsl_load_even16(const float* p) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
}

/* ---- 16 lanes as two AVX2 halves --------------------------------------------------------- */
typedef struct { __m256 lo, hi; } dsl_p16f;     /* floats, and masks (all-ones lanes) */
typedef struct { __m256i lo, hi; } dsl_p16i;

#define DSL_P16_F1(name, expr)                                                                \
    DSL_AVX2_INLINE dsl_p16f name(dsl_p16f a) {                                               \
        dsl_p16f r;                                                                           \
        { const __m256 x = a.lo; r.lo = (expr); }                                             \
        { const __m256 x = a.hi; r.hi = (expr); }                                             \
        return r;                                                                             \
    }
#define DSL_P16_F2(name, fn)                                                                  \
    DSL_AVX2_INLINE dsl_p16f name(dsl_p16f a, dsl_p16f b) {                                   \
        dsl_p16f r = {fn(a.lo, b.lo), fn(a.hi, b.hi)};                                        \
        return r;                                                                             \
    }
#define DSL_P16_F3(name, fn)                                                                  \
    DSL_AVX2_INLINE dsl_p16f name(dsl_p16f a, dsl_p16f b, dsl_p16f c) {                       \
        dsl_p16f r = {fn(a.lo, b.lo, c.lo), fn(a.hi, b.hi, c.hi)};                            \
        return r;                                                                             \
    }
#define DSL_P16_I2(name, fn)                                                                  \
    DSL_AVX2_INLINE dsl_p16i name(dsl_p16i a, dsl_p16i b) {                                   \
        dsl_p16i r = {fn(a.lo, b.lo), fn(a.hi, b.hi)};                                        \
        return r;                                                                             \
    }

DSL_AVX2_INLINE dsl_p16f dsl_p16_load(const float* p) {
    dsl_p16f r = {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
    return r;
}
DSL_AVX2_INLINE void dsl_p16_store(float* p, dsl_p16f v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_load_n(const float* p, int64_t n) {
    dsl_p16f r = {_mm256_maskload_ps(p, dsl_tailmask8(n)), _mm256_maskload_ps(p + 8, dsl_tailmask8(n - 8))};
    return r;
}
DSL_AVX2_INLINE void dsl_p16_store_n(float* p, dsl_p16f v, int64_t n) {
    _mm256_maskstore_ps(p, dsl_tailmask8(n), v.lo);
    _mm256_maskstore_ps(p + 8, dsl_tailmask8(n - 8), v.hi);
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_set1(float c) {
    dsl_p16f r = {_mm256_set1_ps(c), _mm256_set1_ps(c)};
    return r;
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_bcast(const float* p) {
    const __m256 v = _mm256_broadcast_ss(p);
    dsl_p16f r = {v, v};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_iset1(int c) {
    dsl_p16i r = {_mm256_set1_epi32(c), _mm256_set1_epi32(c)};
    return r;
}
DSL_P16_F2(dsl_p16_add, _mm256_add_ps)
DSL_P16_F2(dsl_p16_sub, _mm256_sub_ps)
DSL_P16_F2(dsl_p16_mul, _mm256_mul_ps)
DSL_P16_F2(dsl_p16_div, _mm256_div_ps)
DSL_P16_F2(dsl_p16_min, _mm256_min_ps)
DSL_P16_F2(dsl_p16_max, _mm256_max_ps)
DSL_P16_F2(dsl_p16_and, _mm256_and_ps)
DSL_P16_F2(dsl_p16_or, _mm256_or_ps)
DSL_P16_F2(dsl_p16_xor, _mm256_xor_ps)
DSL_P16_F2(dsl_p16_andnot, _mm256_andnot_ps)
DSL_P16_F3(dsl_p16_fma, _mm256_fmadd_ps)
DSL_P16_F3(dsl_p16_fnma, _mm256_fnmadd_ps)
DSL_P16_F3(dsl_p16_fms, _mm256_fmsub_ps)
DSL_P16_F1(dsl_p16_sqrt, _mm256_sqrt_ps(x))
DSL_P16_F1(dsl_p16_abs, _mm256_andnot_ps(_mm256_set1_ps(-0.f), x))
DSL_P16_F1(dsl_p16_round, _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
DSL_P16_F1(dsl_p16_floor, _mm256_round_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC))
DSL_P16_F1(dsl_p16_ceil, _mm256_round_ps(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC))
DSL_P16_I2(dsl_p16_iadd, _mm256_add_epi32)
DSL_P16_I2(dsl_p16_isub, _mm256_sub_epi32)
DSL_P16_I2(dsl_p16_iand, _mm256_and_si256)
DSL_P16_I2(dsl_p16_ior, _mm256_or_si256)

#define DSL_P16_CMP(name, pred)                                                               \
    DSL_AVX2_INLINE dsl_p16f name(dsl_p16f a, dsl_p16f b) {                                   \
        dsl_p16f r = {_mm256_cmp_ps(a.lo, b.lo, pred), _mm256_cmp_ps(a.hi, b.hi, pred)};      \
        return r;                                                                             \
    }
DSL_P16_CMP(dsl_p16_lt, _CMP_LT_OQ)
DSL_P16_CMP(dsl_p16_le, _CMP_LE_OQ)
DSL_P16_CMP(dsl_p16_gt, _CMP_GT_OQ)
DSL_P16_CMP(dsl_p16_ge, _CMP_GE_OQ)
DSL_P16_CMP(dsl_p16_eq, _CMP_EQ_OQ)
DSL_AVX2_INLINE dsl_p16f dsl_p16_isnan(dsl_p16f a) {
    dsl_p16f r = {_mm256_cmp_ps(a.lo, a.lo, _CMP_UNORD_Q), _mm256_cmp_ps(a.hi, a.hi, _CMP_UNORD_Q)};
    return r;
}
DSL_AVX2_INLINE int dsl_p16_all(dsl_p16f m) {
    return (_mm256_movemask_ps(m.lo) & _mm256_movemask_ps(m.hi)) == 0xff;
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_blend(dsl_p16f m, dsl_p16f a, dsl_p16f b) {   /* m ? b : a */
    dsl_p16f r = {_mm256_blendv_ps(a.lo, b.lo, m.lo), _mm256_blendv_ps(a.hi, b.hi, m.hi)};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_to_i(dsl_p16f a) {
    dsl_p16i r = {_mm256_cvtps_epi32(a.lo), _mm256_cvtps_epi32(a.hi)};
    return r;
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_i_to_f(dsl_p16i a) {
    dsl_p16f r = {_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_as_i(dsl_p16f a) {
    dsl_p16i r = {_mm256_castps_si256(a.lo), _mm256_castps_si256(a.hi)};
    return r;
}
DSL_AVX2_INLINE dsl_p16f dsl_p16_as_f(dsl_p16i a) {
    dsl_p16f r = {_mm256_castsi256_ps(a.lo), _mm256_castsi256_ps(a.hi)};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_slli(dsl_p16i a, int k) {
    dsl_p16i r = {_mm256_slli_epi32(a.lo, k), _mm256_slli_epi32(a.hi, k)};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_srli(dsl_p16i a, int k) {
    dsl_p16i r = {_mm256_srli_epi32(a.lo, k), _mm256_srli_epi32(a.hi, k)};
    return r;
}
DSL_AVX2_INLINE dsl_p16i dsl_p16_srai(dsl_p16i a, int k) {
    dsl_p16i r = {_mm256_srai_epi32(a.lo, k), _mm256_srai_epi32(a.hi, k)};
    return r;
}
DSL_AVX2_INLINE float dsl_p16_hsum(dsl_p16f v) { return dsl_hsum8(_mm256_add_ps(v.lo, v.hi)); }
DSL_AVX2_INLINE float dsl_p16_hmax(dsl_p16f v) { return dsl_hmax8(_mm256_max_ps(v.lo, v.hi)); }
DSL_AVX2_INLINE float dsl_p16_hmin(dsl_p16f v) { return dsl_hmin8(_mm256_min_ps(v.lo, v.hi)); }
/* p[0], p[2], ..., p[30] (reads p[0, 32)) */
DSL_AVX2_INLINE dsl_p16f dsl_p16_load_even(const float* p) {
    dsl_p16f r = {dsl_load_even8(p), dsl_load_even8(p + 16)};
    return r;
}
#endif /* x86 */
#endif
