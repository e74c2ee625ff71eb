"""GFLOP/s of the deepsparse_lite GEMM, convolution and Winograd kernels at the ResNet-50
and BERT-base layer shapes, fp32 and bf16, against onnxruntime (fp32) and OpenVINO's
default (bf16 where the CPU has it) on the same one-layer models, and against this
machine's measured peak.

    python benchmarks/kernels.py [--threads 2] [--repeats 20] [--json OUT] [--no-ov]

Contenders per case (each a one-node ONNX model with constant weights, run with the same
threads; the figure is the best wall time of many single calls, each contender timed alone
so that thread pools do not measure each other):

  ours fp32      the plan the compiler picks (3x3 stride-1 convs: Winograd or direct, timed
                 per layer at compile time)
  ours direct    3x3 stride-1 convs with Winograd off (DSL_WINOGRAD=off)
  ours wino      the same with Winograd forced on (DSL_WINOGRAD=on)
  ours bf16      precision="bf16" (csrc/bf16_gemm.h: AMX / AVX-512 BF16)
  ort            onnxruntime 1 session, intra_op_num_threads = threads
  ov             OpenVINO default hint (bf16 on AMX / AVX-512 BF16 CPUs), LATENCY hint

Peaks: the fp32 FMA peak (kernels.reduce.fma_peak_gflops: 24 independent FMA chains) and
the bf16 peak (kernels.gemm.bf16_peak_gflops: 2 x 2 AMX tiles, or 16 vdpbf16ps chains),
per thread times the threads. Winograd does 2.25x fewer multiplies than the GFLOP/s count
(the direct convolution's FLOPs), so its figure can pass the fp32 peak.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gemm import _interleaved, _model, _ort  # noqa: E402

from deepsparse_lite import compiler  # noqa: E402

#: BERT-base (seq 128) dense layers: QKV / attention output, FFN up, FFN down
BERT = [(128, 768, 768), (128, 768, 3072), (128, 3072, 768)]
#: ResNet-50's distinct convolutions (cin, cout, hw_in, k, stride), batch 1
RESNET = [(3, 64, 224, 7, 2), (64, 64, 56, 1, 1), (64, 64, 56, 3, 1), (64, 256, 56, 1, 1),
          (256, 64, 56, 1, 1), (256, 128, 56, 1, 1), (128, 128, 56, 3, 2), (128, 128, 28, 3, 1),
          (128, 512, 28, 1, 1), (512, 128, 28, 1, 1), (256, 512, 56, 1, 2), (512, 256, 28, 1, 1),
          (256, 256, 28, 3, 2), (256, 256, 14, 3, 1), (256, 1024, 14, 1, 1),
          (1024, 256, 14, 1, 1), (512, 1024, 28, 1, 2), (1024, 512, 14, 1, 1),
          (512, 512, 14, 3, 2), (512, 512, 7, 3, 1), (512, 2048, 7, 1, 1), (2048, 512, 7, 1, 1),
          (1024, 2048, 14, 1, 2)]


def _ours(model, x, threads, precision="fp32", winograd=None):
    from deepsparse_lite.kernels import runner

    old = os.environ.get("DSL_WINOGRAD")
    if winograd is not None:
        os.environ["DSL_WINOGRAD"] = winograd
    try:
        plan = compiler.compile_onnx(model, max_threads=threads, precision=precision)
    finally:
        if winograd is not None:
            if old is None:
                os.environ.pop("DSL_WINOGRAD", None)
            else:
                os.environ["DSL_WINOGRAD"] = old
    arena = compiler.new_arena(plan)
    outs = compiler.allocate_outputs(plan)
    nbytes = np.array([x.nbytes], dtype=np.int64)
    args = (plan.steps, plan.tensor_table, plan.const_ptrs, [x], nbytes, outs, arena,
            plan.table_bytes, threads)
    wino = any(int(s["op"]) == 506 for s in plan.steps)

    def run(plan=plan):
        rc, _ = runner.run_plan(*args)
        assert rc == 0
    run.winograd = wino
    return run


def _ov(model, x, threads):
    import openvino as ov

    core = ov.Core()
    cfg = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": str(threads)}
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU", cfg)
    req = compiled.create_infer_request()
    return lambda: req.infer({0: x})


def _cases(rng):
    cases = []
    for (M, K, N) in BERT:
        a = rng.standard_normal((M, K), dtype=np.float32)
        w = rng.standard_normal((K, N), dtype=np.float32) * 0.05
        cases.append((f"BERT MatMul {M}x{K}x{N}", 2.0 * M * N * K, _model("MatMul", (M, K), w), a, False))
    for (ci, co, hw, k, s) in RESNET:
        x = rng.standard_normal((1, ci, hw, hw), dtype=np.float32)
        w = rng.standard_normal((co, ci, k, k), dtype=np.float32) * 0.05
        m = _model("Conv", x.shape, w, {"pads": [k // 2] * 4, "strides": [s, s]})
        oh = (hw + 2 * (k // 2) - k) // s + 1
        cases.append((f"R50 Conv {ci}->{co} {k}x{k}/{s} @{hw}", 2.0 * co * oh * oh * ci * k * k, m, x,
                      k == 3 and s == 1))
    return cases


def _peaks():
    from deepsparse_lite.kernels import gemm, reduce
    from deepsparse_lite.cpu import cpu_architecture

    arch = cpu_architecture()
    out = {"fp32": None, "bf16": None, "bf16_unit": None}
    form = 2 if arch.isa == "avx512" else (1 if arch.isa == "avx2" else 0)
    if form:
        out["fp32"] = max(reduce.fma_peak_gflops(form) for _ in range(3))
    for amx in (True, False):
        try:
            out["bf16"] = max(gemm.bf16_peak_gflops(amx) for _ in range(3))
            out["bf16_unit"] = "AMX tdpbf16ps" if amx else "AVX-512 vdpbf16ps"
            break
        except ValueError:
            continue
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-ov", action="store_true", help="leave OpenVINO out")
    ap.add_argument("--only", default=None, help="substring of the case names to run")
    args = ap.parse_args(argv)
    nt = args.threads
    peaks = _peaks()
    try:
        import openvino  # noqa: F401
        have_ov = not args.no_ov
    except ImportError:
        have_ov = False
    rows = []
    for name, flops, model, x, wino_ok in _cases(np.random.default_rng(0)):
        if args.only and args.only not in name:
            continue
        facts = {"ours fp32": lambda: _ours(model, x, nt), "ours bf16": lambda: _ours(model, x, nt, "bf16"),
                 "ort": lambda: _ort(model, x, nt)}
        if wino_ok:
            facts["ours direct"] = lambda: _ours(model, x, nt, winograd="off")
            facts["ours wino"] = lambda: _ours(model, x, nt, winograd="on")
        if have_ov:
            facts["ov"] = lambda: _ov(model, x, nt)
        res, notes = {}, []
        for contender, make in facts.items():
            fn = make()
            if contender == "ours fp32" and getattr(fn, "winograd", False):
                notes.append("fp32 picks winograd")
            best = _interleaved({contender: fn}, 4 * args.repeats, time.perf_counter, min_time=0.0)
            res[contender] = flops / best[contender][1] / 1e9
            del fn
            time.sleep(0.2)
        rows.append({"case": name, "gflop": flops / 1e9, "gflops": res, "notes": notes})
        print(f"{name:34s} " + "  ".join(f"{k} {v:7.1f}" for k, v in res.items()) +
              (f"  ({'; '.join(notes)})" if notes else ""), flush=True)
    fp32_peak = peaks["fp32"] * nt if peaks["fp32"] else float("nan")
    bf16_peak = peaks["bf16"] * nt if peaks["bf16"] else float("nan")
    print()
    print(f"peaks x {nt} threads: fp32 FMA {fp32_peak:.0f} GFLOP/s, bf16 ({peaks['bf16_unit']}) "
          f"{bf16_peak:.0f} GFLOP/s")
    cols = ["ours fp32", "ours direct", "ours wino", "ort", "ours bf16", "ov"]
    print(f"{'case':34s} " + " ".join(f"{c:>11s}" for c in cols) +
          f" {'fp32/ort':>8s} {'fp32%pk':>7s} {'bf16/ov':>7s} {'bf16%pk':>7s}")
    for r in rows:
        g = r["gflops"]
        cells = " ".join(f"{g[c]:11.1f}" if c in g else f"{'':11s}" for c in cols)
        ratio = g["ours fp32"] / g["ort"]
        b_ov = g["ours bf16"] / g["ov"] if "ov" in g else float("nan")
        print(f"{r['case']:34s} {cells} {ratio:8.2f} {100 * g['ours fp32'] / fp32_peak:6.0f}% "
              f"{b_ov:7.2f} {100 * g['ours bf16'] / bf16_peak:6.0f}%")
    if args.json:
        from deepsparse_lite.cpu import cpu_architecture
        arch = cpu_architecture()
        with open(args.json, "w") as f:
            json.dump({"threads": nt, "peaks_per_thread": peaks, "cpu": arch.get("vendor_model"),
                       "isa": arch.isa, "rows": rows}, f, indent=1)
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
