"""BERT encoder for sequence classification (Hugging Face layout) with synthetic weights.

The graph follows what ``torch.onnx.export`` produces for ``BertForSequenceClassification``
(eager attention):

* inputs ``input_ids``, ``attention_mask``, ``token_type_ids``: int64 ``[N, seq_len]``;
* embeddings: word + position + token-type Gathers, summed, LayerNorm;
* extended attention mask ``(1 - mask[:, None, None, :]) * -10000`` via Unsqueeze/Cast/Sub/Mul,
  computed once and added to every layer's scores;
* self-attention as MatMul+Add projections, Reshape ``[0, 0, heads, head_dim]`` + Transpose,
  ``MatMul(Q, K^T) / sqrt(head_dim) + mask``, Softmax, MatMul with V, Transpose + Reshape back;
* exact GELU through Erf (Div, Erf, Add, Mul, Mul), as PyTorch exports ``nn.GELU()``;
* LayerNormalization (opset >= 17) or, for older opsets, the ReduceMean/Sub/Pow/Sqrt/Div
  decomposition older exporters emit;
* pooler: Gather of token 0, Gemm, Tanh; classifier Gemm -> ``logits`` ``[N, num_labels]``.

Weights are random (deterministic per ``seed``): right for speed and correctness checks,
meaningless for accuracy. Dense weights use ``std = 1/sqrt(fan_in)`` (larger than BERT's 0.02)
so attention is not uniform and every layer visibly changes its input.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import onnx

from deepsparse_lite.models._graph import FLOAT, INT64, GraphBuilder, batch_dim


def _layer_norm(g: GraphBuilder, x: str, name: str, hidden: int, eps: float = 1e-12) -> str:
    gamma = g.const(f"{name}.weight", 1.0 + g.rand((hidden,), 0.1))
    beta = g.const(f"{name}.bias", g.rand((hidden,), 0.05))
    if g.opset >= 17:
        return g.node("LayerNormalization", [x, gamma, beta], name=name, axis=-1, epsilon=eps)
    # Pre-17 exporters decompose LayerNorm; ReduceMean takes axes as an attribute below 18.
    mean = g.node("ReduceMean", [x], name=f"{name}/ReduceMean", axes=[-1], keepdims=1)
    d = g.node("Sub", [x, mean], name=f"{name}/Sub")
    two = g.const(f"{name}/Pow.exponent", np.array(2.0, np.float32))
    sq = g.node("Pow", [d, two], name=f"{name}/Pow")
    var = g.node("ReduceMean", [sq], name=f"{name}/ReduceMean_1", axes=[-1], keepdims=1)
    e = g.const(f"{name}/Add.eps", np.array(eps, np.float32))
    std = g.node("Sqrt", [g.node("Add", [var, e], name=f"{name}/AddEps")], name=f"{name}/Sqrt")
    y = g.node("Div", [d, std], name=f"{name}/Div")
    y = g.node("Mul", [y, gamma], name=f"{name}/Mul")
    return g.node("Add", [y, beta], name=f"{name}/Add")


def _gelu(g: GraphBuilder, x: str, name: str) -> str:
    """``x * 0.5 * (1 + erf(x / sqrt(2)))`` in PyTorch's export order."""
    sqrt2 = g.const(f"{name}/Div.divisor", np.array(1.4142135381698608, np.float32))
    one = g.const(f"{name}/Add.one", np.array(1.0, np.float32))
    half = g.const(f"{name}/Mul.half", np.array(0.5, np.float32))
    y = g.node("Erf", [g.node("Div", [x, sqrt2], name=f"{name}/Div")], name=f"{name}/Erf")
    y = g.node("Add", [y, one], name=f"{name}/Add")
    y = g.node("Mul", [x, y], name=f"{name}/Mul")
    return g.node("Mul", [y, half], name=f"{name}/Mul_1")


def attention_block(g: GraphBuilder, h: str, mask: str, prefix: str, hidden: int, heads: int,
                    linear, norm) -> str:
    """BERT self-attention + output dense + residual + LayerNorm in PyTorch's export order
    (node names as the exporter writes them). ``linear(x, name)`` and ``norm(x, name)`` emit
    the weighted parts: random weights for the sample models, a checkpoint's for
    pipelines/convert.py."""
    hd = hidden // heads
    split = g.const(f"{prefix}/split_shape", np.array([0, 0, heads, hd], np.int64))
    merge = g.const(f"{prefix}/merge_shape", np.array([0, 0, hidden], np.int64))

    def proj(kind: str, perm):
        y = linear(h, f"{prefix}.self.{kind}")
        y = g.node("Reshape", [y, split], name=f"{prefix}.self.{kind}/Reshape")
        return g.node("Transpose", [y], name=f"{prefix}.self.{kind}/Transpose", perm=perm)

    q = proj("query", [0, 2, 1, 3])
    k = proj("key", [0, 2, 3, 1])   # K^T directly, as the exporter fuses transpose(-1, -2)
    v = proj("value", [0, 2, 1, 3])
    s = g.node("MatMul", [q, k], name=f"{prefix}.self/MatMul")
    scale = g.const(f"{prefix}.self/Div.divisor", np.array(np.sqrt(hd), np.float32))
    s = g.node("Div", [s, scale], name=f"{prefix}.self/Div")
    s = g.node("Add", [s, mask], name=f"{prefix}.self/Add")
    p = g.node("Softmax", [s], name=f"{prefix}.self/Softmax", axis=-1)
    c = g.node("MatMul", [p, v], name=f"{prefix}.self/MatMul_1")
    c = g.node("Transpose", [c], name=f"{prefix}.self/Transpose", perm=[0, 2, 1, 3])
    c = g.node("Reshape", [c, merge], name=f"{prefix}.self/Reshape")
    y = linear(c, f"{prefix}.output.dense")
    y = g.node("Add", [y, h], name=f"{prefix}.output/Add")
    return norm(y, f"{prefix}.output.LayerNorm")


def _self_attention(g: GraphBuilder, h: str, mask: str, prefix: str, hidden: int,
                    heads: int) -> str:
    return attention_block(g, h, mask, prefix, hidden, heads,
                           lambda x, n: g.linear_matmul(x, n, hidden, hidden),
                           lambda x, n: _layer_norm(g, x, n, hidden))


def _layer(g: GraphBuilder, h: str, mask: str, prefix: str, hidden: int, heads: int,
           intermediate: int) -> str:
    a = _self_attention(g, h, mask, f"{prefix}.attention", hidden, heads)
    y = g.linear_matmul(a, f"{prefix}.intermediate.dense", hidden, intermediate)
    y = _gelu(g, y, f"{prefix}.intermediate.intermediate_act_fn")
    y = g.linear_matmul(y, f"{prefix}.output.dense", intermediate, hidden)
    y = g.node("Add", [y, a], name=f"{prefix}.output/Add")
    return _layer_norm(g, y, f"{prefix}.output.LayerNorm", hidden)


def build_bert(name: str = "bert_base", num_layers: int = 12, hidden: int = 768, heads: int = 12,
               intermediate: int = 3072, vocab_size: int = 30522, max_position: int = 512,
               type_vocab_size: int = 2, seq_len: int = 128, num_labels: int = 2,
               batch_size: Optional[int] = 1, seed: int = 0, opset: int = 17,
               mask_value: float = -10000.0, sparsity: float = 0.0,
               sparsity_block: int = 1) -> onnx.ModelProto:
    """Build a BertForSequenceClassification graph; the defaults give bert-base-uncased.

    ``sparsity`` > 0 magnitude-prunes every encoder/pooler/classifier weight matrix (not the
    embeddings), like SparseZoo's pruned (o)BERT models.
    """
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads})")
    if seq_len > max_position:
        raise ValueError(f"seq_len ({seq_len}) exceeds max_position ({max_position})")
    g = GraphBuilder(name, seed=seed, opset=opset, sparsity=sparsity,
                     sparsity_block=sparsity_block)
    n = batch_dim(batch_size)
    ids = g.input("input_ids", INT64, [n, seq_len])
    am = g.input("attention_mask", INT64, [n, seq_len])
    tt = g.input("token_type_ids", INT64, [n, seq_len])

    e = "bert.embeddings"
    word = g.const(f"{e}.word_embeddings.weight", g.rand((vocab_size, hidden), 0.5))
    pos = g.const(f"{e}.position_embeddings.weight", g.rand((max_position, hidden), 0.5))
    typ = g.const(f"{e}.token_type_embeddings.weight", g.rand((type_vocab_size, hidden), 0.5))
    pos_ids = g.const(f"{e}.position_ids", np.arange(seq_len, dtype=np.int64)[None, :])
    y = g.node("Gather", [word, ids], name=f"{e}.word_embeddings", axis=0)
    y = g.node("Add", [y, g.node("Gather", [typ, tt], name=f"{e}.token_type_embeddings",
                                 axis=0)], name=f"{e}/Add")
    y = g.node("Add", [y, g.node("Gather", [pos, pos_ids], name=f"{e}.position_embeddings",
                                 axis=0)], name=f"{e}/Add_1")
    h = _layer_norm(g, y, f"{e}.LayerNorm", hidden)

    # Extended attention mask, shared by all layers: [N, 1, 1, S] of 0 / mask_value.
    axes = g.const("bert/Unsqueeze.axes", np.array([1, 2], np.int64))
    m = g.node("Unsqueeze", [am, axes], name="bert/Unsqueeze")
    m = g.node("Cast", [m], name="bert/Cast", to=onnx.TensorProto.FLOAT)
    one = g.const("bert/Sub.one", np.array(1.0, np.float32))
    m = g.node("Sub", [one, m], name="bert/Sub")
    big = g.const("bert/Mul.value", np.array(mask_value, np.float32))
    mask = g.node("Mul", [m, big], name="bert/Mul")

    for i in range(num_layers):
        h = _layer(g, h, mask, f"bert.encoder.layer.{i}", hidden, heads, intermediate)

    zero = g.const("bert.pooler/Gather.index", np.array(0, np.int64))
    p = g.node("Gather", [h, zero], name="bert.pooler/Gather", axis=1)
    p = g.gemm(p, "bert.pooler.dense", hidden, hidden)
    p = g.node("Tanh", [p], name="bert.pooler.activation")
    g.gemm(p, "classifier", hidden, num_labels, outputs=["logits"])
    g.output("logits", FLOAT, [n, num_labels])
    return g.build(doc=__doc__)


def bert_inputs(batch_size: int, seq_len: int, vocab_size: int, seed: int = 0):
    """Valid feeds for :func:`build_bert`: random ids, right-padded masks, two segments."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab_size, size=(batch_size, seq_len), dtype=np.int64)
    mask = np.ones((batch_size, seq_len), np.int64)
    types = np.zeros((batch_size, seq_len), np.int64)
    for r in range(batch_size):
        # Row 0 is unpadded; later rows get random padding so the mask path matters.
        length = seq_len if r == 0 else int(rng.integers(max(1, seq_len // 4), seq_len + 1))
        mask[r, length:] = 0
        ids[r, length:] = 0
        types[r, length // 2:length] = 1
    return [ids, mask, types]
