/* Read-bandwidth probe: dsl_stream_sum(form, p, n) reads n floats front to back in the given
 * vector form, with the reductions' own whole-row sum (reduce_f32_tmpl.h: 4 independent
 * accumulators). It is the ceiling the small-M GEMM is measured against
 * (benchmarks/bench_gemm.py --suite small-m). */
#ifndef DSL_MEMBW_H
#define DSL_MEMBW_H
#include <stdint.h>
#include <string.h>
#include "reduce_f32.h"

static inline float dsl_stream_sum(int form, const float* p, int64_t n) {
#if DSL_REDUCE_HAVE_X86
    if (form == DSL_FORM_AVX512) return f32_rsum__avx512(p, n);
    if (form == DSL_FORM_AVX512_ON_AVX2) return f32_rsum__avx512_on_avx2(p, n);
    if (form == DSL_FORM_AVX2) return f32_rsum__avx2(p, n);
#endif
    return f32_rsum__generic(p, n);
}

/* `passes` reads of the buffer, summed; the barrier keeps the compiler from reading it once
 * (the sum is the same every pass). */
static inline double dsl_stream_read(int form, const float* p, int64_t n, int passes) {
    double acc = 0.0;
    for (int i = 0; i < passes; ++i) {
        acc += dsl_stream_sum(form, p, n);
#if defined(__GNUC__) || defined(__clang__)
        __asm__ __volatile__("" : : "r"(p) : "memory");
#endif
    }
    return acc;
}

/* Compute-peak probe: `iters` rounds of independent vector FMA chains (24 zmm / 12 ymm:
 * more than the FMA latency times the FMA pipes of any x86 core, and within the register
 * file) in the given form; returns the fp32 FLOPs done (2 per lane per FMA). What
 * benchmarks/kernels.py measures kernels against. */
#if defined(__x86_64__)
#include <immintrin.h>
#define DSL_PEAK_BODY(VT, SET1, FMA, ADD, LANES, NC)                                          \
    VT c[NC];                                                                                 \
    const VT a = SET1(1.0000001f), b = SET1(0.9999999f);                                      \
    for (int j = 0; j < NC; ++j) c[j] = SET1((float)j);                                       \
    for (int64_t i = 0; i < iters; ++i) {                                                     \
        _Pragma("GCC unroll 24") for (int j = 0; j < NC; ++j) c[j] = FMA(c[j], a, b);         \
    }                                                                                         \
    VT s = c[0];                                                                              \
    for (int j = 1; j < NC; ++j) s = ADD(s, c[j]);                                            \
    float out[LANES];                                                                         \
    memcpy(out, &s, sizeof(out));                                                             \
    *sink = out[0];                                                                           \
    return 2.0 * LANES * NC * (double)iters;

static __attribute__((target(DSL_TARGET_AVX512), noinline)) double
dsl_fma_peak__avx512(int64_t iters, float* sink) {
    DSL_PEAK_BODY(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, 16, 24)
}
static __attribute__((target(DSL_TARGET_AVX2), noinline)) double
dsl_fma_peak__avx2(int64_t iters, float* sink) {
    DSL_PEAK_BODY(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, 8, 12)
}
#undef DSL_PEAK_BODY
#endif

/* FLOPs of `iters` rounds in form `form` (AVX-512 or AVX2; 0 for any other). */
static inline double dsl_fma_peak(int form, int64_t iters, float* sink) {
#if defined(__x86_64__)
    if (form == DSL_FORM_AVX512) return dsl_fma_peak__avx512(iters, sink);
    if (form == DSL_FORM_AVX2) return dsl_fma_peak__avx2(iters, sink);
#endif
    (void)iters;
    *sink = 0.f;
    (void)form;
    return 0.0;
}
#endif
