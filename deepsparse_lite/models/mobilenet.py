"""MobileNetV2 (torchvision layout) with synthetic weights.

Matches ``torchvision.models.mobilenet_v2`` as exported by ``torch.onnx.export`` without
BatchNorm folding: a 3x3/2 stem, inverted residual blocks (1x1 expand + ReLU6, 3x3 depthwise +
ReLU6, 1x1 linear projection; residual Add when stride is 1 and channels match), a 1x1 conv to
the 1280-wide head, global average pool, Flatten and a Gemm classifier. ReLU6 is a ``Clip``
with min/max inputs (opset >= 11); the classifier's Dropout is left out (it is an identity in
inference). Weights are random (deterministic per ``seed``): right for speed and correctness
checks, meaningless for accuracy.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import onnx

from deepsparse_lite.models._graph import FLOAT, GraphBuilder, batch_dim

# (expand ratio t, output channels c, repeats n, first stride s) from the MobileNetV2 paper.
V2_SETTINGS: Tuple[Tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)

# Projection BN gain on residual blocks: keeps the residual sums from growing block to block.
_RESIDUAL_GAIN = 0.5


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding for width multipliers."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_bn_relu6(g: GraphBuilder, x: str, prefix: str, cin: int, cout: int, k: int,
                   stride: int = 1, group: int = 1) -> str:
    y = g.conv(x, f"{prefix}.0", cin, cout, k, stride=stride, group=group)
    y = g.batchnorm(y, f"{prefix}.1", cout)
    return g.relu6(y, f"{prefix}.2")


def _inverted_residual(g: GraphBuilder, x: str, prefix: str, cin: int, cout: int, stride: int,
                       expand: int) -> str:
    hidden = int(round(cin * expand))
    use_res = stride == 1 and cin == cout
    y, idx = x, 0
    if expand != 1:
        y = _conv_bn_relu6(g, y, f"{prefix}.conv.{idx}", cin, hidden, 1)
        idx += 1
    y = _conv_bn_relu6(g, y, f"{prefix}.conv.{idx}", hidden, hidden, 3, stride=stride,
                       group=hidden)
    y = g.conv(y, f"{prefix}.conv.{idx + 1}", hidden, cout, 1, gain=1.0)
    y = g.batchnorm(y, f"{prefix}.conv.{idx + 2}", cout,
                    gamma=_RESIDUAL_GAIN if use_res else 1.0)
    if use_res:
        y = g.node("Add", [x, y], name=f"{prefix}/Add")
    return y


def build_mobilenet_v2(name: str = "mobilenet_v2", width_mult: float = 1.0,
                       settings: Sequence[Tuple[int, int, int, int]] = V2_SETTINGS,
                       last_channel: int = 1280, image_size: int = 224,
                       num_classes: int = 1000, batch_size: Optional[int] = 1, seed: int = 0,
                       opset: int = 13, sparsity: float = 0.0,
                       sparsity_block: int = 1) -> onnx.ModelProto:
    """Build a MobileNetV2; the defaults give torchvision's mobilenet_v2 (width 1.0).

    ``sparsity`` > 0 magnitude-prunes the 1x1 convs and the classifier (depthwise convs stay
    dense).
    """
    g = GraphBuilder(name, seed=seed, opset=opset, sparsity=sparsity,
                     sparsity_block=sparsity_block)
    n = batch_dim(batch_size)
    x = g.input("input", FLOAT, [n, 3, image_size, image_size])

    cin = _make_divisible(32 * width_mult)
    last = _make_divisible(last_channel * max(1.0, width_mult))
    y = _conv_bn_relu6(g, x, "features.0", 3, cin, 3, stride=2)
    idx = 1
    for t, c, reps, s in settings:
        cout = _make_divisible(c * width_mult)
        for r in range(reps):
            y = _inverted_residual(g, y, f"features.{idx}", cin, cout, s if r == 0 else 1, t)
            cin = cout
            idx += 1
    y = _conv_bn_relu6(g, y, f"features.{idx}", cin, last, 1)

    y = g.node("GlobalAveragePool", [y], name="avgpool")
    y = g.node("Flatten", [y], name="flatten", axis=1)
    g.gemm(y, "classifier.1", last, num_classes, outputs=["output"])
    g.output("output", FLOAT, [n, num_classes])
    return g.build(doc=__doc__)
