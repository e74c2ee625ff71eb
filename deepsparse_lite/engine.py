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

import logging
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

import numpy as np

from deepsparse_lite import compiler, config

__all__ = ["Engine", "MultiModelEngine", "Context", "compile_model", "benchmark_model", "Scheduler", "BaseEngine"]

_LOGGER = logging.getLogger(__name__)

ONNX_TYPE_NAMES = {
    np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
    np.dtype(np.float16): "tensor(float16)", np.dtype(np.int64): "tensor(int64)",
    np.dtype(np.int32): "tensor(int32)", np.dtype(np.int16): "tensor(int16)",
    np.dtype(np.int8): "tensor(int8)", np.dtype(np.uint8): "tensor(uint8)",
    np.dtype(np.bool_): "tensor(bool)", np.dtype(np.uint16): "tensor(uint16)",
    np.dtype(np.uint32): "tensor(uint32)", np.dtype(np.uint64): "tensor(uint64)",
}
#: how a dynamic (symbolic) dim is reported in input_shapes: uint32 -1, as DeepSparse does
DYNAMIC_DIM = 4294967295
UNSUPPORTED_INPUT_DTYPES = {np.dtype(np.float16), np.dtype(np.complex64), np.dtype(np.complex128)}


from deepsparse_lite.scheduler.context import (Context, Scheduler, validate_batch_size,
                                               validate_scheduler)


def _resolve_precision(precision: Optional[str]) -> str:
    """The precision argument (or $DSL_PRECISION) checked; bf16 on a CPU without bfloat16
    instructions runs the portable kernel, with a warning."""
    p = config.precision_mode(precision)
    if p == "bf16":
        from deepsparse_lite.cpu import cpu_architecture

        if not cpu_architecture().bf16:
            _LOGGER.warning("precision='bf16': this CPU has no bfloat16 instructions (AVX-512 BF16 / "
                            "AMX-BF16); the bfloat16 GEMMs run a portable kernel, slower than fp32")
    return p


class BaseEngine:
    """Shared construction of Engine-like classes."""

    def construct(self, model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                  num_streams: Optional[int] = None, scheduler=None, input_shapes=None,
                  precision: Optional[str] = None):
        """Validate the arguments, compile the model and build this engine's own Context."""
        from deepsparse_lite.utils import model_to_path

        self._precision = _resolve_precision(precision)
        self._model_path = model_to_path(model)
        self._batch_size = validate_batch_size(batch_size)
        self._scheduler = validate_scheduler(scheduler)
        # the Context validates num_cores / num_streams (one place, one warning); it starts
        # no thread until the first request, so a failed compile below costs nothing
        self._context = Context(num_cores, num_streams, _scheduler=self._scheduler)
        self._owns_context = True
        self._num_cores = self._context.num_cores
        try:
            self._compile(input_shapes)
        except BaseException:
            self._context.close()
            raise

    def construct_with_context(self, model, batch_size: Optional[int], context: "Context",
                               input_shapes=None, precision: Optional[str] = None):
        """Compile the model to run on a shared ``context``'s streams."""
        from deepsparse_lite.utils import model_to_path

        self._precision = _resolve_precision(precision)
        if not isinstance(context, Context):
            raise ValueError(f"context must be a deepsparse_lite Context, given {type(context)}")
        self._model_path = model_to_path(model)
        self._batch_size = validate_batch_size(batch_size)
        self._num_cores = context.num_cores
        self._scheduler = context.scheduler
        self._compile(input_shapes)
        self._context = context
        self._owns_context = False

    def _compile(self, input_shapes) -> None:
        # one static plan, or (parameter inputs / symbolic dims) one plan per parameter key,
        # compiled on first use: see compiler/specialize.py
        self._model = compiler.SpecializedModel(self._model_path, batch_size=self._batch_size,
                                                input_shapes=input_shapes, max_threads=self._num_cores,
                                                cache_size=config.plan_cache_size(),
                                                precision=self._precision)
        self._plan = self._model.static_plan
        self._param_index = frozenset(self._model.param_index)
        for k in self._model.dynamic_index:
            spec = self._model.inputs[k]
            dims = [d for d, n in enumerate(spec.shape) if n is None]
            _LOGGER.warning("Detected dynamic input %s dim(s) %s: a plan is compiled for each input shape "
                            "(the last %d are kept). Set static input shapes (batch_size / input_shapes) "
                            "to compile once.", spec.name, dims, self._model.cache_size)
        if self._model.parameter_names:
            _LOGGER.info("Inputs %s set parameters (%s): a plan is compiled for each of their values",
                         self._model.parameter_names,
                         "; ".join(w for n in self._model.parameter_names for w in self._model.parameter_reasons[n]))


class Engine(BaseEngine):
    """Compile an ONNX model for the CPU and run it on lists of NumPy arrays.

    :param model: path to an ONNX file, a folder holding ``model.onnx``, or a ``zoo:`` stub
        that names one of the package's sample models
    :param batch_size: overrides dim 0 of every input (None or < 1 keeps the model's shapes)
    :param num_cores: cores (threads) to use; default: every physical core available
    :param num_streams: parallel requests for the multi_stream / elastic schedulers
    :param scheduler: "single_stream" (default), "multi_stream" or "elastic"
    :param input_shapes: shape overrides, e.g. ``[[1, 3, 224, 224]]``; applied in memory only
    :param precision: "fp32" (default, or ``$DSL_PRECISION``) or "bf16": constant-weight
        GEMMs and convolutions round their operands to bfloat16 and accumulate in fp32
        (AMX or AVX-512 BF16 where the CPU has them); off by default

    Lifecycle: compile in the constructor, ``run`` any number of times from any thread,
    ``close()`` (or use ``with Engine(...) as engine:``) to release it. A model whose
    parameters (axes, target shapes, pads, ...) are graph inputs, or whose dims stay symbolic,
    gets a plan per parameter value / input shape, compiled on first use and cached
    (``parameter_inputs`` lists those inputs; ``DSL_PLAN_CACHE_SIZE`` plans are kept).
    """

    def __init__(self, model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                 num_streams: Optional[int] = None, scheduler=None, input_shapes=None,
                 cached_outputs=None, *, precision: Optional[str] = None):
        if cached_outputs is not None:
            raise ValueError("cached_outputs (KV-cache models) are not supported by deepsparse_lite")
        self._closed = True  # until constructed: close() and __del__ stay safe
        self.construct(model, batch_size, num_cores, num_streams, scheduler, input_shapes,
                       precision)
        self._key = self._context.register()
        self._closed = False

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
    def precision(self) -> str:
        """"fp32", or "bf16" (``precision="bf16"`` / ``DSL_PRECISION=bf16``): constant-weight
        GEMMs and convolutions on bfloat16 operands with fp32 accumulation."""
        return self._precision

    @property
    def num_streams(self) -> int:
        """Streams of the engine's Context: always 1 for single_stream."""
        return self._context.num_streams

    @property
    def context(self) -> "Context":
        return self._context

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    @property
    def fraction_of_supported_ops(self) -> float:
        """Share of the model's nodes this engine runs natively: 1.0 for every model that
        compiles. There is no fallback runtime: an unsupported op is an error at compile
        time (for value-specialised plans, when a key's plan is compiled), and every node
        either runs as kernel steps or is folded at compile time."""
        return 1.0

    @property
    def input_names(self) -> List[str]:
        return list(self._model.input_names)

    @property
    def input_shapes(self) -> List[Tuple[int, ...]]:
        """Shapes after overrides; a dim the model leaves symbolic reads 4294967295 (as
        DeepSparse reports dynamic dims): each shape gets its own plan."""
        if self._plan is not None:
            return [tuple(i.shape) for i in self._plan.inputs]
        return [tuple(DYNAMIC_DIM if d is None else d for d in s.shape) for s in self._model.inputs]

    @property
    def input_dtypes(self) -> List[np.dtype]:
        return [s.dtype for s in self._model.inputs]

    @property
    def output_names(self) -> List[str]:
        return list(self._model.output_names)

    @property
    def output_shapes(self) -> List[Optional[Tuple[int, ...]]]:
        """Output shapes; None for each output when they depend on parameter values or
        symbolic dims (they differ per plan)."""
        if self._plan is not None:
            return [tuple(o.shape) for o in self._plan.outputs]
        return [None for _ in self._model.output_names]

    @property
    def parameter_inputs(self) -> List[str]:
        """Inputs whose values choose the plan (axes, pads, shapes, ... given as inputs)."""
        return self._model.parameter_names

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
        """Peak activation memory (bytes) of one request: the planned arena size (the
        largest of the cached plans for value-specialised models, 0 before the first)."""
        if self._plan is not None:
            return int(self._plan.arena_bytes)
        return max((int(p.arena_bytes) for p in self._model.cached_plans()), default=0)

    @property
    def memory_report(self) -> dict:
        """Bytes of one request's plan: ``arena_bytes`` (activations and workspaces, what a
        stream allocates), its lower bounds ``live_peak_bytes`` (the most bytes live at
        one step: no placement needs less) and ``largest_pair_bytes`` (the two largest
        tensors live together), and ``weights_bytes`` (the packed constants, shared by
        every stream). Empty before a value-specialised model's first plan."""
        plan = self.plan
        if plan is None:
            return {}
        keys = ("arena_bytes", "live_peak_bytes", "largest_pair_bytes")
        out = {k: int(plan.stats.get(k, plan.arena_bytes if k == "arena_bytes" else 0)) for k in keys}
        out["weights_bytes"] = int(plan.constant_bytes)
        return out

    @property
    def plan(self):
        """The compiled plan (for value-specialised models: the one used last, or None)."""
        return self._plan if self._plan is not None else self._model.last_plan

    @property
    def layer_listing(self) -> List[dict]:
        """One row per step of :attr:`plan`: node, kernel, whether it runs sparse, the
        weight's sparsity and why (``compiler.describe_plan``); [] before a
        value-specialised model has compiled a plan."""
        plan = self.plan
        return [] if plan is None else compiler.describe_plan(plan)

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
        if not self._param_index:
            batches, orig = split_engine_inputs(inp, self.batch_size)
            return join_engine_outputs([self.run(b) for b in batches], orig)
        # parameter inputs (axes, shapes, ...) are not batched: every piece gets them whole
        data = [k for k in range(len(inp)) if k not in self._param_index]
        batches, orig = split_engine_inputs([inp[k] for k in data], self.batch_size)
        pieces = []
        for b in batches:
            full = list(inp)
            for k, arr in zip(data, b):
                full[k] = arr
            pieces.append(full)
        return join_engine_outputs([self.run(p) for p in pieces], orig)

    def generate_random_inputs(self) -> List[np.ndarray]:
        """Random inputs of the compiled shapes (``rand().astype(dtype)`` as DeepSparse does,
        so integer inputs are zeros)."""
        out = []
        for s in self._model.inputs:
            shape = [1 if d is None else d for d in s.shape]  # symbolic dims: 1
            _LOGGER.info("Generating input '%s', type = %s, shape = %s", s.name, s.dtype.name, shape)
            out.append(np.random.rand(*shape).astype(s.dtype))
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
        """Wait for this engine's running requests, release its arenas (and its own
        Context's streams); later calls raise RuntimeError."""
        if self._closed:
            return
        self._closed = True
        self._context.unregister(self._key)
        if self._owns_context:
            self._context.close()

    def __del__(self):
        try:
            if not self._closed and self._owns_context:
                self._context.close(timeout=1.0)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- internals -------------------------------------------------------------------------
    def _execute(self, arrays: List[np.ndarray]) -> List[np.ndarray]:
        if self._closed:
            raise RuntimeError("this engine has been closed")
        plan = self._plan if self._plan is not None else self._model.plan_for(arrays)
        outputs = compiler.allocate_outputs(plan)
        self._context.run(self._key, plan, arrays, outputs)
        return outputs

    def _validate_inputs(self, inp) -> None:
        """DeepSparse's Python-level checks, same messages (ValueError)."""
        if isinstance(inp, str) or not isinstance(inp, list):
            raise ValueError(f"inp must be a list, given {type(inp)}")
        for k, arr in enumerate(inp):
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"inp must be a list of numpy arrays, given an element of {type(arr)}")
            if arr.ndim == 0:
                raise ValueError("inp arrays must have at least one dimension, given a 0-d array")
            if self._batch_size and arr.shape[0] != self._batch_size and k not in self._param_index:
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
        expected = self._plan.inputs if self._plan is not None else self._model.inputs
        if len(inp) != len(expected):
            raise RuntimeError(f"NM: error: Expected {len(expected)} inputs, received {len(inp)}")
        out = []
        for k, (arr, io) in enumerate(zip(inp, expected)):
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"input[{k}]: '{io.name}' must be a numpy array, given {type(arr)}")
            # DeepSparse refuses float16 arrays outright; we run float16 models, so only an
            # array that is not the model's own float16 input gets DeepSparse's message
            if arr.dtype in UNSUPPORTED_INPUT_DTYPES and arr.dtype != io.dtype:
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
            # parameter inputs: dtype and rank only, their values (and shapes) choose the plan;
            # a symbolic dim (None) takes any size
            bad = [] if k in self._param_index else [
                (d, g, w) for d, (g, w) in enumerate(zip(arr.shape, io.shape)) if w is not None and g != w]
            if bad:
                idx = "".join(f"\n index: {d} Got: {g} Expected: {w}" for d, g, w in bad)
                raise RuntimeError(
                    f"NM: error: Got invalid dimensions for input: {io.name} for the following indices{idx}\n"
                    f" Please fix either the inputs or the model.")
            if not arr.flags["C_CONTIGUOUS"]:
                arr = np.ascontiguousarray(arr)
            out.append(arr)
        return out


class MultiModelEngine(Engine):
    """An Engine that runs on a shared :class:`Context`: several models, one set of streams.

    ``MultiModelEngine(model, batch_size, context, input_shapes=None)``; cores, streams
    and scheduler come from the context (elastic). Engines on one Context share its
    worker threads: creating more engines creates no threads. Closing the engine leaves the
    Context running; close the Context when every engine on it is done.

        ctx = Context(num_streams=2)
        a = MultiModelEngine(path_a, batch_size=1, context=ctx)
        b = MultiModelEngine(path_b, batch_size=8, context=ctx)
    """

    def __init__(self, model, batch_size: Optional[int], context: "Context", input_shapes=None,
                 cached_outputs=None, *, precision: Optional[str] = None):
        if cached_outputs is not None:
            raise ValueError("cached_outputs (KV-cache models) are not supported by deepsparse_lite")
        self._closed = True
        self.construct_with_context(model, batch_size, context, input_shapes, precision)
        self._key = self._context.register()
        self._closed = False


def compile_model(model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
                  num_streams: Optional[int] = None, scheduler=None, input_shapes=None,
                  cached_outputs=None, *, precision: Optional[str] = None) -> Engine:
    """Compile ``model`` into an :class:`Engine` (a thin wrapper, as in DeepSparse)."""
    return Engine(model, batch_size, num_cores, num_streams, scheduler, input_shapes, cached_outputs,
                  precision=precision)


def benchmark_model(model, inp: List[np.ndarray], batch_size: Optional[int] = 1,
                    num_cores: Optional[int] = None, num_streams: Optional[int] = None,
                    num_iterations: int = 20, num_warmup_iterations: int = 5,
                    include_inputs: bool = False, include_outputs: bool = False,
                    show_progress: bool = False, scheduler=None, input_shapes=None):
    """Compile ``model`` and benchmark it on ``inp``; returns BenchmarkResults."""
    engine = compile_model(model, batch_size, num_cores, num_streams, scheduler, input_shapes)
    return engine.benchmark(inp, num_iterations, num_warmup_iterations, include_inputs,
                            include_outputs, show_progress)
