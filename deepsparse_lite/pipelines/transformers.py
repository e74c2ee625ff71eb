"""Shared by the text pipelines: model folder, ``config.json``, ``tokenizer.json``, batching.

A text model folder holds ``model.onnx`` (inputs among ``input_ids``, ``attention_mask``,
``token_type_ids``, each ``[batch, sequence_length]``), a Hugging Face ``config.json`` and a
``tokenizers`` ``tokenizer.json``. Tokenisation runs in the Rust ``tokenizers`` library with
fixed-length padding and DeepSparse's ``truncation="longest_first"``; ``truncation=False``
makes an over-long input a ValueError instead.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from deepsparse_lite.pipelines.base import Pipeline, resolve_model_folder

_LOGGER = logging.getLogger(__name__)

DEFAULT_SEQUENCE_LENGTH = 128
#: model input name -> attribute of a tokenizers Encoding
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask",
                    "token_type_ids": "type_ids"}
#: longest request string accepted (characters), so a hostile request cannot stall tokenisation
MAX_TEXT_CHARS = 1_000_000


def load_config(folder: str) -> Dict:
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the model config {path}: {e}") from e
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return cfg


def id2label(cfg: Dict) -> Dict[int, str]:
    """``config.json``'s ``id2label`` with int keys; HF's default ``LABEL_<i>`` names when it
    is missing (``num_labels`` or 2 of them)."""
    raw = cfg.get("id2label")
    if raw:
        try:
            return {int(k): str(v) for k, v in raw.items()}
        except (TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"config.json id2label must map integers to names: {e}") from e
    n = int(cfg.get("num_labels", 2))
    return {i: f"LABEL_{i}" for i in range(n)}


class TransformersPipeline(Pipeline):
    """Base of the text pipelines: resolves the folder, loads the tokenizer and config, fixes
    the sequence length, and turns lists of texts (or text pairs) into engine arrays.

    :param sequence_length: tokens per sequence; default the model's static length, else 128.
        A length other than the model's is compiled as an ``input_shapes`` override (fine for
        graphs with a dynamic sequence dim, refused with a ValueError by static ones)
    :param truncation: cut over-long inputs (True, DeepSparse's behaviour) or refuse them
    """

    required_files = ("tokenizer.json", "config.json")

    def __init__(self, model_path: str, sequence_length: Optional[int] = None,
                 truncation: bool = True, tokenizer=None, config: Optional[Dict] = None,
                 trust_remote_code: bool = False, **kwargs):
        if isinstance(sequence_length, (list, tuple)):
            raise ValueError("sequence_length buckets (a list of lengths) are not supported by "
                             "deepsparse_lite pipelines: pass one int")
        if sequence_length is not None and (isinstance(sequence_length, bool)
                                            or not isinstance(sequence_length, int)
                                            or sequence_length < 2):
            raise ValueError(f"sequence_length must be an int >= 2, given {sequence_length!r}")
        self._requested_length = sequence_length
        self._truncation = bool(truncation)
        self._tokenizer_arg = tokenizer
        self._config_arg = config
        super().__init__(model_path, **kwargs)

    # ---------------------------------------------------------------- setup
    def setup_onnx_file_path(self) -> str:
        onnx_path, folder = resolve_model_folder(self._model_path_orig, self.required_files)
        self._folder = folder
        self.config = dict(self._config_arg) if self._config_arg is not None else load_config(folder)
        if self._tokenizer_arg is not None:
            self.tokenizer = self._tokenizer_arg
        else:
            from tokenizers import Tokenizer
            try:
                self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
            except Exception as e:  # the Rust side raises a plain Exception
                raise ValueError(f"cannot load {folder}/tokenizer.json: {e}") from e
        return onnx_path

    def create_engine(self):
        engine = super().create_engine()
        names = engine.input_names
        unknown = [n for n in names if n not in _ENCODING_FIELDS]
        if unknown:
            engine.close()
            raise ValueError(f"text model inputs must be among {list(_ENCODING_FIELDS)}, the "
                             f"model has {unknown}")
        shapes = engine.input_shapes
        static = {s[1] for s in shapes if len(s) == 2 and s[1] != 4294967295}
        if any(len(s) != 2 for s in shapes):
            engine.close()
            raise ValueError(f"text model inputs must be [batch, sequence_length], got {shapes}")
        model_len = static.pop() if len(static) == 1 else None
        length = self._requested_length or model_len or DEFAULT_SEQUENCE_LENGTH
        if length != model_len and self._engine_args.get("input_shapes") is None:
            engine.close()
            self._engine_args["input_shapes"] = [[self._batch_size, length] for _ in names]
            try:
                engine = super().create_engine()
            except Exception as e:
                raise ValueError(
                    f"cannot compile the model at sequence_length={length} (the model's own "
                    f"length is {model_len}): {e}. Use sequence_length={model_len} or a model "
                    f"exported with a dynamic sequence dim") from e
        self.sequence_length = int(length)
        self._input_fields = [_ENCODING_FIELDS[n] for n in names]
        self._input_dtypes = engine.input_dtypes
        self._configure_tokenizer()
        return engine

    def _configure_tokenizer(self) -> None:
        tok = self.tokenizer
        pad_id, pad_token = 0, "[PAD]"
        for cand in ("[PAD]", "<pad>"):
            i = tok.token_to_id(cand)
            if i is not None:
                pad_id, pad_token = i, cand
                break
        tok.enable_padding(length=self.sequence_length, pad_id=pad_id, pad_token=pad_token)
        if self._truncation:
            tok.enable_truncation(max_length=self.sequence_length, strategy="longest_first")
        else:
            tok.no_truncation()

    # ---------------------------------------------------------------- tokenisation
    def tokens_to_engine_input(self, texts: Sequence[Union[str, tuple]]) -> List[np.ndarray]:
        """Tokenise a batch of texts (or ``(a, b)`` pairs) into the engine's input arrays."""
        for t in texts:
            for s in (t if isinstance(t, tuple) else (t,)):
                if len(s) > MAX_TEXT_CHARS:
                    raise ValueError(f"input text of {len(s)} characters exceeds the limit of "
                                     f"{MAX_TEXT_CHARS}")
        try:
            # one text at a time on the calling thread: encode_batch would fan out on the
            # tokenizers' own (rayon) thread pool, a second level of parallelism competing
            # with the engine's cores (CONVENTIONS 5); a text costs ~20 us, an engine call ms
            enc = self.tokenizer.encode
            encs = [enc(t[0], t[1]) if isinstance(t, tuple) else enc(t) for t in texts]
        except Exception as e:  # the Rust side raises plain Exceptions (e.g. truncation)
            raise ValueError(f"cannot tokenise the input at sequence_length="
                             f"{self.sequence_length}: {e}") from e
        if not self._truncation:
            for k, e in enumerate(encs):
                if len(e.ids) > self.sequence_length:
                    raise ValueError(
                        f"sequence {k} is {len(e.ids)} tokens long, more than the pipeline's "
                        f"sequence_length={self.sequence_length} (pass truncation=True to cut it)")
        return [np.array([getattr(e, f) for e in encs], dtype=dt)
                for f, dt in zip(self._input_fields, self._input_dtypes)]


def flatten_sequences(sequences) -> List[Union[str, tuple]]:
    """``str | List[str] | List[List[str]]`` -> one entry per batch item: a str or a pair.
    Single-element inner lists are unwrapped; inner lists of two are text pairs."""
    if isinstance(sequences, str):
        return [sequences]
    out: List[Union[str, tuple]] = []
    for s in sequences:
        if isinstance(s, str):
            out.append(s)
        elif len(s) == 1:
            out.append(s[0])
        else:
            out.append((s[0], s[1]))
    return out


def _check_text(s: str, where: str) -> None:
    """A text the tokenizer can take: an unpaired surrogate (JSON ``"\\ud800"``) is no
    Unicode text; the tokenizer's own error for it was a bare TypeError."""
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"{where} is not valid Unicode text: {e.reason} at position "
                             f"{e.start}") from None


def validate_sequences(v):
    """Shared pydantic check: non-empty, inner lists of 1 or 2 strings, valid Unicode."""
    if isinstance(v, str):
        _check_text(v, "sequences")
        return v
    if len(v) == 0:
        raise ValueError("sequences must not be empty")
    for k, s in enumerate(v):
        if isinstance(s, list) and not 1 <= len(s) <= 2:
            raise ValueError(f"sequences[{k}] must be one text or a pair of texts, given a "
                             f"list of {len(s)}")
        for j, t in enumerate(s if isinstance(s, list) else [s]):
            _check_text(t, f"sequences[{k}]" + (f"[{j}]" if isinstance(s, list) else ""))
    return v
