/* ISA levels, kernel forms and the execution context every kernel receives.
 *
 * Two numbers decide which code a step runs:
 *  - the step's *level* (0 generic, 1 avx2, 2 avx512), fixed when the plan is compiled:
 *    packed layouts and the vector width of the kernel *form* depend on it (the GEMM's
 *    8x32 panels, 16-lane reductions);
 *  - the *CPU cap*: the highest instruction set kernels may execute. It is ONE
 *    process-wide value owned by the runner (kernels/runner.pyx), initialised from
 *    dsl_isa_detect() and lowered by tests; the runner passes it to every kernel in
 *    dsl_exec. No header keeps a copy (a `static` here would be one copy per extension
 *    module, which is how a forced ISA once failed to reach some families).
 *
 * dsl_form(level, cap) names the compiled variant that runs:
 *   GENERIC          portable C (every level's geometry has a portable kernel)
 *   AVX2             the 8-lane form, AVX2+FMA instructions
 *   AVX512           the 16-lane form, AVX-512 instructions
 *   AVX512_ON_AVX2   the 16-lane form compiled with each vector held as two AVX2 halves:
 *                    the AVX-512 form's source (lane counts, tails, packing, index math)
 *                    running on an AVX2-only CPU, so it is tested on every machine.
 */
#ifndef DSL_CPU_H
#define DSL_CPU_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DSL_ISA_GENERIC 0
#define DSL_ISA_AVX2    1
#define DSL_ISA_AVX512  2

#define DSL_FORM_GENERIC         0
#define DSL_FORM_AVX2            1
#define DSL_FORM_AVX512          2
#define DSL_FORM_AVX512_ON_AVX2  3
#define DSL_NFORMS               4

/* The one target string per ISA level (every `target` attribute uses these). The AVX2
 * level includes F16C (half <-> float conversions): every AVX2 CPU has it (F16C came a
 * generation earlier, Ivy Bridge / Piledriver); one without it runs the generic level. */
#define DSL_TARGET_AVX2   "avx2,fma,f16c"
#define DSL_TARGET_AVX512 "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma,f16c"
#define DSL_TARGET_AVX512_VNNI DSL_TARGET_AVX512 ",avx512vnni"   /* the INT8 GEMM tile */
#define DSL_TARGET_AMX_INT8 "amx-tile,amx-int8"                       /* AMX tiles (csrc/q8_conv.h) */
#define DSL_TARGET_AMX_BF16 "amx-tile,amx-bf16"                       /* AMX tiles (csrc/bf16_gemm.h) */

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static inline int dsl_cpu_has_f16c(void) {   /* CPUID.1:ECX bit 29 (no __builtin_cpu_supports
                                              * spelling for it in older compilers) */
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1u);
}
#endif

static inline int dsl_isa_hardware(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!dsl_cpu_has_f16c()) return DSL_ISA_GENERIC;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return DSL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return DSL_ISA_AVX2;
#endif
    return DSL_ISA_GENERIC;
}

/* The level NM_ARCH / DSL_ISA ask for (DSL_ISA wins), or 99 when neither is set. */
static inline int dsl_isa_from_env(void) {
    const char* names[2] = {"DSL_ISA", "NM_ARCH"};
    for (int k = 0; k < 2; ++k) {
        const char* v = getenv(names[k]);
        if (!v || !*v) continue;
        if (!strcmp(v, "avx512")) return DSL_ISA_AVX512;
        if (!strcmp(v, "avx2")) return DSL_ISA_AVX2;
        return DSL_ISA_GENERIC; /* "generic", "scalar", "neon", ... */
    }
    return 99;
}

/* What the hardware allows, lowered (never raised) by the environment. */
static inline int dsl_isa_detect(void) {
    int hw = dsl_isa_hardware(), env = dsl_isa_from_env();
    return env < hw ? env : hw;
}

/* The form of a kernel that has all four (vector-width-generic kernels). */
static inline int dsl_form(int level, int cap) {
    if (level >= DSL_ISA_AVX512) {
        if (cap >= DSL_ISA_AVX512) return DSL_FORM_AVX512;
        return cap >= DSL_ISA_AVX2 ? DSL_FORM_AVX512_ON_AVX2 : DSL_FORM_GENERIC;
    }
    if (level == DSL_ISA_AVX2 && cap >= DSL_ISA_AVX2) return DSL_FORM_AVX2;
    return DSL_FORM_GENERIC;
}

/* The form of a kernel compiled only generic and for AVX2 (no width-specific code). */
static inline int dsl_form_avx2_only(int level, int cap) {
    return (level >= DSL_ISA_AVX2 && cap >= DSL_ISA_AVX2) ? DSL_FORM_AVX2 : DSL_FORM_GENERIC;
}

/* The form of a kernel compiled generic, AVX2 and AVX-512 from plain C (compiler-vectorised:
 * no hand-written lane logic, so no separate 16-lane-on-AVX2 form). */
static inline int dsl_form_autovec(int level, int cap) {
    const int t = level < cap ? level : cap;
    return t >= DSL_ISA_AVX512 ? DSL_FORM_AVX512 : (t >= DSL_ISA_AVX2 ? DSL_FORM_AVX2 : DSL_FORM_GENERIC);
}

/* Kernels whose variants are counted (tests check every variant the CPU can run ran). */
#define DSL_KV_GEMM_TILE   0
#define DSL_KV_GEMM_PACK   1
#define DSL_KV_DWCONV      2
#define DSL_KV_UNARY       3   /* vector math: eltwise unary ops and fused activations */
#define DSL_KV_BINARY      4
#define DSL_KV_REDUCE      5
#define DSL_KV_SOFTMAX     6
#define DSL_KV_LAYERNORM   7
#define DSL_KV_INSTNORM    8
#define DSL_KV_ARGEXT      9
#define DSL_KV_AFFINE     10
#define DSL_KV_POOL       11
#define DSL_KV_TRANSPOSE  12
#define DSL_KV_F16CVT     13   /* float16 <-> float32 conversions (cast, float16 arithmetic) */
#define DSL_KV_SPMM       14   /* sparse-weight fp32 tiles (csrc/f32_spmm.h) */
#define DSL_KV_QGEMM      15   /* INT8 GEMM tile (csrc/q8_gemm.h) */
#define DSL_KV_QUANT      16   /* Quantize / Dequantize rows (csrc/q8_quant.h) */
#define DSL_KV_QCONV      17   /* INT8 conv, channels as rows (csrc/q8_conv.h) */
#define DSL_KV_BGEMM      18   /* bfloat16 GEMM blocks (csrc/bf16_gemm.h) */
#define DSL_NKV           19

/* How each kernel maps (level, cap) to a form: which forms exist. A kernel's select
 * function uses exactly this mapping (tests derive the variants to cover from it). */
#define DSL_DISPATCH_FULL       0   /* dsl_form */
#define DSL_DISPATCH_AVX2_ONLY  1   /* dsl_form_avx2_only */
#define DSL_DISPATCH_AUTOVEC    2   /* dsl_form_autovec */
#define DSL_DISPATCH_VNNI       3   /* dsl_form_vnni */
#define DSL_DISPATCH_BF16       4   /* dsl_form_bf16 */
static const unsigned char dsl_kv_dispatch[DSL_NKV] = {
    DSL_DISPATCH_FULL,      /* GEMM_TILE */
    DSL_DISPATCH_AVX2_ONLY, /* GEMM_PACK */
    DSL_DISPATCH_AUTOVEC,   /* DWCONV */
    DSL_DISPATCH_FULL,      /* UNARY */
    DSL_DISPATCH_AUTOVEC,   /* BINARY */
    DSL_DISPATCH_FULL,      /* REDUCE */
    DSL_DISPATCH_FULL,      /* SOFTMAX */
    DSL_DISPATCH_FULL,      /* LAYERNORM */
    DSL_DISPATCH_FULL,      /* INSTNORM */
    DSL_DISPATCH_FULL,      /* ARGEXT */
    DSL_DISPATCH_FULL,      /* AFFINE */
    DSL_DISPATCH_FULL,      /* POOL */
    DSL_DISPATCH_AVX2_ONLY, /* TRANSPOSE */
    DSL_DISPATCH_AVX2_ONLY, /* F16CVT */
    DSL_DISPATCH_FULL,      /* SPMM */
    DSL_DISPATCH_VNNI,      /* QGEMM */
    DSL_DISPATCH_AUTOVEC,   /* QUANT */
    DSL_DISPATCH_VNNI,      /* QCONV */
    DSL_DISPATCH_BF16,      /* BGEMM */
};
static const char* const dsl_kv_names[DSL_NKV] = {
    "gemm_tile", "gemm_pack", "dwconv", "unary", "binary", "reduce", "softmax", "layernorm",
    "instnorm", "argext", "affine", "pool", "transpose", "f16_cvt", "spmm", "qgemm",
    "quant", "qconv", "bgemm"};

/* AVX-512 VNNI (vpdpbusd on zmm), for the INT8 GEMM */
static inline int dsl_cpu_has_vnni(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni");
#else
    return 0;
#endif
}

/* The form of a kernel with generic, AVX2 and AVX-512-VNNI forms of one geometry (the INT8
 * GEMM): the AVX-512 form needs VNNI; an AVX-512 CPU without it runs the AVX2 form. */
static inline int dsl_form_vnni(int level, int cap) {
    const int t = level < cap ? level : cap;
    if (t >= DSL_ISA_AVX512 && dsl_cpu_has_vnni()) return DSL_FORM_AVX512;
    return t >= DSL_ISA_AVX2 ? DSL_FORM_AVX2 : DSL_FORM_GENERIC;
}

/* AVX-512 BF16 (vdpbf16ps, vcvtne2ps2bf16), for the bfloat16 GEMM */
static inline int dsl_cpu_has_avx512bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* The form of the bfloat16 GEMM (one layout at every level): AVX-512 with BF16, else the
 * portable twin. */
static inline int dsl_form_bf16(int level, int cap) {
    (void)level;
    return cap >= DSL_ISA_AVX512 && dsl_cpu_has_avx512bf16() ? DSL_FORM_AVX512 : DSL_FORM_GENERIC;
}

static inline int dsl_kv_form(int kv, int level, int cap) {
    switch (dsl_kv_dispatch[kv]) {
    case DSL_DISPATCH_BF16: return dsl_form_bf16(level, cap);
    case DSL_DISPATCH_VNNI: return dsl_form_vnni(level, cap);
    case DSL_DISPATCH_AVX2_ONLY: return dsl_form_avx2_only(level, cap);
    case DSL_DISPATCH_AUTOVEC: return dsl_form_autovec(level, cap);
    default: return dsl_form(level, cap);
    }
}

/* What the runner hands every kernel. */
typedef struct {
    int nt;            /* threads the step may use */
    int cap;           /* the CPU cap (see above) */
    uint64_t* hits;    /* NULL, or DSL_NKV x DSL_NFORMS counters of the variants run */
    const void* team;  /* the stream lease (dsl_team.h's dsl_lease) the plan runs on, or NULL:
                          OpenMP then (plans run outside a Context) */
} dsl_exec;

static inline void dsl_hit(const dsl_exec* x, int kv, int form) {
    if (x->hits) __atomic_fetch_add(&x->hits[kv * DSL_NFORMS + form], 1, __ATOMIC_RELAXED);
}
#endif
