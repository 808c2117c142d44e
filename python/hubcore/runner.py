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
import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hubcore import _core
from hubcore._convert import (
    RaggedValue,
    SignatureSpec,
    SparseValue,
    ValueSpec,
    convert_outputs,
    default_output_key,
    input_components,
    signature_spec,
)
from hubcore.batching import BatchAssembler
from hubcore.errors import InvalidArgumentError, SignatureNotFoundError
from hubcore.module_spec import format_tags, load_module_spec, normalize_tags
from hubcore.resolver import normalize_handle

# SparseValue, RaggedValue, ValueSpec and SignatureSpec are documented here (the values a Runner
# takes and returns); they live in _convert, which the batch readers and Beam share.
__all__ = ["RaggedValue", "Runner", "SignatureSpec", "SparseValue", "ValueSpec"]


def _load_runner(path: str, tags: list[str], signature: str | None, options: dict) -> Runner:
    return Runner(path, tags, signature, **options)


class Runner:
    """Runs a module's signatures on numpy values through the C++ runtime (see the module doc).

    Args:
      path: the module: a directory, archive or URL (see :func:`hubcore.resolve`).
      tags: the graph variant's tags; None or empty selects the untagged variant.
      signature: the default signature for calls. When None: "default", else the only
        signature; a module with several signatures and no "default" loads, and its calls must
        name one.
      intra_op_threads, inter_op_threads: TensorFlow session thread pools (None: TF's choice).
      custom_op_libraries: shared libraries with custom ops, loaded before the graph.
      safe_mode: refuse (:class:`hubcore.UnsafeModuleError`) a module whose graph uses an op
        outside the allowlist of pure compute ops (docs/security.md). Use it for untrusted modules.
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
        safe_mode: bool = False,
    ) -> None:
        _check_count("intra_op_threads", intra_op_threads, minimum=0)
        _check_count("inter_op_threads", inter_op_threads, minimum=0)
        self._path = normalize_handle(path)  # URL or absolute path: pickles cross directories
        self._tags = normalize_tags(tags)
        self._options: dict[str, Any] = {
            "intra_op_threads": intra_op_threads,
            "inter_op_threads": inter_op_threads,
            "custom_op_libraries": list(custom_op_libraries or []),
            "safe_mode": bool(safe_mode),
        }
        spec = load_module_spec(self._path)
        spec.variant(self._tags)  # VariantNotFoundError listing the module's tag sets
        self._native = _core.LoadedModule.load_spec(
            spec.native,
            set(self._tags),
            intra_op_threads or 0,
            inter_op_threads or 0,
            self._options["custom_op_libraries"],
            self._options["safe_mode"],
        )
        self._signatures = {s.name: signature_spec(s) for s in self._native.signatures}
        self._signature = signature
        self._default_signature = (
            self._implicit_signature() if signature is None else self.resolve_signature(signature)
        )

    # ---- description ------------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self._path

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def signature(self) -> str | None:
        """The signature calls use when they name none: the one given at construction, else
        "default", else the only signature; None for a module with several signatures and no
        "default" (calls must then pass ``signature=``, as with ``hub.Module``)."""
        return self._default_signature

    @property
    def signatures(self) -> dict[str, SignatureSpec]:
        """Every signature of the loaded variant, with its inputs and outputs."""
        return dict(self._signatures)

    def _implicit_signature(self) -> str | None:
        if "default" in self._signatures or not self._signatures:
            return "default"
        if len(self._signatures) == 1:
            (name,) = self._signatures
            return name
        return None

    def resolve_signature(self, name: str | None = None) -> str:
        """The signature a call with ``signature=name`` runs; raises SignatureNotFoundError,
        naming the module's signatures, for an unknown name or when none applies."""
        known = ", ".join(repr(s) for s in self._signatures) or "none"
        if name is None:
            name = self._default_signature
            if name is None:
                raise SignatureNotFoundError(
                    f"{self._path} has no 'default' signature in meta graph "
                    f"{format_tags(self._tags)}; pass signature= one of: {known}"
                )
        if name not in self._signatures:
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
        name = self.resolve_signature(signature)
        sig = self._signatures[name]
        keys, single = self._output_selection(sig, as_dict, outputs)
        result = convert_outputs(self._native.run(name, self.native_inputs(inputs, sig), keys), sig)
        return result[single] if single else result

    @staticmethod
    def _output_selection(
        sig: SignatureSpec, as_dict: bool, outputs: Sequence[str] | None
    ) -> tuple[list[str], str | None]:
        """(output keys to compute, [] for all; the key to return alone, or None for a dict)."""
        if outputs is not None:
            return list(outputs), None
        if as_dict:
            return [], None
        key = default_output_key(sig)
        return [key], key

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

    def run_native(
        self,
        signature: str,
        feeds: dict[str, list[np.ndarray]],
        outputs: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Runs already converted inputs (see native_inputs).

        Returns the outputs named in ``outputs``, or every output when it is empty.
        """
        return convert_outputs(
            self._native.run(signature, feeds, list(outputs)), self._signatures[signature]
        )

    # ---- batches ----------------------------------------------------------------------------

    def predict_batches(
        self,
        rows: Iterable[Any],
        batch_size: int = 64,
        *,
        signature: str | None = None,
        as_dict: bool = True,
        outputs: Sequence[str] | None = None,
        max_in_flight: int = 2,
        scalars: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """Streams ``rows`` through the signature ``batch_size`` rows at a time.

        Each row is a dict by input name (or a single value for a one-input signature) holding
        one example without the batch dimension. An input of shape ``()`` (a scalar such as a
        ``scale``) has no batch dimension, so it is per call, not per row: pass it in
        ``scalars`` ({name: value}) and leave it out of the rows; every batch gets that value.
        Yields one result per batch, in order. Up to ``max_in_flight`` batches run concurrently
        (the GIL is released while TensorFlow runs, so reading and converting overlaps with
        compute).

        ``as_dict`` and ``outputs`` mean what they mean for :meth:`__call__`, but ``as_dict``
        defaults to True here: batch jobs usually keep every output, so each result is the dict
        of all outputs (or of those in ``outputs``) for the batch. With ``as_dict=False`` each
        result is the batch's "default" output (or only output), exactly what ``__call__``
        returns for the same rows.

        Raises InvalidArgumentError for a ``batch_size`` or ``max_in_flight`` below 1, or for
        missing or unknown ``scalars``.
        """
        _check_count("batch_size", batch_size, minimum=1)
        _check_count("max_in_flight", max_in_flight, minimum=1)
        name = self.resolve_signature(signature)
        sig = self._signatures[name]
        keys, single = self._output_selection(sig, as_dict, outputs)
        scalar_feeds = self._scalar_feeds(sig, scalars or {})
        assembler = BatchAssembler(
            dataclasses.replace(
                sig, inputs={k: v for k, v in sig.inputs.items() if k not in scalar_feeds}
            )
        )

        def batches() -> Iterator[tuple[None, dict[str, list[np.ndarray]]]]:
            for i, row in enumerate(rows):
                assembler.add(row, f"row {i}")
                if assembler.size >= batch_size:
                    yield None, {**assembler.take(), **scalar_feeds}
            if assembler.size:
                yield None, {**assembler.take(), **scalar_feeds}

        # A generator inside, so that bad arguments raise here, not at the first next().
        results = self.stream_batches(name, batches(), max_in_flight, outputs=keys)
        return (result[single] if single else result for _, result in results)

    @staticmethod
    def _scalar_feeds(
        sig: SignatureSpec, scalars: Mapping[str, Any]
    ) -> dict[str, list[np.ndarray]]:
        """Native feeds for the shape-() inputs, which predict_batches takes per call."""
        wanted = {k for k, spec in sig.inputs.items() if spec.kind == "dense" and spec.shape == ()}
        unknown = sorted(set(scalars) - wanted)
        if unknown:
            raise InvalidArgumentError(
                f"scalars: signature '{sig.name}' has no scalar (shape ()) input {unknown[0]!r}; "
                f"its scalar inputs: {sorted(wanted)}"
            )
        missing = sorted(wanted - set(scalars))
        if missing:
            raise InvalidArgumentError(
                f"Signature '{sig.name}' has scalar (shape ()) inputs {missing}, which are per "
                "call, not per row: pass them as predict_batches(..., scalars={name: value})"
            )
        return {
            key: input_components(value, sig.inputs[key], f"Scalar input '{key}' of '{sig.name}'")
            for key, value in scalars.items()
        }

    def stream_batches(
        self,
        signature: str,
        batches: Iterable[tuple[Any, dict[str, list[np.ndarray]]]],
        max_in_flight: int = 2,
        *,
        outputs: Sequence[str] = (),
    ) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Runs (tag, native feeds) pairs with up to ``max_in_flight`` in flight; yields (tag,
        outputs) in order. ``outputs`` names the outputs to compute (empty: all of them)."""
        _check_count("max_in_flight", max_in_flight, minimum=1)
        if max_in_flight == 1:
            for tag, feeds in batches:
                yield tag, self.run_native(signature, feeds, outputs)
            return
        pending: collections.deque = collections.deque()
        with concurrent.futures.ThreadPoolExecutor(max_in_flight) as pool:
            try:
                for tag, feeds in batches:
                    pending.append((tag, pool.submit(self.run_native, signature, feeds, outputs)))
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


def _check_count(name: str, value: int | None, minimum: int) -> None:
    """Raises InvalidArgumentError unless ``value`` is None or an integer >= ``minimum``."""
    if value is None and name.endswith("threads"):
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}")
