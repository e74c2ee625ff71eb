"""Engine on models that need value-specialised plans (parameter inputs, symbolic dims)."""
import threading

import numpy as np
import onnx
import pytest
from onnx import helper

from deepsparse_lite import Engine, compiler
from deepsparse_lite.engine import DYNAMIC_DIM

F, I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def _save(tmp_path, nodes, inputs, outputs, name="m.onnx"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, 0, None) for n in outputs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    path = str(tmp_path / name)
    onnx.save(m, path)
    return path


@pytest.fixture()
def axes_model(tmp_path):
    """y = ReduceSum(x, axes) with axes a graph input."""
    return _save(tmp_path, [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
                 [("x", F, [1, 3, 4]), ("axes", I64, [1])], ["y"])


@pytest.fixture()
def dyn_model(tmp_path):
    """x: [N, S] -> y = Relu(x) * 2, with both dims symbolic."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "r"], ["y"])]
    return _save(tmp_path, nodes, [("x", F, ["N", "S"])], ["y"], "dyn.onnx")


def test_parameter_input_values_choose_the_plan(axes_model):
    with Engine(axes_model, batch_size=1, num_cores=1) as eng:
        assert eng.parameter_inputs == ["axes"]
        assert eng.input_shapes == [(1, 3, 4), (1,)] and eng.output_shapes == [None]
        assert eng.fraction_of_supported_ops == 1.0
        x = np.random.rand(1, 3, 4).astype(np.float32)
        for axes in (2, 1, -1, 2):
            (y,) = eng.run([x, np.array([axes], np.int64)])
            np.testing.assert_allclose(y, x.sum(axis=axes, keepdims=True), rtol=1e-5)
        assert eng._model.stats["misses"] == 3 and eng._model.stats["hits"] == 1
        assert eng.arena_bytes >= 0 and eng.plan is not None


def test_parameter_inputs_skip_the_batch_and_dims_checks_but_not_dtype_or_rank(axes_model):
    eng = Engine(axes_model, batch_size=1, num_cores=1)
    x = np.random.rand(1, 3, 4).astype(np.float32)
    # the batch check (dim 0 == batch_size) does not apply to a parameter: [1, 2] is fine
    (y,) = eng.run([x, np.array([1, 2], np.int64)])
    np.testing.assert_allclose(y, x.sum(axis=(1, 2), keepdims=True), rtol=1e-5)
    with pytest.raises(RuntimeError, match=r"Unexpected input data type.*'axes'.*tensor\(int32\)"):
        eng.run([x, np.array([1], np.int32)])
    with pytest.raises(RuntimeError, match="Invalid rank for input: axes Got: 2 Expected: 1"):
        eng.run([x, np.array([[1]], np.int64)])
    with pytest.raises(RuntimeError, match=r"(?s)invalid dimensions for input: x.*index: 2 Got: 5 Expected: 4"):
        eng.run([np.random.rand(1, 3, 5).astype(np.float32), np.array([1], np.int64)])
    with pytest.raises(ValueError, match="batch size of 2"):
        eng.run([np.random.rand(2, 3, 4).astype(np.float32), np.array([1], np.int64)])
    with pytest.raises(compiler.UnsupportedModelError, match="ReduceSum"):
        eng.run([x, np.array([5], np.int64)])  # out of range: refused, engine keeps working
    (y,) = eng.run([x, np.array([0], np.int64)])
    np.testing.assert_allclose(y, x.sum(axis=0, keepdims=True), rtol=1e-5)
    eng.close()


def test_batched_run_passes_parameter_inputs_whole(tmp_path):
    path = _save(tmp_path, [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
                 [("x", F, ["N", 3, 4]), ("axes", I64, [1])], ["y"], "b.onnx")
    eng = Engine(path, batch_size=2, num_cores=1)
    x = np.random.rand(5, 3, 4).astype(np.float32)
    (y,) = eng.batched_run([x, np.array([2], np.int64)])
    np.testing.assert_allclose(y, x.sum(axis=2, keepdims=True), rtol=1e-5)
    eng.close()


def test_symbolic_dims_run_any_shape(dyn_model):
    eng = Engine(dyn_model, batch_size=None, num_cores=1)
    assert eng.input_shapes == [(DYNAMIC_DIM, DYNAMIC_DIM)]
    assert [a.shape for a in eng.generate_random_inputs()] == [(1, 1)]
    for shape in ((1, 5), (3, 2), (1, 5), (2, 7)):
        x = np.random.randn(*shape).astype(np.float32)
        (y,) = eng.run([x])
        np.testing.assert_allclose(y, np.maximum(x, 0) * 2, rtol=1e-6)
    assert eng._model.stats["misses"] == 3
    eng.close()
    # batch_size fixes dim 0 (and its check); S stays symbolic
    eng = Engine(dyn_model, batch_size=2, num_cores=1)
    assert eng.input_shapes == [(2, DYNAMIC_DIM)]
    x = np.random.randn(2, 9).astype(np.float32)
    np.testing.assert_allclose(eng.run([x])[0], np.maximum(x, 0) * 2, rtol=1e-6)
    with pytest.raises(ValueError, match="batch size of 3"):
        eng.run([np.zeros((3, 9), np.float32)])
    eng.close()


def test_streams_run_plans_of_different_arena_sizes(dyn_model):
    """Concurrent callers on 2 streams alternate a small and a large plan: every stream's
    arena must fit whichever plan it runs (it grows when a larger plan comes)."""
    eng = Engine(dyn_model, batch_size=None, num_cores=2, scheduler="multi_stream", num_streams=2)
    shapes = [(1, 4), (64, 512), (2, 3), (32, 1024)]
    errors = []

    def caller(seed):
        rng = np.random.default_rng(seed)
        try:
            for k in range(12):
                x = rng.standard_normal(shapes[(k + seed) % len(shapes)]).astype(np.float32)
                (y,) = eng.run([x])
                np.testing.assert_allclose(y, np.maximum(x, 0) * 2, rtol=1e-6)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=caller, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    sizes = sorted(p.arena_bytes for p in eng._model.cached_plans())
    assert sizes[0] < sizes[-1]
    eng.close()


def test_compiler_run_refuses_an_arena_too_small_for_the_plan(tmp_path, dyn_model, monkeypatch):
    monkeypatch.setenv("DSL_EWCHAIN", "0")  # keep the element-wise intermediate in the arena
    sm = compiler.SpecializedModel(dyn_model)
    xs, xb = np.zeros((2, 4), np.float32), np.zeros((64, 64), np.float32)
    small, big = sm.plan_for([xs]), sm.plan_for([xb])
    assert small.arena_bytes < big.arena_bytes
    with pytest.raises(ValueError, match="too small"):
        compiler.run(big, [xb], compiler.allocate_outputs(big), compiler.new_arena(small), 1)
