"""Exceptions raised by hubcore.

Every hubcore exception derives from :class:`hubcore.Error` and also from the built-in type that
tensorflow_hub documented or actually raised in the same situation, so code written against either
keeps working. Where the documentation and tensorflow_hub 0.15 disagreed (for example ``KeyError``
in the docs versus ``ValueError`` observed for an unknown signature) the class subclasses both.

This module is pure Python and must not import ``hubcore._core``: the native translator imports it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "CorruptModuleError",
    "Error",
    "ExecutionError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "InvalidModuleError",
    "ModulePathNotFoundError",
    "NotAModuleError",
    "SignatureNotFoundError",
    "UnsafeArchiveError",
    "UnsupportedFormatError",
    "VariantNotFoundError",
    "error_for_status_code",
]


class Error(Exception):
    """Base class of all hubcore errors."""

    def __str__(self) -> str:
        # KeyError would otherwise print the repr of its message.
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class InvalidModuleError(Error, ValueError):
    """A path is not a usable TF1 Hub module (not a module, unsupported content)."""


class ModulePathNotFoundError(InvalidModuleError, FileNotFoundError):
    """The module path does not exist."""


class NotAModuleError(InvalidModuleError):
    """A directory exists but is not a TF1 Hub module (e.g. a TF2 SavedModel)."""


class CorruptModuleError(InvalidModuleError, RuntimeError):
    """A module file is corrupt or truncated; the message names the file."""


class UnsafeArchiveError(InvalidModuleError):
    """A module archive has a member hubcore refuses to extract (the message names it and why)."""


class UnsupportedFormatError(InvalidModuleError):
    """Unknown ``tfhub_module.pb`` format version or required feature."""


class InvalidArgumentError(Error, ValueError, TypeError):
    """An argument (input value, dtype, name, option) is wrong."""


class SignatureNotFoundError(Error, KeyError, ValueError):
    """The graph variant has no signature of that name (lists those that exist)."""


class VariantNotFoundError(Error, KeyError, ValueError):
    """The module has no graph variant with that tag set (lists those that exist)."""


class FailedPreconditionError(Error, RuntimeError):
    """The object is not in a state that allows the call."""


class AlreadyExistsError(Error, FileExistsError):
    """An export target already exists."""


class ExecutionError(Error, RuntimeError):
    """TensorFlow failed while building or running a graph."""


_BY_STATUS_CODE: dict[str, type[Error]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NOT_FOUND": ModulePathNotFoundError,
    "NOT_A_MODULE": NotAModuleError,
    "DATA_LOSS": CorruptModuleError,
    "UNIMPLEMENTED": UnsupportedFormatError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "INTERNAL": ExecutionError,
}


def error_for_status_code(code: str) -> type[Error]:
    """Maps a C++ ``hubcore::StatusCode`` name to the exception class raised for it."""
    return _BY_STATUS_CODE.get(code, ExecutionError)
