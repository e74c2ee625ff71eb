"""Seed example: two streams with Context and MultiModelEngine (scheduler-how-to.md).

The zoo: stub resolves to the package's locally built resnet50-pruned95_quant sample (synthetic
weights pruned and INT8-quantized by deepsparse_lite.sparsify, no download)."""
from deepsparse_lite import Context
from deepsparse_lite import MultiModelEngine
from deepsparse_lite.engine import Context  # noqa: F811  (the seed imports it twice)
import numpy as np

zoo_stub = "zoo:cv/classification/resnet_v1-50/pytorch/sparseml/imagenet/pruned95_quant-none"

context = Context(num_streams=2)

engine_b64 = MultiModelEngine(
    model=zoo_stub,
    context=context,
    batch_size=64
)

random_b64 = np.random.rand(64,3,224,224).astype(np.single)
output_b64 = engine_b64([random_b64])

print("\nb64 response:")
print(output_b64[0].shape)
# b64 response:
# (64, 1000)
