"""Value-specialised plans: models whose parameters arrive as graph inputs.

The compiler makes static plans: every shape, and every value that decides a shape or a
kernel's parameters (Reshape's target shape, Reduce* axes, Slice bounds, Pad pads, Resize
scales/sizes, TopK's k, ...), is known at compile time. Some models take such values as
graph *inputs*, or declare symbolic dims. :class:`SpecializedModel` compiles them anyway:

- at construction it finds the **parameter inputs**: graph inputs whose values reach a
  parameter position (``PARAM_INPUTS``) directly or through other nodes, stopping at
  Shape/Size (those read a tensor's shape, not its values), and the inputs with symbolic
  dims left after the ``batch_size`` / ``input_shapes`` overrides;
- a call's **key** is (dtype, shape, bytes) of every parameter input plus the shape of
  every input with a symbolic dim: a tuple of small byte strings, cheap to hash;
- the plan of a key is compiled on first use, with the parameter inputs bound as
  constants (then folded like initializers) and the symbolic dims set to the call's
  shapes, and kept in a bounded LRU cache (``cache_size``, default 8). Later calls with
  the same key pay one dictionary lookup.

Parameter inputs stay inputs of every plan (the plan never reads them), so callers pass
the same list of arrays whichever plan runs. Ordinary data inputs stay runtime inputs.
A model with neither gets one static plan at construction: the common case is unchanged.

Only parameter positions are specialised: data operands the lowering wants constant
(e.g. Conv weights) or data-dependent shapes (NonZero) are not, as a plan per activation
value would be an interpreter, not a compiled model.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import onnx

from deepsparse_lite.compiler.graph import InputSpec, input_specs, load_model
from deepsparse_lite.compiler.opsets import DEFAULT_DOMAINS, check_opsets
from deepsparse_lite.config import DEFAULT_PLAN_CACHE_SIZE as DEFAULT_CACHE_SIZE
from deepsparse_lite.ops.base import UnsupportedModelError, get_op
from deepsparse_lite.plan import Plan

_REDUCE = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


def _resize_params(opset: int) -> Tuple[int, ...]:
    # scales (Resize-10) / roi (tf_crop_and_resize), scales, sizes
    return (1,) if opset < 11 else (1, 2, 3)


#: op type -> (opset -> input positions whose values the lowering needs at compile time).
#: Positions an op's version does not have (attributes in older opsets) never match.
PARAM_INPUTS: Dict[str, Callable[[int], Tuple[int, ...]]] = {
    "Reshape": lambda o: (1,), "Expand": lambda o: (1,), "Tile": lambda o: (1,),
    "ConstantOfShape": lambda o: (0,), "Range": lambda o: (0, 1, 2),
    "Squeeze": lambda o: (1,), "Unsqueeze": lambda o: (1,), "Split": lambda o: (1,),
    "Slice": lambda o: (1, 2, 3, 4), "Pad": lambda o: (1, 2, 3), "TopK": lambda o: (1,),
    "Resize": _resize_params, "Upsample": lambda o: (1,), "OneHot": lambda o: (1,),
    "Dropout": lambda o: (1, 2),  # ratio, training_mode: a plan per (ratio, mode)
    "Col2Im": lambda o: (1, 2),   # image_shape, block_shape
    **{r: (lambda o: (1,)) for r in _REDUCE},
}
#: ops whose output depends on an input's shape only: the walk back stops there
SHAPE_ONLY = {"Shape", "Size"}

#: a key holds a parameter's bytes up to this size, a 128-bit digest above it
_INLINE_BYTES = 256


def parameter_inputs(proto: onnx.ModelProto, input_names: Sequence[str]) -> Dict[str, List[str]]:
    """Graph input -> the parameter positions (``"Op node 'n' input k"``) its values reach."""
    opset = check_opsets(proto)
    producer = {}
    for n in proto.graph.node:
        for o in n.output:
            if o:
                producer[o] = n
    inputs = set(input_names)
    found: Dict[str, List[str]] = {}
    for k, n in enumerate(proto.graph.node):
        if n.domain not in DEFAULT_DOMAINS or n.op_type not in PARAM_INPUTS:
            continue
        for pos in PARAM_INPUTS[n.op_type](opset):
            if pos >= len(n.input) or not n.input[pos]:
                continue
            where = f"{n.op_type} node '{n.name or f'{n.op_type}_{k}'}' input {pos}"
            for src in _sources(n.input[pos], producer, inputs):
                found.setdefault(src, []).append(where)
    return found


def _sources(name: str, producer, inputs: Set[str]) -> Set[str]:
    """Graph inputs whose values flow into value ``name`` (not through Shape/Size)."""
    out, stack, seen = set(), [name], set()
    while stack:
        v = stack.pop()
        if v in seen or not v:
            continue
        seen.add(v)
        if v in inputs:
            out.add(v)
            continue
        p = producer.get(v)
        if p is None or (p.domain in DEFAULT_DOMAINS and p.op_type in SHAPE_ONLY):
            continue
        stack.extend(p.input)
    return out


class SpecializedModel:
    """A loaded model and its plans: one static plan, or one plan per parameter key.

    Lifecycle: construct once (loads, upgrades old opsets, finds parameter inputs; a model
    without any compiles its single plan now, so unsupported ops are reported here);
    ``plan_for(inputs)`` any number of times from any thread. Example::

        model = SpecializedModel("model.onnx")
        plan = model.plan_for([x, axes])          # compiled on first use of these axes
        outputs = compiler.execute(plan, [x, axes])

    :param batch_size: dim 0 of every ordinary input (parameter inputs keep their shape)
    :param input_shapes: whole-shape overrides (as ``compile_onnx``)
    :param cache_size: plans kept per model (least recently used evicted first)
    """

    def __init__(self, model, batch_size: Optional[int] = None, input_shapes=None, max_threads: int = 1,
                 isa: Optional[int] = None, fuse: bool = True, cache_size: int = DEFAULT_CACHE_SIZE,
                 precision: Optional[str] = None):
        import deepsparse_lite.ops  # noqa: F401  (registers every op)
        from deepsparse_lite.config import precision_mode
        from deepsparse_lite.compiler.graph import ModelLoadError

        if int(cache_size) < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._proto = load_model(model)
        if not self._proto.HasField("graph") or len(self._proto.graph.output) == 0:
            raise ModelLoadError("the ONNX graph declares no outputs (is the file truncated or not an ONNX model?)")
        self._opts = dict(batch_size=batch_size, input_shapes=input_shapes, max_threads=max_threads,
                          isa=isa, fuse=fuse, precision=precision_mode(precision))
        #: "fp32" or "bf16" (read once: every plan of the model has the same arithmetic)
        self.precision = self._opts["precision"]
        names = [s.name for s in input_specs(self._proto)]
        #: parameter input -> the positions it feeds (why it is one)
        self.parameter_reasons = parameter_inputs(self._proto, names)
        self.inputs: List[InputSpec] = input_specs(self._proto, batch_size, input_shapes,
                                                   batch_exempt=set(self.parameter_reasons))
        self.input_names = [s.name for s in self.inputs]
        self.output_names = [o.name for o in self._proto.graph.output]
        self.param_index = [k for k, s in enumerate(self.inputs) if s.name in self.parameter_reasons]
        self.dynamic_index = [k for k, s in enumerate(self.inputs)
                              if not s.is_static and s.name not in self.parameter_reasons]
        self.cache_size = int(cache_size)
        self._cache: "OrderedDict[tuple, Plan]" = OrderedDict()
        self._lock = threading.Lock()          # the cache
        self._compile_lock = threading.Lock()  # one compile at a time per model
        self.stats = {"hits": 0, "misses": 0, "evictions": 0, "compile_seconds": 0.0}
        self.last_plan: Optional[Plan] = None
        self.static_plan: Optional[Plan] = None
        if not self.specialized:
            self.static_plan = self._compile({}, {})
            self.last_plan = self.static_plan
        else:
            self._check_ops()

    # ---- what the model needs ----------------------------------------------------------
    @property
    def specialized(self) -> bool:
        """True when plans depend on input values or shapes (parameter inputs or symbolic dims)."""
        return bool(self.param_index or self.dynamic_index)

    @property
    def parameter_names(self) -> List[str]:
        return [self.inputs[k].name for k in self.param_index]

    def _check_ops(self) -> None:
        """What can be refused before any value arrives: op types the engine lacks."""
        for k, n in enumerate(self._proto.graph.node):
            if get_op(n.op_type, "" if n.domain in DEFAULT_DOMAINS else n.domain) is None:
                dom = f" (domain '{n.domain}')" if n.domain not in DEFAULT_DOMAINS else ""
                raise UnsupportedModelError(
                    f"unsupported op type {n.op_type}{dom} in node '{n.name or f'{n.op_type}_{k}'}'")

    # ---- plans -------------------------------------------------------------------------
    def key(self, inputs: Sequence[np.ndarray]) -> tuple:
        """The plan key of a call: parameter values (and shapes), symbolic-dim shapes."""
        if len(inputs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs, got {len(inputs)}")
        parts = []
        for k in self.param_index:
            a = inputs[k]
            if not isinstance(a, np.ndarray):
                raise ValueError(f"input '{self.inputs[k].name}' must be a numpy array, given {type(a)}")
            raw = np.ascontiguousarray(a).tobytes()
            if len(raw) > _INLINE_BYTES:
                raw = hashlib.blake2b(raw, digest_size=16).digest()
            parts.append((a.dtype.str, a.shape, raw))
        for k in self.dynamic_index:
            parts.append(np.shape(inputs[k]))
        return tuple(parts)

    def plan_for(self, inputs: Sequence[np.ndarray]) -> Plan:
        """The plan that runs ``inputs`` (compiled now if its key is new)."""
        if self.static_plan is not None:
            return self.static_plan
        key = self.key(inputs)
        with self._lock:
            plan = self._lookup(key)
        if plan is None:
            with self._compile_lock:
                with self._lock:  # compiled by another thread meanwhile?
                    plan = self._lookup(key)
                if plan is None:
                    plan = self._compile_key(key, inputs)
        if isinstance(plan, _Refusal):
            raise plan.error()
        self.last_plan = plan
        return plan

    def _lookup(self, key):
        plan = self._cache.get(key)
        if plan is not None:
            self._cache.move_to_end(key)
            self.stats["hits"] += 1
        return plan

    def _compile_key(self, key: tuple, inputs: Sequence[np.ndarray]):
        self._check_values(inputs)
        bind = {self.inputs[k].name: np.array(inputs[k], copy=True) for k in self.param_index}
        shapes = {self.inputs[k].name: tuple(np.shape(inputs[k])) for k in self.dynamic_index}
        t0 = time.perf_counter()
        try:
            plan = self._compile(shapes, bind)
        except (UnsupportedModelError, ValueError) as exc:
            # a refusal is cached too: the same bad key must not recompile on every call
            plan = _Refusal(exc)
        with self._lock:
            self.stats["misses"] += 1
            self.stats["compile_seconds"] += time.perf_counter() - t0
            self._cache[key] = plan
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
                self.stats["evictions"] += 1
        return plan

    def cached_plans(self) -> List[Plan]:
        with self._lock:
            return [p for p in self._cache.values() if not isinstance(p, _Refusal)]

    def _check_values(self, inputs: Sequence[np.ndarray]) -> None:
        for k in self.param_index:
            spec, a = self.inputs[k], inputs[k]
            if a.dtype != spec.dtype:
                raise ValueError(f"parameter input '{spec.name}' must be {spec.dtype}, given {a.dtype}")
            if a.ndim != len(spec.shape):
                raise ValueError(f"parameter input '{spec.name}' must have rank {len(spec.shape)}, given {a.ndim}")

    def _compile(self, shapes: Dict[str, tuple], bind: Dict[str, np.ndarray]) -> Plan:
        from deepsparse_lite.compiler import compile_proto

        return compile_proto(self._proto, shapes=shapes, bind=bind, batch_exempt=set(self.parameter_reasons),
                             **self._opts)


class _Refusal:
    """A key whose plan could not be compiled: raising it again costs a lookup."""

    def __init__(self, exc: BaseException):
        self.type, self.message = type(exc), str(exc)

    def error(self) -> BaseException:
        try:
            return self.type(self.message)
        except Exception:  # an exception type with another constructor signature
            return UnsupportedModelError(self.message)
