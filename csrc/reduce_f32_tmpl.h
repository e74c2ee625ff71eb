/* fp32 reduction / softmax / layer-norm row kernels, compiled once per ISA level.
 *
 * No include guard on purpose: reduce_f32.h includes it after reduce_simd.h for each
 * DSL_SIMD_LEVEL. Every function is named DSL_FN(f32_<op>) and works on one thread's
 * share of the [outer, n, inner] layout the lowering normalised the op to:
 *   *_rows  inner == 1: rows of n contiguous elements, one result per row (vectorised
 *           along the row with 4 accumulators so the FP add latency is hidden);
 *   *_cols  inner  > 1: one outer block of n x inner, columns [j0, j1) (vectorised along
 *           the contiguous inner dim; partial results live in the output row, so the
 *           driver keeps j1 - j0 small enough for L1).
 */

/* ---- whole-row reductions ------------------------------------------------------------ */

DSL_TGT static float DSL_FN(f32_rsum)(const float* x, int64_t n) {
    vf a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
    int64_t k = 0;
    for (; k + 4 * VN <= n; k += 4 * VN) {
        a0 = VADD(a0, VLOAD(x + k));
        a1 = VADD(a1, VLOAD(x + k + VN));
        a2 = VADD(a2, VLOAD(x + k + 2 * VN));
        a3 = VADD(a3, VLOAD(x + k + 3 * VN));
    }
    for (; k + VN <= n; k += VN) a0 = VADD(a0, VLOAD(x + k));
    float s = VHSUM(VADD(VADD(a0, a1), VADD(a2, a3)));
    for (; k < n; ++k) s += x[k];
    return s;
}

DSL_TGT static float DSL_FN(f32_rsumabs)(const float* x, int64_t n) {
    vf a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO();
    int64_t k = 0;
    for (; k + 4 * VN <= n; k += 4 * VN) {
        a0 = VADD(a0, VABS(VLOAD(x + k)));
        a1 = VADD(a1, VABS(VLOAD(x + k + VN)));
        a2 = VADD(a2, VABS(VLOAD(x + k + 2 * VN)));
        a3 = VADD(a3, VABS(VLOAD(x + k + 3 * VN)));
    }
    for (; k + VN <= n; k += VN) a0 = VADD(a0, VABS(VLOAD(x + k)));
    float s = VHSUM(VADD(VADD(a0, a1), VADD(a2, a3)));
    for (; k < n; ++k) s += fabsf(x[k]);
    return s;
}

/* sum of (x - c)^2: c = 0 for SumSquare / L2, c = mean for the variance of a layer norm */
DSL_TGT static float DSL_FN(f32_rsumsqdev)(const float* x, int64_t n, float c) {
    vf a0 = VZERO(), a1 = VZERO(), a2 = VZERO(), a3 = VZERO(), vc = VSET1(c), d;
    int64_t k = 0;
    for (; k + 4 * VN <= n; k += 4 * VN) {
        d = VSUB(VLOAD(x + k), vc); a0 = VFMA(d, d, a0);
        d = VSUB(VLOAD(x + k + VN), vc); a1 = VFMA(d, d, a1);
        d = VSUB(VLOAD(x + k + 2 * VN), vc); a2 = VFMA(d, d, a2);
        d = VSUB(VLOAD(x + k + 3 * VN), vc); a3 = VFMA(d, d, a3);
    }
    for (; k + VN <= n; k += VN) { d = VSUB(VLOAD(x + k), vc); a0 = VFMA(d, d, a0); }
    float s = VHSUM(VADD(VADD(a0, a1), VADD(a2, a3)));
    for (; k < n; ++k) s += (x[k] - c) * (x[k] - c);
    return s;
}

DSL_TGT static float DSL_FN(f32_rmax)(const float* x, int64_t n) {
    if (n < VN) {
        float m = x[0];
        for (int64_t k = 1; k < n; ++k) m = x[k] > m ? x[k] : m;
        return m;
    }
    vf a0 = VLOAD(x), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = VN;
    for (; k + 4 * VN <= n; k += 4 * VN) {
        a0 = VMAX(a0, VLOAD(x + k));
        a1 = VMAX(a1, VLOAD(x + k + VN));
        a2 = VMAX(a2, VLOAD(x + k + 2 * VN));
        a3 = VMAX(a3, VLOAD(x + k + 3 * VN));
    }
    for (; k + VN <= n; k += VN) a0 = VMAX(a0, VLOAD(x + k));
    float m = VHMAX(VMAX(VMAX(a0, a1), VMAX(a2, a3)));
    for (; k < n; ++k) m = x[k] > m ? x[k] : m;
    return m;
}

DSL_TGT static float DSL_FN(f32_rmin)(const float* x, int64_t n) {
    if (n < VN) {
        float m = x[0];
        for (int64_t k = 1; k < n; ++k) m = x[k] < m ? x[k] : m;
        return m;
    }
    vf a0 = VLOAD(x), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = VN;
    for (; k + 4 * VN <= n; k += 4 * VN) {
        a0 = VMIN(a0, VLOAD(x + k));
        a1 = VMIN(a1, VLOAD(x + k + VN));
        a2 = VMIN(a2, VLOAD(x + k + 2 * VN));
        a3 = VMIN(a3, VLOAD(x + k + 3 * VN));
    }
    for (; k + VN <= n; k += VN) a0 = VMIN(a0, VLOAD(x + k));
    float m = VHMIN(VMIN(VMIN(a0, a1), VMIN(a2, a3)));
    for (; k < n; ++k) m = x[k] < m ? x[k] : m;
    return m;
}

/* sum of exp(x - m); with y != NULL the exponentials are also stored (softmax) */
DSL_TGT static float DSL_FN(f32_rsumexp)(const float* x, float* y, int64_t n, float m) {
    vf a0 = VZERO(), a1 = VZERO(), vm = VSET1(m), e0, e1;
    int64_t k = 0;
    if (y) {
        for (; k + 2 * VN <= n; k += 2 * VN) {
            e0 = VEXP(VSUB(VLOAD(x + k), vm));
            e1 = VEXP(VSUB(VLOAD(x + k + VN), vm));
            VSTORE(y + k, e0);
            VSTORE(y + k + VN, e1);
            a0 = VADD(a0, e0);
            a1 = VADD(a1, e1);
        }
    } else {
        for (; k + 2 * VN <= n; k += 2 * VN) {
            a0 = VADD(a0, VEXP(VSUB(VLOAD(x + k), vm)));
            a1 = VADD(a1, VEXP(VSUB(VLOAD(x + k + VN), vm)));
        }
    }
    for (; k + VN <= n; k += VN) {
        e0 = VEXP(VSUB(VLOAD(x + k), vm));
        if (y) VSTORE(y + k, e0);
        a0 = VADD(a0, e0);
    }
    float s = VHSUM(VADD(a0, a1));
    for (; k < n; ++k) {
        float e = expf(x[k] - m);
        if (y) y[k] = e;
        s += e;
    }
    return s;
}

DSL_TGT static float DSL_FN(f32_rprod)(const float* x, int64_t n) {
    float p = 1.f;
    for (int64_t k = 0; k < n; ++k) p *= x[k];
    return p;
}

DSL_TGT static void DSL_FN(f32_reduce_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                            int kind, float scale) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * n;
        float v, m;
        switch (kind) {
        case DSL_RK_SUM: v = DSL_FN(f32_rsum)(row, n); break;
        case DSL_RK_MEAN: v = DSL_FN(f32_rsum)(row, n) * scale; break;
        case DSL_RK_MAX: v = DSL_FN(f32_rmax)(row, n); break;
        case DSL_RK_MIN: v = DSL_FN(f32_rmin)(row, n); break;
        case DSL_RK_PROD: v = DSL_FN(f32_rprod)(row, n); break;
        case DSL_RK_L2: v = sqrtf(DSL_FN(f32_rsumsqdev)(row, n, 0.f)); break;
        case DSL_RK_L1: v = DSL_FN(f32_rsumabs)(row, n); break;
        case DSL_RK_SUMSQ: v = DSL_FN(f32_rsumsqdev)(row, n, 0.f); break;
        case DSL_RK_LOGSUM: v = logf(DSL_FN(f32_rsum)(row, n)); break;
        case DSL_RK_LOGSUMEXP:
            m = DSL_FN(f32_rmax)(row, n);
            v = isinf(m) ? m : m + logf(DSL_FN(f32_rsumexp)(row, NULL, n, m));
            break;
        default: v = 0.f;
        }
        y[r] = v;
    }
}

/* ---- column reductions (inner > 1) ------------------------------------------------- */

/* y[j] = op_r f(x[r * inner + j]) for j in [j0, j1); y is the output row of this outer block.
 * LOGSUMEXP needs a second buffer: it works in sub-chunks of DSL_RCOLS_TMP on the stack. */
DSL_TGT static void DSL_FN(f32_reduce_cols)(const float* x, float* y, int64_t n, int64_t inner,
                                            int64_t j0, int64_t j1, int kind, float scale) {
    int64_t j, r;
    if (kind == DSL_RK_LOGSUMEXP) {
        float s[DSL_RCOLS_TMP];
        for (int64_t c0 = j0; c0 < j1; c0 += DSL_RCOLS_TMP) {
            int64_t c1 = c0 + DSL_RCOLS_TMP < j1 ? c0 + DSL_RCOLS_TMP : j1, w = c1 - c0;
            float* m = y + c0;
            for (j = 0; j < w; ++j) { m[j] = x[c0 + j]; s[j] = 0.f; }
            for (r = 1; r < n; ++r) {
                const float* xr = x + r * inner + c0;
                j = 0;
                for (; j + VN <= w; j += VN) VSTORE(m + j, VMAX(VLOAD(m + j), VLOAD(xr + j)));
                for (; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
            }
            for (r = 0; r < n; ++r) {
                const float* xr = x + r * inner + c0;
                j = 0;
                for (; j + VN <= w; j += VN)
                    VSTORE(s + j, VADD(VLOAD(s + j), VEXP(VSUB(VLOAD(xr + j), VLOAD(m + j)))));
                for (; j < w; ++j) s[j] += expf(xr[j] - m[j]);
            }
            for (j = 0; j < w; ++j) m[j] = isinf(m[j]) ? m[j] : m[j] + logf(s[j]);
        }
        return;
    }
    /* first row initialises the accumulators */
    for (j = j0; j < j1; ++j) {
        float v = x[j];
        if (kind == DSL_RK_L1) v = fabsf(v);
        else if (kind == DSL_RK_L2 || kind == DSL_RK_SUMSQ) v = v * v;
        y[j] = v;
    }
    for (r = 1; r < n; ++r) {
        const float* xr = x + r * inner;
        j = j0;
        switch (kind) {
        case DSL_RK_SUM: case DSL_RK_MEAN: case DSL_RK_LOGSUM:
            for (; j + VN <= j1; j += VN) VSTORE(y + j, VADD(VLOAD(y + j), VLOAD(xr + j)));
            for (; j < j1; ++j) y[j] += xr[j];
            break;
        case DSL_RK_MAX:
            for (; j + VN <= j1; j += VN) VSTORE(y + j, VMAX(VLOAD(y + j), VLOAD(xr + j)));
            for (; j < j1; ++j) y[j] = xr[j] > y[j] ? xr[j] : y[j];
            break;
        case DSL_RK_MIN:
            for (; j + VN <= j1; j += VN) VSTORE(y + j, VMIN(VLOAD(y + j), VLOAD(xr + j)));
            for (; j < j1; ++j) y[j] = xr[j] < y[j] ? xr[j] : y[j];
            break;
        case DSL_RK_PROD:
            for (; j + VN <= j1; j += VN) VSTORE(y + j, VMUL(VLOAD(y + j), VLOAD(xr + j)));
            for (; j < j1; ++j) y[j] *= xr[j];
            break;
        case DSL_RK_L1:
            for (; j + VN <= j1; j += VN) VSTORE(y + j, VADD(VLOAD(y + j), VABS(VLOAD(xr + j))));
            for (; j < j1; ++j) y[j] += fabsf(xr[j]);
            break;
        case DSL_RK_L2: case DSL_RK_SUMSQ:
            for (; j + VN <= j1; j += VN) {
                vf v = VLOAD(xr + j);
                VSTORE(y + j, VFMA(v, v, VLOAD(y + j)));
            }
            for (; j < j1; ++j) y[j] += xr[j] * xr[j];
            break;
        default: break;
        }
    }
    if (kind == DSL_RK_MEAN) for (j = j0; j < j1; ++j) y[j] *= scale;
    else if (kind == DSL_RK_L2) for (j = j0; j < j1; ++j) y[j] = sqrtf(y[j]);
    else if (kind == DSL_RK_LOGSUM) for (j = j0; j < j1; ++j) y[j] = logf(y[j]);
}

/* ---- softmax / log-softmax ---------------------------------------------------------- */

/* Three passes per row: max, exp(x - max) stored + summed, scale by 1 / sum (log-softmax:
 * x - max - log(sum), the exponentials are not stored). */
DSL_TGT static void DSL_FN(f32_softmax_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                             int logsm) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        float m = DSL_FN(f32_rmax)(xr, n);
        int64_t k = 0;
        if (isinf(m)) m = m > 0 ? m : 0.f;   /* all -inf row: exp(-inf) = 0 like numpy */
        if (logsm) {
            float ls = m + logf(DSL_FN(f32_rsumexp)(xr, NULL, n, m));
            vf vls = VSET1(ls);
            for (; k + VN <= n; k += VN) VSTORE(yr + k, VSUB(VLOAD(xr + k), vls));
            for (; k < n; ++k) yr[k] = xr[k] - ls;
        } else {
            float inv = 1.f / DSL_FN(f32_rsumexp)(xr, yr, n, m);
            vf vinv = VSET1(inv);
            for (; k + VN <= n; k += VN) VSTORE(yr + k, VMUL(VLOAD(yr + k), vinv));
            for (; k < n; ++k) yr[k] *= inv;
        }
    }
}

/* Softmax over a strided axis (opset >= 13 with axis != last): columns [j0, j1) of one
 * outer block, in sub-chunks of DSL_RCOLS_TMP with max and sum kept on the stack. */
DSL_TGT static void DSL_FN(f32_softmax_cols)(const float* x, float* y, int64_t n, int64_t inner,
                                             int64_t j0, int64_t j1, int logsm) {
    float m[DSL_RCOLS_TMP], s[DSL_RCOLS_TMP];
    for (int64_t c0 = j0; c0 < j1; c0 += DSL_RCOLS_TMP) {
        int64_t c1 = c0 + DSL_RCOLS_TMP < j1 ? c0 + DSL_RCOLS_TMP : j1, w = c1 - c0, j, r;
        for (j = 0; j < w; ++j) { m[j] = x[c0 + j]; s[j] = 0.f; }
        for (r = 1; r < n; ++r) {
            const float* xr = x + r * inner + c0;
            j = 0;
            for (; j + VN <= w; j += VN) VSTORE(m + j, VMAX(VLOAD(m + j), VLOAD(xr + j)));
            for (; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
        }
        for (j = 0; j < w; ++j) if (isinf(m[j])) m[j] = m[j] > 0 ? m[j] : 0.f;
        for (r = 0; r < n; ++r) {
            const float* xr = x + r * inner + c0;
            float* yr = y + r * inner + c0;
            j = 0;
            for (; j + VN <= w; j += VN) {
                vf e = VEXP(VSUB(VLOAD(xr + j), VLOAD(m + j)));
                if (!logsm) VSTORE(yr + j, e);
                VSTORE(s + j, VADD(VLOAD(s + j), e));
            }
            for (; j < w; ++j) {
                float e = expf(xr[j] - m[j]);
                if (!logsm) yr[j] = e;
                s[j] += e;
            }
        }
        if (logsm) {
            for (j = 0; j < w; ++j) m[j] += logf(s[j]);
            for (r = 0; r < n; ++r) {
                const float* xr = x + r * inner + c0;
                float* yr = y + r * inner + c0;
                j = 0;
                for (; j + VN <= w; j += VN) VSTORE(yr + j, VSUB(VLOAD(xr + j), VLOAD(m + j)));
                for (; j < w; ++j) yr[j] = xr[j] - m[j];
            }
        } else {
            for (j = 0; j < w; ++j) s[j] = 1.f / s[j];
            for (r = 0; r < n; ++r) {
                float* yr = y + r * inner + c0;
                j = 0;
                for (; j + VN <= w; j += VN) VSTORE(yr + j, VMUL(VLOAD(yr + j), VLOAD(s + j)));
                for (; j < w; ++j) yr[j] *= s[j];
            }
        }
    }
}

/* ---- layer normalisation ------------------------------------------------------------ */

/* Per row of n: mean, then the variance as the mean of (x - mean)^2 (two passes: exact
 * enough for rtol 1e-5 where E[x^2] - mean^2 is not), then y = (x - mean) * rstd * w + b.
 * w, b are n-vectors (b may be NULL); mean_out / rstd_out (may be NULL) get one value a row. */
DSL_TGT static void DSL_FN(f32_layernorm_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                               const float* w, const float* b, float eps,
                                               float* mean_out, float* rstd_out) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        float mean = DSL_FN(f32_rsum)(xr, n) / (float)n;
        float var = DSL_FN(f32_rsumsqdev)(xr, n, mean) / (float)n;
        float rstd = 1.f / sqrtf(var + eps);
        if (mean_out) mean_out[r] = mean;
        if (rstd_out) rstd_out[r] = rstd;
        vf vm = VSET1(mean), vr = VSET1(rstd);
        int64_t k = 0;
        if (b) {
            for (; k + VN <= n; k += VN)
                VSTORE(yr + k, VFMA(VMUL(VSUB(VLOAD(xr + k), vm), vr), VLOAD(w + k), VLOAD(b + k)));
            for (; k < n; ++k) yr[k] = (xr[k] - mean) * rstd * w[k] + b[k];
        } else {
            for (; k + VN <= n; k += VN)
                VSTORE(yr + k, VMUL(VMUL(VSUB(VLOAD(xr + k), vm), vr), VLOAD(w + k)));
            for (; k < n; ++k) yr[k] = (xr[k] - mean) * rstd * w[k];
        }
    }
}

/* Instance normalisation: rows are (n, c) planes of n elements (rows row0.. of the whole
 * tensor), normalised like a layer-norm row, then scaled by the channel's w[c], b[c]. */
DSL_TGT static void DSL_FN(f32_instnorm_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                              int64_t row0, int64_t C, const float* w,
                                              const float* b, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        const int64_t c = (row0 + r) % C;
        float mean = DSL_FN(f32_rsum)(xr, n) / (float)n;
        float var = DSL_FN(f32_rsumsqdev)(xr, n, mean) / (float)n;
        float a = w[c] / sqrtf(var + eps);
        float sh = b[c] - mean * a;
        vf va = VSET1(a), vs = VSET1(sh);
        int64_t k = 0;
        for (; k + VN <= n; k += VN) VSTORE(yr + k, VFMA(VLOAD(xr + k), va, vs));
        for (; k < n; ++k) yr[k] = xr[k] * a + sh;
    }
}

/* ArgMax / ArgMin of contiguous rows: a vector max / min pass, then a scan for the first
 * (or, select_last, the last) position holding it. */
DSL_TGT static void DSL_FN(f32_argext_rows)(const float* x, int64_t* y, int64_t rows, int64_t n,
                                            int is_min, int last) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        const float m = is_min ? DSL_FN(f32_rmin)(xr, n) : DSL_FN(f32_rmax)(xr, n);
        int64_t k;
        if (last) {
            for (k = n - 1; k > 0 && xr[k] != m; --k) {}
        } else {
            for (k = 0; k < n - 1 && xr[k] != m; ++k) {}
        }
        y[r] = k;
    }
}

/* ---- per-channel affine (standalone BatchNormalization) ----------------------------- */

/* y[k] = x[k] * a + b over one plane of n elements */
DSL_TGT static void DSL_FN(f32_affine_plane)(const float* x, float* y, int64_t n, float a, float b) {
    vf va = VSET1(a), vb = VSET1(b);
    int64_t k = 0;
    for (; k + VN <= n; k += VN) VSTORE(y + k, VFMA(VLOAD(x + k), va, vb));
    for (; k < n; ++k) y[k] = x[k] * a + b;
}

/* y[k] = x[k] * a[k] + b[k] (inner == 1: channels are the contiguous dim) */
DSL_TGT static void DSL_FN(f32_affine_vec)(const float* x, float* y, int64_t n, const float* a,
                                           const float* b) {
    int64_t k = 0;
    for (; k + VN <= n; k += VN) VSTORE(y + k, VFMA(VLOAD(x + k), VLOAD(a + k), VLOAD(b + k)));
    for (; k < n; ++k) y[k] = x[k] * a[k] + b[k];
}
