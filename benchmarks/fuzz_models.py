"""Mutation fuzzing of the ONNX loader and compiler (issue 11).

    python benchmarks/fuzz_models.py --cases 3000 --seed 1 [--timeout 30] [--json out.json]

A seeded corpus of mutants of the exported fixtures (tests/data/exported/*.onnx) and the
small sample models (deepsparse_lite.models) is compiled and run with ``Engine``. Case
``k`` of seed ``s`` is always the same mutant (its own ``random.Random``), so any finding
is replayed with ``--cases 1 --start k``. Mutation kinds: byte flips and truncation of the
serialized file; hostile int / float / string attributes and attributes of the wrong type
(or removed); hostile input dims (0, negative, huge) and element types; initializer values
(NaN, inf, huge), wrong data_type, raw_data of the wrong length, dims that disagree with
the data; rewired node inputs (another tensor, a missing one, a cycle) and duplicated
outputs.

Cases run in child processes, many per child: the parent sends one case index at a time
and waits, with a per-case time bound, for the child's one-line outcome. A child that dies
(segfault, abort, OOM kill) is a *crash* of the case it was running, one that does not
answer in time is a *hang*; either way the parent starts a fresh child at the next case.
An outcome is ``ran``, ``refused`` (one of the engine's own exceptions, ``ValueError`` or
``MemoryError``), ``foreign`` (any other exception: a missing check in the compiler) or
``wrapped`` (an engine exception whose cause is a foreign one, raised by the compiler's
last-resort handlers around shape rules, passes and lowerings: not a failure, but a check
that belongs earlier). After every refusal the child compiles and runs a known-good model
and compares its output with the one it computed at start: a failed compile must leave
the engine working (``health`` failures).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import select
import subprocess
import sys
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTED = os.path.join(ROOT, "tests", "data", "exported")
SAMPLES = ("mlp", "resnet_tiny", "bert_tiny", "mobilenet_v2_tiny", "resnet_tiny-pruned90",
           "bert_tiny-pruned90", "resnet_tiny-pruned90_quant", "bert_tiny-pruned90_quant",
           "mobilenet_v2_tiny-pruned90_quant")
HEALTH_MODEL = os.path.join(EXPORTED, "squeezenet_tiny.onnx")
KINDS = ("byteflip", "truncate", "attr_int", "attr_float", "attr_string", "attr_type", "dims",
         "init_values", "init_dtype", "rewire", "dup_output")
BAD_INTS = [0, -1, -2, -100, 1, 2, 3, 7, 1 << 20, (1 << 31) - 1, -(1 << 31), 1 << 40, -(1 << 62), (1 << 63) - 1]
BAD_FLOATS = [0.0, -0.0, -1.0, 1e-45, 1e38, -1e38, float("nan"), float("inf"), -float("inf"), 1e6, 0.5]
BAD_STRINGS = ["", "bogus", "NOTSET", "SAME_UPPER", "VALID", "reflect", "edge", "cubic", "linear",
               "nearest", "\xff\xfe", "a" * 4096, "tanh", "none", "DCR", "CRD", "half_pixel"]
BAD_DIMS = [0, -1, -7, 1, 3, 1 << 31, 1 << 40, (1 << 63) - 1]
OURS_NAMES = ("ModelLoadError", "UnsupportedModelError", "PlanExecutionError", "TensorSizeError",
              "ShapeOverrideError", "ValueError", "MemoryError")
MAX_INPUT_BYTES = 64 << 20
LABEL = {"crashes": "crash", "hangs": "hang", "foreign": "foreign", "wrapped": "wrapped", "health": "health",
         "mutator_error": "mutator error"}


def default_sources():
    """Fixture paths plus the sample models (built once into the model cache)."""
    from deepsparse_lite.models import sample_model_path

    srcs = sorted(glob.glob(os.path.join(EXPORTED, "*.onnx")))
    return srcs + [sample_model_path(n) for n in SAMPLES]


# ---- mutations --------------------------------------------------------------------------
def _values(m):
    names = [i.name for i in m.graph.input] + [t.name for t in m.graph.initializer]
    return names + [o for n in m.graph.node for o in n.output if o]


def _mut_attr(m, rng, kind):
    import onnx
    from onnx import helper

    A = onnx.AttributeProto
    want = {"attr_int": (A.INT, A.INTS), "attr_float": (A.FLOAT, A.FLOATS),
            "attr_string": (A.STRING, A.STRINGS)}.get(kind)
    targets = [(n, a) for n in m.graph.node for a in n.attribute if want is None or a.type in want]
    if not targets:
        return None
    n, a = rng.choice(targets)
    where = f"{n.op_type} '{n.name}' {a.name}"
    if kind == "attr_int":
        v = rng.choice(BAD_INTS)
        if a.type == A.INT or not len(a.ints):
            a.i = v
        else:
            a.ints[rng.randrange(len(a.ints))] = v
            if rng.random() < 0.2:
                a.ints.append(v)
        return f"{where} <- {v}"
    if kind == "attr_float":
        v = rng.choice(BAD_FLOATS)
        if a.type == A.FLOAT or not len(a.floats):
            a.f = v
        else:
            a.floats[rng.randrange(len(a.floats))] = v
        return f"{where} <- {v}"
    if kind == "attr_string":
        v = rng.choice(BAD_STRINGS)
        if a.type == A.STRING or not len(a.strings):
            a.s = v.encode("utf-8", errors="surrogateescape")
        else:
            a.strings[rng.randrange(len(a.strings))] = v.encode()
        return f"{where} <- {v[:20]!r}"
    # attr_type: the same name with a value of another type, an empty list, no type, or gone
    choice = rng.choice(["int", "float", "ints", "floats", "string", "strings", "tensor", "empty", "untyped",
                         "remove"])
    if choice == "remove":
        n.attribute.remove(a)
        return f"{where} removed"
    if choice == "untyped":
        a.type = A.UNDEFINED
        return f"{where} type UNDEFINED"
    val = {"int": 3, "float": 1.5, "ints": [1, 2, 3], "floats": [0.5, 2.0], "string": "x", "strings": ["a", "b"],
           "tensor": onnx.numpy_helper.from_array(__import__("numpy").array([1.0, 2.0], "float32")),
           "empty": []}[choice]
    if choice == "empty":
        new = onnx.AttributeProto(name=a.name, type=A.INTS)
    else:
        new = helper.make_attribute(a.name, val)
    a.CopyFrom(new)
    return f"{where} -> {choice} {val if choice != 'tensor' else 'tensor'}"


def _mut_dims(m, rng):
    import onnx

    init = {t.name for t in m.graph.initializer}
    vis = [vi for vi in m.graph.input if vi.name not in init]
    vis += list(m.graph.value_info) + list(m.graph.output) if rng.random() < 0.3 else []
    vis = [vi for vi in vis if vi.type.HasField("tensor_type")]
    if not vis:
        return None
    vi = rng.choice(vis)
    shape = vi.type.tensor_type.shape
    r = rng.random()
    if r < 0.12:
        vi.type.tensor_type.elem_type = rng.choice([onnx.TensorProto.STRING, onnx.TensorProto.BOOL, 0, 99,
                                                    onnx.TensorProto.INT8, onnx.TensorProto.DOUBLE,
                                                    onnx.TensorProto.COMPLEX64, onnx.TensorProto.FLOAT16])
        return f"{vi.name} elem_type <- {vi.type.tensor_type.elem_type}"
    if r < 0.22 and len(shape.dim):
        del shape.dim[rng.randrange(len(shape.dim))]
        return f"{vi.name} rank -1"
    if r < 0.3:
        shape.dim.add().dim_value = rng.choice([1, 2])
        return f"{vi.name} rank +1"
    if r < 0.36:
        vi.type.tensor_type.ClearField("shape")
        return f"{vi.name} shape removed"
    if not len(shape.dim):
        return None
    d = shape.dim[rng.randrange(len(shape.dim))]
    if rng.random() < 0.15:
        d.dim_param = "N"
        return f"{vi.name} dim <- 'N'"
    v = rng.choice(BAD_DIMS)
    d.dim_value = v
    return f"{vi.name} dim <- {v}"


def _mut_init(m, rng, kind):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    inits = list(m.graph.initializer)
    if not inits:
        return None
    small = [t for t in inits if int(np.prod(t.dims or [1])) <= 64]
    t = rng.choice(small if small and rng.random() < 0.6 else inits)
    if kind == "init_values":
        try:
            arr = numpy_helper.to_array(t).copy()
        except Exception:
            return None
        if not arr.size:
            return None
        flat = arr.reshape(-1)
        if arr.dtype.kind == "f":
            v = rng.choice(BAD_FLOATS + [65504.0, 3e38])
            with np.errstate(all="ignore"):
                if rng.random() < 0.3:
                    flat[:] = v
                else:
                    flat[rng.randrange(flat.size)] = v
        elif arr.dtype.kind in "iu":
            v = rng.choice(BAD_INTS)
            with np.errstate(all="ignore"):
                flat[rng.randrange(flat.size)] = np.array(v).astype(arr.dtype)
        else:
            return None
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
        return f"initializer {t.name} value <- {v}"
    r = rng.random()
    if r < 0.35:
        old = t.data_type
        t.data_type = rng.choice([onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.INT8,
                                  onnx.TensorProto.DOUBLE, onnx.TensorProto.BOOL, onnx.TensorProto.STRING,
                                  onnx.TensorProto.FLOAT16, 0, 77])
        return f"initializer {t.name} data_type {old} -> {t.data_type}"
    if r < 0.65:
        try:
            raw = t.raw_data or numpy_helper.to_array(t).tobytes()
        except Exception:  # an earlier mutation of this case already broke it
            return None
        t.ClearField("float_data"), t.ClearField("int64_data"), t.ClearField("int32_data")
        cut = rng.choice([0, 1, len(raw) // 2, len(raw) - 1, len(raw) + 3, len(raw) * 2])
        t.raw_data = raw[:cut] if cut <= len(raw) else raw + b"\x7f" * (cut - len(raw))
        return f"initializer {t.name} raw_data {len(raw)} -> {len(t.raw_data)} bytes"
    if len(t.dims) and rng.random() < 0.5:
        j = rng.randrange(len(t.dims))
        t.dims[j] = rng.choice(BAD_DIMS)
        return f"initializer {t.name} dims[{j}] <- {t.dims[j]}"
    t.dims.append(rng.choice([1, 2, 0]))
    return f"initializer {t.name} rank +1"


def _mut_rewire(m, rng):
    nodes = list(m.graph.node)
    if not nodes:
        return None
    k = rng.randrange(len(nodes))
    n = nodes[k]
    r = rng.random()
    if r < 0.3 and len(n.input):
        j = rng.randrange(len(n.input))
        n.input[j] = rng.choice(_values(m))
        return f"{n.op_type} '{n.name}' input {j} <- {n.input[j]!r}"
    if r < 0.45 and len(n.input):
        j = rng.randrange(len(n.input))
        n.input[j] = rng.choice(["__missing__", ""])
        return f"{n.op_type} '{n.name}' input {j} <- {n.input[j]!r}"
    if r < 0.65 and k + 1 < len(nodes) and len(n.input):  # a later node's output: a cycle
        later = nodes[rng.randrange(k + 1, len(nodes))]
        if not len(later.output):
            return None
        n.input[rng.randrange(len(n.input))] = later.output[0]
        return f"{n.op_type} '{n.name}' input <- later output {later.output[0]!r} (cycle)"
    if r < 0.8:
        if rng.random() < 0.5:
            n.input.append(rng.choice(_values(m)))
            return f"{n.op_type} '{n.name}' extra input"
        if len(n.input):
            del n.input[-1]
            return f"{n.op_type} '{n.name}' last input dropped"
        return None
    m.graph.node.remove(n)
    return f"node {n.op_type} '{n.name}' removed"


def _mut_dup_output(m, rng):
    nodes = list(m.graph.node)
    outs = [o for n in nodes for o in n.output if o]
    if not nodes or not outs:
        return None
    r = rng.random()
    if r < 0.25:
        m.graph.output.append(m.graph.output[rng.randrange(len(m.graph.output))])
        return f"graph output {m.graph.output[-1].name} listed twice"
    n = rng.choice(nodes)
    if not len(n.output):
        return None
    j = rng.randrange(len(n.output))
    if r < 0.7:
        n.output[j] = rng.choice(outs)
        return f"{n.op_type} '{n.name}' output {j} <- {n.output[j]!r} (a second producer)"
    names = [i.name for i in m.graph.input] + [t.name for t in m.graph.initializer]
    n.output[j] = rng.choice(names) if names else outs[0]
    return f"{n.op_type} '{n.name}' output {j} <- {n.output[j]!r} (overwrites an input / initializer)"


def make_mutant(seed: int, k: int, sources, cache=None):
    """(source, kind, description, bytes) of case ``k``: deterministic in (seed, k)."""
    import onnx

    rng = random.Random(f"{seed}:{k}")
    src = rng.choice(list(sources))
    kind = rng.choice(KINDS)
    cache = {} if cache is None else cache
    if src not in cache:
        cache[src] = open(src, "rb").read()
    data = cache[src]
    name = os.path.basename(os.path.dirname(src)) if os.path.basename(src) == "model.onnx" else os.path.basename(src)
    if kind == "byteflip":
        buf = bytearray(data)
        flips = [rng.randrange(len(buf)) for _ in range(rng.choice([1, 2, 4, 16]))]
        for p in flips:
            buf[p] = rng.randrange(256) if rng.random() < 0.5 else buf[p] ^ (1 << rng.randrange(8))
        return name, kind, f"bytes at {flips[:4]}", bytes(buf)
    if kind == "truncate":
        cut = rng.randrange(1, len(data))
        return name, kind, f"cut at {cut}/{len(data)}", data[:cut]
    descs = []
    for attempt in range(8):
        m = onnx.load_from_string(data)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            if kind.startswith("attr"):
                d = _mut_attr(m, rng, kind)
            elif kind == "dims":
                d = _mut_dims(m, rng)
            elif kind.startswith("init"):
                d = _mut_init(m, rng, kind)
            elif kind == "rewire":
                d = _mut_rewire(m, rng)
            else:
                d = _mut_dup_output(m, rng)
            if d:
                descs.append(d)
        if descs:
            return name, kind, "; ".join(descs), m.SerializeToString()
    return name, kind, "no mutation applied", data


# ---- the child: runs cases named on stdin ------------------------------------------------
def _inputs_for(eng, k):
    import numpy as np

    rng = np.random.default_rng(k)
    out = []
    for spec in eng._model.inputs:
        shape = [2 if d is None else int(d) for d in spec.shape]
        dt = np.dtype(spec.dtype)
        n = dt.itemsize
        for d in shape:
            n *= max(d, 0)
        if n > MAX_INPUT_BYTES:
            return None
        if dt.kind in "iu":
            out.append(rng.integers(0, 8, size=shape).astype(dt))
        elif dt.kind == "b":
            out.append(rng.random(shape) < 0.5)
        else:
            out.append(rng.standard_normal(shape).astype(dt))
    return out


def _health_check(state):
    """Compile and run the known-good model again: it must still give the first answer."""
    import numpy as np
    from deepsparse_lite import Engine

    with Engine(HEALTH_MODEL, batch_size=None, num_cores=1) as eng:
        out = eng.run(state["health_in"])
    if "health_out" not in state:
        state["health_out"] = out
        return True
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(out, state["health_out"]))


def _classify(exc):
    from deepsparse_lite.compiler import ModelLoadError, PlanExecutionError, UnsupportedModelError

    if isinstance(exc, (ModelLoadError, UnsupportedModelError, PlanExecutionError, ValueError, MemoryError)):
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, (ModelLoadError, UnsupportedModelError, PlanExecutionError,
                                                        ValueError, MemoryError, NotImplementedError)):
            return "wrapped", type(cause).__name__
        return "refused", type(exc).__name__
    return "foreign", type(exc).__name__


def run_case(path, k, state):
    """Outcome dict of one mutant file: compile, then run on random inputs of its shapes."""
    from deepsparse_lite import Engine

    res = {"stage": "compile"}
    eng = None
    try:
        eng = Engine(path, batch_size=None, num_cores=1 + k % 2)
        res["stage"] = "run"
        inp = _inputs_for(eng, k)
        if inp is None:
            res.update(outcome="ran", note="inputs too big to make: compile only")
        else:
            eng.run(inp)
            res.update(outcome="ran")
    except BaseException as exc:  # noqa: B902 - the classification is the point
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        res["outcome"], res["exc"] = _classify(exc)
        res["msg"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        if eng is not None:
            eng.close()
    if res["outcome"] != "ran" and not _health_check(state):
        res["health"] = "the good model gave a different answer after this failure"
    return res


def child_main(seed, sources, workdir):
    import resource

    import numpy as np

    lim = int(os.environ.get("DSL_FUZZ_AS_LIMIT", 8 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))  # a runaway allocation fails, not the host
    state = {"health_in": [np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)]}
    _health_check(state)
    cache = {}
    path = os.path.join(workdir, f"mutant_{os.getpid()}.onnx")
    print("FUZZ READY", flush=True)
    # test hooks: make the child die or stall at one case (tests/test_fuzz_models.py checks
    # that the parent records it and goes on with a fresh child)
    die_at = int(os.environ.get("DSL_FUZZ_ABORT_AT", -1))
    stall_at = int(os.environ.get("DSL_FUZZ_STALL_AT", -1))
    for line in sys.stdin:
        k = int(line)
        if k == die_at:
            os.abort()
        if k == stall_at:
            time.sleep(3600)
        try:
            src, kind, desc, data = make_mutant(seed, k, sources, cache)
        except Exception as exc:  # a mutator bug is the harness's, not the engine's
            print("FUZZ " + json.dumps({"case": k, "src": "?", "kind": "?", "desc": "", "secs": 0.0,
                                        "outcome": "mutator_error", "msg": f"{type(exc).__name__}: {exc}"}),
                  flush=True)
            continue
        with open(path, "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        res = run_case(path, k, state)
        res.update(case=k, src=src, kind=kind, desc=desc[:300], secs=round(time.perf_counter() - t0, 3))
        print("FUZZ " + json.dumps(res), flush=True)


# ---- the parent ---------------------------------------------------------------------------
class _Child:
    def __init__(self, seed, sources, workdir, env):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--seed", str(seed), "--workdir", workdir,
               "--sources", *sources]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, bufsize=0)
        self.stderr_tail, self.buf = "", b""
        if self._line(120.0) != "FUZZ READY":
            raise RuntimeError(f"fuzz child did not start: {self.close()}")

    def _line(self, timeout):
        """The next protocol line, None at EOF, 'TIMEOUT' after ``timeout`` seconds (raw
        reads and our own line buffer: select() cannot see lines a file object buffered)."""
        end = time.monotonic() + timeout
        out, err = self.p.stdout.fileno(), self.p.stderr.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.startswith(b"FUZZ "):
                    return line.decode(errors="replace")
            left = end - time.monotonic()
            if left <= 0:
                return "TIMEOUT"
            r, _, _ = select.select([out, err], [], [], left)
            if err in r:
                chunk = os.read(err, 65536).decode(errors="replace")
                self.stderr_tail = (self.stderr_tail + chunk)[-3000:]
            if out in r:
                chunk = os.read(out, 65536)
                if not chunk:
                    return None
                self.buf += chunk

    def run(self, k, timeout):
        self.p.stdin.write(f"{k}\n".encode())
        self.p.stdin.flush()
        return self._line(timeout)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        return f"exit code {self.p.returncode}: {self.stderr_tail[-1500:]}"


def fuzz(cases, seed, sources=None, timeout=30.0, start=0, workdir=None, env=None, log=None):
    """Run cases ``start .. start+cases-1``; returns the report dict (see module docstring)."""
    import tempfile

    sources = list(sources or default_sources())
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("DSL_MAX_TENSOR_BYTES", str(256 << 20))
    env.setdefault("OMP_NUM_THREADS", "2")
    workdir = workdir or tempfile.mkdtemp(prefix="dsl_fuzz_")
    report = {"seed": seed, "start": start, "cases": cases, "outcomes": Counter(), "by_kind": {},
              "crashes": [], "hangs": [], "foreign": [], "wrapped": [], "health": [], "mutator_error": [],
              "children": 0,
              "max_case_secs": 0.0}
    t0 = time.perf_counter()
    child = None
    for k in range(start, start + cases):
        if child is None:
            child = _Child(seed, sources, workdir, env)
            report["children"] += 1
        line = child.run(k, timeout)
        if line is None or line == "TIMEOUT":
            what = "hangs" if line == "TIMEOUT" else "crashes"
            info = child.close()
            child = None
            try:
                src, kind, desc, _ = make_mutant(seed, k, sources)
            except Exception as exc:
                src, kind, desc = "?", "?", f"(mutant not remade: {type(exc).__name__}: {exc})"
            res = {"case": k, "src": src, "kind": kind, "desc": desc[:300], "outcome": LABEL[what], "info": info}
            report[what].append(res)
        else:
            res = json.loads(line[5:])
            report["max_case_secs"] = max(report["max_case_secs"], res["secs"])
            if res["outcome"] in ("foreign", "wrapped", "mutator_error"):
                report[res["outcome"]].append(res)
            if "health" in res:
                report["health"].append(res)
        report["outcomes"][res["outcome"]] += 1
        report["by_kind"].setdefault(res["kind"], Counter())[res["outcome"]] += 1
        if log is not None and res["outcome"] not in ("ran", "refused"):
            print(f"case {k} [{res['kind']}] {res['src']}: {res['outcome']} {res.get('msg', res.get('info', ''))[:200]}"
                  f"\n    {res['desc'][:200]}", file=log, flush=True)
    if child is not None:
        child.close()
    report["secs"] = round(time.perf_counter() - t0, 1)
    return report


def summary(report) -> str:
    o = report["outcomes"]
    lines = [f"seed {report['seed']}: {report['cases']} mutants in {report['secs']} s ({report['children']} "
             f"child processes, slowest case {report['max_case_secs']:.2f} s): ran {o['ran']}, refused {o['refused']}, "
             f"crashes {len(report['crashes'])}, hangs {len(report['hangs'])}, foreign {len(report['foreign'])}, "
             f"wrapped {len(report['wrapped'])}, health failures {len(report['health'])}"]
    for kind in KINDS:
        c = report["by_kind"].get(kind, {})
        lines.append(f"  {kind:<12} " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    for what in ("crashes", "hangs", "foreign", "wrapped", "health", "mutator_error"):
        for r in report[what]:
            lines.append(f"  {LABEL[what]}: case {r['case']} [{r['kind']}] {r['src']}: "
                         f"{r.get('msg', r.get('info', r.get('health', '')))[:240]}\n      mutation: {r['desc'][:240]}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="first case index (replay one with --cases 1)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds a case may take before it is a hang")
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("--sources", nargs="*", help="ONNX files to mutate (default: fixtures + sample models)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        sys.path.insert(0, ROOT)
        return child_main(args.seed, args.sources, args.workdir)
    report = fuzz(args.cases, args.seed, args.sources, args.timeout, args.start, log=sys.stderr)
    print(summary(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=dict)
    bad = report["crashes"] or report["hangs"] or report["foreign"] or report["health"] or report["mutator_error"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
