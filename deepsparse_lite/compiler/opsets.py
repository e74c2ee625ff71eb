"""Which ONNX opsets the compiler reads, and the in-memory upgrade of older models.

The op lowerings implement opset 7 and later (an op picks the behaviour of its latest
version at or below the model's opset). A model of opset 1..6 is upgraded **in memory**
with ``onnx.version_converter`` (the user's file is never written): the converter rewrites
the semantics that changed, e.g. Add/Mul/... with ``broadcast``/``axis`` attributes
(opset < 7) become numpy-broadcasting ops with the operand unsqueezed to line up,
BatchNormalization's ``spatial``/``consumed_inputs`` and Dropout's ``is_test`` go away.
What it cannot convert is refused with an UnsupportedModelError naming the op.

Models that import only non-default domains (``ai.onnx.ml``, ``ai.onnx.preview.training``)
have no ONNX opset to check: they are refused by naming the domain and the first op the
engine lacks, not by a misleading "opset 0".
"""
from __future__ import annotations

import re
import warnings
from typing import Dict

import onnx

from deepsparse_lite.ops.base import UnsupportedModelError, get_op

MIN_OPSET, MAX_OPSET = 7, onnx.defs.onnx_opset_version()
#: opset an older model is converted to. 7 is the smallest step that removes the legacy
#: semantics (measured on the ONNX backend cases: 7 and 13 convert the same models and
#: pass the same cases; 7 keeps the graph closest to the file, so messages name its ops).
UPGRADE_TARGET = 7

DEFAULT_DOMAINS = ("", "ai.onnx")


def model_opsets(proto: onnx.ModelProto) -> Dict[str, int]:
    """domain -> imported version ("" for the default domain; 'ai.onnx' folded into it)."""
    out: Dict[str, int] = {}
    for imp in proto.opset_import:
        dom = "" if imp.domain in DEFAULT_DOMAINS else imp.domain
        out[dom] = max(out.get(dom, 0), int(imp.version))
    return out


def default_opset(proto: onnx.ModelProto) -> int:
    """The model's ONNX (default domain) opset; 0 when it imports none."""
    return model_opsets(proto).get("", 0)


def check_opsets(proto: onnx.ModelProto) -> int:
    """The default-domain opset the graph is compiled at (after any upgrade), or a clear
    refusal: out of range, or no ONNX opset at all."""
    import deepsparse_lite.ops  # noqa: F401  (registers every op: get_op below)

    opsets = model_opsets(proto)
    if not proto.opset_import:
        return 13  # an opset-less file (hand-built tests): read it at a common opset
    opset = opsets.get("", 0)
    nodes = list(proto.graph.node)
    if not opset:
        others = ", ".join(f"'{d}' version {v}" for d, v in sorted(opsets.items()))
        for k, n in enumerate(nodes):
            name = n.name or f"{n.op_type}_{k}"
            if n.domain in DEFAULT_DOMAINS:
                raise UnsupportedModelError(
                    f"{n.op_type} node '{name}' is an ONNX op, but the model imports no ONNX opset "
                    f"(only {others})")
            if get_op(n.op_type, n.domain) is None:
                raise UnsupportedModelError(
                    f"unsupported op type {n.op_type} (domain '{n.domain}') in node '{name}': the model "
                    f"imports only {others} and no ONNX opset; deepsparse_lite runs ONNX ops")
        return MAX_OPSET
    if opset > MAX_OPSET:
        raise UnsupportedModelError(
            f"the model's ONNX opset {opset} is newer than this onnx package knows ({MAX_OPSET})")
    if opset < MIN_OPSET:
        raise UnsupportedModelError(
            f"the model's ONNX opset {opset} is below {MIN_OPSET}; load it with "
            f"compiler.load_model (which upgrades it in memory)")
    return opset


def upgrade_opset(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` itself when its ONNX opset is supported, else an upgraded copy (opset
    ``UPGRADE_TARGET``); the original proto (and file) are left untouched."""
    opset = default_opset(proto)
    if not opset or opset >= MIN_OPSET:
        return proto
    from onnx import version_converter

    for k, n in enumerate(proto.graph.node):
        if n.domain in DEFAULT_DOMAINS and not onnx.defs.has(n.op_type):
            raise UnsupportedModelError(
                f"unsupported op type {n.op_type} in node '{n.name or f'{n.op_type}_{k}'}' "
                f"(not an ONNX op; the model's opset is {opset})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            upgraded = version_converter.convert_version(_for_converter(proto), UPGRADE_TARGET)
    except Exception as exc:  # the converter raises RuntimeError/ValueError/... from C++
        raise UnsupportedModelError(
            f"the model's ONNX opset {opset} is below {MIN_OPSET} and onnx.version_converter could "
            f"not upgrade it: {_converter_reason(proto, exc)}") from None
    declared = {vi.name for vi in proto.graph.input}
    if any(vi.name not in declared for vi in upgraded.graph.input):
        kept = [vi for vi in upgraded.graph.input if vi.name in declared]
        del upgraded.graph.input[:]
        upgraded.graph.input.extend(kept)
    if default_opset(upgraded) < MIN_OPSET:
        raise UnsupportedModelError(
            f"the model's ONNX opset {opset} is below {MIN_OPSET} and could not be upgraded")
    return upgraded


def _for_converter(proto: onnx.ModelProto) -> onnx.ModelProto:
    """What onnx.version_converter needs to see: initializers listed as graph inputs (IR 3
    requires it and the converter insists; removed again after conversion) and legacy
    axis-broadcasts already aligned."""
    listed = {vi.name for vi in proto.graph.input}
    missing = [t for t in proto.graph.initializer if t.name not in listed]
    if missing:
        copy = onnx.ModelProto()
        copy.CopyFrom(proto)
        copy.graph.input.extend(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                                for t in missing)
        proto = copy
    return _align_legacy_broadcast(proto)


#: opset < 7 ops whose ``broadcast=1`` aligns B with A at ``axis`` (default: suffix)
LEGACY_BROADCAST_OPS = {"Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less"}


def _align_legacy_broadcast(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite ``Op(A, B, broadcast=1, axis=k)`` as ``Op(A, Unsqueeze(B), broadcast=1)``
    (B gets rank(A) - k - rank(B) trailing 1-dims, so suffix alignment puts it at k).

    onnx.version_converter's 6->7 adapter appends rank(A) - rank(B) trailing dims instead,
    which is right only for axis 0: e.g. A [2,3,4,5] + B [3,4] at axis 1 fails to convert.
    Ranks come from ONNX shape inference; a node whose ranks stay unknown is left for the
    converter (which then refuses it). Returns ``proto`` itself when nothing changes."""
    todo = [n for n in proto.graph.node if n.domain in DEFAULT_DOMAINS and n.op_type in LEGACY_BROADCAST_OPS
            and any(a.name == "axis" for a in n.attribute)]
    if not todo:
        return proto
    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:
        return proto
    ranks = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.HasField("shape"):
            ranks[vi.name] = len(tt.shape.dim)
    for init in proto.graph.initializer:
        ranks[init.name] = len(init.dims)
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    nodes, changed = [], False
    for k, n in enumerate(out.graph.node):
        axis_attr = next((a for a in n.attribute if a.name == "axis"), None)
        bcast = next((a.i for a in n.attribute if a.name == "broadcast"), 0)
        if (axis_attr is None or not bcast or n.domain not in DEFAULT_DOMAINS
                or n.op_type not in LEGACY_BROADCAST_OPS or len(n.input) != 2):
            nodes.append(n)
            continue
        ra, rb = ranks.get(n.input[0]), ranks.get(n.input[1])
        if ra is None or rb is None:
            nodes.append(n)
            continue
        axis = axis_attr.i + ra if axis_attr.i < 0 else axis_attr.i
        trailing = ra - axis - rb
        if trailing < 0:
            nodes.append(n)  # invalid: the converter refuses it
            continue
        if trailing:
            aligned = f"{n.input[1]}__dsl_at_axis{axis}_{k}"
            nodes.append(onnx.helper.make_node("Unsqueeze", [n.input[1]], [aligned],
                                               name=f"{n.name or n.op_type}_align_{k}",
                                               axes=list(range(rb, rb + trailing))))
            n.input[1] = aligned
        n.attribute.remove(axis_attr)
        nodes.append(n)
        changed = True
    if not changed:
        return proto
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _converter_reason(proto: onnx.ModelProto, exc: Exception) -> str:
    """The useful part of a version_converter error (a C++ assertion text), with the op
    type it names and that op's nodes."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "failed:" in msg:
        msg = msg.split("failed:", 1)[1].strip()
    types = dict.fromkeys(n.op_type for n in proto.graph.node if n.domain in DEFAULT_DOMAINS)
    op = next((t for t in types if re.search(rf"\b{re.escape(t)}\b", msg)), None)
    if op is not None:
        names = [n.name or f"{n.op_type}_{k}" for k, n in enumerate(proto.graph.node) if n.op_type == op]
        shown = ", ".join(f"'{x}'" for x in names[:3]) + (" ..." if len(names) > 3 else "")
        msg += f" (op {op}, node(s) {shown})"
    return msg
