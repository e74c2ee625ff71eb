"""deepsparse_lite.analyze: one row per plan step with the kernel, kind and ISA form that ran,
shapes, weight sparsity, time share and GFLOP/s; the CLI's table and JSON export. Tiny
sample models, a few iterations; nothing here asserts a timing value."""
import json

import numpy as np
import pytest

from deepsparse_lite import compiler
from deepsparse_lite.analyze import _flops, analyze, format_analysis, parse_args
from deepsparse_lite.kernels import runner
from deepsparse_lite.models import sample_model_path
from tests.tools.helpers_cli import run_main, run_module

FORMS = set(runner.FORM_NAMES)


def _check_totals(rep):
    assert len(rep["layers"]) == rep["num_steps"] > 0
    assert [r["step"] for r in rep["layers"]] == list(range(rep["num_steps"]))
    assert sum(r["ms"] for r in rep["layers"]) == pytest.approx(rep["total_ms"], rel=1e-9, abs=1e-12)
    assert sum(r["share"] for r in rep["layers"]) == pytest.approx(1.0, abs=1e-6)
    assert all(r["ms"] >= 0 for r in rep["layers"])
    assert sum(b["steps"] for b in rep["by_kernel"].values()) == rep["num_steps"]


def test_mlp_rows_shapes_and_flops():
    rep = analyze("mlp", iterations=2, warmup=1, num_cores=1, sparse="dense")
    plan = compiler.compile_onnx(sample_model_path("mlp"), batch_size=1, sparse="dense")
    _check_totals(rep)
    assert rep["num_steps"] == plan.num_steps
    assert [r["node"] for r in rep["layers"]] == [i.node for i in plan.step_info]
    fc0 = rep["layers"][0]
    assert fc0["op_type"] == "Gemm" and fc0["kernel"] == "GEMM" and fc0["kind"] == "dense"
    assert fc0["input_shapes"] == [[1, 512]] and fc0["output_shapes"] == [[1, 1024]]
    assert fc0["weight_shape"] == [1024, 512] and fc0["sparsity"] == pytest.approx(0.0, abs=0.01)
    assert fc0["flops"] == 2 * 1 * 1024 * 512
    assert fc0["isa"] in FORMS and "gemm_tile" in fc0["variants"]
    assert fc0["isa"] == fc0["variants"]["gemm_tile"]
    assert rep["total_gflop"] == pytest.approx(2 * (512 * 1024 + 2 * 1024 * 1024 + 1024 * 10) / 1e9)


def test_batch_size_and_input_shapes():
    rep = analyze("mlp", batch_size=3, iterations=1, warmup=0, num_cores=1)
    assert rep["input_shapes"] == [[3, 512]]
    assert rep["layers"][0]["flops"] == 2 * 3 * 1024 * 512
    rep = analyze("mlp", batch_size=None, input_shapes="[2,512]", iterations=1, warmup=0)
    assert rep["input_shapes"] == [[2, 512]] and rep["layers"][-1]["output_shapes"] == [[2, 10]]


def test_pruned_model_sparse_rows():
    """Forced sparse: every pruned layer runs an SPMM kernel; the rows say so and the
    variant counters show the spmm kernel ran for exactly those steps."""
    rep = analyze("resnet_tiny-pruned90", iterations=1, warmup=0, num_cores=1, sparse="sparse")
    _check_totals(rep)
    sparse_rows = [r for r in rep["layers"] if r["kind"] == "sparse"]
    assert len(sparse_rows) >= 20
    for r in rep["layers"]:
        if r["kind"] is None:
            assert "spmm" not in r["variants"]
            continue
        if r["sparsity"] is not None and r["sparsity"] > 0.8:
            assert r["kind"] == "sparse" and r["kernel"].startswith("SPMM"), r
        if r["kind"] == "sparse":
            assert "spmm" in r["variants"] and r["isa"] == r["variants"]["spmm"]
            assert r["flops"] and r["flops"] > 0
    assert sum(r["sparsity"] > 0.8 for r in sparse_rows) >= len(sparse_rows) - 1
    conv1 = rep["layers"][0]  # the first conv is not pruned (forced sparse all the same)
    assert conv1["node"] == "conv1" and conv1["sparsity"] < 0.5
    assert conv1["flops"] == 2 * (8 * 32 * 32) * (3 * 7 * 7)


def test_pruned_model_auto_matches_the_plan_listing():
    """Auto mode (timing-dependent choice): whatever the plan chose, the rows agree with it."""
    rep = analyze("resnet_tiny-pruned90", iterations=1, warmup=0)
    _check_totals(rep)
    for r in rep["layers"]:
        assert (r["kind"] == "sparse") == r["kernel"].startswith("SPMM")
        if r["kind"] == "sparse":
            assert r["sparsity"] > 0.8 and "spmm" in r["variants"]
        elif r["kind"] == "dense" and r["why"] == "timed":
            assert "spmm" not in r["variants"]


def test_int8_model_rows():
    rep = analyze("resnet_tiny-quant", iterations=1, warmup=0, num_cores=1)
    _check_totals(rep)
    q = [r for r in rep["layers"] if r["kind"] == "int8"]
    assert len(q) >= 20
    assert {r["kernel"] for r in q} <= {"QCONV", "QCONVCW", "QGEMM"}
    assert "QCONVCW" in {r["kernel"] for r in q}
    for r in q:
        kv = "qconv" if r["kernel"] == "QCONVCW" else "qgemm"
        assert kv in r["variants"] and r["isa"] == r["variants"][kv] in FORMS
        assert r["op_type"] in ("QLinearConv", "QLinearMatMul") and r["flops"] > 0
        assert r["weight_shape"] is not None and 0.0 <= r["sparsity"] < 0.5
    assert not any(r["kind"] == "dense" for r in rep["layers"] if r["kernel"] in ("CONV", "GEMM"))


def test_pruned_quantized_int8_sparsity_from_the_weight():
    rep = analyze("bert_tiny-pruned90_quant", iterations=1, warmup=0, num_cores=1)
    q = [r for r in rep["layers"] if r["kind"] in ("int8", "int8-sparse")]
    assert q and all(r["sparsity"] > 0.8 for r in q)
    forced = analyze("bert_tiny-pruned90_quant", iterations=1, warmup=0, num_cores=1, sparse="sparse")
    fq = [r for r in forced["layers"] if r["kernel"] == "QCONVCW"]
    assert fq and all(r["kind"] == "int8-sparse" for r in fq)
    mm = [r for r in rep["layers"] if r["kernel"] == "MATMUL"]  # attention scores: no weight
    assert mm and all(r["sparsity"] is None and r["flops"] > 0 for r in mm)


def test_flops_formulas():
    class V:
        def __init__(self, shape, const=None):
            self.shape, self.const = shape, const

    class N:
        def __init__(self, op_type, inputs, outputs, attrs=None):
            self.op_type, self.inputs, self.outputs, self.attrs = op_type, inputs, outputs, attrs or {}

        def attr(self, k, d=None):
            return self.attrs.get(k, d)

    class G:
        values = {"a": V((4, 6)), "aT": V((6, 4)), "w": V((6, 5)), "y": V((4, 5)),
                  "x": V((1, 16, 8, 8)), "k": V((32, 4, 3, 3)), "z": V((1, 32, 8, 8)),
                  "b": V((2, 3, 4, 6))}

    assert _flops("GEMM", N("Gemm", ["a", "w"], ["y"]), G) == 2 * 4 * 5 * 6
    assert _flops("GEMM", N("Gemm", ["aT", "w"], ["y"], {"transA": 1}), G) == 2 * 4 * 5 * 6
    assert _flops("MATMUL", N("MatMul", ["b", "w"], ["y"]), G) == 2 * 20 * 6
    # grouped conv (4 input channels per group): 2 * output elements * Cin/g * kh * kw
    assert _flops("CONV", N("Conv", ["x", "k"], ["z"]), G) == 2 * 32 * 64 * 4 * 9
    assert _flops("BINARY", N("Add", ["a", "a"], ["y"]), G) is None


def test_cli_table_and_export(tmp_path):
    out = tmp_path / "a.json"
    r = run_module("deepsparse_lite.analyze", "resnet_tiny-pruned90", "-bi", "2", "-wi", "1",
                   "-ncores", "1", "--export", out)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    _check_totals(rep)
    lines = r.stdout.splitlines()
    rows = [ln for ln in lines if ln[:4].strip().isdigit()]
    assert len(rows) == rep["num_steps"]
    assert any(f"total ({rep['num_steps']} steps)" in ln for ln in lines)
    head = next(ln for ln in lines if ln.lstrip().startswith("step"))
    for col in ("node", "op", "kernel", "kind", "isa", "inputs", "outputs", "sparsity", "ms", "%", "GFLOP/s"):
        assert col in head.split()
    for ln, layer in zip(rows, rep["layers"]):
        assert ln.split()[0] == str(layer["step"]) and layer["kernel"][:10] in ln
    assert "INFO" in r.stderr  # not quiet: the sample model's resolution is logged


def test_cli_console_entry_quiet_and_aliases(tmp_path):
    out = tmp_path / "b.json"
    r = run_main("deepsparse_lite.analyze", "mlp", "--batch-size-throughput", "2",
                 "--num_iterations", "1", "--num_warmup_iterations", "0", "--save", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "INFO" not in r.stderr
    rep = json.loads(out.read_text())
    assert rep["batch_size"] == 2 and rep["iterations"] == 1 and rep["warmup"] == 0
    assert len(rep["layers"]) == rep["num_steps"] == 4


def test_parse_args_names():
    a = parse_args(["m.onnx", "-b", "4", "-ncores", "2", "-bi", "7", "-wi", "3", "-x", "f.json",
                    "-shapes", "[4,3]", "-q"])
    assert (a.batch_size, a.num_cores, a.num_iterations, a.warmup, a.export, a.input_shapes, a.quiet) == \
        (4, 2, 7, 3, "f.json", "[4,3]", True)
    d = parse_args(["m.onnx"])
    assert (d.batch_size, d.num_cores, d.num_iterations, d.warmup, d.export) == (1, None, 20, 5, None)


def test_bad_arguments():
    with pytest.raises(ValueError, match="iterations"):
        analyze("mlp", iterations=0)
    with pytest.raises(ValueError, match="model path must exist"):
        analyze("definitely_not_a_model")


def test_format_analysis_handles_missing_values():
    rep = analyze("bert_tiny", iterations=1, warmup=0, num_cores=1)
    text = format_analysis(rep)
    assert text.count("\n") >= rep["num_steps"] + 5
    assert np.isfinite(rep["total_ms"]) and rep["wall_ms"] > 0


def test_rows_without_the_graph(monkeypatch):
    """If the lowered graph cannot be captured, rows keep kernels, kinds and times."""
    import deepsparse_lite.analyze as an

    real = an._compile_with_graph
    monkeypatch.setattr(an, "_compile_with_graph", lambda *a, **k: (real(*a, **k)[0], None))
    rep = analyze("mlp", iterations=1, warmup=0, num_cores=1)
    _check_totals(rep)
    assert [r["kernel"] for r in rep["layers"]] == ["GEMM"] * 4
    assert all(r["op_type"] is None and r["flops"] is None and r["kind"] == "dense" for r in rep["layers"])
    assert "total (4 steps)" in format_analysis(rep)
