/* EWCHAIN (family 7, op 708): a chain of element-wise float32 ops run strip by strip in
 * registers of EWC_STRIP floats, one pass over memory instead of one per op.
 *
 * compiler/passes.py fuse_eltwise_chains turns a group of QuantizeLinear /
 * DequantizeLinear (per-tensor), Add / Sub / Mul / Div and unary ops (Erf, Relu, Sigmoid,
 * Tanh ...) with a single output into one program: QDQ BERT's bias-Add -> Q -> DQ -> Div
 * -> Q -> DQ -> Erf ... chains were one step and one pass over the tensor per op. Every
 * instruction does exactly the arithmetic of the step it replaces (the same true divisions,
 * round half to even, unfused products, the same vector math functions for the form), so
 * the chain's results are the unfused steps' results bit for bit.
 *
 * The program (a constant int32 blob): header [n_ins, n_ext, (pattern, period) x
 * EWC_MAX_EXT], then n_ins instructions [op, dst, a, b], then n_ins x 4 float constants.
 * Registers hold EWC_STRIP values of the strip; loads of the main input or of a full
 * external operand only point at memory (no copy).
 *   LOAD_MAIN dst          the main input (float32, or the integer values of u8 / s8)
 *   LOAD_EXT  dst, a       external operand a: pattern 0 full (same shape), 1 a vector
 *                          repeating with period L over the elements, 2 a scalar
 *   DEQ   dst, a           (a - c0) * c1                    (zero point, scale)
 *   QNT   dst, a           min(max(rint(a / c1) + c0, c2), c3) (the division only where
 *                          the reciprocal's product could round differently)
 *   ADD / SUB / MUL / DIV  dst = a op b
 *   UNARY dst, a; b = fn   dsl_vunary_f32(fn, a; c0, c1)
 *   STORE a                to the output (float32, or u8 / s8 of the integer values)
 *   FQ    dst, a           QNT then DEQ (zero point c0, scale c1) in one pass
 *   ADDC / SUBC / MULC / DIVC dst, a    a op c0;  RSUBC / RDIVC  c0 - a, c0 / a
 */
#ifndef Q8_EWCHAIN_H
#define Q8_EWCHAIN_H
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "dsl_cpu.h"
#include "dsl_vmath.h"

#define EWC_STRIP 256
#define EWC_NREG 12
#define EWC_MAX_EXT 5
#define EWC_MAX_INS 64
#define EWC_HDR (2 + 2 * EWC_MAX_EXT)
/* QNT: |frac(a * RN(1/s))| this close to 1/2 takes the true division */
#define EWC_TIE_BAND 0.000244140625f

#define EWC_LOAD_MAIN 1
#define EWC_LOAD_EXT 2
#define EWC_DEQ 3
#define EWC_QNT 4
#define EWC_ADD 5
#define EWC_SUB 6
#define EWC_MUL 7
#define EWC_DIV 8
#define EWC_UNARY 9
#define EWC_STORE 10
#define EWC_FQ 11      /* QNT then DEQ with the same zero point and scale */
#define EWC_ADDC 12    /* a op c0, c0 a constant */
#define EWC_SUBC 13
#define EWC_RSUBC 14   /* c0 - a */
#define EWC_MULC 15
#define EWC_DIVC 16
#define EWC_RDIVC 17   /* c0 / a */
#define EWC_NOPS 18

/* element types of the main input and the output (dsl_params.h codes) */
#define EWC_F32 0
#define EWC_U8 1
#define EWC_S8 2

typedef struct {
    int n_ins, n_ext;
    const int32_t* ins;          /* n_ins x 4 */
    const float* c;              /* n_ins x 4 */
    int pat[EWC_MAX_EXT];
    int64_t per[EWC_MAX_EXT];
    const void* main;
    int in_dt, out_dt;
    const float* ext[EWC_MAX_EXT];
    void* out;
    int uform;                   /* the vector-math form for UNARY */
} ewc_prog;

/* Checks a program blob of `words` int32 words (0, or -1). */
static inline int ewc_parse(const int32_t* blob, int64_t words, ewc_prog* pg) {
    if (!blob || words < EWC_HDR) return -1;
    pg->n_ins = blob[0];
    pg->n_ext = blob[1];
    if (pg->n_ins < 2 || pg->n_ins > EWC_MAX_INS || pg->n_ext < 0 || pg->n_ext > EWC_MAX_EXT) return -1;
    if (words < EWC_HDR + 8 * (int64_t)pg->n_ins) return -1;
    for (int k = 0; k < EWC_MAX_EXT; ++k) {
        pg->pat[k] = blob[2 + 2 * k];
        pg->per[k] = blob[3 + 2 * k];
        if (k < pg->n_ext && (pg->pat[k] < 0 || pg->pat[k] > 2 || (pg->pat[k] == 1 && pg->per[k] <= 0)))
            return -1;
    }
    pg->ins = blob + EWC_HDR;
    pg->c = (const float*)(blob + EWC_HDR + 4 * pg->n_ins);
    int stored = 0;
    for (int k = 0; k < pg->n_ins; ++k) {
        const int32_t* i = pg->ins + 4 * k;
        const int op = i[0];
        if (op < EWC_LOAD_MAIN || op >= EWC_NOPS) return -1;
        if (i[1] < 0 || i[1] >= EWC_NREG || i[2] < 0 || i[2] >= EWC_NREG) return -1;
        if (op >= EWC_ADD && op <= EWC_DIV && (i[3] < 0 || i[3] >= EWC_NREG)) return -1;
        if (op == EWC_LOAD_EXT && i[2] >= pg->n_ext) return -1;
        if (op == EWC_UNARY && (i[3] < 0 || i[3] >= DSL_VF_COUNT)) return -1;
        if (op == EWC_STORE) ++stored;
    }
    return stored == 1 && pg->ins[4 * (pg->n_ins - 1)] == EWC_STORE ? 0 : -1;
}

#define DSL_SIMD_TEMPLATE "q8_ewchain_tpl.h"
#define DSL_SIMD_WITH_GENERIC 1
#include "dsl_simd_forms.h"

typedef void (*ewc_run_fn)(const ewc_prog* pg, int64_t lo, int64_t hi);

static inline ewc_run_fn ewc_select(int form) {
#ifdef DSL_SIMD_X86
    switch (form) {
    case DSL_FORM_AVX2: return ewc_run__avx2;
    case DSL_FORM_AVX512: return ewc_run__avx512;
    case DSL_FORM_AVX512_ON_AVX2: return ewc_run__avx512_on_avx2;
    default: break;
    }
#else
    (void)form;
#endif
    return ewc_run__generic;
}
#endif
