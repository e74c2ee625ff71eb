"""Sample text-model folders: a sample BERT, a real WordPiece vocabulary and a config.json.

A text pipeline needs ``model.onnx`` + ``tokenizer.json`` + ``config.json``. With no network,
a ``zoo:`` stub of a text task resolves to a folder built here, once, under
``<sample cache>/pipelines/``:

* ``model.onnx``: a symlink to (or copy of) the matching sample model of
  :mod:`deepsparse_lite.models` (``obert-base .../pruned90_quant-none`` -> ``bert_base-pruned90_quant``),
  **synthetic weights**: its predictions are arbitrary;
* ``tokenizer.json``: a BERT-style uncased WordPiece tokenizer trained with ``tokenizers`` on
  :data:`CORPUS` (a few hundred words of built-in English; training takes milliseconds), so
  tokenisation costs what a real one does;
* ``config.json``: a Hugging Face BERT config, ``"synthetic_weights": true``, with
  ``id2label`` from the stub's task (sentiment / sst2 -> negative, positive).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, List, Optional

#: bump when the folder layout, the corpus or the tokenizer recipe changes
SAMPLE_FOLDER_VERSION = 1

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CORPUS = """\
The sentiment analysis pipeline is fast and easy to use. This movie was wonderful, the acting
was great and the story kept me interested from the first minute to the last. I did not like
the ending at all; it was slow, boring and far too long. What a terrible waste of time and
money. The food at this restaurant is delicious and the service is friendly. The hotel room
was dirty and the staff were rude, I would never stay there again. Sending requests to the
server is fast and easy! A model server answers many requests at the same time. Inference on
the CPU can be quick when the model is sparse and the kernels are well written. The weather
today is sunny and warm, a perfect day for a walk in the park with friends and family. Heavy
rain and strong wind closed the roads in the north of the country. Scientists discovered a
new species of bird in the forest. The government announced new rules for schools and
hospitals. Markets rose after the bank cut interest rates. She plays the piano beautifully and
sings in a choir every week. He bought a new car, but it broke down after two days. Our team
won the match in the final minute, and the fans celebrated in the streets. The book explains
how neural networks learn from data, how attention works, and why transformers changed
natural language processing. A cat sat on the mat while a dog slept by the door. Please send
me the report before the meeting on Monday morning. I love this phone, the battery lasts all
day and the camera takes excellent pictures. The customer support was unhelpful and the
product arrived broken. Learning a new language takes patience, practice and good teachers.
The children laughed and played in the garden until the sun went down. Is this the right way
to the station? Thank you very much for your help, it was really kind of you. Two plus two is
four, and ten minus three is seven. Quality, price and speed matter to every buyer. An
excellent, brilliant, amazing, happy, good experience; an awful, sad, bad, horrible, poor one.
"""

_SENTIMENT = {0: "negative", 1: "positive"}
_MNLI = {0: "entailment", 1: "neutral", 2: "contradiction"}


def train_wordpiece(vocab_size: int = 2000, corpus: Optional[str] = None):
    """A BERT-style (uncased, ``[CLS] a [SEP] b [SEP]``) WordPiece ``tokenizers.Tokenizer``
    trained on ``corpus`` (default :data:`CORPUS`); ``[PAD]`` is id 0."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = WordPieceTrainer(vocab_size=vocab_size, min_frequency=1,
                               special_tokens=SPECIAL_TOKENS, show_progress=False)
    text = corpus if corpus is not None else CORPUS
    lines = [ln for ln in text.replace(". ", ".\n").splitlines() if ln.strip()]
    tok.train_from_iterator(lines, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tok


def labels_for_stub(stub: str) -> Dict[int, str]:
    s = stub.lower()
    if "sentiment" in s or "sst2" in s or "imdb" in s:
        return dict(_SENTIMENT)
    if "mnli" in s:
        return dict(_MNLI)
    return {0: "LABEL_0", 1: "LABEL_1"}


def _atomic_write(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _link_model(src: str, dst: str) -> None:
    tmp = dst + f".tmp-{os.getpid()}"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        os.symlink(os.path.abspath(src), tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def sample_text_folder(sample: str, id2label: Optional[Dict[int, str]] = None,
                       directory: Optional[str] = None) -> str:
    """The folder (``model.onnx`` + ``tokenizer.json`` + ``config.json``) of text sample model
    ``sample`` (``bert_tiny``, ``bert_base-pruned90_quant``, ...) with labels ``id2label``
    (default ``LABEL_0``, ``LABEL_1``), built on first use and cached."""
    from deepsparse_lite.models import model_config, sample_model_path
    from deepsparse_lite.models.registry import _get, cache_dir, split_variant

    if _get(sample).kind != "text":
        raise ValueError(f"sample model {sample!r} is not a text model")
    cfg = model_config(split_variant(sample)[0])
    num_labels = cfg.get("num_labels", 2)
    labels = dict(id2label) if id2label else {i: f"LABEL_{i}" for i in range(num_labels)}
    if len(labels) != num_labels:
        raise ValueError(f"{sample} has {num_labels} labels, given {len(labels)} names")
    tag = "-".join(labels[i] for i in sorted(labels)).replace("/", "_")[:60]
    folder = os.path.join(directory or cache_dir(), "pipelines", f"{sample}--{tag}")
    stamp_path = os.path.join(folder, "sample.json")
    onnx_src = sample_model_path(sample)
    stamp = {"version": SAMPLE_FOLDER_VERSION, "sample": sample, "model": os.path.abspath(onnx_src),
             "id2label": {str(k): v for k, v in labels.items()}}
    try:
        with open(stamp_path) as f:
            if json.load(f) == stamp and all(os.path.isfile(os.path.join(folder, n)) for n in
                                             ("model.onnx", "tokenizer.json", "config.json")):
                return folder
    except (OSError, ValueError):
        pass
    os.makedirs(folder, exist_ok=True)
    vocab_size = int(cfg.get("vocab_size", 30522))
    tok = train_wordpiece(min(vocab_size, 2000))
    _atomic_write(os.path.join(folder, "tokenizer.json"), tok.to_str())
    hf = {
        "_comment": "SYNTHETIC WEIGHTS: deepsparse_lite sample model; predictions are arbitrary",
        "synthetic_weights": True,
        "sample_model": sample,
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "hidden_size": cfg.get("hidden", 768),
        "num_hidden_layers": cfg.get("num_layers", 12),
        "num_attention_heads": cfg.get("heads", 12),
        "intermediate_size": cfg.get("intermediate", 3072),
        "max_position_embeddings": cfg.get("max_position", 512),
        "vocab_size": vocab_size,
        "tokenizer_vocab_size": tok.get_vocab_size(),
        "max_seq_length": cfg.get("seq_len", 128),
        "num_labels": num_labels,
        "id2label": {str(k): v for k, v in sorted(labels.items())},
        "label2id": {v: k for k, v in sorted(labels.items())},
        "pad_token_id": 0,
    }
    _atomic_write(os.path.join(folder, "config.json"), json.dumps(hf, indent=2))
    _link_model(onnx_src, os.path.join(folder, "model.onnx"))
    _atomic_write(stamp_path, json.dumps(stamp))
    return folder


def zoo_text_folder(stub: str) -> str:
    """The sample folder a text ``zoo:`` stub resolves to (see the module docstring)."""
    import logging

    from deepsparse_lite.models import zoo_stub_to_sample
    from deepsparse_lite.models.registry import _get

    name = zoo_stub_to_sample(stub)
    if name is None or _get(name).kind != "text":
        raise ValueError(f"cannot resolve SparseZoo stub '{stub}' for a text pipeline: "
                         f"deepsparse_lite does not download models and the stub names no "
                         f"sample text architecture (o)BERT-base; pass a local model folder")
    folder = sample_text_folder(name, labels_for_stub(stub))
    logging.getLogger(__name__).warning(
        "SparseZoo stub '%s' resolved to the local sample folder %s (model '%s', synthetic "
        "weights: right for speed, meaningless for accuracy)", stub, folder, name)
    return folder


def sample_text_names() -> List[str]:
    from deepsparse_lite.models import list_models
    from deepsparse_lite.models.registry import _get
    return [n for n in list_models() if _get(n).kind == "text"]
