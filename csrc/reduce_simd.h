/* Vector macro set for the reduction / pooling templates (reduce_f32_tmpl.h, pool_f32_tmpl.h).
 *
 * Deliberately WITHOUT an include guard: an includer sets DSL_SIMD_LEVEL (0 generic C,
 * 1 AVX2+FMA, 2 AVX-512F) and includes this file, then a template; the template is compiled
 * once per level from the same source, so the AVX-512 variant (which cannot run on the
 * development machine) is the AVX2 code with wider macros, and the generic C variant (VN = 1,
 * libm expf) is the reference the tests compare the others with.
 *
 *   DSL_FN(name)  name##__<isa>            DSL_TGT   function target attribute
 *   VN            lanes                    vf        vector type
 *   VLOAD/VSTORE  unaligned load/store     VSET1/VZERO
 *   VADD VSUB VMUL VDIV VMAX VMIN VFMA(a,b,c)=a*b+c  VABS VSQRT
 *   VHSUM VHMAX VHMIN (vector -> float)
 *   VEXP          exp (polynomial for the SIMD levels, max rel. error ~2 ulp)
 *   VLOAD_EVEN(p) lanes p[0], p[2], ..., p[2 VN - 2] (reads p[0, 2 VN)): stride-2 pooling
 */
#include <math.h>
#include <stdint.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#ifndef DSL_EXP_LO
#define DSL_EXP_LO -87.33654f
#define DSL_EXP_HI 88.0f
#define DSL_EXP_MAGIC 12583039.f /* 1.5 * 2^23 + 127 */
#define DSL_EXP_MLN2_HI -0x1.62E400p-1f
#define DSL_EXP_MLN2_LO -0x1.7F7D1Cp-20f
#define DSL_EXP_C5 0x1.0F9F9Cp-7f
#define DSL_EXP_C4 0x1.573A1Ap-5f
#define DSL_EXP_C3 0x1.555A80p-3f
#define DSL_EXP_C2 0x1.FFFDC6p-2f
#define DSL_EXP_C1 0x1.FFFFF6p-1f
#endif

#undef DSL_FN
#undef DSL_TGT
#undef VN
#undef vf
#undef VLOAD
#undef VSTORE
#undef VSET1
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VMIN
#undef VFMA
#undef VABS
#undef VSQRT
#undef VHSUM
#undef VHMAX
#undef VHMIN
#undef VEXP
#undef VLOAD_EVEN

#if DSL_SIMD_LEVEL == 0
/* ---------------- generic C: one lane, libm ---------------- */
#define DSL_FN(name) name##__generic
#define DSL_TGT
#define VN 1
#define vf float
#define VLOAD(p) (*(p))
#define VSTORE(p, v) (*(p) = (v))
#define VSET1(x) ((float)(x))
#define VZERO() (0.f)
#define VADD(a, b) ((a) + (b))
#define VSUB(a, b) ((a) - (b))
#define VMUL(a, b) ((a) * (b))
#define VDIV(a, b) ((a) / (b))
#define VMAX(a, b) ((a) > (b) ? (a) : (b))
#define VMIN(a, b) ((a) < (b) ? (a) : (b))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VABS(a) fabsf(a)
#define VSQRT(a) sqrtf(a)
#define VHSUM(v) (v)
#define VHMAX(v) (v)
#define VHMIN(v) (v)
#define VEXP(v) expf(v)
#define VLOAD_EVEN(p) (*(p))

#elif DSL_SIMD_LEVEL == 1
/* ---------------- AVX2 + FMA: 8 lanes ---------------- */
#define DSL_FN(name) name##__avx2
#define DSL_TGT __attribute__((target("avx2,fma")))
#define VN 8
#define vf __m256
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VSET1(x) _mm256_set1_ps(x)
#define VZERO() _mm256_setzero_ps()
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSUB(a, b) _mm256_sub_ps((a), (b))
#define VMUL(a, b) _mm256_mul_ps((a), (b))
#define VDIV(a, b) _mm256_div_ps((a), (b))
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VABS(a) _mm256_andnot_ps(_mm256_set1_ps(-0.f), (a))
#define VSQRT(a) _mm256_sqrt_ps(a)
#define VHSUM(v) dsl_hsum8_avx2(v)
#define VHMAX(v) dsl_hmax8_avx2(v)
#define VHMIN(v) dsl_hmin8_avx2(v)
#define VEXP(v) dsl_exp8_avx2(v)
#define VLOAD_EVEN(p) dsl_load_even8_avx2(p)
#ifndef DSL_REDUCE_SIMD_AVX2_HELPERS
#define DSL_REDUCE_SIMD_AVX2_HELPERS
__attribute__((target("avx2,fma"))) static inline float dsl_hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) static inline float dsl_hmax8_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) static inline float dsl_hmin8_avx2(__m256 v) {
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) static inline __m256 dsl_load_even8_avx2(const float* p) {
    /* shuffle -> [a0 a2 b0 b2 | a4 a6 b4 b6], then restore the 64-bit lane order */
    __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), 0xD8));
}
/* exp(x) = 2^n * e^t, n = round(x / ln2), t = x - n ln2 (two-step Cody-Waite), e^t by a
 * degree-5 minimax polynomial (XNNPACK's f32 exp "rr2-p5" coefficients; max rel. error
 * ~2.5 ulp, measured). n comes from the "magic bias" add: x log2(e) + 1.5 * 2^23 + 127
 * rounds to an integer whose low mantissa bits are n + 127, so shifting it left by 23
 * builds s = 2^n directly; e^x = s + (t s) p(t). x is clamped to [-87.3, 88] so 2^n stays
 * a normal number: results below ~1e-38 are not flushed to 0 and above 1.6e38 saturate,
 * which no softmax / log-sum-exp consumer (arguments <= 0) can see at fp32 tolerance. */
__attribute__((target("avx2,fma"))) static inline __m256 dsl_exp8_avx2(__m256 x) {
    const __m256 magic = _mm256_set1_ps(DSL_EXP_MAGIC);
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(DSL_EXP_LO)), _mm256_set1_ps(DSL_EXP_HI));
    __m256 n = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));
    n = _mm256_sub_ps(n, magic);
    __m256 t = _mm256_fmadd_ps(n, _mm256_set1_ps(DSL_EXP_MLN2_HI), x);
    t = _mm256_fmadd_ps(n, _mm256_set1_ps(DSL_EXP_MLN2_LO), t);
    __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(DSL_EXP_C5), t, _mm256_set1_ps(DSL_EXP_C4));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DSL_EXP_C3));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DSL_EXP_C2));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(DSL_EXP_C1));
    return _mm256_fmadd_ps(_mm256_mul_ps(t, s), p, s);
}
#endif

#elif DSL_SIMD_LEVEL == 2
/* ---------------- AVX-512F: 16 lanes (same algorithms as AVX2) ---------------- */
#define DSL_FN(name) name##__avx512
#define DSL_TGT __attribute__((target("avx512f,avx512dq,fma")))
#define VN 16
#define vf __m512
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VSET1(x) _mm512_set1_ps(x)
#define VZERO() _mm512_setzero_ps()
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSUB(a, b) _mm512_sub_ps((a), (b))
#define VMUL(a, b) _mm512_mul_ps((a), (b))
#define VDIV(a, b) _mm512_div_ps((a), (b))
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VABS(a) _mm512_abs_ps(a)
#define VSQRT(a) _mm512_sqrt_ps(a)
#define VHSUM(v) _mm512_reduce_add_ps(v)
#define VHMAX(v) _mm512_reduce_max_ps(v)
#define VHMIN(v) _mm512_reduce_min_ps(v)
#define VEXP(v) dsl_exp16_avx512(v)
#define VLOAD_EVEN(p) dsl_load_even16_avx512(p)
#ifndef DSL_REDUCE_SIMD_AVX512_HELPERS
#define DSL_REDUCE_SIMD_AVX512_HELPERS
__attribute__((target("avx512f,avx512dq,fma"))) static inline __m512 dsl_load_even16_avx512(const float* p) {
    const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 16));
}
/* same algorithm as dsl_exp8_avx2 */
__attribute__((target("avx512f,avx512dq,fma"))) static inline __m512 dsl_exp16_avx512(__m512 x) {
    const __m512 magic = _mm512_set1_ps(DSL_EXP_MAGIC);
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(DSL_EXP_LO)), _mm512_set1_ps(DSL_EXP_HI));
    __m512 n = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    const __m512 s = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(n), 23));
    n = _mm512_sub_ps(n, magic);
    __m512 t = _mm512_fmadd_ps(n, _mm512_set1_ps(DSL_EXP_MLN2_HI), x);
    t = _mm512_fmadd_ps(n, _mm512_set1_ps(DSL_EXP_MLN2_LO), t);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(DSL_EXP_C5), t, _mm512_set1_ps(DSL_EXP_C4));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(DSL_EXP_C3));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(DSL_EXP_C2));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(DSL_EXP_C1));
    return _mm512_fmadd_ps(_mm512_mul_ps(t, s), p, s);
}
#endif
#else
#error "DSL_SIMD_LEVEL must be 0, 1 or 2"
#endif
