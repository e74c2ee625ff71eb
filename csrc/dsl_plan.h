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

/* Error codes returned by kernels. */
#define DSL_OK                 0
#define DSL_ERR_UNKNOWN_OP     1
#define DSL_ERR_INDEX_RANGE    2   /* a runtime index (Gather, GatherElements) out of range */
#define DSL_ERR_BAD_PARAM      3
#define DSL_ERR_NO_MEMORY      4

/* dtype codes used in i[] where a kernel handles several element types. */
#define DSL_F32   1
#define DSL_U8    2
#define DSL_I8    3
#define DSL_I32   6
#define DSL_I64   7
#define DSL_BOOL  9
#define DSL_F64   11

#endif
