"""Reading batch-inference inputs from files and writing outputs, for ``hubcore run``.

Inputs (chosen by extension, or ``fmt``):

- ``.npy``: one array, rows along axis 0, for a signature with a single (dense) input.
- ``.npz``: one array per input, keyed by input name (``input.SIG.NAME`` keys also work).
- ``.jsonl`` / ``.ndjson`` / ``.json``: JSON lines; each line an object keyed by input name, or a
  bare value for a one-input signature (a string, a number, a list, or for sparse inputs
  ``{"indices": ..., "values": ...}`` without the batch dimension).
- ``.csv``: a header line naming columns; a column ``NAME`` feeds a scalar input, columns
  ``NAME[0]``, ``NAME[1]``, ... feed a vector input.
- anything else (``.txt``): plain text, one string per line, for a one-input string signature.

Outputs: ``.npz`` (dense outputs concatenated along rows; sparse outputs as ``NAME.indices``,
``NAME.values``, ``NAME.dense_shape``; ragged as ``NAME.flat_values``, ``NAME.row_splits_0``...;
strings as bytes arrays; bfloat16 and the other ml_dtypes types widened exactly to float32, int8
or uint8) or JSON lines (one object per input row; bytes decoded as UTF-8). A raw 2-byte array
(``<V2``, how ``np.save`` stores bfloat16) feeds a bfloat16 input as bfloat16.
``-`` reads standard input (text, JSON lines or CSV, streamed) or writes standard output.
Outputs are opened with :class:`hubcore.output_file.OutputFile`: a regular file is written to a
temporary file beside it and renamed at the end, so a failed run leaves no partial output; pipes,
devices and symlinks are written in place, never replaced. Input problems that need no module
(missing file, damaged .npz, an .npy header larger than the file, text that is not UTF-8, a CSV
header with gaps) are found before the module loads.

Errors in the input name the file and line (``data.jsonl:17: input 'x' expects ...``).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import IO, Any

import ml_dtypes
import numpy as np

from hubcore._convert import RaggedValue, SignatureSpec, SparseValue, ValueSpec, to_array
from hubcore.batching import BatchAssembler
from hubcore.errors import InvalidArgumentError
from hubcore.output_file import STDIO, OutputFile

__all__ = [
    "ArrayInput",
    "JsonLinesWriter",
    "NativeFeeds",
    "NpzWriter",
    "RowInput",
    "input_format",
    "open_input",
    "open_output",
    "output_format",
    "output_writer",
    "read_array_file",
    "scan_lines",
]

NativeFeeds = dict[str, list[np.ndarray]]

_JSON_EXT = (".jsonl", ".ndjson", ".json")


def input_format(path: str, fmt: str | None = None) -> str:
    if fmt:
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext in (".npy", ".npz", ".csv"):
        return ext[1:]
    if ext in _JSON_EXT:
        return "jsonl"
    return "text"


def output_format(path: str, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in ("npz", "jsonl"):
            raise InvalidArgumentError(f"Unknown output format {fmt!r}")
        return fmt
    if path == STDIO:
        return "jsonl"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return "npz"
    if ext in _JSON_EXT:
        return "jsonl"
    raise InvalidArgumentError(
        f"Cannot tell the output format of {path}: use a .npz or .jsonl name (or --output-format)"
    )


def scan_lines(path: str) -> int:
    """Counts the lines of a text file and checks that it is UTF-8 (the error names the line)."""
    lines = 0
    carry = b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            _check_utf8(data[:cut], path, lines)
            lines += data.count(b"\n", 0, cut)
            carry = data[cut:]
    _check_utf8(carry, path, lines)
    return lines + (carry != b"")


def _check_utf8(data: bytes, where: str, lines_before: int) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = lines_before + data.count(b"\n", 0, e.start) + 1
        raise InvalidArgumentError(f"{where}:{line}: not UTF-8 text ({e.reason})") from None


# ---- readers --------------------------------------------------------------------------------


def _check_npy_header(f: IO[bytes], size: int, where: str) -> None:
    """Checks that an .npy header declares an array the file can hold, before numpy allocates it."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:  # 2.0 and 3.0 headers share the layout
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype.hasobject:
        raise InvalidArgumentError(f"{where}: holds Python objects (pickles), which are not read")
    need = math.prod(shape) * dtype.itemsize
    have = size - f.tell()
    if need > have:
        raise InvalidArgumentError(
            f"{where}: the header declares a {dtype} array of shape {tuple(shape)} ({need:,} "
            f"bytes), but the file holds only {have:,} bytes of data (truncated or corrupt)"
        )


# What reading a damaged .npy/.npz can raise, from numpy, zipfile and zlib.
_ARRAY_FILE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    MemoryError,
    NotImplementedError,
    RuntimeError,
    zipfile.BadZipFile,
    zlib.error,
)


def read_array_file(path: str, fmt: str) -> dict[str | None, np.ndarray]:
    """An .npy file as ``{None: array}`` or an .npz file as ``{key: array}``, read whole and
    checked member by member, so damage is found before any work starts."""
    try:
        if fmt == "npy":
            with open(path, "rb") as f:
                _check_npy_header(f, os.fstat(f.fileno()).st_size, path)
                f.seek(0)
                return {None: np.lib.format.read_array(f, allow_pickle=False)}
        arrays: dict[str | None, np.ndarray] = {}
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                where = f"{path}: member {info.filename}"
                with archive.open(info) as f:
                    _check_npy_header(f, info.file_size, where)
                with archive.open(info) as f:
                    try:
                        arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
                    except _ARRAY_FILE_ERRORS as e:
                        raise InvalidArgumentError(f"{where}: cannot read: {e}") from None
        return arrays
    except InvalidArgumentError:
        raise
    except _ARRAY_FILE_ERRORS as e:
        raise InvalidArgumentError(f"{path}: cannot read as {fmt}: {e}") from None


class ArrayInput:
    """.npy / .npz inputs: whole arrays, validated once, sliced into batches."""

    def __init__(self, path: str, fmt: str) -> None:
        if path == STDIO:
            raise InvalidArgumentError(
                f"{fmt} input cannot come from standard input; name the file (stdin takes text, "
                "jsonl and csv)"
            )
        self.path = path
        self.fmt = fmt
        self.files = read_array_file(path, fmt)
        self.arrays: dict[str, np.ndarray] = {}
        self.total: int | None = None

    def prepare(self, sig: SignatureSpec) -> None:
        """Matches the arrays to the signature's inputs (names, dtypes, shapes, row counts)."""
        path = self.path
        if self.fmt == "npy":
            if len(sig.inputs) != 1:
                raise InvalidArgumentError(
                    f"{path}: a .npy file feeds one input, but signature '{sig.name}' has "
                    f"{sorted(sig.inputs)}; use .npz with one array per input"
                )
            arrays = {next(iter(sig.inputs)): self.files[None]}
        else:
            arrays = {}
            for key, value in self.files.items():
                assert key is not None
                name = key.split(".")[-1] if key.startswith("input.") else key
                if key.startswith("input.") and not key.startswith(f"input.{sig.name}."):
                    continue
                arrays[name] = value
            missing = sorted(set(sig.inputs) - set(arrays))
            if missing:
                raise InvalidArgumentError(
                    f"{path}: missing array for input {missing[0]!r} (the file has "
                    f"{sorted(k for k in self.files if k is not None)})"
                )
        rows = None
        for key, spec in sig.inputs.items():
            where = f"{path}: array '{key}'"
            if spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{where}: input '{key}' is {spec.kind}; feed it from JSON lines"
                )
            arr = to_array(_typed_raw_values(arrays[key], spec), spec, where)
            if spec.shape is not None and (
                arr.ndim != len(spec.shape)
                or any(w is not None and w != d for w, d in zip(spec.shape, arr.shape, strict=True))
            ):
                want = tuple(spec.shape)
                raise InvalidArgumentError(
                    f"{where} has shape {arr.shape}; input '{key}' expects {want}"
                )
            if arr.ndim == 0:
                raise InvalidArgumentError(f"{where} is a scalar; rows go along axis 0")
            if rows is not None and arr.shape[0] != rows:
                raise InvalidArgumentError(f"{where} has {arr.shape[0]} rows, others {rows}")
            rows = arr.shape[0]
            self.arrays[key] = arr
        self.total = rows or 0

    def batches(self, batch_size: int) -> Iterator[tuple[int, NativeFeeds]]:
        total = self.total or 0
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            yield (
                stop - start,
                {k: [np.ascontiguousarray(a[start:stop])] for k, a in self.arrays.items()},
            )


_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _typed_raw_values(arr: np.ndarray, spec: ValueSpec) -> np.ndarray:
    """numpy saves a bfloat16 array as raw 2-byte values (``<V2``) and reads it back as such; for
    a bfloat16 input those bytes are its values. Raw values of another width are left to
    ``to_array`` to refuse: the 1-byte types (float8, int4, ...) cannot be told apart."""
    if arr.dtype.type is np.void and arr.dtype.itemsize == 2 and spec.dtype == _BFLOAT16:
        return arr.view(_BFLOAT16)
    return arr


_CSV_COLUMN = re.compile(r"(.*)\[(\d+)\]$")


class RowInput:
    """Line-oriented inputs (JSON lines, CSV, text): rows validated one by one.

    A regular file is scanned first (line count for progress, UTF-8 check); standard input
    (``-``), a FIFO or a device is streamed, and its rows are checked as they arrive.
    """

    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self.where = "<stdin>" if path == STDIO else path
        regular = path != STDIO and stat.S_ISREG(os.stat(path).st_mode)
        self.total = scan_lines(path) - (fmt == "csv") if regular else None
        self._sig: SignatureSpec | None = None
        self._lines: Iterator[tuple[int, bytes]] = iter(())
        self._csv_columns: dict[str, tuple[list[int], bool]] = {}
        self._csv_width = 0

    def prepare(self, sig: SignatureSpec) -> None:
        """Checks the format against the signature; for CSV, reads and checks the header."""
        self._sig = sig
        if self.fmt == "text":
            spec = next(iter(sig.inputs.values())) if len(sig.inputs) == 1 else None
            if spec is None or not spec.is_string or spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{self.where}: plain text lines feed one string input, but signature "
                    f"'{sig.name}' has inputs {sig.inputs}; use JSON lines, CSV or .npz"
                )
        self._lines = self._numbered_lines()
        if self.fmt == "csv":
            header = next(csv.reader(text for _, text in self._decoded(self._lines)), None)
            if header is not None:
                self._csv_columns = self._csv_mapping(header)
                self._csv_width = len(header)

    def _numbered_lines(self) -> Iterator[tuple[int, bytes]]:
        if self.path == STDIO:
            yield from enumerate(sys.stdin.buffer, 1)
            return
        with open(self.path, "rb") as f:
            yield from enumerate(f, 1)

    def _decoded(self, lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, str]]:
        for n, line in lines:
            try:
                yield n, line.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidArgumentError(
                    f"{self.where}:{n}: not UTF-8 text ({e.reason})"
                ) from None

    def rows(self) -> Iterator[tuple[str, Any]]:
        if self.fmt == "text":
            for n, line in self._decoded(self._lines):
                yield f"{self.where}:{n}", line.rstrip("\r\n")
        elif self.fmt == "jsonl":
            for n, line in self._decoded(self._lines):
                if not line.strip():
                    continue
                yield f"{self.where}:{n}", self._parse_json(line, n)
        else:
            yield from self._csv_rows()

    def _parse_json(self, line: str, n: int) -> Any:
        try:
            return json.loads(line)
        except json.JSONDecodeError as e:
            raise InvalidArgumentError(f"{self.where}:{n}: invalid JSON: {e}") from None
        except RecursionError:
            raise InvalidArgumentError(f"{self.where}:{n}: JSON nested too deeply") from None

    def _csv_rows(self) -> Iterator[tuple[str, Any]]:
        numbered = self._decoded(self._lines)
        line_no = [1]

        def texts() -> Iterator[str]:
            for n, text in numbered:
                line_no[0] = n
                yield text

        assert self._sig is not None
        for cells in csv.reader(texts()):
            where = f"{self.where}:{line_no[0]}"
            if not cells:
                continue
            if len(cells) != self._csv_width:
                raise InvalidArgumentError(
                    f"{where}: expected {self._csv_width} fields (as in the header), got "
                    f"{len(cells)}"
                )
            row = {}
            for key, (columns, vector) in self._csv_columns.items():
                if self._sig.inputs[key].is_string:
                    values = [cells[c] for c in columns]
                else:
                    values = [_parse_cell(cells[c]) for c in columns]
                row[key] = values if vector else values[0]
            yield where, row

    def _csv_mapping(self, header: list[str]) -> dict[str, tuple[list[int], bool]]:
        assert self._sig is not None
        where = f"{self.where}:1"
        names = [name.strip() for name in header]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InvalidArgumentError(f"{where}: column {name!r} appears twice")
            seen.add(name)
        index = {name: i for i, name in enumerate(names)}
        mapping = {}
        for key, spec in self._sig.inputs.items():
            if spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{self.where}: input '{key}' is {spec.kind}; feed it from JSON lines"
                )
            if key in index:
                mapping[key] = ([index[key]], False)
                continue
            numbered = sorted(
                (int(m.group(2)), i)
                for name, i in index.items()
                if (m := _CSV_COLUMN.match(name)) and m.group(1) == key
            )
            if not numbered:
                raise InvalidArgumentError(
                    f"{where}: missing column '{key}' (the header has {header})"
                )
            positions = [p for p, _ in numbered]
            if positions != list(range(len(positions))):
                gap = next(i for i, p in enumerate(positions) if p != i)
                raise InvalidArgumentError(
                    f"{where}: columns {key}[0], {key}[1], ... must be numbered without gaps or "
                    f"repeats; {key}[{gap}] is missing (the header has "
                    f"{[header[i] for _, i in numbered]})"
                )
            width = spec.shape[1] if spec.shape is not None and len(spec.shape) == 2 else None
            if width is not None and width != len(positions):
                raise InvalidArgumentError(
                    f"{where}: input '{key}' takes {width} values per row, but the header has "
                    f"{len(positions)} columns {key}[...]"
                )
            mapping[key] = ([i for _, i in numbered], True)
        return mapping

    def batches(self, batch_size: int) -> Iterator[tuple[int, NativeFeeds]]:
        assert self._sig is not None, "prepare() first"
        if self.fmt == "text":  # every UTF-8 line is a valid string: no per-row conversion
            key = next(iter(self._sig.inputs))
            lines = self._decoded(self._lines)
            while batch := [text.rstrip("\r\n") for _, text in itertools.islice(lines, batch_size)]:
                yield len(batch), {key: [np.array(batch, dtype=object)]}
            return
        assembler = BatchAssembler(self._sig)
        for where, row in self.rows():
            assembler.add(row, where)
            if assembler.size >= batch_size:
                n = assembler.size
                yield n, assembler.take()
        if assembler.size:
            n = assembler.size
            yield n, assembler.take()


def _parse_cell(cell: str) -> Any:
    text = cell.strip()
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return cell


def open_input(path: str, fmt: str | None = None) -> ArrayInput | RowInput:
    """Opens an input file (``-``: standard input) and checks what can be checked without the
    module: that it exists, is readable and is well-formed. ``prepare(sig)`` checks the rest."""
    fmt = input_format(path, fmt)
    if path != STDIO:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InvalidArgumentError(f"Input file {path} does not exist") from None
        except OSError as e:
            raise InvalidArgumentError(f"Cannot read input {path}: {e.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise InvalidArgumentError(f"Input {path} is a directory; name a file")
        if not os.access(path, os.R_OK):
            raise InvalidArgumentError(f"Cannot read input {path}: permission denied")
    if fmt in ("npy", "npz"):
        return ArrayInput(path, fmt)
    if fmt in ("jsonl", "csv", "text"):
        return RowInput(path, fmt)
    raise InvalidArgumentError(f"Unknown input format {fmt!r}")


# ---- writers --------------------------------------------------------------------------------


def _row_count_check(name: str, value: Any, n: int) -> None:
    if isinstance(value, np.ndarray) and (value.ndim == 0 or value.shape[0] != n):
        raise InvalidArgumentError(
            f"Output '{name}' has shape {value.shape} for a batch of {n} rows, so it cannot be "
            "split into rows (some modules drop trailing rows, e.g. empty sentences; try "
            "--batch-size 1 to find them)"
        )


class NpzWriter:
    """Collects every batch's outputs and writes one .npz at the end.

    Outputs that no batch produced (an input with no rows) are written as zero-row arrays of the
    signature's dtype and shape.
    """

    def __init__(self, out: OutputFile, outputs: Mapping[str, ValueSpec]) -> None:
        self.out = out
        self.outputs = outputs
        self.parts: dict[str, list[Any]] = {}
        self.rows = 0

    def write(self, outputs: dict[str, Any], n: int) -> None:
        for name, value in outputs.items():
            _row_count_check(name, value, n)
            self.parts.setdefault(name, []).append((self.rows, value))
        self.rows += n

    def commit(self) -> None:
        arrays: dict[str, np.ndarray] = {}
        for name, parts in self.parts.items():
            first = parts[0][1]
            if isinstance(first, SparseValue):
                idx = [
                    np.concatenate([p.indices[:, :1] + off, p.indices[:, 1:]], 1)
                    for off, p in parts
                ]
                shape = np.max([p.dense_shape for _, p in parts], axis=0)
                shape[0] = self.rows
                arrays[f"{name}.indices"] = np.concatenate(idx)
                arrays[f"{name}.values"] = _storable(np.concatenate([p.values for _, p in parts]))
                arrays[f"{name}.dense_shape"] = shape
            elif isinstance(first, RaggedValue):
                arrays[f"{name}.flat_values"] = _storable(
                    np.concatenate([p.flat_values for _, p in parts])
                )
                for level in range(len(first.row_splits)):
                    merged, base = [np.zeros(1, first.row_splits[level].dtype)], 0
                    for _, p in parts:
                        s = p.row_splits[level]
                        merged.append(s[1:] + base)
                        base += s[-1]
                    arrays[f"{name}.row_splits_{level}"] = np.concatenate(merged)
            else:
                arrays[name] = _storable(np.concatenate([p for _, p in parts]))
        for name, spec in self.outputs.items():
            if name not in self.parts:
                arrays.update(_zero_rows(name, spec))
        np.savez(self.out.file, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
        self.out.commit()


def _zero_rows(name: str, spec: ValueSpec) -> dict[str, np.ndarray]:
    """The arrays ``NpzWriter`` writes for output ``spec`` when there are no rows."""
    dtype = np.dtype("S1") if spec.is_string else _storable_dtype(spec.dtype)
    inner = [d or 0 for d in (spec.shape or (None,))[1:]]
    if spec.kind == "sparse":
        return {
            f"{name}.indices": np.zeros((0, 1 + len(inner)), np.int64),
            f"{name}.values": np.zeros((0,), dtype),
            f"{name}.dense_shape": np.array([0, *inner], np.int64),
        }
    if spec.kind == "ragged":
        splits = spec.row_splits_dtype or np.dtype(np.int64)
        arrays = {f"{name}.flat_values": np.zeros((0, *inner[spec.ragged_rank :]), dtype)}
        for level in range(spec.ragged_rank):
            arrays[f"{name}.row_splits_{level}"] = np.zeros((1,), splits)
        return arrays
    return {name: np.zeros((0, *inner), dtype)}


def _storable_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype an output of ``dtype`` is stored as in an .npz.

    An .npy header cannot name the ml_dtypes types numpy lacks (bfloat16, float8, int4, ...):
    numpy would store raw bytes (``<V2``) or a descriptor it cannot read back (``<f1``). They are
    widened to the smallest numpy type that holds every value exactly: float32 for the floating
    types, int8 or uint8 for the integer ones.
    """
    if dtype.type.__module__ != "ml_dtypes":
        return dtype
    try:
        ml_dtypes.finfo(dtype)
        return np.dtype(np.float32)
    except ValueError:
        return np.dtype(np.int8 if ml_dtypes.iinfo(dtype).min < 0 else np.uint8)


def _storable(arr: np.ndarray) -> np.ndarray:
    """Arrays as an .npz stores them: object arrays of bytes become fixed-width bytes arrays (no
    pickling), the ml_dtypes types are widened exactly (``_storable_dtype``)."""
    if arr.dtype != object:
        return arr.astype(_storable_dtype(arr.dtype), copy=False)
    if all(isinstance(x, bytes) and not x.endswith(b"\0") for x in arr.flat):
        return arr.astype(bytes) if arr.size else np.zeros(arr.shape, "S1")
    raise InvalidArgumentError("Output strings end in NUL bytes; write JSON lines instead")


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [_jsonable(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class JsonLinesWriter:
    """Writes one JSON object per input row as batches arrive (flushed per batch when written in
    place, so a pipe's reader sees rows as they are computed)."""

    def __init__(self, out: OutputFile) -> None:
        self.out = out

    def write(self, outputs: dict[str, Any], n: int) -> None:
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        for name, value in outputs.items():
            if isinstance(value, SparseValue):
                order = np.argsort(value.indices[:, 0], kind="stable")
                row_ids = value.indices[order, 0]
                bounds = np.searchsorted(row_ids, np.arange(n + 1))
                for i in range(n):
                    sel = order[bounds[i] : bounds[i + 1]]
                    rows[i][name] = {
                        "indices": value.indices[sel, 1:].tolist(),
                        "values": _jsonable(value.values[sel]),
                    }
            elif isinstance(value, RaggedValue):
                for i, item in enumerate(value.to_list()):
                    rows[i][name] = _jsonable(item)
            else:
                _row_count_check(name, value, n)
                for i in range(n):
                    rows[i][name] = _jsonable(value[i])
        self.out.file.write("".join(json.dumps(r) + "\n" for r in rows))
        if not self.out.atomic:
            self.out.file.flush()

    def commit(self) -> None:
        self.out.commit()


def open_output(path: str, fmt: str) -> OutputFile:
    """Opens ``path`` (``-``: standard output) for writing ``fmt``, safely (see
    hubcore.output_file); refuses a directory or an unwritable place before any work starts."""
    if fmt == "npz" and path == STDIO and sys.stdout.isatty():
        raise InvalidArgumentError("Refusing to write a binary .npz to a terminal")
    return OutputFile(path, binary=fmt == "npz")


def output_writer(
    out: OutputFile, fmt: str, outputs: Mapping[str, ValueSpec]
) -> NpzWriter | JsonLinesWriter:
    """The writer of ``fmt`` for a signature's ``outputs`` into ``out``."""
    if fmt == "npz":
        return NpzWriter(out, outputs)
    return JsonLinesWriter(out)
