"""Static shape inference and constant folding, in one walk over the graph.

Every graph input has a static shape by now, so every value's shape is known at compile
time. A node whose inputs are all constant is evaluated once with
``onnx.reference.ReferenceEvaluator`` (the same oracle the tests use) and disappears from
the plan; ``Shape``/``Size`` of a runtime tensor are constants too. This is what turns the
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains of exported models into plain
constant shapes. Other nodes get their output shapes from their OpDef's ``infer`` rule.
"""
from __future__ import annotations

import warnings
from typing import List, Optional

import numpy as np

from deepsparse_lite.compiler.graph import Graph
from deepsparse_lite.ops.base import Node, UnsupportedModelError, Value, get_op
from deepsparse_lite.plan import NP_TO_DTYPE

NON_DETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}
SUPPORTED_DTYPES = set(NP_TO_DTYPE)  # the element types the kernels know (plan.DType)


def _inputs(graph: Graph, node: Node) -> List[Optional[Value]]:
    out = []
    for name in node.inputs:
        if not name:
            out.append(None)
            continue
        v = graph.values.get(name)
        if v is None:
            raise UnsupportedModelError(f"{node.describe()} uses unknown value '{name}'")
        out.append(v)
    return out


def evaluate_node(graph: Graph, node: Node, ins: List[Optional[Value]]) -> List[np.ndarray]:
    """Evaluate a node on constant inputs with the ONNX reference implementation."""
    from onnx.reference import ReferenceEvaluator

    proto = graph.node_protos.get(node.name)
    if proto is None:
        raise UnsupportedModelError(f"cannot constant-fold {node.describe()}: no source node")
    feeds = {name: v.const for name, v in zip(node.inputs, ins) if name}
    opsets = {d or "": v for d, v in graph.opsets.items() if d != "ai.onnx"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sess = ReferenceEvaluator(proto, opsets=opsets)
            res = sess.run(None, feeds)
    except Exception as exc:
        raise UnsupportedModelError(
            f"constant folding of {node.describe()} failed: {type(exc).__name__}: {exc}") from None
    return [np.asarray(r) for r in res]


def fold_and_infer(graph: Graph) -> None:
    """Fill ``graph.values`` for every node output; mark folded nodes (``node.folded``)."""
    for node in graph.nodes:
        ins = _inputs(graph, node)
        node.attrs.setdefault("_folded", False)
        if node.op_type in ("Shape", "Size") and node.domain == "" and ins and ins[0] is not None:
            arr = _shape_or_size(node, ins[0])
            _set(graph, node, [arr])
            node.attrs["_folded"] = True
            continue
        all_const = all(v is None or v.is_const for v in ins)
        if all_const and node.op_type not in NON_DETERMINISTIC and node.domain in ("", "ai.onnx"):
            op = get_op(node.op_type, node.domain)
            if op is None or op.foldable:
                _set(graph, node, evaluate_node(graph, node, ins))
                node.attrs["_folded"] = True
                continue
        op = get_op(node.op_type, node.domain)
        if op is None:
            dom = f" (domain '{node.domain}')" if node.domain else ""
            raise UnsupportedModelError(f"unsupported op type {node.op_type}{dom} in node '{node.name}'")
        try:
            results = op.infer(node, ins)
        except UnsupportedModelError:
            raise
        except NotImplementedError as exc:
            raise UnsupportedModelError(f"{node.describe()}: {exc}") from None
        except Exception as exc:
            raise UnsupportedModelError(
                f"shape inference failed for {node.describe()}: {type(exc).__name__}: {exc}") from exc
        for name, (shape, dtype) in zip(node.outputs, results):
            if not name:
                continue
            dt = np.dtype(dtype)
            if dt not in SUPPORTED_DTYPES:
                raise UnsupportedModelError(f"{node.describe()} produces element type {dt}, which is not supported")
            graph.values[name] = Value(name, tuple(int(d) for d in shape), dt, None)
        for name in node.outputs[len(results):]:
            if name and _is_used(graph, name):
                raise UnsupportedModelError(f"{node.describe()}: optional output '{name}' is not supported")


def _shape_or_size(node: Node, v: Value) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(int(np.prod(v.shape, dtype=np.int64)), dtype=np.int64)
    shape = list(v.shape)
    r = len(shape)
    start = int(node.attrs.get("start", 0))
    end = node.attrs.get("end")
    start = max(0, min(r, start + r if start < 0 else start))
    end = r if end is None else int(end)
    end = max(0, min(r, end + r if end < 0 else end))
    return np.array(shape[start:end], dtype=np.int64)


def _set(graph: Graph, node: Node, arrays: List[np.ndarray]) -> None:
    for name, arr in zip(node.outputs, arrays):
        if name:
            graph.values[name] = Value(name, tuple(int(d) for d in arr.shape), arr.dtype, arr)


def _is_used(graph: Graph, name: str) -> bool:
    if name in graph.outputs:
        return True
    return any(name in n.inputs for n in graph.nodes)


def prune(graph: Graph) -> None:
    """Drop folded nodes and nodes no graph output depends on."""
    needed = set(graph.outputs)
    keep = []
    for node in reversed(graph.nodes):
        if node.attrs.get("_folded"):
            continue
        if any(o in needed for o in node.outputs if o):
            keep.append(node)
            needed.update(i for i in node.inputs if i)
    graph.nodes = list(reversed(keep))
