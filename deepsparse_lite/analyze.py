"""``deepsparse_lite.analyze MODEL``: per-step profile of a compiled model.

Compiles ``MODEL`` (a path, a folder holding ``model.onnx``, a ``zoo:`` stub or a sample
model name: ``utils.resolve.resolve_model``, as the benchmark), runs it ``warmup`` +
``iterations`` times with the runner's per-step timer (``compiler.profile_plan``) and
prints one row per plan step:

- the node and ONNX op it comes from, the kernel (``csrc/dsl_params.h`` op name), its
  kind (``dense`` / ``sparse`` / ``int8`` / ``int8-sparse`` for the GEMM family) and the ISA form that
  actually ran (from the kernels' variant counters, ``kernels.variants_run``: every step
  is run once more on its own after the timing, so each row's forms are its own);
- input and output shapes, the weight's sparsity (fraction of zeros);
- mean ms, share of the total, and GFLOP/s for GEMM / MatMul / Conv steps (FLOPs from the
  shapes: ``2 * output elements * reduction length``);

then a total line (the sum of the steps; ``wall_ms`` is a whole run timed without the
per-step timer). ``--export FILE.json`` writes :func:`analyze`'s dict.

Flags follow DeepSparse's ``deepsparse.debug_analysis`` / ``deepsparse.analyze`` names
where they exist: ``-b/--batch_size`` (also ``--batch-size-throughput``), ``-i/-shapes/
--input_shapes``, ``-ncores/--num_cores``, ``-bi/--num_iterations``, ``-wi/--warmup``
(``--num_warmup_iterations``), ``-q/--quiet``, ``-x/--export`` (also ``--export_path``,
``--save``). Example::

    deepsparse_lite.analyze resnet50-pruned90 --num_iterations 20 -x r50.json
    python -m deepsparse_lite.analyze model.onnx -b 8 -ncores 2

Differences from DeepSparse: the profile is one plan run on the calling thread with
``num_cores`` OpenMP threads (no Context, no streams); the rows are plan steps (one per
lowered node, more for a node that lowers to several kernels), not DeepSparse's fused
"pyramids"; timings include the runner's per-step clock reads.
"""
from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["analyze", "format_analysis", "main", "parse_args"]

_LOGGER = logging.getLogger(__name__)

#: kernel-name -> kind, for the GEMM family (csrc/dsl_params.h op codes 5xx, 6xx, 704/705)
_KIND = {"GEMM": "dense", "MATMUL": "dense", "CONV": "dense", "DWCONV": "dense", "CONVT": "dense",
         "WINO": "dense", "SPMM_GEMM": "sparse", "SPMM_CONV": "sparse", "QGEMM": "int8", "QCONV": "int8", "QCONVCW": "int8"}
_CONV_KERNELS = {"CONV", "DWCONV", "CONVT", "WINO", "SPMM_CONV", "QCONV"}
#: QCONVCW runs convolutions and (on token rows) MatMul / Gemm: the node decides
_CONV_OPS = {"Conv", "ConvInteger", "QLinearConv"}
#: the counted kernel whose form names a step's ISA, most specific first (the activation
#: epilogue ``unary`` and the packer ``gemm_pack`` only when nothing else ran)
_PRIMARY = ("spmm", "qconv", "qgemm", "gemm_tile", "dwconv", "quant", "layernorm", "softmax", "instnorm",
            "reduce", "argext", "affine", "pool", "binary", "transpose", "f16cvt", "unary",
            "gemm_pack")
#: where the weight of a GEMM-family node sits among its inputs
_WEIGHT_INPUT = {"QLinearConv": 3, "QLinearMatMul": 3}

_COMPILE_LOCK = threading.Lock()


# ----------------------------------------------------------------------------- compile
def _compile_with_graph(path: str, batch_size, input_shapes, max_threads: int, sparse):
    """``compiler.compile_proto``'s plan and the lowered graph it was made from (node op
    types, shapes, constant weights), captured at the ``lower_graph`` call so the plan is
    exactly the compiler's. The graph is None if the compiler stops calling lower_graph
    through its module global (then rows carry no shapes)."""
    from deepsparse_lite import compiler

    seen = {}
    original = compiler.lower_graph
    me = threading.get_ident()

    def capture(graph, *args, **kwargs):
        if threading.get_ident() == me:  # another thread's compile passes through untouched
            seen["graph"] = graph
        return original(graph, *args, **kwargs)

    with _COMPILE_LOCK:  # the module global is swapped for the duration of one compile
        compiler.lower_graph = capture
        try:
            plan = compiler.compile_proto(compiler.load_model(path), batch_size=batch_size,
                                          input_shapes=input_shapes, max_threads=max_threads,
                                          sparse=sparse)
        finally:
            compiler.lower_graph = original
    return plan, seen.get("graph")


# ----------------------------------------------------------------------------- per step
def _step_variants(plan, inputs: List[np.ndarray], num_threads: int) -> List[Dict[str, str]]:
    """{kernel: form} each step runs, from the variant counters: the whole plan runs once
    (so the arena holds every activation), then each step alone on that arena."""
    from deepsparse_lite import compiler, kernels
    from deepsparse_lite.kernels import runner

    outputs, arena = compiler.allocate_outputs(plan), compiler.new_arena(plan)
    compiler.run(plan, inputs, outputs, arena, num_threads)
    out = []
    for k in range(plan.num_steps):
        one = np.ascontiguousarray(plan.steps[k:k + 1])
        with kernels.variants_run() as ran:
            rc, _ = runner.run_plan(one, plan.tensor_table, plan.const_ptrs, inputs, plan.input_nbytes,
                                    outputs, arena, plan.table_bytes, int(num_threads), None)
        forms: Dict[str, str] = {}
        for (kernel, form), hits in sorted(ran.items()):
            if hits > 0:
                forms[kernel] = form
        if rc != 0:  # a data-dependent step refused the re-run: its forms stay unknown
            forms = {}
        out.append(forms)
    return out


def _primary_form(forms: Dict[str, str]) -> Optional[str]:
    for kernel in _PRIMARY:
        if kernel in forms:
            return forms[kernel]
    return next(iter(forms.values()), None)


def _weight(node, graph) -> Optional[np.ndarray]:
    """The constant weight of a GEMM-family node (None when it is an activation)."""
    if node is None or graph is None:
        return None
    idx = _WEIGHT_INPUT.get(node.op_type, 1)
    if len(node.inputs) <= idx or not node.inputs[idx]:
        return None
    v = graph.values.get(node.inputs[idx])
    return None if v is None else v.const


def _shape(graph, name) -> Optional[List[int]]:
    v = graph.values.get(name) if (graph is not None and name) else None
    return None if v is None or v.shape is None else [int(d) for d in v.shape]


def _flops(kernel: str, node, graph) -> Optional[int]:
    """Multiply-adds x 2 of a GEMM / MatMul / Conv step, from the node's shapes."""
    if kernel not in _KIND or node is None or graph is None or not node.outputs:
        return None
    out = _shape(graph, node.outputs[0])
    a = _shape(graph, node.inputs[0]) if node.inputs else None
    if out is None or a is None:
        return None
    n_out = int(np.prod(out, dtype=np.int64))
    if kernel in _CONV_KERNELS or (kernel == "QCONVCW" and node.op_type in _CONV_OPS):
        w = _shape(graph, node.inputs[_WEIGHT_INPUT.get(node.op_type, 1)]) \
            if len(node.inputs) > _WEIGHT_INPUT.get(node.op_type, 1) else None
        if not w or len(w) < 3:
            return None
        per = int(np.prod(w[1:], dtype=np.int64))
        if kernel == "CONVT" or node.op_type == "ConvTranspose":  # each input pixel scatters
            return 2 * int(np.prod(a, dtype=np.int64)) * per
        return 2 * n_out * per
    if node.op_type == "Gemm" and len(a) == 2:
        k = a[0] if node.attr("transA", 0) else a[1]
    else:
        k = a[-1]
    return 2 * n_out * int(k)


# ----------------------------------------------------------------------------- analyze
def _make_inputs(plan) -> List[np.ndarray]:
    """``rand().astype(dtype)`` per input, as ``Engine.generate_random_inputs`` (integer
    inputs are zeros: always valid indices)."""
    return [np.ascontiguousarray(np.random.rand(*io.shape).astype(io.dtype)) for io in plan.inputs]


def _wall_ms(plan, inputs, num_threads: int, iterations: int) -> float:
    from deepsparse_lite import compiler

    outputs, arena = compiler.allocate_outputs(plan), compiler.new_arena(plan)
    t0 = time.perf_counter()
    for _ in range(iterations):
        compiler.run(plan, inputs, outputs, arena, num_threads)
    return (time.perf_counter() - t0) * 1000.0 / max(1, iterations)


def analyze(model, batch_size: Optional[int] = 1, num_cores: Optional[int] = None,
            iterations: int = 20, input_shapes=None, warmup: int = 5,
            sparse: Optional[str] = None, inputs: Optional[Sequence[np.ndarray]] = None) -> Dict:
    """Compile ``model``, profile every plan step and return the report::

        {"model_path", "orig_model_path", "batch_size", "input_shapes", "num_cores",
         "iterations", "warmup", "isa", "vnni", "num_steps", "total_ms", "wall_ms",
         "items_per_second", "total_gflop", "gflops",
         "by_kernel": {kernel: {"steps", "ms", "share"}},
         "layers": [{"step", "node", "op_type", "kernel", "kind", "isa", "variants",
                     "input_shapes", "output_shapes", "weight_shape", "sparsity", "why",
                     "ms", "share", "flops", "gflops"}, ...]}

    ``layers`` has one row per plan step, in plan order; ``total_ms`` is the sum of their
    ``ms``; ``kind`` is dense / sparse / int8 for the GEMM family (None otherwise) and
    ``isa`` the form its main kernel ran in (generic / avx2 / avx512 / avx512_on_avx2).
    ``batch_size`` None or < 1 keeps the model's batch; ``input_shapes`` as the benchmark's
    (``"[1,3,224,224]"`` or lists); ``sparse``: auto / sparse / dense (``DSL_SPARSE``);
    ``inputs``: the arrays to run (default: random, as the benchmark's)."""
    from deepsparse_lite import compiler
    from deepsparse_lite.cpu import cpu_architecture
    from deepsparse_lite.kernels import abi
    from deepsparse_lite.scheduler.context import available_cores
    from deepsparse_lite.utils import parse_input_shapes
    from deepsparse_lite.utils.resolve import resolve_model

    if int(iterations) < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if int(warmup) < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    orig = model
    path = resolve_model(model)
    if batch_size is not None and batch_size < 1:
        batch_size = None
    shapes = parse_input_shapes(input_shapes) if isinstance(input_shapes, str) else input_shapes
    shapes = shapes or None
    if not num_cores:
        num_cores = available_cores()
    if num_cores < 1:
        raise ValueError("num_cores must be greater than 0")

    plan, graph = _compile_with_graph(path, batch_size, shapes, num_cores, sparse)
    if inputs is None:
        feeds = _make_inputs(plan)
    else:
        feeds = [np.ascontiguousarray(x, dtype=io.dtype) for x, io in zip(inputs, plan.inputs)]
    prof = compiler.profile_plan(plan, feeds, num_threads=num_cores, iterations=int(iterations),
                                 warmup=int(warmup))
    wall = _wall_ms(plan, feeds, num_cores, int(iterations))
    variants = _step_variants(plan, feeds, num_cores)
    described = compiler.describe_plan(plan)
    names = {v: k for k, v in abi.code_tables()["op"].items()}
    nodes = {n.name: n for n in graph.nodes} if graph is not None else {}

    total = float(sum(p["ms"] for p in prof))
    layers = []
    for k, (p, d, forms) in enumerate(zip(prof, described, variants)):
        kernel = names.get(p["op"], str(p["op"]))
        node = nodes.get(d["node"])
        sparsity = d.get("sparsity")
        w = _weight(node, graph) if kernel in _KIND else None
        if sparsity is None and w is not None and w.size:
            sparsity = round(float(np.count_nonzero(w == 0)) / w.size, 4)
        flops = _flops(kernel, node, graph)
        ms = float(p["ms"])
        layers.append({
            "step": k,
            "node": d["node"],
            "op_type": node.op_type if node is not None else None,
            "kernel": kernel,
            "kind": "int8-sparse" if d.get("int8_sparse") else _KIND.get(kernel),
            "isa": _primary_form(forms),
            "variants": forms,
            "input_shapes": [_shape(graph, i) for i in node.inputs
                             if i and graph.values.get(i) is not None and graph.values[i].const is None]
            if node is not None else [],
            "output_shapes": [_shape(graph, o) for o in node.outputs if o] if node is not None else [],
            "weight_shape": list(w.shape) if w is not None else None,
            "sparsity": sparsity,
            "why": d.get("why"),
            "ms": ms,
            "share": ms / total if total > 0 else 0.0,
            "flops": flops,
            "gflops": (flops / (ms * 1e6)) if flops and ms > 0 else None,
        })
    by_kernel: Dict[str, Dict] = {}
    for r in layers:
        b = by_kernel.setdefault(r["kernel"], {"steps": 0, "ms": 0.0})
        b["steps"] += 1
        b["ms"] += r["ms"]
    for b in by_kernel.values():
        b["share"] = b["ms"] / total if total > 0 else 0.0
    total_flops = sum(r["flops"] or 0 for r in layers)
    batch = int(plan.inputs[0].shape[0]) if plan.inputs and plan.inputs[0].shape else 1
    arch = cpu_architecture()
    return {
        "model_path": path,
        "orig_model_path": orig if isinstance(orig, str) else str(orig),
        "batch_size": batch_size,
        "input_shapes": [list(io.shape) for io in plan.inputs],
        "num_cores": int(num_cores),
        "iterations": int(iterations),
        "warmup": int(warmup),
        "isa": arch.isa,
        "vnni": bool(arch.vnni),
        "sparse_mode": plan.stats.get("sparse_mode"),
        "num_steps": plan.num_steps,
        "total_ms": total,
        "wall_ms": wall,
        "items_per_second": batch * 1000.0 / wall if wall > 0 else None,
        "total_gflop": total_flops / 1e9,
        "gflops": total_flops / (total * 1e6) if total > 0 and total_flops else None,
        "by_kernel": dict(sorted(by_kernel.items(), key=lambda kv: -kv[1]["ms"])),
        "layers": layers,
    }


# ----------------------------------------------------------------------------- text
def _dims(shapes) -> str:
    return " ".join("x".join(map(str, s)) if s is not None else "?" for s in shapes) or "-"


def format_analysis(report: Dict, node_width: int = 36) -> str:
    """The report as the table ``deepsparse_lite.analyze`` prints."""
    head = (f"{'step':>4}  {'node':<{node_width}} {'op':<18} {'kernel':<10} {'kind':<6} {'isa':<8} "
            f"{'inputs':<22} {'outputs':<16} {'sparsity':>8} {'ms':>9} {'%':>6} {'GFLOP/s':>8}")
    lines = [f"Model: {report['orig_model_path']} ({report['model_path']})",
             f"Batch size: {report['batch_size']}  inputs {_dims(report['input_shapes'])}  "
             f"cores: {report['num_cores']}  isa: {report['isa']}  vnni: {report['vnni']}  "
             f"iterations: {report['iterations']} (+{report['warmup']} warm-up)", "", head,
             "-" * len(head)]
    for r in report["layers"]:
        node = r["node"] if len(r["node"]) <= node_width else "…" + r["node"][-(node_width - 1):]
        sp = "" if r["sparsity"] is None else f"{r['sparsity']:.3f}"
        gf = "" if r["gflops"] is None else f"{r['gflops']:.1f}"
        lines.append(
            f"{r['step']:>4}  {node:<{node_width}} {(r['op_type'] or '-')[:18]:<18} {r['kernel'][:10]:<10} "
            f"{(r['kind'] or ''):<6} {(r['isa'] or ''):<8} {_dims(r['input_shapes'])[:22]:<22} "
            f"{_dims(r['output_shapes'])[:16]:<16} {sp:>8} {r['ms']:>9.4f} {100 * r['share']:>5.1f}% {gf:>8}")
    lines.append("-" * len(head))
    gf = "" if report["gflops"] is None else f"{report['gflops']:.1f}"
    lines.append(f"{'':>4}  {'total (' + str(report['num_steps']) + ' steps)':<{node_width}} {'':<18} {'':<10} "
                 f"{'':<6} {'':<8} {'':<22} {'':<16} {'':>8} {report['total_ms']:>9.4f} {100.0:>5.1f}% {gf:>8}")
    lines.append("")
    lines.append(f"Wall time per run (no per-step timer): {report['wall_ms']:.4f} ms, "
                 f"{report['items_per_second']:.2f} items/s; {report['total_gflop']:.4f} GFLOP per run")
    lines.append("By kernel: " + ", ".join(
        f"{k} {v['steps']}x {v['ms']:.3f} ms ({100 * v['share']:.1f}%)" for k, v in report["by_kernel"].items()))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deepsparse_lite.analyze",
        description="Profile every step of a model compiled by deepsparse_lite: kernel, ISA, "
                    "shapes, weight sparsity, time and GFLOP/s")
    parser.add_argument("model_path", type=str,
                        help="Path to an ONNX model file, a folder holding model.onnx, a SparseZoo "
                             "stub (resolved to a local sample model) or a sample model name "
                             "(e.g. resnet50-pruned90)")
    parser.add_argument("-b", "--batch_size", "--batch-size-throughput", dest="batch_size", type=int,
                        default=1, help="The batch size to run the analysis for (default 1)")
    parser.add_argument("-i", "-shapes", "--input_shapes", type=str, default="",
                        help="Override the shapes of the inputs, e.g. -shapes \"[1,3,224,224]\"")
    parser.add_argument("-ncores", "--num_cores", type=int, default=None,
                        help="Threads to run with (default: all available physical cores)")
    parser.add_argument("-bi", "--num_iterations", type=int, default=20,
                        help="Timed iterations (default 20)")
    parser.add_argument("-wi", "--warmup", "--num_warmup_iterations", dest="warmup", type=int, default=5,
                        help="Warm-up iterations before timing (default 5)")
    parser.add_argument("--sparse", type=str, default=None, choices=["auto", "sparse", "dense"],
                        help="How pruned weights pick kernels (default $DSL_SPARSE or auto)")
    parser.add_argument("-x", "--export", "--export_path", "--save", dest="export", type=str, default=None,
                        help="Write the analysis to this JSON file")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="Lower logging verbosity")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    """Console entry point: analyse, print the table, export JSON when asked."""
    args = parse_args(argv)
    logger = logging.getLogger("deepsparse_lite")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARN if args.quiet else logging.INFO)
    report = analyze(args.model_path, batch_size=args.batch_size, num_cores=args.num_cores,
                     iterations=args.num_iterations, input_shapes=args.input_shapes or None,
                     warmup=args.warmup, sparse=args.sparse)
    print(format_analysis(report))
    if args.export:
        with open(args.export, "w") as out:
            json.dump(report, out, indent=2)
        _LOGGER.info("Saved the analysis to %s", args.export)


if __name__ == "__main__":
    main()
