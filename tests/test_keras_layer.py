"""hubcore.KerasLayer in Keras 3 models: training, freezing, saving, variants and errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import hubcore
from conftest import DATA

TINY = str(DATA / "tiny")


def _regression_data(width: int, rows: int = 64) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(rows, width)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


def _tiny_model(trainable: bool) -> tuple[keras.Model, hubcore.KerasLayer]:
    layer = hubcore.KerasLayer(TINY, trainable=trainable)
    model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    return model, layer


def test_fit_trains_the_module_variables():
    model, layer = _tiny_model(trainable=True)
    assert {w.name for w in layer.trainable_weights} == {"dense_bias", "dense_kernel"}
    before = [w.numpy().copy() for w in layer.trainable_weights]
    x, y = _regression_data(4)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    for weight, old in zip(layer.trainable_weights, before, strict=True):
        assert not np.allclose(weight.numpy(), old)
    # The layer's weights are the variables the loaded module computes with.
    obj = layer.resolved_object
    np.testing.assert_allclose(layer(x), obj(x), rtol=1e-6)


def test_frozen_layer_keeps_module_variables_fixed():
    model, layer = _tiny_model(trainable=False)
    assert layer.trainable_weights == []
    assert len(layer.non_trainable_weights) == 2
    before = [w.numpy().copy() for w in layer.weights]
    x, y = _regression_data(4)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for weight, old in zip(layer.weights, before, strict=True):
        np.testing.assert_array_equal(weight.numpy(), old)
    layer.trainable = True  # unfreezing for fine-tuning makes the module's weights trainable
    assert len(layer.trainable_weights) == 2


def test_keras_file_round_trip_keeps_trained_weights(tmp_path):
    model, _ = _tiny_model(trainable=True)
    x, y = _regression_data(4)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.layers[0], hubcore.KerasLayer)
    assert reloaded.layers[0].get_config()["handle"] == TINY
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-6)
    # Not the checkpoint's values: the trained ones.
    fresh = hubcore.KerasLayer(TINY)
    assert not np.allclose(reloaded.layers[0](x), fresh(x))


def test_string_input_functional_model_on_text_table():
    golden = np.load(DATA / "text_table.golden.npz")
    sentences = tf.constant(golden["input.default.default"])
    text = keras.Input(shape=(), dtype="string")
    embedding = hubcore.KerasLayer(str(DATA / "text_table"))(text)
    model = keras.Model(text, [embedding, keras.layers.Dense(2)(embedding)])
    got, head = model.predict(sentences, verbose=0)
    np.testing.assert_allclose(got, golden["default.default"], rtol=1e-5, atol=1e-6)
    assert head.shape == (len(golden["input.default.default"]), 2)


def test_batchnorm_train_variant_updates_moving_mean_and_adds_losses():
    layer = hubcore.KerasLayer(str(DATA / "batchnorm"), trainable=True)
    model = keras.Sequential([keras.Input((5,)), layer, keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    (moving_mean,) = [w for w in layer.non_trainable_weights if "moving_mean" in w.name]
    before = moving_mean.numpy().copy()
    x = np.random.default_rng(0).normal(3.0, 1.0, size=(32, 5)).astype(np.float32)
    model.predict(x, verbose=0)  # inference variant: no update
    np.testing.assert_array_equal(moving_mean.numpy(), before)
    layer(x, training=True)
    assert len(layer.losses) == 1 and float(layer.losses[0]) > 0
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    assert not np.allclose(moving_mean.numpy(), before)
    frozen = hubcore.KerasLayer(str(DATA / "batchnorm"))
    (frozen_mean,) = [w for w in frozen.weights if "moving_mean" in w.name]
    initial = frozen_mean.numpy().copy()
    frozen(x, training=True)  # a frozen layer runs the inference variant: no update, no loss
    assert frozen.losses == []
    np.testing.assert_array_equal(frozen_mean.numpy(), initial)


def test_signature_outputs_as_dict_and_output_key():
    x = np.ones((2, 4), np.float32)
    outputs = hubcore.KerasLayer(TINY, signature_outputs_as_dict=True)(x)
    assert set(outputs) == {"default", "sum"}
    b = hubcore.KerasLayer(TINY, signature="no_default", output_key="b")(x)
    np.testing.assert_allclose(b, hubcore.load(TINY)(x, signature="no_default", as_dict=True)["b"])


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"output_key": "nope"}, hubcore.InvalidArgumentError, ["'default'", "'sum'"]),
        ({"signature": "no_default"}, hubcore.InvalidArgumentError, ["'a'", "'b'"]),
        ({"signature": "nope"}, hubcore.SignatureNotFoundError, ["'encode'", "'no_default'"]),
        ({"tags": {"nope"}}, hubcore.VariantNotFoundError, ["{train}"]),
        ({"arguments": {"y": 1.0}}, hubcore.InvalidArgumentError, ["'y'", "'x'"]),
        ({"arguments": [("x", 1.0)]}, hubcore.InvalidArgumentError, ["dict", "list"]),
        (
            {"output_key": "sum", "signature_outputs_as_dict": True},
            hubcore.InvalidArgumentError,
            ["output_key", "signature_outputs_as_dict"],
        ),
    ],
)
def test_bad_arguments_raise_errors_naming_what_exists(kwargs, error, names):
    with pytest.raises(error) as raised:
        hubcore.KerasLayer(TINY, **kwargs)
    for name in names:
        assert name in str(raised.value)


@pytest.fixture(scope="module")
def scaled_module(tmp_path_factory):
    """A module whose signature takes `x` and a scalar `scale` input: w * x * scale."""
    v1 = tf.compat.v1

    def module_fn():
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        scale = v1.placeholder(tf.float32, [], name="scale")
        w = v1.get_variable("w", [2], initializer=v1.constant_initializer([1.0, 3.0]))
        hubcore.add_signature(inputs={"x": x, "scale": scale}, outputs=x * w * scale)

    path = tmp_path_factory.mktemp("scaled") / "module"
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn), trainable=True)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)
    return str(path)


def test_arguments_feed_the_other_signature_inputs(scaled_module, tmp_path):
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    layer = hubcore.KerasLayer(scaled_module, trainable=True, arguments={"scale": 2.0})
    np.testing.assert_allclose(layer(x), x * [1.0, 3.0] * 2.0)
    # The same module with another fixed argument computes with the other value.
    other = hubcore.KerasLayer(scaled_module, arguments={"scale": -1.0})
    np.testing.assert_allclose(other(x), x * [1.0, 3.0] * -1.0)
    # The arguments are part of the layer's config: a saved model computes with them again.
    model = keras.Sequential([keras.Input((2,)), layer])
    path = tmp_path / "scaled.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), x * [1.0, 3.0] * 2.0, rtol=1e-6)
