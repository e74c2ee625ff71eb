"""Load an ONNX model into the compiler's graph IR, applying shape overrides in memory.

The user's file is never modified: ``batch_size`` and ``input_shapes`` overrides are
applied to the in-memory graph only (DeepSparse rewrites the file in place; we do not).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import onnx
from onnx import numpy_helper

from deepsparse_lite.ops.base import Node, UnsupportedModelError, Value
from deepsparse_lite.plan import DTYPE_TO_NP

from deepsparse_lite.compiler.opsets import MAX_OPSET, MIN_OPSET, check_opsets, upgrade_opset  # noqa: F401

ONNX_TO_NP = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT16: np.int16,
    onnx.TensorProto.INT8: np.int8, onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.UINT16: np.uint16, onnx.TensorProto.UINT32: np.uint32,
    onnx.TensorProto.UINT64: np.uint64, onnx.TensorProto.BOOL: np.bool_,
}
ONNX_TO_NP.update(DTYPE_TO_NP)  # + every element type the kernels know (bfloat16, float8)


class ModelLoadError(ValueError):
    """The file is not a usable ONNX model (unreadable, corrupt, truncated, empty)."""


class ShapeOverrideError(ValueError, AssertionError):
    """An ``input_shapes`` override does not fit the model. Also an AssertionError, which
    is what DeepSparse raises for the same mistakes."""


@dataclass
class Graph:
    nodes: List[Node]
    values: Dict[str, Value]
    inputs: List[str]
    outputs: List[str]
    opset: int
    opsets: Dict[str, int] = field(default_factory=dict)
    declared_input_shapes: Dict[str, tuple] = field(default_factory=dict)
    node_protos: Dict[str, onnx.NodeProto] = field(default_factory=dict)
    ir_version: int = 0


def load_model_proto(model: Union[str, os.PathLike, onnx.ModelProto, bytes]) -> onnx.ModelProto:
    """Read a ModelProto from a path, bytes or a proto, raising ModelLoadError if unusable."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as exc:  # protobuf DecodeError and friends
            raise ModelLoadError(f"could not parse ONNX model bytes: {exc}") from None
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelLoadError(f"model path must exist: given {path}")
    if os.path.isdir(path):
        raise ModelLoadError(f"expected an ONNX file, got a directory: {path}")
    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(f"could not parse ONNX model '{path}': {type(exc).__name__}: {exc}") from None
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, os.path.dirname(os.path.abspath(path)))
    except Exception as exc:
        raise ModelLoadError(f"could not load the external data of ONNX model '{path}': {exc}") from None
    return proto


def load_model(model: Union[str, os.PathLike, onnx.ModelProto, bytes]) -> onnx.ModelProto:
    """``load_model_proto`` then, for opsets below MIN_OPSET, the in-memory upgrade."""
    proto = load_model_proto(model)
    check_names(proto)
    return upgrade_opset(proto)


def _is_text(s) -> bool:
    return isinstance(s, str)


def check_names(proto: onnx.ModelProto) -> None:
    """Every name the compiler reads must be text. The protobuf runtime hands back a
    ``string`` field that is not valid UTF-8 (a flipped byte in an op type or a tensor name)
    as ``bytes``; the opset upgrade and the schema look-ups then failed with a bare
    TypeError (``has_schema(): incompatible function arguments``), and a ``bytes`` name
    never matches the ``str`` one of its producer."""
    if not proto.HasField("graph"):
        return
    g = proto.graph
    for imp in proto.opset_import:
        if not _is_text(imp.domain):
            raise ModelLoadError(f"an opset_import domain is not valid UTF-8: {imp.domain!r}")
    for where, items in (("graph input", g.input), ("graph output", g.output), ("value_info", g.value_info),
                         ("initializer", g.initializer)):
        for item in items:
            if not _is_text(item.name):
                raise ModelLoadError(f"a {where} name is not valid UTF-8: {item.name!r}")
            if where != "initializer" and item.type.HasField("tensor_type"):
                for d in item.type.tensor_type.shape.dim:
                    if d.HasField("dim_param") and not _is_text(d.dim_param):
                        raise ModelLoadError(f"{where} '{item.name}' has a dim_param that is not valid UTF-8")
    for k, n in enumerate(g.node):
        label = n.name if _is_text(n.name) else f"#{k}"
        for field_name in ("op_type", "name", "domain"):
            v = getattr(n, field_name)
            if not _is_text(v):
                raise ModelLoadError(f"node {label}: its {field_name} is not valid UTF-8: {v!r}")
        for kind, names in (("input", n.input), ("output", n.output)):
            for j, v in enumerate(names):
                if not _is_text(v):
                    raise ModelLoadError(f"{n.op_type} node '{label}': {kind} {j} is not valid UTF-8: {v!r}")
        for a in n.attribute:
            if not _is_text(a.name):
                raise ModelLoadError(f"{n.op_type} node '{label}': an attribute name is not valid UTF-8: {a.name!r}")


def _dims(type_proto) -> Optional[List[Optional[int]]]:
    if not type_proto.HasField("tensor_type"):
        return None
    tt = type_proto.tensor_type
    if not tt.HasField("shape"):
        return None
    out = []
    for d in tt.shape.dim:
        # a dim_value (0 included: a zero-size dimension is static) or unknown (dim_param /
        # nothing). A negative dim_value is meaningless: read as unknown.
        out.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value >= 0 else None)
    return out


def _elem_dtype(type_proto, name: str):
    if not type_proto.HasField("tensor_type"):
        kind = (type_proto.WhichOneof("value") or "untyped").replace("_type", "")
        raise UnsupportedModelError(
            f"graph value '{name}' is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not a tensor (sequences, "
            f"optionals and maps are not supported)")
    et = type_proto.tensor_type.elem_type
    if et not in ONNX_TO_NP:
        raise UnsupportedModelError(
            f"graph value '{name}' has element type {onnx.TensorProto.DataType.Name(et)}, which is not supported")
    return np.dtype(ONNX_TO_NP[et])


def _attr_value(a: onnx.AttributeProto):
    if a.type == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(a.t)
    if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
        return a  # kept raw: ops with subgraphs are only folded, never lowered
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [x.decode("utf-8", errors="replace") for x in v]
    return v


def normalize_input_shapes(input_shapes) -> Optional[List[List[int]]]:
    """DeepSparse semantics: None/empty -> None; a flat list -> [list]; str via parse_input_shapes."""
    if input_shapes is None:
        return None
    if isinstance(input_shapes, str):
        from deepsparse_lite.utils.data import parse_input_shapes
        input_shapes = parse_input_shapes(input_shapes)
        if input_shapes is None:
            return None
    shapes = list(input_shapes)
    if not shapes:
        return None
    if all(isinstance(d, (int, np.integer)) for d in shapes):
        shapes = [shapes]
    try:
        return [[int(d) for d in s] for s in shapes]
    except TypeError:
        raise ShapeOverrideError(f"input_shapes must be a list of shapes (lists of ints), got {input_shapes!r}") from None


@dataclass
class InputSpec:
    """A graph input as the compiler sees it before any value arrives: ``shape`` has None
    for a dimension no declaration or override fixes (a symbolic dim)."""
    name: str
    dtype: np.dtype
    shape: Tuple[Optional[int], ...]
    dim_names: Tuple[str, ...] = ()

    @property
    def is_static(self) -> bool:
        return all(d is not None for d in self.shape)


def input_specs(proto: onnx.ModelProto, batch_size: Optional[int] = None, input_shapes=None,
                batch_exempt=()) -> List[InputSpec]:
    """The graph inputs (initializers excluded) with overrides applied in memory:
    ``input_shapes`` replaces whole shapes (one shape is duplicated to every input, as
    DeepSparse does), then ``batch_size`` sets dim 0 of every input not in ``batch_exempt``."""
    g = proto.graph
    init_names = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in init_names]
    seen = set()
    for vi in inputs:
        if vi.name in seen:  # the second declaration silently replaced the first's shape
            raise ModelLoadError(f"graph input '{vi.name}' is declared more than once")
        seen.add(vi.name)
    declared = {}
    for vi in inputs:
        _elem_dtype(vi.type, vi.name)  # a sequence / optional / map input: say so first
        dims = _dims(vi.type)
        if dims is None:
            raise UnsupportedModelError(f"graph input '{vi.name}' has no shape information")
        declared[vi.name] = tuple(dims)
    shapes = {vi.name: list(declared[vi.name]) for vi in inputs}
    overrides = normalize_input_shapes(input_shapes)
    if overrides is not None:
        if len(overrides) == 1 and len(inputs) > 1:
            overrides = overrides * len(inputs)  # DeepSparse duplicates one shape to every input
        if len(overrides) != len(inputs):
            raise ShapeOverrideError(
                f"Mismatch of number of model inputs ({len(inputs)}) and override shapes ({len(overrides)})")
        for vi, shp in zip(inputs, overrides):
            if len(shp) != len(shapes[vi.name]):
                raise ShapeOverrideError(
                    f"Input '{vi.name}' shape doesn't match shape override: {list(declared[vi.name])} vs {shp}")
            if any(d < 1 for d in shp):
                raise ShapeOverrideError(f"Input '{vi.name}' shape override has a dimension < 1: {shp}")
            shapes[vi.name] = list(shp)
    if batch_size is not None:
        for vi in inputs:
            if shapes[vi.name] and vi.name not in batch_exempt:
                shapes[vi.name][0] = int(batch_size)
    out = []
    for vi in inputs:
        dims = vi.type.tensor_type.shape.dim
        out.append(InputSpec(vi.name, _elem_dtype(vi.type, vi.name), tuple(shapes[vi.name]),
                             tuple(d.dim_param or "?" for d in dims)))
    return out


def build_graph(proto: onnx.ModelProto, batch_size: Optional[int] = None,
                input_shapes=None, *, shapes: Optional[Dict[str, Tuple[int, ...]]] = None,
                bind: Optional[Dict[str, np.ndarray]] = None, batch_exempt=()) -> Graph:
    """The graph IR of ``proto`` with every graph input given a static shape.

    ``shapes`` gives the concrete shape of inputs with symbolic dims (they must agree with
    every static dim); ``bind`` makes inputs constants of the given values (a value-
    specialised plan: they stay inputs of the plan, which never reads them)."""
    if not isinstance(proto, onnx.ModelProto) or not proto.HasField("graph"):
        raise ModelLoadError("the file holds no ONNX graph")
    g = proto.graph
    if len(g.output) == 0:
        raise ModelLoadError("the ONNX graph declares no outputs (is the file truncated or not an ONNX model?)")
    check_names(proto)
    for where, items in (("input", g.input), ("output", g.output)):
        if any(not vi.name for vi in items):  # '' means "no value" in ONNX: lowering found no Value for it
            raise ModelLoadError(f"a graph {where} has an empty name")
    proto = upgrade_opset(proto)  # opset < 7: an upgraded in-memory copy (load_model did it already)
    g = proto.graph
    opset = check_opsets(proto)
    opsets = {}
    for imp in proto.opset_import:
        opsets[imp.domain or ""] = int(imp.version)
    opsets[""] = opset
    opsets.setdefault("ai.onnx", opset)

    values: Dict[str, Value] = {}
    if len({t.name for t in g.initializer}) != len(g.initializer):
        dup = sorted({t.name for t in g.initializer if sum(u.name == t.name for u in g.initializer) > 1})
        raise ModelLoadError(f"initializer(s) {dup} are defined more than once")
    for init in g.initializer:
        try:
            arr = numpy_helper.to_array(init)
        except Exception as exc:
            raise ModelLoadError(f"initializer '{init.name}' could not be read: {exc}") from None
        values[init.name] = Value(init.name, tuple(int(d) for d in arr.shape), arr.dtype, arr)
    if len(g.sparse_initializer):
        raise UnsupportedModelError("sparse_initializer tensors are not supported")

    shapes = dict(shapes or {})
    bind = dict(bind or {})
    for name, arr in bind.items():
        shapes.setdefault(name, tuple(np.shape(arr)))
    specs = input_specs(proto, batch_size, input_shapes, batch_exempt)
    unknown = set(shapes) - {s.name for s in specs}
    if unknown:
        raise ValueError(f"shapes/values given for {sorted(unknown)}, which are not graph inputs")
    for spec in specs:
        shp = list(spec.shape)
        if spec.name in shapes:
            given = tuple(int(d) for d in shapes[spec.name])
            # a bound (parameter) input only keeps its rank: its value decides the rest
            strict = spec.name not in bind
            if len(given) != len(shp) or strict and any(d is not None and d != g_ for d, g_ in zip(shp, given)):
                raise ValueError(f"input '{spec.name}' has shape {list(given)}, the model declares "
                                 f"{[spec.dim_names[k] if d is None else d for k, d in enumerate(shp)]}")
            shp = list(given)
        missing = [k for k, d in enumerate(shp) if d is None]
        if missing:
            names = [spec.dim_names[k] for k in missing]
            raise UnsupportedModelError(
                f"input '{spec.name}' has dynamic dimension(s) {names} at index {missing}; "
                f"compile with input_shapes=[...] (or batch_size for dim 0) to make every input static")
        shape = tuple(int(d) for d in shp)
        if spec.name in bind:
            const = np.array(bind[spec.name], dtype=spec.dtype, copy=True)
        elif 0 in shape:
            # a zero-element input has known (empty) values: a constant, so e.g. empty
            # `axes` or zero-size `split` inputs fold like initializers
            const = np.empty(shape, spec.dtype)
        else:
            const = None
        values[spec.name] = Value(spec.name, shape, spec.dtype, const)
    inputs = specs

    nodes: List[Node] = []
    protos: Dict[str, onnx.NodeProto] = {}
    seen_names = set()
    defined = set(values)  # graph inputs and initializers
    for k, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{k}"
        if name in seen_names:
            name = f"{name}__{k}"
        seen_names.add(name)
        for o in n.output:
            # ONNX graphs are in SSA form: a second producer of a name made two plan steps
            # share one buffer sized for either (atheris: a heap overflow in a reduction)
            if o and o in defined:
                raise ModelLoadError(f"{n.op_type} node '{name}': output '{o}' is already defined "
                                     f"(a graph input, an initializer or another node's output; "
                                     f"ONNX graphs must be in SSA form)")
            defined.add(o)
        domain = n.domain if n.domain not in ("ai.onnx",) else ""
        _check_node_schema(n, name, domain, opsets.get(domain, opset))
        try:
            attrs = {a.name: _attr_value(a) for a in n.attribute}
        except Exception as exc:
            raise ModelLoadError(f"{n.op_type} node '{name}': an attribute could not be read: "
                                 f"{type(exc).__name__}: {exc}") from None
        nodes.append(Node(name, n.op_type, list(n.input), list(n.output), attrs, domain,
                          opsets.get(domain, opset)))
        protos[name] = n
    graph = Graph(nodes, values, [vi.name for vi in inputs], [o.name for o in g.output], opset,
                  opsets, {s.name: s.shape for s in specs}, protos, int(proto.ir_version))
    _check_topological(graph)
    return graph


_ATTR_TYPE_NAMES = {v: k for k, v in onnx.AttributeProto.AttributeType.items()}


def _check_node_schema(n: onnx.NodeProto, name: str, domain: str, version: int) -> None:
    """Each attribute must have the type the op's schema declares, every required one must
    be there, the input count must be one the op takes, with no required input left empty,
    and there must be no more outputs than the op makes. Op rules read ``node.attrs`` trusting those types (``int(axis)``,
    ``list(kernel_shape)``): an ``axis`` given as a float list, a ``kernel_shape`` given as
    one int or an attribute of type UNDEFINED (read as None) otherwise surfaced as a bare
    TypeError deep inside a shape rule or a pass. Ops without a schema (other domains) are
    only checked for UNDEFINED types; attributes the schema does not know are left alone."""
    try:
        schema = onnx.defs.get_schema(n.op_type, max_inclusive_version=max(int(version), 1), domain=domain)
    except Exception:
        schema = None
    declared = schema.attributes if schema is not None else {}
    seen = set()
    for a in n.attribute:
        if a.name in seen:
            raise ModelLoadError(f"{n.op_type} node '{name}': attribute '{a.name}' is given twice")
        seen.add(a.name)
        if a.type == onnx.AttributeProto.UNDEFINED:
            raise ModelLoadError(f"{n.op_type} node '{name}': attribute '{a.name}' has no type (UNDEFINED)")
        spec = declared.get(a.name)
        if spec is not None and int(spec.type) != int(a.type):
            raise ModelLoadError(
                f"{n.op_type} node '{name}': attribute '{a.name}' must be of type "
                f"{_ATTR_TYPE_NAMES.get(int(spec.type), spec.type)}, the model gives "
                f"{_ATTR_TYPE_NAMES.get(int(a.type), a.type)}")
    for key, spec in declared.items():
        if spec.required and key not in seen:
            raise ModelLoadError(f"{n.op_type} node '{name}': required attribute '{key}' is missing")
    if schema is None:
        return
    # inputs: a dropped or blanked ('') required input reached the shape rules as None
    # (AttributeError / IndexError there)
    count = len(n.input)
    if count < schema.min_input or count > schema.max_input:
        raise ModelLoadError(f"{n.op_type} node '{name}' has {count} inputs, the op takes "
                             f"{schema.min_input}" + ("" if schema.max_input == schema.min_input else
                                                      f" to {schema.max_input}"))
    count = len(n.output)
    if count > schema.max_output:
        # an extra output had no Value: a bare KeyError when the node was lowered. Fewer
        # outputs are fine (a TopK whose indices are not wanted: the rules make what is named)
        raise ModelLoadError(f"{n.op_type} node '{name}' has {count} outputs, the op makes at most "
                             f"{schema.max_output}")
    single = onnx.defs.OpSchema.FormalParameterOption.Single
    for k, (formal, given) in enumerate(zip(schema.inputs, n.input)):
        if formal.option == single and not given:
            raise ModelLoadError(f"{n.op_type} node '{name}': required input {k} ('{formal.name}') is empty")


def _check_topological(graph: Graph) -> None:
    """ONNX requires topological order; re-sort if a producer comes after its consumer."""
    known = set(graph.values) | {""}
    ordered, pending = [], list(graph.nodes)
    progress = True
    while pending and progress:
        progress = False
        rest = []
        for n in pending:
            if all(i in known for i in n.inputs):
                ordered.append(n)
                known.update(n.outputs)
                progress = True
            else:
                rest.append(n)
        pending = rest
    if pending:
        n = pending[0]
        missing = [i for i in n.inputs if i not in known]
        raise ModelLoadError(f"{n.describe()} uses undefined value(s) {missing} (graph is not a DAG or is truncated)")
    graph.nodes = ordered
    for o in graph.outputs:
        if o not in known:
            raise ModelLoadError(f"graph output '{o}' is not produced by any node")

