"""Array helpers with ``deepsparse.utils.data`` semantics and messages.

- ``parse_input_shapes("[1,3,224,224],[1,10]")`` -> ``[[1, 3, 224, 224], [1, 10]]`` (the
  benchmark CLI's ``-shapes`` flag); ``""`` -> None.
- ``split_engine_inputs`` / ``join_engine_outputs``: cut any batch into engine-sized pieces
  (the last one edge-padded) and glue the outputs back, trimming the padding.
- ``arrays_to_bytes`` / ``bytes_to_arrays``: ``dtype|d0,d1,...|raw bytes`` per array.
- ``verify_outputs``: per-output max absolute difference, logged as DeepSparse does.
- ``numpy_softmax`` / ``numpy_log_softmax``: numerically stable, along ``axis``.
"""
from __future__ import annotations

import logging
import re
from typing import Any, List, Optional, Sequence, Tuple

import numpy

__all__ = [
    "arrays_to_bytes",
    "bytes_to_arrays",
    "verify_outputs",
    "parse_input_shapes",
    "numpy_softmax",
    "numpy_log_softmax",
    "split_engine_inputs",
    "join_engine_outputs",
    "prep_for_serialization",
]

_LOGGER = logging.getLogger(__name__)
_SEP = b"|"


def arrays_to_bytes(arrays: Sequence[numpy.ndarray]) -> bytearray:
    """Serialize arrays as ``dtype|shape|bytes`` records, one after another."""
    out = bytearray()
    for arr in arrays:
        arr = numpy.asarray(arr)
        out += str(arr.dtype).encode("utf-8") + _SEP
        out += ",".join(str(d) for d in arr.shape).encode("utf-8") + _SEP
        out += numpy.ascontiguousarray(arr).tobytes()
    return out


def bytes_to_arrays(serialized_arr: bytes) -> List[numpy.ndarray]:
    """Inverse of :func:`arrays_to_bytes`; every array is a fresh, writeable copy."""
    buf = bytes(serialized_arr)
    arrays: List[numpy.ndarray] = []
    pos = 0
    while pos < len(buf) - 1:
        i0 = buf.find(_SEP, pos)
        i1 = buf.find(_SEP, i0 + 1)
        if i0 < 0 or i1 < 0:
            raise ValueError("malformed array bytes: missing '|' separators")
        dtype = numpy.dtype(buf[pos:i0].decode("utf-8"))
        dims = buf[i0 + 1:i1].decode("utf-8")
        shape = tuple(int(d) for d in dims.split(",")) if dims else ()  # 0-d arrays
        nbytes = int(numpy.prod(shape, dtype=numpy.int64)) * dtype.itemsize
        start = i1 + 1
        if start + nbytes > len(buf):
            raise ValueError("malformed array bytes: truncated data")
        arrays.append(numpy.frombuffer(buf[start:start + nbytes], dtype=dtype).reshape(shape).copy())
        pos = start + nbytes
    return arrays


def verify_outputs(outputs: Sequence[numpy.ndarray], gt_outputs: Sequence[numpy.ndarray],
                   atol: float = 8.0e-4, rtol: float = 0.0) -> List[float]:
    """Max absolute difference of each output against its ground truth.

    Raises on a count, shape or type mismatch; a value mismatch beyond ``atol``/``rtol`` is
    logged as an error (as DeepSparse 1.8 does) and shows in the returned differences."""
    if len(outputs) != len(gt_outputs):
        raise Exception(f"Number of outputs doesn't match, {len(outputs)} != {len(gt_outputs)}")
    max_diffs = []
    for i, (output, gt_output) in enumerate(zip(outputs, gt_outputs)):
        if output.shape != gt_output.shape:
            raise Exception(f"Output shapes don't match, {output.shape} != {gt_output.shape}")
        if type(output) is not type(gt_output):
            raise Exception(f"Output types don't match, {type(output)} != {type(gt_output)}")
        max_diff = numpy.max(numpy.abs(output - gt_output)) if output.size else 0.0
        max_diffs.append(max_diff)
        _LOGGER.info(f"Output {i}: {output.shape} {gt_output.shape} MAX DIFF: {max_diff}")
        if not numpy.allclose(output, gt_output, rtol=rtol, atol=atol):
            _LOGGER.error(
                "Output data doesn't match\n"
                f"output {i}: {output.shape} {gt_output.shape} MAX DIFF: {max_diff}\n"
                f"    mean = {numpy.mean(output):.5f} {numpy.mean(gt_output):.5f}\n"
                f"    std  = {numpy.std(output):.5f} {numpy.std(gt_output):.5f}\n"
                f"    max  = {numpy.max(output):.5f} {numpy.max(gt_output):.5f}\n"
                f"    min  = {numpy.min(output):.5f} {numpy.min(gt_output):.5f}")
    return max_diffs


class InputShapesParseError(ValueError):
    """``parse_input_shapes`` could not read its string (DeepSparse raises a bare Exception
    with the same message; this is a subclass of it)."""


def parse_input_shapes(shape_string: Optional[str]) -> Optional[List[List[int]]]:
    """``"[1,2,3],[4,5,6]"`` -> ``[[1, 2, 3], [4, 5, 6]]``; ``"[[1,2]]"`` -> ``[[1, 2]]``;
    empty -> None. Anything without ``[...]`` groups raises
    ``"Can't parse input shapes parameter: ..."``."""
    if not shape_string:
        return None
    groups = re.findall(r"\[(.*?)\],?", shape_string)
    if not groups:
        raise InputShapesParseError(f"Can't parse input shapes parameter: {shape_string}")
    shapes = []
    for group in groups:
        text = group.replace("[", "").replace("]", "")
        try:
            shapes.append([int(s) for s in text.split(",")])
        except ValueError:
            raise InputShapesParseError(
                f"Can't parse input shapes parameter: {shape_string}") from None
    return shapes


def numpy_softmax(x: numpy.ndarray, axis: int = 0) -> numpy.ndarray:
    """Softmax of ``x`` along ``axis`` (max-subtracted, so large logits do not overflow)."""
    e_x = numpy.exp(x - numpy.max(x, axis=axis, keepdims=True))
    return e_x / numpy.sum(e_x, axis=axis, keepdims=True)


def numpy_log_softmax(x: numpy.ndarray, axis: int = 0) -> numpy.ndarray:
    """log(softmax(x)) along ``axis``, computed as ``x - max - log(sum(exp(x - max)))``."""
    shifted = x - numpy.max(x, axis=axis, keepdims=True)
    with numpy.errstate(divide="ignore"):
        return shifted - numpy.log(numpy.sum(numpy.exp(shifted), axis=axis, keepdims=True))


def split_engine_inputs(items: Sequence[numpy.ndarray],
                        batch_size: int) -> Tuple[List[List[numpy.ndarray]], int]:
    """Cut every input along dim 0 into pieces of ``batch_size``.

    Returns ``(batches, total_batch_size)``; each batch is a list with one array per input.
    When ``batch_size`` does not divide the total, the last piece is padded with copies of
    its last row (``numpy.pad(mode="edge")``); ``join_engine_outputs`` trims them again.
    Raises ``ValueError("Not all inputs have matching batch size")``."""
    assert all(isinstance(item, numpy.ndarray) for item in items)
    total = items[0].shape[0]
    if not all(arr.shape[0] == total for arr in items):
        raise ValueError("Not all inputs have matching batch size")
    batches = []
    for start in range(0, total, batch_size):
        stop = start + batch_size
        if stop <= total:
            batches.append([arr[start:stop] for arr in items])
            continue
        pad = ((0, stop - total),)
        batches.append([numpy.pad(arr[start:], pad + ((0, 0),) * (arr.ndim - 1), mode="edge")
                        for arr in items])
    return batches, total


def join_engine_outputs(batch_outputs: Sequence[Sequence[numpy.ndarray]],
                        orig_batch_size: int) -> List[numpy.ndarray]:
    """Concatenate per-batch outputs along dim 0 and drop the rows that were padding."""
    assert all(isinstance(item, (list, tuple)) for item in batch_outputs)
    joined = [numpy.concatenate(parts) for parts in zip(*batch_outputs)]
    if joined and joined[0].shape[0] > orig_batch_size:
        joined = [out[:orig_batch_size] for out in joined]
    return joined


def prep_for_serialization(data: Any) -> Any:
    """Turn arrays (also inside lists, dicts and pydantic models) into lists for JSON."""
    if hasattr(data, "model_fields") or hasattr(data, "__fields__"):  # pydantic v2 / v1
        fields = getattr(type(data), "model_fields", None) or getattr(data, "__fields__", {})
        for name in list(fields):
            value = getattr(data, name)
            if isinstance(value, (numpy.ndarray, list, dict)) or hasattr(value, "model_fields"):
                setattr(data, name, prep_for_serialization(value))
    elif isinstance(data, numpy.ndarray):
        data = data.tolist()
    elif isinstance(data, list):
        for i, value in enumerate(data):
            data[i] = prep_for_serialization(value)
    elif isinstance(data, dict):
        for key, value in data.items():
            data[key] = prep_for_serialization(value)
    return data
