"""Graph helpers shared by pruning and quantization: loading with clear errors, constant
weights (initializers and Constant nodes) as numpy arrays, consumers, tensor element types."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Union

import numpy as np
import onnx
from onnx import numpy_helper

ModelLike = Union[str, os.PathLike, onnx.ModelProto]

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
           "ConvInteger", "DynamicQuantizeLinear", "QLinearAdd")


def load(model: ModelLike) -> onnx.ModelProto:
    """A private copy of ``model`` (a path or a ModelProto): the caller's object is never
    modified. A path that is not an ONNX file is a ValueError naming the file."""
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be an ONNX file path or an onnx.ModelProto, "
                         f"got {type(model).__name__}")
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ValueError(f"model file not found: {path}")
    try:
        proto = onnx.load(path)
    except Exception as exc:  # DecodeError, truncated file, external data missing ...
        raise ValueError(f"{path} is not an ONNX model (onnx.load failed: {exc})") from None
    if not proto.graph.node:
        raise ValueError(f"{path} is not an ONNX model (no graph nodes)")
    return proto


class Constants:
    """Name -> numpy view of every constant tensor (initializers and ``Constant`` nodes), with
    write-back: :meth:`set` replaces the stored tensor keeping its name and place."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self._init = {t.name: t for t in model.graph.initializer}
        self._const_nodes = {}
        for n in model.graph.node:
            if n.op_type == "Constant" and len(n.output) == 1:
                for a in n.attribute:
                    if a.name == "value":
                        self._const_nodes[n.output[0]] = a
        self._cache: Dict[str, np.ndarray] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._init or name in self._const_nodes

    def is_initializer(self, name: str) -> bool:
        return name in self._init

    def get(self, name: str) -> Optional[np.ndarray]:
        if name not in self:
            return None
        if name not in self._cache:
            t = self._init[name] if name in self._init else self._const_nodes[name].t
            self._cache[name] = numpy_helper.to_array(t)
        return self._cache[name]

    def set(self, name: str, value: np.ndarray) -> None:
        t = numpy_helper.from_array(np.ascontiguousarray(value), name)
        if name in self._init:
            self._init[name].CopyFrom(t)
        else:
            self._const_nodes[name].t.CopyFrom(t)
        self._cache[name] = value


def consumers(model: onnx.ModelProto) -> Dict[str, List[onnx.NodeProto]]:
    out: Dict[str, List[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            if i:
                out.setdefault(i, []).append(n)
    return out


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    return 1


def has_quantized_ops(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def set_metadata(model: onnx.ModelProto, **props: str) -> None:
    """Add or replace ``metadata_props`` entries (other entries are kept)."""
    existing = {p.key: p for p in model.metadata_props}
    for k, v in props.items():
        if k in existing:
            existing[k].value = str(v)
        else:
            model.metadata_props.add(key=k, value=str(v))
