"""Pipeline base: registry, custom tasks, config round trip, chunking (NumPy oracle)."""
import numpy as np
import pytest
from pydantic import BaseModel

from deepsparse_lite import Pipeline
from deepsparse_lite.models import sample_model_path
from deepsparse_lite.pipelines import PipelineConfig


class VecIn(BaseModel):
    rows: list


class VecOut(BaseModel):
    argmax: list


@Pipeline.register(task="test-mlp-argmax", task_aliases=["mlp argmax"])
class MlpArgmax(Pipeline):
    input_schema_class = VecIn
    output_schema_class = VecOut

    def process_inputs(self, inputs):
        return [np.asarray(inputs.rows, np.float32)], {"n": len(inputs.rows)}

    def process_engine_outputs(self, outs, n=None):
        assert outs[0].shape[0] == n              # padding trimmed
        return VecOut(argmax=outs[0].argmax(1).tolist())


def test_custom_task_chunks_match_onnxruntime():
    import onnxruntime as ort
    path = sample_model_path("mlp")
    x = np.random.default_rng(0).standard_normal((7, 512)).astype(np.float32)
    ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    want = np.concatenate([ref.run(None, {ref.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(7)])
    with Pipeline.create("TEST_MLP_ARGMAX", model_path=path, batch_size=3) as p:   # 3 + 3 + 1
        assert p.task == "test_mlp_argmax"
        assert p(rows=x.tolist()).argmax == want.argmax(1).tolist()
        assert p({"rows": x[:2].tolist()}).argmax == want[:2].argmax(1).tolist()
        with pytest.raises(ValueError):
            p(1, 2)


def test_from_config_round_trip(tmp_path):
    from deepsparse_lite.pipelines.samples import sample_text_folder
    folder = sample_text_folder("bert_tiny")
    cfg = {"task": "sentiment-analysis", "model_path": folder, "batch_size": 2,
           "scheduler": "single_stream", "alias": "sa", "kwargs": {"top_k": 2}}
    with Pipeline.from_config(cfg) as p:
        assert p.alias == "sa" and p.top_k == 2 and p.engine.batch_size == 2
        back = p.to_config()
        out = p(["a b", "c"]).model_dump()
    assert back.kwargs == {"top_k": 2} and back.batch_size == 2
    f = tmp_path / "cfg.json"
    f.write_text(back.model_dump_json())
    with Pipeline.from_config(str(f)) as q:
        assert q(["a b", "c"]).model_dump() == out
    with pytest.raises(ValueError):
        Pipeline.from_config(42)
    with pytest.raises(ValueError):
        Pipeline.from_config(PipelineConfig(task="sentiment_analysis", model_path=folder),
                             model="x")


def test_create_errors():
    with pytest.raises(ValueError, match="Unknown Pipeline task"):
        Pipeline.create("nope", model_path="x")
    with pytest.raises(ValueError):
        Pipeline.create("", model_path="x")
    with pytest.raises(ValueError, match="not both"):
        Pipeline.create("text_classification", model_path="a", model="b")
    with pytest.raises(ValueError, match="model path must exist"):
        Pipeline.create("image_classification", model_path="/no/such/model.onnx")
    with pytest.raises(ValueError, match="batch_size"):
        Pipeline.create("image_classification", model_path=sample_model_path("resnet_tiny"),
                        batch_size="2")
    with pytest.raises(TypeError):
        Pipeline.register("x")(int)
