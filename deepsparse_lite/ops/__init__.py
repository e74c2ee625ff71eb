"""ONNX op definitions: shape rules and lowerings to kernel steps, one family per module.

Importing this package registers every op in ``base.REGISTRY``. Ownership of modules:
``shape`` (views, shape ops, constants), ``elementwise``, ``datamove`` (transpose, slice,
concat, gather, pad, resize ...), ``reduce``, ``normalization``, ``pool``, ``gemm``
(Gemm, MatMul, Einsum) ``conv`` (Conv, ConvTranspose) and ``quant`` (QuantizeLinear, DequantizeLinear,
DynamicQuantizeLinear and the INT8 MatMul / Conv ops).
"""
from deepsparse_lite.ops import base  # noqa: F401
from deepsparse_lite.ops import (  # noqa: F401  (registration side effects)
    shape,
    elementwise,
    datamove,
    reduce,
    normalization,
    pool,
    gemm,
    conv,
    quant,
)
from deepsparse_lite.ops.base import REGISTRY, UnsupportedModelError, get_op  # noqa: F401
