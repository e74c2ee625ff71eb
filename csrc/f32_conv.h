/* Convolution pieces that are not a GEMM tile: the depthwise direct kernel and the col2im
 * scatter of ConvTranspose.
 *
 * Depthwise (groups == C_in == C_out): one output plane per channel, built row by row.
 * For every kernel tap the valid output columns form one interval computed once per tap,
 * so the inner loop is a branch-free axpy over the output row (contiguous for stride 1)
 * that the compiler vectorises; the body is compiled once generic and once with AVX2
 * enabled (same source, target attribute on the wrapper). The output row is hot in L1
 * while all KH*KW taps accumulate into it, then bias and the activation are applied. */
#ifndef F32_CONV_H
#define F32_CONV_H
#include <stdint.h>
#include <string.h>
#include "dsl_act.h"
#include "dsl_cpu.h"

typedef struct {
    int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
} f32_dw_geom;

static inline __attribute__((always_inline)) void
f32_dwconv_plane_body(const f32_dw_geom* g, const float* restrict x, const float* restrict w,
                      float bias, float* restrict y, int act, float aa, float ab) {
    const int64_t W = g->W, OW = g->OW, SW = g->SW;
    for (int64_t oh = 0; oh < g->OH; ++oh) {
        float* restrict yr = y + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = bias;
        for (int64_t kh = 0; kh < g->KH; ++kh) {
            const int64_t ih = oh * g->SH - g->PH + kh * g->DH;
            if (ih < 0 || ih >= g->H) continue;
            const float* restrict xr = x + ih * W;
            for (int64_t kw = 0; kw < g->KW; ++kw) {
                const float wv = w[kh * g->KW + kw];
                const int64_t off = kw * g->DW - g->PW; /* iw = ow * SW + off */
                /* valid ow: 0 <= ow*SW + off < W */
                int64_t lo = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int64_t hi = W - off <= 0 ? 0 : (W - off - 1) / SW + 1;
                if (hi > OW) hi = OW;
                if (SW == 1) {
                    const float* restrict xs = xr + off;
                    for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
                } else {
                    for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * SW + off];
                }
            }
        }
        dsl_act_row(act, yr, OW, aa, ab);
    }
}

static void f32_dwconv_plane__generic(const f32_dw_geom* g, const float* x, const float* w,
                                      float bias, float* y, int act, float aa, float ab) {
    f32_dwconv_plane_body(g, x, w, bias, y, act, aa, ab);
}

#if defined(__x86_64__)
static __attribute__((target("avx2,fma"))) void
f32_dwconv_plane__avx2(const f32_dw_geom* g, const float* x, const float* w, float bias,
                       float* y, int act, float aa, float ab) {
    f32_dwconv_plane_body(g, x, w, bias, y, act, aa, ab);
}
#endif

typedef void (*f32_dwconv_plane_fn)(const f32_dw_geom*, const float*, const float*, float,
                                    float*, int, float, float);

static inline f32_dwconv_plane_fn f32_dwconv_select(int isa) {
#if defined(__x86_64__)
    if (isa >= DSL_ISA_AVX2 && dsl_isa() >= DSL_ISA_AVX2) return f32_dwconv_plane__avx2;
#endif
    (void)isa;
    return f32_dwconv_plane__generic;
}

/* ConvTranspose scatter: the GEMM produced col[(co, kh, kw), (h, w)] for channels
 * [0, nco) of a chunk; add every column entry into its output pixel of y (planes of
 * OH x OW, already initialised with the bias). */
static void f32_col2im_add(const float* col, int64_t nco, int64_t H, int64_t W, int64_t KH,
                           int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH,
                           int64_t DW, int64_t OH, int64_t OW, float* y) {
    const int64_t HW = H * W;
    for (int64_t co = 0; co < nco; ++co) {
        float* yp = y + co * OH * OW;
        for (int64_t kh = 0; kh < KH; ++kh) {
            for (int64_t kw = 0; kw < KW; ++kw) {
                const float* cr = col + ((co * KH + kh) * KW + kw) * HW;
                const int64_t offw = kw * DW - PW;
                /* valid w: 0 <= w*SW + offw < OW */
                int64_t lo = offw >= 0 ? 0 : (-offw + SW - 1) / SW;
                int64_t hi = OW - offw <= 0 ? 0 : (OW - offw - 1) / SW + 1;
                if (hi > W) hi = W;
                for (int64_t h = 0; h < H; ++h) {
                    const int64_t oh = h * SH - PH + kh * DH;
                    if (oh < 0 || oh >= OH) continue;
                    float* yr = yp + oh * OW + offw;
                    const float* cw = cr + h * W;
                    if (SW == 1)
                        for (int64_t w = lo; w < hi; ++w) yr[w] += cw[w];
                    else
                        for (int64_t w = lo; w < hi; ++w) yr[w * SW] += cw[w];
                }
            }
        }
    }
}
#endif
