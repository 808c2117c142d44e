"""``hubcore.Module`` inside function bodies: tf.compat.v1.wrap_function and tf.function in eager
mode, function.Defun in a graph, and a TPU replicate context (no TPU needed to build or run it).

The module's state is created once outside the function (``tf.init_scope``); the function body
holds only the signature's ops, with their control dependencies.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import hubcore as hub  # noqa: E402
from conftest import DATA  # noqa: E402
from hubcore import _tf_internal  # noqa: E402

tf1 = tf.compat.v1
TEXT_TABLE = str(DATA / "text_table")
TINY = str(DATA / "tiny")


def _golden(name: str) -> dict[str, np.ndarray]:
    with np.load(DATA / f"{name}.golden.npz") as data:
        return dict(data)


def _enter_tpu_context():
    """What tf.compat.v1.tpu.replicate sets up around a computation (pivot inside the body)."""
    context = _tf_internal.tpu_replicate_context(b"cluster", 1, pivot=tf.no_op(name="pivot"))
    context.Enter()
    return context


# ---- eager: the state exists and is initialized before the first call -------------------------


def test_wrap_function_over_text_table_in_eager_mode():
    golden = _golden("text_table")
    function = tf1.wrap_function(
        lambda s: hub.Module(TEXT_TABLE)(s, as_dict=True), [tf.TensorSpec([None], tf.string)]
    )
    outputs = function(tf.constant(golden["input.default.default"]))
    np.testing.assert_allclose(outputs["default"].numpy(), golden["default.default"], atol=1e-6)
    np.testing.assert_array_equal(outputs["num_tokens"].numpy(), golden["default.num_tokens"])


def test_tf_function_over_text_table_in_eager_mode():
    golden = _golden("text_table")

    @tf.function
    def embed(sentences):
        return hub.Module(TEXT_TABLE)(sentences)

    for _ in range(2):  # The second call reuses the trace and the state.
        got = embed(tf.constant(golden["input.default.default"]))
        np.testing.assert_allclose(got.numpy(), golden["default.default"], atol=1e-6)


def test_wrap_function_over_ref_variables_in_eager_mode():
    """tiny's variables are TF1 ref variables: they become eager resource variables."""
    golden = _golden("tiny")
    holder = {}

    def body(x):
        holder["module"] = hub.Module(TINY, name="tiny")
        return holder["module"](x, as_dict=True)

    function = tf1.wrap_function(body, [tf.TensorSpec([None, 4], tf.float32)])
    outputs = function(tf.constant(golden["input.default.x"]))
    for key in ("default", "sum"):
        np.testing.assert_allclose(outputs[key].numpy(), golden[f"default.{key}"], atol=1e-5)
    module = holder["module"]
    assert module.variables and all(v.dtype == tf.float32 for v in module.variables)
    assert all(isinstance(v.numpy(), np.ndarray) for v in module.variables)


def test_eager_state_scopes_are_unique_per_process():
    scopes = []

    def body(s):
        module = hub.Module(TEXT_TABLE, name="embed")
        scopes.append(module.variable_scope_name)
        return module(s)

    for _ in range(2):
        tf1.wrap_function(body, [tf.TensorSpec([None], tf.string)])
    assert scopes[0] != scopes[1]


def test_module_outside_any_graph_still_needs_one():
    with pytest.raises(RuntimeError, match="needs graph mode"):
        hub.Module(TEXT_TABLE)


# ---- graphs: the state goes into the outer graph, the function captures it -------------------


def test_defun_in_a_graph_initializes_state_in_the_outer_graph():
    golden = _golden("text_table")
    with tf.Graph().as_default() as graph:

        @_tf_internal.defun(tf.string)
        def embed(sentences):
            return hub.Module(TEXT_TABLE)(sentences)

        out = embed(tf.constant(golden["input.default.default"]))
        assert [v.name for v in tf1.global_variables()] == ["module/embeddings:0"]
        assert graph.get_collection(tf1.GraphKeys.TABLE_INITIALIZERS)
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            np.testing.assert_allclose(session.run(out), golden["default.default"], atol=1e-6)


def _counter_module_fn() -> None:
    x = tf1.placeholder(tf.float32, name="x")
    y = tf1.placeholder(tf.float32, name="y")  # An unused input op and an unused assign.
    r = tf1.get_variable("r", [], initializer=tf1.constant_initializer(10.0), use_resource=True)
    t = tf1.get_variable("t", [], initializer=tf1.constant_initializer(10.0), use_resource=True)
    t.assign(y)
    hub.add_signature(inputs={"x": x}, outputs=x + r)


def _random_module_fn() -> None:
    r = tf1.get_variable("r", [], initializer=tf1.random_uniform_initializer(), use_resource=True)
    hub.add_signature(outputs=r.value())


def _control_dependency_module_fn() -> None:
    dependency = tf.constant(1.0, name="dependency_op")
    with tf.control_dependencies([dependency]):
        result = tf.constant(3.0) + tf.constant(2.0)
    hub.add_signature(inputs={}, outputs=result)


def test_tpu_context_in_defun_applies_the_module_twice():
    spec = hub.create_module_spec(_counter_module_fn)
    with tf.Graph().as_default():

        @_tf_internal.defun(tf.float32, tf.float32)
        def computation(first, second):
            _enter_tpu_context()
            module = hub.Module(spec, name="module_", trainable=True)
            return [module(first), module(second)]

        outputs = computation(9.0, 6.0)
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            assert session.run(outputs) == (19.0, 16.0)


def _unused_input_module_fn() -> None:
    x = tf1.placeholder(tf.int64)
    unused = tf1.placeholder(tf.int64)
    hub.add_signature(inputs={"x": x, "unused": unused}, outputs=x * x)


def test_tpu_context_in_defun_with_an_unused_input():
    spec = hub.create_module_spec(_unused_input_module_fn)
    with tf.Graph().as_default():

        @_tf_internal.defun(tf.int32)
        def computation(x):
            _enter_tpu_context()
            module = hub.Module(spec, name="module_", trainable=True)
            return module({"x": tf.cast(x, tf.int64), "unused": tf.constant(2, tf.int64)})

        output = computation(5)
        with tf1.Session() as session:
            assert session.run(output) == 25


def test_tpu_context_in_defun_initializes_once():
    spec = hub.create_module_spec(_random_module_fn)
    with tf.Graph().as_default():

        @_tf_internal.defun()
        def computation():
            _enter_tpu_context()
            module = hub.Module(spec, name="module_", trainable=True)
            return [module(), module()]

        outputs = computation()
        assert [v.name for v in tf1.global_variables()] == ["module_/r:0"]
        with tf1.Session() as session:
            session.run(tf1.global_variables_initializer())
            first, second = session.run(outputs)
            assert first == second


def test_tpu_context_keeps_control_dependencies():
    spec = hub.create_module_spec(_control_dependency_module_fn)
    with tf.Graph().as_default() as graph:

        @_tf_internal.defun()
        def computation():
            _enter_tpu_context()
            return hub.Module(spec, name="module_", trainable=True)()

        output = computation()
        (function,) = graph.as_graph_def().library.function
        control_inputs = {i for node in function.node_def for i in node.input if i[0] == "^"}
        assert "^module__apply_default/dependency_op" in control_inputs
        with tf1.Session() as session:
            assert session.run(output) == 5.0


def test_tpu_context_in_defun_with_a_table():
    golden = _golden("text_table")
    with tf.Graph().as_default():

        @_tf_internal.defun(tf.string)
        def embed(sentences):
            _enter_tpu_context()
            return hub.Module(TEXT_TABLE)(sentences)

        out = embed(tf.constant(golden["input.default.default"]))
        with tf1.Session() as session:
            session.run([tf1.global_variables_initializer(), tf1.tables_initializer()])
            np.testing.assert_allclose(session.run(out), golden["default.default"], atol=1e-6)


def test_tpu_context_in_wrap_function_in_a_graph():
    spec = hub.create_module_spec(_counter_module_fn)

    def computation(first, second):
        _enter_tpu_context()
        module = hub.Module(spec, trainable=True)
        return [module(first), module(second)]

    with tf.Graph().as_default(), tf1.Session() as session:
        function = tf1.wrap_function(computation, [tf.TensorSpec((), tf.float32)] * 2)
        session.run(tf1.global_variables_initializer())
        assert session.run(function(9.0, 6.0)) == [19.0, 16.0]


def test_gradients_reach_eager_state_variables():
    golden = _golden("tiny")
    holder = {}

    @tf.function
    def loss(x):
        if "module" not in holder:
            holder["module"] = hub.Module(TINY, trainable=True)
        return tf.reduce_sum(holder["module"](x))

    x = tf.constant(golden["input.default.x"])
    loss(x)  # Trace once: creates the state.
    variables = holder["module"].variables
    with tf.GradientTape() as tape:
        value = loss(x)
    gradients = tape.gradient(value, variables)
    np.testing.assert_allclose(value.numpy(), golden["default.default"].sum(), rtol=1e-5)
    assert all(g is not None for g in gradients)
