/* Convolution pieces that are not a GEMM tile: the col2im scatter of ConvTranspose (and,
 * through f32_dwconv.h, the depthwise direct kernel). */
#ifndef F32_CONV_H
#define F32_CONV_H
#include <stdint.h>
#include <string.h>
#include "dsl_act.h"
#include "dsl_cpu.h"
#include "f32_dwconv.h"

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
