"""Calibration inputs (random or user arrays) and min/max collection with our own engine.

The activations to calibrate are appended to a copy of the model as extra graph outputs and the
copy is compiled by :class:`deepsparse_lite.Engine`: no second runtime is needed to quantize.
"""
from __future__ import annotations

import glob
import logging
import os
import tempfile
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np
import onnx

from deepsparse_lite.ops.base import UnsupportedModelError
from deepsparse_lite.sparsify._model import consumers

_LOGGER = logging.getLogger(__name__)

Calibration = Union[int, str, os.PathLike, Sequence]


def _input_specs(model: onnx.ModelProto):
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for i in model.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in tt.shape.dim]
        specs.append((i.name, dtype, shape))
    return specs


def _index_range(model: onnx.ModelProto, name: str) -> int:
    """The table size when ``name`` indexes a constant Gather (token ids), else 0."""
    inits = {t.name: t for t in model.graph.initializer}
    for n in consumers(model).get(name, []):
        if n.op_type == "Gather" and len(n.input) > 1 and n.input[1] == name \
                and n.input[0] in inits:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            return int(inits[n.input[0]].dims[axis])
    return 0


def random_inputs(model: onnx.ModelProto, count: int, seed: int = 0) -> List[List[np.ndarray]]:
    """``count`` random input sets: floats ~ N(0, 1) (normalized images and embeddings look
    like that), token ids uniform over the table they index, ``*mask*`` inputs all ones,
    other integer inputs zeros. Symbolic dims become 1."""
    rng = np.random.default_rng(seed)
    specs = _input_specs(model)
    ranges = {name: _index_range(model, name) for name, _, _ in specs}
    sets = []
    for _ in range(count):
        arrays = []
        for name, dtype, shape in specs:
            if np.issubdtype(dtype, np.floating):
                a = rng.standard_normal(shape).astype(dtype)
            elif ranges[name]:
                a = rng.integers(0, ranges[name], size=shape).astype(dtype)
            elif "mask" in name.lower():
                a = np.ones(shape, dtype)
            else:
                a = np.zeros(shape, dtype)
            arrays.append(a)
        sets.append(arrays)
    return sets


def load_inputs(directory: str, model: onnx.ModelProto) -> List[List[np.ndarray]]:
    """Input sets from ``directory``: each ``.npz`` holds one set (arrays named after the
    inputs, or in input order); each ``.npy`` is one array of a single-input model."""
    specs = _input_specs(model)
    names = [s[0] for s in specs]
    files = sorted(glob.glob(os.path.join(directory, "*.npy")) +
                   glob.glob(os.path.join(directory, "*.npz")))
    if not files:
        raise ValueError(f"calibration directory {directory} holds no .npy or .npz files")
    sets = []
    for f in files:
        try:
            data = np.load(f, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"cannot read calibration file {f}: {exc}") from None
        if isinstance(data, np.ndarray):
            if len(names) != 1:
                raise ValueError(f"{f}: a .npy file holds one array but the model has "
                                 f"{len(names)} inputs {names}; use .npz files")
            arrays = [data]
        else:
            keys = list(data.keys())
            arrays = ([data[n] for n in names] if set(names) <= set(keys)
                      else [data[k] for k in keys])
            if len(arrays) != len(names):
                raise ValueError(f"{f}: holds arrays {keys}, the model's inputs are {names}")
        sets.append(_conform(arrays, specs, f))
    return sets


def _conform(arrays, specs, where: str) -> List[np.ndarray]:
    out = []
    for a, (name, dtype, shape) in zip(arrays, specs):
        a = np.asarray(a)
        if a.ndim == len(shape) - 1:  # one sample without its batch dim
            a = a[None]
        if a.ndim != len(shape):
            raise ValueError(f"{where}: input {name!r} has shape {a.shape}, the model expects "
                             f"rank {len(shape)} ({shape})")
        out.append(a.astype(dtype, copy=False))
    return out


def calibration_sets(model: onnx.ModelProto, calibration: Calibration,
                     seed: int = 0) -> List[List[np.ndarray]]:
    """Resolve ``calibration``: a count of random sets, a directory of arrays, or a list of
    input sets (each a list of arrays in input order or a dict by input name)."""
    if isinstance(calibration, bool):
        raise ValueError(f"calibration must be a count, a directory or input arrays, "
                         f"got {calibration!r}")
    if isinstance(calibration, (int, np.integer)):
        if calibration < 1:
            raise ValueError(f"calibration count must be >= 1, got {calibration}")
        return random_inputs(model, int(calibration), seed)
    if isinstance(calibration, (str, os.PathLike)):
        path = os.fspath(calibration)
        if path.isdigit():
            return calibration_sets(model, int(path), seed)
        if not os.path.isdir(path):
            raise ValueError(f"calibration must be a number of random samples or a directory "
                             f"of .npy/.npz arrays; {path!r} is neither")
        return load_inputs(path, model)
    specs = _input_specs(model)
    sets = []
    for k, s in enumerate(calibration):
        if isinstance(s, dict):
            s = [s[name] for name, _, _ in specs]
        elif isinstance(s, np.ndarray):
            s = [s]
        sets.append(_conform(list(s), specs, f"calibration set {k}"))
    if not sets:
        raise ValueError("calibration holds no input sets")
    return sets


def collect_ranges(model: onnx.ModelProto, tensors: Iterable[str],
                   sets: List[List[np.ndarray]]) -> Dict[str, Tuple[float, float]]:
    """Min and max of every tensor in ``tensors`` over all calibration sets, computed by
    deepsparse_lite's Engine on a copy of ``model`` that exposes them as outputs.

    A model our engine cannot compile (an op it lacks) is calibrated with onnxruntime when it
    is installed (a warning says so); otherwise that is a ValueError naming the reason."""
    tensors = list(dict.fromkeys(tensors))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output}
    inputs = {i.name for i in probe.graph.input}
    for t in tensors:
        if t not in present and t not in inputs:
            probe.graph.output.append(
                onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    ranges: Dict[str, List[float]] = {}

    def record(values: Dict[str, np.ndarray]) -> None:
        for t in tensors:
            a = values[t]
            lo, hi = float(np.min(a)), float(np.max(a))
            r = ranges.setdefault(t, [lo, hi])
            r[0], r[1] = min(r[0], lo), max(r[1], hi)

    with tempfile.TemporaryDirectory(prefix="dsl-calibrate-") as d:
        path = os.path.join(d, "model.onnx")
        onnx.save(probe, path)
        try:
            _run_engine(path, sets, record)
        except UnsupportedModelError as exc:
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise ValueError(f"cannot calibrate: deepsparse_lite cannot run this model "
                                 f"({exc}) and onnxruntime is not installed") from None
            _LOGGER.warning("calibrating with onnxruntime: deepsparse_lite cannot run this "
                            "model (%s)", exc)
            ranges.clear()
            _run_onnxruntime(path, sets, record)
    return {t: (r[0], r[1]) for t, r in ranges.items()}


def _run_engine(path: str, sets, record) -> None:
    from deepsparse_lite import Engine

    by_batch: Dict[int, List[List[np.ndarray]]] = {}
    for s in sets:
        by_batch.setdefault(int(s[0].shape[0]) if s and s[0].ndim else 1, []).append(s)
    for batch, group in by_batch.items():
        engine = Engine(path, batch_size=batch)
        try:
            for s in group:
                values = dict(zip(engine.output_names, engine.run(list(s))))
                values.update(zip(engine.input_names, s))
                record(values)
        finally:
            engine.close()


def _run_onnxruntime(path: str, sets, record) -> None:
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    in_names = [i.name for i in sess.get_inputs()]
    out_names = [o.name for o in sess.get_outputs()]
    for s in sets:
        values = dict(zip(out_names, sess.run(None, dict(zip(in_names, s)))))
        values.update(zip(in_names, s))
        record(values)
