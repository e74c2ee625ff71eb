"""Session-wide checks.

Every kernel variant this CPU can run must run in the suite: the runner counts the
(kernel, form) pairs steps execute, and at the end of a full run any variant that was never
exercised fails the session. On an AVX-512 machine that is the only place the AVX-512 code
really executes, so a skipped or unreachable AVX-512 path must be a failure, not silence.
"""
import os

import pytest


def _ops_modules():
    here = os.path.join(os.path.dirname(__file__), "ops")
    return {os.path.join(here, f) for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py")}


def pytest_sessionstart(session):
    from deepsparse_lite import kernels

    kernels.record_variants(True)
    kernels.reset_variant_hits()


def pytest_sessionfinish(session, exitstatus):
    from deepsparse_lite import kernels

    items = getattr(session, "items", None) or []
    ran = {str(it.fspath) for it in items}
    full = _ops_modules() <= ran and not session.config.option.keyword \
        and not session.config.option.markexpr and session.testsfailed == 0 and exitstatus == 0
    if not full:
        return
    hits = kernels.variant_hits()
    missing = sorted(kernels.reachable_variants() - set(hits))
    if missing:
        msg = ("\n" + "!" * 78 + "\nKERNEL VARIANTS NEVER EXERCISED on this CPU (isa level "
               f"{kernels.top_isa_level()}): {missing}\nEvery variant the CPU can run must be "
               "covered by a test (tests/conftest.py).\n" + "!" * 78)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(msg, red=True, bold=True)
        else:
            print(msg)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
