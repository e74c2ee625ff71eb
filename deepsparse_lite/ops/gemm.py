"""gemm ops (see ops/__init__.py)."""
from deepsparse_lite.ops.base import register  # noqa: F401
