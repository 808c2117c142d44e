"""``hubcore.load``: a TF1 Hub module as a TF2 ``tf.Module`` for eager code and fine-tuning.

The C++ core (``hubcore._core.FunctionFormBuilder``) turns each signature of a graph variant
into a *function form*: a pruned GraphDef whose free values are placeholders for the signature
inputs, the state handles (variables, tables; TF1 ref variables already rewritten to resource
ops) and the asset paths. This module owns the state as TF2 objects (``tf.Variable`` holding the
checkpoint values, one trackable resource per table, ``tf.saved_model.Asset`` per asset file) and
wraps each function form into a ``tf.function`` whose captured inputs are those objects' handles,
so GradientTape, optimizers, ``tf.saved_model.save`` and Keras see ordinary TF2 state.
"""

from __future__ import annotations

import inspect
import keyword
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2, graph_pb2, node_def_pb2
from tensorflow.core.protobuf import control_flow_pb2

from hubcore import _core, _tf_internal
from hubcore.errors import (
    CorruptModuleError,
    InvalidArgumentError,
    UnsupportedFormatError,
)
from hubcore.module import _components, _convert_input, _prepare_dict_inputs
from hubcore.module_spec import (
    ModuleSpec,
    SpecVariantView,
    format_tags,
    load_module_spec,
    normalize_tags,
)

__all__ = ["EagerModule", "load"]

_TRAIN_TAG = "train"


def load(
    handle: str | os.PathLike[str] | ModuleSpec,
    tags: Iterable[str] | None = None,
    *,
    safe_mode: bool = False,
) -> EagerModule:
    """Loads the graph variant ``tags`` (default: the empty tag set) of a TF1 Hub module for TF2.

    Returns an :class:`EagerModule`: call it like ``hub.Module``, or use ``.signatures``;
    its variables hold the checkpoint's values and train under ``tf.GradientTape``. Raises
    ``VariantNotFoundError`` (naming the tag sets that exist) for unknown ``tags``.
    ``safe_mode=True`` refuses a module whose graph uses an op outside the allowlist of pure
    compute ops (:class:`hubcore.UnsafeModuleError`, docs/security.md), in the variant and in its
    ``{"train"}`` variant that ``training=True`` would run.
    """
    if not tf.executing_eagerly():
        raise RuntimeError(
            "hubcore.load needs eager execution (TF2); in a TF1 graph use hubcore.Module."
        )
    spec = handle if isinstance(handle, ModuleSpec) else load_module_spec(handle)
    if safe_mode:
        train_tags = normalize_tags(tags) | {_TRAIN_TAG}
        for variant in [tags, train_tags] if train_tags in spec.get_tags() else [tags]:
            spec.check_safe_mode(variant)
    return EagerModule(spec, tags)


class EagerModule(tf.Module, SpecVariantView):
    """A loaded TF1 Hub module graph variant: TF2 variables, tables and assets plus functions.

    ``obj(inputs, signature=None, as_dict=False, training=False)`` applies a signature, taking
    what ``hub.Module.__call__`` takes (a value or a dict; numpy, lists, ``tf.Tensor``,
    ``tf.SparseTensor``, ``tf.RaggedTensor``). With ``training=True`` it runs the module's
    ``{"train"}`` variant (tags plus "train") when there is one, with its update ops (e.g. batch
    norm moving averages), over the same variables. ``obj.signatures[name]`` are
    ``ConcreteFunction``s taking the inputs as keyword arguments and returning a dict.
    """

    def __init__(self, spec: ModuleSpec, tags: Iterable[str] | None = None) -> None:
        super().__init__(name=None)
        self._spec = spec
        self._tags = normalize_tags(tags)
        spec.variant(self._tags)  # VariantNotFoundError naming the known tag sets.
        train_tags = self._tags | {_TRAIN_TAG}
        self._train_tags = (
            train_tags if train_tags != self._tags and train_tags in spec.get_tags() else None
        )
        self._builder = _core.FunctionFormBuilder(spec.native)
        variants = [self._tags] + ([self._train_tags] if self._train_tags else [])
        with tf.init_scope():
            self._variable_map = _create_variables(spec, variants)
            self._variables_by_node = {
                v.name.rsplit(":", 1)[0]: v
                for value in self._variable_map.values()
                for v in (value if isinstance(value, list) else [value])
            }
            self._module_variables = [v for _, v in sorted(self._variables_by_node.items())]
            self._assets: dict[str, tf.saved_model.Asset] = {}
            self._resources: dict[str, _ModuleResource] = {}
            for tags in variants:
                for node, is_variable, node_def in self._builder.list_state(set(tags)):
                    if is_variable or node in self._resources:
                        continue
                    self._resources[node] = _ModuleResource(self, tags, node, node_def)
            self._resource_list = list(self._resources.values())
            for resource in self._resource_list:
                resource.initialize()
        self._cache = _FunctionCache()
        self.signatures = _Signatures(self)

    # ---- state -----------------------------------------------------------------------------------

    @property
    def variables(self) -> tuple[tf.Variable, ...]:
        """All module variables (a partitioned variable contributes each partition)."""
        return tuple(self._module_variables)

    @property
    def trainable_variables(self) -> tuple[tf.Variable, ...]:
        """The variables the module's trainable_variables collection lists."""
        return tuple(v for v in self._module_variables if v.trainable)

    @property
    def variable_map(self) -> dict[str, Any]:
        """Module-relative variable name -> ``tf.Variable`` (a list for a partitioned one)."""
        return dict(self._variable_map)

    @property
    def regularization_losses(self) -> list[Callable[[], tf.Tensor]]:
        """The module's regularization losses (of the training variant if there is one), as
        callables computing each loss from the current variables."""
        tags = self._train_tags or self._tags
        count = len(self._builder.build_regularization_losses(set(tags))["outputs"])
        return [lambda i=i: self._regularization_function()[str(i)][0] for i in range(count)]

    def _regularization_function(self) -> Any:
        if self._cache.losses is None:
            tags = self._train_tags or self._tags
            form = self._builder.build_regularization_losses(set(tags))
            self._cache.losses = tf.function(
                lambda: self._apply_form(form, {}), autograph=False
            ).get_concrete_function()
        return self._cache.losses()

    def asset(self, path: str) -> tf.saved_model.Asset:
        """The trackable asset for the module file at ``path`` (created once)."""
        asset = self._assets.get(path)
        if asset is None:
            with tf.init_scope():
                asset = tf.saved_model.Asset(path)
            self._assets[path] = asset
        return asset

    def state_handle(self, node: str) -> Any:
        """The TF2 object standing for the module's state op ``node``."""
        variable = self._variables_by_node.get(node)
        if variable is not None:
            return variable
        resource = self._resources.get(node)
        if resource is None:
            raise UnsupportedFormatError(
                f"Module {self._spec.path}: state op '{node}' is neither a variable of the "
                "checkpoint nor a resource hubcore can create"
            )
        return resource.resource_handle

    # ---- functions -------------------------------------------------------------------------------

    def _apply_form(self, form: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """Imports a function form into the tf.function being traced; returns its outputs by
        key (tensor lists) and runs its targets."""
        components = {key: _components(value) for key, value in values.items()}
        input_map: dict[str, tf.Tensor] = {}
        for arg in form["args"]:
            kind = arg["kind"]
            if kind == "input":
                tensor = components[arg["input_key"]][arg["component"]]
            elif kind == "state":
                tensor = _tf_internal.capture_handle(self.state_handle(arg["state"]))
            else:
                tensor = _tf_internal.capture_handle(self.asset(arg["asset_path"]).asset_path)
            input_map[arg["placeholder"] + ":0"] = tensor
        keys = list(form["outputs"])
        names = [name for key in keys for name in form["outputs"][key]]
        graph_def = graph_pb2.GraphDef.FromString(form["graph_def"])
        try:
            with tf.name_scope("module") as scope:  # "module/", or "module_1/" when taken
                results = tf.graph_util.import_graph_def(
                    graph_def,
                    input_map=input_map,
                    return_elements=names + form["targets"],
                    name=scope,
                )
        except (ValueError, tf.errors.OpError) as e:
            # The inputs are placeholders of the signature's own specs (or none), so only the
            # module's graph can be at fault (unregistered op types were refused in C++).
            raise CorruptModuleError(
                f"Module {self._spec.path}: cannot import the graph: {e}"
            ) from None
        _tf_internal.register_eager_functions(graph_def.library)
        # TF1 conds: TF2's automatic control dependencies and the Switch/Merge gradients need
        # each op's cond context (TF1 while loops arrive as functions and need none).
        for data in form["cond_contexts"]:
            _tf_internal.context_from_proto(
                "cond_context",
                control_flow_pb2.CondContextDef.FromString(data),
                import_scope=scope.rstrip("/"),
            )
        outputs: dict[str, Any] = {}
        position = 0
        for key in keys:
            count = len(form["outputs"][key])
            outputs[key] = results[position : position + count]
            position += count
        return outputs

    def _signature_function(self, signature: str, training: bool) -> Any:
        """The ConcreteFunction of ``signature`` (of the train variant if ``training``)."""
        tags = self._train_tags if training and self._train_tags else self._tags
        key = (signature, tags != self._tags)
        function = self._cache.signatures.get(key)
        if function is not None:
            return function
        sig = self._spec.signature(signature, tags)  # SignatureNotFoundError naming the known.
        input_infos = self._spec.get_input_info_dict(signature, tags)
        output_infos = self._spec.get_output_info_dict(signature, tags)
        unsupported = sorted(
            k for k, info in {**input_infos, **output_infos}.items() if not info.is_supported_type
        )
        if unsupported:
            raise InvalidArgumentError(
                f"Signature '{signature}' uses unsupported composite types for {unsupported}"
            )
        form = self._builder.build_signature(set(tags), sig.name, tags != self._tags)
        keys = sorted(input_infos)

        def body(*args: Any, **kwargs: Any) -> dict[str, Any]:
            values = dict(zip(parameter_names, args, strict=False))
            values.update(kwargs)
            values = {key: values[name] for key, name in zip(keys, parameter_names, strict=True)}
            outputs = self._apply_form(form, values)
            return {key: _pack(output_infos[key], outputs[key]) for key in sorted(outputs)}

        parameter_names = [
            key if key.isidentifier() and not keyword.iskeyword(key) else f"input_{i}"
            for i, key in enumerate(keys)
        ]
        body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in parameter_names]
        )
        body.__name__ = f"{signature.replace(':', '_')}{'_train' if training else ''}"
        function = tf.function(
            body,
            input_signature=[input_infos[key].type_spec for key in keys],
            autograph=False,
        ).get_concrete_function()
        self._cache.signatures[key] = function
        return function

    def __call__(
        self,
        inputs: Any = None,
        _sentinel: Any = None,
        signature: str | None = None,
        as_dict: bool = False,
        training: bool = False,
    ) -> Any:
        """Applies ``signature`` (default "default") to ``inputs``; returns its ``default``
        output or, with ``as_dict=True``, the dict of all outputs."""
        if _sentinel is not None:
            raise TypeError(
                "hubcore.load(...)() takes one positional argument (inputs); pass signature=, "
                "as_dict= and training= by keyword."
            )
        signature = signature or "default"
        tags = self._train_tags if training and self._train_tags else self._tags
        input_infos = self._spec.get_input_info_dict(signature, tags)
        function = self._signature_function(signature, training)
        if not as_dict and "default" not in self._spec.get_output_info_dict(signature, tags):
            raise TypeError("There is no output named 'default'. Use as_dict=True.")
        dict_inputs = _prepare_dict_inputs(inputs, input_infos)
        values = {
            key: _convert_input(key, dict_inputs[key], input_infos[key]) for key in dict_inputs
        }
        # Positional, in the function's (sorted key) order: keys need not be Python identifiers.
        outputs = function(*[values[key] for key in sorted(values)])
        return outputs if as_dict else outputs["default"]

    # ---- introspection ---------------------------------------------------------------------------

    @property
    def train_tags(self) -> frozenset[str] | None:
        """The variant ``training=True`` runs, or None when the module has no train variant."""
        return self._train_tags

    def __repr__(self) -> str:
        return f"<hubcore.EagerModule path={self._spec.path!r} tags={format_tags(self._tags)}>"


@tf.RegisterGradient("HubcoreV1WhileLoop")  # `_gradient_op_type` of function forms' loop calls
def _v1_while_loop_gradient(op: tf.Operation, *unused_output_gradients: Any) -> list[Any]:
    """The gradient of a TF1 while loop that a function form runs as a function: TF2 cannot
    build one, so these gradients fail when they are computed, naming the module and the loop.

    Failing when built would be too early: TF builds a function's gradient for every call under
    a GradientTape that watches the module's variables, and inside a tf.function (Keras
    ``fit``) also for a frozen module. The failing op is a stateless one (StringToNumber of the
    message), so that in a tf.function the gradient is pruned, unless something uses it.
    """
    message = "hubcore: " + op.get_attr("_hubcore_message").decode()
    failure = tf.strings.to_number(tf.constant(message))  # Fails when computed.
    gradients: list[Any] = []
    for tensor, variable_type, variable_shape in zip(
        op.inputs,
        op.get_attr("_hubcore_value_types"),
        op.get_attr("_hubcore_value_shapes"),
        strict=True,
    ):
        if variable_type:  # A variable's handle: its gradient has the variable's shape.
            dtype = tf.as_dtype(variable_type)
            shape = tf.TensorShape(variable_shape)
            if not shape.is_fully_defined():
                shape = tf.shape(tf.raw_ops.ReadVariableOp(resource=tensor, dtype=dtype))
            gradients.append(tf.zeros(shape, dtype) + tf.cast(failure, dtype))
        elif tensor.dtype.is_floating or tensor.dtype.is_complex:
            gradients.append(tf.zeros_like(tensor) + tf.cast(failure, tensor.dtype))
        else:
            gradients.append(None)
    return gradients


def _pack(info: Any, tensors: list[tf.Tensor]) -> Any:
    if info.is_sparse:
        return tf.SparseTensor(indices=tensors[1], values=tensors[0], dense_shape=tensors[2])
    if info.is_composite:
        return tf.nest.pack_sequence_as(info.type_spec, tensors, expand_composites=True)
    return tensors[0]


class _FunctionCache:
    """Traced functions of an EagerModule, kept out of TF's object tracking (they are rebuilt
    from the module, never saved as its children)."""

    def __init__(self) -> None:
        self.signatures: dict[tuple[str, bool], Any] = {}
        self.losses: Any = None


class _Signatures(Mapping[str, Any]):
    """``obj.signatures``: signature name -> ConcreteFunction, traced on first use."""

    def __init__(self, module: EagerModule) -> None:
        self._module = module

    def __getitem__(self, name: str) -> Any:
        return self._module._signature_function(name, training=False)

    def __iter__(self) -> Iterator[str]:
        return iter(self._module.get_signature_names())

    def __len__(self) -> int:
        return len(self._module.get_signature_names())

    def __repr__(self) -> str:
        return f"<signatures {self._module.get_signature_names()}>"


def _create_variables(spec: ModuleSpec, variants: list[frozenset[str]]) -> dict[str, Any]:
    """``tf.Variable``s holding the checkpoint's values; one per partition of a partitioned
    variable. Keyed like ``variable_map``."""
    infos: dict[str, Any] = {}
    for tags in variants:
        for info in spec.variant(tags).variables:
            infos.setdefault(info.name, info)
    if not infos:
        return {}
    if spec.checkpoint_path is None:
        raise CorruptModuleError(
            f"Module {spec.path} has variables ({sorted(infos)}) but no checkpoint"
        )
    try:
        reader = tf.train.load_checkpoint(spec.checkpoint_path)
    except (tf.errors.OpError, ValueError) as e:
        raise CorruptModuleError(f"Cannot read checkpoint {spec.checkpoint_path}: {e}") from None
    result: dict[str, Any] = {}
    for name, info in sorted(infos.items()):
        try:
            value = reader.get_tensor(name)
        except tf.errors.NotFoundError as e:
            raise CorruptModuleError(
                f"Variable '{name}' is not in checkpoint {spec.checkpoint_path}: {e}"
            ) from None
        except (tf.errors.OpError, ValueError, IndexError) as e:  # damaged or truncated data
            raise CorruptModuleError(
                f"Cannot read variable '{name}' from checkpoint {spec.checkpoint_path}: {e}"
            ) from None
        if not info.partitions:
            result[name] = tf.Variable(value, trainable=info.trainable, name=name)
            continue
        parts = []
        for part in info.partitions:
            index = tuple(slice(o, o + s) for o, s in zip(part.offset, part.shape, strict=True))
            parts.append(
                tf.Variable(
                    np.ascontiguousarray(value[index]),
                    trainable=info.trainable,
                    name=part.node_name,
                )
            )
        result[name] = parts
    return result


def _attr_value(attr: attr_value_pb2.AttrValue) -> Any:
    kind = attr.WhichOneof("value")
    if kind == "s":
        return attr.s.decode()
    if kind in ("i", "f", "b"):
        return getattr(attr, kind)
    if kind == "type":
        return tf.as_dtype(attr.type)
    if kind == "shape":
        return tf.TensorShape(attr.shape)
    if kind == "tensor":
        return tf.make_ndarray(attr.tensor)
    if kind == "list":
        values = attr.list
        if values.type:
            return [tf.as_dtype(t) for t in values.type]
        if values.shape:
            return [tf.TensorShape(s) for s in values.shape]
        return list(values.s or values.i or values.f or values.b)
    raise UnsupportedFormatError(f"attribute kind {kind!r} of a module state op")


class _ModuleResource(tf.saved_model.experimental.TrackableResource):
    """A module state op other than a variable (a lookup table, ...), created once and
    initialized by the module's table initializers that act on it."""

    def __init__(
        self, module: EagerModule, tags: frozenset[str], node: str, node_def: bytes
    ) -> None:
        self._module_ref = module
        self._node = node_def_pb2.NodeDef.FromString(node_def)
        self._shared_name = f"hubcore_{uuid.uuid4().hex}_{node}"
        self._initializer_form = module._builder.build_initializer(set(tags), node)
        super().__init__()

    def _create_resource(self) -> tf.Tensor:
        op = getattr(tf.raw_ops, self._node.op, None)
        if op is None:
            raise UnsupportedFormatError(
                f"State op '{self._node.name}' has type {self._node.op}, unknown to TensorFlow"
            )
        try:
            attrs = {key: _attr_value(value) for key, value in self._node.attr.items()}
            if "shared_name" in attrs:
                # A private table per load, as TF2 gives each tf.lookup table its own.
                attrs["shared_name"] = self._shared_name
            return op(**attrs)
        except (TypeError, ValueError, tf.errors.OpError) as e:  # attrs missing or malformed
            raise CorruptModuleError(
                f"Module {self._module_ref._spec.path}: cannot create state op "
                f"'{self._node.name}' ({self._node.op}): {e}"
            ) from None

    def _initialize(self) -> Any:
        form = self._initializer_form
        if not form["targets"]:
            return None
        if tf.executing_eagerly():
            # A concrete function, called directly: every load traces its own initializer, and
            # tf.function's retracing detector (keyed by this code) would warn from the 5th load.
            tf.function(
                lambda: self._run_initializer(form), autograph=False
            ).get_concrete_function()()
            return None
        return self._run_initializer(form)

    def _run_initializer(self, form: Mapping[str, Any]) -> None:
        self._module_ref._apply_form(form, {})

    def initialize(self) -> None:
        """Creates and initializes the resource now (once per load)."""
        with tf.init_scope():
            _ = self.resource_handle  # Created eagerly, outside the initializer's function.
            self._initialize()

    def __repr__(self) -> str:
        return f"<hubcore module resource {self._node.name} ({self._node.op})>"
