"""deepsparse_lite.check_hardware: the CPU features and topology it reports agree with
cpu_architecture / /proc/cpuinfo, and the streams it names are the ones Context() makes."""
import json
import os

import pytest

from deepsparse_lite.check_hardware import _ranges, format_report, hardware_report
from deepsparse_lite.cpu import _cpuinfo, cpu_architecture
from deepsparse_lite.scheduler import Context
from tests.tools.helpers_cli import run_main, run_module


def _context_streams(**kw):
    with Context(**kw) as ctx:
        return [list(c) for c in ctx.stream_cpus], ctx.num_cores, ctx.num_streams


def _flags():
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def test_json_report_matches_context_and_cpu():
    r = run_module("deepsparse_lite.check_hardware", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    streams, cores, nstreams = _context_streams()
    ctx = rep["context"]
    assert ctx["default"] is True
    assert [s["cpus"] for s in ctx["streams"]] == streams
    assert (ctx["num_cores"], ctx["num_streams"]) == (cores, nstreams)
    assert ctx["scheduler"] == "Scheduler.elastic"
    arch = cpu_architecture()
    assert rep["isa"] == arch.isa and rep["vnni"] == bool(arch.vnni) and rep["bf16"] == bool(arch.bf16)
    assert rep["physical_cores"] == arch.num_available_physical_cores
    assert rep["logical_cpus"] == arch.available_num_hw_threads
    assert rep["affinity"] == sorted(os.sched_getaffinity(0))
    assert rep["amx"] == sorted(f for f in _flags() if f.startswith("amx"))
    # every available CPU is in exactly one NUMA node and one L3 group
    for key in ("numa_nodes", "l3_groups"):
        cpus = sorted(c for g in rep[key] for c in g["cpus"])
        assert len(cpus) == len(set(cpus)) == rep["logical_cpus"] and set(cpus) <= set(rep["affinity"])
        assert sum(g["cores"] for g in rep[key]) == rep["physical_cores"]
    for s in ctx["streams"]:
        assert s["numa"] and set(s["numa"]) <= {g["id"] for g in rep["numa_nodes"]}
        assert set(s["l3"]) <= {g["id"] for g in rep["l3_groups"]}


def test_text_output_names_every_stream():
    r = run_main("deepsparse_lite.check_hardware")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    streams, _, nstreams = _context_streams()
    assert "CPU detected with" in out  # DeepSparse's summary first
    assert "Additional CPU info" not in out
    for label in ("Kernel ISA:", "VNNI:", "BF16:", "AMX:", "Cores:", "Affinity:", "NUMA nodes:",
                  "L3 groups:", "Default context: Context(num_cores="):
        assert label in out, label
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("stream ")]
    assert len(lines) == nstreams
    for k, (ln, cpus) in enumerate(zip(lines, streams)):
        assert ln.startswith(f"stream {k}: CPUs {_ranges(cpus)} ({len(cpus)} threads")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
def test_explicit_context_streams():
    r = run_module("deepsparse_lite.check_hardware", "-ncores", "2", "-nstreams", "2", "--json")
    assert r.returncode == 0, r.stderr
    ctx = json.loads(r.stdout)["context"]
    streams, cores, nstreams = _context_streams(num_cores=2, num_streams=2)
    assert ctx["default"] is False and ctx["num_streams"] == nstreams == 2
    assert [s["cpus"] for s in ctx["streams"]] == streams


def test_affinity_mask_is_followed():
    first = min(os.sched_getaffinity(0))
    r = run_module("deepsparse_lite.check_hardware", "--json",
                   preexec_fn=lambda: os.sched_setaffinity(0, {first}))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["affinity"] == [first] and rep["physical_cores"] == 1
    assert [s["cpus"] for s in rep["context"]["streams"]] == [[first]]


def test_report_in_process_and_ranges():
    rep = hardware_report()
    text = format_report(rep)
    assert f"Default context: {rep['context']['repr']}" in text
    assert _ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8" and _ranges([3]) == "3" and _ranges([]) == ""


def test_context_failure_is_reported_not_raised(monkeypatch):
    import deepsparse_lite.check_hardware as ch

    def broken(*a, **k):
        raise RuntimeError("no streams here")

    monkeypatch.setattr(ch, "_context_report", broken)
    rep = ch.hardware_report()
    assert rep["context"]["streams"] == [] and "no streams here" in rep["context"]["error"]
    assert "Default context: unavailable (RuntimeError: no streams here)" in format_report(rep)
