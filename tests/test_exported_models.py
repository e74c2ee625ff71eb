"""Models exported from PyTorch / transformers (fixtures in tests/data/exported/).

Each fixture is a tiny random-weight version of a well-known architecture exported with
``torch.onnx.export`` (see tests/tools/export_torch_models.py, which regenerates them and is not
run here). For each one: the file passes the ONNX checker, onnxruntime reproduces the saved
PyTorch output (the fixture itself is sound), and deepsparse_lite matches onnxruntime with 1 and
2 threads.
"""
import json
import os

import numpy as np
import onnx
import pytest

from tests.helpers import available_isas
from tests.tools.model_compare import assert_close, compile_or_skip, engine_run, ort_run

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "exported")
with open(os.path.join(DATA, "manifest.json")) as _f:
    MANIFEST = json.load(_f)["fixtures"]
NAMES = sorted(MANIFEST)

# Engine vs onnxruntime: fp32, different summation orders; see test_sample_models.py.
RTOL, ATOL = 1e-4, 1e-4
# onnxruntime vs the saved PyTorch output: two independent fp32 implementations.
TORCH_RTOL, TORCH_ATOL = 1e-4, 1e-5


def _load(name):
    path = os.path.join(DATA, f"{name}.onnx")
    with np.load(os.path.join(DATA, f"{name}.npz")) as z:
        feeds = {k[len("input:"):]: z[k] for k in z.files if k.startswith("input:")}
        outs = [z[f"output:{n}"] for n in MANIFEST[name]["outputs"]]
    return path, feeds, outs


def test_fixture_set_is_complete_and_small():
    expected = {"resnet_tiny", "vgg_tiny", "densenet_tiny", "inception_tiny", "squeezenet_tiny",
                "shufflenet_v2_tiny", "mobilenet_v2_tiny", "mobilenet_v3_tiny", "alexnet_tiny",
                "bert_tiny_hf", "distilbert_tiny_hf", "minilm_tiny_hf"}
    assert expected <= set(NAMES)
    files = [f for f in os.listdir(DATA) if f.endswith((".onnx", ".npz"))]
    assert len(files) == 2 * len(NAMES), "every fixture needs exactly one .onnx and one .npz"
    total = sum(os.path.getsize(os.path.join(DATA, f)) for f in os.listdir(DATA))
    assert total < 8 * 1024 * 1024, f"fixtures take {total / 2**20:.1f} MiB (budget 8)"
    assert {MANIFEST[n]["opset"] for n in NAMES} >= {13, 14, 17}


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_valid_and_onnxruntime_matches_torch(name):
    path, feeds, torch_outs = _load(name)
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == MANIFEST[name]["opset"]
    assert [i.name for i in model.graph.input] == MANIFEST[name]["inputs"]
    got = ort_run(path, feeds)
    assert_close(got, torch_outs, MANIFEST[name]["outputs"], TORCH_RTOL, TORCH_ATOL,
                 f"{name}: onnxruntime vs torch")
    for o in torch_outs:
        assert float(o.std()) > 1e-2, f"{name}: degenerate (near-constant) reference output"


@pytest.mark.parametrize("isa", available_isas())
@pytest.mark.parametrize("name", NAMES)
def test_engine_matches_onnxruntime(name, isa):
    path, feeds, _ = _load(name)
    want = ort_run(path, feeds)
    plan = compile_or_skip(path, max_threads=2, isa=isa)
    for nt in (1, 2):
        got = engine_run(plan, feeds, nt)
        assert_close(got, want, MANIFEST[name]["outputs"], RTOL, ATOL,
                     f"{name} threads={nt} isa={isa}")
