"""Every documented hubcore.Module error, with its exception type."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import hubcore as hub
from conftest import DATA
from hubcore import _core
from hubcore.module_spec import ModuleSpec

v1 = tf.compat.v1


@pytest.fixture(scope="module")
def tiny():
    return hub.load_module_spec(str(DATA / "tiny"))


def _saved_model(name: str) -> saved_model_pb2.SavedModel:
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((DATA / name / "saved_model.pb").read_bytes())
    return saved_model


@pytest.fixture(scope="module")
def multi():
    """An in-memory spec: 'default' takes a and b, 'const' takes nothing."""
    from tensorflow.python.saved_model import signature_def_utils
    from tensorflow.python.saved_model import utils as sm_utils

    with tf.Graph().as_default():
        a = v1.placeholder(tf.float32, [None], name="a")
        b = v1.placeholder(tf.float32, [None], name="b")
        c = tf.constant([1.0, 2.0], name="c")
        total = a + b
        meta = v1.train.export_meta_graph(strip_default_attrs=True)
        info = sm_utils.build_tensor_info
        meta.signature_def["default"].CopyFrom(
            signature_def_utils.build_signature_def(
                {"a": info(a), "b": info(b)}, {"default": info(total)}
            )
        )
        meta.signature_def["const"].CopyFrom(
            signature_def_utils.build_signature_def({}, {"default": info(c)})
        )
        meta.signature_def["identity"].CopyFrom(
            signature_def_utils.build_signature_def({"a": info(a)}, {"default": info(a)})
        )
    saved_model = saved_model_pb2.SavedModel()
    saved_model.meta_graphs.add().CopyFrom(meta)
    return ModuleSpec(_core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString()))


def test_in_memory_multi_input_spec_works(multi):
    with tf.Graph().as_default():
        module = hub.Module(multi)
        out = module({"a": [1.0], "b": [2.0]})
        const = module(signature="const")
        with v1.Session() as session:
            assert session.run(out).tolist() == [3.0]
            assert session.run(const).tolist() == [1.0, 2.0]
        given = tf.constant([5.0])
        assert module(given, signature="identity") is given  # A passthrough output.


def test_unknown_tags(tiny):
    with tf.Graph().as_default():
        with pytest.raises(hub.VariantNotFoundError, match="No such graph variant") as e:
            hub.Module(tiny, tags={"serve"})
    assert isinstance(e.value, ValueError) and isinstance(e.value, KeyError)
    assert "{train}" in str(e.value)


def test_unknown_signature(tiny):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        with pytest.raises(hub.SignatureNotFoundError, match="'nope' is missing") as e:
            module(np.zeros([1, 4], np.float32), signature="nope")
        assert isinstance(e.value, ValueError) and isinstance(e.value, KeyError)
        with pytest.raises(KeyError):
            module.get_input_info_dict("nope")


def test_missing_extra_and_positional_inputs(tiny, multi):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        x = np.zeros([1, 4], np.float32)
        with pytest.raises(TypeError, match=r"missing \['x'\], extra given \['y'\]"):
            module({"y": x})
        with pytest.raises(TypeError, match=r"missing \['x'\]"):
            module({})
        with pytest.raises(TypeError, match="one positional argument"):
            module(x, "encode")
        other = hub.Module(multi)
        with pytest.raises(hub.InvalidArgumentError, match="multiple inputs. Use a dict"):
            other([1.0])
        with pytest.raises(TypeError, match="expects no inputs"):
            other([1.0], signature="const")


def test_mismatched_inputs(tiny):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        with pytest.raises(TypeError, match="Can't convert 'x'"):
            module(np.array([["a", "b", "c", "d"]]))
        with pytest.raises(TypeError, match="Can't convert 'x'") as e:
            module(tf.zeros([1, 4], tf.int32))
        assert isinstance(e.value, ValueError)  # tensorflow_hub raised ValueError here.
        with pytest.raises(TypeError, match=r"Can't convert 'x': Got .*Expected"):
            module(np.zeros([2, 5], np.float32))
        with pytest.raises(TypeError, match="Got SparseTensor. Expected Tensor"):
            module(tf.SparseTensor([[0, 0]], [1.0], [1, 4]))
    sparse = hub.load_module_spec(str(DATA / "sparse_in"))
    with tf.Graph().as_default():
        module = hub.Module(sparse)
        with pytest.raises(TypeError, match="Got Tensor. Expected SparseTensor"):
            module(np.zeros([2, 6], np.float32))


def test_no_default_output(tiny):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        with pytest.raises(TypeError, match="no output named 'default'. Use as_dict=True"):
            module(np.zeros([1, 4], np.float32), signature="no_default")


def test_wrong_graph_and_eager(tiny):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
    with tf.Graph().as_default():
        with pytest.raises(RuntimeError, match="graph it was instantiated for"):
            module(np.zeros([1, 4], np.float32))
    with pytest.raises(RuntimeError, match="graph mode"):
        hub.Module(tiny)  # Tests run eagerly outside of tf.Graph().as_default().


def test_tf2_while_loop_body_captures_the_state(tiny):
    """A v2 while body is a function graph: the module applied there captures its state."""
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        x = tf.ones([1, 4])
        _, looped = tf.while_loop(
            lambda i, total: i < 3,
            lambda i, total: (i + 1, total + tf.reduce_sum(module(x))),
            [tf.constant(0), tf.constant(0.0)],
        )
        direct = tf.reduce_sum(module(x))
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            looped_value, direct_value = session.run([looped, direct])
        assert direct_value != 0
        np.testing.assert_allclose(looped_value, 3 * direct_value, rtol=1e-5)


def test_unknown_spec_type():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="Unknown module spec type"):
            hub.Module(42)


def test_name_scope_taken(tiny):
    with tf.Graph().as_default():
        tf.constant(1.0, name="module")
        with pytest.raises(RuntimeError, match="name_scope was already taken"):
            hub.Module(tiny)


def test_variable_missing_from_checkpoint():
    saved_model = _saved_model("partitioned")
    native = _core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString())
    spec = ModuleSpec(native, checkpoint_path=str(DATA / "tiny/variables/variables"))
    with tf.Graph().as_default():
        with pytest.raises(RuntimeError, match="not found in .* checkpoint") as e:
            hub.Module(spec)
    assert isinstance(e.value, ValueError)  # tensorflow_hub raised ValueError here.


def test_checkpoint_shape_mismatch():
    saved_model = _saved_model("tiny")
    native = _core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString())
    # text_table's checkpoint has no dense/*; batchnorm's has 'w' but not dense/kernel either:
    # build a checkpoint with a wrong-shaped dense/kernel instead.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, tf.Graph().as_default():
        v1.Variable(np.zeros([5, 3], np.float32), name="dense/kernel")
        v1.Variable(np.zeros([3], np.float32), name="dense/bias")
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            prefix = v1.train.Saver().save(session, f"{tmp}/ckpt", write_meta_graph=False)
        spec = ModuleSpec(native, checkpoint_path=prefix)
        with tf.Graph().as_default():
            with pytest.raises(RuntimeError, match="does not match the checkpoint"):
                hub.Module(spec)


def test_export_errors(tiny, tmp_path):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        with tf.Graph().as_default(), v1.Session() as other:
            with pytest.raises(RuntimeError, match="default graph differs"):
                module.export(str(tmp_path / "a"), other)
        other = v1.Session(graph=tf.Graph())
        with pytest.raises(RuntimeError, match="session graph differs"):
            module.export(str(tmp_path / "b"), other)
        other.close()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_required_attached_message(tiny):
    with tf.Graph().as_default():
        module = hub.Module(tiny)
        with pytest.raises(KeyError, match="No attached message for key 'other'"):
            module.get_attached_message("other", hub.ImageModuleInfo, required=True)


def test_state_op_with_two_outputs_fails_instantiation():
    from tensorflow.python.saved_model import signature_def_utils
    from tensorflow.python.saved_model import utils as sm_utils

    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        tf.raw_ops.AnonymousMemoryCache(name="cache")  # Stateful, no inputs, 2 outputs.
        meta = v1.train.export_meta_graph(strip_default_attrs=True)
        meta.signature_def["default"].CopyFrom(
            signature_def_utils.build_signature_def(
                {"x": sm_utils.build_tensor_info(x)}, {"default": sm_utils.build_tensor_info(x)}
            )
        )
    saved_model = saved_model_pb2.SavedModel()
    saved_model.meta_graphs.add().CopyFrom(meta)
    spec = ModuleSpec(_core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString()))
    with tf.Graph().as_default():
        with pytest.raises(RuntimeError, match="Stateful op cache .* has 2 outputs, expected 1"):
            hub.Module(spec)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (
            np.zeros([4, 3], np.float64),
            "is float32 but the checkpoint entry 'dense/kernel'.* holds float64",
        ),
        (np.zeros([5, 3], np.float32), "Shape of variable 'dense/kernel' .* does not match"),
    ],
    ids=["dtype", "shape"],
)
def test_module_and_runner_check_checkpoint_dtype_and_shape(tmp_path, kernel, message):
    """hub.Module and hubcore.Runner restore through the same code, with the same checks."""
    import shutil

    module_dir = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", module_dir)
    with tf.Graph().as_default():
        v1.Variable(kernel, name="dense/kernel")
        v1.Variable(np.zeros([3], np.float32), name="dense/bias")
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            v1.train.Saver().save(
                session, str(module_dir / "variables" / "variables"), write_meta_graph=False
            )
    with pytest.raises(hub.CorruptModuleError, match=message):
        hub.Runner(module_dir)
    with tf.Graph().as_default(), pytest.raises(hub.CorruptModuleError, match=message):
        hub.Module(str(module_dir))
