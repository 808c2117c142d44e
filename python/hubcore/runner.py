"""``hubcore.Runner``: run module signatures on numpy values, without graph building or TF Python.

A Runner loads one graph variant of a module into a C++ TensorFlow session once (variables
restored, tables initialized) and then runs signatures on numpy values. It never imports
``tensorflow``; TensorFlow executes with the GIL released, so several threads can share a Runner.

    runner = hubcore.Runner("/models/text")
    vectors = runner(["a sentence", "another one"])          # the "default" output
    outputs = runner({"x": batch}, signature="encode", as_dict=True)

Accepted input values, per signature input kind:

- dense: a numpy array, a (nested) list, a scalar, ``bytes`` or ``str``. Numbers are cast to the
  input's dtype when numpy's "same_kind" rule allows it (float64 -> float32, int -> float); other
  mismatches raise :class:`hubcore.InvalidArgumentError`. Strings may be ``bytes`` or ``str``
  (encoded as UTF-8).
- sparse: an ``(indices, values, dense_shape)`` tuple, a dict with those keys, or any object with
  those attributes (``tf.SparseTensor``, ``tf.compat.v1.SparseTensorValue``, :class:`SparseValue`).
- ragged: a nested list of rows (``[[1.0, 2.0], [3.0]]``), a ``(flat_values, row_splits)`` tuple
  (``row_splits`` may be a list of arrays, outermost first, for several ragged dimensions), a dict
  with those keys, or any object with ``flat_values`` and ``nested_row_splits`` attributes
  (``tf.RaggedTensor``, :class:`RaggedValue`).

Outputs are numpy arrays (strings as object arrays of ``bytes``), :class:`SparseValue` for sparse
outputs and :class:`RaggedValue` for ragged ones.

A Runner pickles as its path and options and loads the module again when unpickled, which is how
to hand it to worker processes (``spawn``/``forkserver``); a ``fork``-ed child must not use a
TensorFlow session created by its parent.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from hubcore import _core
from hubcore.errors import InvalidArgumentError, SignatureNotFoundError
from hubcore.module_spec import format_tags, load_module_spec, normalize_tags

# TF_DataType -> numpy dtype (strings are object arrays of bytes).
_NUMPY_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    7: np.dtype(object),
    8: np.dtype(np.complex64),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    17: np.dtype(np.uint16),
    18: np.dtype(np.complex128),
    19: np.dtype(np.float16),
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}


def numpy_dtype(tf_dtype: int) -> np.dtype:
    """The numpy dtype for a TF_DataType value."""
    try:
        return _NUMPY_DTYPES[tf_dtype]
    except KeyError:
        raise InvalidArgumentError(f"TensorFlow dtype {tf_dtype} has no numpy equivalent") from None


class SparseValue(NamedTuple):
    """A sparse value: int64 ``indices`` [nnz, rank], ``values`` [nnz], int64 ``dense_shape``."""

    indices: np.ndarray
    values: np.ndarray
    dense_shape: np.ndarray

    def to_dense(self, default: Any = 0) -> np.ndarray:
        out = np.full(tuple(self.dense_shape), default, dtype=self.values.dtype)
        if len(self.values):
            out[tuple(self.indices.T)] = self.values
        return out


class RaggedValue(NamedTuple):
    """A ragged signature value: ``flat_values`` and ``row_splits`` (outermost first)."""

    flat_values: np.ndarray
    row_splits: tuple[np.ndarray, ...]

    @property
    def nested_row_splits(self) -> tuple[np.ndarray, ...]:
        return self.row_splits

    def to_list(self) -> list:
        values: Any = self.flat_values.tolist()
        for splits in reversed(self.row_splits):
            values = [values[a:b] for a, b in itertools.pairwise(splits)]
        return values


@dataclass(frozen=True)
class ValueSpec:
    """One signature input or output: kind ('dense', 'sparse', 'ragged'), dtype and static shape.

    ``shape`` is None for an unknown rank; unknown sizes are None. ``dtype`` is the numpy dtype of
    the (values of the) tensor; strings are ``object``.
    """

    name: str
    kind: str
    dtype: np.dtype
    shape: tuple[int | None, ...] | None
    ragged_rank: int = 0
    row_splits_dtype: np.dtype | None = None

    @property
    def is_string(self) -> bool:
        return self.dtype == np.dtype(object)

    def __repr__(self) -> str:
        dtype = "string" if self.is_string else self.dtype.name
        shape = "<unknown>" if self.shape is None else str(tuple(self.shape)).replace(",)", ")")
        return f"<{self.kind} {dtype} {shape}>"


@dataclass(frozen=True)
class SignatureSpec:
    """A signature's inputs and outputs, by name."""

    name: str
    inputs: dict[str, ValueSpec]
    outputs: dict[str, ValueSpec]

    def __repr__(self) -> str:
        return f"<signature {self.name!r} inputs={self.inputs} outputs={self.outputs}>"


def _value_spec(info: Any) -> ValueSpec:
    kind = info.kind.name.lower()
    shape = (
        None if info.shape.unknown_rank else tuple(None if d < 0 else d for d in info.shape.dims)
    )
    dtype = numpy_dtype(info.dtype) if info.dtype else np.dtype(object)
    splits = numpy_dtype(info.row_splits_dtype) if kind == "ragged" else None
    return ValueSpec(info.key, kind, dtype, shape, info.ragged_rank, splits)


def signature_spec(info: Any) -> SignatureSpec:
    return SignatureSpec(
        info.name,
        {t.key: _value_spec(t) for t in info.inputs},
        {t.key: _value_spec(t) for t in info.outputs},
    )


# ---- input conversion -----------------------------------------------------------------------


def to_array(value: Any, spec: ValueSpec, where: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a C-contiguous array of ``spec``'s dtype (or ``dtype``), or a clear error."""
    want = spec.dtype if dtype is None else dtype
    if want == np.dtype(object):
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "SO":
                return np.ascontiguousarray(value)
            if value.dtype.kind == "U":
                return np.char.encode(value, "utf-8")
            raise InvalidArgumentError(f"{where} expects strings, got a {value.dtype} array")
        try:
            arr = np.asarray(value, dtype=object)
        except ValueError as e:  # ragged nesting
            raise InvalidArgumentError(f"{where}: {_short(e)}") from None
        for item in arr.flat:
            if not isinstance(item, bytes | str):
                raise InvalidArgumentError(f"{where} expects strings, got {type(item).__name__}")
        return arr
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except ValueError as e:  # inhomogeneous nested lists
        raise InvalidArgumentError(f"{where}: {_short(e)}") from None
    if arr.dtype != want:
        if arr.dtype.kind in "OSU" or not np.can_cast(arr.dtype, want, casting="same_kind"):
            got = "strings" if arr.dtype.kind in "OSU" else arr.dtype.name
            raise InvalidArgumentError(f"{where} expects {want.name}, got {got}")
        arr = arr.astype(want)
    return np.ascontiguousarray(arr)


def _short(e: Exception) -> str:
    text = str(e).split("\n")[0]
    if "inhomogeneous" in text or "sequence" in text:
        return "rows have different lengths (ragged nested lists)"
    return text


def _field(value: Any, name: str, index: int) -> Any:
    if isinstance(value, Mapping):
        return value[name]
    if isinstance(value, tuple | list):
        return value[index]
    return getattr(value, name)


def input_components(value: Any, spec: ValueSpec, where: str) -> list[np.ndarray]:
    """The component arrays the C++ runtime takes for one input value (see the module doc)."""
    if spec.kind == "dense":
        return [to_array(value, spec, where)]
    if spec.kind == "sparse":
        if isinstance(value, tuple | list) and len(value) != 3:
            raise InvalidArgumentError(f"{where} is sparse: pass (indices, values, dense_shape)")
        try:
            indices, values, dense_shape = (
                _field(value, "indices", 0),
                _field(value, "values", 1),
                _field(value, "dense_shape", 2),
            )
        except (KeyError, AttributeError, IndexError, TypeError):
            raise InvalidArgumentError(
                f"{where} is sparse: pass (indices, values, dense_shape), a dict with those keys "
                "or a SparseTensor-like object"
            ) from None
        int64 = np.dtype(np.int64)
        return [
            to_array(values, spec, f"{where} (values)"),
            to_array(indices, spec, f"{where} (indices)", int64),
            to_array(dense_shape, spec, f"{where} (dense_shape)", int64),
        ]
    if spec.kind == "ragged":
        return _ragged_components(value, spec, where)
    raise InvalidArgumentError(f"{where} has an unsupported composite type; it cannot be fed")


def _ragged_components(value: Any, spec: ValueSpec, where: str) -> list[np.ndarray]:
    splits_dtype = spec.row_splits_dtype or np.dtype(np.int64)
    if isinstance(value, tuple | Mapping) or hasattr(value, "flat_values"):
        try:
            flat = _field(value, "flat_values", 0)
            if hasattr(value, "nested_row_splits"):
                splits = list(value.nested_row_splits)
            else:
                splits = _field(value, "row_splits", 1)
        except (KeyError, AttributeError, IndexError, TypeError):
            raise InvalidArgumentError(
                f"{where} is ragged: pass nested lists, (flat_values, row_splits) or a "
                "RaggedTensor-like object"
            ) from None
        if isinstance(splits, np.ndarray) and splits.ndim == 1:
            splits = [splits]
        elif not (isinstance(splits, Sequence) and splits and not np.isscalar(splits[0])):
            splits = [splits]
        if len(splits) != spec.ragged_rank:
            raise InvalidArgumentError(
                f"{where} has ragged_rank {spec.ragged_rank}, got {len(splits)} row_splits"
            )
        return [to_array(flat, spec, f"{where} (flat_values)")] + [
            to_array(s, spec, f"{where} (row_splits)", splits_dtype) for s in splits
        ]
    flat, splits = ragged_from_rows(value, spec.ragged_rank, where)
    return [to_array(flat, spec, f"{where} (flat_values)")] + [
        np.asarray(s, dtype=splits_dtype) for s in splits
    ]


def ragged_from_rows(rows: Any, ragged_rank: int, where: str) -> tuple[Any, list[np.ndarray]]:
    """Nested lists -> (flat values as a list, row_splits outermost first)."""
    current = list(rows)
    splits = []
    for level in range(ragged_rank):
        lengths = []
        nxt: list = []
        for item in current:
            if np.isscalar(item) or isinstance(item, bytes | str) or item is None:
                raise InvalidArgumentError(
                    f"{where} is ragged with ragged_rank {ragged_rank}: expected a list at "
                    f"nesting level {level + 1}, got {type(item).__name__}"
                )
            lengths.append(len(item))
            nxt.extend(item)
        splits.append(np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))
        current = nxt
    return current, splits


# ---- the Runner -----------------------------------------------------------------------------


def _load_runner(path: str, tags: list[str], signature: str | None, options: dict) -> Runner:
    return Runner(path, tags, signature, **options)


class Runner:
    """Runs a module's signatures on numpy values through the C++ runtime (see the module doc).

    Args:
      path: the module directory.
      tags: the graph variant's tags; None or empty selects the untagged variant.
      signature: the default signature for calls ("default" when None).
      intra_op_threads, inter_op_threads: TensorFlow session thread pools (None: TF's choice).
      custom_op_libraries: shared libraries with custom ops, loaded before the graph.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        tags: Iterable[str] | None = None,
        signature: str | None = None,
        *,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        custom_op_libraries: Sequence[str] | None = None,
    ) -> None:
        self._path = os.path.abspath(os.fspath(path))  # absolute: pickles cross directories
        self._tags = normalize_tags(tags)
        self._options = {
            "intra_op_threads": intra_op_threads,
            "inter_op_threads": inter_op_threads,
            "custom_op_libraries": list(custom_op_libraries or []),
        }
        spec = load_module_spec(self._path)
        spec.variant(self._tags)  # VariantNotFoundError listing the module's tag sets
        self._native = _core.LoadedModule.load_spec(
            spec.native,
            set(self._tags),
            intra_op_threads or 0,
            inter_op_threads or 0,
            self._options["custom_op_libraries"],
        )
        self._signatures = {s.name: signature_spec(s) for s in self._native.signatures}
        self._signature = signature
        self._default_signature = self._resolve_signature(signature)

    # ---- description ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def signature(self) -> str:
        """The signature calls use when they name none."""
        return self._default_signature

    @property
    def signatures(self) -> dict[str, SignatureSpec]:
        """Every signature of the loaded variant, with its inputs and outputs."""
        return dict(self._signatures)

    def _resolve_signature(self, name: str | None) -> str:
        if name is None:
            if "default" in self._signatures or not self._signatures:
                name = "default"
            elif len(self._signatures) == 1:
                (name,) = self._signatures
            else:
                name = "default"
        if name not in self._signatures:
            known = ", ".join(repr(s) for s in self._signatures) or "none"
            raise SignatureNotFoundError(
                f"Signature '{name}' is missing from meta graph {format_tags(self._tags)} of "
                f"{self._path}. Signatures: {known}"
            )
        return name

    # ---- running ----------------------------------------------------------------------------

    def __call__(
        self,
        inputs: Any,
        signature: str | None = None,
        *,
        as_dict: bool = False,
        outputs: Sequence[str] | None = None,
    ) -> Any:
        """Runs a signature.

        Args:
          inputs: a dict by input name, or a single value for a signature with one input.
          signature: defaults to the Runner's signature.
          as_dict: return every output (or those in ``outputs``) as a dict; otherwise return
            the "default" output (or the only one).
          outputs: output names to compute (implies a dict result).
        """
        name = self._default_signature if signature is None else self._resolve_signature(signature)
        sig = self._signatures[name]
        feeds = self.native_inputs(inputs, sig)
        if outputs is not None or as_dict:
            keys = list(outputs) if outputs is not None else []
            return self._convert_outputs(self._native.run(name, feeds, keys), sig)
        key = self._single_output(sig)
        return self._convert_outputs(self._native.run(name, feeds, [key]), sig)[key]

    def _single_output(self, sig: SignatureSpec) -> str:
        if "default" in sig.outputs:
            return "default"
        if len(sig.outputs) == 1:
            (key,) = sig.outputs
            return key
        raise InvalidArgumentError(
            f"Signature '{sig.name}' has no 'default' output; pass as_dict=True to get all of "
            f"{sorted(sig.outputs)}"
        )

    def native_inputs(self, inputs: Any, sig: SignatureSpec) -> dict[str, list[np.ndarray]]:
        """Converts call inputs to the C++ runtime's {name: [component arrays]}."""
        named = isinstance(inputs, Mapping) and (
            inputs.keys() <= sig.inputs.keys()
            or len(sig.inputs) != 1
            or next(iter(sig.inputs.values())).kind == "dense"
        )
        if not named:  # a single value (for a sparse or ragged input, possibly a dict)
            if len(sig.inputs) != 1:
                raise InvalidArgumentError(
                    f"Signature '{sig.name}' has inputs {sorted(sig.inputs)}; pass a dict"
                )
            (key,) = sig.inputs
            inputs = {key: inputs}
        feeds = {}
        for key, value in inputs.items():
            spec = sig.inputs.get(key)
            if spec is None:
                raise InvalidArgumentError(
                    f"Signature '{sig.name}' has no input '{key}'. Its inputs: {sorted(sig.inputs)}"
                )
            feeds[key] = input_components(value, spec, f"Input '{key}' of signature '{sig.name}'")
        missing = sorted(set(sig.inputs) - set(feeds))
        if missing:
            raise InvalidArgumentError(f"Signature '{sig.name}' is missing inputs {missing}")
        return feeds

    @staticmethod
    def _convert_outputs(raw: dict[str, list[np.ndarray]], sig: SignatureSpec) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, parts in raw.items():
            kind = sig.outputs[key].kind
            if kind == "dense":
                out[key] = parts[0]
            elif kind == "sparse":
                out[key] = SparseValue(parts[1], parts[0], parts[2])
            elif kind == "ragged":
                out[key] = RaggedValue(parts[0], tuple(parts[1:]))
            else:
                out[key] = tuple(parts)
        return out

    def run_native(
        self,
        signature: str,
        feeds: dict[str, list[np.ndarray]],
        outputs: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Runs already converted inputs (see native_inputs).

        Returns the outputs named in ``outputs``, or every output when it is empty.
        """
        return self._convert_outputs(
            self._native.run(signature, feeds, list(outputs)), self._signatures[signature]
        )

    # ---- batches ----------------------------------------------------------------------------

    def predict_batches(
        self,
        rows: Iterable[Any],
        batch_size: int = 64,
        *,
        signature: str | None = None,
        max_in_flight: int = 2,
    ) -> Iterator[dict[str, Any]]:
        """Streams ``rows`` through the signature ``batch_size`` rows at a time.

        Each row is a dict by input name (or a single value for a one-input signature) holding
        one example without the batch dimension. Yields, per batch and in order, the dict of all
        outputs for that batch's rows. Up to ``max_in_flight`` batches run concurrently (the GIL
        is released while TensorFlow runs, so reading and converting overlaps with compute).
        """
        name = self._default_signature if signature is None else self._resolve_signature(signature)
        sig = self._signatures[name]
        assembler = BatchAssembler(sig)

        def batches() -> Iterator[dict[str, list[np.ndarray]]]:
            for i, row in enumerate(rows):
                assembler.add(row, f"row {i}")
                if assembler.size >= batch_size:
                    yield assembler.take()
            if assembler.size:
                yield assembler.take()

        for _, result in self.stream_batches(name, ((None, b) for b in batches()), max_in_flight):
            yield result

    def stream_batches(
        self,
        signature: str,
        batches: Iterable[tuple[Any, dict[str, list[np.ndarray]]]],
        max_in_flight: int = 2,
    ) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Runs (tag, native feeds) pairs with up to ``max_in_flight`` in flight; yields (tag,
        outputs) in order."""
        if max_in_flight <= 1:
            for tag, feeds in batches:
                yield tag, self.run_native(signature, feeds)
            return
        pending: collections.deque = collections.deque()
        with concurrent.futures.ThreadPoolExecutor(max_in_flight) as pool:
            try:
                for tag, feeds in batches:
                    pending.append((tag, pool.submit(self.run_native, signature, feeds)))
                    if len(pending) >= max_in_flight:
                        tag0, future = pending.popleft()
                        yield tag0, future.result()
                while pending:
                    tag0, future = pending.popleft()
                    yield tag0, future.result()
            finally:
                for _, future in pending:
                    future.cancel()

    # ---- pickling ---------------------------------------------------------------------------

    def __reduce__(self) -> tuple:
        return (_load_runner, (self._path, sorted(self._tags), self._signature, self._options))

    def __repr__(self) -> str:
        return (
            f"<hubcore.Runner path={self._path!r} tags={format_tags(self._tags)} "
            f"signature={self._default_signature!r}>"
        )


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
                    indices = np.asarray(_field(value, "indices", 0), dtype=np.int64)
                    values = to_array(_field(value, "values", 1), spec, where).reshape(-1)
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
                feeds[key] = _ragged_components(column, spec, f"input '{key}'")
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
