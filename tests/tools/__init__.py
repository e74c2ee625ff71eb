"""Test tooling: the engine-vs-onnxruntime model comparison used by the model tests, and the
(not-in-CI) script that regenerates the exported-model fixtures in tests/data/exported/."""
