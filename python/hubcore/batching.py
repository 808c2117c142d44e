"""Assembling rows (one example each, without the batch dimension) into batched runtime inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hubcore._convert import SignatureSpec, ValueSpec, field, ragged_components, to_array
from hubcore.errors import InvalidArgumentError

__all__ = ["BatchAssembler"]

_PLAIN_ROW_TYPES = frozenset({str, bytes, list, tuple, float, int, bool, np.ndarray})


class BatchAssembler:
    """Collects rows (one example each, no batch dimension) into the runtime's batch inputs.

    Dense columns are converted a whole batch at a time (one numpy conversion); only when that
    fails are the rows checked one by one, so the error names the first bad row's ``where``
    (e.g. "data.jsonl:17"). Nothing of a batch runs before all its rows are valid.
    """

    def __init__(self, sig: SignatureSpec) -> None:
        self._sig = sig
        self._columns: dict[str, list[Any]] = {k: [] for k in sig.inputs}
        self._wheres: list[str] = []
        self._row_shape: dict[str, tuple[int, ...]] = {}
        self.size = 0
        # The common case, fast: one dense input fed a plain value per row.
        only = next(iter(sig.inputs.values())) if len(sig.inputs) == 1 else None
        self._single_dense = only.name if only is not None and only.kind == "dense" else None

    def add(self, row: Any, where: str) -> None:
        if self._single_dense is not None and type(row) in _PLAIN_ROW_TYPES:
            self._columns[self._single_dense].append(row)
            self._wheres.append(where)
            self.size += 1
            return
        sig = self._sig
        named = isinstance(row, Mapping) and row.keys() <= sig.inputs.keys()
        # A dict that does not name inputs is the value itself only for a single sparse or
        # ragged input ({"indices": ..., "values": ...}).
        value_dict = len(sig.inputs) == 1 and next(iter(sig.inputs.values())).kind != "dense"
        if not named:
            if isinstance(row, Mapping) and not value_dict:
                unknown = sorted(set(row) - set(sig.inputs))
                raise InvalidArgumentError(
                    f"{where}: unknown input {unknown[0]!r}; signature '{sig.name}' has inputs "
                    f"{sorted(sig.inputs)}"
                )
            if len(sig.inputs) != 1:
                raise InvalidArgumentError(
                    f"{where}: signature '{sig.name}' has inputs {sorted(sig.inputs)}; each row "
                    "must name them"
                )
            (key,) = sig.inputs
            row = {key: row}
        converted = {}
        for key, spec in sig.inputs.items():
            if key not in row:
                raise InvalidArgumentError(f"{where}: missing input '{key}'")
            value = row[key]
            if spec.kind != "dense":  # dense values are converted per batch, in take()
                value = self._convert(value, spec, f"{where}: input '{key}'")
            converted[key] = value
        for key, value in converted.items():
            self._columns[key].append(value)
        self._wheres.append(where)
        self.size += 1

    def _convert(self, value: Any, spec: ValueSpec, where: str) -> Any:
        if spec.kind == "dense":
            arr = to_array(value, spec, where)
            if spec.shape is not None:
                want = spec.shape[1:]
                ok = arr.ndim == len(want) and all(
                    w is None or w == d for w, d in zip(want, arr.shape, strict=True)
                )
                if not ok:
                    expect = "a scalar" if not want else f"shape {_fmt_shape(want)}"
                    raise InvalidArgumentError(
                        f"{where} expects {expect} per row, got shape {_fmt_shape(arr.shape)}"
                    )
            else:
                first = self._row_shape.setdefault(spec.name, arr.shape)
                if arr.shape != first:
                    raise InvalidArgumentError(
                        f"{where} has shape {_fmt_shape(arr.shape)} but earlier rows of the batch "
                        f"have {_fmt_shape(first)}"
                    )
            return arr
        if spec.kind == "sparse":
            if isinstance(value, Mapping) or (isinstance(value, tuple) and len(value) == 2):
                try:
                    indices = np.asarray(field(value, "indices", 0), dtype=np.int64)
                    values = to_array(field(value, "values", 1), spec, where).reshape(-1)
                except (KeyError, IndexError, TypeError, ValueError):
                    raise InvalidArgumentError(
                        f"{where} is sparse: each row is {{'indices': ..., 'values': ...}} "
                        "(without the batch dimension) or a dense list"
                    ) from None
                if indices.ndim == 1:
                    indices = indices[:, None]
                rank = len(spec.shape) - 1 if spec.shape is not None else indices.shape[1]
                if not len(indices):
                    indices = np.zeros((0, rank), np.int64)
                if indices.ndim != 2 or (len(indices) and indices.shape[1] != rank):
                    raise InvalidArgumentError(
                        f"{where}: sparse indices must be [nnz, {rank}] per row, got shape "
                        f"{indices.shape}"
                    )
            else:  # a dense row: keep its non-zero (non-empty) entries
                dense = to_array(value, spec, where)
                mask = dense != (b"" if spec.is_string else 0)
                indices = np.argwhere(mask).astype(np.int64)
                values = dense[mask]
            if len(indices) != len(values):
                raise InvalidArgumentError(
                    f"{where}: {len(indices)} indices for {len(values)} values"
                )
            return indices, values
        if spec.kind == "ragged":
            if isinstance(value, np.ndarray | list | tuple):
                return value
            raise InvalidArgumentError(f"{where} is ragged: each row must be a list")
        raise InvalidArgumentError(f"{where} has an unsupported composite type")

    def take(self) -> dict[str, list[np.ndarray]]:
        """The collected rows as native feeds; starts a new batch."""
        feeds: dict[str, list[np.ndarray]] = {}
        n = self.size
        for key, spec in self._sig.inputs.items():
            column = self._columns[key]
            if spec.kind == "dense":
                arr = self._dense_batch(column, spec)
                if arr is None:  # find the first bad row; _convert raises naming it
                    self._row_shape.clear()
                    rows = [
                        self._convert(v, spec, f"{w}: input '{key}'")
                        for v, w in zip(column, self._wheres, strict=True)
                    ]
                    arr = np.stack(rows)
                feeds[key] = [np.ascontiguousarray(arr)]
            elif spec.kind == "sparse":
                feeds[key] = _sparse_batch(column, spec, n)
            else:
                feeds[key] = ragged_components(column, spec, f"input '{key}'")
            self._columns[key] = []
        self._row_shape.clear()
        self._wheres = []
        self.size = 0
        return feeds

    @staticmethod
    def _dense_batch(column: list, spec: ValueSpec) -> np.ndarray | None:
        """The column as one array of the input's dtype and shape, or None if any row is off."""
        if not column:
            return np.zeros((0, *(d or 0 for d in (spec.shape or (0,))[1:])), spec.dtype)
        if spec.is_string and not all(isinstance(v, bytes | str) for v in column):
            return None
        try:
            arr = to_array(column, spec, "")
        except InvalidArgumentError:
            return None
        if arr.dtype == object and arr.ndim and not spec.is_string:
            return None
        if spec.shape is not None and (
            arr.ndim != len(spec.shape)
            or any(
                w is not None and w != d for w, d in zip(spec.shape[1:], arr.shape[1:], strict=True)
            )
        ):
            return None
        return arr


def _sparse_batch(column: list, spec: ValueSpec, n: int) -> list[np.ndarray]:
    rank = len(spec.shape) if spec.shape is not None else None
    parts_i, parts_v = [], []
    for row, (indices, values) in enumerate(column):
        parts_i.append(np.concatenate([np.full((len(indices), 1), row, np.int64), indices], axis=1))
        parts_v.append(values)
    width = rank if rank is not None else 1 + max((p.shape[1] - 1 for p in parts_i), default=0)
    indices = np.concatenate(parts_i) if parts_i else np.zeros((0, width), np.int64)
    values = np.concatenate(parts_v) if parts_v else np.zeros((0,), spec.dtype)
    dense_shape = [n]
    for d in range(1, width):
        known = spec.shape[d] if spec.shape is not None else None
        top = int(indices[:, d].max()) + 1 if len(indices) else 0
        dense_shape.append(known if known is not None else top)
    return [
        np.ascontiguousarray(values, dtype=spec.dtype),
        np.ascontiguousarray(indices),
        np.asarray(dense_shape, np.int64),
    ]


def _fmt_shape(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + (",)" if len(shape) == 1 else ")")
    )
