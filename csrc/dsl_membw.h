/* Read-bandwidth probe: dsl_stream_sum(form, p, n) reads n floats front to back in the given
 * vector form, with the reductions' own whole-row sum (reduce_f32_tmpl.h: 4 independent
 * accumulators). It is the ceiling the small-M GEMM is measured against
 * (benchmarks/bench_gemm.py --suite small-m). */
#ifndef DSL_MEMBW_H
#define DSL_MEMBW_H
#include <stdint.h>
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
#endif
