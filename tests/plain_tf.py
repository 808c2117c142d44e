"""A module variant run with plain TensorFlow (no hubcore graph code): the reference that tests
and benchmarks compare hubcore against."""

from __future__ import annotations

from typing import Any

from hubcore.serving_export import _ImportedVariant

__all__ = ["ImportedVariant"]


class ImportedVariant(_ImportedVariant):
    """The variant as ``export-serving`` imports it, plus signature-tensor lookup."""

    def tensor(self, info: Any) -> Any:
        """The graph tensor(s) of a TensorInfo: a tensor, or a tuple of component tensors."""
        g = self.graph
        encoding = info.WhichOneof("encoding")
        if encoding == "name":
            return g.get_tensor_by_name(info.name)
        if encoding == "coo_sparse":
            c = info.coo_sparse
            return (
                g.get_tensor_by_name(c.values_tensor_name),
                g.get_tensor_by_name(c.indices_tensor_name),
                g.get_tensor_by_name(c.dense_shape_tensor_name),
            )
        return tuple(g.get_tensor_by_name(c.name) for c in info.composite_tensor.components)
