/* fp32 2-D max / average pooling over NCHW planes, compiled once per kernel form (no include
 * guard: pool_f32.h includes it after dsl_simd_form.h for each DSL_SIMD_FORM).
 *
 * One output row (plane, oh) at a time, through a row buffer rb (>= Wp + 1 floats) that
 * stands for the padded input row, rb[u] <-> input column u - PL:
 *   1. vertical:   rb[PL + w] = op over the valid kernel rows of x[ih, w], vectorised along
 *                  w, up to 4 input rows per pass over rb; rb's pad and ceil_mode overhang
 *                  positions hold the identity (-inf / 0), written once per call;
 *   2. horizontal: y[ow] = op over kw of rb[ow * SW + kw * DW], vectorised along ow for
 *                  SW == 1 (plain loads) and SW == 2 (even-lane loads, VF_LOAD_EVEN), scalar
 *                  otherwise; averages are scaled by invh[oh] * invw[ow] (1 / window counts
 *                  precomputed at compile time, which is where count_include_pad lives).
 * VF_LOAD_EVEN reads one float past the last needed position: rb must hold Wp + 1 floats. */

#define DSL_POOL_VROWS 4

VM_TARGET static void VM_SFX(f32_pool2d_rows)(const float* x, float* y, const dsl_pool2d* p,
                                            int64_t r0, int64_t r1, float* rb,
                                            const float* invh, const float* invw) {
    const int64_t H = p->H, W = p->W, OH = p->OH, OW = p->OW, KW = p->KW;
    const int64_t SW = p->SW, PL = p->PL, DH = p->DH, DW = p->DW;
    const int64_t Wp = p->Wp, avg = p->avg;
    const float ident = avg ? 0.f : -INFINITY;
    const int64_t wn = dsl_pool2d_cols(p);
    int64_t u;
    for (u = 0; u < PL && u < Wp + 1; ++u) rb[u] = ident;
    for (u = PL + wn; u < Wp + 1; ++u) rb[u] = ident;
    float* rw = rb + PL;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t plane = r / OH, oh = r % OH;
        const float* xp = x + plane * H * W;
        float* yr = y + r * OW;
        /* 1. vertical: valid kernel rows kh in [kh0, kh1) */
        int64_t kh0, kh1;
        const int64_t base = dsl_pool2d_krows(p, oh, &kh0, &kh1);
        if (kh0 >= kh1) {   /* the window is all padding (huge pads / dilation) */
            for (int64_t w = 0; w < wn; ++w) rw[w] = ident;
        }
        for (int64_t k0 = kh0; k0 < kh1; k0 += DSL_POOL_VROWS) {
            const float* rows[DSL_POOL_VROWS];
            int nr = 0, q;
            for (int64_t kh = k0; kh < kh1 && nr < DSL_POOL_VROWS; ++kh)
                rows[nr++] = xp + (base + kh * DH) * W;
            const int init = k0 == kh0;
            int64_t w = 0;
            if (avg) {
                for (; w + VM_LEN <= wn; w += VM_LEN) {
                    VF a = init ? VF_LOAD(rows[0] + w) : VF_ADD(VF_LOAD(rw + w), VF_LOAD(rows[0] + w));
                    for (q = 1; q < nr; ++q) a = VF_ADD(a, VF_LOAD(rows[q] + w));
                    VF_STORE(rw + w, a);
                }
                for (; w < wn; ++w) {
                    float a = init ? rows[0][w] : rw[w] + rows[0][w];
                    for (q = 1; q < nr; ++q) a += rows[q][w];
                    rw[w] = a;
                }
            } else {
                for (; w + VM_LEN <= wn; w += VM_LEN) {
                    VF a = init ? VF_LOAD(rows[0] + w) : VF_MAX(VF_LOAD(rw + w), VF_LOAD(rows[0] + w));
                    for (q = 1; q < nr; ++q) a = VF_MAX(a, VF_LOAD(rows[q] + w));
                    VF_STORE(rw + w, a);
                }
                for (; w < wn; ++w) {
                    float a = init ? rows[0][w] : (rw[w] > rows[0][w] ? rw[w] : rows[0][w]);
                    for (q = 1; q < nr; ++q) a = rows[q][w] > a ? rows[q][w] : a;
                    rw[w] = a;
                }
            }
        }
        /* 2. horizontal + output */
        int64_t ow = 0;
        if (avg) {
            const float sh = invh[oh];
            const VF vs = VF_SET1(sh);
            if (SW == 1) {
                for (; ow + VM_LEN <= OW; ow += VM_LEN) {
                    VF a = VF_LOAD(rb + ow);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VF_ADD(a, VF_LOAD(rb + ow + kw * DW));
                    VF_STORE(yr + ow, VF_MUL(VF_MUL(a, vs), VF_LOAD(invw + ow)));
                }
            } else if (SW == 2) {
                for (; ow + VM_LEN <= OW; ow += VM_LEN) {
                    VF a = VF_LOAD_EVEN(rb + 2 * ow);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VF_ADD(a, VF_LOAD_EVEN(rb + 2 * ow + kw * DW));
                    VF_STORE(yr + ow, VF_MUL(VF_MUL(a, vs), VF_LOAD(invw + ow)));
                }
            }
            for (; ow < OW; ++ow) {
                const float* rp = rb + ow * SW;
                float a = rp[0];
                for (int64_t kw = 1; kw < KW; ++kw) a += rp[kw * DW];
                yr[ow] = a * sh * invw[ow];
            }
        } else {
            if (SW == 1) {
                for (; ow + VM_LEN <= OW; ow += VM_LEN) {
                    VF a = VF_LOAD(rb + ow);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VF_MAX(a, VF_LOAD(rb + ow + kw * DW));
                    VF_STORE(yr + ow, a);
                }
            } else if (SW == 2) {
                for (; ow + VM_LEN <= OW; ow += VM_LEN) {
                    VF a = VF_LOAD_EVEN(rb + 2 * ow);
                    for (int64_t kw = 1; kw < KW; ++kw) a = VF_MAX(a, VF_LOAD_EVEN(rb + 2 * ow + kw * DW));
                    VF_STORE(yr + ow, a);
                }
            }
            for (; ow < OW; ++ow) {
                const float* rp = rb + ow * SW;
                float a = rp[0];
                for (int64_t kw = 1; kw < KW; ++kw) a = rp[kw * DW] > a ? rp[kw * DW] : a;
                yr[ow] = a;
            }
        }
    }
}

#undef DSL_POOL_VROWS
