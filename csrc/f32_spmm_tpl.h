/* Template of the sparse-weight x dense-activation tile (f32_spmm.h): one source for every
 * vector form, included (no include guard) once per form through dsl_simd_forms.h.
 *
 * f32_spmm_tile__<form>(w, r0, r1, x, ldx, np, y, ldy_r, ldy_c, bias, lo, hi, clamp):
 *   for each CSR row r in [r0, r1) and pixels / tokens j in [0, np) (np <= S_TW):
 *     y[r*ldy_r + j*ldy_c] = clamp(sum_i val[i] * x[col[i]*ldx + j] + bias[r])
 * The np values of one row are S_NV vectors of accumulators; each nonzero broadcasts its
 * weight and issues one FMA per vector on a contiguous load of x's row col[i] (no gather,
 * no index decode beyond one multiply-add). Nonzeros go two at a time into two accumulator
 * sets (2 * S_NV independent FMA chains: 8 for the vector forms, enough to cover the FMA
 * latency of 4 on 2 pipes); the sets are summed before the epilogue. A partial last vector
 * (np not a multiple of VM_LEN) uses masked loads and stores, so x and y are never read or
 * written past p + np (x can be the activation in place: a 1x1 conv reads NCHW directly).
 * ldy_c != 1 (a MatMul's transposed output) stores each row through a local vector buffer.
 */

#if VM_LEN == 1
#define S_NV 16
#else
#define S_NV 4
#endif
#define S_TW (S_NV * VM_LEN)
#define S_ROWS VM_SFX(f32_spmm_rows)
#define S_ROW VM_SFX(f32_spmm_row)
#define S_TILE VM_SFX(f32_spmm_tile)
#define S_TILE_AT VM_SFX(f32_spmm_tile_at)

#if VM_LEN == 1
#define S_LD(p, v, nv, masked, last) VF_LOAD(p)
#define S_ST(p, x, v, nv, masked, last) VF_STORE((p), (x))
#else
/* the last vector of a masked tile holds `last` (1..VM_LEN) valid lanes */
#define S_LD(p, v, nv, masked, last) \
    (((masked) && (v) == (nv) - 1) ? VF_LOAD_N((p), (last)) : VF_LOAD(p))
#define S_ST(p, x, v, nv, masked, last)                                                   \
    do {                                                                                  \
        if ((masked) && (v) == (nv) - 1) VF_STORE_N((p), (x), (last));                    \
        else VF_STORE((p), (x));                                                          \
    } while (0)
#endif

/* One output row: out = the sum of the row's nonzeros times x's rows, + bias. A nonzero's
 * x row starts at x + col * ldx, or (shifted) at x + off (a 3x3 conv's shifted window). */
static inline __attribute__((always_inline)) VM_TARGET void
S_ROW(const int nv, const int masked, const int last, const int shifted,
      const float* restrict val, const uint16_t* restrict col, const int32_t* restrict off,
      int64_t n, const float* restrict x, int64_t ldx, float bias, VF* restrict out) {
    VF a[S_NV], b[S_NV];
#pragma GCC unroll 16
    for (int v = 0; v < (VM_LEN == 1 ? S_NV : nv); ++v) { /* (all: quiets GCC's warning) */
        a[v] = VF_ZERO();
        b[v] = VF_ZERO();
    }
    const float* const vend = val + (n & ~(int64_t)1);
    for (; val < vend; val += 2, col += 2, off += 2) {
        const float* x0 = x + (shifted ? (int64_t)off[0] : (int64_t)col[0] * ldx);
        const float* x1 = x + (shifted ? (int64_t)off[1] : (int64_t)col[1] * ldx);
        const VF w0 = VF_BCAST(val), w1 = VF_BCAST(val + 1);
#pragma GCC unroll 16
        for (int v = 0; v < nv; ++v) {
            a[v] = VF_FMA(w0, S_LD(x0 + v * VM_LEN, v, nv, masked, last), a[v]);
            b[v] = VF_FMA(w1, S_LD(x1 + v * VM_LEN, v, nv, masked, last), b[v]);
        }
    }
    if (n & 1) {
        const float* x0 = x + (shifted ? (int64_t)off[0] : (int64_t)col[0] * ldx);
        const VF w0 = VF_BCAST(val);
#pragma GCC unroll 16
        for (int v = 0; v < nv; ++v)
            a[v] = VF_FMA(w0, S_LD(x0 + v * VM_LEN, v, nv, masked, last), a[v]);
    }
    const VF bv = VF_SET1(bias);
#pragma GCC unroll 16
    for (int v = 0; v < nv; ++v) out[v] = VF_ADD(VF_ADD(a[v], b[v]), bv);
}

/* Rows [r0, r1) with the epilogue e: bias, then (e->d) the addend beta * D, then the clamp.
 * ldy_c == 1: each row's np values are contiguous, and so are D's (e->d_p == 1). Otherwise
 * (a MatMul's transposed output, ldy_r == 1; D's rows contiguous: e->d_r == 1) rows go by
 * blocks of 16 through a [np][16] buffer, and each token's 16 outputs are stored as one
 * contiguous run, the addend and clamp applied on the way: storing a row's np values
 * straight to y at stride ldy_c put them in np different cache lines, all in the same few
 * L1 sets when ldy_c * 4 is a multiple of 4 KiB (N = 3072: one set for 64 lines). */
static inline __attribute__((always_inline)) VM_TARGET void
S_ROWS(const int nv, const int masked, const int last, const int shifted,
       const f32_spmm_csr* restrict w,
       int64_t r0, int64_t r1, const float* restrict x, int64_t ldx, float* restrict y,
       int64_t ldy_r, int64_t ldy_c, const f32_spmm_epi* restrict e) {
    const int32_t* restrict rp = w->rp;
    const float* restrict bias = e->bias;
    const float* restrict dd = e->d;
    const int clamp = e->clamp;
    const VF vlo = VF_SET1(e->lo), vhi = VF_SET1(e->hi), vbeta = VF_SET1(e->beta);
    const int np = (nv - 1) * VM_LEN + (masked ? last : VM_LEN);
    VF a[S_NV];
    if (ldy_c == 1) {
        for (int64_t r = r0; r < r1; ++r) {
            S_ROW(nv, masked, last, shifted, w->val + rp[r], w->col + rp[r], w->off + rp[r],
                  rp[r + 1] - rp[r], x, ldx,
                  bias ? bias[r] : 0.f, a);
            if (dd) {
                const float* dr = dd + r * e->d_r;
#pragma GCC unroll 16
                for (int v = 0; v < nv; ++v)
                    a[v] = VF_FMA(vbeta, S_LD(dr + v * VM_LEN, v, nv, masked, last), a[v]);
            }
            float* yr = y + r * ldy_r;
#pragma GCC unroll 16
            for (int v = 0; v < nv; ++v) {
                const VF o = clamp ? VF_MIN(vhi, VF_MAX(vlo, a[v])) : a[v];
                S_ST(yr + v * VM_LEN, o, v, nv, masked, last);
            }
        }
        return;
    }
#if VM_LEN != 1
    float t[S_TW] __attribute__((aligned(64)));
#endif
    float tb[S_TW * 16] __attribute__((aligned(64)));
    const float lo = e->lo, hi = e->hi, beta = e->beta;
    for (int64_t rb = r0; rb < r1; rb += 16) {
        const int nr = (int)(r1 - rb < 16 ? r1 - rb : 16);
        for (int q = 0; q < nr; ++q) {
            const int64_t r = rb + q;
            S_ROW(nv, masked, last, shifted, w->val + rp[r], w->col + rp[r], w->off + rp[r],
                  rp[r + 1] - rp[r], x, ldx,
                  bias ? bias[r] : 0.f, a);
#if VM_LEN == 1
            for (int j = 0; j < np; ++j) tb[j * 16 + q] = a[j];
#else
#pragma GCC unroll 16
            for (int v = 0; v < nv; ++v) VF_STORE(t + v * VM_LEN, a[v]);
            for (int j = 0; j < np; ++j) tb[j * 16 + q] = t[j];
#endif
        }
        float* yb = y + rb * ldy_r;
        if (nr == 16 && ldy_r == 1) {
            for (int j = 0; j < np; ++j) {
                const float* dj = dd ? dd + j * e->d_p + rb : 0;
#pragma GCC unroll 16
                for (int u = 0; u < 16; u += VM_LEN) {
                    VF o = VF_LOAD(tb + j * 16 + u);
                    if (dd) o = VF_FMA(vbeta, VF_LOAD(dj + u), o);
                    if (clamp) o = VF_MIN(vhi, VF_MAX(vlo, o));
                    VF_STORE(yb + j * ldy_c + u, o);
                }
            }
        } else {
            for (int j = 0; j < np; ++j)
                for (int u = 0; u < nr; ++u) {
                    float o = tb[j * 16 + u];
                    if (dd) o += beta * dd[j * e->d_p + (rb + u) * e->d_r];
                    if (clamp) o = o < lo ? lo : (o > hi ? hi : o);
                    yb[j * ldy_c + u * ldy_r] = o;
                }
        }
    }
}

static inline __attribute__((always_inline)) VM_TARGET void
S_TILE_AT(const int shifted, const f32_spmm_csr* w, int64_t r0, int64_t r1, const float* x,
          int64_t ldx, int np, float* y, int64_t ldy_r, int64_t ldy_c, const f32_spmm_epi* e) {
    if (np >= S_TW) {
        S_ROWS(S_NV, 0, VM_LEN, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e);
        return;
    }
    if (np <= 0) return;
#if VM_LEN == 1
    S_ROWS(np, 0, 1, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e);
#else
    const int nv = (np + VM_LEN - 1) / VM_LEN, last = np - (nv - 1) * VM_LEN;
    switch (nv) { /* compile-time vector counts, masked last vector */
    case 1: S_ROWS(1, 1, last, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e); break;
    case 2: S_ROWS(2, 1, last, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e); break;
    case 3: S_ROWS(3, 1, last, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e); break;
    default: S_ROWS(4, 1, last, shifted, w, r0, r1, x, ldx, y, ldy_r, ldy_c, e); break;
    }
#endif
}

static VM_TARGET void S_TILE(const f32_spmm_csr* w, int64_t r0, int64_t r1, const float* x,
                             int64_t ldx, int np, float* y, int64_t ldy_r, int64_t ldy_c,
                             const f32_spmm_epi* e) {
    if (w->off)
        S_TILE_AT(1, w, r0, r1, x, ldx, np, y, ldy_r, ldy_c, e);
    else
        S_TILE_AT(0, w, r0, r1, x, ldx, np, y, ldy_r, ldy_c, e);
}

#undef S_NV
#undef S_TW
#undef S_ROWS
#undef S_ROW
#undef S_TILE
#undef S_TILE_AT
#undef S_LD
#undef S_ST
