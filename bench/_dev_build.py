"""Helpers the benchmarks share: importing hubcore from a development build, and running one
measurement in a fresh child process.

With ``HUBCORE_BUILD_DIR=build/dev`` set (as for the tests), ``python/hubcore`` is put first on
``sys.path`` and that build's extension is registered as ``hubcore._core``; without it the
installed package is used. The benchmarks call :func:`use_build_dir` before importing hubcore.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def use_build_dir() -> str | None:
    """Registers the HUBCORE_BUILD_DIR build, if set; returns the directory used."""
    build = os.environ.get("HUBCORE_BUILD_DIR")
    if not build or "hubcore._core" in sys.modules:
        return build
    build = os.path.abspath(build)  # relative to the working directory, as in tests/conftest.py
    (extension,) = glob.glob(os.path.join(build, "_core*.so"))
    sys.path.insert(0, str(ROOT / "python"))
    spec = importlib.util.spec_from_file_location("hubcore._core", extension)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hubcore._core"] = module
    spec.loader.exec_module(module)
    return build


def run_child(script: str, args: list[str], what: str) -> dict:
    """Runs ``python script args`` (a benchmark's own ``--child`` mode) with TensorFlow's logging
    muted and returns the JSON it printed after ``RESULT ``; RuntimeError with its output if none.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, script, *args], env=env, capture_output=True, text=True, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"{what} failed:\n{out.stdout}\n{out.stderr[-3000:]}")
