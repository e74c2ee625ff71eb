"""Build the Cython + OpenMP kernels of deepsparse_lite.

Every ``deepsparse_lite/kernels/*.pyx`` becomes one extension module. The C microkernels
in ``csrc/`` are headers compiled into those modules; each ISA variant carries its own
``#pragma GCC target`` so the default build needs no ``-march`` flag and one wheel runs on
any x86-64 (AVX-512, AVX2+FMA or plain SSE2), choosing the variant at run time.

OpenMP is probed once: when the compiler cannot build an OpenMP program the kernels are
built serial and a loud warning is printed (``deepsparse_lite.openmp_enabled()`` then
returns False, and the test suite fails unless DSL_ALLOW_NO_OPENMP=1).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _compiler_command():
    cc = os.environ.get("CC")
    if cc:
        return cc.split()
    import sysconfig

    cc = sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or ([], []) with a loud warning."""
    if os.environ.get("DSL_DISABLE_OPENMP") == "1":
        _warn_no_openmp("DSL_DISABLE_OPENMP=1 was set")
        return [], []
    tmp = tempfile.mkdtemp(prefix="dsl_omp_probe_")
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        cmd = _compiler_command() + ["-fopenmp", src, "-o", os.path.join(tmp, "probe")]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True)
            ok = res.returncode == 0
            err = res.stderr
        except OSError as exc:  # compiler missing
            ok, err = False, str(exc)
        if not ok:
            _warn_no_openmp(f"the compiler could not build an OpenMP program:\n{err}")
            return [], []
        return ["-fopenmp"], ["-fopenmp"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _warn_no_openmp(reason):
    msg = (
        "\n" + "*" * 78 + "\n"
        "* deepsparse_lite: building WITHOUT OpenMP: every kernel will run on one thread.\n"
        f"* Reason: {reason}\n"
        "* Install a compiler with OpenMP support (gcc, or clang + libomp) and rebuild.\n"
        + "*" * 78
    )
    warnings.warn(msg)
    print(msg, file=sys.stderr)


def extensions():
    from Cython.Build import cythonize

    omp_compile, omp_link = openmp_flags()
    compile_args = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wno-unused-function",
                    "-Wno-unknown-pragmas", "-Wno-unreachable-code-fallthrough"]
    # Tolerate flags the compiler does not know (clang vs gcc).
    compile_args = [a for a in compile_args if not a.startswith("-Wno-unreachable")]
    if os.environ.get("DSL_NATIVE") == "1":  # local experiments only, never the default
        compile_args.append("-march=native")
    exts = []
    for pyx in sorted(glob.glob(os.path.join("deepsparse_lite", "kernels", "*.pyx"))):
        name = os.path.splitext(pyx)[0].replace(os.sep, ".")
        exts.append(
            Extension(
                name,
                [pyx],
                include_dirs=[os.path.join(HERE, "csrc"), numpy.get_include()],
                extra_compile_args=compile_args + omp_compile,
                extra_link_args=omp_link + ["-lm"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                depends=sorted(glob.glob(os.path.join("csrc", "*.h"))),
            )
        )
    return cythonize(
        exts,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "nonecheck": False,
            "embedsignature": True,
        },
        include_path=[HERE],
        nthreads=int(os.environ.get("DSL_CYTHON_JOBS", "0")) or None,
    )


class BuildExt(build_ext):
    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
