"""Reduction and normalisation kernels (family 3): reduce, argmax, topk, softmax,
layer norm, per-channel affine (standalone BatchNormalization), LRN, instance norm.

Every op is normalised at compile time (ops/reduce.py, ops/normalization.py) to a
contiguous [outer, n, inner] layout: ``n`` is the reduced / normalised extent, ``inner``
the contiguous elements after it. With inner == 1 a kernel vectorises along the row of n;
otherwise along inner, in column blocks of COL_BLOCK floats. Threads split the outer
(or outer x column-block) items statically; dsl_threads_for keeps small work on one thread.
The fp32 microkernels are csrc/reduce_f32.h (generic / AVX2 / AVX-512 from one template);
``isa`` below is the kernel form: dsl_kv_form of the step's compile-time level and the CPU cap.

Sub-ops (op = 300 + sub). Tensor slots t[...] and params:

  1 REDUCE     t=[x, y]
               i: [0] kind (RK_*: 0 sum, 1 mean, 2 max, 3 min, 4 prod, 5 l2, 6 l1, 7 sumsq,
                  8 logsum, 9 logsumexp), [1] dtype (DSL_F32 | DSL_I64; i64: kinds 0,2,3,4,6,7),
                  [2] outer, [3] n, [4] inner, [5] isa
               f: [0] scale applied to a mean (1 / n)
  2 ARG        t=[x, y:int64]
               i: [0] 0 argmax | 1 argmin, [1] dtype (F32 | I64), [2] outer, [3] n, [4] inner,
                  [5] select_last_index, [6] isa   (inner > 1: column blocks of ARG_BLOCK)
  3 TOPK       t=[x, values, indices:int64]
               i: [0] dtype (F32 | I64), [1] outer, [2] n, [3] inner, [4] k, [5] largest
               (always sorted; ties: lower index first, like onnx.reference / onnxruntime)
  4 SOFTMAX    t=[x, y]
               i: [0] 0 softmax | 1 log-softmax, [1] outer, [2] n, [3] inner, [4] isa
  5 LAYERNORM  t=[x, scale, bias, y, mean, inv_std_dev]   (absent tensors: any id, flag 0)
               i: [0] outer, [1] n, [2] has_bias, [3] has_mean, [4] has_inv_std, [5] isa
               f: [0] epsilon
               scale / bias are n-vectors (the lowering broadcasts them at compile time).
  6 AFFINE     t=[x, ab, y]    y[o, c, j] = x[o, c, j] * ab[c] + ab[C + c]
               i: [0] outer, [1] C, [2] inner, [3] isa
  7 BN_PREP    t=[scale, bias, mean, var, ab]   ab = [scale / sqrt(var + eps), bias - mean * a]
               i: [0] C   f: [0] epsilon     (only when BatchNorm's parameters are runtime tensors)
  8 LRN        t=[x, y]   (NCHW, inner = H * W)
               i: [0] N, [1] C, [2] inner, [3] size   f: [0] alpha, [1] beta, [2] bias
  9 INSTNORM   t=[x, scale[C], bias[C], y]   rows = N * C planes of n = prod(spatial)
               i: [0] rows, [1] n, [2] C, [3] isa   f: [0] epsilon
"""
from libc.stdint cimport int64_t
from libc.math cimport sqrtf, powf
from cython.parallel cimport prange

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_F32, DSL_I64, DSL_KV_REDUCE,
                                          DSL_KV_SOFTMAX, DSL_KV_LAYERNORM, DSL_KV_INSTNORM,
                                          DSL_KV_ARGEXT, DSL_KV_AFFINE, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, dsl_chunk_lo)

cdef extern from "reduce_f32.h" nogil:
    int DSL_RK_SUM, DSL_RK_MEAN, DSL_RK_MAX, DSL_RK_MIN, DSL_RK_PROD, DSL_RK_L2, DSL_RK_L1
    int DSL_RK_SUMSQ, DSL_RK_LOGSUM, DSL_RK_LOGSUMEXP
    ctypedef void (*f32_reduce_rows_fn)(const float*, float*, int64_t, int64_t, int, float) noexcept nogil
    ctypedef void (*f32_reduce_cols_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                        int, float) noexcept nogil
    ctypedef void (*f32_softmax_rows_fn)(const float*, float*, int64_t, int64_t, int) noexcept nogil
    ctypedef void (*f32_softmax_cols_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                         int) noexcept nogil
    ctypedef void (*f32_layernorm_rows_fn)(const float*, float*, int64_t, int64_t, const float*,
                                           const float*, float, float*, float*) noexcept nogil
    ctypedef void (*f32_instnorm_rows_fn)(const float*, float*, int64_t, int64_t, int64_t, int64_t,
                                          const float*, const float*, float) noexcept nogil
    ctypedef void (*f32_argext_rows_fn)(const float*, int64_t*, int64_t, int64_t, int,
                                        int) noexcept nogil
    ctypedef void (*f32_affine_plane_fn)(const float*, float*, int64_t, float, float) noexcept nogil
    ctypedef void (*f32_affine_vec_fn)(const float*, float*, int64_t, const float*,
                                       const float*) noexcept nogil
    f32_reduce_rows_fn f32_reduce_rows_select(int form)
    f32_reduce_cols_fn f32_reduce_cols_select(int form)
    f32_softmax_rows_fn f32_softmax_rows_select(int form)
    f32_softmax_cols_fn f32_softmax_cols_select(int form)
    f32_layernorm_rows_fn f32_layernorm_rows_select(int form)
    f32_instnorm_rows_fn f32_instnorm_rows_select(int form)
    f32_argext_rows_fn f32_argext_rows_select(int form)
    f32_affine_plane_fn f32_affine_plane_select(int form)
    f32_affine_vec_fn f32_affine_vec_select(int form)

ctypedef fused num_t:
    float
    int64_t

# Elements a thread should at least get before another one is woken (fork/join ~ a few us).
DEF MIN_WORK = 16384
# Threshold actually used; tests lower it (set_min_work) so small shapes take the threaded path.
cdef int64_t min_work = MIN_WORK


def set_min_work(int64_t n):
    """Set the elements-per-thread threshold of this family (tests only); returns the old one."""
    global min_work
    old = min_work
    min_work = n if n > 0 else MIN_WORK
    return old
# Column block of the inner > 1 kernels: the partial results (4 KiB) stay in L1.
DEF COL_BLOCK = 1024
DEF ARG_BLOCK = 256


def reduce_kinds():
    """The DSL_RK_* codes of csrc/reduce_f32.h (ops.reduce.RK mirrors them; a test checks)."""
    return {"SUM": DSL_RK_SUM, "MEAN": DSL_RK_MEAN, "MAX": DSL_RK_MAX, "MIN": DSL_RK_MIN,
            "PROD": DSL_RK_PROD, "L2": DSL_RK_L2, "L1": DSL_RK_L1, "SUMSQ": DSL_RK_SUMSQ,
            "LOGSUM": DSL_RK_LOGSUM, "LOGSUMEXP": DSL_RK_LOGSUMEXP}


cdef inline int form_of(const dsl_exec* x, int kv, int64_t level) noexcept nogil:
    """The kernel form a step of plan level ``level`` runs in (and count it)."""
    cdef int form = dsl_kv_form(kv, <int>level, x.cap)
    dsl_hit(x, kv, form)
    return form


cdef inline int64_t ceil_div(int64_t a, int64_t b) noexcept nogil:
    return (a + b - 1) // b


cdef inline int threads_for(int64_t work, int64_t items, int nt) noexcept nogil:
    cdef int nth = dsl_threads_for(work, min_work, nt)
    if nth > items:
        nth = <int>items
    return nth if nth > 0 else 1


# ---------------------------------------------------------------------------------------
# REDUCE
# ---------------------------------------------------------------------------------------

cdef void reduce_f32_items(const dsl_step* s, const float* x, float* y, int64_t lo, int64_t hi,
                           int isa) noexcept nogil:
    cdef int kind = <int>s.i[0]
    cdef int64_t n = s.i[3], inner = s.i[4], nb, it, o, b, j1
    cdef float scale = s.f[0]
    if inner == 1:
        f32_reduce_rows_select(isa)(x + lo * n, y + lo, hi - lo, n, kind, scale)
        return
    cdef f32_reduce_cols_fn fn = f32_reduce_cols_select(isa)
    nb = ceil_div(inner, COL_BLOCK)
    for it in range(lo, hi):
        o = it // nb
        b = it % nb
        j1 = (b + 1) * COL_BLOCK
        if j1 > inner:
            j1 = inner
        fn(x + o * n * inner, y + o * inner, n, inner, b * COL_BLOCK, j1, kind, scale)


cdef inline int64_t i64_op(int kind, int64_t a, int64_t v) noexcept nogil:
    if kind == 0 or kind == 6 or kind == 7:  # sum, l1, sumsq (v already mapped)
        return a + v
    if kind == 2:
        return v if v > a else a
    if kind == 3:
        return v if v < a else a
    return a * v                             # prod


cdef inline int64_t i64_map(int kind, int64_t v) noexcept nogil:
    if kind == 6:
        return v if v >= 0 else -v
    if kind == 7:
        return v * v
    return v


cdef void reduce_i64_items(const dsl_step* s, const int64_t* x, int64_t* y, int64_t lo,
                           int64_t hi) noexcept nogil:
    # outer items [lo, hi); integer reductions are rare (shape arithmetic): plain loops
    cdef int kind = <int>s.i[0]
    cdef int64_t n = s.i[3], inner = s.i[4], o, r, j, a
    cdef const int64_t* xo
    cdef int64_t* yo
    for o in range(lo, hi):
        xo = x + o * n * inner
        yo = y + o * inner
        for j in range(inner):
            yo[j] = i64_map(kind, xo[j])
        for r in range(1, n):
            for j in range(inner):
                yo[j] = i64_op(kind, yo[j], i64_map(kind, xo[r * inner + j]))


cdef int reduce_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t outer = s.i[2], n = s.i[3], inner = s.i[4], items
    cdef int isa, nth, c
    cdef char* x = p[s.t[0]]
    cdef char* y = p[s.t[1]]
    if n < 1 or outer < 0 or inner < 1:
        return DSL_ERR_BAD_PARAM
    if s.i[1] == DSL_I64:
        nth = threads_for(outer * n * inner, outer, nt)
        if nth <= 1:
            reduce_i64_items(s, <int64_t*>x, <int64_t*>y, 0, outer)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            reduce_i64_items(s, <int64_t*>x, <int64_t*>y, dsl_chunk_lo(outer, c, nth),
                             dsl_chunk_lo(outer, c + 1, nth))
        return DSL_OK
    if s.i[1] != DSL_F32:
        return DSL_ERR_BAD_PARAM
    isa = form_of(ex, DSL_KV_REDUCE, s.i[5])
    items = outer if inner == 1 else outer * ceil_div(inner, COL_BLOCK)
    nth = threads_for(outer * n * inner, items, nt)
    if nth <= 1:
        reduce_f32_items(s, <float*>x, <float*>y, 0, items, isa)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        reduce_f32_items(s, <float*>x, <float*>y, dsl_chunk_lo(items, c, nth),
                         dsl_chunk_lo(items, c + 1, nth), isa)
    return DSL_OK


# ---------------------------------------------------------------------------------------
# ARGMAX / ARGMIN
# ---------------------------------------------------------------------------------------

cdef void arg_items(const num_t* x, int64_t* y, int64_t n, int64_t inner, int is_min, int last,
                    int64_t lo, int64_t hi) noexcept nogil:
    # items are (outer, block of ARG_BLOCK columns): rows are read contiguously and the
    # running best values of the block stay on the stack (segmentation heads: argmax over
    # classes of [1, K, H, W] is K passes over H * W, not H * W strided walks)
    cdef int64_t nb = ceil_div(inner, ARG_BLOCK), it, o, j0, w, j, r
    cdef num_t bv[ARG_BLOCK]
    cdef num_t v
    cdef const num_t* xc
    cdef const num_t* xr
    cdef int64_t* yo
    for it in range(lo, hi):
        o = it // nb
        j0 = (it % nb) * ARG_BLOCK
        w = inner - j0
        if w > ARG_BLOCK:
            w = ARG_BLOCK
        xc = x + o * n * inner + j0
        yo = y + o * inner + j0
        for j in range(w):
            bv[j] = xc[j]
            yo[j] = 0
        for r in range(1, n):
            xr = xc + r * inner
            if is_min:
                for j in range(w):
                    v = xr[j]
                    if v < bv[j] or (last and v == bv[j]):
                        bv[j] = v
                        yo[j] = r
            else:
                for j in range(w):
                    v = xr[j]
                    if v > bv[j] or (last and v == bv[j]):
                        bv[j] = v
                        yo[j] = r


cdef int arg_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int is_min = <int>s.i[0], last = <int>s.i[5], nth, c
    cdef int isa = 0
    cdef int64_t outer = s.i[2], n = s.i[3], inner = s.i[4], items, lo
    cdef char* x = p[s.t[0]]
    cdef int64_t* y = <int64_t*>p[s.t[1]]
    if n < 1:
        return DSL_ERR_BAD_PARAM
    items = outer if inner == 1 else outer * ceil_div(inner, ARG_BLOCK)
    nth = threads_for(outer * inner * n, items, nt)
    if s.i[1] == DSL_F32 and inner == 1:
        # contiguous rows: vectorised max/min pass + scan
        isa = form_of(ex, DSL_KV_ARGEXT, s.i[6])
        if nth <= 1:
            f32_argext_rows_select(isa)(<float*>x, y, items, n, is_min, last)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            lo = dsl_chunk_lo(items, c, nth)
            f32_argext_rows_select(isa)(<float*>x + lo * n, y + lo, dsl_chunk_lo(items, c + 1, nth) - lo,
                                        n, is_min, last)
        return DSL_OK
    if s.i[1] == DSL_F32:
        if nth <= 1:
            arg_items(<float*>x, y, n, inner, is_min, last, 0, items)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            arg_items(<float*>x, y, n, inner, is_min, last, dsl_chunk_lo(items, c, nth),
                      dsl_chunk_lo(items, c + 1, nth))
        return DSL_OK
    if s.i[1] == DSL_I64:
        if nth <= 1:
            arg_items(<int64_t*>x, y, n, inner, is_min, last, 0, items)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            arg_items(<int64_t*>x, y, n, inner, is_min, last, dsl_chunk_lo(items, c, nth),
                      dsl_chunk_lo(items, c + 1, nth))
        return DSL_OK
    return DSL_ERR_BAD_PARAM


# ---------------------------------------------------------------------------------------
# TOPK: a k-heap per line kept directly in the (strided) output slots, then heap-sorted
# ---------------------------------------------------------------------------------------

cdef inline bint topk_better(num_t a, int64_t ia, num_t b, int64_t ib, bint largest) noexcept nogil:
    # strict order "a ranks before b": by value, ties by the lower index
    if a == b:
        return ia < ib
    return (a > b) if largest else (a < b)


cdef inline void topk_sift(num_t* v, int64_t* ix, int64_t st, int64_t m, int64_t pos,
                           bint largest) noexcept nogil:
    # heap with the WORST kept element at the root (so a better candidate replaces it)
    cdef int64_t child, w
    cdef num_t tv
    cdef int64_t ti
    while True:
        child = 2 * pos + 1
        if child >= m:
            break
        w = child
        if child + 1 < m and topk_better(v[child * st], ix[child * st],
                                         v[(child + 1) * st], ix[(child + 1) * st], largest):
            w = child + 1           # the worse of the two children
        if topk_better(v[w * st], ix[w * st], v[pos * st], ix[pos * st], largest):
            break                   # the worst child ranks before pos: heap holds
        tv = v[pos * st]; v[pos * st] = v[w * st]; v[w * st] = tv
        ti = ix[pos * st]; ix[pos * st] = ix[w * st]; ix[w * st] = ti
        pos = w


cdef void topk_items(const num_t* x, num_t* vals, int64_t* idx, int64_t n, int64_t inner,
                     int64_t k, bint largest, int64_t lo, int64_t hi) noexcept nogil:
    cdef int64_t it, o, j, r, m
    cdef const num_t* xc
    cdef num_t* v
    cdef int64_t* ix
    cdef num_t tv
    cdef int64_t ti
    for it in range(lo, hi):
        o = it // inner
        j = it % inner
        xc = x + o * n * inner + j
        v = vals + o * k * inner + j
        ix = idx + o * k * inner + j
        # build a heap of the first k, then let every better element replace the root
        for r in range(k):
            v[r * inner] = xc[r * inner]
            ix[r * inner] = r
        r = k // 2
        while r > 0:
            r -= 1
            topk_sift(v, ix, inner, k, r, largest)
        for r in range(k, n):
            if topk_better(xc[r * inner], r, v[0], ix[0], largest):
                v[0] = xc[r * inner]
                ix[0] = r
                topk_sift(v, ix, inner, k, 0, largest)
        # heap sort: the worst goes last, so slots end up best-first
        m = k
        while m > 1:
            m -= 1
            tv = v[0]; v[0] = v[m * inner]; v[m * inner] = tv
            ti = ix[0]; ix[0] = ix[m * inner]; ix[m * inner] = ti
            topk_sift(v, ix, inner, m, 0, largest)


cdef int topk_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t outer = s.i[1], n = s.i[2], inner = s.i[3], k = s.i[4], items = outer * inner
    cdef bint largest = s.i[5] != 0
    cdef int nth, c
    cdef char* x = p[s.t[0]]
    cdef char* v = p[s.t[1]]
    cdef int64_t* ix = <int64_t*>p[s.t[2]]
    if k < 0 or k > n:
        return DSL_ERR_BAD_PARAM
    if k == 0:
        return DSL_OK
    nth = threads_for(items * n, items, nt)
    if s.i[0] == DSL_F32:
        if nth <= 1:
            topk_items(<float*>x, <float*>v, ix, n, inner, k, largest, 0, items)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            topk_items(<float*>x, <float*>v, ix, n, inner, k, largest,
                       dsl_chunk_lo(items, c, nth), dsl_chunk_lo(items, c + 1, nth))
        return DSL_OK
    if s.i[0] == DSL_I64:
        if nth <= 1:
            topk_items(<int64_t*>x, <int64_t*>v, ix, n, inner, k, largest, 0, items)
            return DSL_OK
        for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
            topk_items(<int64_t*>x, <int64_t*>v, ix, n, inner, k, largest,
                       dsl_chunk_lo(items, c, nth), dsl_chunk_lo(items, c + 1, nth))
        return DSL_OK
    return DSL_ERR_BAD_PARAM


# ---------------------------------------------------------------------------------------
# SOFTMAX / LOGSOFTMAX
# ---------------------------------------------------------------------------------------

cdef void softmax_items(const dsl_step* s, const float* x, float* y, int64_t lo, int64_t hi,
                        int isa) noexcept nogil:
    cdef int logsm = <int>s.i[0]
    cdef int64_t n = s.i[2], inner = s.i[3], nb, it, o, b, j1
    if inner == 1:
        f32_softmax_rows_select(isa)(x + lo * n, y + lo * n, hi - lo, n, logsm)
        return
    cdef f32_softmax_cols_fn fn = f32_softmax_cols_select(isa)
    nb = ceil_div(inner, COL_BLOCK)
    for it in range(lo, hi):
        o = it // nb
        b = it % nb
        j1 = (b + 1) * COL_BLOCK
        if j1 > inner:
            j1 = inner
        fn(x + o * n * inner, y + o * n * inner, n, inner, b * COL_BLOCK, j1, logsm)


cdef int softmax_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t outer = s.i[1], n = s.i[2], inner = s.i[3], items
    cdef int isa = form_of(ex, DSL_KV_SOFTMAX, s.i[4]), nth, c
    cdef float* x = <float*>p[s.t[0]]
    cdef float* y = <float*>p[s.t[1]]
    if n < 1 or inner < 1:
        return DSL_ERR_BAD_PARAM
    items = outer if inner == 1 else outer * ceil_div(inner, COL_BLOCK)
    # exp costs ~10 adds: weigh the work so mid-size softmaxes still use the team
    nth = threads_for(outer * n * inner * 4, items, nt)
    if nth <= 1:
        softmax_items(s, x, y, 0, items, isa)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        softmax_items(s, x, y, dsl_chunk_lo(items, c, nth), dsl_chunk_lo(items, c + 1, nth), isa)
    return DSL_OK


# ---------------------------------------------------------------------------------------
# LAYERNORM
# ---------------------------------------------------------------------------------------

cdef void layernorm_rows(const dsl_step* s, char** p, int64_t lo, int64_t hi, int isa) noexcept nogil:
    cdef int64_t n = s.i[1]
    cdef const float* x = <float*>p[s.t[0]]
    cdef const float* w = <float*>p[s.t[1]]
    cdef const float* b = <float*>p[s.t[2]] if s.i[2] else NULL
    cdef float* y = <float*>p[s.t[3]]
    cdef float* mo = <float*>p[s.t[4]] + lo if s.i[3] else NULL
    cdef float* ro = <float*>p[s.t[5]] + lo if s.i[4] else NULL
    f32_layernorm_rows_select(isa)(x + lo * n, y + lo * n, hi - lo, n, w, b, s.f[0], mo, ro)


cdef int layernorm_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t outer = s.i[0], n = s.i[1]
    cdef int isa = form_of(ex, DSL_KV_LAYERNORM, s.i[5]), nth, c
    if n < 1:
        return DSL_ERR_BAD_PARAM
    nth = threads_for(outer * n * 2, outer, nt)
    if nth <= 1:
        layernorm_rows(s, p, 0, outer, isa)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        layernorm_rows(s, p, dsl_chunk_lo(outer, c, nth), dsl_chunk_lo(outer, c + 1, nth), isa)
    return DSL_OK


# ---------------------------------------------------------------------------------------
# AFFINE (BatchNormalization in inference mode) and its runtime parameter prep
# ---------------------------------------------------------------------------------------

cdef void affine_items(const dsl_step* s, char** p, int64_t lo, int64_t hi, int isa) noexcept nogil:
    cdef int64_t C = s.i[1], inner = s.i[2], it, c
    cdef const float* x = <float*>p[s.t[0]]
    cdef const float* ab = <float*>p[s.t[1]]
    cdef float* y = <float*>p[s.t[2]]
    cdef f32_affine_plane_fn plane
    cdef f32_affine_vec_fn vec
    if inner == 1:          # items are rows of C channels
        vec = f32_affine_vec_select(isa)
        for it in range(lo, hi):
            vec(x + it * C, y + it * C, C, ab, ab + C)
    else:                   # items are (outer, channel) planes of inner elements
        plane = f32_affine_plane_select(isa)
        for it in range(lo, hi):
            c = it % C
            plane(x + it * inner, y + it * inner, inner, ab[c], ab[C + c])


cdef int affine_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t outer = s.i[0], C = s.i[1], inner = s.i[2]
    cdef int isa = form_of(ex, DSL_KV_AFFINE, s.i[3]), nth, c
    cdef int64_t items = outer if inner == 1 else outer * C
    nth = threads_for(outer * C * inner, items, nt)
    if nth <= 1:
        affine_items(s, p, 0, items, isa)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        affine_items(s, p, dsl_chunk_lo(items, c, nth), dsl_chunk_lo(items, c + 1, nth), isa)
    return DSL_OK


cdef int bn_prep_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t C = s.i[0], c
    cdef const float* sc = <float*>p[s.t[0]]
    cdef const float* bi = <float*>p[s.t[1]]
    cdef const float* mu = <float*>p[s.t[2]]
    cdef const float* var = <float*>p[s.t[3]]
    cdef float* ab = <float*>p[s.t[4]]
    cdef float a
    for c in range(C):
        a = sc[c] / sqrtf(var[c] + s.f[0])
        ab[c] = a
        ab[C + c] = bi[c] - mu[c] * a
    return DSL_OK


# ---------------------------------------------------------------------------------------
# LRN (across channels; AlexNet / GoogLeNet era, kept simple)
# ---------------------------------------------------------------------------------------

cdef void lrn_planes(const dsl_step* s, const float* x, float* y, int64_t lo, int64_t hi) noexcept nogil:
    cdef int64_t C = s.i[1], inner = s.i[2], size = s.i[3]
    cdef int64_t c1 = (size - 1) // 2, c2 = size - 1 - c1   # window [c - c1, c + c2]
    cdef float alpha = s.f[0] / <float>size, beta = s.f[1], bias = s.f[2]
    cdef int64_t it, nidx, c, cc, lo_c, hi_c, j
    cdef const float* xb
    cdef float sq, v
    for it in range(lo, hi):
        nidx = it // C
        c = it % C
        xb = x + nidx * C * inner
        lo_c = c - c1 if c >= c1 else 0
        hi_c = c + c2 + 1 if c + c2 + 1 < C else C
        for j in range(inner):
            sq = 0.0
            for cc in range(lo_c, hi_c):
                v = xb[cc * inner + j]
                sq = sq + v * v
            y[it * inner + j] = xb[c * inner + j] / powf(bias + alpha * sq, beta)


cdef int lrn_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t items = s.i[0] * s.i[1]
    cdef const float* x = <float*>p[s.t[0]]
    cdef float* y = <float*>p[s.t[1]]
    cdef int nth = threads_for(items * s.i[2] * s.i[3], items, nt), c
    if s.i[3] < 1:
        return DSL_ERR_BAD_PARAM
    if nth <= 1:
        lrn_planes(s, x, y, 0, items)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        lrn_planes(s, x, y, dsl_chunk_lo(items, c, nth), dsl_chunk_lo(items, c + 1, nth))
    return DSL_OK


# ---------------------------------------------------------------------------------------
# INSTANCE NORMALIZATION
# ---------------------------------------------------------------------------------------

cdef void instnorm_rows(const dsl_step* s, char** p, int64_t lo, int64_t hi, int isa) noexcept nogil:
    cdef int64_t n = s.i[1]
    cdef const float* x = <float*>p[s.t[0]]
    cdef float* y = <float*>p[s.t[3]]
    f32_instnorm_rows_select(isa)(x + lo * n, y + lo * n, hi - lo, n, lo, s.i[2],
                                  <float*>p[s.t[1]], <float*>p[s.t[2]], s.f[0])


cdef int instnorm_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef int nt = ex.nt
    cdef int64_t rows = s.i[0], n = s.i[1]
    cdef int isa = form_of(ex, DSL_KV_INSTNORM, s.i[3]), nth, c
    if n < 1 or s.i[2] < 1:
        return DSL_ERR_BAD_PARAM
    nth = threads_for(rows * n * 2, rows, nt)
    if nth <= 1:
        instnorm_rows(s, p, 0, rows, isa)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        instnorm_rows(s, p, dsl_chunk_lo(rows, c, nth), dsl_chunk_lo(rows, c + 1, nth), isa)
    return DSL_OK


cdef int run_reduce(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int sub = s.op % 100
    if sub == 1:
        return reduce_op(s, p, x)
    if sub == 2:
        return arg_op(s, p, x)
    if sub == 3:
        return topk_op(s, p, x)
    if sub == 4:
        return softmax_op(s, p, x)
    if sub == 5:
        return layernorm_op(s, p, x)
    if sub == 6:
        return affine_op(s, p, x)
    if sub == 7:
        return bn_prep_op(s, p, x)
    if sub == 8:
        return lrn_op(s, p, x)
    if sub == 9:
        return instnorm_op(s, p, x)
    return DSL_ERR_UNKNOWN_OP
