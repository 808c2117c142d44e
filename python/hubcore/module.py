"""``hubcore.Module``: a drop-in ``hub.Module`` for TF1-style graphs on TensorFlow 2.

The graph surgery (pruning, scoping, wiring, checkpoint restore) happens in C++
(``hubcore._core.GraphRewriter``); this module only imports the result into the caller's
``tf.Graph`` in one step per instantiation or call, and builds the Python-side objects
(``tf.Variable`` wrappers, collections, output tensors).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import function_pb2, variable_pb2
from tensorflow.core.protobuf import control_flow_pb2

from hubcore import _core, _function_state, _tf_internal
from hubcore._convert import check_integer_range
from hubcore.errors import (
    CorruptModuleError,
    InvalidArgumentError,
)
from hubcore.module_spec import (
    ModuleSpec,
    SpecVariantView,
    format_tags,
    load_module_spec,
    normalize_tags,
)

__all__ = ["Module", "eval_function_for_module", "export_spec"]

_REWRITERS: weakref.WeakKeyDictionary[ModuleSpec, _core.GraphRewriter] = weakref.WeakKeyDictionary()
_VARIABLE_COLLECTIONS = ("variables", "trainable_variables", "model_variables")


def _rewriter(spec: ModuleSpec) -> _core.GraphRewriter:
    rewriter = _REWRITERS.get(spec)
    if rewriter is None:
        rewriter = _core.GraphRewriter(spec.native)
        _REWRITERS[spec] = rewriter
    return rewriter


def _import_serialized(
    graph: tf.Graph,
    graph_def: bytes,
    module: str,
    input_map: Iterable[tuple[str, tf.Tensor]] = (),
    colocated_nodes: Iterable[str] = (),
) -> None:
    """Imports a rewritten GraphDef (final names) into ``graph``; see _tf_internal.

    ``module`` names the module and variant in errors. TensorFlow refusing the graph is the
    module's fault: the input map only feeds tensors already converted to the signature's dtypes
    and the instance's own state (op types TensorFlow does not register were refused by the
    rewriter already, as in Runner and hubcore.load).
    """
    try:
        _tf_internal.import_graph_def(graph, graph_def, input_map, colocated_nodes)
    except tf.errors.OpError as e:  # the message names the node (with the instance's scope)
        raise CorruptModuleError(f"{module}: cannot import the graph: {e.message}") from None
    except UnicodeDecodeError as e:  # TensorFlow decodes colocation (_class) attrs as UTF-8
        raise CorruptModuleError(
            f"{module}: cannot import the graph: a node's colocation attr is not UTF-8 ({e})"
        ) from None


def _register_functions(graph: tf.Graph, function_library: bytes) -> None:
    """Makes the imported graph's functions known to the Python graph, as import_graph_def does.

    The C++ import already added them to the TF graph; without the Python side, gradients through
    v2 control flow (If/While ops, whose branches are functions) cannot find their graphs.
    """
    if function_library:
        library = function_pb2.FunctionDefLibrary.FromString(function_library)
        _tf_internal.register_functions(graph, library)


def _type_name(value: Any) -> str:
    if isinstance(value, tf.SparseTensor):
        return "SparseTensor"
    if isinstance(value, tf.RaggedTensor):
        return "RaggedTensor"
    if isinstance(value, tf.Tensor):
        return "Tensor"
    return type(value).__name__


def _spec_type_name(spec: Any) -> str:
    if isinstance(spec, tf.SparseTensorSpec):
        return "SparseTensor"
    if isinstance(spec, tf.RaggedTensorSpec):
        return "RaggedTensor"
    if isinstance(spec, tf.TensorSpec):
        return "Tensor"
    return type(spec).__name__


def _check_supported_types(
    signature: str, input_infos: Mapping[str, Any], output_infos: Mapping[str, Any]
) -> None:
    """Raises for a recorded input or output type that this version cannot build."""
    for what, infos in (("input", input_infos), ("output", output_infos)):
        for key, info in sorted(infos.items()):
            if not info.is_supported_type:
                value_type = getattr(info.type_spec, "value_type", type(info.type_spec))
                raise InvalidArgumentError(
                    f"Signature '{signature}' expects a {value_type.__name__} for {what} "
                    f"'{key}', which is not supported by this version of hubcore."
                )


def _prepare_dict_inputs(inputs: Any, input_names: Iterable[str]) -> dict[str, Any]:
    """Turns ``inputs`` (None, a dict or a single value) into a dict keyed by input name.

    Mismatches are InvalidArgumentError, a TypeError as tensorflow_hub raised."""
    names = set(input_names)
    if inputs is None:
        dict_inputs: dict[str, Any] = {}
    elif isinstance(inputs, Mapping):
        dict_inputs = dict(inputs)
    elif len(names) == 1:
        dict_inputs = {next(iter(names)): inputs}
    elif not names:
        raise InvalidArgumentError("Signature expects no inputs.")
    else:
        raise InvalidArgumentError("Signature expects multiple inputs. Use a dict.")
    missing = sorted(names - set(dict_inputs))
    extra = sorted(set(dict_inputs) - names)
    if missing or extra:
        raise InvalidArgumentError(
            f"Cannot convert dict_inputs: missing {missing}, extra given {extra}"
        )
    return dict_inputs


def _convert_input(key: str, value: Any, info: Any) -> Any:
    """Converts one signature input to a tensor compatible with ``info.type_spec``."""
    if isinstance(value, tf.compat.v1.SparseTensorValue):
        value = tf.SparseTensor.from_value(value)
    if not isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        if isinstance(info.type_spec, tf.RaggedTensorSpec) and not isinstance(value, tf.Tensor):
            try:
                value = tf.ragged.constant(
                    value,
                    dtype=info.dtype,
                    ragged_rank=info.type_spec.ragged_rank,
                    row_splits_dtype=info.type_spec.row_splits_dtype,
                )
            except (TypeError, ValueError) as e:
                raise InvalidArgumentError(f"Can't convert {key!r}: {e}") from None
        else:
            # TensorFlow wraps numpy integers that do not fit (it refuses only Python ints).
            is_numpy_int = isinstance(value, (np.ndarray, np.generic)) and value.dtype.kind in "iu"
            if is_numpy_int and info.dtype.is_integer and value.size:
                want = np.dtype(info.dtype.as_numpy_dtype)
                check_integer_range(np.asarray(value), want, f"Input {key!r}")
            try:
                value = tf.compat.v1.convert_to_tensor_or_indexed_slices(value, info.dtype)
            except (TypeError, ValueError) as e:
                raise InvalidArgumentError(f"Can't convert {key!r}: {e}") from None
    expected = info.type_spec
    if _type_name(value) != _spec_type_name(expected):
        raise InvalidArgumentError(
            f"Can't convert {key!r}: Got {_type_name(value)}. Expected {_spec_type_name(expected)}."
        )
    if not expected.is_compatible_with(value):
        got = tf.type_spec_from_value(value)
        raise InvalidArgumentError(f"Can't convert {key!r}: Got {got}. Expected {expected}.")
    return value


def _components(value: Any) -> list[tf.Tensor]:
    """Tensors in TensorInfo order: dense [t]; sparse [values, indices, dense_shape]; ragged
    [flat_values, row_splits_0, ...]."""
    if isinstance(value, tf.SparseTensor):
        return [value.values, value.indices, value.dense_shape]
    if isinstance(value, tf.RaggedTensor):
        return tf.nest.flatten(value, expand_composites=True)
    return [value]


class Module(SpecVariantView):
    """Part of a TensorFlow graph loaded from a TF1 Hub module; see ``hub.Module``.

    ``Module(spec)`` adds the module's state (variables, tables, assets) to the current graph
    under an unused variable scope; calling the module adds the ops of one signature, wired to
    that state and to the given inputs. ``safe_mode=True`` refuses a module whose graph uses an op
    outside the allowlist of pure compute ops (:class:`hubcore.UnsafeModuleError`,
    docs/security.md).
    """

    # The caller's tf.Graph holding the state; None when a function body created the state
    # eagerly (see _function_state). TensorFlow has no type information, hence Any.
    _graph: Any

    def __init__(
        self,
        spec: ModuleSpec | str | os.PathLike[str],
        trainable: bool = False,
        name: str = "module",
        tags: Iterable[str] | None = None,
        *,
        safe_mode: bool = False,
    ) -> None:
        if isinstance(spec, (str, os.PathLike)):
            spec = load_module_spec(spec)
        elif not isinstance(spec, ModuleSpec):
            raise ValueError(f"Unknown module spec type: {type(spec)!r}")
        if tf.executing_eagerly():
            raise RuntimeError(
                "hubcore.Module needs graph mode: build it inside `with tf.Graph().as_default():`, "
                "a tf.function or tf.compat.v1.wrap_function, or after "
                "tf.compat.v1.disable_eager_execution()."
            )
        self._spec = spec
        self._tags = normalize_tags(tags)
        self._variant = spec.variant(self._tags)  # VariantNotFoundError if unknown.
        if safe_mode:
            spec.check_safe_mode(self._tags)
        self._trainable = bool(trainable)
        self._state_tensors: dict[str, tf.Tensor] = {}
        self._saver: Any = None
        self._eager_state: _function_state.EagerState | None = None
        if tf.compat.v1.get_default_graph().building_function:
            # In a function body the state is created once, outside it (see _function_state).
            with tf.init_scope():
                if tf.executing_eagerly():
                    self._graph = None
                    self._scope = _function_state.claim_eager_scope(name)
                    self._eager_state = _function_state.EagerState(
                        self._create_state, self._trainable
                    )
                    variables = self._eager_state.variables
                else:
                    self._graph = tf.compat.v1.get_default_graph()
                    self._scope = self._claim_state_scope(name)
                    variables = self._create_state(self._graph)
        else:
            self._graph = tf.compat.v1.get_default_graph()
            self._scope = self._claim_state_scope(name)
            with tf.control_dependencies(None):
                variables = self._create_state(self._graph)
        self._short_name = self._scope.rsplit("/", 1)[-1]
        self._variable_map = self._map_variables(variables)

    def _description(self) -> str:
        """The module and variant, as errors name them (Runner's wording)."""
        path = self._spec.path or "created by module_fn (not exported)"
        return f"Module {path} (graph variant {format_tags(self._tags)})"

    # ---- state ----------------------------------------------------------------------------------

    def _claim_state_scope(self, name: str) -> str:
        """Opens an unused variable scope (uniquified) whose name scope is free; returns it."""
        graph = self._graph
        var_scope = tf.compat.v1.get_variable_scope().name
        with tf.compat.v1.name_scope(var_scope + "/" if var_scope else None):
            with tf.compat.v1.variable_scope(
                None, default_name=name, auxiliary_name_scope=False
            ) as vs:
                scope = vs.name
            unique = graph.unique_name(name, mark_as_used=True)
        if unique != scope:
            raise RuntimeError(
                f"variable_scope {scope}/ was unused but the corresponding name_scope was "
                "already taken."
            )
        return scope

    def _create_state(self, graph: tf.Graph) -> dict[str, tf.Variable]:
        """Imports the instance's state into ``graph``; returns its variables by tensor name."""
        state = _rewriter(self._spec).build_state_graph(
            set(self._tags), self._scope, self._trainable, self._spec.checkpoint_path or ""
        )
        _import_serialized(graph, state.graph_def, self._description(), (), state.colocated_nodes)
        _register_functions(graph, state.function_library)
        for key, names in state.node_lists.items():
            for name in names:
                try:
                    element = graph.as_graph_element(name)
                except (KeyError, ValueError) as e:  # a collection naming a missing tensor
                    raise CorruptModuleError(
                        f"{self._description()}: collection {key!r} names {name!r}: {e}"
                    ) from None
                graph.add_to_collection(key, element)
        variables: dict[str, tf.Variable] = {}
        bytes_lists = state.bytes_lists
        for key in _VARIABLE_COLLECTIONS:
            for data in bytes_lists.get(key, ()):
                variable_def = variable_pb2.VariableDef.FromString(data)
                variable = variables.get(variable_def.variable_name)
                if variable is None:
                    try:
                        variable = _tf_internal.variable_from_def(variable_def)
                    except (KeyError, ValueError, TypeError) as e:  # names a missing tensor
                        raise CorruptModuleError(
                            f"{self._description()}: variable {variable_def.variable_name!r} "
                            f"in collection {key!r}: {e}"
                        ) from None
                    variables[variable_def.variable_name] = variable
                graph.add_to_collection(key, variable)
        self._import_contexts(graph, bytes_lists, self._scope)
        return variables

    def _map_variables(self, variables: Mapping[str, tf.Variable]) -> dict[str, Any]:
        """``variable_map``: module-relative name -> variable (a list for a partitioned one)."""
        variable_map: dict[str, Any] = {}
        for info in self._variant.variables:
            if info.partitions:
                variable_map[info.name] = [
                    variables[f"{self._scope}/{part.node_name}:0"] for part in info.partitions
                ]
            else:
                variable_map[info.name] = variables[f"{self._scope}/{info.name}:0"]
        return variable_map

    def _import_contexts(
        self, graph: tf.Graph, bytes_lists: Mapping[str, list[bytes]], scope: str
    ) -> None:
        """Rebuilds v1 control-flow contexts (best effort, as their inputs may be remapped)."""
        for key, proto_type in (
            ("cond_context", control_flow_pb2.CondContextDef),
            ("while_context", control_flow_pb2.WhileContextDef),
        ):
            for data in bytes_lists.get(key, ()):
                try:
                    context = _tf_internal.context_from_proto(
                        key, proto_type.FromString(data), import_scope=scope
                    )
                except (KeyError, ValueError):
                    continue
                graph.add_to_collection(key, context)

    def _state_tensor(self, name: str, graph: tf.Graph) -> tf.Tensor:
        """The instance's state tensor ``name`` as seen from ``graph`` (the instance's graph or
        a function graph inside it, which captures it)."""
        if self._eager_state is not None:
            return self._eager_state.tensor(graph, name)
        tensor = self._state_tensors.get(name)
        if tensor is None:
            tensor = self._graph.get_tensor_by_name(name)
            self._state_tensors[name] = tensor
        if graph is self._graph:
            return tensor
        if tensor.dtype.base_dtype != tensor.dtype:  # A ref variable: functions take its value.
            snapshot_name = name + "/value"
            snapshot = self._state_tensors.get(snapshot_name)
            if snapshot is None:
                with self._graph.as_default(), tf.control_dependencies(None):
                    snapshot = tf.identity(tensor)
                self._state_tensors[snapshot_name] = snapshot
            tensor = snapshot
        return _function_state.capture(graph, tensor)

    # ---- __call__ --------------------------------------------------------------------------------

    @tf.autograph.experimental.do_not_convert  # Called in tf.function bodies; plain Python.
    def __call__(
        self,
        inputs: Any = None,
        _sentinel: Any = None,
        signature: str | None = None,
        as_dict: bool | None = None,
    ) -> Any:
        """Applies a signature to ``inputs``; returns its ``default`` output or, with
        ``as_dict=True``, the dict of all outputs."""
        if _sentinel is not None:
            raise TypeError(
                "Module.__call__ takes one positional argument (inputs); pass signature= and "
                "as_dict= by keyword."
            )
        graph = tf.compat.v1.get_default_graph()
        if self._eager_state is not None:
            if not graph.building_function:
                raise RuntimeError(
                    "This Module was created in a function body with eager state; apply it in "
                    "a function body (tf.function, tf.compat.v1.wrap_function)."
                )
        elif not _function_state.is_nested_in(graph, self._graph):
            raise RuntimeError("Module must be applied in the graph it was instantiated for.")
        signature = signature or "default"
        self._spec.signature(signature, self._tags)  # SignatureNotFoundError if unknown.
        input_infos = self._spec.get_input_info_dict(signature, self._tags)
        output_infos = self._spec.get_output_info_dict(signature, self._tags)
        _check_supported_types(signature, input_infos, output_infos)
        if not as_dict and "default" not in output_infos:
            raise TypeError("There is no output named 'default'. Use as_dict=True.")

        dict_inputs = _prepare_dict_inputs(inputs, input_infos)
        components: dict[str, list[tf.Tensor]] = {}
        values: dict[str, Any] = {}
        for key in sorted(dict_inputs):
            values[key] = _convert_input(key, dict_inputs[key], input_infos[key])
            components[key] = [_function_state.capture(graph, t) for t in _components(values[key])]

        context = _tf_internal.control_flow_context(graph)
        colocation: dict[str, list[str]] = {}
        for key, comps in components.items():
            for name, tensor in zip(input_infos[key].tensor_names, comps, strict=True):
                groups = tensor.op.colocation_groups()
                colocation[name] = [g.decode() for g in groups]
        if context is not None:
            components = {k: [context.AddValue(t) for t in v] for k, v in components.items()}

        apply_scope = graph.unique_name(f"{self._short_name}_apply_{signature.replace(':', '_')}")
        apply = _rewriter(self._spec).build_apply_graph(
            set(self._tags), signature, apply_scope, self._scope, self._trainable, colocation
        )
        input_map = []
        for mapping in apply.input_map:
            key = mapping.key
            if mapping.is_state:
                tensor = self._state_tensor(key if key[0] != "^" else key[1:] + ":0", graph)
                if context is not None:
                    tensor = context.AddValue(tensor)
            else:
                tensor = components[mapping.input_key][mapping.component]
            input_map.append((key, tensor))
        _import_serialized(
            graph, apply.graph_def, self._description(), input_map, apply.colocated_nodes
        )
        _register_functions(graph, apply.function_library)

        outputs: dict[str, Any] = {}
        for key, refs in apply.outputs.items():
            tensors = []
            for ref in refs:
                if ref.kind == _core.OutputRef.Kind.INPUT:
                    tensors.append(components[ref.input_key][ref.component])
                elif ref.kind == _core.OutputRef.Kind.STATE:
                    tensors.append(self._state_tensor(ref.tensor, graph))
                else:
                    tensors.append(graph.get_tensor_by_name(ref.tensor))
            info = output_infos[key]
            if info.is_sparse:
                outputs[key] = tf.SparseTensor(tensors[1], tensors[0], tensors[2])
            elif info.is_composite:
                outputs[key] = tf.nest.pack_sequence_as(
                    info.type_spec, tensors, expand_composites=True
                )
            else:
                outputs[key] = tensors[0]
        for name in apply.asset_tensors:
            graph.add_to_collection(
                tf.compat.v1.GraphKeys.ASSET_FILEPATHS, graph.get_tensor_by_name(name)
            )
        for name in apply.update_ops:
            graph.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, graph.as_graph_element(name))
        self._import_contexts(
            graph,
            {"cond_context": apply.cond_context, "while_context": apply.while_context},
            apply_scope,
        )
        if as_dict:
            return outputs
        return outputs["default"]

    # ---- introspection ---------------------------------------------------------------------------

    @property
    def variable_map(self) -> dict[str, Any]:
        """Module-relative variable name -> ``tf.Variable`` (a list for a partitioned one)."""
        return dict(self._variable_map)

    @property
    def variables(self) -> list[tf.Variable]:
        """All variables of the instance, sorted by ``variable_map`` key, partitions flattened."""
        result: list[tf.Variable] = []
        for _, value in sorted(self._variable_map.items()):
            result.extend(value if isinstance(value, list) else [value])
        return result

    @property
    def variable_scope_name(self) -> str:
        """The absolute scope of the instance's state ("module", "outer/module_1")."""
        return self._scope

    # ---- export ----------------------------------------------------------------------------------

    def _get_saver(self) -> Any:
        if self._saver is None:
            graph = self._graph
            finalized = graph.finalized
            if finalized:
                _tf_internal.unsafe_unfinalize(graph)
            try:
                with graph.as_default(), tf.control_dependencies(None):
                    with tf.compat.v1.name_scope(self._scope + "/"):
                        self._saver = tf.compat.v1.train.Saver(
                            self._variable_map,
                            sharded=True,
                            write_version=tf.compat.v1.train.SaverDef.V2,
                            name="export_saver",
                        )
            finally:
                if finalized:
                    graph.finalize()
        return self._saver

    def export(self, path: str | os.PathLike[str], session: tf.compat.v1.Session) -> None:
        """Writes the module (the spec, with this session's variable values) to ``path``."""
        if tf.compat.v1.get_default_graph() is not self._graph:
            raise RuntimeError(
                "default graph differs from the graph where the module was instantiated."
            )
        if session.graph is not self._graph:
            raise RuntimeError(
                "session graph differs from the graph where the module was instantiated."
            )
        from hubcore import _export

        save_variables: Callable[[str], Any] | None = None
        if self._variable_map:
            saver = self._get_saver()

            def save_variables(prefix: str) -> None:
                saver.save(session, prefix, write_meta_graph=False, write_state=False)

        _export.export_module(self._spec, path, save_variables, tags=self._tags)

    def __repr__(self) -> str:
        return (
            f"<hubcore.Module scope={self._scope!r} tags={format_tags(self._tags)} "
            f"trainable={self._trainable}>"
        )


def export_spec(
    spec: ModuleSpec,
    path: str | os.PathLike[str],
    _sentinel: Any = None,
    checkpoint_path: str | None = None,
    name_transform_fn: Callable[[str], str] | None = None,
) -> None:
    """``ModuleSpec.export``: writes ``spec`` with variable values read from ``checkpoint_path``.

    The module is instantiated (empty tag set) in a fresh graph, its variables are initialized
    from the checkpoint (``name_transform_fn`` maps module variable names to checkpoint names),
    and the instance is exported.
    """
    if _sentinel is not None:
        raise ValueError("ModuleSpec.export: pass checkpoint_path and name_transform_fn by name")
    if not checkpoint_path:
        raise ValueError("Missing mandatory `checkpoint_path` parameter")
    with tf.Graph().as_default():
        module = Module(spec)
        assignment = {
            (name_transform_fn(key) if name_transform_fn else key): value
            for key, value in module.variable_map.items()
        }
        if assignment:
            tf.compat.v1.train.init_from_checkpoint(checkpoint_path, assignment)
        init = tf.compat.v1.global_variables_initializer()
        with tf.compat.v1.Session() as session:
            session.run(init)
            module.export(os.fspath(path), session)


def _placeholder_for(name: str, info: Any) -> Any:
    if info.is_sparse:
        return tf.compat.v1.sparse_placeholder(info.dtype, shape=info.get_shape(), name=name)
    if info.is_composite:
        specs = tf.nest.flatten(info.type_spec, expand_composites=True)
        placeholders = [
            tf.compat.v1.placeholder(s.dtype, s.shape, name=f"{name}.component_{i}")
            for i, s in enumerate(specs)
        ]
        return tf.nest.pack_sequence_as(info.type_spec, placeholders, expand_composites=True)
    return tf.compat.v1.placeholder(info.dtype, info.get_shape(), name=name)


@contextlib.contextmanager
def eval_function_for_module(
    spec: ModuleSpec | str | os.PathLike[str], tags: Iterable[str] | None = None
) -> Iterator[Callable[..., Any]]:
    """Context manager yielding ``f(inputs, signature=None, as_dict=None)`` that evaluates the
    module's signatures in a private graph and session (variables and tables initialized)."""
    original_graph = tf.compat.v1.get_default_graph()
    with tf.Graph().as_default():
        module = Module(spec, tags=tags)
        placeholders: dict[str, dict[str, Any]] = {}
        outputs: dict[str, dict[str, Any]] = {}
        for signature in module.get_signature_names():
            with tf.compat.v1.variable_scope(signature):
                feeds = {
                    key: _placeholder_for(key, info)
                    for key, info in module.get_input_info_dict(signature).items()
                }
                placeholders[signature] = feeds
                outputs[signature] = module(feeds, signature=signature, as_dict=True)
        with tf.compat.v1.train.SingularMonitoredSession() as session:

            def func(
                inputs: Any = None,
                _sentinel: Any = None,
                signature: str | None = None,
                as_dict: bool | None = None,
            ) -> Any:
                if _sentinel is not None:
                    raise TypeError("Pass signature= and as_dict= by keyword.")
                signature = signature or "default"
                if signature not in placeholders:
                    module.get_input_info_dict(signature)  # Raises SignatureNotFoundError.
                feeds = placeholders[signature]
                dict_inputs = _prepare_dict_inputs(inputs, feeds)
                feed_dict = {feeds[key]: value for key, value in dict_inputs.items()}
                fetches = outputs[signature]
                if not as_dict:
                    if "default" not in fetches:
                        raise TypeError("There is no output named 'default'. Use as_dict=True.")
                    fetches = fetches["default"]
                return session.run(fetches, feed_dict=feed_dict)

            with original_graph.as_default():
                yield func
