"""Hugging Face BERT-family safetensors checkpoint -> ONNX model folder, without torch.

Input: a folder with ``config.json`` (``model_type`` bert, or a BERT-layout relative: MiniLM,
sentence-transformers models), ``model.safetensors`` and ``tokenizer.json``. Output: a folder
with ``model.onnx`` + ``tokenizer.json`` + ``config.json`` that the text pipelines load.

The graph is built with ``onnx.helper`` (through :class:`deepsparse_lite.models._graph.GraphBuilder`)
in exactly the op layout of the sample BERT (:mod:`deepsparse_lite.models.bert`), which is
what ``torch.onnx.export`` emits and what the compiler's attention / LayerNorm / GELU patterns
expect: Gather embeddings, LayerNormalization (opset 17), MatMul+Add projections,
Reshape/Transpose heads, Softmax attention with the ``(1 - mask) * -10000`` additive mask,
Erf GELU. Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` ``[batch, seq_len]``
(int64, static ``seq_len``). Output ``last_hidden_state`` ``[batch, seq_len, hidden]``; a
checkpoint with a ``classifier`` (BertForSequenceClassification) gets the pooler and
``logits`` ``[batch, num_labels]`` instead (``head="auto"``).

    python -m deepsparse_lite.pipelines.convert SRC_FOLDER DST_FOLDER [--seq-len 128]

or ``convert_bert(src, dst, seq_len=128)``. Sentence-transformers extras are read when present:
``1_Pooling/config.json`` (pooling mode) and a ``Normalize`` module in ``modules.json``;
they are recorded in the output ``config.json`` under ``"deepsparse_lite"``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
from typing import Dict, Optional

import numpy as np
import onnx

from deepsparse_lite.models._graph import FLOAT, INT64, GraphBuilder
from deepsparse_lite.models.bert import _gelu, attention_block

__all__ = ["convert_bert", "load_safetensors", "main"]

_ST_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
              "I32": np.int32, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path: str) -> Dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as a NumPy array (float32 for BF16 / F16).

    Uses the ``safetensors`` package when installed, else a small reader of the format
    (8-byte little-endian header size, JSON header of dtype / shape / data_offsets, raw data).
    """
    try:
        from safetensors.numpy import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        try:
            return {k: _to_f32(v) for k, v in load_file(path).items()}
        except Exception as e:
            if "bf16" not in str(e).lower() and "bfloat16" not in str(e).lower():
                raise
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, stop = info["data_offsets"]
        raw = data[base + start:base + stop]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _ST_DTYPES:
            arr = np.frombuffer(raw, _ST_DTYPES[info["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        out[name] = _to_f32(arr.reshape(info["shape"]).copy())
    return out


def _to_f32(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) if a.dtype in (np.float16, np.float64) else a


class _Weights:
    """HF state-dict lookup that tolerates the ``bert.`` prefix of task checkpoints."""

    def __init__(self, tensors: Dict[str, np.ndarray]):
        self.t = tensors
        self.used = set()

    def has(self, name: str) -> bool:
        return name in self.t or f"bert.{name}" in self.t

    def __getitem__(self, name: str) -> np.ndarray:
        for k in (name, f"bert.{name}"):
            if k in self.t:
                self.used.add(k)
                return self.t[k]
        raise ValueError(f"checkpoint lacks tensor {name!r} (is it a BERT-family model?)")


def _layer_norm(g: GraphBuilder, w: _Weights, x: str, name: str, eps: float) -> str:
    gamma = g.const(f"{name}.weight", w[f"{name}.weight"])
    beta = g.const(f"{name}.bias", w[f"{name}.bias"])
    return g.node("LayerNormalization", [x, gamma, beta], name=name, axis=-1, epsilon=eps)


def _linear(g: GraphBuilder, w: _Weights, x: str, name: str) -> str:
    """torch Linear on an N-d input: MatMul with the transposed weight, then Add (bias first,
    as the exporter writes it)."""
    wt = g.const(f"{name}.weight", np.ascontiguousarray(w[f"{name}.weight"].T))
    b = g.const(f"{name}.bias", w[f"{name}.bias"])
    y = g.node("MatMul", [x, wt], name=f"{name}/MatMul")
    return g.node("Add", [b, y], name=f"{name}/Add")


def _act(g: GraphBuilder, x: str, name: str, act: str) -> str:
    if act == "gelu":
        return _gelu(g, x, name)
    if act == "relu":
        return g.node("Relu", [x], name=name)
    raise ValueError(f"hidden_act {act!r} is not supported by the converter (gelu, relu)")


def _encoder_layer(g, w, h, mask, prefix, hidden, heads, eps, act):
    att = attention_block(g, h, mask, f"{prefix}.attention", hidden, heads,
                          lambda x, n: _linear(g, w, x, n),
                          lambda x, n: _layer_norm(g, w, x, n, eps))
    y = _linear(g, w, att, f"{prefix}.intermediate.dense")
    y = _act(g, y, f"{prefix}.intermediate.intermediate_act_fn", act)
    y = _linear(g, w, y, f"{prefix}.output.dense")
    y = g.node("Add", [y, att], name=f"{prefix}.output/Add")
    return _layer_norm(g, w, y, f"{prefix}.output.LayerNorm", eps)


def build_bert_onnx(cfg: Dict, tensors: Dict[str, np.ndarray], seq_len: int = 128,
                    batch_size: int = 1, head: str = "auto", name: str = "bert") -> onnx.ModelProto:
    """The ONNX graph of a HF BERT checkpoint (``config.json`` dict + state dict)."""
    w = _Weights(tensors)
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    layers = int(cfg["num_hidden_layers"])
    eps = float(cfg.get("layer_norm_eps", 1e-12))
    act = cfg.get("hidden_act", "gelu")
    max_pos = int(cfg.get("max_position_embeddings", 512))
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings are supported")
    if not 2 <= seq_len <= max_pos:
        raise ValueError(f"seq_len must be in [2, {max_pos}] (max_position_embeddings), "
                         f"given {seq_len}")
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} is not a multiple of {heads} heads")
    if head == "auto":
        head = "classifier" if w.has("classifier.weight") or "classifier.weight" in tensors \
            else "hidden"
    if head not in ("hidden", "classifier"):
        raise ValueError(f"head must be 'auto', 'hidden' or 'classifier', given {head!r}")

    g = GraphBuilder(name, opset=17)
    n = batch_size
    ids = g.input("input_ids", INT64, [n, seq_len])
    am = g.input("attention_mask", INT64, [n, seq_len])
    tt = g.input("token_type_ids", INT64, [n, seq_len])
    e = "embeddings"
    word = g.const(f"{e}.word_embeddings.weight", w[f"{e}.word_embeddings.weight"])
    pos = g.const(f"{e}.position_embeddings.weight", w[f"{e}.position_embeddings.weight"])
    typ = g.const(f"{e}.token_type_embeddings.weight", w[f"{e}.token_type_embeddings.weight"])
    pos_ids = g.const(f"{e}.position_ids", np.arange(seq_len, dtype=np.int64)[None, :])
    y = g.node("Gather", [word, ids], name=f"{e}.word_embeddings", axis=0)
    y = g.node("Add", [y, g.node("Gather", [typ, tt], name=f"{e}.token_type_embeddings",
                                 axis=0)], name=f"{e}/Add")
    y = g.node("Add", [y, g.node("Gather", [pos, pos_ids], name=f"{e}.position_embeddings",
                                 axis=0)], name=f"{e}/Add_1")
    h = _layer_norm(g, w, y, f"{e}.LayerNorm", eps)

    axes = g.const("bert/Unsqueeze.axes", np.array([1, 2], np.int64))
    m = g.node("Unsqueeze", [am, axes], name="bert/Unsqueeze")
    m = g.node("Cast", [m], name="bert/Cast", to=onnx.TensorProto.FLOAT)
    one = g.const("bert/Sub.one", np.array(1.0, np.float32))
    m = g.node("Sub", [one, m], name="bert/Sub")
    big = g.const("bert/Mul.value", np.array(-10000.0, np.float32))
    mask = g.node("Mul", [m, big], name="bert/Mul")
    for i in range(layers):
        h = _encoder_layer(g, w, h, mask, f"encoder.layer.{i}", hidden, heads, eps, act)

    if head == "hidden":
        g.node("Identity", [h], name="last_hidden_state", outputs=["last_hidden_state"])
        g.output("last_hidden_state", FLOAT, [n, seq_len, hidden])
    else:
        zero = g.const("pooler/Gather.index", np.array(0, np.int64))
        p = g.node("Gather", [h, zero], name="pooler/Gather", axis=1)
        pw = g.const("pooler.dense.weight", w["pooler.dense.weight"])
        pb = g.const("pooler.dense.bias", w["pooler.dense.bias"])
        p = g.node("Gemm", [p, pw, pb], name="pooler.dense", transB=1)
        p = g.node("Tanh", [p], name="pooler.activation")
        cw = g.const("classifier.weight", tensors["classifier.weight"])
        cb = g.const("classifier.bias", tensors["classifier.bias"])
        g.node("Gemm", [p, cw, cb], name="classifier", outputs=["logits"], transB=1)
        g.output("logits", FLOAT, [n, int(tensors["classifier.weight"].shape[0])])
    model = g.build(doc=f"{name}: converted from a Hugging Face safetensors checkpoint by "
                        f"deepsparse_lite.pipelines.convert (real weights)")
    for p in model.metadata_props:
        if p.key == "synthetic_weights":
            p.value = "false"
    return model


def _sentence_transformers_info(src: str) -> Dict:
    info = {}
    pool_cfg = os.path.join(src, "1_Pooling", "config.json")
    if os.path.isfile(pool_cfg):
        with open(pool_cfg) as f:
            pc = json.load(f)
        for mode in ("mean", "cls", "max"):
            if pc.get(f"pooling_mode_{mode}_tokens") or pc.get(f"pooling_mode_{mode}_token"):
                info["pooling"] = mode
                break
    modules = os.path.join(src, "modules.json")
    if os.path.isfile(modules):
        with open(modules) as f:
            mods = json.load(f)
        info["normalize"] = any("Normalize" in m.get("type", "") for m in mods)
    return info


def convert_bert(src: str, dst: str, seq_len: int = 128, head: str = "auto",
                 overwrite: bool = True) -> str:
    """Convert HF checkpoint folder ``src`` into model folder ``dst``; returns ``dst``."""
    cfg_path = os.path.join(src, "config.json")
    st_path = os.path.join(src, "model.safetensors")
    tok_path = os.path.join(src, "tokenizer.json")
    for p in (cfg_path, st_path, tok_path):
        if not os.path.isfile(p):
            raise ValueError(f"{src} must hold config.json, model.safetensors and "
                             f"tokenizer.json: {os.path.basename(p)} is missing")
    with open(cfg_path) as f:
        cfg = json.load(f)
    if cfg.get("model_type", "bert") not in ("bert",):
        raise ValueError(f"model_type {cfg.get('model_type')!r} is not supported (bert only)")
    tensors = load_safetensors(st_path)
    name = os.path.basename(os.path.normpath(src)) or "bert"
    model = build_bert_onnx(cfg, tensors, seq_len=seq_len, head=head, name=name)
    if os.path.exists(os.path.join(dst, "model.onnx")) and not overwrite:
        raise ValueError(f"{dst}/model.onnx exists (overwrite=False)")
    os.makedirs(dst, exist_ok=True)
    tmp = os.path.join(dst, f".model.onnx.tmp-{os.getpid()}")
    onnx.save(model, tmp)
    os.replace(tmp, os.path.join(dst, "model.onnx"))
    shutil.copyfile(tok_path, os.path.join(dst, "tokenizer.json"))
    out_cfg = dict(cfg)
    out_cfg["deepsparse_lite"] = dict(
        converted_from=os.path.abspath(src), seq_len=seq_len,
        outputs=[o.name for o in model.graph.output], synthetic_weights=False,
        **_sentence_transformers_info(src))
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(out_cfg, f, indent=2)
    return dst


def main(argv: Optional[list] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m deepsparse_lite.pipelines.convert",
                                 description="Convert a Hugging Face BERT-family safetensors "
                                             "folder into an ONNX model folder.")
    ap.add_argument("src", help="folder with config.json, model.safetensors, tokenizer.json")
    ap.add_argument("dst", help="output folder (model.onnx, tokenizer.json, config.json)")
    ap.add_argument("--seq-len", type=int, default=128, help="static sequence length")
    ap.add_argument("--head", default="auto", choices=["auto", "hidden", "classifier"])
    args = ap.parse_args(argv)
    out = convert_bert(args.src, args.dst, seq_len=args.seq_len, head=args.head)
    print(f"wrote {out}/model.onnx")


if __name__ == "__main__":
    main()
