"""ResNet (torchvision layout, v1.5 bottlenecks) with synthetic weights.

Layout matches ``torchvision.models.resnet50`` as exported by ``torch.onnx.export`` without
BatchNorm folding: conv1 7x7/2 + BN + ReLU, MaxPool 3x3/2, bottleneck stages with the stride on
the 3x3 conv (v1.5), a 1x1 conv + BN downsample on the first block of each stage, global average
pool, Flatten and a Gemm classifier. BatchNormalization nodes are kept so the compiler's BN
folding is exercised. Weights are random (deterministic per ``seed``): right for speed and
correctness checks, meaningless for accuracy.
"""
from __future__ import annotations

from typing import Optional, Sequence

import onnx

from deepsparse_lite.models._graph import FLOAT, GraphBuilder, batch_dim

# The last BN of each residual branch gets a small gain so the residual sum grows slowly over
# 16 blocks instead of exploding (torchvision offers zero_init_residual for the same reason).
_RESIDUAL_GAIN = 0.35


def _bottleneck(g: GraphBuilder, x: str, prefix: str, cin: int, planes: int, stride: int,
                downsample: bool) -> str:
    width, cout = planes, planes * 4
    y = g.conv(x, f"{prefix}.conv1", cin, width, 1)
    y = g.relu(g.batchnorm(y, f"{prefix}.bn1", width), f"{prefix}.relu")
    y = g.conv(y, f"{prefix}.conv2", width, width, 3, stride=stride)
    y = g.relu(g.batchnorm(y, f"{prefix}.bn2", width), f"{prefix}.relu_1")
    y = g.conv(y, f"{prefix}.conv3", width, cout, 1)
    y = g.batchnorm(y, f"{prefix}.bn3", cout, gamma=_RESIDUAL_GAIN)
    if downsample:
        idn = g.conv(x, f"{prefix}.downsample.0", cin, cout, 1, stride=stride, gain=1.0)
        idn = g.batchnorm(idn, f"{prefix}.downsample.1", cout)
    else:
        idn = x
    y = g.node("Add", [y, idn], name=f"{prefix}/Add")
    return g.relu(y, f"{prefix}.relu_2")


def build_resnet(name: str = "resnet50", layers: Sequence[int] = (3, 4, 6, 3),
                 base_width: int = 64, image_size: int = 224, num_classes: int = 1000,
                 batch_size: Optional[int] = 1, seed: int = 0, opset: int = 13,
                 sparsity: float = 0.0, sparsity_block: int = 1) -> onnx.ModelProto:
    """Build a bottleneck ResNet; the defaults give torchvision's resnet50.

    ``sparsity`` > 0 magnitude-prunes every dense conv and the classifier (see
    :meth:`GraphBuilder.prune`), like SparseZoo's pruned ResNets.
    """
    g = GraphBuilder(name, seed=seed, opset=opset, sparsity=sparsity,
                     sparsity_block=sparsity_block)
    n = batch_dim(batch_size)
    x = g.input("input", FLOAT, [n, 3, image_size, image_size])

    y = g.conv(x, "conv1", 3, base_width, 7, stride=2, pad=3)
    y = g.relu(g.batchnorm(y, "bn1", base_width), "relu")
    y = g.node("MaxPool", [y], name="maxpool", kernel_shape=[3, 3], strides=[2, 2],
               pads=[1, 1, 1, 1])

    cin = base_width
    for stage, blocks in enumerate(layers):
        planes = base_width * (2 ** stage)
        for b in range(blocks):
            stride = 2 if (stage > 0 and b == 0) else 1
            y = _bottleneck(g, y, f"layer{stage + 1}.{b}", cin, planes, stride,
                            downsample=(b == 0))
            cin = planes * 4

    y = g.node("GlobalAveragePool", [y], name="avgpool")
    y = g.node("Flatten", [y], name="flatten", axis=1)
    g.gemm(y, "fc", cin, num_classes, outputs=["output"])
    g.output("output", FLOAT, [n, num_classes])
    return g.build(doc=__doc__)
