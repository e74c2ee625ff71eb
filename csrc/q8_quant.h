/* QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear row kernels (family 7,
 * kernels/quant.pyx), in three forms: generic C, AVX2 (8 lanes) and AVX-512 (16 lanes,
 * masked tails). Which one runs is dsl_form_autovec(level, cap) (the KV_QUANT variant).
 *
 * ONNX semantics, computed identically in every form:
 *   quantize   q = saturate(rint(x / scale) + zp)   (a true division, as onnxruntime's MLAS
 *              and onnx.reference do; rint = round half to even, the default MXCSR mode);
 *              the sum is clamped in float before the conversion, so +-inf and huge values
 *              saturate (a float -> int32 conversion out of range would give INT_MIN);
 *              NaN becomes the upper bound in every form (x86 min/max return the second
 *              operand, as fminf does here).
 *   dequantize y = (float)(q - zp) * scale           (integer subtraction, one rounding)
 * Rows are contiguous; per-axis scales are a row per (outer, channel) in the driver.
 */
#ifndef DSL_Q8_QUANT_H
#define DSL_Q8_QUANT_H
#include <math.h>
#include <stdint.h>
#include "dsl_cpu.h"
#include "dsl_simd.h"

typedef void (*q8_quant_row_fn)(const float* x, void* y, int64_t n, float scale, int32_t zp,
                                int out_signed);
typedef void (*q8_dequant_row_fn)(const void* x, int in_dtype, float* y, int64_t n,
                                  float scale, int32_t zp);
typedef void (*q8_minmax_fn)(const float* x, int64_t n, float* mn, float* mx);

/* the clamp bounds of a quantized type (zp folded in by the caller) */
static inline void q8_bounds(int is_signed, float* lo, float* hi) {
    *lo = is_signed ? -128.0f : 0.0f;
    *hi = is_signed ? 127.0f : 255.0f;
}

/* ---- generic C (the reference form) --------------------------------------------------- */
static inline int32_t q8_quant1(float x, float scale, float zpf, float lo, float hi) {
    float v = rintf(x / scale) + zpf;
    v = fminf(v, hi);   /* fminf(NaN, hi) = hi, as _mm*_min_ps(NaN, hi) */
    v = fmaxf(v, lo);
    return (int32_t)v;
}

static void q8_quant_row__generic(const float* x, void* y, int64_t n, float scale, int32_t zp,
                                  int out_signed) {
    float lo, hi;
    const float zpf = (float)zp;
    q8_bounds(out_signed, &lo, &hi);
    if (out_signed) {
        int8_t* o = (int8_t*)y;
        for (int64_t i = 0; i < n; ++i) o[i] = (int8_t)q8_quant1(x[i], scale, zpf, lo, hi);
    } else {
        uint8_t* o = (uint8_t*)y;
        for (int64_t i = 0; i < n; ++i) o[i] = (uint8_t)q8_quant1(x[i], scale, zpf, lo, hi);
    }
}

static inline int32_t q8_load_int(const void* x, int dt, int64_t i) {
    switch (dt) {
    case DSL_U8: return ((const uint8_t*)x)[i];
    case DSL_I8: return ((const int8_t*)x)[i];
    default: return ((const int32_t*)x)[i];
    }
}

static void q8_dequant_row__generic(const void* x, int dt, float* y, int64_t n, float scale,
                                    int32_t zp) {
    for (int64_t i = 0; i < n; ++i) y[i] = (float)(q8_load_int(x, dt, i) - zp) * scale;
}

static void q8_minmax__generic(const float* x, int64_t n, float* mn, float* mx) {
    float a = *mn, b = *mx;
    for (int64_t i = 0; i < n; ++i) {
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *mn = a;
    *mx = b;
}

#ifdef DSL_SIMD_X86
/* ---- AVX2 ----------------------------------------------------------------------------- */
#define Q8_AVX2 static __attribute__((target(DSL_TARGET_AVX2)))

Q8_AVX2 __m256i q8_quant8__avx2(const float* x, __m256 vs, __m256 vzp, __m256 vlo, __m256 vhi) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x), vs);
    v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_add_ps(v, vzp);
    v = _mm256_max_ps(_mm256_min_ps(v, vhi), vlo);
    return _mm256_cvtps_epi32(v);
}

Q8_AVX2 void q8_quant_row__avx2(const float* x, void* y, int64_t n, float scale, int32_t zp,
                                int out_signed) {
    float lo, hi;
    q8_bounds(out_signed, &lo, &hi);
    const __m256 vs = _mm256_set1_ps(scale), vzp = _mm256_set1_ps((float)zp);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    uint8_t* o = (uint8_t*)y;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i q0 = q8_quant8__avx2(x + i, vs, vzp, vlo, vhi);
        __m256i q1 = q8_quant8__avx2(x + i + 8, vs, vzp, vlo, vhi);
        __m256i q2 = q8_quant8__avx2(x + i + 16, vs, vzp, vlo, vhi);
        __m256i q3 = q8_quant8__avx2(x + i + 24, vs, vzp, vlo, vhi);
        /* values are in range already: the saturating packs only narrow */
        __m256i w01 = _mm256_packs_epi32(q0, q1), w23 = _mm256_packs_epi32(q2, q3);
        __m256i b = out_signed ? _mm256_packs_epi16(w01, w23) : _mm256_packus_epi16(w01, w23);
        _mm256_storeu_si256((__m256i*)(o + i), _mm256_permutevar8x32_epi32(b, perm));
    }
    if (i < n) q8_quant_row__generic(x + i, o + i, n - i, scale, zp, out_signed);
}

Q8_AVX2 void q8_dequant_row__avx2(const void* x, int dt, float* y, int64_t n, float scale,
                                  int32_t zp) {
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256i vzp = _mm256_set1_epi32(zp);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i q;
        if (dt == DSL_U8)
            q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)((const uint8_t*)x + i)));
        else if (dt == DSL_I8)
            q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)((const int8_t*)x + i)));
        else
            q = _mm256_loadu_si256((const __m256i*)((const int32_t*)x + i));
        q = _mm256_sub_epi32(q, vzp);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), vs));
    }
    for (; i < n; ++i) y[i] = (float)(q8_load_int(x, dt, i) - zp) * scale;
}

Q8_AVX2 void q8_minmax__avx2(const float* x, int64_t n, float* mn, float* mx) {
    __m256 a = _mm256_set1_ps(*mn), b = _mm256_set1_ps(*mx);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        a = _mm256_min_ps(v, a);   /* NaN lanes keep the running value, as the generic form */
        b = _mm256_max_ps(v, b);
    }
    float ra = dsl_hmin8(a), rb = dsl_hmax8(b);
    q8_minmax__generic(x + i, n - i, &ra, &rb);
    *mn = ra;
    *mx = rb;
}

/* ---- AVX-512 -------------------------------------------------------------------------- */
#define Q8_AVX512 static __attribute__((target(DSL_TARGET_AVX512)))

Q8_AVX512 void q8_quant_row__avx512(const float* x, void* y, int64_t n, float scale, int32_t zp,
                                    int out_signed) {
    float lo, hi;
    q8_bounds(out_signed, &lo, &hi);
    const __m512 vs = _mm512_set1_ps(scale), vzp = _mm512_set1_ps((float)zp);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    uint8_t* o = (uint8_t*)y;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_add_ps(v, vzp);
        v = _mm512_max_ps(_mm512_min_ps(v, vhi), vlo);
        /* in range: the truncating narrowing is exact for both signs */
        _mm512_mask_cvtepi32_storeu_epi8(o + i, m, _mm512_cvtps_epi32(v));
    }
}

Q8_AVX512 void q8_dequant_row__avx512(const void* x, int dt, float* y, int64_t n, float scale,
                                      int32_t zp) {
    const __m512 vs = _mm512_set1_ps(scale);
    const __m512i vzp = _mm512_set1_epi32(zp);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512i q;
        if (dt == DSL_U8)
            q = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, (const uint8_t*)x + i));
        else if (dt == DSL_I8)
            q = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, (const int8_t*)x + i));
        else
            q = _mm512_maskz_loadu_epi32(m, (const int32_t*)x + i);
        q = _mm512_sub_epi32(q, vzp);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(q), vs));
    }
}

Q8_AVX512 void q8_minmax__avx512(const float* x, int64_t n, float* mn, float* mx) {
    __m512 a = _mm512_set1_ps(*mn), b = _mm512_set1_ps(*mx);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        a = _mm512_min_ps(v, a);
        b = _mm512_max_ps(v, b);
    }
    float ra = _mm512_reduce_min_ps(a), rb = _mm512_reduce_max_ps(b);
    q8_minmax__generic(x + i, n - i, &ra, &rb);
    *mn = ra;
    *mx = rb;
}

static inline q8_quant_row_fn q8_quant_row_select(int form) {
    return form == DSL_FORM_AVX512 ? q8_quant_row__avx512
         : form == DSL_FORM_AVX2 ? q8_quant_row__avx2 : q8_quant_row__generic;
}
static inline q8_dequant_row_fn q8_dequant_row_select(int form) {
    return form == DSL_FORM_AVX512 ? q8_dequant_row__avx512
         : form == DSL_FORM_AVX2 ? q8_dequant_row__avx2 : q8_dequant_row__generic;
}
static inline q8_minmax_fn q8_minmax_select(int form) {
    return form == DSL_FORM_AVX512 ? q8_minmax__avx512
         : form == DSL_FORM_AVX2 ? q8_minmax__avx2 : q8_minmax__generic;
}
#else
static inline q8_quant_row_fn q8_quant_row_select(int form) { (void)form; return q8_quant_row__generic; }
static inline q8_dequant_row_fn q8_dequant_row_select(int form) { (void)form; return q8_dequant_row__generic; }
static inline q8_minmax_fn q8_minmax_select(int form) { (void)form; return q8_minmax__generic; }
#endif

/* DynamicQuantizeLinear's parameters from the data's range, as onnxruntime computes them
 * (GetQuantizationParameter): the range always holds 0; an all-zero tensor gets scale 1
 * (onnx.reference would divide by zero). */
static inline void q8_dynamic_params(float mn, float mx, float* scale, int32_t* zp) {
    mn = mn < 0.0f ? mn : 0.0f;
    mx = mx > 0.0f ? mx : 0.0f;
    const float s = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float z = 0.0f - mn / s;
    z = z < 0.0f ? 0.0f : (z > 255.0f ? 255.0f : z);
    *scale = s;
    *zp = (int32_t)rintf(z);
}
/* ---- QLinearAdd: y = saturate(rint(relu?((a - za) sa + (b - zb) sb) / sy) + zy) ---------
 * The float arithmetic of DequantizeLinear, Add, [Relu,] QuantizeLinear run one after
 * another (each product rounded to float32, then the sum, then the true division), so the
 * fused step gives exactly what the unfused ops give. One type for a, b and y. */
typedef void (*q8_qadd_fn)(const void* a, const void* b, void* y, int64_t n, const float* prm,
                           int is_signed, int relu);

#define Q8_QADD_LOOP(T)                                                                       \
    {                                                                                         \
        const T* pa = (const T*)a;                                                            \
        const T* pb = (const T*)b;                                                            \
        T* py = (T*)y;                                                                        \
        for (int64_t i = 0; i < n; ++i) {                                                     \
            const float fa = (float)((int32_t)pa[i] - za) * sa;                               \
            const float fb = (float)((int32_t)pb[i] - zb) * sb;                               \
            float f = fa + fb;                                                                \
            if (relu) f = f > 0.0f ? f : 0.0f;                                                \
            float v = rintf(f / sy) + zyf;                                                    \
            v = v < hi ? v : hi;                                                              \
            v = v > lo ? v : lo;                                                              \
            py[i] = (T)(int32_t)v;                                                            \
        }                                                                                     \
    }
#define Q8_QADD_BODY                                                                          \
    {                                                                                         \
        const float sa = prm[0], sb = prm[2], sy = prm[4], zyf = prm[5];                      \
        const int32_t za = (int32_t)prm[1], zb = (int32_t)prm[3];                             \
        float lo, hi;                                                                         \
        q8_bounds(is_signed, &lo, &hi);                                                       \
        if (is_signed) Q8_QADD_LOOP(int8_t) else Q8_QADD_LOOP(uint8_t)                        \
    }

/* no fused multiply-add: the unfused ops round the products before the sum */
#define Q8_NO_FMA __attribute__((optimize("fp-contract=off")))
static Q8_NO_FMA void q8_qadd__generic(const void* a, const void* b, void* y, int64_t n, const float* prm,
                             int is_signed, int relu) Q8_QADD_BODY
#ifdef DSL_SIMD_X86
/* The vector forms: rint(f / sy) without a division per element, as EWCHAIN's QNT: q = f *
 * RN(1 / sy) is within |q| 2^-23 (<= 2^-14 for |q| <= 512) of f / sy, so rint(q) is
 * rint(f / sy) unless f / sy lies within 2^-12 of a half-integer; such vectors (and NaN)
 * take the true division. Past |q| = 512 every result saturates. The scalar tail runs
 * the same test per element. Exact: tests/ops/test_quant.py near-ties test. */
#define Q8_QADD_TIE_BAND 0.000244140625f
#define Q8_QADD_PARAMS                                                                        \
    const float sa = prm[0], sb = prm[2], sy = prm[4], zyf = prm[5];                          \
    const int32_t za = (int32_t)prm[1], zb = (int32_t)prm[3];                                 \
    float lo, hi;                                                                             \
    q8_bounds(is_signed, &lo, &hi);                                                           \
    const int fast = fabsf(sy) > 1e-30f && fabsf(sy) < 1e30f;                                 \
    const float rs = 1.0f / sy;
/* one element, the same arithmetic (the tail of the vector forms) */
static inline Q8_NO_FMA __attribute__((always_inline)) int32_t
q8_qadd1(int32_t ia, int32_t ib, float sa, float sb, int32_t za, int32_t zb, float sy, float rs,
         float zyf, float lo, float hi, int relu, int fast) {
    const float fa = (float)(ia - za) * sa;
    const float fb = (float)(ib - zb) * sb;
    float f = fa + fb;
    if (relu) f = f > 0.0f ? f : 0.0f;
    const float q = f * rs, r = rintf(q);
    float v = fast && (fabsf(fabsf(q - r) - 0.5f) >= Q8_QADD_TIE_BAND || fabsf(q) > 512.f)
                  ? r : rintf(f / sy);
    v += zyf;
    v = v < hi ? v : hi;
    v = v > lo ? v : lo;
    return (int32_t)v;
}
#define Q8_QADD_TAIL(i0)                                                                      \
    for (int64_t t_ = (i0); t_ < n; ++t_) {                                                   \
        const int32_t ia = is_signed ? ((const int8_t*)a)[t_] : ((const uint8_t*)a)[t_];      \
        const int32_t ib = is_signed ? ((const int8_t*)b)[t_] : ((const uint8_t*)b)[t_];      \
        const int32_t v = q8_qadd1(ia, ib, sa, sb, za, zb, sy, rs, zyf, lo, hi, relu, fast);  \
        if (is_signed) ((int8_t*)y)[t_] = (int8_t)v; else ((uint8_t*)y)[t_] = (uint8_t)v;     \
    }

static Q8_NO_FMA __attribute__((target(DSL_TARGET_AVX2)))
void q8_qadd__avx2(const void* a, const void* b, void* y, int64_t n, const float* prm,
                   int is_signed, int relu) {
    Q8_QADD_PARAMS
    const __m256 vsa = _mm256_set1_ps(sa), vsb = _mm256_set1_ps(sb), vsy = _mm256_set1_ps(sy),
                 vrs = _mm256_set1_ps(rs), vz = _mm256_set1_ps(zyf), vlo = _mm256_set1_ps(lo),
                 vhi = _mm256_set1_ps(hi), vhalf = _mm256_set1_ps(0.5f),
                 vband = _mm256_set1_ps(Q8_QADD_TIE_BAND), vbig = _mm256_set1_ps(512.f),
                 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    const __m256i vza = _mm256_set1_epi32(za), vzb = _mm256_set1_epi32(zb);
    const uint8_t* pa = (const uint8_t*)a;
    const uint8_t* pb = (const uint8_t*)b;
    uint8_t* py = (uint8_t*)y;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i ra = _mm_loadl_epi64((const __m128i*)(pa + i));
        const __m128i rb = _mm_loadl_epi64((const __m128i*)(pb + i));
        const __m256i ia = is_signed ? _mm256_cvtepi8_epi32(ra) : _mm256_cvtepu8_epi32(ra);
        const __m256i ib = is_signed ? _mm256_cvtepi8_epi32(rb) : _mm256_cvtepu8_epi32(rb);
        const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ia, vza)), vsa);
        const __m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(ib, vzb)), vsb);
        __m256 f = _mm256_add_ps(fa, fb);
        if (relu) f = _mm256_max_ps(f, zero);
        __m256 v;
        if (fast) {
            const __m256 q = _mm256_mul_ps(f, vrs);
            v = _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m256 t = _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_andnot_ps(sign, _mm256_sub_ps(q, v)), vhalf));
            const __m256 ok = _mm256_or_ps(_mm256_cmp_ps(t, vband, _CMP_GE_OQ),
                                           _mm256_cmp_ps(_mm256_andnot_ps(sign, q), vbig, _CMP_GT_OQ));
            if (_mm256_movemask_ps(ok) != 0xFF)
                v = _mm256_round_ps(_mm256_div_ps(f, vsy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            v = _mm256_round_ps(_mm256_div_ps(f, vsy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        }
        v = _mm256_max_ps(_mm256_min_ps(_mm256_add_ps(v, vz), vhi), vlo);
        const __m256i qi = _mm256_cvtps_epi32(v);
        const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(qi), _mm256_extracti128_si256(qi, 1));
        const __m128i o = is_signed ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
        _mm_storel_epi64((__m128i*)(py + i), o);
    }
    Q8_QADD_TAIL(i)
}

static Q8_NO_FMA __attribute__((target(DSL_TARGET_AVX512)))
void q8_qadd__avx512(const void* a, const void* b, void* y, int64_t n, const float* prm,
                     int is_signed, int relu) {
    Q8_QADD_PARAMS
    const __m512 vsa = _mm512_set1_ps(sa), vsb = _mm512_set1_ps(sb), vsy = _mm512_set1_ps(sy),
                 vrs = _mm512_set1_ps(rs), vz = _mm512_set1_ps(zyf), vlo = _mm512_set1_ps(lo),
                 vhi = _mm512_set1_ps(hi), vhalf = _mm512_set1_ps(0.5f),
                 vband = _mm512_set1_ps(Q8_QADD_TIE_BAND), vbig = _mm512_set1_ps(512.f),
                 zero = _mm512_setzero_ps();
    const __m512i vza = _mm512_set1_epi32(za), vzb = _mm512_set1_epi32(zb);
    const uint8_t* pa = (const uint8_t*)a;
    const uint8_t* pb = (const uint8_t*)b;
    uint8_t* py = (uint8_t*)y;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m128i ra = _mm_loadu_si128((const __m128i*)(pa + i));
        const __m128i rb = _mm_loadu_si128((const __m128i*)(pb + i));
        const __m512i ia = is_signed ? _mm512_cvtepi8_epi32(ra) : _mm512_cvtepu8_epi32(ra);
        const __m512i ib = is_signed ? _mm512_cvtepi8_epi32(rb) : _mm512_cvtepu8_epi32(rb);
        const __m512 fa = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ia, vza)), vsa);
        const __m512 fb = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(ib, vzb)), vsb);
        __m512 f = _mm512_add_ps(fa, fb);
        if (relu) f = _mm512_max_ps(f, zero);
        __m512 v;
        if (fast) {
            const __m512 q = _mm512_mul_ps(f, vrs);
            v = _mm512_roundscale_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m512 t = _mm512_abs_ps(_mm512_sub_ps(_mm512_abs_ps(_mm512_sub_ps(q, v)), vhalf));
            const __mmask16 ok = _mm512_cmp_ps_mask(t, vband, _CMP_GE_OQ) |
                                 _mm512_cmp_ps_mask(_mm512_abs_ps(q), vbig, _CMP_GT_OQ);
            if (ok != 0xFFFF)
                v = _mm512_roundscale_ps(_mm512_div_ps(f, vsy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else {
            v = _mm512_roundscale_ps(_mm512_div_ps(f, vsy), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        }
        v = _mm512_max_ps(_mm512_min_ps(_mm512_add_ps(v, vz), vhi), vlo);
        const __m512i qi = _mm512_cvtps_epi32(v);
        if (is_signed) _mm_storeu_si128((__m128i*)(py + i), _mm512_cvtsepi32_epi8(qi));
        else _mm_storeu_si128((__m128i*)(py + i), _mm512_cvtusepi32_epi8(qi));
    }
    Q8_QADD_TAIL(i)
}
#endif

static inline q8_qadd_fn q8_qadd_select(int form) {
#ifdef DSL_SIMD_X86
    if (form == DSL_FORM_AVX512) return q8_qadd__avx512;
    if (form == DSL_FORM_AVX2) return q8_qadd__avx2;
#endif
    (void)form;
    return q8_qadd__generic;
}
#endif
