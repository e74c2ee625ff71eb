/* Winograd F(2x2, 3x3) convolution: stride 1, undilated, one group, any padding.
 *
 * Each 2x2 block of output pixels (a tile) of one image comes from a 4x4 input patch d:
 *   Y = A^T [ sum_ci U[co, ci] (.) V[ci] ] A,  V = B^T d B,  U = G g G^T (compile time)
 * with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1] and
 * G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. The sum over ci is 16 independent GEMMs, one
 * per position xi = 4 i + j of the 4x4 transformed tile:
 *   M_xi[co, t] = U_xi[co, ci] . V_xi[ci, t]       (M = Cout, K = Cin, N = tiles)
 * 2.25x fewer multiplies than the direct 3x3 conv, for two transforms that are additions.
 *
 * Work is cut into blocks of consecutive tiles (row-major over the TH x TW tile grid) of
 * whole B micro-panels (NR tiles): per block, the input transform writes V for all 16 xi
 * straight into the GEMM's packed B layout [panel][Cin][NR], the 16 GEMMs run on the
 * blocked fp32 kernel (U_xi prepacked as its A operand, [ceil(Cout/MR)][Cin][MR] per xi)
 * into M [16][Cout][block], and the output transform writes Y with the epilogue
 * (bias, then beta * D, then the clamp: none, Relu, Clip). Both buffers stay in L2.
 *
 * The transforms are row operations: for a tile row th the 4 input rows 2 th - PH + r are
 * combined first (B^T d, whole rows), then columns pair up at stride 2 (d B); the output
 * transform likewise (csrc/f32_winograd_tpl.h, in every vector form; the step runs the
 * form of its GEMM tile). */
#ifndef F32_WINOGRAD_H
#define F32_WINOGRAD_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_simd.h"
#include "f32_gemm.h"

#pragma GCC push_options
#pragma GCC optimize("no-tree-loop-distribute-patterns")

typedef struct {
    int64_t Cin, H, W, Cout, OH, OW, PH, PW;
    int64_t TH, TW; /* tile grid: ceil(OH / 2) x ceil(OW / 2) */
    float beta, lo, hi;
    int clamp;
} f32_wino_geom;

/* Row length of the transforms' scratch rows (a tile row's 2 TW + 2 columns, then slack
 * for whole-vector reads and writes past them), and the scratch floats one call uses (the
 * input transform: 4 zero-padded patch rows and their B^T combinations; the output
 * transform: 2 interleaved rows of 2 S). */
#define F32_WINO_ROW(TW) (2 * (TW) + 72)
static inline int64_t f32_wino_scratch_floats(int64_t TW) { return 8 * F32_WINO_ROW(TW) + 64; }

typedef void (*f32_wino_input_fn)(const f32_wino_geom*, const float*, int64_t, int64_t, int,
                                   float*, int64_t, float*);
typedef void (*f32_wino_output_fn)(const f32_wino_geom*, const float*, int64_t, int64_t, int64_t,
                                   int64_t, int64_t, int64_t, const float*, const float*, float*,
                                   float*);

#define DSL_SIMD_TEMPLATE "f32_winograd_tpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

/* The transforms of vector form `form` (DSL_FORM_*: the GEMM tile's form). */
static inline void f32_wino_select(int form, f32_wino_input_fn* in, f32_wino_output_fn* out) {
    *in = f32_wino_input__generic;
    *out = f32_wino_output__generic;
#ifdef DSL_SIMD_X86
    if (form == DSL_FORM_AVX2) {
        *in = f32_wino_input__avx2;
        *out = f32_wino_output__avx2;
    } else if (form == DSL_FORM_AVX512) {
        *in = f32_wino_input__avx512;
        *out = f32_wino_output__avx512;
    } else if (form == DSL_FORM_AVX512_ON_AVX2) {
        *in = f32_wino_input__avx512_on_avx2;
        *out = f32_wino_output__avx512_on_avx2;
    }
#endif
}

/* Budget of the per-block V and M buffers (bytes): they stay in L2 between the input
 * transform, the 16 GEMMs and the output transform. */
#define F32_WINO_BLOCK_BYTES (1 << 20)

/* Blocks per image, the most B panels (NR tiles) in one block and the output-channel parts
 * of a block, for `threads` workers, and the workspace floats one worker needs: the
 * layout the lowering reserves and the kernel reads (kernels/gemm.pyx winograd_layout).
 * Blocks are balanced ranges of panels; with fewer images than threads, the threads
 * share the work either by blocks (a multiple of them) or, when the tiles make only a
 * few panels (a 14 x 14 image is 49 tiles: 2 panels), by output channels: each worker
 * then transforms the block's input itself and streams only its share of U. */
static inline void f32_wino_layout(int level, int64_t images, int64_t Cin, int64_t Cout,
                                   int64_t TH, int64_t TW, int threads, int64_t* nblk,
                                   int64_t* maxp, int64_t* co_parts, int64_t* ws_floats) {
    int mr, nr;
    f32_gemm_geometry(level, &mr, &nr);
    const int64_t P = (TH * TW + nr - 1) / nr;
    int64_t fit = F32_WINO_BLOCK_BYTES / (16 * 4 * (Cin + Cout) * (int64_t)nr);
    if (fit < 1) fit = 1;
    int64_t nb = (P + fit - 1) / fit, parts = 1;
    if (threads > 1 && images < threads) {
        const int64_t per = (threads + images - 1) / images; /* work items per image to fill */
        if (nb == 1 && P < 2 * per && Cout >= 4 * mr * per)
            parts = per;
        else
            nb = (nb + per - 1) / per * per;
    }
    if (nb > P) nb = P;
    if (nb < 1) nb = 1;
    *nblk = nb;
    *maxp = (P + nb - 1) / nb;
    *co_parts = parts;
    const int64_t tiles = *maxp * nr;
    *ws_floats = 16 * tiles * (Cin + Cout) + f32_wino_scratch_floats(TW);
}

#pragma GCC pop_options
#endif
