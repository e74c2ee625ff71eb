/* Unstructured-sparse fp32 weights x dense activations (the XNNPACK SpMM / "Fast Sparse
 * ConvNets" design) with the dense GEMM's fused epilogue:
 *
 *   Y[r, p] = act(sum_k W[r, k] · X[k, p] + bias[r] + beta * D[r, p])
 *
 * W is constant and stored CSR by output row r (conv output channel, MatMul output
 * column): row_ptr[R + 1] (int32), then per nonzero its value (float) and its column k
 * (uint16, K <= 65535). Columns are absolute, not deltas: the address of each nonzero's
 * activation row is one multiply-add with no loop-carried chain (2 bytes a nonzero, as
 * XNNPACK's deltas). The dense side is the vector side: a tile of S_TW contiguous pixels
 * or tokens of X (f32_spmm_tpl.h), so nothing is gathered.
 *
 * Where X comes from (f32_spmm_desc.src):
 *   DIRECT  x[k*ldx + p] read in place (1x1 stride-1 conv: NCHW pixels are contiguous);
 *   ROWS    A[p*rsa + k*csa], p = token (MatMul / Gemm with constant weights): each tile
 *           of tokens is transposed into the thread's workspace as [K][S_TW], and the
 *           output written back transposed (Y[p, r] = y[p*ldy_c + r]);
 *   IM2COL  an NCHW image through the GEMM's im2col packer (k x k, strided or padded
 *           convs), one [K][S_TW] panel per tile;
 *   SHIFT   a stride-1 undilated k x k conv without im2col: the image is copied once,
 *           zero-padded, to xpad [Cin][Hp][Wp] (Hp = OH + KH - 1, Wp = OW + KW - 1), where
 *           output pixel (oh, ow) is p' = oh * Wp + ow and weight (ci, kh, kw) reads
 *           xpad[ci*Hp*Wp + kh*Wp + kw + p']: a contiguous window for a tile of p'. Each
 *           nonzero carries that offset (csr.off). Tiles run over p' (the Wp - OW columns
 *           past each row are computed and dropped) into the thread's [R][S_TW] buffer,
 *           whose valid columns are then copied to y.
 * One call of f32_spmm_unit computes rows [r0, r1) x pixels [p0, p1) on the calling
 * thread; kernels/sparse.pyx cuts the work (pixels first, then rows balanced by nonzeros)
 * and runs the pieces through run_ranges. */
#ifndef F32_SPMM_H
#define F32_SPMM_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_act.h"
#include "dsl_cpu.h"
#include "f32_gemm.h"

typedef struct {
    const int32_t* rp;   /* R + 1 row starts */
    const float* val;    /* nnz values */
    const uint16_t* col; /* nnz columns */
    const int32_t* off;  /* SHIFT: nnz offsets of the nonzeros' windows in x; else NULL */
} f32_spmm_csr;

/* The tile's epilogue: + bias[r], + beta * D (d[r*d_r + j*d_p] for the tile's pixel /
 * token j; NULL: none), then clamp to [lo, hi] (clamp != 0). */
typedef struct {
    const float* bias;
    const float* d;
    int64_t d_r, d_p;
    float beta, lo, hi;
    int clamp;
} f32_spmm_epi;

#define DSL_SIMD_TEMPLATE "f32_spmm_tpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

typedef void (*f32_spmm_tile_fn)(const f32_spmm_csr* w, int64_t r0, int64_t r1, const float* x,
                                 int64_t ldx, int np, float* y, int64_t ldy_r, int64_t ldy_c,
                                 const f32_spmm_epi* e);

/* Widest tile of any form (floats): what a thread's packing workspace holds per K row. */
#define F32_SPMM_MAX_TW 64
/* SHIFT: zero floats after the padded image (reads stay inside; kept for safety) */
#define F32_SPMM_PAD_TAIL 64

typedef struct {
    int form, act_form;
    int tw; /* the tile's pixels / tokens */
    f32_spmm_tile_fn tile;
} f32_spmm_kernel;

/* The tile for a step of plan level `level` under CPU cap `cap` (the CSR layout does not
 * depend on the level; the level only picks the vector width). 0, or -1 (bad level). */
static inline int f32_spmm_select(int level, int cap, f32_spmm_kernel* k) {
    if (level < 0 || level > DSL_ISA_AVX512) return -1;
    k->form = dsl_kv_form(DSL_KV_SPMM, level, cap);
    k->act_form = dsl_kv_form(DSL_KV_UNARY, level, cap);
    k->tile = f32_spmm_tile__generic;
    k->tw = 16;
#ifdef DSL_SIMD_X86
    if (k->form == DSL_FORM_AVX2) {
        k->tile = f32_spmm_tile__avx2;
        k->tw = 32;
    } else if (k->form == DSL_FORM_AVX512) {
        k->tile = f32_spmm_tile__avx512;
        k->tw = 64;
    } else if (k->form == DSL_FORM_AVX512_ON_AVX2) {
        k->tile = f32_spmm_tile__avx512_on_avx2;
        k->tw = 64;
    }
#endif
    if (k->form != DSL_FORM_GENERIC && k->tile == f32_spmm_tile__generic) k->form = DSL_FORM_GENERIC;
    return 0;
}

#define F32_SPMM_SRC_DIRECT 0
#define F32_SPMM_SRC_ROWS 1
#define F32_SPMM_SRC_IM2COL 2
#define F32_SPMM_SRC_SHIFT 3

typedef struct {
    f32_spmm_csr w;
    int64_t R, K;          /* sparse rows (outputs), reduction length */
    int src;
    const float* x;        /* DIRECT: x[k*ldx + p]; ROWS: A[p*rsa + k*csa] */
    int64_t ldx, rsa, csa;
    f32_conv_geom conv;    /* IM2COL, SHIFT (the image: conv.x) */
    float* xpad;           /* SHIFT: the image zero-padded, [Cin][Hp][Wp] + a tail */
    int64_t Cin, Hp, Wp, OH;
    float* y;              /* y[r*ldy_r + p*ldy_c] */
    int64_t ldy_r, ldy_c;
    const float* bias;     /* bias[r] or NULL */
    const float* d;        /* addend d[r*d_r + p*d_p] or NULL */
    int64_t d_r, d_p;
    float beta;
    int act;
    float act_a, act_b;
    f32_spmm_kernel k;
} f32_spmm_desc;

/* A ROWS tile transposed: dst[k*tw + j] = A[(p0 + j)*rsa + k*csa], j < np. By blocks of 16
 * k so the 16 destination rows being filled stay in L1. */
static void f32_spmm_pack_rows(const float* a, int64_t rsa, int64_t csa, int64_t p0, int np,
                               int64_t K, int tw, float* dst) {
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
        const int64_t kn = K - k0 < 16 ? K - k0 : 16;
        for (int j = 0; j < np; ++j) {
            const float* s = a + (p0 + j) * rsa + k0 * csa;
            float* dp = dst + k0 * tw + j;
            if (csa == 1)
                for (int64_t k = 0; k < kn; ++k) dp[k * tw] = s[k];
            else
                for (int64_t k = 0; k < kn; ++k) dp[k * tw] = s[k * csa];
        }
    }
}

/* Whether the addend D goes into the tile's epilogue: its values for one row (ldy_c == 1)
 * or one token (transposed output) must be contiguous, as the output's. */
static inline int f32_spmm_fuse_d(const f32_spmm_desc* d) {
    return d->d != 0 && d->src != F32_SPMM_SRC_SHIFT &&
           (d->ldy_c == 1 ? d->d_p == 1 : d->d_r == 1 && d->ldy_r == 1);
}

/* What runs after the tile's store: an addend D the tile cannot take, and activations that
 * are not a clamp (the clamp moves here too when D is here), as in the dense GEMM. */
static inline int f32_spmm_needs_post(const f32_spmm_desc* d) {
    return (d->d != 0 && !f32_spmm_fuse_d(d)) || !f32_gemm_act_is_clamp(d->act);
}

/* The tile's epilogue for desc d (no addend yet: the caller points e.d at the tile's part
 * of D when it fuses it); the clamp only when no post pass follows. */
static inline f32_spmm_epi f32_spmm_epilogue(const f32_spmm_desc* d, int post) {
    f32_spmm_epi e = {d->bias, 0, d->d_r, d->d_p, d->beta, -INFINITY, INFINITY, 0};
    if (!post && d->act == DSL_ACT_RELU) e.lo = 0.f;
    if (!post && d->act == DSL_ACT_CLIP) {
        e.lo = d->act_a;
        e.hi = d->act_b;
    }
    e.clamp = e.lo != -INFINITY || e.hi != INFINITY;
    return e;
}

static void f32_spmm_post(const f32_spmm_desc* d, int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
    const float be = d->beta;
    const float* dsrc = f32_spmm_fuse_d(d) ? 0 : d->d;
    if (d->ldy_c == 1) { /* rows r of contiguous pixels */
        for (int64_t r = r0; r < r1; ++r) {
            float* row = d->y + r * d->ldy_r + p0;
            if (dsrc) {
                const float* dr = dsrc + r * d->d_r + p0 * d->d_p;
                for (int64_t j = 0; j < p1 - p0; ++j) row[j] += be * dr[j * d->d_p];
            }
            dsl_act_row(d->k.act_form, d->act, row, p1 - p0, d->act_a, d->act_b);
        }
    } else { /* transposed output: rows p of contiguous r */
        for (int64_t p = p0; p < p1; ++p) {
            float* row = d->y + p * d->ldy_c + r0;
            if (dsrc) {
                const float* dr = dsrc + r0 * d->d_r + p * d->d_p;
                for (int64_t j = 0; j < r1 - r0; ++j) row[j] += be * dr[j * d->d_r];
            }
            dsl_act_row(d->k.act_form, d->act, row, r1 - r0, d->act_a, d->act_b);
        }
    }
}

/* Rows [r0, r1) x pixels [p0, p1). ws: K * F32_SPMM_MAX_TW floats (ROWS / IM2COL). */
static void f32_spmm_unit(const f32_spmm_desc* d, int64_t r0, int64_t r1, int64_t p0, int64_t p1,
                          float* ws) {
    const int tw = d->k.tw, post = f32_spmm_needs_post(d), fuse_d = f32_spmm_fuse_d(d);
    f32_spmm_epi e = f32_spmm_epilogue(d, post);
    if (r0 >= r1) return;
    for (int64_t p = p0; p < p1; p += tw) {
        const int np = (int)(p1 - p < tw ? p1 - p : tw);
        const float* x;
        int64_t ldx;
        if (d->src == F32_SPMM_SRC_DIRECT) {
            x = d->x + p;
            ldx = d->ldx;
        } else if (d->src == F32_SPMM_SRC_ROWS) {
            f32_spmm_pack_rows(d->x, d->rsa, d->csa, p, np, d->K, tw, ws);
            x = ws;
            ldx = tw;
        } else {
            f32_gemm_pack_b_im2col__generic(&d->conv, 0, d->K, p, np, tw, ws);
            x = ws;
            ldx = tw;
        }
        e.d = fuse_d ? d->d + p * d->d_p : 0;
        d->k.tile(&d->w, r0, r1, x, ldx, np, d->y + p * d->ldy_c, d->ldy_r, d->ldy_c, &e);
        if (post) f32_spmm_post(d, r0, r1, p, p + np);
    }
}

/* SHIFT: channels [c0, c1) of the image conv.x into xpad, zero-padded (top / left pads
 * conv.PH / conv.PW; the bottom / right edge follows from Hp / Wp), and the tail. */
static void f32_spmm_pad(const f32_spmm_desc* d, int64_t c0, int64_t c1) {
    const int64_t H = d->conv.H, W = d->conv.W, Hp = d->Hp, Wp = d->Wp;
    const int64_t PH = d->conv.PH, PW = d->conv.PW;
    for (int64_t c = c0; c < c1; ++c) {
        float* dst = d->xpad + c * Hp * Wp;
        const float* src = d->conv.x + c * H * W;
        for (int64_t h = 0; h < Hp; ++h) {
            float* row = dst + h * Wp;
            const int64_t ih = h - PH;
            if (ih < 0 || ih >= H) {
                memset(row, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            const int64_t w0 = PW > 0 ? PW : 0;                 /* first column from x */
            const int64_t w1 = PW + W < Wp ? PW + W : Wp;        /* past the last */
            if (w0 > 0) memset(row, 0, (size_t)(w0 < Wp ? w0 : Wp) * sizeof(float));
            if (w1 > w0) memcpy(row + w0, src + ih * W + (w0 - PW), (size_t)(w1 - w0) * sizeof(float));
            if (w1 < Wp) memset(row + (w1 > w0 ? w1 : w0), 0, (size_t)(Wp - (w1 > w0 ? w1 : w0)) * sizeof(float));
        }
    }
    if (c1 == d->Cin) memset(d->xpad + d->Cin * Hp * Wp, 0, F32_SPMM_PAD_TAIL * sizeof(float));
}

/* SHIFT: rows [r0, r1) x output rows [oh0, oh1) of one image (y, d at that image). ybuf:
 * (r1 - r0) * tw floats. */
static void f32_spmm_unit_shift(const f32_spmm_desc* d, int64_t r0, int64_t r1, int64_t oh0,
                                int64_t oh1, float* ybuf) {
    const int tw = d->k.tw, post = f32_spmm_needs_post(d);
    const int64_t Wp = d->Wp, OW = d->conv.OW, npo = d->OH * OW;
    f32_spmm_epi e = f32_spmm_epilogue(d, post);
    if (r0 >= r1 || oh0 >= oh1) return;
    const int64_t pe = (oh1 - 1) * Wp + OW; /* past the last valid p' */
    for (int64_t pt = oh0 * Wp; pt < pe; pt += tw) {
        const int np = (int)(pe - pt < tw ? pe - pt : tw);
        d->k.tile(&d->w, r0, r1, d->xpad + pt, 0, np, ybuf - r0 * tw, tw, 1, &e);
        /* the tile's valid runs: (first j, output pixel, length) */
        int64_t seg[F32_SPMM_MAX_TW][3];
        int ns = 0;
        for (int64_t p = pt; p < pt + np;) {
            const int64_t oh = p / Wp, ow = p - oh * Wp;
            if (ow >= OW) {
                p = (oh + 1) * Wp;
                continue;
            }
            const int64_t len = OW - ow < pt + np - p ? OW - ow : pt + np - p;
            seg[ns][0] = p - pt;
            seg[ns][1] = oh * OW + ow;
            seg[ns][2] = len;
            ++ns;
            p += len;
        }
        for (int64_t r = r0; r < r1; ++r) {
            const float* src = ybuf + (r - r0) * tw;
            float* dst = d->y + r * npo;
            for (int i = 0; i < ns; ++i)
                memcpy(dst + seg[i][1], src + seg[i][0], (size_t)seg[i][2] * sizeof(float));
        }
    }
    if (post) f32_spmm_post(d, r0, r1, oh0 * OW, oh1 * OW);
}

/* Row bounds of `parts` row parts with balanced work (nonzeros + 2 per row for the row's
 * loop and epilogue): b[0] = 0, ..., b[parts] = R. */
static inline void f32_spmm_row_bounds(const int32_t* rp, int64_t R, int parts, int64_t* b) {
    const int64_t total = (int64_t)rp[R] + 2 * R;
    b[0] = 0;
    for (int i = 1; i < parts; ++i) {
        const int64_t target = total * i / parts;
        int64_t lo = b[i - 1], hi = R; /* first r with rp[r] + 2r >= target */
        while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            if ((int64_t)rp[mid] + 2 * mid >= target) hi = mid;
            else lo = mid + 1;
        }
        b[i] = lo;
    }
    b[parts] = R;
}
#endif
