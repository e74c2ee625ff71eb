"""The build kept OpenMP and the ISA dispatch (cf. sklearn's test_openmp_helpers)."""
import os

import pytest

import deepsparse_lite
from deepsparse_lite import kernels


def test_openmp_was_built_in():
    if os.environ.get("DSL_ALLOW_NO_OPENMP") == "1":
        pytest.skip("DSL_ALLOW_NO_OPENMP=1: a serial build was requested")
    assert deepsparse_lite.openmp_enabled(), (
        "the kernels were built without OpenMP (see the build warning); "
        "set DSL_ALLOW_NO_OPENMP=1 only if that is intended")


def test_isa_level_can_be_lowered_and_restored():
    top = kernels.top_isa_level()
    assert kernels.isa_level() == top
    kernels.set_isa_level(0)
    try:
        assert kernels.isa_level() == 0
    finally:
        kernels.set_isa_level(top)
    assert kernels.isa_level() == top
    kernels.set_isa_level(99)  # never above the hardware
    assert kernels.isa_level() == top


def test_one_isa_state_reaches_every_family():
    """Lowering the cap changes the variant every family runs (there is one ISA state, in
    the runner, not one copy per extension module)."""
    import numpy as np
    from onnx import helper, TensorProto
    from deepsparse_lite import compiler

    if kernels.top_isa_level() < 1:
        pytest.skip("no vector ISA to lower from")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 4, 3, 3], np.ones(288, np.float32).tolist())
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Softmax", ["p"], ["q"], axis=-1),
             helper.make_node("Add", ["q", "q"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    plan = compiler.compile_onnx(model, isa=1)
    with kernels.variants_run() as ran, kernels.isa_cap(0):
        compiler.execute(plan, [np.ones((2, 4, 16, 16), np.float32)])
    assert {f for (_, f) in ran} == {"generic"}, ran
    with kernels.variants_run() as ran:
        compiler.execute(plan, [np.ones((2, 4, 16, 16), np.float32)])
    kinds = {k for (k, f) in ran if f == "avx2"}
    assert {"gemm_tile", "unary", "pool", "softmax", "binary"} <= kinds, ran


def test_one_target_string_per_isa_level_and_no_isa_state_in_headers():
    """Every ISA-specific function names its target through DSL_TARGET_AVX2 / _AVX512
    (csrc/dsl_cpu.h), and no header keeps ISA state (a `static` there is one copy per
    extension module: a forced level would reach some families and not others)."""
    import glob
    import re

    root = os.path.join(os.path.dirname(__file__), "..", "csrc")
    bad_target, bad_state = [], []
    for path in glob.glob(os.path.join(root, "*.h")):
        src = open(path).read()
        for m in re.finditer(r'target\("([^"]*)"', src):
            bad_target.append((os.path.basename(path), m.group(1)))
        if re.search(r"^\s*static\s+(volatile\s+)?int\s+\w*isa\w*\s*=", src, re.M):
            bad_state.append(os.path.basename(path))
    assert not bad_target, f"literal target strings (use DSL_TARGET_*): {bad_target}"
    assert not bad_state, f"ISA state in headers: {bad_state}"
