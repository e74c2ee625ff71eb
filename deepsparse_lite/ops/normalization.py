"""Normalisations: Softmax, LogSoftmax, LayerNormalization, BatchNormalization (inference,
when the compiler could not fold it into a Conv, and training mode), InstanceNormalization,
GroupNormalization, MeanVarianceNormalization, LRN.

All lower to the reduce family (kernels/reduce.pyx). Softmax before opset 13 flattens the
input to 2-D at ``axis`` (the whole tail is one softmax); from 13 on it normalises the
single ``axis`` ([outer, n, inner] with inner > 1 when it is not the last axis).
LayerNormalization's Scale / B are broadcast to the normalised shape at compile time (a
strided copy when they are runtime tensors); its optional Mean / InvStdDev outputs are
produced by the same kernel. BatchNormalization becomes y = x * a[c] + b[c] with a, b
computed at compile time from constant parameters (or by a BN_PREP step otherwise).
BatchNormalization-14+ with training_mode=1 normalises with the batch statistics (mean and
population variance per channel: two REDUCE means each, over the plane then over the
batch, so no transposing copy) and writes running_mean / running_var =
input * momentum + batch statistic * (1 - momentum) (elementwise steps).
GroupNormalization is InstanceNormalization of [N * G, C / G * spatial] rows: with its
per-group scale and bias directly (opsets 18-20), or with unit ones followed by the
per-channel AFFINE (21+). MeanVarianceNormalization is (x - mean) / (std + 1e-9) over
``axes`` (its function body) from REDUCE and elementwise steps.
"""
from __future__ import annotations

import numpy as np

from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, contiguous_strides, emit_copy,
                                      normalize_axis, register)
from deepsparse_lite.ops.reduce import ReduceOp, _prod
from deepsparse_lite import step_params as sp


def _require_f32(node, v, what="input"):
    if np.dtype(v.dtype) != np.float32:
        raise UnsupportedModelError(f"{node.describe()}: {what} of type {np.dtype(v.dtype)} is not "
                                    f"supported (float32 only)")


@register("Softmax", "LogSoftmax")
class Softmax(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        shape = xv.shape
        rank = len(shape)
        if node.opset >= 13:
            axis = normalize_axis(int(node.attrs.get("axis", -1)), rank, node)
            outer, n, inner = _prod(shape[:axis]), int(shape[axis]), _prod(shape[axis + 1:])
        else:   # "coerced" 2-D: [prod(shape[:axis]), prod(shape[axis:])]
            axis = normalize_axis(int(node.attrs.get("axis", 1)), rank, node) if rank else 0
            outer, n, inner = _prod(shape[:axis]), _prod(shape[axis:]), 1
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if y.size == 0:
            return
        b.emit(ReduceOp.SOFTMAX, [x, y], sp.params(sp.SOFTMAX, log=int(node.op_type == "LogSoftmax"),
                                                   outer=outer, n=n, inner=inner, level=b.isa))


def _broadcast_param(node, b, name, value, norm_shape, what):
    """The Tensor of a LayerNorm Scale/B broadcast to ``norm_shape`` (contiguous)."""
    _require_f32(node, value, what)
    shape = tuple(value.shape)
    if len(shape) > len(norm_shape):
        if any(int(d) != 1 for d in shape[:len(shape) - len(norm_shape)]):
            raise UnsupportedModelError(f"{node.describe()}: {what} of shape {shape} does not "
                                        f"broadcast to the normalised shape {norm_shape}")
        shape = shape[len(shape) - len(norm_shape):]
    try:
        np.broadcast_shapes(shape, norm_shape)
    except ValueError:
        raise UnsupportedModelError(f"{node.describe()}: {what} of shape {value.shape} does not "
                                    f"broadcast to the normalised shape {norm_shape}") from None
    if value.is_const:
        arr = np.broadcast_to(np.asarray(value.const, np.float32).reshape(shape), norm_shape)
        return b.const(np.ascontiguousarray(arr).reshape(-1), name=f"{name}_bcast")
    t = b.value(name)
    if tuple(shape) == tuple(norm_shape):
        return t
    full = (1,) * (len(norm_shape) - len(shape)) + tuple(shape)
    src_strides = [0 if int(full[d]) == 1 and int(norm_shape[d]) != 1 else s
                   for d, s in enumerate(contiguous_strides(full, 4))]
    dst = b.temp((_prod(norm_shape),), np.float32, name=f"{name}_bcast")
    emit_copy(b, t, dst, norm_shape, src_strides, contiguous_strides(norm_shape, 4))
    return dst


@register("LayerNormalization")
class LayerNormalization(OpDef):
    def _axis(self, node, ins):
        rank = len(ins[0].shape)
        return normalize_axis(int(node.attrs.get("axis", -1)), rank, node)

    def infer(self, node, ins):
        x = ins[0]
        axis = self._axis(node, ins)
        stat = tuple(x.shape[:axis]) + (1,) * (len(x.shape) - axis)
        res = [(x.shape, x.dtype)]
        if len(node.outputs) > 1:
            res += [(stat, np.dtype(np.float32)), (stat, np.dtype(np.float32))][:len(node.outputs) - 1]
        return res

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        axis = self._axis(node, ins)
        shape = xv.shape
        norm_shape = tuple(int(d) for d in shape[axis:])
        outer, n = _prod(shape[:axis]), _prod(norm_shape)
        stash = int(node.attrs.get("stash_type", 1))
        if stash not in (1, 11):   # float or double statistics: float accumulation is accurate
            raise UnsupportedModelError(f"{node.describe()}: stash_type={stash} is not supported")
        if len(ins) < 2 or ins[1] is None:
            raise UnsupportedModelError(f"{node.describe()}: the Scale input is required")
        x = b.value(node.inputs[0])
        w = _broadcast_param(node, b, node.inputs[1], ins[1], norm_shape, "Scale")
        has_b = len(ins) > 2 and ins[2] is not None
        bias = _broadcast_param(node, b, node.inputs[2], ins[2], norm_shape, "B") if has_b else w
        y = b.output(node.outputs[0], shape, np.float32)
        stat = tuple(shape[:axis]) + (1,) * (len(shape) - axis)
        names = list(node.outputs[1:3]) + [""] * (3 - len(node.outputs))
        mean = b.output(names[0], stat, np.float32) if names[0] else x
        rstd = b.output(names[1], stat, np.float32) if names[1] else x
        if y.size == 0:
            return
        b.emit(ReduceOp.LAYERNORM, [x, w, bias, y, mean, rstd], sp.params(
            sp.LAYERNORM, outer=outer, n=n, has_bias=int(has_b), has_mean=int(bool(names[0])),
            has_inv_std=int(bool(names[1])), level=b.isa,
            epsilon=float(node.attrs.get("epsilon", 1e-5))))


def _bn_training(node) -> bool:
    return node.opset >= 14 and bool(int(node.attrs.get("training_mode", 0) or 0))


@register("BatchNormalization")
class BatchNormalization(OpDef):
    def infer(self, node, ins):
        extra = [o for o in node.outputs[1:] if o]
        if _bn_training(node):
            C = (int(ins[0].shape[1]),) if len(ins[0].shape) >= 2 else (1,)
            return [(ins[0].shape, ins[0].dtype)] + [(C, ins[0].dtype)] * (len(node.outputs) - 1)
        if extra:
            raise UnsupportedModelError(f"{node.describe()}: the training outputs (mean / var) of "
                                        f"BatchNormalization-{node.opset} are not supported")
        if int(node.attrs.get("training_mode", 0) or 0):
            raise UnsupportedModelError(f"{node.describe()}: training_mode=1 is not supported "
                                        f"(inference engine)")
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        shape = xv.shape
        if len(shape) < 2:
            raise UnsupportedModelError(f"{node.describe()}: input must have rank >= 2")
        N, C, inner = int(shape[0]), int(shape[1]), _prod(shape[2:])
        eps = float(node.attrs.get("epsilon", 1e-5))
        params = ins[1:5]
        if len(params) < 4 or any(p is None for p in params):
            raise UnsupportedModelError(f"{node.describe()}: needs scale, B, mean and var")
        for p, what in zip(params, ("scale", "B", "mean", "var")):
            _require_f32(node, p, what)
            if _prod(p.shape) != C:
                raise UnsupportedModelError(f"{node.describe()}: {what} must have {C} elements")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if _bn_training(node):
            self._training(node, b, x, y, shape, eps)
            return
        if y.size == 0:
            return
        if all(p.is_const for p in params):
            sc, bi, mu, var = (np.asarray(p.const, np.float64).reshape(-1) for p in params)
            a = sc / np.sqrt(var + eps)
            ab = b.const(np.concatenate([a, bi - mu * a]).astype(np.float32), name=f"{node.name}_ab")
        else:
            ab = b.temp((2 * C,), np.float32, name=f"{node.name}_ab")
            b.emit(ReduceOp.BN_PREP, [b.value(nm) for nm in node.inputs[1:5]] + [ab],
                   sp.params(sp.BN_PREP, C=C, epsilon=eps))
        b.emit(ReduceOp.AFFINE, [x, ab, y], sp.params(sp.AFFINE, outer=N, C=C, inner=inner, level=b.isa))

    @staticmethod
    def _training(node, b, x, y, shape, eps):
        from deepsparse_lite.ops.elementwise import Bin, Fn, emit_binary, emit_unary
        from deepsparse_lite.ops.reduce import RK, emit_reduce

        N, C, inner = int(shape[0]), int(shape[1]), _prod(shape[2:])
        if N * inner == 0:
            raise UnsupportedModelError(f"{node.describe()}: batch statistics of an empty batch")
        rank = len(shape)
        stat = (1, C) + (1,) * (rank - 2)

        def channel_mean(src, name):
            """mean over every axis but 1: over the plane (contiguous rows), then the batch"""
            out = b.temp(stat, np.float32, name=name)
            if rank > 2 and inner > 1:
                per_image = b.temp((N, C) + (1,) * (rank - 2), np.float32, name=f"{name}_plane")
                emit_reduce(b, RK.MEAN, src, per_image, list(range(2, rank)), node.describe())
                src = per_image
            if N > 1:
                emit_reduce(b, RK.MEAN, src, out, [0], node.describe())
                return out
            return src if src is not x else b.view(x, stat)

        mean = channel_mean(x, f"{node.name}_mean")
        d = b.temp(shape, np.float32, name=f"{node.name}_centred")
        emit_binary(b, Bin.SUB, x, mean, d)
        sq = b.temp(shape, np.float32, name=f"{node.name}_sq")
        emit_binary(b, Bin.MUL, d, d, sq)
        var = channel_mean(sq, f"{node.name}_var")
        if y.size:
            # y = (x - mean) * scale / sqrt(var + eps) + B: BN_PREP with a zero mean, on d
            ab = b.temp((2 * C,), np.float32, name=f"{node.name}_ab")
            zero = b.const(np.zeros(C, np.float32), name=f"{node.name}_zero")
            b.emit(ReduceOp.BN_PREP, [b.value(node.inputs[1]), b.value(node.inputs[2]), zero, var, ab],
                   sp.params(sp.BN_PREP, C=C, epsilon=eps))
            b.emit(ReduceOp.AFFINE, [d, ab, y], sp.params(sp.AFFINE, outer=N, C=C, inner=inner,
                                                          level=b.isa))
        momentum = float(node.attrs.get("momentum", 0.9))
        for k, (stat_t, src_name) in enumerate(((mean, node.inputs[3]), (var, node.inputs[4]))):
            if len(node.outputs) <= k + 1 or not node.outputs[k + 1]:
                continue
            out = b.output(node.outputs[k + 1], (C,), np.float32)
            cur = b.temp((C,), np.float32, name=f"{node.name}_run")
            old = b.temp((C,), np.float32, name=f"{node.name}_old")
            emit_unary(b, Fn.AFFINE, b.view(stat_t, (C,)), cur, 1.0 - momentum, 0.0)
            emit_unary(b, Fn.AFFINE, b.value(src_name), old, momentum, 0.0)
            emit_binary(b, Bin.ADD, old, cur, out)


@register("LRN")
class LRN(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        shape = xv.shape
        if len(shape) < 3:
            raise UnsupportedModelError(f"{node.describe()}: input must be [N, C, D1, ...]")
        size = int(node.attrs["size"])
        if size < 1:
            raise UnsupportedModelError(f"{node.describe()}: size must be >= 1")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if y.size == 0:
            return
        b.emit(ReduceOp.LRN, [x, y], sp.params(
            sp.LRN, N=int(shape[0]), C=int(shape[1]), inner=_prod(shape[2:]), size=size,
            alpha=float(node.attrs.get("alpha", 1e-4)), beta=float(node.attrs.get("beta", 0.75)),
            bias=float(node.attrs.get("bias", 1.0))))


@register("InstanceNormalization")
class InstanceNormalization(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        shape = xv.shape
        if len(shape) < 3:
            raise UnsupportedModelError(f"{node.describe()}: input must be [N, C, D1, ...]")
        C = int(shape[1])
        for p, what in zip(ins[1:3], ("scale", "B")):
            if p is None:
                raise UnsupportedModelError(f"{node.describe()}: {what} is required")
            _require_f32(node, p, what)
            if _prod(p.shape) != C:
                raise UnsupportedModelError(f"{node.describe()}: {what} must have {C} elements")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if y.size == 0:
            return
        b.emit(ReduceOp.INSTNORM, [x, b.value(node.inputs[1]), b.value(node.inputs[2]), y], sp.params(
            sp.INSTNORM, rows=int(shape[0]) * C, n=_prod(shape[2:]), C=C, level=b.isa,
            epsilon=float(node.attrs.get("epsilon", 1e-5))))


@register("GroupNormalization")
class GroupNormalization(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        xv = ins[0]
        _require_f32(node, xv)
        shape = xv.shape
        G = int(node.attrs.get("num_groups", 0) or 0)
        if len(shape) < 2 or G < 1 or int(shape[1]) % G:
            raise UnsupportedModelError(f"{node.describe()}: {shape[1] if len(shape) > 1 else '?'} "
                                        f"channels do not split into num_groups={G}")
        if int(node.attrs.get("stash_type", 1)) not in (1, 11):
            raise UnsupportedModelError(f"{node.describe()}: stash_type={node.attrs['stash_type']} "
                                        f"is not supported")
        N, C, inner = int(shape[0]), int(shape[1]), _prod(shape[2:])
        per_channel = node.opset >= 21
        want = C if per_channel else G
        for p, what in zip(ins[1:3], ("scale", "bias")):
            if p is None:
                raise UnsupportedModelError(f"{node.describe()}: {what} is required")
            _require_f32(node, p, what)
            if _prod(p.shape) != want:
                raise UnsupportedModelError(f"{node.describe()}: {what} must have {want} elements "
                                            f"(GroupNormalization-{node.opset})")
        eps = float(node.attrs.get("epsilon", 1e-5))
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if y.size == 0:
            return
        rows = dict(rows=N * G, n=(C // G) * inner, C=G, level=b.isa, epsilon=eps)
        if not per_channel:
            b.emit(ReduceOp.INSTNORM, [x, b.value(node.inputs[1]), b.value(node.inputs[2]), y],
                   sp.params(sp.INSTNORM, **rows))
            return
        ones = b.const(np.ones(G, np.float32), name=f"{node.name}_ones")
        zeros = b.const(np.zeros(G, np.float32), name=f"{node.name}_zeros")
        norm = b.temp(shape, np.float32, name=f"{node.name}_norm")
        b.emit(ReduceOp.INSTNORM, [x, ones, zeros, norm], sp.params(sp.INSTNORM, **rows))
        sc, bi = ins[1], ins[2]
        if sc.is_const and bi.is_const:
            ab = b.const(np.concatenate([np.asarray(sc.const, np.float32).reshape(-1),
                                         np.asarray(bi.const, np.float32).reshape(-1)]),
                         name=f"{node.name}_ab")
        else:
            ab = b.temp((2 * C,), np.float32, name=f"{node.name}_ab")
            for k, nm in enumerate(node.inputs[1:3]):
                emit_copy(b, b.value(nm), ab, (C,), (4,), (4,), dst_offset=4 * C * k)
        b.emit(ReduceOp.AFFINE, [norm, ab, y], sp.params(sp.AFFINE, outer=N, C=C, inner=inner,
                                                         level=b.isa))


@register("MeanVarianceNormalization")
class MeanVarianceNormalization(OpDef):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]

    def lower(self, node, b, ins, outs):
        from deepsparse_lite.ops.elementwise import Bin, Fn, emit_binary, emit_unary
        from deepsparse_lite.ops.reduce import RK, emit_reduce

        xv = ins[0]
        _require_f32(node, xv)
        shape = tuple(int(d) for d in xv.shape)
        rank = len(shape)
        axes = sorted({normalize_axis(a, rank, node) for a in (node.attrs.get("axes") or [0, 2, 3])})
        if any(shape[a] == 0 for a in axes):
            raise UnsupportedModelError(f"{node.describe()}: statistics over an empty axis")
        x = b.value(node.inputs[0])
        y = b.output(node.outputs[0], shape, np.float32)
        if y.size == 0:
            return
        stat = tuple(1 if d in axes else n for d, n in enumerate(shape))
        mean = b.temp(stat, np.float32, name=f"{node.name}_mean")
        emit_reduce(b, RK.MEAN, x, mean, axes, node.describe())
        d = b.temp(shape, np.float32, name=f"{node.name}_centred")
        emit_binary(b, Bin.SUB, x, mean, d)
        sq = b.temp(shape, np.float32, name=f"{node.name}_sq")
        emit_binary(b, Bin.MUL, d, d, sq)
        var = b.temp(stat, np.float32, name=f"{node.name}_var")
        emit_reduce(b, RK.MEAN, sq, var, axes, node.describe())
        std = b.temp(stat, np.float32, name=f"{node.name}_std")
        emit_unary(b, Fn.SQRT, var, std)
        emit_unary(b, Fn.AFFINE, std, std, 1.0, 1e-9)
        emit_binary(b, Bin.DIV, d, std, y)
