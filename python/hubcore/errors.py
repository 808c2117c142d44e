"""Exceptions raised by hubcore.

Every hubcore exception derives from :class:`hubcore.Error` and also from the built-in type that
tensorflow_hub documented or actually raised in the same situation, so code written against either
keeps working. Where the documentation and tensorflow_hub 0.15 disagreed (for example ``KeyError``
in the docs versus ``ValueError`` observed for an unknown signature) the class subclasses both.

``__all__`` lists the error classes, which ``hubcore`` re-exports as its own names.

This module is pure Python and must not import ``hubcore._core``: the native translator imports it.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "CorruptModuleError",
    "DownloadError",
    "Error",
    "ExecutionError",
    "FailedPreconditionError",
    "HandleNotFoundError",
    "InvalidArgumentError",
    "InvalidModuleError",
    "ModulePathNotFoundError",
    "NotAModuleError",
    "NotAnArchiveError",
    "OfflineError",
    "SignatureNotFoundError",
    "TruncatedDownloadError",
    "UnsafeArchiveError",
    "UnsafeModuleError",
    "UnsupportedFormatError",
    "VariantNotFoundError",
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


class UnsafeModuleError(InvalidModuleError):
    """Safe mode refuses the module: a node uses an op outside the allowlist (named with the node).

    See ``docs/security.md`` for the allowlist and what safe mode guarantees.
    """


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


class DownloadError(Error, OSError):
    """A module handle (URL) could not be fetched into the cache.

    Raised as is for HTTP errors without a subclass of their own (401, 403, ...) and for transient
    failures (connection errors, timeouts, HTTP 5xx and 429) that outlasted the retries.
    ``handle`` is the handle and ``status`` the last HTTP status (None if there was no response).
    Derives from OSError, like the ``urllib`` errors tensorflow_hub let through.
    """

    def __init__(self, message: str, handle: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.handle = handle
        self.status = status


class HandleNotFoundError(DownloadError, ModulePathNotFoundError):
    """The server answered 404 (or 410) for a module handle."""


class TruncatedDownloadError(DownloadError):
    """The response ended before Content-Length bytes arrived (after the retries)."""


class NotAnArchiveError(DownloadError):
    """The response body is not a (compressed) tar archive, e.g. an HTML page."""


class OfflineError(DownloadError):
    """``HUBCORE_OFFLINE`` is set and the handle is not in the cache (the message names both)."""


# The one table from C++ status codes (hubcore::StatusCodeName) to exception classes.
_BY_STATUS_CODE: dict[str, type[Error]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "NOT_FOUND": ModulePathNotFoundError,
    "VARIANT_NOT_FOUND": VariantNotFoundError,
    "SIGNATURE_NOT_FOUND": SignatureNotFoundError,
    "NOT_A_MODULE": NotAModuleError,
    "DATA_LOSS": CorruptModuleError,
    "UNIMPLEMENTED": UnsupportedFormatError,
    "FAILED_PRECONDITION": FailedPreconditionError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "INTERNAL": ExecutionError,
    "PERMISSION_DENIED": UnsafeModuleError,
}


def error_for_status_code(code: str) -> type[Error]:
    """Maps a C++ ``hubcore::StatusCode`` name to the exception class raised for it."""
    return _BY_STATUS_CODE.get(code, ExecutionError)
