/* Vector math for float32: exp, log, tanh, sigmoid, erf, GELU and the other unary functions
 * of the eltwise family and the fused activations of GEMM/conv epilogues.
 *
 * One source, four forms (csrc/dsl_cpu.h):
 *   - generic: plain C on libm (the accuracy reference; also what non-x86 builds use),
 *   - AVX2, AVX-512 and the AVX-512 form on AVX2 halves: dsl_vmath_impl.h is included
 *     once per form with the vector primitives of dsl_simd_form.h bound to it and every
 *     function carrying that form's target attribute, so no -march flag is needed and one
 *     build runs everywhere. dsl_vunary_f32(form, ...) picks the variant; callers pass the form
 *     dsl_form(level, cap) gives for the step's level and the CPU cap (csrc/dsl_cpu.h).
 *
 * Accuracy (float32, checked by tests/ops/test_elementwise.py against float64 references):
 * exp, log, tanh, ELU within ~1.5 ulp; sigmoid, erf, softplus within ~3 ulp; GELU (erf)
 * within ~6 ulp / 6e-7 relative down to x = -13 (libm's erfcf-based generic variant loses
 * up to 1e-5 there); GELU (tanh) within ~4e-6 relative (its argument's rounding is
 * amplified by |2y|).
 * Overflow gives inf, NaN propagates, tanh and sigmoid saturate exactly to +-1 / 0 / 1.
 * Exp returns denormals; the activations flush results below FLT_MIN to 0.
 *
 * Function codes: 0..12 are the activation codes of dsl_act.h (same meaning, same params);
 * 13.. are the remaining unary ops. Params a, b are the op's float attributes.
 */
#ifndef DSL_VMATH_H
#define DSL_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#include "dsl_act.h"

#define DSL_VF_EXP        13
#define DSL_VF_LOG        14
#define DSL_VF_SQRT       15
#define DSL_VF_NEG        16
#define DSL_VF_ABS        17
#define DSL_VF_RECIP      18
#define DSL_VF_ERF        19
#define DSL_VF_AFFINE     20   /* a * x + b (Mean's scale, Pow(x, 1)) */
#define DSL_VF_FLOOR      21
#define DSL_VF_CEIL       22
#define DSL_VF_ROUND      23   /* half to even, like ONNX Round */
#define DSL_VF_SIGN       24
#define DSL_VF_SOFTSIGN   25
#define DSL_VF_POW        26   /* x ** a for a compile-time scalar a (fast paths 2, 3, 0.5, -1) */
#define DSL_VF_COUNT      27

/* Coefficients shared by the scalar and vector variants. */
#define DSL_VM_LOG2E      1.44269504088896341f
#define DSL_VM_LN2_HI     0.693359375f
#define DSL_VM_LN2_LO    -2.12194440e-4f
#define DSL_VM_SQRT1_2    0.70710678118654752f
#define DSL_VM_GELU_K     0.7978845608028654f     /* sqrt(2/pi) */
#define DSL_VM_ERF_SPLIT  0.9f  /* erf: odd polynomial below, exp(-z^2) * rational form above */

/* ------------------------------------------------------------------------------------ */
/* Generic variant: libm, one element at a time. */

static inline float dsl_vm_pow_scalar(float x, float e) {
    if (e == 2.f) return x * x;
    if (e == 1.f) return x;
    if (e == 0.5f) return sqrtf(x);   /* NaN for -inf, like numpy's power(x, 0.5) */
    if (e == -1.f) return 1.f / x;
    return powf(x, e);
}

static inline float dsl_vf_scalar(int fn, float x, float a, float b) {
    switch (fn) {
    case DSL_VF_EXP: return expf(x);
    case DSL_VF_LOG: return logf(x);
    case DSL_VF_SQRT: return sqrtf(x);
    case DSL_VF_NEG: return -x;
    case DSL_VF_ABS: return fabsf(x);
    case DSL_VF_RECIP: return 1.f / x;
    case DSL_VF_ERF: return erff(x);
    case DSL_VF_AFFINE: return a * x + b;
    case DSL_VF_FLOOR: return floorf(x);
    case DSL_VF_CEIL: return ceilf(x);
    case DSL_VF_ROUND: return nearbyintf(x);
    case DSL_VF_SIGN: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);
    case DSL_VF_SOFTSIGN: return x / (1.f + fabsf(x));
    case DSL_VF_POW: return dsl_vm_pow_scalar(x, a);
    default: return dsl_act_scalar(fn, x, a, b);
    }
}

static inline void dsl_vunary_f32__generic(int fn, const float* x, float* y, int64_t n,
                                           float a, float b) {
    int64_t k;
    switch (fn) {
    case DSL_ACT_NONE:
        if (x != y) memmove(y, x, (size_t)n * sizeof(float));
        return;
    /* the cheap ones get their own loop so the compiler vectorises them (SSE2) */
    case DSL_ACT_RELU: for (k = 0; k < n; ++k) y[k] = x[k] < 0.f ? 0.f : x[k]; return;
    case DSL_VF_NEG: for (k = 0; k < n; ++k) y[k] = -x[k]; return;
    case DSL_VF_ABS: for (k = 0; k < n; ++k) y[k] = fabsf(x[k]); return;
    case DSL_VF_AFFINE: for (k = 0; k < n; ++k) y[k] = a * x[k] + b; return;
    default: for (k = 0; k < n; ++k) y[k] = dsl_vf_scalar(fn, x[k], a, b); return;
    }
}

/* ------------------------------------------------------------------------------------ */
/* x86 vector forms: dsl_vmath_impl.h over the primitives of each form (dsl_simd_form.h). */
#include "dsl_simd.h"
#ifdef DSL_SIMD_X86
#define DSL_VMATH_X86 1
#endif
#define DSL_SIMD_TEMPLATE "dsl_vmath_impl.h"
#include "dsl_simd_forms.h"

/* Dispatch by kernel form (dsl_form(level, cap) of dsl_cpu.h: the caller has checked the
 * CPU can run it). x and y may be the same buffer (in-place), never partially overlapping. */
static inline void dsl_vunary_f32(int form, int fn, const float* x, float* y, int64_t n,
                                  float a, float b) {
    if (n <= 0) return;
#ifdef DSL_VMATH_X86
    switch (form) {
    case DSL_FORM_AVX2: dsl_vunary_f32__avx2(fn, x, y, n, a, b); return;
    case DSL_FORM_AVX512: dsl_vunary_f32__avx512(fn, x, y, n, a, b); return;
    case DSL_FORM_AVX512_ON_AVX2: dsl_vunary_f32__avx512_on_avx2(fn, x, y, n, a, b); return;
    default: break;
    }
#else
    (void)form;
#endif
    dsl_vunary_f32__generic(fn, x, y, n, a, b);
}

/* Fused activation over a row, in place (GEMM / conv epilogues), in the given form. */
static inline void dsl_act_row(int form, int act, float* x, int64_t n, float a, float b) {
    if (act == DSL_ACT_NONE) return;
    dsl_vunary_f32(form, act, x, x, n, a, b);
}
#endif
