"""Conversions between Python values and the C++ runtime's numpy component arrays.

Shared by :class:`hubcore.Runner`, the batch assembler (:mod:`hubcore.batching`), the batch
readers/writers (:mod:`hubcore.batch_io`) and :mod:`hubcore.beam`. What each input kind accepts
is documented in :mod:`hubcore.runner`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from hubcore.errors import InvalidArgumentError, UnsupportedFormatError

__all__ = [
    "RaggedValue",
    "SignatureSpec",
    "SparseValue",
    "ValueSpec",
    "check_integer_range",
    "convert_outputs",
    "default_output_key",
    "field",
    "input_components",
    "numpy_dtype",
    "ragged_components",
    "ragged_from_rows",
    "signature_spec",
    "to_array",
]

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
    # The types numpy lacks, from ml_dtypes (a TensorFlow dependency, light to import).
    14: np.dtype(ml_dtypes.bfloat16),
    24: np.dtype(ml_dtypes.float8_e5m2),
    25: np.dtype(ml_dtypes.float8_e4m3fn),
    26: np.dtype(ml_dtypes.float8_e4m3fnuz),
    27: np.dtype(ml_dtypes.float8_e4m3b11fnuz),
    28: np.dtype(ml_dtypes.float8_e5m2fnuz),
    29: np.dtype(ml_dtypes.int4),
    30: np.dtype(ml_dtypes.uint4),
    31: np.dtype(ml_dtypes.int2),
    32: np.dtype(ml_dtypes.uint2),
    33: np.dtype(ml_dtypes.float4_e2m1fn),
}


def numpy_dtype(tf_dtype: int) -> np.dtype:
    """The numpy dtype for a TF_DataType value."""
    try:
        return _NUMPY_DTYPES[tf_dtype]
    except KeyError:
        raise UnsupportedFormatError(
            f"TensorFlow dtype {tf_dtype} has no numpy equivalent"
        ) from None


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
    try:
        dtype = numpy_dtype(info.dtype) if info.dtype else np.dtype(object)
        splits = numpy_dtype(info.row_splits_dtype) if kind == "ragged" else None
    except InvalidArgumentError as e:
        # The module's signature, not the caller, has the dtype (e.g. a resource output).
        raise UnsupportedFormatError(f"Signature tensor '{info.key}': {e}") from None
    return ValueSpec(info.key, kind, dtype, shape, info.ragged_rank, splits)


def signature_spec(info: Any) -> SignatureSpec:
    return SignatureSpec(
        info.name,
        {t.key: _value_spec(t) for t in info.inputs},
        {t.key: _value_spec(t) for t in info.outputs},
    )


# ---- input conversion -----------------------------------------------------------------------


def contiguous(arr: np.ndarray) -> np.ndarray:
    """``arr`` in C order, 0-d arrays included (np.ascontiguousarray makes those 1-d)."""
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def to_array(value: Any, spec: ValueSpec, where: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a C-contiguous array of ``spec``'s dtype (or ``dtype``), or a clear error."""
    want = spec.dtype if dtype is None else dtype
    if want == np.dtype(object):
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "SO":
                return contiguous(value)
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
        # numpy does not know that its numbers cast to the ml_dtypes types (kind "V").
        castable = np.can_cast(arr.dtype, want, casting="same_kind") or (
            want.kind == "V" and arr.dtype.kind in "biuf"
        )
        if arr.dtype.kind in "OSU" or not castable:
            got = "strings" if arr.dtype.kind in "OSU" else arr.dtype.name
            raise InvalidArgumentError(f"{where} expects {want.name}, got {got}")
        if arr.dtype.kind in "iu" and want.kind in "iu" and arr.size:
            check_integer_range(arr, want, where)
        arr = arr.astype(want)
    return contiguous(arr)


def check_integer_range(arr: np.ndarray, want: np.dtype, where: str) -> None:
    """An integer cast must not wrap (uint64 ids above 2**63 would turn negative in int64)."""
    info = np.iinfo(want)
    low, high = arr.min(), arr.max()
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise InvalidArgumentError(f"{where}: value {bad} is out of range for {want.name}")


def _short(e: Exception) -> str:
    text = str(e).split("\n")[0]
    if "inhomogeneous" in text or "sequence" in text:
        return "rows have different lengths (ragged nested lists)"
    return text


def field(value: Any, name: str, index: int) -> Any:
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
                field(value, "indices", 0),
                field(value, "values", 1),
                field(value, "dense_shape", 2),
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
        return ragged_components(value, spec, where)
    raise InvalidArgumentError(f"{where} has an unsupported composite type; it cannot be fed")


def ragged_components(value: Any, spec: ValueSpec, where: str) -> list[np.ndarray]:
    splits_dtype = spec.row_splits_dtype or np.dtype(np.int64)
    if isinstance(value, tuple | Mapping) or hasattr(value, "flat_values"):
        try:
            flat = field(value, "flat_values", 0)
            if hasattr(value, "nested_row_splits"):
                splits = list(value.nested_row_splits)
            else:
                splits = field(value, "row_splits", 1)
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


# ---- output conversion ------------------------------------------------------------------------


def default_output_key(sig: SignatureSpec) -> str:
    """The output a call without ``as_dict`` returns: "default", or the only output."""
    if "default" in sig.outputs:
        return "default"
    if len(sig.outputs) == 1:
        (key,) = sig.outputs
        return key
    raise InvalidArgumentError(
        f"Signature '{sig.name}' has no 'default' output; pass as_dict=True to get all of "
        f"{sorted(sig.outputs)}"
    )


def convert_outputs(raw: dict[str, list[np.ndarray]], sig: SignatureSpec) -> dict[str, Any]:
    """The runtime's {name: [component arrays]} as arrays, SparseValue and RaggedValue."""
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
