"""Corrupted-but-parseable models never crash the process.

Random bytes and truncated files are covered in test_engine.py; the dangerous inputs are
models that still parse but carry hostile integers: pads, strides, axes, perms, groups,
kernel shapes, and the small int64 constants that become shapes, indices and slice
bounds. A seeded batch of such mutations of the exported fixtures is compiled and run in
ONE subprocess: a segfault (or abort) kills it and fails the test. Every refusal must be
one of the engine's own exceptions (or MemoryError for a model asking for a huge arena).
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent(r'''
    import glob, os, random, sys, collections
    import numpy as np, onnx
    from onnx import numpy_helper
    from deepsparse_lite import Engine
    from deepsparse_lite.compiler import ModelLoadError, PlanExecutionError, UnsupportedModelError

    OURS = (ModelLoadError, PlanExecutionError, UnsupportedModelError, MemoryError)
    BAD = [0, -1, -2, -100, 1, 2, 3, 7, 1 << 20, (1 << 31) - 1, -(1 << 31), 1 << 40]
    random.seed(int(sys.argv[2]))
    srcs = [s for s in sorted(glob.glob(os.path.join(sys.argv[1], "*.onnx"))) if os.path.getsize(s) < 400_000]
    stats, foreign = collections.Counter(), []
    for k in range(int(sys.argv[3])):
        m = onnx.load(random.choice(srcs))
        targets = [("attr", n, a) for n in m.graph.node for a in n.attribute
                   if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS)]
        targets += [("init", None, t) for t in m.graph.initializer
                    if t.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and np.prod(t.dims or [1]) <= 16]
        for _ in range(random.choice([1, 1, 2, 3])):
            kind, node, t = random.choice(targets)
            if kind == "attr":
                if t.type == onnx.AttributeProto.INT:
                    t.i = random.choice(BAD)
                elif len(t.ints):
                    t.ints[random.randrange(len(t.ints))] = random.choice(BAD)
            else:
                arr = numpy_helper.to_array(t).copy()
                if arr.size:
                    arr.reshape(-1)[random.randrange(arr.size)] = random.choice(BAD)
                    t.CopyFrom(numpy_helper.from_array(arr, t.name))
        path = os.path.join(sys.argv[4], "mutant.onnx")
        onnx.save(m, path)
        print("case", k, flush=True)
        try:
            eng = Engine(path, batch_size=None, num_cores=2)
        except OURS:
            stats["refused at compile"] += 1
            continue
        except Exception as exc:
            foreign.append(("compile", k, type(exc).__name__, str(exc)[:120]))
            continue
        rng = np.random.default_rng(k)
        inp = [rng.integers(-3, 40, size=s).astype(d) if np.dtype(d).kind in "iu" else
               rng.standard_normal(s).astype(d) for s, d in zip(eng.input_shapes, eng.input_dtypes)]
        try:
            eng.run(inp)
            stats["ran"] += 1
        except OURS:
            stats["refused at run"] += 1
        except Exception as exc:
            foreign.append(("run", k, type(exc).__name__, str(exc)[:120]))
        eng.close()
    print("STATS", dict(stats))
    for f in foreign:
        print("FOREIGN", f)
''')


def test_mutated_models_raise_engine_errors_and_never_crash(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", _SCRIPT, os.path.join(ROOT, "tests", "data", "exported"),
                          "7", "120", str(tmp_path)], capture_output=True, text=True, timeout=600, env=env)
    last_case = [l for l in res.stdout.splitlines() if l.startswith("case")][-1:]
    assert res.returncode == 0, f"process died (code {res.returncode}) at {last_case}: {res.stderr[-2000:]}"
    assert "STATS" in res.stdout
    foreign = [l for l in res.stdout.splitlines() if l.startswith("FOREIGN")]
    assert not foreign, "\n".join(foreign)
