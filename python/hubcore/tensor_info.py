"""Parsed signature input/output descriptions (what ``get_input_info_dict`` returns)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hubcore import _core

__all__ = ["ParsedTensorInfo"]


def _shape(native_shape: _core.TensorShape) -> tf.TensorShape:
    if native_shape.unknown_rank:
        return tf.TensorShape(None)
    return tf.TensorShape([None if d < 0 else d for d in native_shape.dims])


class ParsedTensorInfo:
    """Describes one signature input or output, like tensorflow_hub's ParsedTensorInfo.

    ``dtype`` is a ``tf.DType``, ``get_shape()`` a ``tf.TensorShape``, ``type_spec`` a
    ``tf.TensorSpec``, ``tf.SparseTensorSpec`` or ``tf.RaggedTensorSpec``.
    """

    __slots__ = ("_dtype", "_native", "_shape", "_type_spec")

    def __init__(self, native: _core.TensorInfo) -> None:
        self._native = native
        self._shape = _shape(native.shape)
        self._dtype = tf.as_dtype(native.dtype) if native.dtype else None
        kind = native.kind
        if kind == _core.TensorKind.DENSE:
            self._type_spec: Any = tf.TensorSpec(self._shape, self._dtype)
        elif kind == _core.TensorKind.SPARSE:
            self._type_spec = tf.SparseTensorSpec(self._shape, self._dtype)
        elif kind == _core.TensorKind.RAGGED:
            self._type_spec = tf.RaggedTensorSpec(
                self._shape,
                self._dtype,
                ragged_rank=native.ragged_rank,
                row_splits_dtype=tf.as_dtype(native.row_splits_dtype),
            )
        else:
            self._type_spec = _decode_type_spec(native.type_spec_proto)
            self._dtype = getattr(self._type_spec, "dtype", None)
            shape = getattr(self._type_spec, "shape", None)
            self._shape = tf.TensorShape(shape) if shape is not None else tf.TensorShape(None)

    @property
    def dtype(self) -> tf.DType:
        return self._dtype

    def get_shape(self) -> tf.TensorShape:
        return self._shape

    @property
    def is_sparse(self) -> bool:
        return isinstance(self._type_spec, tf.SparseTensorSpec)

    @property
    def is_composite(self) -> bool:
        return not isinstance(self._type_spec, tf.TensorSpec)

    @property
    def is_supported_type(self) -> bool:
        return isinstance(
            self._type_spec, tf.TensorSpec | tf.SparseTensorSpec | tf.RaggedTensorSpec
        )

    @property
    def type_spec(self) -> Any:
        return self._type_spec

    @property
    def tensor_names(self) -> list[str]:
        """Module-relative tensor names (dense: 1; sparse: values, indices, dense_shape)."""
        return list(self._native.tensor_names)

    @property
    def kind(self) -> str:
        """'dense', 'sparse', 'ragged' or 'composite'."""
        return self._native.kind.name.lower()

    def __repr__(self) -> str:
        if self.is_composite and not self.is_sparse:
            return f"<hub.ParsedTensorInfo type_spec={self._type_spec}>"
        dtype = self._dtype.name if self._dtype is not None else None
        return (
            f"<hub.ParsedTensorInfo shape={self._shape} dtype={dtype} is_sparse={self.is_sparse}>"
        )


def _decode_type_spec(serialized: bytes) -> Any:
    """Decodes a TypeSpecProto of a composite other than Ragged (TF's own decoder)."""
    from tensorflow.core.protobuf import struct_pb2

    from hubcore import _tf_internal

    value = struct_pb2.StructuredValue()
    value.type_spec_value.ParseFromString(serialized)
    return _tf_internal.decode_type_spec(value)
