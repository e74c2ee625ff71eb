"""Quantization kernels (family 7): Quantize / Dequantize / DynamicQuantize, INT8 GEMM and Conv.

The row kernels are csrc/q8_quant.h, the INT8 GEMM tile, epilogue and im2col csrc/q8_gemm.h;
this module decodes steps and cuts the work into chunks for run_ranges (kernels/dsl.pxd).
Every step carries a dsl_quant_params or dsl_qgemm_params record (csrc/dsl_params.h):

  QUANTIZE    t=[x f32, scale f32, zp | any, y]   y = saturate(rint(x / scale) + zp); data as
              [outer, C, inner] with scale / zp per channel (C = 1: per tensor), zp absent
              when zp_slot = -1; qdtype: y's type (U8 / I8)
  DEQUANTIZE  t=[x, scale, zp | any, y f32]       y = (x - zp) * scale; qdtype: x's type
              (U8 / I8 / I32)
  DYNQUANT    t=[x f32, y u8, y_scale f32[1], y_zp u8[1]]  DynamicQuantizeLinear over n
              elements: a min / max pass (one partial per chunk), the parameters as
              onnxruntime computes them, then the quantize pass
  QGEMM       t=[A, Bpacked, colinfo, Y, za | any, ws | any]  items GEMMs, A [M, K] rows
              (rsa; item stride sa), Y (rsc, csc; item stride sc); B and colinfo packed by
              ``pack_weights``; za from za_slot (one u8 / s8 element) or the za field
  QCONV       t=[X, Bpacked, colinfo, Y, za | any, ws]  NCHW conv: per (image, group) and
              block of mb output pixels, an im2col of mb rows x Kp bytes into the thread's
              workspace, then the GEMM of the block (pixels x output channels) written
              transposed into Y's planes

The INT8 GEMM runs KV_QGEMM in the form dsl_form_vnni(level, cap): generic C, AVX2 (int16
vpmaddwd) or AVX-512 VNNI; the quantize rows run KV_QUANT (generic / AVX2 / AVX-512).
"""
import numpy as np
from libc.stdint cimport int64_t, int32_t, uint8_t, int8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_QGEMM, DSL_KV_QUANT,
                                          DSL_KV_QCONV, DSL_KV_UNARY, DSL_FORM_AVX512,
                                          DSL_U8, DSL_I8, DSL_I32, dsl_kv_form, dsl_hit,
                                          dsl_threads_for, run_ranges)
from deepsparse_lite.kernels.params cimport (dsl_quant_params, dsl_qgemm_params, DSL_OP_QUANTIZE,
                                             DSL_OP_DEQUANTIZE, DSL_OP_DYNQUANT, DSL_OP_QGEMM,
                                             DSL_OP_QCONV, DSL_OP_QCONVCW, DSL_OP_QADD,
                                             DSL_OP_EWCHAIN)

cdef extern from "q8_quant.h" nogil:
    ctypedef void (*q8_quant_row_fn)(const float* x, void* y, int64_t n, float scale, int32_t zp,
                                     int out_signed) noexcept nogil
    ctypedef void (*q8_dequant_row_fn)(const void* x, int in_dtype, float* y, int64_t n,
                                       float scale, int32_t zp) noexcept nogil
    ctypedef void (*q8_minmax_fn)(const float* x, int64_t n, float* mn, float* mx) noexcept nogil
    q8_quant_row_fn q8_quant_row_select(int form)
    q8_dequant_row_fn q8_dequant_row_select(int form)
    q8_minmax_fn q8_minmax_select(int form)
    void q8_dynamic_params(float mn, float mx, float* scale, int32_t* zp)
    ctypedef void (*q8_qadd_fn)(const void* a, const void* b, void* y, int64_t n,
                                const float* prm, int is_signed, int relu) noexcept nogil
    q8_qadd_fn q8_qadd_select(int form)

cdef extern from "q8_ewchain.h" nogil:
    int EWC_MAX_EXT, EWC_STRIP
    ctypedef struct ewc_prog:
        int n_ins, n_ext
        const void* main
        int in_dt, out_dt
        const float* ext[5]
        void* out
        int uform
    ctypedef void (*ewc_run_fn)(const ewc_prog* pg, int64_t lo, int64_t hi)
    int ewc_parse(const int32_t* blob, int64_t words, ewc_prog* pg)
    ewc_run_fn ewc_select(int form)

cdef extern from "q8_gemm.h" nogil:
    int Q8_NR, Q8_MR, Q8_TN
    ctypedef void (*q8_tile_fn)(const uint8_t* const* ar, int64_t kg, const uint32_t* tail,
                                const int8_t* b0, const int8_t* b1, uint32_t xr,
                                int32_t* out) noexcept nogil
    ctypedef struct q8_gemm_desc:
        int64_t M, N, K
        const uint8_t* a
        int64_t rsa
        uint32_t xr
        const int8_t* b
        const int32_t* ibias
        const int32_t* cz
        const float* mult
        const float* fbias
        const int32_t* wzp
        int32_t za
        int row_zp
        int out_mode
        void* c
        int64_t rsc, csc
        int32_t zy
        int relu
        q8_tile_fn tile
    ctypedef struct q8_conv_geom:
        int64_t C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW
    q8_tile_fn q8_tile_select(int form)
    void q8_gemm_block(const q8_gemm_desc* d, int64_t m_lo, int64_t m_hi, int64_t t_lo,
                       int64_t t_hi)
    void q8_im2col_rows(const uint8_t* x, const q8_conv_geom* g, int64_t p0, int64_t npix,
                        int64_t Kp, uint8_t pad, uint8_t xb, uint8_t* dst)
    int64_t q8_conv_block_rows(int64_t P, int64_t Kp)

cdef extern from "q8_conv.h" nogil:
    int Q8C_MR, Q8C_PX
    ctypedef struct q8c_tile_args:
        const uint8_t* x
        int64_t gs
        int64_t kg
        const int8_t* w
        int npx
    ctypedef void (*q8c_tile_fn)(const q8c_tile_args* t, int32_t* acc) noexcept nogil
    ctypedef struct q8c_epi:
        const int32_t* ibias
        const int32_t* cz
        const float* mult
        const float* fbias
        int32_t za, zy
        int out_mode, relu
    ctypedef void (*q8c_epi_fn)(const q8c_epi* e, const int32_t* acc, int64_t co0, int nch,
                                int npx, void* y, int64_t P, int64_t cs) noexcept nogil
    ctypedef void (*q8c_interleave_fn)(const uint8_t* src, int64_t plane, int have, int64_t n,
                                       int64_t np, uint32_t xr, uint32_t* dst) noexcept nogil
    ctypedef struct q8c_sp_args:
        const uint8_t* x
        int64_t gs
        const int32_t* rp
        const int32_t* idx
        const int32_t* wd
        int nch
        int npx
    ctypedef void (*q8c_sptile_fn)(const q8c_sp_args* t, int32_t* acc) noexcept nogil
    ctypedef struct q8c_forms:
        q8c_tile_fn tile
        q8c_epi_fn epi
        q8c_interleave_fn inter
        q8c_sptile_fn sptile
    q8c_forms q8c_select(int form)
    ctypedef struct q8c_geom:
        int64_t C4, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW, HWp
    void q8c_im2col(const uint32_t* xi, const q8c_geom* q, int64_t p0, int64_t npx,
                    int64_t ldw, uint32_t pad, uint32_t* dst)
    int64_t q8c_block_pixels(int64_t P, int64_t kg)
    int q8c_amx_usable()
    int q8c_amx_on()
    int q8c_amx_enabled
    uint64_t q8c_amx_blocks
    void q8c_amx_begin()
    void q8c_amx_end()
    void q8c_amx_block(const uint8_t* x, int64_t gs, const int8_t* w0, int64_t kc16, int nch,
                       int npx, int32_t* acc)
    void q8c_interleave_rows(const uint8_t* src, int64_t stride, int have, int64_t n, int64_t npad,
                             uint32_t xr, uint32_t* dst)

DEF MAX_CHUNKS = 64

import os as _os
if _os.environ.get("DSL_AMX", "1") == "0":   # keep the INT8 conv on AVX-512 VNNI
    q8c_amx_enabled = 0
DEF PIECE = 16384          # elements of one quantize / dequantize work piece
cdef int64_t min_work = 32768   # elements (quantize) or MACs / 4 (GEMM) per extra thread


def set_min_work(int64_t n):
    """Set the per-thread work threshold of this family (tests only); returns the old one."""
    global min_work
    old = min_work
    min_work = n if n > 0 else 32768
    return old


cdef inline const dsl_quant_params* QP(const dsl_step* s) noexcept nogil:
    return <const dsl_quant_params*>s.params


cdef inline const dsl_qgemm_params* GP(const dsl_step* s) noexcept nogil:
    return <const dsl_qgemm_params*>s.params


cdef inline int32_t load_int(const char* p, int64_t dt, int64_t i) noexcept nogil:
    if dt == DSL_U8:
        return (<const uint8_t*>p)[i]
    if dt == DSL_I8:
        return (<const int8_t*>p)[i]
    return (<const int32_t*>p)[i]


# --------------------------------------------------------------------------------------
# Quantize / Dequantize
# --------------------------------------------------------------------------------------

cdef struct qd_ctx:
    const dsl_step* s
    char** p
    int64_t spr           # pieces per row
    q8_quant_row_fn qfn
    q8_dequant_row_fn dfn
    float dyn_scale       # DYNQUANT: the computed parameters (no scale / zp tensors)
    int32_t dyn_zp
    float mn[MAX_CHUNKS]
    float mx[MAX_CHUNKS]


cdef int64_t qd_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const qd_ctx* x = <const qd_ctx*>vctx
    cdef const dsl_step* s = x.s
    cdef const dsl_quant_params* q = QP(s)
    cdef int64_t r, row, c, e0, n, inner = q.inner
    cdef float scale
    cdef int32_t zp
    cdef int64_t qsz = 4 if q.qdtype == DSL_I32 else 1
    for r in range(lo, hi):
        row = r // x.spr
        e0 = (r % x.spr) * PIECE
        n = inner - e0 if inner - e0 < PIECE else PIECE
        if s.op == DSL_OP_DYNQUANT:
            x.qfn(<const float*>x.p[s.t[0]] + e0, <uint8_t*>x.p[s.t[1]] + e0, n, x.dyn_scale,
                  x.dyn_zp, 0)
            continue
        c = row % q.C
        scale = (<const float*>x.p[s.t[1]])[c]
        zp = load_int(x.p[s.t[2]], q.qdtype, c) if q.zp_slot >= 0 else 0
        if s.op == DSL_OP_QUANTIZE:
            x.qfn(<const float*>x.p[s.t[0]] + row * inner + e0,
                  <char*>x.p[s.t[3]] + row * inner + e0, n, scale, zp, q.qdtype == DSL_I8)
        else:
            x.dfn(<const char*>x.p[s.t[0]] + (row * inner + e0) * qsz, <int>q.qdtype,
                  <float*>x.p[s.t[3]] + row * inner + e0, n, scale, zp)
    return 0


cdef int64_t minmax_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef qd_ctx* x = <qd_ctx*>vctx
    cdef const float* src = <const float*>x.p[x.s.t[0]]
    cdef float a = src[lo], b = src[lo]
    cdef q8_minmax_fn fn = q8_minmax_select(<int>x.dyn_zp)   # the form, passed in dyn_zp
    fn(src + lo, hi - lo, &a, &b)
    x.mn[chunk] = a
    x.mx[chunk] = b
    return 0


cdef int run_quant_rows(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_quant_params* q = QP(s)
    cdef qd_ctx ctx
    cdef int form = dsl_kv_form(DSL_KV_QUANT, <int>q.level, ex.cap), nth, c
    cdef int64_t rows, total
    cdef float mn, mx
    ctx.s = s
    ctx.p = p
    ctx.qfn = q8_quant_row_select(form)
    ctx.dfn = q8_dequant_row_select(form)
    if s.op == DSL_OP_DYNQUANT:
        if q.n <= 0:
            (<float*>p[s.t[2]])[0] = 1.0
            (<uint8_t*>p[s.t[3]])[0] = 0
            return DSL_OK
        nth = dsl_threads_for(q.n, min_work, ex.nt)
        if nth > MAX_CHUNKS:
            nth = MAX_CHUNKS
        ctx.dyn_zp = form
        run_ranges(ex, minmax_range, &ctx, q.n, nth, 16)
        mn = ctx.mn[0]
        mx = ctx.mx[0]
        for c in range(1, nth):
            mn = ctx.mn[c] if ctx.mn[c] < mn else mn
            mx = ctx.mx[c] if ctx.mx[c] > mx else mx
        q8_dynamic_params(mn, mx, &ctx.dyn_scale, &ctx.dyn_zp)
        (<float*>p[s.t[2]])[0] = ctx.dyn_scale
        (<uint8_t*>p[s.t[3]])[0] = <uint8_t>ctx.dyn_zp
        rows = 1
        ctx.spr = (q.n + PIECE - 1) // PIECE
        # the same row walk with inner = n
        total = q.n
    else:
        if q.C <= 0 or q.outer < 0 or q.inner < 0:
            return DSL_ERR_BAD_PARAM
        if q.qdtype != DSL_U8 and q.qdtype != DSL_I8 and not (q.qdtype == DSL_I32 and s.op == DSL_OP_DEQUANTIZE):
            return DSL_ERR_BAD_PARAM
        rows = q.outer * q.C
        ctx.spr = (q.inner + PIECE - 1) // PIECE
        total = rows * q.inner
    if total <= 0:
        return DSL_OK
    dsl_hit(ex, DSL_KV_QUANT, form)
    nth = dsl_threads_for(total, min_work, ex.nt)
    run_ranges(ex, qd_range, &ctx, rows * ctx.spr, nth)
    return DSL_OK


# --------------------------------------------------------------------------------------
# INT8 GEMM and Conv
# --------------------------------------------------------------------------------------

cdef struct qg_ctx:
    const dsl_step* s
    char** p
    const q8_gemm_desc* base
    int64_t mblocks, cblocks, mb, tcols, np_cols
    char* ws
    int64_t wsz


cdef inline void col_rows(const q8_gemm_desc* base, const char* colinfo, int64_t np_cols,
                          q8_gemm_desc* d) noexcept nogil:
    cdef const int32_t* ci = <const int32_t*>colinfo
    d.ibias = ci
    d.cz = ci + np_cols
    d.mult = <const float*>(ci + 2 * np_cols)
    d.fbias = <const float*>(ci + 3 * np_cols)
    d.wzp = ci + 4 * np_cols


cdef int64_t qgemm_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Units (item, row block, column block) [lo, hi)."""
    cdef const qg_ctx* x = <const qg_ctx*>vctx
    cdef const dsl_qgemm_params* q = GP(x.s)
    cdef q8_gemm_desc d
    cdef int64_t u, item, mbk, cbk, m_lo, m_hi, t_lo, t_hi, per, osz
    memcpy(&d, x.base, sizeof(q8_gemm_desc))
    osz = 4 if d.out_mode <= 1 else 1
    per = (x.tcols + x.cblocks - 1) // x.cblocks
    for u in range(lo, hi):
        item = u // (x.mblocks * x.cblocks)
        mbk = (u // x.cblocks) % x.mblocks
        cbk = u % x.cblocks
        d.a = <const uint8_t*>x.p[x.s.t[0]] + item * q.sa
        d.c = <char*>x.p[x.s.t[3]] + item * q.sc * osz
        m_lo = mbk * x.mb
        m_hi = m_lo + x.mb if m_lo + x.mb < q.M else q.M
        t_lo = cbk * per
        t_hi = t_lo + per if t_lo + per < x.tcols else x.tcols
        if t_lo < t_hi:
            q8_gemm_block(&d, m_lo, m_hi, t_lo, t_hi)
    return 0


cdef int64_t qconv_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Units (image * group, pixel block, column block) [lo, hi): the im2col of a pixel block
    is built once per thread and reused by its following column blocks."""
    cdef const qg_ctx* x = <const qg_ctx*>vctx
    cdef const dsl_step* s = x.s
    cdef const dsl_qgemm_params* q = GP(s)
    cdef q8_gemm_desc d
    cdef q8_conv_geom g
    cdef int64_t u, item, mbk, cbk, img, grp, p0, npx, t_lo, t_hi, per, built = -1
    cdef int64_t P = q.OH * q.OW, cig = q.Cin // q.groups, cog = q.Cout // q.groups
    cdef int64_t K4 = q.Kp // 4, npan = (cog + Q8_NR - 1) // Q8_NR
    cdef int64_t osz
    cdef uint8_t* col = <uint8_t*>(x.ws + chunk * x.wsz)
    memcpy(&d, x.base, sizeof(q8_gemm_desc))
    osz = 4 if d.out_mode <= 1 else 1
    g.C = cig
    g.H = q.H
    g.W = q.W
    g.KH = q.KH
    g.KW = q.KW
    g.SH = q.SH
    g.SW = q.SW
    g.PH = q.PH
    g.PW = q.PW
    g.DH = q.DH
    g.DW = q.DW
    g.OW = q.OW
    per = (x.tcols + x.cblocks - 1) // x.cblocks
    for u in range(lo, hi):
        item = u // (x.mblocks * x.cblocks)
        mbk = (u // x.cblocks) % x.mblocks
        cbk = u % x.cblocks
        img = item // q.groups
        grp = item % q.groups
        p0 = mbk * x.mb
        npx = P - p0 if P - p0 < x.mb else x.mb
        if built != u // x.cblocks:
            q8_im2col_rows(<const uint8_t*>x.p[s.t[0]] + (img * q.Cin + grp * cig) * q.H * q.W,
                           &g, p0, npx, q.Kp, <uint8_t>d.za, <uint8_t>d.xr, col)
            built = u // x.cblocks
        d.a = col
        d.xr = 0       # the column buffer is in the u8 domain already
        d.M = npx
        d.b = <const int8_t*>x.p[s.t[1]] + grp * npan * K4 * 64
        col_rows(&d, <const char*>x.p[s.t[2]] + grp * 5 * x.np_cols * 4, x.np_cols, &d)
        d.c = <char*>x.p[s.t[3]] + ((img * q.Cout + grp * cog) * P + p0) * osz
        t_lo = cbk * per
        t_hi = t_lo + per if t_lo + per < x.tcols else x.tcols
        if t_lo < t_hi:
            q8_gemm_block(&d, 0, npx, t_lo, t_hi)
        d.xr = x.base.xr
    return 0


cdef inline int64_t split_columns(int64_t row_units, int64_t cblocks, int64_t tiles,
                                  int nth) noexcept nogil:
    """Column blocks (<= tiles, at least ``cblocks``) so that row_units x blocks gives every
    thread two units."""
    cdef int64_t want
    if cblocks > tiles:
        cblocks = tiles
    if row_units * cblocks < 2 * nth:
        want = (2 * nth + row_units - 1) // row_units
        cblocks = want if want < tiles else tiles
    return cblocks


cdef int run_qgemm(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_qgemm_params* q = GP(s)
    cdef q8_gemm_desc d
    cdef qg_ctx ctx
    cdef int form = dsl_kv_form(DSL_KV_QGEMM, <int>q.level, ex.cap), nth, nt = ex.nt
    cdef int64_t za, items, units, M, N
    cdef bint conv = s.op == DSL_OP_QCONV
    if q.out_mode < 0 or q.out_mode > 3 or q.K < 0:
        return DSL_ERR_BAD_PARAM
    if q.za_slot >= 0:
        za = load_int(p[s.t[q.za_slot]], DSL_I8 if q.a_signed else DSL_U8, 0)
    else:
        za = q.za
    if q.a_signed:
        za += 128
    d.a = NULL
    d.b = <const int8_t*>p[s.t[1]]
    d.xr = 0x80808080 if q.a_signed else 0
    d.za = <int32_t>za
    d.row_zp = <int>q.row_zp
    d.out_mode = <int>q.out_mode
    d.c = NULL
    d.zy = <int32_t>q.zy
    d.relu = <int>q.relu
    d.tile = q8_tile_select(form)
    ctx.s = s
    ctx.p = p
    ctx.base = &d
    if conv:
        if q.groups <= 0 or q.Cin % q.groups or q.Cout % q.groups or q.Kp % 4 or q.mb <= 0 \
                or q.mb % Q8_MR or q.SH <= 0 or q.SW <= 0:
            return DSL_ERR_BAD_PARAM
        M = q.OH * q.OW
        N = q.Cout // q.groups
        items = q.images * q.groups
        d.K = q.Kp
        d.rsa = q.Kp
        d.rsc = 1
        d.csc = M
        ctx.mb = q.mb
        ctx.ws = <char*>p[s.t[q.ws_slot]] if q.ws_slot >= 0 else NULL
        ctx.wsz = q.ws_bytes
        if ctx.ws == NULL or q.ws_bytes < q.mb * q.Kp:
            return DSL_ERR_BAD_PARAM
        if q.ws_threads > 0 and nt > q.ws_threads:
            nt = <int>q.ws_threads
    else:
        M = q.M
        N = q.N
        items = q.items
        d.K = q.K
        d.rsa = q.rsa
        d.rsc = q.rsc
        d.csc = q.csc
        ctx.mb = 64
        ctx.ws = NULL
        ctx.wsz = 0
    d.M = M
    d.N = N
    ctx.np_cols = (N + Q8_NR - 1) // Q8_NR * Q8_NR
    if not conv:
        col_rows(&d, <const char*>p[s.t[2]], ctx.np_cols, &d)
    if items <= 0 or M <= 0 or N <= 0:
        return DSL_OK
    ctx.mblocks = (M + ctx.mb - 1) // ctx.mb
    ctx.tcols = (N + Q8_TN - 1) // Q8_TN
    nth = dsl_threads_for(items * M * N * (d.K // 4 + 1), min_work, nt)
    ctx.cblocks = split_columns(items * ctx.mblocks, 1, ctx.tcols, nth)
    units = items * ctx.mblocks * ctx.cblocks
    if nth > units:
        nth = <int>units
    dsl_hit(ex, DSL_KV_QGEMM, form)
    if conv:
        run_ranges(ex, qconv_range, &ctx, units, nth)
    else:
        run_ranges(ex, qgemm_range, &ctx, units, nth)
    return DSL_OK


# --------------------------------------------------------------------------------------
# INT8 Conv with output channels as rows (csrc/q8_conv.h)
# --------------------------------------------------------------------------------------

cdef struct qc_ctx:
    const dsl_step* s
    char** p
    q8c_forms f
    q8c_geom g
    uint32_t xr
    uint32_t pad
    int32_t za
    int64_t C4, cig4, HWp, P, kg, np_cols, pblocks, cblocks, ncb, nct, kc16, ncb16
    bint amx
    uint32_t* xi
    char* ws
    int64_t wsz
    const int32_t* rp


cdef int64_t qc_interleave_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Units (image, 4-channel group) [lo, hi): the interleaved input words."""
    cdef const qc_ctx* x = <const qc_ctx*>vctx
    cdef const dsl_qgemm_params* q = GP(x.s)
    cdef int64_t u, img, c4, grp, c4l, cig = q.Cin // q.groups, HW = q.H * q.W, have
    for u in range(lo, hi):
        img = u // x.C4
        c4 = u % x.C4
        grp = c4 // x.cig4
        c4l = c4 % x.cig4
        have = cig - 4 * c4l
        if have > 4:
            have = 4
        if q.tokens:
            q8c_interleave_rows(<const uint8_t*>x.p[x.s.t[0]] + img * HW * q.Cin + 4 * c4l, q.Cin,
                                <int>have, HW, x.HWp, x.xr, x.xi + (img * x.C4 + c4) * x.HWp)
        else:
            x.f.inter(<const uint8_t*>x.p[x.s.t[0]] + (img * q.Cin + grp * cig + 4 * c4l) * HW,
                      HW, <int>have, HW, x.HWp, x.xr, x.xi + (img * x.C4 + c4) * x.HWp)
    return 0


cdef int64_t qc_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Units (image * group, pixel block, channel block) [lo, hi)."""
    global q8c_amx_blocks
    cdef const qc_ctx* x = <const qc_ctx*>vctx
    cdef const dsl_step* s = x.s
    cdef const dsl_qgemm_params* q = GP(s)
    cdef q8c_tile_args t
    cdef q8c_sp_args sa
    cdef q8c_epi e
    cdef int32_t acc[32 * 48]   # AMX: 32 channel rows; VNNI: 8
    cdef int64_t u, item, pbk, cbk, img, grp, p0, npb, ldw, built = -1, cb, cb_lo, cb_hi, j
    cdef int64_t cog = q.Cout // q.groups, co0, per, osz = 4 if q.out_mode <= 1 else 1
    cdef int nch, npx
    cdef const uint8_t* xbase
    cdef const int32_t* ci
    cdef uint32_t* col = <uint32_t*>(x.ws + chunk * x.wsz) if x.ws != NULL else NULL
    cdef char* ybase
    # element (channel c, pixel j) of the output sits at c * rs + j * cs
    cdef int64_t rs = 1 if q.tokens else x.P
    cdef int64_t cs = q.Cout if q.tokens else 1
    e.za = x.za
    e.zy = <int32_t>q.zy
    e.out_mode = <int>q.out_mode
    e.relu = <int>q.relu
    t.kg = x.kg
    per = (x.nct + x.cblocks - 1) // x.cblocks
    if x.amx:
        q8c_amx_begin()
        q8c_amx_blocks += 1
    for u in range(lo, hi):
        item = u // (x.pblocks * x.cblocks)
        pbk = (u // x.cblocks) % x.pblocks
        cbk = u % x.cblocks
        img = item // q.groups
        grp = item % q.groups
        p0 = pbk * q.mb
        npb = x.P - p0 if x.P - p0 < q.mb else q.mb
        if q.direct:
            xbase = <const uint8_t*>(x.xi + (img * x.C4 + grp * x.cig4) * x.HWp + p0)
            t.gs = x.HWp * 4
        else:
            ldw = (npb + 15) // 16 * 16
            if built != u // x.cblocks:
                q8c_im2col(x.xi + (img * x.C4 + grp * x.cig4) * x.HWp, &x.g, p0, npb, ldw, x.pad,
                           col)
                built = u // x.cblocks
            xbase = <const uint8_t*>col
            t.gs = ldw * 4
        ci = <const int32_t*>(x.p[s.t[2]] + grp * 5 * x.np_cols * 4)
        e.ibias = ci
        e.cz = ci + x.np_cols
        e.mult = <const float*>(ci + 2 * x.np_cols)
        e.fbias = <const float*>(ci + 3 * x.np_cols)
        if q.tokens:
            ybase = x.p[s.t[3]] + (img * x.P + p0) * q.Cout * osz
        else:
            ybase = x.p[s.t[3]] + ((img * q.Cout + grp * cog) * x.P + p0) * osz
        cb_lo = cbk * per
        cb_hi = cb_lo + per if cb_lo + per < x.nct else x.nct
        if x.amx:      # 32 channels x 32 pixels per AMX block
            j = 0
            while j < npb:
                npx = <int>(npb - j if npb - j < 32 else 32)
                for cb in range(cb_lo, cb_hi):
                    co0 = cb * 32
                    nch = <int>(cog - co0 if cog - co0 < 32 else 32)
                    q8c_amx_block(xbase + 4 * j, t.gs, <const int8_t*>x.p[s.t[1]]
                                  + (grp * x.ncb16 + 2 * cb) * x.kc16 * 1024, x.kc16, nch, npx, acc)
                    x.f.epi(&e, acc, co0, nch, npx, ybase + (co0 * rs + j * cs) * osz, rs, cs)
                j += 32
            continue
        j = 0
        while j < npb:     # each pixel tile's k-group rows stay in L1 over the channel tiles
            npx = <int>(npb - j if npb - j < 48 else 48)
            t.x = xbase + 4 * j
            t.npx = npx
            sa.x = t.x
            sa.gs = t.gs
            sa.npx = npx
            for cb in range(cb_lo, cb_hi):
                co0 = cb * 8
                nch = <int>(cog - co0 if cog - co0 < 8 else 8)
                if q.sparse:
                    sa.rp = x.rp + grp * (cog + 1) + co0
                    sa.idx = x.rp + q.groups * (cog + 1)
                    sa.wd = <const int32_t*>x.p[s.t[1]]
                    sa.nch = nch
                    x.f.sptile(&sa, acc)
                else:
                    t.w = <const int8_t*>x.p[s.t[1]] + (grp * x.ncb16 + cb // 2) * x.kc16 * 1024 \
                        + (cb % 2) * 512
                    x.f.tile(&t, acc)
                x.f.epi(&e, acc, co0, nch, npx, ybase + (co0 * rs + j * cs) * osz, rs, cs)
            j += 48
    return 0


cdef int run_qconvcw(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_qgemm_params* q = GP(s)
    cdef qc_ctx ctx
    cdef int form = dsl_kv_form(DSL_KV_QCONV, <int>q.level, ex.cap), nth, nt = ex.nt
    cdef int64_t za, items, units, cig, cog
    if q.out_mode < 0 or q.out_mode > 3 or q.groups <= 0 or q.Cin % q.groups or \
            q.Cout % q.groups or q.mb <= 0 or q.SH <= 0 or q.SW <= 0 or q.ws_slot < 0:
        return DSL_ERR_BAD_PARAM
    cig = q.Cin // q.groups
    cog = q.Cout // q.groups
    za = q.za + 128 if q.a_signed else q.za
    ctx.s = s
    ctx.p = p
    ctx.f = q8c_select(form)
    ctx.xr = 0x80808080 if q.a_signed else 0
    ctx.za = <int32_t>za
    ctx.pad = <uint32_t>(za & 0xFF) * 0x01010101
    ctx.cig4 = (cig + 3) // 4
    ctx.C4 = ctx.cig4 * q.groups
    ctx.HWp = (q.H * q.W + 15) // 16 * 16
    ctx.P = q.OH * q.OW
    ctx.kg = ctx.cig4 * q.KH * q.KW
    if ctx.kg * 4 != q.Kp or q.xi_bytes < q.images * ctx.C4 * ctx.HWp * 4 or q.cob <= 0 \
            or q.cob % 8:
        return DSL_ERR_BAD_PARAM
    if q.tokens and (q.groups != 1 or not q.direct):
        return DSL_ERR_BAD_PARAM
    if q.direct and (q.KH != 1 or q.KW != 1 or q.SH != 1 or q.SW != 1 or q.PH or q.PW
                     or q.OH != q.H or q.OW != q.W):
        return DSL_ERR_BAD_PARAM
    if q.xi_bytes < (q.images * ctx.C4 + 16) * ctx.HWp * 4 or (not q.direct and q.ws_bytes <
            ((q.mb + 15) // 16 * 16) * (((ctx.kg + 15) // 16) * 16) * 4):
        return DSL_ERR_BAD_PARAM
    ctx.np_cols = (cog + Q8_NR - 1) // Q8_NR * Q8_NR
    ctx.ncb = (cog + 7) // 8
    ctx.ncb16 = (cog + 15) // 16
    ctx.kc16 = (ctx.kg + 15) // 16
    ctx.amx = form == DSL_FORM_AVX512 and not q.sparse and q8c_amx_on()
    ctx.nct = (cog + 31) // 32 if ctx.amx else ctx.ncb
    ctx.g.C4 = ctx.cig4
    ctx.g.H = q.H
    ctx.g.W = q.W
    ctx.g.KH = q.KH
    ctx.g.KW = q.KW
    ctx.g.SH = q.SH
    ctx.g.SW = q.SW
    ctx.g.PH = q.PH
    ctx.g.PW = q.PW
    ctx.g.DH = q.DH
    ctx.g.DW = q.DW
    ctx.g.OW = q.OW
    ctx.g.HWp = ctx.HWp
    ctx.xi = <uint32_t*>p[s.t[q.ws_slot]]
    ctx.ws = NULL if q.direct else p[s.t[q.ws_slot]] + q.xi_bytes
    ctx.wsz = q.ws_bytes
    ctx.rp = <const int32_t*>p[s.t[5]] if q.sparse else NULL
    if not q.direct and q.ws_threads > 0 and nt > q.ws_threads:
        nt = <int>q.ws_threads
    items = q.images * q.groups
    if items <= 0 or ctx.P <= 0 or cog <= 0:
        return DSL_OK
    dsl_hit(ex, DSL_KV_QCONV, form)
    # phase 1: the interleaved input
    nth = dsl_threads_for(q.images * ctx.C4 * ctx.HWp * 4, min_work, nt)
    run_ranges(ex, qc_interleave_range, &ctx, q.images * ctx.C4, nth)
    # phase 2: the tiles
    ctx.pblocks = (ctx.P + q.mb - 1) // q.mb
    nth = dsl_threads_for(items * ctx.P * cog * (ctx.kg + 1), min_work, nt)
    ctx.cblocks = split_columns(items * ctx.pblocks, (ctx.ncb * 8 + q.cob - 1) // q.cob, ctx.nct,
                                nth)
    units = items * ctx.pblocks * ctx.cblocks
    if nth > units:
        nth = <int>units
    run_ranges(ex, qc_range, &ctx, units, nth)
    return DSL_OK


cdef struct qa_ctx:
    const dsl_step* s
    char** p
    q8_qadd_fn fn


cdef int64_t qadd_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const qa_ctx* x = <const qa_ctx*>vctx
    cdef const dsl_quant_params* q = QP(x.s)
    x.fn(<const uint8_t*>x.p[x.s.t[0]] + lo, <const uint8_t*>x.p[x.s.t[1]] + lo,
         <uint8_t*>x.p[x.s.t[3]] + lo, hi - lo, <const float*>x.p[x.s.t[2]],
         q.qdtype == DSL_I8, <int>q.zp_slot)
    return 0


cdef int run_qadd(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_quant_params* q = QP(s)
    cdef qa_ctx ctx
    cdef int form = dsl_kv_form(DSL_KV_QUANT, <int>q.level, ex.cap), nth
    if q.qdtype != DSL_U8 and q.qdtype != DSL_I8 or q.n < 0:
        return DSL_ERR_BAD_PARAM
    if q.n == 0:
        return DSL_OK
    ctx.s = s
    ctx.p = p
    ctx.fn = q8_qadd_select(form)
    dsl_hit(ex, DSL_KV_QUANT, form)
    nth = dsl_threads_for(q.n, min_work, ex.nt)
    run_ranges(ex, qadd_range, &ctx, q.n, nth, 64)
    return DSL_OK


cdef struct ew_ctx:
    const ewc_prog* pg
    ewc_run_fn fn


cdef int64_t ewc_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    cdef const ew_ctx* c = <const ew_ctx*>vctx
    c.fn(c.pg, lo, hi)
    return 0


cdef int run_ewchain(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_quant_params* q = QP(s)
    cdef ewc_prog pg
    cdef ew_ctx ctx
    cdef int form = dsl_kv_form(DSL_KV_QUANT, <int>q.level, ex.cap), nth, k
    if q.n < 0 or q.qdtype < 0 or q.qdtype > 2 or q.outer < 0 or q.outer > 2 or s.nt < 3:
        return DSL_ERR_BAD_PARAM
    if ewc_parse(<const int32_t*>p[s.t[1]], q.C, &pg) != 0 or s.nt != 3 + pg.n_ext:
        return DSL_ERR_BAD_PARAM
    if q.n == 0:
        return DSL_OK
    pg.main = <const void*>p[s.t[0]]
    pg.out = <void*>p[s.t[2]]
    pg.in_dt = <int>q.qdtype
    pg.out_dt = <int>q.outer
    for k in range(pg.n_ext):
        pg.ext[k] = <const float*>p[s.t[3 + k]]
    pg.uform = dsl_kv_form(DSL_KV_UNARY, <int>q.level, ex.cap)
    ctx.pg = &pg
    ctx.fn = ewc_select(form)
    dsl_hit(ex, DSL_KV_QUANT, form)
    dsl_hit(ex, DSL_KV_UNARY, pg.uform)
    nth = dsl_threads_for(q.n * pg.n_ins, 8 * min_work, ex.nt)
    run_ranges(ex, ewc_range, &ctx, q.n, nth, 64)
    return DSL_OK


cdef int run_quant(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_EWCHAIN:
        return run_ewchain(s, p, x)
    if s.op == DSL_OP_QADD:
        return run_qadd(s, p, x)
    if s.op == DSL_OP_QCONVCW:
        return run_qconvcw(s, p, x)
    if s.op == DSL_OP_QUANTIZE or s.op == DSL_OP_DEQUANTIZE or s.op == DSL_OP_DYNQUANT:
        return run_quant_rows(s, p, x)
    if s.op == DSL_OP_QGEMM or s.op == DSL_OP_QCONV:
        return run_qgemm(s, p, x)
    return DSL_ERR_UNKNOWN_OP


# --------------------------------------------------------------------------------------
# Compile-time helpers for the lowerings (ops/quant.py)
# --------------------------------------------------------------------------------------

def panel_width():
    """Columns per packed weight panel (Q8_NR) and rows per tile (Q8_MR)."""
    return int(Q8_NR), int(Q8_MR)


def conv_block_rows(int64_t P, int64_t Kp):
    """Output pixels per im2col block of QCONV (its per-thread workspace is that x Kp)."""
    return int(q8_conv_block_rows(P, Kp))


def conv_cw_block_pixels(int64_t P, int64_t kg):
    """Output pixels per work block of QCONVCW (its per-thread im2col is that x kg words)."""
    return int(q8c_block_pixels(P, kg))


def pack_conv_cw(w):
    """(Cout_g, Cin_g, *kernel) int8 weights of one group -> packed int8 [ceil(Cout_g/16)]
    [ceil(kg/16)][16][64] of csrc/q8_conv.h (row = one channel's K bytes, k-group g =
    (c4, tap) holding input channels 4 c4 .. 4 c4 + 3; zero weights for channels past
    Cin_g, rows past Cout_g and groups past kg), and the int64 sums over the real weights."""
    w = np.asarray(w)
    if w.dtype != np.int8:
        raise TypeError(f"QCONVCW weights must be int8, got {w.dtype}")
    co, ci = w.shape[:2]
    taps = int(np.prod(w.shape[2:], dtype=np.int64))
    ci4 = (ci + 3) // 4
    kg = ci4 * taps
    kc = (kg + 15) // 16
    ncb = (co + 15) // 16
    buf = np.zeros((co, ci4 * 4, taps), np.int8)
    buf[:, :ci] = w.reshape(co, ci, taps)
    rows = buf.reshape(co, ci4, 4, taps).transpose(0, 1, 3, 2).reshape(co, kg * 4)
    full = np.zeros((ncb * 16, kc * 64), np.int8)
    full[:co, :kg * 4] = rows
    packed = full.reshape(ncb, 16, kc, 64).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(packed), w.reshape(co, -1).astype(np.int64).sum(axis=1)


def sparse_conv_cw(packed, kg):
    """The packed dense weights of pack_conv_cw (one group) -> the int32 words [rows][kg]
    (row = output channel, padded to 16): word (co, g) holds the 4 weights of k-group g."""
    packed = np.asarray(packed, np.int8)
    ncb, kc = packed.shape[:2]
    rows = np.ascontiguousarray(packed.transpose(0, 2, 1, 3)).reshape(ncb * 16, kc * 64)
    return rows.view(np.int32)[:, :kg]


def amx_available():
    """Whether the INT8 conv's AVX-512 form runs AMX tiles here (CPU and OS permit it)."""
    return bool(q8c_amx_usable())


def set_amx(bint on):
    """Let the AVX-512 form use AMX when available (tests run both); returns the old value."""
    global q8c_amx_enabled
    old = bool(q8c_amx_enabled)
    q8c_amx_enabled = 1 if on else 0
    return old


def amx_blocks():
    """Steps (thread ranges) that ran AMX blocks since import."""
    return int(q8c_amx_blocks)


def pack_weights(w, zw, *, K=None):
    """(K, N) int8 / uint8 weights and their zero point (scalar or per column) -> (packed
    panels int8 [ceil(N/16)][K4][16][4], cz int32 [Np], zw int32 [Np]) of csrc/q8_gemm.h:
    uint8 weights become int8 (w - 128, zw - 128); cz = colsum(w) - K * zw over the real K
    rows (``K`` may exceed w's rows: zero rows of a padded conv K count nothing)."""
    w = np.asarray(w)
    Kw, N = w.shape
    zwv = np.broadcast_to(np.asarray(zw, np.int64).reshape(-1), (N,)).astype(np.int64)
    if w.dtype == np.uint8:
        ws = (w.astype(np.int16) - 128).astype(np.int8)
        zwv = zwv - 128
    elif w.dtype == np.int8:
        ws = w
    else:
        raise TypeError(f"INT8 weights must be int8 or uint8, got {w.dtype}")
    K4 = (Kw + 3) // 4
    npan = max(1, (N + 15) // 16)
    Np = npan * 16
    buf = np.zeros((K4 * 4, Np), np.int8)
    buf[:Kw, :N] = ws
    packed = np.ascontiguousarray(buf.reshape(K4, 4, npan, 16).transpose(2, 0, 3, 1))
    cz = np.zeros(Np, np.int64)
    cz[:N] = ws.astype(np.int64).sum(axis=0) - Kw * zwv
    zwp = np.zeros(Np, np.int64)
    zwp[:N] = zwv
    return packed, cz.astype(np.int32), zwp.astype(np.int32)
