"""GEMM-family kernels (family 5): packed fp32 GEMM, MatMul, Conv, ConvTranspose.

The loop nest, packing and microkernels are C (csrc/f32_gemm*.h, csrc/f32_conv.h); this
module decodes a step, cuts the work into per-thread rectangles and runs them through
run_ranges (kernels/dsl.pxd). Constant operands were packed at compile time (ops/gemm.py,
ops/conv.py, with the C packers and geometry of this module's ``pack_*`` / ``geometry``)
for the register tile of the plan's level, recorded in ``level``; under a lower CPU cap
the same geometry runs in a form the CPU has (csrc/dsl_cpu.h).

Every step of the family carries a dsl_gemm_params record (csrc/dsl_params.h; the
lowerings fill it by name through deepsparse_lite/step_params.py):

  header  level, M, N, K (one GEMM), mc, kc, nc (blocking: mc % MR == 0, nc % NR == 0),
          act, act_a, act_b (csrc/dsl_act.h), bias_mode (0 none, 1 per column n, 2 per row
          m) + bias_slot, d_slot + rsd, csd + beta (the addend D), alpha, ws_slot +
          ws_bytes per thread for ws_threads threads (more are never used).
          Y = act(alpha * A·B + bias + beta * D); a per-column bias is zero padded to a
          multiple of NR floats (the tiles load it a vector at a time). Alpha, bias and
          None/Relu/Clip run in registers before a tile's last store; D and other
          activations right after it.

  GEMM    t=[A, Bpacked, Y, ...]  A[m*rsa + k*csa]; B packed [ceil(N/NR)][K][NR]; rsc
  MATMUL  t=[A, B, Y, ...]  both runtime: rsa, csa, rsb, csb, rsc; nb (0..4) batch dims of
          shape batch[] with batch strides sa / sb / sc / sd (elements; 0 = broadcast)
  CONV    t=[X, Wpacked, Y, ...]  NCHW 2-D (1-D as H = 1); per (image, group) a GEMM
          Y[co, p] = W[co, k]·col[k, p], M = Cout/groups, K = Cin/groups*KH*KW, N = OH*OW;
          W packed per group [ceil(M/MR)][K][MR]; bias per row (output channel).
          Geometry: images, groups, Cin, H, W, Cout, OH, OW, KH, KW, SH, SW, PH (top),
          PW (left), DH, DW; direct: 1x1 stride 1 unpadded, X read as B without im2col.
          MatMul(W const, X) uses it as a 1x1 conv. pixel_rows (groups 1, small images):
          the pixels are the tile's rows, M = OH*OW, N = Cout, W^T packed as B
          [ceil(Cout/NR)][K][NR]; workspace: round_up(M, MR) * (K + nc) floats
          (f32_conv_pixel_rows).
  DWCONV  t=[X, W, Y, ...]  groups == Cin == Cout; W raw [C][KH*KW]; the CONV geometry;
          uses level, act, bias, the workspace (one zero-bordered input plane per thread,
          f32_dwconv_padded_dims)
  CONVT   t=[X, Wpacked, Y, ...]  ConvTranspose: per (image, group, chunk of co_chunk
          output channels) col = W^T·X (GEMM, M = co_chunk*KH*KW, K = Cin/groups, N = H*W)
          then col2im into Y (initialised with the bias), then the activation. The CONV
          geometry (H, W input; OH, OW output); nchunks per group; W packed per (group,
          chunk) with stride ceil(co_chunk*KH*KW/MR)*MR*K; each thread's workspace holds
          the column buffer (col_floats) then the GEMM's packing space.
  WINO    t=[X, Upacked, Y, ...]  Winograd F(2x2, 3x3) (csrc/f32_winograd.h): stride 1,
          undilated, groups 1; the CONV geometry (KH = KW = 3), M = Cout, K = Cin, N = tiles
          per image (ceil(OH/2) * ceil(OW/2)); U packed per xi (16) like CONV's W with
          stride ceil(M/MR)*MR*K; nchunks blocks per image of at most co_chunk B panels,
          each in co_parts output-channel parts (winograd_layout); act none / Relu / Clip
          only (in the output transform).

  bf16    (GEMM and CONV, not pixel_rows: the precision="bf16" option) the constant operand
          in csrc/bf16_gemm.h's bfloat16 layout (GEMM: B [ceil(N/32)][K32][2][16][16][2];
          CONV: A per group [ceil(M/32)][K32][32][32]), the run-time one rounded to bfloat16
          as it is packed; 32 x 32 blocks (mc, nc multiples of 32); workspace bg_ws_bytes
          of the run-time side (GEMM: M rows, CONV: N columns).
"""
from libc.stdint cimport int64_t
from libc.math cimport INFINITY
from libc.string cimport memcpy

from deepsparse_lite.kernels.dsl cimport (dsl_step, dsl_exec, DSL_OK, DSL_ERR_UNKNOWN_OP,
                                          DSL_ERR_BAD_PARAM, DSL_KV_DWCONV, DSL_KV_UNARY,
                                          DSL_KV_BGEMM, DSL_KV_GEMM_PACK,
                                          dsl_threads_for, dsl_kv_form, dsl_hit, run_ranges)
from deepsparse_lite.kernels.params cimport (dsl_gemm_params, DSL_OP_GEMM, DSL_OP_MATMUL,
                                             DSL_OP_CONV, DSL_OP_DWCONV, DSL_OP_CONVT,
                                             DSL_OP_WINO)

cdef extern from "f32_gemm.h" nogil:
    ctypedef struct f32_gemm_kernel:
        int mr
        int nr
        int tile_form, pack_form, act_form
    ctypedef struct f32_conv_geom:
        const float* x
        int64_t H, W, KH, KW, SH, SW, PH, PW, DH, DW, OW
    void conv_geom_set "F32_CONV_GEOM_SET"(f32_conv_geom* g, const dsl_gemm_params* q, const float* x)
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
    void f32_gemm_geometry(int level, int* mr, int* nr)
    void f32_gemm_blocking(int level, int64_t M, int64_t N, int64_t K, int a_runtime,
                           int b_runtime, int64_t* mc, int64_t* kc, int64_t* nc,
                           int64_t* ws_floats)
    void f32_gemm_pack_a__generic(const float* a, int64_t rsa, int64_t csa, int64_t ic,
                                  int64_t mc, int64_t pc, int64_t kc, int MR, float* dst)
    void f32_gemm_pack_b__generic(const float* b, int64_t rsb, int64_t csb, int64_t pc,
                                  int64_t kc, int64_t jc, int64_t nc, int NR, float* dst)
    void f32_gemm_hits(const dsl_exec* x, const f32_gemm_kernel* k, int packs, int act)
    int64_t f32_gemm_ws_floats(const f32_gemm_desc* d)
    void f32_gemm_range(const f32_gemm_desc* d, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                        float* ws)
    void f32_gemm_grid(const f32_gemm_desc* d, int a_runtime, int b_runtime, int parts, int* tm,
                       int* tn)
    void f32_split(int64_t n, int64_t align, int i, int parts, int64_t* lo, int64_t* hi)
    void f32_conv_pixel_rows(const f32_gemm_desc* d, int direct, int64_t n0, int64_t n1,
                             float* ws)
    int64_t f32_round_up(int64_t x, int64_t m)

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

cdef extern from "f32_winograd.h" nogil:
    ctypedef struct f32_wino_geom:
        int64_t Cin, H, W, Cout, OH, OW, PH, PW, TH, TW
        float beta, lo, hi
        int clamp
    ctypedef void (*f32_wino_input_fn)(const f32_wino_geom*, const float*, int64_t, int64_t, int,
                                       float*, int64_t, float*) noexcept nogil
    ctypedef void (*f32_wino_output_fn)(const f32_wino_geom*, const float*, int64_t, int64_t,
                                        int64_t, int64_t, int64_t, int64_t, const float*,
                                        const float*, float*, float*) noexcept nogil
    void f32_wino_select(int form, f32_wino_input_fn* fin, f32_wino_output_fn* fout)
    void f32_wino_layout(int level, int64_t images, int64_t Cin, int64_t Cout, int64_t TH,
                         int64_t TW, int threads, int64_t* nblk, int64_t* maxp,
                         int64_t* co_parts, int64_t* ws_floats)
    int DSL_ACT_NONE, DSL_ACT_RELU, DSL_ACT_CLIP

cdef extern from "bf16_gemm.h" nogil:
    ctypedef struct bg_kernel:
        int form, amx
    void bg_select(int cap, bg_kernel* k)
    void bg_gemm_range(const f32_gemm_desc* d, const bg_kernel* bk, int64_t m0, int64_t m1,
                       int64_t n0, int64_t n1, char* ws)
    int64_t bg_ws_bytes(int64_t rows, int64_t K)
    int64_t bg_ws_bytes_both(int64_t M, int64_t N, int64_t K)
    int64_t bg_packed_elems(int64_t rows, int64_t K)
    void bg_pack_a__generic(const float* a, int64_t rsa, int64_t csa, int64_t m0,
                            int64_t mcount, int64_t K, unsigned short* dst)
    void bg_pack_b__generic(const float* b, int64_t rsb, int64_t csb, int64_t n0,
                            int64_t ncount, int64_t K, unsigned short* dst)
    ctypedef struct bg_win_geom:
        const float* x
        int64_t Cin, Cp, H, W, KH, KW, PH, PW, DH, DW, OH, OW, Wp, SH, SW
    int64_t bg_win_ws_bytes(const bg_win_geom* g, int64_t positions)
    void bg_conv_window_range(const f32_gemm_desc* d, const bg_kernel* bk, const bg_win_geom* g,
                              int64_t m0, int64_t m1, int64_t q0, int64_t q1, char* ws)
    int bg_amx_usable()
    double bg_amx_peak(int64_t iters, float* sink)
    double bg_dpbf16_peak(int64_t iters, float* sink)
    int dsl_cpu_has_avx512bf16()
    int bg_amx_enabled
    unsigned long long bg_amx_runs
    int BG_T

cdef extern from "dsl_act.h" nogil:
    void dsl_act_row(int form, int act, float* x, int64_t n, float a, float b)

# Multiply-adds below which a step stays on one thread (an OpenMP fork/join costs a few us).
# A module variable so tests can force tiny shapes through the multi-thread partitioning.
cdef int64_t MIN_MACS_PER_THREAD = 131072


cdef inline const dsl_gemm_params* P(const dsl_step* s) noexcept nogil:
    return <const dsl_gemm_params*>s.params


cdef inline const float* slot_ptr(const dsl_step* s, char** p, int64_t slot) noexcept nogil:
    if slot < 0 or slot >= s.nt:
        return NULL
    return <const float*>p[s.t[slot]]


cdef int fill_header(const dsl_step* s, char** p, int cap, f32_gemm_desc* d) noexcept nogil:
    """The parts of the descriptor shared by every item of the step."""
    cdef const dsl_gemm_params* q = P(s)
    if f32_gemm_select(<int>q.level, cap, &d.k) != 0:
        return DSL_ERR_BAD_PARAM
    if q.bf16:  # 32 x 32 blocks (csrc/bf16_gemm.h)
        d.k.mr = BG_T
        d.k.nr = BG_T
    d.M = q.M
    d.N = q.N
    d.K = q.K
    d.mc = q.mc
    d.kc = q.kc
    d.nc = q.nc
    if d.mc <= 0 or d.kc <= 0 or d.nc <= 0 or d.mc % d.k.mr != 0 or d.nc % d.k.nr != 0:
        return DSL_ERR_BAD_PARAM
    d.act = <int>q.act
    d.bias_mode = <int>q.bias_mode
    d.bias = slot_ptr(s, p, q.bias_slot)
    if d.bias == NULL:
        d.bias_mode = F32_GEMM_BIAS_NONE
    d.d = slot_ptr(s, p, q.d_slot)
    d.rsd = q.rsd
    d.csd = q.csd
    d.alpha = q.alpha
    d.beta = q.beta
    d.act_a = q.act_a
    d.act_b = q.act_b
    d.conv.x = NULL
    return DSL_OK


cdef void setup_item(const dsl_step* s, char** p, int64_t item, f32_gemm_desc* d) noexcept nogil:
    """Point the descriptor at the operands of GEMM number `item` of the step."""
    cdef const dsl_gemm_params* q = P(s)
    cdef int64_t r, idx, offa = 0, offb = 0, offc = 0, offd = 0, n, g, cig, cog, mp, plane
    cdef int k
    if s.op == DSL_OP_GEMM:
        d.a_kind = F32_GEMM_A_STRIDED
        d.a = <const float*>p[s.t[0]]
        d.rsa = q.rsa
        d.csa = q.csa
        d.b_kind = F32_GEMM_B_PACKED
        d.b = <const float*>p[s.t[1]]
        d.c = <float*>p[s.t[2]]
        d.rsc = q.rsc
    elif s.op == DSL_OP_MATMUL:
        r = item
        for k in range(<int>q.nb - 1, -1, -1):
            idx = r % q.batch[k]
            r = r // q.batch[k]
            offa += idx * q.sa[k]
            offb += idx * q.sb[k]
            offc += idx * q.sc[k]
            offd += idx * q.sd[k]
        d.a_kind = F32_GEMM_A_STRIDED
        d.a = <const float*>p[s.t[0]] + offa
        d.rsa = q.rsa
        d.csa = q.csa
        d.b_kind = F32_GEMM_B_STRIDED
        d.b = <const float*>p[s.t[1]] + offb
        d.rsb = q.rsb
        d.csb = q.csb
        d.c = <float*>p[s.t[2]] + offc
        d.rsc = q.rsc
        if d.d != NULL:
            d.d = slot_ptr(s, p, q.d_slot) + offd
    else:  # CONV
        n = item // q.groups
        g = item % q.groups
        cig = q.Cin // q.groups
        cog = q.Cout // q.groups
        mp = (d.M + d.k.mr - 1) // d.k.mr * d.k.mr  # packed rows per group
        plane = q.OH * q.OW
        d.a_kind = F32_GEMM_A_PACKED
        if q.bf16:  # a group's bf16 panels
            d.a = <const float*>(<const unsigned short*>p[s.t[1]] + g * bg_packed_elems(d.M, d.K))
        else:
            d.a = <const float*>p[s.t[1]] + g * mp * d.K
        d.c = <float*>p[s.t[2]] + (n * q.Cout + g * cog) * plane
        d.rsc = plane
        if d.bias_mode != F32_GEMM_BIAS_NONE:
            d.bias = slot_ptr(s, p, q.bias_slot) + g * cog
        if d.d != NULL:  # a fused residual laid out like Y
            d.d = slot_ptr(s, p, q.d_slot) + (n * q.Cout + g * cog) * plane
        if q.pixel_rows:  # groups == 1: X as the pixels' A, W^T packed as B
            d.a = <const float*>p[s.t[0]] + n * q.Cin * q.H * q.W
            d.csa = q.H * q.W
            d.b_kind = F32_GEMM_B_PACKED
            d.b = <const float*>p[s.t[1]]
            conv_geom_set(&d.conv, q, d.a)
        elif q.direct:
            d.b_kind = F32_GEMM_B_STRIDED
            d.b = <const float*>p[s.t[0]] + (n * q.Cin + g * cig) * q.H * q.W
            d.rsb = q.H * q.W
            d.csb = 1
        else:
            d.b_kind = F32_GEMM_B_IM2COL
            conv_geom_set(&d.conv, q, <const float*>p[s.t[0]] + (n * q.Cin + g * cig) * q.H * q.W)


cdef inline void win_geom(const dsl_gemm_params* q, const float* x, bg_win_geom* g) noexcept nogil:
    """The window geometry of a bf16 == 2 CONV step (K = taps * Cp) for image x."""
    g.x = x
    g.Cin = q.Cin
    g.Cp = q.K // (q.KH * q.KW) if q.KH * q.KW > 0 else 0
    g.H = q.H
    g.W = q.W
    g.KH = q.KH
    g.KW = q.KW
    g.PH = q.PH
    g.PW = q.PW
    g.DH = q.DH
    g.DW = q.DW
    g.OH = q.OH
    g.OW = q.OW
    g.SH = q.SH if q.SH > 0 else 1
    g.SW = q.SW if q.SW > 0 else 1
    g.Wp = q.OW + ((q.KW - 1) * q.DW) // g.SW


cdef struct gemm_ctx:
    const dsl_step* s
    char** p
    const f32_gemm_desc* base
    bg_kernel bk
    int bf16
    int rpi, tm, tn
    char* ws
    int64_t wsz


cdef int64_t gemm_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Rectangles [lo, hi) of the flattened (item, rectangle) list of a step."""
    cdef const gemm_ctx* x = <const gemm_ctx*>vctx
    cdef f32_gemm_desc d
    cdef bg_win_geom g
    cdef int64_t r, m0, m1, n0, n1
    cdef int part
    for r in range(lo, hi):
        memcpy(&d, x.base, sizeof(f32_gemm_desc))
        setup_item(x.s, x.p, r // x.rpi, &d)
        part = <int>(r % x.rpi)
        if x.bf16 == 2:  # a stride-1 conv from pair-interleaved windows of its image
            win_geom(P(x.s), <const float*>x.p[x.s.t[0]] + (r // x.rpi) * P(x.s).Cin * P(x.s).H * P(x.s).W, &g)
            f32_split(d.M, 32, part // x.tn, x.tm, &m0, &m1)
            f32_split(g.OH * g.Wp, 32, part % x.tn, x.tn, &n0, &n1)
            bg_conv_window_range(&d, &x.bk, &g, m0, m1, n0, n1, x.ws + chunk * x.wsz)
            continue
        if x.s.op == DSL_OP_CONV and P(x.s).pixel_rows:
            f32_split(d.N, d.k.nr, part, x.rpi, &n0, &n1)
            f32_conv_pixel_rows(&d, <int>P(x.s).direct, n0, n1, <float*>(x.ws + chunk * x.wsz))
            continue
        f32_split(d.M, d.k.mr, part // x.tn, x.tm, &m0, &m1)
        f32_split(d.N, d.k.nr, part % x.tn, x.tn, &n0, &n1)
        if x.bf16:
            bg_gemm_range(&d, &x.bk, m0, m1, n0, n1, x.ws + chunk * x.wsz)
        else:
            f32_gemm_range(&d, m0, m1, n0, n1, <float*>(x.ws + chunk * x.wsz))
    return 0


cdef inline int64_t gcd(int64_t a, int64_t b) noexcept nogil:
    while b:
        a, b = b, a % b
    return a


cdef inline int cap_threads(const dsl_gemm_params* q, int nt) noexcept nogil:
    """Never more threads than the per-thread workspace was sized for."""
    if q.ws_threads > 0 and nt > q.ws_threads:
        return <int>q.ws_threads
    return nt


cdef int run_gemm_like(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_gemm_desc base
    cdef gemm_ctx ctx
    cdef int rc = fill_header(s, p, x.cap, &base)
    cdef int nt = cap_threads(q, x.nt), nth, rpi, tm = 1, tn = 1, a_rt, b_rt, k
    cdef int64_t items = 1
    cdef bg_win_geom wg
    if rc != DSL_OK:
        return rc
    if s.op == DSL_OP_MATMUL:
        if q.nb < 0 or q.nb > 4:
            return DSL_ERR_BAD_PARAM
        for k in range(<int>q.nb):
            items *= q.batch[k]
        a_rt = 1
        b_rt = 1
    elif s.op == DSL_OP_CONV:
        if q.groups <= 0:
            return DSL_ERR_BAD_PARAM
        items = q.images * q.groups
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
    ctx.bf16 = <int>q.bf16
    if ctx.bf16 < 0 or ctx.bf16 > 2:
        return DSL_ERR_BAD_PARAM
    if ctx.bf16:
        # GEMM: A (M rows) packed per call; CONV: B (N columns); MATMUL: both; never pixel
        # rows; 2: a stride-1 ungrouped CONV from windows, K = taps * Cp
        if s.op == DSL_OP_CONV and q.pixel_rows:
            return DSL_ERR_BAD_PARAM
        if ctx.bf16 == 2:
            win_geom(q, NULL, &wg)
            if (s.op != DSL_OP_CONV or q.groups != 1 or q.SH < 1 or q.SW < 1 or wg.Cp <= 0
                    or ((q.SH > 1 or q.SW > 1) and (q.DH != 1 or q.DW != 1))
                    or wg.Cp % 32 != 0 or wg.Cp < q.Cin or wg.Cp * q.KH * q.KW != base.K
                    or bg_win_ws_bytes(&wg, q.OH * wg.Wp) > q.ws_bytes):
                return DSL_ERR_BAD_PARAM
        elif s.op == DSL_OP_MATMUL:
            if bg_ws_bytes_both(base.M, base.N, base.K) > q.ws_bytes:
                return DSL_ERR_BAD_PARAM
        elif bg_ws_bytes(base.M if a_rt else base.N, base.K) > q.ws_bytes:
            return DSL_ERR_BAD_PARAM
        bg_select(x.cap, &ctx.bk)
    elif s.op == DSL_OP_CONV and q.pixel_rows:
        # M = pixels, N = Cout: the packed pixel block and the scratch of one channel block
        if (q.groups != 1 or base.M != q.OH * q.OW or base.N != q.Cout
                or f32_round_up(base.M, base.k.mr) * (base.K + base.nc) * 4 > q.ws_bytes):
            return DSL_ERR_BAD_PARAM
    elif f32_gemm_ws_floats(&base) * 4 > q.ws_bytes:
        return DSL_ERR_BAD_PARAM
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if ctx.ws == NULL and q.ws_bytes > 0:
        return DSL_ERR_BAD_PARAM
    nth = dsl_threads_for(items * base.M * base.N * (base.K if base.K > 0 else 1),
                          MIN_MACS_PER_THREAD, nt)
    rpi = <int>(nth // gcd(items, nth))
    if ctx.bf16 == 2 and rpi > 1:  # positions as the columns (each part fills its windows)
        base.N = q.OH * wg.Wp
        f32_gemm_grid(&base, 0, 1, rpi, &tm, &tn)
        base.N = q.N
    elif s.op == DSL_OP_CONV and q.pixel_rows:
        tn = rpi  # split the output channels
    elif rpi > 1:
        if s.op == DSL_OP_CONV and not q.direct:
            base.b_kind = F32_GEMM_B_IM2COL  # (its packing costs more: weighs the split)
        f32_gemm_grid(&base, a_rt, b_rt, rpi, &tm, &tn)
    if ctx.bf16:
        dsl_hit(x, DSL_KV_BGEMM, ctx.bk.form)
        if b_rt and ctx.bf16 != 2:
            dsl_hit(x, DSL_KV_GEMM_PACK, base.k.pack_form)
        if base.act != 0:
            dsl_hit(x, DSL_KV_UNARY, base.k.act_form)
    else:
        f32_gemm_hits(x, &base.k, a_rt or b_rt, base.act != 0)
    ctx.s = s
    ctx.p = p
    ctx.base = &base
    ctx.rpi = rpi
    ctx.tm = tm
    ctx.tn = tn
    run_ranges(x, gemm_range, &ctx, items * rpi, nth)
    return DSL_OK


# --------------------------------------------------------------------------------------
# Depthwise convolution
# --------------------------------------------------------------------------------------

cdef struct dw_ctx:
    const dsl_step* s
    char** p
    const f32_dw_geom* g
    f32_dwconv_plane_fn fn
    int act_form
    char* ws
    int64_t wsz


cdef int64_t dw_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Output planes [lo, hi), through this thread's padded-plane buffer."""
    cdef const dw_ctx* x = <const dw_ctx*>vctx
    cdef const dsl_gemm_params* q = P(x.s)
    cdef int64_t plane, ch, C = q.Cin
    cdef const float* xin = <const float*>x.p[x.s.t[0]]
    cdef const float* w = <const float*>x.p[x.s.t[1]]
    cdef float* y = <float*>x.p[x.s.t[2]]
    cdef const float* bias = slot_ptr(x.s, x.p, q.bias_slot)
    cdef int64_t khw = x.g.KH * x.g.KW, hw = x.g.H * x.g.W, ohw = x.g.OH * x.g.OW
    for plane in range(lo, hi):
        ch = plane % C
        x.fn(x.g, xin + plane * hw, w + ch * khw, bias[ch] if bias != NULL else 0.0,
             y + plane * ohw, x.act_form, <int>q.act, q.act_a, q.act_b,
             <float*>(x.ws + chunk * x.wsz), plane == lo)
    return 0


cdef inline int64_t xdw_erows(const f32_dw_geom* g, int64_t rows) noexcept nogil:
    """Expanded rows a band of `rows` output rows reads (at most the image's)."""
    cdef int64_t e = (rows - 1) * g.SH + (g.KH - 1) * g.DH + 1
    return e if e < g.H else g.H


cdef int64_t xdw_ws_floats(const f32_dw_geom* g, int64_t rows, int64_t cb, int64_t kc, int64_t nc,
                           int nr, int64_t* pad_floats, int64_t* e_floats) noexcept nogil:
    """The per-thread workspace of a fused expand + depthwise step: the padded plane of
    a band, the band's expanded rows of cb channels, the GEMM's B panel."""
    cdef f32_dw_geom b = g[0]
    cdef int64_t hp, wp
    b.OH = rows
    f32_dwconv_padded_dims(&b, &hp, &wp)
    pad_floats[0] = f32_round_up(hp * wp, 16)
    e_floats[0] = f32_round_up(cb * xdw_erows(g, rows) * g.W, 16)
    return pad_floats[0] + e_floats[0] + kc * f32_round_up(nc, nr)


cdef struct xdw_ctx:
    const dsl_step* s
    char** p
    const f32_dw_geom* g
    const f32_gemm_desc* base
    f32_dwconv_plane_fn fn
    int act_form
    int64_t R, CB, nb, ncb, pad_floats, e_floats
    char* ws
    int64_t wsz


cdef int64_t xdw_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Work items [lo, hi) of (image, band, channel block): the band's expanded rows by
    the GEMM into this thread's buffer, then the depthwise planes of the band from it."""
    cdef const xdw_ctx* x = <const xdw_ctx*>vctx
    cdef const dsl_gemm_params* q = P(x.s)
    cdef f32_gemm_desc d
    cdef f32_dw_geom gb
    cdef int64_t it, n, band, cb, r0, r1, c0, c1, e0, e1, c, er
    cdef int64_t C = q.Cout, Cin = q.K, hw = x.g.H * x.g.W, ohw = x.g.OH * x.g.OW
    cdef float* pad = <float*>(x.ws + chunk * x.wsz)
    cdef float* ebuf = pad + x.pad_floats
    cdef float* gws = ebuf + x.e_floats
    cdef const float* xin = <const float*>x.p[x.s.t[0]]
    cdef const float* wd = <const float*>x.p[x.s.t[1]]
    cdef float* y = <float*>x.p[x.s.t[2]]
    cdef const float* bd = slot_ptr(x.s, x.p, q.bias_slot)
    cdef const float* w1 = slot_ptr(x.s, x.p, q.ex_slot)
    cdef const float* b1 = slot_ptr(x.s, x.p, q.ex_bias_slot)
    cdef int64_t khw = x.g.KH * x.g.KW
    for it in range(lo, hi):
        cb = it % x.ncb
        band = (it // x.ncb) % x.nb
        n = it // (x.ncb * x.nb)
        r0 = band * x.R
        r1 = r0 + x.R if r0 + x.R < x.g.OH else x.g.OH
        c0 = cb * x.CB
        c1 = c0 + x.CB if c0 + x.CB < C else C
        e0 = r0 * x.g.SH - x.g.PH
        if e0 < 0:
            e0 = 0
        e1 = (r1 - 1) * x.g.SH - x.g.PH + (x.g.KH - 1) * x.g.DH + 1
        if e1 > x.g.H:
            e1 = x.g.H
        er = e1 - e0 if e1 > e0 else 0
        gb = x.g[0]
        gb.H = er
        gb.OH = r1 - r0
        gb.PH = x.g.PH + e0 - r0 * x.g.SH
        if er > 0:
            memcpy(&d, x.base, sizeof(f32_gemm_desc))
            d.M = c1 - c0
            d.N = er * x.g.W
            d.a = w1 + c0 * Cin  # panels of MR rows, c0 a multiple of MR
            d.b = xin + n * Cin * hw + e0 * x.g.W
            d.c = ebuf
            d.rsc = d.N
            d.bias = b1 + c0 if b1 != NULL else NULL
            f32_gemm_range(&d, 0, d.M, 0, d.N, gws)
        for c in range(c0, c1):
            x.fn(&gb, ebuf + (c - c0) * er * x.g.W, wd + c * khw, bd[c] if bd != NULL else 0.0,
                 y + (n * C + c) * ohw + r0 * x.g.OW, x.act_form, <int>q.act, q.act_a, q.act_b,
                 pad, c == c0)
    return 0


cdef int run_expand_dw(const dsl_step* s, char** p, const dsl_exec* ex, f32_dw_geom* g,
                       int form) noexcept nogil:
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_gemm_desc base
    cdef xdw_ctx ctx
    cdef int nt = cap_threads(q, ex.nt), nth
    cdef int64_t items, need
    if q.K <= 0 or q.M != q.Cout or q.ex_cb <= 0 or q.mc <= 0 or q.kc <= 0 or q.nc <= 0:
        return DSL_ERR_BAD_PARAM
    if slot_ptr(s, p, q.ex_slot) == NULL or (q.ex_bias_slot >= 0 and slot_ptr(s, p, q.ex_bias_slot) == NULL):
        return DSL_ERR_BAD_PARAM
    if f32_gemm_select(<int>q.level, ex.cap, &base.k) != 0:
        return DSL_ERR_BAD_PARAM
    if q.ex_cb % base.k.mr != 0 or q.mc % base.k.mr != 0 or q.nc % base.k.nr != 0:
        return DSL_ERR_BAD_PARAM
    ctx.R = q.ex_rows
    ctx.CB = q.ex_cb
    ctx.nb = (g.OH + ctx.R - 1) // ctx.R
    ctx.ncb = (q.Cout + ctx.CB - 1) // ctx.CB
    need = xdw_ws_floats(g, ctx.R, ctx.CB, q.kc, q.nc, base.k.nr, &ctx.pad_floats, &ctx.e_floats)
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if ctx.ws == NULL or need * 4 > q.ws_bytes:
        return DSL_ERR_BAD_PARAM
    base.M = q.Cout
    base.N = g.H * g.W
    base.K = q.K
    base.mc = q.mc
    base.kc = q.kc
    base.nc = q.nc
    base.a_kind = F32_GEMM_A_PACKED
    base.rsa = 0
    base.csa = 0
    base.b_kind = F32_GEMM_B_STRIDED
    base.rsb = g.H * g.W
    base.csb = 1
    base.conv.x = NULL
    base.alpha = 1.0
    base.beta = 0.0
    base.d = NULL
    base.rsd = 0
    base.csd = 0
    base.act = <int>q.ex_act
    base.act_a = q.ex_act_a
    base.act_b = q.ex_act_b
    base.bias_mode = F32_GEMM_BIAS_ROW if q.ex_bias_slot >= 0 else F32_GEMM_BIAS_NONE
    base.bias = NULL
    items = q.images * ctx.nb * ctx.ncb
    nth = dsl_threads_for(q.images * (q.Cout * g.H * g.W * (q.K + g.KH * g.KW)), MIN_MACS_PER_THREAD, nt)
    if nth > items:
        nth = <int>items
    f32_gemm_hits(ex, &base.k, 1, base.act != 0)
    dsl_hit(ex, DSL_KV_DWCONV, form)
    ctx.act_form = dsl_kv_form(DSL_KV_UNARY, <int>q.level, ex.cap)
    if q.act != 0:
        dsl_hit(ex, DSL_KV_UNARY, ctx.act_form)
    ctx.s = s
    ctx.p = p
    ctx.g = g
    ctx.base = &base
    ctx.fn = f32_dwconv_select(form)
    run_ranges(ex, xdw_range, &ctx, items, nth)
    return DSL_OK


cdef int run_dwconv(const dsl_step* s, char** p, const dsl_exec* ex) noexcept nogil:
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_dw_geom g
    cdef dw_ctx ctx
    cdef int64_t planes = q.images * q.Cin, hp, wp
    cdef int nt = cap_threads(q, ex.nt), nth, form
    if q.level < 0 or q.level > 2 or q.Cin != q.Cout or q.Cin != q.groups:
        return DSL_ERR_BAD_PARAM
    form = dsl_kv_form(DSL_KV_DWCONV, <int>q.level, ex.cap)
    g.H = q.H
    g.W = q.W
    g.OH = q.OH
    g.OW = q.OW
    g.KH = q.KH
    g.KW = q.KW
    g.SH = q.SH
    g.SW = q.SW
    g.PH = q.PH
    g.PW = q.PW
    g.DH = q.DH
    g.DW = q.DW
    if g.SH <= 0 or g.SW <= 0 or planes <= 0:
        return DSL_OK if planes == 0 else DSL_ERR_BAD_PARAM
    if q.ex_rows > 0:  # a 1x1 conv fused in front (X holds its input)
        if g.PH < 0 or g.PW < 0 or g.KH * g.KW <= 0 or g.KH * g.KW > 64 or g.OH <= 0 or g.OW <= 0:
            return DSL_ERR_BAD_PARAM
        return run_expand_dw(s, p, ex, &g, form)
    f32_dwconv_padded_dims(&g, &hp, &wp)
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if ctx.ws == NULL or hp * wp * 4 > q.ws_bytes or g.PH < 0 or g.PW < 0:
        return DSL_ERR_BAD_PARAM
    # work per plane: its taps and the copy into the padded buffer (a 14 x 14 -> 7 x 7
    # stride-2 plane spends as long on the copy as on its 441 MACs)
    nth = dsl_threads_for(planes * (g.OH * g.OW * g.KH * g.KW + g.H * g.W), MIN_MACS_PER_THREAD, nt)
    if nth > planes:
        nth = <int>planes
    dsl_hit(ex, DSL_KV_DWCONV, form)
    ctx.act_form = dsl_kv_form(DSL_KV_UNARY, <int>q.level, ex.cap)
    if q.act != 0:
        dsl_hit(ex, DSL_KV_UNARY, ctx.act_form)
    ctx.s = s
    ctx.p = p
    ctx.g = &g
    ctx.fn = f32_dwconv_select(form)
    run_ranges(ex, dw_range, &ctx, planes, nth)
    return DSL_OK


# --------------------------------------------------------------------------------------
# ConvTranspose: GEMM into a per-thread column buffer, then col2im
# --------------------------------------------------------------------------------------

cdef struct convt_ctx:
    const dsl_step* s
    char** p
    const f32_gemm_desc* base
    char* ws
    int64_t wsz


cdef inline void fill_f32(float* x, int64_t n, float v) noexcept nogil:
    cdef int64_t k
    for k in range(n):
        x[k] = v


cdef int64_t convt_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Work items (image, group, chunk of output channels) [lo, hi)."""
    cdef const convt_ctx* x = <const convt_ctx*>vctx
    cdef const dsl_step* s = x.s
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_gemm_desc d
    cdef int64_t it, n, g, ch, co0, nco, k, G = q.groups, nchunks = q.nchunks, cw = q.co_chunk
    cdef int64_t Cin = q.Cin, Cout = q.Cout, H = q.H, W = q.W
    cdef int64_t OH = q.OH, OW = q.OW, KHW = q.KH * q.KW
    cdef int64_t cig = Cin // G, cog = Cout // G, ohw = OH * OW
    cdef int64_t mp = (cw * KHW + x.base.k.mr - 1) // x.base.k.mr * x.base.k.mr
    cdef float* col = <float*>(x.ws + chunk * x.wsz)
    cdef float* gws = col + q.col_floats
    cdef float* y
    cdef const float* bias = slot_ptr(s, x.p, q.bias_slot)
    cdef float bv
    for it in range(lo, hi):
        n = it // (G * nchunks)
        g = (it // nchunks) % G
        ch = it % nchunks
        co0 = ch * cw
        nco = cog - co0 if cog - co0 < cw else cw
        memcpy(&d, x.base, sizeof(f32_gemm_desc))
        d.M = nco * KHW
        d.a_kind = F32_GEMM_A_PACKED
        d.a = <const float*>x.p[s.t[1]] + (g * nchunks + ch) * mp * d.K
        d.b_kind = F32_GEMM_B_STRIDED
        d.b = <const float*>x.p[s.t[0]] + (n * Cin + g * cig) * H * W
        d.rsb = H * W
        d.csb = 1
        d.c = col
        d.rsc = H * W
        f32_gemm_range(&d, 0, d.M, 0, d.N, gws)
        y = <float*>x.p[s.t[2]] + (n * Cout + g * cog + co0) * ohw
        for k in range(nco):
            bv = bias[g * cog + co0 + k] if bias != NULL else 0.0
            fill_f32(y + k * ohw, ohw, bv)
        f32_col2im_add(col, nco, H, W, q.KH, q.KW, q.SH, q.SW, q.PH, q.PW, q.DH, q.DW, OH, OW, y)
        dsl_act_row(x.base.k.act_form, <int>q.act, y, nco * ohw, q.act_a, q.act_b)
    return 0


cdef int run_convt(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_gemm_desc base
    cdef convt_ctx ctx
    cdef int rc = fill_header(s, p, x.cap, &base)
    cdef int nt = cap_threads(q, x.nt), nth
    cdef int64_t items
    if rc != DSL_OK:
        return rc
    if q.groups <= 0 or q.co_chunk <= 0 or q.nchunks <= 0 or q.SH <= 0 or q.SW <= 0:
        return DSL_ERR_BAD_PARAM
    # the GEMM part has no epilogue: bias and activation come after col2im
    base.alpha = 1.0
    base.bias_mode = F32_GEMM_BIAS_NONE
    base.bias = NULL
    base.d = NULL
    base.act = 0
    base.a_kind = F32_GEMM_A_PACKED
    base.b_kind = F32_GEMM_B_STRIDED
    if (f32_gemm_ws_floats(&base) + q.col_floats) * 4 > q.ws_bytes or q.col_floats < base.M * base.N:
        return DSL_ERR_BAD_PARAM
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if ctx.ws == NULL:
        return DSL_ERR_BAD_PARAM
    items = q.images * q.groups * q.nchunks
    if items <= 0:
        return DSL_OK
    nth = dsl_threads_for(items * base.M * base.N * base.K, MIN_MACS_PER_THREAD, nt)
    if nth > items:
        nth = <int>items
    f32_gemm_hits(x, &base.k, 1, q.act != 0)
    ctx.s = s
    ctx.p = p
    ctx.base = &base
    run_ranges(x, convt_range, &ctx, items, nth)
    return DSL_OK


# --------------------------------------------------------------------------------------
# Winograd F(2x2, 3x3): input transform, 16 GEMMs, output transform per block of tiles
# --------------------------------------------------------------------------------------

cdef struct wino_ctx:
    const dsl_step* s
    char** p
    const f32_gemm_desc* base
    const f32_wino_geom* g
    f32_wino_input_fn fin
    f32_wino_output_fn fout
    int64_t panels, nblk, maxp, mp, parts
    char* ws
    int64_t wsz


cdef int64_t wino_range(const void* vctx, int64_t lo, int64_t hi, int chunk) noexcept nogil:
    """Work items (image, block of tiles, part of the output channels) [lo, hi)."""
    cdef const wino_ctx* x = <const wino_ctx*>vctx
    cdef const dsl_step* s = x.s
    cdef const dsl_gemm_params* q = P(s)
    cdef const f32_wino_geom* g = x.g
    cdef f32_gemm_desc d
    cdef int NR = x.base.k.nr
    cdef int64_t it, n, blk, p0, p1, t0, t1, xi, co0, co1, T = g.TH * g.TW
    cdef int64_t vstride = x.maxp * NR * g.Cin, ldm = x.maxp * NR, mstride = g.Cout * ldm
    cdef float* v = <float*>(x.ws + chunk * x.wsz)
    cdef float* m = v + 16 * vstride
    cdef float* scr = m + 16 * mstride
    cdef const float* u = <const float*>x.p[s.t[1]]
    cdef const float* bias = slot_ptr(s, x.p, q.bias_slot)
    cdef const float* dd = slot_ptr(s, x.p, q.d_slot)
    cdef int64_t plane_in = g.Cin * g.H * g.W, plane_out = g.Cout * g.OH * g.OW
    for it in range(lo, hi):
        n = it // (x.nblk * x.parts)
        blk = (it // x.parts) % x.nblk
        f32_split(g.Cout, x.base.k.mr, <int>(it % x.parts), <int>x.parts, &co0, &co1)
        p0 = x.panels * blk // x.nblk
        p1 = x.panels * (blk + 1) // x.nblk
        t0 = p0 * NR
        t1 = p1 * NR if p1 * NR < T else T
        if t0 >= t1 or co0 >= co1:
            continue
        x.fin(g, <const float*>x.p[s.t[0]] + n * plane_in, t0, t1, NR, v, vstride, scr)
        memcpy(&d, x.base, sizeof(f32_gemm_desc))
        for xi in range(16):
            d.a = u + xi * x.mp * g.Cin
            d.b = v + xi * vstride
            d.c = m + xi * mstride
            f32_gemm_range(&d, co0, co1, 0, t1 - t0, NULL)
        x.fout(g, m, mstride, ldm, t0, t1, co0, co1, bias,
               dd + n * plane_out if dd != NULL else NULL, <float*>x.p[s.t[2]] + n * plane_out,
               scr)
    return 0


cdef int run_wino(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    cdef const dsl_gemm_params* q = P(s)
    cdef f32_gemm_desc base
    cdef f32_wino_geom g
    cdef wino_ctx ctx
    cdef int rc = fill_header(s, p, x.cap, &base)
    cdef int nt = cap_threads(q, x.nt), nth
    cdef int64_t items, nblk, maxp, parts, wsf
    if rc != DSL_OK:
        return rc
    if (q.groups != 1 or q.KH != 3 or q.KW != 3 or q.SH != 1 or q.SW != 1 or q.DH != 1
            or q.DW != 1 or q.Cin <= 0 or q.Cout <= 0 or q.H <= 0 or q.W <= 0 or q.OH <= 0
            or q.OW <= 0 or q.PH < 0 or q.PW < 0 or q.PH > 2 or q.PW > 2
            or q.OH > q.H + 2 or q.OW > q.W + 2 or q.M != q.Cout or q.K != q.Cin
            or q.images <= 0):
        return DSL_ERR_BAD_PARAM
    if q.act != DSL_ACT_NONE and q.act != DSL_ACT_RELU and q.act != DSL_ACT_CLIP:
        return DSL_ERR_BAD_PARAM
    g.Cin = q.Cin
    g.H = q.H
    g.W = q.W
    g.Cout = q.Cout
    g.OH = q.OH
    g.OW = q.OW
    g.PH = q.PH
    g.PW = q.PW
    g.TH = (q.OH + 1) // 2
    g.TW = (q.OW + 1) // 2
    if q.N != g.TH * g.TW:
        return DSL_ERR_BAD_PARAM
    g.beta = q.beta
    g.clamp = q.act != DSL_ACT_NONE
    g.lo = 0.0 if q.act == DSL_ACT_RELU else q.act_a
    g.hi = q.act_b
    if q.act == DSL_ACT_RELU:
        g.hi = INFINITY
    # the layout the lowering reserved: blocks, panels per block, workspace
    f32_wino_layout(<int>q.level, q.images, q.Cin, q.Cout, g.TH, g.TW, <int>q.ws_threads,
                    &nblk, &maxp, &parts, &wsf)
    if nblk != q.nchunks or maxp != q.co_chunk or parts != q.co_parts or wsf * 4 > q.ws_bytes:
        return DSL_ERR_BAD_PARAM
    ctx.ws = <char*>slot_ptr(s, p, q.ws_slot)
    ctx.wsz = q.ws_bytes
    if ctx.ws == NULL:
        return DSL_ERR_BAD_PARAM
    # the 16 GEMMs: U_xi (packed A) x V_xi (packed B), no epilogue
    base.a_kind = F32_GEMM_A_PACKED
    base.b_kind = F32_GEMM_B_PACKED
    base.alpha = 1.0
    base.bias_mode = F32_GEMM_BIAS_NONE
    base.bias = NULL
    base.d = NULL
    base.act = 0
    base.rsc = maxp * base.k.nr
    base.N = maxp * base.k.nr
    items = q.images * nblk * parts
    nth = dsl_threads_for(q.images * nblk * 16 * base.M * base.N * base.K, MIN_MACS_PER_THREAD,
                          nt)
    if nth > items:
        nth = <int>items
    f32_gemm_hits(x, &base.k, 1, 0)
    f32_wino_select(base.k.tile_form, &ctx.fin, &ctx.fout)
    ctx.s = s
    ctx.p = p
    ctx.base = &base
    ctx.g = &g
    ctx.panels = (g.TH * g.TW + base.k.nr - 1) // base.k.nr
    ctx.nblk = nblk
    ctx.maxp = maxp
    ctx.parts = parts
    ctx.mp = (base.M + base.k.mr - 1) // base.k.mr * base.k.mr
    run_ranges(x, wino_range, &ctx, items, nth)
    return DSL_OK


cdef int run_gemm(const dsl_step* s, char** p, const dsl_exec* x) noexcept nogil:
    if s.op == DSL_OP_GEMM or s.op == DSL_OP_MATMUL or s.op == DSL_OP_CONV:
        return run_gemm_like(s, p, x)
    if s.op == DSL_OP_DWCONV:
        return run_dwconv(s, p, x)
    if s.op == DSL_OP_CONVT:
        return run_convt(s, p, x)
    if s.op == DSL_OP_WINO:
        return run_wino(s, p, x)
    return DSL_ERR_UNKNOWN_OP


# --------------------------------------------------------------------------------------
# Layouts for the lowerings (ops/gemm.py, ops/conv.py): computed by the C code that reads
# them, never rewritten in Python.
# --------------------------------------------------------------------------------------

def geometry(int level):
    """(MR, NR) of the register tile of plan level ``level`` (0 generic, 1 avx2, 2 avx512)."""
    cdef int mr, nr
    if level < 0 or level > 2:
        raise ValueError(f"unknown ISA level {level}")
    f32_gemm_geometry(level, &mr, &nr)
    return mr, nr


def blocking(int level, int64_t M, int64_t N, int64_t K, bint a_runtime, bint b_runtime):
    """(mc, kc, nc, workspace floats per thread) of one GEMM shape."""
    cdef int64_t mc, kc, nc, ws
    if level < 0 or level > 2:
        raise ValueError(f"unknown ISA level {level}")
    f32_gemm_blocking(level, M, N, K, a_runtime, b_runtime, &mc, &kc, &nc, &ws)
    return int(mc), int(kc), int(nc), int(ws)


cdef f32_dw_geom dw_geom_of(int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                           int64_t SH, int64_t SW, int64_t DH, int64_t DW):
    """A depthwise geometry without pads (the workspace sizes do not depend on them)."""
    cdef f32_dw_geom g
    g.H = H
    g.W = W
    g.OH = OH
    g.OW = OW
    g.KH = KH
    g.KW = KW
    g.SH = SH
    g.SW = SW
    g.DH = DH
    g.DW = DW
    g.PH = 0
    g.PW = 0
    return g


def expand_dw_workspace_floats(int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH,
                               int64_t KW, int64_t SH, int64_t SW, int64_t DH, int64_t DW,
                               int64_t rows, int64_t cb, int64_t kc, int64_t nc, int level):
    """Floats of the per-thread workspace of a fused 1x1 + depthwise DWCONV step."""
    cdef f32_dw_geom g = dw_geom_of(H, W, OH, OW, KH, KW, SH, SW, DH, DW)
    cdef int64_t pf, ef
    cdef int mr, nr
    f32_gemm_geometry(level, &mr, &nr)
    return int(xdw_ws_floats(&g, rows, cb, kc, nc, nr, &pf, &ef))


def dwconv_workspace_floats(int64_t H, int64_t W, int64_t OH, int64_t OW, int64_t KH, int64_t KW,
                            int64_t SH, int64_t SW, int64_t DH, int64_t DW):
    """Floats of the zero-bordered plane buffer the depthwise kernel needs per thread."""
    cdef f32_dw_geom g = dw_geom_of(H, W, OH, OW, KH, KW, SH, SW, DH, DW)
    cdef int64_t hp, wp
    f32_dwconv_padded_dims(&g, &hp, &wp)
    return int(hp * wp)


def pack_a(w, int level):
    """(M, K) constant -> ceil(M/MR) micro-panels of K x MR (rows past M zero), the layout
    the tiles read a prepacked A in, packed by the kernels' own packer."""
    import numpy as np
    cdef int mr, nr
    cdef const float[:, ::1] src = np.ascontiguousarray(w, dtype=np.float32)
    cdef int64_t M = src.shape[0], K = src.shape[1]
    f32_gemm_geometry(level, &mr, &nr)
    npan = max(1, (M + mr - 1) // mr)
    out = np.zeros((npan, K, mr), dtype=np.float32)
    cdef float[:, :, ::1] dst = out
    if M > 0 and K > 0:
        f32_gemm_pack_a__generic(&src[0, 0], K, 1, 0, M, 0, K, mr, &dst[0, 0, 0])
    return out


def pack_b(w, int level):
    """(K, N) constant -> ceil(N/NR) micro-panels of K x NR (columns past N zero), the
    layout the tiles read a prepacked B in, packed by the kernels' own packer."""
    import numpy as np
    cdef int mr, nr
    cdef const float[:, ::1] src = np.ascontiguousarray(w, dtype=np.float32)
    cdef int64_t K = src.shape[0], N = src.shape[1]
    f32_gemm_geometry(level, &mr, &nr)
    npan = max(1, (N + nr - 1) // nr)
    out = np.zeros((npan, K, nr), dtype=np.float32)
    cdef float[:, :, ::1] dst = out
    if N > 0 and K > 0:
        f32_gemm_pack_b__generic(&src[0, 0], N, 1, 0, K, 0, N, nr, &dst[0, 0, 0])
    return out


def bf16_pack_a(w):
    """(M, K) constant -> csrc/bf16_gemm.h's A layout (uint16 bfloat16, rounded to nearest
    even; rows past M and k past K zero), by the kernels' own packer."""
    import numpy as np
    cdef const float[:, ::1] src = np.ascontiguousarray(w, dtype=np.float32)
    cdef int64_t M = src.shape[0], K = src.shape[1]
    out = np.zeros(max(1, bg_packed_elems(M, K)), dtype=np.uint16)
    cdef unsigned short[::1] dst = out
    if M > 0 and K > 0:
        bg_pack_a__generic(&src[0, 0], K, 1, 0, M, K, &dst[0])
    return out


def bf16_pack_b(w):
    """(K, N) constant -> csrc/bf16_gemm.h's B layout (k pairs interleaved per column)."""
    import numpy as np
    cdef const float[:, ::1] src = np.ascontiguousarray(w, dtype=np.float32)
    cdef int64_t K = src.shape[0], N = src.shape[1]
    out = np.zeros(max(1, bg_packed_elems(N, K)), dtype=np.uint16)
    cdef unsigned short[::1] dst = out
    if N > 0 and K > 0:
        bg_pack_b__generic(&src[0, 0], N, 1, 0, N, K, &dst[0])
    return out


def bf16_packed_elems(int64_t rows, int64_t K):
    """uint16 elements of one packed bfloat16 operand of ``rows`` rows (M or N) over K."""
    return int(bg_packed_elems(rows, K))


def bf16_workspace_bytes(int64_t rows, int64_t K, int64_t both_n=-1):
    """Workspace bytes per thread of a bfloat16 GEMM whose run-time operand has ``rows``
    rows (GEMM: M, CONV: N); a MatMul (both operands at run time) passes its N as
    ``both_n``."""
    if both_n >= 0:
        return int(bg_ws_bytes_both(rows, both_n, K))
    return int(bg_ws_bytes(rows, K))


def bf16_window_workspace_bytes(dict geom, int64_t cp):
    """Workspace bytes per thread of a windowed bf16 conv (bf16 == 2) of NCHW geometry
    ``geom`` (ops/gemm.py conv_geometry_fields) with ``cp`` padded channels."""
    cdef bg_win_geom g
    g.x = NULL
    g.Cin = geom["Cin"]
    g.Cp = cp
    g.H = geom["H"]
    g.W = geom["W"]
    g.KH = geom["KH"]
    g.KW = geom["KW"]
    g.PH = geom["PH"]
    g.PW = geom["PW"]
    g.DH = geom["DH"]
    g.DW = geom["DW"]
    g.OH = geom["OH"]
    g.OW = geom["OW"]
    g.SH = geom["SH"]
    g.SW = geom["SW"]
    g.Wp = g.OW + ((g.KW - 1) * g.DW) // g.SW
    return int(bg_win_ws_bytes(&g, g.OH * g.Wp))


def bf16_peak_gflops(bint amx=True, int64_t iters=2000000):
    """This thread's bfloat16 multiply-add throughput (GFLOP/s, fp32 accumulation): AMX
    tdpbf16ps (``amx``, where bf16_amx_available) or AVX-512 BF16 vdpbf16ps, on operands in
    registers / L1: the ceiling the bf16 kernels are measured against."""
    import time
    cdef float sink = 0
    cdef double flops = 0
    if amx and not bg_amx_usable():
        raise ValueError("no AMX-BF16 on this CPU (or the OS refused the tile data)")
    if not amx and not dsl_cpu_has_avx512bf16():
        raise ValueError("no AVX-512 BF16 on this CPU")
    t0 = time.perf_counter()
    with nogil:
        flops = bg_amx_peak(iters, &sink) if amx else bg_dpbf16_peak(iters // 4, &sink)
    return flops / (time.perf_counter() - t0) / 1e9


def bf16_amx_available():
    """Whether this CPU and OS run the bfloat16 GEMM on AMX tiles."""
    return bool(bg_amx_usable())


def set_bf16_amx(bint on):
    """Let (True) or keep (False) the bfloat16 GEMM off AMX (tests run both); returns the
    previous setting."""
    global bg_amx_enabled
    old = bool(bg_amx_enabled)
    bg_amx_enabled = 1 if on else 0
    return old


def bf16_amx_runs():
    """Rectangles the bfloat16 GEMM has run on AMX since import (tests)."""
    return int(bg_amx_runs)


def set_min_work(int64_t macs):
    """Work (multiply-adds) each extra thread needs; returns the previous value. Tests set
    it to 1 so that small shapes exercise the thread partitioning."""
    global MIN_MACS_PER_THREAD
    old = MIN_MACS_PER_THREAD
    MIN_MACS_PER_THREAD = max(1, macs)
    return old


def winograd_layout(int level, int64_t images, int64_t Cin, int64_t Cout, int64_t OH, int64_t OW,
                    int threads):
    """(blocks per image, most B panels per block, output-channel parts per block,
    workspace floats per thread) of a Winograd F(2x2, 3x3) step (csrc/f32_winograd.h
    f32_wino_layout)."""
    cdef int64_t nblk, maxp, parts, ws
    if level < 0 or level > 2:
        raise ValueError(f"unknown ISA level {level}")
    f32_wino_layout(level, images, Cin, Cout, (OH + 1) // 2, (OW + 1) // 2, threads, &nblk,
                    &maxp, &parts, &ws)
    return int(nblk), int(maxp), int(parts), int(ws)
