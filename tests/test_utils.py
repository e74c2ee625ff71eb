"""deepsparse_lite.utils: model_to_path, ONNX helpers, overrides that never touch the file,
and the array helpers, against DeepSparse's documented semantics and messages."""
import hashlib
import logging
import os
import pathlib
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deepsparse_lite import utils
from deepsparse_lite.utils import data as udata


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.fixture
def two_in(tmp_path):
    """x: float [N, 8] (symbolic batch), ids: int64 [1, 'S'], W listed as an input too (old
    exporters do that) so it must not count as an external input."""
    w = numpy_helper.from_array(np.ones((8,), np.float32), "W")
    g = helper.make_graph(
        [helper.make_node("Add", ["x", "W"], ["y"]), helper.make_node("Identity", ["ids"], ["z"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "S"]),
         helper.make_tensor_value_info("W", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8]),
         helper.make_tensor_value_info("z", TensorProto.INT64, [1, "S"])],
        [w],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "two_in.onnx"
    onnx.save(model, str(path))
    return str(path)


def _dims(vi):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]


# ----------------------------------------------------------------------------- model_to_path
@pytest.mark.parametrize("bad", [None, "", 0, []])
def test_model_to_path_falsy(bad):
    with pytest.raises(ValueError, match=r"^model must be a path, sparsezoo.Model, or sparsezoo.File$"):
        utils.model_to_path(bad)


def test_model_to_path_unsupported_type():
    with pytest.raises(ValueError, match=r"^unsupported type for model: <class 'int'>$"):
        utils.model_to_path(3)
    with pytest.raises(ValueError, match="unsupported type for model: <class 'numpy.ndarray'>"):
        utils.model_to_path(np.zeros(3))


def test_model_to_path_files_and_folders(tmp_path, two_in):
    assert utils.model_to_path(two_in) == two_in  # returned as given
    assert utils.model_to_path(pathlib.Path(two_in)) == two_in
    missing = str(tmp_path / "nope.onnx")
    with pytest.raises(ValueError, match=r"^model path must exist: given " + missing.replace("\\", "\\\\")):
        utils.model_to_path(missing)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ValueError, match="must contain model.onnx"):
        utils.model_to_path(str(folder))  # DeepSparse returns folder/model.onnx unchecked
    (folder / "model.onnx").write_bytes(open(two_in, "rb").read())
    assert utils.model_to_path(str(folder)) == str(folder / "model.onnx")
    zoo_layout = tmp_path / "zoo" / "deployment"
    zoo_layout.mkdir(parents=True)
    (zoo_layout / "model.onnx").write_bytes(b"x")
    assert utils.model_to_path(str(tmp_path / "zoo")) == str(zoo_layout / "model.onnx")


def test_model_to_path_hf_stub_is_refused():
    with pytest.raises(ValueError, match="no network"):
        utils.model_to_path("hf:neuralmagic/some-model")


def _fake_models(monkeypatch, name, path):
    mod = types.ModuleType("deepsparse_lite.models")
    calls = []
    mod.zoo_stub_to_sample = lambda stub: (calls.append(stub), name)[1]
    mod.sample_model_path = lambda n: (calls.append(n), path)[1]
    mod.list_models = lambda: ["resnet50", "bert_base"]
    monkeypatch.setitem(sys.modules, "deepsparse_lite.models", mod)
    return calls


def test_zoo_stub_resolves_to_sample(monkeypatch, two_in):
    stub = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95-none"
    calls = _fake_models(monkeypatch, "resnet50", two_in)
    assert utils.model_to_path(stub) == two_in
    assert calls == [stub, "resnet50"]


def test_unknown_zoo_stub_explains(monkeypatch):
    _fake_models(monkeypatch, None, None)
    with pytest.raises(ValueError, match="no network") as exc:
        utils.model_to_path("zoo:nlp/some/unknown-model")
    assert "sample_model_path" in str(exc.value) and "resnet50" in str(exc.value)


def test_zoo_stub_without_models_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepsparse_lite.models", None)  # import -> ImportError
    with pytest.raises(ValueError, match="not available"):
        utils.model_to_path("zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/base-none")


# ----------------------------------------------------------------------------- ONNX helpers
def test_external_inputs_and_outputs(two_in):
    assert utils.get_input_names(two_in) == ["x", "ids"]
    assert utils.get_output_names(two_in) == ["y", "z"]
    proto = onnx.load(two_in)
    assert utils.get_input_names(proto) == ["x", "ids"]
    assert [o.name for o in utils.get_external_outputs(proto)] == ["y", "z"]
    assert utils.MODEL_ONNX_NAME == "model.onnx"


def test_generate_random_inputs(two_in, caplog):
    with caplog.at_level(logging.INFO, logger="deepsparse_lite"):
        x, ids = utils.generate_random_inputs(two_in)
    assert x.shape == (1, 8) and x.dtype == np.float32  # symbolic dims -> 1
    assert ((x >= 0) & (x < 1)).all() and x.std() > 0
    assert ids.shape == (1, 1) and ids.dtype == np.int64
    assert not ids.any()  # DeepSparse's rand().astype(int): integer inputs are all zeros
    assert "Generating input 'x', type = float32, shape = [1, 8]" in caplog.text
    assert "Generating input 'ids', type = int64, shape = [1, 1]" in caplog.text
    x, ids = utils.generate_random_inputs(two_in, batch_size=3)
    assert x.shape == (3, 8) and ids.shape == (3, 1)  # batch overrides dim 0 of every input


def test_override_batch_size_uses_a_temp_copy(two_in):
    before = _md5(two_in)
    with utils.override_onnx_batch_size(two_in, 4) as path:
        assert path != two_in and os.path.exists(path)
        ins = utils.get_external_inputs(path)
        assert [_dims(i) for i in ins] == [[4, 8], [4, "S"]]
        assert not onnx.load(path).graph.value_info  # stale shapes dropped
    assert not os.path.exists(path)
    assert _md5(two_in) == before
    with pytest.raises(ValueError, match="never modifies"):
        with utils.override_onnx_batch_size(two_in, 4, inplace=True):
            pass
    assert _md5(two_in) == before


@pytest.mark.parametrize("shapes,expect", [
    ("[2,8],[1,5]", [[2, 8], [1, 5]]),
    ([[2, 8], [1, 5]], [[2, 8], [1, 5]]),
    ([3, 8], [[3, 8], [3, 8]]),  # flat list wrapped, then one shape duplicated to every input
    ([[3, 8]], [[3, 8], [3, 8]]),
])
def test_override_input_shapes(two_in, shapes, expect):
    before = _md5(two_in)
    original = [list(s) for s in shapes] if isinstance(shapes, list) and shapes and isinstance(shapes[0], list) else None
    with utils.override_onnx_input_shapes(two_in, shapes) as path:
        assert path != two_in
        assert [_dims(i) for i in utils.get_external_inputs(path)] == expect
        # the copy is a complete, valid model
        onnx.checker.check_model(onnx.load(path))
    assert not os.path.exists(path)
    assert _md5(two_in) == before
    if original is not None:
        assert shapes == original  # the caller's list is not extended in place


def test_override_input_shapes_none_yields_original(two_in):
    with utils.override_onnx_input_shapes(two_in, None) as path:
        assert path == two_in
    with utils.override_onnx_input_shapes(two_in, "") as path:
        assert path == two_in


def test_override_input_shapes_errors(two_in):
    before = _md5(two_in)
    with pytest.raises(AssertionError, match=r"Mismatch of number of model inputs \(2\) and override shapes \(3\)"):
        with utils.override_onnx_input_shapes(two_in, [[1, 8], [1, 2], [1, 2]]):
            pass
    with pytest.raises(ValueError, match=r"Input 'x' shape doesn't match shape override: \['N', 8\] vs \[1, 8, 1\]"):
        with utils.override_onnx_input_shapes(two_in, [[1, 8, 1], [1, 2]]):
            pass
    with pytest.raises(ValueError, match="never modifies"):
        with utils.override_onnx_input_shapes(two_in, [[1, 8], [1, 2]], inplace=True):
            pass
    assert _md5(two_in) == before


# ----------------------------------------------------------------------------- data helpers
def test_parse_input_shapes():
    assert utils.parse_input_shapes("[1,2,3],[4,5,6]") == [[1, 2, 3], [4, 5, 6]]
    assert utils.parse_input_shapes("[[1,2]]") == [[1, 2]]
    assert utils.parse_input_shapes("[1, 3, 224, 224]") == [[1, 3, 224, 224]]
    assert utils.parse_input_shapes("") is None
    assert utils.parse_input_shapes(None) is None
    with pytest.raises(Exception, match=r"^Can't parse input shapes parameter: 1,2$"):
        utils.parse_input_shapes("1,2")
    with pytest.raises(ValueError, match="Can't parse"):
        utils.parse_input_shapes("[a,b]")


def test_split_and_join_with_edge_padding():
    a = np.arange(5 * 3, dtype=np.float32).reshape(5, 3)
    b = np.arange(5, dtype=np.int64)
    batches, total = utils.split_engine_inputs([a, b], 2)
    assert total == 5 and len(batches) == 3
    assert [x.shape for x in batches[-1]] == [(2, 3), (2,)]
    np.testing.assert_array_equal(batches[-1][0], a[[4, 4]])  # edge padding repeats the last row
    np.testing.assert_array_equal(batches[-1][1], b[[4, 4]])
    joined = utils.join_engine_outputs([[x * 2, y] for x, y in batches], total)
    np.testing.assert_array_equal(joined[0], a * 2)
    np.testing.assert_array_equal(joined[1], b)
    exact, total = utils.split_engine_inputs([a], 5)
    assert len(exact) == 1 and exact[0][0].shape == (5, 3)
    with pytest.raises(ValueError, match="^Not all inputs have matching batch size$"):
        utils.split_engine_inputs([a, b[:4]], 2)


def test_arrays_bytes_roundtrip():
    arrays = [np.random.rand(2, 3).astype(np.float32), np.arange(7, dtype=np.int64),
              np.array(3.5), np.zeros((0, 4), np.uint8), np.array([[True, False]])]
    raw = utils.arrays_to_bytes(arrays)
    assert raw.startswith(b"float32|2,3|")
    back = utils.bytes_to_arrays(raw)
    assert len(back) == len(arrays)
    for x, y in zip(arrays, back):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
        assert y.flags.writeable


def test_verify_outputs(caplog):
    a = np.ones((2, 2), np.float32)
    assert utils.verify_outputs([a], [a]) == [0.0]
    with caplog.at_level(logging.ERROR, logger="deepsparse_lite"):
        diffs = utils.verify_outputs([a + 0.1], [a])
    assert diffs[0] == pytest.approx(0.1, rel=1e-5)
    assert "Output data doesn't match" in caplog.text
    with pytest.raises(Exception, match="Number of outputs doesn't match, 1 != 2"):
        utils.verify_outputs([a], [a, a])
    with pytest.raises(Exception, match="Output shapes don't match"):
        utils.verify_outputs([a], [a[:1]])


def test_softmax_and_log_softmax():
    x = np.random.RandomState(0).randn(3, 5).astype(np.float64) * 5
    for axis in (0, 1, -1):
        e = np.exp(x)
        ref = e / e.sum(axis=axis, keepdims=True)
        np.testing.assert_allclose(utils.numpy_softmax(x, axis=axis), ref, rtol=1e-12)
        np.testing.assert_allclose(utils.numpy_log_softmax(x, axis=axis), np.log(ref), rtol=1e-10)
    big = np.array([1000.0, 1001.0, 999.0])  # stable: no overflow to nan
    s = utils.numpy_softmax(big)
    assert np.isfinite(s).all() and s.sum() == pytest.approx(1.0)
    assert np.isfinite(utils.numpy_log_softmax(big)).all()
    assert udata.numpy_softmax(np.zeros(4)).tolist() == [0.25] * 4


def test_prep_for_serialization():
    data = {"a": np.arange(3), "b": [np.zeros(2), 1], "c": "s"}
    assert utils.prep_for_serialization(data) == {"a": [0, 1, 2], "b": [[0.0, 0.0], 1], "c": "s"}
