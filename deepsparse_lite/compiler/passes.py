"""Graph passes run after constant folding, before lowering.

- Identity/Dropout removal (consumers read the source value directly);
- BatchNormalization folded into the preceding Conv: W' = W * g/sqrt(v+eps),
  b' = (b - m) * g/sqrt(v+eps) + beta (ONNX Runtime's "basic" rewrite);
- the exact-GELU subgraph PyTorch exports (x * 0.5 * (1 + erf(x / sqrt(2)))) becomes Gelu;
- a constant bias Add after Conv / MatMul becomes the GEMM's bias (``_bias`` for MatMul);
- an activation after Conv / Gemm / MatMul becomes the GEMM epilogue (``_act`` attrs);
- QDQ: DequantizeLinear(x_q) -> Conv / MatMul / Gemm with weights folded from a
  DequantizeLinear of int8 / uint8 constants [-> Relu] [-> QuantizeLinear] becomes one INT8
  step (QLinearConv / QLinearMatMul, requantizing when a QuantizeLinear follows, else
  dequantizing to fp32 in the epilogue): ``fuse_qdq``;
- QuantizeLinear(DequantizeLinear(q)) with the same per-tensor scale and zero point is q,
  also through pure data movement (Reshape, Transpose, Squeeze, Unsqueeze, Flatten), which
  then moves the 8-bit values: exact, ``drop_qdq_roundtrips`` (the fake-quantized
  reshapes and transposes of a QDQ transformer); nodes left without consumers go.

A rewrite only fires when the intermediate value has exactly one consumer and is not a
graph output, so no value the user can observe changes.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np

from deepsparse_lite.compiler.graph import Graph
from deepsparse_lite.ops.base import Act, Node, Value

_uid = itertools.count()


def _consumers(graph: Graph) -> Dict[str, List[Node]]:
    cons = defaultdict(list)
    for n in graph.nodes:
        for i in n.inputs:
            if i:
                cons[i].append(n)
    return cons


def _const(graph: Graph, name: str) -> Optional[np.ndarray]:
    if not name:
        return None
    v = graph.values.get(name)
    return None if v is None else v.const


def _new_const(graph: Graph, base: str, arr: np.ndarray) -> str:
    name = f"{base}__dsl{next(_uid)}"
    graph.values[name] = Value(name, tuple(arr.shape), arr.dtype, arr)
    return name


def _single_private_consumer(graph: Graph, cons, name: str) -> Optional[Node]:
    if name in graph.outputs:
        return None
    users = cons.get(name, [])
    return users[0] if len(users) == 1 else None


def remove_identities(graph: Graph) -> None:
    rename: Dict[str, str] = {}
    keep = []
    for n in graph.nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        if n.op_type in ("Identity", "Dropout") and n.domain == "":
            out = n.outputs[0]
            extra_used = [o for o in n.outputs[1:] if o]
            if out not in graph.outputs and not extra_used:
                rename[out] = n.inputs[0]
                continue
        keep.append(n)
    graph.nodes = keep
    graph.outputs = [o for o in graph.outputs]


def fold_batchnorm(graph: Graph) -> None:
    cons = _consumers(graph)
    drop = set()
    for conv in graph.nodes:
        if conv.op_type != "Conv" or conv.domain != "":
            continue
        w = _const(graph, conv.inputs[1])
        if w is None or w.dtype != np.float32:
            continue
        bn = _single_private_consumer(graph, cons, conv.outputs[0])
        if bn is None or bn.op_type != "BatchNormalization" or bn.inputs[0] != conv.outputs[0]:
            continue
        if len([o for o in bn.outputs if o]) > 1 or bn.attrs.get("training_mode", 0):
            continue
        params = [_const(graph, bn.inputs[k]) for k in range(1, 5)]
        if any(p is None for p in params):
            continue
        scale, beta, mean, var = (p.astype(np.float64) for p in params)
        eps = float(bn.attrs.get("epsilon", 1e-5))
        cout = w.shape[0]
        if any(p.shape != (cout,) for p in (scale, beta, mean, var)):
            continue
        b = _const(graph, conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(cout, np.float32)
        if b is None:
            continue
        f = scale / np.sqrt(var + eps)
        w2 = (w.astype(np.float64) * f.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        b2 = ((b.astype(np.float64) - mean) * f + beta).astype(np.float32)
        conv.inputs = [conv.inputs[0], _new_const(graph, conv.inputs[1], w2), _new_const(graph, conv.name + "_bias", b2)]
        conv.outputs = [bn.outputs[0]]
        drop.add(id(bn))
        cons = _consumers(graph)
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]


def _scalar(graph: Graph, name: str) -> Optional[float]:
    c = _const(graph, name)
    if c is None or c.size != 1:
        return None
    return float(c.reshape(()))


def fuse_gelu(graph: Graph) -> None:
    """Div(x, sqrt2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(., 0.5)  ==>  Gelu(x).

    Also accepts Mul(x, 1/sqrt2) for the Div and the 0.5 applied to x first
    (Mul(x, 0.5) * (1 + erf)), the two orders exporters produce.
    """
    cons = _consumers(graph)
    drop = set()
    for erf in graph.nodes:
        if erf.op_type != "Erf":
            continue
        scale_node = next((n for n in graph.nodes if erf.inputs[0] in n.outputs), None)
        if scale_node is None:
            continue
        x = None
        if scale_node.op_type == "Div" and abs((_scalar(graph, scale_node.inputs[1]) or 0) - 2 ** 0.5) < 1e-3:
            x = scale_node.inputs[0]
        elif scale_node.op_type == "Mul":
            for a, c in ((0, 1), (1, 0)):
                s = _scalar(graph, scale_node.inputs[c])
                if s is not None and abs(s - 2 ** -0.5) < 1e-3:
                    x = scale_node.inputs[a]
        if x is None or _single_private_consumer(graph, cons, scale_node.outputs[0]) is not erf:
            continue
        add = _single_private_consumer(graph, cons, erf.outputs[0])
        if add is None or add.op_type != "Add":
            continue
        other = add.inputs[1] if add.inputs[0] == erf.outputs[0] else add.inputs[0]
        if _scalar(graph, other) != 1.0:
            continue
        mul1 = _single_private_consumer(graph, cons, add.outputs[0])
        if mul1 is None or mul1.op_type != "Mul":
            continue
        m_other = mul1.inputs[1] if mul1.inputs[0] == add.outputs[0] else mul1.inputs[0]
        out = None
        removed = [scale_node, erf, add, mul1]
        if m_other == x:  # x * (1 + erf) then * 0.5
            mul2 = _single_private_consumer(graph, cons, mul1.outputs[0])
            if mul2 is None or mul2.op_type != "Mul":
                continue
            h = mul2.inputs[1] if mul2.inputs[0] == mul1.outputs[0] else mul2.inputs[0]
            if _scalar(graph, h) != 0.5:
                continue
            out = mul2.outputs[0]
            removed.append(mul2)
        else:  # (x * 0.5) * (1 + erf)
            half = next((n for n in graph.nodes if m_other in n.outputs), None)
            if half is None or half.op_type != "Mul" or _single_private_consumer(graph, cons, m_other) is not mul1:
                continue
            hx = half.inputs[0] if _scalar(graph, half.inputs[1]) == 0.5 else (
                half.inputs[1] if _scalar(graph, half.inputs[0]) == 0.5 else None)
            if hx != x:
                continue
            out = mul1.outputs[0]
            removed.append(half)
        if graph.values[x].shape != graph.values[out].shape or graph.values[x].dtype != np.float32:
            continue
        gelu = Node(f"{erf.name}_gelu", "Gelu", [x], [out], {"approximate": "none"}, "", max(graph.opset, 20))
        last = next(r for r in removed if out in r.outputs)
        graph.nodes[graph.nodes.index(last)] = gelu
        drop.update(id(r) for r in removed if r is not last)
        cons = _consumers(graph)
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    _reorder(graph)


def _producer(graph: Graph, name: str) -> Optional[Node]:
    return next((n for n in graph.nodes if name in n.outputs), None)


def _reduce_axes(graph: Graph, n: Node) -> Optional[list]:
    if "axes" in n.attrs:
        return [int(a) for a in n.attrs["axes"]]
    if len(n.inputs) > 1 and n.inputs[1]:
        c = _const(graph, n.inputs[1])
        return None if c is None else [int(a) for a in c.reshape(-1)]
    return None


def _is_last_axis_mean(graph: Graph, n: Node, rank: int) -> bool:
    if n is None or n.op_type != "ReduceMean" or not int(n.attrs.get("keepdims", 1)):
        return False
    axes = _reduce_axes(graph, n)
    return axes is not None and len(axes) == 1 and axes[0] in (-1, rank - 1)


def fuse_layernorm(graph: Graph) -> None:
    """ReduceMean -> Sub -> Pow(2) -> ReduceMean -> Add(eps) -> Sqrt -> Div [-> Mul(g) -> Add(b)]
    over the last axis (how PyTorch exports LayerNorm below opset 17) ==> LayerNormalization."""
    cons = _consumers(graph)
    drop = set()
    for m1 in list(graph.nodes):
        if id(m1) in drop or m1.op_type != "ReduceMean":
            continue
        x = m1.inputs[0]
        xv = graph.values.get(x)
        if xv is None or xv.dtype != np.float32 or not _is_last_axis_mean(graph, m1, len(xv.shape)):
            continue
        sub = _single_private_consumer(graph, cons, m1.outputs[0])
        if sub is None or sub.op_type != "Sub" or sub.inputs != [x, m1.outputs[0]]:
            continue
        d_users = cons.get(sub.outputs[0], [])
        if len(d_users) != 2 or sub.outputs[0] in graph.outputs:
            continue
        pw = next((u for u in d_users if u.op_type in ("Pow", "Mul")), None)
        div = next((u for u in d_users if u.op_type == "Div"), None)
        if pw is None or div is None or div.inputs[0] != sub.outputs[0]:
            continue
        if pw.op_type == "Pow" and (pw.inputs[0] != sub.outputs[0] or _scalar(graph, pw.inputs[1]) != 2.0):
            continue
        if pw.op_type == "Mul" and pw.inputs != [sub.outputs[0], sub.outputs[0]]:
            continue
        m2 = _single_private_consumer(graph, cons, pw.outputs[0])
        if not _is_last_axis_mean(graph, m2, len(xv.shape)):
            continue
        add = _single_private_consumer(graph, cons, m2.outputs[0])
        if add is None or add.op_type != "Add":
            continue
        eps = _scalar(graph, add.inputs[1] if add.inputs[0] == m2.outputs[0] else add.inputs[0])
        sq = _single_private_consumer(graph, cons, add.outputs[0])
        if eps is None or sq is None or sq.op_type != "Sqrt" or div.inputs[1] != sq.outputs[0]:
            continue
        if _single_private_consumer(graph, cons, sq.outputs[0]) is not div:
            continue
        chain = [m1, sub, pw, m2, add, sq, div]
        n_last = xv.shape[-1]
        out, gamma, beta = div.outputs[0], None, None
        mul = _single_private_consumer(graph, cons, out)
        if mul is not None and mul.op_type == "Mul":
            g = _const(graph, mul.inputs[1] if mul.inputs[0] == out else mul.inputs[0])
            gamma = None if g is None else _per_axis(g, len(xv.shape), len(xv.shape) - 1, n_last)
            if gamma is not None:
                chain.append(mul)
                out = mul.outputs[0]
                badd = _single_private_consumer(graph, cons, out)
                if badd is not None and badd.op_type == "Add":
                    bb = _const(graph, badd.inputs[1] if badd.inputs[0] == out else badd.inputs[0])
                    beta = None if bb is None else _per_axis(bb, len(xv.shape), len(xv.shape) - 1, n_last)
                    if beta is not None:
                        chain.append(badd)
                        out = badd.outputs[0]
        if graph.values[out].shape != xv.shape:
            continue
        gamma = np.ones(n_last, np.float32) if gamma is None else gamma
        beta = np.zeros(n_last, np.float32) if beta is None else beta
        ln = Node(f"{m1.name}_layernorm", "LayerNormalization",
                  [x, _new_const(graph, m1.name + "_ln_scale", gamma), _new_const(graph, m1.name + "_ln_bias", beta)],
                  [out], {"axis": -1, "epsilon": float(eps)}, "", max(graph.opset, 17))
        graph.nodes[graph.nodes.index(chain[-1])] = ln
        drop.update(id(c) for c in chain[:-1])
        cons = _consumers(graph)
    graph.nodes = [n for n in graph.nodes if id(n) not in drop]
    _reorder(graph)


ACT_OPS = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Gelu",
           "Elu", "Selu", "Softplus"}


def _act_of(graph: Graph, n: Node):
    t = n.op_type
    if t == "Relu":
        return Act.RELU, 0.0, 0.0
    if t == "LeakyRelu":
        return Act.LEAKY_RELU, float(n.attrs.get("alpha", 0.01)), 0.0
    if t == "Clip":
        if n.opset < 11:
            lo, hi = n.attrs.get("min", -3.4028234663852886e38), n.attrs.get("max", 3.4028234663852886e38)
        else:
            lo = _scalar(graph, n.inputs[1]) if len(n.inputs) > 1 and n.inputs[1] else -np.inf
            hi = _scalar(graph, n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else np.inf
            if lo is None or hi is None:
                return None
        return Act.CLIP, float(max(lo, -3.4028234663852886e38)), float(min(hi, 3.4028234663852886e38))
    if t == "Sigmoid":
        return Act.SIGMOID, 0.0, 0.0
    if t == "Tanh":
        return Act.TANH, 0.0, 0.0
    if t == "HardSigmoid":
        return Act.HARD_SIGMOID, float(n.attrs.get("alpha", 0.2)), float(n.attrs.get("beta", 0.5))
    if t == "HardSwish":
        return Act.HARD_SWISH, 0.0, 0.0
    if t == "Gelu":
        approx = n.attrs.get("approximate", "none")
        return (Act.GELU_TANH if approx == "tanh" else Act.GELU_ERF), 0.0, 0.0
    if t == "Elu":
        return Act.ELU, float(n.attrs.get("alpha", 1.0)), 0.0
    if t == "Selu":
        return Act.SELU, float(n.attrs.get("alpha", 1.67326319217681884765625)), float(
            n.attrs.get("gamma", 1.05070102214813232421875))
    if t == "Softplus":
        return Act.SOFTPLUS, 0.0, 0.0
    return None


def _is_packed_matmul(graph: Graph, n: Node) -> bool:
    if n.op_type != "MatMul":
        return False
    w = _const(graph, n.inputs[1])
    return w is not None and w.ndim == 2 and w.dtype == np.float32 and len(graph.values[n.inputs[0]].shape) >= 2


def fuse_bias(graph: Graph) -> None:
    cons = _consumers(graph)
    drop = set()
    for n in graph.nodes:
        is_conv = n.op_type == "Conv" and (len(n.inputs) < 3 or not n.inputs[2])
        is_mm = _is_packed_matmul(graph, n) and "_bias" not in n.attrs and not n.attrs.get("_act")
        if not (is_conv or is_mm):
            continue
        add = _single_private_consumer(graph, cons, n.outputs[0])
        if add is None or add.op_type != "Add":
            continue
        other = add.inputs[1] if add.inputs[0] == n.outputs[0] else add.inputs[0]
        c = _const(graph, other)
        out_shape = graph.values[n.outputs[0]].shape
        if c is None or c.dtype != np.float32 or graph.values[add.outputs[0]].shape != out_shape:
            continue
        if is_conv:
            bias = _per_axis(c, len(out_shape), 1, out_shape[1])
            if bias is None:
                continue
            n.inputs = [n.inputs[0], n.inputs[1], _new_const(graph, n.name + "_bias", bias)]
        else:
            bias = _per_axis(c, len(out_shape), len(out_shape) - 1, out_shape[-1])
            if bias is None:
                continue
            n.attrs["_bias"] = _new_const(graph, n.name + "_bias", bias)
        n.outputs = [add.outputs[0]]
        drop.add(id(add))
        cons = _consumers(graph)
    graph.nodes = [x for x in graph.nodes if id(x) not in drop]


def _per_axis(c: np.ndarray, rank: int, axis: int, n: int) -> Optional[np.ndarray]:
    """``c`` as a length-n vector if broadcasting it against a rank-``rank`` tensor adds a
    value per index of ``axis`` (or one value everywhere); None otherwise."""
    if c.size == 1:
        return np.full(n, float(c.reshape(())), dtype=np.float32)
    shape = list(c.shape)
    if len(shape) > rank:
        return None
    shape = [1] * (rank - len(shape)) + shape
    if shape[axis] != n or any(d != 1 for k, d in enumerate(shape) if k != axis):
        return None
    return c.reshape(-1).astype(np.float32)


def _residual_host(graph: Graph, n) -> bool:
    """Whether node ``n`` lowers to a GEMM that can take an addend D: a 2-D Conv with
    constant weights that is not depthwise, or a MatMul whose constant 2-D weights become
    the packed B (ops/gemm.py emit_packed_gemm: A's rows times W)."""
    if n.domain != "" or n.attrs.get("_act") or n.attrs.get("_addend") or len(n.inputs) < 2:
        return False
    w = _const(graph, n.inputs[1])
    xv = graph.values.get(n.inputs[0])
    if w is None or xv is None or xv.dtype != np.float32 or np.asarray(w).dtype != np.float32:
        return False
    if n.op_type == "Conv":
        group = int(n.attrs.get("group", 1))
        return len(xv.shape) == 4 and not (group == xv.shape[1] and group == w.shape[0])
    return n.op_type == "MatMul" and len(n.inputs) == 2 and w.ndim == 2 and len(xv.shape) >= 2


def fuse_residual(graph: Graph) -> None:
    """Conv or MatMul -> Add(y, r) with a runtime r of the same shape (a ResNet shortcut,
    a transformer's residual) ==> the GEMM's addend D: Y = act(W*X + b + r). Runs after
    bias fusion and before activation fusion, so a following Relu then fuses too and sees
    the sum. The addend becomes an extra input (after the bias slot) so ordering and
    liveness see it; the graph is re-sorted since the shortcut may be computed after the
    conv in the file's node order."""
    cons = _consumers(graph)
    drop = set()
    for n in graph.nodes:
        if not _residual_host(graph, n):
            continue
        add = _single_private_consumer(graph, cons, n.outputs[0])
        if add is None or add.op_type != "Add":
            continue
        other = add.inputs[1] if add.inputs[0] == n.outputs[0] else add.inputs[0]
        ov = graph.values.get(other)
        out_shape = graph.values[n.outputs[0]].shape
        if (other == n.outputs[0] or ov is None or ov.is_const or ov.dtype != np.float32
                or ov.shape != out_shape or graph.values[add.outputs[0]].shape != out_shape):
            continue
        if _depends_on(graph, other, n):
            continue  # the shortcut is computed from this conv's output: no cycle allowed
        if n.op_type == "Conv":
            bias = n.inputs[2] if len(n.inputs) > 2 else ""
            n.inputs = [n.inputs[0], n.inputs[1], bias, other]
        else:
            n.inputs = [n.inputs[0], n.inputs[1], other]
        n.attrs["_addend"] = other
        n.outputs = [add.outputs[0]]
        drop.add(id(add))
        cons = _consumers(graph)
    graph.nodes = [x for x in graph.nodes if id(x) not in drop]
    _reorder(graph)


def _depends_on(graph: Graph, name: str, node: Node) -> bool:
    """Whether value ``name`` is computed (transitively) from ``node``'s outputs."""
    producers = {o: n for n in graph.nodes for o in n.outputs}
    stack, seen = [name], set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        p = producers.get(v)
        if p is None:
            continue
        if p is node:
            return True
        stack.extend(i for i in p.inputs if i)
    return False


def fuse_activation(graph: Graph) -> None:
    cons = _consumers(graph)
    drop = set()
    for n in graph.nodes:
        if n.attrs.get("_act"):
            continue
        ok = n.op_type in ("Conv", "Gemm") or _is_packed_matmul(graph, n)
        if n.op_type == "Gemm" and _const(graph, n.inputs[1]) is None:
            ok = False
        if n.op_type == "Conv" and _const(graph, n.inputs[1]) is None:
            ok = False
        if not ok:
            continue
        act_node = _single_private_consumer(graph, cons, n.outputs[0])
        if act_node is None or act_node.op_type not in ACT_OPS or act_node.inputs[0] != n.outputs[0]:
            continue
        act = _act_of(graph, act_node)
        if act is None or graph.values[n.outputs[0]].dtype != np.float32:
            continue
        n.attrs["_act"], n.attrs["_act_alpha"], n.attrs["_act_beta"] = int(act[0]), act[1], act[2]
        n.outputs = [act_node.outputs[0]]
        drop.add(id(act_node))
        cons = _consumers(graph)
    graph.nodes = [x for x in graph.nodes if id(x) not in drop]


def _plain_conv_attrs(n: Node, kernel) -> bool:
    """Explicit (or no) padding, unit dilations: what the fused step's geometry reads."""
    if str(n.attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
        return False
    return all(int(d) == 1 for d in n.attrs.get("dilations", [1] * len(kernel)))


#: fuse_expand_dw only where the expanded tensor would leave the caches (measured, Intel
#: Ice Lake guest, MobileNetV2 at 1 thread: 4.8 MB 1.88x faster fused, 1.8 MB and smaller
#: even) and the GEMM's columns (the image's pixels) fill its 32-wide tiles: 7x7 images
#: ran 20% slower fused than through the pixel-rows conv
FUSE_DW_MIN_BYTES = 2 << 20
FUSE_DW_MIN_PIXELS = 196


def fuse_expand_dw(graph: Graph) -> None:
    """A dense 1x1 stride-1 unpadded conv (+ bias, + activation) whose only consumer is a
    2-D depthwise conv becomes part of that conv's node: inputs [X, Wd, Bd, W1, B1] and
    ``_expand`` set. ops/conv.py lowers it to one DWCONV step that computes the expanded
    channels band by band into a per-thread buffer (csrc/f32_dwconv.h, kernels/gemm.pyx
    run_expand_dw): the expanded tensor, MobileNet's largest, never goes to memory."""
    cons = _consumers(graph)
    drop = set()
    for n1 in graph.nodes:
        if (n1.op_type != "Conv" or n1.domain != "" or n1.attrs.get("_addend") or n1.attrs.get("_bias")
                or id(n1) in drop):
            continue
        w1 = _const(graph, n1.inputs[1]) if len(n1.inputs) > 1 else None
        x = graph.values.get(n1.inputs[0])
        if w1 is None or w1.ndim != 4 or w1.shape[2:] != (1, 1) or x is None or len(x.shape or ()) != 4:
            continue
        if int(n1.attrs.get("group", 1)) != 1 or not _plain_conv_attrs(n1, (1, 1)):
            continue
        if any(int(v) != 1 for v in n1.attrs.get("strides", [1, 1])) or any(int(v) for v in n1.attrs.get("pads", [0] * 4)):
            continue
        if len(n1.inputs) > 2 and n1.inputs[2] and _const(graph, n1.inputs[2]) is None:
            continue
        if w1.dtype != np.float32 or x.dtype != np.float32 or float(np.mean(w1 == 0)) >= 0.5:
            continue  # a pruned weight: the sparse kernels' choice (ops/sparse.py)
        e = graph.values.get(n1.outputs[0])
        if e is None or not e.shape or len(e.shape) != 4 or any(not isinstance(v, (int, np.integer)) for v in e.shape):
            continue
        if e.shape[2] * e.shape[3] < FUSE_DW_MIN_PIXELS or 4 * int(np.prod(e.shape)) < FUSE_DW_MIN_BYTES:
            continue
        n2 = _single_private_consumer(graph, cons, n1.outputs[0])
        if (n2 is None or n2.op_type != "Conv" or n2.domain != "" or n2.attrs.get("_addend")
                or n2.attrs.get("_bias")):
            continue
        wd = _const(graph, n2.inputs[1]) if len(n2.inputs) > 1 else None
        ce = w1.shape[0]
        if (wd is None or n2.inputs[0] != n1.outputs[0] or wd.ndim != 4 or wd.shape[:2] != (ce, 1)
                or int(n2.attrs.get("group", 1)) != ce or wd.shape[2] * wd.shape[3] > 64
                or not _plain_conv_attrs(n2, wd.shape[2:])):
            continue
        if len(n2.inputs) > 2 and n2.inputs[2] and _const(graph, n2.inputs[2]) is None:
            continue
        n2.inputs = [n1.inputs[0], n2.inputs[1], n2.inputs[2] if len(n2.inputs) > 2 else "",
                     n1.inputs[1], n1.inputs[2] if len(n1.inputs) > 2 else ""]
        n2.attrs["_expand"] = 1
        n2.attrs["_ex_act"] = (int(n1.attrs.get("_act", 0) or 0), float(n1.attrs.get("_act_alpha", 0.0) or 0.0),
                               float(n1.attrs.get("_act_beta", 0.0) or 0.0))
        drop.add(id(n1))
    if drop:
        graph.nodes = [x for x in graph.nodes if id(x) not in drop]


def _reorder(graph: Graph) -> None:
    """Re-sort the nodes topologically after a rewrite added an input to a node (stable:
    nodes keep their order unless a producer has to move ahead of its new consumer)."""
    produced = {o for n in graph.nodes for o in n.outputs if o}
    ready = {name for name in graph.values if name not in produced} | {""}
    ordered, pending = [], list(graph.nodes)
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.inputs):
                ordered.append(n)
                ready.update(n.outputs)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise RuntimeError(f"graph rewrite created a cycle at {rest[0].describe()}")
        pending = rest
    graph.nodes = ordered


def _dq_input(graph: Graph, producers, name: str):
    """(x_q, scale, zp) if ``name`` is a per-tensor DequantizeLinear of a runtime 8-bit value
    with constant parameters."""
    dq = producers.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or dq.domain != "":
        return None
    xv = graph.values.get(dq.inputs[0])
    s = _const(graph, dq.inputs[1])
    zp = dq.inputs[2] if len(dq.inputs) > 2 else ""
    if xv is None or xv.dtype not in (np.uint8, np.int8) or s is None or s.size != 1:
        return None
    if zp and (_const(graph, zp) is None or _const(graph, zp).size != 1):
        return None
    return dq.inputs[0], dq.inputs[1], zp


def _q_weights(graph: Graph, name: str, channel_axis: int):
    """(w_q, scale, zp) of a constant folded from DequantizeLinear of 8-bit weights, per
    tensor or per channel along ``channel_axis``."""
    v = graph.values.get(name)
    if v is None or v.qdq is None:
        return None
    q, s, zp, axis = v.qdq
    qc, sc = _const(graph, q), _const(graph, s)
    if qc is None or qc.dtype not in (np.uint8, np.int8) or sc is None:
        return None
    if zp and _const(graph, zp) is None:
        return None
    if sc.size > 1 and (axis % qc.ndim) != channel_axis % qc.ndim:
        return None
    return q, s, zp


def _q_output(graph: Graph, cons, name: str):
    """The per-tensor QuantizeLinear that is the only consumer of ``name``, if any."""
    q = _single_private_consumer(graph, cons, name)
    if q is None or q.op_type != "QuantizeLinear" or q.domain != "" or q.inputs[0] != name:
        return None
    s = _const(graph, q.inputs[1])
    zp = q.inputs[2] if len(q.inputs) > 2 else ""
    if s is None or s.size != 1 or not zp or _const(graph, zp) is None or _const(graph, zp).size != 1:
        return None
    return q


def _int_bias(graph: Graph, name: str, xs, ws, n: int) -> Optional[str]:
    """The int32 bias (in units of x_scale * w_scale[n]) of an fp32 bias constant: the
    quantizer's own int32 tensor when the constant was folded from it, else rounded."""
    if not name:
        return None
    v = graph.values.get(name)
    b = _const(graph, name)
    if b is None:
        return None
    step = (np.float32(np.asarray(xs).reshape(-1)[0]) *
            np.broadcast_to(np.asarray(ws, np.float32).reshape(-1), (n,))).astype(np.float32)
    if v.qdq is not None:
        q = _const(graph, v.qdq[0])
        s = _const(graph, v.qdq[1])
        zp = _const(graph, v.qdq[2]) if v.qdq[2] else None
        if (q is not None and q.dtype == np.int32 and q.size == n and s is not None and
                (zp is None or not np.any(zp)) and
                np.allclose(np.broadcast_to(s.reshape(-1), (n,)), step, rtol=1e-6, atol=0)):
            return v.qdq[0]
    with np.errstate(all="ignore"):
        ib = np.rint(b.reshape(-1).astype(np.float64) / step.astype(np.float64))
    if not np.all(np.isfinite(ib)) or np.any(np.abs(ib) > 2 ** 30):
        return None
    return _new_const(graph, name + "_int32", ib.astype(np.int32))


def fuse_qdq(graph: Graph) -> None:
    """Rewrite QDQ patterns into INT8 steps (see the module docstring). Runs after the
    fp32 fusions: the bias and a Relu are already in the Conv / MatMul / Gemm node; an
    addend (residual) or another activation keeps the fp32 form. Activations stay 8-bit
    between consecutive rewritten ops (the next DequantizeLinear reads this op's output)."""
    cons = _consumers(graph)
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    drop = set()
    out = []
    for n in graph.nodes:
        new = None
        if n.op_type in ("Conv", "MatMul", "Gemm") and n.domain == "" and not n.attrs.get("_addend"):
            new = _qdq_node(graph, cons, producers, n)
        if new is None:
            out.append(n)
            continue
        node, q = new
        if q is not None:
            drop.add(id(q))
        out.append(node)
    graph.nodes = [x for x in out if id(x) not in drop]


def _qdq_node(graph: Graph, cons, producers, n: Node):
    act = int(n.attrs.get("_act", 0) or 0)
    if act not in (0, Act.RELU):
        return None
    x = _dq_input(graph, producers, n.inputs[0])
    if x is None:
        return None
    out_v = graph.values.get(n.outputs[0])
    if out_v is None or out_v.dtype != np.float32:
        return None
    if n.op_type == "Conv":
        xv = graph.values[n.inputs[0]]
        if len(xv.shape) not in (3, 4):
            return None
        w = _q_weights(graph, n.inputs[1], 0)
        bias = n.inputs[2] if len(n.inputs) > 2 else ""
        ncols = graph.values[n.inputs[1]].shape[0]
        wt = None
    elif n.op_type == "MatMul":
        if not _is_packed_matmul(graph, n):
            return None
        w = _q_weights(graph, n.inputs[1], 1)
        bias = n.attrs.get("_bias") or ""
        ncols = graph.values[n.inputs[1]].shape[1]
        wt = False
    else:  # Gemm: Y = alpha * A B' + beta * C, with A 2-D and B constant
        if (n.attrs.get("transA", 0) or float(n.attrs.get("alpha", 1.0)) != 1.0
                or float(n.attrs.get("beta", 1.0)) != 1.0):
            return None
        tb = int(n.attrs.get("transB", 0))
        wshape = graph.values[n.inputs[1]].shape
        if len(wshape) != 2:
            return None
        w = _q_weights(graph, n.inputs[1], 0 if tb else 1)
        bias = n.inputs[2] if len(n.inputs) > 2 else ""
        if bias and (_const(graph, bias) is None or
                     _per_axis(_const(graph, bias), 2, 1, wshape[0 if tb else 1]) is None):
            return None
        if bias:
            bias = _new_const(graph, n.name + "_bias", _per_axis(_const(graph, bias), 2, 1,
                                                                  wshape[0 if tb else 1]))
        ncols = wshape[0 if tb else 1]
        wt = bool(tb)
    if w is None:
        return None
    if bias and _const(graph, bias) is None:
        return None
    q = _q_output(graph, cons, n.outputs[0])
    x_q, xs, xz = x
    w_q, ws, wz = w
    if wt:   # Gemm transB: the integer weights as (K, N), their per-row scales per column
        w_q = _new_const(graph, w_q + "_t", np.ascontiguousarray(_const(graph, w_q).T))
    attrs = {k: v for k, v in n.attrs.items() if not k.startswith("_")}
    if n.op_type != "Conv":
        attrs = {}
    attrs["_relu"] = int(act == Act.RELU)
    if q is not None:
        ib = _int_bias(graph, bias, _const(graph, xs), _const(graph, ws), ncols) if bias else ""
        if ib is None:
            return None
        ins = [x_q, xs, xz, w_q, ws, wz, q.inputs[1], q.inputs[2]]
        outs = [q.outputs[0]]
        if ib:
            if n.op_type == "Conv":
                ins.append(ib)
            else:
                attrs["_ibias"] = ib
    else:
        ins = [x_q, xs, xz, w_q, ws, wz, "", ""]
        outs = [n.outputs[0]]
        attrs["_f32_out"] = 1
        if bias:
            attrs["_fbias"] = bias
    op = "QLinearConv" if n.op_type == "Conv" else "QLinearMatMul"
    return Node(f"{n.name}__int8", op, ins, outs, attrs, "", n.opset), q


_MOVES = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten")


def _qparams(graph: Graph, n: Node):
    """(scale bits, zero point, dtype) of a per-tensor Q / DQ node with constant parameters
    and an explicit zero point, else None."""
    s = _const(graph, n.inputs[1]) if len(n.inputs) > 1 else None
    zp = _const(graph, n.inputs[2]) if len(n.inputs) > 2 and n.inputs[2] else None
    if s is None or zp is None or s.size != 1 or zp.size != 1 or s.dtype != np.float32:
        return None
    if zp.dtype not in (np.uint8, np.int8):
        return None
    return int(np.asarray(s).reshape(-1).view(np.int32)[0]), int(zp.reshape(-1)[0]), zp.dtype


def _moves_8bit(p: Node, qp) -> bool:
    """Whether ``p`` maps Q / DQ's 8-bit values through unchanged (qp: their parameters):
    the data moves, and MaxPool (no Indices) for a positive finite scale."""
    if p.op_type in _MOVES:
        return True
    return (p.op_type == "MaxPool" and qp is not None and 0 < qp[0] < 0x7F800000
            and not (len(p.outputs) > 1 and p.outputs[1]))


def drop_qdq_roundtrips(graph: Graph) -> None:
    """Q(move*(DQ(q))) with DQ's per-tensor scale and zero point -> move*(q) (see above).
    MaxPool counts as a move when the scale is positive and finite: DQ is then monotonic,
    so the max of the dequantized window is the dequantized max (pads never win in ONNX's
    MaxPool), and Q(DQ(q)) = q."""
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    rename: Dict[str, str] = {}
    out: List[Node] = []
    changed = False
    for n in graph.nodes:
        n.inputs = [rename.get(i, i) for i in n.inputs]
        if n.op_type != "QuantizeLinear" or n.domain != "" or n.outputs[0] in graph.outputs:
            out.append(n)
            continue
        qp = _qparams(graph, n)
        chain, t = [], n.inputs[0]
        p = producers.get(t)
        while p is not None and p.domain == "" and len(chain) < 8 and _moves_8bit(p, qp):
            chain.append(p)
            t = p.inputs[0]
            p = producers.get(t)
        if (qp is None or p is None or p.op_type != "DequantizeLinear" or p.domain != ""
                or _qparams(graph, p) != qp or graph.values.get(p.inputs[0]) is None
                or graph.values[p.inputs[0]].dtype != qp[2]):
            out.append(n)
            continue
        changed = True
        cur = p.inputs[0]
        if not chain:
            rename[n.outputs[0]] = cur
            continue
        for k, m in enumerate(reversed(chain)):
            last = k == len(chain) - 1
            name = n.outputs[0] if last else f"{m.outputs[0]}__q8{next(_uid)}"
            if not last:
                fv = graph.values[m.outputs[0]]
                graph.values[name] = Value(name, fv.shape, np.dtype(qp[2]))
            out.append(Node(f"{m.name}__q8", m.op_type, [cur] + list(m.inputs[1:]), [name],
                            dict(m.attrs), m.domain, m.opset))
            cur = name
    graph.nodes = out
    if changed:
        remove_dead(graph)


def fuse_qadd(graph: Graph) -> None:
    """Q(Add(DQ(a), DQ(b)) [-> Relu]) of same-shape 8-bit values with constant per-tensor
    parameters -> QLinearAdd: one pass over the bytes instead of two dequantizes, an fp32
    Add and a quantize (the kernel does the same float arithmetic: exact)."""
    cons = _consumers(graph)
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    out: List[Node] = []
    changed = False
    drop = set()
    for n in graph.nodes:
        if n.op_type != "QuantizeLinear" or n.domain != "" or _qparams(graph, n) is None:
            out.append(n)
            continue
        relu, x = False, n.inputs[0]
        p = producers.get(x)
        if (p is not None and p.op_type == "Relu" and p.domain == ""
                and _single_private_consumer(graph, cons, x) is n):
            relu, x = True, p.inputs[0]
            relu_node, p = p, producers.get(p.inputs[0])
        user = relu_node if relu else n
        if (p is None or p.op_type != "Add" or p.domain != "" or len(p.inputs) != 2
                or p.attrs.get("_act") or _single_private_consumer(graph, cons, x) is not user):
            out.append(n)
            continue
        da, db = (_dq_input(graph, producers, i) for i in p.inputs)
        qdt = _qparams(graph, n)[2]
        vals = [graph.values.get(v) for v in (p.inputs[0], p.inputs[1], x)]
        if (da is None or db is None or any(v is None or v.shape is None for v in vals)
                or not (tuple(vals[0].shape) == tuple(vals[1].shape) == tuple(vals[2].shape))
                or any(graph.values[d[0]].dtype != qdt or not d[2] for d in (da, db))):
            out.append(n)
            continue
        out.append(Node(f"{p.name}__qadd", "QLinearAdd",
                        [da[0], da[1], da[2], db[0], db[1], db[2], n.inputs[1], n.inputs[2]],
                        [n.outputs[0]], {"_relu": int(relu)}, "com.microsoft", 1))
        drop.add(id(p))
        if relu:
            drop.add(id(relu_node))
        changed = True
    graph.nodes = [m for m in out if id(m) not in drop]
    if changed:
        _reorder(graph)
        remove_dead(graph)


def remove_dead(graph: Graph) -> None:
    """Drop nodes none of whose outputs is used (ONNX ops have no side effects)."""
    while True:
        used = set(graph.outputs)
        for n in graph.nodes:
            used.update(i for i in n.inputs if i)
        keep = [n for n in graph.nodes if any(o and o in used for o in n.outputs)]
        if len(keep) == len(graph.nodes):
            return
        graph.nodes = keep


def run_passes(graph: Graph, fuse: bool = True, fuse_dw: bool = True) -> None:
    remove_identities(graph)
    if not fuse:
        return
    fold_batchnorm(graph)
    fuse_layernorm(graph)
    fuse_gelu(graph)
    fuse_bias(graph)
    fuse_residual(graph)
    fuse_activation(graph)
    from deepsparse_lite.config import fuse_expand_depthwise
    if fuse_dw and fuse_expand_depthwise():
        fuse_expand_dw(graph)
    from deepsparse_lite.config import qdq_rewrite
    if qdq_rewrite():
        drop_qdq_roundtrips(graph)
        fuse_qdq(graph)
        fuse_qadd(graph)
    fuse_eltwise_chains(graph)


# ---- element-wise chains --------------------------------------------------------------

#: csrc/q8_ewchain.h instruction codes and limits
_EWC = {"LOAD_MAIN": 1, "LOAD_EXT": 2, "DEQ": 3, "QNT": 4, "Add": 5, "Sub": 6, "Mul": 7,
        "Div": 8, "UNARY": 9, "STORE": 10, "FQ": 11}
#: a op constant / constant op a (Add and Mul commute exactly)
_EWC_CONST = {("Add", 1): 12, ("Add", 0): 12, ("Sub", 1): 13, ("Sub", 0): 14,
              ("Mul", 1): 15, ("Mul", 0): 15, ("Div", 1): 16, ("Div", 0): 17}
_EWC_NREG, _EWC_MAX_EXT, _EWC_MAX_INS, _EWC_MAX_NODES = 12, 5, 64, 24
_EWC_UNARY = ("Erf", "Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Sqrt")
_Q8 = (np.dtype(np.uint8), np.dtype(np.int8))


def _ew_qdq(graph: Graph, n: Node):
    """(scale, zero point, 8-bit dtype) of a per-tensor Q / DQ with constant parameters
    (DQ: an absent zero point is 0 of the input's type), else None."""
    s = _const(graph, n.inputs[1]) if len(n.inputs) > 1 else None
    if s is None or s.size != 1 or s.dtype != np.float32 or n.attrs.get("block_size"):
        return None
    zname = n.inputs[2] if len(n.inputs) > 2 else ""
    if n.op_type == "QuantizeLinear":
        z = _const(graph, zname)
        if z is None or z.size != 1 or z.dtype not in _Q8:
            return None
        dt = np.dtype(z.dtype)
    else:
        xv = graph.values.get(n.inputs[0])
        if xv is None or xv.dtype not in _Q8:
            return None
        dt = np.dtype(xv.dtype)
        z = _const(graph, zname) if zname else np.zeros(1, dt)
        if z is None or z.size != 1 or np.dtype(z.dtype) != dt:
            return None
    return float(s.reshape(-1)[0]), int(z.reshape(-1)[0]), dt


def _ew_srcs(n: Node) -> List[str]:
    """The inputs of a chain node that carry data (a Q / DQ's scale and zero point are
    folded into its instruction)."""
    return list(n.inputs[:1] if n.op_type in ("QuantizeLinear", "DequantizeLinear") else n.inputs)


def _ew_node_ok(graph: Graph, n: Node) -> bool:
    """Whether ``n`` may join an element-wise chain (float32 arithmetic, per-tensor Q / DQ)."""
    if n.domain != "" or len(n.outputs) != 1 or n.attrs.get("_act") or n.attrs.get("_addend"):
        return False
    out = graph.values.get(n.outputs[0])
    if out is None or out.shape is None or out.const is not None:
        return False
    f32 = np.dtype(np.float32)
    if n.op_type in ("Add", "Sub", "Mul", "Div"):
        return len(n.inputs) == 2 and out.dtype == f32 and all(
            graph.values.get(i) is not None and graph.values[i].dtype == f32 for i in n.inputs)
    if n.op_type in _EWC_UNARY:
        return len(n.inputs) == 1 and out.dtype == f32 and graph.values[n.inputs[0]].dtype == f32
    if n.op_type == "QuantizeLinear":
        return (_ew_qdq(graph, n) is not None and graph.values[n.inputs[0]].dtype == f32
                and out.dtype in _Q8 and not n.attrs.get("saturate", 1) == 0)
    if n.op_type == "DequantizeLinear":
        return _ew_qdq(graph, n) is not None and out.dtype == f32
    return False


def _ew_pattern(v: Value, shape: tuple):
    """How an operand that is not computed in the chain covers ``shape``: 2 a scalar, 1 a
    vector along the last axis, 0 the same shape, None otherwise (float32 only)."""
    if v is None or v.shape is None or v.dtype != np.float32:
        return None
    size = int(np.prod(v.shape, dtype=np.int64))
    if size == 1:
        return 2
    dims = list(v.shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    if shape and dims == [shape[-1]] and len(v.shape) <= len(shape):
        return 1
    return 0 if tuple(v.shape) == tuple(shape) else None


def _ew_program(graph: Graph, group: List[Node], main: str, out: str, shape: tuple):
    """(int32 program words, external operand names) for ``group`` (csrc/q8_ewchain.h), or
    None when it needs too many registers or operands."""
    from deepsparse_lite.ops.elementwise import _unary_fn

    uses: Dict[str, int] = defaultdict(int)   # last instruction reading each value
    order = list(group)
    for k, n in enumerate(order):
        for i in _ew_srcs(n):
            uses[i] = k
    produced = {o for n in group for o in n.outputs}
    ext: List[str] = []
    ins, consts = [], []
    reg: Dict[str, int] = {}
    free = list(range(_EWC_NREG))

    def emit(op, dst, a=0, b=0, c=(0.0, 0.0, 0.0, 0.0)):
        ins.append([op, dst, a, b])
        consts.append(list(c) + [0.0] * (4 - len(c)))

    def take():
        if not free:
            raise OverflowError
        return free.pop(0)

    def release(name, k):
        if name in reg and uses.get(name, -1) <= k and name != out:
            free.append(reg.pop(name))
            free.sort()

    inside = defaultdict(list)
    for n in order:
        for i in _ew_srcs(n):
            inside[i].append(n)
    folded = set()   # DequantizeLinear nodes done by their QuantizeLinear's FQ
    try:
        reg[main] = take()
        emit(_EWC["LOAD_MAIN"], reg[main])
        for k, n in enumerate(order):
            if id(n) in folded:
                continue
            t = n.op_type
            if t == "QuantizeLinear" and n.outputs[0] != out:
                users = inside.get(n.outputs[0], [])
                if (len(users) == 1 and users[0].op_type == "DequantizeLinear"
                        and _ew_qdq(graph, users[0])[:2] == _ew_qdq(graph, n)[:2]):
                    m = users[0]
                    s, z, dt = _ew_qdq(graph, n)
                    lo, hi = (0.0, 255.0) if dt == np.uint8 else (-128.0, 127.0)
                    a = reg[n.inputs[0]]
                    release(n.inputs[0], k)
                    dst = take()
                    emit(_EWC["FQ"], dst, a, 0, (float(z), s, lo, hi))
                    reg[m.outputs[0]] = dst
                    folded.add(id(m))
                    release(m.outputs[0], order.index(m))
                    continue
            operands = []
            temps = []
            srcs = _ew_srcs(n)
            if t in ("Add", "Sub", "Mul", "Div"):
                side = next((j for j in (1, 0) if srcs[j] not in produced and srcs[j] != main
                             and srcs[j] not in reg and _const(graph, srcs[j]) is not None
                             and _const(graph, srcs[j]).size == 1), None)
                if side is not None and srcs[1 - side] in reg:
                    a = reg[srcs[1 - side]]
                    release(srcs[1 - side], k)
                    dst = take()
                    c = float(np.asarray(_const(graph, srcs[side]), np.float32).reshape(-1)[0])
                    op = _EWC_CONST[(t, side)]
                    mant, e = np.frexp(c)
                    if t == "Div" and side == 1 and abs(mant) == 0.5 and -124 <= e <= 126:
                        op, c = _EWC_CONST[("Mul", 1)], 1.0 / c   # x / 2^k == x * 2^-k exactly
                    emit(op, dst, a, 0, (c,))
                    reg[n.outputs[0]] = dst
                    release(n.outputs[0], k)
                    continue
            for i in srcs:
                if i in reg:
                    operands.append(reg[i])
                    continue
                if i in produced:
                    return None
                if i not in ext:
                    ext.append(i)
                r = take()
                temps.append(r)
                emit(_EWC["LOAD_EXT"], r, ext.index(i))
                operands.append(r)
            for i in srcs:
                release(i, k)
            for r in temps:
                free.append(r)
            free.sort()
            dst = take()
            if t in ("Add", "Sub", "Mul", "Div"):
                emit(_EWC[t], dst, operands[0], operands[1])
            elif t == "QuantizeLinear":
                s, z, dt = _ew_qdq(graph, n)
                lo, hi = (0.0, 255.0) if dt == np.uint8 else (-128.0, 127.0)
                emit(_EWC["QNT"], dst, operands[0], 0, (float(z), s, lo, hi))
            elif t == "DequantizeLinear":
                s, z, _ = _ew_qdq(graph, n)
                emit(_EWC["DEQ"], dst, operands[0], 0, (float(z), s))
            else:
                fn, fa, fb = _unary_fn(n, [graph.values.get(i) for i in n.inputs])
                emit(_EWC["UNARY"], dst, operands[0], int(fn), (float(fa), float(fb)))
            reg[n.outputs[0]] = dst
            release(n.outputs[0], k)
    except OverflowError:
        return None
    if out not in reg or len(ext) > _EWC_MAX_EXT or len(ins) + 1 > _EWC_MAX_INS:
        return None
    emit(_EWC["STORE"], 0, reg[out])
    header = [len(ins), len(ext)]
    for k in range(_EWC_MAX_EXT):
        if k < len(ext):
            header += [_ew_pattern(graph.values[ext[k]], shape), int(shape[-1]) if shape else 1]
        else:
            header += [0, 0]
    words = np.concatenate([np.array(header, np.int32), np.array(ins, np.int32).reshape(-1),
                            np.array(consts, np.float32).reshape(-1).view(np.int32)])
    return words, ext


def fuse_eltwise_chains(graph: Graph) -> None:
    """Groups of element-wise nodes with one output -> one EltwiseChain node (csrc/
    q8_ewchain.h): per-tensor QuantizeLinear / DequantizeLinear, Add / Sub / Mul / Div and
    the cheap unary ops over one shape, their other operands constants or earlier values
    that are scalars, last-axis vectors or of the same shape. A QDQ transformer runs
    bias-Add -> Q -> DQ -> Div -> Q -> DQ -> Erf -> ... as one step per tensor pass, with
    the unfused steps' exact arithmetic. ``DSL_EWCHAIN=0`` turns it off."""
    import os
    if os.environ.get("DSL_EWCHAIN", "1") == "0":
        return
    cons = _consumers(graph)
    producers = {o: n for n in graph.nodes for o in n.outputs if o}
    index = {id(n): k for k, n in enumerate(graph.nodes)}
    outputs = set(graph.outputs)
    taken = set()
    fused: Dict[int, Node] = {}
    for h in graph.nodes:
        if id(h) in taken or not _ew_node_ok(graph, h):
            continue
        shape = tuple(graph.values[h.outputs[0]].shape)
        if not shape or int(np.prod(shape, dtype=np.int64)) < 1024:
            continue

        def ext_ok(name, limit=index[id(h)]):
            v = graph.values.get(name)
            p = producers.get(name)
            return (_ew_pattern(v, shape) is not None
                    and (p is None or index[id(p)] < limit))

        main = h.inputs[0]
        if h.op_type in ("Add", "Sub", "Mul", "Div") and _ew_pattern(graph.values[main], shape) != 0:
            main = h.inputs[1]
        mv = graph.values.get(main)
        if mv is None or tuple(mv.shape or ()) != shape:
            continue
        if h.op_type == "DequantizeLinear":
            in_dt = mv.dtype
        elif mv.dtype != np.float32:
            continue
        else:
            in_dt = np.dtype(np.float32)
        others = [i for i in (h.inputs if h.op_type in ("Add", "Sub", "Mul", "Div") else [])
                  if i != main]
        if not all(ext_ok(i) for i in others):
            continue
        group, members, produced = [h], {id(h)}, [h.outputs[0]]
        grew = True
        while grew and len(group) < _EWC_MAX_NODES:
            grew = False
            for v in list(produced):
                for c in cons.get(v, []):
                    if id(c) in members or id(c) in taken or not _ew_node_ok(graph, c):
                        continue
                    if tuple(graph.values[c.outputs[0]].shape) != shape:
                        continue
                    if not all(i in produced or i == main or ext_ok(i) for i in _ew_srcs(c)):
                        continue
                    group.append(c)
                    members.add(id(c))
                    produced.append(c.outputs[0])
                    grew = True
                    if len(group) >= _EWC_MAX_NODES:
                        break
                if grew:
                    break
        best = None
        for k in range(len(group), 1, -1):
            sub = group[:k]
            ids = {id(n) for n in sub}
            outs = [n.outputs[0] for n in sub]
            ext_outs = [o for o in outs if o in outputs or any(id(c) not in ids for c in cons.get(o, []))]
            if len(ext_outs) != 1:
                continue
            prog = _ew_program(graph, sub, main, ext_outs[0], shape)
            if prog is not None:
                best = (sub, ext_outs[0], prog)
                break
        if best is None:
            continue
        sub, out, (words, ext) = best
        out_dt = graph.values[out].dtype
        fused[id(h)] = Node(f"{h.name}__ewc", "EltwiseChain", [main] + ext, [out],
                            {"_program": words, "_in_dtype": str(np.dtype(in_dt)),
                             "_out_dtype": str(np.dtype(out_dt)), "_nodes": len(sub)},
                            "ai.deepsparse_lite", 1)
        taken.update(id(n) for n in sub)
    if not fused:
        return
    graph.nodes = [fused.get(id(n), n) for n in graph.nodes if id(n) not in taken or id(n) in fused]
    remove_dead(graph)
