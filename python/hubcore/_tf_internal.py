"""The one boundary between hubcore and TensorFlow's private Python API.

hubcore imports GraphDefs that its C++ core already rewrote into the caller's ``tf.Graph``, and
must leave that graph exactly as ``tf.compat.v1.import_graph_def`` would (Python ``Operation``
objects, colocation, device and control-flow contexts) without paying for what that function
does per node in Python. The public API has no way to do this, so this module reaches into
TensorFlow. Every private symbol is fetched through :func:`private`, which records it in
:data:`PRIVATE_SYMBOLS` with the signature hubcore relies on and why the public API does not
suffice; ``tests/test_tf_internal.py`` checks every entry against the installed TensorFlow, so a
TensorFlow upgrade fails there, naming the symbol, rather than deep inside a graph import.

To use one more private symbol: add one ``private(...)`` call below and use its result. Nothing
outside this module may import ``tensorflow.python`` or touch an underscore attribute of a
TensorFlow object.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import inspect
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

__all__ = [
    "PRIVATE_SYMBOLS",
    "DenseColumn",
    "DenseColumnV1",
    "FeatureTransformationCache",
    "PrivateSymbol",
    "StateManager",
    "StateManagerImpl",
    "capture",
    "capture_handle",
    "context_from_proto",
    "control_flow_context",
    "decode_type_spec",
    "defun",
    "import_graph_def",
    "outer_graph",
    "private",
    "register_eager_functions",
    "register_functions",
    "resolve",
    "signature_text",
    "state_manager_trainable",
    "tpu_replicate_context",
    "unsafe_unfinalize",
    "variable_from_def",
]


@dataclasses.dataclass(frozen=True)
class PrivateSymbol:
    """One private TensorFlow symbol hubcore depends on."""

    path: str  # "module.path.Name" or "module.path.Class.attribute"
    signature: str | None  # what signature_text() gives today; None for properties
    why: str  # why the public API does not suffice


PRIVATE_SYMBOLS: list[PrivateSymbol] = []


def resolve(path: str) -> Any:
    """Imports the longest module prefix of ``path`` and walks the remaining attributes."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            value = inspect.getattr_static(value, attribute)
        return value
    raise ImportError(f"no module in {path!r}")


def signature_text(value: Any) -> str | None:
    """A comparable signature: parameter names and defaults of a Python function, or the
    pybind11 docstring signature of a native one; None for a property."""
    if isinstance(value, property):
        return None
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        first_line = (getattr(value, "__doc__", None) or "").strip().splitlines()[:1]
        return first_line[0][first_line[0].find("(") :] if first_line else ""
    return str(
        signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
    )


def private(path: str, signature: str | None, why: str) -> Any:
    """Registers the private symbol ``path`` and returns it.

    Methods come back unbound (call them with the instance first); properties come back as the
    ``property`` object (use ``.__get__(instance)``).
    """
    PRIVATE_SYMBOLS.append(PrivateSymbol(path, signature, why))
    try:
        return resolve(path)
    except (ImportError, AttributeError) as e:
        raise ImportError(
            f"TensorFlow {tf.__version__} lacks the private symbol {path} that hubcore uses: {e}"
        ) from None


# ---- importing a rewritten GraphDef into a Python tf.Graph ---------------------------------------

_IMPORT_WHY = (
    "tf.compat.v1.import_graph_def re-serializes the GraphDef, adds default attributes per node "
    "in Python and cannot skip name uniquification or colocation validation; the C API does it "
    "in one call."
)
_SCOPED_OPTIONS = private(
    "tensorflow.python.framework.c_api_util.ScopedTFImportGraphDefOptions", "()", _IMPORT_WHY
)
_SCOPED_RESULTS = private(
    "tensorflow.python.framework.c_api_util.ScopedTFImportGraphDefResults",
    "(results)",
    "Frees the C API's import results (no public wrapper).",
)
_PYWRAP = "tensorflow.python.client.pywrap_tf_session."
_OPTIONS_T = "tensorflow.python.client._pywrap_tf_session.TF_ImportGraphDefOptions"
_BUFFER_T = "tensorflow.python.client._pywrap_tf_session.TF_Buffer"
_SET_PREFIX = private(
    _PYWRAP + "TF_ImportGraphDefOptionsSetPrefix",
    f"(arg0: {_OPTIONS_T}, arg1: str) -> None",
    "Names in the rewritten graph are final: import without a prefix.",
)
_SET_UNIQUIFY_NAMES = private(
    _PYWRAP + "TF_ImportGraphDefOptionsSetUniquifyNames",
    f"(arg0: {_OPTIONS_T}, arg1: int) -> None",
    "The C++ rewriter already chose unique names; import_graph_def cannot turn this off.",
)
_SET_VALIDATE_COLOCATION = private(
    _PYWRAP + "TF_ImportGraphDefOptionsSetValidateColocationConstraints",
    f"(arg0: {_OPTIONS_T}, arg1: int) -> None",
    "Colocation targets may be state ops imported earlier; import_graph_def always validates.",
)
_REMAP_CONTROL_DEPENDENCY = private(
    _PYWRAP + "TF_ImportGraphDefOptionsRemapControlDependency",
    f"(arg0: {_OPTIONS_T}, arg1: str, "
    "arg2: tensorflow.python.client._pywrap_tf_session.TF_Operation) -> None",
    "import_graph_def's input_map maps '^op' keys only to ops by name; this takes the C op.",
)
_ADD_INPUT_MAPPING = private(
    _PYWRAP + "TF_ImportGraphDefOptionsAddInputMapping",
    f"(arg0: {_OPTIONS_T}, arg1: str, arg2: int, "
    "arg3: tensorflow.python.client._pywrap_tf_session.TF_Output) -> None",
    _IMPORT_WHY,
)
_NEW_BUFFER = private(
    _PYWRAP + "TF_NewBufferFromString", f"(arg0: bytes) -> {_BUFFER_T}", _IMPORT_WHY
)
_DELETE_BUFFER = private(_PYWRAP + "TF_DeleteBuffer", f"(arg0: {_BUFFER_T}) -> None", _IMPORT_WHY)
_IMPORT_WITH_RESULTS = private(
    _PYWRAP + "TF_GraphImportGraphDefWithResults",
    f"(arg0: PyGraph, arg1: {_BUFFER_T}, arg2: {_OPTIONS_T}) -> "
    "tensorflow.python.client._pywrap_tf_session.TF_ImportGraphDefResults",
    _IMPORT_WHY,
)
_AS_TF_OUTPUT = private(
    "tensorflow.python.framework.ops.SymbolicTensor._as_tf_output",
    "(self: object) -> object",
    "The C API input mapping needs the TF_Output of a tensor; there is no public accessor.",
)
_GRAPH = "tensorflow.python.framework.ops.Graph."
_MUTATION_LOCK = private(
    _GRAPH + "_mutation_lock",
    "(self)",
    "Graph mutations through the C API must hold the lock the Python Graph uses.",
)
_C_GRAPH = private(
    _GRAPH + "_c_graph", None, "The C API import needs the graph's TF_Graph; no public accessor."
)
_NEW_OPERATIONS = private(
    "tensorflow.python.client._pywrap_tf_session.PyGraph.new_operations",
    "(self: object) -> list[TF_Operation]",
    "Lists the C ops the import added, so only they get Python Operation objects.",
)
_CREATE_OP_FROM_TF_OPERATION = private(
    _GRAPH + "_create_op_from_tf_operation",
    "(self, c_op, compute_device=True)",
    "Creates the Python Operation for an imported C op, as import_graph_def does internally.",
)
_CONTROL_DEPENDENCIES_STACK = private(
    _GRAPH + "_control_dependencies_stack",
    None,
    "Tells whether a tf.control_dependencies() block is active, to skip per-op work otherwise.",
)
_CONTROL_DEPENDENCIES_FOR_INPUTS = private(
    _GRAPH + "_control_dependencies_for_inputs",
    "(self, input_ops)",
    "The active control dependencies an imported op must get, as for a newly created op.",
)
_GET_CONTROL_FLOW_CONTEXT = private(
    _GRAPH + "_get_control_flow_context",
    "(self)",
    "v1 cond/while contexts have no public accessor; imported ops must join the active one.",
)
_GET_OPERATION_BY_NAME = private(
    "tensorflow.python.client._pywrap_tf_session.PyGraph._get_operation_by_name",
    "(self: object, arg0: str) -> object",
    "Looks an op up without as_graph_element's per-call type dispatch and locking.",
)
_DEVICE_FUNCTION_STACK = private(
    _GRAPH + "_device_function_stack",
    None,
    "Tells whether a tf.device() block is active, to skip per-op device work otherwise.",
)
_APPLY_DEVICE_FUNCTIONS = private(
    _GRAPH + "_apply_device_functions",
    "(self, op)",
    "Applies the active tf.device() functions to an imported op, as import_graph_def does.",
)
_SET_DEVICE = private(
    "tensorflow.python.framework.ops.Operation._set_device",
    "(self, device)",
    "Operation.device is read-only; imported ops must get the device of the active context.",
)
_ADD_CONTROL_INPUTS = private(
    "tensorflow.python.framework.ops.Operation._add_control_inputs",
    "(self: object, arg0: Iterable) -> None",
    "Adds the active control dependencies to an op after it was created by the import.",
)
_CONTROL_FLOW_POST_PROCESSING = private(
    "tensorflow.python.framework.ops.Operation._control_flow_post_processing",
    "(self, input_tensors=None)",
    "Registers an imported op with the active v1 control-flow context.",
)
_MAYBE_DEVICE = private(
    "tensorflow.python.framework.importer._MaybeDevice",
    "(device)",
    "import_graph_def's way to re-apply an imported device under the active device functions.",
)
_GET_COLOCATION_NAMES = private(
    "tensorflow.python.framework.importer._GetColocationNames",
    "(op)",
    "Reads an op's colocation targets (`_class` attribute) as import_graph_def does.",
)
_FROM_LIBRARY = private(
    "tensorflow.python.framework.function.from_library",
    "(lib)",
    "Builds Python function objects for a FunctionDefLibrary; the Python graph must know the "
    "imported functions for gradients through v2 control flow, and nothing public does that.",
)
_IS_FUNCTION = private(
    _GRAPH + "_is_function",
    "(self, name)",
    "Tells whether the Python graph already knows a function (no public query).",
)


def import_graph_def(
    graph: tf.Graph,
    graph_def: bytes,
    input_map: Iterable[tuple[str, tf.Tensor]] = (),
    colocated_nodes: Iterable[str] = (),
) -> None:
    """Imports a serialized GraphDef whose names are final (no prefix, no uniquification).

    ``input_map`` pairs are (key, tensor); a key ``^op`` remaps control inputs to tensor.op.
    ``colocated_nodes`` names the imported nodes with a ``_class`` attribute. Unlike
    ``tf.compat.v1.import_graph_def`` this skips the per-node Python default-attribute pass (the
    C++ importer adds defaults itself), the proto re-serialization and, unless a ``tf.device``
    or control-flow context is active, the per-op device/context bookkeeping. Raises
    ``tf.errors.OpError`` when TensorFlow rejects the graph.
    """
    scoped_options = _SCOPED_OPTIONS()
    options = scoped_options.options
    _SET_PREFIX(options, "")
    _SET_UNIQUIFY_NAMES(options, False)
    _SET_VALIDATE_COLOCATION(options, False)
    for key, tensor in input_map:
        if key.startswith("^"):
            _REMAP_CONTROL_DEPENDENCY(options, key[1:], _AS_TF_OUTPUT(tensor).oper)
        else:
            name, _, index = key.rpartition(":")
            _ADD_INPUT_MAPPING(options, name, int(index), _AS_TF_OUTPUT(tensor))
    gc_enabled = gc.isenabled()
    gc.disable()  # Thousands of new Operation objects: no full collections halfway.
    try:
        with _MUTATION_LOCK(graph):
            buffer = _NEW_BUFFER(graph_def)
            try:
                with _C_GRAPH.__get__(graph).get() as c_graph:
                    results = _IMPORT_WITH_RESULTS(c_graph, buffer, options)
                _SCOPED_RESULTS(results)
            finally:
                _DELETE_BUFFER(buffer)
            _process_new_ops(graph, colocated_nodes)
    finally:
        if gc_enabled:
            gc.enable()


def _process_new_ops(graph: tf.Graph, colocated_nodes: Iterable[str]) -> None:
    """What ``importer._ProcessNewOps`` does, skipping the no-op work when nothing is active."""
    new_ops = [
        _CREATE_OP_FROM_TF_OPERATION(graph, c_op, compute_device=False)
        for c_op in _NEW_OPERATIONS(graph)
    ]
    if _CONTROL_DEPENDENCIES_STACK.__get__(graph) or _GET_CONTROL_FLOW_CONTEXT(graph) is not None:
        for op in new_ops:
            inputs = op.inputs
            _ADD_CONTROL_INPUTS(op, _CONTROL_DEPENDENCIES_FOR_INPUTS(graph, inputs))
            _CONTROL_FLOW_POST_PROCESSING(op, inputs)
    colocated = [_GET_OPERATION_BY_NAME(graph, name) for name in colocated_nodes]
    if any(_DEVICE_FUNCTION_STACK.__get__(graph).peek_objs()):  # Inside tf.device(): apply it.
        for op in new_ops:
            original = op.device
            _SET_DEVICE(op, "")
            with _MAYBE_DEVICE(original):
                _APPLY_DEVICE_FUNCTIONS(graph, op)
    # An op colocated with another op that has a device moves there (as TF's importer does).
    for op in colocated:
        for target in _GET_COLOCATION_NAMES(op):
            if target == op.name:
                continue
            try:
                other = _GET_OPERATION_BY_NAME(graph, target)
            except KeyError:
                continue
            if other.device:
                _SET_DEVICE(op, other.device)
                break


def register_functions(graph: tf.Graph, library: Any) -> None:
    """Makes a FunctionDefLibrary's functions known to the Python graph, as import_graph_def
    does (the C++ import already added them to the TF graph)."""
    names = [f.signature.name for f in library.function]
    if all(_IS_FUNCTION(graph, name) for name in names):
        return
    for function in _FROM_LIBRARY(library):
        if not _IS_FUNCTION(graph, function.name):
            function.add_to_graph(graph)


def control_flow_context(graph: tf.Graph) -> Any:
    """The active v1 control-flow context (cond/while) of ``graph``, or None."""
    return _GET_CONTROL_FLOW_CONTEXT(graph)


# ---- rebuilding Python objects from protos -------------------------------------------------------

_GET_FROM_PROTO_FUNCTION = private(
    "tensorflow.python.framework.ops.get_from_proto_function",
    "(collection_name)",
    "Rebuilds variables and v1 control-flow contexts from their protos exactly as a MetaGraph "
    "import does (resource or ref variable, saved slice info); tf.Variable.from_proto builds "
    "only ref variables and contexts have no public constructor.",
)
_UNSAFE_UNFINALIZE = private(
    _GRAPH + "_unsafe_unfinalize",
    "(self)",
    "Module.export builds its Saver lazily, possibly after a MonitoredSession finalized the "
    "graph; tensorflow_hub did the same.",
)
_DECODE_PROTO = private(
    "tensorflow.python.saved_model.nested_structure_coder.decode_proto",
    "(proto)",
    "Decodes a TypeSpecProto of a composite signature input/output; TF has no public decoder.",
)


def variable_from_def(variable_def: Any) -> tf.Variable:
    """The ``tf.Variable`` described by a VariableDef whose ops are already in the graph."""
    return _GET_FROM_PROTO_FUNCTION("variables")(variable_def)


def context_from_proto(collection: str, proto: Any, import_scope: str) -> Any:
    """A v1 control-flow context ("cond_context" or "while_context") from its proto."""
    return _GET_FROM_PROTO_FUNCTION(collection)(proto, import_scope=import_scope)


def unsafe_unfinalize(graph: tf.Graph) -> None:
    """Lets a finalized graph take new ops again (the caller finalizes it afterwards)."""
    _UNSAFE_UNFINALIZE(graph)


def decode_type_spec(structured_value: Any) -> Any:
    """Decodes a StructuredValue holding a TypeSpecProto (TensorFlow's own decoder)."""
    return _DECODE_PROTO(structured_value)


# ---- wrapping function forms into TF2 functions (hubcore.load, export-tf2) -----------------------

_VARIABLE_ACCESSED = private(
    "tensorflow.python.ops.resource_variable_ops.variable_accessed",
    "(variable)",
    "A function form reads variables through handles captured into the tf.function; TF's own "
    "variable reads call this so that the FuncGraph and GradientTape watch the variable. "
    "Without it, a tape would give no gradient for a module variable.",
)
_FUNC_GRAPH_CAPTURE = private(
    "tensorflow.python.framework.func_graph.FuncGraph.capture",
    "(self, tensor, name=None, shape=None)",
    "import_graph_def's input_map takes graph tensors only; an eager handle (variable, table, "
    "asset path) must first become a captured input of the function being traced, which is "
    "what TF does implicitly for op inputs.",
)


_EAGER_CONTEXT = private(
    "tensorflow.python.eager.context.context",
    "()",
    "The eager runtime that runs tf.functions; see _ADD_FUNCTION_DEF.",
)
_ADD_FUNCTION_DEF = private(
    "tensorflow.python.eager.context.Context.add_function_def",
    "(self, fdef)",
    "A function form's library functions (v2 control-flow branches, TF1 while loops run as "
    "functions) must be known to the eager runtime that runs the tf.function; import_graph_def "
    "adds them to the FuncGraph only. TF's own wrap_function registers imported functions so.",
)


def register_eager_functions(library: Any) -> None:
    """Registers a FunctionDefLibrary's functions with the eager runtime, when the outermost
    context is eager (a tf.function importing them runs there). Registering a function again
    with the same definition is a no-op; the runtime refuses a different body under a taken
    name, which is why function forms name functions after their content."""
    if not library.function:
        return
    with tf.init_scope():
        if not tf.executing_eagerly():
            return
        context = _EAGER_CONTEXT()
        for function in library.function:
            _ADD_FUNCTION_DEF(context, function)


def capture_handle(variable_or_tensor: Any) -> tf.Tensor:
    """The graph tensor for an eager resource handle (or asset path) in the tf.function being
    traced; for a variable, also records the access as a TF read would."""
    graph = tf.compat.v1.get_default_graph()
    if isinstance(variable_or_tensor, tf.Variable):
        _VARIABLE_ACCESSED(variable_or_tensor)
        variable_or_tensor = variable_or_tensor.handle
    return capture(graph, variable_or_tensor)


# ---- legacy function and TPU contexts (what tensorflow_hub supported; the tests build them) -----

_DEFUN = private(
    "tensorflow.python.framework.function.Defun",
    "(*input_types, **kwargs)",
    "TF1 programs build functions in graphs with function.Defun, which has no public export; "
    "hubcore.Module must work inside one as tensorflow_hub's did.",
)
_TPU_REPLICATE_CONTEXT = private(
    "tensorflow.python.tpu.tpu_replication.TPUReplicateContext",
    "(name, num_replicas, pivot)",
    "The control-flow context of a TPU computation (tf.compat.v1.tpu.replicate builds it but "
    "needs a TPU to run); hubcore.Module must work inside one, and tests enter it directly.",
)
_DEFUN_GRAPH_CAPTURE = private(
    "tensorflow.python.framework.function._FuncGraph.capture",
    "(self, tensor, name=None)",
    "A tensor from outside a function.Defun body must become a captured input before the C API "
    "import can wire it (TF does this implicitly for op inputs only).",
)
_FUNC_GRAPH_OUTER = private(
    "tensorflow.python.framework.func_graph.FuncGraph.outer_graph",
    None,
    "Which graph a function graph is built in, so that a Module created there can be applied "
    "inside the function; no public accessor.",
)
_DEFUN_GRAPH_OUTER = private(
    "tensorflow.python.framework.function._FuncGraph.outer_graph",
    None,
    "As FuncGraph.outer_graph, for function.Defun bodies.",
)
_FUNC_GRAPH_CLASS = private(
    "tensorflow.python.framework.func_graph.FuncGraph",
    "(name, collections=None, capture_by_value=None, structured_input_signature=None, "
    "structured_outputs=None)",
    "Tells a tf.function / wrap_function / v2 control-flow graph from a function.Defun graph, "
    "whose capture and outer_graph differ.",
)


def outer_graph(graph: tf.Graph) -> tf.Graph | None:
    """The graph a function graph (tf.function, wrap_function, Defun, v2 control flow) is built
    in; None for any other graph."""
    if not graph.building_function:
        return None
    if isinstance(graph, _FUNC_GRAPH_CLASS):
        return _FUNC_GRAPH_OUTER.__get__(graph)
    return _DEFUN_GRAPH_OUTER.__get__(graph)


def capture(graph: tf.Graph, tensor: Any) -> tf.Tensor:
    """``tensor`` (from an outer graph, or eager) as a captured input of the function graph
    ``graph``, which import_graph_def's input_map can then use."""
    if isinstance(graph, _FUNC_GRAPH_CLASS):
        return _FUNC_GRAPH_CAPTURE(graph, tensor)
    return _DEFUN_GRAPH_CAPTURE(graph, tensor)


def defun(*input_types: Any, **kwargs: Any) -> Any:
    """``function.Defun(*input_types, **kwargs)``: a TF1 graph function decorator."""
    return _DEFUN(*input_types, **kwargs)


def tpu_replicate_context(name: str, num_replicas: int, pivot: tf.Operation) -> Any:
    """A ``TPUReplicateContext`` (enter it with ``.Enter()``, leave with ``.Exit()``)."""
    return _TPU_REPLICATE_CONTEXT(name, num_replicas, pivot)


# ---- feature columns backed by modules (hubcore.feature_column) ---------------------------------

_COLUMN_BASE_WHY = (
    "tf.feature_column and tf.compat.v1.feature_column only build TensorFlow's own columns; a "
    "column computed by a module must subclass the base classes, which TensorFlow does not export "
    "(tensorflow_hub subclassed the same two)."
)
DenseColumnV1 = private(
    "tensorflow.python.feature_column.feature_column._DenseColumn", "()", _COLUMN_BASE_WHY
)
DenseColumn = private(
    "tensorflow.python.feature_column.feature_column_v2.DenseColumn", "()", _COLUMN_BASE_WHY
)
StateManager = private(
    "tensorflow.python.feature_column.feature_column_v2.StateManager",
    "()",
    "The v2 machinery hands columns a StateManager; text_embedding_column_v2 needs its "
    "has_resource (checked at construction, as tensorflow_hub did).",
)
_HAS_RESOURCE = private(
    "tensorflow.python.feature_column.feature_column_v2.StateManager.has_resource",
    "(self, feature_column, name)",
    "text_embedding_column_v2 keeps its loaded model as a state-manager resource.",
)
StateManagerImpl = private(
    "tensorflow.python.feature_column.feature_column_v2._StateManagerImpl",
    "(layer, trainable)",
    "The state manager the v2 feature-column layers (tf_keras DenseFeatures) use; TF 2.21 ships no "
    "public layer for v2 columns, so tests drive columns with it, and columns read its trainable "
    "flag (an attribute with no public accessor) as tensorflow_hub's did.",
)
FeatureTransformationCache = private(
    "tensorflow.python.feature_column.feature_column_v2.FeatureTransformationCache",
    "(features)",
    "The v2 feature-column layers transform features through it (no public equivalent).",
)


def state_manager_trainable(state_manager: Any) -> bool:
    """Whether the layer that owns ``state_manager`` trains (True when it does not say)."""
    return bool(getattr(state_manager, "_trainable", True))
