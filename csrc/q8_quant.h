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
static Q8_NO_FMA __attribute__((target(DSL_TARGET_AVX2)))
void q8_qadd__avx2(const void* a, const void* b, void* y, int64_t n, const float* prm,
                   int is_signed, int relu) Q8_QADD_BODY
static Q8_NO_FMA __attribute__((target(DSL_TARGET_AVX512)))
void q8_qadd__avx512(const void* a, const void* b, void* y, int64_t n, const float* prm,
                     int is_signed, int relu) Q8_QADD_BODY
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
