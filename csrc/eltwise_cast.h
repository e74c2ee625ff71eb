/* Cast (ONNX semantics) and the non-float unary loops of the eltwise family.
 *
 * Cast float -> integer truncates toward zero; a NaN or out-of-range value gives what the
 * x86 conversion instructions (and so numpy on x86) give: the most negative value of the
 * 32/64-bit type, narrowed for 8- and 16-bit targets (float -> int8/uint8/int16/uint16 goes
 * through int32, like a C cast compiled by GCC); float -> uint32 / uint64 is GCC's unsigned
 * sequence (x >= 2^(w-1): convert x - 2^(w-1) and flip the top bit). Anything -> bool is
 * x != 0 (NaN is true); bool -> number is 0 / 1. Integer narrowing wraps.
 *
 * Narrow floats (float16, bfloat16, float8: narrow_float.h) convert through float32 (exact
 * for them), except that a double or an integer is rounded to a narrow type directly (one
 * rounding); `sat` is ONNX Cast's saturate, for float8 destinations.
 */
#ifndef ELTWISE_CAST_H
#define ELTWISE_CAST_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_plan.h"
#include "dsl_act.h"
#include "narrow_float.h"

static inline int32_t dsl_f2i32(double x) {
    return (x > -2147483649.0 && x < 2147483648.0) ? (int32_t)x : INT32_MIN;
}
static inline int64_t dsl_f2i64(double x) {
    return (x >= -9223372036854775808.0 && x < 9223372036854775808.0) ? (int64_t)x : INT64_MIN;
}
static inline uint32_t dsl_f2u32(double x) {
    return x >= 2147483648.0 ? (uint32_t)dsl_f2i32(x - 2147483648.0) ^ 0x80000000u
                             : (uint32_t)dsl_f2i32(x);
}
static inline uint64_t dsl_f2u64(double x) {
    return x >= 9223372036854775808.0
               ? (uint64_t)dsl_f2i64(x - 9223372036854775808.0) ^ 0x8000000000000000ull
               : (uint64_t)dsl_f2i64(x);
}

/* conversion expressions, by destination; v is the source value, FLT: the source is a float */
#define DSL_CV_INT(FLT, TD, v) ((FLT) ? (TD)dsl_f2i32((double)(v)) : (TD)(v))

#define DSL_CAST_LOOP(TS, TD, EXPR)                                                         \
    {                                                                                       \
        const TS* s = (const TS*)src; TD* d = (TD*)dst;                                     \
        for (int64_t k = 0; k < n; ++k) { TS v = s[k]; d[k] = (EXPR); }                     \
        return DSL_OK;                                                                      \
    }

/* one source type: switch on the (wide) destination */
#define DSL_CAST_FROM(TS, FLT)                                                              \
    switch (dt) {                                                                           \
    case DSL_F32: DSL_CAST_LOOP(TS, float, (float)v)                                        \
    case DSL_F64: DSL_CAST_LOOP(TS, double, (double)v)                                      \
    case DSL_BOOL: DSL_CAST_LOOP(TS, uint8_t, (uint8_t)(v != 0))                            \
    case DSL_I64: DSL_CAST_LOOP(TS, int64_t, (FLT) ? dsl_f2i64((double)v) : (int64_t)v)     \
    case DSL_U64: DSL_CAST_LOOP(TS, uint64_t, (FLT) ? dsl_f2u64((double)v) : (uint64_t)v)   \
    case DSL_I32: DSL_CAST_LOOP(TS, int32_t, DSL_CV_INT(FLT, int32_t, v))                   \
    case DSL_U32: DSL_CAST_LOOP(TS, uint32_t, (FLT) ? dsl_f2u32((double)v) : (uint32_t)v)   \
    case DSL_I16: DSL_CAST_LOOP(TS, int16_t, DSL_CV_INT(FLT, int16_t, v))                   \
    case DSL_U16: DSL_CAST_LOOP(TS, uint16_t, DSL_CV_INT(FLT, uint16_t, v))                 \
    case DSL_I8: DSL_CAST_LOOP(TS, int8_t, DSL_CV_INT(FLT, int8_t, v))                      \
    case DSL_U8: DSL_CAST_LOOP(TS, uint8_t, DSL_CV_INT(FLT, uint8_t, v))                    \
    default: return DSL_ERR_BAD_PARAM;                                                      \
    }

/* integer source -> narrow float: rounded from the exact integer */
#define DSL_CAST_INT_TO_NARROW(TS, SIGNED)                                                  \
    {                                                                                       \
        const TS* s = (const TS*)src;                                                       \
        for (int64_t k = 0; k < n; ++k) {                                                   \
            const TS v = s[k];                                                              \
            const int neg = (SIGNED) && v < (TS)0;                                          \
            const uint64_t mag = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;             \
            const uint32_t c = dsl_nf_from_int(f, neg, mag, sat);                           \
            if (esz == 2) ((uint16_t*)dst)[k] = (uint16_t)c; else ((uint8_t*)dst)[k] = (uint8_t)c; \
        }                                                                                   \
        return DSL_OK;                                                                      \
    }

/* ml_dtypes' float -> integer rule on a float32 chunk buf[0, m) (v in [LO, HI) after
 * truncation, else 0) */
#define DSL_NF_TO_INT(TD, LO, HI)                                                           \
    for (k = 0; k < m; ++k) {                                                               \
        const double t = trunc((double)buf[k]);                                             \
        ((TD*)d)[k] = (t >= (LO) && t < (HI)) ? (TD)t : (TD)0;                              \
    }                                                                                       \
    break;

static inline int dsl_cast(int st, int dt, const char* src, char* dst, int64_t n, int sat, int form);

/* narrow source or destination (at least one of st, dt is a narrow float, st != dt) */
static inline int dsl_cast_narrow(int st, int dt, const char* src, char* dst, int64_t n, int sat,
                                  int form) {
    float buf[DSL_NF_CHUNK];
    const int ss = dsl_dtype_size(st), ds = dsl_dtype_size(dt);
    int64_t off, k;
    if (dt < DSL_F8E4M3FN || dt > DSL_F8E5M2FNUZ) sat = 0;   /* saturate is for float8 only */
    if (dsl_is_narrow_float(dt)) {
        const dsl_nf_format* f = dsl_nf_format_of(dt);
        const int esz = ds;
        switch (st) {
        case DSL_F32: dsl_nf_store(dt, form, sat, (const float*)src, dst, n); return DSL_OK;
        case DSL_F64: {
            const double* s = (const double*)src;
            for (k = 0; k < n; ++k) {
                const uint32_t c = dsl_nf_from_f64(f, s[k], sat);
                if (esz == 2) ((uint16_t*)dst)[k] = (uint16_t)c; else ((uint8_t*)dst)[k] = (uint8_t)c;
            }
            return DSL_OK;
        }
        case DSL_I64: DSL_CAST_INT_TO_NARROW(int64_t, 1)
        case DSL_I32: DSL_CAST_INT_TO_NARROW(int32_t, 1)
        case DSL_I16: DSL_CAST_INT_TO_NARROW(int16_t, 1)
        case DSL_I8: DSL_CAST_INT_TO_NARROW(int8_t, 1)
        case DSL_U64: DSL_CAST_INT_TO_NARROW(uint64_t, 0)
        case DSL_U32: DSL_CAST_INT_TO_NARROW(uint32_t, 0)
        case DSL_U16: DSL_CAST_INT_TO_NARROW(uint16_t, 0)
        case DSL_U8: DSL_CAST_INT_TO_NARROW(uint8_t, 0)
        case DSL_BOOL: {
            const uint32_t one = dsl_nf_from_int(f, 0, 1, sat);
            for (k = 0; k < n; ++k) {
                const uint32_t c = src[k] ? one : 0u;
                if (esz == 2) ((uint16_t*)dst)[k] = (uint16_t)c; else ((uint8_t*)dst)[k] = (uint8_t)c;
            }
            return DSL_OK;
        }
        default:
            if (!dsl_is_narrow_float(st)) return DSL_ERR_BAD_PARAM;
        }
        /* narrow -> narrow through float32 (exact); NaNs canonical like ml_dtypes */
        for (off = 0; off < n; off += DSL_NF_CHUNK) {
            const int64_t m = n - off < DSL_NF_CHUNK ? n - off : DSL_NF_CHUNK;
            dsl_nf_load(st, form, src + off * ss, buf, m);
            if (dt == DSL_F16)
                for (k = 0; k < m; ++k)
                    if (buf[k] != buf[k]) buf[k] = copysignf(NAN, buf[k]);
            dsl_nf_store(dt, form, sat, buf, dst + off * ds, m);
        }
        return DSL_OK;
    }
    /* narrow source, wide destination */
    if (st == DSL_F16 && dt == DSL_F64) {
        const uint16_t* s = (const uint16_t*)src; double* d = (double*)dst;
        for (k = 0; k < n; ++k) d[k] = dsl_f16_to_f64(s[k]);
        return DSL_OK;
    }
    if (dt == DSL_F32) { dsl_nf_load(st, form, src, (float*)dst, n); return DSL_OK; }
    /* to integers: float16 as numpy (float32's rules, but uint32 through int64); bfloat16
     * and float8 as ml_dtypes (truncate; NaN, inf and out-of-range values give 0) */
    const int ml_rule = st != DSL_F16 && dt != DSL_BOOL && dt != DSL_F64;
    for (off = 0; off < n; off += DSL_NF_CHUNK) {
        const int64_t m = n - off < DSL_NF_CHUNK ? n - off : DSL_NF_CHUNK;
        char* d = dst + off * ds;
        dsl_nf_load(st, form, src + off * ss, buf, m);
        if (ml_rule) {
            switch (dt) {
            case DSL_I64: DSL_NF_TO_INT(int64_t, -9223372036854775808.0, 9223372036854775808.0)
            case DSL_I32: DSL_NF_TO_INT(int32_t, -2147483648.0, 2147483648.0)
            case DSL_I16: DSL_NF_TO_INT(int16_t, -32768.0, 32768.0)
            case DSL_I8: DSL_NF_TO_INT(int8_t, -128.0, 128.0)
            case DSL_U64: DSL_NF_TO_INT(uint64_t, 0.0, 18446744073709551616.0)
            case DSL_U32: DSL_NF_TO_INT(uint32_t, 0.0, 4294967296.0)
            case DSL_U16: DSL_NF_TO_INT(uint16_t, 0.0, 65536.0)
            case DSL_U8: DSL_NF_TO_INT(uint8_t, 0.0, 256.0)
            default: return DSL_ERR_BAD_PARAM;
            }
            continue;
        }
        if (st == DSL_F16 && dt == DSL_U32) {
            for (k = 0; k < m; ++k) ((uint32_t*)d)[k] = (uint32_t)dsl_f2i64((double)buf[k]);
            continue;
        }
        const int rc = dsl_cast(DSL_F32, dt, (const char*)buf, d, m, sat, form);
        if (rc != DSL_OK) return rc;
    }
    return DSL_OK;
}

/* Cast n elements from type st to type dt (DSL_* codes); sat: ONNX saturate (float8
 * destinations); form: dsl_kv_form(DSL_KV_F16CVT, level, cap) for float16 conversions. */
static inline int dsl_cast(int st, int dt, const char* src, char* dst, int64_t n, int sat, int form) {
    if (st == dt) {
        if (st == DSL_BOOL) {   /* normalise to 0/1 */
            for (int64_t k = 0; k < n; ++k) dst[k] = src[k] != 0;
        } else {
            if (dst != src) memmove(dst, src, (size_t)(n * dsl_dtype_size(st)));
        }
        return DSL_OK;
    }
    if (dsl_is_narrow_float(st) || dsl_is_narrow_float(dt))
        return dsl_cast_narrow(st, dt, src, dst, n, sat, form);
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
    case DSL_I16: DSL_CAST_FROM(int16_t, 0)
    case DSL_I8: DSL_CAST_FROM(int8_t, 0)
    case DSL_U64: DSL_CAST_FROM(uint64_t, 0)
    case DSL_U32: DSL_CAST_FROM(uint32_t, 0)
    case DSL_U16: DSL_CAST_FROM(uint16_t, 0)
    case DSL_U8: DSL_CAST_FROM(uint8_t, 0)
    case DSL_BOOL: {
        /* bool -> number: 0 / 1 whatever the stored byte */
        const uint8_t* s8 = (const uint8_t*)src;
        uint8_t tmp[DSL_NF_CHUNK];
        const int ds = dsl_dtype_size(dt);
        for (int64_t off = 0; off < n; off += DSL_NF_CHUNK) {
            const int64_t m = n - off < DSL_NF_CHUNK ? n - off : DSL_NF_CHUNK;
            for (int64_t k = 0; k < m; ++k) tmp[k] = s8[off + k] != 0;
            const int rc = dsl_cast(DSL_U8, dt, (const char*)tmp, dst + off * ds, m, sat, form);
            if (rc != DSL_OK) return rc;
        }
        return DSL_OK;
    }
    default: return DSL_ERR_BAD_PARAM;
    }
}

/* ---- integer / bool unary (sub-ops UNARY_INT and NOT) ---- */
#define DSL_IUN_BITNOT 40   /* ~x: an integer-only unary code (outside the float codes) */
#define DSL_IUN_LOOP(T, UT, fn)                                                             \
    {                                                                                       \
        const T* s = (const T*)src; T* d = (T*)dst;                                         \
        int64_t k;                                                                          \
        switch (fn) {                                                                       \
        case DSL_VF_NEG: for (k = 0; k < n; ++k) d[k] = (T)((UT)0 - (UT)s[k]); return DSL_OK; \
        case DSL_VF_ABS: for (k = 0; k < n; ++k) d[k] = s[k] < (T)0 ? (T)((UT)0 - (UT)s[k]) : s[k]; return DSL_OK; \
        case DSL_ACT_RELU: for (k = 0; k < n; ++k) d[k] = s[k] < (T)0 ? (T)0 : s[k]; return DSL_OK; \
        case DSL_VF_SIGN: for (k = 0; k < n; ++k) d[k] = (T)((s[k] > (T)0) - (s[k] < (T)0)); return DSL_OK; \
        case DSL_IUN_BITNOT: for (k = 0; k < n; ++k) d[k] = (T)~s[k]; return DSL_OK;       \
        default: return DSL_ERR_BAD_PARAM;                                                  \
        }                                                                                   \
    }

static inline int dsl_unary_int_ok(int dtype, int fn) {
    switch (dtype) {
    case DSL_I64: case DSL_I32: case DSL_I16: case DSL_I8:
    case DSL_U64: case DSL_U32: case DSL_U16: case DSL_U8: break;
    default: return 0;
    }
    return fn == DSL_VF_NEG || fn == DSL_VF_ABS || fn == DSL_ACT_RELU || fn == DSL_VF_SIGN ||
           fn == DSL_IUN_BITNOT;
}

static inline int dsl_unary_int(int dtype, int fn, const char* src, char* dst, int64_t n) {
    switch (dtype) {
    case DSL_I64: DSL_IUN_LOOP(int64_t, uint64_t, fn)
    case DSL_I32: DSL_IUN_LOOP(int32_t, uint32_t, fn)
    case DSL_I16: DSL_IUN_LOOP(int16_t, uint32_t, fn)
    case DSL_I8: DSL_IUN_LOOP(int8_t, uint32_t, fn)
    case DSL_U64: DSL_IUN_LOOP(uint64_t, uint64_t, fn)
    case DSL_U32: DSL_IUN_LOOP(uint32_t, uint32_t, fn)
    case DSL_U16: DSL_IUN_LOOP(uint16_t, uint32_t, fn)
    case DSL_U8: DSL_IUN_LOOP(uint8_t, uint32_t, fn)
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
