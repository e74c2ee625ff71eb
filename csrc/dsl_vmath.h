/* Vector math for float32: exp, log, tanh, sigmoid, erf, GELU and the other unary functions
 * of the eltwise family and the fused activations of GEMM/conv epilogues.
 *
 * One source, three variants:
 *   - generic: plain C on libm (the accuracy reference; also what non-x86 builds use),
 *   - AVX2+FMA and AVX-512: dsl_vmath_impl.h is included twice below, each time with the
 *     vector primitives (VF_*, VI_*, M_*) bound to that ISA's intrinsics and every function
 *     carrying that ISA's target attribute, so no -march flag is needed and one build runs
 *     everywhere. dsl_vunary_f32(form, ...) picks the variant; callers pass the form
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
/* x86 vector variants. */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define DSL_VMATH_X86 1
#include <immintrin.h>

/* ---- AVX2 + FMA: 8 lanes, masks are vectors ---- */
#define VM_TARGET __attribute__((target("avx2,fma")))
#define VM_SFX(name) name##__avx2
#define VM_LEN 8
#define VF __m256
#define VI __m256i
#define VM __m256
#define VF_LOAD(p) _mm256_loadu_ps(p)
#define VF_STORE(p, v) _mm256_storeu_ps((p), (v))
#define VF_LOAD_N(p, n) _mm256_maskload_ps((p), dsl_vm_tailmask__avx2(n))
#define VF_STORE_N(p, v, n) _mm256_maskstore_ps((p), dsl_vm_tailmask__avx2(n), (v))
#define VF_SET1(c) _mm256_set1_ps(c)
#define VF_ADD(a, b) _mm256_add_ps((a), (b))
#define VF_SUB(a, b) _mm256_sub_ps((a), (b))
#define VF_MUL(a, b) _mm256_mul_ps((a), (b))
#define VF_DIV(a, b) _mm256_div_ps((a), (b))
#define VF_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))     /* a*b + c */
#define VF_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))   /* c - a*b */
#define VF_FMS(a, b, c) _mm256_fmsub_ps((a), (b), (c))     /* a*b - c */
#define VF_MIN(a, b) _mm256_min_ps((a), (b))   /* b when either is NaN */
#define VF_MAX(a, b) _mm256_max_ps((a), (b))   /* b when either is NaN */
#define VF_SQRT(a) _mm256_sqrt_ps(a)
#define VF_AND(a, b) _mm256_and_ps((a), (b))
#define VF_OR(a, b) _mm256_or_ps((a), (b))
#define VF_XOR(a, b) _mm256_xor_ps((a), (b))
#define VF_ANDNOT(a, b) _mm256_andnot_ps((a), (b))         /* ~a & b */
#define VF_ROUND(a) _mm256_round_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VF_FLOOR(a) _mm256_round_ps((a), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VF_CEIL(a) _mm256_round_ps((a), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define VF_TO_I(a) _mm256_cvtps_epi32(a)
#define VI_TO_F(a) _mm256_cvtepi32_ps(a)
#define VF_AS_I(a) _mm256_castps_si256(a)
#define VI_AS_F(a) _mm256_castsi256_ps(a)
#define VI_SET1(c) _mm256_set1_epi32(c)
#define VI_ADD(a, b) _mm256_add_epi32((a), (b))
#define VI_SUB(a, b) _mm256_sub_epi32((a), (b))
#define VI_AND(a, b) _mm256_and_si256((a), (b))
#define VI_OR(a, b) _mm256_or_si256((a), (b))
#define VI_SLLI(a, k) _mm256_slli_epi32((a), (k))
#define VI_SRLI(a, k) _mm256_srli_epi32((a), (k))
#define VI_SRAI(a, k) _mm256_srai_epi32((a), (k))
#define M_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define M_LE(a, b) _mm256_cmp_ps((a), (b), _CMP_LE_OQ)
#define M_GT(a, b) _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define M_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define M_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define M_ISNAN(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) _mm256_or_ps((a), (b))
#define M_AND(a, b) _mm256_and_ps((a), (b))
#define M_ALL(m) (_mm256_movemask_ps(m) == 0xff)
#define VF_BLEND(m, a, b) _mm256_blendv_ps((a), (b), (m))  /* m ? b : a */

static inline VM_TARGET __m256i dsl_vm_tailmask__avx2(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#include "dsl_vmath_impl.h"

#undef VM_TARGET
#undef VM_SFX
#undef VM_LEN
#undef VF
#undef VI
#undef VM
#undef VF_LOAD
#undef VF_STORE
#undef VF_LOAD_N
#undef VF_STORE_N
#undef VF_SET1
#undef VF_ADD
#undef VF_SUB
#undef VF_MUL
#undef VF_DIV
#undef VF_FMA
#undef VF_FNMA
#undef VF_FMS
#undef VF_MIN
#undef VF_MAX
#undef VF_SQRT
#undef VF_AND
#undef VF_OR
#undef VF_XOR
#undef VF_ANDNOT
#undef VF_ROUND
#undef VF_FLOOR
#undef VF_CEIL
#undef VF_TO_I
#undef VI_TO_F
#undef VF_AS_I
#undef VI_AS_F
#undef VI_SET1
#undef VI_ADD
#undef VI_SUB
#undef VI_AND
#undef VI_OR
#undef VI_SLLI
#undef VI_SRLI
#undef VI_SRAI
#undef M_LT
#undef M_LE
#undef M_GT
#undef M_GE
#undef M_EQ
#undef M_ISNAN
#undef M_OR
#undef M_AND
#undef M_ALL
#undef VF_BLEND

/* ---- AVX-512 (F/BW/DQ/VL + FMA): 16 lanes, masks are k-registers ---- */
#define VM_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma,avx2")))
#define VM_SFX(name) name##__avx512
#define VM_LEN 16
#define VF __m512
#define VI __m512i
#define VM __mmask16
#define VF_LOAD(p) _mm512_loadu_ps(p)
#define VF_STORE(p, v) _mm512_storeu_ps((p), (v))
#define VF_LOAD_N(p, n) _mm512_maskz_loadu_ps(dsl_vm_tailmask__avx512(n), (p))
#define VF_STORE_N(p, v, n) _mm512_mask_storeu_ps((p), dsl_vm_tailmask__avx512(n), (v))
#define VF_SET1(c) _mm512_set1_ps(c)
#define VF_ADD(a, b) _mm512_add_ps((a), (b))
#define VF_SUB(a, b) _mm512_sub_ps((a), (b))
#define VF_MUL(a, b) _mm512_mul_ps((a), (b))
#define VF_DIV(a, b) _mm512_div_ps((a), (b))
#define VF_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VF_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define VF_FMS(a, b, c) _mm512_fmsub_ps((a), (b), (c))
#define VF_MIN(a, b) _mm512_min_ps((a), (b))   /* same NaN rule as vminps ymm: b */
#define VF_MAX(a, b) _mm512_max_ps((a), (b))
#define VF_SQRT(a) _mm512_sqrt_ps(a)
#define VF_AND(a, b) _mm512_and_ps((a), (b))
#define VF_OR(a, b) _mm512_or_ps((a), (b))
#define VF_XOR(a, b) _mm512_xor_ps((a), (b))
#define VF_ANDNOT(a, b) _mm512_andnot_ps((a), (b))
#define VF_ROUND(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VF_FLOOR(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define VF_CEIL(a) _mm512_roundscale_ps((a), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC)
#define VF_TO_I(a) _mm512_cvtps_epi32(a)
#define VI_TO_F(a) _mm512_cvtepi32_ps(a)
#define VF_AS_I(a) _mm512_castps_si512(a)
#define VI_AS_F(a) _mm512_castsi512_ps(a)
#define VI_SET1(c) _mm512_set1_epi32(c)
#define VI_ADD(a, b) _mm512_add_epi32((a), (b))
#define VI_SUB(a, b) _mm512_sub_epi32((a), (b))
#define VI_AND(a, b) _mm512_and_si512((a), (b))
#define VI_OR(a, b) _mm512_or_si512((a), (b))
#define VI_SLLI(a, k) _mm512_slli_epi32((a), (k))
#define VI_SRLI(a, k) _mm512_srli_epi32((a), (k))
#define VI_SRAI(a, k) _mm512_srai_epi32((a), (k))
#define M_LT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define M_LE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LE_OQ)
#define M_GT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define M_GE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ)
#define M_EQ(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define M_ISNAN(a) _mm512_cmp_ps_mask((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) ((__mmask16)((a) | (b)))
#define M_AND(a, b) ((__mmask16)((a) & (b)))
#define M_ALL(m) ((m) == (__mmask16)0xffff)
#define VF_BLEND(m, a, b) _mm512_mask_blend_ps((m), (a), (b))  /* m ? b : a */

static inline VM_TARGET __mmask16 dsl_vm_tailmask__avx512(int64_t n) {
    return (__mmask16)((1u << (unsigned)n) - 1u);   /* 0 < n < 16 */
}

#include "dsl_vmath_impl.h"

#undef VM_TARGET
#undef VM_SFX
#undef VM_LEN
#undef VF
#undef VI
#undef VM
#undef VF_LOAD
#undef VF_STORE
#undef VF_LOAD_N
#undef VF_STORE_N
#undef VF_SET1
#undef VF_ADD
#undef VF_SUB
#undef VF_MUL
#undef VF_DIV
#undef VF_FMA
#undef VF_FNMA
#undef VF_FMS
#undef VF_MIN
#undef VF_MAX
#undef VF_SQRT
#undef VF_AND
#undef VF_OR
#undef VF_XOR
#undef VF_ANDNOT
#undef VF_ROUND
#undef VF_FLOOR
#undef VF_CEIL
#undef VF_TO_I
#undef VI_TO_F
#undef VF_AS_I
#undef VI_AS_F
#undef VI_SET1
#undef VI_ADD
#undef VI_SUB
#undef VI_AND
#undef VI_OR
#undef VI_SLLI
#undef VI_SRLI
#undef VI_SRAI
#undef M_LT
#undef M_LE
#undef M_GT
#undef M_GE
#undef M_EQ
#undef M_ISNAN
#undef M_OR
#undef M_AND
#undef M_ALL
#undef VF_BLEND
#endif /* x86 */

/* ------------------------------------------------------------------------------------ */
/* Dispatch by kernel form (dsl_form(level, cap) of dsl_cpu.h: the caller has checked the
 * CPU can run it). x and y may be the same buffer (in-place), never partially overlapping. */
static inline void dsl_vunary_f32(int form, int fn, const float* x, float* y, int64_t n,
                                  float a, float b) {
    if (n <= 0) return;
#ifdef DSL_VMATH_X86
    if (form == DSL_FORM_AVX512) { dsl_vunary_f32__avx512(fn, x, y, n, a, b); return; }
    if (form == DSL_FORM_AVX2 || form == DSL_FORM_AVX512_ON_AVX2) {
        dsl_vunary_f32__avx2(fn, x, y, n, a, b);
        return;
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
