"""Text classification / sentiment analysis: texts -> tokens -> logits -> labels and scores.

As DeepSparse's ``TextClassificationPipeline``: scores are the softmax of the logits (the
sigmoid when the model has one label or ``problem_type`` is ``multi_label_classification``),
labels come from ``config.json`` ``id2label``, ``top_k=1`` gives one label and score per
input, ``top_k>1`` a ranked list of each.
"""
from __future__ import annotations

import warnings
from typing import List, Optional, Union

import numpy as np
from pydantic import BaseModel, field_validator

from deepsparse_lite.pipelines.base import Pipeline
from deepsparse_lite.pipelines.transformers import (TransformersPipeline, flatten_sequences,
                                                    id2label, validate_sequences)

__all__ = ["TextClassificationInput", "TextClassificationOutput", "TextClassificationPipeline"]

DEFAULT_MODEL = "zoo:nlp/sentiment_analysis/obert-base/pytorch/huggingface/sst2/base-none"


class TextClassificationInput(BaseModel):
    """``sequences``: a text, a list of texts, or a list of ``[text]`` / ``[text_a, text_b]``."""
    sequences: Union[List[List[str]], List[str], str]

    @field_validator("sequences")
    @classmethod
    def _check_sequences(cls, v):
        return validate_sequences(v)


class TextClassificationOutput(BaseModel):
    """``labels`` / ``scores`` in input order; nested lists when ``top_k > 1``."""
    labels: List[Union[str, List[str]]]
    scores: List[Union[float, List[float]]]


@Pipeline.register(task="text_classification", task_aliases=["glue", "sentiment_analysis"],
                   default_model_path=DEFAULT_MODEL)
class TextClassificationPipeline(TransformersPipeline):
    """Classify texts (or text pairs) with a sequence-classification model.

    ``Pipeline.create("sentiment-analysis", model_path=folder_or_stub, top_k=1)``; see
    :class:`~deepsparse_lite.pipelines.transformers.TransformersPipeline` for
    ``sequence_length`` / ``truncation`` and :class:`~deepsparse_lite.pipelines.Pipeline` for
    the engine options.

        p = Pipeline.create("text_classification", model_path="path/to/folder", top_k=2)
        p(["great movie", "awful movie"]).labels    # [['positive', 'negative'], [...]]
    """

    input_schema_class = TextClassificationInput
    output_schema_class = TextClassificationOutput

    def __init__(self, model_path: str, top_k: int = 1, return_all_scores: bool = False,
                 **kwargs):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be an int > 0, given {top_k!r}")
        self._top_k = top_k
        self._return_all_scores = bool(return_all_scores)
        super().__init__(model_path, **kwargs)
        self.id2label = id2label(self.config)
        n = len(self.id2label)
        out_shape = (self.engine.output_shapes or [None])[0]
        if out_shape is not None and len(out_shape) == 2 and out_shape[1] != n:
            self.close()
            raise ValueError(f"config.json names {n} labels but the model outputs "
                             f"{out_shape[1]} logits")
        if self._return_all_scores:
            warnings.warn("return_all_scores is deprecated, use top_k=num_labels",
                          DeprecationWarning, stacklevel=2)
            if top_k not in (1, n):
                self.close()
                raise ValueError(f"return_all_scores=True and top_k={top_k} disagree "
                                 f"(the model has {n} labels)")
            self._top_k = n
        if self._top_k > n:
            self._top_k = n
        self._labels = np.array([self.id2label.get(i, f"LABEL_{i}") for i in range(n)],
                                dtype=object)
        self._sigmoid = (n == 1 or self.config.get("problem_type") == "multi_label_classification")

    @property
    def top_k(self) -> int:
        return self._top_k

    def parse_positional(self, args: tuple) -> BaseModel:
        if len(args) == 1:
            return self.input_schema(sequences=args[0])
        return self.input_schema(sequences=list(args))

    def process_inputs(self, inputs: TextClassificationInput):
        return self.tokens_to_engine_input(flatten_sequences(inputs.sequences))

    def process_engine_outputs(self, engine_outputs: List[np.ndarray], **kw) -> BaseModel:
        logits = np.asarray(engine_outputs[0], dtype=np.float64)
        if logits.ndim == 1:
            logits = logits[:, None]
        if self._sigmoid:
            probs = 1.0 / (1.0 + np.exp(-logits))
        else:
            z = logits - logits.max(axis=-1, keepdims=True)
            e = np.exp(z)
            probs = e / e.sum(axis=-1, keepdims=True)
        k = self._top_k
        if k == 1:
            idx = probs.argmax(axis=-1)
            return self.output_schema(labels=self._labels[idx].tolist(),
                                      scores=probs[np.arange(len(idx)), idx].tolist())
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
        return self.output_schema(labels=self._labels[order].tolist(),
                                  scores=np.take_along_axis(probs, order, -1).tolist())
