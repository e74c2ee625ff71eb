"""Test tooling: the engine-vs-onnxruntime model comparison used by the model tests, and the
(not-in-CI) script that regenerates the exported-model fixtures in tests/data/exported/.
The ``test_*.py`` files here cover the command-line tools (benchmark progress, analyze,
check_hardware, the shared MODEL resolver); ``helpers_cli`` runs them in subprocesses."""
