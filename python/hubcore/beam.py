"""``hubcore.beam``: hubcore modules in Apache Beam pipelines, the way Beam runs models.

    import apache_beam as beam
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    import hubcore.beam

    handler = hubcore.beam.ModelHandler("/models/text", max_batch_size=256)
    with beam.Pipeline() as p:
        sentences = p | beam.Create(["a sentence", "another one"])
        results = sentences | RunInference(handler)       # PredictionResult(example, inference)
        pairs = p | "Pairs" >> beam.Create([("id-1", "a sentence")])
        keyed = pairs | "Keyed" >> RunInference(KeyedModelHandler(handler))  # (key, result)
        vectors = sentences | "Vectors" >> hubcore.beam.RunModule("/models/text")  # bare results

:class:`ModelHandler` is an ``apache_beam.ml.inference.base.ModelHandler``: ``RunInference`` batches
the elements (``batch_elements_kwargs``), loads the module once per worker process (a
:class:`hubcore.Runner` shared by the process's threads; with ``large_model=True`` or
``model_copies`` one per machine, shared across processes) and calls ``run_inference`` per batch.

Elements are :meth:`hubcore.Runner.predict_batches` rows: one example without the batch dimension,
a single value for a one-input signature or a dict by input name. Each element gives one inference:
the signature's "default" output (or its only one) for that row as a numpy value, one named output
with ``output_keys="name"``, or a dict with ``output_keys=[...]`` / ``as_dict=True``. Sparse outputs
come back per row as :class:`hubcore.runner.SparseValue` (without the batch dimension), ragged ones
as the row's array (ragged_rank 1) or a :class:`hubcore.runner.RaggedValue`.

With ``inputs_are_batches=True`` each element is already a whole batch (what
:class:`hubcore.Runner` takes: an array with the batch dimension, or a dict of them) and its
inference is the batch's outputs, with no per-row assembling or splitting.

This module needs ``apache-beam`` (``pip install 'hubcore[beam]'``) and never imports TensorFlow's
Python API.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

try:
    import apache_beam as beam
    from apache_beam.ml.inference import base
except ImportError as e:  # pragma: no cover - exercised only without apache-beam
    raise ImportError(
        "hubcore.beam needs Apache Beam: pip install 'hubcore[beam]' (apache-beam>=2.50)"
    ) from e

from hubcore._convert import RaggedValue, SignatureSpec, SparseValue, default_output_key
from hubcore.batching import BatchAssembler
from hubcore.errors import Error, InvalidArgumentError
from hubcore.module_spec import normalize_tags
from hubcore.resolver import normalize_handle
from hubcore.runner import Runner

__all__ = ["ModelHandler", "RunModule", "UnsplittableOutputError", "split_rows"]

_REPR_LIMIT = 60


def describe_row(row: Any, key: Any = None, keyed: bool = False) -> str:
    """How errors name a row: by its key when keyed, else by a short repr of the row."""
    if keyed:
        text = repr(key)
        prefix = "row with key "
    else:
        text = repr(row)
        prefix = "row "
    text = re.sub(r"\s*\n\s*", " ", text)  # numpy reprs span lines
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return prefix + text


class ModelHandler(base.ModelHandler[Any, Any, "LoadedSignature"]):
    """Runs a module signature in ``RunInference`` (see the module doc).

    Args:
      handle: the module: a directory or archive every worker can read (a shared file system),
        or a URL that each worker resolves into its own cache (see :func:`hubcore.resolve`).
      signature: the signature to run ("default" when None; see :class:`hubcore.Runner`).
      tags: the graph variant's tags; None or empty selects the untagged variant.
      output_keys: None for the default output; an output name for that output alone; a list of
        names for a dict of those outputs per element.
      as_dict: a dict of every output per element (when ``output_keys`` is None).
      inputs_are_batches: each element is a whole batch, and its inference the batch's outputs.
      runner_options: keyword arguments for :class:`hubcore.Runner` (``intra_op_threads``,
        ``inter_op_threads``, ``custom_op_libraries``).
      min_batch_size, max_batch_size, max_batch_duration_secs, large_model, model_copies, and
        the other keyword arguments: ``apache_beam.ml.inference.base.ModelHandler``'s. With
        ``large_model=True`` (or ``model_copies``) Beam loads the module once per machine and
        the worker processes send their batches to it.
    """

    def __init__(
        self,
        handle: str | os.PathLike[str],
        signature: str | None = None,
        tags: Iterable[str] | None = None,
        output_keys: str | Sequence[str] | None = None,
        *,
        as_dict: bool = False,
        inputs_are_batches: bool = False,
        runner_options: Mapping[str, Any] | None = None,
        **model_handler_options: Any,
    ) -> None:
        if inputs_are_batches:
            # An element is a batch already: BatchElements must not group several.
            model_handler_options.setdefault("max_batch_size", 1)
        super().__init__(**model_handler_options)
        self._handle = normalize_handle(handle)  # a relative path means the launcher's cwd
        self._signature = signature
        self._tags = sorted(normalize_tags(tags))
        self._output_keys = [output_keys] if isinstance(output_keys, str) else output_keys
        self._single_output = isinstance(output_keys, str)
        self._as_dict = as_dict
        self._inputs_are_batches = inputs_are_batches
        self._runner_options = dict(runner_options or {})
        self._keyed_rows = False

    @property
    def handle(self) -> str:
        return self._handle

    @property
    def signature(self) -> str | None:
        return self._signature

    def load_model(self) -> LoadedSignature:
        runner = Runner(self._handle, self._tags, self._signature, **self._runner_options)
        return LoadedSignature(
            runner,
            None if self._output_keys is None else list(self._output_keys),
            as_dict=self._as_dict and self._output_keys is None,
            single_output=self._single_output,
        )

    def run_inference(
        self,
        batch: Sequence[Any],
        model: LoadedSignature,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[Any]:
        self.validate_inference_args(inference_args)
        examples = list(batch)
        if self._inputs_are_batches or not self._keyed_rows:
            if self._inputs_are_batches:
                inferences = model.predict_batches(examples)
            else:
                inferences = model.predict(examples)
            return [
                base.PredictionResult(x, y, self._handle)
                for x, y in zip(examples, inferences, strict=True)
            ]
        for element in examples:
            if not (isinstance(element, tuple | list) and len(element) == 2):
                raise InvalidArgumentError(
                    f"RunModule(keyed=True) takes (key, row) pairs, got {describe_row(element)}"
                )
        keys = [element[0] for element in examples]
        rows = [element[1] for element in examples]
        inferences = model.predict(rows, keys)
        return [
            (k, base.PredictionResult(x, y, self._handle))
            for k, x, y in zip(keys, rows, inferences, strict=True)
        ]

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        if inference_args:
            raise InvalidArgumentError(
                f"hubcore.beam.ModelHandler takes no inference_args, got {sorted(inference_args)}"
            )

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        if all(isinstance(x, np.ndarray) for x in batch):
            return sum(x.nbytes for x in batch)
        return super().get_num_bytes(batch)

    def get_metrics_namespace(self) -> str:
        return "hubcore"

    def __repr__(self) -> str:
        return f"hubcore.beam.ModelHandler({self._handle!r}, signature={self._signature!r})"


class LoadedSignature:
    """The model a :class:`ModelHandler` loads: a Runner and the outputs to produce.

    Its methods take and return plain values, so Beam can also call them through a proxy to
    another process (``large_model``).
    """

    def __init__(
        self,
        runner: Runner,
        outputs: list[str] | None,
        *,
        as_dict: bool,
        single_output: bool = False,
    ) -> None:
        self._runner = runner
        self._sig: SignatureSpec = runner.signatures[runner.resolve_signature()]
        if outputs is not None:
            unknown = [k for k in outputs if k not in self._sig.outputs]
            if unknown:
                raise InvalidArgumentError(
                    f"Signature '{self._sig.name}' has no output {unknown[0]!r}. Its outputs: "
                    f"{sorted(self._sig.outputs)}"
                )
            self._keys = list(outputs)
            self._as_dict = not single_output
        elif as_dict:
            self._keys = list(self._sig.outputs)
            self._as_dict = True
        else:
            self._keys = [default_output_key(self._sig)]
            self._as_dict = False

    @property
    def runner(self) -> Runner:
        return self._runner

    def predict(self, rows: Sequence[Any], keys: Sequence[Any] | None = None) -> list[Any]:
        """One inference per row; errors name the row (by its key when ``keys`` are given)."""
        keyed = keys is not None
        return self._run(rows, keys if keys is not None else [None] * len(rows), keyed)

    def predict_batches(self, batches: Sequence[Any]) -> list[Any]:
        """The outputs of each whole batch (values as :class:`hubcore.Runner` takes them)."""
        results = []
        for batch in batches:
            outputs = self._runner(batch, self._sig.name, outputs=self._keys)
            results.append(outputs if self._as_dict else outputs[self._keys[0]])
        return results

    def _describe(self, rows: Sequence[Any], keys: Sequence[Any], keyed: bool) -> list[str]:
        return [describe_row(r, k, keyed) for r, k in zip(rows, keys, strict=True)]

    def _assemble(
        self, rows: Sequence[Any], keys: Sequence[Any], keyed: bool
    ) -> dict[str, list[np.ndarray]]:
        try:
            return self._assemble_as(rows, [""] * len(rows))
        except InvalidArgumentError:
            pass  # again, naming rows: they are described (a repr, maybe of big arrays) only now
        return self._assemble_as(rows, self._describe(rows, keys, keyed))

    def _assemble_as(self, rows: Sequence[Any], wheres: Sequence[str]) -> dict[str, Any]:
        assembler = BatchAssembler(self._sig)
        for row, where in zip(rows, wheres, strict=True):
            assembler.add(row, where)
        return assembler.take()

    def _run(self, rows: Sequence[Any], keys: Sequence[Any], keyed: bool) -> list[Any]:
        feeds = self._assemble(rows, keys, keyed)
        try:
            # Runner.__call__ takes values, not assembled feeds; run only the outputs needed.
            outputs = self._runner.run_native(self._sig.name, feeds, self._keys)
        except Error as e:  # e.g. an id out of range: TensorFlow names no row
            (first,) = self._describe(rows[:1], keys[:1], keyed)
            if len(rows) == 1:
                raise type(e)(f"{first}: {e}") from e
            self._run_one_by_one(rows, keys, keyed)  # raises naming the row that fails alone
            raise type(e)(
                f"a batch of {len(rows)} rows (from {first}) failed, but each row alone runs: {e}"
            ) from e
        try:
            per_key = {key: split_rows(key, value, len(rows)) for key, value in outputs.items()}
        except UnsplittableOutputError as e:
            # Some modules drop rows (e.g. trailing empty sentences): name the row that does.
            (first,) = self._describe(rows[:1], keys[:1], keyed)
            if len(rows) == 1:
                raise UnsplittableOutputError(f"{first}: {e}") from None
            self._run_one_by_one(rows, keys, keyed)
            raise UnsplittableOutputError(f"a batch from {first}: {e}") from None
        if self._as_dict:
            return [{k: v[i] for k, v in per_key.items()} for i in range(len(rows))]
        (only,) = per_key.values()
        return only

    def _run_one_by_one(self, rows: Sequence[Any], keys: Sequence[Any], keyed: bool) -> None:
        for row, key in zip(rows, keys, strict=True):
            self._run([row], [key], keyed)


class RunModule(beam.PTransform):
    """Runs a module signature on every row of a PCollection: ``RunInference`` with a
    :class:`ModelHandler`, emitting the bare inferences (or ``(key, inference)`` pairs).

    Args:
      path: the module: a path every worker can read (a shared file system), or a URL that each
        worker resolves into its own cache (see :func:`hubcore.resolve`).
      signature: the signature to run ("default" when None; see :class:`hubcore.Runner`).
      tags: the graph variant's tags; None or empty selects the untagged variant.
      batch_size: the largest batch (``BatchElements``' ``max_batch_size``).
      min_batch_size: the smallest batch ``BatchElements`` starts its size search with.
      as_dict: emit a dict of every output per row instead of the single default output.
      outputs: names of the outputs to compute, emitted as a dict per row (implies as_dict).
      keyed: elements are ``(key, row)`` pairs and results ``(key, result)``; errors name keys.
      runner_options: keyword arguments for :class:`hubcore.Runner` (``intra_op_threads``,
        ``inter_op_threads``, ``custom_op_libraries``).
      batch_options: more keyword arguments for :class:`ModelHandler` (Beam's: e.g.
        ``max_batch_duration_secs``, ``large_model``, ``model_copies``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signature: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        batch_size: int = 256,
        min_batch_size: int = 1,
        as_dict: bool = False,
        outputs: Sequence[str] | None = None,
        keyed: bool = False,
        runner_options: dict[str, Any] | None = None,
        batch_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or not 1 <= min_batch_size <= batch_size:
            raise InvalidArgumentError(
                f"RunModule needs 1 <= min_batch_size <= batch_size, got {min_batch_size} and "
                f"{batch_size}"
            )
        if isinstance(outputs, str):
            outputs = [outputs]
        self._handler = ModelHandler(
            path,
            signature,
            tags,
            list(outputs) if outputs is not None else None,
            as_dict=as_dict,
            runner_options=runner_options,
            min_batch_size=min_batch_size,
            max_batch_size=batch_size,
            **(batch_options or {}),
        )
        self._handler._keyed_rows = keyed  # (key, row) pairs, and errors that name the key
        self._keyed = keyed

    def default_label(self) -> str:
        # Distinct default labels let a pipeline use several modules without naming each step.
        name = os.path.basename(self._handler.handle.rstrip("/"))
        sig = self._handler.signature
        return f"RunModule({name}{'' if sig is None else ':' + sig})"

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        results = pcoll | "RunInference" >> base.RunInference(self._handler)
        if self._keyed:
            return results | "Inferences" >> beam.MapTuple(lambda k, r: (k, r.inference))
        return results | "Inferences" >> beam.Map(lambda r: r.inference)


def split_rows(name: str, value: Any, n: int) -> list[Any]:
    """Splits a batch output (dense array, SparseValue or RaggedValue) into its ``n`` rows."""
    if isinstance(value, SparseValue):
        if len(value.dense_shape) < 1 or int(value.dense_shape[0]) != n:
            _unsplittable(name, tuple(value.dense_shape), n)
        order = np.argsort(value.indices[:, 0], kind="stable")
        indices, values = value.indices[order], value.values[order]
        bounds = np.searchsorted(indices[:, 0], np.arange(n + 1))
        shape = np.ascontiguousarray(value.dense_shape[1:])
        return [
            SparseValue(np.ascontiguousarray(indices[a:b, 1:]), values[a:b].copy(), shape.copy())
            for a, b in itertools.pairwise(bounds)
        ]
    if isinstance(value, RaggedValue):
        outer = value.row_splits[0]
        if len(outer) != n + 1:
            _unsplittable(name, (len(outer) - 1, "..."), n)
        return [_ragged_row(value, i) for i in range(n)]
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.shape[0] != n:
        _unsplittable(name, arr.shape, n)
    return [arr[i].copy() if arr.ndim > 1 else arr[i] for i in range(n)]


def _ragged_row(value: RaggedValue, i: int) -> Any:
    start, stop = int(value.row_splits[0][i]), int(value.row_splits[0][i + 1])
    inner = []
    for splits in value.row_splits[1:]:
        part = splits[start : stop + 1]
        inner.append(part - part[0])
        start, stop = int(part[0]), int(part[-1])
    flat = value.flat_values[start:stop].copy()
    return RaggedValue(flat, tuple(inner)) if inner else flat


class UnsplittableOutputError(InvalidArgumentError):
    """An output does not have one row per input row, so it cannot be split into results."""


def _unsplittable(name: str, shape: tuple, n: int) -> None:
    raise UnsplittableOutputError(
        f"output '{name}' has shape {shape} for a batch of {n} rows, so it cannot be split into "
        "one result per row (pass outputs=[...] to leave it out)"
    )
