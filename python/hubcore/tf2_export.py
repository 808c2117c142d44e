"""``hubcore export-tf2``: a TF1 Hub module as a TF2 SavedModel, the migration path off the TF1
format.

The module is loaded with :func:`hubcore.load` and written with ``tf.saved_model.save``, so the
result needs neither hubcore nor tensorflow_hub: ``tf.saved_model.load(OUT)`` gives

- ``signatures[NAME]`` for every module signature, taking and returning the same names. A sparse
  or ragged value, which a SavedModel signature cannot carry, is split into its components:
  ``NAME_indices``, ``NAME_values``, ``NAME_dense_shape`` (sparse) or ``NAME_flat_values``,
  ``NAME_row_splits_0``, ... (ragged);
- ``obj(inputs, training=False)``: the default signature's ``default`` output (the dict of all
  outputs when there is none); ``training=True`` runs the module's train variant, if any;
- ``variables``, ``trainable_variables`` and ``regularization_losses`` (functions without
  arguments), the attributes TF2's reusable-SavedModel convention names, so fine-tuning goes on in
  plain TensorFlow;
- the module's assets, copied into ``OUT/assets`` and used by its tables.

The export is atomic: everything is written into a temporary directory next to ``OUT``, renamed
when complete; an existing ``OUT`` that is not an empty directory is refused
(:class:`hubcore.AlreadyExistsError`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from hubcore._export import atomic_directory
from hubcore.eager_module import EagerModule, load
from hubcore.errors import InvalidArgumentError

__all__ = ["export_tf2"]


def export_tf2(
    module: EagerModule | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    tags: Iterable[str] | None = None,
) -> str:
    """Writes a TF2 SavedModel at ``out_dir`` (see the module docstring for its contents) and
    returns its absolute path. ``module`` is a module path (its graph variant ``tags`` is
    exported with the checkpoint's values) or what :func:`hubcore.load` returned (exported with
    its variables' current values, e.g. after fine-tuning; ``tags`` must then be None)."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if isinstance(module, EagerModule):
        if tags is not None:
            raise InvalidArgumentError("export_tf2 takes tags only with a module path")
    else:
        module = load(module, tags)
    root = tf.train.Checkpoint(module=module)
    root.variables = list(module.variables)
    root.trainable_variables = list(module.trainable_variables)
    root.regularization_losses = [
        tf.function(loss, input_signature=[], autograph=False)
        for loss in module.regularization_losses
    ]
    root.__call__ = _call_function(module)
    signatures = {name: _flat_signature(module, name) for name in module.get_signature_names()}
    # No custom gradients: TF would trace each registered `_gradient_op_type` gradient without
    # its op, and the only one in a function form (the failing gradient of a TF1 while loop run
    # as a function) needs its op. Plain TF then finds no gradient for such a loop either.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    with atomic_directory(out_dir) as temp_dir:
        tf.saved_model.save(root, temp_dir, signatures=signatures, options=options)
    return out_dir


def _call_function(module: EagerModule) -> Any:
    """``obj(inputs, training=False)`` for the default signature, traced for both modes."""
    infos = module.get_input_info_dict("default")
    as_dict = "default" not in module.get_output_info_dict("default")

    def call(inputs: Any, training: bool = False) -> Any:
        return module(inputs, as_dict=as_dict, training=training)

    function = tf.function(call, autograph=False)
    if len(infos) == 1:
        spec: Any = next(iter(infos.values())).type_spec
    else:
        spec = {key: info.type_spec for key, info in infos.items()}
    for training in (False, True):
        function.get_concrete_function(spec, training=training)
    return function


def _component_names(key: str, info: Any) -> list[str]:
    if info.is_sparse:
        return [f"{key}_indices", f"{key}_values", f"{key}_dense_shape"]
    if info.is_composite:
        count = len(tf.nest.flatten(info.type_spec, expand_composites=True))
        return [f"{key}_flat_values"] + [f"{key}_row_splits_{i}" for i in range(count - 1)]
    return [key]


def _flat_signature(module: EagerModule, name: str) -> Any:
    """The ConcreteFunction to save as signature ``name``: the module's own when every input
    and output is dense, else a wrapper taking and returning the composites' components."""
    inputs = module.get_input_info_dict(name)
    outputs = module.get_output_info_dict(name)
    function = module.signatures[name]
    if not any(info.is_composite for info in (*inputs.values(), *outputs.values())):
        return function
    keys = sorted(inputs)
    specs: list[tf.TensorSpec] = []
    names: list[str] = []
    for key in keys:
        info = inputs[key]
        component_names = _component_names(key, info)
        if info.is_sparse:
            rank = info.get_shape().rank
            component_specs = [
                tf.TensorSpec([None, rank], tf.int64),
                tf.TensorSpec([None], info.dtype),
                tf.TensorSpec([rank], tf.int64),
            ]
        else:
            component_specs = tf.nest.flatten(info.type_spec, expand_composites=True)
        names += component_names
        specs += [
            tf.TensorSpec(s.shape, s.dtype, name=n)
            for s, n in zip(component_specs, component_names, strict=True)
        ]

    def body(*args: Any) -> dict[str, tf.Tensor]:
        values: dict[str, Any] = {}
        position = 0
        for key in keys:
            info = inputs[key]
            count = len(_component_names(key, info))
            parts = list(args[position : position + count])
            position += count
            if info.is_sparse:
                values[key] = tf.SparseTensor(parts[0], parts[1], parts[2])
            elif info.is_composite:
                values[key] = tf.nest.pack_sequence_as(
                    info.type_spec, parts, expand_composites=True
                )
            else:
                values[key] = parts[0]
        result: dict[str, tf.Tensor] = {}
        for key, value in function(**values).items():
            info = outputs[key]
            if info.is_sparse:
                parts = [value.indices, value.values, value.dense_shape]
            else:
                parts = tf.nest.flatten(value, expand_composites=True)
            result.update(zip(_component_names(key, info), parts, strict=True))
        return result

    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return tf.function(body, input_signature=specs, autograph=False).get_concrete_function()
