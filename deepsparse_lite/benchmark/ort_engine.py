"""``ORTEngine``: onnxruntime behind the Engine interface, for side-by-side benchmarks.

``deepsparse_lite.benchmark model.onnx -e onnxruntime`` runs the same model, inputs and
timing loop on onnxruntime (CPUExecutionProvider, ``intra_op_num_threads = num_cores``), so
the two engines are compared under identical conditions. onnxruntime is optional: a clear
ImportError explains how to install it. Batch and shape overrides are applied to a temporary
copy of the model; the user's file is never written.
"""
from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional, Tuple

import numpy

__all__ = ["ORTEngine"]

_LOGGER = logging.getLogger(__name__)

_ORT_TYPES = {
    "tensor(float)": numpy.float32, "tensor(double)": numpy.float64,
    "tensor(float16)": numpy.float16, "tensor(int64)": numpy.int64, "tensor(int32)": numpy.int32,
    "tensor(int16)": numpy.int16, "tensor(int8)": numpy.int8, "tensor(uint8)": numpy.uint8,
    "tensor(uint16)": numpy.uint16, "tensor(uint32)": numpy.uint32,
    "tensor(uint64)": numpy.uint64, "tensor(bool)": numpy.bool_,
}


def _import_onnxruntime():
    try:
        import onnxruntime
    except Exception as exc:  # ImportError, or a broken binary install
        raise ImportError(
            "onnxruntime could not be imported; it is needed for the 'onnxruntime' benchmark "
            "engine. Install it with `pip install onnxruntime` (or `pip install "
            f"deepsparse_lite[test]`).\n\nException info: {exc}") from exc
    return onnxruntime


class ORTEngine:
    """An onnxruntime InferenceSession with the Engine interface used by the benchmark.

    :param model: ONNX file, folder holding model.onnx, or a ``zoo:`` sample stub
    :param batch_size: dim 0 of every input (must be >= 1)
    :param num_cores: onnxruntime ``intra_op_num_threads``; default: the available physical cores
    :param input_shapes: shape overrides applied before the batch size
    :param providers: execution providers; default ``["CPUExecutionProvider"]``

    Example::

        engine = ORTEngine("model.onnx", batch_size=1, num_cores=2)
        outputs = engine.run(engine.generate_random_inputs())
    """

    def __init__(self, model, batch_size: int = 1, num_cores: Optional[int] = None,
                 input_shapes=None, providers: Optional[List[str]] = None):
        ort = _import_onnxruntime()
        from deepsparse_lite.utils import (model_to_path, override_onnx_batch_size,
                                           override_onnx_input_shapes)

        self._model_path = model_to_path(model)
        if batch_size is None or batch_size < 1:
            raise ValueError("batch_size must be greater than 0")
        self._batch_size = int(batch_size)
        self._num_cores = num_cores
        self._input_shapes = input_shapes
        self._providers = list(providers) if providers else ["CPUExecutionProvider"]

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = int(self.num_cores)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if any(p != "CPUExecutionProvider" for p in self._providers):
            _LOGGER.warning("ORTEngine with providers %s may not respect num_cores=%s",
                            self._providers, self.num_cores)
        with override_onnx_input_shapes(self._model_path, input_shapes) as shaped:
            with override_onnx_batch_size(shaped, self._batch_size) as path:
                self._session = ort.InferenceSession(path, opts, providers=self._providers)
        self._input_names = [i.name for i in self._session.get_inputs()]
        self._output_names = [o.name for o in self._session.get_outputs()]

    # ---- properties (the subset of Engine's the benchmark reads) --------------------------
    @property
    def model_path(self) -> str:
        return self._model_path

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def num_cores(self) -> int:
        if self._num_cores:
            return int(self._num_cores)
        from deepsparse_lite.cpu import cpu_architecture
        return int(cpu_architecture().num_available_physical_cores)

    @property
    def num_streams(self) -> int:
        return 1

    @property
    def scheduler(self) -> None:
        return None

    @property
    def fraction_of_supported_ops(self) -> Optional[float]:
        return None

    @property
    def providers(self) -> List[str]:
        return self._providers

    @property
    def input_names(self) -> List[str]:
        return list(self._input_names)

    @property
    def output_names(self) -> List[str]:
        return list(self._output_names)

    @property
    def input_shapes(self) -> List[Tuple]:
        return [tuple(i.shape) for i in self._session.get_inputs()]

    @property
    def output_shapes(self) -> List[Tuple]:
        return [tuple(o.shape) for o in self._session.get_outputs()]

    def _properties_dict(self) -> Dict:
        return {"onnx_file_path": self.model_path, "batch_size": self.batch_size,
                "num_cores": self.num_cores, "providers": self.providers}

    def __repr__(self) -> str:
        return "{}({})".format(self.__class__, self._properties_dict())

    def __str__(self) -> str:
        props = "\n".join("\t{}: {}".format(k, v) for k, v in self._properties_dict().items())
        return "{}:\n{}".format(self.__class__.__qualname__, props)

    # ---- running -----------------------------------------------------------------------
    def generate_random_inputs(self) -> List[numpy.ndarray]:
        """DeepSparse-style random inputs (``rand().astype(dtype)``) of the session's shapes."""
        out = []
        for i in self._session.get_inputs():
            dtype = numpy.dtype(_ORT_TYPES.get(i.type, numpy.float32))
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
            _LOGGER.info("Generating input '%s', type = %s, shape = %s", i.name, dtype.name, shape)
            out.append(numpy.random.rand(*shape).astype(dtype))
        return out

    def run(self, inp: List[numpy.ndarray], val_inp: bool = True) -> List[numpy.ndarray]:
        if val_inp:
            self._validate_inputs(inp)
        return self._session.run(self._output_names, dict(zip(self._input_names, inp)))

    def __call__(self, inp: List[numpy.ndarray], val_inp: bool = True) -> List[numpy.ndarray]:
        return self.run(inp, val_inp)

    def timed_run(self, inp: List[numpy.ndarray], val_inp: bool = False) -> Tuple[List[numpy.ndarray], float]:
        start = time.perf_counter()
        out = self.run(inp, val_inp)
        return out, time.perf_counter() - start

    def mapped_run(self, inp: List[numpy.ndarray], val_inp: bool = True) -> Dict[str, numpy.ndarray]:
        return dict(zip(self._output_names, self.run(inp, val_inp)))

    def _validate_inputs(self, inp) -> None:
        if isinstance(inp, str) or not isinstance(inp, list):
            raise ValueError("inp must be a list, given {}".format(type(inp)))
        for arr in inp:
            if arr.shape[0] != self._batch_size:
                raise ValueError(
                    "array batch size of {} must match the batch size the model was instantiated "
                    "with {}".format(arr.shape[0], self._batch_size))
            if not arr.flags["C_CONTIGUOUS"]:
                raise ValueError("array must be passed in as C contiguous, call "
                                 "numpy.ascontiguousarray(array)")
