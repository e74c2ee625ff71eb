"""A small ONNX graph builder with deterministic synthetic weights.

Every architecture module builds its graph through :class:`GraphBuilder`: it names nodes and
tensors the way an exporter would (stable, readable names), owns the numpy ``Generator`` so the
same ``seed`` always gives the same bytes, and holds the weight-initialisation rules in one place.

Weights are synthetic. Scales are chosen only so activations stay finite and varied through deep
networks (He-style std for convolutions, ``1/sqrt(fan_in)`` for dense layers, BatchNorm statistics
random with positive variance); they carry no learned meaning.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, helper

# IR 8 is understood by every onnx/onnxruntime release we support and by opsets up to 18.
IR_VERSION = 8

Dim = Union[int, str, None]


class GraphBuilder:
    """Collects nodes, initializers and graph inputs/outputs for one model."""

    def __init__(self, name: str, seed: int = 0, opset: int = 13, sparsity: float = 0.0,
                 sparsity_block: int = 1):
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if sparsity_block < 1:
            raise ValueError(f"sparsity_block must be >= 1, got {sparsity_block}")
        self.name = name
        self.opset = opset
        self.sparsity = float(sparsity)
        self.sparsity_block = int(sparsity_block)
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        # Initializers go straight into the final proto: copying BERT-base's 440 MB through
        # make_graph/make_model would double the build time.
        self.model = onnx.ModelProto()
        self.inputs: list = []
        self.outputs: list = []
        self._names: set = set()
        self._counts: dict = {}

    # ---------------------------------------------------------------- naming
    def unique(self, base: str) -> str:
        if base not in self._names:
            self._names.add(base)
            return base
        n = self._counts.get(base, 1)
        while f"{base}_{n}" in self._names:
            n += 1
        self._counts[base] = n + 1
        name = f"{base}_{n}"
        self._names.add(name)
        return name

    # ---------------------------------------------------------- graph pieces
    def input(self, name: str, dtype: int, shape: Sequence[Dim]) -> str:
        self._names.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        return name

    def output(self, name: str, dtype: int, shape: Sequence[Dim]) -> str:
        self.outputs.append(helper.make_tensor_value_info(name, dtype, list(shape)))
        return name

    def const(self, name: str, value) -> str:
        """Add an initializer (weights and constant operands alike)."""
        name = self.unique(name)
        # np.array(copy) keeps 0-d scalars 0-d (np.ascontiguousarray would make them 1-d).
        arr = np.array(value, order="C")
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        t = self.model.graph.initializer.add()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
        t.dims.extend(arr.shape)
        t.raw_data = arr.tobytes()
        return name

    def node(self, op: str, inputs: Sequence[str], name: Optional[str] = None,
             outputs: Union[int, Sequence[str]] = 1, **attrs):
        """Add a node; returns its output name (or a list of names if ``outputs`` > 1)."""
        name = self.unique(name or op)
        if isinstance(outputs, int):
            outs = [name if outputs == 1 else f"{name}:{k}" for k in range(outputs)]
            for o in outs:
                self._names.add(o)
        else:
            outs = list(outputs)
            self._names.update(outs)
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        return outs[0] if len(outs) == 1 else outs

    # ------------------------------------------------------- weight helpers
    def rand(self, shape, std: float) -> np.ndarray:
        """Zero-mean uniform values with standard deviation ``std`` (as kaiming_uniform_ does);
        uniform rather than normal because it is ~3x faster to draw for BERT's 110M weights."""
        a = self.rng.random(shape, dtype=np.float32)
        a -= np.float32(0.5)
        a *= np.float32(std * np.sqrt(12.0))
        return a

    def uniform(self, shape, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, size=shape).astype(np.float32)

    def prune(self, w: np.ndarray, in_axis: int) -> np.ndarray:
        """Magnitude-prune ``w`` to ``self.sparsity`` like a pruned SparseZoo model.

        Blocks of ``sparsity_block`` consecutive weights along the input (reduction) axis are
        kept or zeroed together (block 4 is what int8 VNNI kernels want). The survivors are
        rescaled so the layer keeps its output scale. Small layers (fan-in < 16) and layers
        whose input dim is not a multiple of the block stay dense.
        """
        bs = self.sparsity_block
        fan_in = w.size // w.shape[0] if in_axis == 1 else w.shape[0]
        if self.sparsity <= 0.0 or fan_in < 16 or w.shape[in_axis] % bs:
            return w
        v = np.moveaxis(w, in_axis, -1)
        shape = v.shape
        blocks = v.reshape(-1, bs)
        score = np.abs(blocks).sum(axis=1)
        n_zero = int(round(self.sparsity * len(score)))
        if n_zero == 0:
            return w
        drop = np.argsort(score, kind="stable")[:n_zero]
        energy = float(np.square(blocks).sum())
        blocks = blocks.copy()
        blocks[drop] = 0.0
        kept = float(np.square(blocks).sum())
        if kept > 0.0:
            blocks *= np.float32(np.sqrt(energy / kept))
        return np.ascontiguousarray(np.moveaxis(blocks.reshape(shape), -1, in_axis))

    # ------------------------------------------------------- common layers
    def conv(self, x: str, name: str, cin: int, cout: int, k: int, stride: int = 1,
             pad: Optional[int] = None, group: int = 1, bias: bool = False,
             gain: float = 2.0) -> str:
        """Conv with He-scaled weights (``std = sqrt(gain / fan_in)``)."""
        pad = (k - 1) // 2 if pad is None else pad
        fan_in = (cin // group) * k * k
        w = self.rand((cout, cin // group, k, k), np.sqrt(gain / fan_in))
        if group == 1:                  # depthwise/grouped convs stay dense, as in SparseZoo
            w = self.prune(w, in_axis=1)
        w = self.const(f"{name}.weight", w)
        ins = [x, w]
        if bias:
            ins.append(self.const(f"{name}.bias", self.rand((cout,), 0.05)))
        return self.node("Conv", ins, name=name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=group, dilations=[1, 1])

    def batchnorm(self, x: str, name: str, c: int, gamma: float = 1.0) -> str:
        """Inference BatchNorm with random affine params and running stats.

        The running statistics do not match the real activation statistics (there is no
        training), so ``gamma`` is the knob that keeps the per-layer gain near ``gamma``:
        ``scale = gamma' / sqrt(var)`` with ``gamma' ~ gamma * sqrt(var) * U(0.8, 1.2)``.
        """
        var = self.uniform((c,), 0.5, 2.0)
        mean = self.rand((c,), 0.1)
        scale = (gamma * np.sqrt(var) * self.uniform((c,), 0.8, 1.2)).astype(np.float32)
        beta = self.rand((c,), 0.1)
        ins = [x, self.const(f"{name}.weight", scale), self.const(f"{name}.bias", beta),
               self.const(f"{name}.running_mean", mean), self.const(f"{name}.running_var", var)]
        return self.node("BatchNormalization", ins, name=name, epsilon=1e-5, momentum=0.9)

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name=name)

    def relu6(self, x: str, name: str) -> str:
        """ReLU6 exported the way PyTorch does at opset >= 11: Clip with min/max inputs."""
        lo = self.const(f"{name}.min", np.array(0.0, np.float32))
        hi = self.const(f"{name}.max", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi], name=name)

    def gemm(self, x: str, name: str, fin: int, fout: int, std: Optional[float] = None,
             outputs=1) -> str:
        """``torch.nn.Linear`` on a 2-D input: Gemm with transB=1 (default std 1/sqrt(fin))."""
        std = 1.0 / np.sqrt(fin) if std is None else std
        w = self.const(f"{name}.weight", self.prune(self.rand((fout, fin), std), in_axis=1))
        b = self.const(f"{name}.bias", self.rand((fout,), 0.05))
        return self.node("Gemm", [x, w, b], name=name, outputs=outputs, alpha=1.0, beta=1.0,
                         transB=1)

    def linear_matmul(self, x: str, name: str, fin: int, fout: int,
                      std: Optional[float] = None, bias_std: float = 0.02) -> str:
        """``torch.nn.Linear`` on an N-d input: MatMul with a pre-transposed weight + Add."""
        std = 1.0 / np.sqrt(fin) if std is None else std
        w = self.const(f"{name}.weight", self.prune(self.rand((fin, fout), std), in_axis=0))
        b = self.const(f"{name}.bias", self.rand((fout,), bias_std))
        y = self.node("MatMul", [x, w], name=f"{name}/MatMul")
        return self.node("Add", [b, y], name=f"{name}/Add")

    # ------------------------------------------------------------- finish
    def build(self, doc: str = "") -> onnx.ModelProto:
        model = self.model
        model.ir_version = IR_VERSION
        model.producer_name = "deepsparse_lite.models"
        model.opset_import.add(domain="", version=self.opset)
        g = model.graph
        g.name = self.name
        g.node.extend(self.nodes)
        g.input.extend(self.inputs)
        g.output.extend(self.outputs)
        model.doc_string = doc
        helper.set_model_props(model, {"synthetic_weights": "true", "sample_model": self.name})
        return model


def batch_dim(batch_size: Optional[int]) -> Dim:
    """A fixed batch dimension, or the symbolic ``"batch"`` when ``batch_size`` is None."""
    return "batch" if batch_size is None else int(batch_size)


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
