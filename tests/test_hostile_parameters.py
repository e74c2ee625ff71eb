"""Parameter inputs carry values chosen at run time: hostile ones must be refused cleanly.

With value-specialised plans, axes / shapes / pads / sizes / k / repeats arrive in the
arrays passed to ``run`` instead of the model file. A seeded batch of hostile values (huge,
negative, zero, out of range, NaN, wrong length) goes through ``SpecializedModel`` and
``Engine`` in ONE subprocess with its address space capped: a segfault, an abort or an
out-of-memory kill fails the test, and every refusal must be one of the engine's
exceptions. ``DSL_MAX_TENSOR_BYTES`` bounds what a plan may ask for.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import helper

from deepsparse_lite import compiler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent(r'''
    import collections, os, random, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a runaway allocation fails, not the host
    import numpy as np, onnx
    from onnx import helper
    from deepsparse_lite import Engine, compiler
    from deepsparse_lite.compiler import ModelLoadError, PlanExecutionError, UnsupportedModelError

    OURS = (ModelLoadError, PlanExecutionError, UnsupportedModelError, MemoryError)
    F, I = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64
    BAD = [0, -1, -2, -100, 1, 2, 3, 7, 1 << 20, (1 << 31) - 1, -(1 << 31), 1 << 40, -(1 << 62), (1 << 63) - 1]
    FBAD = [0.0, -1.0, 1e-30, 1e30, float("nan"), float("inf"), -float("inf"), 1e6, 0.5, 3.0]

    def model(nodes, inputs, outs=("y",)):
        g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(o, 0, None) for o in outs])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
        return m

    x3 = [("x", F, [2, 3, 4])]
    N = helper.make_node
    CASES = [
        (model([N("ReduceSum", ["x", "p"], ["y"])], x3 + [("p", I, [2])]), [1, 2]),
        (model([N("ReduceMax", ["x", "p"], ["y"], keepdims=0)], x3 + [("p", I, [1])]), [0]),
        (model([N("Reshape", ["x", "p"], ["y"])], x3 + [("p", I, [3])]), [4, 3, 2]),
        (model([N("Slice", ["x", "p", "q"], ["y"])], x3 + [("p", I, [3]), ("q", I, [3])]), [0, 1, 1], [2, 3, 4]),
        (model([N("Pad", ["x", "p"], ["y"], mode="reflect")], x3 + [("p", I, [6])]), [0, 1, 1, 0, 1, 1]),
        (model([N("Pad", ["x", "p"], ["y"], mode="edge")], x3 + [("p", I, [6])]), [0, 0, 2, 0, 0, 2]),
        (model([N("Tile", ["x", "p"], ["y"])], x3 + [("p", I, [3])]), [1, 2, 1]),
        (model([N("Expand", ["x", "p"], ["y"])], x3 + [("p", I, [3])]), [2, 3, 4]),
        (model([N("TopK", ["x", "p"], ["y", "i"], axis=2)], x3 + [("p", I, [1])], ("y", "i")), [2]),
        (model([N("Split", ["x", "p"], ["y", "z"], axis=2)], x3 + [("p", I, [2])], ("y", "z")), [1, 3]),
        (model([N("Unsqueeze", ["x", "p"], ["y"])], x3 + [("p", I, [1])]), [1]),
        (model([N("Squeeze", ["x", "p"], ["y"])], x3 + [("p", I, [1])]), [0]),
        (model([N("ConstantOfShape", ["p"], ["c"]), N("Add", ["c", "x"], ["y"])], [("p", I, [3])] + x3), [2, 3, 4]),
        (model([N("Resize", ["x4", "", "", "p"], ["y"], mode="linear")], [("x4", F, [1, 2, 3, 4]), ("p", I, [4])]),
         [1, 2, 6, 8]),
        (model([N("Resize", ["x4", "", "p"], ["y"], mode="nearest")], [("x4", F, [1, 2, 3, 4]), ("p", F, [4])]),
         [1.0, 1.0, 2.0, 0.5]),
        (model([N("Range", ["a", "b", "d"], ["y"])], [("a", F, []), ("b", F, []), ("d", F, [])]), 0.0, 5.0, 1.0),
    ]
    random.seed(int(sys.argv[1]))
    stats, foreign = collections.Counter(), []
    for k in range(int(sys.argv[2])):
        m, *params = random.choice(CASES)
        sm = compiler.SpecializedModel(m)
        arrays = []
        for spec in sm.inputs:
            if spec.name not in sm.parameter_names:
                arrays.append(np.random.rand(*spec.shape).astype(spec.dtype))
        vals = []
        for p, spec in zip(params, [s for s in sm.inputs if s.name in sm.parameter_names]):
            a = np.array(p, dtype=spec.dtype)
            flat = a.reshape(-1)
            for _ in range(random.choice([1, 1, 2])):
                j = random.randrange(flat.size)
                flat[j] = random.choice(FBAD if a.dtype.kind == "f" else BAD)
            if a.ndim == 1 and random.random() < 0.15:
                a = np.concatenate([a, a[:1]]) if random.random() < 0.5 else a[:-1]
            vals.append(a)
        it = iter(vals)
        arrays = [next(it) if s.name in sm.parameter_names else arrays.pop(0) for s in sm.inputs]
        print("case", k, [v.tolist() for v in vals], flush=True)
        try:
            compiler.execute(sm.plan_for(arrays), arrays)
            stats["ran"] += 1
        except OURS as exc:
            stats[type(exc).__name__] += 1
        except ValueError as exc:  # the compiler API's own argument checks
            stats["ValueError"] += 1
        except Exception as exc:
            foreign.append((k, type(exc).__name__, str(exc)[:160]))
        if all(a.ndim for a in arrays) and k % 4 == 0:  # the Engine path (streams, validation)
            path = os.path.join(sys.argv[3], "m.onnx")
            onnx.save(m, path)
            try:
                with Engine(path, batch_size=None, num_cores=2) as eng:
                    eng.run(arrays)
                stats["engine ran"] += 1
            except OURS as exc:
                stats["engine refused"] += 1
            except RuntimeError as exc:  # the DeepSparse-style input checks ("NM: error: ...")
                if not str(exc).startswith("NM: error"):
                    foreign.append(("engine", k, type(exc).__name__, str(exc)[:160]))
                stats["engine refused input"] += 1
            except Exception as exc:
                foreign.append(("engine", k, type(exc).__name__, str(exc)[:160]))
    print("STATS", dict(stats))
    for f in foreign:
        print("FOREIGN", f)
''')


def test_hostile_parameter_values_are_refused_cleanly_and_never_crash(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               DSL_MAX_TENSOR_BYTES=str(256 << 20))
    res = subprocess.run([sys.executable, "-c", _SCRIPT, "11", "300", str(tmp_path)], capture_output=True, text=True,
                         timeout=600, env=env)
    last_case = [line for line in res.stdout.splitlines() if line.startswith("case")][-1:]
    assert res.returncode == 0, f"process died (code {res.returncode}) at {last_case}: {res.stderr[-2000:]}"
    stats = [line for line in res.stdout.splitlines() if line.startswith("STATS")]
    assert stats and "'ran'" in stats[0] and "'engine ran'" in stats[0], res.stdout[-500:]
    foreign = [line for line in res.stdout.splitlines() if line.startswith("FOREIGN")]
    assert not foreign, "\n".join(foreign)


def test_max_tensor_bytes_refuses_a_plan_that_asks_too_much(monkeypatch):
    g = helper.make_graph([helper.make_node("ConstantOfShape", ["s"], ["c"]),
                           helper.make_node("Add", ["c", "x"], ["y"])], "g",
                          [helper.make_tensor_value_info("s", onnx.TensorProto.INT64, [2]),
                           helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", 0, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    monkeypatch.setenv("DSL_MAX_TENSOR_BYTES", str(1 << 20))
    sm = compiler.SpecializedModel(m)
    x = np.ones(1, np.float32)
    ok = np.array([16, 16], np.int64)
    assert compiler.execute(sm.plan_for([ok, x]), [ok, x])[0].shape == (16, 16)
    for bad in ([1 << 20, 1 << 20], [1 << 62, 0], [-3, 2]):
        s = np.array(bad, np.int64)
        with pytest.raises(compiler.UnsupportedModelError, match="GiB|negative"):
            sm.plan_for([s, x])


def test_a_node_lowering_to_too_many_steps_is_refused():
    g = helper.make_graph([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect", name="pad")], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3]),
                           helper.make_tensor_value_info("p", onnx.TensorProto.INT64, [4])],
                          [helper.make_tensor_value_info("y", 0, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    sm = compiler.SpecializedModel(m)
    x = np.random.rand(2, 3).astype(np.float32)
    p = np.array([0, 0, 0, 20000], np.int64)  # a copy per mirrored chunk of 2 columns
    with pytest.raises(compiler.UnsupportedModelError, match="'pad' lowers to more than"):
        sm.plan_for([x, p])
    p = np.array([0, 2, 0, 5], np.int64)
    (y,) = compiler.execute(sm.plan_for([x, p]), [x, p])
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (2, 5)], mode="reflect"))


def test_a_lowering_bug_is_a_clean_refusal_naming_the_node(monkeypatch):
    from deepsparse_lite.ops.base import get_op
    from tests.helpers import make_single_node_model

    def broken(node, b, ins, outs):
        raise KeyError("oops")
    monkeypatch.setattr(get_op("Relu"), "lower", broken)
    with pytest.raises(compiler.UnsupportedModelError, match=r"lowering failed for Relu node.*KeyError") as ei:
        compiler.compile_onnx(make_single_node_model("Relu", {"x": np.zeros((2, 2), np.float32)}))
    assert isinstance(ei.value.__cause__, KeyError)  # kept: the conformance harness calls it an error
