"""The seed's Pipeline example runs as written (examples/pipeline_sentiment.py). It uses the
BERT-base pruned90_quant sample, which the engine seed examples build and cache too."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_pipeline_seed_example_runs():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "pipeline_sentiment.py")],
                         capture_output=True, text=True, timeout=900, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"labels=\['(positive|negative)'\] scores=\[0\.\d+", res.stdout), res.stdout
