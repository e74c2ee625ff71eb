"""The build kept OpenMP and the ISA dispatch (cf. sklearn's test_openmp_helpers)."""
import os

import pytest

import deepsparse_lite
from deepsparse_lite import kernels


def test_openmp_was_built_in():
    if os.environ.get("DSL_ALLOW_NO_OPENMP") == "1":
        pytest.skip("DSL_ALLOW_NO_OPENMP=1: a serial build was requested")
    assert deepsparse_lite.openmp_enabled(), (
        "the kernels were built without OpenMP (see the build warning); "
        "set DSL_ALLOW_NO_OPENMP=1 only if that is intended")


def test_isa_level_can_be_lowered_and_restored():
    top = kernels.isa_level()
    kernels.set_isa_level(0)
    try:
        assert kernels.isa_level() == 0
    finally:
        kernels.set_isa_level(top)
    assert kernels.isa_level() == top
    kernels.set_isa_level(99)  # never above the hardware
    assert kernels.isa_level() == top
