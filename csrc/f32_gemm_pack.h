/* Run-time packing of GEMM operands into the micro-panel layouts of f32_gemm_scalar.h.
 *
 *   A block (rows [ic, ic+mc), k [pc, pc+kc)) -> ceil(mc/MR) panels of kc x MR
 *   B block (k [pc, pc+kc), cols [jc, jc+nc)) -> ceil(nc/NR) panels of kc x NR, columns
 *   beyond the matrix edge zero filled.
 * B can come from a strided matrix or straight from an NCHW image (im2col fused into the
 * packing, so the column matrix of a k x k convolution is never materialised). Constant
 * operands are packed at compile time by numpy into the same layout (ops/gemm.py). */
#ifndef F32_GEMM_PACK_H
#define F32_GEMM_PACK_H
#include <stdint.h>
#include <string.h>
#include "f32_gemm_scalar.h"

/* Geometry of one image (and group) of a 2-D convolution seen as the B operand:
 * B[k, p] with k = (ci, kh, kw) and p = (oh, ow). */
typedef struct {
    const float* x; /* first input channel of this image/group, NCHW */
    int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW;
} f32_conv_geom;

static void f32_gemm_pack_a(const float* a, int64_t rsa, int64_t csa, int64_t ic, int64_t mc,
                            int64_t pc, int64_t kc, int MR, float* dst) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
        int mr = (int)(mc - ir < MR ? mc - ir : MR);
        float* dp = dst + (ir / MR) * kc * MR;
        const float* src = a + (ic + ir) * rsa + pc * csa;
        if (csa == 1) { /* row-major A: stream each row, scatter with stride MR (in L1) */
            for (int r = 0; r < mr; ++r) {
                const float* s = src + r * rsa;
                for (int64_t k = 0; k < kc; ++k) dp[k * MR + r] = s[k];
            }
        } else if (rsa == 1) { /* transposed A: MR contiguous values per k */
            for (int64_t k = 0; k < kc; ++k) {
                const float* s = src + k * csa;
                for (int r = 0; r < mr; ++r) dp[k * MR + r] = s[r];
            }
        } else {
            for (int64_t k = 0; k < kc; ++k)
                for (int r = 0; r < mr; ++r) dp[k * MR + r] = src[r * rsa + k * csa];
        }
        /* rows >= mr are never read by the kernels (they are specialised per mr) */
    }
}

static void f32_gemm_pack_b(const float* b, int64_t rsb, int64_t csb, int64_t pc, int64_t kc,
                            int64_t jc, int64_t nc, int NR, float* dst) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        int nr = (int)(nc - jr < NR ? nc - jr : NR);
        float* dp = dst + (jr / NR) * kc * NR;
        const float* src = b + pc * rsb + (jc + jr) * csb;
        if (csb == 1) {
            for (int64_t k = 0; k < kc; ++k) {
                const float* s = src + k * rsb;
                float* d = dp + k * NR;
                for (int j = 0; j < nr; ++j) d[j] = s[j];
                for (int j = nr; j < NR; ++j) d[j] = 0.f;
            }
        } else if (rsb == 1) { /* B given as B^T (e.g. K^T of attention): read columns */
            for (int j = 0; j < nr; ++j) {
                const float* s = src + j * csb;
                for (int64_t k = 0; k < kc; ++k) dp[k * NR + j] = s[k];
            }
            if (nr < NR)
                for (int64_t k = 0; k < kc; ++k)
                    for (int j = nr; j < NR; ++j) dp[k * NR + j] = 0.f;
        } else {
            for (int64_t k = 0; k < kc; ++k) {
                float* d = dp + k * NR;
                for (int j = 0; j < nr; ++j) d[j] = src[k * rsb + j * csb];
                for (int j = nr; j < NR; ++j) d[j] = 0.f;
            }
        }
    }
}

/* dst[0:n] = src[0:n*ss:ss] with zeros at t < lo and t >= hi (the padded border). */
static inline void f32_pack_segment(float* restrict d, const float* restrict src, int64_t ss,
                                    int n, int lo, int hi) {
    if (ss == 1 && lo == 0 && hi == n) {
        if (n == 16) {
            memcpy(d, src, 16 * sizeof(float));
            return;
        }
        for (int t = 0; t < n; ++t) d[t] = src[t];
        return;
    }
    for (int t = 0; t < lo; ++t) d[t] = 0.f;
    if (ss == 1)
        for (int t = lo; t < hi; ++t) d[t] = src[t];
    else
        for (int t = lo; t < hi; ++t) d[t] = src[t * ss];
    for (int t = hi; t < n; ++t) d[t] = 0.f;
}

/* im2col fused into B packing: B[k, p] = x[ci, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
 * (zero outside the image) for k = (ci, kh, kw), p = (oh, ow).
 * Panel by panel, so stores are sequential (walking all panels per k row would hit one L1
 * set: panels are kc*NR floats apart, a multiple of 4 KiB). The NR pixels of a panel form
 * a few runs of consecutive ow in one output row; for stride 1 each run reads a contiguous
 * input segment, and only the padded borders are zero filled. */
static void f32_gemm_pack_b_im2col(const f32_conv_geom* g, int64_t pc, int64_t kc, int64_t jc,
                                   int64_t nc, int NR, float* dst) {
    const int64_t KHW = g->KH * g->KW, HW = g->H * g->W, H = g->H, W = g->W, OW = g->OW;
    const int64_t SW = g->SW;
    int64_t run_ih[F32_GEMM_MAX_NR], run_iw[F32_GEMM_MAX_NR];
    int run_j[F32_GEMM_MAX_NR], run_len[F32_GEMM_MAX_NR];
    const int64_t ci0 = pc / KHW, rem0 = pc % KHW;
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int nr = (int)(nc - jr < NR ? nc - jr : NR);
        float* dp = dst + (jr / NR) * kc * NR;
        int nruns = 0, j = 0;
        int64_t p = jc + jr, oh = p / OW, ow = p % OW;
        while (j < nr) {
            const int len = (int)(OW - ow < nr - j ? OW - ow : nr - j);
            run_ih[nruns] = oh * g->SH - g->PH;
            run_iw[nruns] = ow * SW - g->PW;
            run_j[nruns] = j;
            run_len[nruns] = len;
            ++nruns;
            j += len;
            ow = 0;
            ++oh;
        }
        int64_t ci = ci0, kh = rem0 / g->KW, kw = rem0 % g->KW;
        for (int64_t kk = 0; kk < kc; ++kk) {
            float* d = dp + kk * NR;
            const float* xc = g->x + ci * HW;
            for (int q = 0; q < nruns; ++q) {
                const int len = run_len[q];
                const int64_t ih = run_ih[q] + kh * g->DH;
                if ((uint64_t)ih >= (uint64_t)H) {
                    memset(d + run_j[q], 0, (size_t)len * sizeof(float));
                    continue;
                }
                /* valid t in [lo, hi): 0 <= iw0 + t*SW < W */
                const int64_t iw0 = run_iw[q] + kw * g->DW;
                int64_t lo, hi;
                if (SW == 1) { /* no divisions on the common path */
                    lo = iw0 >= 0 ? 0 : -iw0;
                    hi = W - iw0;
                } else if (SW == 2) {
                    lo = iw0 >= 0 ? 0 : (-iw0 + 1) >> 1;
                    hi = W - iw0 <= 0 ? 0 : ((W - iw0 - 1) >> 1) + 1;
                } else {
                    lo = iw0 >= 0 ? 0 : (-iw0 + SW - 1) / SW;
                    hi = W - iw0 <= 0 ? 0 : (W - iw0 - 1) / SW + 1;
                }
                if (lo > len) lo = len;
                if (hi > len) hi = len;
                if (hi < lo) hi = lo;
                f32_pack_segment(d + run_j[q], xc + ih * W + iw0, SW, len, (int)lo, (int)hi);
            }
            for (int t = nr; t < NR; ++t) d[t] = 0.f;
            if (++kw == g->KW) {
                kw = 0;
                if (++kh == g->KH) {
                    kh = 0;
                    ++ci;
                }
            }
        }
    }
}
#endif
