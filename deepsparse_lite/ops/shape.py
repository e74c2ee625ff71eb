"""Views and shape ops: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, and the
shape-computing ops (Shape, Size, Constant, ConstantOfShape, Range) that constant folding
normally removes.

A view costs nothing at run time: its output aliases the input's storage. Only when the
view is itself a graph output is a copy emitted, because outputs are fresh arrays.
"""
from __future__ import annotations

import numpy as np

from deepsparse_lite.ops.base import (OpDef, UnsupportedModelError, emit_contiguous_copy,
                                      normalize_axis, register)


def alias(b, src_name: str, out_name: str, shape, dtype=None) -> None:
    src = b.value(src_name)
    if b.is_graph_output(out_name):
        dst = b.output(out_name, shape, dtype or src.dtype)
        emit_contiguous_copy(b, src, dst)
    else:
        b.bind(out_name, b.view(src, shape, name=out_name))


class ViewOp(OpDef):
    def lower(self, node, b, ins, outs):
        alias(b, node.inputs[0], node.outputs[0], outs[0].shape)


def _axes(node, ins, idx=1):
    """axes from the attribute (older opsets) or the constant input ``idx`` (newer)."""
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    if len(ins) > idx and ins[idx] is not None:
        if not ins[idx].is_const:
            raise UnsupportedModelError(f"{node.describe()}: axes must be constant")
        return [int(a) for a in ins[idx].const.reshape(-1)]
    return None


@register("Reshape")
class Reshape(ViewOp):
    def infer(self, node, ins):
        x, s = ins[0], ins[1]
        if s is None or not s.is_const:
            raise UnsupportedModelError(f"{node.describe()}: the target shape must be constant")
        shape = [int(d) for d in s.const.reshape(-1)]
        allowzero = int(node.attrs.get("allowzero", 0))
        out = []
        for k, d in enumerate(shape):
            if d == 0 and not allowzero:
                if k >= len(x.shape):
                    raise UnsupportedModelError(f"{node.describe()}: 0 at index {k} beyond input rank")
                out.append(x.shape[k])
            else:
                out.append(d)
        total = int(np.prod(x.shape, dtype=np.int64))
        if out.count(-1) > 1:
            raise UnsupportedModelError(f"{node.describe()}: more than one -1 in shape {shape}")
        if -1 in out:
            known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            if known == 0 or total % known:
                raise UnsupportedModelError(f"{node.describe()}: cannot reshape {x.shape} to {shape}")
            out[out.index(-1)] = total // known
        if int(np.prod(out, dtype=np.int64)) != total:
            raise UnsupportedModelError(f"{node.describe()}: cannot reshape {x.shape} to {shape}")
        return [(tuple(out), x.dtype)]


@register("Flatten")
class Flatten(ViewOp):
    def infer(self, node, ins):
        x = ins[0]
        r = len(x.shape)
        axis = int(node.attrs.get("axis", 1))
        axis = axis + r if axis < 0 else axis
        if not 0 <= axis <= r:
            raise UnsupportedModelError(f"{node.describe()}: axis {axis} out of range for rank {r}")
        a = int(np.prod(x.shape[:axis], dtype=np.int64))
        return [((a, int(np.prod(x.shape[axis:], dtype=np.int64))), x.dtype)]


@register("Squeeze")
class Squeeze(ViewOp):
    def infer(self, node, ins):
        x = ins[0]
        axes = _axes(node, ins)
        r = len(x.shape)
        if axes is None:
            out = [d for d in x.shape if d != 1]
        else:
            ax = {normalize_axis(a, r, node) for a in axes}
            for a in ax:
                if x.shape[a] != 1:
                    raise UnsupportedModelError(f"{node.describe()}: cannot squeeze axis {a} of size {x.shape[a]}")
            out = [d for k, d in enumerate(x.shape) if k not in ax]
        return [(tuple(out), x.dtype)]


@register("Unsqueeze")
class Unsqueeze(ViewOp):
    def infer(self, node, ins):
        x = ins[0]
        axes = _axes(node, ins)
        if axes is None:
            raise UnsupportedModelError(f"{node.describe()}: axes are required")
        r = len(x.shape) + len(axes)
        ax = sorted(normalize_axis(a, r, node) for a in axes)
        if len(set(ax)) != len(ax):
            raise UnsupportedModelError(f"{node.describe()}: repeated axes {axes}")
        out, it = [], iter(x.shape)
        for k in range(r):
            out.append(1 if k in ax else next(it))
        return [(tuple(out), x.dtype)]


@register("Identity")
class Identity(ViewOp):
    def infer(self, node, ins):
        return [(ins[0].shape, ins[0].dtype)]


@register("Dropout")
class Dropout(ViewOp):
    """Inference mode: the identity. A requested mask output is all ones. Training mode
    (a constant true training_mode input) is the identity too when the ratio is a constant
    0; any other ratio drops random elements, which an engine cannot reproduce."""

    def infer(self, node, ins):
        if len(ins) > 2 and ins[2] is not None:
            if not ins[2].is_const:
                raise UnsupportedModelError(f"{node.describe()}: training_mode must be a constant")
            if bool(np.asarray(ins[2].const).reshape(-1)[0]):
                ratio = 0.5
                if len(ins) > 1 and ins[1] is not None:
                    if not ins[1].is_const:
                        raise UnsupportedModelError(f"{node.describe()}: training-mode Dropout needs "
                                                    f"a constant ratio")
                    ratio = float(np.asarray(ins[1].const).reshape(-1)[0])
                if ratio != 0.0:
                    raise UnsupportedModelError(
                        f"{node.describe()}: training-mode Dropout with ratio {ratio} is random "
                        f"(only ratio 0 is supported)")
        res = [(ins[0].shape, ins[0].dtype)]
        if len(node.outputs) > 1 and node.outputs[1]:
            res.append((ins[0].shape, np.dtype(np.bool_)))
        return res

    def lower(self, node, b, ins, outs):
        alias(b, node.inputs[0], node.outputs[0], outs[0].shape)
        if len(node.outputs) > 1 and node.outputs[1]:
            from deepsparse_lite.ops.base import emit_fill
            emit_fill(b, b.output(node.outputs[1], outs[1].shape, np.bool_), True)


class FoldedOnly(OpDef):
    """Ops whose inputs are shapes: constant folding evaluates them; a runtime input means
    a data-dependent shape, which a static plan cannot have."""

    def infer(self, node, ins):
        raise UnsupportedModelError(
            f"{node.describe()}: its inputs are not compile-time constants (data-dependent shapes are not supported)")


register("Shape", "Size", "Constant", "ConstantOfShape", "Range", "NonZero")(FoldedOnly)
