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
    q = sample_model_path("resnet50-pruned90_quant")  # pruned + INT8 QDQ (deepsparse_lite.sparsify)

Pruned / quantized variants ``<base>-pruned80``, ``-pruned90``, ``-pruned95``, ``-quant`` and
``-pruned{80,90,95}_quant`` of resnet50, mobilenet_v2, bert_base and the tiny models are built
from the synthetic base by ``deepsparse_lite.sparsify`` (see ``registry.VARIANTS``); ``zoo:``
stubs resolve to them (``.../pruned95_quant-none`` -> ``resnet50-pruned95_quant``).

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
