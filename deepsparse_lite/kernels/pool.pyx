"""Pooling kernels (family 4): 2-D max / average pooling over NCHW planes.

Global pooling is lowered to the REDUCE step of the reduce family (a mean / max over each
plane). 1-D pooling runs here with H = 1. The fp32 microkernel is csrc/pool_f32.h (generic /
AVX2 / AVX-512 from one template): one output row at a time through a per-thread row
buffer (vertical pass into the buffer, horizontal pass out of it), see pool_f32_tmpl.h.
Threads split the planes * OH output rows statically.

Sub-ops (op = 400 + sub):

  1 POOL2D  t=[x, y, workspace, invh, invw]
            i: [0] 0 max | 1 average, [1] planes (N * C), [2] H, [3] W, [4] OH, [5] OW,
               [6] KH, [7] KW, [8] SH, [9] SW, [10] pad top, [11] pad left, [12] DH, [13] DW,
               [14] Wp = (OW - 1) * SW + (KW - 1) * DW + 1 (row buffer floats),
               [15] isa, [16] row buffers in the workspace (threads are capped to it),
               [17] row buffer stride in floats (>= Wp + 1: even-lane loads read one past Wp)
            invh[OH], invw[OW] (average only; max: any tensor id) are 1 / window counts
            (count_include_pad decides them at compile time), so y = sum * invh * invw.
  2 MAXPOOL2D_IDX  t=[x, y, indices:int64]   MaxPool with its optional Indices output
            i: [1]..[13] as POOL2D, [14] storage_order (0: plane * H * W + h * W + w,
               1: plane * H * W + h + w * H); scalar (models that ask for indices are rare)
"""
from libc.stdint cimport int64_t
from libc.math cimport INFINITY
from cython.parallel cimport prange

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_POOL, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, dsl_chunk_lo)

cdef extern from "pool_f32.h" nogil:
    ctypedef struct dsl_pool2d:
        int64_t H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, Wp, avg
    ctypedef void (*f32_pool2d_rows_fn)(const float*, float*, const dsl_pool2d*, int64_t, int64_t,
                                        float*, const float*, const float*) noexcept nogil
    f32_pool2d_rows_fn f32_pool2d_rows_select(int form)

DEF MIN_WORK = 16384
# Threshold actually used; tests lower it (set_min_work) so small shapes take the threaded path.
cdef int64_t min_work = MIN_WORK


def set_min_work(int64_t n):
    """Set the elements-per-thread threshold of this family (tests only); returns the old one."""
    global min_work
    old = min_work
    min_work = n if n > 0 else MIN_WORK
    return old


cdef int pool2d_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef dsl_pool2d q
    q.avg = s.i[0]
    q.H = s.i[2]; q.W = s.i[3]; q.OH = s.i[4]; q.OW = s.i[5]
    q.KH = s.i[6]; q.KW = s.i[7]; q.SH = s.i[8]; q.SW = s.i[9]
    q.PT = s.i[10]; q.PL = s.i[11]; q.DH = s.i[12]; q.DW = s.i[13]; q.Wp = s.i[14]
    cdef int64_t rows = s.i[1] * q.OH, stride = s.i[17]
    cdef int form = dsl_kv_form(DSL_KV_POOL, <int>s.i[15], ex.cap), nth, c, nt = ex.nt
    cdef const float* x = <float*>p[s.t[0]]
    cdef float* y = <float*>p[s.t[1]]
    cdef float* ws = <float*>p[s.t[2]]
    cdef const float* invh = <float*>p[s.t[3]]
    cdef const float* invw = <float*>p[s.t[4]]
    if q.OW < 1 or q.KW < 1 or q.KH < 1 or q.SW < 1 or q.Wp < (q.OW - 1) * q.SW + (q.KW - 1) * q.DW + 1 \
            or stride < q.Wp + 1:
        return DSL_ERR_BAD_PARAM
    if rows <= 0:
        return DSL_OK
    cdef f32_pool2d_rows_fn fn = f32_pool2d_rows_select(form)
    dsl_hit(ex, DSL_KV_POOL, form)
    nth = dsl_threads_for(rows * q.OW * q.KH * q.KW, min_work, nt)
    if nth > s.i[16]:
        nth = <int>s.i[16]
    if nth > rows:
        nth = <int>rows
    if nth <= 1:
        fn(x, y, &q, 0, rows, ws, invh, invw)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        fn(x, y, &q, dsl_chunk_lo(rows, c, nth), dsl_chunk_lo(rows, c + 1, nth), ws + c * stride,
           invh, invw)
    return DSL_OK


cdef void maxpool_idx_rows(const dsl_step* s, const float* x, float* y, int64_t* ind,
                           int64_t lo, int64_t hi) noexcept nogil:
    cdef int64_t H = s.i[2], W = s.i[3], OH = s.i[4], OW = s.i[5], KH = s.i[6], KW = s.i[7]
    cdef int64_t SH = s.i[8], SW = s.i[9], PT = s.i[10], PL = s.i[11], DH = s.i[12], DW = s.i[13]
    cdef bint col_major = s.i[14] != 0
    cdef int64_t r, plane, oh, ow, kh, kw, ih, iw, bi, bh, bw
    cdef float best, v
    cdef const float* xp
    for r in range(lo, hi):
        plane = r // OH
        oh = r % OH
        xp = x + plane * H * W
        for ow in range(OW):
            best = -INFINITY
            bi = -1
            bh = 0
            bw = 0
            for kh in range(KH):
                ih = oh * SH - PT + kh * DH
                if ih < 0 or ih >= H:
                    continue
                for kw in range(KW):
                    iw = ow * SW - PL + kw * DW
                    if iw < 0 or iw >= W:
                        continue
                    v = xp[ih * W + iw]
                    if bi < 0 or v > best:
                        best = v
                        bi = 1
                        bh = ih
                        bw = iw
            y[r * OW + ow] = best
            ind[r * OW + ow] = plane * H * W + (bh + bw * H if col_major else bh * W + bw)


cdef int maxpool_idx_op(const dsl_step* s, char** p, int nt) noexcept nogil:
    cdef int64_t rows = s.i[1] * s.i[4]
    cdef const float* x = <float*>p[s.t[0]]
    cdef float* y = <float*>p[s.t[1]]
    cdef int64_t* ind = <int64_t*>p[s.t[2]]
    cdef int nth, c
    if s.i[5] < 1 or s.i[6] < 1 or s.i[7] < 1:
        return DSL_ERR_BAD_PARAM
    if rows <= 0:
        return DSL_OK
    nth = dsl_threads_for(rows * s.i[5] * s.i[6] * s.i[7], min_work, nt)
    if nth > rows:
        nth = <int>rows
    if nth <= 1:
        maxpool_idx_rows(s, x, y, ind, 0, rows)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        maxpool_idx_rows(s, x, y, ind, dsl_chunk_lo(rows, c, nth), dsl_chunk_lo(rows, c + 1, nth))
    return DSL_OK


cdef int run_pool(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int sub = s.op % 100, nt = x.nt
    if sub == 1:
        return pool2d_op(s, p, x)
    if sub == 2:
        return maxpool_idx_op(s, p, nt)
    return DSL_ERR_UNKNOWN_OP
