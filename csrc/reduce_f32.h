/* fp32 reduction, softmax, layer-norm and affine kernels in the four kernel forms (one
 * template, reduce_f32_tmpl.h, instantiated per form: csrc/dsl_simd.h), plus selectors
 * that return the variant of a kernel form (dsl_kv_form of the step's compile-time level
 * and the CPU cap, csrc/dsl_cpu.h). Kernels are single-threaded: kernels/reduce.pyx splits the work. */
#ifndef DSL_REDUCE_F32_H
#define DSL_REDUCE_F32_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "dsl_cpu.h"

/* reduce kinds (i[0] of the REDUCE step); mirrored by deepsparse_lite.ops.reduce.RK */
#define DSL_RK_SUM 0
#define DSL_RK_MEAN 1
#define DSL_RK_MAX 2
#define DSL_RK_MIN 3
#define DSL_RK_PROD 4
#define DSL_RK_L2 5
#define DSL_RK_L1 6
#define DSL_RK_SUMSQ 7
#define DSL_RK_LOGSUM 8
#define DSL_RK_LOGSUMEXP 9

/* column sub-chunk kept on the stack by the *_cols kernels */
#define DSL_RCOLS_TMP 256

/* the vector exp of each form (VF_EXP) */
#include "dsl_vmath.h"

#define DSL_SIMD_TEMPLATE "reduce_f32_tmpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"
#ifdef DSL_SIMD_X86
#define DSL_REDUCE_HAVE_X86 1
#else
#define DSL_REDUCE_HAVE_X86 0
#endif

typedef void (*f32_reduce_rows_fn)(const float*, float*, int64_t, int64_t, int, float);
typedef void (*f32_reduce_cols_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t, int, float);
typedef void (*f32_softmax_rows_fn)(const float*, float*, int64_t, int64_t, int);
typedef void (*f32_softmax_cols_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t, int);
typedef void (*f32_layernorm_rows_fn)(const float*, float*, int64_t, int64_t, const float*,
                                      const float*, float, float*, float*);
typedef void (*f32_instnorm_rows_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                     const float*, const float*, float);
typedef void (*f32_argext_rows_fn)(const float*, int64_t*, int64_t, int64_t, int, int);
typedef void (*f32_affine_plane_fn)(const float*, float*, int64_t, float, float);
typedef void (*f32_affine_vec_fn)(const float*, float*, int64_t, const float*, const float*);

#if DSL_REDUCE_HAVE_X86
#define DSL_REDUCE_SELECT(name)                                                  \
    static inline name##_fn name##_select(int form) {                            \
        switch (form) {                                                          \
        case DSL_FORM_AVX2: return name##__avx2;                                 \
        case DSL_FORM_AVX512: return name##__avx512;                             \
        case DSL_FORM_AVX512_ON_AVX2: return name##__avx512_on_avx2;             \
        default: return name##__generic;                                         \
        }                                                                        \
    }
#else
#define DSL_REDUCE_SELECT(name)                                                  \
    static inline name##_fn name##_select(int form) { (void)form; return name##__generic; }
#endif

DSL_REDUCE_SELECT(f32_reduce_rows)
DSL_REDUCE_SELECT(f32_reduce_cols)
DSL_REDUCE_SELECT(f32_softmax_rows)
DSL_REDUCE_SELECT(f32_softmax_cols)
DSL_REDUCE_SELECT(f32_layernorm_rows)
DSL_REDUCE_SELECT(f32_instnorm_rows)
DSL_REDUCE_SELECT(f32_argext_rows)
DSL_REDUCE_SELECT(f32_affine_plane)
DSL_REDUCE_SELECT(f32_affine_vec)

#endif
