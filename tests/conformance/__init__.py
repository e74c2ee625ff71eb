"""ONNX backend conformance: ONNX's own backend test data run through deepsparse_lite.

``python -m tests.conformance`` prints the pass table; ``tests/conformance/test_onnx_backend.py``
gates CI on ``record.json``. See ``harness.py``.
"""
