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
import numpy as np
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
                                          DSL_FAM_POOL, DSL_FAM_GEMM, DSL_FAM_SPARSE, DSL_FAM_QUANT,
                                          DSL_NKV, DSL_NFORMS,
                                          dsl_isa_detect, dsl_isa_hardware, dsl_kv_form,
                                          dsl_kv_names)
from deepsparse_lite.kernels.data cimport run_data
from deepsparse_lite.kernels.eltwise cimport run_eltwise
from deepsparse_lite.kernels.reduce cimport run_reduce
from deepsparse_lite.kernels.pool cimport run_pool
from deepsparse_lite.kernels.gemm cimport run_gemm
from deepsparse_lite.kernels.sparse cimport run_sparse
from deepsparse_lite.kernels.quant cimport run_quant

cnp.import_array()

DEF WHERE_ARENA = 0
DEF WHERE_INPUT = 1
DEF WHERE_OUTPUT = 2
DEF WHERE_CONST = 3


# The CPU cap (see the module docstring) and the variant counters.
cdef int cpu_cap = dsl_isa_detect()
cdef int top_level = cpu_cap          # what the hardware and the environment allow
DEF NCOUNTERS = 19 * 4                # DSL_NKV * DSL_NFORMS (checked at import below)
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


cdef extern from "dsl_sched.h" nogil:
    void dsl_sched_between_void(void* r)


cdef int execute(const dsl_step* steps, Py_ssize_t n, char** p, const dsl_exec* x,
                 Py_ssize_t* failed, double* prof, void* req=NULL) noexcept nogil:
    """Run the steps in order; with ``req`` (a scheduler request), the scheduler may run
    a short request of another engine between two steps (dsl_sched_between)."""
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
        elif fam == DSL_FAM_SPARSE:
            rc = run_sparse(&steps[k], p, x)
        elif fam == DSL_FAM_QUANT:
            rc = run_quant(&steps[k], p, x)
        else:
            rc = DSL_ERR_UNKNOWN_OP
        if prof != NULL:
            prof[k] += now_ns() - t0
        if rc != DSL_OK:
            failed[0] = k
            return rc
        if req != NULL and k + 1 < n:
            dsl_sched_between_void(req)
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
    x.team = NULL
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



# ---------------------------------------------------------------------------------------
# The stream scheduler (csrc/dsl_sched.h): requests run on their calling thread when a
# stream is free, queued requests are run by the thread that frees a lease. Everything on
# the request path below `StreamScheduler.run` is C and runs without the GIL.
# ---------------------------------------------------------------------------------------
from libc.stdlib cimport malloc, free, calloc
from libc.stdint cimport uint32_t

cdef extern from "dsl_sched.h" nogil:
    ctypedef struct dsl_helper:
        int cpu
        int64_t tid
        int64_t jobs_done
        int started
        int state
    ctypedef struct dsl_lease:
        int n
        int cpus[256]
    ctypedef struct dsl_arena_list:
        int n
    ctypedef struct dsl_stream:
        int index, n, elastic
        int cpus[256]
        int nsocket
        int* socket_cpus
        dsl_helper* helpers[256]
        int busy
        int free_idx[256]
        int nfree
        int active
        dsl_arena_list arenas[256]
    ctypedef struct dsl_req:
        void* args
        int64_t engine
        int64_t arena_bytes
        int rc
        int64_t failed
        int64_t t0_ns, t1_ns
        int stream
        int ncpus
        int cpus[256]
    ctypedef int (*dsl_run_fn)(dsl_req* r, const dsl_lease* L, char* arena, void* user) noexcept nogil
    ctypedef struct dsl_sched:
        int nstreams
        dsl_stream* streams
        int queued
        int64_t spin_ns
        int binding
        int combine_max
        dsl_run_fn run
        void* user
        int started
        int sticky
        void* placement
        int64_t served_inline, served_combined, served_handed, served_nested
        int preempt, preempt_ratio, fair, nest_share
    ctypedef struct dsl_placement:
        int ncallers
    void dsl_sched_restore_callers(dsl_sched* S, dsl_placement* P)
    dsl_placement* dsl_placement_new()
    int DSL_MAX_LEASE
    int DSL_H_RUN, DSL_H_PARK
    int dsl_sched_run(dsl_sched* S, dsl_req* r)
    void dsl_sched_forget(dsl_sched* S, int64_t engine)
    int dsl_sched_arenas(dsl_sched* S, int64_t* out, int max)
    int dsl_sched_service(dsl_sched* S, double* out, int max)
    void dsl_sched_free_arenas(dsl_sched* S)
    int dsl_helper_start(dsl_helper* h, int cpu, const int* allowed, int nallowed, int64_t spin_ns)
    void dsl_helper_stop(dsl_helper* h)


cdef struct run_args:
    const dsl_step* steps
    Py_ssize_t nsteps
    const int64_t* table
    Py_ssize_t ntensors
    const int64_t* const_ptrs
    char** in_ptrs
    char** out_ptrs
    Py_ssize_t nin, nout, table_bytes


cdef int run_request(dsl_req* r, const dsl_lease* L, char* arena, void* user) noexcept nogil:
    """Bind the plan's pointer table into this lease's arena and run it on the lease."""
    cdef const run_args* a = <const run_args*>r.args
    cdef char** p = <char**>arena
    cdef char** in_ptrs = p + a.ntensors
    cdef char** out_ptrs = in_ptrs + a.nin
    cdef Py_ssize_t k, failed = -1
    cdef const int64_t* t
    cdef dsl_exec x
    cdef int rc
    for k in range(a.nin):
        in_ptrs[k] = a.in_ptrs[k]
    for k in range(a.nout):
        out_ptrs[k] = a.out_ptrs[k]
    for k in range(a.ntensors):
        t = a.table + 3 * k
        if t[0] == WHERE_ARENA:
            p[k] = arena + t[1] + t[2]
        elif t[0] == WHERE_INPUT:
            p[k] = in_ptrs[t[1]] + t[2]
        elif t[0] == WHERE_OUTPUT:
            p[k] = out_ptrs[t[1]] + t[2]
        else:
            p[k] = <char*><intptr_t>a.const_ptrs[t[1]] + t[2]
    x.nt = L.n
    x.cap = cpu_cap
    x.hits = hits if recording else NULL
    x.team = <const void*>L
    rc = execute(a.steps, a.nsteps, p, &x, &failed, NULL, <void*>r)
    r.failed = failed
    return rc


BIND_CODES = {"core": 0, "socket": 1, "none": 2}


cdef class BoundPlan:
    """A plan's arrays as C pointers, checked once (the request path reads only these)."""

    cdef const dsl_step* steps
    cdef Py_ssize_t nsteps
    cdef const int64_t* table
    cdef Py_ssize_t ntensors
    cdef const int64_t* const_ptrs
    cdef Py_ssize_t nin, nout, table_bytes
    cdef int64_t arena_bytes
    cdef int64_t[::1] in_nbytes
    cdef object plan   # keeps the arrays alive

    def __cinit__(self, plan):
        cdef cnp.ndarray steps = plan.steps
        cdef const int64_t[:, ::1] table = plan.tensor_table
        cdef const int64_t[::1] cptrs = plan.const_ptrs
        if steps.dtype.itemsize != sizeof(dsl_step) or not cnp.PyArray_IS_C_CONTIGUOUS(steps):
            raise ValueError("steps are not dsl_step records")
        self.plan = plan
        self.steps = <const dsl_step*>cnp.PyArray_DATA(steps)
        self.nsteps = steps.shape[0]
        self.ntensors = table.shape[0]
        self.table = &table[0, 0] if self.ntensors else NULL
        self.const_ptrs = &cptrs[0] if cptrs.shape[0] else NULL
        self.nin = len(plan.inputs)
        self.nout = len(plan.outputs)
        self.table_bytes = plan.table_bytes
        self.arena_bytes = plan.arena_bytes
        self.in_nbytes = np.ascontiguousarray(plan.input_nbytes, dtype=np.int64)
        if self.in_nbytes.shape[0] != self.nin:
            raise ValueError("plan input sizes do not match its inputs")
        if self.table_bytes < self.ntensors * <Py_ssize_t>sizeof(char*) + (self.nin + self.nout) * <Py_ssize_t>sizeof(char*):
            raise ValueError("plan pointer table does not fit its reserved bytes")
        if self.arena_bytes < self.table_bytes:
            raise ValueError("plan arena is smaller than its pointer table")


cdef class StreamScheduler:
    """The C scheduler of one Context (csrc/dsl_sched.h). ``streams`` is a list of
    ``(cpus, elastic, socket_cpus)``; helper threads start with ``start()``."""

    cdef dsl_sched S
    cdef list _streams
    cdef bint _started

    def __cinit__(self, list streams, int64_t spin_ns=0, str binding="core", int combine_max=1,
                  bint sticky=True, int preempt_ratio=4, bint fair=True, int nest_share=3):
        cdef int s, i, n
        cdef dsl_stream* st
        self._streams = list(streams)
        self._started = False
        memset(&self.S, 0, sizeof(dsl_sched))
        n = len(streams)
        self.S.streams = <dsl_stream*>calloc(max(n, 1), sizeof(dsl_stream))
        self.S.placement = dsl_placement_new()
        if self.S.streams == NULL or self.S.placement == NULL:
            raise MemoryError()
        self.S.sticky = 1 if sticky else 0
        self.S.nstreams = n
        self.S.spin_ns = max(spin_ns, 0)
        self.S.binding = BIND_CODES[binding]
        self.S.combine_max = max(combine_max, 0)
        self.S.preempt = 1 if preempt_ratio > 0 else 0
        self.S.preempt_ratio = max(preempt_ratio, 1)
        self.S.fair = 1 if fair else 0
        self.S.nest_share = max(nest_share, 1)
        self.S.run = run_request
        for s, (cpus, elastic, socket_cpus) in enumerate(streams):
            st = &self.S.streams[s]
            if not 1 <= len(cpus) <= DSL_MAX_LEASE:
                raise ValueError(f"a stream needs 1..{DSL_MAX_LEASE} CPUs, got {len(cpus)}")
            st.index = s
            st.n = len(cpus)
            st.elastic = 1 if elastic else 0
            for i in range(st.n):
                st.cpus[i] = int(cpus[i])
                st.free_idx[i] = i
            st.nfree = st.n
            st.nsocket = len(socket_cpus)
            if st.nsocket:
                st.socket_cpus = <int*>malloc(st.nsocket * sizeof(int))
                if st.socket_cpus == NULL:
                    raise MemoryError()
                for i in range(st.nsocket):
                    st.socket_cpus[i] = int(socket_cpus[i])

    def start(self):
        """Start the helper threads: every core of an elastic stream, every core but the
        first of a static one (the runner itself takes the lease's first core)."""
        cdef int s, i, rc, first
        cdef dsl_stream* st
        cdef int one[1]
        if self._started:
            return
        for s in range(self.S.nstreams):
            st = &self.S.streams[s]
            first = 0 if st.elastic else 1
            for i in range(first, st.n):
                st.helpers[i] = <dsl_helper*>calloc(1, sizeof(dsl_helper))
                if st.helpers[i] == NULL:
                    raise MemoryError()
                one[0] = st.cpus[i]
                if self.S.binding == 0:
                    rc = dsl_helper_start(st.helpers[i], st.cpus[i], one, 1, self.S.spin_ns)
                elif self.S.binding == 1 and st.nsocket:
                    rc = dsl_helper_start(st.helpers[i], st.cpus[i], st.socket_cpus, st.nsocket,
                                          self.S.spin_ns)
                else:
                    rc = dsl_helper_start(st.helpers[i], st.cpus[i], st.cpus, st.n, self.S.spin_ns)
                if rc != 0:
                    raise OSError(rc, "could not start a stream helper thread")
        self._started = True

    def restore_callers(self):
        """Give the threads that ran requests their own CPU affinity back."""
        dsl_sched_restore_callers(&self.S, <dsl_placement*>self.S.placement)

    def stop(self):
        """Stop and join the helper threads (no request may be running); the threads that
        ran requests get their own CPU affinity back."""
        cdef int s, i
        cdef dsl_stream* st
        if self.S.placement != NULL:
            dsl_sched_restore_callers(&self.S, <dsl_placement*>self.S.placement)
        for s in range(self.S.nstreams):
            st = &self.S.streams[s]
            for i in range(st.n):
                if st.helpers[i] != NULL:
                    with nogil:
                        dsl_helper_stop(st.helpers[i])
                    free(st.helpers[i])
                    st.helpers[i] = NULL
        self._started = False

    def forget(self, int64_t engine):
        """An engine leaves (none of its requests may be running): its run-time average
        is dropped. Arenas are shared by the engines and stay until the Context closes."""
        dsl_sched_forget(&self.S, engine)

    def service(self):
        """{engine key: (mean run ms, core time served ms)}: what fair queueing orders by."""
        cdef double out[3 * 64]
        cdef int n = min(dsl_sched_service(&self.S, out, 64), 64), k
        return {int(out[3 * k]): (out[3 * k + 1] * 1e-6, out[3 * k + 2] * 1e-6) for k in range(n)}

    def arenas(self):
        """(stream, lease-head cpu, slot, bytes) of every arena allocated so far: slot 0
        for the request holding a lease, 1 for a short request run inside its pause."""
        cdef int n = dsl_sched_arenas(&self.S, NULL, 0), k
        if n == 0:
            return []
        cdef int64_t* out = <int64_t*>malloc(4 * n * sizeof(int64_t))
        if out == NULL:
            raise MemoryError()
        try:
            n = min(n, dsl_sched_arenas(&self.S, out, n))
            return [(int(out[4 * k]), int(self.S.streams[out[4 * k]].cpus[out[4 * k + 1]]),
                     int(out[4 * k + 2]), int(out[4 * k + 3])) for k in range(n)]
        finally:
            free(out)

    def __dealloc__(self):
        cdef int s
        if self.S.streams != NULL:
            self.stop()
            dsl_sched_free_arenas(&self.S)
            for s in range(self.S.nstreams):
                if self.S.streams[s].socket_cpus != NULL:
                    free(self.S.streams[s].socket_cpus)
            free(self.S.streams)
            self.S.streams = NULL
            free(self.S.placement)
            self.S.placement = NULL

    def run(self, BoundPlan bp, int64_t engine, list inputs, list outputs, list info=None):
        """Run a bound plan on ``inputs`` into ``outputs`` (C-contiguous arrays of the
        planned byte sizes); returns (code, failed step). With ``info`` (a list), appends
        (t0, t1, stream, cpus) of the run: time.perf_counter seconds."""
        cdef Py_ssize_t nin = len(inputs), nout = len(outputs), k
        cdef cnp.ndarray a
        cdef char* stack_ptrs[32]
        cdef char** ptrs = stack_ptrs
        cdef run_args args
        cdef dsl_req req
        cdef int rc
        if nin != bp.nin or nout != bp.nout:
            raise ValueError(f"expected {bp.nin} inputs and {bp.nout} outputs, got {nin} and {nout}")
        if nin + nout > 32:
            ptrs = <char**>malloc((nin + nout) * sizeof(char*))
            if ptrs == NULL:
                raise MemoryError()
        try:
            for k in range(nin):
                a = <cnp.ndarray?>inputs[k]
                if not cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_NBYTES(a) != bp.in_nbytes[k]:
                    raise ValueError(f"input {k} is not a C-contiguous array of {bp.in_nbytes[k]} bytes")
                ptrs[k] = <char*>cnp.PyArray_DATA(a)
            for k in range(nout):
                a = <cnp.ndarray?>outputs[k]
                if not cnp.PyArray_IS_C_CONTIGUOUS(a):
                    raise ValueError(f"output {k} is not C-contiguous")
                ptrs[nin + k] = <char*>cnp.PyArray_DATA(a)
            args.steps = bp.steps
            args.nsteps = bp.nsteps
            args.table = bp.table
            args.ntensors = bp.ntensors
            args.const_ptrs = bp.const_ptrs
            args.in_ptrs = ptrs
            args.out_ptrs = ptrs + nin
            args.nin = nin
            args.nout = nout
            args.table_bytes = bp.table_bytes
            req.args = &args
            req.engine = engine
            req.arena_bytes = bp.arena_bytes
            req.rc = 0
            req.failed = -1
            if not self._started:
                self.start()
            with nogil:
                rc = dsl_sched_run(&self.S, &req)
            if info is not None:
                info.append((req.t0_ns * 1e-9, req.t1_ns * 1e-9, req.stream,
                             tuple(req.cpus[k] for k in range(req.ncpus))))
            return rc, req.failed
        finally:
            if ptrs != stack_ptrs:
                free(ptrs)

    def stats(self):
        """Requests run by their caller, combined into another's lease, handed a lease."""
        return {"inline": self.S.served_inline, "combined": self.S.served_combined,
                "handed": self.S.served_handed, "nested": self.S.served_nested,
                "queued": self.S.queued}

    def helpers(self):
        """(stream, cpu, kernel tid, chunks run, parked) of every helper thread."""
        cdef int s, i
        out = []
        for s in range(self.S.nstreams):
            for i in range(self.S.streams[s].n):
                if self.S.streams[s].helpers[i] != NULL:
                    h = self.S.streams[s].helpers[i]
                    out.append((s, h.cpu, h.tid, h.jobs_done, h.state == DSL_H_PARK))
        return out

