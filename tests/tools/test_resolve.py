"""utils.resolve.resolve_model: the MODEL forms every tool accepts (file, folder, zoo: stub,
sample-model name), and the benchmark / analyze entry points going through it."""
import os
import shutil

import pytest

from deepsparse_lite.models import sample_model_path
from deepsparse_lite.utils.resolve import is_sample_name, resolve_model

R50_STUB = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none"


@pytest.fixture(scope="module")
def mlp_path():
    return sample_model_path("mlp")


def test_file_path(mlp_path):
    assert resolve_model(mlp_path) == mlp_path


def test_folder_and_sparsezoo_layout(mlp_path, tmp_path):
    shutil.copy(mlp_path, tmp_path / "model.onnx")
    assert resolve_model(str(tmp_path)) == str(tmp_path / "model.onnx")
    deploy = tmp_path / "zoo" / "deployment"
    deploy.mkdir(parents=True)
    shutil.copy(mlp_path, deploy / "model.onnx")
    assert resolve_model(tmp_path / "zoo") == str(deploy / "model.onnx")  # PathLike too


def test_sample_names():
    assert resolve_model("mlp") == sample_model_path("mlp")
    assert resolve_model("resnet_tiny-pruned90") == sample_model_path("resnet_tiny-pruned90")
    assert is_sample_name("bert_tiny-quant") and not is_sample_name("bert_tiny-pruned42")
    assert not is_sample_name("some/dir/mlp") and not is_sample_name("mlp.onnx")


def test_zoo_stub_uses_the_registry_mapping():
    assert resolve_model(R50_STUB) == sample_model_path("resnet50")


def test_existing_path_wins_over_sample_name(mlp_path, tmp_path, monkeypatch):
    (tmp_path / "mlp").mkdir()
    shutil.copy(mlp_path, tmp_path / "mlp" / "model.onnx")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("mlp") == os.path.join("mlp", "model.onnx")


def test_unknown_name_lists_the_samples():
    with pytest.raises(ValueError, match="model path must exist: given no_such_model.*resnet_tiny"):
        resolve_model("no_such_model")
    with pytest.raises(ValueError, match="hf:"):
        resolve_model("hf:org/model")


def test_benchmark_and_analyze_share_the_resolver(monkeypatch):
    """A zoo stub reaches both tools through resolve_model (mapped to the tiny MLP here)."""
    import deepsparse_lite.models as models
    from deepsparse_lite.analyze import analyze
    from deepsparse_lite.benchmark import benchmark_model

    monkeypatch.setattr(models, "zoo_stub_to_sample", lambda stub: "mlp")
    stub = "zoo:some/mlp-stub"
    out = benchmark_model(stub, time=1, warmup_time=0, quiet=True)
    assert out["orig_model_path"] == stub and out["model_path"] == sample_model_path("mlp")
    rep = analyze(stub, iterations=1, warmup=0)
    assert rep["orig_model_path"] == stub and rep["model_path"] == sample_model_path("mlp")
    out = benchmark_model("mlp", time=1, warmup_time=0, quiet=True)
    assert out["orig_model_path"] == "mlp" and out["model_path"] == sample_model_path("mlp")


def test_package_level_benchmark_model():
    import deepsparse_lite
    from deepsparse_lite.benchmark.benchmark_model import benchmark_model

    assert deepsparse_lite.benchmark_model is benchmark_model
