"""hubcore.Module against the modules and observations of tensorflow_hub 0.15 (tests/data)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import hubcore as hub
from conftest import DATA, FIXTURES

v1 = tf.compat.v1
MANIFEST = json.loads((DATA / "manifest.json").read_text())["modules"]
COLLECTIONS = [
    "variables",
    "trainable_variables",
    "model_variables",
    "regularization_losses",
    "update_ops",
    "table_initializer",
    "asset_filepaths",
]


def _instantiations():
    for name in FIXTURES:
        for key in MANIFEST[name]["instantiate"]:
            tags_part, trainable_part = key.split("|")
            tags = [t for t in tags_part.split(",") if t]
            yield pytest.param(name, tags, trainable_part == "trainable=True", id=f"{name}-{key}")


@pytest.fixture(scope="session")
def specs():
    return {name: hub.load_module_spec(str(DATA / name)) for name in FIXTURES}


def _golden(name):
    return np.load(DATA / f"{name}.golden.npz")


def _golden_inputs(name):
    golden = _golden(name)
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for key in golden.files:
        if key.startswith("input."):
            _, signature, input_name = key.split(".", 2)
            inputs.setdefault(signature, {})[input_name] = golden[key]
    return inputs


def _sparse_input():
    return tf.compat.v1.SparseTensorValue(
        indices=np.array([[0, 1], [1, 3], [2, 0], [2, 5]], np.int64),
        values=np.array([1.0, -2.0, 0.5, 3.0], np.float32),
        dense_shape=np.array([3, 6], np.int64),
    )


def _ragged_input():
    return tf.RaggedTensor.from_row_splits(
        np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32), np.array([0, 2, 2, 6], np.int64)
    )


def _plain_tf_reference(name, feeds_fn, output_tensor):
    """Evaluates the module's default variant with plain TF (import_meta_graph + restore)."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((DATA / name / "saved_model.pb").read_bytes())
    meta_graph = saved_model.meta_graphs[0]
    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(meta_graph)
        with v1.Session() as session:
            variables = v1.global_variables()
            if variables:
                v1.train.Saver(variables).restore(session, str(DATA / name / "variables/variables"))
            return session.run(graph.get_tensor_by_name(output_tensor), feeds_fn(graph))


@pytest.mark.parametrize("name,tags,trainable", list(_instantiations()))
def test_instantiation_matches_manifest(specs, name, tags, trainable):
    record = MANIFEST[name]["instantiate"][f"{','.join(tags)}|trainable={trainable}"]
    with tf.Graph().as_default() as graph:
        module = hub.Module(specs[name], trainable=trainable, name="mod", tags=tags)
        for signature, inputs in _golden_inputs(name).items():
            module(inputs, signature=signature, as_dict=True)
        got_map = {
            key: [v.name for v in value] if isinstance(value, list) else value.name
            for key, value in module.variable_map.items()
        }
        assert got_map == record["variable_map"]
        sizes = {key: len(graph.get_collection(key)) for key in COLLECTIONS}
        assert sizes == record["collections"]
        # No implicit Saver, no unused copies of the signatures in the state scope.
        assert not [op for op in graph.get_operations() if op.name.startswith("save")]


@pytest.mark.parametrize("name", ["tiny", "text_table", "partitioned", "batchnorm"])
def test_golden_outputs(specs, name):
    golden = _golden(name)
    with tf.Graph().as_default():
        module = hub.Module(specs[name])
        results = {
            signature: module(inputs, signature=signature, as_dict=True)
            for signature, inputs in _golden_inputs(name).items()
        }
        with v1.Session() as session:
            session.run([v1.global_variables_initializer(), v1.tables_initializer()])
            values = session.run(results)
    checked = 0
    for signature, outputs in values.items():
        for key, value in outputs.items():
            expected_key = f"{signature}.{key}"
            if expected_key in golden.files:
                np.testing.assert_allclose(value, golden[expected_key], rtol=1e-5)
                checked += 1
    assert checked == len([k for k in golden.files if not k.startswith("input.")])


def test_text_table_sparse_output_and_assets(specs):
    with tf.Graph().as_default() as graph:
        module = hub.Module(specs["text_table"])
        tokens = module(["hello world", "the"], signature="tokens")
        assert isinstance(tokens, tf.SparseTensor)
        assets = graph.get_collection(v1.GraphKeys.ASSET_FILEPATHS)
        with v1.Session() as session:
            session.run(v1.tables_initializer())
            value = session.run(tokens)
            paths = session.run(assets)
    assert value.values.tolist() == [b"hello", b"world", b"the"]
    assert value.dense_shape.tolist() == [2, 2]
    for path in paths:
        assert path.decode().startswith(str(DATA / "text_table" / "assets"))


def test_sparse_input_matches_plain_tensorflow(specs):
    sparse = _sparse_input()
    expected = _plain_tf_reference(
        "sparse_in",
        lambda g: {
            g.get_tensor_by_name("sp/values:0"): sparse.values,
            g.get_tensor_by_name("sp/indices:0"): sparse.indices,
            g.get_tensor_by_name("sp/shape:0"): sparse.dense_shape,
        },
        "SparseTensorDenseMatMul/SparseTensorDenseMatMul:0",
    )
    with tf.Graph().as_default():
        module = hub.Module(specs["sparse_in"])
        out_value = module(sparse)
        out_tensor = module(tf.SparseTensor(sparse.indices, sparse.values, sparse.dense_shape))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            a, b = session.run([out_value, out_tensor])
    np.testing.assert_allclose(a, expected, rtol=1e-5)
    np.testing.assert_allclose(b, expected, rtol=1e-5)


def test_ragged_input_matches_plain_tensorflow(specs):
    expected = _plain_tf_reference(
        "ragged_in",
        lambda g: {
            g.get_tensor_by_name("rt/flat_values:0"): [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            g.get_tensor_by_name("rt/row_splits_0:0"): [0, 2, 2, 6],
        },
        "RaggedReduceSum/UnsortedSegmentSum:0",
    )
    with tf.Graph().as_default():
        module = hub.Module(specs["ragged_in"])
        out = module({"rt": _ragged_input()})
        placeholder = v1.ragged.placeholder(tf.float32, ragged_rank=1, value_shape=[])
        out_fed = module(placeholder)
        with v1.Session() as session:
            got = session.run(out)
            got_fed = session.run(
                out_fed,
                {
                    placeholder.flat_values: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                    placeholder.row_splits: [0, 2, 2, 6],
                },
            )
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(got_fed, expected, rtol=1e-5)


def test_two_instances_get_separate_scopes_and_state(specs):
    x = _golden_inputs("tiny")["default"]["x"]
    with tf.Graph().as_default() as graph:
        a = hub.Module(specs["tiny"])
        b = hub.Module(specs["tiny"])
        assert a.variable_map["dense/kernel"].name == "module/dense/kernel:0"
        assert b.variable_map["dense/kernel"].name == "module_1/dense/kernel:0"
        assert sorted(a.variable_map) == sorted(b.variable_map)
        ya, yb = a(x), b(x)
        assert ya.name.startswith("module_apply_default/")
        assert yb.name.startswith("module_1_apply_default/")
        assert len(graph.get_collection("variables")) == 4
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(b.variable_map["dense/bias"].assign([1.0, 2.0, 3.0]))
            va, vb = session.run([ya, yb])
    np.testing.assert_allclose(va, _golden("tiny")["default.default"], rtol=1e-5)
    bias = _golden_bias()
    np.testing.assert_allclose(
        vb - va, np.tile(np.array([1.0, 2.0, 3.0]) - bias, (3, 1)), rtol=1e-4, atol=1e-5
    )


def _golden_bias():
    from tensorflow.python.training import py_checkpoint_reader

    reader = py_checkpoint_reader.NewCheckpointReader(str(DATA / "tiny/variables/variables"))
    return reader.get_tensor("dense/bias")


def test_calls_share_state_and_prune_to_signature(specs):
    x = _golden_inputs("tiny")["default"]["x"]
    with tf.Graph().as_default() as graph:
        module = hub.Module(specs["tiny"])
        num_state_ops = len(graph.get_operations())
        first = module(x)
        ops_after_first = len(graph.get_operations())
        second = module(tf.constant(x))
        third = module(x, signature="encode")
        assert second.name.startswith("module_apply_default_1/")
        assert third.name.startswith("module_apply_encode/")
        assert len(graph.get_collection("variables")) == 2
        # Each call imports only its signature: no initializers, no other signature outputs.
        call_ops = [op.name for op in graph.get_operations()[num_state_ops:ops_after_first]]
        assert not [n for n in call_ops if "Initializer" in n or "Assign" in n]
        assert not [n for n in call_ops if n.endswith("/mul") or n.endswith("/Relu")]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            a, b, c = session.run([first, second, third])
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(c, np.maximum(a, 0), rtol=1e-6)


def test_state_scope_follows_variable_scope_not_name_scope(specs):
    with tf.Graph().as_default():
        with tf.name_scope("foo"):
            module = hub.Module(specs["tiny"])
            out = module(np.zeros([1, 4], np.float32))
        assert module.variable_map["dense/bias"].name == "module/dense/bias:0"
        assert out.name.startswith("foo/module_apply_default/")
        with v1.variable_scope("outer"):
            inner = hub.Module(specs["tiny"])
        assert inner.variable_map["dense/bias"].name == "outer/module/dense/bias:0"
        assert sorted(inner.variable_map) == sorted(module.variable_map)


def test_trainable_false_adds_no_trainable_variables(specs):
    with tf.Graph().as_default():
        module = hub.Module(specs["batchnorm"], tags=["train"])
        module(np.ones([2, 5], np.float32))
        assert v1.trainable_variables() == []
        assert v1.get_collection(v1.GraphKeys.UPDATE_OPS) == []
        assert v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES) == []
        assert len(module.variables) == 3


def test_update_ops_depend_on_call_inputs(specs):
    with tf.Graph().as_default():
        module = hub.Module(specs["batchnorm"], tags=["train"], trainable=True)
        x = v1.placeholder(tf.float32, [None, 5])
        module(x)
        module(x)
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        assert len(updates) == 4
        moving_mean = module.variable_map["bn/moving_mean"]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            before = session.run(moving_mean)
            session.run(updates[:2], {x: np.full([3, 5], 10.0, np.float32)})
            after = session.run(moving_mean)
    assert not np.allclose(before, after)


def test_variables_initialize_from_checkpoint_and_restore_with_saver(specs, tmp_path):
    with tf.Graph().as_default():
        module = hub.Module(specs["partitioned"])
        saver = v1.train.Saver()
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            table = session.run(module.variable_map["table"])
            session.run(module.variable_map["scale"].assign(7.0))
            prefix = saver.save(session, str(tmp_path / "ckpt"))
        with v1.Session() as session:
            saver.restore(session, prefix)
            assert session.run(module.variable_map["scale"]) == 7.0
    from tensorflow.python.training import py_checkpoint_reader

    reader = py_checkpoint_reader.NewCheckpointReader(str(DATA / "partitioned/variables/variables"))
    np.testing.assert_allclose(np.concatenate(table), reader.get_tensor("table"))


def test_training_step_export_and_reload(specs, tmp_path):
    x = _golden_inputs("tiny")["default"]["x"]
    with tf.Graph().as_default():
        module = hub.Module(specs["tiny"], trainable=True)
        out = module(x)
        loss = tf.reduce_sum(tf.square(out))
        train = v1.train.GradientDescentOptimizer(0.01).minimize(loss)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            before = session.run(module.variables)
            session.run(train)
            after = session.run(module.variables)
            trained = session.run(out)
            module.export(str(tmp_path / "exported"), session)
    assert all(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    assert not np.allclose(trained, _golden("tiny")["default.default"])
    reloaded = hub.load_module_spec(str(tmp_path / "exported"))
    assert sorted(reloaded.get_signature_names()) == ["default", "encode", "no_default"]
    with tf.Graph().as_default():
        again = hub.Module(reloaded)
        out = again(x)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            np.testing.assert_allclose(session.run(out), trained, rtol=1e-5)


def test_in_memory_spec_uses_original_initializers():
    from hubcore import _core
    from hubcore.module_spec import ModuleSpec

    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((DATA / "batchnorm" / "saved_model.pb").read_bytes())
    spec = ModuleSpec(_core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString()))
    assert spec.checkpoint_path is None and spec.path == ""
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            mean, var = session.run(
                [module.variable_map["bn/moving_mean"], module.variable_map["bn/moving_variance"]]
            )
    np.testing.assert_array_equal(mean, np.zeros(5))
    np.testing.assert_array_equal(var, np.ones(5))


def test_introspection(specs):
    with tf.Graph().as_default():
        module = hub.Module(specs["tiny"], tags={"train"})
        assert sorted(module.get_signature_names()) == ["default", "encode", "no_default"]
        assert module.get_input_info_dict()["x"].get_shape().as_list() == [None, 4]
        assert sorted(module.get_output_info_dict("no_default")) == ["a", "b"]
        info = module.get_attached_message("image_module_info", hub.ImageModuleInfo)
        assert (info.default_image_size.height, info.default_image_size.width) == (224, 160)
        assert module.get_attached_message("nothing", hub.ImageModuleInfo) is None
        assert [v.name for v in module.variables] == [
            "module/dense/bias:0",
            "module/dense/kernel:0",
        ]


def test_module_from_path_and_as_dict(specs):
    x = _golden_inputs("tiny")["no_default"]["x"]
    with tf.Graph().as_default():
        module = hub.Module(str(DATA / "tiny"))
        outputs = module({"x": x}, signature="no_default", as_dict=True)
        assert sorted(outputs) == ["a", "b"]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            a = session.run(outputs["a"])
    np.testing.assert_allclose(a, _golden("tiny")["no_default.a"], rtol=1e-5)


def test_eval_function_for_module(specs):
    golden = _golden("tiny")
    with hub.eval_function_for_module(specs["tiny"]) as f:
        np.testing.assert_allclose(
            f(golden["input.default.x"]), golden["default.default"], rtol=1e-5
        )
        out = f({"x": golden["input.no_default.x"]}, signature="no_default", as_dict=True)
        np.testing.assert_allclose(out["b"], golden["no_default.b"], rtol=1e-5)
    with hub.eval_function_for_module(specs["sparse_in"]) as f:
        assert f(_sparse_input()).shape == (3, 2)
    with hub.eval_function_for_module(str(DATA / "ragged_in")) as f:
        value = v1.ragged.RaggedTensorValue(
            np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32), np.array([0, 2, 2, 6], np.int64)
        )
        np.testing.assert_allclose(f(value), [3.0, 0.0, 18.0])


def test_v1_while_loop_call(specs, monkeypatch):
    from tensorflow.python.ops import control_flow_util

    monkeypatch.setattr(control_flow_util, "ENABLE_CONTROL_FLOW_V2", False)
    with tf.Graph().as_default():
        module = hub.Module(specs["tiny"])

        def body(i, acc):
            return i + 1, acc + module(tf.ones([1, 4]) * tf.cast(i, tf.float32))

        _, total = tf.compat.v1.while_loop(
            lambda i, acc: i < 3, body, [tf.constant(0), tf.zeros([1, 3])]
        )
        direct = sum(module(np.full([1, 4], i, np.float32)) for i in range(3))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            a, b = session.run([total, direct])
    np.testing.assert_allclose(a, b, rtol=1e-5)


def _ref_variable_spec():
    """tiny's default signature rebuilt with ref (VariableV2) variables, reading tiny's ckpt."""
    from tensorflow.python.saved_model import signature_def_utils
    from tensorflow.python.saved_model import utils as sm_utils

    from hubcore import _core
    from hubcore.module_spec import ModuleSpec

    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None, 4], name="x")
        with v1.variable_scope("dense", use_resource=False):
            kernel = v1.get_variable("kernel", [4, 3])
            bias = v1.get_variable("bias", [3], initializer=v1.zeros_initializer())
        assert kernel.op.type == "VariableV2"
        out = tf.matmul(x, kernel) + bias
        meta = v1.train.export_meta_graph(strip_default_attrs=True)
        meta.signature_def["default"].CopyFrom(
            signature_def_utils.build_signature_def(
                {"x": sm_utils.build_tensor_info(x)}, {"default": sm_utils.build_tensor_info(out)}
            )
        )
    saved_model = saved_model_pb2.SavedModel()
    saved_model.meta_graphs.add().CopyFrom(meta)
    native = _core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString())
    return ModuleSpec(native, checkpoint_path=str(DATA / "tiny/variables/variables"))


def test_ref_variables_restore_from_checkpoint():
    spec = _ref_variable_spec()
    x = _golden_inputs("tiny")["default"]["x"]
    with tf.Graph().as_default():
        module = hub.Module(spec, trainable=True)
        assert module.variable_map["dense/kernel"].op.type == "VariableV2"
        out = module(x)
        loss = tf.reduce_sum(out)
        train = v1.train.GradientDescentOptimizer(0.1).minimize(loss)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            np.testing.assert_allclose(
                session.run(out), _golden("tiny")["default.default"], rtol=1e-5
            )
            session.run(train)
            assert not np.allclose(session.run(out), _golden("tiny")["default.default"])


def test_device_scope_applies_to_state_and_calls(specs):
    with tf.Graph().as_default():
        with tf.device("/device:CPU:0"):
            module = hub.Module(specs["tiny"])
            out = module(np.zeros([1, 4], np.float32))
        assert module.variable_map["dense/kernel"].device == "/device:CPU:0"
        assert out.device == "/device:CPU:0"
        plain = module(np.zeros([1, 4], np.float32))
        assert plain.device == ""


def test_colocation_with_inputs_and_state_follows_the_mapped_tensors():
    from tensorflow.python.saved_model import signature_def_utils
    from tensorflow.python.saved_model import utils as sm_utils

    from hubcore import _core
    from hubcore.module_spec import ModuleSpec

    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, [None], name="x")
        w = v1.get_variable("w", [], initializer=v1.ones_initializer(), use_resource=True)
        with v1.colocate_with(x):
            y = tf.multiply(x, 2.0, name="y")
        with v1.colocate_with(w.op):
            z = tf.add(y, w.read_value(), name="z")
        meta = v1.train.export_meta_graph(strip_default_attrs=True)
        meta.signature_def["default"].CopyFrom(
            signature_def_utils.build_signature_def(
                {"x": sm_utils.build_tensor_info(x)}, {"default": sm_utils.build_tensor_info(z)}
            )
        )
    saved_model = saved_model_pb2.SavedModel()
    saved_model.meta_graphs.add().CopyFrom(meta)
    spec = ModuleSpec(_core.ModuleSpec.from_saved_model_bytes(saved_model.SerializeToString()))
    with tf.Graph().as_default() as graph:
        module = hub.Module(spec)
        with tf.device("/device:CPU:0"):
            given = tf.constant([1.0, 2.0], name="given")
        out = module(given)
        y_op = graph.get_operation_by_name("module_apply_default/y")
        assert y_op.colocation_groups() == [b"loc:@given"]
        assert y_op.device == "/device:CPU:0"
        assert out.op.colocation_groups() == [b"loc:@module/w"]
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            assert session.run(out).tolist() == [3.0, 5.0]


def test_export_from_a_finalized_graph(specs, tmp_path):
    x = _golden_inputs("tiny")["encode"]["default"]
    with tf.Graph().as_default() as graph:
        module = hub.Module(specs["tiny"])
        out = module(x, signature="encode")
        init = v1.global_variables_initializer()
        graph.finalize()
        with v1.Session() as session:
            session.run(init)
            session.run(module.variable_map["dense/bias"].initializer)
            expected = session.run(out)
            module.export(str(tmp_path / "m"), session)
        assert graph.finalized
    with hub.eval_function_for_module(str(tmp_path / "m")) as f:
        np.testing.assert_allclose(f(x, signature="encode"), expected, rtol=1e-6)


def test_gradients_through_v2_control_flow_in_a_module():
    """tf.cond in a module_fn is an If op with function branches (control flow v2 is the TF 2.21
    default); training through it needs the branch functions registered in the Python graph."""

    def module_fn():
        x = v1.placeholder(tf.float32, [None, 3])
        w = v1.get_variable("w", [3], initializer=v1.ones_initializer())
        hub.add_signature(
            inputs=x, outputs=tf.cond(tf.reduce_sum(x) > 0, lambda: x * w, lambda: x - w)
        )

    spec = hub.create_module_spec(module_fn)
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    with tf.Graph().as_default():
        m = hub.Module(spec, trainable=True)
        y = m(x)
        y_again = m(x)  # a second call brings the same function library
        step = v1.train.GradientDescentOptimizer(0.1).minimize(tf.reduce_sum(y))
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            session.run(step)
            got, got_again = session.run([y, y_again])
    want = x * (1.0 - 0.1 * x)  # d(sum(x * w))/dw = x
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(got_again, want, rtol=1e-6)
