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
    """Evaluate a node on constant inputs with the ONNX reference implementation.

    The node runs inside a one-node ModelProto carrying the model's opset imports:
    ``ReferenceEvaluator(NodeProto, opsets=...)`` ignores ``opsets`` and runs the newest
    version of the op, which breaks e.g. an opset-9 Unsqueeze (``axes`` attribute)."""
    from onnx.reference import ReferenceEvaluator
    from deepsparse_lite.ops.base import get_op

    op = get_op(node.op_type, node.domain)
    if op is not None and hasattr(op, "fold"):   # the op's own NumPy folding (e.g. versions
        return op.fold(node, [None if v is None else v.const for v in ins])  # onnx.reference lacks)
    proto = graph.node_protos.get(node.name)
    if proto is None:
        raise UnsupportedModelError(f"cannot constant-fold {node.describe()}: no source node")
    feeds = {name: v.const for name, v in zip(node.inputs, ins) if name}
    try:
        model = _one_node_model(graph, proto, feeds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ReferenceEvaluator(model).run(None, feeds)
    except Exception as exc:
        raise UnsupportedModelError(
            f"constant folding of {node.describe()} failed: {type(exc).__name__}: {exc}") from None
    return [np.asarray(r) for r in res]


def _one_node_model(graph: Graph, proto, feeds) -> "onnx.ModelProto":
    import onnx
    from onnx import helper

    ins = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in dict.fromkeys(feeds)]
    outs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in proto.output if o]
    g = helper.make_graph([proto], "fold", ins, outs)
    opsets = [helper.make_opsetid(d, v) for d, v in graph.opsets.items() if d != "ai.onnx"]
    if "" not in graph.opsets:
        opsets.append(helper.make_opsetid("", graph.opset))
    return helper.make_model(g, opset_imports=opsets, ir_version=graph.ir_version or onnx.IR_VERSION)


def fold_and_infer(graph: Graph) -> None:
    """Fill ``graph.values`` for every node output; mark folded nodes (``node.folded``)."""
    from deepsparse_lite.config import max_tensor_bytes

    limit = max_tensor_bytes()
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
                _check_fold_size(node, op, ins, limit)
                arrays = evaluate_node(graph, node, ins)
                for arr in arrays:
                    _check_size(node, arr.shape, arr.dtype, limit)
                _set(graph, node, arrays)
                node.attrs["_folded"] = True
                if node.op_type == "DequantizeLinear" and node.outputs[0]:
                    graph.values[node.outputs[0]].qdq = (
                        node.inputs[0], node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else "",
                        int(node.attrs.get("axis", 1)))
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
            shape = tuple(int(d) for d in shape)
            _check_size(node, shape, dt, limit)
            graph.values[name] = Value(name, shape, dt, None)
        for name in node.outputs[len(results):]:
            if name and _is_used(graph, name):
                raise UnsupportedModelError(f"{node.describe()}: optional output '{name}' is not supported")


class TensorSizeError(UnsupportedModelError):
    """A value would have a negative dim or need more memory than a tensor may use."""


def _check_size(node: Node, shape, dtype, limit: int) -> None:
    """Refuse a negative dim or a tensor larger than ``limit`` bytes (DSL_MAX_TENSOR_BYTES):
    hostile shapes or parameter values must fail here, not exhaust memory later."""
    if any(int(d) < 0 for d in shape):
        raise TensorSizeError(f"{node.describe()}: an output would have the negative shape {list(shape)}")
    n = np.dtype(dtype).itemsize
    for d in shape:
        n *= int(d)  # Python ints: no overflow
    if n > limit or any(int(d) > limit for d in shape):  # (a huge dim next to a 0 still overflows int64)
        raise TensorSizeError(
            f"{node.describe()}: an output of shape {list(shape)} would need {n / 2 ** 30:.3g} GiB, more than "
            f"the {limit / 2 ** 30:.3g} GiB a tensor may use (DSL_MAX_TENSOR_BYTES)")


def _check_fold_size(node: Node, op, ins: List[Optional[Value]], limit: int) -> None:
    """The size check before evaluating a node on constants (the reference evaluator would
    allocate and fill the whole result first): from the shape rule, or, for the ops that
    make tensors from shape values, from those values."""
    t = node.op_type
    try:
        if t == "ConstantOfShape" and ins and ins[0] is not None:
            shape = [int(d) for d in np.asarray(ins[0].const).reshape(-1)]
        elif t == "Range" and len(ins) == 3 and all(v is not None for v in ins):
            start, stop, delta = (float(np.asarray(v.const).reshape(-1)[0]) for v in ins)
            if delta == 0 or not np.isfinite([start, stop, delta]).all():
                return  # the evaluator refuses these itself
            shape = [max(int(np.ceil((stop - start) / delta)), 0)]
        elif op is not None:
            results = op.infer(node, ins)
            for shape, dtype in results:
                _check_size(node, shape, dtype, limit)
            return
        else:
            return
    except TensorSizeError:
        raise
    except Exception:
        return  # the shape rule does not cover what folding can do: let folding decide
    _check_size(node, shape, np.float64, limit)  # widest element type: a safe bound


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
