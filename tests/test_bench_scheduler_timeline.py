"""benchmarks/bench_scheduler.py --timeline: traces every scheduler on the mlp sample and
draws the PNG. A 0.1 s window; no test asserts on a timing value."""
import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_scheduler", os.path.join(REPO, "benchmarks", "bench_scheduler.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_timeline_mlp(tmp_path):
    pytest.importorskip("matplotlib")
    png, js = tmp_path / "timeline.png", tmp_path / "timeline.json"
    res = _bench().timeline(str(png), model="mlp", seconds=0.1, callers=2, warmup=0.05,
                            json_path=str(js))
    assert png.exists() and png.stat().st_size > 0
    assert [p["scheduler"] for p in res["panels"]] == ["single_stream", "multi_stream", "elastic"]
    assert sum(len(p["records"]) for p in res["panels"]) > 0
    for p in res["panels"]:
        for r in p["records"]:
            assert r["t0"] <= r["t1"] and r["cpus"] and r["caller"] in (0, 1)
    assert json.loads(js.read_text())["model"] == "mlp"
