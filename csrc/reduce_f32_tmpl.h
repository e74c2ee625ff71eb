/* fp32 reduction / softmax / layer-norm row kernels, compiled once per kernel form.
 *
 * No include guard on purpose: reduce_f32.h includes it after dsl_simd_form.h for each
 * DSL_SIMD_FORM (the primitives are listed there). Every function is named VM_SFX(f32_<op>) and works on one thread's
 * share of the [outer, n, inner] layout the lowering normalised the op to:
 *   *_rows  inner == 1: rows of n contiguous elements, one result per row (vectorised
 *           along the row with 4 accumulators so the FP add latency is hidden);
 *   *_cols  inner  > 1: one outer block of n x inner, columns [j0, j1) (vectorised along
 *           the contiguous inner dim; partial results live in the output row, so the
 *           driver keeps j1 - j0 small enough for L1).
 */

/* ---- whole-row reductions ------------------------------------------------------------ */

VM_TARGET static float VM_SFX(f32_rsum)(const float* x, int64_t n) {
    VF a0 = VF_ZERO(), a1 = VF_ZERO(), a2 = VF_ZERO(), a3 = VF_ZERO();
    int64_t k = 0;
    for (; k + 4 * VM_LEN <= n; k += 4 * VM_LEN) {
        a0 = VF_ADD(a0, VF_LOAD(x + k));
        a1 = VF_ADD(a1, VF_LOAD(x + k + VM_LEN));
        a2 = VF_ADD(a2, VF_LOAD(x + k + 2 * VM_LEN));
        a3 = VF_ADD(a3, VF_LOAD(x + k + 3 * VM_LEN));
    }
    for (; k + VM_LEN <= n; k += VM_LEN) a0 = VF_ADD(a0, VF_LOAD(x + k));
    float s = VF_HSUM(VF_ADD(VF_ADD(a0, a1), VF_ADD(a2, a3)));
    for (; k < n; ++k) s += x[k];
    return s;
}

VM_TARGET static float VM_SFX(f32_rsumabs)(const float* x, int64_t n) {
    VF a0 = VF_ZERO(), a1 = VF_ZERO(), a2 = VF_ZERO(), a3 = VF_ZERO();
    int64_t k = 0;
    for (; k + 4 * VM_LEN <= n; k += 4 * VM_LEN) {
        a0 = VF_ADD(a0, VF_ABS(VF_LOAD(x + k)));
        a1 = VF_ADD(a1, VF_ABS(VF_LOAD(x + k + VM_LEN)));
        a2 = VF_ADD(a2, VF_ABS(VF_LOAD(x + k + 2 * VM_LEN)));
        a3 = VF_ADD(a3, VF_ABS(VF_LOAD(x + k + 3 * VM_LEN)));
    }
    for (; k + VM_LEN <= n; k += VM_LEN) a0 = VF_ADD(a0, VF_ABS(VF_LOAD(x + k)));
    float s = VF_HSUM(VF_ADD(VF_ADD(a0, a1), VF_ADD(a2, a3)));
    for (; k < n; ++k) s += fabsf(x[k]);
    return s;
}

/* sum of (x - c)^2: c = 0 for SumSquare / L2, c = mean for the variance of a layer norm */
VM_TARGET static float VM_SFX(f32_rsumsqdev)(const float* x, int64_t n, float c) {
    VF a0 = VF_ZERO(), a1 = VF_ZERO(), a2 = VF_ZERO(), a3 = VF_ZERO(), vc = VF_SET1(c), d;
    int64_t k = 0;
    for (; k + 4 * VM_LEN <= n; k += 4 * VM_LEN) {
        d = VF_SUB(VF_LOAD(x + k), vc); a0 = VF_FMA(d, d, a0);
        d = VF_SUB(VF_LOAD(x + k + VM_LEN), vc); a1 = VF_FMA(d, d, a1);
        d = VF_SUB(VF_LOAD(x + k + 2 * VM_LEN), vc); a2 = VF_FMA(d, d, a2);
        d = VF_SUB(VF_LOAD(x + k + 3 * VM_LEN), vc); a3 = VF_FMA(d, d, a3);
    }
    for (; k + VM_LEN <= n; k += VM_LEN) { d = VF_SUB(VF_LOAD(x + k), vc); a0 = VF_FMA(d, d, a0); }
    float s = VF_HSUM(VF_ADD(VF_ADD(a0, a1), VF_ADD(a2, a3)));
    for (; k < n; ++k) s += (x[k] - c) * (x[k] - c);
    return s;
}

VM_TARGET static float VM_SFX(f32_rmax)(const float* x, int64_t n) {
    if (n < VM_LEN) {
        float m = x[0];
        for (int64_t k = 1; k < n; ++k) m = x[k] > m ? x[k] : m;
        return m;
    }
    VF a0 = VF_LOAD(x), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = VM_LEN;
    for (; k + 4 * VM_LEN <= n; k += 4 * VM_LEN) {
        a0 = VF_MAX(a0, VF_LOAD(x + k));
        a1 = VF_MAX(a1, VF_LOAD(x + k + VM_LEN));
        a2 = VF_MAX(a2, VF_LOAD(x + k + 2 * VM_LEN));
        a3 = VF_MAX(a3, VF_LOAD(x + k + 3 * VM_LEN));
    }
    for (; k + VM_LEN <= n; k += VM_LEN) a0 = VF_MAX(a0, VF_LOAD(x + k));
    float m = VF_HMAX(VF_MAX(VF_MAX(a0, a1), VF_MAX(a2, a3)));
    for (; k < n; ++k) m = x[k] > m ? x[k] : m;
    return m;
}

VM_TARGET static float VM_SFX(f32_rmin)(const float* x, int64_t n) {
    if (n < VM_LEN) {
        float m = x[0];
        for (int64_t k = 1; k < n; ++k) m = x[k] < m ? x[k] : m;
        return m;
    }
    VF a0 = VF_LOAD(x), a1 = a0, a2 = a0, a3 = a0;
    int64_t k = VM_LEN;
    for (; k + 4 * VM_LEN <= n; k += 4 * VM_LEN) {
        a0 = VF_MIN(a0, VF_LOAD(x + k));
        a1 = VF_MIN(a1, VF_LOAD(x + k + VM_LEN));
        a2 = VF_MIN(a2, VF_LOAD(x + k + 2 * VM_LEN));
        a3 = VF_MIN(a3, VF_LOAD(x + k + 3 * VM_LEN));
    }
    for (; k + VM_LEN <= n; k += VM_LEN) a0 = VF_MIN(a0, VF_LOAD(x + k));
    float m = VF_HMIN(VF_MIN(VF_MIN(a0, a1), VF_MIN(a2, a3)));
    for (; k < n; ++k) m = x[k] < m ? x[k] : m;
    return m;
}

/* sum of exp(x - m); with y != NULL the exponentials are also stored (softmax) */
VM_TARGET static float VM_SFX(f32_rsumexp)(const float* x, float* y, int64_t n, float m) {
    VF a0 = VF_ZERO(), a1 = VF_ZERO(), vm = VF_SET1(m), e0, e1;
    int64_t k = 0;
    if (y) {
        for (; k + 2 * VM_LEN <= n; k += 2 * VM_LEN) {
            e0 = VF_EXP(VF_SUB(VF_LOAD(x + k), vm));
            e1 = VF_EXP(VF_SUB(VF_LOAD(x + k + VM_LEN), vm));
            VF_STORE(y + k, e0);
            VF_STORE(y + k + VM_LEN, e1);
            a0 = VF_ADD(a0, e0);
            a1 = VF_ADD(a1, e1);
        }
    } else {
        for (; k + 2 * VM_LEN <= n; k += 2 * VM_LEN) {
            a0 = VF_ADD(a0, VF_EXP(VF_SUB(VF_LOAD(x + k), vm)));
            a1 = VF_ADD(a1, VF_EXP(VF_SUB(VF_LOAD(x + k + VM_LEN), vm)));
        }
    }
    for (; k + VM_LEN <= n; k += VM_LEN) {
        e0 = VF_EXP(VF_SUB(VF_LOAD(x + k), vm));
        if (y) VF_STORE(y + k, e0);
        a0 = VF_ADD(a0, e0);
    }
    float s = VF_HSUM(VF_ADD(a0, a1));
    for (; k < n; ++k) {
        float e = expf(x[k] - m);
        if (y) y[k] = e;
        s += e;
    }
    return s;
}

VM_TARGET static float VM_SFX(f32_rprod)(const float* x, int64_t n) {
    float p = 1.f;
    for (int64_t k = 0; k < n; ++k) p *= x[k];
    return p;
}

VM_TARGET static void VM_SFX(f32_reduce_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                            int kind, float scale) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = x + r * n;
        float v, m;
        switch (kind) {
        case DSL_RK_SUM: v = VM_SFX(f32_rsum)(row, n); break;
        case DSL_RK_MEAN: v = VM_SFX(f32_rsum)(row, n) * scale; break;
        case DSL_RK_MAX: v = VM_SFX(f32_rmax)(row, n); break;
        case DSL_RK_MIN: v = VM_SFX(f32_rmin)(row, n); break;
        case DSL_RK_PROD: v = VM_SFX(f32_rprod)(row, n); break;
        case DSL_RK_L2: v = sqrtf(VM_SFX(f32_rsumsqdev)(row, n, 0.f)); break;
        case DSL_RK_L1: v = VM_SFX(f32_rsumabs)(row, n); break;
        case DSL_RK_SUMSQ: v = VM_SFX(f32_rsumsqdev)(row, n, 0.f); break;
        case DSL_RK_LOGSUM: v = logf(VM_SFX(f32_rsum)(row, n)); break;
        case DSL_RK_LOGSUMEXP:
            m = VM_SFX(f32_rmax)(row, n);
            v = isinf(m) ? m : m + logf(VM_SFX(f32_rsumexp)(row, NULL, n, m));
            break;
        default: v = 0.f;
        }
        y[r] = v;
    }
}

/* ---- column reductions (inner > 1) ------------------------------------------------- */

/* y[j] = op_r f(x[r * inner + j]) for j in [j0, j1); y is the output row of this outer block.
 * LOGSUMEXP needs a second buffer: it works in sub-chunks of DSL_RCOLS_TMP on the stack. */
VM_TARGET static void VM_SFX(f32_reduce_cols)(const float* x, float* y, int64_t n, int64_t inner,
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
                for (; j + VM_LEN <= w; j += VM_LEN) VF_STORE(m + j, VF_MAX(VF_LOAD(m + j), VF_LOAD(xr + j)));
                for (; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
            }
            for (r = 0; r < n; ++r) {
                const float* xr = x + r * inner + c0;
                j = 0;
                for (; j + VM_LEN <= w; j += VM_LEN)
                    VF_STORE(s + j, VF_ADD(VF_LOAD(s + j), VF_EXP(VF_SUB(VF_LOAD(xr + j), VF_LOAD(m + j)))));
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
            for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(y + j, VF_ADD(VF_LOAD(y + j), VF_LOAD(xr + j)));
            for (; j < j1; ++j) y[j] += xr[j];
            break;
        case DSL_RK_MAX:
            for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(y + j, VF_MAX(VF_LOAD(y + j), VF_LOAD(xr + j)));
            for (; j < j1; ++j) y[j] = xr[j] > y[j] ? xr[j] : y[j];
            break;
        case DSL_RK_MIN:
            for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(y + j, VF_MIN(VF_LOAD(y + j), VF_LOAD(xr + j)));
            for (; j < j1; ++j) y[j] = xr[j] < y[j] ? xr[j] : y[j];
            break;
        case DSL_RK_PROD:
            for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(y + j, VF_MUL(VF_LOAD(y + j), VF_LOAD(xr + j)));
            for (; j < j1; ++j) y[j] *= xr[j];
            break;
        case DSL_RK_L1:
            for (; j + VM_LEN <= j1; j += VM_LEN) VF_STORE(y + j, VF_ADD(VF_LOAD(y + j), VF_ABS(VF_LOAD(xr + j))));
            for (; j < j1; ++j) y[j] += fabsf(xr[j]);
            break;
        case DSL_RK_L2: case DSL_RK_SUMSQ:
            for (; j + VM_LEN <= j1; j += VM_LEN) {
                VF v = VF_LOAD(xr + j);
                VF_STORE(y + j, VF_FMA(v, v, VF_LOAD(y + j)));
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
VM_TARGET static void VM_SFX(f32_softmax_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                             int logsm) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        float m = VM_SFX(f32_rmax)(xr, n);
        int64_t k = 0;
        if (isinf(m)) m = m > 0 ? m : 0.f;   /* all -inf row: exp(-inf) = 0 like numpy */
        if (logsm) {
            float ls = m + logf(VM_SFX(f32_rsumexp)(xr, NULL, n, m));
            VF vls = VF_SET1(ls);
            for (; k + VM_LEN <= n; k += VM_LEN) VF_STORE(yr + k, VF_SUB(VF_LOAD(xr + k), vls));
            for (; k < n; ++k) yr[k] = xr[k] - ls;
        } else {
            float inv = 1.f / VM_SFX(f32_rsumexp)(xr, yr, n, m);
            VF vinv = VF_SET1(inv);
            for (; k + VM_LEN <= n; k += VM_LEN) VF_STORE(yr + k, VF_MUL(VF_LOAD(yr + k), vinv));
            for (; k < n; ++k) yr[k] *= inv;
        }
    }
}

/* Softmax over a strided axis (opset >= 13 with axis != last): columns [j0, j1) of one
 * outer block, in sub-chunks of DSL_RCOLS_TMP with max and sum kept on the stack. */
VM_TARGET static void VM_SFX(f32_softmax_cols)(const float* x, float* y, int64_t n, int64_t inner,
                                             int64_t j0, int64_t j1, int logsm) {
    float m[DSL_RCOLS_TMP], s[DSL_RCOLS_TMP];
    for (int64_t c0 = j0; c0 < j1; c0 += DSL_RCOLS_TMP) {
        int64_t c1 = c0 + DSL_RCOLS_TMP < j1 ? c0 + DSL_RCOLS_TMP : j1, w = c1 - c0, j, r;
        for (j = 0; j < w; ++j) { m[j] = x[c0 + j]; s[j] = 0.f; }
        for (r = 1; r < n; ++r) {
            const float* xr = x + r * inner + c0;
            j = 0;
            for (; j + VM_LEN <= w; j += VM_LEN) VF_STORE(m + j, VF_MAX(VF_LOAD(m + j), VF_LOAD(xr + j)));
            for (; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
        }
        for (j = 0; j < w; ++j) if (isinf(m[j])) m[j] = m[j] > 0 ? m[j] : 0.f;
        for (r = 0; r < n; ++r) {
            const float* xr = x + r * inner + c0;
            float* yr = y + r * inner + c0;
            j = 0;
            for (; j + VM_LEN <= w; j += VM_LEN) {
                VF e = VF_EXP(VF_SUB(VF_LOAD(xr + j), VF_LOAD(m + j)));
                if (!logsm) VF_STORE(yr + j, e);
                VF_STORE(s + j, VF_ADD(VF_LOAD(s + j), e));
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
                for (; j + VM_LEN <= w; j += VM_LEN) VF_STORE(yr + j, VF_SUB(VF_LOAD(xr + j), VF_LOAD(m + j)));
                for (; j < w; ++j) yr[j] = xr[j] - m[j];
            }
        } else {
            for (j = 0; j < w; ++j) s[j] = 1.f / s[j];
            for (r = 0; r < n; ++r) {
                float* yr = y + r * inner + c0;
                j = 0;
                for (; j + VM_LEN <= w; j += VM_LEN) VF_STORE(yr + j, VF_MUL(VF_LOAD(yr + j), VF_LOAD(s + j)));
                for (; j < w; ++j) yr[j] *= s[j];
            }
        }
    }
}

/* ---- layer normalisation ------------------------------------------------------------ */

/* Per row of n: mean, then the variance as the mean of (x - mean)^2 (two passes: exact
 * enough for rtol 1e-5 where E[x^2] - mean^2 is not), then y = (x - mean) * rstd * w + b.
 * w, b are n-vectors (b may be NULL); mean_out / rstd_out (may be NULL) get one value a row. */
VM_TARGET static void VM_SFX(f32_layernorm_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                               const float* w, const float* b, float eps,
                                               float* mean_out, float* rstd_out) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        float mean = VM_SFX(f32_rsum)(xr, n) / (float)n;
        float var = VM_SFX(f32_rsumsqdev)(xr, n, mean) / (float)n;
        float rstd = 1.f / sqrtf(var + eps);
        if (mean_out) mean_out[r] = mean;
        if (rstd_out) rstd_out[r] = rstd;
        VF vm = VF_SET1(mean), vr = VF_SET1(rstd);
        int64_t k = 0;
        if (b) {
            for (; k + VM_LEN <= n; k += VM_LEN)
                VF_STORE(yr + k, VF_FMA(VF_MUL(VF_SUB(VF_LOAD(xr + k), vm), vr), VF_LOAD(w + k), VF_LOAD(b + k)));
            for (; k < n; ++k) yr[k] = (xr[k] - mean) * rstd * w[k] + b[k];
        } else {
            for (; k + VM_LEN <= n; k += VM_LEN)
                VF_STORE(yr + k, VF_MUL(VF_MUL(VF_SUB(VF_LOAD(xr + k), vm), vr), VF_LOAD(w + k)));
            for (; k < n; ++k) yr[k] = (xr[k] - mean) * rstd * w[k];
        }
    }
}

/* Instance normalisation: rows are (n, c) planes of n elements (rows row0.. of the whole
 * tensor), normalised like a layer-norm row, then scaled by the channel's w[c], b[c]. */
VM_TARGET static void VM_SFX(f32_instnorm_rows)(const float* x, float* y, int64_t rows, int64_t n,
                                              int64_t row0, int64_t C, const float* w,
                                              const float* b, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        const int64_t c = (row0 + r) % C;
        float mean = VM_SFX(f32_rsum)(xr, n) / (float)n;
        float var = VM_SFX(f32_rsumsqdev)(xr, n, mean) / (float)n;
        float a = w[c] / sqrtf(var + eps);
        float sh = b[c] - mean * a;
        VF va = VF_SET1(a), vs = VF_SET1(sh);
        int64_t k = 0;
        for (; k + VM_LEN <= n; k += VM_LEN) VF_STORE(yr + k, VF_FMA(VF_LOAD(xr + k), va, vs));
        for (; k < n; ++k) yr[k] = xr[k] * a + sh;
    }
}

/* ArgMax / ArgMin of contiguous rows: a vector max / min pass, then a scan for the first
 * (or, select_last, the last) position holding it. */
VM_TARGET static void VM_SFX(f32_argext_rows)(const float* x, int64_t* y, int64_t rows, int64_t n,
                                            int is_min, int last) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        const float m = is_min ? VM_SFX(f32_rmin)(xr, n) : VM_SFX(f32_rmax)(xr, n);
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
VM_TARGET static void VM_SFX(f32_affine_plane)(const float* x, float* y, int64_t n, float a, float b) {
    VF va = VF_SET1(a), vb = VF_SET1(b);
    int64_t k = 0;
    for (; k + VM_LEN <= n; k += VM_LEN) VF_STORE(y + k, VF_FMA(VF_LOAD(x + k), va, vb));
    for (; k < n; ++k) y[k] = x[k] * a + b;
}

/* y[k] = x[k] * a[k] + b[k] (inner == 1: channels are the contiguous dim) */
VM_TARGET static void VM_SFX(f32_affine_vec)(const float* x, float* y, int64_t n, const float* a,
                                           const float* b) {
    int64_t k = 0;
    for (; k + VM_LEN <= n; k += VM_LEN) VF_STORE(y + k, VF_FMA(VF_LOAD(x + k), VF_LOAD(a + k), VF_LOAD(b + k)));
    for (; k < n; ++k) y[k] = x[k] * a[k] + b[k];
}
