"""ONNX-file helpers with ``deepsparse.utils.onnx`` names, semantics and messages.

Deliberate differences from DeepSparse 1.8, all in the direction of never surprising the user:

- **The user's ONNX file is never written.** DeepSparse's ``override_onnx_batch_size`` and
  ``override_onnx_input_shapes`` default to ``inplace=True`` and ``onnx.save`` over the
  original file. Here they always write a *new* temporary copy, yield its path and delete it
  on exit; ``inplace=True`` raises ValueError.
- ``override_onnx_input_shapes(path, None)`` yields ``path`` unchanged (DeepSparse's
  generator returns before yielding there, which breaks the ``with`` statement).
- ``model_to_path`` on a folder checks that ``folder/model.onnx`` exists (DeepSparse returns
  the joined path unchecked and the engine fails later). ``zoo:`` stubs resolve to a local
  *sample* model of the same architecture (``deepsparse_lite.models``, synthetic weights);
  nothing is downloaded, so ``hf:`` stubs and unknown ``zoo:`` stubs raise a clear
  ValueError.

``generate_random_inputs`` keeps DeepSparse's exact data: ``numpy.random.rand(*shape)
.astype(dtype)``, so **integer inputs are all zeros** (and bool inputs all True). Benchmarks
stay comparable with DeepSparse's; pass your own inputs when values matter.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from typing import Iterator, List, Optional, Union

import numpy
import onnx

__all__ = [
    "MODEL_ONNX_NAME",
    "ONNX_TENSOR_TYPE_MAP",
    "model_to_path",
    "get_external_inputs",
    "get_external_outputs",
    "get_input_names",
    "get_output_names",
    "generate_random_inputs",
    "override_onnx_batch_size",
    "override_onnx_input_shapes",
    "translate_onnx_type_to_numpy",
]

_LOGGER = logging.getLogger(__name__)

MODEL_ONNX_NAME = "model.onnx"

ONNX_TENSOR_TYPE_MAP = {
    onnx.TensorProto.FLOAT: numpy.float32,
    onnx.TensorProto.UINT8: numpy.uint8,
    onnx.TensorProto.INT8: numpy.int8,
    onnx.TensorProto.UINT16: numpy.uint16,
    onnx.TensorProto.INT16: numpy.int16,
    onnx.TensorProto.INT32: numpy.int32,
    onnx.TensorProto.INT64: numpy.int64,
    onnx.TensorProto.BOOL: numpy.bool_,
    onnx.TensorProto.FLOAT16: numpy.float16,
    onnx.TensorProto.DOUBLE: numpy.float64,
    onnx.TensorProto.UINT32: numpy.uint32,
    onnx.TensorProto.UINT64: numpy.uint64,
    onnx.TensorProto.COMPLEX64: numpy.complex64,
    onnx.TensorProto.COMPLEX128: numpy.complex128,
}

ModelLike = Union[str, os.PathLike, onnx.ModelProto]


def translate_onnx_type_to_numpy(tensor_type: int):
    """ONNX element type code -> numpy scalar type."""
    if tensor_type not in ONNX_TENSOR_TYPE_MAP:
        raise Exception("Unknown ONNX tensor type = {}".format(tensor_type))
    return ONNX_TENSOR_TYPE_MAP[tensor_type]


# ----------------------------------------------------------------------------- model_to_path
def _how_to_get_a_sample() -> str:
    try:
        from deepsparse_lite.models import list_models
        names = ", ".join(list_models())
    except Exception:  # the models package is optional here
        names = "resnet50, mobilenet_v2, bert_base, ..."
    return ("build a local sample model instead (synthetic weights) with "
            "`python -c \"from deepsparse_lite.models import sample_model_path; "
            "print(sample_model_path('resnet50'))\"` (available: " + names + "), "
            "or pass a local .onnx file or a folder holding " + MODEL_ONNX_NAME)


def _zoo_stub_to_path(stub: str) -> str:
    try:
        from deepsparse_lite.models import sample_model_path, zoo_stub_to_sample
    except ImportError:
        name, why = None, "the sample models package (deepsparse_lite.models) is not available"
    else:
        name, why = zoo_stub_to_sample(stub), "this stub maps to none of its sample architectures"
    if not name:
        raise ValueError(
            f"cannot resolve SparseZoo stub '{stub}': deepsparse_lite does not download models "
            f"(no network access) and {why}; " + _how_to_get_a_sample())
    path = sample_model_path(name)
    _LOGGER.warning("SparseZoo stub '%s' resolved to the local sample model '%s' at %s "
                    "(synthetic weights: right for speed, meaningless for accuracy)", stub, name, path)
    return path


def _sparsezoo_object_path(model) -> Optional[str]:
    """Path of a sparsezoo.Model / sparsezoo.File object, when sparsezoo is installed."""
    if not type(model).__module__.startswith("sparsezoo"):
        return None
    onnx_model = getattr(model, "onnx_model", None)
    if onnx_model is not None and getattr(onnx_model, "path", None):
        return str(onnx_model.path)
    if getattr(model, "path", None):
        return str(model.path)
    return None


def model_to_path(model) -> str:
    """Resolve ``model`` to a local ONNX file path.

    Accepts a path (str or PathLike) to an ``.onnx`` file, a folder holding ``model.onnx``,
    a ``zoo:`` stub naming an architecture with a built-in sample model, or a sparsezoo
    Model/File object. Returns the path as given (not absolutized) for files.

    Raises ValueError: ``"model must be a path, sparsezoo.Model, or sparsezoo.File"`` for a
    falsy model, ``"unsupported type for model: <type>"``, ``"model path must exist: given
    <model>"``, or a message explaining that stubs cannot be downloaded here."""
    try:
        falsy = not model
    except Exception:  # e.g. an ndarray: not a model either, reported as its type below
        falsy = False
    if falsy:
        raise ValueError("model must be a path, sparsezoo.Model, or sparsezoo.File")
    zoo_path = _sparsezoo_object_path(model)
    if zoo_path is not None:
        model = zoo_path
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise ValueError("unsupported type for model: {}".format(type(model)))

    if model.startswith("zoo:"):
        return _zoo_stub_to_path(model)
    if model.startswith("hf:"):
        raise ValueError(
            f"cannot resolve Hugging Face stub '{model}': deepsparse_lite does not download "
            "models (no network access). Download the repository yourself and pass the folder "
            f"holding {MODEL_ONNX_NAME} (or the .onnx file); or " + _how_to_get_a_sample())

    if not os.path.exists(model):
        raise ValueError("model path must exist: given {}".format(model))
    if os.path.isdir(model):
        candidates = [os.path.join(model, MODEL_ONNX_NAME),
                      os.path.join(model, "deployment", MODEL_ONNX_NAME)]  # SparseZoo layout
        for path in candidates:
            if os.path.isfile(path):
                return path
        raise ValueError(
            f"model folder must contain {MODEL_ONNX_NAME}: none found in {model} "
            f"(pass the .onnx file itself, or a folder holding {MODEL_ONNX_NAME})")
    return model


# ----------------------------------------------------------------------------- graph I/O
def _load_proto(onnx_model: ModelLike, load_external_data: bool = False) -> onnx.ModelProto:
    if isinstance(onnx_model, onnx.ModelProto):
        return onnx_model
    return onnx.load(os.fspath(onnx_model), load_external_data=load_external_data)


def _external_inputs(model: onnx.ModelProto) -> List[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [inp for inp in model.graph.input if inp.name not in initializers]


def get_external_inputs(onnx_model: ModelLike) -> List[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (the ones a caller must feed), in order.
    Weights stored as external data are not read."""
    return _external_inputs(_load_proto(onnx_model))


def get_external_outputs(onnx_model: ModelLike) -> List[onnx.ValueInfoProto]:
    """Graph outputs, in order."""
    return list(_load_proto(onnx_model).graph.output)


def get_input_names(onnx_model: ModelLike) -> List[str]:
    """Names of the external inputs, in graph order."""
    return [inp.name for inp in get_external_inputs(onnx_model)]


def get_output_names(onnx_model: ModelLike) -> List[str]:
    """Names of the graph outputs, in graph order."""
    return [out.name for out in get_external_outputs(onnx_model)]


def generate_random_inputs(onnx_filepath: ModelLike, batch_size: Optional[int] = None) -> List[numpy.ndarray]:
    """One random array per external input, exactly as DeepSparse makes them.

    Unknown or symbolic dims become 1, ``batch_size`` (when not None) replaces dim 0, and the
    data is ``numpy.random.rand(*shape).astype(dtype)``: uniform [0, 1) for floats, **all
    zeros for integer inputs** (all True for bool)."""
    arrays = []
    for inp in get_external_inputs(onnx_filepath):
        tensor_type = inp.type.tensor_type
        dtype = translate_onnx_type_to_numpy(tensor_type.elem_type)
        shape = [max(int(d.dim_value), 1) for d in tensor_type.shape.dim]
        if batch_size is not None and shape:
            shape[0] = batch_size
        assert all(d >= 1 for d in shape), \
            f"Invalid shape {shape} for input '{inp.name}': every dim must be >= 1"
        _LOGGER.info("Generating input '{}', type = {}, shape = {}".format(
            inp.name, numpy.dtype(dtype).name, shape))
        arrays.append(numpy.random.rand(*shape).astype(dtype))
    return arrays


# ----------------------------------------------------------------------------- overrides
_PROTOBUF_LIMIT = (1 << 31) - (1 << 24)  # stay clear of protobuf's 2 GiB message cap


def _refuse_inplace(inplace: bool) -> None:
    if inplace:
        raise ValueError(
            "inplace=True is not supported: deepsparse_lite never modifies the user's ONNX file "
            "(DeepSparse rewrites it in place); the override is written to a temporary copy")


def _load_copy(onnx_filepath: ModelLike) -> onnx.ModelProto:
    if isinstance(onnx_filepath, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(onnx_filepath)
        return copy
    return onnx.load(os.fspath(onnx_filepath))  # external data loaded: the copy stands alone


def _forget_stale_shapes(model: onnx.ModelProto) -> None:
    # Intermediate and output shapes recorded for the old input shapes would contradict the
    # new ones (onnxruntime warns or fails on the merge); every consumer re-infers them.
    # Output dims become unknown (rank kept: the checker wants a shape on graph outputs).
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.HasField("tensor_type") and out.type.tensor_type.HasField("shape"):
            for dim in out.type.tensor_type.shape.dim:
                dim.Clear()


@contextlib.contextmanager
def _temporary_model(model: onnx.ModelProto) -> Iterator[str]:
    tmpdir = tempfile.mkdtemp(prefix="deepsparse_lite-onnx-")
    path = os.path.join(tmpdir, MODEL_ONNX_NAME)
    try:
        if model.ByteSize() > _PROTOBUF_LIMIT:
            onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=MODEL_ONNX_NAME + ".data")
        else:
            onnx.save(model, path)
        yield path
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def override_onnx_batch_size(onnx_filepath: ModelLike, batch_size: int,
                             inplace: bool = False) -> Iterator[str]:
    """Context manager yielding the path of a temporary copy of the model whose external
    inputs have dim 0 set to ``batch_size``; the copy is deleted on exit. The original file
    is never written (``inplace=True`` raises ValueError)."""
    _refuse_inplace(inplace)
    model = _load_copy(onnx_filepath)
    for inp in _external_inputs(model):
        dims = inp.type.tensor_type.shape.dim
        if len(dims):
            dims[0].dim_value = int(batch_size)  # also clears a symbolic dim_param
    _forget_stale_shapes(model)
    with _temporary_model(model) as path:
        yield path


@contextlib.contextmanager
def override_onnx_input_shapes(onnx_filepath: ModelLike, input_shapes,
                               inplace: bool = False) -> Iterator[str]:
    """Context manager yielding the path of a temporary copy of the model with its external
    inputs reshaped; the copy is deleted on exit and the original is never written
    (``inplace=True`` raises ValueError).

    ``input_shapes``: None (the original path is yielded unchanged), a string such as
    ``"[1,3,224,224]"`` (see ``parse_input_shapes``), one flat shape, or a list of shapes.
    One shape given for a model with several inputs is applied to every input, as in
    DeepSparse. A count or rank mismatch raises an error that is both a ValueError and an
    AssertionError (DeepSparse asserts) with DeepSparse's messages."""
    _refuse_inplace(inplace)
    from deepsparse_lite.compiler.graph import ShapeOverrideError, normalize_input_shapes

    shapes = normalize_input_shapes(input_shapes)
    if shapes is None and not isinstance(onnx_filepath, onnx.ModelProto):
        yield os.fspath(onnx_filepath)
        return
    model = _load_copy(onnx_filepath)
    if shapes is not None:
        inputs = _external_inputs(model)
        if len(shapes) == 1 and len(inputs) > 1:
            shapes = shapes * len(inputs)
        if len(shapes) != len(inputs):
            raise ShapeOverrideError(
                "Mismatch of number of model inputs ({}) and override shapes ({})".format(
                    len(inputs), len(shapes)))
        for inp, shape in zip(inputs, shapes):
            dims = inp.type.tensor_type.shape.dim
            if len(dims) != len(shape):
                declared = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                            for d in dims]
                raise ShapeOverrideError(
                    "Input '{}' shape doesn't match shape override: {} vs {}".format(
                        inp.name, declared, shape))
            if any(d < 1 for d in shape):
                raise ShapeOverrideError(
                    f"Input '{inp.name}' shape override has a dimension < 1: {shape}")
            for dim, value in zip(dims, shape):
                dim.dim_value = int(value)
        _forget_stale_shapes(model)
    with _temporary_model(model) as path:
        yield path
