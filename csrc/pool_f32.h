/* fp32 2-D pooling kernels (the four kernel forms from one template, pool_f32_tmpl.h).
 * Single-threaded over a range of output rows; kernels/pool.pyx splits rows across threads
 * and gives each thread its own row buffer of Wp floats from the step's workspace. */
#ifndef DSL_POOL_F32_H
#define DSL_POOL_F32_H
#include <math.h>
#include <stdint.h>
#include "dsl_cpu.h"

typedef struct {
    int64_t H, W, OH, OW;      /* input / output plane sizes */
    int64_t KH, KW, SH, SW;    /* kernel, strides */
    int64_t PT, PL, DH, DW;    /* top / left pads (bottom / right are implied by OH, OW), dilations */
    int64_t Wp;                /* row buffer length: (OW - 1) * SW + (KW - 1) * DW + 1 */
    int64_t avg;               /* 0 max, 1 average */
} dsl_pool2d;

#define DSL_SIMD_TEMPLATE "pool_f32_tmpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

typedef void (*f32_pool2d_rows_fn)(const float*, float*, const dsl_pool2d*, int64_t, int64_t,
                                   float*, const float*, const float*);

/* form: dsl_kv_form(DSL_KV_POOL, level, cap) */
static inline f32_pool2d_rows_fn f32_pool2d_rows_select(int form) {
    switch (form) {
#ifdef DSL_SIMD_X86
    case DSL_FORM_AVX2: return f32_pool2d_rows__avx2;
    case DSL_FORM_AVX512: return f32_pool2d_rows__avx512;
    case DSL_FORM_AVX512_ON_AVX2: return f32_pool2d_rows__avx512_on_avx2;
#endif
    default: return f32_pool2d_rows__generic;
    }
}
#endif
