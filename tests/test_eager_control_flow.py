"""hubcore.load of modules whose graphs contain control flow: TF1 (v1) tf.cond / tf.while_loop
(Switch/Merge/Enter/Exit ops described by the cond_context / while_context collections) and v2
(If/While ops whose branches and bodies are library functions). The modules are built by
control_flow_modules.py; each test compares hubcore.load with hubcore.Module in a TF1 graph.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import control_flow_modules
import hubcore as hub
from control_flow_modules import MODULES
from hubcore.errors import UnsupportedFormatError

v1 = tf.compat.v1

# Batches whose sums are positive and negative: each takes one branch of the modules' conds.
POSITIVE = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.2]], np.float32)
NEGATIVE = np.array([[-1.0, 0.5, -2.0], [0.25, -1.5, 0.75]], np.float32)
DIFFERENTIABLE = ["v1_cond", "v1_counting_cond", "v2_cond", "v2_while"]


def _saved_model(path) -> saved_model_pb2.SavedModel:
    return saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """The modules, built in a process of their own as published modules are: the Python graphs
    that build a module register its functions in their process, which would hide whether
    hubcore.load registers the module's own."""
    root = tmp_path_factory.mktemp("control_flow")
    subprocess.run(
        [sys.executable, str(Path(control_flow_modules.__file__)), str(root)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=True,
        capture_output=True,
    )
    for name, (_, _, op_types) in MODULES.items():
        graph = _saved_model(root / name).meta_graphs[0].graph_def
        assert op_types <= {node.op for node in graph.node}, name  # the intended control flow
    return root


def _loss(y):
    return tf.reduce_sum(tf.square(y)) * 0.5


def _graph_mode(path, x):
    """Outputs and gradients of _loss by variable name, for hubcore.Module(trainable=True) in
    a TF1 graph."""
    with tf.Graph().as_default():
        module = hub.Module(str(path), trainable=True)
        y = module(x)
        variables = v1.trainable_variables()
        grads = v1.gradients(_loss(y), variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            y_value, grad_values = session.run([y, [tf.convert_to_tensor(g) for g in grads]])
    names = [v.name.split("/", 1)[1] for v in variables]
    return y_value, dict(zip(names, grad_values, strict=True))


def _check_against_graph_mode(module, original, x):
    """`module(x)` and its gradients equal hubcore.Module's on the module at `original`."""
    expected, grads = _graph_mode(original, x)
    with tf.GradientTape() as tape:
        y = module(x)
        loss = _loss(y)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    variables = module.trainable_variables
    for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        np.testing.assert_allclose(grad, grads[variable.name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_outputs_match_graph_mode(modules, name):
    module = hub.load(modules / name)
    for x in (POSITIVE, NEGATIVE):
        expected, _ = _graph_mode(modules / name, x)
        np.testing.assert_allclose(module(x), expected, rtol=1e-6)
        by_signature = module.signatures["default"](default=tf.constant(x))["default"]
        np.testing.assert_allclose(by_signature, expected, rtol=1e-6)


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_gradients_match_graph_mode(modules, name):
    module = hub.load(modules / name)
    assert sorted(v.name for v in module.trainable_variables) == ["b:0", "w:0"]
    for x in (POSITIVE, NEGATIVE):
        module(x)  # Inference first: the tape below must not be what makes the module run.
        with tf.GradientTape() as tape:
            loss = _loss(module(x))
        grads = tape.gradient(loss, module.trainable_variables)
        _, expected = _graph_mode(modules / name, x)
        for variable, grad in zip(module.trainable_variables, grads, strict=True):
            assert grad is not None, variable.name
            np.testing.assert_allclose(grad, expected[variable.name], rtol=1e-5, atol=1e-6)


def _keras_model(path, trainable):
    layer = hub.KerasLayer(str(path), trainable=trainable)
    model = keras.Sequential([keras.Input([3]), layer, keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model, layer.resolved_object


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_keras_fit_trains_the_module_weights(modules, name):
    model, module = _keras_model(modules / name, trainable=True)
    before = [v.numpy().copy() for v in module.trainable_variables]
    x = np.concatenate([POSITIVE, NEGATIVE] * 2)
    model.predict(x, verbose=0)  # As inference before training: no gradient involved yet.
    model.fit(x, np.ones([len(x), 1], np.float32), batch_size=2, epochs=1, verbose=0)
    changed = [
        not np.allclose(a, v.numpy())
        for a, v in zip(before, module.trainable_variables, strict=True)
    ]
    assert all(changed)


def test_v1_while_loop_runs_but_its_gradient_fails_naming_the_module_and_loop(modules):
    path = modules / "v1_while"
    module = hub.load(path)
    # TF1 gradients of the same loop exist in a TF1 graph (the module was trained there).
    expected, graph_grads = _graph_mode(path, POSITIVE)
    assert all(np.any(g != 0) for g in graph_grads.values())
    message = rf"{path}.*TF1 while loop 'while/while_context'.*cannot be differentiated"
    with tf.GradientTape() as tape:
        y = module(POSITIVE)  # Inference under a tape that watches the variables still works.
        loss = _loss(y)
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        tape.gradient(loss, module.trainable_variables)
    # Frozen under a tape: no gradient flows into the module.
    head = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.stop_gradient(module(POSITIVE)) * head)
    np.testing.assert_allclose(tape.gradient(loss, head), np.sum(expected), rtol=1e-5)


def test_v1_while_loop_in_keras_fit_trains_only_when_frozen(modules):
    x = np.concatenate([POSITIVE, NEGATIVE] * 2)
    y = np.ones([len(x), 1], np.float32)
    model, module = _keras_model(modules / "v1_while", trainable=False)
    before = [v.numpy().copy() for v in module.variables]
    head = model.layers[-1].kernel.numpy().copy()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, module.variables, strict=True))
    assert not np.allclose(head, model.layers[-1].kernel.numpy())
    model, _ = _keras_model(modules / "v1_while", trainable=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="cannot be differentiated"):
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)


def _rename_functions(path, names):
    """Renames the library functions of the module at `path` (and the attributes naming them)."""
    saved_model = _saved_model(path)
    graph = saved_model.meta_graphs[0].graph_def
    for function in graph.library.function:
        function.signature.name = names[function.signature.name]
    for node in graph.node:
        for value in node.attr.values():
            if value.HasField("func"):
                value.func.name = names.get(value.func.name, value.func.name)
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())


def test_modules_whose_functions_share_names_load_side_by_side(modules, tmp_path):
    """Function names are unique in one graph only (cond_true_N, ...): another module may use
    them for other bodies, and so may the Python graph that built a module in this process."""

    def functions(path):
        library = _saved_model(path).meta_graphs[0].graph_def.library
        return sorted(f.signature.name for f in library.function)

    other = tmp_path / "v2_other_cond"
    shutil.copytree(modules / "v2_other_cond", other)
    names = dict(zip(functions(other), functions(modules / "v2_cond"), strict=True))
    _rename_functions(other, names)
    assert functions(other) == functions(modules / "v2_cond")
    first, second = hub.load(modules / "v2_cond"), hub.load(other)
    # (hubcore.Module would not take the renamed copy in this process: TF's graph-mode gradient
    # registers "<branch>_rewritten" functions process-wide, so it is compared with the original.)
    for original, module in [("v2_cond", first), ("v2_other_cond", second)]:
        for x in (POSITIVE, NEGATIVE):
            _check_against_graph_mode(module, modules / original, x)


def _without_collection(modules, tmp_path, name, collection):
    path = tmp_path / name
    shutil.copytree(modules / name, path)
    saved_model = _saved_model(path)
    del saved_model.meta_graphs[0].collection_def[collection]
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    return path


@pytest.mark.parametrize(
    "name,collection,op",
    [
        ("v1_while", "while_context", r"while/\w+"),
        ("v1_counting_cond", "cond_context", r"cond/\S*Switch\S*"),
    ],
)
def test_control_flow_without_its_collection_is_refused(modules, tmp_path, name, collection, op):
    path = _without_collection(modules, tmp_path, name, collection)
    module = hub.load(path)
    with pytest.raises(UnsupportedFormatError, match=rf"{path}: op '{op}'.*{collection}"):
        module(POSITIVE)


def test_cond_branches_that_only_read_variables_need_no_context(modules, tmp_path):
    """Such branches switch the variables' values, which TF differentiates without contexts."""
    module = hub.load(_without_collection(modules, tmp_path, "v1_cond", "cond_context"))
    for x in (POSITIVE, NEGATIVE):
        _check_against_graph_mode(module, modules / "v1_cond", x)


def test_cond_branch_writes_a_variable_only_when_taken(modules):
    module = hub.load(modules / "v1_counting_cond")
    count = module.variable_map["count"]
    module(NEGATIVE)
    assert float(count.numpy()) == 0.0
    module(POSITIVE)
    module.signatures["default"](default=tf.constant(POSITIVE))
    assert float(count.numpy()) == 2.0


def test_graph_mode_module_applies_a_v1_while_loop_twice(modules):
    """Each application gets its own loop frame, and tf.gradients goes through both."""
    expected, grads = _graph_mode(modules / "v1_while", POSITIVE)
    _, other_grads = _graph_mode(modules / "v1_while", NEGATIVE)
    with tf.Graph().as_default():
        module = hub.Module(str(modules / "v1_while"), trainable=True)
        first, second = module(POSITIVE), module(NEGATIVE)
        variables = v1.trainable_variables()
        total = v1.gradients(_loss(first) + _loss(second), variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            y, total = session.run([first, [tf.convert_to_tensor(g) for g in total]])
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    for variable, grad in zip(variables, total, strict=True):
        name = variable.name.split("/", 1)[1]
        np.testing.assert_allclose(grad, grads[name] + other_grads[name], rtol=1e-5)


@pytest.mark.parametrize("name", ["v1_cond", "v1_while", "v2_while"])
def test_export_tf2_runs_the_control_flow(modules, tmp_path, name):
    out = hub.export_tf2(modules / name, tmp_path / "tf2")
    loaded = tf.saved_model.load(out)
    for x in (POSITIVE, NEGATIVE):
        expected, grads = _graph_mode(modules / name, x)
        np.testing.assert_allclose(loaded(x), expected, rtol=1e-6)
        if name.startswith("v2"):  # Fine-tuning goes on in plain TensorFlow.
            with tf.GradientTape() as tape:
                loss = _loss(loaded.signatures["default"](default=tf.constant(x))["default"])
            variables = loaded.trainable_variables
            for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
                np.testing.assert_allclose(grad, grads[variable.name], rtol=1e-5, atol=1e-6)
