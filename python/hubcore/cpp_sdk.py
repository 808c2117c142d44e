"""Where the C++ SDK shipped in the wheel lives: headers, ``libhubcore`` and the CMake package.

    cmake -S app -B build -Dhubcore_DIR="$(python -m hubcore --cmake-dir)"

then ``find_package(hubcore)`` and ``target_link_libraries(app PRIVATE hubcore::hubcore)``.
The package finds the TensorFlow wheel by asking a Python interpreter where it is installed (see
``examples/cpp/README.md``).
"""

from __future__ import annotations

from pathlib import Path

from hubcore.errors import ModulePathNotFoundError

__all__ = ["get_cmake_dir", "get_include"]

_PACKAGE = Path(__file__).resolve().parent


def _sdk_path(relative: str) -> str:
    path = _PACKAGE / relative
    if not path.is_dir():
        raise ModulePathNotFoundError(
            f"{path} does not exist: this hubcore ({_PACKAGE}) was not installed from a wheel "
            "(a source checkout?). Install it with pip, or `cmake --install` a CMake build and "
            "point CMAKE_PREFIX_PATH at that prefix"
        )
    return str(path)


def get_cmake_dir() -> str:
    """The directory holding ``hubcoreConfig.cmake``, for ``find_package(hubcore)``."""
    return _sdk_path("cmake")


def get_include() -> str:
    """The directory to add to the include path for ``#include "hubcore/runtime.h"``."""
    return _sdk_path("include")
