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
#include "dsl_cpu.h"
#include "f32_gemm_scalar.h"

/* Short copies and zero fills must stay inline moves, not memset/memmove calls. */
#pragma GCC push_options
#pragma GCC optimize("no-tree-loop-distribute-patterns")

/* Geometry of one image (and group) of a 2-D convolution seen as the B operand:
 * B[k, p] with k = (ci, kh, kw) and p = (oh, ow). */
typedef struct {
    const float* x; /* first input channel of this image/group, NCHW */
    int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW;
} f32_conv_geom;

/* The geometry of conv step parameters `q` (any record with these fields: dsl_gemm_params,
 * dsl_spmm_params) for input channel pointer `xp`. */
#define F32_CONV_GEOM_SET(g, q, xp)                                                           \
    do {                                                                                      \
        (g)->x = (xp);                                                                        \
        (g)->H = (q)->H; (g)->W = (q)->W; (g)->KH = (q)->KH; (g)->KW = (q)->KW;              \
        (g)->SH = (q)->SH; (g)->SW = (q)->SW; (g)->PH = (q)->PH; (g)->PW = (q)->PW;          \
        (g)->DH = (q)->DH; (g)->DW = (q)->DW; (g)->OW = (q)->OW;                              \
    } while (0)

static inline __attribute__((always_inline)) void
f32_gemm_pack_a_body(const float* a, int64_t rsa, int64_t csa, int64_t ic, int64_t mc,
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

static inline __attribute__((always_inline)) void
f32_gemm_pack_b_body(const float* b, int64_t rsb, int64_t csb, int64_t pc, int64_t kc,
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

typedef float f32_pk_v8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t f32_pk_i8 __attribute__((vector_size(32)));

/* dst[0:n] = src[0:n*ss:ss] with zeros at t < lo and t >= hi (the padded border). */
static inline __attribute__((always_inline)) void
f32_pack_segment(float* restrict d, const float* restrict src, int64_t ss, int n, int lo, int hi) {
    if (ss == 1 && lo == 0 && hi == n) {
        int t = 0;
        for (; t + 8 <= n; t += 8) *(f32_pk_v8*)(d + t) = *(const f32_pk_v8*)(src + t);
        if (t < n && n >= 8) {
            *(f32_pk_v8*)(d + n - 8) = *(const f32_pk_v8*)(src + n - 8);
            return;
        }
        for (; t < n; ++t) d[t] = src[t];
        return;
    }
    if (ss == 2 && lo == 0 && hi == n) { /* stride-2 convs: even lanes of two loads */
        /* the second load starts one float early so that nothing past src[2(n-1)] is read */
        const f32_pk_i8 pick = {0, 2, 4, 6, 9, 11, 13, 15};
        int t = 0;
        for (; t + 8 <= n; t += 8)
            *(f32_pk_v8*)(d + t) = __builtin_shuffle(*(const f32_pk_v8*)(src + 2 * t),
                                                     *(const f32_pk_v8*)(src + 2 * t + 7), pick);
        if (t < n && n >= 8) { /* the tail as one overlapping vector */
            t = n - 8;
            *(f32_pk_v8*)(d + t) = __builtin_shuffle(*(const f32_pk_v8*)(src + 2 * t),
                                                     *(const f32_pk_v8*)(src + 2 * t + 7), pick);
            return;
        }
        for (; t < n; ++t) d[t] = src[2 * t];
        return;
    }
    for (int t = 0; t < lo; ++t) d[t] = 0.f;
    if ((ss == 1 || ss == 2) && hi - lo >= 8) {
        /* the valid part by vectors, the last one overlapping (a padded border's run) */
        const f32_pk_i8 pick = {0, 2, 4, 6, 9, 11, 13, 15};
        for (int t = lo;; t += 8) {
            if (t + 8 > hi) t = hi - 8;
            if (ss == 1)
                *(f32_pk_v8*)(d + t) = *(const f32_pk_v8*)(src + t);
            else
                *(f32_pk_v8*)(d + t) = __builtin_shuffle(*(const f32_pk_v8*)(src + 2 * t),
                                                         *(const f32_pk_v8*)(src + 2 * t + 7), pick);
            if (t + 8 >= hi) break;
        }
    } else if (ss == 1) {
        for (int t = lo; t < hi; ++t) d[t] = src[t];
    } else {
        for (int t = lo; t < hi; ++t) d[t] = src[t * ss];
    }
    for (int t = hi; t < n; ++t) d[t] = 0.f;
}

/* Where tap (kh, kw) of one run of output pixels reads in a channel plane. */
typedef struct {
    int64_t off;   /* plane offset of the run's first pixel (valid when lo < hi) */
    int32_t lo, hi; /* pixels [lo, hi) of the run read the image, the rest are padding */
} f32_im2col_tap;

#define F32_IM2COL_MAX_ENTRIES 256

/* im2col fused into B packing: B[k, p] = x[ci, oh*SH - PH + kh*DH, ow*SW - PW + kw*DW]
 * (zero outside the image) for k = (ci, kh, kw), p = (oh, ow).
 * Panel by panel, so stores are sequential (walking all panels per k row would hit one L1
 * set: panels are kc*NR floats apart, a multiple of 4 KiB). The NR pixels of a panel form
 * a few runs of consecutive ow in one output row. Where each run reads for each tap does
 * not depend on the channel, so it is tabulated once per panel; the k loop then only
 * copies (stride 1: contiguous input segments) and zero-fills the padded borders. */
static inline __attribute__((always_inline)) void
f32_gemm_pack_b_im2col_body(const f32_conv_geom* g, int64_t pc, int64_t kc, int64_t jc,
                            int64_t nc, int NR, float* dst) {
    const int64_t KHW = g->KH * g->KW, HW = g->H * g->W, H = g->H, W = g->W, OW = g->OW;
    const int64_t SW = g->SW;
    int64_t run_ih[F32_GEMM_MAX_NR], run_iw[F32_GEMM_MAX_NR];
    int run_j[F32_GEMM_MAX_NR], run_len[F32_GEMM_MAX_NR];
    f32_im2col_tap tab[F32_IM2COL_MAX_ENTRIES];
    const int64_t ci0 = pc / KHW, t0 = pc % KHW;
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
        const int tabulate = nruns * KHW <= F32_IM2COL_MAX_ENTRIES;
        for (int q = 0; tabulate && q < nruns; ++q) {
            for (int64_t t = 0; t < KHW; ++t) {
                const int64_t kh = t / g->KW, kw = t % g->KW;
                const int64_t ih = run_ih[q] + kh * g->DH, iw0 = run_iw[q] + kw * g->DW;
                f32_im2col_tap* e = &tab[q * KHW + t];
                /* valid pixels: 0 <= iw0 + i*SW < W */
                int64_t lo = iw0 >= 0 ? 0 : (-iw0 + SW - 1) / SW;
                int64_t hi = W - iw0 <= 0 ? 0 : (W - iw0 - 1) / SW + 1;
                if (lo > run_len[q]) lo = run_len[q];
                if (hi > run_len[q]) hi = run_len[q];
                if (hi < lo || (uint64_t)ih >= (uint64_t)H) hi = lo = 0;
                e->off = ih * W + iw0;
                e->lo = (int32_t)lo;
                e->hi = (int32_t)hi;
            }
        }
        const float* xc = g->x + ci0 * HW;
        int64_t t = t0;
        for (int64_t kk = 0; kk < kc; ++kk) {
            float* d = dp + kk * NR;
            if (tabulate) {
                for (int q = 0; q < nruns; ++q) {
                    const f32_im2col_tap e = tab[q * KHW + t];
                    const int len = run_len[q];
                    if (len == 16 && e.lo == 0 && e.hi == 16 && SW == 1) { /* the common case */
                        float* dq = d + run_j[q];
                        *(f32_pk_v8*)(dq) = *(const f32_pk_v8*)(xc + e.off);
                        *(f32_pk_v8*)(dq + 8) = *(const f32_pk_v8*)(xc + e.off + 8);
                    } else {
                        f32_pack_segment(d + run_j[q], xc + e.off, SW, len, e.lo, e.hi);
                    }
                }
            } else {
                const int64_t kh = t / g->KW, kw = t % g->KW;
                for (int q = 0; q < nruns; ++q) {
                    const int len = run_len[q];
                    const int64_t ih = run_ih[q] + kh * g->DH, iw0 = run_iw[q] + kw * g->DW;
                    int64_t lo = iw0 >= 0 ? 0 : (-iw0 + SW - 1) / SW;
                    int64_t hi = W - iw0 <= 0 ? 0 : (W - iw0 - 1) / SW + 1;
                    if (lo > len) lo = len;
                    if (hi > len) hi = len;
                    if (hi < lo || (uint64_t)ih >= (uint64_t)H) hi = lo = 0;
                    f32_pack_segment(d + run_j[q], xc + ih * W + iw0, SW, len, (int)lo, (int)hi);
                }
            }
            for (int i = nr; i < NR; ++i) d[i] = 0.f;
            if (++t == KHW) {
                t = 0;
                xc += HW;
            }
        }
    }
}

/* Each packer compiled generic and with AVX2 enabled (same source; wider moves). */
#define F32_GEMM_PACKERS(suffix, attr)                                                        \
    static attr void f32_gemm_pack_a##suffix(const float* a, int64_t rsa, int64_t csa,       \
                                             int64_t ic, int64_t mc, int64_t pc, int64_t kc, \
                                             int MR, float* dst) {                           \
        f32_gemm_pack_a_body(a, rsa, csa, ic, mc, pc, kc, MR, dst);                          \
    }                                                                                        \
    static attr void f32_gemm_pack_b##suffix(const float* b, int64_t rsb, int64_t csb,       \
                                             int64_t pc, int64_t kc, int64_t jc, int64_t nc, \
                                             int NR, float* dst) {                           \
        f32_gemm_pack_b_body(b, rsb, csb, pc, kc, jc, nc, NR, dst);                          \
    }                                                                                        \
    static attr void f32_gemm_pack_b_im2col##suffix(const f32_conv_geom* g, int64_t pc,     \
                                                    int64_t kc, int64_t jc, int64_t nc,      \
                                                    int NR, float* dst) {                    \
        f32_gemm_pack_b_im2col_body(g, pc, kc, jc, nc, NR, dst);                             \
    }

F32_GEMM_PACKERS(__generic, )
#if defined(__x86_64__)
F32_GEMM_PACKERS(__avx2, __attribute__((target(DSL_TARGET_AVX2))))
#endif

typedef void (*f32_gemm_pack_a_fn)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   int64_t, int, float*);
typedef void (*f32_gemm_pack_b_fn)(const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                                   int64_t, int, float*);
typedef void (*f32_gemm_pack_im2col_fn)(const f32_conv_geom*, int64_t, int64_t, int64_t, int64_t,
                                        int, float*);
#pragma GCC pop_options
#endif
