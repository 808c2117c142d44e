"""Downloading a module over HTTP(S) straight into a cache work directory.

The standard library's ``urllib`` does the HTTP (redirects, TLS, proxies from the environment),
so there is no extra dependency. As tensorflow_hub did, a handle is requested as
``<handle>?tf-hub-format=compressed`` (merged with its own query) and the answer must be a
(gzipped) tarball; a handle whose path ends in ``.tar``, ``.tar.gz`` or ``.tgz`` is fetched as is.
The body is extracted while it arrives (:func:`hubcore.archive.extract_archive`), never stored.

Robustness: connection errors, timeouts, HTTP 5xx and 429 and a body cut short are retried with
capped exponential backoff (``HUBCORE_DOWNLOAD_RETRIES`` more attempts, default 4; a numeric
``Retry-After`` is honoured up to 30 s); each socket operation times out after
``HUBCORE_HTTP_TIMEOUT_S`` seconds (default 60). Failures raise :class:`hubcore.DownloadError`
subclasses naming the handle and the HTTP status.

Extra request headers (an ``Authorization`` for a private mirror, say) come from the file named by
``HUBCORE_HTTP_HEADERS_FILE`` (``Name: value`` lines; blank lines and ``#`` comments are skipped),
sent only to the handle's own scheme, host and port, and from :func:`set_http_headers_hook`, asked
for every URL requested, redirects included. Headers are never carried across a redirect by
themselves, and their values never appear in logs or error messages.
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping

import tqdm

from hubcore.archive import ARCHIVE_SUFFIXES, extract_archive
from hubcore.cache import remove_tree
from hubcore.errors import (
    CorruptModuleError,
    DownloadError,
    HandleNotFoundError,
    InvalidArgumentError,
    NotAnArchiveError,
    TruncatedDownloadError,
)

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT_S",
    "HeadersHook",
    "download",
    "request_url",
    "set_http_headers_hook",
]

DEFAULT_RETRIES = 4
DEFAULT_TIMEOUT_S = 60.0
_BACKOFF_START_S = 0.5
_BACKOFF_MAX_S = 8.0
_RETRY_AFTER_MAX_S = 30.0
_PROGRESS_MIN_BYTES = 4 << 20
_CHUNK = 1 << 16

HeadersHook = Callable[[str], Mapping[str, str] | None]
_headers_hook: HeadersHook | None = None


def set_http_headers_hook(hook: HeadersHook | None) -> None:
    """Installs ``hook(url) -> {name: value}``, asked for extra headers on every HTTP request.

    It is called for the first URL of a download and for every redirect target, and decides
    itself which hosts get which credentials; return None or ``{}`` for none. ``None`` removes
    the hook. Header values are never logged.
    """
    global _headers_hook
    _headers_hook = hook


def request_url(handle: str) -> str:
    """The URL fetched for ``handle``: the handle with ``tf-hub-format=compressed`` merged in."""
    parts = urllib.parse.urlsplit(handle)
    if parts.path.lower().endswith(ARCHIVE_SUFFIXES):
        return handle
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(name == "tf-hub-format" for name, _ in query):
        query.append(("tf-hub-format", "compressed"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def download(handle: str, dest: str) -> None:
    """Downloads the module archive of URL ``handle`` and extracts it into the empty ``dest``."""
    retries = int(_env_number("HUBCORE_DOWNLOAD_RETRIES", DEFAULT_RETRIES, int))
    timeout = _env_number("HUBCORE_HTTP_TIMEOUT_S", DEFAULT_TIMEOUT_S, float)
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=_ssl_context()), _Headers(handle)
    )
    url = request_url(handle)
    for attempt in range(retries + 1):
        try:
            _download_once(opener, handle, url, dest, timeout)
            return
        except _Transient as e:
            if attempt == retries:
                raise e.error from None
            time.sleep(e.retry_after or min(_BACKOFF_START_S * 2**attempt, _BACKOFF_MAX_S))
            for name in os.listdir(dest):  # start the next attempt from an empty directory
                remove_tree(os.path.join(dest, name))


class _Transient(Exception):
    """A failure worth another attempt; ``error`` is raised when the attempts run out."""

    def __init__(self, error: DownloadError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _download_once(
    opener: urllib.request.OpenerDirector, handle: str, url: str, dest: str, timeout: float
) -> None:
    try:
        response = opener.open(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        status = e.code
        retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
        e.close()
        message = f"{handle}: HTTP {status} {e.reason}"
        if status in (404, 410):
            raise HandleNotFoundError(message, handle, status) from None
        if status == 429 or status >= 500:
            raise _Transient(DownloadError(message, handle, status), retry_after) from None
        raise DownloadError(message, handle, status) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise _Transient(DownloadError(f"{handle}: {reason}", handle)) from None
    with response:
        status = response.status
        length = _content_length(response.headers.get("Content-Length"))
        body = _Body(response, handle, status, length)
        try:
            extract_archive(handle, body, dest)
            body.read_to_end()  # the whole body arrived, not just what the archive needed
        except CorruptModuleError as e:
            raise NotAnArchiveError(
                f"{handle}: HTTP {status}, but the body is not a module archive ({e})",
                handle,
                status,
            ) from None
        except _BodyFailed as e:
            raise _Transient(e.error) from None
        finally:
            body.close_progress()


class _BodyFailed(Exception):
    """The body stopped early (not an OSError: the archive reader must not take it for its own)."""

    def __init__(self, error: DownloadError) -> None:
        super().__init__(str(error))
        self.error = error


class _Body:
    """The response body as a raw stream: counts bytes, shows progress, detects truncation."""

    def __init__(
        self, response: http.client.HTTPResponse, handle: str, status: int, length: int | None
    ) -> None:
        self._response = response
        self._handle = handle
        self._status = status
        self._length = length
        self.received = 0
        show = bool(os.environ.get("TFHUB_DOWNLOAD_PROGRESS")) or (
            _is_terminal(sys.stderr) and (length is None or length >= _PROGRESS_MIN_BYTES)
        )
        self._progress = tqdm.tqdm(
            total=length,
            desc=f"Downloading {handle}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=not show,
            leave=False,
        )

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes, as soon as some arrive (one read on the connection)."""
        if size is None or size < 0:
            size = _CHUNK
        try:
            data = self._response.read1(size)
        except (OSError, http.client.HTTPException) as e:
            raise _BodyFailed(
                DownloadError(
                    f"{self._handle}: HTTP {self._status}, connection failed after "
                    f"{self.received} bytes ({e})",
                    self._handle,
                    self._status,
                )
            ) from None
        if not data and size and self._length is not None and self.received < self._length:
            raise _BodyFailed(
                TruncatedDownloadError(
                    f"{self._handle}: HTTP {self._status}, the body ended after {self.received} "
                    f"of {self._length} bytes (Content-Length)",
                    self._handle,
                    self._status,
                )
            )
        self.received += len(data)
        self._progress.update(len(data))
        return data

    def read_to_end(self) -> None:
        while self.read(_CHUNK):
            pass

    def close_progress(self) -> None:
        self._progress.close()


class _Headers(urllib.request.BaseHandler):
    """Adds the configured headers to each request (redirects included) as unredirected headers,
    so a redirect to another host never receives them unless the hook says so for that URL."""

    handler_order = 1000  # after urllib's own pre-processing

    def __init__(self, handle: str) -> None:
        self._origin = _origin(handle)
        self._file_headers = _headers_from_file()

    def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
        url = request.full_url
        headers: dict[str, str] = {}
        if _origin(url) == self._origin:
            headers.update(self._file_headers)
        if _headers_hook is not None:
            headers.update(_headers_hook(url) or {})
        for name, value in headers.items():
            request.add_unredirected_header(name, value)
        return request

    https_request = http_request


def _headers_from_file() -> dict[str, str]:
    path = os.environ.get("HUBCORE_HTTP_HEADERS_FILE")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read(1 << 20).splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgumentError(
            f"HUBCORE_HTTP_HEADERS_FILE {path}: cannot be read ({type(e).__name__})"
        ) from None
    headers = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not name or any(c.isspace() for c in name):
            # The line may be a secret: name only its position.
            raise InvalidArgumentError(
                f"HUBCORE_HTTP_HEADERS_FILE {path}: line {number} is not 'Name: value'"
            )
        headers[name] = value.strip()
    return headers


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, port or default


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    # tensorflow_hub's switch, for mirrors with self-signed certificates.
    if os.environ.get("TFHUB_DISABLE_CERT_VALIDATION") == "true":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value), _RETRY_AFTER_MAX_S)


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def _env_number(name: str, default: float, kind: type) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidArgumentError(f"{name} must be a non-negative number, got {value!r}")
    return number
