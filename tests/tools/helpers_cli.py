"""Run a tool's entry point in a subprocess from the repository root (no installed scripts)."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(module: str, *args, timeout: float = 240, preexec_fn=None, env=None):
    """``python -m <module> args...``; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn)


def run_main(module: str, *args, timeout: float = 240):
    """``<module>.main()`` as the console script calls it (sys.exit on its return value)."""
    code = f"import sys; from {module} import main; sys.exit(main())"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
