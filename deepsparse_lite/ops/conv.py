"""Conv and ConvTranspose (NC + spatial dims) on the fp32 GEMM kernels.

Fast paths (1-D and 2-D, constant weights and bias): Conv is a GEMM per (image, group) with
the weights as the packed A operand and output pixels as the vectorised N dimension, so
results land in NCHW directly: ``Y[co, p] = W[co, k] · col[k, p]``. A 1x1 stride-1 unpadded
conv reads X as B directly; otherwise im2col is fused into the kernel's B packing.
Depthwise convs (groups == C_in == C_out) use a direct kernel. ConvTranspose is GEMM
(W^T · X) into a column buffer followed by col2im.
A 3-D Conv with constant weights folds its depth taps into the channels (one COPY per
depth tap) and runs the fast 2-D CONV over N * OD images, then transposes the output back
(one COPY). Everything else (runtime weights or bias, 4-D and higher, every ConvTranspose
outside the 2-D kernel) goes through ops/im2col.py: Conv as an im2col of COPY steps, then
the CONV sub-op as a 1x1 conv (constant weights) or the batched MATMUL (runtime weights);
ConvTranspose as that GEMM then col2im. Padding (explicit or auto_pad) is resolved here for
every rank.
Bias (input 2 and/or a fused ``_bias``) and the fused activation (``_act``) run in the
epilogue.
Col2Im is ops/im2col.py's col2im: one COPY per block tap into zero-filled slots, then a
REDUCE sum over the taps.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np

from deepsparse_lite.config import winograd_mode
from deepsparse_lite.ops.base import Act, OpDef, UnsupportedModelError, ints_attr, register
from deepsparse_lite.ops.gemm import (BIAS_ROW, GemmOp, act_of, bf16_blocking, blocking, conv_geometry_fields,
                                      emit_gemm_step, geometry, pack_a, pack_b, require_f32,
                                      _kgemm, _round_up)
from deepsparse_lite.ops.base import emit_copy, emit_fill
from deepsparse_lite.ops.sparse import note
from deepsparse_lite.ops.im2col import (conv_runs, convt_runs, emit_col2im, lower_conv_im2col,
                                        lower_convt_col2im)

# Column buffer of one ConvTranspose work item (floats): bounds the per-thread workspace.
CONVT_COL_FLOATS = 1 << 20
#: Winograd F(2x2, 3x3) is kept only when timed this much faster than the direct conv
#: (its rounding differs from the direct sum's: the tie goes to the direct conv)
WINOGRAD_BIAS = 1.05
#: smaller convs are not timed for Winograd (a few microseconds: the timing is noise and
#: the transforms' fixed costs dominate)
WINOGRAD_MIN_CHANNELS = 8
WINOGRAD_MIN_MACS = 1 << 20
#: small images take the pixels as the tile's rows when their columns would fill less than
#: this share of the column tiles (ops/conv.py pixel_rows_better)
PIXEL_ROWS_BELOW = 0.85
PIXEL_ROWS_MAX = 256
PIXEL_ROWS_CHANNEL_BLOCK = 256
#: G of F(2x2, 3x3): U = G g G^T (csrc/f32_winograd.h has B and A)
_WINO_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def _spatial_attrs(node, nd: int, kernel: List[int]):
    strides = ints_attr(node, "strides") or [1] * nd
    dil = ints_attr(node, "dilations") or [1] * nd
    if len(strides) != nd or len(dil) != nd or min(strides) < 1 or min(dil) < 1:
        raise UnsupportedModelError(f"{node.describe()}: bad strides {strides} / dilations {dil}")
    k_attr = ints_attr(node, "kernel_shape")
    if k_attr is not None and list(k_attr) != list(kernel):
        raise UnsupportedModelError(f"{node.describe()}: kernel_shape {k_attr} != weight shape {kernel}")
    return strides, dil


def _auto_pad(node) -> str:
    ap = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(ap, bytes):
        ap = ap.decode()
    return str(ap or "NOTSET")


def conv_geometry(node, x_shape, w_shape):
    """(spatial out, pads_begin, strides, dilations, kernel) of a Conv node."""
    nd = len(x_shape) - 2
    kernel = [int(k) for k in w_shape[2:]]
    strides, dil = _spatial_attrs(node, nd, kernel)
    ins = [int(v) for v in x_shape[2:]]
    ext = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    ap = _auto_pad(node)
    if ap in ("SAME_UPPER", "SAME_LOWER"):
        out = [math.ceil(i / s) for i, s in zip(ins, strides)]
        total = [max(0, (o - 1) * s + e - i) for o, s, e, i in zip(out, strides, ext, ins)]
        begin = [t // 2 if ap == "SAME_UPPER" else t - t // 2 for t in total]
    elif ap == "VALID":
        begin = [0] * nd
        out = [(i - e) // s + 1 for i, e, s in zip(ins, ext, strides)]
    elif ap == "NOTSET":
        pads = ints_attr(node, "pads") or [0] * (2 * nd)
        if len(pads) != 2 * nd:
            raise UnsupportedModelError(f"{node.describe()}: pads {pads} for {nd} spatial dims")
        begin = pads[:nd]
        out = [(i + pads[k] + pads[k + nd] - ext[k]) // strides[k] + 1 for k, i in enumerate(ins)]
    else:
        raise UnsupportedModelError(f"{node.describe()}: unknown auto_pad '{ap}'")
    if min(out) < 1:
        raise UnsupportedModelError(f"{node.describe()}: empty output {out} for input {ins}")
    return out, begin, strides, dil, kernel


def convt_geometry(node, x_shape, w_shape):
    """(spatial out, pads_begin, strides, dilations, kernel) of a ConvTranspose node."""
    nd = len(x_shape) - 2
    kernel = [int(k) for k in w_shape[2:]]
    strides, dil = _spatial_attrs(node, nd, kernel)
    ins = [int(v) for v in x_shape[2:]]
    opad = ints_attr(node, "output_padding") or [0] * nd
    full = [s * (i - 1) + op + (k - 1) * d + 1 for s, i, op, k, d in zip(strides, ins, opad, kernel, dil)]
    ap = _auto_pad(node)
    out_attr = ints_attr(node, "output_shape")
    pads = ints_attr(node, "pads")
    if out_attr is not None:
        out = list(out_attr[-nd:])
        total = [f - o for f, o in zip(full, out)]
        begin = [t // 2 if ap == "SAME_UPPER" else t - t // 2 for t in total]
    elif ap in ("SAME_UPPER", "SAME_LOWER"):
        out = [i * s for i, s in zip(ins, strides)]
        total = [f - o for f, o in zip(full, out)]
        begin = [t // 2 if ap == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        pads = pads if (pads is not None and ap == "NOTSET") else [0] * (2 * nd)
        if len(pads) != 2 * nd:
            raise UnsupportedModelError(f"{node.describe()}: pads {pads} for {nd} spatial dims")
        begin = pads[:nd]
        out = [f - pads[k] - pads[k + nd] for k, f in enumerate(full)]
    if min(out) < 1:
        raise UnsupportedModelError(f"{node.describe()}: empty output {out}")
    return out, begin, strides, dil, kernel


def _bias(node, b, ins, cout: int):
    """(constant bias, runtime bias Tensor): input 2 and a fused ``_bias`` summed when they
    are constants; a runtime input 2 is returned as its Tensor (None when absent)."""
    total, runtime = None, None
    names = set()
    for k in range(2, len(ins)):
        v = ins[k]
        if v is None or v.name in names or v.name == node.attrs.get("_addend"):
            continue
        names.add(v.name)
        if int(np.prod(v.shape, dtype=np.int64)) != cout:
            raise UnsupportedModelError(f"{node.describe()}: bias of shape {v.shape} for {cout} channels")
        require_f32(node, v)
        if v.const is None:
            if runtime is not None:
                raise UnsupportedModelError(f"{node.describe()}: two runtime biases")
            runtime = b.value(v.name)
            continue
        arr = np.asarray(v.const, np.float32).reshape(-1)
        total = arr.copy() if total is None else total + arr
    name = node.attrs.get("_bias")
    if name and name not in names:
        v = b.graph_values.get(name)
        if v is None or v.const is None:
            raise UnsupportedModelError(f"{node.describe()}: fused bias '{name}' is not a constant")
        arr = np.asarray(v.const, np.float32).reshape(-1)
        total = arr.copy() if total is None else total + arr
    if runtime is not None and total is not None:
        raise UnsupportedModelError(f"{node.describe()}: a runtime bias and a constant bias together")
    return total, runtime


def _check_inputs(node, ins, transpose: bool):
    X, W = ins[0], ins[1]
    require_f32(node, X, W)
    if X.rank < 3 or W.rank != X.rank:
        raise UnsupportedModelError(f"{node.describe()}: input rank {X.rank} and weight rank {W.rank} "
                                    f"(expected N, C and at least one spatial dim in both)")
    G = int(node.attrs.get("group", 1))
    cin = X.shape[1]
    if G < 1 or cin % G:
        raise UnsupportedModelError(f"{node.describe()}: {cin} channels do not split into {G} groups")
    if not transpose and (W.shape[1] * G != cin or W.shape[0] % G):
        raise UnsupportedModelError(f"{node.describe()}: weight {W.shape} does not match {cin} channels / {G} groups")
    if transpose and W.shape[0] != cin:
        raise UnsupportedModelError(f"{node.describe()}: weight {W.shape} does not match {cin} channels")
    return X, W, G


@register("Conv")
class Conv(OpDef):
    def infer(self, node, ins):
        X, W = ins[0], ins[1]
        require_f32(node, X, W)
        out, *_ = conv_geometry(node, X.shape, W.shape)
        return [((X.shape[0], W.shape[0]) + tuple(out), np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        if node.attrs.get("_expand"):
            _lower_expand_dw(node, b, ins, outs)
            return
        X, W, G = _check_inputs(node, ins, transpose=False)
        out_sp, pads, strides, dil, kernel = conv_geometry(node, X.shape, W.shape)
        cout = W.shape[0]
        act = act_of(node)
        bias, bias_rt = _bias(node, b, ins, cout)
        y = b.output(outs[0].name, outs[0].shape, np.float32)
        x = b.value(X.name)
        addend = node.attrs.get("_addend")  # a fused residual: Y = act(W*X + b + D)
        d = b.value(addend) if addend else None
        if W.const is not None and bias_rt is None and X.rank <= 4:
            _conv_fast(node, b, x, y, X.shape[0], X.shape[1], X.shape[2:], cout, out_sp, kernel,
                       strides, pads, dil, G, np.asarray(W.const, np.float32), bias, act, d)
        elif W.const is not None and bias_rt is None and X.rank == 5 and d is None:
            _conv3d_depth_folded(node, b, x, y, X.shape, outs[0].shape, kernel, strides, pads, dil,
                                 G, np.asarray(W.const, np.float32), bias, act)
        else:
            lower_conv_im2col(node, b, x=x, y=y, x_shape=X.shape,
                              out_shape=outs[0].shape, groups=G, kernel=kernel, strides=strides,
                              dil=dil, pads=pads, w_const=W.const,
                              w=None if W.const is not None else b.value(W.name),
                              bias_const=bias, bias=bias_rt, act=act, addend=d)


#: bytes of expanded rows per thread in a fused 1x1 + depthwise step (L2-sized)
XDW_BUDGET = 384 * 1024


def xdw_erows(H: int, rows: int, KH: int, SH: int, DH: int) -> int:
    """Expanded rows a band of ``rows`` output rows reads (at most the image's; the C
    side's xdw_erows in kernels/gemm.pyx)."""
    return min(H, (rows - 1) * SH + (KH - 1) * DH + 1)


def xdw_bands(ce: int, H: int, W: int, OH: int, KH: int, SH: int, DH: int, mr: int, images: int,
              threads: int, budget: Optional[int] = None):
    """(output rows per band, channels per block) of a fused 1x1 + depthwise step: the
    expanded rows of a band's channel block within ``budget`` bytes, the fewest expanded
    rows recomputed (bands overlap by KH - SH rows), and at least two work items per
    thread where the image allows; channel blocks are multiples of MR."""
    budget = XDW_BUDGET if budget is None else budget
    cands, cb = [], _round_up(ce, mr)
    erows = lambda rows: xdw_erows(H, rows, KH, SH, DH)  # noqa: E731
    while True:
        cands.append(cb)
        if cb <= 4 * mr:
            break
        cb = _round_up((cb + 1) // 2, mr)
    best = None
    for cb in cands:
        rows = OH
        while rows > 1 and cb * erows(rows) * W * 4 > budget:
            rows -= 1
        er = erows(rows)
        nb = -(-OH // rows)
        items = images * nb * -(-ce // cb)
        score = nb * er / max(H, 1) + (0.5 if items < 2 * threads else 0.0)
        if best is None or score < best[0] - 1e-9:
            best = (score, rows, cb)
    return best[1], best[2]


def _lower_expand_dw(node, b, ins, outs) -> None:
    """A 1x1 conv fused into the depthwise conv it feeds (compiler/passes.py
    fuse_expand_dw): inputs [X, Wd, Bd, W1, B1]; one DWCONV step computes the expanded
    channels band by band in each thread's workspace (kernels/gemm.pyx run_expand_dw)."""
    X, Wd, W1 = ins[0], ins[1], ins[3]
    require_f32(node, X, Wd, W1)
    if W1.const is None or Wd.const is None or X.rank != 4 or Wd.rank != 4 or W1.rank != 4:
        raise UnsupportedModelError(f"{node.describe()}: a fused 1x1 + depthwise conv needs constant 4-D weights")
    ce, cin = int(W1.shape[0]), int(W1.shape[1])
    if X.shape[1] != cin or tuple(W1.shape[2:]) != (1, 1) or Wd.shape[0] != ce or Wd.shape[1] != 1:
        raise UnsupportedModelError(f"{node.describe()}: fused weights {W1.shape} / {Wd.shape} do not match {X.shape}")
    e_shape = (X.shape[0], ce) + tuple(X.shape[2:])
    out_sp, pads, strides, dil, kernel = conv_geometry(node, e_shape, Wd.shape)
    bias, bias_rt = _bias(node, b, ins[:3], ce)
    ex_bias, ex_rt = _bias(node, b, [None, None, ins[4]] if len(ins) > 4 else [None, None], ce)
    if bias_rt is not None or ex_rt is not None:
        raise UnsupportedModelError(f"{node.describe()}: runtime biases in a fused 1x1 + depthwise conv")
    geom = conv_geometry_fields(X.shape[0], ce, ce, X.shape[2:], ce, out_sp, kernel, strides, pads, dil)
    mr, nr = geometry(b.isa)
    rows, cb = xdw_bands(ce, geom["H"], geom["W"], geom["OH"], geom["KH"], geom["SH"], geom["DH"], mr,
                         geom["images"], b.max_threads)
    er = xdw_erows(geom["H"], rows, geom["KH"], geom["SH"], geom["DH"])
    mc, kc, nc, _ = blocking(b.isa, cb, er * geom["W"], cin, False, True)
    ws = _kgemm().expand_dw_workspace_floats(geom["H"], geom["W"], geom["OH"], geom["OW"], geom["KH"],
                                             geom["KW"], geom["SH"], geom["SW"], geom["DH"], geom["DW"],
                                             rows, cb, kc, nc, b.isa)
    x = b.value(X.name)
    y = b.output(outs[0].name, outs[0].shape, np.float32)
    khw = int(np.prod(kernel))
    tensors = [x, b.const(np.asarray(Wd.const, np.float32).reshape(ce, khw), name=f"{node.name}_dw"), y,
               b.const(pack_a(np.asarray(W1.const, np.float32).reshape(ce, cin), b.isa), name=f"{node.name}_expand")]
    ex_bias_slot = -1
    if ex_bias is not None:
        ex_bias_slot = len(tensors)
        tensors.append(b.const(ex_bias))
    ex_act = node.attrs.get("_ex_act", (0, 0.0, 0.0))  # the 1x1's (code, alpha, beta)
    emit_gemm_step(b, GemmOp.DWCONV, tensors, ce, geom["H"] * geom["W"], cin, mc=mc, kc=kc, nc=nc,
                   ws_floats=ws, act=act_of(node), bias=b.const(bias) if bias is not None else None,
                   bias_mode=BIAS_ROW, **geom, ex_slot=3, ex_bias_slot=ex_bias_slot, ex_act=ex_act[0],
                   ex_act_a=ex_act[1], ex_act_b=ex_act[2], ex_rows=rows, ex_cb=cb)
    note(b, path="expand+depthwise", expand_rows=rows, expand_channels=cb)


def _conv_fast(node, b, x, y, images, cin, x_sp, cout, out_sp, kernel, strides, pads, dil, G, w,
               bias, act, d=None, allow_sparse=True, allow_winograd=True) -> None:
    """The 1-D / 2-D kernels with weights ``w`` [cout, cin / G, *kernel] packed now: DWCONV
    for depthwise, else CONV (im2col fused into its B packing, or X read directly), or
    with groups == 1 the sparse SPMM_CONV when the per-layer choice (ops/sparse.py) says
    it is faster, or WINO (Winograd F(2x2, 3x3)) for an eligible 3x3 conv when chosen."""
    cig, cog = cin // G, cout // G
    khw = int(np.prod(kernel))
    geom = conv_geometry_fields(images, G, cin, x_sp, cout, out_sp, kernel, strides, pads, dil)
    bt = b.const(bias) if bias is not None else None
    if G == cin and G == cout:
        if d is not None:
            raise UnsupportedModelError(f"{node.describe()}: depthwise conv cannot take a fused addend")
        ws = _kgemm().dwconv_workspace_floats(geom["H"], geom["W"], geom["OH"], geom["OW"],
                                              geom["KH"], geom["KW"], geom["SH"], geom["SW"],
                                              geom["DH"], geom["DW"])
        emit_gemm_step(b, GemmOp.DWCONV, [x, b.const(w.reshape(cout, khw), name=f"{node.name}_dw"), y],
                       0, 0, 0, mc=0, kc=0, nc=0, ws_floats=ws, act=act, bias=bt,
                       bias_mode=BIAS_ROW, **geom)
        return
    M, K, N = cog, cig * khw, int(np.prod(out_sp))
    info = None
    if G == 1 and allow_sparse:
        from deepsparse_lite.ops import sparse as sp
        sp_bias = None if bias is None else np.asarray(bias, np.float32)
        in_shape = (int(images), int(cin)) + tuple(int(v) for v in x_sp)
        out_shape = (int(images), int(cout)) + tuple(int(v) for v in out_sp)
        same_d = d is not None

        def dense(bb, ins, out):
            _conv_fast(node, bb, ins[0], out, images, cin, x_sp, cout, out_sp, kernel, strides,
                       pads, dil, G, w, bias, act, ins[1] if same_d else None, allow_sparse=False)

        def sparse(bb, ins, out):
            sp.emit_sparse_conv(bb, ins[0], w, out, geom, act=act, bias=sp_bias,
                                d=ins[1] if same_d else None)

        use, info = sp.choose(b, "conv", (in_shape, out_shape, tuple(kernel), tuple(strides),
                                          tuple(pads), tuple(dil), same_d, int(act[0])),
                              w.reshape(cout, K), dense, sparse,
                              [in_shape] + ([out_shape] if same_d else []), out_shape)
        if use:
            sp.emit_sparse_conv(b, x, w, y, geom, act=act, bias=sp_bias, d=d)
            sp.note(b, path="sparse", **info)
            return
    direct = int(khw == 1 and all(s == 1 for s in strides) and all(p == 0 for p in pads)
                 and list(out_sp) == list(x_sp))
    if b.precision == "bf16" and bf16_window_eligible(G, cin, strides, khw, dil):
        # stride 1: B read from pair-interleaved windows of the input, K = (tap, channel)
        cp = _round_up(cin, 32)
        taps = khw
        w2 = np.zeros((cout, taps, cp), np.float32)
        w2[:, :, :cin] = w.reshape(cout, cin, taps).transpose(0, 2, 1)
        kg = _kgemm()
        packed = kg.bf16_pack_a(w2.reshape(cout, taps * cp))
        wsb = kg.bf16_window_workspace_bytes(geom, cp)
        emit_gemm_step(b, GemmOp.CONV, [x, b.const(packed, name=f"{node.name}_bf16w"), y],
                       M, N, taps * cp, mc=_round_up(M, 32), kc=taps * cp, nc=_round_up(N, 32),
                       ws_floats=(wsb + 3) // 4, act=act, bias=bt, bias_mode=BIAS_ROW, **geom,
                       d=d, rsd=N, csd=1, bf16=2)
        if info is not None:
            note(b, path="dense", **info)
        return
    if b.precision == "bf16":  # bfloat16 operands, fp32 accumulation (csrc/bf16_gemm.h)
        kg = _kgemm()
        packed = np.concatenate([kg.bf16_pack_a(w[g * cog:(g + 1) * cog].reshape(cog, K))
                                 for g in range(G)], axis=0)
        emit_gemm_step(b, GemmOp.CONV, [x, b.const(packed, name=f"{node.name}_bf16"), y],
                       M, N, K, **bf16_blocking(M, N, K, N), act=act, bias=bt,
                       bias_mode=BIAS_ROW, direct=direct, **geom, d=d, rsd=N, csd=1, bf16=1)
        if info is not None:
            note(b, path="dense", **info)
        return
    if (G == 1 and allow_winograd
            and winograd_eligible(kernel, strides, dil, pads, x_sp, out_sp, act)):
        use, winfo = _choose_winograd(node, b, images, cin, x_sp, cout, out_sp, kernel, strides,
                                      pads, dil, w, bias, act, d is not None)
        if winfo:  # one record for the listing: the sparse choice's, then Winograd's
            why = "; ".join(r["why"] for r in (info or {}, winfo) if "why" in r)
            info = {**(info or {}), **winfo, "why": why}
        if use:
            emit_winograd(b, x, y, images, cin, x_sp, cout, out_sp, pads, w, bt, act, d,
                          name=node.name)
            note(b, path="winograd", **info)
            return
    if G == 1 and pixel_rows_better(N, cout, b.isa):
        # the pixels as the tile's rows: W^T packed as B, a channel block of scratch
        mr, nr = geometry(b.isa)
        packed = pack_b(np.ascontiguousarray(w.reshape(cout, K).T), b.isa)
        mc, kc, _, _ = blocking(b.isa, N, cout, K, True, False)
        ncb = min(_round_up(cout, nr), PIXEL_ROWS_CHANNEL_BLOCK)
        emit_gemm_step(b, GemmOp.CONV, [x, b.const(packed, name=f"{node.name}_packed_t"), y],
                       N, cout, K, mc=mc, kc=kc, nc=ncb, ws_floats=_round_up(N, mr) * (K + ncb),
                       act=act, bias=bt, bias_mode=BIAS_ROW, direct=direct, pixel_rows=1, **geom,
                       d=d, rsd=N, csd=1)
        if info is not None:
            note(b, path="dense", **info)
        return
    packed = np.concatenate([pack_a(w[g * cog:(g + 1) * cog].reshape(cog, K), b.isa)
                             for g in range(G)], axis=0)
    mc, kc, nc, ws = blocking(b.isa, M, N, K, False, True)
    emit_gemm_step(b, GemmOp.CONV, [x, b.const(packed, name=f"{node.name}_packed"), y],
                   M, N, K, mc=mc, kc=kc, nc=nc, ws_floats=ws, act=act, bias=bt,
                   bias_mode=BIAS_ROW, direct=direct, **geom, d=d, rsd=N, csd=1)
    if info is not None:
        note(b, path="dense", **info)


def bf16_window_eligible(groups: int, cin: int, strides, taps: int, dil=(1, 1)) -> bool:
    """Whether a bf16 conv reads its input through windows (csrc/bf16_gemm.h
    bg_conv_window_range) rather than im2col: one group, channels that fill 32-channel K
    steps (at most a quarter of them padding), and a k x k kernel at stride 1 (a 1x1
    conv's B is a plain matrix, packed faster as one: 7x7 512 -> 2048 0.067 ms vs 0.116
    through windows, Intel, 2 threads) or any kernel at stride 2 undilated (phase planes:
    the im2col gather at stride 2 is the slow part)."""
    cp = _round_up(cin, 32)
    s = [int(v) for v in strides]
    if groups != 1 or cin < 32 or cp * 4 > cin * 5:
        return False
    if all(v == 1 for v in s):
        return taps > 1
    return all(v in (1, 2) for v in s) and all(int(d) == 1 for d in dil)


def pixel_rows_better(pixels: int, cout: int, isa: int) -> bool:
    """Whether a conv of a small image fills its register tiles better with the pixels as
    the tile's rows (MR at a time: a last partial tile of r rows costs about r / MR of a
    full one) than as its columns (NR at a time: a last panel of more than NR / 2 columns
    costs a full one, fewer a half-width one). 7 x 7 = 49 pixels at NR = 32: 49 / 64 of the
    column tiles' work is useful, nearly all of the row tiles'."""
    _, nr = geometry(isa)
    if pixels > PIXEL_ROWS_MAX or cout % nr:
        return False
    full, last = divmod(int(pixels), nr)
    padded = full * nr + (0 if last == 0 else nr // 2 if last <= nr // 2 else nr)
    return pixels / padded < PIXEL_ROWS_BELOW


def winograd_eligible(kernel, strides, dil, pads, x_sp, out_sp, act) -> bool:
    """A 2-D 3x3 stride-1 undilated conv with pads 0..2 on each side and a clamp-type
    activation (none, Relu, Clip: the output transform applies it)."""
    if len(kernel) != 2 or list(kernel) != [3, 3] or list(strides) != [1, 1] or list(dil) != [1, 1]:
        return False
    if int(act[0]) not in (Act.NONE, Act.RELU, Act.CLIP):
        return False
    for k in range(2):
        end = int(out_sp[k]) - int(x_sp[k]) - int(pads[k]) + 2
        if not (0 <= int(pads[k]) <= 2 and 0 <= end <= 2):
            return False
    return True


def _choose_winograd(node, b, images, cin, x_sp, cout, out_sp, kernel, strides, pads, dil, w,
                     bias, act, has_d):
    """(use Winograd, record for the plan listing): forced by $DSL_WINOGRAD, else timed
    against the direct conv when the compilation has a timer (not inside another
    candidate's timing), else the direct conv."""
    mode = winograd_mode()
    if mode in ("on", "off"):
        return mode == "on", {"why": f"winograd forced {mode}"}
    timer = getattr(b, "sparse_timer", None)
    macs = int(images) * int(cout) * int(cin) * 9 * int(np.prod(out_sp))
    if timer is None or min(cin, cout) < WINOGRAD_MIN_CHANNELS or macs < WINOGRAD_MIN_MACS:
        return False, {}
    in_shape = (int(images), int(cin)) + tuple(int(v) for v in x_sp)
    out_shape = (int(images), int(cout)) + tuple(int(v) for v in out_sp)
    bt = None if bias is None else np.asarray(bias, np.float32)

    def direct(bb, ins, out):
        _conv_fast(node, bb, ins[0], out, images, cin, x_sp, cout, out_sp, kernel, strides, pads,
                   dil, 1, w, bt, act, ins[1] if has_d else None, allow_sparse=False,
                   allow_winograd=False)

    def wino(bb, ins, out):
        emit_winograd(bb, ins[0], out, images, cin, x_sp, cout, out_sp, pads, w,
                      bb.const(bt) if bt is not None else None, act, ins[1] if has_d else None,
                      name=node.name)

    key = (in_shape, out_shape, tuple(int(p) for p in pads), has_d, int(act[0]))
    t_direct, t_wino = timer("winograd", key, 0.0, direct, wino,
                             [in_shape] + ([out_shape] if has_d else []), out_shape)
    return t_wino * WINOGRAD_BIAS < t_direct, {"why": "winograd timed",
                                               "direct_ms": round(t_direct * 1e3, 4),
                                               "winograd_ms": round(t_wino * 1e3, 4)}


def winograd_weights(w: np.ndarray) -> np.ndarray:
    """[Cout, Cin, 3, 3] -> U [16, Cout, Cin], U[4 i + j] = (G g G^T)[i, j] (in float64)."""
    u = np.einsum("ik,ockl,jl->ijoc", _WINO_G, np.asarray(w, np.float64), _WINO_G)
    return u.reshape(16, w.shape[0], w.shape[1]).astype(np.float32)


def emit_winograd(b, x, y, images, cin, x_sp, cout, out_sp, pads, w, bias_t, act, d, name) -> None:
    """The WINO step (csrc/f32_winograd.h): U packed per xi as the GEMMs' A operand, the
    block layout of kernels/gemm.pyx winograd_layout for the plan's threads."""
    u = winograd_weights(w)
    packed = np.concatenate([pack_a(u[xi], b.isa) for xi in range(16)], axis=0)
    OH, OW = (int(v) for v in out_sp)
    nblk, maxp, parts, wsf = _kgemm().winograd_layout(b.isa, images, cin, cout, OH, OW,
                                                      b.max_threads)
    _, nr = geometry(b.isa)
    mc, kc, nc, _ = blocking(b.isa, cout, maxp * nr, cin, False, False)
    geom = conv_geometry_fields(images, 1, cin, x_sp, cout, out_sp, (3, 3), (1, 1), pads, (1, 1))
    tiles = ((OH + 1) // 2) * ((OW + 1) // 2)
    emit_gemm_step(b, GemmOp.WINO, [x, b.const(packed, name=f"{name}_winograd"), y], cout, tiles,
                   cin, mc=mc, kc=kc, nc=nc, ws_floats=wsf, act=act, bias=bias_t,
                   bias_mode=BIAS_ROW, d=d, co_chunk=maxp, nchunks=nblk, co_parts=parts,
                   **geom)


def _conv3d_depth_folded(node, b, x, y, x_shape, y_shape, kernel, strides, pads, dil, G, w, bias,
                         act) -> None:
    """A 3-D conv with constant weights as the fast 2-D CONV: the depth taps are folded into
    the channels, Z[n, od, c, kd] = X[n, c, od * SD + kd * DD - PD] (one COPY per depth tap
    into a zero-filled buffer), a 2-D conv of N * OD images of C * KD channels with
    W[co, ci, kd, kh, kw] as [co, ci * KD, kh, kw] (bias and activation in its epilogue),
    then one transposing COPY [N, OD, Cout, OH * OW] -> [N, Cout, OD, OH * OW]."""
    N, C, D = (int(v) for v in x_shape[:3])
    HW = int(np.prod(x_shape[3:]))
    cout, OD = int(y_shape[1]), int(y_shape[2])
    OHW = int(np.prod(y_shape[3:]))
    KD = int(kernel[0])
    runs = conv_runs(D, OD, KD, int(strides[0]), int(dil[0]), int(pads[0]))
    z = b.temp((N * OD, C * KD) + tuple(x_shape[3:]), np.float32, name=f"{node.name}_depth_taps")
    if not all(o0 == 0 and n == OD for o0, n, *_ in runs):
        emit_fill(b, z, 0.0)
    for kd, (o0, n, _, i0, istep) in enumerate(runs):
        if n:
            emit_copy(b, x, z, (N, n, C, HW), [4 * v for v in (C * D * HW, istep * HW, D * HW, 1)],
                      [4 * v for v in (OD * C * KD * HW, C * KD * HW, KD * HW, 1)],
                      src_offset=4 * i0 * HW, dst_offset=4 * (o0 * C * KD + kd) * HW)
    y2 = b.temp((N * OD, cout) + tuple(y_shape[3:]), np.float32, name=f"{node.name}_planes")
    cig = C // G
    _conv_fast(node, b, z, y2, N * OD, C * KD, x_shape[3:], cout, y_shape[3:], kernel[1:],
               strides[1:], pads[1:], dil[1:], G, w.reshape((cout, cig * KD) + tuple(kernel[1:])),
               bias, act)
    emit_copy(b, y2, y, (N, OD, cout, OHW), [4 * v for v in (OD * cout * OHW, cout * OHW, OHW, 1)],
              [4 * v for v in (cout * OD * OHW, OHW, OD * OHW, 1)])


@register("ConvTranspose")
class ConvTranspose(OpDef):
    def infer(self, node, ins):
        X, W = ins[0], ins[1]
        require_f32(node, X, W)
        G = int(node.attrs.get("group", 1))
        out, *_ = convt_geometry(node, X.shape, W.shape)
        return [((X.shape[0], W.shape[1] * G) + tuple(out), np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        X, W, G = _check_inputs(node, ins, transpose=True)
        out_sp, pads, strides, dil, kernel = convt_geometry(node, X.shape, W.shape)
        n, cin = X.shape[0], X.shape[1]
        cig, cog = cin // G, W.shape[1]
        cout = cog * G
        khw = int(np.prod(kernel))
        hw = int(np.prod(X.shape[2:]))
        act = act_of(node)
        bias, bias_rt = _bias(node, b, ins, cout)
        y = b.output(outs[0].name, outs[0].shape, np.float32)
        x = b.value(X.name)
        if X.rank > 4 or W.const is None or bias_rt is not None:
            lower_convt_col2im(node, b, x=x, y=y, x_shape=X.shape,
                              out_shape=outs[0].shape, groups=G, kernel=kernel, strides=strides,
                              dil=dil, pads=pads, w_const=W.const,
                              w=None if W.const is not None else b.value(W.name),
                              bias_const=bias, bias=bias_rt, act=act)
            return
        # output-channel chunks: enough work items for every thread, bounded column buffer
        want = max(1, math.ceil(b.max_threads / max(1, n * G)))
        chunk = max(1, math.ceil(cog / want))
        chunk = max(1, min(chunk, CONVT_COL_FLOATS // max(1, khw * hw)))
        nchunks = math.ceil(cog / chunk)
        mr, _ = geometry(b.isa)
        M, K, N = chunk * khw, cig, hw
        mp = _round_up(M, mr)
        w = np.asarray(W.const, np.float32)
        parts = []
        for g in range(G):
            wt = w[g * cig:(g + 1) * cig].reshape(cig, cog * khw).T  # rows (co, kh, kw)
            for c in range(nchunks):
                rows = wt[c * chunk * khw:(c + 1) * chunk * khw]
                pa = np.zeros((mp // mr, K, mr), np.float32)
                pk = pack_a(np.ascontiguousarray(rows), b.isa)
                pa[:pk.shape[0]] = pk
                parts.append(pa)
        packed = np.concatenate(parts, axis=0)
        mc, kc, nc, ws = blocking(b.isa, M, N, K, False, True)
        col = _round_up(M * N, 16)
        geom = conv_geometry_fields(n, G, cin, X.shape[2:], cout, out_sp, kernel, strides, pads, dil)
        bt = b.const(bias) if bias is not None else None
        emit_gemm_step(b, GemmOp.CONVT, [x, b.const(packed, name=f"{node.name}_packed"), y],
                       M, N, K, mc=mc, kc=kc, nc=nc, ws_floats=ws + col, act=act, bias=bt,
                       bias_mode=BIAS_ROW, co_chunk=chunk, nchunks=nchunks, col_floats=col, **geom)


@register("Col2Im")
class Col2Im(OpDef):
    def _geometry(self, node, ins):
        X = ins[0]
        require_f32(node, X)
        for k, what in ((1, "image_shape"), (2, "block_shape")):
            if len(ins) <= k or ins[k] is None or ins[k].const is None:
                raise UnsupportedModelError(f"{node.describe()}: {what} must be a constant")
        image = [int(v) for v in np.asarray(ins[1].const).reshape(-1)]
        block = [int(v) for v in np.asarray(ins[2].const).reshape(-1)]
        nd = len(image)
        strides = ints_attr(node, "strides") or [1] * nd
        dil = ints_attr(node, "dilations") or [1] * nd
        pads = ints_attr(node, "pads") or [0] * (2 * nd)
        if (len(block) != nd or len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd
                or min(block + strides + dil) < 1 or min(pads) < 0):
            raise UnsupportedModelError(f"{node.describe()}: bad block_shape {block} / strides "
                                        f"{strides} / dilations {dil} / pads {pads} for image {image}")
        T = int(np.prod(block))
        if X.rank != 3 or X.shape[1] % T:
            raise UnsupportedModelError(f"{node.describe()}: input {X.shape} is not [N, C * {T}, L]")
        counts = [(image[d] + pads[d] + pads[d + nd] - dil[d] * (block[d] - 1) - 1) // strides[d] + 1
                  for d in range(nd)]
        if min(counts) < 1 or int(np.prod(counts)) != X.shape[2]:
            raise UnsupportedModelError(f"{node.describe()}: {X.shape[2]} blocks, the geometry "
                                        f"gives {counts}")
        return image, block, strides, dil, pads[:nd], counts

    def infer(self, node, ins):
        image, block, *_ = self._geometry(node, ins)
        X = ins[0]
        return [((X.shape[0], X.shape[1] // int(np.prod(block))) + tuple(image), np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        image, block, strides, dil, pads, counts = self._geometry(node, ins)
        X = ins[0]
        N, T = int(X.shape[0]), int(np.prod(block))
        C = int(X.shape[1]) // T
        y = b.output(outs[0].name, outs[0].shape, np.float32)
        if y.size == 0:
            return
        runs = [convt_runs(counts[d], image[d], block[d], strides[d], dil[d], pads[d])
                for d in range(len(image))]
        emit_col2im(b, b.value(X.name), y, N, C, counts, image, runs, None, node.describe())
