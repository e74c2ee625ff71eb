"""N-d im2col from COPY steps: the general convolution and transposed-convolution path.

The fast Conv / ConvTranspose kernels (ops/conv.py) are 1-D / 2-D with weights packed at
compile time. Everything else (runtime weights or bias, 3-D and higher convolutions) is
lowered here onto existing kernels only:

1. **Column buffer** ``col[n, c, t, p]`` (t: kernel tap, row-major over the kernel dims;
   p: output position, row-major over the output dims), FILLed with zero, then one strided
   COPY per tap. For a tap the output positions whose input position is valid form one
   arithmetic progression per spatial dim, so a tap is one box copy:

   - Conv:          ``i = o * stride + k * dilation - pad``  (o consecutive, i step stride)
   - ConvTranspose: ``o = i * stride + k * dilation - pad``  (i consecutive, o step stride),
     i.e. the columns of the convolution of the zero-inserted input with the transposed
     kernel, never materialising the zeros of the input.

2. **GEMM** per (image, group): ``Y[co, p] = A[co, (ci, t)] · col[(ci, t), p]``, where A is
   the weight (Conv: W as is; ConvTranspose: W[ci, co, t] transposed to [co, ci, t]).
   Constant weights and bias: A packed now, the CONV sub-op as a grouped 1x1 convolution
   reading the column buffer directly (bias, activation and a fused addend in its
   epilogue). Runtime weights or bias: the batched MATMUL over (image, group), bias as the
   addend D broadcast along the output positions, ConvTranspose's transpose one COPY.

Images are processed in chunks that bound the column buffer (COL_BYTES_LIMIT).
Cost: the column buffer holds prod(kernel) times the output per input channel; for
ConvTranspose with stride s only 1 / prod(s) of it is non-zero (the GEMM multiplies the
zeros too).
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
                what: str = "im2col", tap_planes: bool = False) -> None:
    """col[l, t, p] = x[l, i(t, p)] for ``lead`` leading rows (images * channels), every tap
    t of ``runs`` (one list of runs per spatial dim) and output position p; positions no
    tap run covers hold ``fill``. ``tap_planes``: x holds one plane per (row, tap),
    x[l, t, i] (Col2Im's input), instead of one plane per row."""
    nd = len(x_sp)
    if nd + 1 > MAX_NDIM:
        raise UnsupportedModelError(f"{what}: {nd} spatial dims (at most {MAX_NDIM - 1})")
    esz = np.dtype(x.dtype).itemsize
    P = int(np.prod(out_sp, dtype=np.int64))
    taps = list(itertools.product(*runs))
    T = len(taps)
    xs = contiguous_strides(tuple(x_sp), esz)
    os_ = contiguous_strides(tuple(out_sp), esz)
    plane_x = int(np.prod(x_sp, dtype=np.int64)) * esz
    lead_x = plane_x * (T if tap_planes else 1)
    full = all(r[0] == 0 and r[1] == n and r[2] == 1 for tap in taps for r, n in zip(tap, out_sp))
    if not full:
        emit_fill(b, col, fill, nbytes=lead * T * P * esz)
    for t, tap in enumerate(taps):
        if any(r[1] == 0 for r in tap):
            continue
        shape = [lead] + [r[1] for r in tap]
        src = [lead_x] + [r[4] * xs[k] for k, r in enumerate(tap)]
        dst = [T * P * esz] + [r[2] * os_[k] for k, r in enumerate(tap)]
        emit_copy(b, x, col, shape, src, dst,
                  src_offset=(t * plane_x if tap_planes else 0)
                  + sum(r[3] * xs[k] for k, r in enumerate(tap)),
                  dst_offset=t * P * esz + sum(r[0] * os_[k] for k, r in enumerate(tap)))


def lower_conv_im2col(node, b: PlanBuilder, *, x: Tensor, y: Tensor, transpose: bool,
                      x_shape: Sequence[int], out_shape: Sequence[int], groups: int,
                      kernel: Sequence[int], strides: Sequence[int], dil: Sequence[int],
                      pads: Sequence[int], w_const: Optional[np.ndarray], w: Optional[Tensor],
                      bias_const: Optional[np.ndarray], bias: Optional[Tensor], act,
                      addend: Optional[Tensor] = None) -> None:
    """Emit Conv (``transpose=False``) or ConvTranspose as im2col + GEMM.

    ``w_const`` / ``bias_const``: compile-time weights / bias (numpy) or None; otherwise
    ``w`` / ``bias`` are the runtime tensors (bias may be absent entirely)."""
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
    make = convt_runs if transpose else conv_runs
    runs = [make(x_sp[k], out_sp[k], int(kernel[k]), int(strides[k]), int(dil[k]), int(pads[k]))
            for k in range(len(x_sp))]
    desc = node.describe()

    # the weights as A[g][co, (ci, t)]
    packed = wt = None
    if w_const is not None and bias is None:
        wc = np.asarray(w_const, np.float32)
        if transpose:   # [G*cig, cog, T] -> [G, cog, cig, T]
            wc = wc.reshape(G, cig, cog, T).transpose(0, 2, 1, 3)
        wc = np.ascontiguousarray(wc).reshape(G, cog, K)
        packed = b.const(np.concatenate([pack_a(wc[g], b.isa) for g in range(G)], axis=0),
                         name=f"{node.name}_packed")
    elif w_const is not None:   # constant weights, runtime bias: MATMUL with D
        wc = np.asarray(w_const, np.float32)
        if transpose:
            wc = wc.reshape(G, cig, cog, T).transpose(0, 2, 1, 3)
        wt = b.const(np.ascontiguousarray(wc).reshape(G, cog, K), name=f"{node.name}_w")
    else:
        if transpose and cig > 1 and cog > 1:
            wt = b.temp((G, cog, cig, T), np.float32, name=f"{node.name}_wt")
            emit_copy(b, w, wt, (G, cog, cig, T),
                      [4 * v for v in (cig * cog * T, T, cog * T, 1)],
                      contiguous_strides((G, cog, cig, T), 4))
        else:
            wt = w   # Conv, or a transpose that is a reshape (one of cig, cog is 1)

    bt = None
    if bias_const is not None:
        bt = b.const(np.asarray(bias_const, np.float32).reshape(-1), name=f"{node.name}_bias")
    elif bias is not None:
        bt = bias

    per_image = cin * T * P * 4
    chunk = max(1, min(N, COL_BYTES_LIMIT // max(per_image, 1)))
    x_img = cin * int(np.prod(x_sp, dtype=np.int64)) * 4
    y_img = cout * P * 4
    for n0 in range(0, N, chunk):
        nc_ = min(chunk, N - n0)
        xv = x if nc_ == N else b.view(x, (nc_, cin) + tuple(x_sp), byte_offset=n0 * x_img)
        yv = y if nc_ == N else b.view(y, (nc_, cout) + tuple(out_sp), byte_offset=n0 * y_img)
        dv = None
        if addend is not None:
            dv = addend if nc_ == N else b.view(addend, yv.shape, byte_offset=n0 * y_img)
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
