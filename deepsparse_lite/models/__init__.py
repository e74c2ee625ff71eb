"""Sample models: well-known architectures built as ONNX files, with no download.

Each model is generated with numpy + ``onnx.helper`` only (no torch, no network) in the layout
the usual exporter produces, so the compiler sees the same graph patterns it would see in a real
export: torchvision ResNet-50 v1.5 and MobileNetV2 with BatchNorm kept, Hugging Face
BertForSequenceClassification with eager attention and Erf-GELU, plus tiny variants for fast
tests and a small MLP for scheduler benchmarks.

**The weights are synthetic**: random, deterministic for a given ``seed``, and scaled only so
activations stay finite and varied through every layer. They are right for speed and
correctness checks (same shapes, FLOPs and operators as the real model) and meaningless for
accuracy: predictions are arbitrary.

Example::

    from deepsparse_lite.models import (build_model, list_models, sample_inputs,
                                        sample_model_path)
    path = sample_model_path("resnet50")          # built once, then cached on disk
    model = build_model("bert_tiny", batch_size=4)  # an onnx.ModelProto
    feeds = sample_inputs("bert_tiny", batch_size=4)
    pruned = build_model("resnet50", sparsity=0.9)  # magnitude-pruned, like SparseZoo's

The cache lives in ``$DSL_CACHE_DIR/models`` (default ``~/.cache/deepsparse_lite/models``).
"""
from deepsparse_lite.models.registry import (  # noqa: F401
    BUILDER_VERSION,
    build_model,
    cache_dir,
    list_models,
    model_config,
    sample_inputs,
    sample_model_path,
    zoo_stub_to_sample,
)

__all__ = [
    "build_model",
    "list_models",
    "model_config",
    "sample_inputs",
    "sample_model_path",
    "zoo_stub_to_sample",
    "cache_dir",
]
