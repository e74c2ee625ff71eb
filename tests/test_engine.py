"""Engine API: construction, properties, validation messages, run variants, bad files."""
import hashlib
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite import Engine, Scheduler, compile_model


def _two_input_model(path, batch_dim=1):
    """x:[1,8], z:[1,4] -> y = Transpose(Transpose(x)) (a real step), y2 = z reshaped."""
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [batch_dim, 8])
    z = helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, [batch_dim, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    y2 = helper.make_tensor_value_info("y2", onnx.TensorProto.FLOAT, None)
    nodes = [helper.make_node("Flatten", ["x"], ["xf"], axis=1),
             helper.make_node("Identity", ["xf"], ["y"]),
             helper.make_node("Reshape", ["z", "shp"], ["y2"])]
    shp = numpy_helper.from_array(np.array([0, 2, 2], np.int64), "shp")
    model = helper.make_model(helper.make_graph(nodes, "two_in", [x, z], [y, y2], [shp]),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


@pytest.fixture()
def two_in(tmp_path):
    return _two_input_model(tmp_path / "two_in.onnx")


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def test_properties_and_run(two_in):
    eng = Engine(two_in, batch_size=1, num_cores=1)
    assert eng.model_path == two_in
    assert eng.batch_size == 1 and eng.num_cores == 1 and eng.num_streams == 1
    assert eng.scheduler == Scheduler.default
    assert eng.input_names == ["x", "z"] and eng.output_names == ["y", "y2"]
    assert eng.input_shapes == [(1, 8), (1, 4)] and eng.output_shapes == [(1, 8), (1, 2, 2)]
    assert eng.fraction_of_supported_ops == 1.0
    assert eng.cpu_avx_type in ("avx512", "avx2", "generic")
    x, z = np.random.rand(1, 8).astype(np.float32), np.random.rand(1, 4).astype(np.float32)
    y, y2 = eng.run([x, z])
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(y2, z.reshape(1, 2, 2))
    for o in (y, y2):
        assert o.flags["C_CONTIGUOUS"] and o.flags["WRITEABLE"]
    y_again, _ = eng([x, z])
    assert not np.shares_memory(y, y_again)
    assert set(eng.mapped_run([x, z])) == {"y", "y2"}
    outs, secs = eng.timed_run([x, z])
    assert secs >= 0 and len(outs) == 2
    assert "onnx_file_path" in repr(eng) and "Engine" in repr(eng)
    assert str(eng).startswith("deepsparse_lite.engine.Engine:\n\tonnx_file_path: ")
    assert "\tscheduler: Scheduler.default" in str(eng)


def test_batch_override_and_file_untouched(two_in):
    before = _md5(two_in)
    eng = compile_model(two_in, batch_size=3)
    assert eng.input_shapes == [(3, 8), (3, 4)]
    eng2 = Engine(two_in, batch_size=1, input_shapes=[[2, 8], [2, 4]])
    assert eng2.input_shapes == [(1, 8), (1, 4)]  # batch_size wins over input_shapes[...][0]
    eng3 = Engine(two_in, batch_size=None, input_shapes=[[5, 8], [5, 4]])
    assert eng3.batch_size is None and eng3.input_shapes == [(5, 8), (5, 4)]
    assert _md5(two_in) == before  # never modify the user's ONNX file


def _inputs(bs=1):
    return [np.random.rand(bs, 8).astype(np.float32), np.random.rand(bs, 4).astype(np.float32)]


@pytest.mark.parametrize("bad, exc, match", [
    (("tuple",), ValueError, r"inp must be a list, given <class 'tuple'>"),
    (("batch",), ValueError, r"array batch size of 2 must match the batch size the model was instantiated with 1"),
    (("noncontig",), ValueError, r"array must be passed in as C contiguous, call numpy.ascontiguousarray\(array\)"),
    (("count",), RuntimeError, r"NM: error: Expected 2 inputs, received 1"),
    (("dtype",), RuntimeError, r"Unexpected input data type.*'x'.*Actual: \(tensor\(double\)\) , expected: \(tensor\(float\)\)"),
    (("fp16",), RuntimeError, r"input\[0\]: 'x' has unsupported type 'float16'"),
    (("rank",), RuntimeError, r"Invalid rank for input: x Got: 3 Expected: 2"),
    (("dims",), RuntimeError, r"Got invalid dimensions for input: x for the following indices\n index: 1 Got: 7 Expected: 8"),
    (("listelem",), ValueError, r"numpy array"),
    (("zerod",), ValueError, r"0-d"),
])
def test_bad_inputs_raise_and_engine_keeps_working(two_in, bad, exc, match):
    eng = Engine(two_in, batch_size=1, num_cores=1)
    x, z = _inputs()
    kind = bad[0]
    arg = {
        "tuple": (x, z),
        "batch": [np.random.rand(2, 8).astype(np.float32), z],
        "noncontig": [np.random.rand(1, 16).astype(np.float32)[:, ::2], z],
        "count": [x],
        "dtype": [x.astype(np.float64), z],
        "fp16": [x.astype(np.float16), z],
        "rank": [x.reshape(1, 8, 1), z],
        "dims": [np.random.rand(1, 7).astype(np.float32), z],
        "listelem": [[1.0] * 8, z],
        "zerod": [np.array(1.0, dtype=np.float32), z],
    }[kind]
    if kind == "noncontig":
        assert not arg[0].flags["C_CONTIGUOUS"]
    with pytest.raises(exc, match=match):
        eng.run(arg)
    y, y2 = eng.run([x, z])  # still works
    np.testing.assert_array_equal(y, x)


def test_val_inp_false_still_checks_shapes_and_copies_noncontiguous(two_in):
    eng = Engine(two_in, batch_size=1, num_cores=1)
    x, z = _inputs()
    with pytest.raises(RuntimeError, match=r"index: 0 Got: 2 Expected: 1"):
        eng.run([np.random.rand(2, 8).astype(np.float32), z], val_inp=False)
    xt = np.random.rand(1, 16).astype(np.float32)[:, ::2]  # (1, 8), not C-contiguous
    assert not xt.flags["C_CONTIGUOUS"]
    y, _ = eng.run([xt, z], val_inp=False)
    np.testing.assert_array_equal(y, xt)


def test_batched_run_pads_and_trims(two_in):
    eng = Engine(two_in, batch_size=2, num_cores=1)
    x = np.random.rand(5, 8).astype(np.float32)
    z = np.random.rand(5, 4).astype(np.float32)
    y, y2 = eng.batched_run([x, z])
    assert y.shape == (5, 8) and y2.shape == (5, 2, 2)
    np.testing.assert_array_equal(y, x)


def test_generate_random_inputs_and_benchmark(two_in):
    eng = Engine(two_in, batch_size=2, num_cores=1)
    inp = eng.generate_random_inputs()
    assert [a.shape for a in inp] == [(2, 8), (2, 4)]
    res = eng.benchmark(inp, num_iterations=3, num_warmup_iterations=1)
    assert len(res) == 3
    with pytest.raises(AssertionError, match="must be non negative"):
        eng.benchmark(inp, num_iterations=0)


def test_validators(two_in):
    with pytest.raises(ValueError, match="num_cores must be greater than 0"):
        Engine(two_in, num_cores=-1)
    with pytest.raises(ValueError, match="num_streams must be greater than 0"):
        Engine(two_in, num_streams=-2)
    with pytest.raises(ValueError, match=r"unsupported type for scheduler: 3"):
        Engine(two_in, scheduler=3)
    with pytest.raises(ValueError, match="unsupported Scheduler: e"):
        Engine(two_in, scheduler="e")  # DeepSparse's substring bug is not copied
    assert Engine(two_in, scheduler="sync").scheduler == Scheduler.single_stream
    with pytest.raises(ValueError, match="model path must exist"):
        Engine(str(two_in) + ".missing")


def test_concurrent_runs_are_correct(two_in):
    eng = Engine(two_in, batch_size=1)
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(50):
            x = rng.random((1, 8), dtype=np.float32)
            z = rng.random((1, 4), dtype=np.float32)
            y, y2 = eng.run([x, z])
            if not (np.array_equal(y, x) and np.array_equal(y2, z.reshape(1, 2, 2))):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)


def test_closed_engine_refuses(two_in):
    with Engine(two_in, num_cores=1) as eng:
        eng.run(_inputs())
    with pytest.raises(RuntimeError, match="closed"):
        eng.run(_inputs())


# ---- files that are not models: must raise a Python exception, never crash -------------

_PROBE = textwrap.dedent("""
    import sys
    from deepsparse_lite import Engine
    try:
        Engine(sys.argv[1])
    except Exception as exc:
        print("RAISED", type(exc).__name__, str(exc)[:200])
        sys.exit(3)
    print("COMPILED")
""")


def _probe(path):
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes_file_raises_cleanly(tmp_path, seed):
    p = tmp_path / "garbage.onnx"
    p.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    res = _probe(p)
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr[-2000:])
    assert "RAISED" in res.stdout


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9])
def test_truncated_model_raises_cleanly(tmp_path, frac):
    full = _two_input_model(tmp_path / "full.onnx")
    data = open(full, "rb").read()
    p = tmp_path / "trunc.onnx"
    p.write_bytes(data[: int(len(data) * frac)])
    res = _probe(p)
    assert res.returncode in (0, 3), (res.returncode, res.stdout, res.stderr[-2000:])
    # a truncation can (rarely) still be a valid, smaller model; it must never crash
    assert ("RAISED" in res.stdout) or ("COMPILED" in res.stdout)


def test_empty_and_directory_paths(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    res = _probe(p)
    assert res.returncode == 3 and "RAISED" in res.stdout
    d = tmp_path / "folder"
    d.mkdir()
    res = _probe(d)  # folder without model.onnx: a clear error, not a crash
    assert res.returncode == 3 and "RAISED" in res.stdout


def test_float16_model_takes_float16_inputs(tmp_path):
    """DeepSparse refuses every float16 array; a model whose input is float16 runs here."""
    import onnx
    from onnx import helper

    from deepsparse_lite import Engine
    g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT16, [2, 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, [2, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "f16.onnx"))
    eng = Engine(str(tmp_path / "f16.onnx"), batch_size=2)
    x = np.arange(6, dtype=np.float16).reshape(2, 3) / 3
    (y,) = eng.run([x])
    assert y.dtype == np.float16 and np.array_equal(y, x + x)
    with pytest.raises(RuntimeError, match="Unexpected input data type"):
        eng.run([x.astype(np.float32)])
