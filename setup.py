"""Only the optional C extension lives here; the project metadata is in pyproject.toml.

``s3tail.core._speedups`` is the C fast path of the access-log parser. It is optional: where no
compiler is available the build of the extension fails quietly and s3tail runs in pure Python.
Set ``S3TAIL_PURE_PYTHON=1`` to ignore a built extension at run time.
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("s3tail.core._speedups", ["core/_speedups.c"], optional=True,
              extra_compile_args=["-O2"]),
])
