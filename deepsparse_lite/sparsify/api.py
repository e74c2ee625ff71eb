"""``sparsify``: prune, then quantize, then save, in one call (what the CLI runs)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Optional

import onnx

from deepsparse_lite.sparsify._model import ModelLike, load
from deepsparse_lite.sparsify.calibration import Calibration
from deepsparse_lite.sparsify.prune import SparsityReport, check_sparsity, prune_model
from deepsparse_lite.sparsify.quantize import QuantizationReport, quantize_model

QUANTIZE_CHOICES = (None, "int8")


@dataclass
class SparsifyReport:
    sparsity: Optional[SparsityReport]
    quantization: Optional[QuantizationReport]

    def __str__(self) -> str:
        parts = []
        if self.sparsity is not None:
            parts.append(self.sparsity.table())
        if self.quantization is not None:
            parts.append(str(self.quantization))
        return "\n".join(parts) or "nothing done"


def save(model: onnx.ModelProto, path: str) -> None:
    """Save, with weights in an external ``.data`` file past protobuf's 2 GB limit."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    if model.ByteSize() > (1 << 31) - (1 << 24):
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(path) + ".data")
    else:
        onnx.save(model, path)


def sparsify(model: ModelLike, output: Optional[str] = None, sparsity: float = 0.0,
             mode: str = "layer", skip_first_conv: bool = False, skip_classifier: bool = False,
             skip: Iterable[str] = (), block: int = 1, prune_grouped: bool = False,
             rescale: bool = False, quantize: Optional[str] = None,
             calibration: Calibration = 8, exclude: Iterable[str] = (), seed: int = 0):
    """Prune ``model`` to ``sparsity`` (0 skips pruning), quantize it when ``quantize="int8"``
    and save it to ``output`` when given. Returns ``(ModelProto, SparsifyReport)``.

    Options are :func:`~deepsparse_lite.sparsify.prune_model`'s and
    :func:`~deepsparse_lite.sparsify.quantize_model`'s; the input is never modified.
    """
    sparsity = check_sparsity(sparsity)
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    proto = load(model)
    s_report = q_report = None
    if sparsity > 0.0:
        proto, s_report = prune_model(proto, sparsity, mode=mode, skip_first_conv=skip_first_conv,
                                      skip_classifier=skip_classifier, skip=skip, block=block,
                                      prune_grouped=prune_grouped, rescale=rescale)
    if quantize == "int8":
        proto, q_report = quantize_model(proto, calibration=calibration, exclude=exclude,
                                         seed=seed)
    if output is not None:
        save(proto, os.fspath(output))
    return proto, SparsifyReport(s_report, q_report)
