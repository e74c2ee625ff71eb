"""Elementwise kernels (family 2): unary math, broadcasting binary ops, where, cast.

The loops are C (csrc/eltwise*.h, csrc/dsl_vmath*.h); this module validates a step, decides
how many threads it deserves and splits its output range [0, n) into per-thread chunks
(multiples of 64 elements, so no two threads write one cache line, even for bool outputs).

Every step carries a dsl_eltwise_params record (csrc/dsl_params.h): fn, dtype, out_dtype,
esz, level, ndim, n (output elements), shape (merged dims), strides (input k's element
strides at strides[8k..], 0 = broadcast), a, b (a unary function's float attributes).

  UNARY_F32  t=[x, y]        fn, dtype (F32, or F16 / BF16 computed in float32), level (plan
                             ISA level; the form under the CPU cap), n, a, b
  UNARY_F64  t=[x, y]        fn, n, a, b                          (libm, scalar)
  UNARY_INT  t=[x, y]        fn (NEG 16, ABS 17, RELU 1, SIGN 24, BITNOT 40), dtype (any
                             8..64-bit integer), n
  NOT        t=[x, y]        n                                    (bool)
  BINARY     t=[a, b, y]     fn, dtype (operands), level, ndim, n, shape, strides (a, b)
  WHERE      t=[c, x, y, o]  esz, ndim, n, shape, strides (cond, x, y)
  CAST       t=[x, y]        dtype (source), out_dtype (destination), saturate (float8), level, n

Unary fn codes (f32/f64): the activation codes of dsl_act.h, then dsl_vmath.h's:
  0 NONE (copy), 1 RELU, 2 LEAKY_RELU(a=alpha), 3 CLIP(a=min, b=max), 4 SIGMOID, 5 TANH,
  6 HARD_SIGMOID(a=alpha, b=beta), 7 HARD_SWISH, 8 GELU_ERF, 9 GELU_TANH, 10 ELU(a=alpha),
  11 SELU(a=alpha, b=gamma), 12 SOFTPLUS, 13 EXP, 14 LOG, 15 SQRT, 16 NEG, 17 ABS,
  18 RECIPROCAL, 19 ERF, 20 AFFINE (a*x+b), 21 FLOOR, 22 CEIL, 23 ROUND, 24 SIGN,
  25 SOFTSIGN, 26 POW (x ** a).
Binary fn codes (csrc/eltwise_binary.h): 1 ADD, 2 SUB, 3 MUL, 4 DIV, 5 POW, 6 MAX, 7 MIN,
  8 PRELU, 9 MOD (divisor's sign), 10 FMOD (truncated), 20 EQ, 21 LT, 22 GT, 23 LE,
  24 GE (-> bool), 30 AND, 31 OR, 32 XOR (bool), 40 BITAND, 41 BITOR, 42 BITXOR (integers),
  43 SHL, 44 SHR (unsigned integers).
  Operand dtypes: F32 (all arithmetic + comparisons; SSE2/AVX2/AVX-512 loops), F64, every
  8..64-bit integer (arithmetic + comparisons + bitwise), BOOL (AND/OR/XOR/EQ), F16 and BF16
  (the float32 arithmetic and comparisons on operands widened a chunk at a time, each
  result rounded back: numpy's float16 / ml_dtypes' bfloat16 arithmetic).
float16 <-> float32 conversions (CAST, and the F16 steps above) run in the form
dsl_kv_form(DSL_KV_F16CVT, level, cap): portable C or F16C (csrc/narrow_float.h).
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_BAD_PARAM, DSL_FORM_AVX512,
                                          DSL_FORM_GENERIC, dsl_threads_for, dsl_isa_hardware,
                                          run_ranges)
from deepsparse_lite.kernels.params cimport dsl_eltwise_params

cnp.import_array()

cdef extern from "eltwise.h" nogil:
    int dsl_ew_check(const dsl_step* s)
    int64_t dsl_ew_min_work(const dsl_step* s)
    int dsl_ew_form(const dsl_step* s, int cap)
    void dsl_ew_hit(const dsl_step* s, const dsl_exec* x)
    int dsl_ew_cvt_form(const dsl_step* s, int cap)
    int dsl_ew_range(const dsl_step* s, char** p, int64_t lo, int64_t hi, int form, int cvt_form)
    void dsl_vunary_f32(int form, int fn, const float* x, float* y, int64_t n, float a, float b)
    int dsl_cast(int st, int dt, const char* src, char* dst, int64_t n, int sat, int form)

# Chunks start at multiples of 64 elements, so no two threads write one cache line (even
# for bool outputs).
DEF CHUNK_ALIGN = 64
# Per-thread work threshold override (0 = the per-step default); tests set 1 so that small
# shapes take the threaded path and the partitioning is exercised.
cdef int64_t min_work_override = 0


cdef struct ew_ctx:
    const dsl_step* s
    char** p
    int form
    int cvt_form


cdef int64_t ew_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const ew_ctx* x = <const ew_ctx*>vctx
    return dsl_ew_range(x.s, x.p, lo, hi, x.form, x.cvt_form) != DSL_OK


cdef int run_eltwise(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_eltwise_params* q = <const dsl_eltwise_params*>s.params
    cdef int rc = dsl_ew_check(s)
    cdef ew_ctx ctx
    cdef int nth
    if rc != DSL_OK:
        return rc
    if q.n <= 0:
        return DSL_OK
    ctx.s = s
    ctx.p = p
    ctx.form = dsl_ew_form(s, x.cap)
    ctx.cvt_form = dsl_ew_cvt_form(s, x.cap)
    dsl_ew_hit(s, x)
    nth = dsl_threads_for(q.n, min_work_override if min_work_override > 0 else dsl_ew_min_work(s), x.nt)
    # every failure mode was ruled out by dsl_ew_check, so chunks cannot fail
    if run_ranges(x, ew_range, &ctx, q.n, nth, CHUNK_ALIGN):
        return DSL_ERR_BAD_PARAM
    return DSL_OK


# ---- test hooks ----------------------------------------------------------------------

def vunary_f32(int fn, cnp.ndarray x not None, int form=-1, float a=0.0, float b=0.0):
    """Apply unary function ``fn`` to a float32 array in one kernel form (tests only):
    0 generic, 1 avx2, 2 avx512, 3 the avx512 form on avx2 (csrc/dsl_cpu.h); -1 = the
    best this CPU runs. A form the CPU cannot run raises ValueError."""
    cdef cnp.ndarray xc = np.ascontiguousarray(x, dtype=np.float32)
    cdef cnp.ndarray y = np.empty_like(xc)
    cdef int hw = dsl_isa_hardware()
    if form < 0:
        form = DSL_FORM_AVX512 if hw >= 2 else hw
    if form > 3 or (form == DSL_FORM_AVX512 and hw < 2) or (form != DSL_FORM_GENERIC and hw < 1):
        raise ValueError(f"kernel form {form} cannot run on this CPU (hardware level {hw})")
    if fn < 0 or fn > 26:
        raise ValueError(f"unknown unary function code {fn}")
    cdef const float* xp = <const float*>cnp.PyArray_DATA(xc)
    cdef float* yp = <float*>cnp.PyArray_DATA(y)
    cdef int64_t n = xc.size
    with nogil:
        dsl_vunary_f32(form, fn, xp, yp, n, a, b)
    return y


def cast(cnp.ndarray x not None, out_dtype, bint saturate=True, int form=0):
    """Convert an array with the Cast kernel (tests only): ``out_dtype`` a NumPy dtype the
    kernels know (plan.NP_TO_DTYPE), ``saturate`` ONNX Cast's float8 saturation, ``form``
    the float16 conversion form (0 portable, 1 F16C; 1 needs an AVX2 CPU)."""
    from deepsparse_lite.plan import dtype_code
    cdef cnp.ndarray xc = np.ascontiguousarray(x)
    cdef int st = dtype_code(xc.dtype), dt = dtype_code(out_dtype)
    if form not in (0, 1) or (form == 1 and dsl_isa_hardware() < 1):
        raise ValueError(f"float16 conversion form {form} cannot run on this CPU")
    cdef cnp.ndarray y = np.empty_like(xc, dtype=out_dtype)
    cdef const char* xp = <const char*>cnp.PyArray_DATA(xc)
    cdef char* yp = <char*>cnp.PyArray_DATA(y)
    cdef int64_t n = xc.size
    cdef int rc
    with nogil:
        rc = dsl_cast(st, dt, xp, yp, n, saturate, form)
    if rc != DSL_OK:
        raise ValueError(f"the Cast kernel has no conversion {xc.dtype} -> {np.dtype(out_dtype)}")
    return y


def set_min_work(int64_t n):
    """Set the elements-per-thread threshold (tests only; <= 0 restores the per-step
    defaults); returns the old override."""
    global min_work_override
    old = min_work_override
    min_work_override = n if n > 0 else 0
    return old
