/* Template for the Winograd F(2x2, 3x3) transforms (csrc/f32_winograd.h): one source for
 * every vector form, included once per form through dsl_simd_forms.h (the primitives and
 * VM_SFX / VM_TARGET / VM_LEN of one form). Defines f32_wino_input__<form> and
 * f32_wino_output__<form>. Vector loops over consecutive tiles of one tile row; the
 * stride-2 column step reads even lanes (VF_LOAD_EVEN); tails are masked vectors (the
 * scratch rows have F32_WINO_ROW's slack for the even-lane loads past a row's end). */

/* p[2 i] = a[i], p[2 i + 1] = b[i] for the VM_LEN lanes */
static inline __attribute__((always_inline)) VM_TARGET void
VM_SFX(f32_wino_store_pairs)(float* p, VF a, VF b) {
#if DSL_SIMD_FORM == DSL_FORM_GENERIC
    p[0] = a;
    p[1] = b;
#elif DSL_SIMD_FORM == DSL_FORM_AVX2
    const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
#elif DSL_SIMD_FORM == DSL_FORM_AVX512
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    _mm512_storeu_ps(p, _mm512_permutex2var_ps(a, il, b));
    _mm512_storeu_ps(p + 16, _mm512_permutex2var_ps(a, ih, b));
#else /* 16 lanes as two AVX2 halves */
    __m256 lo = _mm256_unpacklo_ps(a.lo, b.lo), hi = _mm256_unpackhi_ps(a.lo, b.lo);
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    lo = _mm256_unpacklo_ps(a.hi, b.hi);
    hi = _mm256_unpackhi_ps(a.hi, b.hi);
    _mm256_storeu_ps(p + 16, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + 24, _mm256_permute2f128_ps(lo, hi, 0x31));
#endif
}

/* A^T m A for the tiles k .. k + nt of a tile-row segment (nt <= VM_LEN; fewer: masked
 * loads): s_r = rows 0 + 1 + 2 (r = 0) and 1 - 2 - 3 (r = 1) of m (m_xi at mp + xi *
 * mstride, xi = 4 * row + column), then the same on the columns of s_r; output row r's
 * pixel pairs interleaved into rows + r * 2 S (whole vectors: the buffer has the room). */
static inline __attribute__((always_inline)) VM_TARGET void
VM_SFX(f32_wino_out_cols)(const float* mp, int64_t mstride, int64_t k, int64_t nt, float* rows,
                          int64_t S) {
#if VM_LEN > 1
#define T_LD(p) (nt < VM_LEN ? VF_LOAD_N((p), nt) : VF_LOAD(p))
#else
#define T_LD(p) VF_LOAD(p)
    (void)nt;
#endif
    VF s[2][4];
    for (int c = 0; c < 4; ++c) {
        const VF a = T_LD(mp + c * mstride + k), b = T_LD(mp + (4 + c) * mstride + k);
        const VF e = T_LD(mp + (8 + c) * mstride + k), f = T_LD(mp + (12 + c) * mstride + k);
        s[0][c] = VF_ADD(VF_ADD(a, b), e);
        s[1][c] = VF_SUB(VF_SUB(b, e), f);
    }
#undef T_LD
    for (int r = 0; r < 2; ++r)
        VM_SFX(f32_wino_store_pairs)(rows + r * 2 * S + 2 * k,
                                     VF_ADD(VF_ADD(s[r][0], s[r][1]), s[r][2]),
                                     VF_SUB(VF_SUB(s[r][1], s[r][2]), s[r][3]));
}

static VM_TARGET void VM_SFX(f32_wino_input)(const f32_wino_geom* g, const float* x, int64_t t0,
                                              int64_t t1, int NR, float* v, int64_t vstride,
                                              float* scr) {
    const int64_t Cin = g->Cin, H = g->H, W = g->W, TW = g->TW, S = F32_WINO_ROW(TW);
    float* pad = scr;       /* 4 zero-padded patch rows of S */
    float* T = scr + 4 * S; /* 4 rows of S: B^T d */
    const int64_t ntl = t1 - t0, npan = (ntl + NR - 1) / NR;
    if (ntl < npan * NR) /* zero the unused lanes of the last panel, every xi and ci */
        for (int xi = 0; xi < 16; ++xi)
            for (int64_t ci = 0; ci < Cin; ++ci) {
                float* p = v + xi * vstride + (npan - 1) * Cin * NR + ci * NR;
                for (int64_t l = ntl - (npan - 1) * NR; l < NR; ++l) p[l] = 0.f;
            }
    for (int64_t t = t0; t < t1;) {
        const int64_t th = t / TW, tw0 = t % TW;
        const int64_t tw1 = (TW < tw0 + (t1 - t) ? TW : tw0 + (t1 - t));
        const int64_t n = tw1 - tw0, L = 2 * n + 2;
        const int64_t iw0 = 2 * tw0 - g->PW;
        const int edge = iw0 < 0 || iw0 + L > W;
        int64_t j0 = iw0 < 0 ? -iw0 : 0, j1 = iw0 + L > W ? W - iw0 : L;
        if (j1 < j0) j1 = j0;
        int64_t ihs[4];
        for (int r = 0; r < 4; ++r) ihs[r] = 2 * th - g->PH + r;
        for (int64_t ci = 0; ci < Cin; ++ci) {
            const float* xc = x + ci * H * W;
            const float* rp[4];
            for (int r = 0; r < 4; ++r) { /* patch row r: in the image, or a padded copy */
                const int inside = ihs[r] >= 0 && ihs[r] < H;
                if (inside && !edge) {
                    rp[r] = xc + ihs[r] * W + iw0;
                } else {
                    float* pr = pad + r * S;
                    if (!inside) {
                        for (int64_t j = 0; j < L; ++j) pr[j] = 0.f;
                    } else {
                        const float* src = xc + ihs[r] * W + iw0;
                        for (int64_t j = 0; j < j0; ++j) pr[j] = 0.f;
                        int64_t j = j0;
                        for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(pr + j, VF_LOAD(src + j));
                        for (; j < j1; ++j) pr[j] = src[j];
                        for (j = j1; j < L; ++j) pr[j] = 0.f;
                    }
                    rp[r] = pr;
                }
            }
            /* B^T d over whole rows: q0 = d0 - d2, q1 = d1 + d2, q2 = d2 - d1, q3 = d1 - d3 */
            {
                const float *r0 = rp[0], *r1 = rp[1], *r2 = rp[2], *r3 = rp[3];
                float *q0 = T, *q1 = T + S, *q2 = T + 2 * S, *q3 = T + 3 * S;
                int64_t j = 0;
                for (; j + VM_LEN <= L; j += VM_LEN) {
                    const VF a = VF_LOAD(r0 + j), b = VF_LOAD(r1 + j), c = VF_LOAD(r2 + j);
                    const VF d = VF_LOAD(r3 + j);
                    VF_STORE(q0 + j, VF_SUB(a, c));
                    VF_STORE(q1 + j, VF_ADD(b, c));
                    VF_STORE(q2 + j, VF_SUB(c, b));
                    VF_STORE(q3 + j, VF_SUB(b, d));
                }
#if VM_LEN > 1
                if (j < L) {
                    const int64_t nt = L - j;
                    const VF a = VF_LOAD_N(r0 + j, nt), b = VF_LOAD_N(r1 + j, nt);
                    const VF c = VF_LOAD_N(r2 + j, nt), d = VF_LOAD_N(r3 + j, nt);
                    VF_STORE_N(q0 + j, VF_SUB(a, c), nt);
                    VF_STORE_N(q1 + j, VF_ADD(b, c), nt);
                    VF_STORE_N(q2 + j, VF_SUB(c, b), nt);
                    VF_STORE_N(q3 + j, VF_SUB(b, d), nt);
                }
#endif
            }
            /* (B^T d) B straight into the panels: columns 2k .. 2k + 3 make tile k's
             * q[2k] - q[2k+2], q[2k+1] + q[2k+2], q[2k+2] - q[2k+1], q[2k+1] - q[2k+3]
             * (the even-lane loads may read 2 floats past the row: inside the scratch) */
            for (int64_t k = 0; k < n;) {
                const int64_t l = t - t0 + k, lane = l % NR;
                const int64_t run = (NR - lane < n - k) ? NR - lane : n - k;
                float* dst = v + (l / NR) * Cin * NR + ci * NR + lane;
                for (int i = 0; i < 4; ++i) {
                    const float* q = T + i * S + 2 * k;
                    float* o0 = dst + (4 * i) * vstride;
                    float* o1 = o0 + vstride;
                    float* o2 = o1 + vstride;
                    float* o3 = o2 + vstride;
                    int64_t u = 0;
                    for (; u + VM_LEN <= run; u += VM_LEN) {
                        const VF a = VF_LOAD_EVEN(q + 2 * u), b = VF_LOAD_EVEN(q + 2 * u + 1);
                        const VF c = VF_LOAD_EVEN(q + 2 * u + 2), d = VF_LOAD_EVEN(q + 2 * u + 3);
                        VF_STORE(o0 + u, VF_SUB(a, c));
                        VF_STORE(o1 + u, VF_ADD(b, c));
                        VF_STORE(o2 + u, VF_SUB(c, b));
                        VF_STORE(o3 + u, VF_SUB(b, d));
                    }
#if VM_LEN > 1
                    if (u < run) { /* the even-lane loads read into the rows' slack */
                        const int64_t nt = run - u;
                        const VF a = VF_LOAD_EVEN(q + 2 * u), b = VF_LOAD_EVEN(q + 2 * u + 1);
                        const VF c = VF_LOAD_EVEN(q + 2 * u + 2), d = VF_LOAD_EVEN(q + 2 * u + 3);
                        VF_STORE_N(o0 + u, VF_SUB(a, c), nt);
                        VF_STORE_N(o1 + u, VF_ADD(b, c), nt);
                        VF_STORE_N(o2 + u, VF_SUB(c, b), nt);
                        VF_STORE_N(o3 + u, VF_SUB(b, d), nt);
                    }
#endif
                }
                k += run;
            }
        }
        t += n;
    }
}

/* Y for tiles [t0, t1) and output channels [co0, co1) of one image from m (16 buffers of
 * mstride floats, [Cout][ldm], tile t at column t - t0), then bias, beta * D and the
 * clamp, as the direct conv's epilogue computes them (v + bias, fma(beta, D, v),
 * min(hi, max(lo, v))). The 2 S floats of a row buffer take a masked tail's vectors. */
static VM_TARGET void VM_SFX(f32_wino_output)(const f32_wino_geom* g, const float* m,
                                               int64_t mstride, int64_t ldm, int64_t t0,
                                               int64_t t1, int64_t co0, int64_t co1,
                                               const float* bias, const float* d, float* y,
                                               float* scr) {
    const int64_t OH = g->OH, OW = g->OW, TW = g->TW, S = F32_WINO_ROW(TW);
    const int clamp = g->clamp;
    const VF vbeta = VF_SET1(g->beta), vlo = VF_SET1(g->lo), vhi = VF_SET1(g->hi);
    float* rows = scr; /* 2 rows of 2 S */
    for (int64_t co = co0; co < co1; ++co) {
        const float bv = bias ? bias[co] : 0.f;
        const VF vb = VF_SET1(bv);
        for (int64_t t = t0; t < t1;) {
            const int64_t th = t / TW, tw0 = t % TW;
            const int64_t tw1 = (TW < tw0 + (t1 - t) ? TW : tw0 + (t1 - t));
            const int64_t n = tw1 - tw0;
            const float* mp = m + co * ldm + (t - t0);
            int64_t k = 0;
            for (; k + VM_LEN <= n; k += VM_LEN)
                VM_SFX(f32_wino_out_cols)(mp, mstride, k, VM_LEN, rows, S);
#if VM_LEN > 1
            if (k < n) VM_SFX(f32_wino_out_cols)(mp, mstride, k, n - k, rows, S);
#endif
            const int64_t ow0 = 2 * tw0, w = (2 * n < OW - ow0) ? 2 * n : OW - ow0;
            for (int r = 0; r < 2; ++r) {
                const int64_t oh = 2 * th + r;
                if (oh >= OH) break;
                const float* src = rows + r * 2 * S;
                float* out = y + (co * OH + oh) * OW + ow0;
                const float* dr = d ? d + (co * OH + oh) * OW + ow0 : 0;
                int64_t j = 0;
                for (; j + VM_LEN <= w; j += VM_LEN) {
                    VF val = VF_ADD(VF_LOAD(src + j), vb);
                    if (dr) val = VF_FMA(vbeta, VF_LOAD(dr + j), val);
                    if (clamp) val = VF_MIN(vhi, VF_MAX(vlo, val));
                    VF_STORE(out + j, val);
                }
#if VM_LEN > 1
                if (j < w) {
                    VF val = VF_ADD(VF_LOAD_N(src + j, w - j), vb);
                    if (dr) val = VF_FMA(vbeta, VF_LOAD_N(dr + j, w - j), val);
                    if (clamp) val = VF_MIN(vhi, VF_MAX(vlo, val));
                    VF_STORE_N(out + j, val, w - j);
                }
#endif
            }
            t += n;
        }
    }
}
