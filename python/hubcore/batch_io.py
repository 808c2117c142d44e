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
strings as bytes arrays) or JSON lines (one object per input row; bytes decoded as UTF-8).
Output files are written to a temporary file beside the target and renamed at the end, so a
failed run leaves no partial output.

Errors in the input name the file and line (``data.jsonl:17: input 'x' expects ...``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from hubcore._convert import RaggedValue, SignatureSpec, SparseValue, to_array
from hubcore.batching import BatchAssembler
from hubcore.errors import InvalidArgumentError

__all__ = [
    "ArrayInput",
    "AtomicFile",
    "JsonLinesWriter",
    "NativeFeeds",
    "NpzWriter",
    "RowInput",
    "count_lines",
    "input_format",
    "open_input",
    "open_output",
    "output_format",
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
        return fmt
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return "npz"
    if ext in _JSON_EXT:
        return "jsonl"
    raise InvalidArgumentError(
        f"Cannot tell the output format of {path}: use a .npz or .jsonl name (or --output-format)"
    )


def count_lines(path: str) -> int:
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


# ---- readers --------------------------------------------------------------------------------


class ArrayInput:
    """.npy / .npz inputs: whole arrays, validated once, sliced into batches."""

    def __init__(self, path: str, sig: SignatureSpec, fmt: str) -> None:
        self.path = path
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InvalidArgumentError(f"{path}: cannot read as {fmt}: {e}") from None
        if fmt == "npy":
            if len(sig.inputs) != 1:
                raise InvalidArgumentError(
                    f"{path}: a .npy file feeds one input, but signature '{sig.name}' has "
                    f"{sorted(sig.inputs)}; use .npz with one array per input"
                )
            arrays = {next(iter(sig.inputs)): loaded}
        else:
            arrays = {}
            for key in loaded.files:
                name = key.split(".")[-1] if key.startswith("input.") else key
                if key.startswith("input.") and not key.startswith(f"input.{sig.name}."):
                    continue
                arrays[name] = loaded[key]
            missing = sorted(set(sig.inputs) - set(arrays))
            if missing:
                raise InvalidArgumentError(
                    f"{path}: missing array for input {missing[0]!r} (the file has "
                    f"{sorted(loaded.files)})"
                )
        self.arrays: dict[str, np.ndarray] = {}
        rows = None
        for key, spec in sig.inputs.items():
            where = f"{path}: array '{key}'"
            if spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{where}: input '{key}' is {spec.kind}; feed it from JSON lines"
                )
            arr = to_array(arrays[key], spec, where)
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
        for start in range(0, self.total, batch_size):
            stop = min(start + batch_size, self.total)
            yield (
                stop - start,
                {k: [np.ascontiguousarray(a[start:stop])] for k, a in self.arrays.items()},
            )


class RowInput:
    """Line-oriented inputs (JSON lines, CSV, text): rows validated one by one."""

    def __init__(self, path: str, sig: SignatureSpec, fmt: str) -> None:
        self.path = path
        self.sig = sig
        self.fmt = fmt
        if fmt == "text":
            spec = next(iter(sig.inputs.values())) if len(sig.inputs) == 1 else None
            if spec is None or not spec.is_string or spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{path}: plain text lines feed one string input, but signature "
                    f"'{sig.name}' has inputs {sig.inputs}; use JSON lines, CSV or .npz"
                )
        self.total = count_lines(path) - (1 if fmt == "csv" else 0)

    def rows(self) -> Iterator[tuple[str, Any]]:
        with open(self.path, encoding="utf-8", newline="" if self.fmt == "csv" else None) as f:
            if self.fmt == "text":
                for n, line in enumerate(f, 1):
                    yield f"{self.path}:{n}", line.rstrip("\r\n")
            elif self.fmt == "jsonl":
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        yield f"{self.path}:{n}", json.loads(line)
                    except json.JSONDecodeError as e:
                        raise InvalidArgumentError(f"{self.path}:{n}: invalid JSON: {e}") from None
            else:
                yield from self._csv_rows(f)

    def _csv_rows(self, f: io.TextIOBase) -> Iterator[tuple[str, Any]]:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        mapping = self._csv_mapping(header)
        for cells in reader:
            where = f"{self.path}:{reader.line_num}"
            if not cells:
                continue
            if len(cells) != len(header):
                raise InvalidArgumentError(
                    f"{where}: expected {len(header)} fields (as in the header), got {len(cells)}"
                )
            row = {}
            for key, (columns, vector) in mapping.items():
                if self.sig.inputs[key].is_string:
                    values = [cells[c] for c in columns]
                else:
                    values = [_parse_cell(cells[c]) for c in columns]
                row[key] = values if vector else values[0]
            yield where, row

    def _csv_mapping(self, header: list[str]) -> dict[str, tuple[list[int], bool]]:
        index = {name.strip(): i for i, name in enumerate(header)}
        mapping = {}
        for key, spec in self.sig.inputs.items():
            if spec.kind != "dense":
                raise InvalidArgumentError(
                    f"{self.path}: input '{key}' is {spec.kind}; feed it from JSON lines"
                )
            if key in index:
                mapping[key] = ([index[key]], False)
                continue
            pattern = re.compile(re.escape(key) + r"\[(\d+)\]$")
            numbered = sorted(
                (int(m.group(1)), i) for name, i in index.items() if (m := pattern.match(name))
            )
            if numbered:
                mapping[key] = ([i for _, i in numbered], True)
            else:
                raise InvalidArgumentError(
                    f"{self.path}:1: missing column '{key}' (the header has {header})"
                )
        return mapping

    def batches(self, batch_size: int) -> Iterator[tuple[int, NativeFeeds]]:
        if self.fmt == "text":  # every line is a valid string: no per-row checks needed
            key = next(iter(self.sig.inputs))
            with open(self.path, encoding="utf-8") as f:
                while lines := [line.rstrip("\r\n") for line in itertools.islice(f, batch_size)]:
                    yield len(lines), {key: [np.array(lines, dtype=object)]}
            return
        assembler = BatchAssembler(self.sig)
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


def open_input(path: str, sig: SignatureSpec, fmt: str | None = None) -> ArrayInput | RowInput:
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"Input file {path} does not exist")
    fmt = input_format(path, fmt)
    if fmt in ("npy", "npz"):
        return ArrayInput(path, sig, fmt)
    if fmt in ("jsonl", "csv", "text"):
        return RowInput(path, sig, fmt)
    raise InvalidArgumentError(f"Unknown input format {fmt!r}")


# ---- writers --------------------------------------------------------------------------------


class AtomicFile:
    """A temporary file beside ``path``, renamed onto it by ``commit`` or removed by ``abort``."""

    def __init__(self, path: str, mode: str) -> None:
        self.path = os.path.abspath(path)
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        self.tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:8]}")
        self.file = open(self.tmp, mode)

    def commit(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        try:
            os.remove(self.tmp)
        except FileNotFoundError:
            pass


def _row_count_check(name: str, value: Any, n: int) -> None:
    if isinstance(value, np.ndarray) and (value.ndim == 0 or value.shape[0] != n):
        raise InvalidArgumentError(
            f"Output '{name}' has shape {value.shape} for a batch of {n} rows, so it cannot be "
            "split into rows (some modules drop trailing rows, e.g. empty sentences; try "
            "--batch-size 1 to find them)"
        )


class NpzWriter:
    """Collects every batch's outputs and writes one .npz at the end."""

    def __init__(self, path: str) -> None:
        self.out = AtomicFile(path, "wb")
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
        try:
            np.savez(self.out.file, **arrays)
        except BaseException:
            self.out.abort()
            raise
        self.out.commit()

    def abort(self) -> None:
        self.out.abort()


def _storable(arr: np.ndarray) -> np.ndarray:
    """Object arrays of bytes become fixed-width bytes arrays (no pickling in the .npz)."""
    if arr.dtype != object:
        return arr
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
    """Writes one JSON object per input row as batches arrive."""

    def __init__(self, path: str) -> None:
        self.out = AtomicFile(path, "w")

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

    def commit(self) -> None:
        self.out.commit()

    def abort(self) -> None:
        self.out.abort()


def open_output(path: str, fmt: str | None = None) -> NpzWriter | JsonLinesWriter:
    fmt = output_format(path, fmt)
    if fmt == "npz":
        return NpzWriter(path)
    if fmt == "jsonl":
        return JsonLinesWriter(path)
    raise InvalidArgumentError(f"Unknown output format {fmt!r}")
