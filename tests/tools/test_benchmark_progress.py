"""The benchmark CLI's progress bar: on stderr (stdout and the JSON stay clean), silenced by
-q; ProgressBar itself."""
import io
import json

from deepsparse_lite.benchmark.stream_benchmark import ProgressBar, model_stream_benchmark
from tests.tools.helpers_cli import run_main, run_module


def test_bar_on_stderr_without_q(tmp_path):
    out = tmp_path / "b.json"
    r = run_main("deepsparse_lite.benchmark", "mlp", "-t", "1", "-w", "1", "-x", out)
    assert r.returncode == 0, r.stderr
    assert "warmup:" in r.stderr and "singlestream:" in r.stderr and "%|" in r.stderr
    assert "2.0/2.0 s" in r.stderr  # the bar ends full: warm-up + timed seconds
    assert "%|" not in r.stdout and r.stdout.splitlines()[0] == "Original Model Path: mlp"
    data = json.loads(out.read_text())
    assert data["orig_model_path"] == "mlp" and data["benchmark_result"]["iterations"] >= 1


def test_no_bar_with_q():
    r = run_module("deepsparse_lite.benchmark", "resnet_tiny", "-t", "1", "-w", "0", "-q",
                   "-s", "async", "-nstreams", "2")
    assert r.returncode == 0, r.stderr
    assert "%|" not in r.stderr and "multistream:" not in r.stderr
    assert r.stdout.splitlines()[2] == "Scenario: async"


class _Model:
    batch_size = 1

    def run(self, inputs, val_inp=False):
        return inputs


def test_progress_bar_phases_and_disable():
    buf = io.StringIO()
    bar = ProgressBar(0.3, file=buf)
    model_stream_benchmark(_Model(), [], "multistream", 0.2, 0.1, num_streams=2, progress=bar)
    bar.close()
    text = buf.getvalue()
    assert "warmup:" in text and "multistream:" in text and "0.3/0.3 s" in text
    quiet = io.StringIO()
    bar = ProgressBar(0.2, disable=True, file=quiet)
    model_stream_benchmark(_Model(), [], "singlestream", 0.1, 0.1, num_streams=1, progress=bar)
    bar.close()
    assert quiet.getvalue() == ""
