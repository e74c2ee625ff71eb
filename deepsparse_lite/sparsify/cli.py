"""Command line: ``deepsparse_lite.sparsify IN.onnx OUT.onnx --sparsity 0.9 [--quantize int8
--calibration N|DIR]``. Bad input exits with status 2 and a one-line message."""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"sparsity must be in [0, 1), got {text}")
    return v


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deepsparse_lite.sparsify",
        description="Magnitude-prune and/or INT8-quantize (QDQ) an ONNX model.")
    p.add_argument("input", help="the ONNX model to read (never modified)")
    p.add_argument("output", help="where to write the new ONNX model")
    p.add_argument("--sparsity", type=_fraction, default=0.0,
                   help="fraction of Conv/Gemm/MatMul weights to zero, in [0, 1) (default 0)")
    p.add_argument("--mode", choices=("layer", "global"), default="layer",
                   help="layer: every layer at the target; global: one threshold, exact in "
                        "total (default layer)")
    p.add_argument("--skip-first-conv", action="store_true", help="leave the first Conv dense")
    p.add_argument("--skip-classifier", action="store_true",
                   help="leave the last weighted layer dense")
    p.add_argument("--skip", action="append", default=[], metavar="PATTERN",
                   help="node or weight name (fnmatch pattern) to leave dense; repeatable")
    p.add_argument("--block", type=int, default=1,
                   help="prune blocks of this many weights along the reduction axis")
    p.add_argument("--prune-grouped", action="store_true",
                   help="also prune grouped / depthwise convs")
    p.add_argument("--rescale", action="store_true",
                   help="keep each pruned layer's L2 norm (for untrained / synthetic weights)")
    p.add_argument("--quantize", choices=("int8",), default=None,
                   help="static INT8 quantization to QDQ (per-channel int8 weights, uint8 "
                        "activations)")
    p.add_argument("--calibration", default="8", metavar="N|DIR",
                   help="N random input sets, or a directory of .npy/.npz input arrays "
                        "(default 8)")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="node name (fnmatch pattern) to leave in fp32 when quantizing; "
                        "repeatable")
    p.add_argument("--seed", type=int, default=0, help="seed of the random calibration sets")
    p.add_argument("--quiet", action="store_true", help="do not print the report")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    from deepsparse_lite.sparsify.api import sparsify

    if args.quantize is None and args.sparsity == 0.0:
        parser().error("nothing to do: give --sparsity > 0 and/or --quantize int8")
    try:
        _, report = sparsify(args.input, args.output, sparsity=args.sparsity, mode=args.mode,
                             skip_first_conv=args.skip_first_conv,
                             skip_classifier=args.skip_classifier, skip=args.skip,
                             block=args.block, prune_grouped=args.prune_grouped,
                             rescale=args.rescale, quantize=args.quantize,
                             calibration=args.calibration, exclude=args.exclude,
                             seed=args.seed)
    except ValueError as exc:
        print(f"deepsparse_lite.sparsify: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(report)
        print(f"wrote {args.output}")
    return 0
