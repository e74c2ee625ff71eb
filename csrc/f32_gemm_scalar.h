/* Portable fp32 GEMM microkernels: the generic ISA variant (4x8) and the any-geometry
 * fallback that runs a plan packed for a wider ISA on a CPU that lacks it.
 *
 * Packed operand layouts (shared by every variant, see f32_gemm_pack.h):
 *   A micro-panel: kc x MR, a[k * MR + r]   (row r of the tile, step k)
 *   B micro-panel: kc x NR, b[k * NR + j]   (column j of the tile, step k)
 * A tile computes C[0:mr, 0:nr] (+)= A·B with C row stride ldc; acc = 0 overwrites C,
 * acc = 1 adds to it (later K blocks). Columns beyond nr in B are zero padded; rows beyond
 * mr in A are never read.
 *
 * On the last K block the driver passes an epilogue `e` (else NULL) that the tile applies
 * before its single store: C = min(hi, max(lo, alpha * (acc ? C + AB : AB) + bias + beta * D)),
 * with per-row and/or per-column bias and an optional addend D (a fused residual). lo/hi
 * express no activation (-inf, inf), Relu (0, inf) and Clip; anything else runs after the
 * store (f32_gemm.h). */
#ifndef F32_GEMM_SCALAR_H
#define F32_GEMM_SCALAR_H
#include <stdint.h>

#define F32_GEMM_MAX_MR 16
#define F32_GEMM_MAX_NR 64 /* 32 for the tiles; the sparse im2col panels are 64 wide */

typedef struct {
    float alpha;
    const float* bias_r; /* bias of the tile's first row (one per row), or NULL */
    const float* bias_c; /* bias of the tile's first column, NR floats readable, or NULL */
    float lo, hi;        /* clamp bounds */
    const float* d;      /* addend beta * D of the tile's first element (contiguous rows of
                          * row stride ldd), added after the bias, before the clamp; or NULL */
    int64_t ldd;
    float beta;
} f32_gemm_epi;

/* Store the valid mr x nr corner of a dense tile t into C: copy (acc = 0) or add (acc = 1),
 * then the epilogue if any. NaN propagates through the clamp (like numpy and ONNX). */
static inline void f32_gemm_store_tile(float* t, int64_t ldt, float* c, int64_t ldc, int mr,
                                       int nr, int acc, const f32_gemm_epi* e) {
    for (int r = 0; r < mr; ++r) {
        float* tr = t + r * ldt;
        float* cr = c + r * ldc;
        if (acc)
            for (int j = 0; j < nr; ++j) tr[j] += cr[j];
        if (e) {
            const float br = e->bias_r ? e->bias_r[r] : 0.f;
            const float* dr = e->d ? e->d + r * e->ldd : 0;
            for (int j = 0; j < nr; ++j) {
                float v = e->alpha * tr[j] + br + (e->bias_c ? e->bias_c[j] : 0.f);
                if (dr) v += e->beta * dr[j];
                v = v < e->lo ? e->lo : v; /* comparisons with NaN are false: NaN stays */
                tr[j] = v > e->hi ? e->hi : v;
            }
        }
        for (int j = 0; j < nr; ++j) cr[j] = tr[j];
    }
}

/* Any geometry, any edge: the oracle and the safe fallback. Rows >= mr are not computed. */
static void f32_gemm_tile_any(int MR, int NR, int64_t kc, const float* a, const float* b,
                              float* c, int64_t ldc, int mr, int nr, int acc,
                              const f32_gemm_epi* e) {
    float t[F32_GEMM_MAX_MR * F32_GEMM_MAX_NR];
    for (int r = 0; r < mr; ++r)
        for (int j = 0; j < NR; ++j) t[r * NR + j] = 0.f;
    for (int64_t k = 0; k < kc; ++k) {
        const float* ak = a + k * MR;
        const float* bk = b + k * NR;
        for (int r = 0; r < mr; ++r) {
            const float av = ak[r];
            float* tr = t + r * NR;
            for (int j = 0; j < NR; ++j) tr[j] += av * bk[j];
        }
    }
    f32_gemm_store_tile(t, NR, c, ldc, mr, nr, acc, e);
}

/* The generic ISA variant: a fixed 4x8 tile the compiler keeps in (SSE) registers. */
static void f32_gemm_ukernel_4x8__scalar(int64_t kc, const float* a, const float* b, float* c,
                                         int64_t ldc, int acc, const f32_gemm_epi* e) {
    float t[4][8];
    for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 8; ++j) t[r][j] = 0.f;
    for (int64_t k = 0; k < kc; ++k) {
        for (int r = 0; r < 4; ++r) {
            const float av = a[r];
            for (int j = 0; j < 8; ++j) t[r][j] += av * b[j];
        }
        a += 4;
        b += 8;
    }
    f32_gemm_store_tile(&t[0][0], 8, c, ldc, 4, 8, acc, e);
}

static void f32_gemm_tile_4x8__scalar(int64_t kc, const float* a, const float* b, float* c,
                                      int64_t ldc, int mr, int nr, int acc,
                                      const f32_gemm_epi* e) {
    if (mr == 4 && nr == 8)
        f32_gemm_ukernel_4x8__scalar(kc, a, b, c, ldc, acc, e);
    else
        f32_gemm_tile_any(4, 8, kc, a, b, c, ldc, mr, nr, acc, e);
}

/* Fallbacks with the geometry of the vector variants (their packing layouts). */
static void f32_gemm_tile_6x16__fallback(int64_t kc, const float* a, const float* b, float* c,
                                         int64_t ldc, int mr, int nr, int acc,
                                         const f32_gemm_epi* e) {
    f32_gemm_tile_any(6, 16, kc, a, b, c, ldc, mr, nr, acc, e);
}

static void f32_gemm_tile_8x32__fallback(int64_t kc, const float* a, const float* b, float* c,
                                         int64_t ldc, int mr, int nr, int acc,
                                         const f32_gemm_epi* e) {
    f32_gemm_tile_any(8, 32, kc, a, b, c, ldc, mr, nr, acc, e);
}
#endif
