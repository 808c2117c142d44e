"""hubcore.load: TF1 Hub modules as TF2 objects (eager calls, signatures, fine-tuning)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import hubcore as hub
from conftest import DATA
from hubcore.errors import InvalidArgumentError, SignatureNotFoundError, VariantNotFoundError

v1 = tf.compat.v1

GOLDEN_MODULES = ["tiny", "text_table", "partitioned", "batchnorm"]


def _golden(name):
    return np.load(DATA / f"{name}.golden.npz")


def _golden_inputs(name):
    inputs: dict[str, dict[str, np.ndarray]] = {}
    golden = _golden(name)
    for key in golden.files:
        if key.startswith("input."):
            _, signature, input_name = key.split(".", 2)
            inputs.setdefault(signature, {})[input_name] = golden[key]
    return inputs


def _check_golden(name, outputs_by_signature):
    golden = _golden(name)
    expected = [k for k in golden.files if not k.startswith("input.")]
    for key in expected:
        signature, output = key.split(".", 1)
        np.testing.assert_allclose(outputs_by_signature[signature][output], golden[key], rtol=1e-5)
    assert expected


@pytest.mark.parametrize("name", GOLDEN_MODULES)
def test_golden_outputs_via_call_and_signatures(name):
    module = hub.load(DATA / name)
    by_call = {
        signature: module(inputs, signature=signature, as_dict=True)
        for signature, inputs in _golden_inputs(name).items()
    }
    _check_golden(name, by_call)
    by_signature = {
        signature: module.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        for signature, inputs in _golden_inputs(name).items()
    }
    _check_golden(name, by_signature)
    default = _golden_inputs(name)["default"]
    if len(default) == 1:
        np.testing.assert_allclose(
            module(next(iter(default.values()))), _golden(name)["default.default"], rtol=1e-5
        )


def _graph_mode(name, inputs, signature="default"):
    """What hubcore.Module computes in a TF1 graph for the same inputs."""
    with hub.eval_function_for_module(str(DATA / name)) as f:
        return f(inputs, signature=signature, as_dict=True)


def test_sparse_input_matches_graph_mode():
    value = tf.SparseTensor(
        indices=np.array([[0, 1], [1, 3], [2, 0], [2, 5]], np.int64),
        values=np.array([1.0, -2.0, 0.5, 3.0], np.float32),
        dense_shape=np.array([3, 6], np.int64),
    )
    module = hub.load(DATA / "sparse_in")
    expected = _graph_mode(
        "sparse_in",
        {
            "sp": tf.compat.v1.SparseTensorValue(
                value.indices.numpy(), value.values.numpy(), value.dense_shape.numpy()
            )
        },
    )
    np.testing.assert_allclose(module(value), expected["default"], rtol=1e-6)
    np.testing.assert_allclose(
        module.signatures["default"](sp=value)["default"], expected["default"], rtol=1e-6
    )


def test_ragged_input_matches_graph_mode():
    rows = [[1.0, 2.0], [], [3.0, 4.0, 5.0, 6.0]]
    module = hub.load(DATA / "ragged_in")
    ragged = tf.ragged.constant(rows, dtype=tf.float32, row_splits_dtype=tf.int64)
    value = v1.ragged.RaggedTensorValue(ragged.values.numpy(), ragged.row_splits.numpy())
    expected = _graph_mode("ragged_in", {"rt": value})
    np.testing.assert_allclose(module(rows), expected["default"])
    np.testing.assert_allclose(
        module.signatures["default"](rt=ragged)["default"], expected["default"]
    )


def test_asset_table_and_sparse_output_match_graph_mode():
    module = hub.load(DATA / "text_table")
    sentences = np.array([b"hello world", b"the cat", b"unknown words here"])
    expected = _graph_mode("text_table", {"sentences": sentences}, signature="tokens")
    tokens = module(sentences, signature="tokens")
    assert isinstance(tokens, tf.SparseTensor)
    np.testing.assert_array_equal(tokens.indices, expected["default"].indices)
    np.testing.assert_array_equal(tokens.values, expected["default"].values)
    default = _graph_mode("text_table", sentences)
    np.testing.assert_allclose(module(sentences), default["default"], rtol=1e-6)


def test_variables_hold_the_checkpoint_and_follow_the_trainable_collection():
    module = hub.load(DATA / "partitioned")
    table = module.variable_map["table"]
    assert [v.name for v in table] == ["table/part_0:0", "table/part_1:0", "table/part_2:0"]
    reader = tf.train.load_checkpoint(str(DATA / "partitioned/variables/variables"))
    np.testing.assert_array_equal(
        np.concatenate([v.numpy() for v in table]), reader.get_tensor("table")
    )
    assert len(module.variables) == 4 and len(module.trainable_variables) == 4
    batchnorm = hub.load(DATA / "batchnorm")
    assert [v.name for v in batchnorm.trainable_variables] == ["w:0"]
    assert sorted(v.name for v in batchnorm.variables) == [
        "bn/moving_mean:0",
        "bn/moving_variance:0",
        "w:0",
    ]


def test_errors_name_what_exists():
    module = hub.load(DATA / "tiny")
    with pytest.raises(SignatureNotFoundError, match="'encode'"):
        module(np.zeros([1, 4], np.float32), signature="nope")
    with pytest.raises(SignatureNotFoundError, match="'no_default'"):
        module.signatures["nope"]
    with pytest.raises(VariantNotFoundError, match=r"\{train\}"):
        hub.load(DATA / "tiny", tags=["gpu"])
    with pytest.raises(InvalidArgumentError, match="'x'"):
        module(np.zeros([1, 3], np.float32))
    with pytest.raises(TypeError, match="as_dict=True"):
        module(np.zeros([1, 4], np.float32), signature="no_default")


def _graph_mode_gradients(name, inputs, tags, loss_fn):
    """Gradients of loss_fn(outputs) for hub.Module(trainable=True) in a TF1 graph."""
    with tf.Graph().as_default():
        module = hub.Module(str(DATA / name), trainable=True, tags=tags)
        loss = loss_fn(module(inputs))
        if tags:
            loss += tf.add_n(v1.losses.get_regularization_losses())
        variables = v1.trainable_variables()
        grads = v1.gradients(loss, variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            values = session.run([tf.convert_to_tensor(g) for g in grads])
        names = [v.name.split("/", 1)[1] for v in variables]
    return dict(zip(names, values, strict=True))


@pytest.mark.parametrize(
    "name,inputs,training",
    [
        ("tiny", np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), False),
        ("partitioned", np.array([0, 3, 5, 3], np.int64), False),
        ("batchnorm", np.linspace(-2, 3, 20, dtype=np.float32).reshape(4, 5), True),
    ],
)
def test_gradients_match_graph_mode(name, inputs, training):
    def loss_fn(y):
        return tf.reduce_sum(tf.square(y)) * 0.5

    module = hub.load(DATA / name)
    with tf.GradientTape() as tape:
        loss = loss_fn(module(inputs, training=training))
        if training:
            loss += tf.add_n([f() for f in module.regularization_losses])
    grads = tape.gradient(loss, module.trainable_variables)
    assert all(g is not None for g in grads)
    expected = _graph_mode_gradients(name, inputs, ["train"] if training else None, loss_fn)
    assert sorted(expected) == sorted(v.name for v in module.trainable_variables)
    for variable, grad in zip(module.trainable_variables, grads, strict=True):
        np.testing.assert_allclose(
            tf.convert_to_tensor(grad), expected[variable.name], rtol=1e-5, atol=1e-6
        )


def test_sgd_steps_lower_the_loss():
    module = hub.load(DATA / "tiny")
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    target = np.ones([3, 3], np.float32)
    optimizer = tf.keras.optimizers.SGD(0.05)
    losses = []
    for _ in range(4):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(module(x) - target))
        optimizer.apply_gradients(
            zip(
                tape.gradient(loss, module.trainable_variables),
                module.trainable_variables,
                strict=True,
            )
        )
        losses.append(float(loss))
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]


def test_train_variant_runs_update_ops_over_the_same_variables():
    module = hub.load(DATA / "batchnorm")
    assert module.train_tags == {"train"}
    x = np.linspace(-2, 3, 20, dtype=np.float32).reshape(4, 5)
    moving_mean = module.variable_map["bn/moving_mean"]
    before = moving_mean.numpy()
    inference = module(x).numpy()
    np.testing.assert_array_equal(moving_mean, before)
    trained = module(x, training=True).numpy()
    assert not np.allclose(moving_mean, before)
    assert not np.allclose(trained, inference)
    assert len(module.regularization_losses) == 1
    w = module.variable_map["w"]
    np.testing.assert_allclose(
        module.regularization_losses[0](), _graph_regularization_loss(), rtol=1e-6
    )
    w.assign(w * 2.0)
    np.testing.assert_allclose(
        module.regularization_losses[0](), 4 * _graph_regularization_loss(), rtol=1e-5
    )


def _graph_regularization_loss():
    with tf.Graph().as_default():
        hub.Module(str(DATA / "batchnorm"), trainable=True, tags=["train"])
        (loss,) = v1.losses.get_regularization_losses()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            return session.run(loss)


@pytest.fixture(scope="module")
def ref_variable_module(tmp_path_factory):
    """A module exported with TF1 ref variables (VariableV2, Assign, AssignSub)."""
    path = tmp_path_factory.mktemp("ref") / "module"

    def module_fn():
        x = v1.placeholder(tf.float32, [None, 2])
        w = v1.Variable([[1.0, -1.0], [2.0, 0.5]], name="w", use_resource=False)
        count = v1.Variable(0.0, name="count", use_resource=False, trainable=False)
        y = tf.matmul(x, w)
        rows = tf.cast(tf.shape(x)[0], tf.float32)
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_add(count, rows))
        hub.add_signature(inputs={"x": x}, outputs={"default": y, "count": count.value()})

    spec = hub.create_module_spec(module_fn, [(set(), {}), ({"train"}, {})])
    with tf.Graph().as_default():
        module = hub.Module(spec)
        assert all(v.op.type == "VariableV2" for v in module.variables)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)
    return path


def test_ref_variables_become_resource_variables(ref_variable_module):
    module = hub.load(ref_variable_module)
    x = np.array([[1.0, 2.0]], np.float32)
    with tf.GradientTape() as tape:
        y = module(x)
        loss = tf.reduce_sum(y)
    np.testing.assert_allclose(y, [[5.0, 0.0]])
    (grad,) = tape.gradient(loss, module.trainable_variables)
    np.testing.assert_allclose(grad, [[1.0, 1.0], [2.0, 2.0]])
    count = module.variable_map["count"]
    module(x)
    assert float(count.numpy()) == 0.0
    module(np.ones([3, 2], np.float32), training=True)
    assert float(count.numpy()) == 3.0


def test_repeated_loads_do_not_warn_about_retracing(caplog, monkeypatch):
    # Each load traces its own table initializer and signatures; none of that is the user's
    # retracing, so TensorFlow's "triggered tf.function retracing" warning must not appear.
    text = str(DATA / "text_table")
    monkeypatch.setattr(tf.get_logger(), "propagate", True)  # to caplog's root handler
    with caplog.at_level("WARNING"):
        for _ in range(7):
            module = hub.load(text)
            assert module(["hello world"]).shape == (1, 8)
            assert module.signatures["default"](default=tf.constant(["a"]))["default"].shape == (
                1,
                8,
            )
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
