"""Side-by-side benchmark: deepsparse_lite against onnxruntime, OpenVINO and DeepSparse.

    python benchmarks/compare.py MODEL [--deepsparse-python PY] [--json OUT] [--chart OUT.png]
                                 [--cores N] [--callers N] [--engines dsl,ort,ov,ds]
                                 [--trials 3] [--seconds 3] [--warmup S] [--batch B]
                                 [--timeout 300] [--no-extras]

``compare.py mixed [bench_multimodel.py options]`` runs the mixed multi-model load instead
(``benchmarks/bench_multimodel.py``: one shared Context against one engine per model,
onnxruntime and DeepSparse).

``MODEL`` is a sample-model name (``deepsparse_lite.models.list_models()``: mlp, resnet50,
resnet_tiny, mobilenet_v2, bert_base, bert_tiny, ...; also ``bert``, ``mobilenetv2`` and
``zoo:`` stubs, which map to the dense synthetic sample of that architecture) or a path to
an ONNX file.

Every (engine, configuration, figure) runs in its own subprocess, one after another: the
script re-invokes itself with a hidden ``--worker JSON`` argument, under this interpreter for
deepsparse_lite / onnxruntime / OpenVINO and under DeepSparse's interpreter for DeepSparse (the
worker code needs only the standard library, numpy and the engine it drives, so the same file
runs there). Each job is repeated ``--trials`` times of ``--seconds`` each (after a first
call and ``--warmup`` seconds; at least 3 timed calls for latency, one per caller for
throughput), the trials interleaving the engines and rotating their order; the table gives
medians over trials. ``--timeout`` bounds each worker.

Three figures per row:

* batch-1 latency (p50, p90) with one caller;
* throughput with N concurrent callers (Python threads calling ``run`` in a loop) on N streams;
* throughput at batch B (16 for CNNs, 8 for BERT-like int inputs, 16 otherwise; ``--batch``)
  with the same N callers on N streams.

Engine configurations (N callers = ``--callers``, default ``--cores``; C = ``--cores``):

=============================  ==================================================================
deepsparse_lite                latency: ``Engine(path, batch_size=1, num_cores=C,
                               scheduler='single_stream')``; throughput: ``scheduler=
                               'multi_stream', num_streams=N``. The reference of every ratio.
deepsparse_lite bf16           the same with ``precision='bf16'`` (compare with openvino default)
deepsparse_lite <scheduler>    extra rows: single_stream / multi_stream / elastic for all figures
onnxruntime                    latency: one session, ``intra_op_num_threads=C``; throughput: one
                               session with ``intra_op_num_threads=1`` shared by N threads
                               (``inter_op_num_threads=1``, sequential, spinning left default)
onnxruntime N sessions         extra row: one ``intra_op_num_threads=1`` session per thread
openvino f32                   latency: ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_PRECISION_HINT=
                               f32``; throughput: ``PERFORMANCE_HINT=THROUGHPUT, NUM_STREAMS=N``,
                               one infer request per thread; ``INFERENCE_NUM_THREADS=C``
openvino default               the same without the precision hint (bf16 on AVX-512 BF16 / AMX)
deepsparse                     DeepSparse's ``Engine`` exactly as ours (single_stream latency,
                               multi_stream throughput), run with ``NM_DISABLE_ANALYTICS=1``
=============================  ==================================================================

All engines get the same ONNX files with the batch fixed to 1 and to B (a sample model is
built at both; a file whose batch differs, fixed or symbolic, gets a copy with dim 0 set,
written into a temp directory) and the same input arrays (saved once to ``.npz``:
floats uniform [0, 1) as DeepSparse's ``generate_random_inputs``; integer inputs in range:
token ids below the size of the embedding table they index, masks all ones, other ints zero).
When ``--cores`` is below the available physical cores, every worker is pinned to the same
first C cores.

A worker that fails (model refused, crash, timeout) gives its figure an error note and is not
retried in later trials; an engine that is not installed is skipped with a note. ``--json``
writes every raw trial and the medians; ``--chart`` draws the three figures as bar charts
(needs matplotlib: ``pip install deepsparse_lite[charts]``).

DeepSparse's interpreter: ``--deepsparse-python``, else ``$DEEPSPARSE_PYTHON``, else
``/work/venv-ds/bin/python`` when it exists, else this interpreter if it can import deepsparse.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

RESULT_MARK = "@@COMPARE_RESULT@@ "
FIGURES = ("latency", "concurrent", "batch")
ENGINE_ALIASES = {
    "dsl": "dsl", "ours": "dsl", "deepsparse_lite": "dsl",
    "ort": "ort", "onnxruntime": "ort",
    "ov": "ov", "openvino": "ov",
    "ds": "ds", "deepsparse": "ds",
}
ENGINE_NAMES = {"dsl": "deepsparse_lite", "ort": "onnxruntime", "ov": "openvino",
                "ds": "deepsparse"}
DEFAULT_DS_PYTHON = "/work/venv-ds/bin/python"
SAMPLE_ALIASES = {"bert": "bert_base", "mobilenetv2": "mobilenet_v2", "mobilenet": "mobilenet_v2",
                  "resnet": "resnet50"}
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# =============================================================================== worker side
# Everything down to the parent section runs in the worker processes, including DeepSparse's
# interpreter: standard library + numpy + the engine being driven, nothing from this repo.

def _host_cpu() -> Dict[str, Any]:
    """Model name, family/model and the best x86/ARM vector ISA from /proc/cpuinfo."""
    info: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if info:
                        break
                    continue
                if ":" in line:
                    k, v = line.split(":", 1)
                    info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        isa = "avx512"
    elif {"avx2", "fma"} <= flags:
        isa = "avx2"
    elif "sve" in flags:
        isa = "sve"
    elif "asimd" in flags or "neon" in flags:
        isa = "neon"
    else:
        isa = "generic"
    name = info.get("model name") or info.get("Hardware") or info.get("CPU part") or ""
    if not name:
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
            name = next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                         if ln.startswith("Model name")), "")
        except (OSError, subprocess.SubprocessError):
            pass
    import platform
    return {"name": name or platform.processor() or "unknown CPU",
            "family": info.get("cpu family"), "model": info.get("model"),
            "isa": isa, "avx512_bf16": "avx512_bf16" in flags, "amx": "amx_bf16" in flags,
            "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
            "hypervisor": "hypervisor" in flags}


def _load_inputs(path: str) -> list:
    import numpy as np
    with np.load(path) as z:
        return [np.ascontiguousarray(z[f"arr_{i}"]) for i in range(len(z.files))]


def _build_dsl(spec: Dict, arrays: list) -> Tuple[List[Callable], Dict, Callable]:
    import deepsparse_lite
    from deepsparse_lite import Engine
    from deepsparse_lite.cpu import cpu_architecture

    config = spec["config"]
    precision = "fp32"
    if config.endswith("_bf16"):
        config, precision = config[:-len("_bf16")], "bf16"
    kw: Dict[str, Any] = dict(batch_size=spec["batch"], num_cores=spec["cores"],
                              scheduler=config, precision=precision)
    if config == "multi_stream":
        # (elastic: one stream over every core, its leases shrink under load; N elastic
        # streams of one core would be multi_stream)
        kw["num_streams"] = spec["streams"]
    engine = Engine(spec["model"], **kw)
    arch = cpu_architecture()
    info = {"version": deepsparse_lite.__version__, "isa": arch.isa, "vnni": bool(arch.vnni),
            "bf16": bool(arch.bf16), "cpu": arch.get("vendor_model"),
            "num_streams": engine.num_streams, "num_cores": engine.num_cores,
            "precision": engine.precision}

    def run() -> None:
        engine.run(arrays)

    return [run] * spec["callers"], info, engine.close


def _build_ds(spec: Dict, arrays: list) -> Tuple[List[Callable], Dict, Callable]:
    import deepsparse
    from deepsparse import Engine

    kw: Dict[str, Any] = dict(batch_size=spec["batch"], num_cores=spec["cores"],
                              scheduler=spec["config"])
    if spec["config"] != "single_stream":
        kw["num_streams"] = spec["streams"]
    engine = Engine(spec["model"], **kw)
    info: Dict[str, Any] = {"version": deepsparse.__version__}
    try:
        from deepsparse.cpu import cpu_architecture
        arch = cpu_architecture()
        info.update(isa=arch.isa, vnni=bool(arch.vnni), cpu=arch.get("vendor_model"))
    except Exception as e:  # noqa: BLE001  (the figure stands without it)
        info["isa_error"] = repr(e)
    for attr in ("num_streams", "num_cores"):
        try:
            info[attr] = getattr(engine, attr)
        except Exception:  # noqa: BLE001
            pass

    def run() -> None:
        engine.run(arrays)

    return [run] * spec["callers"], info, lambda: None


def _build_ort(spec: Dict, arrays: list) -> Tuple[List[Callable], Dict, Callable]:
    import onnxruntime as ort

    def session(threads: int):
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(spec["model"], so, providers=["CPUExecutionProvider"])

    feeds = dict(zip(spec["input_names"], arrays))
    config = spec["config"]
    if config == "intra_n":
        sessions = [session(spec["cores"])] * spec["callers"]
    elif config == "shared_1t":
        sessions = [session(1)] * spec["callers"]
    elif config == "sessions_1t":
        sessions = [session(1) for _ in range(spec["callers"])]
    else:
        raise ValueError(f"unknown onnxruntime config {config!r}")
    runners = [(lambda s=s: s.run(None, feeds)) for s in sessions]
    info = {"version": ort.__version__, "isa": _host_cpu()["isa"] + " (MLAS)",
            "providers": sessions[0].get_providers(),
            "intra_op_num_threads": spec["cores"] if config == "intra_n" else 1,
            "sessions": len({id(s) for s in sessions})}
    return runners, info, lambda: None


def _build_ov(spec: Dict, arrays: list) -> Tuple[List[Callable], Dict, Callable]:
    import openvino as ov

    hint, _, precision = spec["config"].partition("_")   # latency_f32, throughput_default
    cfg: Dict[str, str] = {"PERFORMANCE_HINT": hint.upper(),
                           "INFERENCE_NUM_THREADS": str(spec["cores"])}
    if hint == "throughput":
        cfg["NUM_STREAMS"] = str(spec["streams"])
    if precision == "f32":
        cfg["INFERENCE_PRECISION_HINT"] = "f32"
    core = ov.Core()
    compiled = core.compile_model(core.read_model(spec["model"]), "CPU", cfg)
    feeds = dict(zip(spec["input_names"], arrays))
    requests = [compiled.create_infer_request() for _ in range(spec["callers"])]
    runners = [(lambda r=r: r.infer(feeds, share_inputs=True)) for r in requests]

    def prop(obj, name):
        try:
            v = obj.get_property(name)
        except Exception:  # noqa: BLE001
            return None
        return v.to_string() if hasattr(v, "to_string") else (
            v if isinstance(v, (int, float, bool, list)) else str(v))

    def device_prop(name: str):
        try:
            v = core.get_property("CPU", name)
        except Exception:  # noqa: BLE001
            return None
        return list(v) if isinstance(v, (list, tuple)) else str(v)

    precision_used = prop(compiled, "INFERENCE_PRECISION_HINT")
    version = getattr(ov, "__version__", None) or ov.get_version()
    info = {"version": version.split("-")[0],
            "cpu": device_prop("FULL_DEVICE_NAME"), "config": cfg, "precision": precision_used,
            "num_streams": prop(compiled, "NUM_STREAMS"),
            "optimization_capabilities": device_prop("OPTIMIZATION_CAPABILITIES"),
            "isa": _host_cpu()["isa"] + " (oneDNN)"}
    return runners, info, lambda: None


_BUILDERS = {"dsl": _build_dsl, "ort": _build_ort, "ov": _build_ov, "ds": _build_ds}


def _drive(runners: Sequence[Callable], seconds: float,
           min_calls: int = 3) -> Tuple[List[float], float]:
    """Call every runner in a loop from its own thread (the main thread when there is one)
    until ``seconds`` have passed and each made ``min_calls`` calls; returns (latencies in s,
    wall time from the start to the last call's end)."""
    perf = time.perf_counter

    def loop(fn: Callable, deadline: float, out: List[float]) -> None:
        while True:
            t = perf()
            if t >= deadline and len(out) >= min_calls:
                break
            fn()
            out.append(perf() - t)

    if len(runners) == 1:
        lats: List[float] = []
        t0 = perf()
        loop(runners[0], t0 + seconds, lats)
        return lats, perf() - t0
    n = len(runners)
    barrier = threading.Barrier(n + 1)
    per_thread: List[List[float]] = [[] for _ in range(n)]
    ends = [0.0] * n
    errors: List[BaseException] = []
    box = {"deadline": 0.0}

    def body(i: int) -> None:
        barrier.wait()
        try:
            loop(runners[i], box["deadline"], per_thread[i])
        except BaseException as e:  # noqa: BLE001  (re-raised in the main thread)
            errors.append(e)
        ends[i] = perf()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    t0 = perf()
    box["deadline"] = t0 + seconds
    barrier.wait()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return [x for lst in per_thread for x in lst], max(ends) - t0


def _percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of an ascending list (numpy's default method)."""
    if not sorted_xs:
        return float("nan")
    pos = (len(sorted_xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def run_worker(spec: Dict) -> Dict:
    """Build one engine configuration, warm it up, time it; the result as a JSON-able dict."""
    if spec.get("cpus"):
        os.sched_setaffinity(0, spec["cpus"])
    arrays = _load_inputs(spec["inputs"])
    t0 = time.perf_counter()
    runners, info, close = _BUILDERS[spec["engine"]](spec, arrays)
    compile_s = time.perf_counter() - t0
    try:
        runners[0]()                           # the first run alone (lazy init, allocation)
        _drive(runners, spec["warmup"], min_calls=1)
        # latency wants a few samples; throughput only needs every caller to finish one call
        lats, wall = _drive(runners, spec["seconds"], 3 if spec["callers"] == 1 else 1)
    finally:
        close()
    lats.sort()
    items = len(lats) * spec["batch"]
    return {"info": info, "compile_s": compile_s, "calls": len(lats), "items": items,
            "wall_s": wall, "items_per_s": items / wall if wall > 0 else 0.0,
            "p50_ms": _percentile(lats, 0.5) * 1e3, "p90_ms": _percentile(lats, 0.9) * 1e3,
            "p99_ms": _percentile(lats, 0.99) * 1e3,
            "mean_ms": statistics.fmean(lats) * 1e3 if lats else float("nan"),
            "host": _host_cpu(), "python": sys.version.split()[0]}


def worker_main(spec_json: str) -> int:
    """``--worker`` entry: print one result line (``RESULT_MARK`` + JSON), errors included."""
    try:
        result = run_worker(json.loads(spec_json))
    except BaseException as e:  # noqa: BLE001  (reported, never raised: the parent decides)
        msg = f"{type(e).__name__}: {e}".strip().replace("\n", " ")
        result = {"error": msg[:500]}
    sys.stdout.flush()
    print("\n" + RESULT_MARK + json.dumps(result), flush=True)
    return 0


# =============================================================================== parent side
# ------------------------------------------------------------------------------ model setup
def resolve_model(model: str) -> Tuple[str, Optional[str]]:
    """(path, sample name or None) for a sample-model name, ``zoo:`` stub or ONNX path."""
    if os.path.exists(model):
        return os.path.abspath(model), None
    try:
        from deepsparse_lite.models import list_models, sample_model_path, zoo_stub_to_sample
    except ImportError as e:
        raise SystemExit(f"{model!r} is not a file, and sample models need deepsparse_lite "
                         f"importable ({e})") from None
    name = model
    if model.startswith("zoo:"):
        name = zoo_stub_to_sample(model) or model
    name = SAMPLE_ALIASES.get(name.lower().replace("-", "_"), name)
    if name not in list_models():
        raise SystemExit(f"{model!r} is neither a file nor a sample model "
                         f"(available: {', '.join(list_models())})")
    return sample_model_path(name, batch_size=1), name


def _graph_inputs(model) -> list:
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def model_kind(model) -> str:
    """'text' (integer inputs: BERT-like), 'image' (a 4-d float input: CNN) or 'other'."""
    import onnx
    ints = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
    inputs = _graph_inputs(model)
    if any(i.type.tensor_type.elem_type in ints for i in inputs):
        return "text"
    if any(len(i.type.tensor_type.shape.dim) == 4 for i in inputs):
        return "image"
    return "other"


def _batch_dim(value_info) -> Optional[int]:
    dims = value_info.type.tensor_type.shape.dim
    if not dims:
        return None
    return dims[0].dim_value if dims[0].HasField("dim_value") else None


def with_batch(src: str, batch: int, out_dir: str) -> str:
    """``src`` itself when every input already has batch ``batch``, else a copy in ``out_dir``
    with dim 0 of the inputs (and of the outputs) fixed to it and stale value_info dropped."""
    import onnx
    head = onnx.load(src, load_external_data=False)
    inputs = _graph_inputs(head)
    if inputs and all(_batch_dim(i) == batch for i in inputs):
        return src
    model = onnx.load(src)
    old = {_batch_dim(i) for i in _graph_inputs(model)}
    for vi in _graph_inputs(model):
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = batch
    for vi in model.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and (dims[0].HasField("dim_param") or not dims[0].HasField("dim_value")
                     or dims[0].dim_value in old):
            dims[0].Clear()
            dims[0].dim_value = batch
    del model.graph.value_info[:]
    path = os.path.join(out_dir, f"model-b{batch}.onnx")
    if model.ByteSize() > (1 << 31) - (1 << 26):
        onnx.save(model, path, save_as_external_data=True, location=f"model-b{batch}.data")
    else:
        onnx.save(model, path)
    return path


def make_inputs(model, batch: int, seed: int = 0) -> Tuple[List[str], list]:
    """(names, arrays) for the model's inputs at ``batch``: DeepSparse's ``rand().astype``
    for floats; integer inputs in range (ids below the embedding table they index, masks
    ones, the rest zeros). Symbolic dims other than the batch become 1."""
    import numpy as np
    from onnx import helper
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in model.graph.initializer}
    table_rows: Dict[str, int] = {}   # int input -> rows of the table a Gather indexes with it
    casts = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Cast"}
    for n in model.graph.node:
        if n.op_type == "Gather" and len(n.input) >= 2 and n.input[0] in inits:
            src = casts.get(n.input[1], n.input[1])
            dims = inits[n.input[0]].dims
            if dims:
                table_rows[src] = min(table_rows.get(src, dims[0]), dims[0])
    names, arrays = [], []
    for vi in _graph_inputs(model):
        tt = vi.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                 for d in tt.shape.dim]
        if shape:
            shape[0] = batch
        if dtype.kind in "iu":
            if vi.name in table_rows:
                arr = rng.integers(0, table_rows[vi.name], size=shape).astype(dtype)
            elif "mask" in vi.name.lower():
                arr = np.ones(shape, dtype)
            else:
                arr = np.zeros(shape, dtype)
        elif dtype.kind == "b":
            arr = np.ones(shape, dtype)
        else:
            arr = rng.random(shape).astype(dtype)
        names.append(vi.name)
        arrays.append(arr)
    return names, arrays


# ------------------------------------------------------------------------------ machine
def physical_cores() -> List[List[int]]:
    """The hardware threads of each physical core in this process's affinity mask."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = list(range(os.cpu_count() or 1))
    groups: Dict[Tuple[str, str], List[int]] = {}
    for c in cpus:
        base = f"/sys/devices/system/cpu/cpu{c}/topology/"
        try:
            with open(base + "physical_package_id") as f:
                pkg = f.read().strip()
            with open(base + "core_id") as f:
                core = f.read().strip()
        except OSError:
            pkg, core = "0", str(c)
        groups.setdefault((pkg, core), []).append(c)
    return sorted(groups.values())


def describe_cpu(host: Dict[str, Any]) -> str:
    bits = [host["name"]]
    if host.get("family") and host.get("model"):
        bits.append(f"(family {host['family']} model {host['model']})")
    if host.get("hypervisor"):
        bits.append("virtualized")
    return " ".join(bits)


# ------------------------------------------------------------------------------ jobs / rows
# A row: label, engine, {figure: config}, extra (dropped by --no-extras). A job is one
# (engine, config, figure): rows that share one reuse its measurements.
ROWS: Tuple[Tuple[str, str, Dict[str, str], bool], ...] = (
    ("deepsparse_lite", "dsl",
     {"latency": "single_stream", "concurrent": "multi_stream", "batch": "multi_stream"}, False),
    ("deepsparse_lite bf16", "dsl", {"latency": "single_stream_bf16",
                                     "concurrent": "multi_stream_bf16",
                                     "batch": "multi_stream_bf16"}, False),
    ("deepsparse_lite single_stream", "dsl", dict.fromkeys(FIGURES, "single_stream"), True),
    ("deepsparse_lite multi_stream", "dsl", dict.fromkeys(FIGURES, "multi_stream"), True),
    ("deepsparse_lite elastic", "dsl", dict.fromkeys(FIGURES, "elastic"), True),
    ("onnxruntime", "ort",
     {"latency": "intra_n", "concurrent": "shared_1t", "batch": "shared_1t"}, False),
    ("onnxruntime N sessions", "ort", {"concurrent": "sessions_1t", "batch": "sessions_1t"}, True),
    ("openvino f32", "ov", {"latency": "latency_f32", "concurrent": "throughput_f32",
                            "batch": "throughput_f32"}, False),
    ("openvino default", "ov", {"latency": "latency_default", "concurrent": "throughput_default",
                                "batch": "throughput_default"}, False),
    ("deepsparse", "ds",
     {"latency": "single_stream", "concurrent": "multi_stream", "batch": "multi_stream"}, False),
)
Job = Tuple[str, str, str]   # (engine, config, figure)


def _probe(cmd: List[str], env: Dict[str, str], timeout: float) -> Tuple[bool, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"{type(e).__name__}: {e}"
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["exit code %d" % p.returncode])[-1]
        return False, tail
    return True, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""


def base_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def ds_env() -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)     # this venv's packages must not leak into DeepSparse's
    env["NM_DISABLE_ANALYTICS"] = "1"
    return env


def find_engines(wanted: Sequence[str], ds_python: Optional[str]
                 ) -> Tuple[Dict[str, str], Dict[str, str]]:
    """({engine: interpreter}, {engine: why skipped}) for the ``wanted`` engines."""
    import importlib.util
    found: Dict[str, str] = {}
    skipped: Dict[str, str] = {}
    for e in wanted:
        if e == "ds":
            continue
        module = {"dsl": "deepsparse_lite", "ort": "onnxruntime", "ov": "openvino"}[e]
        if importlib.util.find_spec(module) is None:
            skipped[e] = f"{module} is not installed in {sys.executable}"
        else:
            found[e] = sys.executable
    if "ds" in wanted:
        candidates: List[Tuple[str, str]] = []
        if ds_python:
            candidates.append((ds_python, "--deepsparse-python"))
        else:
            if os.environ.get("DEEPSPARSE_PYTHON"):
                candidates.append((os.environ["DEEPSPARSE_PYTHON"], "$DEEPSPARSE_PYTHON"))
            if os.path.exists(DEFAULT_DS_PYTHON):
                candidates.append((DEFAULT_DS_PYTHON, "default"))
            if importlib.util.find_spec("deepsparse") is not None:
                candidates.append((sys.executable, "this interpreter"))
        why = []
        for py, origin in candidates:
            if not (os.path.isfile(py) and os.access(py, os.X_OK)):
                why.append(f"{py} ({origin}) is not an executable")
                continue
            ok, msg = _probe([py, "-c", "import numpy, deepsparse; print(deepsparse.__version__)"],
                             ds_env(), timeout=180)
            if ok:
                found["ds"] = py
                break
            why.append(f"{py} ({origin}) cannot import deepsparse: {msg}")
        if "ds" not in found:
            skipped["ds"] = "; ".join(why) or (
                "no DeepSparse interpreter: give --deepsparse-python or set $DEEPSPARSE_PYTHON")
    return found, skipped


def run_job(python: str, spec: Dict, env: Dict[str, str], timeout: float) -> Dict:
    """One worker subprocess (its own session, killed with its children on timeout)."""
    cmd = [python, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        import signal
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.communicate()
        return {"error": f"timeout after {timeout:g} s"}
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = " | ".join((err.strip().splitlines() or ["(no output)"])[-3:])
    return {"error": f"worker exited with code {proc.returncode}: {tail}"[:500]}


def _median(xs: Sequence[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(trials: List[Dict]) -> Dict:
    """Medians over the successful trials of one job, or its error."""
    ok = [t for t in trials if "error" not in t]
    if not ok:
        return {"error": trials[0]["error"] if trials else "not run"}
    return {key: _median([t[key] for t in ok])
            for key in ("p50_ms", "p90_ms", "p99_ms", "items_per_s", "compile_s")} | {
            "trials": len(ok), "info": ok[-1].get("info", {}), "host": ok[-1].get("host", {})}


def build_rows(rows: Sequence[Tuple[str, str, Dict[str, str], bool]], medians: Dict[Job, Dict],
               skipped: Dict[str, str], callers: int, host_name: str = "") -> List[Dict]:
    """Table rows with the figures, the ratios to the first deepsparse_lite row and notes."""
    out: List[Dict] = []
    for label, engine, configs, _extra in rows:
        plural = "session" if callers == 1 else "sessions"
        row: Dict[str, Any] = {"label": label.replace("N sessions", f"{callers} {plural}"),
                               "engine": engine, "configs": configs, "notes": []}
        if engine in skipped:
            row["notes"].append("skipped: " + skipped[engine])
            out.append(row)
            continue
        info: Dict[str, Any] = {}
        errors: Dict[str, str] = {}
        for fig, cfg in configs.items():
            m = medians.get((engine, cfg, fig))
            if m is None:
                continue
            if "error" in m:
                errors[fig] = m["error"]
                continue
            row[fig] = m
            info = info or m["info"]
        row["errors"] = errors
        for msg in dict.fromkeys(errors.values()):   # one note per distinct error
            figs = [f for f, e in errors.items() if e == msg]
            which = "error" if len(figs) == len(configs) else "/".join(figs) + " error"
            short = msg if len(msg) <= 140 else msg[:60] + " ... " + msg[-75:]   # JSON: in full
            row["notes"].append(f"{which}: {short}")
        row["isa"] = info.get("isa")
        row["version"] = info.get("version")
        row["cpu"] = info.get("cpu")
        if row["cpu"] and host_name and row["cpu"] != host_name:
            row["notes"].append(f"cpu reported: {row['cpu']}")
        if engine == "ov" and any(f in row for f in FIGURES):
            precisions = sorted({str(row[f]["info"].get("precision")) for f in FIGURES if f in row})
            row["notes"].append("precision " + "/".join(precisions))
        out.append(row)
    ref = next((r for r in out if r["engine"] == "dsl"), None)
    for r in out:
        for fig in FIGURES:
            mine, theirs = (ref or {}).get(fig), r.get(fig)
            ratio = None
            if mine and theirs:
                if fig == "latency":
                    ratio = theirs["p50_ms"] / mine["p50_ms"] if mine["p50_ms"] else None
                else:
                    ratio = mine["items_per_s"] / theirs["items_per_s"] \
                        if theirs["items_per_s"] else None
            r[f"{fig}_ratio"] = ratio
    if ref is not None and ref["label"] == "deepsparse_lite" and any(f in ref for f in FIGURES):
        ref["notes"].insert(0, "reference: single_stream latency, multi_stream throughput")
    return out


def _fmt(x: Optional[float], spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_table(rows: List[Dict], meta: Dict) -> str:
    n, b = meta["callers"], meta["batch"]
    headers = ["engine / config", "b1 p50 ms", "p90 ms", "ratio",
               f"{n} caller{'s' if n != 1 else ''} it/s", "ratio",
               f"b{b} x{n} it/s", "ratio", "isa", "notes"]
    body = []
    for r in rows:
        lat, con, bat = r.get("latency"), r.get("concurrent"), r.get("batch")
        body.append([
            r["label"],
            _fmt(lat and lat["p50_ms"], ".3f"), _fmt(lat and lat["p90_ms"], ".3f"),
            _fmt(r.get("latency_ratio"), ".2f"),
            _fmt(con and con["items_per_s"], ".1f"), _fmt(r.get("concurrent_ratio"), ".2f"),
            _fmt(bat and bat["items_per_s"], ".1f"), _fmt(r.get("batch_ratio"), ".2f"),
            r.get("isa") or "-", "; ".join(r["notes"])])
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers[:-1])]

    def line(cells: List[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:8], widths[1:8])]
        parts.append(cells[8].ljust(widths[8]))
        return ("  ".join(parts) + "  " + cells[9]).rstrip()

    versions = ", ".join(f"{ENGINE_NAMES[e]} {v}" for e, v in meta["versions"].items())
    head = [
        f"model: {meta['model']}  ({meta['kind']}, batch-large {b})",
        f"CPU: {meta['cpu']}  |  deepsparse_lite ISA: {meta['isa']}  |  cores used: "
        f"{meta['cores']} of {meta['available_cores']} physical  |  callers/streams: {n}",
        f"versions: {versions or '-'}",
        f"{meta['trials']} trial(s) x {meta['seconds']:g} s per figure, each in its own process, "
        "engines interleaved; medians over trials",
        "ratio = how many times faster deepsparse_lite is (>1: ours faster): "
        "theirs p50 / ours p50 for latency, ours it/s / theirs it/s for throughput; "
        "it/s = items (samples) per second; isa: as deepsparse_lite / DeepSparse report it, "
        "for onnxruntime / OpenVINO the host's best (their kernels dispatch at run time)",
        "",
        line(headers), line(["-" * w for w in widths] + ["-----"]),
    ]
    return "\n".join(head + [line(c) for c in body])


def draw_chart(rows: List[Dict], meta: Dict, path: str) -> None:
    """Three bar charts (batch-1 p50 latency, N-caller and batch-B throughput), one bar per
    row, with the ratio to deepsparse_lite over each bar."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--chart needs matplotlib: pip install matplotlib "
                         "(or pip install deepsparse_lite[charts])") from None
    colors = {"dsl": "#1f77b4", "ort": "#ff7f0e", "ov": "#2ca02c", "ds": "#d62728"}
    n, b = meta["callers"], meta["batch"]
    panels = [("latency", "p50_ms", "batch-1 latency p50 (ms, lower is better)"),
              ("concurrent", "items_per_s", f"{n} callers on {n} streams (items/s)"),
              ("batch", "items_per_s", f"batch {b}, {n} callers (items/s)")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5))
    for ax, (fig_name, key, title) in zip(axes, panels):
        shown = [r for r in rows if r.get(fig_name)]
        ys = [r[fig_name][key] for r in shown]
        bars = ax.bar(range(len(shown)), ys, color=[colors.get(r["engine"], "gray") for r in shown])
        for bar, r in zip(bars, shown):
            ratio = r.get(f"{fig_name}_ratio")
            if ratio is not None:
                ax.annotate(f"x{ratio:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels([r["label"] for r in shown], rotation=35, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.margins(y=0.12)
    fig.suptitle(f"{meta['model']} on {meta['cpu']} ({meta['isa']}, {meta['cores']} cores); "
                 "labels: times faster deepsparse_lite is", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------ main
def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL", help="sample-model name or ONNX path")
    p.add_argument("--deepsparse-python", metavar="PY",
                   help="interpreter with deepsparse installed (default: $DEEPSPARSE_PYTHON or "
                        f"{DEFAULT_DS_PYTHON})")
    p.add_argument("--json", metavar="OUT", help="write raw and median figures here")
    p.add_argument("--chart", metavar="OUT.png", help="draw the table as bar charts")
    p.add_argument("--cores", type=int, help="cores per engine (default: available physical)")
    p.add_argument("--callers", type=int, help="concurrent callers = streams (default: --cores)")
    p.add_argument("--engines", default="dsl,ort,ov,ds", help="subset of dsl,ort,ov,ds")
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per figure")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default: seconds/4, <= 1)")
    p.add_argument("--batch", type=int, help="batch-large size (default 16, 8 for BERT-like)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per worker")
    p.add_argument("--no-extras", action="store_true",
                   help="only the main row per engine (no scheduler variants / N sessions)")
    p.add_argument("--bf16-anyway", action="store_true",
                   help="keep the deepsparse_lite bf16 row on a CPU without AVX-512 BF16 / AMX")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is None and not args.model:
        p.error("MODEL is required")
    return args


def parse_engines(text: str) -> List[str]:
    """'dsl,ort,ov,ds' (or the long names) -> the engine keys, in order, without repeats."""
    wanted: List[str] = []
    for e in text.split(","):
        e = e.strip().lower()
        if not e:
            continue
        if e not in ENGINE_ALIASES:
            raise SystemExit(f"unknown engine {e!r}: choose from dsl, ort, ov, ds")
        if ENGINE_ALIASES[e] not in wanted:
            wanted.append(ENGINE_ALIASES[e])
    return wanted


def prepare_model(model: str, batch_override: Optional[int], tmp_dir: str) -> Dict[str, Any]:
    """Resolve ``model``, pick the large batch, get the batch-1 and batch-B files every engine
    uses, and save the input arrays all workers share (``inputs-b<N>.npz`` in ``tmp_dir``)."""
    import numpy as np
    import onnx

    path, sample = resolve_model(model)
    kind = model_kind(onnx.load(path, load_external_data=False))
    batch = batch_override or (8 if kind == "text" else 16)
    files: Dict[int, str] = {}
    inputs: Dict[int, str] = {}
    names: List[str] = []
    for b in (1, batch):
        if sample is not None:   # a sample is rebuilt at that batch: shapes stay consistent
            from deepsparse_lite.models import sample_model_path
            files[b] = sample_model_path(sample, batch_size=b)
        else:
            files[b] = with_batch(path, b, tmp_dir)
        names, arrays = make_inputs(onnx.load(files[b], load_external_data=False), b)
        inputs[b] = os.path.join(tmp_dir, f"inputs-b{b}.npz")
        np.savez(inputs[b], *arrays)
    return {"path": path, "sample": sample, "kind": kind, "batch": batch, "files": files,
            "inputs": inputs, "input_names": names}


def plan_jobs(rows: Sequence[Tuple[str, str, Dict[str, str], bool]],
              found: Dict[str, str]) -> List[Job]:
    """The distinct jobs of ``rows`` for the engines found, figure-major (all latencies, then
    all N-caller runs, then all batch-B runs), the row order kept within a figure."""
    jobs: List[Job] = []
    for fig in FIGURES:
        for _, engine, configs, _ in rows:
            if engine in found and fig in configs and (engine, configs[fig], fig) not in jobs:
                jobs.append((engine, configs[fig], fig))
    return jobs


def run_trials(jobs: Sequence[Job], found: Dict[str, str], model: Dict[str, Any],
               args: argparse.Namespace, cores: int, callers: int, cpus: Optional[List[int]],
               warmup: float) -> Dict[Job, List[Dict]]:
    """Every job once per trial, one subprocess at a time, the order rotated each trial; a
    job that fails is not run again."""
    raw: Dict[Job, List[Dict]] = {j: [] for j in jobs}
    failed: Dict[Job, str] = {}
    for trial in range(args.trials):
        k = trial % len(jobs) if jobs else 0
        for job in list(jobs[k:]) + list(jobs[:k]):   # no engine always goes first
            if job in failed:
                continue
            engine, config, fig = job
            b = model["batch"] if fig == "batch" else 1
            spec = {"engine": engine, "config": config, "figure": fig,
                    "model": model["files"][b], "inputs": model["inputs"][b],
                    "input_names": model["input_names"], "batch": b, "cores": cores,
                    "streams": callers, "callers": 1 if fig == "latency" else callers,
                    "seconds": args.seconds, "warmup": warmup, "cpus": cpus}
            env = ds_env() if engine == "ds" else base_env()
            t0 = time.perf_counter()
            res = run_job(found[engine], spec, env, args.timeout)
            res["trial"] = trial
            raw[job].append(res)
            if "error" in res:
                failed[job] = res["error"]
                msg = "ERROR " + res["error"]
            elif fig == "latency":
                msg = f"p50 {res['p50_ms']:.3f} ms  p90 {res['p90_ms']:.3f} ms"
            else:
                msg = f"{res['items_per_s']:.1f} items/s"
            print(f"[trial {trial + 1}/{args.trials}] {ENGINE_NAMES[engine]:15s} {config:18s} "
                  f"{fig:10s} {msg}  ({time.perf_counter() - t0:.1f} s)",
                  file=sys.stderr, flush=True)
    return raw


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mixed"]:
        # several models on one machine under mixed load: bench_multimodel.py's table
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import bench_multimodel
        return bench_multimodel.main(argv[1:])
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    if args.chart:
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            raise SystemExit("--chart needs matplotlib: pip install matplotlib "
                             "(or pip install deepsparse_lite[charts])")
    if args.trials < 1 or args.seconds <= 0:
        raise SystemExit("--trials must be >= 1 and --seconds > 0")
    wanted = parse_engines(args.engines)
    cores_avail = physical_cores()
    cores = args.cores or len(cores_avail)
    if not 1 <= cores <= len(cores_avail):
        raise SystemExit(f"--cores must be 1..{len(cores_avail)}")
    callers = args.callers or cores
    if callers < 1:
        raise SystemExit("--callers must be >= 1")
    cpus = sorted(c for grp in cores_avail[:cores] for c in grp) \
        if cores < len(cores_avail) else None
    warmup = args.warmup if args.warmup is not None else min(1.0, max(0.1, args.seconds / 4))

    with tempfile.TemporaryDirectory(prefix="dsl-compare-") as tmp:
        model = prepare_model(args.model, args.batch, tmp)
        found, skipped = find_engines(wanted, args.deepsparse_python)
        for e, why in skipped.items():
            print(f"note: {ENGINE_NAMES[e]} skipped: {why}", file=sys.stderr)
        rows = [r for r in ROWS if r[1] in wanted and not (args.no_extras and r[3])]
        cpu = _host_cpu()
        if not (cpu.get("avx512_bf16") or cpu.get("amx")) and not args.bf16_anyway:
            # without AVX-512 BF16 / AMX precision='bf16' runs the portable reference
            # kernel (and warns): a figure of nothing the option is for
            rows = [r for r in rows if not r[0].endswith(" bf16")]
            print("note: deepsparse_lite bf16 skipped: this CPU has neither AVX-512 BF16 nor AMX "
                  "(--bf16-anyway runs it on the portable kernel)", file=sys.stderr)
        jobs = plan_jobs(rows, found)
        raw = run_trials(jobs, found, model, args, cores, callers, cpus, warmup)

    medians = {j: summarize(raw[j]) for j in jobs}
    versions: Dict[str, str] = {}
    isa: Optional[str] = None
    host: Dict[str, Any] = {}
    for j, m in medians.items():
        if "error" not in m:
            versions.setdefault(j[0], str(m["info"].get("version")))
            host = host or m.get("host", {})
            if j[0] == "dsl":
                isa = isa or m["info"].get("isa")
    host = host or _host_cpu()
    if isa is None:
        try:
            from deepsparse_lite.cpu import cpu_architecture
            isa = cpu_architecture().isa + " (not run)"
        except Exception:  # noqa: BLE001
            isa = "unknown"
    table_rows = build_rows(rows, medians, skipped, callers, host.get("name", ""))
    meta = {"model": model["sample"] or model["path"], "model_path": model["path"],
            "model_files": model["files"], "input_names": model["input_names"],
            "kind": model["kind"], "batch": model["batch"], "cores": cores,
            "available_cores": len(cores_avail), "cpus": cpus, "callers": callers,
            "streams": callers, "trials": args.trials, "seconds": args.seconds,
            "warmup": warmup, "cpu": describe_cpu(host), "host": host, "isa": isa,
            "versions": {e: versions[e] for e in ("dsl", "ort", "ov", "ds") if e in versions},
            "interpreters": found, "skipped": skipped,
            "ratio": "times faster deepsparse_lite is: latency theirs p50 / ours p50, "
                     "throughput ours / theirs"}
    print(format_table(table_rows, meta))
    for e, why in skipped.items():
        print(f"note: {ENGINE_NAMES[e]} skipped: {why}")
    if args.json:
        doc = {"meta": meta, "rows": table_rows,
               "jobs": [{"engine": j[0], "config": j[1], "figure": j[2], "trials": raw[j],
                         "median": medians[j]} for j in jobs]}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
        print(f"json: {args.json}")
    if args.chart:
        draw_chart(table_rows, meta, args.chart)
        print(f"chart: {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
