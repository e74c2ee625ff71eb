"""Fuzzing (issue 11): mutants of the sample models and exported fixtures, and atheris.

``benchmarks/fuzz_models.py`` makes case ``k`` of a seed the same mutant every time (byte
flips, truncation, hostile attributes / dims / initializers, rewired inputs, duplicated
outputs) and runs batches of them in child processes with a per-case time bound. Here a
fixed seed runs a CI-sized batch: no crash, no hang, no foreign exception (a bare
TypeError / KeyError / ... from inside the compiler), no refusal that only the compiler's
last-resort handlers caught (``wrapped``), and the good model compiled after each refusal
still gives its first answer. The harness itself is checked too: a child that aborts or
stalls is recorded against its case and the run goes on in a fresh child. The bugs the
fuzzers found each have a direct regression test below; ``docs/RELIABILITY.md`` keeps the
last measured numbers.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from deepsparse_lite import Engine
from deepsparse_lite.compiler import ModelLoadError, compile_onnx, execute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTED = os.path.join(ROOT, "tests", "data", "exported")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"dsl_{name}", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fz = _load("fuzz_models")


def test_mutants_are_deterministic_and_cover_every_kind():
    srcs = fz.default_sources()
    a = [fz.make_mutant(5, k, srcs)[:3] for k in range(60)]
    assert a == [fz.make_mutant(5, k, srcs)[:3] for k in range(60)]
    assert {kind for _, kind, _ in a} == set(fz.KINDS)


def test_mutation_fuzz_no_crash_hang_or_foreign_exception(tmp_path):
    """~550 mutants (about 25 s here): the CI-sized run; benchmarks/fuzz_models.py runs more."""
    rep = fz.fuzz(550, seed=11, timeout=60.0, workdir=str(tmp_path))
    text = fz.summary(rep)
    print(text)
    assert not rep["crashes"] and not rep["hangs"], text
    assert not rep["foreign"], text
    assert not rep["wrapped"], text
    assert not rep["health"], text
    assert not rep["mutator_error"], text
    assert rep["outcomes"]["ran"] > 50 and rep["outcomes"]["refused"] > 200, text
    assert set(rep["by_kind"]) == set(fz.KINDS), text


@pytest.mark.parametrize("hook, what", [("DSL_FUZZ_ABORT_AT", "crashes"), ("DSL_FUZZ_STALL_AT", "hangs")])
def test_a_dead_or_stalled_child_is_recorded_and_the_run_goes_on(tmp_path, hook, what):
    env = dict(os.environ, **{hook: "2"})
    rep = fz.fuzz(5, seed=3, sources=[os.path.join(EXPORTED, "squeezenet_tiny.onnx")], timeout=4.0,
                  workdir=str(tmp_path), env=env)
    assert [r["case"] for r in rep[what]] == [2]
    assert rep["children"] == 2  # a fresh child from case 3 on
    assert sum(rep["outcomes"].values()) == 5 and rep["outcomes"]["ran"] + rep["outcomes"]["refused"] == 4


def test_engine_keeps_working_after_refused_models(tmp_path):
    """In one process: hostile mutants are refused, then a good model compiles and gives
    the same answer as before them."""
    good = os.path.join(EXPORTED, "squeezenet_tiny.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    with Engine(good, batch_size=None, num_cores=1) as eng:
        ref = eng.run([x])
    srcs = [good]
    refused = 0
    for k in range(40):
        _, _, _, data = fz.make_mutant(21, k, srcs)
        p = tmp_path / f"m{k}.onnx"
        p.write_bytes(data)
        try:
            Engine(str(p), batch_size=None, num_cores=1).close()
        except (ValueError, RuntimeError, MemoryError):
            refused += 1
    assert refused > 10
    with Engine(good, batch_size=None, num_cores=1) as eng:
        out = eng.run([x])
    assert all(np.array_equal(a, b) for a, b in zip(out, ref))


# ---- the bugs the fuzzers found: each now a ModelLoadError naming the node ----------------
def _conv_model():
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
                           helper.make_node("Softmax", ["c"], ["y"], name="sm", axis=1)], "g",
                          [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _set_attr(m, node, name, value=None, undefined=False):
    n = [x for x in m.graph.node if x.name == node][0]
    a = [x for x in n.attribute if x.name == name][0]
    if undefined:
        a.type = onnx.AttributeProto.UNDEFINED
    else:
        a.CopyFrom(helper.make_attribute(name, value))


def _mut_attr_float_list(m):  # attr_type: Softmax axis -> floats (TypeError in int())
    _set_attr(m, "sm", "axis", [0.5, 2.0])


def _mut_attr_int_for_ints(m):  # attr_type: kernel_shape -> one int ('int' object is not iterable)
    _set_attr(m, "conv", "kernel_shape", 3)


def _mut_attr_undefined(m):  # attr_type: axis of type UNDEFINED, read as None (int(None))
    _set_attr(m, "sm", "axis", undefined=True)


def _mut_required_attr(m):  # a Cast without 'to' (KeyError in the shape rule)
    m.graph.node.append(helper.make_node("Cast", ["y"], ["y2"], name="cast"))
    m.graph.output[0].name = "y2"


def _mut_blank_input(m):  # rewire: Conv weight input '' (AttributeError: 'NoneType' has no 'shape')
    m.graph.node[0].input[1] = ""


def _mut_dropped_input(m):  # rewire: a Conv with only its data input
    del m.graph.node[0].input[1]


def _mut_extra_output(m):  # atheris: a Softmax with two outputs (KeyError in lowering)
    m.graph.node[1].output.append("extra")


def _mut_empty_graph_output(m):  # atheris: graph output named '' (KeyError '' in lowering)
    m.graph.output.append(helper.make_tensor_value_info("", onnx.TensorProto.FLOAT, None))


@pytest.mark.parametrize("mutate, match", [
    (_mut_attr_float_list, r"Softmax node 'sm': attribute 'axis' must be of type INT, the model gives FLOATS"),
    (_mut_attr_int_for_ints, r"Conv node 'conv': attribute 'kernel_shape' must be of type INTS, the model gives INT"),
    (_mut_attr_undefined, r"Softmax node 'sm': attribute 'axis' has no type"),
    (_mut_required_attr, r"Cast node 'cast': required attribute 'to' is missing"),
    (_mut_blank_input, r"Conv node 'conv': required input 1 \('W'\) is empty"),
    (_mut_dropped_input, r"Conv node 'conv' has 1 inputs, the op takes 2 to 3"),
    (_mut_extra_output, r"Softmax node 'sm' has 2 outputs, the op makes at most 1"),
    (_mut_empty_graph_output, r"a graph output has an empty name"),
])
def test_fuzzer_findings_are_load_errors_naming_the_node(mutate, match):
    m = _conv_model()
    x = np.random.rand(1, 3, 8, 8).astype(np.float32)
    execute(compile_onnx(m), [x])  # the model is fine before the mutation
    mutate(m)
    with pytest.raises(ModelLoadError, match=match):
        compile_onnx(m.SerializeToString())


def test_a_graph_input_declared_twice_is_a_load_error():
    """atheris found it: the second declaration of 'x' replaced the first's shape but not its
    dim names, and the dynamic-dim message indexed past their end (a bare IndexError)."""
    m = _conv_model()
    dup = onnx.ValueInfoProto()
    dup.CopyFrom(m.graph.input[0])
    dup.type.tensor_type.shape.dim.add()  # one more (unnamed, dynamic) dim than the first
    m.graph.input.append(dup)
    with pytest.raises(ModelLoadError, match=r"graph input 'x' is declared more than once"):
        compile_onnx(m.SerializeToString())


def test_a_name_produced_twice_is_a_load_error():
    """atheris + ASan: two producers of one name (not SSA) made a reduction write past the
    buffer the memory plan had sized from the other producer (heap corruption)."""
    N = helper.make_node
    g = helper.make_graph(
        [N("Transpose", ["x"], ["t"], perm=[1, 0]), N("ReduceSum", ["t"], ["y"], keepdims=0),
         N("Concat", ["x", "x"], ["t"], axis=1), N("ReduceMean", ["t"], ["y2"], axes=[1])],
        "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ModelLoadError, match=r"Concat node .*output 't' is already defined"):
        compile_onnx(m.SerializeToString())
    m.graph.node[2].output[0] = "x"  # a node writing over a graph input
    with pytest.raises(ModelLoadError, match=r"output 'x' is already defined"):
        compile_onnx(m.SerializeToString())


def test_an_initializer_defined_twice_is_a_load_error():
    m = _conv_model()
    m.graph.initializer.append(m.graph.initializer[0])
    with pytest.raises(ModelLoadError, match=r"initializer\(s\) \['w'\] are defined more than once"):
        compile_onnx(m.SerializeToString())


def test_a_name_that_is_not_utf8_is_a_load_error():
    """A flipped byte in an op type: protobuf hands it back as bytes, and the opset upgrade
    raised a bare TypeError (has_schema(): incompatible function arguments)."""
    data = _conv_model().SerializeToString()
    k = data.index(b"Softmax")
    bad = data[:k] + b"\xa4" + data[k + 1:]
    with pytest.raises(ModelLoadError, match=r"node sm: its op_type is not valid UTF-8"):
        compile_onnx(bad)


# ---- coverage-guided: atheris over the loader and the Engine input checks -----------------
@pytest.mark.parametrize("target", ["loader", "inputs"])
def test_atheris_finds_nothing(tmp_path, target):
    """~30 s per target, fixed libFuzzer seed: any uncaught exception fails (exit code != 0)."""
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris: CPython <= 3.11 manylinux wheels); "
                    "the coverage-guided fuzz of the loader and input checks did not run")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p]), DSL_MAX_TENSOR_BYTES=str(64 << 20))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "fuzz_atheris.py"), target, "--",
                          "-max_total_time=28", "-seed=1", "-print_final_stats=1"],
                         capture_output=True, text=True, timeout=240, env=env, cwd=str(tmp_path))
    tail = res.stderr[-4000:]
    assert res.returncode == 0, tail
    assert "Done " in res.stderr and "runs in" in res.stderr, tail


_ZERO_ROWS = """
import sys
import numpy as np, onnx
from deepsparse_lite import Engine
from deepsparse_lite.models import sample_model_path
m = onnx.load(sample_model_path("bert_tiny-pruned90_quant"))
m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 0
onnx.save(m, sys.argv[1])
with Engine(sys.argv[1], batch_size=None, num_cores=1) as eng:
    outs = eng.run([np.zeros(s, np.int64) for s in eng.input_shapes])
print("SHAPES", [o.shape for o in outs])
"""


def test_int8_matmul_of_zero_rows_compiles_and_runs(tmp_path):
    """Fuzz seed 1 case 3971 (dims: input_ids [1, 16] -> [0, 16] in bert_tiny-pruned90_quant)
    killed the process with SIGFPE: the QCONVCW lowering asked the kernels for the block
    size of 0 pixels (a division by the block count). Run in a child: a crash must fail
    this test, not the session."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p]))
    res = subprocess.run([sys.executable, "-c", _ZERO_ROWS, str(tmp_path / "m.onnx")], capture_output=True,
                         text=True, timeout=300, env=env)
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    assert "SHAPES [(0, 2)]" in res.stdout
