"""Gemm, MatMul and Einsum: lowered to the fp32 GEMM kernels (kernels/gemm.pyx).

A constant 2-D right operand (weights) is packed here, with numpy, into NR-wide panels
for the register tile of the plan's ISA (``b.isa``); ``alpha`` is folded into it. The
runtime operand is packed per thread by the kernel, so nothing runs at compile time.
Everything else (both operands runtime: attention, Gemm with a runtime B, Einsum) goes
to the batched MATMUL kernel, which reads operands through strides: transposes and
broadcast batch dims cost nothing.

Fused epilogue set by the compiler passes: ``_act`` / ``_act_alpha`` / ``_act_beta``
(an activation code from ``base.Act``) and ``_bias`` (name of a constant added per output
column). The helpers below (packing, blocking, ``emit_gemm_step``) are shared with
``ops/conv.py``.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, broadcast_shape,
                                      contiguous_strides, emit_copy, merge_dims, op_id, register)
from deepsparse_lite.plan import Family, PlanBuilder, Tensor
from deepsparse_lite.step_params import GEMM as GEMM_PARAMS, params


class GemmOp:
    """Sub-op numbers of the GEMM family (layouts in kernels/gemm.pyx)."""
    GEMM = op_id(Family.GEMM, 1)
    MATMUL = op_id(Family.GEMM, 2)
    CONV = op_id(Family.GEMM, 3)
    DWCONV = op_id(Family.GEMM, 4)
    CONVT = op_id(Family.GEMM, 5)
    WINO = op_id(Family.GEMM, 6)


BIAS_NONE, BIAS_COL, BIAS_ROW = 0, 1, 2
MAX_BATCH_DIMS = 4


def geometry(isa: int) -> Tuple[int, int]:
    """(MR, NR) of the register tile of a plan level (computed by csrc/f32_gemm.h)."""
    return _kgemm().geometry(int(isa))


def _round_up(x: int, m: int) -> int:
    return (int(x) + m - 1) // m * m


def blocking(isa: int, M: int, N: int, K: int, a_runtime: bool, b_runtime: bool):
    """(mc, kc, nc, workspace floats per thread) for one GEMM shape (csrc/f32_gemm.h)."""
    return _kgemm().blocking(int(isa), int(M), int(N), int(K), bool(a_runtime), bool(b_runtime))


def pack_b(w: np.ndarray, isa: int) -> np.ndarray:
    """(K, N) -> ceil(N/NR) panels of K x NR (zero padded): b[panel, k, j], by the kernels'
    own packer for plan level ``isa``."""
    return _kgemm().pack_b(np.asarray(w, np.float32), int(isa))


def pack_a(w: np.ndarray, isa: int) -> np.ndarray:
    """(M, K) -> ceil(M/MR) panels of K x MR (zero padded): a[panel, k, r]."""
    return _kgemm().pack_a(np.asarray(w, np.float32), int(isa))


def _kgemm():
    from deepsparse_lite.kernels import gemm as kgemm
    return kgemm


def act_of(node) -> Tuple[int, float, float]:
    return (int(node.attrs.get("_act", 0) or 0), float(node.attrs.get("_act_alpha", 0.0) or 0.0),
            float(node.attrs.get("_act_beta", 0.0) or 0.0))


def fused_bias(node, b: PlanBuilder, ins) -> Optional[np.ndarray]:
    """The constant named by ``_bias`` (set by the bias-fusion pass), or None."""
    name = node.attrs.get("_bias")
    if not name:
        return None
    arr = None
    if name in node.inputs:
        v = ins[node.inputs.index(name)]
        arr = None if v is None else v.const
    else:
        v = b.graph_values.get(name)
        arr = None if v is None else v.const
    if arr is None:
        raise UnsupportedModelError(f"{node.describe()}: fused bias '{name}' is not a constant")
    return np.asarray(arr, dtype=np.float32).reshape(-1)


def require_f32(node, *vals) -> None:
    for v in vals:
        if v is not None and np.dtype(v.dtype) != np.float32:
            raise UnsupportedModelError(
                f"{node.describe()}: only float32 is supported, got {np.dtype(v.dtype)}")


def emit_gemm_step(b: PlanBuilder, op: int, t3: Sequence[Tensor], M: int, N: int, K: int, *,
                   mc: int, kc: int, nc: int, ws_floats: int, act=(0, 0.0, 0.0),
                   bias: Optional[Tensor] = None, bias_mode: int = BIAS_NONE,
                   d: Optional[Tensor] = None, rsd: int = 0, csd: int = 0,
                   alpha: float = 1.0, beta: float = 1.0, **fields) -> None:
    """Emit one GEMM-family step: the dsl_gemm_params header from the arguments, the
    sub-op's own fields (``rsa=...``, the conv geometry, ...) from ``fields``."""
    tensors = list(t3)
    bias_slot = d_slot = ws_slot = -1
    if bias is not None:
        bias_slot = len(tensors)
        tensors.append(bias)
    else:
        bias_mode = BIAS_NONE
    if d is not None:
        d_slot = len(tensors)
        tensors.append(d)
    ws_bytes = _round_up(max(int(ws_floats), 0) * 4, 64)
    if ws_bytes:
        ws_slot = len(tensors)
        tensors.append(b.workspace(ws_bytes * b.max_threads, name="gemm_workspace"))
    b.emit(op, tensors, params(
        GEMM_PARAMS, level=b.isa, M=M, N=N, K=K, mc=mc, kc=kc, nc=nc, act=int(act[0]),
        bias_mode=bias_mode, bias_slot=bias_slot, d_slot=d_slot, rsd=rsd, csd=csd,
        ws_slot=ws_slot, ws_bytes=ws_bytes, ws_threads=b.max_threads, alpha=alpha, beta=beta,
        act_a=float(act[1]), act_b=float(act[2]), **fields))


def conv_geometry_fields(images, groups, cin, x_sp, cout, out_sp, kernel, strides, pads, dil) -> dict:
    """The NCHW geometry fields of dsl_gemm_params (1-D convolutions as H = 1)."""
    def as2(v, fill):
        v = [int(t) for t in v]
        return [fill] + v if len(v) == 1 else v
    H, W = as2(x_sp, 1)
    OH, OW = as2(out_sp, 1)
    KH, KW = as2(kernel, 1)
    SH, SW = as2(strides, 1)
    PH, PW = as2(pads, 0)
    DH, DW = as2(dil, 1)
    return dict(images=int(images), groups=int(groups), Cin=int(cin), H=H, W=W, Cout=int(cout),
                OH=OH, OW=OW, KH=KH, KW=KW, SH=SH, SW=SW, PH=PH, PW=PW, DH=DH, DW=DW)


def col_bias_const(b: PlanBuilder, bias: Optional[np.ndarray], N: int) -> Optional[Tensor]:
    """A per-column bias as a constant zero padded to a multiple of NR: the tiles load it
    a vector at a time, also on the last (partial) panel."""
    if bias is None:
        return None
    _, nr = geometry(b.isa)
    padded = np.zeros(_round_up(max(N, 1), nr), np.float32)
    padded[:N] = np.asarray(bias, np.float32).reshape(-1)
    return b.const(padded)


def emit_packed_gemm(b: PlanBuilder, a: Tensor, w: np.ndarray, y: Tensor, M: int, *, rsa: int,
                     csa: int, act=(0, 0.0, 0.0), bias: Optional[np.ndarray] = None,
                     d: Optional[Tensor] = None, rsd: int = 0, csd: int = 0,
                     beta: float = 1.0, allow_sparse: bool = True, allow_bf16: bool = True) -> None:
    """Y[M, N] = act(A·W + bias + beta*D) with constant W (K, N) packed now, or as CSR
    rows (ops/sparse.py) when the per-layer choice says sparse is faster; in bfloat16
    under precision="bf16" unless ``allow_bf16`` is False (an exact interpolation matrix)."""
    from deepsparse_lite.ops import sparse as sp

    K, N = w.shape
    info = None
    if allow_sparse:
        kw = dict(act=act, bias=bias, beta=beta)
        same_d = d is not None

        def dense(bb, ins, out):
            emit_packed_gemm(bb, ins[0], w, out, M, rsa=K, csa=1, allow_sparse=False, **kw,
                             **({"d": ins[1], "rsd": N, "csd": 1} if same_d else {}))

        def sparse(bb, ins, out):
            sp.emit_sparse_gemm(bb, ins[0], w, out, M, rsa=K, csa=1, **kw,
                                **({"d": ins[1], "rsd": N, "csd": 1} if same_d else {}))

        inputs = [(M, K)] + ([(M, N)] if same_d else [])
        use, info = sp.choose(b, "gemm", (M, K, N, same_d, int(act[0])), w.T, dense, sparse,
                              inputs, (M, N))
        if use:
            sp.emit_sparse_gemm(b, a, w, y, M, rsa=rsa, csa=csa, act=act, bias=bias, d=d,
                                rsd=rsd, csd=csd, beta=beta)
            sp.note(b, path="sparse", **info)
            return
    bt = col_bias_const(b, bias, N)
    if b.precision == "bf16" and allow_bf16:
        kg = _kgemm()
        wt = b.const(kg.bf16_pack_b(w), name=f"{b.current_node}_bf16")
        emit_gemm_step(b, GemmOp.GEMM, [a, wt, y], M, N, K, **bf16_blocking(M, N, K, M),
                       act=act, bias=bt, bias_mode=BIAS_COL, d=d, rsd=rsd, csd=csd, beta=beta,
                       rsa=rsa, csa=csa, rsc=N, bf16=1)
        if info is not None:
            sp.note(b, path="dense", **info)
        return
    mc, kc, nc, ws = blocking(b.isa, M, N, K, True, False)
    wt = b.const(pack_b(w, b.isa), name=f"{b.current_node}_packed")
    emit_gemm_step(b, GemmOp.GEMM, [a, wt, y], M, N, K, mc=mc, kc=kc, nc=nc, ws_floats=ws,
                   act=act, bias=bt, bias_mode=BIAS_COL, d=d, rsd=rsd, csd=csd, beta=beta,
                   rsa=rsa, csa=csa, rsc=N)
    if info is not None:
        sp.note(b, path="dense", **info)


def bf16_blocking(M: int, N: int, K: int, runtime_rows: int) -> dict:
    """The header fields of a bfloat16 GEMM step (csrc/bf16_gemm.h: 32 x 32 blocks; the
    workspace holds a chunk of the run-time operand of ``runtime_rows`` rows)."""
    ws = _kgemm().bf16_workspace_bytes(runtime_rows, K)
    return dict(mc=_round_up(max(M, 1), 32), kc=max(K, 1), nc=_round_up(max(N, 1), 32),
                ws_floats=(ws + 3) // 4)


def emit_matmul(b: PlanBuilder, a: Tensor, bm: Tensor, y: Tensor, M: int, N: int, K: int, *,
                rsa: int, csa: int, rsb: int, csb: int, rsc: int,
                batch: Sequence[int] = (), sa: Sequence[int] = (), sb: Sequence[int] = (),
                sc: Sequence[int] = (), sd: Sequence[int] = (), alpha: float = 1.0,
                act=(0, 0.0, 0.0), bias: Optional[np.ndarray] = None,
                d: Optional[Tensor] = None, rsd: int = 0, csd: int = 0, beta: float = 1.0,
                node_desc: str = "MatMul") -> None:
    """Batched Y = act(alpha * A·B + bias + beta*D), both operands runtime, element strides."""
    batch = list(batch)
    sd = list(sd) if sd else [0] * len(batch)
    if batch:
        shp, (sa, sb, sc, sd) = merge_dims(batch, sa, sb, sc, sd)
        batch = [int(x) for x in shp]
        if batch == [1]:
            batch, sa, sb, sc, sd = [], [], [], [], []
    # one tall GEMM when B (and D) do not vary over the batch and A/Y rows are contiguous
    if (len(batch) == 1 and sb[0] == 0 and sd[0] == 0 and sa[0] == M * rsa and csa == 1
            and sc[0] == M * rsc and (d is None or rsd == 0 or sd[0] == M * rsd)):
        M, batch, sa, sb, sc, sd = M * batch[0], [], [], [], [], []
    if len(batch) > MAX_BATCH_DIMS:
        raise UnsupportedModelError(f"{node_desc}: more than {MAX_BATCH_DIMS} independent batch dims")
    nb = len(batch)
    bt = col_bias_const(b, bias, N)
    if b.precision == "bf16":  # both operands packed to bfloat16 per call
        blk = bf16_blocking(M, N, K, M)
        blk["ws_floats"] = (_kgemm().bf16_workspace_bytes(M, K, N) + 3) // 4
        blk["bf16"] = 1
    else:
        mc, kc, nc, ws = blocking(b.isa, M, N, K, True, True)
        blk = dict(mc=mc, kc=kc, nc=nc, ws_floats=ws)
    emit_gemm_step(b, GemmOp.MATMUL, [a, bm, y], M, N, K, **blk,
                   act=act, bias=bt, bias_mode=BIAS_COL, d=d, rsd=rsd, csd=csd, alpha=alpha,
                   beta=beta, rsa=rsa, csa=csa, rsb=rsb, csb=csb, rsc=rsc, nb=nb,
                   batch=list(batch) + [1] * (MAX_BATCH_DIMS - nb), sa=list(sa), sb=list(sb),
                   sc=list(sc), sd=list(sd))


# --------------------------------------------------------------------------------------
# MatMul
# --------------------------------------------------------------------------------------

def matmul_shape(a: Sequence[int], b: Sequence[int], node=None) -> Tuple[int, ...]:
    where = f" in {node.describe()}" if node is not None else ""
    if len(a) == 0 or len(b) == 0:
        raise UnsupportedModelError(f"MatMul of a scalar{where}")
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        raise UnsupportedModelError(f"MatMul shapes {tuple(a)} x {tuple(b)} do not match{where}")
    out = broadcast_shape(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:] if len(b) != 1 else out[:-1]
    return tuple(int(x) for x in out)


def _batch_strides(shape: Sequence[int], batch: Sequence[int]) -> List[int]:
    """Element strides of the leading (batch) dims of a contiguous ``shape`` (rank >= 2)
    against the broadcast batch shape: 0 where the operand broadcasts."""
    full = contiguous_strides(shape, 1)
    nb = len(batch)
    own = list(shape[:-2])
    own_st = list(full[:-2])
    lead = nb - len(own)
    own = [1] * lead + own
    own_st = [0] * lead + own_st
    return [0 if own[k] == 1 and batch[k] != 1 else int(own_st[k]) for k in range(nb)]


@register("MatMul")
class MatMul(OpDef):
    def infer(self, node, ins):
        require_f32(node, ins[0], ins[1])
        return [(matmul_shape(ins[0].shape, ins[1].shape, node), np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        A, B = ins[0], ins[1]
        require_f32(node, A, B)
        act = act_of(node)
        bias = fused_bias(node, b, ins)
        a_shape = (1,) + tuple(A.shape) if A.rank == 1 else tuple(A.shape)
        b_shape = tuple(B.shape) + (1,) if B.rank == 1 else tuple(B.shape)
        M, K, N = a_shape[-2], a_shape[-1], b_shape[-1]
        if bias is not None and bias.size != N:
            bias = np.broadcast_to(bias, (N,)).copy() if bias.size == 1 else None
            if bias is None:
                raise UnsupportedModelError(f"{node.describe()}: fused bias does not match N={N}")
        y = b.output(outs[0].name, outs[0].shape, np.float32)
        a_t = b.value(A.name)
        # constant weights without real batch dims (2-D, or leading 1s that A's rank covers)
        addend = node.attrs.get("_addend")  # a fused residual laid out like Y
        if B.const is not None and (len(b_shape) == 2 or (
                all(d == 1 for d in b_shape[:-2]) and len(a_shape) >= len(b_shape))):
            rows = int(np.prod(a_shape[:-1]))
            emit_packed_gemm(b, a_t, np.asarray(B.const, np.float32).reshape(K, N), y, rows,
                             rsa=K, csa=1, act=act, bias=bias,
                             **({"d": b.value(addend), "rsd": N, "csd": 1} if addend else {}))
            return
        if addend:
            raise UnsupportedModelError(f"{node.describe()}: a fused addend needs constant 2-D weights")
        if A.const is not None and len(a_shape) == 2 and B.rank >= 2 and bias is None:
            # constant left operand (W @ X): a 1x1 convolution over the batch of X, with W
            # packed now as the A panels and X read directly as B
            emit_const_left(b, np.asarray(A.const, np.float32), b.value(B.name), y, b_shape, act)
            return
        batch = broadcast_shape(a_shape[:-2], b_shape[:-2])
        sc = contiguous_strides(tuple(batch) + (M, N), 1)[:-2]
        emit_matmul(b, a_t, b.value(B.name), y, M, N, K, rsa=K, csa=1, rsb=N, csb=1, rsc=N,
                    batch=batch, sa=_batch_strides(a_shape, batch),
                    sb=_batch_strides(b_shape, batch), sc=sc, act=act, bias=bias,
                    node_desc=node.describe())


def emit_const_left(b: PlanBuilder, w: np.ndarray, x: Tensor, y: Tensor, x_shape, act=(0, 0.0, 0.0),
                    bias: Optional[np.ndarray] = None) -> None:
    """Y[..., M, N] = W[M, K] · X[..., K, N] (+ bias[M] per row) as the CONV sub-op (1x1,
    one row of N pixels)."""
    M, K = w.shape
    N = x_shape[-1]
    batch = int(np.prod(x_shape[:-2], dtype=np.int64))
    mc, kc, nc, ws = blocking(b.isa, M, N, K, False, True)
    bt = None if bias is None else b.const(np.asarray(bias, np.float32).reshape(-1))
    emit_gemm_step(b, GemmOp.CONV, [x, b.const(pack_a(w, b.isa), name=f"{b.current_node}_packed"), y],
                   M, N, K, mc=mc, kc=kc, nc=nc, ws_floats=ws, act=act, bias=bt, bias_mode=BIAS_ROW,
                   **conv_geometry_fields(batch, 1, K, (1, N), M, (1, N), (1, 1), (1, 1), (0, 0),
                                          (1, 1)), direct=1)


# --------------------------------------------------------------------------------------
# Gemm
# --------------------------------------------------------------------------------------

@register("Gemm")
class Gemm(OpDef):
    def infer(self, node, ins):
        A, B = ins[0], ins[1]
        require_f32(node, A, B)
        if A.rank != 2 or B.rank != 2:
            raise UnsupportedModelError(f"{node.describe()}: Gemm needs 2-D A and B")
        ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        M, K = (A.shape[1], A.shape[0]) if ta else A.shape
        K2, N = (B.shape[1], B.shape[0]) if tb else B.shape
        if K != K2:
            raise UnsupportedModelError(f"{node.describe()}: Gemm inner dims {K} != {K2}")
        C = ins[2] if len(ins) > 2 else None
        if C is not None:
            broadcast_shape(C.shape, (M, N))
        return [((int(M), int(N)), np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        A, B = ins[0], ins[1]
        C = ins[2] if len(ins) > 2 and not (node.attrs.get("_bias") and len(node.inputs) > 2
                                               and node.inputs[2] == node.attrs.get("_bias")) else None
        require_f32(node, A, B, C)
        ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
        alpha, beta = float(node.attrs.get("alpha", 1.0)), float(node.attrs.get("beta", 1.0))
        M, N = outs[0].shape
        K = A.shape[0] if ta else A.shape[1]
        act = act_of(node)
        rsa, csa = (1, M) if ta else (K, 1)
        bias = fused_bias(node, b, ins)
        if bias is not None:
            bias = np.broadcast_to(bias, (N,)).astype(np.float32)
        d, rsd, csd = None, 0, 0
        if C is not None and beta != 0.0:
            c2 = (1,) * (2 - C.rank) + tuple(C.shape)
            if C.const is not None and c2[0] == 1:  # per output column: fold into the bias
                cb = beta * np.broadcast_to(np.asarray(C.const, np.float32).reshape(c2), (1, N))[0]
                bias = cb.astype(np.float32) if bias is None else (bias + cb).astype(np.float32)
            else:
                d = b.value(C.name)
                rsd = c2[1] if c2[0] != 1 else 0
                csd = 1 if c2[1] != 1 else 0
        a_t = b.value(A.name)
        y = b.output(outs[0].name, (M, N), np.float32)
        if B.const is not None:
            w = np.asarray(B.const, np.float32)
            w = w.T if tb else w
            if alpha != 1.0:  # folded into the packed weights
                w = w * np.float32(alpha)
            emit_packed_gemm(b, a_t, w, y, M, rsa=rsa, csa=csa, act=act, bias=bias, d=d,
                             rsd=rsd, csd=csd, beta=beta)
            return
        rsb, csb = (1, K) if tb else (N, 1)
        emit_matmul(b, a_t, b.value(B.name), y, M, N, K, rsa=rsa, csa=csa, rsb=rsb, csb=csb,
                    rsc=N, alpha=alpha, act=act, bias=bias, d=d, rsd=rsd, csd=csd, beta=beta,
                    node_desc=node.describe())


# --------------------------------------------------------------------------------------
# Einsum (two-operand contractions, plus pure transposes)
# --------------------------------------------------------------------------------------

def _parse_einsum(eq: str, ranks: Sequence[int], node) -> Tuple[List[str], str]:
    eq = eq.replace(" ", "")
    if "->" in eq:
        lhs, rhs = eq.split("->")
        explicit = True
    else:
        lhs, rhs, explicit = eq, "", False
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise UnsupportedModelError(f"{node.describe()}: equation '{eq}' has {len(terms)} operands, got {len(ranks)}")
    used = set(c for c in eq if c.isalpha())
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    ell_rank = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            ell_rank = max(ell_rank, r - (len(t) - 3))
    ell = "".join(free[:ell_rank])
    out_terms = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            n = r - (len(t) - 3)
            t = t.replace("...", ell[ell_rank - n:] if n else "")
        if len(t) != r:
            raise UnsupportedModelError(f"{node.describe()}: term '{t}' does not match rank {r}")
        out_terms.append(t)
    if explicit:
        rhs = rhs.replace("...", ell)
    else:
        counts = {}
        for t in out_terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        rhs = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return out_terms, rhs


def _einsum_shape(terms, rhs, shapes, node):
    """Size of every index (a size-1 dim broadcasts against a larger one) and the output shape."""
    size = {}
    for t, shp in zip(terms, shapes):
        for c, d in zip(t, shp):
            d = int(d)
            if c not in size or size[c] == 1:
                size[c] = d
            elif d not in (1, size[c]):
                raise UnsupportedModelError(f"{node.describe()}: index '{c}' has sizes {size[c]} and {d}")
    return size, tuple(size[c] for c in rhs)


@register("Einsum")
class Einsum(OpDef):
    def infer(self, node, ins):
        require_f32(node, *ins)
        terms, rhs = _parse_einsum(str(node.attrs.get("equation", "")), [v.rank for v in ins], node)
        _, out = _einsum_shape(terms, rhs, [v.shape for v in ins], node)
        return [(out, np.dtype(np.float32))]

    def lower(self, node, b, ins, outs):
        require_f32(node, *ins)
        eq = str(node.attrs.get("equation", ""))
        terms, rhs = _parse_einsum(eq, [v.rank for v in ins], node)
        size, out_shape = _einsum_shape(terms, rhs, [v.shape for v in ins], node)
        for t in terms + [rhs]:
            if len(set(t)) != len(t):
                raise UnsupportedModelError(f"{node.describe()}: repeated index in '{eq}' (diagonals) is not supported")
        y = b.output(outs[0].name, out_shape, np.float32)
        if len(ins) == 1:
            if sorted(terms[0]) != sorted(rhs):
                raise UnsupportedModelError(f"{node.describe()}: single-operand Einsum '{eq}' must be a transpose")
            st = contiguous_strides(ins[0].shape, 4)
            emit_copy(b, b.value(ins[0].name), y, out_shape,
                      [st[terms[0].index(c)] for c in rhs], contiguous_strides(out_shape, 4))
            return
        if len(ins) != 2:
            raise UnsupportedModelError(f"{node.describe()}: Einsum with {len(ins)} operands is not supported")
        _lower_einsum2(node, b, ins, terms, rhs, size, y)


def _strides_of(term: str, shape) -> dict:
    st = contiguous_strides(shape, 1)
    return {c: (0 if shape[k] == 1 else int(st[k])) for k, c in enumerate(term)}


def _merged(letters: str, st: dict, size: dict) -> Optional[int]:
    """Single element stride of the dims ``letters`` (in this order) viewed as one dim, or
    None when they are not evenly strided. Size-1 dims do not matter."""
    ls = [c for c in letters if size[c] != 1]
    if not ls:
        return 0
    for x, y in zip(ls, ls[1:]):
        if st[x] != st[y] * size[y]:
            return None
    return st[ls[-1]]


def _lower_einsum2(node, b, ins, terms, rhs, size, y):
    ta, tb = terms
    for c in ta + tb:
        if c not in rhs and not (c in ta and c in tb):
            raise UnsupportedModelError(f"{node.describe()}: index '{c}' is summed in one operand only")
    batch = "".join(c for c in rhs if c in ta and c in tb)
    ms = "".join(c for c in rhs if c in ta and c not in tb)
    ns = "".join(c for c in rhs if c in tb and c not in ta)
    ks = "".join(c for c in ta if c in tb and c not in rhs)
    for c in ms + ns + ks:  # only batch (shared output) indices may broadcast
        dims = [v.shape[t.index(c)] for t, v in zip(terms, ins) if c in t]
        if any(d != size[c] for d in dims):
            raise UnsupportedModelError(f"{node.describe()}: index '{c}' broadcasts in '{ta},{tb}->{rhs}'")
    M = int(np.prod([size[c] for c in ms], dtype=np.int64))
    N = int(np.prod([size[c] for c in ns], dtype=np.int64))
    K = int(np.prod([size[c] for c in ks], dtype=np.int64))
    A, B = ins
    a_t, b_t = b.value(A.name), b.value(B.name)
    sa, sb = _strides_of(ta, A.shape), _strides_of(tb, B.shape)

    def canonical(t, v, tt, groups):
        """A contiguous copy of operand t laid out as concatenated ``groups``."""
        order = "".join(groups)
        shape = tuple(v.shape[tt.index(c)] for c in order)
        dst = b.temp(shape, np.float32, name=f"{v.name}_einsum")
        st = contiguous_strides(v.shape, 4)
        emit_copy(b, t, dst, shape, [st[tt.index(c)] for c in order], contiguous_strides(shape, 4))
        return dst, _strides_of(order, shape), order

    rsa, csa = _merged(ms, sa, size), _merged(ks, sa, size)
    if rsa is None or csa is None:
        a_t, sa, ta = canonical(a_t, A, ta, [batch, ms, ks])
        rsa, csa = _merged(ms, sa, size), _merged(ks, sa, size)
    rsb, csb = _merged(ks, sb, size), _merged(ns, sb, size)
    if rsb is None or csb is None:
        b_t, sb, tb = canonical(b_t, B, tb, [batch, ks, ns])
        rsb, csb = _merged(ks, sb, size), _merged(ns, sb, size)
    # the kernel wants unit-free strides for 1-long dims: any value works, keep them sane
    rsa = rsa if M > 1 else K
    csa = csa if K > 1 else 1
    rsb = rsb if K > 1 else N
    csb = csb if N > 1 else 1
    canon = batch + ms + ns
    bshape = [size[c] for c in batch]
    if canon == rhs:
        out = y
    else:
        out = b.temp(tuple(size[c] for c in canon), np.float32, name=f"{node.name}_einsum_out")
    sc_all = contiguous_strides(tuple(size[c] for c in canon), 1)
    sc = list(sc_all[:len(batch)])
    A_b = [0 if (c not in ta or A.shape[ta.index(c)] == 1) else sa[c] for c in batch]
    B_b = [0 if (c not in tb or B.shape[tb.index(c)] == 1) else sb[c] for c in batch]
    if B.const is not None and not batch and len(tb) >= 1 and K > 0:
        w = np.einsum(f"{tb}->{ks}{ns}", np.asarray(B.const, np.float32)).reshape(K, N)
        emit_packed_gemm(b, a_t, w, out, M, rsa=rsa, csa=csa)
    else:
        emit_matmul(b, a_t, b_t, out, M, N, K, rsa=rsa, csa=csa, rsb=rsb, csb=csb, rsc=N,
                    batch=bshape, sa=A_b, sb=B_b, sc=sc, node_desc=node.describe())
    if out is not y:
        cshape = tuple(size[c] for c in canon)
        st = contiguous_strides(cshape, 4)
        emit_copy(b, out, y, tuple(size[c] for c in rhs), [st[canon.index(c)] for c in rhs],
                  contiguous_strides(tuple(size[c] for c in rhs), 4))
