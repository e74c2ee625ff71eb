/* The plan contract between the compiler (Python), the op lowerings and the runner.
 *
 * A plan is a flat array of dsl_step records executed in order by runner.pyx inside one
 * `with nogil:` block. Each step names its tensors by index into a pointer table that the
 * runner fills once per call (arena offsets, user inputs, fresh outputs, packed constants),
 * so a step binds pointers and computes: no allocation, no Python.
 *
 * Invariants:
 *  - op = family * 100 + sub-op; the runner switches on the family, the family module on
 *    the sub-op. Python mirrors these numbers in deepsparse_lite/plan.py (a test checks).
 *  - all shapes, strides, ranges and workspace sizes are decided at compile time and
 *    stored in the step's typed parameter record (csrc/dsl_params.h, mirrored by
 *    deepsparse_lite/step_params.py); a kernel never reads anything else.
 *  - a kernel returns 0, or a DSL_ERR_* code (the runner stops and Python raises).
 *  - the layout is mirrored by STEP_DTYPE (numpy, align=True); tests compare sizes and
 *    offsets of the step and of every parameter record.
 */
#ifndef DSL_PLAN_H
#define DSL_PLAN_H
#include <stdint.h>
#include "dsl_params.h"

#define DSL_MAX_T 8

typedef struct {
    int32_t op;              /* family * 100 + sub-op */
    int32_t nt;              /* number of tensor refs used in t[] */
    int32_t t[DSL_MAX_T];    /* tensor ids (pointer-table indices) */
    union {                  /* the sub-op's dsl_*_params record (dsl_params.h) */
        int64_t align_;
        unsigned char params[DSL_PARAM_BYTES];
    };
} dsl_step;

/* Families. */
#define DSL_FAM_MISC      0
#define DSL_FAM_DATA      1   /* copies, gather, pad, resize */
#define DSL_FAM_ELTWISE   2   /* unary, binary (broadcast), where, cast */
#define DSL_FAM_REDUCE    3   /* reductions, softmax, layernorm, argmax, topk, lrn */
#define DSL_FAM_POOL      4   /* max/avg/global pooling */
#define DSL_FAM_GEMM      5   /* gemm, matmul, conv, conv-transpose */
#define DSL_FAM_SPARSE    6   /* sparse-weight gemm and conv (csrc/f32_spmm.h) */
#define DSL_FAM_QUANT     7   /* quantize / dequantize, INT8 GEMM and conv */

/* Error codes returned by kernels. */
#define DSL_OK                 0
#define DSL_ERR_UNKNOWN_OP     1
#define DSL_ERR_INDEX_RANGE    2   /* a runtime index (Gather, GatherElements) out of range */
#define DSL_ERR_BAD_PARAM      3
#define DSL_ERR_NO_MEMORY      4

/* Element type codes (ONNX TensorProto numbering), where a kernel handles several types;
 * mirrored by deepsparse_lite.plan.DType. */
#define DSL_F32         1
#define DSL_U8          2
#define DSL_I8          3
#define DSL_U16         4
#define DSL_I16         5
#define DSL_I32         6
#define DSL_I64         7
#define DSL_BOOL        9
#define DSL_F16        10
#define DSL_F64        11
#define DSL_U32        12
#define DSL_U64        13
#define DSL_BF16       16
#define DSL_F8E4M3FN   17
#define DSL_F8E4M3FNUZ 18
#define DSL_F8E5M2     19
#define DSL_F8E5M2FNUZ 20

/* bytes per element of a dtype code, 0 for an unknown code */
static inline int dsl_dtype_size(int dt) {
    switch (dt) {
    case DSL_F64: case DSL_I64: case DSL_U64: return 8;
    case DSL_F32: case DSL_I32: case DSL_U32: return 4;
    case DSL_F16: case DSL_BF16: case DSL_I16: case DSL_U16: return 2;
    case DSL_U8: case DSL_I8: case DSL_BOOL: case DSL_F8E4M3FN: case DSL_F8E4M3FNUZ:
    case DSL_F8E5M2: case DSL_F8E5M2FNUZ: return 1;
    default: return 0;
    }
}

#endif
