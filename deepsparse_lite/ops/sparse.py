"""Sparse-weight lowerings (family 6, kernels/sparse.pyx) and the per-layer dense / sparse
choice.

A constant weight with many zeros can run as CSR rows (csrc/f32_spmm.h): MatMul / Gemm
(``SPMM_GEMM``, tokens as the vector dimension) and Conv with groups == 1 (``SPMM_CONV``:
1x1 stride 1 reads NCHW in place, other shapes go through im2col). The lowerings in
ops/gemm.py and ops/conv.py ask :func:`choose` before emitting their dense step:

- ``dense`` / ``sparse`` (``DSL_SPARSE`` or ``compile_onnx(..., sparse=...)``): forced, for
  tests and experiments (a weight with more than 65535 columns always stays dense);
- ``auto`` (the default): below ``MIN_SPARSITY`` zeros the layer stays dense; otherwise the
  compiler times both steps for this layer's shape on the plan's ISA and threads
  (``PlanBuilder.sparse_timer``, compiler/sparsity.py) and keeps sparse only when it is
  more than ``DENSE_BIAS`` faster. Without a timer (a builder made by hand) sparse is
  taken from ``STATIC_SPARSITY`` zeros up.

Every GEMM-family step on a constant weight records what was chosen in its
``StepInfo.info`` (path, sparsity, why): ``compiler.describe_plan`` lists it.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.ops.base import op_id
from deepsparse_lite.plan import ALIGN, Family, PlanBuilder, Tensor
from deepsparse_lite.step_params import SPMM, params


class SparseOp:
    """Sub-op numbers of the sparse family (layouts in kernels/sparse.pyx)."""
    SPMM_GEMM = op_id(Family.SPARSE, 1)
    SPMM_CONV = op_id(Family.SPARSE, 2)


MODES = ("auto", "sparse", "dense")
#: fewer zeros than this: always dense (break-even measured near 60-70%, see DESIGN_NOTES)
MIN_SPARSITY = 0.5
#: sparse must beat dense by this factor when timed (LIBXSMM's bias toward dense)
DENSE_BIAS = 1.10
#: without a timer: sparse from this sparsity up
STATIC_SPARSITY = 0.8
#: the CSR stores columns as uint16
MAX_K = 65535


def _ksparse():
    from deepsparse_lite.kernels import sparse as ksparse
    return ksparse


def weight_sparsity(w: np.ndarray) -> float:
    """Fraction of exact zeros in ``w``."""
    w = np.asarray(w)
    return 1.0 - float(np.count_nonzero(w)) / w.size if w.size else 0.0


def pack_csr(w_rk: np.ndarray) -> Tuple[np.ndarray, int, int, int]:
    """(R, K) weights -> (blob, nnz, off_vals, off_cols): CSR by row r as one byte blob,
    R + 1 int32 row starts, then nnz float32 values, then nnz uint16 columns, each part
    ALIGN-byte aligned (the layout kernels/sparse.pyx reads)."""
    w = np.ascontiguousarray(w_rk, np.float32)
    R, K = w.shape
    if K > MAX_K:
        raise ValueError(f"sparse weights need K <= {MAX_K}, got {K}")
    rows, cols = np.nonzero(w)
    nnz = int(rows.size)
    rp = np.zeros(R + 1, np.int32)
    np.cumsum(np.bincount(rows, minlength=R), out=rp[1:])
    vals = w[rows, cols].astype(np.float32)

    def up(n):
        return (n + ALIGN - 1) // ALIGN * ALIGN

    off_vals = up(rp.nbytes)
    off_cols = off_vals + up(4 * nnz)
    blob = np.zeros(off_cols + up(2 * nnz) + ALIGN, np.uint8)
    blob[:rp.nbytes] = rp.view(np.uint8)
    blob[off_vals:off_vals + 4 * nnz] = vals.view(np.uint8)
    blob[off_cols:off_cols + 2 * nnz] = cols.astype(np.uint16).view(np.uint8)
    return blob, nnz, off_vals, off_cols


def choose(b: PlanBuilder, kind: str, key: tuple, w_rk: np.ndarray,
           emit_dense: Callable, emit_sparse: Callable, inputs: Sequence[tuple],
           out_shape: tuple) -> Tuple[bool, dict]:
    """Whether this layer runs sparse, and the record for the plan listing. ``key`` names
    the layer's shape (what timings are cached by); ``emit_dense`` / ``emit_sparse``
    (builder, input tensors, output tensor) emit the two candidate steps for timing."""
    s = weight_sparsity(w_rk)
    info = {"sparsity": round(s, 4)}
    mode = getattr(b, "sparse_mode", "auto") or "auto"
    if w_rk.shape[1] > MAX_K or w_rk.size == 0:
        info["why"] = "too wide for sparse" if w_rk.size else "empty"
        return False, info
    if mode == "dense" or mode == "sparse":
        info["why"] = f"forced {mode}"
        return mode == "sparse", info
    if s < MIN_SPARSITY:
        info["why"] = f"sparsity < {MIN_SPARSITY:g}"
        return False, info
    timer = getattr(b, "sparse_timer", None)
    if timer is None:
        info["why"] = f"static threshold {STATIC_SPARSITY:g}"
        return s >= STATIC_SPARSITY, info
    t_dense, t_sparse = timer(kind, key, s, emit_dense, emit_sparse, inputs, out_shape)
    info.update(why="timed", dense_ms=round(t_dense * 1e3, 4), sparse_ms=round(t_sparse * 1e3, 4))
    return t_sparse * DENSE_BIAS < t_dense, info


def note(b: PlanBuilder, **info) -> None:
    """Attach the choice record to the step just emitted."""
    if b.step_info:
        b.step_info[-1].info.update(info)


def _epilogue(b: PlanBuilder, tensors: list, bias: Optional[np.ndarray], d: Optional[Tensor]):
    bias_slot = d_slot = -1
    if bias is not None:
        bias_slot = len(tensors)
        tensors.append(b.const(np.asarray(bias, np.float32).reshape(-1)))
    if d is not None:
        d_slot = len(tensors)
        tensors.append(d)
    return bias_slot, d_slot


def _workspace(b: PlanBuilder, tensors: list, K: int) -> Tuple[int, int]:
    ws_bytes = (max(K, 1) * _ksparse().max_tile_width() * 4 + 63) // 64 * 64
    tensors.append(b.workspace(ws_bytes * b.max_threads, name="spmm_workspace"))
    return len(tensors) - 1, ws_bytes


def emit_sparse_gemm(b: PlanBuilder, a: Tensor, w: np.ndarray, y: Tensor, M: int, *, rsa: int,
                     csa: int, act=(0, 0.0, 0.0), bias: Optional[np.ndarray] = None,
                     d: Optional[Tensor] = None, rsd: int = 0, csd: int = 0,
                     beta: float = 1.0) -> None:
    """Y[M, N] = act(A·W + bias + beta*D) with constant W (K, N) stored as CSR rows of W^T."""
    K, N = w.shape
    blob, nnz, off_vals, off_cols = pack_csr(np.asarray(w, np.float32).T)
    tensors = [a, b.const(blob, name=f"{b.current_node}_csr"), y]
    bias_slot, d_slot = _epilogue(b, tensors, bias, d)
    ws_slot, ws_bytes = _workspace(b, tensors, K)
    b.emit(SparseOp.SPMM_GEMM, tensors, params(
        SPMM, level=b.isa, R=N, K=K, np=M, nnz=nnz, off_vals=off_vals, off_cols=off_cols,
        act=int(act[0]), act_a=float(act[1]), act_b=float(act[2]), bias_slot=bias_slot,
        d_slot=d_slot, ws_slot=ws_slot, ws_bytes=ws_bytes, ws_threads=b.max_threads,
        rsa=rsa, csa=csa, rsc=N, rsd=rsd, csd=csd, beta=beta))


def _shift_offsets(w_rk: np.ndarray, cin: int, kh: int, kw: int, hp: int, wp: int) -> np.ndarray:
    """Per nonzero of the CSR (row-major order), the offset of its window in the padded
    image: column k = (ci, i, j) -> ci*Hp*Wp + i*Wp + j."""
    cols = np.nonzero(w_rk)[1].astype(np.int64)
    ci, rest = np.divmod(cols, kh * kw)
    i, j = np.divmod(rest, kw)
    return (ci * hp * wp + i * wp + j).astype(np.int32)


#: SHIFT from this output width up: its windows are unaligned (a kw > 0 window splits
#: cache lines) and it computes the KW - 1 padding columns of every row, which im2col's
#: packing outweighs only on wide images (ResNet-50 at 1 thread, Intel AVX-512: 56 wide
#: 0.80 -> 0.60 ms, 28 wide even, 14 wide 3% slower, 7 wide 0.70 -> 0.87 ms)
SHIFT_MIN_WIDTH = 32


def shift_enabled(out_width: int) -> bool:
    """Whether a stride-1 k x k sparse conv of this output width reads shifted windows
    (``DSL_SPMM_SHIFT``: 1 always, 0 never, unset: from SHIFT_MIN_WIDTH up)."""
    import os
    env = os.environ.get("DSL_SPMM_SHIFT")
    if env is not None:
        return env != "0"
    return out_width >= SHIFT_MIN_WIDTH


def emit_sparse_conv(b: PlanBuilder, x: Tensor, w: np.ndarray, y: Tensor, geom: dict, *,
                     act=(0, 0.0, 0.0), bias: Optional[np.ndarray] = None,
                     d: Optional[Tensor] = None) -> None:
    """A groups == 1 NCHW conv with constant W [Cout, Cin*KH*KW] as CSR rows. ``geom``:
    conv_geometry_fields (ops/gemm.py) of the conv. 1x1 stride-1 unpadded convs read X in
    place; other stride-1 undilated convs read shifted windows of a zero-padded copy of
    each image (SHIFT, csrc/f32_spmm.h); the rest go through im2col."""
    cout = int(geom["Cout"])
    cin, kh, kw = int(geom["Cin"]), int(geom["KH"]), int(geom["KW"])
    K = cin * kh * kw
    w_rk = np.asarray(w, np.float32).reshape(cout, K)
    blob, nnz, off_vals, off_cols = pack_csr(w_rk)
    npix = int(geom["OH"]) * int(geom["OW"])
    direct = int(geom["KH"] == 1 and geom["KW"] == 1 and geom["SH"] == 1 and geom["SW"] == 1
                 and geom["PH"] == 0 and geom["PW"] == 0 and geom["OH"] == geom["H"]
                 and geom["OW"] == geom["W"])
    hp, wp = int(geom["OH"]) + kh - 1, int(geom["OW"]) + kw - 1
    off_offs = pad_bytes = 0
    if (not direct and shift_enabled(int(geom["OW"])) and geom["SH"] == 1 and geom["SW"] == 1
            and geom["DH"] == 1 and geom["DW"] == 1 and cin * hp * wp < 2 ** 31 - 4096):
        direct = 2
        offs = _shift_offsets(w_rk, cin, kh, kw, hp, wp)
        off_offs = (blob.size + ALIGN - 1) // ALIGN * ALIGN
        grown = np.zeros(off_offs + offs.nbytes + ALIGN, np.uint8)
        grown[:blob.size] = blob
        grown[off_offs:off_offs + offs.nbytes] = offs.view(np.uint8)
        blob = grown
        pad_bytes = ((cin * hp * wp + _ksparse().pad_tail()) * 4 + 63) // 64 * 64
    tensors = [x, b.const(blob, name=f"{b.current_node}_csr"), y]
    bias_slot, d_slot = _epilogue(b, tensors, bias, d)
    if direct == 1:
        ws_slot, ws_bytes = -1, 0
    elif direct == 2:
        ws_bytes = (cout * _ksparse().max_tile_width() * 4 + 63) // 64 * 64
        tensors.append(b.workspace(pad_bytes + ws_bytes * b.max_threads, name="spmm_workspace"))
        ws_slot = len(tensors) - 1
    else:
        ws_slot, ws_bytes = _workspace(b, tensors, K)
    fields = {k: int(geom[k]) for k in ("images", "Cin", "H", "W", "OH", "OW", "KH", "KW",
                                         "SH", "SW", "PH", "PW", "DH", "DW")}
    b.emit(SparseOp.SPMM_CONV, tensors, params(
        SPMM, level=b.isa, R=cout, K=K, np=npix, nnz=nnz, off_vals=off_vals, off_cols=off_cols,
        act=int(act[0]), act_a=float(act[1]), act_b=float(act[2]), bias_slot=bias_slot,
        d_slot=d_slot, ws_slot=ws_slot, ws_bytes=ws_bytes, ws_threads=b.max_threads,
        beta=1.0, direct=direct, off_offs=off_offs, pad_bytes=pad_bytes, **fields))
