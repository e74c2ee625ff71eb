"""Op definitions: the registry, the node/value types they see, and shared helpers.

An op family lives in one module of this package and registers one :class:`OpDef`
subclass per ONNX op type (names verbatim)::

    @register("Relu", "Sigmoid")
    class Unary(OpDef):
        def infer(self, node, ins):          # shapes/dtypes of the outputs, at compile time
            return [(ins[0].shape, ins[0].dtype)]
        def lower(self, node, b, ins, outs):  # emit steps through the PlanBuilder
            ...

``infer`` gets the input :class:`Value` list (``None`` for an omitted optional input) and
returns ``[(shape, dtype), ...]`` per output. ``lower`` gets the same inputs plus the
output Values and emits steps; ``b.value(name)`` gives an input's Tensor (constants are
materialised on demand), ``b.output(name, shape, dtype)`` the Tensor to write.

Attributes follow the ONNX spec's defaults; ``node.opset`` is the model's opset for the
op's domain, so an op picks the behaviour of the latest version at or below it.
Everything about a node is decided here, at compile time: the kernels only compute.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.plan import MAX_NDIM, Family, PlanBuilder, Tensor, dtype_code
from deepsparse_lite import step_params as sp


class UnsupportedModelError(RuntimeError):
    """The model uses an op (or an op configuration) the engine cannot compile."""


@dataclass
class Value:
    """Compile-time knowledge of one ONNX value."""
    name: str
    shape: Optional[Tuple[int, ...]] = None
    dtype: Optional[np.dtype] = None
    const: Optional[np.ndarray] = None
    #: a constant folded from DequantizeLinear(q, scale, zero point): (q, scale, zp, axis)
    #: value names and the axis, so the QDQ rewrite (compiler/passes.py) finds the
    #: integer weights behind an fp32 constant
    qdq: Optional[tuple] = None

    @property
    def is_const(self) -> bool:
        return self.const is not None

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Node:
    name: str
    op_type: str
    inputs: List[str]
    outputs: List[str]
    attrs: Dict[str, Any] = field(default_factory=dict)
    domain: str = ""
    opset: int = 13

    def attr(self, key: str, default=None):
        return self.attrs.get(key, default)

    def describe(self) -> str:
        return f"{self.op_type} node '{self.name}'"


class OpDef:
    op_type = ""
    #: False for ops that must not be constant-folded (none so far).
    foldable = True

    def infer(self, node: Node, ins: List[Optional[Value]]) -> List[Tuple[Tuple[int, ...], np.dtype]]:
        raise NotImplementedError

    def lower(self, node: Node, b: PlanBuilder, ins: List[Optional[Value]], outs: List[Value]) -> None:
        raise NotImplementedError


REGISTRY: Dict[str, OpDef] = {}


def register(*op_types: str):
    def deco(cls):
        for t in op_types:
            inst = cls()
            inst.op_type = t
            REGISTRY[t] = inst
        return cls
    return deco


def get_op(op_type: str, domain: str = "") -> Optional[OpDef]:
    if domain not in ("", "ai.onnx"):
        return REGISTRY.get(f"{domain}::{op_type}")
    return REGISTRY.get(op_type)


# --------------------------------------------------------------------------------------
# Helpers shared by lowerings
# --------------------------------------------------------------------------------------

def op_id(family: Family, sub: int) -> int:
    return int(family) * 100 + int(sub)


class DataOp:
    """Sub-op numbers of the data-movement family (kernels/data.pyx)."""
    COPY = op_id(Family.DATA, 1)
    FILL = op_id(Family.DATA, 2)


class Act:
    """Fused activation codes (csrc/dsl_act.h), used by GEMM/conv epilogues and eltwise."""
    NONE = 0
    RELU = 1
    LEAKY_RELU = 2      # f: alpha
    CLIP = 3            # f: min, max
    SIGMOID = 4
    TANH = 5
    HARD_SIGMOID = 6    # f: alpha, beta
    HARD_SWISH = 7
    GELU_ERF = 8
    GELU_TANH = 9
    ELU = 10            # f: alpha
    SELU = 11           # f: alpha, gamma
    SOFTPLUS = 12


def normalize_axis(axis: int, rank: int, node: Optional[Node] = None) -> int:
    a = int(axis)
    if a < -rank or a >= max(rank, 1):
        where = f" in {node.describe()}" if node else ""
        raise UnsupportedModelError(f"axis {axis} is out of range for rank {rank}{where}")
    return a + rank if a < 0 else a


def broadcast_shape(*shapes: Sequence[int]) -> Tuple[int, ...]:
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError as exc:
        raise UnsupportedModelError(f"shapes {list(shapes)} do not broadcast: {exc}") from None


def contiguous_strides(shape: Sequence[int], itemsize: int) -> Tuple[int, ...]:
    strides, acc = [], itemsize
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(int(d), 1)
    return tuple(reversed(strides))


def merge_dims(shape, *stride_sets):
    """Drop size-1 dims and merge adjacent dims that are contiguous in every stride set.

    Returns (shape, [strides...]) with at least one dim. Used before emitting strided kernels
    so that most copies become a handful of long rows.
    """
    dims = [(int(n), [int(s[k]) for s in stride_sets]) for k, n in enumerate(shape) if int(n) != 1]
    if not dims:
        return (1,), [(0,) * 1 for _ in stride_sets]
    out = [dims[0]]
    for n, st in dims[1:]:
        pn, pst = out[-1]
        if all(pst[j] == st[j] * n for j in range(len(st))):
            out[-1] = (pn * n, st)
        else:
            out.append((n, st))
    shp = tuple(n for n, _ in out)
    strides = [tuple(st[j] for _, st in out) for j in range(len(stride_sets))]
    return shp, strides


def emit_copy(b: PlanBuilder, src: Tensor, dst: Tensor, shape, src_strides, dst_strides,
              src_offset: int = 0, dst_offset: int = 0) -> None:
    """Emit one N-d strided copy (strides in bytes) from ``src`` to ``dst``."""
    esz = np.dtype(src.dtype).itemsize
    shp, (ss, ds) = merge_dims(shape, src_strides, dst_strides)
    if int(np.prod(shp)) == 0:
        return
    if len(shp) > MAX_NDIM:
        raise UnsupportedModelError(f"a copy needs {len(shp)} dims after merging (max {MAX_NDIM})")
    b.emit(DataOp.COPY, [src, dst], sp.params(
        sp.COPY, ndim=len(shp), esz=esz, shape=shp, src_strides=ss, dst_strides=ds,
        src_offset=src_offset, dst_offset=dst_offset, level=b.isa))


def emit_contiguous_copy(b: PlanBuilder, src: Tensor, dst: Tensor) -> None:
    esz = np.dtype(src.dtype).itemsize
    n = src.size
    emit_copy(b, src, dst, (n,), (esz,), (esz,))


def emit_fill(b: PlanBuilder, dst: Tensor, value, nbytes: Optional[int] = None, dst_offset: int = 0) -> None:
    dt = np.dtype(dst.dtype)
    bits = np.array([value], dtype=dt).view(np.uint8)
    raw = int.from_bytes(bits.tobytes(), "little", signed=False)
    if raw >= 2 ** 63:
        raw -= 2 ** 64
    b.emit(DataOp.FILL, [dst], sp.params(sp.FILL, nbytes=dst.nbytes if nbytes is None else nbytes,
                                         esz=dt.itemsize, bits=raw, dst_offset=dst_offset))


def dtype_of(code_or_dtype) -> int:
    return dtype_code(code_or_dtype)


def ints_attr(node: Node, key: str, default=None) -> Optional[List[int]]:
    v = node.attrs.get(key, default)
    return None if v is None else [int(x) for x in v]
