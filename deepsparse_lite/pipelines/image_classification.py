"""Image classification: files / PIL images / arrays -> resize, crop, normalise -> top-k.

As DeepSparse's image classification pipeline: each image is resized to
``round(256/224 * s)`` for the model's ``(H, W)`` then center-cropped to ``(H, W)`` (Pillow,
bilinear), scaled to [0, 1] and ImageNet-normalised when it was uint8, laid out CHW and
stacked. Scores are the **raw model outputs** of the top-k classes (no softmax, as in
DeepSparse); labels are class indices, or names through ``class_names`` (a dict or a JSON
file; string keys such as ``"291"`` are accepted too, where DeepSparse would raise KeyError).
A single image unwraps the outer list: ``labels=[291]``; a batch gives ``[[291], [12]]``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from deepsparse_lite.pipelines.base import Pipeline

__all__ = ["ImageClassificationInput", "ImageClassificationOutput",
           "ImageClassificationPipeline", "preprocess_image"]

IMAGENET_RGB_MEANS = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_RGB_STDS = np.array([0.229, 0.224, 0.225], np.float32)
DEFAULT_MODEL = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned85_quant-none-vnni"
#: refuse absurd images before decoding them (pixels), as a request could be hostile
MAX_IMAGE_PIXELS = 10_000 * 10_000


def _is_image_like(x) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    return (isinstance(x, (str, os.PathLike, np.ndarray, list))
            or (Image is not None and isinstance(x, Image.Image)))


class ImageClassificationInput(BaseModel):
    """``images``: a file path, a PIL image, an ``HWC`` / ``CHW`` array (uint8, or float32
    already pre-processed), a list of those, or an ``NCHW`` / ``NHWC`` batch array."""
    model_config = ConfigDict(arbitrary_types_allowed=True)
    images: Union[str, List[str], List[Any], Any]

    @field_validator("images")
    @classmethod
    def _check_images(cls, v):
        if isinstance(v, (list, tuple)) and not isinstance(v, str):
            if len(v) == 0:
                raise ValueError("images must not be empty")
            if all(isinstance(x, (int, float)) for x in v):
                raise ValueError("images must be images, not a flat list of numbers")
            for k, x in enumerate(v):
                if not _is_image_like(x):
                    raise ValueError(f"images[{k}] must be a path, a PIL image or an array, "
                                     f"given {type(x).__name__}")
            return list(v)
        if not _is_image_like(v):
            raise ValueError(f"images must be a path, a PIL image or an array, given "
                             f"{type(v).__name__}")
        if isinstance(v, np.ndarray) and v.size == 0:
            raise ValueError("images must not be empty")
        return v

    @classmethod
    def from_files(cls, files: Sequence[Any], **kwargs) -> "ImageClassificationInput":
        """Open each file (path or binary file object) with PIL, as DeepSparse's server does."""
        from PIL import Image
        return cls(images=[np.asarray(Image.open(f).convert("RGB")) for f in files], **kwargs)


class ImageClassificationOutput(BaseModel):
    labels: List[Union[int, str, List[int], List[str]]]
    scores: List[Union[float, List[float]]]


def _to_pil(img):
    from PIL import Image
    if isinstance(img, Image.Image):
        out = img
    elif isinstance(img, (str, os.PathLike)):
        try:
            out = Image.open(img)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot open image {img!s}: {e}") from e
    else:
        arr = np.asarray(img)
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        if arr.ndim != 3:
            raise ValueError(f"an image array must be HWC or CHW, given shape {arr.shape}")
        if arr.shape[0] < arr.shape[-1] and arr.shape[0] in (1, 3, 4):   # CHW -> HWC
            arr = arr.transpose(1, 2, 0)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"image arrays must be numeric, given dtype {arr.dtype}")
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        out = Image.fromarray(np.ascontiguousarray(arr))
    w, h = out.size
    if w * h > MAX_IMAGE_PIXELS:
        raise ValueError(f"image of {w}x{h} pixels exceeds the limit of {MAX_IMAGE_PIXELS}")
    return out.convert("RGB")


def preprocess_image(img, image_size: Tuple[int, int]) -> np.ndarray:
    """One image -> float32 ``[3, H, W]``: resize by 256/224, center-crop, normalise."""
    from PIL import Image

    h, w = image_size
    if isinstance(img, np.ndarray) and img.dtype == np.float32 and img.ndim == 3:
        arr = img if img.shape[0] == 3 else img.transpose(2, 0, 1)   # pre-processed already
        if arr.shape != (3, h, w):
            raise ValueError(f"a float32 image must already be [3, {h}, {w}], given {img.shape}")
        return np.ascontiguousarray(arr)
    pil = _to_pil(img)
    rh, rw = round(256 / 224 * h), round(256 / 224 * w)
    pil = pil.resize((rw, rh), Image.BILINEAR)
    top, left = int(round((rh - h) / 2.0)), int(round((rw - w) / 2.0))
    pil = pil.crop((left, top, left + w, top + h))
    arr = np.asarray(pil, dtype=np.float32) * np.float32(1.0 / 255.0)
    arr = (arr - IMAGENET_RGB_MEANS) / IMAGENET_RGB_STDS
    return np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)


def _load_class_names(class_names) -> Optional[Dict[int, str]]:
    if class_names is None:
        return None
    if isinstance(class_names, (str, os.PathLike)):
        try:
            with open(class_names, encoding="utf-8") as f:
                class_names = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read class_names from {class_names!s}: {e}") from e
    if isinstance(class_names, (list, tuple)):
        return {i: str(n) for i, n in enumerate(class_names)}
    if not isinstance(class_names, dict):
        raise ValueError(f"class_names must be a dict, a list or a .json path, given "
                         f"{type(class_names).__name__}")
    try:
        return {int(k): str(v) for k, v in class_names.items()}
    except (TypeError, ValueError) as e:
        raise ValueError(f"class_names keys must be class indices: {e}") from e


@Pipeline.register(task="image_classification", default_model_path=DEFAULT_MODEL)
class ImageClassificationPipeline(Pipeline):
    """Classify images with an ``NCHW`` float32 model (ResNet, MobileNet, ...).

        p = Pipeline.create("image_classification", model_path=folder_or_stub, top_k=3,
                            class_names="imagenet_classes.json")
        p(images=["cat.jpg", "dog.jpg"]).labels

    :param class_names: dict ``{index: name}``, a list of names, or a JSON file of either
    :param image_size: ``(H, W)`` (or one int); default the model's input dims 2 and 3
    :param top_k: classes per image
    """

    input_schema_class = ImageClassificationInput
    output_schema_class = ImageClassificationOutput

    def __init__(self, model_path: str, class_names: Union[None, str, Dict, List] = None,
                 image_size: Union[None, int, Tuple[int, int]] = None, top_k: int = 1,
                 **kwargs):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be an int > 0, given {top_k!r}")
        self.top_k = top_k
        self.class_names = _load_class_names(class_names)
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        super().__init__(model_path, **kwargs)
        shape = self.engine.input_shapes[0]
        if len(self.engine.input_names) != 1 or len(shape) != 4:
            self.close()
            raise ValueError(f"image models take one NCHW input, the model has "
                             f"{self.engine.input_names} of shapes {self.engine.input_shapes}")
        model_hw = tuple(int(d) for d in shape[2:])
        dynamic = any(d == 4294967295 for d in model_hw)
        if image_size is None:
            if dynamic:
                self.close()
                raise ValueError("the model's image size is dynamic: pass image_size=(H, W)")
            image_size = model_hw
        if len(image_size) != 2 or any(isinstance(d, bool) or not isinstance(d, int) or d < 1
                                       for d in image_size):
            self.close()
            raise ValueError(f"image_size must be an int or (H, W), given {image_size!r}")
        self.image_size = tuple(int(d) for d in image_size)
        if not dynamic and self.image_size != model_hw and self._engine_args["input_shapes"] is None:
            # a fully convolutional model (global pooling) runs at other sizes: recompile
            self._engine.close()
            self._engine_args["input_shapes"] = [[self._batch_size, int(shape[1]), *self.image_size]]
            try:
                self._engine = self.create_engine()
            except Exception as e:
                self._engine = None
                raise ValueError(f"cannot compile the model at image_size={self.image_size} "
                                 f"(its own size is {model_hw}): {e}") from e

    def parse_positional(self, args: tuple) -> BaseModel:
        if len(args) == 1:
            return self.input_schema(images=args[0])
        return self.input_schema(images=list(args))

    def process_inputs(self, inputs: ImageClassificationInput):
        images = inputs.images
        h, w = self.image_size
        if isinstance(images, np.ndarray) and images.ndim == 4:
            if images.dtype == np.float32 and images.shape[1:] == (3, h, w):
                return [np.ascontiguousarray(images)], {"single": images.shape[0] == 1}
            images = list(images)                     # a batch of raw images
        if not isinstance(images, list):
            images = [images]
        batch = np.stack([preprocess_image(img, self.image_size) for img in images])
        return [batch], {"single": len(images) == 1}

    def process_engine_outputs(self, engine_outputs: List[np.ndarray], single: bool = False,
                               **kw) -> BaseModel:
        out = np.asarray(engine_outputs[0]).reshape(engine_outputs[0].shape[0], -1)
        k = min(self.top_k, out.shape[1])
        idx = np.argsort(-out, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(out, idx, 1).astype(np.float64).tolist()
        if self.class_names is not None:
            try:
                labels = [[self.class_names[int(i)] for i in row] for row in idx]
            except KeyError as e:
                raise ValueError(f"class_names has no name for class {e.args[0]}") from e
        else:
            labels = idx.tolist()
        if single:
            labels, scores = labels[0], scores[0]
        return self.output_schema(labels=labels, scores=scores)
