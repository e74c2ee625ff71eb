"""GEMM-family kernels (family 5): packed fp32 GEMM, MatMul, Conv, ConvTranspose.

The loop nest, packing and microkernels are C (csrc/f32_gemm*.h, csrc/f32_conv.h); this
module decodes a step, cuts the work into per-thread rectangles and runs them in one
prange. Constant operands were packed at compile time (ops/gemm.py, ops/conv.py) for the
register tile of the plan's ISA level (generic 4x8, avx2 6x16, avx512 8x32), recorded in
i[0]; on a CPU below that level the portable kernel of the same geometry runs.

Sub-ops (op = 500 + sub). Element strides/offsets are in floats. Common header:
  i[0] isa level of the packing   i[1] M  i[2] N  i[3] K   (one GEMM)
  i[4] MC  i[5] KC  i[6] NC  (blocking; MC % MR == 0, NC % NR == 0)
  i[7] act code (csrc/dsl_act.h)  i[8] bias mode (0 none, 1 per column n, 2 per row m)
  i[9] t-slot of bias (-1)        i[10] t-slot of addend D (-1), i[11] rsd, i[12] csd
  i[13] t-slot of workspace (-1)  i[14] workspace bytes per thread
  i[15] threads the workspace was sized for (b.max_threads; more are never used)
  f[0] alpha  f[1] beta (scales D)  f[2], f[3] activation params
  Y = act(alpha * A·B + bias + beta * D); a per-column bias is zero padded to a multiple of
  NR floats (the tiles load it a vector at a time). Alpha, bias and None/Relu/Clip run in
  registers before a tile's last store; D and other activations right after it.

  1 GEMM    t=[A, Bpacked, Y, ...]  A[m*rsa + k*csa]; B packed [ceil(N/NR)][K][NR]
            i[16] rsa  i[17] csa  i[18] rsc
  2 MATMUL  t=[A, B, Y, ...]  both runtime, batched over up to 4 broadcast dims
            i[16] rsa i[17] csa i[18] rsb i[19] csb i[20] rsc  i[21] nb (0..4)
            i[22..25] batch shape  i[26..29] A batch strides  i[30..33] B batch strides
            i[34..37] Y batch strides  i[38..41] D batch strides (0 = broadcast)
  3 CONV    t=[X, Wpacked, Y, ...]  NCHW 2-D (1-D as H = 1); per (image, group) a GEMM
            Y[co, p] = W[co, k]·col[k, p], M = Cout/G, K = Cin/G*KH*KW, N = OH*OW;
            W packed per group [ceil(M/MR)][K][MR]; bias per row (output channel).
            i[16] batch  i[17] G  i[18] Cin  i[19] H  i[20] W  i[21] Cout  i[22] OH
            i[23] OW  i[24] KH  i[25] KW  i[26] SH  i[27] SW  i[28] PH (top)
            i[29] PW (left)  i[30] DH  i[31] DW  i[32] direct (1x1, stride 1, no pad:
            X is read as B without im2col). MatMul(W const, X) uses it as a 1x1 conv.
  4 DWCONV  t=[X, W, Y, ...]  groups == Cin == Cout; W raw [C][KH*KW];
            geometry i[16..31] as CONV; uses i[0], i[7..9], i[13..15], f[2..3] of the header;
            workspace per thread = one zero-bordered input plane (f32_dwconv_padded_dims)
  5 CONVT   t=[X, Wpacked, Y, ...]  ConvTranspose: per (image, group, chunk of output
            channels) col = W^T·X (GEMM, M = chunk*KH*KW, K = Cin/G, N = H*W) then col2im
            into Y (initialised with the bias), then the activation.
            geometry i[16..31] as CONV (H, W input; OH, OW output)
            i[32] co_chunk  i[33] chunks per group; W packed per (group, chunk) with
            stride ceil(co_chunk*KH*KW/MR)*MR*K; ws per thread = col (i[34] floats) + GEMM
"""
from libc.stdint cimport int64_t
from libc.string cimport memcpy
from cython.parallel cimport prange

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_DWCONV, DSL_KV_UNARY,
                                          dsl_threads_for, dsl_kv_form, dsl_hit)

cdef extern from "f32_gemm.h" nogil:
    ctypedef struct f32_gemm_kernel:
        int mr
        int nr
        int tile_form, pack_form, act_form
    ctypedef struct f32_conv_geom:
        const float* x
        int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW
    ctypedef struct f32_gemm_desc:
        int64_t M, N, K
        int a_kind
        const float* a
        int64_t rsa, csa
        int b_kind
        const float* b
        int64_t rsb, csb
        f32_conv_geom conv
        float* c
        int64_t rsc
        float alpha
        int bias_mode
        const float* bias
        const float* d
        int64_t rsd, csd
        float beta
        int act
        float act_a, act_b
        int64_t mc, kc, nc
        f32_gemm_kernel k
    int F32_GEMM_A_PACKED, F32_GEMM_A_STRIDED
    int F32_GEMM_B_PACKED, F32_GEMM_B_STRIDED, F32_GEMM_B_IM2COL
    int F32_GEMM_BIAS_NONE, F32_GEMM_BIAS_COL, F32_GEMM_BIAS_ROW
    int f32_gemm_select(int level, int cap, f32_gemm_kernel* k)
    void f32_gemm_hits(const dsl_exec* x, const f32_gemm_kernel* k, int packs, int act)
    int64_t f32_gemm_ws_floats(const f32_gemm_desc* d)
    void f32_gemm_range(const f32_gemm_desc* d, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                        float* ws)
    void f32_gemm_grid(const f32_gemm_desc* d, int a_runtime, int b_runtime, int parts, int* tm,
                       int* tn)
    void f32_split(int64_t n, int64_t align, int i, int parts, int64_t* lo, int64_t* hi)

cdef extern from "f32_conv.h" nogil:
    ctypedef struct f32_dw_geom:
        int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW
    ctypedef void (*f32_dwconv_plane_fn)(const f32_dw_geom*, const float*, const float*, float,
                                         float*, int, int, float, float, float*, int) noexcept nogil
    f32_dwconv_plane_fn f32_dwconv_select(int form)
    void f32_dwconv_padded_dims(const f32_dw_geom* g, int64_t* hp, int64_t* wp)
    void f32_col2im_add(const float* col, int64_t nco, int64_t H, int64_t W, int64_t KH,
                        int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH,
                        int64_t DW, int64_t OH, int64_t OW, float* y)

cdef extern from "dsl_act.h" nogil:
    void dsl_act_row(int form, int act, float* x, int64_t n, float a, float b)

DEF SUB_GEMM = 1
DEF SUB_MATMUL = 2
DEF SUB_CONV = 3
DEF SUB_DWCONV = 4
DEF SUB_CONVT = 5

# Multiply-adds below which a step stays on one thread (an OpenMP fork/join costs a few us).
# A module variable so tests can force tiny shapes through the multi-thread partitioning.
cdef int64_t MIN_MACS_PER_THREAD = 131072


cdef inline const float* slot_ptr(const dsl_step* s, char** p, int64_t slot) noexcept nogil:
    if slot < 0 or slot >= s.nt:
        return NULL
    return <const float*>p[s.t[slot]]


cdef int fill_header(const dsl_step* s, char** p, int cap, f32_gemm_desc* d) noexcept nogil:
    """The parts of the descriptor shared by every item of the step."""
    if f32_gemm_select(<int>s.i[0], cap, &d.k) != 0:
        return DSL_ERR_BAD_PARAM
    d.M = s.i[1]
    d.N = s.i[2]
    d.K = s.i[3]
    d.mc = s.i[4]
    d.kc = s.i[5]
    d.nc = s.i[6]
    if d.mc <= 0 or d.kc <= 0 or d.nc <= 0 or d.mc % d.k.mr != 0 or d.nc % d.k.nr != 0:
        return DSL_ERR_BAD_PARAM
    d.act = <int>s.i[7]
    d.bias_mode = <int>s.i[8]
    d.bias = slot_ptr(s, p, s.i[9])
    if d.bias == NULL:
        d.bias_mode = F32_GEMM_BIAS_NONE
    d.d = slot_ptr(s, p, s.i[10])
    d.rsd = s.i[11]
    d.csd = s.i[12]
    d.alpha = s.f[0]
    d.beta = s.f[1]
    d.act_a = s.f[2]
    d.act_b = s.f[3]
    d.conv.x = NULL
    return DSL_OK


cdef void setup_item(const dsl_step* s, char** p, int sub, int64_t item,
                     f32_gemm_desc* d) noexcept nogil:
    """Point the descriptor at the operands of GEMM number `item` of the step."""
    cdef int64_t q, idx, offa = 0, offb = 0, offc = 0, offd = 0, n, g, G, cig, cog, mp
    cdef int k, nb
    if sub == SUB_GEMM:
        d.a_kind = F32_GEMM_A_STRIDED
        d.a = <const float*>p[s.t[0]]
        d.rsa = s.i[16]
        d.csa = s.i[17]
        d.b_kind = F32_GEMM_B_PACKED
        d.b = <const float*>p[s.t[1]]
        d.c = <float*>p[s.t[2]]
        d.rsc = s.i[18]
    elif sub == SUB_MATMUL:
        nb = <int>s.i[21]
        q = item
        for k in range(nb - 1, -1, -1):
            idx = q % s.i[22 + k]
            q = q // s.i[22 + k]
            offa += idx * s.i[26 + k]
            offb += idx * s.i[30 + k]
            offc += idx * s.i[34 + k]
            offd += idx * s.i[38 + k]
        d.a_kind = F32_GEMM_A_STRIDED
        d.a = <const float*>p[s.t[0]] + offa
        d.rsa = s.i[16]
        d.csa = s.i[17]
        d.b_kind = F32_GEMM_B_STRIDED
        d.b = <const float*>p[s.t[1]] + offb
        d.rsb = s.i[18]
        d.csb = s.i[19]
        d.c = <float*>p[s.t[2]] + offc
        d.rsc = s.i[20]
        if d.d != NULL:
            d.d = slot_ptr(s, p, s.i[10]) + offd
    else:  # SUB_CONV
        G = s.i[17]
        n = item // G
        g = item % G
        cig = s.i[18] // G
        cog = s.i[21] // G
        mp = (d.M + d.k.mr - 1) // d.k.mr * d.k.mr  # packed rows per group
        d.a_kind = F32_GEMM_A_PACKED
        d.a = <const float*>p[s.t[1]] + g * mp * d.K
        d.c = <float*>p[s.t[2]] + (n * s.i[21] + g * cog) * s.i[22] * s.i[23]
        d.rsc = s.i[22] * s.i[23]
        if d.bias_mode != F32_GEMM_BIAS_NONE:
            d.bias = slot_ptr(s, p, s.i[9]) + g * cog
        if d.d != NULL:  # a fused residual laid out like Y
            d.d = slot_ptr(s, p, s.i[10]) + (n * s.i[21] + g * cog) * s.i[22] * s.i[23]
        if s.i[32]:
            d.b_kind = F32_GEMM_B_STRIDED
            d.b = <const float*>p[s.t[0]] + (n * s.i[18] + g * cig) * s.i[19] * s.i[20]
            d.rsb = s.i[19] * s.i[20]
            d.csb = 1
        else:
            d.b_kind = F32_GEMM_B_IM2COL
            d.conv.x = <const float*>p[s.t[0]] + (n * s.i[18] + g * cig) * s.i[19] * s.i[20]
            d.conv.H = s.i[19]
            d.conv.W = s.i[20]
            d.conv.KH = s.i[24]
            d.conv.KW = s.i[25]
            d.conv.SH = s.i[26]
            d.conv.SW = s.i[27]
            d.conv.PH = s.i[28]
            d.conv.PW = s.i[29]
            d.conv.DH = s.i[30]
            d.conv.DW = s.i[31]
            d.conv.OW = s.i[23]


cdef void gemm_worker(const dsl_step* s, char** p, const f32_gemm_desc* base, int sub,
                      int64_t total, int rpi, int tm, int tn, int c, int nth,
                      char* ws) noexcept nogil:
    """Rectangles [total*c/nth, total*(c+1)/nth) of the flattened (item, rectangle) list."""
    cdef f32_gemm_desc d
    cdef int64_t r, lo = total * c // nth, hi = total * (c + 1) // nth, m0, m1, n0, n1
    cdef int part
    for r in range(lo, hi):
        memcpy(&d, base, sizeof(f32_gemm_desc))
        setup_item(s, p, sub, r // rpi, &d)
        part = <int>(r % rpi)
        f32_split(d.M, d.k.mr, part // tn, tm, &m0, &m1)
        f32_split(d.N, d.k.nr, part % tn, tn, &n0, &n1)
        f32_gemm_range(&d, m0, m1, n0, n1, <float*>ws)


cdef inline int64_t gcd(int64_t a, int64_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef int run_gemm_like(const dsl_step* s, char** p, const dsl_exec* x, int sub) noexcept nogil:
    cdef f32_gemm_desc base
    cdef int rc = fill_header(s, p, x.cap, &base)
    cdef int nt = x.nt
    cdef int64_t items = 1, k, total
    cdef int nth, rpi, tm = 1, tn = 1, c, a_rt, b_rt
    cdef char* ws
    cdef int64_t wsz = s.i[14]
    if rc != DSL_OK:
        return rc
    if s.i[15] > 0 and nt > s.i[15]:
        nt = <int>s.i[15]
    if sub == SUB_MATMUL:
        if s.i[21] < 0 or s.i[21] > 4:
            return DSL_ERR_BAD_PARAM
        for k in range(s.i[21]):
            items *= s.i[22 + k]
        a_rt = 1
        b_rt = 1
    elif sub == SUB_CONV:
        if s.i[17] <= 0:
            return DSL_ERR_BAD_PARAM
        items = s.i[16] * s.i[17]
        a_rt = 0
        b_rt = 1
    else:
        a_rt = 1
        b_rt = 0
    if items <= 0 or base.M <= 0 or base.N <= 0:
        return DSL_OK
    # the workspace must hold what one f32_gemm_range call packs
    base.a_kind = F32_GEMM_A_STRIDED if a_rt else F32_GEMM_A_PACKED
    base.b_kind = F32_GEMM_B_STRIDED if b_rt else F32_GEMM_B_PACKED
    if f32_gemm_ws_floats(&base) * 4 > wsz:
        return DSL_ERR_BAD_PARAM
    ws = <char*>slot_ptr(s, p, s.i[13])
    if ws == NULL and wsz > 0:
        return DSL_ERR_BAD_PARAM
    nth = dsl_threads_for(items * base.M * base.N * (base.K if base.K > 0 else 1),
                          MIN_MACS_PER_THREAD, nt)
    rpi = <int>(nth // gcd(items, nth))
    if rpi > 1:
        if sub == SUB_CONV and not s.i[32]:
            base.b_kind = F32_GEMM_B_IM2COL  # (its packing costs more: weighs the split)
        f32_gemm_grid(&base, a_rt, b_rt, rpi, &tm, &tn)
    total = items * rpi
    f32_gemm_hits(x, &base.k, a_rt or b_rt, base.act != 0)
    if nth <= 1:
        gemm_worker(s, p, &base, sub, total, rpi, tm, tn, 0, 1, ws)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        gemm_worker(s, p, &base, sub, total, rpi, tm, tn, c, nth, ws + c * wsz)
    return DSL_OK


# --------------------------------------------------------------------------------------
# Depthwise convolution
# --------------------------------------------------------------------------------------

cdef void dw_worker(const dsl_step* s, char** p, const f32_dw_geom* g, f32_dwconv_plane_fn fn,
                    int cap, int64_t lo, int64_t hi, char* ws) noexcept nogil:
    cdef int64_t plane, C = s.i[18], ch
    cdef const float* x = <const float*>p[s.t[0]]
    cdef const float* w = <const float*>p[s.t[1]]
    cdef float* y = <float*>p[s.t[2]]
    cdef const float* bias = slot_ptr(s, p, s.i[9])
    cdef int64_t khw = g.KH * g.KW, hw = g.H * g.W, ohw = g.OH * g.OW
    cdef int act_form = dsl_kv_form(DSL_KV_UNARY, <int>s.i[0], cap)
    for plane in range(lo, hi):
        ch = plane % C
        fn(g, x + plane * hw, w + ch * khw, bias[ch] if bias != NULL else 0.0,
           y + plane * ohw, act_form, <int>s.i[7], s.f[2], s.f[3], <float*>ws, plane == lo)


cdef int run_dwconv(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef f32_dw_geom g
    cdef int nt = ex.nt, form
    cdef int64_t planes = s.i[16] * s.i[18], hp, wp, wsz = s.i[14]
    cdef int nth, c
    cdef char* ws = <char*>slot_ptr(s, p, s.i[13])
    if s.i[15] > 0 and nt > s.i[15]:
        nt = <int>s.i[15]
    if s.i[0] < 0 or s.i[0] > 2 or s.i[18] != s.i[21] or s.i[18] != s.i[17]:
        return DSL_ERR_BAD_PARAM
    form = dsl_kv_form(DSL_KV_DWCONV, <int>s.i[0], ex.cap)
    cdef f32_dwconv_plane_fn fn = f32_dwconv_select(form)
    g.H = s.i[19]
    g.W = s.i[20]
    g.OH = s.i[22]
    g.OW = s.i[23]
    g.KH = s.i[24]
    g.KW = s.i[25]
    g.SH = s.i[26]
    g.SW = s.i[27]
    g.PH = s.i[28]
    g.PW = s.i[29]
    g.DH = s.i[30]
    g.DW = s.i[31]
    if g.SH <= 0 or g.SW <= 0 or planes <= 0:
        return DSL_OK if planes == 0 else DSL_ERR_BAD_PARAM
    f32_dwconv_padded_dims(&g, &hp, &wp)
    if ws == NULL or hp * wp * 4 > wsz or g.PH < 0 or g.PW < 0:
        return DSL_ERR_BAD_PARAM
    nth = dsl_threads_for(planes * g.OH * g.OW * g.KH * g.KW, MIN_MACS_PER_THREAD, nt)
    if nth > planes:
        nth = <int>planes
    dsl_hit(ex, DSL_KV_DWCONV, form)
    if s.i[7] != 0:
        dsl_hit(ex, DSL_KV_UNARY, dsl_kv_form(DSL_KV_UNARY, <int>s.i[0], ex.cap))
    if nth <= 1:
        dw_worker(s, p, &g, fn, ex.cap, 0, planes, ws)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        dw_worker(s, p, &g, fn, ex.cap, planes * c // nth, planes * (c + 1) // nth, ws + c * wsz)
    return DSL_OK


# --------------------------------------------------------------------------------------
# ConvTranspose: GEMM into a per-thread column buffer, then col2im
# --------------------------------------------------------------------------------------

cdef void convt_worker(const dsl_step* s, char** p, const f32_gemm_desc* base, int64_t lo,
                       int64_t hi, char* ws) noexcept nogil:
    cdef f32_gemm_desc d
    cdef int64_t it, n, g, ch, co0, nco, k, G = s.i[17], nchunks = s.i[33], chunk = s.i[32]
    cdef int64_t Cin = s.i[18], Cout = s.i[21], H = s.i[19], W = s.i[20]
    cdef int64_t OH = s.i[22], OW = s.i[23], KHW = s.i[24] * s.i[25]
    cdef int64_t cig = Cin // G, cog = Cout // G, ohw = OH * OW
    cdef int64_t mp = (chunk * KHW + base.k.mr - 1) // base.k.mr * base.k.mr
    cdef float* col = <float*>ws
    cdef float* gws = <float*>ws + s.i[34]
    cdef float* y
    cdef const float* bias = slot_ptr(s, p, s.i[9])
    cdef float bv
    for it in range(lo, hi):
        n = it // (G * nchunks)
        g = (it // nchunks) % G
        ch = it % nchunks
        co0 = ch * chunk
        nco = cog - co0 if cog - co0 < chunk else chunk
        memcpy(&d, base, sizeof(f32_gemm_desc))
        d.M = nco * KHW
        d.a_kind = F32_GEMM_A_PACKED
        d.a = <const float*>p[s.t[1]] + (g * nchunks + ch) * mp * d.K
        d.b_kind = F32_GEMM_B_STRIDED
        d.b = <const float*>p[s.t[0]] + (n * Cin + g * cig) * H * W
        d.rsb = H * W
        d.csb = 1
        d.c = col
        d.rsc = H * W
        f32_gemm_range(&d, 0, d.M, 0, d.N, gws)
        y = <float*>p[s.t[2]] + (n * Cout + g * cog + co0) * ohw
        for k in range(nco):
            bv = bias[g * cog + co0 + k] if bias != NULL else 0.0
            fill_f32(y + k * ohw, ohw, bv)
        f32_col2im_add(col, nco, H, W, s.i[24], s.i[25], s.i[26], s.i[27], s.i[28], s.i[29],
                       s.i[30], s.i[31], OH, OW, y)
        dsl_act_row(base.k.act_form, <int>s.i[7], y, nco * ohw, s.f[2], s.f[3])


cdef inline void fill_f32(float* x, int64_t n, float v) noexcept nogil:
    cdef int64_t k
    for k in range(n):
        x[k] = v


cdef int run_convt(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef f32_gemm_desc base
    cdef int rc = fill_header(s, p, x.cap, &base)
    cdef int nt = x.nt
    cdef int64_t items, wsz = s.i[14]
    cdef int nth, c
    cdef char* ws
    if rc != DSL_OK:
        return rc
    if s.i[15] > 0 and nt > s.i[15]:
        nt = <int>s.i[15]
    if s.i[17] <= 0 or s.i[32] <= 0 or s.i[33] <= 0 or s.i[26] <= 0 or s.i[27] <= 0:
        return DSL_ERR_BAD_PARAM
    # the GEMM part has no epilogue: bias and activation come after col2im
    base.alpha = 1.0
    base.bias_mode = F32_GEMM_BIAS_NONE
    base.bias = NULL
    base.d = NULL
    base.act = 0
    base.a_kind = F32_GEMM_A_PACKED
    base.b_kind = F32_GEMM_B_STRIDED
    if (f32_gemm_ws_floats(&base) + s.i[34]) * 4 > wsz or s.i[34] < base.M * base.N:
        return DSL_ERR_BAD_PARAM
    ws = <char*>slot_ptr(s, p, s.i[13])
    if ws == NULL:
        return DSL_ERR_BAD_PARAM
    items = s.i[16] * s.i[17] * s.i[33]
    if items <= 0:
        return DSL_OK
    nth = dsl_threads_for(items * base.M * base.N * base.K, MIN_MACS_PER_THREAD, nt)
    if nth > items:
        nth = <int>items
    f32_gemm_hits(x, &base.k, 1, s.i[7] != 0)
    if nth <= 1:
        convt_worker(s, p, &base, 0, items, ws)
        return DSL_OK
    for c in prange(nth, num_threads=nth, schedule='static', nogil=True):
        convt_worker(s, p, &base, items * c // nth, items * (c + 1) // nth, ws + c * wsz)
    return DSL_OK


cdef int run_gemm(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef int sub = s.op % 100
    if sub == SUB_GEMM or sub == SUB_MATMUL or sub == SUB_CONV:
        return run_gemm_like(s, p, x, sub)
    if sub == SUB_DWCONV:
        return run_dwconv(s, p, x)
    if sub == SUB_CONVT:
        return run_convt(s, p, x)
    return DSL_ERR_UNKNOWN_OP


def set_min_work(int64_t macs):
    """Work (multiply-adds) each extra thread needs; returns the previous value. Tests set
    it to 1 so that small shapes exercise the thread partitioning."""
    global MIN_MACS_PER_THREAD
    old = MIN_MACS_PER_THREAD
    MIN_MACS_PER_THREAD = max(1, macs)
    return old
