"""ONNX's own backend test cases (light, pytorch-converted, pytorch-operator, node) through
deepsparse_lite, gated on ``record.json``.

One run of every case (a module fixture: 2 fresh worker interpreters, ~20 s), then one test per
group: the group's pass count must not fall below its record, and no case may crash (or hang)
its worker. More passes than recorded only prints a note asking to raise the record. The full
table and the JSON report (every case, its class and message) come from
``python -m tests.conformance``; see harness.py for the classes and the tolerances.
"""
import json
import os

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from tests.conformance import harness


@pytest.fixture(scope="module")
def conformance():
    out = harness.run_conformance(harness.GROUPS, jobs=harness.DEFAULT_JOBS)
    print("\n" + harness.format_table(out.summary))
    print(f"{len(out.results)} cases in {out.seconds:.1f} s; report: {out.report_path}")
    return out


@pytest.mark.parametrize("group", harness.GROUPS)
def test_group_meets_record(conformance, group):
    record = harness.load_record()
    fails, notes = harness.check_group(conformance.summary, conformance.results, group, record)
    for n in notes:
        print("NOTE:", n)
    s = conformance.summary[group]
    assert not fails, "\n".join(fails) + f"\n(report: {conformance.report_path})\n" + harness.format_table({group: s})


def test_record_covers_every_group():
    record = harness.load_record()
    assert set(record) == set(harness.GROUPS)
    assert all(isinstance(v, int) and v >= 0 for v in record.values())


# ---- the harness itself: crash / hang isolation, classification, data layouts ----------

def _relu_case(tmp_path, name, opset=13, perturb=0.0):
    d = tmp_path / name
    (d / "test_data_set_0").mkdir(parents=True)
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    node = helper.make_node("Relu", ["x"], ["y"])
    g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [3, 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.save(m, str(d / "model.onnx"))
    y = np.maximum(x, 0) + np.float32(perturb)
    (d / "test_data_set_0" / "input_0.pb").write_bytes(numpy_helper.from_array(x, "x").SerializeToString())
    (d / "test_data_set_0" / "output_0.pb").write_bytes(numpy_helper.from_array(y, "y").SerializeToString())
    return d


def test_harness_isolates_crashes_and_hangs(tmp_path, monkeypatch):
    monkeypatch.setenv("DSL_CONFORMANCE_SELFTEST", "1")
    ok = harness.collect_dir("selftest", str(_relu_case(tmp_path, "ok").parent))
    assert len(ok) == 1 and ok[0].data == [{"kind": "pb", "dir": str(tmp_path / "ok" / "test_data_set_0")}]
    cases = [harness.Case("selftest", "__crash__", ok[0].model, ok[0].data), ok[0],
             harness.Case("selftest", "__hang__", ok[0].model, ok[0].data), ok[0]]
    res = harness.run_cases(cases, jobs=1, timeout=2)
    assert [r["class"] for r in res] == ["crash", "pass", "timeout", "pass"], res
    assert "signal 11" in res[0]["message"] and "Segmentation fault" in res[0]["message"]
    assert res[3]["restarts"] == 2  # the same worker slot, restarted after each


def test_harness_classifies_wrong_refused_and_light_layout(tmp_path):
    _relu_case(tmp_path, "test_wrong", perturb=1e-2)
    _relu_case(tmp_path, "test_old", opset=onnx.defs.onnx_opset_version() + 1)  # newer than onnx knows
    (tmp_path / "test_wrong" / "data.json").write_text(json.dumps({"rtol": 1e-2}))
    # light layout: <name>.onnx + <name>_output_K.pb, inputs arange(n)/n as ONNX's runner makes them
    light = tmp_path / "light"
    light.mkdir()
    m = onnx.load(str(tmp_path / "test_wrong" / "model.onnx"))
    onnx.save(m, str(light / "light_relu.onnx"))
    y = (np.arange(12).reshape(3, 4) / 12).astype(np.float32)
    (light / "light_relu_output_0.pb").write_bytes(numpy_helper.from_array(y).SerializeToString())
    cases = harness.collect_dir("selftest", str(tmp_path)) + harness.collect_dir("light", str(light))
    by = {c.name: c for c in cases}
    assert by["test_wrong"].rtol == 1e-2 and by["test_old"].rtol == harness.DEFAULT_RTOL
    res = {r["name"]: r for r in harness.run_cases(list(by.values()), jobs=2, timeout=60)}
    assert res["test_wrong"]["class"] == "wrong" and res["test_wrong"]["max_abs"] == pytest.approx(1e-2, rel=1e-3)
    assert res["test_old"]["class"] == "refused" and "opset" in res["test_old"]["message"]
    assert res["test_relu"]["class"] == "pass", res["test_relu"]  # named as ONNX names it


def test_gate_fails_below_record_or_on_crash_and_notes_above():
    def summary(passed):
        return {"node": {"total": 10, "passed": passed, "error": None}}
    crash = [{"group": "node", "name": "test_x", "class": "crash"}]
    assert harness.check_group(summary(5), [], "node", {"node": 5}) == ([], [])
    fails, notes = harness.check_group(summary(4), [], "node", {"node": 5})
    assert fails and "record is 5" in fails[0] and not notes
    fails, notes = harness.check_group(summary(6), [], "node", {"node": 5})
    assert not fails and "raise it" in notes[0]
    fails, _ = harness.check_group(summary(6), crash, "node", {"node": 5})
    assert fails and "crashed" in fails[0] and "test_x" in fails[0]
    fails, _ = harness.check_group(summary(6), [dict(crash[0], **{"class": "timeout"})], "node", {"node": 5})
    assert fails and "hung" in fails[0]
    fails, _ = harness.check_group({"node": {"error": "NodeDataUnavailable: no network"}}, [], "node", {"node": 5})
    assert fails and "no network" in fails[0]
