"""Execute a compiled plan in one GIL-free call.

``run_plan`` binds the pointer table (arena offsets, user inputs, fresh outputs, packed
constants) with the GIL held, then runs every step inside ``with nogil:`` by switching on
the step's family. No Python object is touched between steps.

This module owns the one ISA state of the process: the CPU cap, the highest instruction
set any kernel may execute (csrc/dsl_cpu.h). It starts at what the CPU and NM_ARCH /
DSL_ISA allow; tests lower it with ``set_isa_level``. Every kernel receives it in the
``dsl_exec`` record, so forcing a level reaches every family. With ``record_variants(True)``
each step also counts the kernel variant (kernel, form) it ran: tests check that every
variant this CPU can run was exercised.
"""
cimport numpy as cnp
from libc.stdint cimport int64_t, intptr_t, uint64_t
from libc.string cimport memset

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    cdef struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk, timespec* ts)
    int CLOCK_MONOTONIC

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_FAM_DATA, DSL_FAM_ELTWISE, DSL_FAM_REDUCE,
                                          DSL_FAM_POOL, DSL_FAM_GEMM, DSL_NKV, DSL_NFORMS,
                                          dsl_isa_detect, dsl_isa_hardware, dsl_kv_form,
                                          dsl_kv_names)
from deepsparse_lite.kernels.data cimport run_data
from deepsparse_lite.kernels.eltwise cimport run_eltwise
from deepsparse_lite.kernels.reduce cimport run_reduce
from deepsparse_lite.kernels.pool cimport run_pool
from deepsparse_lite.kernels.gemm cimport run_gemm

cnp.import_array()

DEF WHERE_ARENA = 0
DEF WHERE_INPUT = 1
DEF WHERE_OUTPUT = 2
DEF WHERE_CONST = 3


# The CPU cap (see the module docstring) and the variant counters.
cdef int cpu_cap = dsl_isa_detect()
cdef int top_level = cpu_cap          # what the hardware and the environment allow
DEF NCOUNTERS = 14 * 4                # DSL_NKV * DSL_NFORMS (checked at import below)
cdef uint64_t hits[NCOUNTERS]
cdef bint recording = False
memset(hits, 0, sizeof(hits))
if DSL_NKV * DSL_NFORMS != NCOUNTERS:
    raise ImportError("runner.pyx: NCOUNTERS does not match csrc/dsl_cpu.h")

FORM_NAMES = ("generic", "avx2", "avx512", "avx512_on_avx2")


def isa_level():
    """The CPU cap: the highest ISA level kernels execute (0 generic, 1 avx2, 2 avx512)."""
    return cpu_cap


def top_isa_level():
    """The highest level this CPU and NM_ARCH / DSL_ISA allow (what isa_level starts at)."""
    return top_level


def hardware_isa_level():
    """What the CPU supports, ignoring NM_ARCH / DSL_ISA."""
    return dsl_isa_hardware()


def set_isa_level(int level):
    """Lower (or restore) the CPU cap for every kernel; clamped to ``top_isa_level()``.
    Returns the previous cap."""
    global cpu_cap
    old = cpu_cap
    cpu_cap = max(0, min(level, top_level))
    return old


def record_variants(bint on):
    """Count the kernel variants steps run (tests); returns the previous setting."""
    global recording
    old = recording
    recording = on
    return old


def variant_hits():
    """{(kernel, form): runs} for every variant run since the counters were reset."""
    cdef int k, f
    return {(dsl_kv_names[k].decode(), FORM_NAMES[f]): int(hits[k * DSL_NFORMS + f])
            for k in range(DSL_NKV) for f in range(DSL_NFORMS) if hits[k * DSL_NFORMS + f]}


def reset_variant_hits():
    memset(hits, 0, sizeof(hits))


def kernel_forms(int level, int cap):
    """The form each counted kernel runs in for a step of ``level`` under ``cap``."""
    cdef int k
    return tuple(FORM_NAMES[dsl_kv_form(k, level, cap)] for k in range(DSL_NKV))


def reachable_variants(int cap=-1):
    """{(kernel, form)} a CPU with cap ``cap`` (default: this one's top level) can run, over
    every plan level: what the tests must exercise."""
    cdef int k, level, c
    if cap < 0:
        cap = top_level
    out = set()
    for k in range(DSL_NKV):
        for level in range(3):
            for c in range(cap + 1):
                out.add((dsl_kv_names[k].decode(), FORM_NAMES[dsl_kv_form(k, level, c)]))
    return out


def step_size():
    """sizeof(dsl_step), checked against plan.STEP_DTYPE by the tests."""
    return sizeof(dsl_step)


cdef inline double now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <double>ts.tv_sec * 1e9 + <double>ts.tv_nsec


cdef int execute(const dsl_step* steps, Py_ssize_t n, char** p, const dsl_exec* x,
                 Py_ssize_t* failed, double* prof) noexcept nogil:
    cdef Py_ssize_t k
    cdef int rc, fam
    cdef double t0 = 0
    for k in range(n):
        if prof != NULL:
            t0 = now_ns()
        fam = steps[k].op // 100
        if fam == DSL_FAM_GEMM:
            rc = run_gemm(&steps[k], p, x)
        elif fam == DSL_FAM_ELTWISE:
            rc = run_eltwise(&steps[k], p, x)
        elif fam == DSL_FAM_DATA:
            rc = run_data(&steps[k], p, x)
        elif fam == DSL_FAM_REDUCE:
            rc = run_reduce(&steps[k], p, x)
        elif fam == DSL_FAM_POOL:
            rc = run_pool(&steps[k], p, x)
        else:
            rc = DSL_ERR_UNKNOWN_OP
        if prof != NULL:
            prof[k] += now_ns() - t0
        if rc != DSL_OK:
            failed[0] = k
            return rc
    return DSL_OK


def run_plan(cnp.ndarray steps not None, const int64_t[:, ::1] table, const int64_t[::1] const_ptrs,
             list inputs, const int64_t[::1] input_nbytes, list outputs,
             cnp.ndarray arena not None, Py_ssize_t table_bytes, int nthreads,
             double[::1] profile=None):
    """Run ``steps`` with the given input and output arrays; returns (code, failed_step).

    ``profile``, if given (float64, one slot per step), accumulates each step's wall time
    in nanoseconds: the basis of per-layer analysis.

    The caller (Engine) validates inputs and allocates outputs; the checks here only guard
    against a crash: every array must be C-contiguous with exactly the planned byte size.
    """
    cdef Py_ssize_t nt = table.shape[0], k, nin = len(inputs), nout = len(outputs)
    cdef Py_ssize_t failed = -1
    cdef int rc
    cdef cnp.ndarray a
    if table_bytes < nt * <Py_ssize_t>sizeof(char*) + (nin + nout) * <Py_ssize_t>sizeof(char*):
        raise ValueError("plan pointer table does not fit its reserved bytes")
    if cnp.PyArray_NBYTES(arena) < table_bytes or not cnp.PyArray_IS_C_CONTIGUOUS(arena):
        raise ValueError("arena is too small for this plan")
    if steps.dtype.itemsize != sizeof(dsl_step) or not cnp.PyArray_IS_C_CONTIGUOUS(steps):
        raise ValueError("steps are not dsl_step records")
    if nin != input_nbytes.shape[0]:
        raise ValueError(f"expected {input_nbytes.shape[0]} inputs, got {nin}")
    cdef char* base = <char*>cnp.PyArray_DATA(arena)
    cdef char** p = <char**>base
    cdef char** in_ptrs = p + nt
    cdef char** out_ptrs = in_ptrs + nin
    for k in range(nin):
        a = <cnp.ndarray?>inputs[k]
        if not cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_NBYTES(a) != input_nbytes[k]:
            raise ValueError(f"input {k} is not a C-contiguous array of {input_nbytes[k]} bytes")
        in_ptrs[k] = <char*>cnp.PyArray_DATA(a)
    for k in range(nout):
        a = <cnp.ndarray?>outputs[k]
        if not cnp.PyArray_IS_C_CONTIGUOUS(a):
            raise ValueError(f"output {k} is not C-contiguous")
        out_ptrs[k] = <char*>cnp.PyArray_DATA(a)
    cdef Py_ssize_t nsteps = steps.shape[0]
    cdef const dsl_step* sp = <const dsl_step*>cnp.PyArray_DATA(steps)
    cdef double* prof = NULL
    if profile is not None:
        if profile.shape[0] < steps.shape[0]:
            raise ValueError("profile needs one slot per step")
        prof = &profile[0]
    cdef dsl_exec x
    x.nt = nthreads
    x.cap = cpu_cap
    x.hits = hits if recording else NULL
    with nogil:
        for k in range(nt):
            if table[k, 0] == WHERE_ARENA:
                p[k] = base + table[k, 1] + table[k, 2]
            elif table[k, 0] == WHERE_INPUT:
                p[k] = in_ptrs[table[k, 1]] + table[k, 2]
            elif table[k, 0] == WHERE_OUTPUT:
                p[k] = out_ptrs[table[k, 1]] + table[k, 2]
            else:
                p[k] = <char*><intptr_t>const_ptrs[table[k, 1]] + table[k, 2]
        rc = execute(sp, nsteps, p, &x, &failed, prof)
    return rc, failed
