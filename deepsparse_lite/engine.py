"""The Engine API: compile an ONNX model once, run it on lists of NumPy arrays.

Lifecycle: ``Engine(model, batch_size=1, num_cores=None, ...)`` (or ``compile_model``)
loads and compiles the model into a Plan (the user's file is never modified); ``run``
validates the inputs, then executes the whole plan in one GIL-free call and returns fresh
output arrays; ``close()`` (or a ``with`` block) releases it.

Example::

    from deepsparse_lite import compile_model
    from deepsparse_lite.models import sample_model_path
    engine = compile_model(sample_model_path("resnet50"), batch_size=1)
    outputs = engine.run(engine.generate_random_inputs())
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from deepsparse_lite import compiler

__all__ = ["Engine", "compile_model", "benchmark_model", "Scheduler", "BaseEngine"]

_LOGGER = logging.getLogger(__name__)

ONNX_TYPE_NAMES = {
    np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
    np.dtype(np.float16): "tensor(float16)", np.dtype(np.int64): "tensor(int64)",
    np.dtype(np.int32): "tensor(int32)", np.dtype(np.int16): "tensor(int16)",
    np.dtype(np.int8): "tensor(int8)", np.dtype(np.uint8): "tensor(uint8)",
    np.dtype(np.bool_): "tensor(bool)", np.dtype(np.uint16): "tensor(uint16)",
    np.dtype(np.uint32): "tensor(uint32)", np.dtype(np.uint64): "tensor(uint64)",
}
UNSUPPORTED_INPUT_DTYPES = {np.dtype(np.float16), np.dtype(np.complex64), np.dtype(np.complex128)}


def _available_cores() -> int:
    from deepsparse_lite.cpu import cpu_architecture
    return int(cpu_architecture().num_available_physical_cores)


class Scheduler(str, enum.Enum):
    """How requests from several Python threads share the cores.

    - default: maps to single_stream
    - single_stream: requests from separate threads execute serially, each on all cores
    - multi_stream: requests from separate threads execute in parallel (``num_streams``)
    - elastic: requests from separate threads are distributed across NUMA nodes

    A ``str`` enum, so ``"multi_stream" == Scheduler.multi_stream`` holds, as the docs promise.
    """

    default = "single_stream"
    single_stream = "single_stream"
    multi_stream = "multi_stream"
    elastic = "elastic"

    def __str__(self) -> str:  # keep "Scheduler.default" on every Python version
        return f"{type(self).__name__}.{self.name}"

    @staticmethod
    def from_str(key: str) -> "Scheduler":
        """Parse a scheduler name. Matching is exact (DeepSparse's substring test on
        "elastic", which maps "" or "e" to elastic, is deliberately not copied)."""
        if key in ("sync", "single", "single_stream"):
            return Scheduler.single_stream
        if key in ("async", "multi", "multi_stream"):
            return Scheduler.multi_stream
        if key == "elastic":
            return Scheduler.elastic
        raise ValueError(f"unsupported Scheduler: {key}")


# ---------------------------------------------------------------------------------------
# validators (messages as DeepSparse's)
# ---------------------------------------------------------------------------------------

def _validate_batch_size(batch_size: Optional[int]) -> Optional[int]:
    if batch_size is None or batch_size < 1:
        _LOGGER.warning("batch_size < 1 so disabling batch size override")
        return None
    return int(batch_size)


def _validate_num_cores(num_cores: Optional[int]) -> int:
    if not num_cores:
        num_cores = _available_cores()
    if num_cores < 1:
        raise ValueError("num_cores must be greater than 0")
    avail = _available_cores()
    if num_cores > avail:
        _LOGGER.warning(
            "only %d cores available in the calling process' cpu affinity set; %d threads will "
            "oversubscribe them (cpu contention)", avail, num_cores)
    return int(num_cores)


def _validate_num_streams(num_streams: Optional[int], num_cores: int) -> int:
    if not num_streams:
        return 0
    if num_streams < 0:
        raise ValueError("num_streams must be greater than 0")
    cap = min(_available_cores(), num_cores)
    if num_streams > cap:
        _LOGGER.warning("num_streams exceeds num_cores - capping to %d", cap)
        return cap
    return int(num_streams)


def _validate_scheduler(scheduler) -> Scheduler:
    if not scheduler:
        return Scheduler.default
    if isinstance(scheduler, Scheduler):
        return scheduler
    if isinstance(scheduler, str):
        return Scheduler.from_str(scheduler)
    raise ValueError(f"unsupported type for scheduler: {scheduler} ({type(scheduler)})")


class BaseEngine:
    """Shared construction of Engine-like classes."""

    def construct(self, model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                  num_streams: Optional[int] = None, scheduler=None, input_shapes=None):
        from deepsparse_lite.utils import model_to_path

        self._model_path = model_to_path(model)
        self._batch_size = _validate_batch_size(batch_size)
        self._num_cores = _validate_num_cores(num_cores)
        self._num_streams = _validate_num_streams(num_streams, self._num_cores)
        self._scheduler = _validate_scheduler(scheduler)
        self._input_shapes_arg = input_shapes
        self._plan = compiler.compile_onnx(self._model_path, batch_size=self._batch_size,
                                           input_shapes=input_shapes, max_threads=self._num_cores)
        self._input_nbytes = np.array(
            [int(np.prod(i.shape, dtype=np.int64)) * i.dtype.itemsize for i in self._plan.inputs], dtype=np.int64)


class Engine(BaseEngine):
    """Compile an ONNX model for the CPU and run it on lists of NumPy arrays.

    :param model: path to an ONNX file, a folder holding ``model.onnx``, or a ``zoo:`` stub
        that names one of the package's sample models
    :param batch_size: overrides dim 0 of every input (None or < 1 keeps the model's shapes)
    :param num_cores: cores (threads) to use; default: every physical core available
    :param num_streams: parallel requests for the multi_stream / elastic schedulers
    :param scheduler: "single_stream" (default), "multi_stream" or "elastic"
    :param input_shapes: shape overrides, e.g. ``[[1, 3, 224, 224]]``; applied in memory only

    Lifecycle: compile in the constructor, ``run`` any number of times from any thread,
    ``close()`` (or use ``with Engine(...) as engine:``) to release it.
    """

    def __init__(self, model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                 num_streams: Optional[int] = None, scheduler=None, input_shapes=None,
                 cached_outputs=None):
        if cached_outputs is not None:
            raise ValueError("cached_outputs (KV-cache models) are not supported by deepsparse_lite")
        self._closed = False
        self.construct(model, batch_size, num_cores, num_streams, scheduler, input_shapes)
        self._lock = threading.Lock()
        self._arena = compiler.new_arena(self._plan)

    # ---- properties ----------------------------------------------------------------------
    @property
    def model_path(self) -> str:
        return self._model_path

    @property
    def batch_size(self) -> Optional[int]:
        return self._batch_size

    @property
    def num_cores(self) -> int:
        return self._num_cores

    @property
    def num_streams(self) -> int:
        """Requests that can run at once: always 1 for single_stream."""
        if self._scheduler in (Scheduler.single_stream, Scheduler.default):
            return 1
        return self._num_streams or 1

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def fraction_of_supported_ops(self) -> float:
        """Share of the model's nodes this engine runs natively: 1.0 for every model that
        compiles (an unsupported op is a compile-time error, there is no fallback)."""
        return 1.0

    @property
    def input_names(self) -> List[str]:
        return [i.name for i in self._plan.inputs]

    @property
    def input_shapes(self) -> List[Tuple[int, ...]]:
        return [tuple(i.shape) for i in self._plan.inputs]

    @property
    def input_dtypes(self) -> List[np.dtype]:
        return [i.dtype for i in self._plan.inputs]

    @property
    def output_names(self) -> List[str]:
        return [o.name for o in self._plan.outputs]

    @property
    def output_shapes(self) -> List[Tuple[int, ...]]:
        return [tuple(o.shape) for o in self._plan.outputs]

    @property
    def cpu_avx_type(self) -> str:
        from deepsparse_lite.cpu import cpu_architecture
        return cpu_architecture().isa

    @property
    def cpu_vnni(self) -> bool:
        from deepsparse_lite.cpu import cpu_architecture
        return bool(cpu_architecture().vnni)

    @property
    def arena_bytes(self) -> int:
        """Peak activation memory (bytes) of one request: the planned arena size."""
        return int(self._plan.arena_bytes)

    @property
    def plan(self):
        return self._plan

    # ---- representation --------------------------------------------------------------------
    def _properties_dict(self) -> Dict[str, Any]:
        return {
            "onnx_file_path": self.model_path,
            "batch_size": self.batch_size,
            "num_cores": self.num_cores,
            "num_streams": self.num_streams,
            "scheduler": self.scheduler,
            "fraction_of_supported_ops": self.fraction_of_supported_ops,
            "cpu_avx_type": self.cpu_avx_type,
            "cpu_vnni": self.cpu_vnni,
        }

    def __repr__(self):
        return "{}({})".format(self.__class__, self._properties_dict())

    def __str__(self):
        cls = self.__class__
        lines = [f"{cls.__module__}.{cls.__qualname__}:"]
        lines += [f"\t{k}: {v}" for k, v in self._properties_dict().items()]
        return "\n".join(lines)

    # ---- running ---------------------------------------------------------------------------
    def __call__(self, inp: List[np.ndarray], val_inp: bool = True) -> List[np.ndarray]:
        return self.run(inp, val_inp)

    def run(self, inp: List[np.ndarray], val_inp: bool = True) -> List[np.ndarray]:
        """Run one batch; returns new C-contiguous arrays in ``output_names`` order."""
        if val_inp:
            self._validate_inputs(inp)
        arrays = self._check_inputs(inp)
        return self._execute(arrays)

    def timed_run(self, inp: List[np.ndarray], val_inp: bool = False) -> Tuple[List[np.ndarray], float]:
        start = time.perf_counter()
        out = self.run(inp, val_inp)
        return out, time.perf_counter() - start

    def mapped_run(self, inp: List[np.ndarray], val_inp: bool = True) -> Dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.run(inp, val_inp)))

    def batched_run(self, inp: List[np.ndarray]) -> List[np.ndarray]:
        """Run any number of items by splitting them into engine-sized batches (the last one
        edge-padded) and joining the outputs."""
        from deepsparse_lite.utils.data import join_engine_outputs, split_engine_inputs

        if not self.batch_size:
            return self.run(inp)
        if self.batch_size == 1:
            _LOGGER.warning("Using batched_run with an Engine of batch_size=1 isn't recommended "
                            "for optimal performance.")
        batches, orig = split_engine_inputs(inp, self.batch_size)
        return join_engine_outputs([self.run(b) for b in batches], orig)

    def generate_random_inputs(self) -> List[np.ndarray]:
        """Random inputs of the compiled shapes (``rand().astype(dtype)`` as DeepSparse does,
        so integer inputs are zeros)."""
        out = []
        for io in self._plan.inputs:
            _LOGGER.info("Generating input '%s', type = %s, shape = %s", io.name, io.dtype.name, list(io.shape))
            out.append(np.random.rand(*io.shape).astype(io.dtype))
        return out

    def benchmark(self, inp: List[np.ndarray], num_iterations: int = 20, num_warmup_iterations: int = 5,
                  include_inputs: bool = False, include_outputs: bool = False, show_progress: bool = False):
        def loader():
            while True:
                yield inp
        return self.benchmark_loader(loader(), num_iterations, num_warmup_iterations, include_inputs,
                                     include_outputs, show_progress)

    def benchmark_loader(self, loader: Iterable[List[np.ndarray]], num_iterations: int = 20,
                         num_warmup_iterations: int = 5, include_inputs: bool = False,
                         include_outputs: bool = False, show_progress: bool = False):
        from deepsparse_lite.benchmark.results import BenchmarkResults

        assert num_iterations >= 1 and num_warmup_iterations >= 0, (
            "num_iterations and num_warmup_iterations must be non negative for benchmarking.")
        results = BenchmarkResults()
        total = num_iterations + num_warmup_iterations
        bar = None
        if show_progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=num_iterations, desc="Benchmarking")
        done = 0
        for batch in loader:
            start = time.perf_counter()
            out = self.run(batch)
            end = time.perf_counter()
            if done >= num_warmup_iterations:
                bs = batch[0].shape[0] if batch and getattr(batch[0], "ndim", 0) else 1
                results.append_batch(start, end, bs, batch if include_inputs else None,
                                     out if include_outputs else None)
                if bar is not None:
                    bar.update(1)
            done += 1
            if done >= total:
                break
        if bar is not None:
            bar.close()
        return results

    def close(self) -> None:
        """Release the engine's memory; later calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            self._arena = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- internals -------------------------------------------------------------------------
    def _execute(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        outputs = compiler.allocate_outputs(self._plan)
        with self._lock:
            if self._closed:
                raise RuntimeError("this engine has been closed")
            compiler.run(self._plan, arrays, outputs, self._arena, self._num_cores)
        return outputs

    def _validate_inputs(self, inp) -> None:
        """DeepSparse's Python-level checks, same messages (ValueError)."""
        if isinstance(inp, str) or not isinstance(inp, list):
            raise ValueError(f"inp must be a list, given {type(inp)}")
        for arr in inp:
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"inp must be a list of numpy arrays, given an element of {type(arr)}")
            if arr.ndim == 0:
                raise ValueError("inp arrays must have at least one dimension, given a 0-d array")
            if self._batch_size and arr.shape[0] != self._batch_size:
                raise ValueError(
                    f"array batch size of {arr.shape[0]} must match the batch size the model was "
                    f"instantiated with {self._batch_size}")
            if not arr.flags["C_CONTIGUOUS"]:
                raise ValueError("array must be passed in as C contiguous, call numpy.ascontiguousarray(array)")

    def _check_inputs(self, inp) -> List[np.ndarray]:
        """The checks that always run (DeepSparse does them in its binary): count, dtype,
        rank, dims. Raises RuntimeError('NM: error: ...') naming the input."""
        if isinstance(inp, str) or not isinstance(inp, (list, tuple)):
            raise ValueError(f"inp must be a list, given {type(inp)}")
        expected = self._plan.inputs
        if len(inp) != len(expected):
            raise RuntimeError(f"NM: error: Expected {len(expected)} inputs, received {len(inp)}")
        out = []
        for k, (arr, io) in enumerate(zip(inp, expected)):
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"input[{k}]: '{io.name}' must be a numpy array, given {type(arr)}")
            if arr.dtype in UNSUPPORTED_INPUT_DTYPES:
                raise RuntimeError(f"NM: error: input[{k}]: '{io.name}' has unsupported type '{arr.dtype.name}'")
            if arr.dtype != io.dtype:
                got = ONNX_TYPE_NAMES.get(arr.dtype, f"tensor({arr.dtype.name})")
                want = ONNX_TYPE_NAMES.get(io.dtype, f"tensor({io.dtype.name})")
                raise RuntimeError(
                    f"NM: error: Unexpected input data type for input[{k}]: '{io.name}'. "
                    f"Actual: ({got}) , expected: ({want})")
            if arr.ndim != len(io.shape):
                raise RuntimeError(
                    f"NM: error: Invalid rank for input: {io.name} Got: {arr.ndim} Expected: {len(io.shape)} "
                    f"Please fix either the inputs or the model.")
            bad = [(d, g, w) for d, (g, w) in enumerate(zip(arr.shape, io.shape)) if g != w]
            if bad:
                idx = "".join(f"\n index: {d} Got: {g} Expected: {w}" for d, g, w in bad)
                raise RuntimeError(
                    f"NM: error: Got invalid dimensions for input: {io.name} for the following indices{idx}\n"
                    f" Please fix either the inputs or the model.")
            if not arr.flags["C_CONTIGUOUS"]:
                arr = np.ascontiguousarray(arr)
            out.append(arr)
        return out


def compile_model(model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                  num_streams: Optional[int] = None, scheduler=None, input_shapes=None,
                  cached_outputs=None) -> Engine:
    """Compile ``model`` into an :class:`Engine` (a thin wrapper, as in DeepSparse)."""
    return Engine(model, batch_size, num_cores, num_streams, scheduler, input_shapes, cached_outputs)


def benchmark_model(model, inp: List[np.ndarray], batch_size: Optional[int] = 1,
                    num_cores: Optional[int] = None, num_streams: Optional[int] = None,
                    num_iterations: int = 20, num_warmup_iterations: int = 5,
                    include_inputs: bool = False, include_outputs: bool = False,
                    show_progress: bool = False, scheduler=None, input_shapes=None):
    """Compile ``model`` and benchmark it on ``inp``; returns BenchmarkResults."""
    engine = compile_model(model, batch_size, num_cores, num_streams, scheduler, input_shapes)
    return engine.benchmark(inp, num_iterations, num_warmup_iterations, include_inputs,
                            include_outputs, show_progress)
