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


@pytest.mark.parametrize("name", EXAMPLES)
def test_seed_example_runs(name):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)], capture_output=True,
                         text=True, timeout=600, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    if name == "context_multimodel.py":
        assert "(64, 1000)" in res.stdout
    if name.startswith("engine_"):
        assert "array([[" in res.stdout and "dtype=float32" in res.stdout
    if name == "engine_num_streams.py":
        assert "capping to" in res.stderr
