"""Sparse-weight kernels (family 6): fp32 GEMM and Conv with CSR weights (csrc/f32_spmm.h).

The weights were measured and compressed at compile time (ops/sparse.py): one byte blob
per step, CSR by output row (R + 1 int32 row starts, nnz float values at ``off_vals``,
nnz uint16 columns at ``off_cols``). Activations stay dense and are the vector side.
This module decodes a step, cuts the output into pieces (pixel / token ranges first, then
row ranges balanced by nonzeros) and runs them through run_ranges (kernels/dsl.pxd).

Every step carries a dsl_spmm_params record (csrc/dsl_params.h):

  SPMM_GEMM  t=[A, W, Y, ...]  Y[t, r] = act(sum_k A[t, k] W^T[r, k] + bias[r] + beta D):
             MatMul / Gemm with a constant (K, N) weight, stored as its transpose (R = N
             rows of K). np tokens; A[t*rsa + k*csa]; Y[t*rsc + r]; D[t*rsd + r*csd].
             Each tile of tokens is transposed into the thread's workspace.
  SPMM_CONV  t=[X, W, Y, ...]  per image Y[co, p] = act(W[co, k] col[k, p] + bias[co] +
             beta D[co, p]): groups == 1, R = Cout, K = Cin*KH*KW, np = OH*OW; direct (1x1,
             stride 1, unpadded: X read in place) or im2col into the workspace.
"""
from libc.stdint cimport int32_t, int64_t, uint16_t

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_SPMM, DSL_KV_UNARY,
                                          dsl_threads_for, dsl_hit, run_ranges)
from deepsparse_lite.kernels.params cimport dsl_spmm_params, DSL_OP_SPMM_GEMM, DSL_OP_SPMM_CONV

cdef extern from "f32_spmm.h" nogil:
    ctypedef struct f32_spmm_csr:
        const int32_t* rp
        const float* val
        const uint16_t* col
        const int32_t* off
    ctypedef struct f32_spmm_kernel:
        int form, act_form, tw
    ctypedef struct f32_conv_geom:
        const float* x
        int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW
    void conv_geom_set "F32_CONV_GEOM_SET"(f32_conv_geom* g, const dsl_spmm_params* q, const float* x)
    ctypedef struct f32_spmm_desc:
        f32_spmm_csr w
        int64_t R, K
        int src
        const float* x
        int64_t ldx, rsa, csa
        f32_conv_geom conv
        float* xpad
        int64_t Cin, Hp, Wp, OH
        float* y
        int64_t ldy_r, ldy_c
        const float* bias
        const float* d
        int64_t d_r, d_p
        float beta
        int act
        float act_a, act_b
        f32_spmm_kernel k
    int F32_SPMM_SRC_DIRECT, F32_SPMM_SRC_ROWS, F32_SPMM_SRC_IM2COL, F32_SPMM_SRC_SHIFT
    int F32_SPMM_MAX_TW, F32_SPMM_PAD_TAIL
    void f32_spmm_pad(const f32_spmm_desc* d, int64_t c0, int64_t c1)
    void f32_spmm_unit_shift(const f32_spmm_desc* d, int64_t r0, int64_t r1, int64_t oh0,
                             int64_t oh1, float* ybuf)
    int f32_spmm_select(int level, int cap, f32_spmm_kernel* k)
    void f32_spmm_unit(const f32_spmm_desc* d, int64_t r0, int64_t r1, int64_t p0, int64_t p1,
                       float* ws)
    void f32_spmm_row_bounds(const int32_t* rp, int64_t R, int parts, int64_t* b)
    void f32_split(int64_t n, int64_t align, int i, int parts, int64_t* lo, int64_t* hi)

# Multiply-adds (nonzeros x pixels) below which a step stays on one thread.
cdef int64_t MIN_MACS_PER_THREAD = 65536
DEF MAX_PARTS = 256


cdef inline const dsl_spmm_params* P(const dsl_step* s) noexcept nogil:
    return <const dsl_spmm_params*>s.params


cdef inline const char* slot_ptr(const dsl_step* s, char** p, int64_t slot) noexcept nogil:
    if slot < 0 or slot >= s.nt:
        return NULL
    return <const char*>p[s.t[slot]]


cdef struct sp_ctx:
    const dsl_step* s
    char** p
    const f32_spmm_desc* base
    int tp, tr
    int64_t rb[MAX_PARTS + 1]
    char* ws
    int64_t wsz


cdef int64_t sp_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Pieces [lo, hi) of the (image, pixel part, row part) list."""
    cdef const sp_ctx* c = <const sp_ctx*>vctx
    cdef const dsl_spmm_params* q = P(c.s)
    cdef f32_spmm_desc d
    cdef int64_t u, img, part, p0, p1, x_img, y_img
    cdef int ip, ir
    for u in range(lo, hi):
        d = c.base[0]
        img = u // (c.tp * c.tr)
        part = u % (c.tp * c.tr)
        ip = <int>(part // c.tr)
        ir = <int>(part % c.tr)
        f32_split(q.np, 16, ip, c.tp, &p0, &p1)
        if c.s.op == DSL_OP_SPMM_CONV:
            x_img = img * q.Cin * q.H * q.W
            y_img = img * q.R * q.np
            if d.src == F32_SPMM_SRC_IM2COL:
                d.conv.x = d.x + x_img
            else:
                d.x = d.x + x_img
            d.y = d.y + y_img
            if d.d != NULL:
                d.d = d.d + y_img
        f32_spmm_unit(&d, c.rb[ir], c.rb[ir + 1], p0, p1, <float*>(c.ws + chunk * c.wsz))
    return 0


cdef int64_t pad_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """SHIFT: channels [lo, hi) of the current image into the padded copy."""
    f32_spmm_pad((<const sp_ctx*>vctx).base, lo, hi)
    return 0


cdef int64_t shift_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """SHIFT: pieces [lo, hi) of the (output-row part, row part) list of the current image."""
    cdef const sp_ctx* c = <const sp_ctx*>vctx
    cdef int64_t u, oh0, oh1
    cdef int ip, ir
    for u in range(lo, hi):
        ip = <int>(u // c.tr)
        ir = <int>(u % c.tr)
        f32_split(c.base.OH, 1, ip, c.tp, &oh0, &oh1)
        f32_spmm_unit_shift(c.base, c.rb[ir], c.rb[ir + 1], oh0, oh1,
                            <float*>(c.ws + chunk * c.wsz))
    return 0


cdef int run_spmm(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_spmm_params* q = P(s)
    cdef f32_spmm_desc d
    cdef sp_ctx ctx
    cdef const char* blob = slot_ptr(s, p, 1)
    cdef int nt = x.nt, nth, parts, tp, tr, k
    cdef int64_t images = 1, tiles, g, n1
    if f32_spmm_select(<int>q.level, x.cap, &d.k) != 0 or blob == NULL or q.R < 0 or q.np < 0:
        return DSL_ERR_BAD_PARAM
    if q.K < 0 or q.K > 65536 or q.nnz < 0 or q.off_vals < 0 or q.off_cols < 0:
        return DSL_ERR_BAD_PARAM
    d.w.rp = <const int32_t*>blob
    d.w.val = <const float*>(blob + q.off_vals)
    d.w.col = <const uint16_t*>(blob + q.off_cols)
    d.w.off = NULL
    if d.w.rp[q.R] != q.nnz or d.w.rp[0] != 0:
        return DSL_ERR_BAD_PARAM
    d.R = q.R
    d.K = q.K
    d.y = <float*>p[s.t[2]]
    d.bias = <const float*>slot_ptr(s, p, q.bias_slot)
    d.d = <const float*>slot_ptr(s, p, q.d_slot)
    d.beta = q.beta
    d.act = <int>q.act
    d.act_a = q.act_a
    d.act_b = q.act_b
    d.x = <const float*>p[s.t[0]]
    if s.op == DSL_OP_SPMM_GEMM:
        d.src = F32_SPMM_SRC_ROWS
        d.rsa = q.rsa
        d.csa = q.csa
        d.ldy_r = 1
        d.ldy_c = q.rsc
        d.d_r = q.csd
        d.d_p = q.rsd
    elif s.op == DSL_OP_SPMM_CONV:
        images = q.images
        d.ldy_r = q.np
        d.ldy_c = 1
        d.d_r = q.np
        d.d_p = 1
        if q.OH * q.OW != q.np:
            return DSL_ERR_BAD_PARAM
        if q.direct == 2:
            if (q.K != q.Cin * q.KH * q.KW or q.SH != 1 or q.SW != 1 or q.DH != 1 or q.DW != 1
                    or q.off_offs <= 0 or q.KH <= 0 or q.KW <= 0 or q.OH <= 0 or q.OW <= 0):
                return DSL_ERR_BAD_PARAM
            d.src = F32_SPMM_SRC_SHIFT
            d.w.off = <const int32_t*>(blob + q.off_offs)
            d.Cin = q.Cin
            d.OH = q.OH
            d.Hp = q.OH + q.KH - 1
            d.Wp = q.OW + q.KW - 1
            if q.pad_bytes < (q.Cin * d.Hp * d.Wp + F32_SPMM_PAD_TAIL) * 4:
                return DSL_ERR_BAD_PARAM
            conv_geom_set(&d.conv, q, d.x)
        elif q.direct:
            if q.K != q.Cin or q.H * q.W != q.np:
                return DSL_ERR_BAD_PARAM
            d.src = F32_SPMM_SRC_DIRECT
            d.ldx = q.H * q.W
        else:
            if q.K != q.Cin * q.KH * q.KW or q.SH <= 0 or q.SW <= 0:
                return DSL_ERR_BAD_PARAM
            d.src = F32_SPMM_SRC_IM2COL
            conv_geom_set(&d.conv, q, d.x)
    else:
        return DSL_ERR_UNKNOWN_OP
    if images <= 0 or q.R == 0 or q.np == 0:
        return DSL_OK
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if d.src == F32_SPMM_SRC_SHIFT:
        if ctx.ws == NULL or q.ws_bytes < q.R * F32_SPMM_MAX_TW * 4:
            return DSL_ERR_BAD_PARAM
        if q.ws_threads > 0 and nt > q.ws_threads:
            nt = <int>q.ws_threads
        return run_shift(s, p, x, &d, &ctx, images, nt)
    if d.src != F32_SPMM_SRC_DIRECT:
        if ctx.ws == NULL or q.ws_bytes < q.K * F32_SPMM_MAX_TW * 4:
            return DSL_ERR_BAD_PARAM
        if q.ws_threads > 0 and nt > q.ws_threads:
            nt = <int>q.ws_threads
    nth = dsl_threads_for(images * (q.nnz + q.R) * q.np, MIN_MACS_PER_THREAD, nt)
    # pieces per image: pixel / token ranges first (no duplicated packing, every thread
    # reads the weights once), rows split by nonzeros when there are too few tiles
    g = images
    n1 = nth
    while n1:
        g, n1 = n1, g % n1
    parts = <int>(nth // g)
    tiles = (q.np + d.k.tw - 1) // d.k.tw
    tp = parts
    while tp > 1 and (parts % tp != 0 or tp > tiles):
        tp -= 1
    tr = parts // tp
    if tr > q.R:
        tr = <int>q.R if q.R > 0 else 1
    if tr > MAX_PARTS:
        tr = MAX_PARTS
    f32_spmm_row_bounds(d.w.rp, q.R, tr, ctx.rb)
    dsl_hit(x, DSL_KV_SPMM, d.k.form)
    if q.act != 0:
        dsl_hit(x, DSL_KV_UNARY, d.k.act_form)
    ctx.s = s
    ctx.p = p
    ctx.base = &d
    ctx.tp = tp
    ctx.tr = tr
    run_ranges(x, sp_range, &ctx, images * tp * tr, nth)
    return DSL_OK


cdef int run_shift(const dsl_step* s, char** p, const dsl_exec* x, f32_spmm_desc* d,
                   sp_ctx* ctx, int64_t images, int nt) noexcept nogil:
    """SHIFT convs image by image: the padded copy (threads over channels), then the
    output-row parts x row parts."""
    cdef const dsl_spmm_params* q = P(s)
    cdef int nth, tp, tr
    cdef int64_t img, x_img, y_img
    cdef const float* x0 = d.conv.x
    cdef float* y0 = d.y
    cdef const float* d0 = d.d
    nth = dsl_threads_for((q.nnz + q.R) * q.np, MIN_MACS_PER_THREAD, nt)
    tp = nth
    while tp > 1 and tp > q.OH:
        tp -= 1
    tr = nth // tp
    if tr > q.R:
        tr = <int>q.R
    if tr > MAX_PARTS:
        tr = MAX_PARTS
    if tr < 1:
        tr = 1
    f32_spmm_row_bounds(d.w.rp, q.R, tr, ctx.rb)
    dsl_hit(x, DSL_KV_SPMM, d.k.form)
    if q.act != 0:
        dsl_hit(x, DSL_KV_UNARY, d.k.act_form)
    d.xpad = <float*>ctx.ws
    ctx.ws = ctx.ws + q.pad_bytes
    ctx.s = s
    ctx.p = p
    ctx.base = d
    ctx.tp = tp
    ctx.tr = tr
    for img in range(images):
        x_img = img * q.Cin * q.H * q.W
        y_img = img * q.R * q.np
        d.conv.x = x0 + x_img
        d.y = y0 + y_img
        if d0 != NULL:
            d.d = d0 + y_img
        run_ranges(x, pad_range, ctx, q.Cin, nth if q.Cin >= 2 * nth else 1)
        run_ranges(x, shift_range, ctx, tp * tr, nth)
    return DSL_OK


cdef int run_sparse(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_SPMM_GEMM or s.op == DSL_OP_SPMM_CONV:
        return run_spmm(s, p, x)
    return DSL_ERR_UNKNOWN_OP


def tile_width(int level, int cap):
    """Pixels / tokens of one register tile for a step of ``level`` under ``cap``."""
    cdef f32_spmm_kernel k
    if f32_spmm_select(level, cap, &k) != 0:
        raise ValueError(f"unknown ISA level {level}")
    return int(k.tw)


def pad_tail():
    """Zero floats after a SHIFT conv's padded image."""
    return int(F32_SPMM_PAD_TAIL)


def max_tile_width():
    """Floats per K row of a thread's packing workspace (the widest tile of any form)."""
    return int(F32_SPMM_MAX_TW)


def set_min_work(int64_t macs):
    """Work (nonzero multiply-adds) each extra thread needs; returns the previous value.
    Tests set it to 1 so that small shapes exercise the partitioning."""
    global MIN_MACS_PER_THREAD
    old = MIN_MACS_PER_THREAD
    MIN_MACS_PER_THREAD = max(1, macs)
    return old
