/* Narrow floats: float16 (IEEE half), bfloat16 and the four float8 formats of ONNX
 * (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ). Element codes, conversions to and from float32 /
 * float64 / integers, and the chunked load / store loops the eltwise family computes
 * through (narrow operands are widened to float32, computed, and rounded back).
 *
 * Rounding is round-to-nearest-even everywhere, from the exact source value (an int64 or
 * a double is rounded once, never through float32), with subnormals kept. Specials follow
 * the oracles the tests use:
 *   float16   numpy (npy_half): overflow -> inf; a NaN keeps its sign and the top payload
 *             bits (a payload that would vanish becomes 1).
 *   bfloat16  ml_dtypes / onnx.reference (>= 1.15): overflow -> inf; NaN -> 0x7fc0 | sign.
 *   float8    ml_dtypes, with ONNX Cast's `saturate` (onnx.numpy_helper.saturate_cast:
 *             clip to the finite range, then round): saturate maps +-inf and overflow to
 *             +-max; without it overflow is NaN (E4M3FN, both FNUZ) or inf (E5M2). NaN ->
 *             the format's NaN (sign kept by E4M3FN / E5M2); FNUZ formats have no -0 (a
 *             negative value that rounds to zero is +0).
 *   narrow -> narrow and narrow -> float32 NaNs are canonical (quiet, sign kept; the FNUZ
 *   NaN 0x80 decodes to -NaN like ml_dtypes), except float16 -> float32 / float64, which
 *   keep the payload (numpy).
 *
 * float16 <-> float32 has two forms, chosen by dsl_kv_form(DSL_KV_F16CVT, level, cap):
 * portable C and F16C (vcvtps2ph / vcvtph2ps, part of the AVX2 level). The F16C loops
 * redo NaN lanes with the portable conversion (F16C quiets signalling NaNs), so both forms
 * give the same bits. Everything else is plain C compiled once.
 */
#ifndef NARROW_FLOAT_H
#define NARROW_FLOAT_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_plan.h"
#include "dsl_cpu.h"
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define DSL_NF_X86 1
#include <immintrin.h>
#endif

static inline uint32_t dsl_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float dsl_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t dsl_f64_bits(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline double dsl_bits_f64(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }

static inline int dsl_is_narrow_float(int dt) {
    return dt == DSL_F16 || dt == DSL_BF16 || (dt >= DSL_F8E4M3FN && dt <= DSL_F8E5M2FNUZ);
}

/* ---- formats ---------------------------------------------------------------------------
 * A finite nonzero value is (-1)^s 2^(E - bias) 1.M (E > 0) or 2^(1 - bias) 0.M (E = 0);
 * a magnitude code is (E << mbits) | M, monotonic in the value. */
typedef struct {
    int mbits, bias, sign_shift;
    uint32_t max_code;   /* largest finite magnitude code */
    uint32_t inf_code;   /* magnitude code of inf, 0: no inf */
    uint32_t nan_code;   /* canonical NaN: full code without sign */
    int nan_signed;      /* NaN carries the sign bit */
    int fnuz;            /* one NaN (the sign bit alone), no -0 */
    int keep_payload;    /* NaN keeps the top payload bits (float16, numpy) */
} dsl_nf_format;

static const dsl_nf_format dsl_nf_f16 = {10, 15, 15, 0x7bff, 0x7c00, 0x7e00, 1, 0, 1};
static const dsl_nf_format dsl_nf_bf16 = {7, 127, 15, 0x7f7f, 0x7f80, 0x7fc0, 1, 0, 0};
static const dsl_nf_format dsl_nf_e4m3fn = {3, 7, 7, 0x7e, 0, 0x7f, 1, 0, 0};
static const dsl_nf_format dsl_nf_e4m3fnuz = {3, 8, 7, 0x7f, 0, 0x80, 0, 1, 0};
static const dsl_nf_format dsl_nf_e5m2 = {2, 15, 7, 0x7b, 0x7c, 0x7e, 1, 0, 0};
static const dsl_nf_format dsl_nf_e5m2fnuz = {2, 16, 7, 0x7f, 0, 0x80, 0, 1, 0};

static inline const dsl_nf_format* dsl_nf_format_of(int dt) {
    switch (dt) {
    case DSL_F16: return &dsl_nf_f16;
    case DSL_BF16: return &dsl_nf_bf16;
    case DSL_F8E4M3FN: return &dsl_nf_e4m3fn;
    case DSL_F8E4M3FNUZ: return &dsl_nf_e4m3fnuz;
    case DSL_F8E5M2: return &dsl_nf_e5m2;
    case DSL_F8E5M2FNUZ: return &dsl_nf_e5m2fnuz;
    default: return 0;
    }
}

static inline uint32_t dsl_nf_signed(const dsl_nf_format* f, uint32_t s, uint32_t mag) {
    if (f->fnuz && mag == 0) return 0;
    return (s << f->sign_shift) | mag;
}

/* NaN; payload64: the source's payload as a 64-bit fraction (top bit = first payload bit) */
static inline uint32_t dsl_nf_nan(const dsl_nf_format* f, uint32_t s, uint64_t payload64) {
    if (f->keep_payload) {
        uint32_t m = (uint32_t)(payload64 >> (64 - f->mbits));
        return (s << f->sign_shift) | f->inf_code | (m ? m : 1u);
    }
    if (!f->nan_signed) return f->nan_code;
    return (s << f->sign_shift) | f->nan_code;
}

static inline uint32_t dsl_nf_overflow(const dsl_nf_format* f, uint32_t s, int sat) {
    if (sat) return (s << f->sign_shift) | f->max_code;
    if (f->inf_code) return (s << f->sign_shift) | f->inf_code;
    return dsl_nf_nan(f, s, 0);
}

static inline uint32_t dsl_nf_inf(const dsl_nf_format* f, uint32_t s, int sat) {
    if (f->inf_code && !sat) return (s << f->sign_shift) | f->inf_code;
    return dsl_nf_overflow(f, s, sat);
}

/* Round (-1)^s m 2^e (m != 0) to the nearest code, ties to even. */
static inline uint32_t dsl_nf_round(const dsl_nf_format* f, uint32_t s, uint64_t m, int e, int sat) {
    const int emin = 1 - f->bias;                 /* exponent of the smallest normal */
    int lz = __builtin_clzll(m);
    m <<= lz;
    e -= lz;                                      /* m in [2^63, 2^64) */
    const int x = e + 63;                         /* value = 1.f * 2^x */
    const int xq = x < emin ? emin : x;
    if (xq - emin > 2 * 255) return dsl_nf_overflow(f, s, sat);   /* far beyond any format */
    const int shift = (xq - f->mbits) - e;        /* bits of m below the quantum, >= 1 */
    uint64_t q;
    if (shift > 64) {
        q = 0;                                    /* below half a quantum */
    } else if (shift == 64) {
        q = m > (1ull << 63);                     /* half a quantum exactly: to even (0) */
    } else {
        const uint64_t rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
        q = m >> shift;
        q += (rem > half) | ((rem == half) & (q & 1));
    }
    const uint64_t code = ((uint64_t)(xq - emin) << f->mbits) + q;
    if (code > f->max_code) return dsl_nf_overflow(f, s, sat);
    return dsl_nf_signed(f, s, (uint32_t)code);
}

static inline uint32_t dsl_nf_from_f64(const dsl_nf_format* f, double v, int sat) {
    const uint64_t u = dsl_f64_bits(v), man = u & 0xfffffffffffffull;
    const uint32_t s = (uint32_t)(u >> 63);
    const int ex = (int)((u >> 52) & 0x7ff);
    if (ex == 0x7ff) return man ? dsl_nf_nan(f, s, man << 12) : dsl_nf_inf(f, s, sat);
    if (ex == 0) return man ? dsl_nf_round(f, s, man, -1074, sat) : dsl_nf_signed(f, s, 0);
    return dsl_nf_round(f, s, man | (1ull << 52), ex - 1075, sat);
}

static inline uint32_t dsl_nf_from_f32(const dsl_nf_format* f, float v, int sat) {
    const uint32_t u = dsl_f32_bits(v), man = u & 0x7fffffu, s = u >> 31;
    const int ex = (int)((u >> 23) & 0xff);
    if (ex == 0xff) return man ? dsl_nf_nan(f, s, (uint64_t)man << 41) : dsl_nf_inf(f, s, sat);
    if (ex == 0) return man ? dsl_nf_round(f, s, man, -149, sat) : dsl_nf_signed(f, s, 0);
    return dsl_nf_round(f, s, man | 0x800000u, ex - 150, sat);
}

/* an integer given as sign and magnitude */
static inline uint32_t dsl_nf_from_int(const dsl_nf_format* f, int neg, uint64_t mag, int sat) {
    return mag ? dsl_nf_round(f, (uint32_t)(neg != 0), mag, 0, sat) : 0;
}

/* Decode a code to float32 (exact). NaNs: canonical quiet NaN with the code's sign bit. */
static inline float dsl_nf_to_f32(const dsl_nf_format* f, uint32_t code) {
    const uint32_t smask = 1u << f->sign_shift, s = (code & smask) ? 0x80000000u : 0u;
    const uint32_t mag = code & (smask - 1);
    if (f->fnuz ? code == smask : (mag > f->max_code && mag != f->inf_code))
        return dsl_bits_f32(s | 0x7fc00000u);
    if (f->inf_code && mag == f->inf_code) return dsl_bits_f32(s | 0x7f800000u);
    const uint32_t E = mag >> f->mbits, M = mag & ((1u << f->mbits) - 1);
    float v = E ? ldexpf((float)((1u << f->mbits) | M), (int)E - f->bias - f->mbits)
                : ldexpf((float)M, 1 - f->bias - f->mbits);
    return s ? -v : v;
}

/* ---- float16 <-> float32, portable (numpy's results, bit for bit) ---------------------- */
static inline uint32_t dsl_f16_to_f32_bits(uint16_t h) {
    const uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return s | 0x7f800000u | (m << 13);      /* inf, NaN (payload kept) */
    if (e) return s | ((e + 112) << 23) | (m << 13);
    if (!m) return s;
    const int p = 31 - __builtin_clz(m);                    /* subnormal: m * 2^-24 */
    return s | ((uint32_t)(p + 103) << 23) | ((m << (23 - p)) & 0x7fffffu);
}

static inline uint16_t dsl_f32_to_f16_bits(uint32_t u) {
    const uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) {                                 /* inf, NaN */
        const uint32_t m = (a >> 13) & 0x3ffu;
        return (uint16_t)(s | 0x7c00u | (a == 0x7f800000u ? 0u : (m ? m : 1u)));
    }
    if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u);  /* >= 65520: inf */
    if (a >= 0x38800000u) {                                 /* normal half */
        uint32_t r = a - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return (uint16_t)(s | (r >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)s;               /* <= 2^-25: +-0 */
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
    const int sh = 126 - (int)e;                            /* 14..24 */
    const uint32_t rem = m & ((1u << sh) - 1), half = 1u << (sh - 1);
    uint32_t q = m >> sh;
    q += (rem > half) | ((rem == half) & (q & 1u));
    return (uint16_t)(s | q);
}

static inline float dsl_f16_to_f32(uint16_t h) { return dsl_bits_f32(dsl_f16_to_f32_bits(h)); }
static inline uint16_t dsl_f32_to_f16(float v) { return dsl_f32_to_f16_bits(dsl_f32_bits(v)); }

/* float16 -> float64 keeps a NaN's payload (numpy), which a float32 -> double C
 * conversion would quiet */
static inline double dsl_f16_to_f64(uint16_t h) {
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu))
        return dsl_bits_f64(((uint64_t)(h & 0x8000u) << 48) | 0x7ff0000000000000ull |
                            ((uint64_t)(h & 0x3ffu) << 42));
    return (double)dsl_f16_to_f32(h);
}

/* ---- bfloat16 <-> float32 ------------------------------------------------------------ */
static inline float dsl_bf16_to_f32(uint16_t h) { return dsl_bits_f32((uint32_t)h << 16); }
static inline uint16_t dsl_f32_to_bf16(float v) {
    const uint32_t u = dsl_f32_bits(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(((u >> 16) & 0x8000u) | 0x7fc0u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- float16 rows: portable and F16C -------------------------------------------------- */
static void f16_f32_cvt__generic(const uint16_t* x, float* y, int64_t n) {
    for (int64_t k = 0; k < n; ++k) y[k] = dsl_f16_to_f32(x[k]);
}
static void f32_f16_cvt__generic(const float* x, uint16_t* y, int64_t n) {
    for (int64_t k = 0; k < n; ++k) y[k] = dsl_f32_to_f16(x[k]);
}

#ifdef DSL_NF_X86
#define DSL_NF_AVX2 __attribute__((target(DSL_TARGET_AVX2)))
static DSL_NF_AVX2 void f16_f32_cvt__f16c(const uint16_t* x, float* y, int64_t n) {
    int64_t k = 0;
    const __m128i absmask = _mm_set1_epi16(0x7fff), inf = _mm_set1_epi16(0x7c00);
    for (; k + 8 <= n; k += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i*)(x + k));
        _mm256_storeu_ps(y + k, _mm256_cvtph_ps(h));
        /* NaN lanes (|h| > 0x7c00): F16C quiets them; redo with the portable conversion */
        if (_mm_movemask_epi8(_mm_cmpgt_epi16(_mm_and_si128(h, absmask), inf)))
            for (int j = 0; j < 8; ++j) y[k + j] = dsl_f16_to_f32(x[k + j]);
    }
    for (; k < n; ++k) y[k] = dsl_f16_to_f32(x[k]);
}
static DSL_NF_AVX2 void f32_f16_cvt__f16c(const float* x, uint16_t* y, int64_t n) {
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        _mm_storeu_si128((__m128i*)(y + k),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
        if (_mm256_movemask_ps(nan))   /* NaN payloads as numpy keeps them */
            for (int j = 0; j < 8; ++j) y[k + j] = dsl_f32_to_f16(x[k + j]);
    }
    for (; k < n; ++k) y[k] = dsl_f32_to_f16(x[k]);
}
#endif

/* form: dsl_kv_form(DSL_KV_F16CVT, level, cap) */
static inline void dsl_f16_to_f32_row(int form, const uint16_t* x, float* y, int64_t n) {
#ifdef DSL_NF_X86
    if (form != DSL_FORM_GENERIC) { f16_f32_cvt__f16c(x, y, n); return; }
#else
    (void)form;
#endif
    f16_f32_cvt__generic(x, y, n);
}
static inline void dsl_f32_to_f16_row(int form, const float* x, uint16_t* y, int64_t n) {
#ifdef DSL_NF_X86
    if (form != DSL_FORM_GENERIC) { f32_f16_cvt__f16c(x, y, n); return; }
#else
    (void)form;
#endif
    f32_f16_cvt__generic(x, y, n);
}

/* ---- any narrow type <-> float32 rows ----------------------------------------------------
 * form applies to float16; sat to float8 destinations. */
static inline void dsl_nf_load(int dt, int form, const char* src, float* y, int64_t n) {
    int64_t k;
    if (dt == DSL_F16) { dsl_f16_to_f32_row(form, (const uint16_t*)src, y, n); return; }
    if (dt == DSL_BF16) {
        const uint16_t* x = (const uint16_t*)src;
        for (k = 0; k < n; ++k) y[k] = dsl_bf16_to_f32(x[k]);
        return;
    }
    const dsl_nf_format* f = dsl_nf_format_of(dt);
    const uint8_t* x = (const uint8_t*)src;
    for (k = 0; k < n; ++k) y[k] = dsl_nf_to_f32(f, x[k]);
}

static inline void dsl_nf_store(int dt, int form, int sat, const float* x, char* dst, int64_t n) {
    int64_t k;
    if (dt == DSL_F16) { dsl_f32_to_f16_row(form, x, (uint16_t*)dst, n); return; }
    if (dt == DSL_BF16) {
        uint16_t* y = (uint16_t*)dst;
        for (k = 0; k < n; ++k) y[k] = dsl_f32_to_bf16(x[k]);
        return;
    }
    const dsl_nf_format* f = dsl_nf_format_of(dt);
    uint8_t* y = (uint8_t*)dst;
    for (k = 0; k < n; ++k) y[k] = (uint8_t)dsl_nf_from_f32(f, x[k], sat);
}

/* chunk of elements widened to float32 on the stack (eltwise narrow paths) */
#define DSL_NF_CHUNK 256
#endif
