"""Make sparse and INT8-quantized ONNX models: magnitude pruning and static QDQ quantization.

SparseZoo cannot be reached from here, and users want their own models sparse. Pruning zeroes
the smallest-magnitude weights of every Conv / Gemm / MatMul to an exact target sparsity (per
layer or global; the first conv and the classifier can be kept dense). Quantization writes the
QDQ format of onnxruntime's ``quantize_static`` (per-channel int8 weights, uint8 activations
from min-max calibration), calibrated by running the model with deepsparse_lite's own Engine:
no second runtime is needed (see quantize.py for why we wrote our own).

Python::

    from deepsparse_lite.sparsify import sparsify
    model, report = sparsify("model.onnx", "model-pruned90_quant.onnx", sparsity=0.9,
                             skip_first_conv=True, quantize="int8", calibration=16)
    print(report)

CLI (also the ``deepsparse_lite.sparsify`` console script)::

    python -m deepsparse_lite.sparsify IN.onnx OUT.onnx --sparsity 0.9 \\
        [--quantize int8 --calibration N|DIR]
"""
from deepsparse_lite.sparsify.api import SparsifyReport, sparsify  # noqa: F401
from deepsparse_lite.sparsify.prune import (LayerSparsity, SparsityReport,  # noqa: F401
                                            measure_sparsity, prune_model)
from deepsparse_lite.sparsify.quantize import QuantizationReport, quantize_model  # noqa: F401

__all__ = ["sparsify", "prune_model", "quantize_model", "measure_sparsity", "SparsifyReport",
           "SparsityReport", "LayerSparsity", "QuantizationReport", "main"]


def main(argv=None):
    from deepsparse_lite.sparsify.cli import main as _main
    return _main(argv)
