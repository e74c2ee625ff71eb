"""pyproject.toml registers every tool as a console script pointing at a callable main."""
import importlib
import os

import pytest

tomllib = pytest.importorskip("tomllib")

from tests.tools.helpers_cli import REPO  # noqa: E402


def test_console_scripts_resolve():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    for name in ("deepsparse_lite.benchmark", "deepsparse_lite.analyze", "deepsparse_lite.check_hardware"):
        assert name in scripts, name
    for name, target in scripts.items():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target
    assert scripts["deepsparse_lite.analyze"] == "deepsparse_lite.analyze:main"
    assert scripts["deepsparse_lite.check_hardware"] == "deepsparse_lite.check_hardware:main"
