"""``hubcore.beam``: batch inference with a :class:`hubcore.Runner` in Apache Beam pipelines.

    import apache_beam as beam
    import hubcore.beam

    with beam.Pipeline() as p:
        vectors = (
            p
            | beam.Create(["a sentence", "another one"])
            | hubcore.beam.RunModule("/models/text", batch_size=256)
        )
        # (key, row) pairs give (key, result) pairs
        pairs = p | beam.Create([("id-1", {"x": [1.0, 2.0, 3.0, 4.0]})])
        keyed = pairs | hubcore.beam.RunModule("/models/tiny", keyed=True, as_dict=True)

Rows are the same as :meth:`hubcore.Runner.predict_batches` rows: one example without the batch
dimension, a single value for a one-input signature or a dict by input name. Each input row gives
exactly one output row: by default the signature's "default" output (or its only one) as a numpy
value, or a dict of outputs with ``as_dict=True`` / ``outputs=[...]``. Sparse outputs come back
per row as :class:`hubcore.runner.SparseValue` (without the batch dimension), ragged outputs as
the row's array (ragged_rank 1) or a :class:`hubcore.runner.RaggedValue`.

Rows are grouped with ``beam.BatchElements``; each worker process loads the module once (one
Runner shared by that process's threads through ``apache_beam.utils.shared``) and TensorFlow runs
with the GIL released, so Beam's worker threads overlap their batches. This module needs
``apache-beam`` (``pip install 'hubcore[beam]'``) and never imports TensorFlow's Python API.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

try:
    import apache_beam as beam
    from apache_beam.utils import shared
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

__all__ = ["RunModule", "UnsplittableOutputError", "split_rows"]

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


class RunModule(beam.PTransform):
    """Runs a module signature on every row of a PCollection, in batches.

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
      share_runner: share one Runner between the threads of a worker process (the default); if
        False every DoFn instance (one per worker thread) loads its own.
      runner_options: keyword arguments for :class:`hubcore.Runner` (``intra_op_threads``,
        ``inter_op_threads``, ``custom_op_libraries``).
      batch_options: more keyword arguments for ``beam.BatchElements`` (e.g.
        ``max_batch_duration_secs``).
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
        share_runner: bool = True,
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
        self._batch_options = {
            "min_batch_size": min_batch_size,
            "max_batch_size": batch_size,
            **(batch_options or {}),
        }
        self._dofn = _RunBatchDoFn(
            path=normalize_handle(path),  # a relative path means the launching machine's cwd
            tags=sorted(normalize_tags(tags)),
            signature=signature,
            as_dict=as_dict,
            outputs=list(outputs) if outputs is not None else None,
            keyed=keyed,
            shared_handle=shared.Shared() if share_runner else None,
            runner_options=dict(runner_options or {}),
        )

    def default_label(self) -> str:
        # Distinct default labels let a pipeline use several modules without naming each step.
        name = os.path.basename(self._dofn._path.rstrip("/"))
        sig = self._dofn._signature
        return f"RunModule({name}{'' if sig is None else ':' + sig})"

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return (
            pcoll
            | "Batch" >> beam.BatchElements(**self._batch_options)
            | "Run" >> beam.ParDo(self._dofn)
        )


class _RunBatchDoFn(beam.DoFn):
    """Runs one batch of rows (a list from BatchElements) and emits one result per row."""

    def __init__(
        self,
        *,
        path: str,
        tags: list[str],
        signature: str | None,
        as_dict: bool,
        outputs: list[str] | None,
        keyed: bool,
        shared_handle: shared.Shared | None,
        runner_options: dict[str, Any],
    ) -> None:
        self._path = path
        self._tags = tags
        self._signature = signature
        self._as_dict = as_dict or outputs is not None
        self._outputs = outputs
        self._keyed = keyed
        self._shared_handle = shared_handle
        self._runner_options = runner_options
        self._runner: Runner | None = None

    def _load(self) -> Runner:
        return Runner(self._path, self._tags, self._signature, **self._runner_options)

    def setup(self) -> None:
        if self._shared_handle is None:
            self._runner = self._load()
        else:
            # The tag makes a process reload instead of reusing a Runner of other settings.
            tag = repr(
                (self._path, self._tags, self._signature, sorted(self._runner_options.items()))
            )
            self._runner = self._shared_handle.acquire(self._load, tag=tag)
        runner = self._runner
        self._sig: SignatureSpec = runner.signatures[runner.resolve_signature(self._signature)]
        if self._outputs is not None:
            unknown = [k for k in self._outputs if k not in self._sig.outputs]
            if unknown:
                raise InvalidArgumentError(
                    f"Signature '{self._sig.name}' has no output {unknown[0]!r}. Its outputs: "
                    f"{sorted(self._sig.outputs)}"
                )
            self._keys = list(self._outputs)
        elif self._as_dict:
            self._keys = list(self._sig.outputs)
        else:
            self._keys = [default_output_key(self._sig)]

    def teardown(self) -> None:
        self._runner = None  # a shared Runner lives on while other DoFn instances hold it

    def process(self, batch: list[Any]) -> Iterator[Any]:
        if self._keyed:
            for element in batch:
                if not (isinstance(element, tuple | list) and len(element) == 2):
                    raise InvalidArgumentError(
                        f"RunModule(keyed=True) takes (key, row) pairs, got {describe_row(element)}"
                    )
            keys = [element[0] for element in batch]
            rows = [element[1] for element in batch]
            yield from zip(keys, self._run(rows, keys), strict=True)
        else:
            yield from self._run(batch, [None] * len(batch))

    def _describe(self, rows: Sequence[Any], keys: Sequence[Any]) -> list[str]:
        return [describe_row(r, k, self._keyed) for r, k in zip(rows, keys, strict=True)]

    def _assemble(self, rows: Sequence[Any], keys: Sequence[Any]) -> dict[str, list[np.ndarray]]:
        try:
            return self._assemble_as(rows, [""] * len(rows))
        except InvalidArgumentError:
            pass  # again, naming rows: they are described (a repr, maybe of big arrays) only now
        return self._assemble_as(rows, self._describe(rows, keys))

    def _assemble_as(self, rows: Sequence[Any], wheres: Sequence[str]) -> dict[str, Any]:
        assembler = BatchAssembler(self._sig)
        for row, where in zip(rows, wheres, strict=True):
            assembler.add(row, where)
        return assembler.take()

    def _run(self, rows: Sequence[Any], keys: Sequence[Any]) -> list[Any]:
        assert self._runner is not None, "setup() was not called"
        feeds = self._assemble(rows, keys)
        try:
            # Runner.__call__ takes values, not assembled feeds; run only the outputs needed.
            outputs = self._runner.run_native(self._sig.name, feeds, self._keys)
        except Error as e:  # e.g. an id out of range: TensorFlow names no row
            (first,) = self._describe(rows[:1], keys[:1])
            if len(rows) == 1:
                raise type(e)(f"{first}: {e}") from e
            self._run_one_by_one(rows, keys)  # raises naming the row that fails alone
            raise type(e)(
                f"a batch of {len(rows)} rows (from {first}) failed, but each row alone runs: {e}"
            ) from e
        try:
            per_key = {key: split_rows(key, value, len(rows)) for key, value in outputs.items()}
        except UnsplittableOutputError as e:
            # Some modules drop rows (e.g. trailing empty sentences): name the row that does.
            (first,) = self._describe(rows[:1], keys[:1])
            if len(rows) == 1:
                raise UnsplittableOutputError(f"{first}: {e}") from None
            self._run_one_by_one(rows, keys)
            raise UnsplittableOutputError(f"a batch from {first}: {e}") from None
        if self._as_dict:
            return [{k: v[i] for k, v in per_key.items()} for i in range(len(rows))]
        (only,) = per_key.values()
        return only

    def _run_one_by_one(self, rows: Sequence[Any], keys: Sequence[Any]) -> None:
        for row, key in zip(rows, keys, strict=True):
            self._run([row], [key])


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
