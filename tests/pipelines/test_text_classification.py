"""Text classification pipeline against onnxruntime on the same model and tokens."""
import json
import os

import numpy as np
import pytest
from pydantic import ValidationError

from deepsparse_lite import Pipeline


def _ort_logits(folder, texts, seq_len):
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_padding(length=seq_len, pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(max_length=seq_len)
    encs = tok.encode_batch(texts)
    feeds = {"input_ids": np.array([e.ids for e in encs], np.int64),
             "attention_mask": np.array([e.attention_mask for e in encs], np.int64),
             "token_type_ids": np.array([e.type_ids for e in encs], np.int64)}
    sess = ort.InferenceSession(os.path.join(folder, "model.onnx"),
                                providers=["CPUExecutionProvider"])
    out = []
    for i in range(len(texts)):  # the model is compiled at batch 1
        out.append(sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0])
    return np.concatenate(out)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def pipe(tiny_text_folder):
    p = Pipeline.create("sentiment-analysis", model_path=tiny_text_folder)
    yield p
    p.close()


TEXTS = ["The movie was wonderful", "I did not like the ending at all; it was slow and boring",
         "rain", "A cat sat on the mat while a dog slept by the door and the children played"]


def test_matches_onnxruntime(pipe, tiny_text_folder):
    out = pipe(sequences=TEXTS)
    probs = _softmax(_ort_logits(tiny_text_folder, TEXTS, pipe.sequence_length))
    assert out.labels == [["negative", "positive"][i] for i in probs.argmax(-1)]
    np.testing.assert_allclose(out.scores, probs.max(-1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bs", [None, 3])
def test_batch_split_and_pad(tiny_text_folder, bs):
    ref = _softmax(_ort_logits(tiny_text_folder, TEXTS, 16))
    with Pipeline.create("text_classification", model_path=tiny_text_folder, batch_size=bs,
                         top_k=2) as p:
        out = p(TEXTS)       # 4 items: one full chunk of 3 and one padded
    assert len(out.labels) == 4 and all(len(s) == 2 for s in out.scores)
    np.testing.assert_allclose(np.array(out.scores), -np.sort(-ref, axis=-1), rtol=1e-4, atol=1e-5)


def test_task_names_and_call_forms(pipe, tiny_text_folder):
    from deepsparse_lite.pipelines import normalize_task, registered_tasks
    for name in ("sentiment-analysis", "Sentiment_Analysis", "text-classification", "glue"):
        assert normalize_task(name) in registered_tasks()
    single = pipe("The movie was wonderful")
    assert single == pipe(["The movie was wonderful"]) == pipe(sequences=[["The movie was wonderful"]])
    assert pipe(pipe.input_schema(sequences="rain")) == pipe(sequences="rain")
    two = pipe("rain", "sun")
    assert len(two.labels) == 2
    assert isinstance(single, pipe.output_schema)
    js = single.model_dump()
    assert set(js) == {"labels", "scores"} and isinstance(js["scores"][0], float)
    assert pipe.task == "text_classification"
    assert pipe.model_path.endswith("model.onnx")


def test_pairs_use_token_types(pipe, tiny_text_folder):
    out = pipe([["is it raining", "heavy rain closed the roads"]])
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(tiny_text_folder, "tokenizer.json"))
    enc = tok.encode("is it raining", "heavy rain closed the roads")
    assert 1 in enc.type_ids
    assert len(out.scores) == 1


def test_truncation_and_over_long(tiny_text_folder, pipe):
    long = "the weather today is sunny and warm " * 20
    out = pipe(long)  # DeepSparse truncates (longest_first)
    ref = _softmax(_ort_logits(tiny_text_folder, [long], 16))
    np.testing.assert_allclose(out.scores, ref.max(-1), rtol=1e-4, atol=1e-5)
    with Pipeline.create("text_classification", model_path=tiny_text_folder,
                         truncation=False) as strict:
        assert strict("short text").labels
        with pytest.raises(ValueError, match="sequence_length"):
            strict(long)


@pytest.mark.parametrize("bad", [dict(sequences=[]), dict(sequences=5), dict(sequences=[1, 2]),
                                 dict(sequences=[["a", "b", "c"]]), dict(sequences=[[]]),
                                 dict(sequences=None), dict()])
def test_bad_inputs_raise_validation_error(pipe, bad):
    with pytest.raises(ValidationError):
        pipe(**bad)


def test_bad_calls(pipe, tiny_text_folder):
    with pytest.raises(ValueError):
        pipe("a", sequences="b")
    with pytest.raises(ValueError):
        Pipeline.create("no-such-task", model_path=tiny_text_folder)
    with pytest.raises(ValueError):
        Pipeline.create("text_classification", model_path=tiny_text_folder, top_k=0)
    with pytest.raises(ValueError):
        Pipeline.create("text_classification", model_path=tiny_text_folder, sequence_length=32)
    with pytest.raises(ValueError, match="lacks"):
        from deepsparse_lite.models import sample_model_path
        Pipeline.create("text_classification", model_path=sample_model_path("bert_tiny"))


def test_config_labels_and_sigmoid(tmp_path, tiny_text_folder):
    import shutil
    for f in ("model.onnx", "tokenizer.json"):
        shutil.copy(os.path.join(tiny_text_folder, f), tmp_path / f)
    cfg = json.load(open(os.path.join(tiny_text_folder, "config.json")))
    cfg["id2label"] = {"0": "sports", "1": "politics"}
    cfg["problem_type"] = "multi_label_classification"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with Pipeline.create("text_classification", model_path=str(tmp_path), top_k=2) as p:
        out = p("Our team won the match")
    logits = _ort_logits(str(tmp_path), ["Our team won the match"], 16)[0]
    sig = 1 / (1 + np.exp(-logits))
    order = np.argsort(-sig)
    assert out.labels == [[["sports", "politics"][i] for i in order]]
    np.testing.assert_allclose(out.scores[0], sig[order], rtol=1e-4, atol=1e-5)


def test_context_uses_multimodel_engine(tiny_text_folder):
    from deepsparse_lite import Context, MultiModelEngine
    ctx = Context(num_streams=1)
    try:
        p = Pipeline.create("sentiment_analysis", model_path=tiny_text_folder, context=ctx)
        assert isinstance(p.engine, MultiModelEngine)
        assert p("rain").labels
        p.close()
        with pytest.raises(ValueError, match="num_cores mismatch"):
            Pipeline.create("sentiment_analysis", model_path=tiny_text_folder, context=ctx,
                            num_cores=ctx.num_cores + 1)
    finally:
        ctx.close()


def test_top_level_export():
    import deepsparse_lite
    from deepsparse_lite.pipelines import Pipeline as P
    from deepsparse_lite.pipelines import PipelineConfig, sentiment_analysis_pipeline
    assert deepsparse_lite.Pipeline is P
    assert deepsparse_lite.PipelineConfig is PipelineConfig
    assert deepsparse_lite.sentiment_analysis_pipeline is sentiment_analysis_pipeline
    with pytest.raises(AttributeError):
        deepsparse_lite.NoSuchName


def test_zoo_text_stub_resolves_to_sample_folder(monkeypatch):
    """A text zoo: stub becomes a cached sample folder (bert_tiny stands in for bert_base here
    to keep the test fast): synthetic weights marked in config.json, task labels, a real
    WordPiece vocabulary."""
    import deepsparse_lite.models as models
    from deepsparse_lite.pipelines import samples

    stub = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/pruned90_quant-none"
    assert models.zoo_stub_to_sample(stub) == "bert_base-pruned90_quant"
    monkeypatch.setattr(models, "zoo_stub_to_sample", lambda s: "bert_tiny")
    folder = samples.zoo_text_folder(stub)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    assert cfg["synthetic_weights"] is True and "SYNTHETIC" in cfg["_comment"]
    assert cfg["id2label"] == {"0": "negative", "1": "positive"}
    with Pipeline.create("sentiment-analysis", model_path=stub, batch_size=1,
                         scheduler="single_stream") as p:
        out = p("The sentiment analysis pipeline is fast and easy to use")
        ids = p.tokens_to_engine_input(["the movie was wonderful"])[0][0]
    assert out.labels[0] in ("negative", "positive") and 0.5 <= out.scores[0] <= 1.0
    unk = p.tokenizer.token_to_id("[UNK]")
    assert unk not in ids.tolist()         # corpus words are in the vocabulary
    with pytest.raises(ValueError, match="cannot resolve"):
        monkeypatch.setattr(models, "zoo_stub_to_sample", lambda s: None)
        samples.zoo_text_folder("zoo:nlp/question_answering/distilbert-none/base-none")


def test_executor_runs_chunks_concurrently(tiny_text_folder):
    from concurrent.futures import ThreadPoolExecutor
    ref = _softmax(_ort_logits(tiny_text_folder, TEXTS * 2, 16)).max(-1)
    with ThreadPoolExecutor(2) as pool:
        for ex in (2, pool):
            with Pipeline.create("text_classification", model_path=tiny_text_folder,
                                 batch_size=None, executor=ex, scheduler="multi_stream",
                                 num_streams=2) as p:
                assert p.batch_size is None and p.executor is not None
                np.testing.assert_allclose(p(TEXTS * 2).scores, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="ThreadPoolExecutor"):
        Pipeline.create("text_classification", model_path=tiny_text_folder, executor="x")


def test_hostile_length_and_threads(pipe, tiny_text_folder):
    from concurrent.futures import ThreadPoolExecutor

    from deepsparse_lite.pipelines.transformers import MAX_TEXT_CHARS
    with pytest.raises(ValueError, match="exceeds the limit"):
        pipe("x" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(ValidationError):
        pipe(sequences=[["a", 1]])
    serial = [pipe(t).scores[0] for t in TEXTS]
    with ThreadPoolExecutor(4) as pool:      # one pipeline shared by request threads
        got = list(pool.map(lambda t: pipe(t).scores[0], TEXTS * 4))
    np.testing.assert_allclose(got, serial * 4, rtol=1e-6)
