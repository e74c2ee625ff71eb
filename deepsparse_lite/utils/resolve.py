"""The one MODEL argument the command-line tools accept (benchmark, analyze).

``resolve_model(model)`` -> a local ONNX path. ``model`` may be a path to an ``.onnx``
file, a folder holding ``model.onnx``, a ``zoo:`` stub, or the name of a sample model
(``resnet50-pruned90``, ``bert_tiny``; see ``deepsparse_lite.models.list_models``). An
existing file or folder always wins over a sample-model name of the same spelling; the
rest is ``utils.model_to_path``'s (same errors, same stub mapping).
"""
from __future__ import annotations

import logging
import os

__all__ = ["resolve_model", "is_sample_name"]

_LOGGER = logging.getLogger(__name__)


def is_sample_name(model) -> bool:
    """True when ``model`` names one of the package's sample models."""
    if not isinstance(model, str) or not model or os.sep in model or model.endswith(".onnx"):
        return False
    try:
        from deepsparse_lite.models.registry import split_variant
        split_variant(model)
    except (ImportError, ValueError):
        return False
    return True


def resolve_model(model) -> str:
    """Resolve ``model`` (path, folder, ``zoo:`` stub, sample-model name) to an ONNX path.

    Raises ValueError as ``model_to_path`` does; a string that is neither an existing path
    nor a stub nor a sample name gets the list of sample names in the message."""
    from deepsparse_lite.utils.onnx import model_to_path

    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str) and not os.path.exists(model) and is_sample_name(model):
        from deepsparse_lite.models import sample_model_path
        path = sample_model_path(model)
        _LOGGER.info("sample model '%s' at %s (synthetic weights)", model, path)
        return path
    try:
        return model_to_path(model)
    except ValueError as exc:
        if isinstance(model, str) and not model.startswith(("zoo:", "hf:")) and not os.path.exists(model):
            try:
                from deepsparse_lite.models import list_models
                names = ", ".join(list_models())
            except ImportError:  # pragma: no cover
                raise exc
            raise ValueError(f"{exc} (nor is it a sample model name: {names})") from None
        raise
