/* Read-bandwidth probe: dsl_stream_sum(form, p, n) in every vector form (dsl_membw_tmpl.h). */
#ifndef DSL_MEMBW_H
#define DSL_MEMBW_H
#include <stdint.h>
#include "dsl_cpu.h"
#define DSL_SIMD_TEMPLATE "dsl_membw_tmpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

static inline float dsl_stream_sum(int form, const float* p, int64_t n) {
#ifdef DSL_SIMD_X86
    if (form == DSL_FORM_AVX512) return dsl_stream_sum__avx512(p, n);
    if (form == DSL_FORM_AVX512_ON_AVX2) return dsl_stream_sum__avx512_on_avx2(p, n);
    if (form == DSL_FORM_AVX2) return dsl_stream_sum__avx2(p, n);
#endif
    return dsl_stream_sum__generic(p, n);
}
#endif
