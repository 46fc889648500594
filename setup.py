"""Declares the one compiled extension, ``pyactors._core``; metadata lives in pyproject.toml.

Build modes come from the environment so they survive ``pip install .`` and wheel builds:
``PYACTORS_DEBUG=1`` turns on line tracing and the core's debug counters and checks,
``PYACTORS_ANNOTATE=1`` writes Cython's HTML annotation next to the sources.
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

DEBUG = os.environ.get("PYACTORS_DEBUG", "") not in ("", "0")
ANNOTATE = os.environ.get("PYACTORS_ANNOTATE", "") not in ("", "0")
CORE_DIR = os.path.join("src", "_core")


class cythonize_build_ext(build_ext):
    # Cythonize when the extension is built, not when setup.py is read: an sdist then lists
    # the .pyx sources and never generated C.
    def run(self):
        from Cython.Build import cythonize

        directives = {
            "language_level": 3,
            "embedsignature": True,
            "auto_pickle": False,
            "freethreading_compatible": False,
        }
        if DEBUG:
            directives["linetrace"] = True
        compiled = cythonize(
            self.extensions,
            compiler_directives=directives,
            annotate=ANNOTATE,
            # Apart from release builds': a release build must never reuse C generated with
            # line tracing.
            build_dir=os.path.join("build", "cython-debug" if DEBUG else "cython"),
            include_path=[_pxd_include_dir()],
            force=DEBUG,
        )
        # Keep setuptools' own Extension objects (finalize_options annotated them).
        for ext, generated in zip(self.extensions, compiled, strict=True):
            ext.sources = generated.sources
        super().run()


def _pxd_include_dir():
    # Cython looks for the declarations of module pyactors._core at pyactors/_core.pxd on its
    # include path; the source stays beside the .pyx files it declares.
    include = os.path.join("build", "cython", "include")
    target = os.path.join(include, "pyactors", "_core.pxd")
    declarations = _read(os.path.join(CORE_DIR, "_core.pxd"))
    if not os.path.exists(target) or _read(target) != declarations:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as copy:  # rewritten only on change: it drives rebuilds
            copy.write(declarations)
    return include


def _read(path):
    with open(path, "rb") as file:
        return file.read()


class stub_build_py(build_py):
    # The hand-written stub sits beside the .pyx it describes; install it as pyactors/_core.pyi.
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "pyactors", "_core.pyi")
        self.copy_file(os.path.join(CORE_DIR, "_core.pyi"), target)


macros = [("PYACTORS_DEBUG", "1" if DEBUG else "0")]
if DEBUG:
    macros += [("CYTHON_TRACE_NOGIL", "1")]

setup(
    ext_modules=[
        Extension(
            "pyactors._core",
            [os.path.join(CORE_DIR, "_core.pyx")],
            include_dirs=[CORE_DIR],
            define_macros=macros,
            # A release build drops the debug info CPython's own CFLAGS ask for (-g): it was
            # three quarters of the wheel.
            extra_compile_args=["-O0", "-g"] if DEBUG else ["-O2", "-g0"],
        )
    ],
    cmdclass={"build_ext": cythonize_build_ext, "build_py": stub_build_py},
)
