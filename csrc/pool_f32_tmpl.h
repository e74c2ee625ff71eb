/* fp32 2-D max / average pooling over NCHW planes, compiled once per ISA level (no include
 * guard: pool_f32.h includes it after reduce_simd.h for each DSL_SIMD_LEVEL).
 *
 * One output row (plane, oh) at a time, through a row buffer rb of p->Wp floats that
 * stands for the padded input row (rb[u] <-> input column u - PL):
 *   1. vertical:   rb[PL + w] = op over the valid kernel rows ih of x[ih, w]   (vector, w)
 *                  pads and the ceil_mode overhang hold the identity (-inf / 0);
 *   2. horizontal: rb[u] = op over kw of rb[u + kw * DW], u < (OW - 1) * SW + 1, in place
 *                  (each u reads only positions >= u, so ascending order is safe)   (vector, u)
 *   3. output:     y[ow] = rb[ow * SW], for averages times invh[oh] * invw[ow]
 *                  (1 / window counts, precomputed at compile time for count_include_pad).
 * Stride-2 pools compute the horizontal pass at every position and keep every other one:
 * twice the vector work, but no gathers, and the row is hot in L1 anyway. */

DSL_TGT static void DSL_FN(f32_pool2d_rows)(const float* x, float* y, const dsl_pool2d* p,
                                            int64_t r0, int64_t r1, float* rb,
                                            const float* invh, const float* invw) {
    const int64_t H = p->H, W = p->W, OH = p->OH, OW = p->OW, KH = p->KH, KW = p->KW;
    const int64_t SH = p->SH, SW = p->SW, PT = p->PT, PL = p->PL, DH = p->DH, DW = p->DW;
    const int64_t Wp = p->Wp, avg = p->avg;
    const float ident = avg ? 0.f : -INFINITY;
    /* input columns that some window reaches; the ceil_mode overhang may reach past W,
     * a large right pad may leave columns unread */
    const int64_t wn = W < Wp - PL ? W : Wp - PL;
    const int64_t nh = (OW - 1) * SW + 1;
    int64_t u;
    for (u = 0; u < PL && u < Wp; ++u) rb[u] = ident;
    for (u = PL + (wn > 0 ? wn : 0); u < Wp; ++u) rb[u] = ident;
    float* rw = rb + PL;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t plane = r / OH, oh = r % OH;
        const float* xp = x + plane * H * W;
        float* yr = y + r * OW;
        /* 1. vertical */
        int first = 1;
        for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = oh * SH - PT + kh * DH;
            if (ih < 0 || ih >= H) continue;
            const float* xr = xp + ih * W;
            int64_t w = 0;
            if (first) {
                for (; w + VN <= wn; w += VN) VSTORE(rw + w, VLOAD(xr + w));
                for (; w < wn; ++w) rw[w] = xr[w];
                first = 0;
            } else if (avg) {
                for (; w + VN <= wn; w += VN) VSTORE(rw + w, VADD(VLOAD(rw + w), VLOAD(xr + w)));
                for (; w < wn; ++w) rw[w] += xr[w];
            } else {
                for (; w + VN <= wn; w += VN) VSTORE(rw + w, VMAX(VLOAD(rw + w), VLOAD(xr + w)));
                for (; w < wn; ++w) rw[w] = xr[w] > rw[w] ? xr[w] : rw[w];
            }
        }
        if (first)   /* no valid kernel row (huge pads / dilation): the window is all padding */
            for (int64_t w = 0; w < wn; ++w) rw[w] = ident;
        /* 2. horizontal, in place */
        if (KW > 1) {
            u = 0;
            if (avg) {
                for (; u + VN <= nh; u += VN) {
                    vf a = VLOAD(rb + u);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VADD(a, VLOAD(rb + u + kw * DW));
                    VSTORE(rb + u, a);
                }
                for (; u < nh; ++u) {
                    float a = rb[u];
                    for (int64_t kw = 1; kw < KW; ++kw) a += rb[u + kw * DW];
                    rb[u] = a;
                }
            } else {
                for (; u + VN <= nh; u += VN) {
                    vf a = VLOAD(rb + u);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VMAX(a, VLOAD(rb + u + kw * DW));
                    VSTORE(rb + u, a);
                }
                for (; u < nh; ++u) {
                    float a = rb[u];
                    for (int64_t kw = 1; kw < KW; ++kw) a = rb[u + kw * DW] > a ? rb[u + kw * DW] : a;
                    rb[u] = a;
                }
            }
        }
        /* 3. output */
        int64_t ow = 0;
        if (avg) {
            const float sh = invh[oh];
            if (SW == 1) {
                vf vs = VSET1(sh);
                for (; ow + VN <= OW; ow += VN)
                    VSTORE(yr + ow, VMUL(VMUL(VLOAD(rb + ow), vs), VLOAD(invw + ow)));
            }
            for (; ow < OW; ++ow) yr[ow] = rb[ow * SW] * sh * invw[ow];
        } else if (SW == 1) {
            for (; ow + VN <= OW; ow += VN) VSTORE(yr + ow, VLOAD(rb + ow));
            for (; ow < OW; ++ow) yr[ow] = rb[ow];
        } else {
            for (; ow < OW; ++ow) yr[ow] = rb[ow * SW];
        }
        /* the vertical pass of the next row rewrites rb[PL, PL + wn) only; the pads
         * rb[0, PL) and rb[PL + wn, Wp) were clobbered by step 2: restore them */
        for (u = 0; u < PL && u < Wp; ++u) rb[u] = ident;
        for (u = PL + (wn > 0 ? wn : 0); u < Wp; ++u) rb[u] = ident;
    }
}
