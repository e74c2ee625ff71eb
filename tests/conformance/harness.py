"""ONNX backend conformance: collect ONNX's own backend test cases, run each one isolated in a
pool of fresh worker interpreters, classify and report the results.

Groups (``GROUPS``):

- ``light``: real CNNs shipped by the installed ``onnx`` (``data/light/light_<name>.onnx`` +
  ``light_<name>_output_K.pb``; inputs are generated exactly as ONNX's runner does,
  ``arange(n) / n``; tolerances from ``data/real/test_<name>/data.json``). Folders holding a
  ``model.onnx`` with ``test_data_set_*`` or ``*.npz`` data are handled too (older layouts).
- ``pytorch-converted``, ``pytorch-operator``: the installed ``onnx``'s folders
  (``model.onnx`` + ``test_data_set_N/{input,output}_K.pb``).
- ``node``: the per-op cases, shipped only by older wheels: ``onnx==NODE_ONNX_VERSION`` is
  fetched once with ``pip download`` into ``<cache_root>/onnx-<v>-node-data/`` and its
  ``node/`` folder extracted there; later runs reuse it. If it cannot be fetched the group
  fails (:class:`NodeDataUnavailable`), it is never skipped.

Each case is loaded with ``deepsparse_lite.compiler.SpecializedModel(model_path)`` (the model's
own input shapes: no override, the test never tells the engine a shape) and run with
``compiler.execute`` on ``plan_for(inputs)`` (the static plan, or the plan specialised to the
stored values of parameter inputs and shapes of symbolic dims); every output is compared as
ONNX's backend runner does (``onnx/backend/test/runner``: same shape, same dtype, ``assert_allclose`` with
rtol=1e-3, atol=1e-7 unless the case's data.json says otherwise).

Classes (``CLASSES``): ``pass``; ``unsupported op`` (the model uses an op type our registry
does not have, listed); ``refused`` (a clean engine exception: UnsupportedModelError,
ModelLoadError, PlanExecutionError, NotImplementedError, or a ValueError raised by
deepsparse_lite's own code); ``wrong`` (ran, outputs differ: max abs/rel error); ``error``
(any other exception, including the ones the engine wraps with ``raise ... from exc``: a
TypeError inside shape inference is a bug, not a refusal); ``crash`` (the worker died);
``timeout`` (the case took longer than ``CASE_TIMEOUT`` s; the worker is killed and
restarted).

Workers are fresh interpreters (``python -m tests.conformance.worker``, a JSON line
protocol on a private pipe), importing deepsparse_lite from the same place as this process.
"""
from __future__ import annotations

import glob
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

GROUPS = ("light", "pytorch-converted", "pytorch-operator", "node")
CLASSES = ("pass", "unsupported op", "refused", "wrong", "error", "crash", "timeout")
NODE_ONNX_VERSION = "1.14.1"
DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-7  # onnx/backend/test/loader: load_model_tests
CASE_TIMEOUT = float(os.environ.get("DSL_CONFORMANCE_TIMEOUT", "60"))
DEFAULT_JOBS = 2

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
RECORD_PATH = os.path.join(HERE, "record.json")

# the wheel is only read (never installed), so one fixed target works on any host
_WHEEL_TARGET = ["--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
                 "--implementation", "cp", "--abi", "cp311"]


class NodeDataUnavailable(RuntimeError):
    """The node test data could not be fetched (pip download failed or the wheel is bad)."""


class HarnessError(RuntimeError):
    """The harness itself cannot run (e.g. a worker interpreter does not start)."""


@dataclass
class Case:
    group: str
    name: str
    model: str
    #: each data set: {"kind": "pb", "dir": ...} | {"kind": "npz", "file": ...} |
    #: {"kind": "dummy", "outputs": [pb files]} (inputs generated as ONNX's runner does)
    data: List[dict] = field(default_factory=list)
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL

    @property
    def key(self) -> str:
        return f"{self.group}/{self.name}"


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------

def cache_dir() -> str:
    from deepsparse_lite.config import cache_root
    return cache_root()


def default_report_path() -> str:
    return os.environ.get("DSL_CONFORMANCE_REPORT") or os.path.join(cache_dir(), "conformance", "report.json")


def onnx_data_dir() -> str:
    import onnx
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def node_data_root(version: str = NODE_ONNX_VERSION) -> str:
    return os.path.join(cache_dir(), f"onnx-{version}-node-data")


# --------------------------------------------------------------------------------------
# Node data: pip download once, extract once
# --------------------------------------------------------------------------------------

def ensure_node_data(version: str = NODE_ONNX_VERSION, log: Callable[[str], None] = lambda s: None) -> str:
    """The extracted ``node/`` folder of onnx==``version``'s wheel (fetched on first use)."""
    root = node_data_root(version)
    node_dir = os.path.join(root, "node")
    marker = os.path.join(root, "COMPLETE.json")
    if os.path.exists(marker) and os.path.isdir(node_dir):
        return node_dir
    os.makedirs(root, exist_ok=True)
    import fcntl
    with open(os.path.join(root, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be fetching it right now
        if os.path.exists(marker) and os.path.isdir(node_dir):
            return node_dir
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   *_WHEEL_TARGET, f"onnx=={version}", "-d", tmp, "--disable-pip-version-check"]
            log(f"fetching the ONNX node test data: {' '.join(cmd)}")
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise NodeDataUnavailable(f"`{' '.join(cmd)}` failed: {exc}") from None
            wheels = glob.glob(os.path.join(tmp, "onnx-*.whl"))
            if proc.returncode != 0 or not wheels:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise NodeDataUnavailable(
                    f"could not download onnx=={version} (needed for the node test data): "
                    f"`{' '.join(cmd)}` exited with {proc.returncode}\n{tail}")
            prefix = "onnx/backend/test/data/node/"
            out = os.path.join(tmp, "extract")
            count = 0
            try:
                with zipfile.ZipFile(wheels[0]) as zf:
                    for info in zf.infolist():
                        if not info.filename.startswith(prefix) or info.is_dir():
                            continue
                        rel = info.filename[len(prefix):]
                        if rel.startswith("/") or ".." in rel.split("/"):
                            continue
                        dst = os.path.join(out, "node", rel)
                        os.makedirs(os.path.dirname(dst), exist_ok=True)
                        with zf.open(info) as src, open(dst, "wb") as f:
                            shutil.copyfileobj(src, f)
                        count += 1
            except (zipfile.BadZipFile, OSError) as exc:
                raise NodeDataUnavailable(f"could not read {wheels[0]}: {exc}") from None
            if count == 0:
                raise NodeDataUnavailable(f"{os.path.basename(wheels[0])} holds no {prefix} files")
            if os.path.isdir(node_dir):
                shutil.rmtree(node_dir)
            os.replace(os.path.join(out, "node"), node_dir)
            with open(marker, "w") as f:
                json.dump({"wheel": os.path.basename(wheels[0]), "files": count}, f)
    return node_dir


# --------------------------------------------------------------------------------------
# Collection
# --------------------------------------------------------------------------------------

def _tolerances(case_dir: str, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL):
    p = os.path.join(case_dir, "data.json")
    if os.path.exists(p):
        with open(p) as f:
            data = json.load(f)
        rtol, atol = data.get("rtol", rtol), data.get("atol", atol)
    return float(rtol), float(atol)


def _folder_case(group: str, case_dir: str) -> Case:
    data = [{"kind": "pb", "dir": d} for d in sorted(glob.glob(os.path.join(case_dir, "test_data_set*")))
            if os.path.isdir(d)]
    data += [{"kind": "npz", "file": f} for f in sorted(glob.glob(os.path.join(case_dir, "*.npz")))]
    rtol, atol = _tolerances(case_dir)
    return Case(group, os.path.basename(case_dir), os.path.join(case_dir, "model.onnx"), data, rtol, atol)


def collect_dir(group: str, group_dir: str, real_dir: Optional[str] = None) -> List[Case]:
    """Every case of one data folder, whatever layout it uses (a folder with model.onnx, or
    light-style ``<name>.onnx`` + ``<name>_output_K.pb`` files)."""
    cases = []
    light_tol = {}
    if real_dir and os.path.isdir(real_dir):  # data/real/test_X/data.json names the light file
        for d in sorted(os.listdir(real_dir)):
            p = os.path.join(real_dir, d, "data.json")
            if os.path.exists(p):
                with open(p) as f:
                    data = json.load(f)
                url = data.get("url") or ""
                light_tol[os.path.basename(url)] = (float(data.get("rtol", DEFAULT_RTOL)),
                                                     float(data.get("atol", DEFAULT_ATOL)), d)
    for entry in sorted(os.listdir(group_dir)):
        path = os.path.join(group_dir, entry)
        if os.path.isdir(path):
            if os.path.exists(os.path.join(path, "model.onnx")):
                cases.append(_folder_case(group, path))
        elif entry.endswith(".onnx"):
            stem = entry[:-len(".onnx")]
            outs = sorted(glob.glob(os.path.join(group_dir, f"{stem}_output_*.pb")),
                          key=lambda p: int(re.search(r"_output_(\d+)\.pb$", p).group(1)))
            rtol, atol, name = light_tol.get(entry, (DEFAULT_RTOL, DEFAULT_ATOL, None))
            name = name or ("test_" + stem[len("light_"):] if stem.startswith("light_") else stem)
            data = [{"kind": "dummy", "outputs": outs}] if outs else []
            # ONNX's runner computes missing outputs with the reference evaluator; we need
            # stored ones (a case without is reported as an error, not skipped)
            cases.append(Case(group, name, path, data, rtol, atol))
    return cases


@dataclass
class Collection:
    cases: List[Case]
    #: group -> message when the group's data could not be collected (the group fails)
    group_errors: Dict[str, str]


def collect(groups=GROUPS, log: Callable[[str], None] = lambda s: None) -> Collection:
    base = onnx_data_dir()
    cases, errors = [], {}
    for g in groups:
        if g not in GROUPS:
            raise ValueError(f"unknown group {g!r} (groups: {', '.join(GROUPS)})")
        try:
            if g == "node":
                gdir = ensure_node_data(log=log)
            else:
                gdir = os.path.join(base, g)
                if not os.path.isdir(gdir):
                    raise FileNotFoundError(f"the installed onnx has no {gdir}")
            found = collect_dir(g, gdir, os.path.join(base, "real") if g == "light" else None)
            if not found:
                raise FileNotFoundError(f"no cases found under {gdir}")
            cases += found
        except (NodeDataUnavailable, OSError) as exc:
            errors[g] = f"{type(exc).__name__}: {exc}"
    return Collection(cases, errors)


# --------------------------------------------------------------------------------------
# The worker pool
# --------------------------------------------------------------------------------------

def _engine_package_dir() -> str:
    import importlib.util
    spec = importlib.util.find_spec("deepsparse_lite")
    if spec is None or not spec.origin:
        raise HarnessError("deepsparse_lite is not importable")
    return os.path.dirname(os.path.abspath(spec.origin))


def worker_env(threads: int) -> dict:
    env = dict(os.environ)
    pkg_parent = os.path.dirname(_engine_package_dir())
    # the workers import deepsparse_lite from where this process would, and tests.* from here
    parts = [pkg_parent, REPO_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env["OMP_NUM_THREADS"] = str(threads)
    env["DSL_CONFORMANCE_THREADS"] = str(threads)
    env["PYTHONFAULTHANDLER"] = "1"
    return env


class Worker:
    """One fresh interpreter running ``tests.conformance.worker``; restarted after a crash or
    a timeout."""

    START_TIMEOUT = 120.0

    def __init__(self, idx: int, env: dict, logdir: str):
        self.idx, self.env, self.logdir = idx, env, logdir
        self.proc = None
        self.starts = 0
        self.info = {}
        self._start()

    def _start(self):
        self.starts += 1
        self.logpath = os.path.join(self.logdir, f"worker{self.idx}-{self.starts}.log")
        self._log = open(self.logpath, "w+b")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.conformance.worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     cwd=REPO_ROOT, env=self.env)
        self.lines: "queue.Queue[Optional[bytes]]" = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        try:
            line = self.lines.get(timeout=self.START_TIMEOUT)
        except queue.Empty:
            line = None
        if not line:
            self._kill()
            raise HarnessError(f"a conformance worker did not start; its stderr:\n{self._log_tail(30)}")
        self.info = json.loads(line)

    @staticmethod
    def _read(stream, q):
        for line in iter(stream.readline, b""):
            q.put(line)
        q.put(None)

    def _log_tail(self, n: int = 12) -> str:
        try:
            self._log.flush()
            with open(self.logpath, "rb") as f:
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-n:])

    def _kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()

    def run(self, case: Case, timeout: float) -> dict:
        start = time.perf_counter()
        base = {"group": case.group, "name": case.name}
        line = None
        try:
            self.proc.stdin.write((json.dumps({"case": asdict(case)}) + "\n").encode())
            self.proc.stdin.flush()
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            self._start()
            return {**base, "class": "timeout", "seconds": time.perf_counter() - start,
                    "message": f"no result after {timeout:.0f} s: the worker was killed and restarted"}
        except OSError:  # broken pipe: the worker is already gone
            line = None
        if line:
            res = json.loads(line)
            res.setdefault("seconds", time.perf_counter() - start)
            return res
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = None
        tail = self._log_tail()
        sig = f" (signal {-rc})" if rc is not None and rc < 0 else ""
        self._kill()
        self._start()
        return {**base, "class": "crash", "seconds": time.perf_counter() - start,
                "message": f"the worker died: exit code {rc}{sig}; its stderr ends with:\n{tail}"}

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()


def _cost(case: Case) -> int:
    """Run the expensive cases first so they do not form the tail."""
    return {"light": 0, "pytorch-converted": 1, "pytorch-operator": 1, "node": 2}.get(case.group, 3)


def run_cases(cases: List[Case], jobs: int = DEFAULT_JOBS, threads: int = 1, timeout: float = CASE_TIMEOUT,
              progress: Optional[Callable[[dict], None]] = None) -> List[dict]:
    """Run every case in ``jobs`` worker interpreters; one result dict per case, in order."""
    todo: "queue.Queue" = queue.Queue()
    for k, c in sorted(enumerate(cases), key=lambda kc: (_cost(kc[1]), kc[0])):
        todo.put((k, c))
    results: List[Optional[dict]] = [None] * len(cases)
    env = worker_env(threads)
    logdir = tempfile.mkdtemp(prefix="dsl-conformance-")
    failures: List[BaseException] = []
    workers: List[Worker] = []
    lock = threading.Lock()

    def loop(idx):
        try:
            w = Worker(idx, env, logdir)
            with lock:
                workers.append(w)
            while True:
                try:
                    k, case = todo.get_nowait()
                except queue.Empty:
                    break
                res = w.run(case, timeout)
                res["restarts"] = w.starts - 1
                results[k] = res
                if progress:
                    progress(res)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            failures.append(exc)

    threads_ = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(max(1, min(jobs, len(cases))))]
    try:
        for t in threads_:
            t.start()
        for t in threads_:
            t.join()
    finally:
        for w in workers:
            w.close()
        shutil.rmtree(logdir, ignore_errors=True)
    if failures:
        raise failures[0]
    if workers:
        expected = _engine_package_dir()
        got = workers[0].info.get("deepsparse_lite")
        if got and os.path.abspath(got) != expected:
            raise HarnessError(f"workers imported deepsparse_lite from {got}, expected {expected}")
    missing = [cases[k].key for k, r in enumerate(results) if r is None]
    if missing:
        raise HarnessError(f"{len(missing)} cases got no result, e.g. {missing[:3]}")
    return results


# --------------------------------------------------------------------------------------
# Summaries, report, record
# --------------------------------------------------------------------------------------

def summarize(results: List[dict], groups=GROUPS, group_errors: Optional[Dict[str, str]] = None) -> dict:
    group_errors = group_errors or {}
    out = {}
    for g in groups:
        rs = [r for r in results if r["group"] == g]
        counts = {c: sum(r["class"] == c for r in rs) for c in CLASSES}
        sup = [r for r in rs if not r.get("unsupported_ops")]
        out[g] = {
            "total": len(rs), "passed": counts["pass"], "counts": counts,
            "supported_total": len(sup), "supported_passed": sum(r["class"] == "pass" for r in sup),
            "supported_counts": {c: sum(r["class"] == c for r in sup) for c in CLASSES},
            "error": group_errors.get(g),
        }
    return out


def format_table(summary: dict) -> str:
    short = {"pass": "pass", "unsupported op": "unsup-op", "refused": "refused", "wrong": "wrong",
             "error": "error", "crash": "crash", "timeout": "timeout"}
    head = f"{'group':<28}{'passed / total':>16}" + "".join(f"{short[c]:>10}" for c in CLASSES[1:])
    lines = [head, "-" * len(head)]

    def row(label, passed, total, counts):
        pct = f"{100.0 * passed / total:5.1f}%" if total else "   - "
        return (f"{label:<28}{f'{passed} / {total}':>10} {pct}"
                + "".join(f"{counts[c]:>10}" for c in CLASSES[1:]))

    for g, s in summary.items():
        if s.get("error"):
            lines.append(f"{g:<28}  FAILED: {s['error'].splitlines()[0]}")
            continue
        lines.append(row(g, s["passed"], s["total"], s["counts"]))
        if g == "node":
            lines.append(row("node (supported ops only)", s["supported_passed"], s["supported_total"],
                             s["supported_counts"]))
    return "\n".join(lines)


def cause_key(message: str) -> str:
    """A failure message with names and numbers blanked: cases failing for the same reason
    get the same key."""
    first = (message or "").splitlines()[0] if message else ""
    first = re.sub(r"'[^']*'", "'_'", first)
    first = re.sub(r"\[[^\]]*\]", "[_]", first)
    first = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", first)
    return first[:160]


def causes(results: List[dict], classes=CLASSES[1:]) -> List[tuple]:
    """[(count, class, cause key, [case keys])] for the failing results, biggest first."""
    by = {}
    for r in results:
        if r["class"] in classes:
            if r["class"] == "unsupported op" and r.get("unsupported_ops"):
                key = "op(s) " + ", ".join(r["unsupported_ops"])
            else:
                key = cause_key(r.get("message", ""))
            by.setdefault((r["class"], key), []).append(f"{r['group']}/{r['name']}")
    return sorted(((len(v), c, k, sorted(v)) for (c, k), v in by.items()), key=lambda t: (-t[0], t[1], t[2]))


def write_report(path: str, results: List[dict], summary: dict, meta: dict) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cases = sorted(results, key=lambda r: (GROUPS.index(r["group"]) if r["group"] in GROUPS else 99, r["name"]))
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "summary": summary, "cases": cases}, f, indent=1, sort_keys=False)
    os.replace(tmp, path)
    return path


def load_record(path: str = RECORD_PATH) -> Dict[str, int]:
    with open(path) as f:
        return {k: int(v) for k, v in json.load(f).items()}


def check_group(summary: dict, results: List[dict], group: str, record: Dict[str, int]):
    """(failures, notes) of the CI gate for one group: pass count >= record, no case crashed
    or hung its worker. Other failure classes are reported, not gated."""
    s = summary[group]
    fails, notes = [], []
    if s.get("error"):
        fails.append(f"{group}: the group could not be collected: {s['error']}")
        return fails, notes
    rec = record.get(group)
    if rec is None:
        fails.append(f"{group}: no record in {os.path.relpath(RECORD_PATH, REPO_ROOT)}")
    elif s["passed"] < rec:
        fails.append(f"{group}: {s['passed']} / {s['total']} cases pass, the record is {rec}")
    elif s["passed"] > rec:
        notes.append(f"{group}: {s['passed']} cases pass, more than the record {rec}: raise it in "
                     f"{os.path.relpath(RECORD_PATH, REPO_ROOT)} (python -m tests.conformance --update-record)")
    for cls, what in (("crash", "crashed the worker process"), ("timeout", "hung (killed after the timeout)")):
        bad = [r["name"] for r in results if r["group"] == group and r["class"] == cls]
        if bad:  # a crash or a hang would take a user's process down: never acceptable
            fails.append(f"{group}: {len(bad)} case(s) {what}: {', '.join(bad[:10])}")
    return fails, notes


@dataclass
class RunOutcome:
    results: List[dict]
    summary: dict
    report_path: str
    seconds: float
    group_errors: Dict[str, str]


def run_conformance(groups=GROUPS, jobs: int = DEFAULT_JOBS, threads: int = 1, timeout: float = CASE_TIMEOUT,
                    report_path: Optional[str] = None, select: Optional[str] = None,
                    log: Callable[[str], None] = lambda s: None,
                    progress: Optional[Callable[[dict], None]] = None) -> RunOutcome:
    start = time.perf_counter()
    coll = collect(groups, log=log)
    cases = coll.cases
    if select:
        pat = re.compile(select)
        cases = [c for c in cases if pat.search(c.key)]
    log(f"running {len(cases)} cases in {jobs} workers ({threads} thread(s) each)")
    results = run_cases(cases, jobs=jobs, threads=threads, timeout=timeout, progress=progress)
    seconds = time.perf_counter() - start
    summary = summarize(results, groups, coll.group_errors)
    import onnx
    meta = {"onnx": onnx.__version__, "node_data_onnx": NODE_ONNX_VERSION, "jobs": jobs, "threads": threads,
            "timeout": timeout, "seconds": round(seconds, 2), "select": select,
            "deepsparse_lite": _engine_package_dir(), "python": sys.version.split()[0],
            "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = write_report(report_path or default_report_path(), results, summary, meta)
    return RunOutcome(results, summary, path, seconds, coll.group_errors)
