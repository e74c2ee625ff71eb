"""Dropout against onnx.reference: inference mode, and training mode with ratio 0 (the only
deterministic training case); random training-mode dropout is refused cleanly."""
import numpy as np
import pytest

from deepsparse_lite.compiler import compile_onnx
from deepsparse_lite.ops.base import UnsupportedModelError
from tests.helpers import check_op, make_single_node_model

RNG = np.random.default_rng(77)


@pytest.mark.parametrize("n_outputs", [1, 2])
@pytest.mark.parametrize("training", [False, True])
def test_dropout_deterministic(n_outputs, training):
    x = RNG.standard_normal((2, 3, 5)).astype(np.float32)
    consts = {"r": np.array(0.0 if training else 0.4, np.float32), "t": np.array(training)}
    check_op("Dropout", {"x": x}, consts=consts, n_outputs=n_outputs, opset=13)


@pytest.mark.parametrize("consts,runtime,match", [
    ({"r": np.array(0.5, np.float32), "t": np.array(True)}, {}, "ratio 0.5 is random"),
    ({"t": np.array(True)}, {"r": np.array(0.0, np.float32)}, "constant ratio"),
    ({"r": np.array(0.0, np.float32)}, {"t": np.array(True)}, "training_mode must be a constant"),
])
def test_dropout_random_training_is_refused(consts, runtime, match):
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    model = make_single_node_model("Dropout", {"x": x, **runtime}, consts=consts, opset=13,
                                   input_order=["x", "r", "t"])
    with pytest.raises(UnsupportedModelError, match=f"Dropout node .*{match}"):
        compile_onnx(model)
