"""Creating module specs: ``create_module_spec``, ``add_signature``, ``attach_message``.

A ``module_fn`` is traced once per graph variant in a fresh ``tf.Graph``; the resulting
MetaGraphDefs become a ``tensorflow.SavedModel`` that the C++ core parses and validates, exactly as
it does for a module read from disk. The format and error texts follow tensorflow_hub 0.15 (see
docs/format.md).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hubcore import _core
from hubcore.errors import InvalidArgumentError
from hubcore.module_spec import ModuleSpec

__all__ = [
    "TagsAndArgs",
    "add_signature",
    "attach_message",
    "create_module_spec",
    "create_module_spec_from_saved_model",
]

_log = logging.getLogger("hubcore")

# Tuple keys: export_meta_graph never serializes them, so they live only while tracing.
_SIGNATURES_KEY = ("__saved_model_lib_signatures",)
_ATTACHMENTS_KEY = ("__hub_module_attachments",)
_ATTACHMENTS_COLLECTION = "hub_module_attachments"
_ASSETS_COLLECTION = "saved_model_assets"
# Collections a converted TF1 SavedModel always loses (tensorflow_hub did the same).
_ALWAYS_DROPPED = ("global_step", "legacy_init_op", "saved_model_main_op")
_ATTACHMENT_KEY_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]*$")

TagsAndArgs = Sequence[tuple[Iterable[str], Mapping[str, Any]]]


def _tf():
    import tensorflow as tf

    return tf


def _value_components(value: Any) -> list[Any]:
    """The tensors a signature value consists of (composites flattened)."""
    tf = _tf()
    if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
        return tf.nest.flatten(value, expand_composites=True)
    return [value]


def _check_input_colocation(name: str, inputs: Mapping[str, Any]) -> None:
    """A signature input must not be subject to ``tf.colocate_with`` (its op only with itself)."""
    for key, value in inputs.items():
        # A non-tensor value has no `.op`: AttributeError, as in tensorflow_hub.
        for tensor in _value_components(value):
            op = tensor.op
            groups = op.colocation_groups()
            if groups != [b"loc:@" + op.name.encode()]:
                raise ValueError(
                    "A tensor x used as input in a signature must not be subject to a "
                    "tf.colocate_with(y) constraint. (The reverse would be allowed.)\n"
                    f"Details: tensor '{tensor}' appears as input '{key}' of signature "
                    f"'{name}' but has Tensor.op.colocation_groups() == {groups}"
                )


def _warn_multi_output_inputs(name: str, inputs: Mapping[str, Any]) -> None:
    for key, value in inputs.items():
        for tensor in _value_components(value):
            if len(tensor.op.outputs) != 1:
                _log.error(
                    "Signature '%s' input '%s' (%s) comes from an op with %d outputs; such "
                    "inputs may fail when the module is applied.",
                    name,
                    key,
                    tensor.name,
                    len(tensor.op.outputs),
                )


def _check_signature_types(
    name: str, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
) -> None:
    """Only dense, sparse and ragged tensors can be signature inputs and outputs.

    The message keeps tensorflow_hub's wording ("should have one of the types"), which programs
    match on.
    """
    tf = _tf()
    supported = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)
    bad = [
        f"  * {what} '{key}' has type {type(value).__name__}"
        for what, values in (("input", inputs), ("output", outputs))
        for key, value in sorted(values.items())
        if not isinstance(value, supported)
    ]
    if bad:
        raise InvalidArgumentError(
            "The inputs and outputs declared in hub.add_signature() for signature "
            f"'{name}' should have one of the types that are supported by this version of "
            "hubcore: Tensor, SparseTensor, RaggedTensor.\n" + "\n".join(bad)
        )


def add_signature(name: str | None = None, inputs: Any = None, outputs: Any = None) -> None:
    """Adds a signature to the module being defined (call it inside ``module_fn``).

    ``inputs``/``outputs`` are a dict of name -> tf.Tensor / tf.SparseTensor / tf.RaggedTensor, or a
    single value (stored under the name ``default``). Re-adding a name replaces the signature.
    """
    tf = _tf()
    name = name or "default"
    inputs = {} if inputs is None else inputs
    outputs = {} if outputs is None else outputs
    if not isinstance(inputs, Mapping):
        inputs = {"default": inputs}
    if not isinstance(outputs, Mapping):
        outputs = {"default": outputs}
    _warn_multi_output_inputs(name, inputs)
    _check_input_colocation(name, inputs)
    _check_signature_types(name, inputs, outputs)
    build = tf.compat.v1.saved_model.build_tensor_info
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # build_tensor_info's "deprecated" warning is noise here
    try:
        signature = tf.compat.v1.saved_model.build_signature_def(
            {k: build(v) for k, v in inputs.items()}, {k: build(v) for k, v in outputs.items()}
        )
    finally:
        logger.setLevel(level)
    tf.compat.v1.add_to_collection(_SIGNATURES_KEY, (name, signature))


def attach_message(key: str, message: Any) -> None:
    """Attaches a protocol message (or serialized bytes) to the module being defined.

    Readers get it back with ``ModuleSpec.get_attached_message(key, type)``. Call inside
    ``module_fn``; a repeated key keeps its first position and the last value.
    """
    tf = _tf()
    if not isinstance(key, str) or not _ATTACHMENT_KEY_RE.match(key):
        raise ValueError(f"hub.attach_message() called with malformed key '{key}'")
    if isinstance(message, (bytes, bytearray)):
        data = bytes(message)
    elif hasattr(message, "SerializeToString"):
        data = message.SerializeToString()
    else:
        raise TypeError(
            f"hub.attach_message() needs a protocol message, got {type(message).__name__}"
        )
    tf.compat.v1.add_to_collection(_ATTACHMENTS_KEY, (key, data))


def _state_op_colocation_error(graph: Any, reported_tags: list[str] | None) -> str | None:
    """A state op (stateful, no inputs) may only be colocated with other state ops."""
    stateful_no_inputs: dict[str, bool] = {}
    state_ops = {}
    for op in graph.get_operations():
        is_state = stateful_no_inputs.get(op.type)
        if is_state is None:
            op_def = op.op_def
            is_state = bool(op_def.is_stateful and not op_def.input_arg)
            stateful_no_inputs[op.type] = is_state
        if is_state:
            state_ops[op.name] = op
    for op in state_ops.values():
        for group in op.colocation_groups():
            if not (group.startswith(b"loc:@") and group[5:].decode() in state_ops):
                where = "" if reported_tags is None else f"in the graph for tags {reported_tags}, "
                return (
                    "A state-holding node x of a module's graph (e.g., a Variable op) must not "
                    "be subject to a tf.colocate_with(y) constraint unless y is also a "
                    f"state-holding node.\nDetails: {where}node '{op.name}' has op '{op.type}', "
                    "which counts as state-holding, but Operation.colocation_groups() == "
                    f"{op.colocation_groups()}. "
                )
    return None


def _normalize_tag_list(tags: Iterable[str] | None) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    return list(dict.fromkeys(tags))  # order kept, duplicates dropped


def _trace_variant(
    module_fn: Callable[..., Any],
    tags: list[str],
    args: Mapping[str, Any],
    drop_collections: Iterable[str],
    reported_tags: list[str] | None,
) -> Any:
    """Traces ``module_fn(**args)`` in a fresh graph and returns its MetaGraphDef."""
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        with tf.compat.v1.variable_scope("", use_resource=True):
            module_fn(**args)
        for key in drop_collections:
            del graph.get_collection_ref(key)[:]
        error = _state_op_colocation_error(graph, reported_tags)
        if error:
            raise ValueError(error)
        # Only string keys are serialized; listing them avoids TF's warning about tuple keys.
        keys = [k for k in graph.get_all_collection_keys() if isinstance(k, str)]
        meta_graph = tf.compat.v1.train.export_meta_graph(
            graph=graph, strip_default_attrs=True, collection_list=keys
        )
        meta_graph.meta_info_def.tags.extend(tags)
        signatures = graph.get_collection(_SIGNATURES_KEY)
        if not signatures:
            raise ValueError(
                "No signatures present. Please call hub.add_signature(...)"
                "at least once in the module_fn."
            )
        for name, signature in signatures:
            meta_graph.signature_def[name].CopyFrom(signature)  # last one wins
        attachments: dict[str, bytes] = {}
        for key, data in graph.get_collection(_ATTACHMENTS_KEY):
            attachments[key] = data  # dict order: first position, last value
        if attachments:
            meta_graph.collection_def[_ATTACHMENTS_COLLECTION].bytes_list.value[:] = [
                _core.serialize_attachment(k, v) for k, v in attachments.items()
            ]
    return meta_graph


def create_module_spec(
    module_fn: Callable[..., Any],
    tags_and_args: TagsAndArgs | None = None,
    drop_collections: Iterable[str] | None = None,
) -> ModuleSpec:
    """Creates a ModuleSpec by tracing ``module_fn`` once per graph variant.

    ``module_fn`` builds the module's graph with ``tf.compat.v1`` ops and calls
    :func:`add_signature` (at least once) and optionally :func:`attach_message`.
    ``tags_and_args`` is a list of ``(tags, kwargs)``: one variant per entry, traced as
    ``module_fn(**kwargs)``; by default one variant with the empty tag set. Collections listed in
    ``drop_collections`` are emptied before export (needed for e.g. ``summaries``, ``losses``).

    Raises ValueError for: no signature, a state op colocated with a non-state op, duplicate tag
    sets, and collections a TF1 Hub module may not contain.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    report_tags = bool(tags_and_args)
    if not tags_and_args:
        tags_and_args = [(set(), {})]
    drop = list(drop_collections or [])
    saved_model = saved_model_pb2.SavedModel()
    seen: list[frozenset[str]] = []
    for tags, args in tags_and_args:
        tag_list = _normalize_tag_list(tags)
        if frozenset(tag_list) in seen:
            raise ValueError(f"Tags {sorted(tag_list)} used repeatedly in tags_and_args")
        seen.append(frozenset(tag_list))
        meta_graph = _trace_variant(
            module_fn, tag_list, dict(args or {}), drop, tag_list if report_tags else None
        )
        saved_model.meta_graphs.append(meta_graph)
    return ModuleSpec(
        _core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString(), "", False)
    )


def create_module_spec_from_saved_model(
    saved_model_path: str | os.PathLike[str], drop_collections: Iterable[str] | None = None
) -> ModuleSpec:
    """Creates a ModuleSpec from a TF1 SavedModel directory (``saved_model.pb`` + variables).

    Tags and signature names stay as saved (e.g. ``{"serve"}`` and ``serving_default``); the
    ``saver_def`` is kept. Collections ``global_step``, ``legacy_init_op``,
    ``saved_model_main_op`` and those in ``drop_collections`` are removed. Assets recorded in
    ``saved_model_assets`` or in ``asset_file_def`` resolve to ``<saved_model_path>/assets``.
    The result's variables come from ``<saved_model_path>/variables/variables``; export it with
    ``Module(spec, tags=...).export(path, session)``.
    """
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    from hubcore.errors import CorruptModuleError, ModulePathNotFoundError

    path = os.path.abspath(os.fspath(saved_model_path))
    pb = os.path.join(path, "saved_model.pb")
    if not os.path.isdir(path):
        raise ModulePathNotFoundError(f"{saved_model_path} does not exist.")
    if not os.path.isfile(pb):
        raise ModulePathNotFoundError(
            f"{saved_model_path} is not a TF1 SavedModel: saved_model.pb is missing"
        )
    with open(pb, "rb") as f:
        data = f.read()
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(data)
    except Exception as e:  # protobuf's DecodeError
        raise CorruptModuleError(f"Cannot parse file {pb}: {e}") from None
    drop = set(_ALWAYS_DROPPED) | set(drop_collections or [])
    for meta_graph in saved_model.meta_graphs:
        for key in drop:
            if key in meta_graph.collection_def:
                del meta_graph.collection_def[key]
        # TF's SavedModel builder records assets in asset_file_def; tensorflow_hub only reads
        # the saved_model_assets collection, so move them there (the C++ loader resolves them).
        if meta_graph.asset_file_def:
            collection = meta_graph.collection_def[_ASSETS_COLLECTION].any_list
            listed = set()
            for any_value in collection.value:
                asset = meta_graph_pb2.AssetFileDef()
                any_value.Unpack(asset)
                listed.add(asset.tensor_info.name)
            for asset in meta_graph.asset_file_def:
                if asset.tensor_info.name not in listed:
                    collection.value.add().Pack(asset)
            del meta_graph.asset_file_def[:]
    has_checkpoint = os.path.isfile(os.path.join(path, "variables", "variables.index"))
    native = _core.ModuleSpec.from_saved_model_bytes(
        saved_model.SerializeToString(), path, has_checkpoint
    )
    return ModuleSpec(native)
