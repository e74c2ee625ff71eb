"""INT8 GEMM against our fp32 GEMM, and a QDQ model end to end against onnxruntime, in one run.

    python benchmarks/bench_int8.py [--threads 1 2] [--repeats 9] [--model resnet50|bert_base|...]

GEMM part: BERT-base shapes (M = 128 tokens; 768x768, 768x3072, 3072x768) and ResNet-50
layer shapes as GEMMs (pixels x Cin*k*k x Cout), each as a one-node model with constant
weights: MatMul (fp32, packed) vs MatMulInteger (uint8 x int8 -> int32, the same output
bytes), run through the plan runner; GOP/s (2 ops per multiply-add) and the ratio, timed
in interleaved rounds (medians). Model part: the sample model quantized by onnxruntime's
``quantize_static`` (QDQ, per-channel int8 weights, uint8 activations, after its
pre-processing), ours (QDQ rewritten into INT8 steps) vs onnxruntime on the same file, and
our fp32 model beside them. Short runs: the machine is shared.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto as TP, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_gemm import _interleaved, _ort, _ours  # noqa: E402

GEMMS = [  # name, M, K, N
    ("bert qkv/out 128x768x768", 128, 768, 768),
    ("bert ffn1 128x768x3072", 128, 768, 3072),
    ("bert ffn2 128x3072x768", 128, 3072, 768),
    ("r50 conv2 3x3 3136x576x64", 3136, 576, 64),
    ("r50 conv3 1x1 784x128x512", 784, 128, 512),
    ("r50 conv4 3x3 196x2304x256", 196, 2304, 256),
    ("r50 conv5 1x1 49x512x2048", 49, 512, 2048),
]


def _mm_model(op, x, w):
    out_t = TP.FLOAT if op == "MatMul" else TP.INT32
    g = helper.make_graph([helper.make_node(op, ["x", "w"], ["y"])], "b",
                          [helper.make_tensor_value_info("x", TP.FLOAT if x.dtype == np.float32 else TP.UINT8, x.shape)],
                          [helper.make_tensor_value_info("y", out_t, None)], [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def gemm_suite(threads, repeats):
    rng = np.random.default_rng(0)
    print(f"{'shape':30s} {'thr':>3s} {'fp32 GOP/s':>10s} {'int8 GOP/s':>10s} {'ratio':>6s}")
    for name, M, K, N in GEMMS:
        xf = rng.standard_normal((M, K), dtype=np.float32)
        wf = rng.standard_normal((K, N), dtype=np.float32)
        xq = rng.integers(0, 256, (M, K)).astype(np.uint8)
        wq = rng.integers(-128, 128, (K, N)).astype(np.int8)
        for nt in threads:
            fns = {"fp32": _ours(_mm_model("MatMul", xf, wf), xf, nt, None),
                   "int8": _ours(_mm_model("MatMulInteger", xq, wq), xq, nt, None)}
            t = _interleaved(fns, repeats, time.perf_counter)
            ops = 2.0 * M * K * N
            g32, g8 = ops / t["fp32"][0] / 1e9, ops / t["int8"][0] / 1e9
            print(f"{name:30s} {nt:3d} {g32:10.1f} {g8:10.1f} {g8 / g32:6.2f}", flush=True)


def model_suite(name, threads, repeats):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from deepsparse_lite.models.registry import build_model, sample_inputs

    d = tempfile.mkdtemp()
    src, pre, dst = (os.path.join(d, f) for f in ("f.onnx", "p.onnx", "q.onnx"))
    m = build_model(name, src)
    names = [i.name for i in m.graph.input]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([dict(zip(names, sample_inputs(name, seed=k))) for k in range(2)])

        def get_next(self):
            return next(self.it, None)

    quant_pre_process(src, pre, skip_symbolic_shape=True)
    quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "MatMul", "Gemm"])
    q = onnx.load(dst)
    feeds = dict(zip(names, sample_inputs(name, seed=5)))
    print(f"\n{name}: QDQ end to end (ms per batch-1 inference, median of {repeats})")
    import onnxruntime as ort

    from deepsparse_lite import compiler
    from deepsparse_lite.kernels import runner
    for nt in threads:
        fns = {}
        for label, model in (("ours int8", q), ("ours fp32", m)):
            plan = compiler.compile_onnx(model, max_threads=nt)
            arena = compiler.new_arena(plan)
            ins = [feeds[i.name] for i in plan.inputs]
            nb = np.array([a.nbytes for a in ins], np.int64)

            def run(plan=plan, arena=arena, ins=ins, nb=nb, nt=nt):
                outs = compiler.allocate_outputs(plan)
                rc, _ = runner.run_plan(plan.steps, plan.tensor_table, plan.const_ptrs, ins, nb, outs,
                                        arena, plan.table_bytes, nt)
                assert rc == 0
            fns[label] = run
        so = ort.SessionOptions()
        so.intra_op_num_threads = nt
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(q.SerializeToString(), so, providers=["CPUExecutionProvider"])
        fns["onnxruntime int8"] = lambda sess=sess: sess.run(None, feeds)
        time.sleep(0.3)
        t = _interleaved(fns, repeats, time.perf_counter, min_time=0.0)
        row = "  ".join(f"{k} {v[0] * 1e3:7.2f}" for k, v in t.items())
        print(f"threads {nt}: {row}  ours/ort {t['onnxruntime int8'][0] / t['ours int8'][0]:.2f}x",
              flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--model", nargs="*", default=["resnet50", "bert_base"])
    ap.add_argument("--no-gemm", action="store_true")
    args = ap.parse_args(argv)
    if not args.no_gemm:
        gemm_suite(args.threads, args.repeats)
    for name in args.model:
        model_suite(name, args.threads, max(3, args.repeats // 3))


if __name__ == "__main__":
    main()
