"""A plain MLP (Gemm + ReLU stack) with synthetic weights.

Default shape 512 -> 1024 -> 1024 -> 1024 -> 10 with input ``"input"`` ``[N, 512]`` and output
``"output"`` ``[N, 10]``: small enough that scheduler benchmarks measure dispatch overhead and
stream behaviour rather than kernel speed. Weights are random (deterministic per ``seed``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import onnx

from deepsparse_lite.models._graph import FLOAT, GraphBuilder, batch_dim


def build_mlp(name: str = "mlp", sizes: Sequence[int] = (512, 1024, 1024, 1024, 10),
              batch_size: Optional[int] = 1, seed: int = 0, opset: int = 13,
              sparsity: float = 0.0, sparsity_block: int = 1) -> onnx.ModelProto:
    """Build ``Gemm(+Relu)`` layers for consecutive ``sizes``; no ReLU after the last one."""
    if len(sizes) < 2:
        raise ValueError("an MLP needs at least an input and an output size")
    g = GraphBuilder(name, seed=seed, opset=opset, sparsity=sparsity,
                     sparsity_block=sparsity_block)
    n = batch_dim(batch_size)
    y = g.input("input", FLOAT, [n, sizes[0]])
    last = len(sizes) - 2
    for i, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        outs = ["output"] if i == last else 1
        y = g.gemm(y, f"fc{i}", fin, fout, std=(2.0 / fin) ** 0.5, outputs=outs)
        if i != last:
            y = g.relu(y, f"relu{i}")
    g.output("output", FLOAT, [n, sizes[-1]])
    return g.build(doc=__doc__)
