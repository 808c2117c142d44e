"""Module state for ``hubcore.Module`` instances created inside function bodies.

Inside ``tf.function``, ``tf.compat.v1.wrap_function``, ``function.Defun`` or a TPU computation,
the module's state (variables, tables, their initializers) must exist once, outside the function,
as ``tf.init_scope`` arranges for variables: a function body runs all its ops on every call and
cannot run initializers ahead of time. When the outermost context is a graph, the state goes into
that graph as usual (``global_variables_initializer()`` and ``tables_initializer()`` there
initialize it) and each call captures the state tensors it needs. When it is eager,
:class:`EagerState` creates the state right away: variables restored from the checkpoint and
tables initialized, so the function computes the right values on its first call.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from hubcore import _tf_internal

__all__ = ["EagerState", "claim_eager_scope", "is_nested_in"]

_EAGER_SCOPES: set[str] = set()
_EAGER_SCOPES_LOCK = threading.Lock()


def claim_eager_scope(name: str) -> str:
    """An instance scope not used by any other eager-state module of this process.

    Tables and variables with a ``shared_name`` live in the eager context's resource manager under
    that name, so two instances must never share a scope there.
    """
    with _EAGER_SCOPES_LOCK:
        for suffix in itertools.count():
            scope = name if suffix == 0 else f"{name}_{suffix}"
            if scope not in _EAGER_SCOPES:
                _EAGER_SCOPES.add(scope)
                return scope
    raise AssertionError("unreachable")


def is_nested_in(graph: tf.Graph | None, outer: tf.Graph | None) -> bool:
    """True if ``graph`` is ``outer`` or a function graph built (directly or not) inside it."""
    while graph is not None and graph is not outer:
        graph = _tf_internal.outer_graph(graph)
    return graph is not None


def capture(graph: tf.Graph, tensor: tf.Tensor) -> tf.Tensor:
    """``tensor`` (from an outer graph or eager) as a tensor of the function graph ``graph``."""
    if graph.building_function and getattr(tensor, "graph", None) is not graph:
        return _tf_internal.capture(graph, tensor)
    return tensor


def _is_state_op(op: tf.Operation) -> bool:
    """The rule the C++ rewriter uses: a stateful op type without inputs (VarHandleOp,
    VariableV2, HashTableV2, ...)."""
    op_def = op.op_def
    return op_def is not None and op_def.is_stateful and not op_def.input_arg


class EagerState:
    """A module instance's state created in eager mode.

    ``import_state(graph)`` imports the instance's state graph into ``graph`` and returns its
    ``{VariableDef name: tf.Variable}``. It runs once inside a ``tf.compat.v1.wrap_function``,
    which lifts resource variables out as eager variables; then one call of the pruned function
    runs every initializer (checkpoint restores, table initializers) and returns the handles of
    the other state ops (tables), which stay valid while this object holds the function. TF1 ref
    variables cannot leave a function, so each becomes an eager resource variable holding its
    initial value.
    """

    def __init__(
        self, import_state: Callable[[tf.Graph], dict[str, tf.Variable]], trainable: bool
    ) -> None:
        built: dict[str, Any] = {}

        def build() -> None:
            graph = tf.compat.v1.get_default_graph()
            built["variables"] = import_state(graph)
            built["table_initializers"] = list(
                graph.get_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
            )
            built["state_ops"] = [op for op in graph.get_operations() if _is_state_op(op)]

        self._function = tf.compat.v1.wrap_function(build, [])
        graph_variables: dict[str, tf.Variable] = built["variables"]
        lifted = {v.name: v for v in self._function.variables}
        variable_ops = {v.op.name for v in graph_variables.values()}

        resource_names = [n for n, v in graph_variables.items() if n in lifted]
        ref_names = [n for n in graph_variables if n not in lifted]
        handle_ops = [op for op in built["state_ops"] if op.name not in variable_ops]
        fetches = {
            "init": [graph_variables[n].initializer for n in resource_names]
            + built["table_initializers"],
            "ref_values": [graph_variables[n].initial_value for n in ref_names],
            "handles": [op.outputs[0] for op in handle_ops],
        }
        self._run_once = self._function.prune([], fetches)
        results = self._run_once()

        self.variables: dict[str, tf.Variable] = {n: lifted[n] for n in resource_names}
        self._from_ref = set(ref_names)
        for name, value in zip(ref_names, results["ref_values"], strict=True):
            self.variables[name] = tf.Variable(
                value,
                name=name.rsplit(":", 1)[0],
                trainable=trainable and graph_variables[name].trainable,
            )
        self._handles = {
            op.outputs[0].name: handle
            for op, handle in zip(handle_ops, results["handles"], strict=True)
        }

    def tensor(self, graph: tf.Graph, name: str) -> tf.Tensor:
        """The state tensor ``name`` ("module/x:0") as a tensor of the function graph ``graph``:
        a variable's handle (a read of it for a former ref variable), or a table handle."""
        variable = self.variables.get(name)
        if variable is None:
            return capture(graph, self._handles[name])
        if name in self._from_ref:
            with graph.as_default():
                return variable.value()  # The module graph reads the ref; a read is equivalent.
        with graph.as_default():
            return _tf_internal.capture_handle(variable)  # Recorded as a read, for tapes.
