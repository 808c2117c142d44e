"""hubcore.image_util: ImageModuleInfo and the expected image size / channels."""

from __future__ import annotations

import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import hubcore as hub
from conftest import DATA
from hubcore import _core, image_util
from hubcore.module_spec import ModuleSpec

v1 = tf.compat.v1


def _image_spec(shape) -> ModuleSpec:
    from tensorflow.python.saved_model import signature_def_utils
    from tensorflow.python.saved_model import utils as sm_utils

    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, shape, name="images")
        out = tf.reduce_mean(images, axis=[1, 2], name="features")
        meta = v1.train.export_meta_graph(strip_default_attrs=True)
        meta.signature_def["default"].CopyFrom(
            signature_def_utils.build_signature_def(
                {"images": sm_utils.build_tensor_info(images)},
                {"default": sm_utils.build_tensor_info(out)},
            )
        )
    saved_model = saved_model_pb2.SavedModel()
    saved_model.meta_graphs.add().CopyFrom(meta)
    return ModuleSpec(_core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString()))


def test_image_module_info_message():
    info = hub.ImageModuleInfo()
    info.default_image_size.height = 224
    info.default_image_size.width = 160
    data = info.SerializeToString()
    assert data == b"\n\x06\x08\xe0\x01\x10\xa0\x01"
    parsed = hub.ImageModuleInfo.FromString(data)
    assert (parsed.default_image_size.height, parsed.default_image_size.width) == (224, 160)
    assert hub.ImageModuleInfo.DESCRIPTOR.full_name == "tensorflow_hub.ImageModuleInfo"


def test_expected_image_size_from_attached_info():
    spec = hub.load_module_spec(str(DATA / "tiny"))
    assert hub.get_expected_image_size(spec) == [224, 160]
    with tf.Graph().as_default():
        module = hub.Module(spec, tags={"train"})
        assert hub.get_expected_image_size(module) == [224, 160]
    info = image_util.get_image_module_info(spec, required=True)
    assert info.default_image_size.width == 160


def test_expected_image_size_and_channels_from_input_shape():
    spec = _image_spec([None, 32, 48, 3])
    assert hub.get_expected_image_size(spec) == [32, 48]
    assert hub.get_num_image_channels(spec) == 3
    assert image_util.get_image_module_info(spec) is None
    with pytest.raises(KeyError):
        image_util.get_image_module_info(spec, required=True)


def test_unknown_sizes_raise_value_error():
    spec = _image_spec([None, None, None, None])
    with pytest.raises(ValueError, match="known height and width"):
        hub.get_expected_image_size(spec)
    with pytest.raises(ValueError, match="known num_channels"):
        hub.get_num_image_channels(spec)
    tiny = hub.load_module_spec(str(DATA / "tiny"))
    with pytest.raises(ValueError, match="missing input 'images'"):
        hub.get_num_image_channels(tiny)
    with pytest.raises(ValueError, match="missing input 'pixels'"):
        hub.get_expected_image_size(spec, input_name="pixels")


def test_attach_image_module_info_round_trip():
    creation = pytest.importorskip("hubcore.creation")

    def module_fn():
        images = v1.placeholder(tf.float32, [None, 8, 8, 3], name="images")
        creation.add_signature(inputs={"images": images}, outputs=tf.reduce_sum(images))
        info = hub.ImageModuleInfo()
        info.default_image_size.height = 20
        info.default_image_size.width = 30
        hub.attach_image_module_info(info)

    spec = hub.create_module_spec(module_fn)
    assert hub.get_expected_image_size(spec) == [20, 30]
    assert hub.get_num_image_channels(spec) == 3
