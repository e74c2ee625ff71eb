"""Named sample models: their builders, default configs, valid inputs and the file cache."""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import onnx

from deepsparse_lite.models.bert import bert_inputs, build_bert
from deepsparse_lite.models.mlp import build_mlp
from deepsparse_lite.models.mobilenet import build_mobilenet_v2
from deepsparse_lite.models.resnet import build_resnet

# Bump when any builder changes its output, so cached files are rebuilt.
BUILDER_VERSION = 2
# Bump when the pruned / quantized variants (or deepsparse_lite.sparsify's output) change.
VARIANT_VERSION = 2


@dataclass(frozen=True)
class SampleModel:
    name: str
    builder: Callable[..., onnx.ModelProto]
    config: Dict = field(default_factory=dict)
    kind: str = "image"          # "image", "text" or "vector": decides sample_inputs()
    description: str = ""


_MODELS: Dict[str, SampleModel] = {}


def _add(m: SampleModel) -> None:
    _MODELS[m.name] = m


_add(SampleModel("resnet50", build_resnet, {},
                 description="torchvision ResNet-50 v1.5, 224x224, 1000 classes, BN kept"))
_add(SampleModel("resnet_tiny", build_resnet,
                 dict(layers=(2, 2, 2, 2), base_width=8, image_size=64, num_classes=10),
                 description="ResNet bottleneck layout, base width 8, 64x64, 10 classes"))
_add(SampleModel("mobilenet_v2", build_mobilenet_v2, {},
                 description="torchvision MobileNetV2 1.0, 224x224, 1000 classes, BN kept"))
_add(SampleModel("mobilenet_v2_tiny", build_mobilenet_v2,
                 dict(width_mult=0.25, last_channel=160, image_size=64, num_classes=10),
                 description="MobileNetV2 width 0.25, head 160, 64x64, 10 classes"))
_add(SampleModel("bert_base", build_bert, {}, kind="text",
                 description="BertForSequenceClassification bert-base, seq 128, 2 labels"))
_add(SampleModel("bert_tiny", build_bert,
                 dict(num_layers=2, hidden=64, heads=2, intermediate=256, vocab_size=1000,
                      max_position=64, seq_len=16),
                 kind="text", description="BERT 2 layers, hidden 64, 2 heads, seq 16"))
_add(SampleModel("mlp", build_mlp, {}, kind="vector",
                 description="Gemm+ReLU MLP 512-1024-1024-1024-10"))


# --------------------------------------------------------------------------- variants
# ``<base>-<variant>``: the base model pruned and/or quantized by deepsparse_lite.sparsify, as
# SparseZoo names its models. Pruning: every Conv/Gemm/MatMul weight but the first conv and the
# depthwise convs, exactly at the sparsity in every layer, survivors rescaled to keep each
# layer's norm (the weights are synthetic: without it activations shrink layer after layer).
# Quantization: QDQ, per-channel int8 weights, uint8 activations calibrated on
# CALIBRATION_SETS sample inputs (seeds 1000..), like onnxruntime's quantize_static.
VARIANTS: Dict[str, Tuple[float, bool]] = {
    "pruned80": (0.80, False), "pruned90": (0.90, False), "pruned95": (0.95, False),
    "quant": (0.0, True),
    "pruned80_quant": (0.80, True), "pruned90_quant": (0.90, True),
    "pruned95_quant": (0.95, True),
}
VARIANT_BASES = ("resnet50", "mobilenet_v2", "bert_base",
                 "resnet_tiny", "mobilenet_v2_tiny", "bert_tiny")
CALIBRATION_SETS = 8


def list_models() -> List[str]:
    """Names accepted by :func:`build_model` and :func:`sample_model_path`: the base models
    and their ``<base>-<variant>`` pruned / quantized variants (see :data:`VARIANTS`)."""
    return sorted(list(_MODELS) + [f"{b}-{v}" for b in VARIANT_BASES for v in VARIANTS])


def split_variant(name: str) -> Tuple[str, Optional[str]]:
    """``"resnet50-pruned90"`` -> ``("resnet50", "pruned90")``; a base name -> ``(name, None)``.
    Unknown names are a ValueError listing the available ones."""
    if isinstance(name, str) and name in _MODELS:
        return name, None
    base, _, variant = name.partition("-") if isinstance(name, str) else ("", "", "")
    if base in VARIANT_BASES and variant in VARIANTS:
        return base, variant
    raise ValueError(f"unknown sample model {name!r}; available: {list_models()}")


def _get(name: str) -> SampleModel:
    return _MODELS[split_variant(name)[0]]


def model_config(name: str, **kw) -> Dict:
    """The builder keyword arguments ``name`` resolves to, with ``kw`` overrides applied."""
    m = _get(name)
    cfg = dict(m.config)
    cfg.update(kw)
    return cfg


def build_model(name: str, path: Optional[str] = None, batch_size: Optional[int] = 1,
                seed: int = 0, **kw) -> onnx.ModelProto:
    """Build sample model ``name`` with synthetic weights; also save it to ``path`` if given.

    ``batch_size=None`` gives a symbolic batch dimension. Extra keyword arguments override the
    model's config (e.g. ``image_size=96`` for the CNNs, ``seq_len=64`` or ``opset=13`` for
    BERT). The same arguments always give byte-identical models.
    """
    base, variant = split_variant(name)
    m = _get(base)
    if variant is None:
        model = m.builder(name=name, batch_size=batch_size, seed=seed,
                          **model_config(name, **kw))
    else:
        model = _build_variant(base, variant, batch_size, seed, kw)
    if path is not None:
        _atomic_save(model, path)
    return model


def _build_variant(base: str, variant: str, batch_size, seed: int, kw) -> onnx.ModelProto:
    from deepsparse_lite.sparsify import sparsify

    if kw.get("sparsity") or kw.get("sparsity_block", 1) != 1:
        raise ValueError(f"sample model '{base}-{variant}' sets its own sparsity; pass "
                         f"sparsity= only with a base model such as '{base}'")
    sparsity, quantize = VARIANTS[variant]
    name = f"{base}-{variant}"
    model = _get(base).builder(name=name, batch_size=batch_size, seed=seed,
                               **model_config(base, **kw))
    calibration = [sample_inputs(base, batch_size=batch_size or 1, seed=1000 + k, **kw)
                   for k in range(CALIBRATION_SETS)] if quantize else 8
    model, _ = sparsify(model, sparsity=sparsity, skip_first_conv=True, rescale=True,
                        quantize="int8" if quantize else None, calibration=calibration)
    what = ", ".join(filter(None, [f"{sparsity:.0%} magnitude-pruned" if sparsity else "",
                                   "INT8-quantized (QDQ)" if quantize else ""]))
    model.doc_string = (f"SYNTHETIC WEIGHTS: sample model {name}, {what} by "
                        f"deepsparse_lite.sparsify from the synthetic '{base}'. Right for speed "
                        f"and correctness checks, meaningless for accuracy.\n\n"
                        + model.doc_string)
    props = {p.key: p for p in model.metadata_props}
    props["sample_model"].value = name
    for k, v in (("sample_base", base), ("sample_variant", variant),
                 ("synthetic_weights", "true")):
        if k in props:
            props[k].value = v
        else:
            model.metadata_props.add(key=k, value=v)
    return model


def sample_inputs(name: str, batch_size: int = 1, seed: int = 0, **kw) -> List[np.ndarray]:
    """Valid inputs for ``build_model(name, batch_size=batch_size, **kw)``, in graph order."""
    m = _get(name)
    cfg = model_config(split_variant(name)[0], **kw)
    rng = np.random.default_rng(seed)
    if m.kind == "text":
        return bert_inputs(batch_size, cfg.get("seq_len", 128), cfg.get("vocab_size", 30522),
                           seed=seed)
    if m.kind == "vector":
        n_in = cfg.get("sizes", (512,))[0]
        return [rng.standard_normal((batch_size, n_in), dtype=np.float32)]
    size = cfg.get("image_size", 224)
    return [rng.standard_normal((batch_size, 3, size, size), dtype=np.float32)]


# --------------------------------------------------------------------------- file cache
def cache_dir() -> str:
    """Root of the sample-model cache: ``$DSL_CACHE_DIR/models`` or
    ``~/.cache/deepsparse_lite/models``."""
    from deepsparse_lite.config import cache_root
    return os.path.join(cache_root(), "models")


def _atomic_save(model: onnx.ModelProto, path: str) -> None:
    """Write to a temp file in the same directory, then rename: readers never see a partial
    file and concurrent writers of the same model simply replace each other."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _atomic_write_text(text: str, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=d)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def sample_model_path(name: str, batch_size: Optional[int] = 1,
                      directory: Optional[str] = None, sparsity: float = 0.0,
                      sparsity_block: int = 1) -> str:
    """Path of sample model ``name`` (seed 0, default config), built on first use.

    Files live in ``<cache>/<name>/``, where ``<cache>`` is :func:`cache_dir` unless
    ``directory`` is given: ``model.onnx`` (batch 1), ``model-b<N>.onnx`` or
    ``model-dynamic.onnx`` (``batch_size=None``); a pruned variant (``sparsity=0.9``, see
    :meth:`GraphBuilder.prune`) adds ``-s90`` (``-s90b4`` with ``sparsity_block=4``) before
    ``.onnx``. A ``.json`` stamp next to each records the
    builder version so stale files are rebuilt. Safe for concurrent callers: each builds into
    a temp file and renames it into place.
    """
    _get(name)
    d = os.path.join(directory or cache_dir(), name)
    if batch_size == 1:
        stem = "model"
    elif batch_size is None:
        stem = "model-dynamic"
    else:
        stem = f"model-b{int(batch_size)}"
    if sparsity:
        stem += f"-s{round(sparsity * 100):d}" + (f"b{sparsity_block}" if sparsity_block > 1
                                                  else "")
    path = os.path.join(d, stem + ".onnx")
    stamp_path = path[:-len(".onnx")] + ".json"
    stamp = {"name": name, "builder_version": BUILDER_VERSION, "batch_size": batch_size,
             "sparsity": sparsity, "sparsity_block": sparsity_block, "seed": 0,
             "synthetic_weights": True}
    if split_variant(name)[1] is not None:
        stamp["variant_version"] = VARIANT_VERSION
    if os.path.exists(path) and os.path.exists(stamp_path):
        try:
            with open(stamp_path) as f:
                if json.load(f) == stamp:
                    return path
        except (OSError, ValueError):
            pass  # unreadable stamp: rebuild
    extra = dict(sparsity=sparsity, sparsity_block=sparsity_block) if sparsity else {}
    build_model(name, path=path, batch_size=batch_size, **extra)
    _atomic_write_text(json.dumps(stamp), stamp_path)
    return path


# --------------------------------------------------------------------------- zoo stubs
_ZOO_RULES = (
    (re.compile(r"^resnet(_?v1)?-?50(\b|[-_.])"), "resnet50"),
    (re.compile(r"^mobilenet_?v2(\b|[-_.])"), "mobilenet_v2"),
    # bert / obert / bert-base / obert-base, but not bert-large, distilbert, mobilebert ...
    (re.compile(r"^o?bert(-base)?($|[-_.](?!large))"), "bert_base"),
)


_PRUNED = re.compile(r"pruned[_-]?(\d+(?:\.\d+)?)?")
_QUANT = re.compile(r"quant")


def _stub_variant(rest: str) -> Optional[str]:
    """The variant a stub's text names: ``pruned<N>`` -> the nearest of pruned80/90/95 (ties to
    the sparser), ``pruned`` without a number -> pruned90, plus ``_quant`` when it says
    quantized; ``base`` / ``none`` / anything else -> None (the dense model)."""
    m = _PRUNED.search(rest)
    quant = bool(_QUANT.search(rest))
    if m is None:
        return "quant" if quant else None
    level = float(m.group(1)) if m.group(1) else 90.0
    levels = sorted({int(round(v[0] * 100)) for v in VARIANTS.values() if v[0]})
    best = min(levels, key=lambda lv: (abs(lv - level), -lv))
    return f"pruned{best}" + ("_quant" if quant else "")


def zoo_stub_to_sample(stub: str) -> Optional[str]:
    """Map a SparseZoo ``zoo:`` stub to the sample model of the same architecture and variant,
    or None for an architecture without a sample.

    Both stub forms are understood: ``zoo:cv/classification/resnet_v1-50/pytorch/...`` (the
    architecture is a path segment) and ``zoo:resnet50_v1-...`` style (it leads the stub). The
    variant is read from the rest of the stub: ``.../pruned95_quant-none`` ->
    ``resnet50-pruned95_quant``, ``.../base-none`` -> ``resnet50`` (see :func:`_stub_variant`).
    The sample has synthetic weights: it stands in for speed and correctness checks only.
    """
    if not isinstance(stub, str) or not stub.startswith("zoo:"):
        return None
    segs = stub[len("zoo:"):].lower().split("/")
    for k, seg in enumerate(segs):
        seg = seg.replace("resnet50_v1", "resnet_v1-50")
        for pattern, name in _ZOO_RULES:
            m = pattern.match(seg)
            if m:
                rest = "/".join([seg[m.end():]] + segs[k + 1:])
                variant = _stub_variant(rest)
                return f"{name}-{variant}" if variant else name
    return None
