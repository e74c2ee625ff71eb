"""Pooling kernels (family 4): 2-D max / average pooling over NCHW planes.

Global pooling is lowered to the REDUCE step of the reduce family (a mean / max over each
plane). 1-D pooling runs here with H = 1. The fp32 microkernel is csrc/pool_f32.h (generic /
AVX2 / AVX-512 from one template): one output row at a time through a per-thread row
buffer (vertical pass into the buffer, horizontal pass out of it), see pool_f32_tmpl.h.
Threads split the planes * OH output rows statically.

Both sub-ops carry a dsl_pool_params record (csrc/dsl_params.h):

  POOL2D         t=[x, y, workspace, invh, invw]
                 avg (0 max, 1 average), planes (N * C), H, W, OH, OW, KH, KW, SH, SW,
                 pad_top, pad_left, DH, DW, Wp = (OW - 1) * SW + (KW - 1) * DW + 1 (row
                 buffer floats), level, ws_threads row buffers in the workspace (threads are
                 capped to it) of ws_stride floats (>= Wp + 1: even-lane loads read one past)
                 invh[OH], invw[OW] (average only; max: any tensor id) are 1 / window counts
                 (count_include_pad decides them at compile time), so y = sum * invh * invw.
  MAXPOOL2D_IDX  t=[x, y, indices:int64]   MaxPool with its optional Indices output: the
                 geometry as POOL2D, storage_order (0: plane * H * W + h * W + w,
                 1: plane * H * W + h + w * H); scalar (models that ask for indices are rare)
"""
from libc.stdint cimport int64_t, uint8_t
from libc.math cimport INFINITY

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_POOL, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, run_ranges)
from deepsparse_lite.kernels.params cimport dsl_pool_params, DSL_OP_POOL2D, DSL_OP_MAXPOOL2D_IDX

cdef extern from "pool_f32.h" nogil:
    ctypedef struct dsl_pool2d:
        int64_t H, W, OH, OW, KH, KW, SH, SW, PT, PL, DH, DW, Wp, avg
    ctypedef void (*f32_pool2d_rows_fn)(const float*, float*, const dsl_pool2d*, int64_t, int64_t,
                                        float*, const float*, const float*) noexcept nogil
    f32_pool2d_rows_fn f32_pool2d_rows_select(int form)
    void q8_maxpool2d_rows(const uint8_t* x, uint8_t* y, const dsl_pool2d* p, int64_t r0,
                           int64_t r1, uint8_t* rb, int is_signed)

DEF MIN_WORK = 16384
# Threshold actually used; tests lower it (set_min_work) so small shapes take the threaded path.
cdef int64_t min_work = MIN_WORK


def set_min_work(int64_t n):
    """Set the elements-per-thread threshold of this family (tests only); returns the old one."""
    global min_work
    old = min_work
    min_work = n if n > 0 else MIN_WORK
    return old


cdef inline int threads_for(int64_t work, int64_t rows, int nt) noexcept nogil:
    cdef int nth = dsl_threads_for(work, min_work, nt)
    return <int>rows if nth > rows else nth


cdef struct pool_ctx:
    const dsl_step* s
    char** p
    dsl_pool2d g
    f32_pool2d_rows_fn fn


cdef int64_t pool2d_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const pool_ctx* c = <const pool_ctx*>vctx
    cdef const dsl_pool_params* q = <const dsl_pool_params*>c.s.params
    if q.q8:
        q8_maxpool2d_rows(<const uint8_t*>c.p[c.s.t[0]], <uint8_t*>c.p[c.s.t[1]], &c.g, lo, hi,
                          <uint8_t*>(<float*>c.p[c.s.t[2]] + chunk * q.ws_stride), q.q8 == 2)
        return 0
    c.fn(<const float*>c.p[c.s.t[0]], <float*>c.p[c.s.t[1]], &c.g, lo, hi,
         <float*>c.p[c.s.t[2]] + chunk * q.ws_stride, <const float*>c.p[c.s.t[3]],
         <const float*>c.p[c.s.t[4]])
    return 0


cdef int pool2d_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_pool_params* q = <const dsl_pool_params*>s.params
    cdef pool_ctx c
    cdef int64_t rows = q.planes * q.OH
    cdef int nth, form = dsl_kv_form(DSL_KV_POOL, <int>q.level, ex.cap)
    c.g.avg = q.avg
    c.g.H = q.H
    c.g.W = q.W
    c.g.OH = q.OH
    c.g.OW = q.OW
    c.g.KH = q.KH
    c.g.KW = q.KW
    c.g.SH = q.SH
    c.g.SW = q.SW
    c.g.PT = q.pad_top
    c.g.PL = q.pad_left
    c.g.DH = q.DH
    c.g.DW = q.DW
    c.g.Wp = q.Wp
    if (q.OW < 1 or q.KW < 1 or q.KH < 1 or q.SW < 1
            or q.Wp < (q.OW - 1) * q.SW + (q.KW - 1) * q.DW + 1 or q.ws_stride < q.Wp + 1
            or q.q8 < 0 or q.q8 > 2 or (q.q8 and q.avg)):
        return DSL_ERR_BAD_PARAM
    if rows <= 0:
        return DSL_OK
    c.s = s
    c.p = p
    c.fn = f32_pool2d_rows_select(form)
    dsl_hit(ex, DSL_KV_POOL, form)
    nth = threads_for(rows * q.OW * q.KH * q.KW, rows, ex.nt)
    if nth > q.ws_threads:
        nth = <int>q.ws_threads
    run_ranges(ex, pool2d_range, &c, rows, nth)
    return DSL_OK


cdef int64_t maxpool_idx_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const pool_ctx* c = <const pool_ctx*>vctx
    cdef const dsl_pool_params* q = <const dsl_pool_params*>c.s.params
    cdef const float* x = <const float*>c.p[c.s.t[0]]
    cdef float* y = <float*>c.p[c.s.t[1]]
    cdef int64_t* ind = <int64_t*>c.p[c.s.t[2]]
    cdef int64_t H = q.H, W = q.W, OH = q.OH, OW = q.OW, KH = q.KH, KW = q.KW
    cdef int64_t SH = q.SH, SW = q.SW, PT = q.pad_top, PL = q.pad_left, DH = q.DH, DW = q.DW
    cdef bint col_major = q.storage_order != 0
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
    return 0


cdef int maxpool_idx_op(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_pool_params* q = <const dsl_pool_params*>s.params
    cdef pool_ctx c
    cdef int64_t rows = q.planes * q.OH
    if q.OW < 1 or q.KH < 1 or q.KW < 1:
        return DSL_ERR_BAD_PARAM
    if rows <= 0:
        return DSL_OK
    c.s = s
    c.p = p
    run_ranges(ex, maxpool_idx_range, &c, rows, threads_for(rows * q.OW * q.KH * q.KW, rows, ex.nt))
    return DSL_OK


cdef int run_pool(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_POOL2D:
        return pool2d_op(s, p, x)
    if s.op == DSL_OP_MAXPOOL2D_IDX:
        return maxpool_idx_op(s, p, x)
    return DSL_ERR_UNKNOWN_OP
