"""Data-movement ops: Transpose, Slice, Concat, Split, Expand, Tile, Pad, Gather,
GatherElements, DepthToSpace, SpaceToDepth (and, through ops/resize.py, Resize / Upsample).

Everything that is a fixed rearrangement of elements becomes one or a few COPY steps (the
N-d strided copy of kernels/data.pyx) whose byte strides are computed here at compile time:
a transpose permutes the source strides, a slice offsets and scales them, Expand and Tile use
zero strides, Pad's edge / reflect / wrap modes copy inside the output with zero or negative
strides. Only index-driven ops (Gather with runtime indices, GatherElements, Resize) get
their own kernels.

Every op writes a fresh output tensor (``b.output``); pure views are the shape ops' business.
"""
from __future__ import annotations

from typing import List, Optional

import numpy as np

from deepsparse_lite.plan import MAX_NDIM, Family, PlanBuilder, Tensor, dtype_code
from deepsparse_lite import step_params as sp
from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, broadcast_shape,
                                      contiguous_strides, emit_copy, emit_fill, ints_attr,
                                      merge_dims, normalize_axis, op_id, register)

#: Sub-ops of the data family beyond COPY (1) and FILL (2); see kernels/data.pyx.
GATHER = op_id(Family.DATA, 3)
GATHER_ELEMENTS = op_id(Family.DATA, 4)
# 5 RESIZE_NEAREST and 6 RESIZE_LINEAR: ops/resize.py

INDEX_DTYPES = (np.dtype(np.int64), np.dtype(np.int32))


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _esz(v) -> int:
    return np.dtype(v.dtype).itemsize


def _const_ints(node, ins, k: int, what: str) -> Optional[List[int]]:
    """Integer list from optional input k (None when omitted); it must be a constant."""
    if k >= len(ins) or ins[k] is None:
        return None
    if ins[k].const is None:
        raise UnsupportedModelError(
            f"{node.describe()}: input '{what}' must be a constant (static shapes only)")
    return [int(x) for x in np.asarray(ins[k].const).reshape(-1)]


def _copy(b: PlanBuilder, src: Tensor, dst: Tensor, shape, ss, ds, soff: int = 0,
          doff: int = 0) -> None:
    """emit_copy that also handles more than MAX_NDIM dims after merging (one copy per
    leading index); soff may be any byte offset that keeps every access in bounds."""
    shape = [int(n) for n in shape]
    if any(n == 0 for n in shape):
        return
    shp, (mss, mds) = merge_dims(shape, ss, ds)
    extra = len(shp) - MAX_NDIM
    if extra <= 0:
        emit_copy(b, src, dst, shp, mss, mds, soff, doff)
        return
    for lead in np.ndindex(*shp[:extra]):
        so = soff + sum(i * s for i, s in zip(lead, mss[:extra]))
        do = doff + sum(i * s for i, s in zip(lead, mds[:extra]))
        emit_copy(b, src, dst, shp[extra:], mss[extra:], mds[extra:], so, do)


def _emit_permute(b: PlanBuilder, src: Tensor, dst: Tensor, in_shape, perm) -> None:
    """dst (contiguous, shape in_shape permuted) = transpose(src viewed as in_shape, perm)."""
    esz = np.dtype(src.dtype).itemsize
    ss = contiguous_strides(in_shape, esz)
    out_shape = [in_shape[p] for p in perm]
    _copy(b, src, dst, out_shape, [ss[p] for p in perm], contiguous_strides(out_shape, esz))


def _out(b, outs, k=0):
    o = outs[k]
    return b.output(o.name, o.shape, o.dtype)


def _numel(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


# --------------------------------------------------------------------------------------
# Transpose, DepthToSpace, SpaceToDepth
# --------------------------------------------------------------------------------------

def _perm(node, rank):
    perm = ints_attr(node, "perm")
    if perm is None:
        return list(range(rank))[::-1]
    perm = [normalize_axis(p, rank, node) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise UnsupportedModelError(f"{node.describe()}: perm {perm} is not a permutation")
    return perm


@register("Transpose")
class Transpose(OpDef):
    def infer(self, node, ins):
        x = ins[0]
        return [(tuple(x.shape[p] for p in _perm(node, x.rank)), x.dtype)]

    def lower(self, node, b, ins, outs):
        _emit_permute(b, b.value(ins[0].name), _out(b, outs), ins[0].shape,
                      _perm(node, ins[0].rank))


def _d2s_plan(node, shape):
    if len(shape) != 4:
        raise UnsupportedModelError(f"{node.describe()}: expects a 4-D input, got {shape}")
    bs = int(node.attr("blocksize"))
    n, c, h, w = shape
    if node.op_type == "DepthToSpace":
        if c % (bs * bs):
            raise UnsupportedModelError(f"{node.describe()}: C={c} not divisible by blocksize^2")
        mode = node.attr("mode", "DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode == "DCR":
            tmp, perm = (n, bs, bs, c // (bs * bs), h, w), [0, 3, 4, 1, 5, 2]
        else:
            tmp, perm = (n, c // (bs * bs), bs, bs, h, w), [0, 1, 4, 2, 5, 3]
        out = (n, c // (bs * bs), h * bs, w * bs)
    else:
        if h % bs or w % bs:
            raise UnsupportedModelError(f"{node.describe()}: H, W not divisible by blocksize")
        mode = node.attr("mode", "DCR")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        tmp = (n, c, h // bs, bs, w // bs, bs)
        perm = [0, 3, 5, 1, 2, 4] if mode != "CRD" else [0, 1, 3, 5, 2, 4]
        out = (n, c * bs * bs, h // bs, w // bs)
    return tmp, perm, out


@register("DepthToSpace", "SpaceToDepth")
class DepthSpace(OpDef):
    def infer(self, node, ins):
        return [(_d2s_plan(node, ins[0].shape)[2], ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        tmp, perm, _ = _d2s_plan(node, ins[0].shape)
        _emit_permute(b, b.value(ins[0].name), _out(b, outs), tmp, perm)


# --------------------------------------------------------------------------------------
# Slice
# --------------------------------------------------------------------------------------

def _slice_plan(node, ins):
    x = ins[0]
    rank = x.rank
    if node.opset < 10:
        starts, ends = ints_attr(node, "starts"), ints_attr(node, "ends")
        axes, steps = ints_attr(node, "axes"), None
    else:
        starts = _const_ints(node, ins, 1, "starts")
        ends = _const_ints(node, ins, 2, "ends")
        axes = _const_ints(node, ins, 3, "axes")
        steps = _const_ints(node, ins, 4, "steps")
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        raise UnsupportedModelError(f"{node.describe()}: starts/ends/axes/steps lengths differ")
    begin = [0] * rank
    step = [1] * rank
    length = list(x.shape)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        a = normalize_axis(ax, rank, node)
        if sp == 0:
            raise UnsupportedModelError(f"{node.describe()}: slice step 0")
        # Python's slice clamping is ONNX's: [0, dim] for positive steps, [-1, dim-1] for
        # negative ones, after adding dim to negative starts/ends.
        r = range(x.shape[a])[slice(st, en, sp)]
        begin[a], step[a], length[a] = (r.start if len(r) else 0), sp, len(r)
    return begin, step, tuple(length)


@register("Slice")
class Slice(OpDef):
    def infer(self, node, ins):
        return [(_slice_plan(node, ins)[2], ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        begin, step, shape = _slice_plan(node, ins)
        esz = _esz(ins[0])
        ss = contiguous_strides(ins[0].shape, esz)
        _copy(b, b.value(ins[0].name), _out(b, outs), shape,
              [s * k for s, k in zip(ss, step)], contiguous_strides(shape, esz),
              soff=sum(i * s for i, s in zip(begin, ss)))


# --------------------------------------------------------------------------------------
# Concat, Split
# --------------------------------------------------------------------------------------

@register("Concat")
class Concat(OpDef):
    def infer(self, node, ins):
        xs = [v for v in ins if v is not None]
        rank = xs[0].rank
        axis = normalize_axis(node.attr("axis", 0), rank, node)
        shape = list(xs[0].shape)
        for v in xs[1:]:
            if v.rank != rank or any(v.shape[d] != shape[d] for d in range(rank) if d != axis):
                raise UnsupportedModelError(f"{node.describe()}: shapes {[v.shape for v in xs]} "
                                            "do not concatenate")
        shape[axis] = sum(v.shape[axis] for v in xs)
        return [(tuple(shape), xs[0].dtype)]

    def lower(self, node, b, ins, outs):
        xs = [v for v in ins if v is not None]
        axis = normalize_axis(node.attr("axis", 0), xs[0].rank, node)
        dst = _out(b, outs)
        esz = _esz(xs[0])
        ds = contiguous_strides(dst.shape, esz)
        pos = 0
        for v in xs:  # one strided copy per input, at its offset along the axis
            if _numel(v.shape):
                _copy(b, b.value(v.name), dst, v.shape, contiguous_strides(v.shape, esz), ds,
                      doff=pos * ds[axis])
            pos += v.shape[axis]


def _split_sizes(node, ins, n_out):
    x = ins[0]
    axis = normalize_axis(node.attr("axis", 0), x.rank, node)
    split = ints_attr(node, "split") if node.opset < 13 else _const_ints(node, ins, 1, "split")
    dim = x.shape[axis]
    if not split:
        n = int(node.attr("num_outputs", 0) or 0) if node.opset >= 18 else 0
        n = n or n_out
        div = dim // n if dim % n == 0 else dim // n + 1
        split = [div] * n
        split[-1] += dim - sum(split)
    if sum(split) != dim or any(s < 0 for s in split):
        raise UnsupportedModelError(f"{node.describe()}: split {split} does not add up to {dim}")
    return axis, split


@register("Split")
class Split(OpDef):
    def infer(self, node, ins):
        axis, split = _split_sizes(node, ins, len(node.outputs))
        res = []
        for s in split:
            shape = list(ins[0].shape)
            shape[axis] = s
            res.append((tuple(shape), ins[0].dtype))
        return res

    def lower(self, node, b, ins, outs):
        axis, split = _split_sizes(node, ins, len(node.outputs))
        src = b.value(ins[0].name)
        esz = _esz(ins[0])
        ss = contiguous_strides(ins[0].shape, esz)
        pos = 0
        for k, s in enumerate(split):
            if k < len(outs) and outs[k] is not None and outs[k].name:
                dst = _out(b, outs, k)
                _copy(b, src, dst, dst.shape, ss, contiguous_strides(dst.shape, esz),
                      soff=pos * ss[axis])
            pos += s


# --------------------------------------------------------------------------------------
# Expand, Tile
# --------------------------------------------------------------------------------------

def _bcast_src_strides(in_shape, out_shape, esz):
    """Byte strides of a contiguous in_shape read as out_shape (numpy broadcasting)."""
    ss = contiguous_strides(in_shape, esz)
    lead = len(out_shape) - len(in_shape)
    res = []
    for d, n in enumerate(out_shape):
        k = d - lead
        res.append(0 if k < 0 or in_shape[k] == 1 else ss[k])
    return res


@register("Expand")
class Expand(OpDef):
    def infer(self, node, ins):
        shape = _const_ints(node, ins, 1, "shape")
        return [(broadcast_shape(ins[0].shape, shape), ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        dst = _out(b, outs)
        esz = _esz(ins[0])
        _copy(b, b.value(ins[0].name), dst, dst.shape,
              _bcast_src_strides(ins[0].shape, dst.shape, esz), contiguous_strides(dst.shape, esz))


@register("Tile")
class Tile(OpDef):
    def _repeats(self, node, ins):
        reps = _const_ints(node, ins, 1, "repeats")
        if len(reps) != ins[0].rank or any(r < 0 for r in reps):
            raise UnsupportedModelError(f"{node.describe()}: bad repeats {reps}")
        return reps

    def infer(self, node, ins):
        reps = self._repeats(node, ins)
        return [(tuple(n * r for n, r in zip(ins[0].shape, reps)), ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        reps = self._repeats(node, ins)
        dst = _out(b, outs)
        esz = _esz(ins[0])
        ss = contiguous_strides(ins[0].shape, esz)
        os_ = contiguous_strides(dst.shape, esz)
        shape, s_str, d_str = [], [], []
        for n, r, s, o in zip(ins[0].shape, reps, ss, os_):
            # output index k*n + j along this dim: [r, n] with source strides [0, s]
            shape += [r, n]
            s_str += [0, s]
            d_str += [n * o, o]
        _copy(b, b.value(ins[0].name), dst, shape, s_str, d_str)


# --------------------------------------------------------------------------------------
# Pad
# --------------------------------------------------------------------------------------

def _str_attr(node, key, default):
    v = node.attr(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _pad_plan(node, ins):
    x = ins[0]
    rank = x.rank
    mode = _str_attr(node, "mode", "constant")
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise UnsupportedModelError(f"{node.describe()}: pad mode {mode!r} is not supported")
    if node.opset < 11:
        pads = ints_attr(node, "pads") or ints_attr(node, "paddings")
        axes = None
    else:
        pads = _const_ints(node, ins, 1, "pads")
        axes = _const_ints(node, ins, 3, "axes") if node.opset >= 18 else None
    if axes is None:
        axes = list(range(rank))
    axes = [normalize_axis(a, rank, node) for a in axes]
    if len(pads) != 2 * len(axes):
        raise UnsupportedModelError(f"{node.describe()}: {len(pads)} pads for {len(axes)} axes")
    pb, pe = [0] * rank, [0] * rank
    for i, a in enumerate(axes):
        pb[a], pe[a] = pads[i], pads[len(axes) + i]
    # negative pads crop the input first
    crop_b = [max(-p, 0) for p in pb]
    inner = [n - max(-p, 0) - max(-q, 0) for n, p, q in zip(x.shape, pb, pe)]
    if any(n < 0 for n in inner):
        raise UnsupportedModelError(f"{node.describe()}: negative pads remove more than the input")
    pb = [max(p, 0) for p in pb]
    pe = [max(p, 0) for p in pe]
    out = tuple(n + p + q for n, p, q in zip(inner, pb, pe))
    if mode != "constant":
        for d in range(rank):
            if (pb[d] or pe[d]) and inner[d] == 0:
                raise UnsupportedModelError(f"{node.describe()}: cannot {mode}-pad an empty axis")
    return mode, crop_b, inner, pb, pe, out


def _pad_value(node, ins):
    if node.opset < 11:
        return float(node.attr("value", 0.0))
    if len(ins) > 2 and ins[2] is not None:
        if ins[2].const is None:
            raise UnsupportedModelError(f"{node.describe()}: constant_value must be a constant")
        c = np.asarray(ins[2].const).reshape(-1)
        return c[0] if c.size else 0
    return 0


@register("Pad")
class Pad(OpDef):
    def infer(self, node, ins):
        return [(_pad_plan(node, ins)[5], ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        mode, crop_b, inner, pb, pe, out_shape = _pad_plan(node, ins)
        rank = len(out_shape)
        esz = _esz(ins[0])
        src = b.value(ins[0].name)
        dst = _out(b, outs)
        if _numel(out_shape) == 0:
            return
        ss = contiguous_strides(ins[0].shape, esz)
        os_ = contiguous_strides(out_shape, esz)
        padded = any(pb) or any(pe)
        if mode == "constant" and padded:
            emit_fill(b, dst, _pad_value(node, ins))
        _copy(b, src, dst, inner, ss, os_, soff=sum(c * s for c, s in zip(crop_b, ss)),
              doff=sum(p * s for p, s in zip(pb, os_)))
        if mode == "constant" or not padded:
            return
        # Fill the borders axis by axis, innermost first, copying inside the output: for
        # axis d the region spans the full output along axes > d (already padded) and the
        # interior along axes < d (padded later, from complete rows).
        for d in reversed(range(rank)):
            n = inner[d]
            if not (pb[d] or pe[d]):
                continue

            def region(dst_start, length, src_start, src_step):
                shape = [out_shape[k] if k > d else inner[k] for k in range(rank)]
                shape[d] = length
                base = [0 if k > d else pb[k] for k in range(rank)]
                doff = sum(i * s for i, s in zip(base, os_)) + (dst_start - base[d]) * os_[d]
                soff = sum(i * s for i, s in zip(base, os_)) + (src_start - base[d]) * os_[d]
                s_str = list(os_)
                s_str[d] = src_step * os_[d]
                _copy(b, dst, dst, shape, s_str, os_, soff=soff, doff=doff)

            if mode == "edge" or (mode == "reflect" and n == 1):
                if pb[d]:
                    region(0, pb[d], pb[d], 0)
                if pe[d]:
                    region(pb[d] + n, pe[d], pb[d] + n - 1, 0)
            elif mode == "reflect":
                # periodic mirror: chunks of at most n-1, each mirrored about its inner edge
                e = pb[d]
                while e > 0:
                    L = min(n - 1, e)
                    region(e - L, L, e + L, -1)
                    e -= L
                s, end = pb[d] + n, pb[d] + n + pe[d]
                while s < end:
                    L = min(n - 1, end - s)
                    region(s, L, s - 2, -1)
                    s += L
            else:  # wrap: chunks of at most n, each a shifted copy of the next period
                e = pb[d]
                while e > 0:
                    L = min(n, e)
                    region(e - L, L, e - L + n, 1)
                    e -= L
                s, end = pb[d] + n, pb[d] + n + pe[d]
                while s < end:
                    L = min(n, end - s)
                    region(s, L, s - n, 1)
                    s += L


# --------------------------------------------------------------------------------------
# Gather, GatherElements
# --------------------------------------------------------------------------------------

def _index_dtype(node, v):
    dt = np.dtype(v.dtype)
    if dt not in INDEX_DTYPES:
        raise UnsupportedModelError(f"{node.describe()}: indices must be int32 or int64, got {dt}")
    return dt


@register("Gather")
class Gather(OpDef):
    def infer(self, node, ins):
        x, idx = ins[0], ins[1]
        axis = normalize_axis(node.attr("axis", 0), x.rank, node)
        return [(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]), x.dtype)]

    def lower(self, node, b, ins, outs):
        x, idx = ins[0], ins[1]
        axis = normalize_axis(node.attr("axis", 0), x.rank, node)
        _index_dtype(node, idx)
        esz = _esz(x)
        outer = _numel(x.shape[:axis])
        axis_len = x.shape[axis]
        inner = _numel(x.shape[axis + 1:]) * esz
        n_idx = _numel(idx.shape)
        src = b.value(x.name)
        dst = _out(b, outs)
        if n_idx == 0 or outer == 0 or inner == 0:
            return
        if idx.const is not None:
            vals = np.asarray(idx.const).reshape(-1).astype(np.int64)
            if np.any(vals < -axis_len) or np.any(vals >= axis_len):
                raise UnsupportedModelError(
                    f"{node.describe()}: constant indices out of range for axis of {axis_len}")
            vals = np.where(vals < 0, vals + axis_len, vals)
            steps = np.diff(vals)
            if n_idx == 1 or np.all(steps == steps[0]):
                # an arithmetic progression of rows (a scalar index, a range, a reversal):
                # one strided copy
                step = int(steps[0]) if n_idx > 1 else 1
                _copy(b, src, dst, (outer, n_idx, inner // esz),
                      (axis_len * inner, step * inner, esz), (n_idx * inner, inner, esz),
                      soff=int(vals[0]) * inner)
                return
            itensor = b.const(vals, name=f"{idx.name}:normalized")
            code = dtype_code(np.int64)
        else:
            itensor = b.value(idx.name)
            code = dtype_code(idx.dtype)
        b.emit(GATHER, [src, itensor, dst], sp.params(sp.GATHER, outer=outer, axis_len=axis_len,
                                                      inner_bytes=inner, n_idx=n_idx, index_dtype=code))


@register("GatherElements")
class GatherElements(OpDef):
    def infer(self, node, ins):
        x, idx = ins[0], ins[1]
        axis = normalize_axis(node.attr("axis", 0), x.rank, node)
        if idx.rank != x.rank or any(idx.shape[d] > x.shape[d]
                                     for d in range(x.rank) if d != axis):
            raise UnsupportedModelError(
                f"{node.describe()}: indices shape {idx.shape} does not fit data {x.shape}")
        return [(tuple(idx.shape), x.dtype)]

    def lower(self, node, b, ins, outs):
        x, idx = ins[0], ins[1]
        axis = normalize_axis(node.attr("axis", 0), x.rank, node)
        _index_dtype(node, idx)
        dst = _out(b, outs)
        if _numel(idx.shape) == 0:
            return
        if x.rank > MAX_NDIM:
            raise UnsupportedModelError(f"{node.describe()}: rank {x.rank} > {MAX_NDIM}")
        esz = _esz(x)
        b.emit(GATHER_ELEMENTS, [b.value(x.name), b.value(idx.name), dst], sp.params(
            sp.GATHER_ELEMENTS, ndim=x.rank, esz=esz, index_dtype=dtype_code(idx.dtype), axis=axis,
            axis_len=x.shape[axis], shape=idx.shape, data_strides=contiguous_strides(x.shape, esz)))


# Resize and Upsample live in their own module (index/weight tables, two kernels).
from deepsparse_lite.ops import resize as _resize  # noqa: E402,F401  (registration)
