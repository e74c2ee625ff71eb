"""The seed documents' Context / MultiModelEngine / Engine / compile_model examples run as
written (examples/), with zoo: stubs resolved to the package's local sample models."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["context_multimodel.py", "engine_multi_stream.py", "engine_num_streams.py",
            "compile_model_schedulers.py"]
# Their zoo: stubs name pruned95_quant / pruned90_quant models.
NEEDS_INT8 = {"context_multimodel.py", "engine_multi_stream.py", "engine_num_streams.py"}


def _refused_qdq(stderr: str) -> bool:
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return "UnsupportedModelError" in last and ("QuantizeLinear" in last
                                                or "DequantizeLinear" in last)


@pytest.mark.parametrize("name", EXAMPLES)
def test_seed_example_runs(name):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)], capture_output=True,
                         text=True, timeout=600, env=env, cwd=ROOT)
    if res.returncode != 0 and name in NEEDS_INT8 and _refused_qdq(res.stderr):
        # The stub names a pruned-quantized model and resolves to the QDQ sample variant; the
        # engine refuses QuantizeLinear/DequantizeLinear until the INT8 ops (issue 8) land.
        # Any other failure still fails; once the ops land this passes for real.
        pytest.xfail("needs the INT8 ops (issue 8): " + res.stderr.strip().splitlines()[-1])
    assert res.returncode == 0, res.stderr[-3000:]
    if name == "context_multimodel.py":
        assert "(64, 1000)" in res.stdout
    if name.startswith("engine_"):
        assert "array([[" in res.stdout and "dtype=float32" in res.stdout
    if name == "engine_num_streams.py":
        assert "capping to" in res.stderr
