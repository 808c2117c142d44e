"""Behaviours of tensorflow_hub 0.15's ``hub.Module`` that programs observe and hubcore matches.

Each test is a scenario that was first run with tensorflow_hub 0.15; the expected values are what
it did (deliberate deviations are listed in docs/format.md).
"""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402

import hubcore as hub  # noqa: E402

tf1 = tf.compat.v1


def _identity_module_fn(scale: float):
    def module_fn() -> None:
        x = tf1.placeholder(tf.float32, [None])
        hub.add_signature(inputs=x, outputs=x * scale)

    return module_fn


def _scaled_module_fn(training: bool) -> None:
    _identity_module_fn(2.0 if training else 1.0)()


def _export(spec, path, tags=None) -> str:
    with tf.Graph().as_default():
        module = hub.Module(spec, tags=tags)
        with tf1.Session() as session:
            module.export(str(path), session)
    return str(path)


# ---- get_tags order ---------------------------------------------------------------------------


def test_get_tags_keeps_file_order_as_frozensets(tmp_path):
    spec = hub.create_module_spec(
        _scaled_module_fn,
        [({"training"}, {"training": True}), ({"inference"}, {"training": False})],
    )
    tags = spec.get_tags()
    assert tags == [{"training"}, {"inference"}]
    assert all(type(t) is frozenset for t in tags)
    path = _export(spec, tmp_path / "m", tags={"inference"})
    assert hub.load_module_spec(path).get_tags() == [{"training"}, {"inference"}]


def test_get_tags_puts_a_subset_before_its_supersets():
    # tensorflow_hub sorted the frozensets: only subset relations reorder the file order.
    spec = hub.create_module_spec(
        _scaled_module_fn,
        [({"b"}, {"training": True}), ({"a"}, {"training": False}), (set(), {"training": False})],
    )
    assert spec.get_tags() == [set(), {"b"}, {"a"}]


# ---- unsupported signature types --------------------------------------------------------------


def _indexed_slices(x):
    return tf.IndexedSlices(x, tf.constant([0]), tf.constant([3, 2]))


@pytest.mark.parametrize("where", ["input", "output"])
def test_add_signature_rejects_indexed_slices_with_tensorflow_hubs_wording(where):
    def module_fn() -> None:
        x = tf1.placeholder(tf.float32, [None, 2])
        if where == "input":
            hub.add_signature(inputs={"slices": _indexed_slices(x)}, outputs=x)
        else:
            hub.add_signature(inputs=x, outputs={"slices": _indexed_slices(x)})

    with pytest.raises(ValueError) as raised:
        hub.create_module_spec(module_fn)
    message = str(raised.value)
    assert isinstance(raised.value, hub.Error)
    assert "signature 'default' should have one of the types" in message
    assert "Tensor, SparseTensor, RaggedTensor" in message
    assert f"* {where} 'slices' has type IndexedSlices" in message


def test_call_rejects_a_recorded_type_it_cannot_build(tmp_path):
    """A module written with an IndexedSlices input (by editing the signature's TensorInfo)."""

    def slices_components():
        values = tf1.placeholder(tf.float32, [None, 2], name="values")
        indices = tf.constant([0], name="indices")
        return values, tf.IndexedSlices(values, indices, tf.constant([3, 2], name="dense_shape"))

    def module_fn() -> None:
        x = tf1.placeholder(tf.float32, [None, 2])
        values, _ = slices_components()
        hub.add_signature(inputs={"slices": values, "x": x}, outputs=x * 2.0)

    path = tmp_path / "m"
    _export(hub.create_module_spec(module_fn), path)
    with tf.Graph().as_default():
        slices_info = tf1.saved_model.build_tensor_info(slices_components()[1])
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    saved_model.meta_graphs[0].signature_def["default"].inputs["slices"].CopyFrom(slices_info)
    (path / "saved_model.pb").write_bytes(saved_model.SerializeToString())

    with tf.Graph().as_default():
        module = hub.Module(str(path))
        x = tf.zeros([1, 2])
        for slices in (_indexed_slices(x), x):
            with pytest.raises(ValueError) as raised:
                module({"slices": slices, "x": x})
            assert str(raised.value) == (
                "Signature 'default' expects a IndexedSlices for input 'slices', which is not "
                "supported by this version of hubcore."
            )
