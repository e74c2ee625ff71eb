"""Reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp, ArgMax/ArgMin, TopK.

Every reduction is normalised here, at compile time, to the contiguous [outer, n, inner]
layout the kernels of kernels/reduce.pyx work on: size-1 dims are dropped and adjacent dims
of the same kind (kept / reduced) merged. When the reduced axes are still not one block
(e.g. axes (0, 2) of [A, B, C, D]) a strided copy (ops.base.emit_copy) first moves the
kept blocks in front of the reduced ones into an arena temporary, keeping the trailing
kept block last so the kernel still vectorises along it.

Opset differences handled: ``axes`` is an attribute before ReduceSum-13 / other Reduce-18
and an (optional, constant) input from then on; ``noop_with_empty_axes`` (13 / 18);
ArgMax ``select_last_index`` (12); TopK ``k`` attribute (1) vs input (10) and ``largest`` /
``sorted`` (11). TopK always returns sorted results (allowed when sorted=0).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, contiguous_strides,
                                      emit_contiguous_copy, emit_copy, normalize_axis, op_id,
                                      register)
from deepsparse_lite import step_params as sp
from deepsparse_lite.plan import DType, Family, PlanBuilder, Tensor


class ReduceOp:
    """Sub-op numbers of the reduce family (kernels/reduce.pyx documents the layouts)."""
    REDUCE = op_id(Family.REDUCE, 1)
    ARG = op_id(Family.REDUCE, 2)
    TOPK = op_id(Family.REDUCE, 3)
    SOFTMAX = op_id(Family.REDUCE, 4)
    LAYERNORM = op_id(Family.REDUCE, 5)
    AFFINE = op_id(Family.REDUCE, 6)
    BN_PREP = op_id(Family.REDUCE, 7)
    LRN = op_id(Family.REDUCE, 8)
    INSTNORM = op_id(Family.REDUCE, 9)


class RK:
    """Reduce kinds (i[0] of REDUCE), mirrored from csrc/reduce_f32.h DSL_RK_*."""
    SUM = 0
    MEAN = 1
    MAX = 2
    MIN = 3
    PROD = 4
    L2 = 5
    L1 = 6
    SUMSQ = 7
    LOGSUM = 8
    LOGSUMEXP = 9


REDUCE_KINDS = {
    "ReduceSum": RK.SUM, "ReduceMean": RK.MEAN, "ReduceMax": RK.MAX, "ReduceMin": RK.MIN,
    "ReduceProd": RK.PROD, "ReduceL2": RK.L2, "ReduceL1": RK.L1, "ReduceSumSquare": RK.SUMSQ,
    "ReduceLogSum": RK.LOGSUM, "ReduceLogSumExp": RK.LOGSUMEXP,
}
#: integer reductions the kernel implements (exact in int64)
I64_KINDS = {RK.SUM, RK.MAX, RK.MIN, RK.PROD, RK.L1, RK.SUMSQ}


def _prod(dims) -> int:
    return int(np.prod([int(d) for d in dims], dtype=np.int64))


def reduce_layout(shape: Sequence[int], axes: Sequence[int]):
    """Group ``shape`` for a reduction over ``axes``.

    Returns (outer, n, inner, perm_groups) where perm_groups is None when the reduced dims
    already form one block; otherwise it is a list of (size, src_stride_elems) in the order
    a copy must lay them out so that they do: [kept..., reduced..., trailing kept].
    """
    red = set(axes)
    groups: List[Tuple[int, bool, int]] = []  # (size, reduced, stride in elements)
    strides = contiguous_strides(shape, 1)
    for d, size in enumerate(shape):
        size = int(size)
        if size == 1:
            continue
        r = d in red
        if groups and groups[-1][1] == r:
            ps, _, _ = groups[-1]
            groups[-1] = (ps * size, r, strides[d])
        else:
            groups.append((size, r, strides[d]))
    rgroups = [g for g in groups if g[1]]
    n = _prod([g[0] for g in rgroups]) if rgroups else 1
    if len(rgroups) <= 1:
        outer = inner = 1
        seen = False
        for size, r, _ in groups:
            if r:
                seen = True
            elif seen:
                inner *= size
            else:
                outer *= size
        return outer, n, inner, None
    trailing = groups[-1] if not groups[-1][1] else None
    kept = [g for g in groups if not g[1] and g is not trailing]
    order = kept + rgroups + ([trailing] if trailing else [])
    outer = _prod([g[0] for g in kept]) if kept else 1
    inner = trailing[0] if trailing else 1
    return outer, n, inner, [(g[0], g[2]) for g in order]


def emit_reduce(b: PlanBuilder, kind: int, x: Tensor, y: Tensor, axes: Sequence[int],
                what: str = "reduction") -> None:
    """Emit REDUCE of ``x`` over ``axes`` into ``y`` (y has the kept dims in order)."""
    dt = np.dtype(x.dtype)
    if dt == np.float32:
        code = DType.F32
    elif dt == np.int64 and kind in I64_KINDS:
        code = DType.I64
    elif dt == np.float64:
        code = DType.F64
    else:
        raise UnsupportedModelError(f"{what}: element type {dt} is not supported for this reduction")
    outer, n, inner, perm = reduce_layout(x.shape, axes)
    src = x
    if perm is not None:
        esz = dt.itemsize
        sizes = [s for s, _ in perm]
        src = b.temp(tuple(sizes), dt, name=f"{x.name}_reduce_perm")
        emit_copy(b, x, src, sizes, [st * esz for _, st in perm], contiguous_strides(sizes, esz))
    scale = 1.0 / n if kind == RK.MEAN else 1.0
    b.emit(ReduceOp.REDUCE, [src, y], sp.params(sp.REDUCE, kind=kind, dtype=int(code), outer=outer,
                                                n=n, inner=inner, level=b.isa, scale=scale))


def reduce_axes(node, ins) -> Optional[List[int]]:
    """The axes of a Reduce* node: attribute (old opsets) or constant input 1 (new ones)."""
    if "axes" in node.attrs and node.attrs["axes"] is not None:
        return [int(a) for a in node.attrs["axes"]]
    if len(ins) > 1 and ins[1] is not None:
        if not ins[1].is_const:
            raise UnsupportedModelError(f"{node.describe()}: axes must be a constant")
        return [int(a) for a in np.asarray(ins[1].const).reshape(-1)]
    return None


@register(*REDUCE_KINDS)
class Reduce(OpDef):
    def _plan(self, node, ins):
        x = ins[0]
        rank = len(x.shape)
        axes = reduce_axes(node, ins)
        keepdims = int(node.attrs.get("keepdims", 1))
        noop = int(node.attrs.get("noop_with_empty_axes", 0))
        if not axes:
            if noop:
                return None, tuple(x.shape)
            axes = list(range(rank))
        axes = sorted({normalize_axis(a, rank, node) for a in axes})
        if keepdims:
            out = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
        else:
            out = tuple(s for d, s in enumerate(x.shape) if d not in axes)
        if any(int(x.shape[a]) == 0 for a in axes):
            raise UnsupportedModelError(f"{node.describe()}: reduction over an empty axis")
        return axes, out

    def infer(self, node, ins):
        _, out = self._plan(node, ins)
        return [(out, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        axes, out = self._plan(node, ins)
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], out, ins[0].dtype)
        if axes is None:   # noop_with_empty_axes and no axes: identity
            emit_contiguous_copy(b, x, y)
            return
        if y.size == 0:
            return
        emit_reduce(b, REDUCE_KINDS[node.op_type], x, y, axes, node.describe())


@register("ArgMax", "ArgMin")
class Arg(OpDef):
    def _plan(self, node, ins):
        x = ins[0]
        rank = len(x.shape)
        axis = normalize_axis(int(node.attrs.get("axis", 0)), rank, node)
        keepdims = int(node.attrs.get("keepdims", 1))
        if keepdims:
            out = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
        else:
            out = tuple(s for d, s in enumerate(x.shape) if d != axis)
        return axis, out

    def infer(self, node, ins):
        _, out = self._plan(node, ins)
        return [(out, np.dtype(np.int64))]

    def lower(self, node, b, ins, outs):
        axis, out = self._plan(node, ins)
        dt = np.dtype(ins[0].dtype)
        if dt == np.float32:
            code = DType.F32
        elif dt == np.int64:
            code = DType.I64
        else:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        shape = ins[0].shape
        n = int(shape[axis])
        if n == 0:
            raise UnsupportedModelError(f"{node.describe()}: ArgMax/ArgMin over an empty axis")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], out, np.int64)
        if y.size == 0:
            return
        last = int(node.attrs.get("select_last_index", 0)) if node.opset >= 12 else 0
        b.emit(ReduceOp.ARG, [x, y], sp.params(
            sp.ARG, is_min=1 if node.op_type == "ArgMin" else 0, dtype=int(code),
            outer=_prod(shape[:axis]), n=n, inner=_prod(shape[axis + 1:]), select_last=last,
            level=b.isa))


@register("TopK")
class TopK(OpDef):
    def _plan(self, node, ins):
        x = ins[0]
        rank = len(x.shape)
        axis = normalize_axis(int(node.attrs.get("axis", -1)), rank, node)
        if node.opset < 10 or "k" in node.attrs:
            k = int(node.attrs["k"])
        else:
            if len(ins) < 2 or ins[1] is None or not ins[1].is_const:
                raise UnsupportedModelError(f"{node.describe()}: k must be a constant")
            k = int(np.asarray(ins[1].const).reshape(-1)[0])
        if k < 0 or k > int(x.shape[axis]):
            raise UnsupportedModelError(f"{node.describe()}: k={k} is out of range for axis of "
                                        f"size {x.shape[axis]}")
        out = tuple(k if d == axis else s for d, s in enumerate(x.shape))
        return axis, k, out

    def infer(self, node, ins):
        _, _, out = self._plan(node, ins)
        return [(out, ins[0].dtype), (out, np.dtype(np.int64))]

    def lower(self, node, b, ins, outs):
        axis, k, out = self._plan(node, ins)
        dt = np.dtype(ins[0].dtype)
        if dt == np.float32:
            code = DType.F32
        elif dt == np.int64:
            code = DType.I64
        else:
            raise UnsupportedModelError(f"{node.describe()}: element type {dt} is not supported")
        x = b.value(node.inputs[0])
        names = list(node.outputs) + [""] * (2 - len(node.outputs))
        # an omitted output still needs somewhere to go: an arena temporary
        vals = b.output(names[0], out, dt) if names[0] else b.temp(out, dt, name="topk_values")
        idx = b.output(names[1], out, np.int64) if names[1] else b.temp(out, np.int64, name="topk_idx")
        if vals.size == 0:
            return
        largest = int(node.attrs.get("largest", 1)) if node.opset >= 11 else 1
        shape = ins[0].shape
        b.emit(ReduceOp.TOPK, [x, vals, idx], sp.params(
            sp.TOPK, dtype=int(code), outer=_prod(shape[:axis]), n=int(shape[axis]),
            inner=_prod(shape[axis + 1:]), k=k, largest=largest))
