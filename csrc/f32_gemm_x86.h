/* x86 fp32 GEMM microkernels, instantiated from f32_gemm_x86_tpl.h:
 *   f32_gemm_ukernel_6x16__avx2    AVX2+FMA, 12 ymm accumulators
 *   f32_gemm_ukernel_8x32__avx512  AVX-512F, 16 zmm accumulators
 * Each function carries its own target attribute (no -march), so the module builds for
 * baseline x86-64 and f32_gemm_select() only hands them out when dsl_isa() allows. */
#ifndef F32_GEMM_X86_H
#define F32_GEMM_X86_H
#if defined(__x86_64__)
#include <immintrin.h>
#include "f32_gemm_scalar.h"

#define F32_GEMM_HAVE_X86 1

/* ---- AVX2 + FMA: 6 x 16 -------------------------------------------------------------- */
#define T_ISA avx2
#define T_TARGET "avx2,fma"
#define T_MR 6
#define T_NR 16
#define T_VW 8
#define VEC __m256
#define VZERO() _mm256_setzero_ps()
#define VLOAD(p) _mm256_loadu_ps(p)
#define VSTORE(p, v) _mm256_storeu_ps((p), (v))
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VSET1(x) _mm256_set1_ps(x)
#define VMAX(a, b) _mm256_max_ps((a), (b))
#define VMIN(a, b) _mm256_min_ps((a), (b))
#include "f32_gemm_x86_tpl.h"
#undef T_ISA
#undef T_TARGET
#undef T_MR
#undef T_NR
#undef T_VW
#undef VEC
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA
#undef VADD
#undef VSET1
#undef VMAX
#undef VMIN

/* ---- AVX-512F: 8 x 32 ---------------------------------------------------------------- */
#define T_ISA avx512
#define T_TARGET "avx512f,avx2,fma"
#define T_MR 8
#define T_NR 32
#define T_VW 16
#define VEC __m512
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VSTORE(p, v) _mm512_storeu_ps((p), (v))
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
#define VSET1(x) _mm512_set1_ps(x)
#define VMAX(a, b) _mm512_max_ps((a), (b))
#define VMIN(a, b) _mm512_min_ps((a), (b))
#include "f32_gemm_x86_tpl.h"
#undef T_ISA
#undef T_TARGET
#undef T_MR
#undef T_NR
#undef T_VW
#undef VEC
#undef VZERO
#undef VLOAD
#undef VSTORE
#undef VBCAST
#undef VFMA
#undef VADD
#undef VSET1
#undef VMAX
#undef VMIN

#endif /* __x86_64__ */
#endif
