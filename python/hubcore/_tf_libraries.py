"""Makes TensorFlow's shared libraries findable for ``hubcore._core`` wherever pip put them.

The wheel's extension and ``libhubcore`` find ``libtensorflow_cc.so.2`` and
``libtensorflow_framework.so.2`` through the run path ``$ORIGIN/../tensorflow``: pip installs
``hubcore/`` next to ``tensorflow/`` in one site-packages. When they are apart (a virtualenv that
sees the system's TensorFlow, ``pip install --user``, ``--target``), the libraries are loaded here
by absolute path first, so the dynamic loader finds them by their soname. This finds the
``tensorflow`` package without importing TensorFlow's Python API.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os

__all__ = ["load_if_not_beside"]

_LIBRARIES = ("libtensorflow_framework.so.2", "libtensorflow_cc.so.2")


def load_if_not_beside(package_dir: str) -> None:
    """Loads TensorFlow's libraries when an installed hubcore is not beside ``tensorflow/``."""
    if os.path.isdir(os.path.join(package_dir, os.pardir, "tensorflow")):
        return
    if not any(name.startswith("libhubcore.so") for name in os.listdir(package_dir)):
        return  # a source tree: the build's run paths name TensorFlow's directory
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return  # importing hubcore._core reports the missing library
    for location in spec.submodule_search_locations:
        paths = [os.path.join(location, name) for name in _LIBRARIES]
        if all(os.path.exists(p) for p in paths):
            for path in paths:
                ctypes.CDLL(path)  # RTLD_LOCAL, as a dependency would be loaded
            return
