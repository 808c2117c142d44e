"""hubcore: TF1 Hub modules (``hub.Module``) on TensorFlow 2.21, with a C++ core.

``import hubcore as hub`` is a drop-in for tensorflow_hub's TF1 module API. Names are imported
lazily so that ``hubcore.Runner`` and the CLI start without loading TensorFlow's Python API.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from hubcore import errors as _errors
from hubcore._tf_libraries import load_if_not_beside
from hubcore.errors import *  # noqa: F403  (the error classes are public names of hubcore)

load_if_not_beside(__path__[0])  # noqa: F405  (the package's own __path__)

# public name -> submodule that defines it
_LAZY = {
    "ModuleSpec": "hubcore.module_spec",
    "load_module_spec": "hubcore.module_spec",
    "ParsedTensorInfo": "hubcore.tensor_info",
    "Module": "hubcore.module",
    "eval_function_for_module": "hubcore.module",
    "create_module_spec": "hubcore.creation",
    "create_module_spec_from_saved_model": "hubcore.creation",
    "add_signature": "hubcore.creation",
    "attach_message": "hubcore.creation",
    "ImageModuleInfo": "hubcore.image_util",
    "attach_image_module_info": "hubcore.image_util",
    "get_expected_image_size": "hubcore.image_util",
    "get_num_image_channels": "hubcore.image_util",
    "Runner": "hubcore.runner",
    "load": "hubcore.eager_module",
    "EagerModule": "hubcore.eager_module",
    "resolve": "hubcore.resolver",
    "set_http_headers_hook": "hubcore.download",
    "KerasLayer": "hubcore.keras_layer",
    "export_tf2": "hubcore.tf2_export",
    "text_embedding_column": "hubcore.feature_column",
    "text_embedding_column_v2": "hubcore.feature_column",
    "sparse_text_embedding_column": "hubcore.feature_column",
    "image_embedding_column": "hubcore.feature_column",
    "get_cmake_dir": "hubcore.cpp_sdk",
    "get_include": "hubcore.cpp_sdk",
}

__all__ = [*_errors.__all__, *_LAZY]


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), or the extension's in a checkout."""
    try:
        return importlib.metadata.version("hubcore")
    except importlib.metadata.PackageNotFoundError:  # a source tree run with HUBCORE_BUILD_DIR
        from hubcore import _core

        return str(_core.__version__)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hubcore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public API only: not this file's helpers (importlib, Any, ...) nor submodules.
    return sorted([*__all__, "__version__"])
