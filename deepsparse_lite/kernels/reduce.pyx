"""Reduction and normalisation kernels (family 3): reduce, argmax, topk, softmax,
layer norm, per-channel affine (standalone BatchNormalization), LRN, instance norm.

Every op is normalised at compile time (ops/reduce.py, ops/normalization.py) to a
contiguous [outer, n, inner] layout: ``n`` is the reduced / normalised extent, ``inner``
the contiguous elements after it. With inner == 1 a kernel vectorises along the row of n;
otherwise along inner, in column blocks of COL_BLOCK floats. Threads split the outer
(or outer x column-block) items statically; dsl_threads_for keeps small work on one thread.
The fp32 microkernels are csrc/reduce_f32.h (generic / AVX2 / AVX-512 from one template);
``isa`` below is the kernel form: dsl_kv_form of the step's compile-time level and the CPU cap.

Sub-ops, their tensor slots and parameter records (csrc/dsl_params.h):

  REDUCE     t=[x, y]  dsl_reduce_params: kind (RK_*: 0 sum, 1 mean, 2 max, 3 min, 4 prod,
             5 l2, 6 l1, 7 sumsq, 8 logsum, 9 logsumexp), dtype (F32 | F64 | I64; i64:
             kinds 0,2,3,4,6,7), outer, n, inner, level, scale (an f32 mean's 1 / n)
  ARG        t=[x, y:int64]  dsl_arg_params: is_min, dtype (F32 | I64), outer, n, inner,
             select_last, level   (inner > 1: column blocks of ARG_BLOCK)
  TOPK       t=[x, values, indices:int64]  dsl_topk_params: dtype (F32 | I64), outer, n,
             inner, k, largest (always sorted; ties: lower index first, like onnx.reference)
  SOFTMAX    t=[x, y]  dsl_softmax_params: log (0 softmax, 1 log-softmax), outer, n, inner,
             level
  LAYERNORM  t=[x, scale, bias, y, mean, inv_std_dev]  dsl_layernorm_params: outer, n,
             has_bias, has_mean, has_inv_std (absent tensors: any id, flag 0), level,
             epsilon; scale / bias are n-vectors (the lowering broadcasts them)
  AFFINE     t=[x, ab, y]  y[o, c, j] = x[o, c, j] * ab[c] + ab[C + c]  dsl_affine_params:
             outer, C, inner, level
  BN_PREP    t=[scale, bias, mean, var, ab]  ab = [scale / sqrt(var + eps), bias - mean * a]
             dsl_bn_prep_params: C, epsilon (only when BatchNorm's parameters are runtime)
  LRN        t=[x, y]  (NCHW, inner = H * W)  dsl_lrn_params: N, C, inner, size, alpha,
             beta, bias
  INSTNORM   t=[x, scale[C], bias[C], y]  rows = N * C planes of n = prod(spatial)
             dsl_instnorm_params: rows, n, C, level, epsilon
"""
from libc.stdint cimport int64_t
from libc.math cimport sqrtf, powf, exp, log, sqrt, fabs, isinf

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_F32, DSL_F64, DSL_I64, DSL_KV_REDUCE,
                                          DSL_KV_SOFTMAX, DSL_KV_LAYERNORM, DSL_KV_INSTNORM,
                                          DSL_KV_ARGEXT, DSL_KV_AFFINE, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, run_ranges)
from deepsparse_lite.kernels.params cimport (dsl_reduce_params, dsl_arg_params, dsl_topk_params,
                                             dsl_softmax_params, dsl_layernorm_params,
                                             dsl_affine_params, dsl_bn_prep_params, dsl_lrn_params,
                                             dsl_instnorm_params, DSL_OP_REDUCE, DSL_OP_ARG,
                                             DSL_OP_TOPK, DSL_OP_SOFTMAX, DSL_OP_LAYERNORM,
                                             DSL_OP_AFFINE, DSL_OP_BN_PREP, DSL_OP_LRN,
                                             DSL_OP_INSTNORM)

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


# Each op below: a context struct, a range function over its work items (called by
# run_ranges on one thread or one chunk per team thread), and the op that sizes the work.

cdef struct rctx:
    const dsl_step* s
    char** p
    int form


# ---------------------------------------------------------------------------------------
# REDUCE
# ---------------------------------------------------------------------------------------

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


cdef int64_t reduce_i64_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    # outer items [lo, hi); integer reductions are rare (shape arithmetic): plain loops
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_reduce_params* q = <const dsl_reduce_params*>c.s.params
    cdef const int64_t* x = <const int64_t*>c.p[c.s.t[0]]
    cdef int64_t* y = <int64_t*>c.p[c.s.t[1]]
    cdef int kind = <int>q.kind
    cdef int64_t n = q.n, inner = q.inner, o, r, j
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
    return 0


cdef int64_t reduce_f64_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    # outer items [lo, hi) in double precision (float64 models: shape math, tests), plain
    # loops; max / min propagate NaN like numpy
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_reduce_params* q = <const dsl_reduce_params*>c.s.params
    cdef const double* x = <const double*>c.p[c.s.t[0]]
    cdef double* y = <double*>c.p[c.s.t[1]]
    cdef int kind = <int>q.kind
    cdef int64_t n = q.n, inner = q.inner, o, r, j
    cdef double a, v, m
    cdef const double* xo
    for o in range(lo, hi):
        xo = x + o * n * inner
        for j in range(inner):
            if kind == 9:                                   # logsumexp
                m = xo[j]
                for r in range(1, n):
                    v = xo[r * inner + j]
                    if v > m or v != v:
                        m = v
                if isinf(m) or m != m:
                    y[o * inner + j] = m
                    continue
                a = 0.0
                for r in range(n):
                    a += exp(xo[r * inner + j] - m)
                y[o * inner + j] = m + log(a)
                continue
            a = xo[j]
            if kind == 6:
                a = fabs(a)
            elif kind == 5 or kind == 7:
                a = a * a
            for r in range(1, n):
                v = xo[r * inner + j]
                if kind == 2:
                    if v > a or v != v:
                        a = v
                elif kind == 3:
                    if v < a or v != v:
                        a = v
                elif kind == 4:
                    a = a * v
                elif kind == 6:
                    a = a + fabs(v)
                elif kind == 5 or kind == 7:
                    a = a + v * v
                else:                                       # sum, mean, logsum
                    a = a + v
            if kind == 1:
                a = a / <double>n
            elif kind == 5:
                a = sqrt(a)
            elif kind == 8:
                a = log(a)
            y[o * inner + j] = a
    return 0


cdef int64_t reduce_f32_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    # inner == 1: rows [lo, hi); else (outer, column block) items
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_reduce_params* q = <const dsl_reduce_params*>c.s.params
    cdef const float* x = <const float*>c.p[c.s.t[0]]
    cdef float* y = <float*>c.p[c.s.t[1]]
    cdef int kind = <int>q.kind
    cdef int64_t n = q.n, inner = q.inner, nb, it, o, b, j1
    if inner == 1:
        f32_reduce_rows_select(c.form)(x + lo * n, y + lo, hi - lo, n, kind, q.scale)
        return 0
    cdef f32_reduce_cols_fn fn = f32_reduce_cols_select(c.form)
    nb = ceil_div(inner, COL_BLOCK)
    for it in range(lo, hi):
        o = it // nb
        b = it % nb
        j1 = (b + 1) * COL_BLOCK
        if j1 > inner:
            j1 = inner
        fn(x + o * n * inner, y + o * inner, n, inner, b * COL_BLOCK, j1, kind, q.scale)
    return 0


cdef int reduce_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_reduce_params* q = <const dsl_reduce_params*>s.params
    cdef rctx c
    cdef int64_t items
    if q.n < 1 or q.outer < 0 or q.inner < 1:
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    if q.dtype == DSL_I64:
        run_ranges(ex, reduce_i64_range, &c, q.outer, threads_for(q.outer * q.n * q.inner, q.outer, ex.nt))
        return DSL_OK
    if q.dtype == DSL_F64:
        run_ranges(ex, reduce_f64_range, &c, q.outer, threads_for(q.outer * q.n * q.inner, q.outer, ex.nt))
        return DSL_OK
    if q.dtype != DSL_F32:
        return DSL_ERR_BAD_PARAM
    c.form = form_of(ex, DSL_KV_REDUCE, q.level)
    items = q.outer if q.inner == 1 else q.outer * ceil_div(q.inner, COL_BLOCK)
    run_ranges(ex, reduce_f32_range, &c, items, threads_for(q.outer * q.n * q.inner, items, ex.nt))
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


cdef int64_t arg_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_arg_params* q = <const dsl_arg_params*>c.s.params
    cdef const char* x = c.p[c.s.t[0]]
    cdef int64_t* y = <int64_t*>c.p[c.s.t[1]]
    cdef int is_min = <int>q.is_min, last = <int>q.select_last
    if q.dtype == DSL_F32 and q.inner == 1:
        # contiguous rows: vectorised max/min pass + scan
        f32_argext_rows_select(c.form)(<const float*>x + lo * q.n, y + lo, hi - lo, q.n, is_min, last)
    elif q.dtype == DSL_F32:
        arg_items(<const float*>x, y, q.n, q.inner, is_min, last, lo, hi)
    else:
        arg_items(<const int64_t*>x, y, q.n, q.inner, is_min, last, lo, hi)
    return 0


cdef int arg_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_arg_params* q = <const dsl_arg_params*>s.params
    cdef rctx c
    cdef int64_t items
    if q.n < 1 or (q.dtype != DSL_F32 and q.dtype != DSL_I64):
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    c.form = form_of(ex, DSL_KV_ARGEXT, q.level) if q.dtype == DSL_F32 and q.inner == 1 else 0
    items = q.outer if q.inner == 1 else q.outer * ceil_div(q.inner, ARG_BLOCK)
    run_ranges(ex, arg_range, &c, items, threads_for(q.outer * q.inner * q.n, items, ex.nt))
    return DSL_OK


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


cdef int64_t topk_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_topk_params* q = <const dsl_topk_params*>c.s.params
    cdef char* x = c.p[c.s.t[0]]
    cdef char* v = c.p[c.s.t[1]]
    cdef int64_t* ix = <int64_t*>c.p[c.s.t[2]]
    if q.dtype == DSL_F32:
        topk_items(<const float*>x, <float*>v, ix, q.n, q.inner, q.k, q.largest != 0, lo, hi)
    else:
        topk_items(<const int64_t*>x, <int64_t*>v, ix, q.n, q.inner, q.k, q.largest != 0, lo, hi)
    return 0


cdef int topk_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_topk_params* q = <const dsl_topk_params*>s.params
    cdef rctx c
    cdef int64_t items = q.outer * q.inner
    if q.k < 0 or q.k > q.n or (q.dtype != DSL_F32 and q.dtype != DSL_I64):
        return DSL_ERR_BAD_PARAM
    if q.k == 0:
        return DSL_OK
    c.s = s
    c.p = p
    run_ranges(ex, topk_range, &c, items, threads_for(items * q.n, items, ex.nt))
    return DSL_OK


# ---------------------------------------------------------------------------------------
# SOFTMAX / LOGSOFTMAX
# ---------------------------------------------------------------------------------------

cdef int64_t softmax_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_softmax_params* q = <const dsl_softmax_params*>c.s.params
    cdef const float* x = <const float*>c.p[c.s.t[0]]
    cdef float* y = <float*>c.p[c.s.t[1]]
    cdef int logsm = <int>q.log
    cdef int64_t n = q.n, inner = q.inner, nb, it, o, b, j1
    if inner == 1:
        f32_softmax_rows_select(c.form)(x + lo * n, y + lo * n, hi - lo, n, logsm)
        return 0
    cdef f32_softmax_cols_fn fn = f32_softmax_cols_select(c.form)
    nb = ceil_div(inner, COL_BLOCK)
    for it in range(lo, hi):
        o = it // nb
        b = it % nb
        j1 = (b + 1) * COL_BLOCK
        if j1 > inner:
            j1 = inner
        fn(x + o * n * inner, y + o * n * inner, n, inner, b * COL_BLOCK, j1, logsm)
    return 0


cdef int softmax_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_softmax_params* q = <const dsl_softmax_params*>s.params
    cdef rctx c
    cdef int64_t items
    if q.n < 1 or q.inner < 1:
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    c.form = form_of(ex, DSL_KV_SOFTMAX, q.level)
    items = q.outer if q.inner == 1 else q.outer * ceil_div(q.inner, COL_BLOCK)
    # exp costs ~10 adds: weigh the work so mid-size softmaxes still use the team
    run_ranges(ex, softmax_range, &c, items, threads_for(q.outer * q.n * q.inner * 4, items, ex.nt))
    return DSL_OK


# ---------------------------------------------------------------------------------------
# LAYERNORM
# ---------------------------------------------------------------------------------------

cdef int64_t layernorm_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_step* s = c.s
    cdef const dsl_layernorm_params* q = <const dsl_layernorm_params*>s.params
    cdef int64_t n = q.n
    cdef const float* x = <float*>c.p[s.t[0]]
    cdef const float* w = <float*>c.p[s.t[1]]
    cdef const float* b = <float*>c.p[s.t[2]] if q.has_bias else NULL
    cdef float* y = <float*>c.p[s.t[3]]
    cdef float* mo = <float*>c.p[s.t[4]] + lo if q.has_mean else NULL
    cdef float* ro = <float*>c.p[s.t[5]] + lo if q.has_inv_std else NULL
    f32_layernorm_rows_select(c.form)(x + lo * n, y + lo * n, hi - lo, n, w, b, q.epsilon, mo, ro)
    return 0


cdef int layernorm_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_layernorm_params* q = <const dsl_layernorm_params*>s.params
    cdef rctx c
    if q.n < 1:
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    c.form = form_of(ex, DSL_KV_LAYERNORM, q.level)
    run_ranges(ex, layernorm_range, &c, q.outer, threads_for(q.outer * q.n * 2, q.outer, ex.nt))
    return DSL_OK


# ---------------------------------------------------------------------------------------
# AFFINE (BatchNormalization in inference mode) and its runtime parameter prep
# ---------------------------------------------------------------------------------------

cdef int64_t affine_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_affine_params* q = <const dsl_affine_params*>c.s.params
    cdef int64_t C = q.C, inner = q.inner, it, ch
    cdef const float* x = <float*>c.p[c.s.t[0]]
    cdef const float* ab = <float*>c.p[c.s.t[1]]
    cdef float* y = <float*>c.p[c.s.t[2]]
    cdef f32_affine_plane_fn plane
    cdef f32_affine_vec_fn vec
    if inner == 1:          # items are rows of C channels
        vec = f32_affine_vec_select(c.form)
        for it in range(lo, hi):
            vec(x + it * C, y + it * C, C, ab, ab + C)
    else:                   # items are (outer, channel) planes of inner elements
        plane = f32_affine_plane_select(c.form)
        for it in range(lo, hi):
            ch = it % C
            plane(x + it * inner, y + it * inner, inner, ab[ch], ab[C + ch])
    return 0


cdef int affine_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_affine_params* q = <const dsl_affine_params*>s.params
    cdef rctx c
    cdef int64_t items = q.outer if q.inner == 1 else q.outer * q.C
    c.s = s
    c.p = p
    c.form = form_of(ex, DSL_KV_AFFINE, q.level)
    run_ranges(ex, affine_range, &c, items, threads_for(q.outer * q.C * q.inner, items, ex.nt))
    return DSL_OK


cdef int bn_prep_op(const dsl_step* s, char** p) noexcept nogil:
    cdef const dsl_bn_prep_params* q = <const dsl_bn_prep_params*>s.params
    cdef int64_t C = q.C, c
    cdef const float* sc = <float*>p[s.t[0]]
    cdef const float* bi = <float*>p[s.t[1]]
    cdef const float* mu = <float*>p[s.t[2]]
    cdef const float* var = <float*>p[s.t[3]]
    cdef float* ab = <float*>p[s.t[4]]
    cdef float a
    for c in range(C):
        a = sc[c] / sqrtf(var[c] + q.epsilon)
        ab[c] = a
        ab[C + c] = bi[c] - mu[c] * a
    return DSL_OK


# ---------------------------------------------------------------------------------------
# LRN (across channels; AlexNet / GoogLeNet era, kept simple)
# ---------------------------------------------------------------------------------------

cdef int64_t lrn_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_lrn_params* q = <const dsl_lrn_params*>c.s.params
    cdef const float* x = <float*>c.p[c.s.t[0]]
    cdef float* y = <float*>c.p[c.s.t[1]]
    cdef int64_t C = q.C, inner = q.inner, size = q.size
    cdef int64_t c1 = (size - 1) // 2, c2 = size - 1 - c1   # window [c - c1, c + c2]
    cdef float alpha = q.alpha / <float>size, beta = q.beta, bias = q.bias
    cdef int64_t it, nidx, ch, cc, lo_c, hi_c, j
    cdef const float* xb
    cdef float sq, v
    for it in range(lo, hi):
        nidx = it // C
        ch = it % C
        xb = x + nidx * C * inner
        lo_c = ch - c1 if ch >= c1 else 0
        hi_c = ch + c2 + 1 if ch + c2 + 1 < C else C
        for j in range(inner):
            sq = 0.0
            for cc in range(lo_c, hi_c):
                v = xb[cc * inner + j]
                sq = sq + v * v
            y[it * inner + j] = xb[ch * inner + j] / powf(bias + alpha * sq, beta)
    return 0


cdef int lrn_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_lrn_params* q = <const dsl_lrn_params*>s.params
    cdef rctx c
    cdef int64_t items = q.N * q.C
    if q.size < 1:
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    run_ranges(ex, lrn_range, &c, items, threads_for(items * q.inner * q.size, items, ex.nt))
    return DSL_OK


# ---------------------------------------------------------------------------------------
# INSTANCE NORMALIZATION
# ---------------------------------------------------------------------------------------

cdef int64_t instnorm_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const rctx* c = <const rctx*>vctx
    cdef const dsl_instnorm_params* q = <const dsl_instnorm_params*>c.s.params
    cdef int64_t n = q.n
    cdef const float* x = <float*>c.p[c.s.t[0]]
    cdef float* y = <float*>c.p[c.s.t[3]]
    f32_instnorm_rows_select(c.form)(x + lo * n, y + lo * n, hi - lo, n, lo, q.C,
                                     <float*>c.p[c.s.t[1]], <float*>c.p[c.s.t[2]], q.epsilon)
    return 0


cdef int instnorm_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_instnorm_params* q = <const dsl_instnorm_params*>s.params
    cdef rctx c
    if q.n < 1 or q.C < 1:
        return DSL_ERR_BAD_PARAM
    c.s = s
    c.p = p
    c.form = form_of(ex, DSL_KV_INSTNORM, q.level)
    run_ranges(ex, instnorm_range, &c, q.rows, threads_for(q.rows * q.n * 2, q.rows, ex.nt))
    return DSL_OK


cdef int run_reduce(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_REDUCE:
        return reduce_op(s, p, x)
    if s.op == DSL_OP_ARG:
        return arg_op(s, p, x)
    if s.op == DSL_OP_TOPK:
        return topk_op(s, p, x)
    if s.op == DSL_OP_SOFTMAX:
        return softmax_op(s, p, x)
    if s.op == DSL_OP_LAYERNORM:
        return layernorm_op(s, p, x)
    if s.op == DSL_OP_AFFINE:
        return affine_op(s, p, x)
    if s.op == DSL_OP_BN_PREP:
        return bn_prep_op(s, p)
    if s.op == DSL_OP_LRN:
        return lrn_op(s, p, x)
    if s.op == DSL_OP_INSTNORM:
        return instnorm_op(s, p, x)
    return DSL_ERR_UNKNOWN_OP


cdef extern from "dsl_membw.h" nogil:
    double dsl_stream_read(int form, const float* p, int64_t n, int passes)
    double dsl_fma_peak(int form, int64_t iters, float* sink)
    int dsl_isa_detect()


def fma_peak_gflops(int form, int64_t iters=2000000):
    """This thread's fp32 FMA throughput (GFLOP/s) in vector form ``form`` (1 AVX2, 2
    AVX-512; the caller checks the CPU has it): 24 independent FMA chains, ``iters``
    rounds. The ceiling a single-thread kernel is measured against."""
    import time
    cdef float sink = 0
    cdef double flops = 0
    if form not in (1, 2):
        raise ValueError(f"no FMA peak probe for vector form {form}")
    if dsl_isa_detect() < form:
        raise ValueError(f"vector form {form} needs instructions this CPU does not have")
    t0 = time.perf_counter()
    with nogil:
        flops = dsl_fma_peak(form, iters, &sink)
    return flops / (time.perf_counter() - t0) / 1e9


def stream_read_seconds(buf, int form, int passes=1):
    """Seconds to read the float32 buffer ``buf`` front to back ``passes`` times with the
    vector form ``form`` (csrc/dsl_cpu.h DSL_FORM_*; the caller checks the CPU has it): the
    read bandwidth a streaming kernel can reach, the ceiling of the small-M GEMM."""
    import time
    cdef const float[::1] v = buf.reshape(-1)
    cdef int64_t n = v.shape[0]
    cdef double acc = 0
    cdef int need = 2 if form == 2 else (1 if form in (1, 3) else 0)
    if form < 0 or form > 3:
        raise ValueError(f"unknown vector form {form}")
    if dsl_isa_detect() < need:
        raise ValueError(f"vector form {form} needs instructions this CPU does not have")
    if n == 0:
        return 0.0, 0.0
    t0 = time.perf_counter()
    with nogil:
        acc = dsl_stream_read(form, &v[0], n, passes)
    return time.perf_counter() - t0, float(acc)
