"""Helpers around the engine, with ``deepsparse.utils`` names and semantics.

``onnx``: resolve a model argument to a file (``model_to_path``), read a model's external
inputs/outputs, make random inputs, and make shape-overridden *copies* of a model in
temporary files (``override_onnx_batch_size`` / ``override_onnx_input_shapes``; unlike
DeepSparse these never write the user's file). ``data``: parse ``"[1,3,224,224]"`` shape
strings, split/join batches for ``Engine.batched_run``, (de)serialize arrays, compare
outputs, softmax.
"""
from deepsparse_lite.utils.data import *  # noqa: F401,F403
from deepsparse_lite.utils.data import __all__ as _data_all
from deepsparse_lite.utils.onnx import *  # noqa: F401,F403
from deepsparse_lite.utils.onnx import __all__ as _onnx_all

__all__ = list(_data_all) + list(_onnx_all)
