"""Pipelines: raw inputs (texts, images) -> pre-processing -> Engine -> post-processing.

``Pipeline.create(task, model_path, ...)`` picks the class registered for ``task`` (names
normalised: ``sentiment-analysis`` = ``sentiment_analysis`` = ``text_classification``),
resolves the model (a folder holding ``model.onnx`` and the task's side files, a path to
``model.onnx``, or a ``zoo:`` stub resolved to a local sample), compiles one Engine (a
MultiModelEngine on a shared ``context=``) and returns a callable whose requests and responses
are pydantic v2 models (``input_schema`` / ``output_schema``). Any request batch is split into
engine-sized chunks, the last padded, outputs trimmed (``base.py``).

Tasks: ``text_classification`` (``text_classification.py``), ``image_classification``
(``image_classification.py``), ``embedding_extraction`` (``embedding_extraction.py``);
``convert.py`` turns Hugging Face BERT-family safetensors checkpoints into model folders, and
``samples.py`` builds the sample text folders that ``zoo:`` stubs resolve to.

    >>> from deepsparse_lite import Pipeline
    >>> p = Pipeline.create("sentiment-analysis", model_path="zoo:nlp/sentiment_analysis/"
    ...                     "obert-base/pytorch/huggingface/sst2/pruned90_quant-none")
    >>> p("The sentiment analysis pipeline is fast and easy to use")   # doctest: +SKIP
    TextClassificationOutput(labels=['positive'], scores=[...])
"""
from deepsparse_lite.pipelines.base import Pipeline, PipelineConfig, normalize_task, registered_tasks

__all__ = ["Pipeline", "PipelineConfig", "normalize_task", "registered_tasks", "text_classification_pipeline",
           "sentiment_analysis_pipeline", "image_classification_pipeline",
           "embedding_extraction_pipeline"]


def text_classification_pipeline(*args, **kwargs) -> Pipeline:
    return Pipeline.create("text_classification", *args, **kwargs)


def sentiment_analysis_pipeline(*args, **kwargs) -> Pipeline:
    return Pipeline.create("text_classification", *args, **kwargs)


def image_classification_pipeline(*args, **kwargs) -> Pipeline:
    return Pipeline.create("image_classification", *args, **kwargs)


def embedding_extraction_pipeline(*args, **kwargs) -> Pipeline:
    return Pipeline.create("embedding_extraction", *args, **kwargs)
