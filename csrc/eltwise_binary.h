/* Inner loops of the broadcasting binary ops (eltwise family, sub-op BINARY).
 *
 * A loop computes n outputs of one row of the merged [outer, inner] iteration space. Each
 * operand is either a contiguous run (v) or one element reused for the whole row (s), so
 * every op has three loops: vv, vs, sv. They are plain C written for the auto-vectoriser;
 * the float32 ones are instantiated three times (no target = SSE2, AVX2+FMA, AVX-512) with
 * a target attribute, the others once. dsl_binary_loop() picks one.
 *
 * Semantics follow numpy / the ONNX reference: Max/Min propagate NaN; integer arithmetic
 * wraps; integer Div truncates toward zero (x / 0 gives 0 and INT_MIN / -1 wraps, instead of
 * trapping), and so do Mod / Fmod (x mod 0 gives 0); integer Pow with a negative exponent
 * gives 0 (or +-1 for a base of +-1); shifts by the type's width or more give 0 (numpy's
 * left_shift / right_shift; BitShift is unsigned only).
 * Comparisons and logical ops write bool (one byte, 0 or 1).
 *
 * Every integer width (8 to 64 bits, signed and unsigned) has the integer loops. float16
 * and bfloat16 have no loops of their own: eltwise.h widens a chunk of operands to float32,
 * runs the float32 loop and rounds the results back (exactly numpy's / ml_dtypes' float16
 * and bfloat16 arithmetic: each op is one float32 op, then one rounding).
 */
#ifndef ELTWISE_BINARY_H
#define ELTWISE_BINARY_H
#include <math.h>
#include <stdint.h>
#include "dsl_plan.h"
#include "dsl_cpu.h"
#include "dsl_vmath.h"

/* binary function codes (i[0] of a BINARY step); mirrored by ops/elementwise.py */
#define DSL_BIN_ADD    1
#define DSL_BIN_SUB    2
#define DSL_BIN_MUL    3
#define DSL_BIN_DIV    4
#define DSL_BIN_POW    5
#define DSL_BIN_MAX    6
#define DSL_BIN_MIN    7
#define DSL_BIN_PRELU  8   /* a < 0 ? a * slope : a */
#define DSL_BIN_MOD    9   /* remainder with the divisor's sign (numpy mod, ONNX fmod=0) */
#define DSL_BIN_FMOD  10   /* truncated remainder (C fmod / %, ONNX fmod=1) */
#define DSL_BIN_EQ    20
#define DSL_BIN_LT    21
#define DSL_BIN_GT    22
#define DSL_BIN_LE    23
#define DSL_BIN_GE    24
#define DSL_BIN_AND   30
#define DSL_BIN_OR    31
#define DSL_BIN_XOR   32
#define DSL_BIN_BITAND 40   /* integer bitwise ops */
#define DSL_BIN_BITOR  41
#define DSL_BIN_BITXOR 42
#define DSL_BIN_SHL    43   /* unsigned only */
#define DSL_BIN_SHR    44

#define DSL_BIN_VV 0
#define DSL_BIN_VS 1
#define DSL_BIN_SV 2

typedef void (*dsl_bin_loop)(const char* a, const char* b, char* y, int64_t n);

/* comparisons and logical ops write bool */
static inline int dsl_bin_writes_bool(int fn) { return fn >= DSL_BIN_EQ && fn <= DSL_BIN_XOR; }

/* One op -> its vv, vs and sv loops. x0, x1 are the operands (type TA), EXPR the result. */
#define DSL_BIN_LOOPS(T, NAME, SFX, TARGET, TA, TY, EXPR)                                   \
    static TARGET void T##_##NAME##_vv##SFX(const char* pa, const char* pb, char* py,       \
                                            int64_t n) {                                    \
        const TA* a = (const TA*)pa; const TA* b = (const TA*)pb; TY* y = (TY*)py;          \
        for (int64_t k = 0; k < n; ++k) { TA x0 = a[k], x1 = b[k]; y[k] = (TY)(EXPR); }     \
    }                                                                                       \
    static TARGET void T##_##NAME##_vs##SFX(const char* pa, const char* pb, char* py,       \
                                            int64_t n) {                                    \
        const TA* a = (const TA*)pa; const TA x1 = *(const TA*)pb; TY* y = (TY*)py;         \
        for (int64_t k = 0; k < n; ++k) { TA x0 = a[k]; y[k] = (TY)(EXPR); }                \
    }                                                                                       \
    static TARGET void T##_##NAME##_sv##SFX(const char* pa, const char* pb, char* py,       \
                                            int64_t n) {                                    \
        const TA x0 = *(const TA*)pa; const TA* b = (const TA*)pb; TY* y = (TY*)py;         \
        for (int64_t k = 0; k < n; ++k) { TA x1 = b[k]; y[k] = (TY)(EXPR); }                \
    }

#define DSL_BIN_CASE(T, NAME, CODE, SFX)                                                    \
    case CODE: return v == DSL_BIN_VV ? T##_##NAME##_vv##SFX                                \
                    : (v == DSL_BIN_VS ? T##_##NAME##_vs##SFX : T##_##NAME##_sv##SFX);

/* numpy's mod: fmod, moved to the divisor's side when the signs differ */
static inline float dsl_modf(float a, float b) {
    float r = fmodf(a, b);
    if (r != 0.f) { if ((r < 0.f) != (b < 0.f)) r += b; }
    else r = copysignf(0.f, b);
    return r;
}
static inline double dsl_mod(double a, double b) {
    double r = fmod(a, b);
    if (r != 0.0) { if ((r < 0.0) != (b < 0.0)) r += b; }
    else r = copysign(0.0, b);
    return r;
}

/* ---- float32: the ops worth an AVX2 / AVX-512 instantiation ---- */
#define DSL_BIN_F32_OPS(X, SFX, TARGET)                                                     \
    X(f32, add, DSL_BIN_ADD, SFX, TARGET, float, float, x0 + x1)                            \
    X(f32, sub, DSL_BIN_SUB, SFX, TARGET, float, float, x0 - x1)                            \
    X(f32, mul, DSL_BIN_MUL, SFX, TARGET, float, float, x0 * x1)                            \
    X(f32, div, DSL_BIN_DIV, SFX, TARGET, float, float, x0 / x1)                            \
    X(f32, max, DSL_BIN_MAX, SFX, TARGET, float, float, (x0 > x1 || x0 != x0) ? x0 : x1)    \
    X(f32, min, DSL_BIN_MIN, SFX, TARGET, float, float, (x0 < x1 || x0 != x0) ? x0 : x1)    \
    X(f32, prelu, DSL_BIN_PRELU, SFX, TARGET, float, float, x0 < 0.f ? x0 * x1 : x0)        \
    X(f32, mod, DSL_BIN_MOD, SFX, TARGET, float, float, dsl_modf(x0, x1))                   \
    X(f32, fmod, DSL_BIN_FMOD, SFX, TARGET, float, float, fmodf(x0, x1))                    \
    X(f32, eq, DSL_BIN_EQ, SFX, TARGET, float, uint8_t, x0 == x1)                           \
    X(f32, lt, DSL_BIN_LT, SFX, TARGET, float, uint8_t, x0 < x1)                            \
    X(f32, gt, DSL_BIN_GT, SFX, TARGET, float, uint8_t, x0 > x1)                            \
    X(f32, le, DSL_BIN_LE, SFX, TARGET, float, uint8_t, x0 <= x1)                           \
    X(f32, ge, DSL_BIN_GE, SFX, TARGET, float, uint8_t, x0 >= x1)

#define DSL_BIN_DEF(T, NAME, CODE, SFX, TARGET, TA, TY, EXPR) DSL_BIN_LOOPS(T, NAME, SFX, TARGET, TA, TY, EXPR)
#define DSL_BIN_SEL(T, NAME, CODE, SFX, TARGET, TA, TY, EXPR) DSL_BIN_CASE(T, NAME, CODE, SFX)

#define DSL_BIN_NO_TARGET
DSL_BIN_F32_OPS(DSL_BIN_DEF, __generic, DSL_BIN_NO_TARGET)
#ifdef DSL_VMATH_X86
#define DSL_BIN_TARGET_AVX2 __attribute__((target(DSL_TARGET_AVX2)))
/* compiler-vectorised loops: ask for 512-bit vectors (GCC's default prefers 256) */
#define DSL_BIN_TARGET_AVX512 __attribute__((target(DSL_TARGET_AVX512 ",prefer-vector-width=512")))
DSL_BIN_F32_OPS(DSL_BIN_DEF, __avx2, DSL_BIN_TARGET_AVX2)
DSL_BIN_F32_OPS(DSL_BIN_DEF, __avx512, DSL_BIN_TARGET_AVX512)
#endif

/* Pow: rows whose exponent is one scalar take the fast paths of dsl_vm_pow_scalar. */
static void f32_pow_vv(const char* pa, const char* pb, char* py, int64_t n) {
    const float* a = (const float*)pa; const float* b = (const float*)pb; float* y = (float*)py;
    for (int64_t k = 0; k < n; ++k) y[k] = powf(a[k], b[k]);
}
static void f32_pow_vs(const char* pa, const char* pb, char* py, int64_t n) {
    const float* a = (const float*)pa; const float e = *(const float*)pb; float* y = (float*)py;
    int64_t k;
    if (e == 2.f) { for (k = 0; k < n; ++k) y[k] = a[k] * a[k]; return; }
    if (e == 3.f) { for (k = 0; k < n; ++k) y[k] = a[k] * a[k] * a[k]; return; }
    if (e == 1.f) { for (k = 0; k < n; ++k) y[k] = a[k]; return; }
    if (e == 0.5f) { for (k = 0; k < n; ++k) y[k] = sqrtf(a[k]); return; }  /* (-inf)^0.5: NaN, like numpy */
    if (e == -1.f) { for (k = 0; k < n; ++k) y[k] = 1.f / a[k]; return; }
    for (k = 0; k < n; ++k) y[k] = powf(a[k], e);
}
static void f32_pow_sv(const char* pa, const char* pb, char* py, int64_t n) {
    const float x = *(const float*)pa; const float* b = (const float*)pb; float* y = (float*)py;
    for (int64_t k = 0; k < n; ++k) y[k] = powf(x, b[k]);
}

/* form: dsl_kv_form(DSL_KV_BINARY, level, cap) */
static inline dsl_bin_loop dsl_binary_loop_f32(int fn, int form, int v) {
    if (fn == DSL_BIN_POW)
        return v == DSL_BIN_VV ? f32_pow_vv : (v == DSL_BIN_VS ? f32_pow_vs : f32_pow_sv);
#ifdef DSL_VMATH_X86
    if (form == DSL_FORM_AVX512) {
        switch (fn) { DSL_BIN_F32_OPS(DSL_BIN_SEL, __avx512, _) default: return 0; }
    }
    if (form != DSL_FORM_GENERIC) {
        switch (fn) { DSL_BIN_F32_OPS(DSL_BIN_SEL, __avx2, _) default: return 0; }
    }
#else
    (void)form;
#endif
    switch (fn) { DSL_BIN_F32_OPS(DSL_BIN_SEL, __generic, _) default: return 0; }
}

/* ---- float64 ---- */
#define DSL_BIN_F64_OPS(X)                                                                  \
    X(f64, add, DSL_BIN_ADD, , , double, double, x0 + x1)                                   \
    X(f64, sub, DSL_BIN_SUB, , , double, double, x0 - x1)                                   \
    X(f64, mul, DSL_BIN_MUL, , , double, double, x0 * x1)                                   \
    X(f64, div, DSL_BIN_DIV, , , double, double, x0 / x1)                                   \
    X(f64, pow, DSL_BIN_POW, , , double, double, pow(x0, x1))                               \
    X(f64, max, DSL_BIN_MAX, , , double, double, (x0 > x1 || x0 != x0) ? x0 : x1)           \
    X(f64, min, DSL_BIN_MIN, , , double, double, (x0 < x1 || x0 != x0) ? x0 : x1)           \
    X(f64, prelu, DSL_BIN_PRELU, , , double, double, x0 < 0.0 ? x0 * x1 : x0)               \
    X(f64, mod, DSL_BIN_MOD, , , double, double, dsl_mod(x0, x1))                           \
    X(f64, fmod, DSL_BIN_FMOD, , , double, double, fmod(x0, x1))                            \
    X(f64, eq, DSL_BIN_EQ, , , double, uint8_t, x0 == x1)                                   \
    X(f64, lt, DSL_BIN_LT, , , double, uint8_t, x0 < x1)                                    \
    X(f64, gt, DSL_BIN_GT, , , double, uint8_t, x0 > x1)                                    \
    X(f64, le, DSL_BIN_LE, , , double, uint8_t, x0 <= x1)                                   \
    X(f64, ge, DSL_BIN_GE, , , double, uint8_t, x0 >= x1)
DSL_BIN_F64_OPS(DSL_BIN_DEF)

/* ---- integers (wrapping arithmetic through the unsigned type) ---- */
static inline uint64_t dsl_ipow_u64(uint64_t b, uint64_t e) {
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}
static inline int64_t dsl_ipow_i64(int64_t base, int64_t e) {
    if (e < 0) return base == 1 ? 1 : (base == -1 ? ((e & 1) ? -1 : 1) : 0);
    return (int64_t)dsl_ipow_u64((uint64_t)base, (uint64_t)e);
}

#define DSL_IMOD(T, TA)                                                                     \
    static inline TA dsl_imod_##T(TA a, TA b) {                                             \
        if (b == 0 || ((TA)-1 < 0 && b == (TA)-1)) return 0;  /* no INT_MIN % -1 trap */  \
        TA r = a % b;                                                                       \
        return (r != 0 && ((r < 0) != (b < 0))) ? (TA)(r + b) : r;                          \
    }
DSL_IMOD(i64, int64_t)
DSL_IMOD(i32, int32_t)
DSL_IMOD(i16, int16_t)
DSL_IMOD(i8, int8_t)
DSL_IMOD(u64, uint64_t)
DSL_IMOD(u32, uint32_t)
DSL_IMOD(u16, uint16_t)
DSL_IMOD(u8, uint8_t)

/* SIGNED: whether TA is signed (guards the -1 divisor and selects the Pow rule) */
#define DSL_IPOW(SIGNED, x0, x1)                                                            \
    ((SIGNED) ? (uint64_t)dsl_ipow_i64((int64_t)(x0), (int64_t)(x1))                       \
              : dsl_ipow_u64((uint64_t)(x0), (uint64_t)(x1)))
#define DSL_BIN_INT_OPS(X, T, TA, UT, SIGNED)                                               \
    X(T, add, DSL_BIN_ADD, , , TA, TA, (UT)x0 + (UT)x1)                                     \
    X(T, sub, DSL_BIN_SUB, , , TA, TA, (UT)x0 - (UT)x1)                                     \
    X(T, mul, DSL_BIN_MUL, , , TA, TA, (UT)x0 * (UT)x1)                                     \
    X(T, div, DSL_BIN_DIV, , , TA, TA,                                                      \
      x1 == 0 ? 0 : ((SIGNED) && x1 == (TA)-1 ? (TA)((UT)0 - (UT)x0) : x0 / x1))           \
    X(T, pow, DSL_BIN_POW, , , TA, TA, DSL_IPOW(SIGNED, x0, x1))                            \
    X(T, max, DSL_BIN_MAX, , , TA, TA, x0 > x1 ? x0 : x1)                                   \
    X(T, min, DSL_BIN_MIN, , , TA, TA, x0 < x1 ? x0 : x1)                                   \
    X(T, prelu, DSL_BIN_PRELU, , , TA, TA, (SIGNED) && x0 < (TA)0 ? (UT)x0 * (UT)x1 : (UT)x0) \
    X(T, mod, DSL_BIN_MOD, , , TA, TA, dsl_imod_##T(x0, x1))                                \
    X(T, fmod, DSL_BIN_FMOD, , , TA, TA, (x1 == 0 || ((SIGNED) && x1 == (TA)-1)) ? 0 : x0 % x1) \
    X(T, eq, DSL_BIN_EQ, , , TA, uint8_t, x0 == x1)                                         \
    X(T, lt, DSL_BIN_LT, , , TA, uint8_t, x0 < x1)                                          \
    X(T, gt, DSL_BIN_GT, , , TA, uint8_t, x0 > x1)                                          \
    X(T, le, DSL_BIN_LE, , , TA, uint8_t, x0 <= x1)                                         \
    X(T, ge, DSL_BIN_GE, , , TA, uint8_t, x0 >= x1)                                         \
    X(T, bitand, DSL_BIN_BITAND, , , TA, TA, x0 & x1)                                       \
    X(T, bitor, DSL_BIN_BITOR, , , TA, TA, x0 | x1)                                         \
    X(T, bitxor, DSL_BIN_BITXOR, , , TA, TA, x0 ^ x1)
/* shifts (unsigned types; BITS: the type's width) */
#define DSL_BIN_SHIFT_OPS(X, T, TA, BITS)                                                   \
    X(T, shl, DSL_BIN_SHL, , , TA, TA, (uint64_t)x1 >= (BITS) ? 0 : (uint64_t)x0 << x1)     \
    X(T, shr, DSL_BIN_SHR, , , TA, TA, (uint64_t)x1 >= (BITS) ? 0 : (uint64_t)x0 >> x1)
#define DSL_BIN_SINT(X, T, TA, UT) DSL_BIN_INT_OPS(X, T, TA, UT, 1)
/* UT: the unsigned type the arithmetic wraps in, at least `unsigned int` (a 16-bit product
 * promoted to int would overflow it) */
#define DSL_BIN_UINT(X, T, TA, UT, BITS) DSL_BIN_INT_OPS(X, T, TA, UT, 0) DSL_BIN_SHIFT_OPS(X, T, TA, BITS)
DSL_BIN_SINT(DSL_BIN_DEF, i64, int64_t, uint64_t)
DSL_BIN_SINT(DSL_BIN_DEF, i32, int32_t, uint32_t)
DSL_BIN_SINT(DSL_BIN_DEF, i16, int16_t, uint32_t)
DSL_BIN_SINT(DSL_BIN_DEF, i8, int8_t, uint8_t)
DSL_BIN_UINT(DSL_BIN_DEF, u64, uint64_t, uint64_t, 64)
DSL_BIN_UINT(DSL_BIN_DEF, u32, uint32_t, uint32_t, 32)
DSL_BIN_UINT(DSL_BIN_DEF, u16, uint16_t, uint32_t, 16)
DSL_BIN_UINT(DSL_BIN_DEF, u8, uint8_t, uint32_t, 8)

/* ---- bool (bytes holding 0 / 1) ---- */
#define DSL_BIN_BOOL_OPS(X)                                                                 \
    X(b8, and, DSL_BIN_AND, , , uint8_t, uint8_t, (x0 != 0) & (x1 != 0))                    \
    X(b8, or, DSL_BIN_OR, , , uint8_t, uint8_t, (x0 != 0) | (x1 != 0))                      \
    X(b8, xor, DSL_BIN_XOR, , , uint8_t, uint8_t, (x0 != 0) ^ (x1 != 0))                    \
    X(b8, eq, DSL_BIN_EQ, , , uint8_t, uint8_t, (x0 != 0) == (x1 != 0))
DSL_BIN_BOOL_OPS(DSL_BIN_DEF)

/* The loop for (dtype of the operands, fn, form, variant), or NULL if unsupported. Only
 * float32 has vector forms; the other dtypes are one portable loop. float16 / bfloat16
 * steps run the float32 loop returned for them (generic form) on widened operands. */
static inline dsl_bin_loop dsl_binary_loop(int dtype, int fn, int form, int v) {
    switch (dtype) {
    case DSL_F32: return dsl_binary_loop_f32(fn, form, v);
    case DSL_F16: case DSL_BF16:
        return (fn == DSL_BIN_AND || fn == DSL_BIN_OR || fn == DSL_BIN_XOR) ? 0
               : dsl_binary_loop_f32(fn, DSL_FORM_GENERIC, v);
    case DSL_F64: switch (fn) { DSL_BIN_F64_OPS(DSL_BIN_SEL) default: return 0; }
    case DSL_I64: switch (fn) { DSL_BIN_SINT(DSL_BIN_SEL, i64, int64_t, uint64_t) default: return 0; }
    case DSL_I32: switch (fn) { DSL_BIN_SINT(DSL_BIN_SEL, i32, int32_t, uint32_t) default: return 0; }
    case DSL_I16: switch (fn) { DSL_BIN_SINT(DSL_BIN_SEL, i16, int16_t, uint32_t) default: return 0; }
    case DSL_I8: switch (fn) { DSL_BIN_SINT(DSL_BIN_SEL, i8, int8_t, uint8_t) default: return 0; }
    case DSL_U64: switch (fn) { DSL_BIN_UINT(DSL_BIN_SEL, u64, uint64_t, uint64_t, 64) default: return 0; }
    case DSL_U32: switch (fn) { DSL_BIN_UINT(DSL_BIN_SEL, u32, uint32_t, uint32_t, 32) default: return 0; }
    case DSL_U16: switch (fn) { DSL_BIN_UINT(DSL_BIN_SEL, u16, uint16_t, uint32_t, 16) default: return 0; }
    case DSL_U8: switch (fn) { DSL_BIN_UINT(DSL_BIN_SEL, u8, uint8_t, uint32_t, 8) default: return 0; }
    case DSL_BOOL: switch (fn) { DSL_BIN_BOOL_OPS(DSL_BIN_SEL) default: return 0; }
    default: return 0;
    }
}
#endif
