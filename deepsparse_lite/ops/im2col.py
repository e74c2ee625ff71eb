"""N-d im2col / col2im from COPY steps: the general convolution and transposed-convolution path.

The fast Conv / ConvTranspose kernels (ops/conv.py) are 1-D / 2-D with weights packed at
compile time. Everything else (runtime weights or bias, 3-D and higher convolutions) is
lowered here onto existing kernels only.

A **tap copy** moves, for one kernel tap, every (input position, output position) pair the
tap links: along each spatial dim these pairs form one arithmetic progression, so a tap is
one strided box COPY:

- Conv:          ``i = o * stride + k * dilation - pad``  (o consecutive, i step stride)
- ConvTranspose: ``o = i * stride + k * dilation - pad``  (i consecutive, o step stride)

**Conv** = im2col + GEMM. The column buffer ``col[n, c, t, p]`` (t: kernel tap, row-major
over the kernel dims; p: output position) is FILLed with zero (only when some tap does not
cover the whole output) and written by one COPY per tap; then per (image, group)
``Y[co, p] = W[co, (ci, t)] · col[(ci, t), p]``: constant weights and bias packed now, the
CONV sub-op as a grouped 1x1 convolution reading the column buffer directly (bias,
activation and a fused addend in its epilogue); runtime weights or bias: the batched
MATMUL over (image, group), the bias as the addend D broadcast along the positions.

**ConvTranspose** = GEMM + col2im. Per (image, group) ``col[(co, t), i] = W^T · X`` (the
CONV sub-op with W^T packed, or MATMUL reading W transposed through its strides), then
col2im: one tap copy per tap from col's plane t into ``buf[n, co, t, o]`` (zero-filled),
one more slot holding the bias broadcast along o, and a REDUCE sum over the slots. No
multiplication by the zeros of a zero-inserted input. Col2Im (ops/conv.py) is the same
col2im without the GEMM.

Images are processed in chunks that bound the column buffers (COL_BYTES_LIMIT).
Cost: Conv's column buffer holds prod(kernel) times the output per input channel and the
GEMM streams it (measured in docs/DESIGN_NOTES.md: 1.15x the fast 2-D kernel for a 64->64
3x3 conv at 56x56; a 3-D conv with constant weights takes ops/conv.py's depth-folded 2-D
path instead, 2.3x faster than this one).
"""
from __future__ import annotations

import itertools
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.ops.base import UnsupportedModelError, contiguous_strides, emit_copy, emit_fill
from deepsparse_lite.plan import MAX_NDIM, PlanBuilder, Tensor

#: most bytes of column buffer one chunk of images may take (larger batches are chunked)
COL_BYTES_LIMIT = 64 << 20

#: one run of a tap along one spatial dim: (o0, count, o_step, i0, i_step)
Run = Tuple[int, int, int, int, int]


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def conv_runs(n_in: int, n_out: int, k: int, s: int, d: int, pad: int) -> List[Run]:
    """Per tap kk along one dim of a Conv: outputs o with 0 <= o*s + kk*d - pad < n_in."""
    runs = []
    for kk in range(k):
        off = kk * d - pad
        lo = max(0, _ceil_div(-off, s))
        hi = min(n_out, (n_in - 1 - off) // s + 1)
        runs.append((lo, max(0, hi - lo), 1, lo * s + off, s))
    return runs


def convt_runs(n_in: int, n_out: int, k: int, s: int, d: int, pad: int) -> List[Run]:
    """Per tap kk along one dim of a ConvTranspose: inputs i with 0 <= i*s + kk*d - pad < n_out."""
    runs = []
    for kk in range(k):
        off = kk * d - pad
        lo = max(0, _ceil_div(-off, s))
        hi = min(n_in, (n_out - 1 - off) // s + 1)
        runs.append((lo * s + off, max(0, hi - lo), s, lo, 1))
    return runs


def emit_im2col(b: PlanBuilder, x: Tensor, col: Tensor, lead: int, x_sp: Sequence[int],
                out_sp: Sequence[int], runs: Sequence[Sequence[Run]], fill: float = 0.0,
                what: str = "im2col", tap_planes: bool = False, slots: int = 0) -> None:
    """col[l, t, p] = x[l, i(t, p)] for ``lead`` leading rows (images * channels), every tap
    t of ``runs`` (one list of runs per spatial dim) and output position p; positions no
    tap run covers hold ``fill``. ``tap_planes``: x holds one plane per (row, tap),
    x[l, t, i] (col2im), instead of one plane per row. ``slots``: col's tap slots per row
    when more than the taps (the extra ones are left to the caller)."""
    nd = len(x_sp)
    if nd + 1 > MAX_NDIM:
        raise UnsupportedModelError(f"{what}: {nd} spatial dims (at most {MAX_NDIM - 1})")
    esz = np.dtype(x.dtype).itemsize
    P = int(np.prod(out_sp, dtype=np.int64))
    taps = list(itertools.product(*runs))
    T = len(taps)
    S = max(T, slots)
    xs = contiguous_strides(tuple(x_sp), esz)
    os_ = contiguous_strides(tuple(out_sp), esz)
    plane_x = int(np.prod(x_sp, dtype=np.int64)) * esz
    lead_x = plane_x * (T if tap_planes else 1)
    full = all(r[0] == 0 and r[1] == n and r[2] == 1 for tap in taps for r, n in zip(tap, out_sp))
    if not full:
        emit_fill(b, col, fill, nbytes=lead * S * P * esz)
    for t, tap in enumerate(taps):
        if any(r[1] == 0 for r in tap):
            continue
        shape = [lead] + [r[1] for r in tap]
        src = [lead_x] + [r[4] * xs[k] for k, r in enumerate(tap)]
        dst = [S * P * esz] + [r[2] * os_[k] for k, r in enumerate(tap)]
        emit_copy(b, x, col, shape, src, dst,
                  src_offset=(t * plane_x if tap_planes else 0)
                  + sum(r[3] * xs[k] for k, r in enumerate(tap)),
                  dst_offset=t * P * esz + sum(r[0] * os_[k] for k, r in enumerate(tap)))


def emit_col2im(b: PlanBuilder, col: Tensor, y: Tensor, images: int, channels: int,
                in_sp: Sequence[int], out_sp: Sequence[int], runs: Sequence[Sequence[Run]],
                bias: Optional[Tensor] = None, what: str = "col2im") -> None:
    """y[n, c, o] = sum over taps t of col[n, c, t, i] at o = o(t, i) (+ bias[c]): the tap
    copies into zero-filled slots (one more slot for the bias, broadcast along o), then a
    REDUCE sum over the slots."""
    from deepsparse_lite.ops.reduce import RK, emit_reduce

    T = int(np.prod([len(r) for r in runs], dtype=np.int64))
    P = int(np.prod(out_sp, dtype=np.int64))
    lead = images * channels
    S = T + (1 if bias is not None else 0)
    buf = b.temp((lead, S, P), np.float32, name=f"{b.current_node}_col2im")
    emit_im2col(b, col, buf, lead, in_sp, out_sp, runs, 0.0, what, tap_planes=True, slots=S)
    if bias is not None:
        emit_copy(b, bias, buf, (images, channels, P), (0, 4, 0), (channels * S * P * 4, S * P * 4, 4),
                  dst_offset=T * P * 4)
    emit_reduce(b, RK.SUM, buf, y, [1], what)


def _image_chunks(b: PlanBuilder, N: int, per_image_bytes: int, tensors):
    """(first image, count, views of ``tensors`` (tensor, per-image shape)) per chunk of
    images whose buffers stay within COL_BYTES_LIMIT."""
    chunk = max(1, min(N, COL_BYTES_LIMIT // max(per_image_bytes, 1)))
    for n0 in range(0, N, chunk):
        nc_ = min(chunk, N - n0)
        views = []
        for t, shp in tensors:
            if t is None or nc_ == N:
                views.append(t)
            else:
                nbytes = int(np.prod(shp, dtype=np.int64)) * 4
                views.append(b.view(t, (nc_,) + tuple(shp), byte_offset=n0 * nbytes))
        yield n0, nc_, views


def lower_conv_im2col(node, b: PlanBuilder, *, x: Tensor, y: Tensor, x_shape: Sequence[int],
                      out_shape: Sequence[int], groups: int, kernel: Sequence[int],
                      strides: Sequence[int], dil: Sequence[int], pads: Sequence[int],
                      w_const: Optional[np.ndarray], w: Optional[Tensor],
                      bias_const: Optional[np.ndarray], bias: Optional[Tensor], act,
                      addend: Optional[Tensor] = None) -> None:
    """Emit Conv as im2col + GEMM. ``w_const`` / ``bias_const``: compile-time weights /
    bias (numpy) or None; otherwise ``w`` / ``bias`` are the runtime tensors (the bias may
    be absent)."""
    from deepsparse_lite.ops.gemm import (BIAS_ROW, GemmOp, blocking, conv_geometry_fields,
                                          emit_gemm_step, emit_matmul, pack_a)

    N, cin = int(x_shape[0]), int(x_shape[1])
    cout = int(out_shape[1])
    x_sp, out_sp = [int(v) for v in x_shape[2:]], [int(v) for v in out_shape[2:]]
    G = groups
    cig, cog = cin // G, cout // G
    T = int(np.prod(kernel, dtype=np.int64))
    P = int(np.prod(out_sp, dtype=np.int64))
    K = cig * T
    runs = [conv_runs(x_sp[k], out_sp[k], int(kernel[k]), int(strides[k]), int(dil[k]), int(pads[k]))
            for k in range(len(x_sp))]
    desc = node.describe()

    packed = wt = None   # the weights as A[g][co, (ci, t)]
    if w_const is not None and bias is None:
        wc = np.asarray(w_const, np.float32).reshape(G, cog, K)
        packed = b.const(np.concatenate([pack_a(wc[g], b.isa) for g in range(G)], axis=0),
                         name=f"{node.name}_packed")
    elif w_const is not None:   # constant weights, runtime bias: MATMUL with D
        wt = b.const(np.asarray(w_const, np.float32).reshape(G, cog, K), name=f"{node.name}_w")
    else:
        wt = w
    bt = bias
    if bias_const is not None:
        bt = b.const(np.asarray(bias_const, np.float32).reshape(-1), name=f"{node.name}_bias")

    for n0, nc_, (xv, yv, dv) in _image_chunks(
            b, N, cin * T * P * 4, [(x, [cin] + x_sp), (y, [cout] + out_sp),
                                    (addend, [cout] + out_sp)]):
        col = b.temp((nc_ * cin * T * P,), np.float32, name=f"{node.name}_col")
        emit_im2col(b, xv, col, nc_ * cin, x_sp, out_sp, runs, 0.0, desc)
        if packed is not None:
            mc, kc, nc, ws = blocking(b.isa, cog, P, K, False, True)
            geom = conv_geometry_fields(nc_, G, cin * T, (1, P), cout, (1, P), (1, 1), (1, 1),
                                        (0, 0), (1, 1))
            emit_gemm_step(b, GemmOp.CONV, [col, packed, yv], cog, P, K, mc=mc, kc=kc, nc=nc,
                           ws_floats=ws, act=act, bias=bt, bias_mode=BIAS_ROW, direct=1,
                           d=dv, rsd=P, csd=1, **geom)
        else:
            if dv is not None:
                raise UnsupportedModelError(f"{desc}: a fused addend needs constant weights and bias")
            emit_matmul(b, wt, col, yv, cog, P, K, rsa=K, csa=1, rsb=P, csb=1, rsc=P,
                        batch=[nc_, G], sa=[0, cog * K], sb=[G * K * P, K * P],
                        sc=[G * cog * P, cog * P], sd=[0, cog], act=act, d=bt,
                        rsd=1 if bt is not None else 0, csd=0, node_desc=desc)


def lower_convt_col2im(node, b: PlanBuilder, *, x: Tensor, y: Tensor, x_shape: Sequence[int],
                       out_shape: Sequence[int], groups: int, kernel: Sequence[int],
                       strides: Sequence[int], dil: Sequence[int], pads: Sequence[int],
                       w_const: Optional[np.ndarray], w: Optional[Tensor],
                       bias_const: Optional[np.ndarray], bias: Optional[Tensor], act) -> None:
    """Emit ConvTranspose as GEMM (col = W^T · X per image and group) + col2im."""
    from deepsparse_lite.ops.elementwise import emit_unary
    from deepsparse_lite.ops.gemm import (GemmOp, blocking, conv_geometry_fields, emit_gemm_step,
                                          emit_matmul, pack_a)

    N, cin = int(x_shape[0]), int(x_shape[1])
    cout = int(out_shape[1])
    x_sp, out_sp = [int(v) for v in x_shape[2:]], [int(v) for v in out_shape[2:]]
    G = groups
    cig, cog = cin // G, cout // G
    T = int(np.prod(kernel, dtype=np.int64))
    HW = int(np.prod(x_sp, dtype=np.int64))
    P = int(np.prod(out_sp, dtype=np.int64))
    M = cog * T
    runs = [convt_runs(x_sp[k], out_sp[k], int(kernel[k]), int(strides[k]), int(dil[k]), int(pads[k]))
            for k in range(len(x_sp))]
    desc = node.describe()
    packed = None
    if w_const is not None:   # A[g][(co, t), ci] = W[g*cig + ci, co, t], packed now
        wc = np.asarray(w_const, np.float32).reshape(G, cig, M)
        packed = b.const(np.concatenate([pack_a(np.ascontiguousarray(wc[g].T), b.isa)
                                         for g in range(G)], axis=0), name=f"{node.name}_packed")
    bt = bias
    if bias_const is not None:
        bt = b.const(np.asarray(bias_const, np.float32).reshape(-1), name=f"{node.name}_bias")

    per_image = cout * T * HW * 4 + cout * (T + 1) * P * 4
    for n0, nc_, (xv, yv) in _image_chunks(b, N, per_image, [(x, [cin] + x_sp), (y, [cout] + out_sp)]):
        col = b.temp((nc_ * cout * T * HW,), np.float32, name=f"{node.name}_col")
        if packed is not None:
            mc, kc, nc, ws = blocking(b.isa, M, HW, cig, False, True)
            geom = conv_geometry_fields(nc_, G, cin, (1, HW), cout * T, (1, HW), (1, 1), (1, 1),
                                        (0, 0), (1, 1))
            emit_gemm_step(b, GemmOp.CONV, [xv, packed, col], M, HW, cig, mc=mc, kc=kc, nc=nc,
                           ws_floats=ws, direct=1, **geom)
        else:
            emit_matmul(b, w, xv, col, M, HW, cig, rsa=1, csa=M, rsb=HW, csb=1, rsc=HW,
                        batch=[nc_, G], sa=[0, cig * M], sb=[cin * HW, cig * HW],
                        sc=[G * M * HW, M * HW], node_desc=desc)
        emit_col2im(b, col, yv, nc_, cout, x_sp, out_sp, runs, bt, desc)
    if int(act[0]):
        emit_unary(b, int(act[0]), y, y, float(act[1]), float(act[2]))
