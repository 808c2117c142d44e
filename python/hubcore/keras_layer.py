"""``hubcore.KerasLayer``: a TF1 Hub module as a Keras 3 layer that trains with ``model.fit``.

The layer loads the module with :func:`hubcore.load` and exposes that object's own variables as
Keras weights (``keras.Variable`` wrapping the same ``tf.Variable``, as Keras' ``TFSMLayer``
does), so ``model.fit`` trains the variables the module's functions read, and ``model.save``
stores their values. The config holds only the handle and the constructor arguments: loading a
``.keras`` file loads the module again from its handle and then restores the saved weights.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import tensorflow as tf

from hubcore.eager_module import load
from hubcore.errors import InvalidArgumentError

__all__ = ["KerasLayer"]


@keras.saving.register_keras_serializable(package="hubcore")
class KerasLayer(keras.layers.Layer):
    """A TF1 Hub module signature as a Keras 3 layer (TensorFlow backend).

    The parameters are those of tensorflow_hub's ``KerasLayer`` for modules in the TF1 format:

    - ``handle``: the module path (or ``.tar.gz``), as for :func:`hubcore.load`.
    - ``trainable``: whether ``model.fit`` trains the module's trainable variables (those of its
      trainable collection). The module's other variables (e.g. batch-norm moving averages)
      are always non-trainable weights.
    - ``signature``: the signature to apply, default ``"default"``.
    - ``output_key``: the signature output to return, default ``"default"``; or
      ``signature_outputs_as_dict=True`` to return the dict of all outputs.
    - ``tags``: the graph variant to load (default: the empty tag set).
    - ``arguments``: extra signature inputs, fixed at construction (JSON-serializable values),
      merged into every call's inputs.

    ``call(inputs, training=...)``: ``inputs`` is one value (for a signature with one input
    besides ``arguments``) or a dict by input name. With ``training=True`` and
    ``trainable=True`` the module's ``{"train"}`` variant runs (with its update ops, such as
    batch-norm moving averages), else the loaded variant. While trainable, each call adds the
    module's regularization losses to ``layer.losses``.

    Errors: an unknown ``signature`` raises :class:`hubcore.SignatureNotFoundError` and unknown
    ``tags`` :class:`hubcore.VariantNotFoundError` (each naming what exists); an ``output_key``
    that is not an output of the signature raises :class:`hubcore.InvalidArgumentError` naming
    the outputs.

    The class is registered as Keras-serializable (``"hubcore>KerasLayer"``): import it
    (``from hubcore import KerasLayer``) before ``keras.models.load_model``.
    """

    def __init__(
        self,
        handle: str | os.PathLike[str],
        trainable: bool = False,
        signature: str | None = None,
        output_key: str | None = None,
        signature_outputs_as_dict: bool = False,
        tags: Iterable[str] | None = None,
        arguments: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # Built trainable, frozen below once the weights exist (see there).
        super().__init__(trainable=True, **kwargs)
        if signature_outputs_as_dict and output_key is not None:
            raise InvalidArgumentError(
                "KerasLayer: pass either output_key or signature_outputs_as_dict=True, not both"
            )
        self._handle = os.fspath(handle)
        self._signature = signature or "default"
        self._outputs_as_dict = bool(signature_outputs_as_dict)
        self._output_key = None if self._outputs_as_dict else (output_key or "default")
        self._tags = None if tags is None else sorted(tags)
        if arguments is not None and not isinstance(arguments, Mapping):
            raise InvalidArgumentError(
                f"KerasLayer: arguments must be a dict of signature inputs, got "
                f"{type(arguments).__name__}"
            )
        self._arguments = dict(arguments or {})
        self._module = load(self._handle, tags=self._tags)
        # Raises SignatureNotFoundError naming the signatures that exist.
        outputs = self._output_infos = self._module.get_output_info_dict(self._signature)
        if self._output_key is not None and self._output_key not in outputs:
            raise InvalidArgumentError(
                f"KerasLayer: output_key '{self._output_key}' is not an output of signature "
                f"'{self._signature}' of module {self._handle} (outputs: {sorted(outputs)}); "
                "pass output_key= or signature_outputs_as_dict=True"
            )
        inputs = self._module.get_input_info_dict(self._signature)
        unknown = sorted(set(self._arguments) - set(inputs))
        if unknown:
            raise InvalidArgumentError(
                f"KerasLayer: arguments {unknown} are not inputs of signature "
                f"'{self._signature}' of module {self._handle} (inputs: {sorted(inputs)})"
            )
        self._free_inputs = sorted(set(inputs) - set(self._arguments))
        self._regularization_losses = list(self._module.regularization_losses)
        # Assigning a list of keras.Variables tracks them as this layer's weights, trainable or
        # not per the module's trainable collection (Keras then applies layer.trainable).
        self._module_weights = [
            keras.Variable(
                initializer=variable,  # the same tf.Variable, not a copy
                trainable=variable.trainable,
                name=variable.name.split(":", 1)[0].replace("/", "_"),
            )
            for variable in self._module.variables
        ]
        # Keras' setter also clears the weights' own flags, which model.trainable_weights reads
        # (and sets them again on unfreezing); assigning the current value would be a no-op.
        self.trainable = trainable
        self.built = True

    @property
    def resolved_object(self) -> Any:
        """The :func:`hubcore.load` object this layer calls."""
        return self._module

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if self._arguments:
            if not isinstance(inputs, Mapping):
                if len(self._free_inputs) != 1:
                    raise InvalidArgumentError(
                        f"KerasLayer: signature '{self._signature}' has inputs "
                        f"{self._free_inputs} besides arguments; pass a dict"
                    )
                inputs = {self._free_inputs[0]: inputs}
            inputs = {**self._arguments, **inputs}
        # As in tensorflow_hub: a frozen layer always runs its inference variant.
        run_training = bool(training) and self.trainable
        outputs = self._module(
            inputs, signature=self._signature, as_dict=True, training=run_training
        )
        if self.trainable:
            for loss in self._regularization_losses:
                self.add_loss(loss())
        outputs = {key: self._with_static_shape(key, value) for key, value in outputs.items()}
        return outputs if self._outputs_as_dict else outputs[self._output_key]

    def _with_static_shape(self, key: str, value: Any) -> Any:
        """Gives a traced output the shape its signature declares, when that says more (an op
        such as unsorted_segment_mean leaves it unknown; Keras layers after this one need it)."""
        if tf.executing_eagerly() or not isinstance(value, tf.Tensor):
            return value
        declared = self._output_infos[key].get_shape()
        if value.shape.rank is not None and value.shape.merge_with(declared) == value.shape:
            return value
        return tf.ensure_shape(value, declared.merge_with(value.shape))

    def compute_output_spec(self, inputs: Any, training: bool | None = None) -> Any:
        """The outputs' specs from the signature (rather than tracing the module once more)."""
        keys = sorted(self._output_infos) if self._outputs_as_dict else [self._output_key]
        infos = {key: self._output_infos[key] for key in keys}
        if any(info.get_shape().rank is None for info in infos.values()):
            return super().compute_output_spec(inputs, training=training)
        specs = {
            key: keras.KerasTensor(
                info.get_shape().as_list(),
                dtype=info.dtype.name,
                sparse=info.is_sparse,
                ragged=isinstance(info.type_spec, tf.RaggedTensorSpec),
            )
            for key, info in infos.items()
        }
        return specs if self._outputs_as_dict else specs[self._output_key]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            handle=self._handle,
            signature=self._signature,
            output_key=self._output_key,
            signature_outputs_as_dict=self._outputs_as_dict,
            tags=self._tags,
            arguments=self._arguments or None,
        )
        return config
