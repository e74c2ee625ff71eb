/* Fused activations, applied in place over a row of floats. GEMM/conv epilogues call
 * dsl_act_row on a freshly computed (cache-hot) tile row; the eltwise family uses it for
 * the corresponding unary ops. Codes mirror deepsparse_lite.ops.base.Act.
 *
 * This file holds the portable implementation; the vectorised variants (AVX2 / AVX-512)
 * live in dsl_vmath.h (included at the end): dsl_act_row(form, ...) picks one.
 * NaN propagates through every activation (like numpy / the ONNX reference); Clip with
 * min > max gives max (np.clip). */
#ifndef DSL_ACT_H
#define DSL_ACT_H
#include <math.h>
#include <stdint.h>

#define DSL_ACT_NONE 0
#define DSL_ACT_RELU 1
#define DSL_ACT_LEAKY_RELU 2
#define DSL_ACT_CLIP 3
#define DSL_ACT_SIGMOID 4
#define DSL_ACT_TANH 5
#define DSL_ACT_HARD_SIGMOID 6
#define DSL_ACT_HARD_SWISH 7
#define DSL_ACT_GELU_ERF 8
#define DSL_ACT_GELU_TANH 9
#define DSL_ACT_ELU 10
#define DSL_ACT_SELU 11
#define DSL_ACT_SOFTPLUS 12

static inline float dsl_act_scalar(int act, float x, float a, float b) {
    switch (act) {
    case DSL_ACT_RELU: return x < 0.f ? 0.f : x;
    case DSL_ACT_LEAKY_RELU: return x >= 0.f ? x : a * x;
    case DSL_ACT_CLIP: { float y = x < a ? a : x; return y > b ? b : y; }
    case DSL_ACT_SIGMOID: return 1.f / (1.f + expf(-x));
    case DSL_ACT_TANH: return tanhf(x);
    case DSL_ACT_HARD_SIGMOID: { float y = a * x + b; return y < 0.f ? 0.f : (y > 1.f ? 1.f : y); }
    case DSL_ACT_HARD_SWISH: { float y = x * (1.f / 6.f) + 0.5f; y = y < 0.f ? 0.f : (y > 1.f ? 1.f : y); return x * y; }
    /* erfc, not 1 + erf: no cancellation for negative x */
    case DSL_ACT_GELU_ERF: return 0.5f * x * erfcf(-x * 0.70710678118654752f);
    case DSL_ACT_GELU_TANH: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case DSL_ACT_ELU: return x >= 0.f ? x : a * expm1f(x);
    case DSL_ACT_SELU: return x > 0.f ? b * x : b * (a * expm1f(x));
    case DSL_ACT_SOFTPLUS: return x > 20.f ? x : log1pf(expf(x));
    default: return x;
    }
}

static inline void dsl_act_row_scalar(int act, float* x, int64_t n, float a, float b) {
    if (act == DSL_ACT_NONE) return;
    if (act == DSL_ACT_RELU) {
        for (int64_t k = 0; k < n; ++k) x[k] = x[k] < 0.f ? 0.f : x[k];
        return;
    }
    if (act == DSL_ACT_CLIP) {
        for (int64_t k = 0; k < n; ++k) { float y = x[k] < a ? a : x[k]; x[k] = y > b ? b : y; }
        return;
    }
    for (int64_t k = 0; k < n; ++k) x[k] = dsl_act_scalar(act, x[k], a, b);
}

/* The vectorised, form-dispatched dsl_act_row(form, act, x, n, a, b). */
#include "dsl_vmath.h"
#endif
