"""A conformance worker: a fresh interpreter that runs cases sent one per line as JSON.

Protocol: the first line written is ``{"ready": true, ...}``; then for each request line
``{"case": {...}}`` (a :class:`harness.Case` as a dict) one result line. The protocol uses
a private copy of the original stdout; fd 1 is redirected to stderr so that anything the
engine or its C code prints cannot corrupt it. ``faulthandler`` writes the Python stack
of a segfault to stderr, which the parent keeps for the crash message.

Started by :class:`harness.Worker` as ``python -m tests.conformance.worker``.
"""
from __future__ import annotations

import faulthandler
import glob
import json
import os
import re
import sys
import time
import traceback
import warnings

import numpy as np

THREADS = int(os.environ.get("DSL_CONFORMANCE_THREADS", "1"))
#: set by the harness's own tests: cases named __crash__ / __hang__ do what they say
SELFTEST = os.environ.get("DSL_CONFORMANCE_SELFTEST") == "1"


def _engine():
    import deepsparse_lite
    from deepsparse_lite import compiler
    import deepsparse_lite.ops  # noqa: F401  (registers every op)
    return deepsparse_lite, compiler


# --------------------------------------------------------------------------------------
# Test data, loaded as ONNX's backend runner loads it
# --------------------------------------------------------------------------------------

def _load_proto(path: str, type_proto):
    """onnx/backend/test/runner: Runner._load_proto (tensor, sequence or optional)."""
    import onnx
    from onnx import numpy_helper

    with open(path, "rb") as f:
        content = f.read()
    if type_proto is not None and type_proto.HasField("sequence_type"):
        seq = onnx.SequenceProto()
        seq.ParseFromString(content)
        return None, numpy_helper.to_list(seq)
    if type_proto is not None and type_proto.HasField("optional_type"):
        opt = onnx.OptionalProto()
        opt.ParseFromString(content)
        return None, numpy_helper.to_optional(opt)
    t = onnx.TensorProto()
    t.ParseFromString(content)
    arr = numpy_helper.to_array(t)
    if (type_proto is not None and type_proto.HasField("tensor_type") and arr.dtype == np.uint16
            and type_proto.tensor_type.elem_type == onnx.TensorProto.BFLOAT16):
        # onnx 1.14's generator wrote bfloat16 data as UINT16 tensors of the bit patterns
        # (the top half of each float32); read them as the bfloat16 values they encode
        import ml_dtypes
        arr = arr.view(ml_dtypes.bfloat16)
    return (t.name or None), arr


def _numbered(files, stem):
    return sorted(files, key=lambda p: int(re.search(rf"{stem}_(\d+)\.pb$", p).group(1)))


def _dummy_input(vi, name):
    """Runner.generate_dummy_data(x, seed=0, random=False): arange(n).reshape(shape) / n."""
    try:
        from onnx.backend.test.runner import Runner
        return Runner.generate_dummy_data(vi, seed=0, name=name, random=False)
    except ImportError:  # pragma: no cover - the same rule, if the runner moves
        if vi.type.tensor_type.elem_type != 1:
            raise NotImplementedError(f"dummy data is float only, input {vi.name} is not")
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        return (np.arange(n).reshape(shape) / n).astype(np.float32)


def load_data_sets(case: dict, model):
    """[(inputs, outputs)] with inputs as [(name or None, array)] and outputs as [array]."""
    g = model.graph
    in_types = [vi.type for vi in g.input]
    out_types = [vi.type for vi in g.output]
    sets = []
    for spec in case["data"]:
        kind = spec["kind"]
        if kind == "pb":
            d = spec["dir"]
            ins = [_load_proto(p, in_types[k] if k < len(in_types) else None)
                   for k, p in enumerate(_numbered(glob.glob(os.path.join(d, "input_*.pb")), "input"))]
            outs = [_load_proto(p, out_types[k] if k < len(out_types) else None)[1]
                    for k, p in enumerate(_numbered(glob.glob(os.path.join(d, "output_*.pb")), "output"))]
        elif kind == "npz":
            with np.load(spec["file"], encoding="bytes", allow_pickle=True) as z:
                ins = [(None, np.asarray(a)) for a in list(z["inputs"])]
                outs = [np.asarray(a) for a in list(z["outputs"])]
        elif kind == "dummy":
            inits = {i.name for i in g.initializer}
            ins = [(vi.name, _dummy_input(vi, case["name"])) for vi in g.input if vi.name not in inits]
            outs = [_load_proto(p, out_types[k] if k < len(out_types) else None)[1]
                    for k, p in enumerate(spec["outputs"])]
        else:
            raise ValueError(f"unknown data set kind {kind!r}")
        sets.append((ins, outs))
    return sets


# --------------------------------------------------------------------------------------
# Comparison, as Runner.assert_similar_outputs
# --------------------------------------------------------------------------------------

def _errors(out: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> dict:
    o = out.astype(np.float64) if out.dtype != np.float64 else out
    r = ref.astype(np.float64) if ref.dtype != np.float64 else ref
    with np.errstate(all="ignore"):
        close = np.isclose(o, r, rtol=rtol, atol=atol, equal_nan=True)
        diff = np.abs(o - r)
        fin = np.isfinite(diff)
        max_abs = float(diff[fin].max()) if fin.any() else 0.0
        nz = fin & (r != 0)
        max_rel = float((diff[nz] / np.abs(r[nz])).max()) if nz.any() else (float("inf") if max_abs else 0.0)
    bad = np.argwhere(~close)
    info = {"mismatched": int(bad.shape[0]), "elements": int(close.size), "max_abs": max_abs, "max_rel": max_rel,
            "nonfinite_mismatch": int((~close & ~fin).sum())}
    if bad.shape[0]:
        idx = tuple(int(i) for i in bad[0])
        info["first"] = {"index": list(idx), "got": float(o[idx]) if o.ndim else float(o),
                         "want": float(r[idx]) if r.ndim else float(r)}
    return info


def compare(outs, refs, names, rtol: float, atol: float):
    """None when every output matches, else (message, worst error dict)."""
    if len(outs) != len(refs):
        return f"the engine gives {len(outs)} outputs, the test expects {len(refs)}", {}
    for k, (out, ref) in enumerate(zip(outs, refs)):
        label = f"output {k} '{names[k]}'" if k < len(names) else f"output {k}"
        if isinstance(ref, (list, tuple)) or ref is None:
            return f"{label}: the test expects a {type(ref).__name__}, the engine gives a tensor", {}
        ref = np.asarray(ref)
        if tuple(out.shape) != tuple(ref.shape):
            return f"{label}: shape {list(out.shape)}, expected {list(ref.shape)}", {}
        if ref.dtype == object:
            if not np.array_equal(out, ref):
                return f"{label}: values differ (object dtype)", {}
            continue
        if out.dtype != ref.dtype:
            return f"{label}: dtype {out.dtype}, expected {ref.dtype}", {}
        try:
            np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)
        except AssertionError:
            e = _errors(out, ref, rtol, atol)
            msg = (f"{label}: {e['mismatched']} / {e['elements']} elements differ, max abs err {e['max_abs']:.3g}, "
                   f"max rel err {e['max_rel']:.3g} (rtol {rtol:g}, atol {atol:g})")
            if "first" in e:
                f = e["first"]
                msg += f"; first at {tuple(f['index'])}: got {f['got']:.6g}, expected {f['want']:.6g}"
            if e["nonfinite_mismatch"]:
                msg += f"; {e['nonfinite_mismatch']} non-finite mismatches"
            return msg, e
    return None


# --------------------------------------------------------------------------------------
# Classification of exceptions
# --------------------------------------------------------------------------------------

_PKG_DIR = None


def _raised_in_engine(exc: BaseException) -> bool:
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    if last is None:
        return False
    fn = os.path.abspath(last.tb_frame.f_code.co_filename)
    return fn.startswith(_PKG_DIR + os.sep)


def _tail(exc: BaseException, n: int = 6) -> str:
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False)).rstrip().splitlines()
    return "\n".join(lines[-n:])


def classify_exception(exc: BaseException, stage: str):
    """(class, message) for an exception raised while compiling or running a case."""
    _, compiler = _engine()
    from deepsparse_lite.compiler.graph import ModelLoadError, ShapeOverrideError
    from deepsparse_lite.ops.base import UnsupportedModelError

    clean = (UnsupportedModelError, ModelLoadError, ShapeOverrideError, compiler.PlanExecutionError,
             NotImplementedError)
    root = exc
    while root.__cause__ is not None:  # the engine wraps some failures with `raise ... from exc`
        root = root.__cause__
    head = f"{type(exc).__name__}: {exc}"
    if isinstance(root, clean) or (isinstance(root, ValueError) and _raised_in_engine(root)):
        return "refused", head
    if root is not exc:
        head += f"\ncaused by {type(root).__name__}: {root}"
    return "error", f"{head}\n{_tail(root)}"


# --------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------

def _op_label(domain: str, op: str) -> str:
    return op if domain in ("", "ai.onnx") else f"{domain}::{op}"


def run_case(case: dict) -> dict:
    import onnx
    _, compiler = _engine()
    from deepsparse_lite.ops.base import get_op

    if SELFTEST and case["name"] == "__crash__":
        import ctypes
        ctypes.string_at(0)  # SIGSEGV
    if SELFTEST and case["name"] == "__hang__":
        time.sleep(3600)

    t0 = time.perf_counter()
    res = {"group": case["group"], "name": case["name"], "class": None, "message": "", "stage": None,
           "rtol": case["rtol"], "atol": case["atol"]}

    def done(cls, msg="", stage=None, **kw):
        res.update({"class": cls, "message": msg, "stage": stage, **kw})
        res["seconds"] = round(time.perf_counter() - t0, 4)
        return res

    def refused_or_unsupported(exc, stage, where=""):
        cls, msg = classify_exception(exc, stage)
        if res["unsupported_ops"]:
            cls, msg = "unsupported op", f"unsupported op(s) {', '.join(res['unsupported_ops'])}: {msg}"
        return done(cls, where + msg, stage)

    try:
        model = onnx.load(case["model"], load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        return done("error", f"the harness could not read the model: {type(exc).__name__}: {exc}", "load model")
    res["opset"] = {(i.domain or ""): int(i.version) for i in model.opset_import}
    ops = sorted({(n.domain or "", n.op_type) for n in model.graph.node})
    res["ops"] = [_op_label(d, o) for d, o in ops]
    res["unsupported_ops"] = [_op_label(d, o) for d, o in ops if get_op(o, "" if d == "ai.onnx" else d) is None]

    if not case["data"]:
        return done("error", "the case has no test data (no test_data_set_*, .npz or stored outputs)", "load data")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tc = time.perf_counter()
        try:
            # the compiler's own API, not Engine: no DeepSparse-specific input checks (0-d
            # inputs are fine here); parameter inputs get value-specialised plans
            model_plans = compiler.SpecializedModel(case["model"], max_threads=THREADS)
        except Exception as exc:  # noqa: BLE001
            return refused_or_unsupported(exc, "compile")
        res["compile_seconds"] = round(time.perf_counter() - tc, 4)
        if model_plans.specialized:
            res["specialized"] = {"parameters": model_plans.parameter_names,
                                  "dynamic": [model_plans.input_names[k] for k in model_plans.dynamic_index]}

        try:
            sets = load_data_sets(case, model)
        except Exception as exc:  # noqa: BLE001
            return done("error", f"the harness could not load the test data: {type(exc).__name__}: {exc}\n"
                        f"{_tail(exc, 4)}", "load data")

        names = model_plans.input_names
        out_names = model_plans.output_names
        for k, (ins, refs) in enumerate(sets):
            where = f"data set {k}: " if len(sets) > 1 else ""
            if len(ins) == len(names):
                arrays = [a for _, a in ins]
            else:  # e.g. old models whose data also holds initializer values: match by name
                by_name = {n: a for n, a in ins if n}
                if not all(n in by_name for n in names):
                    return done("error", f"{where}cannot map {len(ins)} stored inputs "
                                f"({[n for n, _ in ins]}) to the model's inputs {names}", "inputs")
                arrays = [by_name[n] for n in names]
            for a, n in zip(arrays, names):
                if not isinstance(a, np.ndarray):
                    return done("error", f"{where}input '{n}' is a {type(a).__name__}, "
                                "but the engine takes tensors", "inputs")
            if model_plans.specialized:
                tp = time.perf_counter()
                try:
                    plan = model_plans.plan_for(arrays)
                except Exception as exc:  # noqa: BLE001
                    return refused_or_unsupported(exc, "compile", where)
                res["compile_seconds"] = round(res["compile_seconds"] + time.perf_counter() - tp, 4)
            else:
                plan = model_plans.static_plan
            for a, io in zip(arrays, plan.inputs):
                if a.dtype != io.dtype or tuple(a.shape) != tuple(io.shape):
                    return done("error", f"{where}the plan's input '{io.name}' is {io.dtype}{list(io.shape)}, "
                                f"the stored input is {a.dtype}{list(a.shape)}", "inputs")
            try:
                outs = compiler.execute(plan, arrays, num_threads=THREADS)
            except Exception as exc:  # noqa: BLE001
                cls, msg = classify_exception(exc, "run")
                return done(cls, where + msg, "run")
            bad = compare(outs, refs, out_names, case["rtol"], case["atol"])
            if bad is not None:
                msg, err = bad
                return done("wrong", where + msg, "compare", max_abs=err.get("max_abs"), max_rel=err.get("max_rel"))
    return done("pass")


def main() -> int:
    global _PKG_DIR
    proto_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (Python or C) go to stderr, never into the protocol
    sys.stdout = sys.stderr
    out = os.fdopen(proto_fd, "w", buffering=1)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    dsl, _ = _engine()
    _PKG_DIR = os.path.dirname(os.path.abspath(dsl.__file__))
    from deepsparse_lite import kernels
    out.write(json.dumps({"ready": True, "pid": os.getpid(), "deepsparse_lite": _PKG_DIR,
                          "isa_level": kernels.isa_level(), "threads": THREADS}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)["case"]
        try:
            res = run_case(case)
        except Exception as exc:  # noqa: BLE001 - a harness bug must not look like a crash
            res = {"group": case["group"], "name": case["name"], "class": "error", "stage": "harness",
                   "message": f"harness failure: {type(exc).__name__}: {exc}\n{_tail(exc)}"}
        out.write(json.dumps(res, default=str) + "\n")
        out.flush()
        del res  # no gc.collect() here: a full collection costs ~40 ms, 3x a whole node case
    return 0


if __name__ == "__main__":
    sys.exit(main())
