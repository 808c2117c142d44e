"""Writing module directories: ``Module.export`` and ``ModuleSpec.export`` end here.

The on-disk format is what tensorflow_hub 0.15 wrote (docs/format.md); the C++ core
(``module_writer.cc``) rewrites the asset nodes, names and copies the asset files and writes
``saved_model.pb`` and ``tfhub_module.pb``. This module orchestrates and adds the checkpoint.

Exports are atomic (:func:`atomic_directory`, shared with ``hubcore export-serving``): everything
is written into ``<path>.tmp-<host>.<pid>-<hex>`` next to the target, which is renamed to ``path``
only when complete; on any exception the temporary directory is removed. A killed process leaves
at most that temporary directory behind, never a partial directory at ``path``, and the next
export beside it removes it once its owner process is gone.

Unlike tensorflow_hub (which overwrote ``saved_model.pb`` and the variables and only then failed
with ``AlreadyExistsError`` on ``tfhub_module.pb``), hubcore refuses up front to export into an
existing path that is not an empty directory: :class:`hubcore.AlreadyExistsError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from hubcore import _core

__all__ = ["SaveVariables", "atomic_directory", "export_module", "export_with_values"]

SaveVariables = Callable[[str], Any]


def _variables_prefix(directory: str) -> str:
    return os.path.join(directory, "variables", "variables")


def _has_variables(spec: Any, tags: Iterable[str] | None) -> bool:
    if tags is None:
        return any(v.variables for v in spec.native.variants)
    return bool(spec.variant(tags).variables)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yields a new empty directory beside ``path`` to fill; it becomes ``path`` when the block
    completes, and is removed when the block raises.

    Raises AlreadyExistsError if ``path`` exists and is not an empty directory (checked before
    the block runs, and again at the rename). Stale temporary directories of earlier exports to
    ``path`` whose process is gone are removed first.
    """
    path = os.fspath(path)
    temp_dir = _core.create_export_temp_dir(path)
    try:
        yield temp_dir
        _core.commit_export_dir(temp_dir, path)
    except BaseException:
        _core.remove_export_dir(temp_dir)
        raise


def export_module(
    spec: Any,
    path: str | os.PathLike[str],
    save_variables: SaveVariables | None,
    tags: Iterable[str] | None = None,
) -> None:
    """Writes ``spec`` as a TF1 Hub module directory at ``path``, atomically.

    ``save_variables(prefix)`` must write a TF checkpoint (V2) at ``prefix``
    (``<tmp>/variables/variables``), e.g. ``saver.save(sess, prefix, write_meta_graph=False,
    write_state=False)``. It is called only when the module has variables (those of the variant
    ``tags`` if given, else of any variant); ``None`` writes no checkpoint.

    Raises AlreadyExistsError if ``path`` exists and is not an empty directory.
    """
    with atomic_directory(path) as temp_dir:
        _core.write_module_files(spec.native, temp_dir)
        if save_variables is not None and _has_variables(spec, tags):
            save_variables(_variables_prefix(temp_dir))
            # A Saver with write_state=True leaves a `checkpoint` state file; modules have none.
            state_file = os.path.join(temp_dir, "variables", "checkpoint")
            if os.path.exists(state_file):
                os.remove(state_file)


def export_with_values(
    spec: Any,
    path: str | os.PathLike[str],
    values: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
) -> None:
    """Exports ``spec`` with its variables' values, overridden by ``values``.

    ``values`` maps module variable names (``variable_map`` keys; a partitioned variable takes its
    full value) to arrays. The variant ``tags`` (default: the empty set) is imported into a fresh
    graph with plain TensorFlow, initialized (from the spec's checkpoint if it has one, else by
    the variables' initializers) and saved; no ``hubcore.Module`` is involved.
    """
    import numpy as np
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    variant = spec.variant(tags)
    values = dict(values or {})
    if not variant.variables:
        if values:
            raise ValueError(f"The module has no variables, but got values for {sorted(values)}")
        export_module(spec, path, None, tags=tags)
        return
    saved_model = saved_model_pb2.SavedModel.FromString(spec.native.saved_model_bytes())
    index = next(i for i, v in enumerate(spec.native.variants) if set(v.tags) == set(variant.tags))
    meta_graph = saved_model.meta_graphs[index]
    meta_graph.ClearField("saver_def")
    unknown = set(values) - {v.name for v in variant.variables}
    if unknown:
        raise ValueError(f"No such module variables: {sorted(unknown)}")
    with tf.Graph().as_default() as graph:
        tf.compat.v1.train.import_meta_graph(meta_graph)
        by_name = {v.op.name: v for v in graph.get_collection("variables")}
        var_list: dict[str, Any] = {}
        for info in variant.variables:
            if info.partitions:
                var_list[info.name] = [by_name[p.node_name] for p in info.partitions]
            else:
                var_list[info.name] = by_name[info.name]
        saver = tf.compat.v1.train.Saver(var_list, sharded=True)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            if spec.checkpoint_path:
                saver.restore(session, spec.checkpoint_path)
            for name, value in values.items():
                info = next(v for v in variant.variables if v.name == name)
                value = np.asarray(value)
                parts = (
                    [
                        (p.node_name, value[p.offset[0] : p.offset[0] + p.shape[0]])
                        for p in info.partitions
                    ]
                    if info.partitions
                    else [(name, value)]
                )
                for node_name, part_value in parts:
                    variable = by_name[node_name]
                    feed = tf.compat.v1.placeholder(variable.dtype.base_dtype, part_value.shape)
                    session.run(variable.assign(feed), {feed: part_value})
            export_module(
                spec,
                path,
                lambda prefix: saver.save(
                    session, prefix, write_meta_graph=False, write_state=False
                ),
                tags=tags,
            )
