"""deepsparse_lite.benchmark: result containers, timing loops, benchmark_model and the CLI
(DeepSparse's flags, stdout labels and JSON keys). Runs are short (<= 1 s) and no test
asserts on a timing value."""
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deepsparse_lite.benchmark import BatchBenchmarkResult, BenchmarkResults, benchmark_model
from deepsparse_lite.benchmark.benchmark_model import parse_args
from deepsparse_lite.benchmark.stream_benchmark import model_stream_benchmark, summarize

try:
    import deepsparse_lite.engine  # noqa: F401
    HAVE_ENGINE = True
except ImportError:  # the engine lands separately; these tests then wait for it
    HAVE_ENGINE = False
try:
    import onnxruntime  # noqa: F401
    HAVE_ORT = True
except ImportError:
    HAVE_ORT = False

needs_engine = pytest.mark.skipif(not HAVE_ENGINE, reason="deepsparse_lite.engine not available")
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime not installed")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PERCENTILE_KEYS = ["25.0%", "50.0%", "75.0%", "90.0%", "95.0%", "99.0%", "99.9%"]
RESULT_KEYS = ["scenario", "items_per_sec", "seconds_ran", "iterations", "median", "mean", "std"] + PERCENTILE_KEYS
EXPORT_KEYS = ["engine", "version", "orig_model_path", "model_path", "batch_size", "input_shapes",
               "num_cores", "scenario", "scheduler", "seconds_to_run", "num_streams", "benchmark_result",
               "fraction_of_supported_ops"]
SUMMARY_LABELS = ["Original Model Path: ", "Batch Size: ", "Scenario: ", "Throughput (items/sec): ",
                  "Latency Mean (ms/batch): ", "Latency Median (ms/batch): ", "Latency Std (ms/batch): ",
                  "Iterations: "]


@pytest.fixture
def tiny(tmp_path):
    """x: float [N, 8] -> Reshape [N, 2, 4] -> Flatten -> y [N, 8]."""
    shape = numpy_helper.from_array(np.array([0, 2, 4], np.int64), "shape")
    g = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["h"]),
         helper.make_node("Flatten", ["h"], ["y"], axis=1)],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], [shape])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture
def clean_env(monkeypatch):
    """benchmark_model sets the pinning variables and may lower the package log level."""
    for var in ("NM_BIND_THREADS_TO_CORES", "NM_BIND_THREADS_TO_SOCKETS"):
        monkeypatch.delenv(var, raising=False)
    logger = logging.getLogger("deepsparse_lite")
    level = logger.level
    yield monkeypatch
    logger.setLevel(level)


def _md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


# ----------------------------------------------------------------------------- results
def test_batch_benchmark_result():
    r = BatchBenchmarkResult(10.0, 10.5, 4, inputs=[1], outputs=[2], extras="e")
    assert (r.time_start, r.time_end, r.time_elapsed, r.batch_size) == (10.0, 10.5, 0.5, 4)
    assert (r.inputs, r.outputs, r.extras) == ([1], [2], "e")
    assert r.batches_per_second == 2.0 and r.items_per_second == 8.0
    assert r.ms_per_batch == 500.0 and r.ms_per_item == 125.0
    assert str(r) == "BatchBenchmarkResult(ms_per_batch=500.0, items_per_second=8.0)"
    assert repr(r).startswith("BatchBenchmarkResult({'time_start': 10.0, 'time_end': 10.5, 'size': 4,")


def test_benchmark_results_units_and_str():
    res = BenchmarkResults()
    res.append_batch(0.0, 0.5, 2)
    res.append_batch(1.0, 2.0, 2, inputs=["i"], outputs=["o"])
    res.append_batch(3.0, 4.5, 1)
    assert len(res) == res.num_batches == 3 and res.num_items == 5
    assert [b.batch_size for b in res] == res.batch_sizes == [2, 2, 1]
    assert res[1].inputs == ["i"] and res.inputs == [None, ["i"], None] and res.outputs[1] == ["o"]
    assert res.batch_times == [0.5, 1.0, 1.5]
    assert res.batch_times_mean == 1.0 and res.batch_times_median == 1.0  # seconds
    assert res.batch_times_std == pytest.approx(np.std([0.5, 1.0, 1.5]))
    assert res.items_per_second == 5 / 3.0 and res.batches_per_second == 1.0
    assert res.ms_per_batch == 1000.0 and res.ms_per_item == 600.0  # milliseconds
    assert str(res) == ("BenchmarkResults:\n\titems_per_second: {}\n\tms_per_batch: 1000.0\n"
                        "\tbatch_times_mean: 1.0\n\tbatch_times_median: 1.0\n\tbatch_times_std: {}"
                        ).format(5 / 3.0, np.std([0.5, 1.0, 1.5]).item())
    assert repr(res).startswith("BenchmarkResults({'items_per_second'")


# ----------------------------------------------------------------------------- timing loops
def test_summarize_statistics():
    times = [[0.0, 0.001], [0.001, 0.003], [0.003, 0.006], [0.006, 0.010]]
    out = summarize(times, 2, "singlestream")
    assert list(out) == RESULT_KEYS
    assert out["iterations"] == 4
    assert out["items_per_sec"] == pytest.approx(2 * 4 / 0.010)  # wall clock, first start..last end
    assert out["seconds_ran"] == pytest.approx(0.010)
    assert out["mean"] == pytest.approx(2.5) and out["median"] == pytest.approx(2.5)
    assert out["50.0%"] == pytest.approx(2.5) and out["25.0%"] == pytest.approx(1.75)
    assert out["std"] == pytest.approx(np.std([1, 2, 3, 4]))


class FakeModel:
    batch_size = 3

    def __init__(self):
        self.threads = set()
        self.calls = 0
        self.lock = threading.Lock()

    def run(self, inp, val_inp=True):
        assert val_inp is False  # the benchmark never validates on the hot path
        with self.lock:
            self.calls += 1
            self.threads.add(threading.get_ident())
        return inp


@pytest.mark.parametrize("scenario,streams", [("singlestream", 1), ("multistream", 3), ("elastic", 2)])
def test_model_stream_benchmark(scenario, streams):
    model = FakeModel()
    out = model_stream_benchmark(model, [np.zeros((3, 2))], scenario, 0.2, 0.0, streams)
    assert out["scenario"] == scenario and out["iterations"] >= 1
    assert out["iterations"] == model.calls  # warm-up of 0 s made no calls
    if scenario != "singlestream":
        assert len(model.threads) == streams  # one Python request thread per stream
        assert threading.get_ident() not in model.threads


def test_no_timings_raises():
    with pytest.raises(Exception, match="Generated no batch timings, try extending benchmark time with '--time'"):
        model_stream_benchmark(FakeModel(), [np.zeros((3, 2))], "singlestream", 0, 0, 1)
    with pytest.raises(Exception, match="Unknown scenario"):
        model_stream_benchmark(FakeModel(), [np.zeros((3, 2))], "bogus", 0.1, 0, 1)


def test_worker_errors_surface():
    class Broken(FakeModel):
        def run(self, inp, val_inp=True):
            raise RuntimeError("NM: error: boom")
    with pytest.raises(RuntimeError, match="boom"):
        model_stream_benchmark(Broken(), [np.zeros((3, 2))], "multistream", 0.2, 0, 2)


# ----------------------------------------------------------------------------- argparse
def test_cli_defaults_and_flags():
    a = parse_args(["m.onnx"])
    assert (a.model_path, a.batch_size, a.input_shapes, a.num_cores, a.scenario) == ("m.onnx", 1, "", None, "sync")
    assert (a.time, a.warmup_time, a.num_streams, a.thread_pinning, a.engine) == (10, 2, None, "core", "deepsparse")
    assert (a.quiet, a.export_path) == (False, None)
    a = parse_args(["m.onnx", "-b", "4", "-shapes", "[1,8]", "-ncores", "2", "-s", "async", "-t", "3",
                    "-w", "0", "-nstreams", "2", "-pin", "numa", "-e", "onnxruntime", "-q", "-x", "o.json"])
    assert (a.batch_size, a.input_shapes, a.num_cores, a.scenario, a.time, a.warmup_time) == (4, "[1,8]", 2, "async", 3, 0)
    assert (a.num_streams, a.thread_pinning, a.engine, a.quiet, a.export_path) == (2, "numa", "onnxruntime", True, "o.json")
    assert parse_args(["m", "-i", "[2,8]"]).input_shapes == "[2,8]"
    with pytest.raises(SystemExit):
        parse_args(["m", "-s", "bogus"])
    with pytest.raises(SystemExit):
        parse_args(["m", "-pin", "everything"])


# ----------------------------------------------------------------------------- benchmark_model
CUSTOM_ENGINE = """
import numpy as np

class CustomEngine:
    def __init__(self, model_path, batch_size, num_cores):
        self.batch_size = batch_size
        self.scheduler = "custom"

    def generate_random_inputs(self):
        return [np.zeros((self.batch_size, 8), np.float32)]

    def run(self, inp, val_inp=True):
        return inp
"""


@needs_engine
def test_custom_engine_and_invalid_engine(tiny, tmp_path, clean_env):
    script = tmp_path / "my_engine.py"
    script.write_text(CUSTOM_ENGINE)  # a user engine loaded by -e path.py:Class
    out = benchmark_model(tiny, time=0.2, warmup_time=0, engine=f"{script}:CustomEngine", batch_size=2)
    assert out["scheduler"] == "custom" and out["benchmark_result"]["iterations"] >= 1
    assert out["fraction_of_supported_ops"] is None
    with pytest.raises(ValueError, match="Invalid engine choice 'tensorflow'"):
        benchmark_model(tiny, time=0.2, warmup_time=0, engine="tensorflow")


@needs_engine
def test_benchmark_model_sync(tiny, clean_env):
    before = _md5(tiny)
    out = benchmark_model(tiny, batch_size=2, input_shapes="[5,8]", time=0.3, warmup_time=0)
    assert list(out) == EXPORT_KEYS
    assert list(out["benchmark_result"]) == RESULT_KEYS
    assert out["scenario"] == out["benchmark_result"]["scenario"] == "singlestream"
    assert out["scheduler"] == "Scheduler.default"
    assert out["num_streams"] == 1 and out["batch_size"] == 2 and out["input_shapes"] == [[5, 8]]
    assert out["model_path"] == out["orig_model_path"] == tiny  # never a temp copy
    assert isinstance(out["num_cores"], int) and out["num_cores"] >= 1
    assert out["engine"].startswith("deepsparse_lite.engine.Engine:\n\tonnx_file_path: ")
    assert out["fraction_of_supported_ops"] == 1.0
    assert out["benchmark_result"]["iterations"] >= 1
    assert os.environ["NM_BIND_THREADS_TO_CORES"] == "1"  # -pin core (default), set before compile
    assert _md5(tiny) == before


@needs_engine
@pytest.mark.parametrize("scenario,pin", [("async", "numa"), ("elastic", "none")])
def test_benchmark_model_async(tiny, clean_env, scenario, pin):
    out = benchmark_model(tiny, scenario=scenario, num_cores=2, time=0.3, warmup_time=0.1,
                          thread_pinning=pin, quiet=True)
    expect = {"async": ("multistream", "Scheduler.multi_stream"), "elastic": ("elastic", "Scheduler.elastic")}
    assert (out["scenario"], out["scheduler"]) == expect[scenario]
    assert out["num_streams"] == 1  # max(1, num_cores // 2)
    assert os.environ["NM_BIND_THREADS_TO_CORES"] == "0"
    assert os.environ["NM_BIND_THREADS_TO_SOCKETS"] == ("1" if pin == "numa" else "0")
    out = benchmark_model(tiny, scenario=scenario, num_streams=2, time=0.3, warmup_time=0, quiet=True)
    assert out["num_streams"] == 2


@needs_engine
def test_sync_forces_one_stream(tiny, clean_env):
    out = benchmark_model(tiny, scenario="sync", num_streams=4, time=0.2, warmup_time=0, quiet=True)
    assert out["num_streams"] == 1


@needs_engine
@needs_ort
def test_onnxruntime_engine(tiny, clean_env, tmp_path):
    before = _md5(tiny)
    export = tmp_path / "ort.json"
    out = benchmark_model(tiny, batch_size=3, time=0.3, warmup_time=0, engine="onnxruntime",
                          num_cores=1, export_path=str(export), quiet=True)
    assert out["engine"].startswith("ORTEngine:\n\tonnx_file_path: ")
    assert out["scheduler"] == "None" and out["fraction_of_supported_ops"] is None
    assert json.loads(export.read_text())["benchmark_result"]["iterations"] >= 1
    assert _md5(tiny) == before
    from deepsparse_lite.benchmark.ort_engine import ORTEngine
    ort = ORTEngine(tiny, batch_size=2, num_cores=1)
    x = np.random.rand(2, 8).astype(np.float32)
    np.testing.assert_array_equal(ort.run([x])[0], x)
    assert ort.input_shapes == [(2, 8)]
    with pytest.raises(ValueError, match="must match the batch size"):
        ort.run([np.zeros((3, 8), np.float32)])


# ----------------------------------------------------------------------------- CLI (subprocess)
def _cli(*args):
    env = dict(os.environ)
    for var in ("NM_BIND_THREADS_TO_CORES", "NM_BIND_THREADS_TO_SOCKETS", "NM_ARCH", "DSL_ISA"):
        env.pop(var, None)
    code = "import sys; from deepsparse_lite.benchmark import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@needs_engine
def test_cli_sync_summary_and_export(tiny, tmp_path):
    before = _md5(tiny)
    export = tmp_path / "out.json"
    r = _cli(tiny, "-t", "1", "-w", "0", "-b", "2", "-i", "[2,8]", "-x", str(export))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()[-8:]
    assert [line[:len(label)] for line, label in zip(lines, SUMMARY_LABELS)] == SUMMARY_LABELS
    assert lines[0] == f"Original Model Path: {tiny}"
    assert lines[1] == "Batch Size: 2" and lines[2] == "Scenario: sync"  # the raw CLI value
    for line in lines[3:7]:
        float(line.split(": ")[1])
        assert len(line.split(".")[-1]) == 4  # {:.4f}
    assert int(lines[7].split(": ")[1]) >= 1
    assert "Thread pinning to cores enabled" in r.stderr
    assert "Starting 'singlestream' performance measurements for 1 seconds" in r.stderr
    data = json.loads(export.read_text())
    assert list(data) == EXPORT_KEYS and list(data["benchmark_result"]) == RESULT_KEYS
    assert data["scenario"] == "singlestream" and data["scheduler"] == "Scheduler.default"
    assert data["seconds_to_run"] == 1 and data["input_shapes"] == [[2, 8]]
    assert _md5(tiny) == before


@needs_engine
def test_cli_async_quiet(tiny):
    r = _cli(tiny, "-t", "1", "-w", "0", "-s", "async", "-nstreams", "2", "-q")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[2] == "Scenario: async"
    assert "Starting" not in r.stderr  # -q lowers logging to warnings


def test_onnxruntime_missing_is_a_clear_error(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import -> ImportError
    from deepsparse_lite.benchmark.ort_engine import ORTEngine
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        ORTEngine(tiny)
