/* Cast (ONNX semantics) and the non-float unary loops of the eltwise family.
 *
 * Cast float -> integer truncates toward zero; a NaN or out-of-range value gives what the
 * x86 conversion instruction (and so numpy on x86) gives: the most negative value of the
 * 32/64-bit type, narrowed for 8-bit targets (float -> int8/uint8 goes through int32, like
 * a C cast compiled by GCC). Anything -> bool is x != 0 (NaN is true); bool -> number is
 * 0 / 1. Integer narrowing wraps.
 */
#ifndef ELTWISE_CAST_H
#define ELTWISE_CAST_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_plan.h"
#include "dsl_act.h"

static inline int32_t dsl_f2i32(double x) {
    return (x > -2147483649.0 && x < 2147483648.0) ? (int32_t)x : INT32_MIN;
}
static inline int64_t dsl_f2i64(double x) {
    return (x >= -9223372036854775808.0 && x < 9223372036854775808.0) ? (int64_t)x : INT64_MIN;
}

/* conversion expressions, by destination; v is the source value */
#define DSL_CV_F32(TS, v) ((float)(v))
#define DSL_CV_F64(TS, v) ((double)(v))
#define DSL_CV_BOOL(TS, v) ((uint8_t)((v) != 0))

#define DSL_CAST_LOOP(TS, TD, EXPR)                                                         \
    {                                                                                       \
        const TS* s = (const TS*)src; TD* d = (TD*)dst;                                     \
        for (int64_t k = 0; k < n; ++k) { TS v = s[k]; d[k] = (EXPR); }                     \
        return DSL_OK;                                                                      \
    }

/* one source type: switch on the destination */
#define DSL_CAST_FROM(TS, FLT)                                                              \
    switch (dt) {                                                                           \
    case DSL_F32: DSL_CAST_LOOP(TS, float, DSL_CV_F32(TS, v))                              \
    case DSL_F64: DSL_CAST_LOOP(TS, double, DSL_CV_F64(TS, v))                             \
    case DSL_BOOL: DSL_CAST_LOOP(TS, uint8_t, DSL_CV_BOOL(TS, v))                          \
    case DSL_I64: DSL_CAST_LOOP(TS, int64_t, (FLT) ? dsl_f2i64((double)v) : (int64_t)v)    \
    case DSL_I32: DSL_CAST_LOOP(TS, int32_t, (FLT) ? dsl_f2i32((double)v) : (int32_t)v)    \
    case DSL_I8: DSL_CAST_LOOP(TS, int8_t, (FLT) ? (int8_t)dsl_f2i32((double)v) : (int8_t)v) \
    case DSL_U8: DSL_CAST_LOOP(TS, uint8_t, (FLT) ? (uint8_t)dsl_f2i32((double)v) : (uint8_t)v) \
    default: return DSL_ERR_BAD_PARAM;                                                      \
    }

/* Cast n elements from type st to type dt (DSL_* codes). */
static inline int dsl_cast(int st, int dt, const char* src, char* dst, int64_t n) {
    if (st == dt) {
        if (st == DSL_BOOL) {   /* normalise to 0/1 */
            for (int64_t k = 0; k < n; ++k) dst[k] = src[k] != 0;
        } else {
            int esz = (st == DSL_F64 || st == DSL_I64) ? 8 : (st == DSL_F32 || st == DSL_I32) ? 4 : 1;
            if (dst != src) memmove(dst, src, (size_t)(n * esz));
        }
        return DSL_OK;
    }
    switch (st) {
    case DSL_F32: {
        if (dt == DSL_I32) {   /* the common one: keep it in float so it vectorises */
            const float* s = (const float*)src; int32_t* d = (int32_t*)dst;
            for (int64_t k = 0; k < n; ++k) {
                float v = s[k];
                d[k] = (v > -2147483904.f && v < 2147483648.f) ? (int32_t)v : INT32_MIN;
            }
            return DSL_OK;
        }
        DSL_CAST_FROM(float, 1)
    }
    case DSL_F64: DSL_CAST_FROM(double, 1)
    case DSL_I64: DSL_CAST_FROM(int64_t, 0)
    case DSL_I32: DSL_CAST_FROM(int32_t, 0)
    case DSL_I8: DSL_CAST_FROM(int8_t, 0)
    case DSL_U8: DSL_CAST_FROM(uint8_t, 0)
    case DSL_BOOL: {
        const uint8_t* s = (const uint8_t*)src;
        /* bool -> number: 0 / 1 whatever the stored byte */
        switch (dt) {
        case DSL_F32: { float* d = (float*)dst; for (int64_t k = 0; k < n; ++k) d[k] = s[k] != 0; return DSL_OK; }
        case DSL_F64: { double* d = (double*)dst; for (int64_t k = 0; k < n; ++k) d[k] = s[k] != 0; return DSL_OK; }
        case DSL_I64: { int64_t* d = (int64_t*)dst; for (int64_t k = 0; k < n; ++k) d[k] = s[k] != 0; return DSL_OK; }
        case DSL_I32: { int32_t* d = (int32_t*)dst; for (int64_t k = 0; k < n; ++k) d[k] = s[k] != 0; return DSL_OK; }
        case DSL_I8: case DSL_U8: { for (int64_t k = 0; k < n; ++k) dst[k] = s[k] != 0; return DSL_OK; }
        default: return DSL_ERR_BAD_PARAM;
        }
    }
    default: return DSL_ERR_BAD_PARAM;
    }
}

/* ---- integer / bool unary (sub-ops UNARY_INT and NOT) ---- */
#define DSL_IUN_LOOP(T, UT, fn)                                                             \
    {                                                                                       \
        const T* s = (const T*)src; T* d = (T*)dst;                                         \
        int64_t k;                                                                          \
        switch (fn) {                                                                       \
        case DSL_VF_NEG: for (k = 0; k < n; ++k) d[k] = (T)((UT)0 - (UT)s[k]); return DSL_OK; \
        case DSL_VF_ABS: for (k = 0; k < n; ++k) d[k] = s[k] < 0 ? (T)((UT)0 - (UT)s[k]) : s[k]; return DSL_OK; \
        case DSL_ACT_RELU: for (k = 0; k < n; ++k) d[k] = s[k] < 0 ? 0 : s[k]; return DSL_OK; \
        case DSL_VF_SIGN: for (k = 0; k < n; ++k) d[k] = (T)((s[k] > 0) - (s[k] < 0)); return DSL_OK; \
        default: return DSL_ERR_BAD_PARAM;                                                  \
        }                                                                                   \
    }

static inline int dsl_unary_int(int dtype, int fn, const char* src, char* dst, int64_t n) {
    switch (dtype) {
    case DSL_I64: DSL_IUN_LOOP(int64_t, uint64_t, fn)
    case DSL_I32: DSL_IUN_LOOP(int32_t, uint32_t, fn)
    case DSL_I8: DSL_IUN_LOOP(int8_t, uint8_t, fn)
    default: return DSL_ERR_BAD_PARAM;
    }
}

static inline void dsl_not_bool(const char* src, char* dst, int64_t n) {
    for (int64_t k = 0; k < n; ++k) dst[k] = src[k] == 0;
}

/* ---- float64 unary: libm, for the same function codes as float32 ---- */
static inline double dsl_vf_scalar_f64(int fn, double x, double a, double b) {
    switch (fn) {
    case DSL_ACT_NONE: return x;
    case DSL_ACT_RELU: return x < 0.0 ? 0.0 : x;
    case DSL_ACT_LEAKY_RELU: return x >= 0.0 ? x : a * x;
    case DSL_ACT_CLIP: { double y = x < a ? a : x; return y > b ? b : y; }
    case DSL_ACT_SIGMOID: return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case DSL_ACT_TANH: return tanh(x);
    case DSL_ACT_HARD_SIGMOID: { double y = a * x + b; return y < 0.0 ? 0.0 : (y > 1.0 ? 1.0 : y); }
    case DSL_ACT_HARD_SWISH: { double y = x / 6.0 + 0.5; y = y < 0.0 ? 0.0 : (y > 1.0 ? 1.0 : y); return x * y; }
    case DSL_ACT_GELU_ERF: return 0.5 * x * erfc(-x * 0.70710678118654752440);
    case DSL_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
    case DSL_ACT_ELU: return x >= 0.0 ? x : a * expm1(x);
    case DSL_ACT_SELU: return x > 0.0 ? b * x : b * a * expm1(x);
    case DSL_ACT_SOFTPLUS: return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case DSL_VF_EXP: return exp(x);
    case DSL_VF_LOG: return log(x);
    case DSL_VF_SQRT: return sqrt(x);
    case DSL_VF_NEG: return -x;
    case DSL_VF_ABS: return fabs(x);
    case DSL_VF_RECIP: return 1.0 / x;
    case DSL_VF_ERF: return erf(x);
    case DSL_VF_AFFINE: return a * x + b;
    case DSL_VF_FLOOR: return floor(x);
    case DSL_VF_CEIL: return ceil(x);
    case DSL_VF_ROUND: return nearbyint(x);
    case DSL_VF_SIGN: return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x);
    case DSL_VF_SOFTSIGN: return x / (1.0 + fabs(x));
    case DSL_VF_POW: return pow(x, a);
    default: return NAN;
    }
}

static inline void dsl_unary_f64(int fn, const double* x, double* y, int64_t n, double a, double b) {
    for (int64_t k = 0; k < n; ++k) y[k] = dsl_vf_scalar_f64(fn, x[k], a, b);
}
#endif
