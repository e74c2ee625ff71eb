"""benchmarks/compare.py: the side-by-side benchmark runs its workers and reports every row.

Small and quick (mlp, 0.2 s per figure, one trial, main rows only); timings are never
asserted, only that the figures exist and are positive, that a missing engine becomes a
note and that a failing worker becomes an error instead of a crash.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "compare.py")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    return env


def _load_compare():
    spec = importlib.util.spec_from_file_location("compare_bench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_dsl_and_ort_rows_and_missing_deepsparse_is_a_note(tmp_path):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "cmp.json"
    res = subprocess.run(
        [sys.executable, SCRIPT, "mlp", "--engines", "dsl,ort,ds", "--no-extras",
         "--deepsparse-python", "/nonexistent/python", "--seconds", "0.2", "--warmup", "0.05",
         "--trials", "1", "--json", str(out)],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "deepsparse_lite" in res.stdout and "onnxruntime" in res.stdout
    doc = json.loads(out.read_text())
    rows = {r["label"]: r for r in doc["rows"]}
    for label in ("deepsparse_lite", "onnxruntime"):
        row = rows[label]
        assert row["latency"]["p50_ms"] > 0 and row["latency"]["p90_ms"] > 0, row
        assert row["concurrent"]["items_per_s"] > 0, row
        assert row["batch"]["items_per_s"] > 0, row
        assert all(row[f"{f}_ratio"] > 0 for f in ("latency", "concurrent", "batch")), row
    assert rows["deepsparse_lite"]["latency_ratio"] == pytest.approx(1.0)
    # DeepSparse's interpreter does not exist: a row with a note, not a failure
    ds = rows["deepsparse"]
    assert "latency" not in ds and any("skipped" in n and "/nonexistent" in n
                                       for n in ds["notes"]), ds
    assert "ds" in doc["meta"]["skipped"]
    assert "skipped" in res.stdout
    assert doc["meta"]["batch"] == 16 and doc["meta"]["callers"] >= 1
    assert all(j["trials"] and "error" not in j["trials"][0] for j in doc["jobs"]), doc["jobs"]


def test_failing_worker_reports_an_error_line(tmp_path):
    pytest.importorskip("onnxruntime")
    np.savez(tmp_path / "in.npz", np.zeros((1, 4), np.float32))
    spec = {"engine": "ort", "config": "intra_n", "figure": "latency",
            "model": str(tmp_path / "missing.onnx"), "inputs": str(tmp_path / "in.npz"),
            "input_names": ["x"], "batch": 1, "cores": 1, "streams": 1, "callers": 1,
            "seconds": 0.1, "warmup": 0.0, "cpus": None}
    res = subprocess.run([sys.executable, SCRIPT, "--worker", json.dumps(spec)], cwd=REPO,
                         env=_env(), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    compare = _load_compare()
    line = [ln for ln in res.stdout.splitlines() if ln.startswith(compare.RESULT_MARK)][-1]
    result = json.loads(line[len(compare.RESULT_MARK):])
    assert "error" in result and result["error"]


def test_inputs_in_range_and_batch_copy(tmp_path):
    from deepsparse_lite.models import build_model, model_config, sample_model_path

    compare = _load_compare()
    model = build_model("bert_tiny")
    names, arrays = compare.make_inputs(model, batch=3)
    assert [a.shape[0] for a in arrays] == [3] * len(arrays)
    feeds = dict(zip(names, arrays))
    ids = next(v for k, v in feeds.items() if "input_ids" in k)
    assert ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < model_config(
        "bert_tiny")["vocab_size"]
    assert all((v == 1).all() for k, v in feeds.items() if "mask" in k)
    assert compare.model_kind(model) == "text"
    # a fixed-batch path gets a copy with dim 0 set to the batch; the same batch is kept as is
    src = sample_model_path("mlp")
    assert compare.with_batch(src, 1, str(tmp_path)) == src
    copy = compare.with_batch(src, 4, str(tmp_path))
    import onnx
    m = onnx.load(copy)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert compare.model_kind(m) == "other"


def test_compare_mixed_runs_the_multimodel_load(tmp_path):
    """`compare.py mixed` is bench_multimodel.py: per-model figures for each configuration,
    the shared Context's counters and memory, and a missing DeepSparse is a note."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "mm.json"
    res = subprocess.run(
        [sys.executable, SCRIPT, "mixed", "--models", "resnet_tiny,mlp", "--seconds", "0.3",
         "--configs", "dsl_shared,dsl_nopause,dsl_separate,ort,ds_shared,dsl_alone",
         "--deepsparse-python", str(tmp_path / "no-such-python"), "--json", str(out)],
        capture_output=True, text=True, env=dict(_env(), DEEPSPARSE_PYTHON=""), timeout=600)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    rows = {r["config"]: r for r in data["results"]}
    if not os.path.exists("/work/venv-ds/bin/python"):
        assert "ds_shared" not in rows and "ds_shared: skipped" in res.stdout
    for cfg in ("dsl_shared", "dsl_nopause", "dsl_separate", "ort"):
        assert set(rows[cfg]["models"]) == {"resnet_tiny", "mlp"}, rows[cfg]
        for m in rows[cfg]["models"].values():
            assert m["items_s"] > 0 and 0 < m["p50_ms"] <= m["p99_ms"]
        assert rows[cfg]["peak_rss_mb"] > 0
    assert set(rows["dsl_alone"]["models"]) == {"mlp"}
    assert rows["dsl_nopause"]["stats"]["nested"] == 0
    assert rows["dsl_shared"]["arena_mb"] > 0
