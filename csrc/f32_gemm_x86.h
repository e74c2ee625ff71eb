/* x86 fp32 GEMM microkernels, instantiated from f32_gemm_x86_tpl.h per vector form:
 *   f32_gemm_tile_6x16__avx2             AVX2+FMA, 12 ymm accumulators
 *   f32_gemm_tile_8x32__avx512           AVX-512F, 16 zmm accumulators
 *   f32_gemm_tile_8x32__avx512_on_avx2   the AVX-512 source on AVX2 halves (tests)
 * Each function carries its form's target attribute (no -march), so the module builds for
 * baseline x86-64 and f32_gemm_select() only hands out what the CPU cap allows. */
#ifndef F32_GEMM_X86_H
#define F32_GEMM_X86_H
#include "dsl_simd.h"
#ifdef DSL_SIMD_X86
#include "f32_gemm_scalar.h"

#define F32_GEMM_HAVE_X86 1

/* the tile geometry of each vector form is chosen inside the template */
#define DSL_SIMD_TEMPLATE "f32_gemm_x86_tpl.h"
#include "dsl_simd_forms.h"

#endif /* DSL_SIMD_X86 */
#endif
