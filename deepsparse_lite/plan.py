"""The plan: the contract between the compiler, the op lowerings and the runner.

A :class:`Plan` is data. It holds a flat array of step records (``STEP_DTYPE``, mirrored
from ``csrc/dsl_plan.h``), a tensor table telling the runner where each tensor lives, the
constants (packed weights) kept alive by the plan, and the arena size. The runner
(``kernels/runner.pyx``) executes it in one ``nogil`` call.

Lowerings do not build records by hand: they call a :class:`PlanBuilder`, which allocates
tensor ids, records constants and emits steps. Memory planning (``compiler/memory.py``)
then gives every arena tensor an offset from its first and last use.

This module sits below the compiler, the ops and the runner: it imports none of them.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from deepsparse_lite.step_params import MAX_NDIM, PARAM_BYTES

MAX_T = 8

#: csrc/dsl_plan.h's dsl_step: op, tensor slots, then the sub-op's typed parameter record
#: (deepsparse_lite/step_params.py) in PARAM_BYTES bytes at an 8-byte-aligned offset.
STEP_DTYPE = np.dtype(
    [("op", "<i4"), ("nt", "<i4"), ("t", "<i4", (MAX_T,)), ("params", "u1", (PARAM_BYTES,))],
    align=True,
)

ALIGN = 64  # byte alignment of every arena tensor and constant


class Family(enum.IntEnum):
    MISC = 0
    DATA = 1
    ELTWISE = 2
    REDUCE = 3
    POOL = 4
    GEMM = 5
    SPARSE = 6
    QUANT = 7


class DType(enum.IntEnum):
    """Element type codes shared with the C kernels (ONNX TensorProto numbering)."""
    F32 = 1
    U8 = 2
    I8 = 3
    U16 = 4
    I16 = 5
    I32 = 6
    I64 = 7
    BOOL = 9
    F16 = 10
    F64 = 11
    U32 = 12
    U64 = 13
    BF16 = 16
    F8E4M3FN = 17
    F8E4M3FNUZ = 18
    F8E5M2 = 19
    F8E5M2FNUZ = 20


NP_TO_DTYPE = {
    np.dtype(np.float32): DType.F32, np.dtype(np.uint8): DType.U8, np.dtype(np.int8): DType.I8,
    np.dtype(np.uint16): DType.U16, np.dtype(np.int16): DType.I16,
    np.dtype(np.int32): DType.I32, np.dtype(np.int64): DType.I64, np.dtype(np.bool_): DType.BOOL,
    np.dtype(np.float16): DType.F16, np.dtype(np.float64): DType.F64,
    np.dtype(np.uint32): DType.U32, np.dtype(np.uint64): DType.U64,
}
try:  # bfloat16 and float8 as NumPy dtypes (what onnx.numpy_helper gives for them)
    import ml_dtypes as _ml

    NP_TO_DTYPE.update({
        np.dtype(_ml.bfloat16): DType.BF16, np.dtype(_ml.float8_e4m3fn): DType.F8E4M3FN,
        np.dtype(_ml.float8_e4m3fnuz): DType.F8E4M3FNUZ, np.dtype(_ml.float8_e5m2): DType.F8E5M2,
        np.dtype(_ml.float8_e5m2fnuz): DType.F8E5M2FNUZ,
    })
except ImportError:  # pragma: no cover - without ml_dtypes these types stay unsupported
    pass

#: dtype code -> NumPy dtype (the element types the kernels know)
DTYPE_TO_NP = {int(c): dt for dt, c in NP_TO_DTYPE.items()}


def dtype_code(dtype) -> int:
    dt = np.dtype(dtype)
    try:
        return int(NP_TO_DTYPE[dt])
    except KeyError:
        raise NotImplementedError(f"element type {dt} is not supported by the kernels") from None


class Err(enum.IntEnum):
    OK = 0
    UNKNOWN_OP = 1
    INDEX_RANGE = 2
    BAD_PARAM = 3
    NO_MEMORY = 4


ERROR_MESSAGES = {
    Err.UNKNOWN_OP: "the plan contains a kernel id this build does not know",
    Err.INDEX_RANGE: "an index is out of range",
    Err.BAD_PARAM: "a kernel was given an invalid parameter",
    Err.NO_MEMORY: "a kernel ran out of workspace",
}


class Where(enum.IntEnum):
    """Where a tensor's bytes live (column 0 of the tensor table)."""
    ARENA = 0   # a = byte offset in the arena (set by the memory planner)
    INPUT = 1   # a = index of the user input
    OUTPUT = 2  # a = index of the output array allocated per call
    CONST = 3   # a = index into Plan.constants


@dataclass(eq=False)
class Tensor:
    """A compile-time tensor: shape, dtype and storage; views alias a root tensor."""
    id: int
    shape: Tuple[int, ...]
    dtype: np.dtype
    where: Where
    index: int = -1             # input/output/const index
    root: Optional["Tensor"] = None   # set for views: storage of ``root`` + byte_offset
    byte_offset: int = 0
    name: str = ""
    offset: int = -1            # arena byte offset, filled by the memory planner
    scratch: bool = False       # workspace: lives for exactly one step

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def storage(self) -> "Tensor":
        t = self
        while t.root is not None:
            t = t.root
        return t

    @property
    def total_offset(self) -> int:
        off, t = 0, self
        while t.root is not None:
            off += t.byte_offset
            t = t.root
        return off

    def __repr__(self):
        return f"Tensor#{self.id}({self.name or '?'}, {self.shape}, {np.dtype(self.dtype).name}, {self.where.name})"


@dataclass
class StepInfo:
    """Debug and memory-planning metadata of an emitted step."""
    op: int
    tensors: Tuple[int, ...]
    node: str = ""
    #: what the lowering chose and why (kernel, weight sparsity, timings): the plan listing
    info: dict = field(default_factory=dict)


class PlanBuilder:
    """What a lowering uses to turn one ONNX node into steps.

    ``value(name)`` returns the Tensor bound to an ONNX value; ``output(name, shape, dtype)``
    allocates the tensor a node writes (a graph output slot or an arena temporary);
    ``const(array)`` stores packed weights; ``temp``/``workspace`` allocate arena memory;
    ``view`` aliases storage; ``emit`` appends a step.
    """

    def __init__(self, isa: int = 1, max_threads: int = 1, graph_values=None):
        #: ISA level the plan is compiled for (0 generic, 1 avx2+fma, 2 avx512): packing
        #: layouts (panel widths) depend on it, so a step records it and runs that variant.
        self.isa = int(isa)
        #: most threads any step may run with; per-thread workspaces are sized for it.
        self.max_threads = max(1, int(max_threads))
        #: compile-time Values of the graph (name -> ops.base.Value) for lazy constants.
        self.graph_values = graph_values if graph_values is not None else {}
        self.tensors: List[Tensor] = []
        self.constants: List[np.ndarray] = []
        self.steps: List[np.void] = []
        self.step_info: List[StepInfo] = []
        self.values = {}                 # ONNX value name -> Tensor
        self.graph_outputs = {}          # ONNX value name -> output index
        self.current_node = ""
        #: "auto" | "sparse" | "dense": how constant weights pick dense or sparse steps
        #: (ops/sparse.py), and the compiler's timing hook for "auto" (or None)
        self.sparse_mode = "auto"
        self.sparse_timer = None
        #: "fp32" | "bf16": the arithmetic of constant-weight GEMMs and convolutions
        #: (config.precision_mode; bf16: csrc/bf16_gemm.h, fp32 accumulation)
        self.precision = "fp32"

    # -- tensors -------------------------------------------------------------------------
    def _new(self, shape, dtype, where, index=-1, name="", root=None, byte_offset=0, scratch=False):
        t = Tensor(len(self.tensors), tuple(int(d) for d in shape), np.dtype(dtype), where,
                   index, root, byte_offset, name, scratch=scratch)
        self.tensors.append(t)
        return t

    def input(self, index: int, name: str, shape, dtype) -> Tensor:
        t = self._new(shape, dtype, Where.INPUT, index, name)
        self.values[name] = t
        return t

    def const(self, array: np.ndarray, name: str = "") -> Tensor:
        arr = _aligned_copy(np.asarray(array))
        self.constants.append(arr)
        return self._new(arr.shape, arr.dtype, Where.CONST, len(self.constants) - 1, name)

    def temp(self, shape, dtype, name: str = "") -> Tensor:
        return self._new(shape, dtype, Where.ARENA, name=name)

    def workspace(self, nbytes: int, name: str = "workspace") -> Tensor:
        """Scratch memory valid for the next emitted step only."""
        return self._new((max(int(nbytes), 1),), np.uint8, Where.ARENA, name=name, scratch=True)

    def view(self, src: Tensor, shape, dtype=None, byte_offset: int = 0, name: str = "") -> Tensor:
        return self._new(shape, dtype or src.dtype, src.where, src.index, name or src.name,
                         root=src, byte_offset=byte_offset)

    def value(self, name: str) -> Tensor:
        """The Tensor of an ONNX value; a constant is materialised on first use."""
        t = self.values.get(name)
        if t is not None:
            return t
        v = self.graph_values.get(name)
        if v is not None and getattr(v, "const", None) is not None:
            t = self.const(v.const, name=name)
            self.values[name] = t
            return t
        raise KeyError(f"value '{name}' has no tensor yet (node order?)")

    def output(self, name: str, shape, dtype) -> Tensor:
        """The tensor a node writes for ONNX value ``name``."""
        if name in self.graph_outputs:
            t = self._new(shape, dtype, Where.OUTPUT, self.graph_outputs[name], name)
        else:
            t = self._new(shape, dtype, Where.ARENA, name=name)
        self.values[name] = t
        return t

    def bind(self, name: str, tensor: Tensor) -> None:
        """Make ``name`` refer to an existing tensor (views, identities)."""
        self.values[name] = tensor

    def is_graph_output(self, name: str) -> bool:
        return name in self.graph_outputs

    # -- steps ---------------------------------------------------------------------------
    def emit(self, op: int, tensors: Sequence[Tensor], params: Optional[np.ndarray] = None) -> None:
        """Append a step: kernel id ``op``, its tensors (slots t[0..]) and its parameter
        record (``step_params.params(...)``, the dtype of the sub-op's C struct)."""
        if len(tensors) > MAX_T:
            raise ValueError(f"a step takes at most {MAX_T} tensors, got {len(tensors)}")
        rec = np.zeros((), dtype=STEP_DTYPE)
        rec["op"] = int(op)
        rec["nt"] = len(tensors)
        for k, t in enumerate(tensors):
            rec["t"][k] = t.id
        if params is not None:
            raw = np.asarray(params)
            if raw.dtype.names is None or raw.shape != ():
                raise TypeError("step parameters must be one record of a step_params dtype")
            rec["params"][:raw.dtype.itemsize] = np.frombuffer(raw.tobytes(), np.uint8)
        self.steps.append(rec)
        self.step_info.append(StepInfo(int(op), tuple(t.id for t in tensors), self.current_node))


def _aligned_copy(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``arr`` whose data pointer is ALIGN-byte aligned."""
    arr = np.ascontiguousarray(arr)
    nbytes = max(arr.nbytes, 1)
    buf = np.empty(nbytes + ALIGN, dtype=np.uint8)
    start = (-buf.ctypes.data) % ALIGN
    out = buf[start:start + arr.nbytes].view(arr.dtype).reshape(arr.shape) if arr.nbytes else \
        np.empty(arr.shape, arr.dtype)
    out[...] = arr
    return out


@dataclass
class IOInfo:
    name: str
    shape: Tuple[int, ...]
    dtype: np.dtype


@dataclass
class Plan:
    """A compiled model: immutable after compile; shared by every stream that runs it."""
    steps: np.ndarray                   # STEP_DTYPE records
    tensor_table: np.ndarray            # int64 [n, 3]: where, a, byte offset
    constants: List[np.ndarray]
    const_ptrs: np.ndarray              # int64 addresses of constants (kept alive above)
    arena_bytes: int                    # peak arena size (activations + workspace)
    table_bytes: int                    # bytes at the arena front for the pointer table
    inputs: List[IOInfo]
    outputs: List[IOInfo]
    step_info: List[StepInfo] = field(default_factory=list)
    node_count: int = 0
    stats: dict = field(default_factory=dict)
    #: bytes of each input, checked by the runner on every call (computed once here)
    input_nbytes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self):
        self.input_nbytes = np.array(
            [int(np.prod(i.shape, dtype=np.int64)) * np.dtype(i.dtype).itemsize for i in self.inputs],
            dtype=np.int64)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def constant_bytes(self) -> int:
        return int(sum(c.nbytes for c in self.constants))
