"""Image classification pipeline: pre-processing checked against NumPy slicing, logits against
onnxruntime on the same model."""
import json

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from deepsparse_lite import Pipeline
from deepsparse_lite.models import sample_model_path
from deepsparse_lite.pipelines.image_classification import preprocess_image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def model():
    return sample_model_path("resnet_tiny")      # 64x64, 10 classes


@pytest.fixture(scope="module")
def pipe(model):
    p = Pipeline.create("image_classification", model_path=model, top_k=3)
    yield p
    p.close()


def _ort(model, batch):
    import onnxruntime as ort
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {s.get_inputs()[0].name: batch[i:i + 1]})[0]
                           for i in range(len(batch))])


def _rand_img(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_preprocess_is_crop_and_normalise():
    # 73 = round(256/224 * 64): the resize is the identity, the crop is a plain slice
    img = _rand_img(73, 73)
    got = preprocess_image(img, (64, 64))
    top = int(round((73 - 64) / 2))
    want = ((img[top:top + 64, top:top + 64].astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # CHW uint8 arrays and PIL images give the same tensor
    np.testing.assert_array_equal(preprocess_image(img.transpose(2, 0, 1), (64, 64)), got)
    np.testing.assert_array_equal(preprocess_image(Image.fromarray(img), (64, 64)), got)


def test_logits_match_onnxruntime(pipe, model, tmp_path):
    imgs = [_rand_img(90, 120, s) for s in range(3)]
    path = tmp_path / "img.png"
    Image.fromarray(imgs[0]).save(path)
    batch = np.stack([preprocess_image(i, (64, 64)) for i in imgs])
    ref = _ort(model, batch)
    out = pipe(images=[str(path), imgs[1], Image.fromarray(imgs[2])])
    order = np.argsort(-ref, axis=1)[:, :3]
    assert out.labels == order.tolist()
    np.testing.assert_allclose(out.scores, np.take_along_axis(ref, order, 1), rtol=1e-4, atol=1e-5)
    single = pipe(str(path))                   # one image: the outer list is unwrapped
    assert single.labels == order[0].tolist()
    np.testing.assert_allclose(single.scores, ref[0, order[0]], rtol=1e-4, atol=1e-5)
    # an NCHW float32 batch is used as is
    raw = pipe(images=batch)
    np.testing.assert_allclose(raw.scores, out.scores, rtol=1e-6)


def test_class_names_and_batching(model, tmp_path):
    names = {i: f"class{i}" for i in range(10)}
    jf = tmp_path / "names.json"
    jf.write_text(json.dumps({str(k): v for k, v in names.items()}))
    imgs = [_rand_img(64, 64, s) for s in range(5)]
    ref = _ort(model, np.stack([preprocess_image(i, (64, 64)) for i in imgs]))
    for cn in (names, str(jf)):
        with Pipeline.create("image_classification", model_path=model, class_names=cn,
                             batch_size=2) as p:
            out = p(images=imgs)             # 5 images: 2 + 2 + 1 padded
        assert out.labels == [[f"class{i}"] for i in ref.argmax(1)]
        np.testing.assert_allclose([s[0] for s in out.scores], ref.max(1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad", [dict(images=[]), dict(images=5), dict(images=[1.0, 2.0]),
                                 dict(images=[{"a": 1}]), dict()])
def test_bad_inputs(pipe, bad):
    with pytest.raises(ValidationError):
        pipe(**bad)


def test_bad_files_and_shapes(pipe, tmp_path):
    with pytest.raises(ValueError, match="cannot open"):
        pipe(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="HWC or CHW"):
        pipe(images=[np.zeros((2, 2, 2, 2, 2), np.uint8)])
    with pytest.raises(ValueError):
        Pipeline.create("image_classification", model_path=sample_model_path("resnet_tiny"),
                        class_names=42)


def test_image_size_override_recompiles(model):
    import onnxruntime as ort
    img = _rand_img(120, 100)
    with Pipeline.create("image_classification", model_path=model, image_size=80) as p:
        assert p.engine.input_shapes == [(1, 3, 80, 80)]
        out = p(img)
    x = preprocess_image(img, (80, 80))[None]
    import onnx
    m = onnx.load(model)                        # global pooling: the graph runs at any size
    for d, v in zip(m.graph.input[0].type.tensor_type.shape.dim[2:], (80, 80)):
        d.dim_value = v
    del m.graph.value_info[:]
    for dim in m.graph.output[0].type.tensor_type.shape.dim:
        dim.Clear()
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = s.run(None, {s.get_inputs()[0].name: x})[0][0]
    assert out.labels == [int(ref.argmax())]
    np.testing.assert_allclose(out.scores, [ref.max()], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="image_size"):
        Pipeline.create("image_classification", model_path=model, image_size=(1, 2, 3))
