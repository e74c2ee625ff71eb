"""deepsparse_lite.sparsify on real exporter output (the PyTorch fixtures of tests/data/exported):
pruned files run by our engine match onnxruntime, and our QDQ files lose no more accuracy
than onnxruntime's own ``quantize_static`` on the same calibration sets."""
import json
import os

import numpy as np
import onnx
import pytest

from deepsparse_lite.sparsify import prune_model, quantize_model
from deepsparse_lite.sparsify.calibration import random_inputs
from tests.test_sparsify import _signature
from tests.tools.model_compare import assert_close, compile_or_skip, engine_run, ort_run

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "exported")
with open(os.path.join(DATA, "manifest.json")) as _f:
    NAMES = sorted(json.load(_f)["fixtures"])


# Q/DQ placement differs from quantize_static's (without its pre-processing) by design on:
# vgg / mobilenet_v3 (opset 17): Conv + BatchNormalization, which we fold first;
# mobilenet_v2: the Clip bounds' dead Constant nodes, which we remove; bert_tiny_hf /
# minilm: LayerNorm biases shared across layers through Identity, which we keep fp32;
# distilbert: the -inf attention mask (ort writes a NaN zero point there, we keep it fp32).
LAYOUT_DIFFERS = {"vgg_tiny", "mobilenet_v3_tiny", "mobilenet_v2_tiny", "bert_tiny_hf",
                  "minilm_tiny_hf", "distilbert_tiny_hf"}


def _load(name):
    path = os.path.join(DATA, f"{name}.onnx")
    with np.load(os.path.join(DATA, f"{name}.npz")) as z:
        feeds = {k[len("input:"):]: z[k] for k in z.files if k.startswith("input:")}
    return path, feeds


@pytest.mark.parametrize("name", NAMES)
def test_pruned_fixture_engine_matches_onnxruntime(name):
    path, feeds = _load(name)
    pruned, report = prune_model(path, 0.9, skip_first_conv=True)
    assert report.pruned_sparsity == pytest.approx(0.9, abs=1e-3)
    want = ort_run(pruned, feeds)
    got = engine_run(compile_or_skip(pruned), feeds, threads=2)
    assert_close(got, want, [o.name for o in pruned.graph.output], 1e-4, 1e-4, name)


@pytest.mark.parametrize("name", NAMES)
def test_quantized_fixture_is_as_close_as_onnxruntime_quantize_static(name, tmp_path):
    quantization = pytest.importorskip("onnxruntime.quantization")
    path, feeds = _load(name)
    model = onnx.load(path)
    names = [i.name for i in model.graph.input]
    sets = [[feeds[n] for n in names]] + random_inputs(model, 3, seed=1)

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            self.it = iter([dict(zip(names, s)) for s in sets])

        def get_next(self):
            return next(self.it, None)

    theirs = str(tmp_path / "ort_q.onnx")
    quantization.quantize_static(path, theirs, Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=quantization.QuantType.QUInt8,
                                 weight_type=quantization.QuantType.QInt8)
    ours, _ = quantize_model(model, calibration=sets)
    onnx.checker.check_model(ours)
    if name not in LAYOUT_DIFFERS:
        assert _signature(ours) == _signature(onnx.load(theirs))
    want = ort_run(path, feeds)[0]
    err_ours = float(np.abs(ort_run(ours, feeds)[0] - want).max())
    err_theirs = float(np.abs(ort_run(theirs, feeds)[0] - want).max())
    scale = float(np.abs(want).max())
    assert np.isfinite(err_ours)
    assert err_ours <= 1.5 * err_theirs + 0.02 * scale, (err_ours, err_theirs, scale)
