"""Static INT8 quantization to QDQ, in the layout of onnxruntime's ``quantize_static``.

Why our own: users get quantized models without installing a second runtime, and
calibration runs on our own Engine. The layout is copied from onnxruntime so one INT8
rewriter serves both tools' files, and the tests check it node for node against
``quantize_static`` (QDQ, per_channel=True, QUInt8 activations, QInt8 weights):

- weights of Conv / ConvTranspose / Gemm / MatMul: int8 symmetric, one scale per output
  channel, stored as ``W_quantized`` + ``W_scale`` + ``W_zero_point`` and read through
  ``DequantizeLinear(axis)`` -> ``W_DequantizeLinear_Output``. Conv/Gemm biases are int32
  with scale ``input_scale * weight_scale`` (``B_quantized``; the DequantizeLinear keeps
  the name ``B``). LayerNorm / BatchNorm scales are int8 per tensor, their biases int32;
- activations: uint8 asymmetric from min/max calibration (range widened to hold 0), one
  ``QuantizeLinear -> DequantizeLinear`` pair per tensor (``T_QuantizeLinear`` /
  ``T_DequantizeLinear``, ``T_scale``, ``T_zero_point``) shared by all its consumers. A
  graph output keeps its name on the DequantizeLinear side (``T_QuantizeLinear_Input``);
- which tensors: the inputs and outputs of the ops above and of Add, Mul, Concat, Softmax,
  GlobalAveragePool, Sigmoid, LeakyRelu (both operands of an activation x activation
  MatMul: attention). Data-movement ops (MaxPool, AveragePool, Reshape, Transpose, Flatten,
  Squeeze, Unsqueeze, Slice, Gather's data) whose input is already quantized get their
  output quantized with the *same* scale and zero point. Constant operands of the ops above
  (an Add's bias, an embedding table) are stored uint8 per tensor. A tensor with a
  non-finite range (a -inf mask) stays fp32;
- pre-processing: a BatchNormalization after a Conv is folded into it. A Relu or
  Clip(min <= 0 <= max) whose input feeds nothing else is removed and its producer writes
  the activation's output. Its range, calibrated before the removal, starts at 0, so the
  QuantizeLinear clamps exactly as the activation did. Opsets below 13 are converted to 13
  (per-channel DequantizeLinear needs it).

Calibration runs the fp32 model with deepsparse_lite's own Engine (see calibration.py).
"""
from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deepsparse_lite.sparsify._model import (Constants, ModelLike, attr, consumers,
                                             has_quantized_ops, load, opset, set_metadata)
from deepsparse_lite.sparsify.calibration import Calibration, calibration_sets, collect_ranges

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
NORM_OPS = ("LayerNormalization", "InstanceNormalization", "BatchNormalization")
ALL_IO_OPS = ("Add", "Mul", "Concat", "Softmax", "GlobalAveragePool", "Sigmoid", "LeakyRelu")
SAME_SCALE_OPS = ("MaxPool", "AveragePool", "Reshape", "Transpose", "Flatten", "Squeeze",
                  "Unsqueeze", "Slice", "Gather")
QUANTIZED_OPS = WEIGHTED_OPS + NORM_OPS + ALL_IO_OPS + SAME_SCALE_OPS
REMOVABLE_ACTIVATIONS = ("Relu", "Clip")

_LOGGER = logging.getLogger(__name__)


@dataclass
class QuantizationReport:
    """What was quantized: weights (per channel), biases, activations; and what was folded."""
    weights: List[str]
    biases: List[str]
    activations: List[str]
    folded_batchnorms: List[str]
    removed_activations: List[str]
    calibration_sets: int

    def __str__(self) -> str:
        return (f"quantized {len(self.weights)} weights (int8 per channel), "
                f"{len(self.biases)} biases (int32), {len(self.activations)} activations "
                f"(uint8, {self.calibration_sets} calibration sets); folded "
                f"{len(self.folded_batchnorms)} BatchNormalization, removed "
                f"{len(self.removed_activations)} Relu/Clip")


# --------------------------------------------------------------------------- pre-processing
def _float_tensors(model: onnx.ModelProto) -> Dict[str, bool]:
    """tensor -> is float32, for every tensor whose type shape inference can tell."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + \
            list(inferred.graph.output):
        if vi.type.HasField("tensor_type"):
            out[vi.name] = vi.type.tensor_type.elem_type == TensorProto.FLOAT
    for t in model.graph.initializer:
        out[t.name] = t.data_type == TensorProto.FLOAT
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = a.t.data_type == TensorProto.FLOAT
    return out


def fold_batchnorm(model: onnx.ModelProto) -> List[str]:
    """Fold every BatchNormalization fed by a Conv (constant weights, output used only by the
    BN) into the Conv's weight and bias. Zeros of a pruned weight stay zero."""
    consts = Constants(model)
    cons = consumers(model)
    outputs = {o.name for o in model.graph.output}
    producer = {o: n for n in model.graph.node for o in n.output}
    folded, drop = [], []
    for bn in model.graph.node:
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or conv.input[1] not in consts \
                or len(cons.get(bn.input[0], [])) != 1 or bn.input[0] in outputs \
                or not all(i in consts for i in bn.input[1:5]):
            continue
        w = consts.get(conv.input[1]).astype(np.float32)
        if len(cons.get(conv.input[1], [])) != 1:
            continue  # weight shared with another node: folding would change that node
        scale, beta, mean, var = (consts.get(i).astype(np.float32) for i in bn.input[1:5])
        eps = attr(bn, "epsilon", 1e-5)
        s = scale / np.sqrt(var + np.float32(eps))
        b = consts.get(conv.input[2]).astype(np.float32) if len(conv.input) > 2 and \
            conv.input[2] else np.zeros(w.shape[0], np.float32)
        consts.set(conv.input[1], (w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32))
        new_b = ((b - mean) * s + beta).astype(np.float32)
        if len(conv.input) > 2 and conv.input[2] and consts.is_initializer(conv.input[2]) \
                and len(cons.get(conv.input[2], [])) == 1:
            consts.set(conv.input[2], new_b)
        else:
            name = f"{conv.name or conv.output[0]}.bias_folded"
            model.graph.initializer.append(numpy_helper.from_array(new_b, name))
            while len(conv.input) < 3:
                conv.input.append("")
            conv.input[2] = name
        conv.output[0] = bn.output[0]
        folded.append(bn.name or bn.output[0])
        drop.append(bn)
    for bn in drop:
        model.graph.node.remove(bn)
    _drop_unused_initializers(model)
    return folded


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    """Remove initializers and Constant nodes nothing reads any more (a removed Clip's
    bounds, a folded BatchNorm's statistics)."""
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    dead = [n for n in model.graph.node if n.op_type == "Constant" and n.output[0] not in used]
    for n in dead:
        model.graph.node.remove(n)
    keep = [t for t in model.graph.initializer if t.name in used]
    if len(keep) != len(model.graph.initializer):
        gone = {t.name for t in model.graph.initializer} - {t.name for t in keep}
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep)
        inputs = [i for i in model.graph.input if i.name not in gone]
        del model.graph.input[:]
        model.graph.input.extend(inputs)


def _clip_bounds(node: onnx.NodeProto, consts: Constants) -> Tuple[float, float]:
    lo, hi = -np.inf, np.inf
    if opset_of_clip_attrs(node):
        lo, hi = attr(node, "min", -3.4e38), attr(node, "max", 3.4e38)
    if len(node.input) > 1 and node.input[1]:
        v = consts.get(node.input[1])
        lo = float(v) if v is not None else np.nan
    if len(node.input) > 2 and node.input[2]:
        v = consts.get(node.input[2])
        hi = float(v) if v is not None else np.nan
    return lo, hi


def opset_of_clip_attrs(node: onnx.NodeProto) -> bool:
    return any(a.name in ("min", "max") for a in node.attribute)


def remove_activations(model: onnx.ModelProto, op_types=QUANTIZED_OPS,
                       exclude: Sequence[str] = ()) -> list:
    """Drop Relu / Clip(min <= 0 <= max) whose input comes from an op that will be quantized
    and feeds nothing else; the producer writes the activation's output name instead.
    Returns ``(producer, output index, activation node)`` per removal, for
    :func:`_restore_activations`."""
    consts = Constants(model)
    cons = consumers(model)
    outputs = {o.name for o in model.graph.output}
    producer = {o: n for n in model.graph.node for o in n.output}
    removed = []
    for act in model.graph.node:
        if act.op_type not in REMOVABLE_ACTIVATIONS:
            continue
        if act.op_type == "Clip":
            lo, hi = _clip_bounds(act, consts)
            if not (lo <= 0.0 <= hi):
                continue
        src = producer.get(act.input[0])
        if src is None or src.op_type not in WEIGHTED_OPS + NORM_OPS + ALL_IO_OPS \
                or src.op_type not in op_types or _excluded(src, exclude) \
                or len(cons.get(act.input[0], [])) != 1 or act.input[0] in outputs:
            continue
        idx = list(src.output).index(act.input[0])
        src.output[idx] = act.output[0]
        producer[act.output[0]] = src
        removed.append((src, idx, act))
    for _, _, n in removed:
        model.graph.node.remove(n)
    return removed


def _restore_activations(model: onnx.ModelProto, removed: list, quantized) -> list:
    """Put back every removed activation whose output ends up without its own
    QuantizeLinear (no clamp would replace it); returns the ones that stay removed."""
    kept = []
    for src, idx, act in removed:
        if act.output[0] in quantized:
            kept.append(act)
            continue
        src.output[idx] = act.input[0]
        nodes = list(model.graph.node)
        pos = next(k for k, n in enumerate(nodes) if n is src)
        model.graph.node.insert(pos + 1, act)
    return kept


def _excluded(node: onnx.NodeProto, exclude: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(node.name, p) for p in exclude)


# --------------------------------------------------------------------------- what to quantize
@dataclass
class _Plan:
    weights: Dict[str, Optional[int]]        # weight initializer -> channel axis (None:
    #                                          one scale for the tensor)
    biases: Dict[str, Tuple[str, str]]       # bias initializer -> (input tensor, weight)
    activations: List[str]                   # tensors with their own calibrated range
    same_as: Dict[str, str]                  # tensor -> tensor whose scale/zp it reuses
    const_acts: List[str]                    # float constants stored uint8 per tensor


def plan_quantization(model: onnx.ModelProto, op_types=QUANTIZED_OPS,
                      exclude: Sequence[str] = ()) -> _Plan:
    consts = Constants(model)
    is_float = _float_tensors(model)
    cons = consumers(model)
    weights: Dict[str, int] = {}
    biases: Dict[str, Tuple[str, str]] = {}
    acts: Dict[str, None] = {}
    const_acts: Dict[str, None] = {}
    same_as: Dict[str, str] = {}

    def only_user(name: str, node) -> bool:
        return all(c is node for c in cons.get(name, []))

    def act(name: str) -> None:
        if not name or not is_float.get(name, False) or name in weights or name in biases \
                or name in same_as:
            return
        if consts.is_initializer(name):
            const_acts[name] = None
        else:  # an activation, or a Constant node's output (calibrated like one, as ort does)
            acts[name] = None

    # One pass in graph order, as onnxruntime does: a data-movement op whose input is already
    # quantized (by its producer or an earlier consumer) gives its output the same scale.
    for n in model.graph.node:
        if n.op_type not in op_types or _excluded(n, exclude):
            continue
        if n.op_type in SAME_SCALE_OPS:
            x, y = n.input[0], n.output[0]
            if n.op_type == "Gather" and x in consts and consts.is_initializer(x) \
                    and is_float.get(x) and x not in weights:
                const_acts[x] = None
            if (x in acts or x in same_as or x in const_acts) and y not in acts \
                    and is_float.get(y, False):
                same_as[y] = x
            continue
        if n.op_type in ("Conv", "ConvTranspose", "Gemm"):
            w = n.input[1] if len(n.input) > 1 else ""
            if w in consts and consts.is_initializer(w) and is_float.get(w) and only_user(w, n):
                # the output-channel axis: ConvTranspose weights are [C_in, C_out / group, ...]
                axis = 1 if n.op_type == "ConvTranspose" or (
                    n.op_type == "Gemm" and not attr(n, "transB", 0)) else 0
                if n.op_type == "ConvTranspose" and attr(n, "group", 1) != 1:
                    axis = None
                weights[w] = axis
                act(n.input[0])
                b = n.input[2] if len(n.input) > 2 else ""
                ok_gemm = n.op_type != "Gemm" or (attr(n, "alpha", 1.0) == 1.0 and
                                                  attr(n, "beta", 1.0) == 1.0)
                if b and consts.is_initializer(b) and is_float.get(b) and \
                        consts.get(b).ndim == 1 and ok_gemm and only_user(b, n) and \
                        n.input[0] not in consts:
                    biases[b] = (n.input[0], w)
                # (a bias that is not a constant of this node alone stays fp32, as in ort)
            else:
                for i in n.input:
                    act(i)
        elif n.op_type == "MatMul":
            w = n.input[1]
            if w in consts and consts.is_initializer(w) and is_float.get(w) and \
                    consts.get(w).ndim == 2 and only_user(w, n):
                weights[w] = 1
                act(n.input[0])
            else:
                act(n.input[0])
                act(n.input[1])
        elif n.op_type in NORM_OPS:
            # onnxruntime's QDQNormalization: scale int8 per tensor, bias int32
            act(n.input[0])
            w = n.input[1] if len(n.input) > 1 else ""
            # a per-tensor scale may be shared (exporters dedupe equal LayerNorm weights):
            # every user then reads the one DequantizeLinear, as in ort
            if w in consts and consts.is_initializer(w) and is_float.get(w) and \
                    weights.get(w, None) is None:
                weights[w] = None
                b = n.input[2] if len(n.input) > 2 else ""
                if b and consts.is_initializer(b) and is_float.get(b) and only_user(b, n):
                    biases[b] = (n.input[0], w)
            elif w and not consts.is_initializer(w):
                act(w)   # a computed scale (HF exports route tied weights through Identity)
        elif n.op_type in ALL_IO_OPS:
            for i in n.input:
                act(i)
        else:
            continue
        for o in n.output:
            act(o)
    return _Plan(weights, biases, list(acts), same_as, list(const_acts))


# --------------------------------------------------------------------------- arithmetic
def _tiny_to_one(scale: np.ndarray) -> np.ndarray:
    scale = np.asarray(scale, np.float32)
    return np.where(scale < np.finfo(np.float32).tiny, np.float32(1.0), scale).astype(np.float32)


def uint8_params(rmin: float, rmax: float) -> Tuple[np.float32, np.uint8]:
    """onnxruntime's asymmetric uint8 scale and zero point for the range [rmin, rmax]."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    scale = _tiny_to_one(np.float32((rmax - rmin) / 255.0))
    zp = 0 if scale == 1.0 and rmax == rmin else int(np.clip(np.round(-rmin / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def quantize_weight(w: np.ndarray, axis: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """int8 symmetric per channel along ``axis`` (range [-127, 127], zero point 0); one
    scalar scale when ``axis`` is None."""
    if axis is None:
        absmax = np.float32(np.abs(w).max() if w.size else 0.0)
        scale = _tiny_to_one(absmax / np.float32(127.0))
        return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale
    red = tuple(i for i in range(w.ndim) if i != axis)
    absmax = np.abs(w).max(axis=red) if w.size else np.zeros(w.shape[axis], np.float32)
    scale = _tiny_to_one(absmax.astype(np.float32) / np.float32(127.0))
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


# --------------------------------------------------------------------------- graph rewrite
def quantize_model(model: ModelLike, calibration: Calibration = 8, seed: int = 0,
                   op_types=QUANTIZED_OPS, exclude: Sequence[str] = (), fold_bn: bool = True,
                   remove_relu: bool = True):
    """Static INT8 quantization of ``model`` (a path or ModelProto, never modified) to QDQ.

    ``calibration``: the number of random input sets (see ``calibration.random_inputs``), a
    directory of ``.npy``/``.npz`` arrays, or a list of input sets. Returns ``(quantized
    ModelProto, QuantizationReport)``. ``op_types`` narrows the quantized op types;
    ``exclude`` names nodes (``fnmatch`` patterns) left in fp32, like onnxruntime's
    ``nodes_to_exclude``.
    """
    proto = load(model)
    if has_quantized_ops(proto):
        raise ValueError("the model is already quantized (it holds QuantizeLinear / "
                         "DequantizeLinear or QLinear* nodes)")
    bad = sorted(set(op_types) - set(QUANTIZED_OPS))
    if bad:
        raise ValueError(f"cannot quantize op types {bad}; supported: {list(QUANTIZED_OPS)}")
    if opset(proto) < 13:
        from onnx import version_converter
        try:
            proto = version_converter.convert_version(proto, 13)
        except Exception as exc:
            raise ValueError(f"cannot convert opset {opset(proto)} to 13, which per-channel "
                             f"DequantizeLinear needs: {exc}") from None
    sets = calibration_sets(proto, calibration, seed)
    folded = fold_batchnorm(proto) if fold_bn else []
    # Calibrate before removing Relu/Clip: their outputs keep their names (the producer takes
    # them over) and must be measured after the activation, so their range starts at 0.
    calibrated = onnx.ModelProto()
    calibrated.CopyFrom(proto)
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    removed = remove_activations(proto, op_types, exclude) if remove_relu else []
    plan = plan_quantization(proto, op_types, exclude)
    ranges = collect_ranges(calibrated, plan.activations, sets)
    unbounded = sorted(t for t, r in ranges.items() if not np.isfinite(r).all())
    if unbounded:  # e.g. a -inf attention mask: no uint8 scale holds it, the tensor stays fp32
        _LOGGER.warning("not quantizing %d tensors with a non-finite range: %s",
                        len(unbounded), ", ".join(unbounded[:5]))
        for t in unbounded:
            del ranges[t]
    removed = _restore_activations(proto, removed, ranges)
    _drop_unused_initializers(proto)
    del calibrated
    set_metadata(proto, **{"sparsify.quantization": "int8 QDQ, per-channel int8 weights, "
                                                    "uint8 activations (min-max)",
                           "sparsify.calibration_sets": str(len(sets))})
    done = _rewrite(proto, plan, ranges)
    report = QuantizationReport(sorted(plan.weights), sorted(done["biases"]),
                                sorted(done["activations"]), folded,
                                [n.name or n.output[0] for n in removed], len(sets))
    return proto, report


def _rewrite(model: onnx.ModelProto, plan: _Plan, ranges: Dict[str, Tuple[float, float]]):
    g = model.graph
    consts = Constants(model)
    inits = {t.name: t for t in g.initializer}
    graph_outputs = {o.name for o in g.output}
    new_inits: List[onnx.TensorProto] = []
    drop_inits = set()
    head: List[onnx.NodeProto] = []                # DequantizeLinear of constants
    after: Dict[str, List[onnx.NodeProto]] = {}    # tensor -> its Q/DQ pair
    rename: Dict[str, str] = {}                    # consumer input -> new input
    out_rename: Dict[str, str] = {}                # producer output -> new output
    params: Dict[str, Tuple[str, str, float]] = {}  # tensor -> (scale name, zp name, scale)

    def add(arr: np.ndarray, name: str) -> str:
        new_inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    # activations with their own range
    for t in plan.activations:
        if t not in ranges:
            continue
        s, z = uint8_params(*ranges[t])
        params[t] = (add(s, f"{t}_scale"), add(z, f"{t}_zero_point"), float(s))
    # float constants used as activations (an Add's bias, an embedding table)
    for t in plan.const_acts:
        arr = consts.get(t).astype(np.float32)
        s, z = uint8_params(float(arr.min()) if arr.size else 0.0,
                            float(arr.max()) if arr.size else 0.0)
        q = np.clip(np.round(arr / s) + int(z), 0, 255).astype(np.uint8)
        sn, zn = add(s, f"{t}_scale"), add(z, f"{t}_zero_point")
        head.append(helper.make_node("DequantizeLinear", [add(q, f"{t}_quantized"), sn, zn],
                                     [f"{t}_DequantizeLinear_Output"],
                                     name=f"{t}_DequantizeLinear"))
        rename[t] = f"{t}_DequantizeLinear_Output"
        drop_inits.add(t)
        params[t] = (sn, zn, float(s))
    # tensors sharing their input's scale (resolved through chains)
    for y, x in plan.same_as.items():
        while x in plan.same_as and x not in params:
            x = plan.same_as[x]
        if x in params:
            params[y] = params[x]
    for t, (sn, zn, _) in params.items():
        if t in plan.const_acts:
            continue
        q_in, dq_out = t, f"{t}_DequantizeLinear_Output"
        if t in graph_outputs:
            q_in, dq_out = f"{t}_QuantizeLinear_Input", t
            out_rename[t] = q_in
        else:
            rename[t] = dq_out
        after[t] = [
            helper.make_node("QuantizeLinear", [q_in, sn, zn], [f"{t}_QuantizeLinear_Output"],
                             name=f"{t}_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [f"{t}_QuantizeLinear_Output", sn, zn],
                             [dq_out], name=f"{t}_DequantizeLinear")]
    # weights: int8 per channel
    wscale: Dict[str, np.ndarray] = {}
    for w, axis in plan.weights.items():
        q, s = quantize_weight(consts.get(w).astype(np.float32), axis)
        wscale[w] = s
        zp = np.zeros(s.shape, np.int8)
        head.append(helper.make_node(
            "DequantizeLinear", [add(q, f"{w}_quantized"), add(s, f"{w}_scale"),
                                 add(zp, f"{w}_zero_point")],
            [f"{w}_DequantizeLinear_Output"], name=f"{w}_DequantizeLinear",
            **({} if axis is None else {"axis": axis})))
        rename[w] = f"{w}_DequantizeLinear_Output"
        drop_inits.add(w)
    # biases: int32 with scale input_scale * weight_scale
    done_biases = []
    for b, (x, w) in plan.biases.items():
        if x not in params or w not in wscale:
            continue
        done_biases.append(b)
        bias = consts.get(b).astype(np.float32)
        per_channel = plan.weights[w] is not None
        s = _tiny_to_one(np.atleast_1d(np.float32(params[x][2]) * wscale[w]))
        q = np.clip(np.round(bias / s), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
        head.append(helper.make_node(
            "DequantizeLinear", [add(q, f"{b}_quantized"), add(s, f"{b}_quantized_scale"),
                                 add(np.zeros(s.shape, np.int32), f"{b}_quantized_zero_point")],
            [b], name=f"{b}_DequantizeLinear", **({"axis": 0} if per_channel else {})))
        drop_inits.add(b)

    nodes = list(head)
    for t in g.input:
        nodes.extend(after.get(t.name, []))
    for n in g.node:
        produced = list(n.output)
        for k, i in enumerate(n.input):
            if i in rename:
                n.input[k] = rename[i]
        for k, o in enumerate(n.output):
            if o in out_rename:
                n.output[k] = out_rename[o]
        nodes.append(n)
        for o in produced:
            nodes.extend(after.get(o, []))
    del g.node[:]
    g.node.extend(nodes)
    keep = [t for t in g.initializer if t.name not in drop_inits]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    dropped_inputs = [i for i in g.input if i.name not in drop_inits]
    del g.input[:]
    g.input.extend(dropped_inputs)
    del g.value_info[:]
    return {"biases": done_biases, "activations": list(params)}
