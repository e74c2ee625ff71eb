"""Sample models (deepsparse_lite.models): structure, determinism, cache, and engine agreement.

Tiny variants run everywhere; the full-size resnet50 / mobilenet_v2 / bert_base tests are named
``test_full_size_*`` (deselect with ``-k "not full_size"`` when iterating) and each builds its
model once per module. onnxruntime is the oracle.
"""
import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import onnx
import pytest

from deepsparse_lite.models import (build_model, list_models, model_config, sample_inputs,
                                    sample_model_path, zoo_stub_to_sample)
from tests.helpers import available_isas
from tests.tools.model_compare import assert_close, compile_or_skip, engine_run, ort_run

TINY = ["resnet_tiny", "mobilenet_v2_tiny", "bert_tiny", "mlp"]
FULL = ["resnet50", "mobilenet_v2", "bert_base"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# fp32 tolerance vs onnxruntime: both sum in different orders (packed/blocked GEMM vs MLAS), and
# through ~50 layers that drifts by a few 1e-6 relative; 1e-4 leaves room without hiding bugs
# (a wrong kernel is off by O(1)). atol is scaled by the output's max magnitude.
RTOL, ATOL = 1e-4, 1e-4


def _feeds(model: onnx.ModelProto, arrays):
    return {i.name: a for i, a in zip(model.graph.input, arrays)}


def _params(model: onnx.ModelProto) -> int:
    """Learnable parameter count (weights and biases; BN running stats are buffers)."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.name.endswith((".weight", ".bias")))


def _sanity(outs, what):
    for o in outs:
        assert np.isfinite(o).all(), f"{what}: non-finite output"
        assert float(o.std()) > 1e-3, f"{what}: output is (nearly) constant"


# ----------------------------------------------------------------------- API
def test_list_models_has_required_names():
    names = list_models()
    for n in TINY + FULL:
        assert n in names
    assert names == sorted(names)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown sample model 'resnet51'.*resnet50"):
        build_model("resnet51")


@pytest.mark.parametrize("name", TINY)
def test_build_is_deterministic_and_seeded(name):
    a = build_model(name).SerializeToString()
    assert a == build_model(name).SerializeToString()
    assert a != build_model(name, seed=1).SerializeToString()


def test_batch_size_fixed_and_symbolic():
    m = build_model("bert_tiny", batch_size=3)
    for i in m.graph.input:
        assert [d.dim_value for d in i.type.tensor_type.shape.dim] == [3, 16]
    m = build_model("resnet_tiny", batch_size=None)
    d0 = m.graph.input[0].type.tensor_type.shape.dim[0]
    assert d0.dim_param == "batch" and not d0.HasField("dim_value")
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_config_overrides_reach_the_builder():
    m = build_model("bert_tiny", seq_len=8, opset=13)
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 8]
    assert m.opset_import[0].version == 13
    ops = Counter(n.op_type for n in m.graph.node)
    assert "LayerNormalization" not in ops and ops["ReduceMean"] == 2 * 5  # decomposed LN
    assert model_config("resnet_tiny", image_size=32)["image_size"] == 32
    assert [x.shape for x in sample_inputs("resnet_tiny", 2, image_size=32)] == [(2, 3, 32, 32)]


def test_model_is_marked_synthetic():
    m = build_model("mlp")
    props = {p.key: p.value for p in m.metadata_props}
    assert props["synthetic_weights"] == "true" and props["sample_model"] == "mlp"
    assert "synthetic" in m.doc_string.lower() or "random" in m.doc_string.lower()


def test_build_model_writes_path(tmp_path):
    p = tmp_path / "sub" / "m.onnx"
    m = build_model("mlp", path=str(p))
    assert onnx.load(str(p)).SerializeToString() == m.SerializeToString()
    assert [f.name for f in p.parent.iterdir()] == ["m.onnx"]       # no temp file left


# ----------------------------------------------------------------------- cache
def test_sample_model_path_builds_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("DSL_CACHE_DIR", str(tmp_path))
    path = sample_model_path("bert_tiny")
    assert path == os.path.join(str(tmp_path), "models", "bert_tiny", "model.onnx")
    assert onnx.load(path).SerializeToString() == build_model("bert_tiny").SerializeToString()
    mtime = os.stat(path).st_mtime_ns
    assert sample_model_path("bert_tiny") == path
    assert os.stat(path).st_mtime_ns == mtime                      # not rebuilt
    # other batch sizes get their own file
    p4 = sample_model_path("bert_tiny", batch_size=4)
    assert p4.endswith("model-b4.onnx")
    assert onnx.load(p4).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    pd = sample_model_path("bert_tiny", batch_size=None)
    assert pd.endswith("model-dynamic.onnx")


def test_sample_model_path_rebuilds_stale_or_corrupt_stamp(tmp_path, monkeypatch):
    monkeypatch.setenv("DSL_CACHE_DIR", str(tmp_path))
    path = sample_model_path("mlp")
    stamp = path[:-5] + ".json"
    with open(stamp) as f:
        data = json.load(f)
    data["builder_version"] = -1
    with open(stamp, "w") as f:
        json.dump(data, f)
    with open(path, "wb") as f:
        f.write(b"garbage")
    assert sample_model_path("mlp") == path
    onnx.checker.check_model(onnx.load(path))
    with open(stamp, "w") as f:
        f.write("{not json")
    assert sample_model_path("mlp") == path
    onnx.checker.check_model(onnx.load(path))


def test_sample_model_path_concurrent_builders(tmp_path):
    """Two processes building the same model at once both get a complete, valid file."""
    code = ("import sys; from deepsparse_lite.models import sample_model_path; "
            "print(sample_model_path('resnet_tiny'))")
    env = dict(os.environ, DSL_CACHE_DIR=str(tmp_path), PYTHONPATH=ROOT)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    path = paths.pop()
    onnx.checker.check_model(onnx.load(path))
    left = sorted(os.listdir(os.path.dirname(path)))
    assert left == ["model.json", "model.onnx"], left


# ----------------------------------------------------------------------- pruned variants
def _weights(model):
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_sparsity_zero_is_the_dense_model():
    assert (build_model("resnet_tiny", sparsity=0.0).SerializeToString()
            == build_model("resnet_tiny").SerializeToString())
    with pytest.raises(ValueError, match="sparsity"):
        build_model("mlp", sparsity=1.0)


def test_pruned_resnet_layers_hit_the_target_and_depthwise_stays_dense():
    w = _weights(build_model("resnet_tiny", sparsity=0.9))
    conv = w["layer2.0.conv2.weight"]                    # fan-in 16*9 >= 16: pruned
    assert abs(float((conv == 0).mean()) - 0.9) < 0.01
    mw = _weights(build_model("mobilenet_v2_tiny", sparsity=0.9))
    dw = [a for n, a in mw.items() if a.ndim == 4 and a.shape[1] == 1]
    assert dw and all((a != 0).all() for a in dw)        # depthwise convs are left dense


def test_block_sparsity_groups_four_along_the_input_axis():
    w = _weights(build_model("bert_tiny", sparsity=0.75, sparsity_block=4))
    q = w["bert.encoder.layer.0.attention.self.query.weight"]     # MatMul weight [in, out]
    blocks = (q.T.reshape(q.shape[1], -1, 4) != 0)
    assert (blocks.all(axis=2) | ~blocks.any(axis=2)).all()       # all-zero or all-nonzero
    assert abs(float((q == 0).mean()) - 0.75) < 0.01
    g = _weights(build_model("mlp", sparsity=0.5, sparsity_block=4))["fc1.weight"]  # [out, in]
    gb = g.reshape(g.shape[0], -1, 4) != 0
    assert (gb.all(axis=2) | ~gb.any(axis=2)).all()
    assert (w["bert.embeddings.word_embeddings.weight"] != 0).all()   # embeddings untouched


@pytest.mark.parametrize("name,sparsity,block", [("resnet_tiny", 0.9, 1),
                                                 ("bert_tiny", 0.8, 4), ("mlp", 0.95, 1)])
def test_pruned_model_matches_onnxruntime(name, sparsity, block):
    m = build_model(name, batch_size=2, sparsity=sparsity, sparsity_block=block)
    _check_model(name, m, batch=2)


def test_sample_model_path_pruned_names(tmp_path):
    p = sample_model_path("mlp", directory=str(tmp_path), sparsity=0.9)
    assert os.path.basename(p) == "model-s90.onnx"
    p4 = sample_model_path("mlp", batch_size=4, directory=str(tmp_path), sparsity=0.8,
                           sparsity_block=4)
    assert os.path.basename(p4) == "model-b4-s80b4.onnx"
    w = _weights(onnx.load(p))["fc1.weight"]
    assert abs(float((w == 0).mean()) - 0.9) < 0.01


# ----------------------------------------------------------------------- zoo stubs
@pytest.mark.parametrize("stub,expected", [
    ("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none",
     "resnet50-pruned95_quant"),
    ("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none", "resnet50"),
    ("zoo:resnet50_v1-imagenet-pruned95", "resnet50-pruned95"),
    ("zoo:cv/classification/mobilenet_v2-1.0/pytorch/sparseml/imagenet/pruned-moderate",
     "mobilenet_v2-pruned90"),
    ("zoo:mobilenet_v2-1.0-imagenet-base", "mobilenet_v2"),
    ("zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none",
     "bert_base-pruned90_quant"),
    ("zoo:nlp/question_answering/bert-base/pytorch/huggingface/squad/pruned95-none",
     "bert_base-pruned95"),
    ("zoo:obert-base-sst2_wikipedia_bookcorpus-pruned90_quantized", "bert_base-pruned90_quant"),
    ("zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/base_quant-none",
     "bert_base-quant"),
    ("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned80-none",
     "resnet50-pruned80"),
    ("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned85_quant-none-vnni",
     "resnet50-pruned90_quant"),                        # nearest level, ties to the sparser
    ("zoo:cv/classification/mobilenet_v2-1.0/pytorch/sparseml/imagenet/pruned80_quant-none",
     "mobilenet_v2-pruned80_quant"),
    ("zoo:bert-large-mnli_wikipedia_bookcorpus-pruned80.4block_quantized", None),
    ("zoo:nlp/question_answering/distilbert-none/pytorch/huggingface/squad/base-none", None),
    ("zoo:cv/classification/resnet_v1-101/pytorch/sparseml/imagenet/base-none", None),
    ("zoo:cv/detection/yolov5-s/pytorch/ultralytics/coco/pruned-aggressive_96", None),
    ("/models/resnet50.onnx", None),
    ("resnet50", None),
])
def test_zoo_stub_to_sample(stub, expected):
    assert zoo_stub_to_sample(stub) == expected


# ----------------------------------------------------------------------- structure
def test_resnet50_structure_matches_torchvision():
    m = build_model("resnet50")
    assert _params(m) == 25_557_032                    # torchvision resnet50
    ops = Counter(n.op_type for n in m.graph.node)
    assert ops == Counter({"Conv": 53, "BatchNormalization": 53, "Relu": 49, "Add": 16,
                           "MaxPool": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1})
    conv = {n.name: n for n in m.graph.node if n.op_type == "Conv"}
    strides = lambda n: [a.ints for a in n.attribute if a.name == "strides"][0]  # noqa: E731
    for stage in (2, 3, 4):                            # v1.5: the stride is on the 3x3 conv
        assert list(strides(conv[f"layer{stage}.0.conv1"])) == [1, 1]
        assert list(strides(conv[f"layer{stage}.0.conv2"])) == [2, 2]
        assert list(strides(conv[f"layer{stage}.0.downsample.0"])) == [2, 2]
    io = [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim])
          for v in list(m.graph.input) + list(m.graph.output)]
    assert io == [("input", [1, 3, 224, 224]), ("output", [1, 1000])]
    assert 13 <= m.opset_import[0].version <= 17


def test_mobilenet_v2_structure_matches_torchvision():
    m = build_model("mobilenet_v2")
    assert _params(m) == 3_504_872                     # torchvision mobilenet_v2
    ops = Counter(n.op_type for n in m.graph.node)
    assert ops == Counter({"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10,
                           "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1})
    depthwise = [n for n in m.graph.node if n.op_type == "Conv"
                 and [a.i for a in n.attribute if a.name == "group"][0] > 1]
    assert len(depthwise) == 17


def test_bert_base_structure_matches_hf():
    m = build_model("bert_base")
    assert _params(m) == 109_483_778                   # BertForSequenceClassification base
    ops = Counter(n.op_type for n in m.graph.node)
    assert ops["LayerNormalization"] == 25 and ops["Softmax"] == 12 and ops["Erf"] == 12
    assert ops["MatMul"] == 12 * 8 and ops["Gemm"] == 2
    io = [(v.name, v.type.tensor_type.elem_type,
           [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in m.graph.input]
    assert io == [(n, onnx.TensorProto.INT64, [1, 128])
                  for n in ("input_ids", "attention_mask", "token_type_ids")]
    assert [o.name for o in m.graph.output] == ["logits"]
    assert m.opset_import[0].version == 17


# ----------------------------------------------------------------------- numerics
def _check_model(name, model, batch, threads=(1, 2), isa=None):
    onnx.checker.check_model(model)
    arrays = sample_inputs(name, batch, seed=3)
    feeds = _feeds(model, arrays)
    want = ort_run(model, feeds)
    _sanity(want, f"{name} (onnxruntime)")
    if batch > 1:       # different inputs must give different outputs
        assert float(np.abs(want[0][0] - want[0][1]).max()) > 1e-4
    plan = compile_or_skip(model, max_threads=max(threads), isa=isa)
    names = [o.name for o in model.graph.output]
    for nt in threads:
        got = engine_run(plan, feeds, nt)
        assert_close(got, want, names, RTOL, ATOL, f"{name} threads={nt} isa={isa}")


@pytest.mark.parametrize("isa", available_isas())
@pytest.mark.parametrize("name", TINY)
def test_tiny_model_matches_onnxruntime(name, isa):
    """Every ISA level this CPU runs (the generic C path included), 1 and 2 threads."""
    _check_model(name, build_model(name, batch_size=2), batch=2, isa=isa)


@pytest.mark.parametrize("name", ["resnet_tiny", "bert_tiny"])
@pytest.mark.parametrize("declared", [1, None])
def test_batch_size_override_matches_onnxruntime(name, declared):
    """A batch-1 (or symbolic-batch) file compiled with batch_size=3 behaves like a batch-3
    model: the override reaches every shape, including Reshape targets and masks."""
    feeds_list = sample_inputs(name, 3, seed=11)
    ref_model = build_model(name, batch_size=3)
    want = ort_run(ref_model, _feeds(ref_model, feeds_list))
    model = build_model(name, batch_size=declared)
    plan = compile_or_skip(model, batch_size=3)
    got = engine_run(plan, _feeds(model, feeds_list), 2)
    assert_close(got, want, [o.name for o in model.graph.output], RTOL, ATOL,
                 f"{name} declared batch {declared} compiled at 3")


def test_bert_tiny_opset13_decomposed_layernorm_matches_onnxruntime():
    m = build_model("bert_tiny", batch_size=2, opset=13)
    feeds = _feeds(m, sample_inputs("bert_tiny", 2, seed=5))
    want = ort_run(m, feeds)
    np.testing.assert_allclose(want[0], ort_run(build_model("bert_tiny", batch_size=2), feeds)[0],
                               rtol=1e-5, atol=1e-5)
    plan = compile_or_skip(m)
    assert_close(engine_run(plan, feeds, 2), want, ["logits"], RTOL, ATOL, "bert_tiny opset 13")


def test_bert_padding_changes_logits_only_through_the_mask():
    """Token ids under a zero mask must not matter (checks the extended-mask path)."""
    m = build_model("bert_tiny", batch_size=2)
    ids, mask, types = sample_inputs("bert_tiny", 2, seed=7)
    mask[1, 10:] = 0
    ids2 = ids.copy()
    ids2[1, 10:] = (ids2[1, 10:] + 17) % 1000
    a = ort_run(m, _feeds(m, [ids, mask, types]))[0]
    b = ort_run(m, _feeds(m, [ids2, mask, types]))[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    plan = compile_or_skip(m)
    got = engine_run(plan, _feeds(m, [ids2, mask, types]), 2)[0]
    np.testing.assert_allclose(got, a, rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def full_models():
    cache = {}

    def get(name):
        if name not in cache:
            cache.clear()            # keep only one big model alive at a time
            cache[name] = build_model(name, batch_size=1)
        return cache[name]
    return get


@pytest.mark.parametrize("name", FULL)
def test_full_size_model_matches_onnxruntime(name, full_models):
    """Full-size models (slower: a few seconds each): checker, sanity, engine vs onnxruntime
    with 2 threads only to keep the file's run time down."""
    _check_model(name, full_models(name), batch=1, threads=(2,))
