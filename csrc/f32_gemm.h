/* Blocked fp32 GEMM (BLIS / Goto loop nest) with a fused epilogue.
 *
 *   C[M, N] = act(alpha * A[M, K] · B[K, N] + bias + beta * D)
 *
 * A is either prepacked (constant conv weights) or a strided matrix packed per block;
 * B is prepacked (constant MatMul/Gemm weights), a strided matrix or an NCHW image read
 * through im2col. C has contiguous columns and row stride rsc. The epilogue runs on each
 * tile at its last K block: alpha, bias, an addend D with contiguous rows and clamp-type
 * activations (none, Relu, Clip) in registers before the store; a strided D and other
 * activations right after, on the tile while it is in L1. A column bias must be readable up to a multiple of NR.
 *
 * One call of f32_gemm_range computes a rectangle [m0, m1) x [n0, n1) of C on the calling
 * thread, packing into the workspace it is given (no allocation). The Cython driver
 * (kernels/gemm.pyx) cuts C into rectangles, one or more per thread.
 *
 * Loop nest (per rectangle):  jc (NC) > pc (KC, pack B block) > ic (MC, pack A block)
 *   > jr (NR: B micro-panel stays in L1) > ir (MR: A micro-panels stream from L2) > tile.
 * With a prepacked B the jc loop has one trip (no B block to fit anywhere), so an A
 * block is packed once and swept across the whole N range of the rectangle. */
#ifndef F32_GEMM_H
#define F32_GEMM_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_act.h"
#include "dsl_cpu.h"
#include "f32_gemm_scalar.h"
#include "f32_gemm_pack.h"
#include "f32_gemm_x86.h"

#define F32_GEMM_A_PACKED 0
#define F32_GEMM_A_STRIDED 1
#define F32_GEMM_B_PACKED 0
#define F32_GEMM_B_STRIDED 1
#define F32_GEMM_B_IM2COL 2

#define F32_GEMM_BIAS_NONE 0
#define F32_GEMM_BIAS_COL 1 /* bias[n]: MatMul/Gemm output column */
#define F32_GEMM_BIAS_ROW 2 /* bias[m]: conv output channel */

typedef void (*f32_gemm_tile_fn)(int64_t kc, const float* a, const float* b, float* c,
                                 int64_t ldc, int mr, int nr, int acc, const f32_gemm_epi* e);

typedef struct {
    int mr, nr;
    int tile_form, pack_form, act_form; /* the variants chosen (dsl_cpu.h forms) */
    f32_gemm_tile_fn tile;
    f32_gemm_pack_a_fn pack_a;
    f32_gemm_pack_b_fn pack_b;
    f32_gemm_pack_im2col_fn pack_im2col;
} f32_gemm_kernel;

/* Register-tile geometry of a plan ISA level (the packed layouts depend on it). */
static inline void f32_gemm_geometry(int isa, int* mr, int* nr) {
    if (isa >= DSL_ISA_AVX512) {
        *mr = 8;
        *nr = 32;
    } else if (isa == DSL_ISA_AVX2) {
        *mr = 6;
        *nr = 16;
    } else {
        *mr = 4;
        *nr = 8;
    }
}

/* The kernel for data packed for plan level `level` on a CPU capped at `cap` (dsl_cpu.h):
 * the level's geometry always, in the best form the cap allows; a cap below the level
 * runs the portable kernel of the same geometry, never an unsupported instruction.
 * Returns 0, or -1 for an unknown level. */
static inline int f32_gemm_select(int level, int cap, f32_gemm_kernel* k) {
    if (level < 0 || level > DSL_ISA_AVX512) return -1;
    f32_gemm_geometry(level, &k->mr, &k->nr);
    k->tile_form = dsl_kv_form(DSL_KV_GEMM_TILE, level, cap);
    k->pack_form = dsl_kv_form(DSL_KV_GEMM_PACK, level, cap);
    k->act_form = dsl_kv_form(DSL_KV_UNARY, level, cap);
    k->pack_a = f32_gemm_pack_a__generic;
    k->pack_b = f32_gemm_pack_b__generic;
    k->pack_im2col = f32_gemm_pack_b_im2col__generic;
#ifdef F32_GEMM_HAVE_X86
    if (k->pack_form == DSL_FORM_AVX2) { /* same layouts, wider moves */
        k->pack_a = f32_gemm_pack_a__avx2;
        k->pack_b = f32_gemm_pack_b__avx2;
        k->pack_im2col = f32_gemm_pack_b_im2col__avx2;
    }
#endif
    if (level == DSL_ISA_GENERIC) {
        k->tile = f32_gemm_tile_4x8__scalar;
    } else if (level == DSL_ISA_AVX2) {
        k->tile = f32_gemm_tile_6x16__fallback;
#ifdef F32_GEMM_HAVE_X86
        if (k->tile_form == DSL_FORM_AVX2) k->tile = f32_gemm_tile_6x16__avx2;
#endif
    } else {
        k->tile = f32_gemm_tile_8x32__fallback;
#ifdef F32_GEMM_HAVE_X86
        if (k->tile_form == DSL_FORM_AVX512) k->tile = f32_gemm_tile_8x32__avx512;
        if (k->tile_form == DSL_FORM_AVX512_ON_AVX2) k->tile = f32_gemm_tile_8x32__avx512_on_avx2;
#endif
    }
    return 0;
}

/* Count the variants a step runs (once per step, before any thread starts). */
static inline void f32_gemm_hits(const dsl_exec* x, const f32_gemm_kernel* k, int packs, int act) {
    dsl_hit(x, DSL_KV_GEMM_TILE, k->tile_form);
    if (packs) dsl_hit(x, DSL_KV_GEMM_PACK, k->pack_form);
    if (act) dsl_hit(x, DSL_KV_UNARY, k->act_form);
}

typedef struct {
    int64_t M, N, K;
    int a_kind;
    const float* a;     /* PACKED: ceil(M/MR) panels of K x MR; STRIDED: a[m*rsa + k*csa] */
    int64_t rsa, csa;
    int b_kind;
    const float* b;     /* PACKED: ceil(N/NR) panels of K x NR; STRIDED: b[k*rsb + n*csb] */
    int64_t rsb, csb;
    f32_conv_geom conv; /* IM2COL */
    float* c;
    int64_t rsc;
    /* epilogue */
    float alpha;
    int bias_mode;
    const float* bias;
    const float* d;     /* optional addend: beta * d[m*rsd + n*csd] (strides may be 0) */
    int64_t rsd, csd;
    float beta;
    int act;
    float act_a, act_b;
    /* blocking (MC multiple of MR, NC multiple of NR) */
    int64_t mc, kc, nc;
    f32_gemm_kernel k;
} f32_gemm_desc;

static inline int64_t f32_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* Cache blocking (floats). KC x NR of B (16 KiB for avx2) stays in L1 while a tile row of
 * A micro-panels streams from L2 (MC x KC = 288 KiB of the 512 KiB); NC bounds a runtime B
 * block. (Measured on Zen 3: MC 288 beats 96-144 for M >= 256, equal for M = 128.) */
#define F32_GEMM_KC 256
#define F32_GEMM_MC 288
#define F32_GEMM_NC 1024

/* The blocking of one GEMM shape for plan level `level`, and the workspace floats one
 * f32_gemm_range call packs into (what a step reserves per thread). The lowerings call
 * this through kernels/gemm.pyx: the layout is computed here only. */
static inline void f32_gemm_blocking(int level, int64_t M, int64_t N, int64_t K, int a_runtime,
                                     int b_runtime, int64_t* mc, int64_t* kc, int64_t* nc,
                                     int64_t* ws_floats) {
    int mr, nr;
    f32_gemm_geometry(level, &mr, &nr);
    const int64_t k1 = K > 1 ? K : 1;
    /* K blocks keep a B micro-panel in L1 across the row tiles of an A block; with a single
     * row tile (GEMV-like M) there is no reuse, so stream B in one pass instead. */
    int64_t nk = (M <= mr && !b_runtime) ? 1 : (k1 + F32_GEMM_KC - 1) / F32_GEMM_KC;
    if (nk < 1) nk = 1;
    *kc = (k1 + nk - 1) / nk; /* balanced K blocks */
    int64_t m = f32_round_up(F32_GEMM_MC, mr), mm = f32_round_up(M, mr);
    *mc = m < mm ? m : mm;
    if (*mc < mr) *mc = mr;
    int64_t n = f32_round_up(F32_GEMM_NC, nr), nn = f32_round_up(N, nr);
    *nc = n < nn ? n : nn;
    if (*nc < nr) *nc = nr;
    *ws_floats = (a_runtime ? *mc * *kc : 0) + (b_runtime ? *kc * *nc : 0);
}

/* Floats of workspace one f32_gemm_range call needs (mirrored in ops/gemm.py). */
static inline int64_t f32_gemm_ws_floats(const f32_gemm_desc* d) {
    int64_t n = 0;
    if (d->a_kind != F32_GEMM_A_PACKED) n += f32_round_up(d->mc, d->k.mr) * d->kc;
    if (d->b_kind != F32_GEMM_B_PACKED) n += d->kc * f32_round_up(d->nc, d->k.nr);
    return n;
}

/* Activations the tiles apply in registers as a clamp [lo, hi]. */
static inline int f32_gemm_act_is_clamp(int act) {
    return act == DSL_ACT_NONE || act == DSL_ACT_RELU || act == DSL_ACT_CLIP;
}

/* Whether the addend D goes into the tile's epilogue (in registers, before the store):
 * its rows must be contiguous like C's. */
static inline int f32_gemm_fuse_d(const f32_gemm_desc* d) { return d->d != 0 && d->csd == 1; }

/* What runs after a tile's store: an addend D the tile cannot take and activations that
 * are not a clamp (the clamp moves here too when D is here, since it must see D). */
static inline int f32_gemm_needs_post(const f32_gemm_desc* d) {
    return (d->d != 0 && !f32_gemm_fuse_d(d)) || !f32_gemm_act_is_clamp(d->act);
}

/* The epilogue part every tile applies in registers (bias pointers set per tile). */
static inline f32_gemm_epi f32_gemm_tile_epi(const f32_gemm_desc* d) {
    f32_gemm_epi e;
    e.alpha = d->alpha;
    e.bias_r = 0;
    e.bias_c = 0;
    e.lo = -INFINITY;
    e.hi = INFINITY;
    e.d = 0; /* pointed at the tile's part of D per tile when fused */
    e.ldd = d->rsd;
    e.beta = d->beta;
    if (!f32_gemm_needs_post(d)) {
        if (d->act == DSL_ACT_RELU) e.lo = 0.f;
        if (d->act == DSL_ACT_CLIP) {
            e.lo = d->act_a;
            e.hi = d->act_b;
        }
    }
    return e;
}

static void f32_gemm_post(const f32_gemm_desc* d, int64_t m0, int mr, int64_t n0, int nr) {
    for (int r = 0; r < mr; ++r) {
        const int64_t m = m0 + r;
        float* row = d->c + m * d->rsc + n0;
        if (d->d && !f32_gemm_fuse_d(d)) {
            const float* dr = d->d + m * d->rsd + n0 * d->csd;
            const float be = d->beta;
            if (d->csd == 1)
                for (int j = 0; j < nr; ++j) row[j] += be * dr[j];
            else if (d->csd == 0) {
                const float v = be * dr[0];
                for (int j = 0; j < nr; ++j) row[j] += v;
            } else
                for (int j = 0; j < nr; ++j) row[j] += be * dr[j * d->csd];
        }
        dsl_act_row(d->k.act_form, d->act, row, nr, d->act_a, d->act_b);
    }
}

/* Prefetch (into L2 and closer) the 64-byte lines [q0, q1) from p. */
static inline void f32_prefetch_lines(const float* p, int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) __builtin_prefetch(p + 16 * q, 0, 2);
}

/* C[m0:m1, n0:n1] of the product. m0 must be a multiple of MR when A is prepacked and n0
 * a multiple of NR when B is prepacked (panel boundaries). ws: f32_gemm_ws_floats floats. */
static void f32_gemm_range(const f32_gemm_desc* d, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                           float* ws) {
    const int MR = d->k.mr, NR = d->k.nr;
    const int64_t K = d->K, rsc = d->rsc;
    const int post = f32_gemm_needs_post(d);
    const f32_gemm_epi e0 = f32_gemm_tile_epi(d);
    /* no in-register epilogue at all when it would be the identity */
    const int fuse_d = f32_gemm_fuse_d(d);
    const int tile_epi = e0.alpha != 1.f || d->bias_mode != F32_GEMM_BIAS_NONE ||
                         e0.lo != -INFINITY || e0.hi != INFINITY || fuse_d;
    f32_gemm_epi e;
    if (m0 >= m1 || n0 >= n1) return;
    if (K <= 0) { /* empty reduction: C = epilogue(0), tile by tile */
        float z[F32_GEMM_MAX_MR * F32_GEMM_MAX_NR];
        for (int64_t m = m0; m < m1; m += MR) {
            const int mr = (int)(m1 - m < MR ? m1 - m : MR);
            for (int64_t n = n0; n < n1; n += NR) {
                const int nr = (int)(n1 - n < NR ? n1 - n : NR);
                memset(z, 0, sizeof(z));
                e = e0;
                if (d->bias_mode == F32_GEMM_BIAS_ROW) e.bias_r = d->bias + m;
                if (d->bias_mode == F32_GEMM_BIAS_COL) e.bias_c = d->bias + n;
                if (fuse_d) e.d = d->d + m * d->rsd + n;
                f32_gemm_store_tile(z, NR, d->c + m * rsc + n, rsc, mr, nr, 0, &e);
                if (post) f32_gemm_post(d, m, mr, n, nr);
            }
        }
        return;
    }
    const int64_t kcb = d->kc, mcb = d->mc;
    const int64_t ncb = d->b_kind == F32_GEMM_B_PACKED ? n1 - n0 : d->nc;
    float* wa = ws;
    float* wb = ws + (d->a_kind != F32_GEMM_A_PACKED ? f32_round_up(mcb, MR) * kcb : 0);
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        const int64_t nc = n1 - jc < ncb ? n1 - jc : ncb;
        for (int64_t pc = 0; pc < K; pc += kcb) {
            const int64_t kc = K - pc < kcb ? K - pc : kcb;
            const int acc = pc > 0, last = pc + kc >= K;
            const float* bblk;
            int64_t bps; /* stride between B micro-panels */
            if (d->b_kind == F32_GEMM_B_PACKED) {
                bblk = d->b + (jc / NR) * K * NR + pc * NR;
                bps = K * NR;
            } else {
                if (d->b_kind == F32_GEMM_B_STRIDED)
                    d->k.pack_b(d->b, d->rsb, d->csb, pc, kc, jc, nc, NR, wb);
                else
                    d->k.pack_im2col(&d->conv, pc, kc, jc, nc, NR, wb);
                bblk = wb;
                bps = kc * NR;
            }
            for (int64_t ic = m0; ic < m1; ic += mcb) {
                const int64_t mc = m1 - ic < mcb ? m1 - ic : mcb;
                const float* ablk;
                int64_t aps;
                if (d->a_kind == F32_GEMM_A_PACKED) {
                    ablk = d->a + (ic / MR) * K * MR + pc * MR;
                    aps = K * MR;
                } else {
                    d->k.pack_a(d->a, d->rsa, d->csa, ic, mc, pc, kc, MR, wa);
                    ablk = wa;
                    aps = kc * MR;
                }
                /* a prepacked B's next micro-panel is prefetched (kc x NR floats, first
                 * touched after this panel's row tiles), not for a few rows: a pure stream
                 * the hardware prefetches better (the prefetches cost the GEMV ~20%) */
                const int64_t pf_lines = kc * NR / 16, pf_tiles = (mc + MR - 1) / MR;
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    const int nr = (int)(nc - jr < NR ? nc - jr : NR);
                    const float* bp = bblk + (jr / NR) * bps;
                    const int pf_b = d->b_kind == F32_GEMM_B_PACKED && jr + NR < nc &&
                                     mc >= 4 * MR;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int mr = (int)(mc - ir < MR ? mc - ir : MR);
                        float* cp = d->c + (ic + ir) * rsc + jc + jr;
                        if (jr == 0 && d->a_kind == F32_GEMM_A_PACKED) {
                            /* the next A micro-panel's K block, first touched by the next
                             * tile: prepacked weights stream in kc * MR-float pieces a panel
                             * stride apart, which the hardware prefetchers pick up late
                             * (ResNet-50: -9% at 2 threads, -4% at 1) */
                            const float* na = 0;
                            if (ir + MR < mc)
                                na = ablk + (ir / MR + 1) * aps;
                            else if (ic + mcb < m1)
                                na = d->a + ((ic + mcb) / MR) * K * MR + pc * MR;
                            if (na) f32_prefetch_lines(na, 0, (kc * MR + 15) / 16);
                        }
                        if (pf_b) /* the next B micro-panel's K block, a share per row tile */
                            f32_prefetch_lines(bp + bps, pf_lines * (ir / MR) / pf_tiles,
                                               pf_lines * (ir / MR + 1) / pf_tiles);
                        const f32_gemm_epi* ep = 0;
                        if (last && tile_epi) { /* in registers, before the last store */
                            e = e0;
                            if (d->bias_mode == F32_GEMM_BIAS_ROW) e.bias_r = d->bias + ic + ir;
                            if (d->bias_mode == F32_GEMM_BIAS_COL) e.bias_c = d->bias + jc + jr;
                            if (fuse_d) e.d = d->d + (ic + ir) * d->rsd + jc + jr;
                            ep = &e;
                        }
                        d->k.tile(kc, ablk + (ir / MR) * aps, bp, cp, rsc, mr, nr, acc, ep);
                        if (last && post) f32_gemm_post(d, ic + ir, mr, jc + jr, nr);
                    }
                }
            }
        }
    }
}

/* A convolution with the output pixels as the tile's rows (CONV with pixel_rows: small
 * images, where ceil(pixels / NR) panels would waste a large part of the last one; 7 x 7
 * = 49 pixels fill 6 row tiles of 8 and one of 1, the GEMV-like tile that costs an eighth):
 *   C^T[p, co] = col^T[p, k] . W^T[k, co]
 * A = the image's pixels packed once for all of K (X read directly for a 1x1 direct conv,
 * else the im2col gather, into K x MR panels of pixels: round_up(P, MR) * K floats of ws),
 * B = W^T prepacked ([ceil(Cout/NR)][K][NR]). Output channels [n0, n1) of one image, in
 * blocks of nc channels accumulated in a scratch [round_up(P, MR)][nc] (after A in ws),
 * then written transposed into Y[co, p] (row stride rsc) with the epilogue: alpha,
 * the per-channel bias, beta * D[co * rsd + p], the activation. */
static void f32_conv_pixel_rows(const f32_gemm_desc* d, int direct, int64_t n0, int64_t n1,
                                float* ws) {
    const int MR = d->k.mr, NR = d->k.nr;
    const int64_t P = d->M, K = d->K, kcb = d->kc, ncb = d->nc;
    const int64_t Pr = f32_round_up(P, MR);
    float* wa = ws;
    float* ct = ws + Pr * (K > 0 ? K : 0);
    if (P <= 0 || n0 >= n1) return;
    /* the pixels once, all of K: [ceil(P/MR)][K][MR], a K block's slice of a panel at pc */
    if (K > 0) {
        if (direct) /* X[ci, p]: row p, column ci */
            d->k.pack_a(d->a, 1, d->csa, 0, P, 0, K, MR, wa);
        else
            d->k.pack_im2col(&d->conv, 0, K, 0, P, MR, wa);
    }
    for (int64_t jc = n0; jc < n1; jc += ncb) {
        const int64_t nc = n1 - jc < ncb ? n1 - jc : ncb;
        if (K <= 0) memset(ct, 0, sizeof(float) * (size_t)(Pr * ncb));
        for (int64_t pc = 0; pc < K; pc += kcb) {
            const int64_t kc = K - pc < kcb ? K - pc : kcb;
            const int acc = pc > 0;
            const float* bblk = d->b + (jc / NR) * K * NR + pc * NR;
            for (int64_t jr = 0; jr < nc; jr += NR) {
                const int nr = (int)(nc - jr < NR ? nc - jr : NR);
                const float* bp = bblk + (jr / NR) * K * NR;
                const int64_t lines = jr + NR < nc ? kc * NR / 16 : 0, nt = Pr / MR;
                for (int64_t ir = 0; ir < P; ir += MR) {
                    const int mr = (int)(P - ir < MR ? P - ir : MR);
                    /* the next weight panel's K block, a share per row tile */
                    f32_prefetch_lines(bp + K * NR, lines * (ir / MR) / nt,
                                       lines * (ir / MR + 1) / nt);
                    d->k.tile(kc, wa + (ir / MR) * K * MR + pc * MR, bp, ct + ir * ncb + jr, ncb,
                              mr, nr, acc, 0);
                }
            }
        }
        /* transposed out: channel co of the block is column co - jc of the scratch */
        for (int64_t co = jc; co < jc + nc; ++co) {
            float* y = d->c + co * d->rsc;
            const float* src = ct + (co - jc);
            const float bv = d->bias_mode == F32_GEMM_BIAS_ROW ? d->bias[co] : 0.f;
            const float* dr = d->d ? d->d + co * d->rsd : 0;
            const float al = d->alpha, be = d->beta;
            if (dr)
                for (int64_t p = 0; p < P; ++p) y[p] = al * src[p * ncb] + bv + be * dr[p];
            else
                for (int64_t p = 0; p < P; ++p) y[p] = al * src[p * ncb] + bv;
            dsl_act_row(d->k.act_form, d->act, y, P, d->act_a, d->act_b);
        }
    }
}

/* Split C into tm x tn rectangles for `parts` workers: the split that minimises the
 * largest per-worker cost, counted per K step in multiply-add equivalents: the tiles, the
 * runtime operands packed (~16 per element, ~40 through im2col; repeated per block that
 * needs them) and the prepacked panels streamed from L3/memory (~4 per element, per pass).
 * (im2col weight measured: it moves 3x3 convs at 14x14 to the N split, +10% on 2 threads.) */
static inline void f32_gemm_grid(const f32_gemm_desc* d, int a_runtime, int b_runtime, int parts,
                                 int* tm, int* tn) {
    const int MR = d->k.mr, NR = d->k.nr;
    const int64_t mt = (d->M + MR - 1) / MR, nt = (d->N + NR - 1) / NR;
    double best = -1.0;
    *tm = 1;
    *tn = parts;
    for (int x = 1; x <= parts; ++x) {
        if (parts % x) continue;
        const int y = parts / x;
        if ((x > mt && x > 1) || (y > nt && y > 1)) continue;
        const double pm = (double)((mt + x - 1) / x) * MR, pn = (double)((nt + y - 1) / y) * NR;
        const double m_passes = b_runtime ? 1.0 : (double)(int64_t)((pm + d->mc - 1) / d->mc);
        const double n_passes = b_runtime ? (double)(int64_t)((pn + d->nc - 1) / d->nc) : 1.0;
        double cost = pm * pn;
        cost += (a_runtime ? 16.0 : 4.0) * pm * n_passes;
        cost += b_runtime ? (d->b_kind == F32_GEMM_B_IM2COL ? 40.0 : 16.0) * pn
                          : 4.0 * pn * m_passes;
        if (best < 0 || cost < best) {
            best = cost;
            *tm = x;
            *tn = y;
        }
    }
}

/* [lo, hi) of part `i` of `parts` over `n` elements cut at multiples of `align`. */
static inline void f32_split(int64_t n, int64_t align, int i, int parts, int64_t* lo, int64_t* hi) {
    const int64_t units = (n + align - 1) / align;
    int64_t a = units * i / parts * align, b = units * (i + 1) / parts * align;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}
#endif
