/* Run-time ISA selection. One wheel carries scalar, AVX2+FMA and AVX-512 variants of each
 * microkernel; dsl_isa() picks the best one the CPU supports, lowered (never raised) by
 * the NM_ARCH / DSL_ISA environment variables ("avx512", "avx2", "generic"). The answer is
 * cached per extension module on first use. */
#ifndef DSL_CPU_H
#define DSL_CPU_H
#include <stdlib.h>
#include <string.h>

#define DSL_ISA_GENERIC 0
#define DSL_ISA_AVX2    1
#define DSL_ISA_AVX512  2

static int dsl_isa_cached = -1;

static int dsl_isa_hardware(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        return DSL_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return DSL_ISA_AVX2;
#endif
    return DSL_ISA_GENERIC;
}

static int dsl_isa_from_env(void) {
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

static inline int dsl_isa(void) {
    if (dsl_isa_cached < 0) {
        int hw = dsl_isa_hardware();
        int env = dsl_isa_from_env();
        dsl_isa_cached = env < hw ? env : hw;
    }
    return dsl_isa_cached;
}

/* Tests force a lower ISA at run time to compare variants in one process. */
static inline void dsl_set_isa(int level) {
    int hw = dsl_isa_hardware();
    dsl_isa_cached = level < hw ? level : hw;
}
#endif
