"""create_module_spec / add_signature / attach_message: a round trip through the on-disk format.

The module built here has several signatures (dense, sparse, ragged, one without a ``default``
output), two graph variants, a vocabulary asset with a hash table, a partitioned variable, batch
norm update ops and a regularization loss in the ``train`` variant, and an attached message. It is
exported, loaded by plain TensorFlow (``tf.compat.v1.saved_model.loader.load`` per tag set, and
TF2 ``tf.saved_model.load``), and by hubcore, and every path must compute the NumPy reference.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.core.framework import tensor_shape_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2  # noqa: E402

import hubcore as hub  # noqa: E402
from conftest import load_tf1_saved_model, vocab_table  # noqa: E402
from hubcore import _core, _export  # noqa: E402

VOCAB = ["<unk>", "hello", "world", "cat", "dog"]
EPS = 1e-3
RNG = np.random.default_rng(7)
VALUES = {
    "emb": RNG.normal(size=(5, 4)).astype(np.float32),
    "dense/w": RNG.normal(size=(4, 3)).astype(np.float32),
    "bn/moving_mean": np.array([0.5, -0.25, 1.0], np.float32),
    "bn/moving_variance": np.array([2.0, 0.5, 1.5], np.float32),
}
TEXT = np.array([b"cat", b"hello", b"zebra", b"dog", b"world"], dtype=object)
X = RNG.normal(size=(3, 4)).astype(np.float32)
SPARSE = (
    np.array([[0, 1], [0, 3], [2, 0]], np.int64),
    np.array([1.0, 2.0, 5.0], np.float32),
    np.array([3, 4], np.int64),
)
RAGGED = (np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32), np.array([0, 2, 2, 5], np.int64))
INFO = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=224)])
TAGS_AND_ARGS = [(set(), {}), ({"train"}, {"training": True})]


def make_module_fn(vocab_path: str):
    def module_fn(training: bool = False) -> None:
        text = tf.compat.v1.placeholder(tf.string, [None], name="text")
        table = vocab_table(vocab_path, 0)
        ids = table.lookup(text)
        emb = tf.compat.v1.get_variable(
            "emb", [5, 4], partitioner=tf.compat.v1.fixed_size_partitioner(2)
        )
        vectors = tf.compat.v1.nn.embedding_lookup(emb, ids, partition_strategy="div")
        w = tf.compat.v1.get_variable("dense/w", [4, 3])
        h = tf.matmul(vectors, w)
        moving_mean = tf.compat.v1.get_variable(
            "bn/moving_mean", [3], initializer=tf.compat.v1.zeros_initializer(), trainable=False
        )
        moving_var = tf.compat.v1.get_variable(
            "bn/moving_variance",
            [3],
            initializer=tf.compat.v1.ones_initializer(),
            trainable=False,
        )
        if training:
            mean, var = tf.nn.moments(h, [0])
            for variable, value in ((moving_mean, mean), (moving_var, var)):
                update = tf.compat.v1.assign(variable, 0.9 * variable + 0.1 * value)
                tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, update)
        else:
            mean, var = moving_mean, moving_var
        out = (h - mean) / tf.sqrt(var + EPS)
        tf.compat.v1.add_to_collection(
            tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES, 0.01 * tf.nn.l2_loss(w)
        )
        hub.add_signature(inputs=text, outputs={"default": out, "ids": ids})
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        hub.add_signature("dense", inputs={"x": x}, outputs=tf.matmul(x, w))
        sp = tf.compat.v1.sparse_placeholder(tf.float32, [None, 4], name="sp")
        hub.add_signature(
            "sparse_sum", inputs={"sp": sp}, outputs={"sum": tf.sparse.reduce_sum(sp, axis=1)}
        )
        rt = tf.compat.v1.ragged.placeholder(tf.float32, 1, [], name="rt")
        hub.add_signature("ragged_sum", inputs=rt, outputs=tf.reduce_sum(rt, axis=1))
        hub.attach_message("info", tensor_shape_pb2.TensorShapeProto())  # replaced below
        hub.attach_message("other", tensor_shape_pb2.TensorShapeProto(unknown_rank=training))
        hub.attach_message("info", INFO)

    return module_fn


def expected(signature: str, train: bool) -> dict[str, np.ndarray]:
    """NumPy reference outputs for the inputs above."""
    w = VALUES["dense/w"]
    if signature == "default":
        index = {w_.encode(): i for i, w_ in enumerate(VOCAB)}
        ids = np.array([index.get(t, 0) for t in TEXT], np.int64)
        h = VALUES["emb"][ids] @ w
        if train:
            mean, var = h.mean(axis=0), h.var(axis=0)
        else:
            mean, var = VALUES["bn/moving_mean"], VALUES["bn/moving_variance"]
        return {"default": (h - mean) / np.sqrt(var + EPS), "ids": ids}
    if signature == "dense":
        return {"default": X @ w}
    if signature == "sparse_sum":
        dense = np.zeros(SPARSE[2], np.float32)
        dense[tuple(SPARSE[0].T)] = SPARSE[1]
        return {"sum": dense.sum(axis=1)}
    values, splits = RAGGED
    return {"default": np.array([values[a:b].sum() for a, b in itertools.pairwise(splits)])}


SIGNATURES = ["default", "dense", "ragged_sum", "sparse_sum"]


def feed_for(signature_def: meta_graph_pb2.SignatureDef, signature: str) -> dict[str, object]:
    """Feeds for a SignatureDef by its TensorInfo encodings (dense, coo_sparse, composite)."""
    ((_, info),) = signature_def.inputs.items()
    kind = info.WhichOneof("encoding")
    if kind == "name":
        return {info.name: TEXT if signature == "default" else X}
    if kind == "coo_sparse":
        c = info.coo_sparse
        return {
            c.indices_tensor_name: SPARSE[0],
            c.values_tensor_name: SPARSE[1],
            c.dense_shape_tensor_name: SPARSE[2],
        }
    assert kind == "composite_tensor"
    names = [c.name for c in info.composite_tensor.components]
    return dict(zip(names, RAGGED, strict=True))


@pytest.fixture(scope="session")
def created(tmp_path_factory):
    """(spec, exported module dir) for the round-trip module."""
    root = tmp_path_factory.mktemp("creation")
    vocab = root / "src" / "vocab.txt"
    vocab.parent.mkdir()
    vocab.write_text("\n".join(VOCAB) + "\n")
    spec = hub.create_module_spec(make_module_fn(str(vocab)), TAGS_AND_ARGS)
    path = root / "module"
    _export.export_with_values(spec, path, VALUES)
    return spec, str(path)


def test_created_spec_describes_the_module(created):
    spec, _ = created
    assert spec.get_tags() == [frozenset(), frozenset({"train"})]
    for tags in ([], ["train"]):
        assert sorted(spec.get_signature_names(tags)) == SIGNATURES
    info = spec.get_input_info_dict("sparse_sum")["sp"]
    assert info.is_sparse and info.dtype == tf.float32
    assert spec.get_input_info_dict("ragged_sum")["default"].type_spec == tf.RaggedTensorSpec(
        [None, None], tf.float32, 1, tf.int64
    )
    assert spec.get_output_info_dict()["default"].get_shape().as_list() == [None, 3]
    assert spec.get_attached_message("info", tensor_shape_pb2.TensorShapeProto) == INFO
    other = spec.get_attached_message("other", tensor_shape_pb2.TensorShapeProto, tags=["train"])
    assert other.unknown_rank
    variables = {v.name: v for v in spec.variant().variables}
    assert sorted(variables) == sorted(VALUES)
    assert [p.shape for p in variables["emb"].partitions] == [[3, 4], [2, 4]]
    assert variables["dense/w"].trainable and not variables["bn/moving_mean"].trainable
    assert spec.checkpoint_path is None and spec.path == ""


def _saved_model(path: str) -> saved_model_pb2.SavedModel:
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


def test_export_writes_the_tf_hub_format(created):
    _, path = created
    assert sorted(os.listdir(path)) == ["assets", "saved_model.pb", "tfhub_module.pb", "variables"]
    with open(os.path.join(path, "tfhub_module.pb"), "rb") as f:
        assert f.read() == b"\x08\x03"
    assert os.listdir(os.path.join(path, "assets")) == ["vocab.txt"]
    assert sorted(os.listdir(os.path.join(path, "variables"))) == [
        "variables.data-00000-of-00001",
        "variables.index",
    ]
    saved_model = _saved_model(path)
    assert saved_model.saved_model_schema_version == 0
    assert [list(m.meta_info_def.tags) for m in saved_model.meta_graphs] == [[], ["train"]]
    for meta_graph in saved_model.meta_graphs:
        assert not meta_graph.HasField("saver_def") and not meta_graph.asset_file_def
        assert meta_graph.meta_info_def.stripped_default_attrs
        assets = meta_graph.collection_def["saved_model_assets"].any_list.value
        asset = meta_graph_pb2.AssetFileDef()
        assert len(assets) == 1 and assets[0].Unpack(asset)
        assert (asset.filename, asset.tensor_info.name) == ("vocab.txt", "asset_path:0")
        node = next(n for n in meta_graph.graph_def.node if n.name == "asset_path")
        assert node.attr["value"].tensor.string_val == [b"SAVEDMODEL-ASSET"]
        assert list(meta_graph.collection_def["asset_filepaths"].node_list.value) == [
            "asset_path:0"
        ]
        attachments = meta_graph.collection_def["hub_module_attachments"].bytes_list.value
        assert len(attachments) == 2  # "info" twice collapsed: first position, last value
        assert attachments[0] == _core.serialize_attachment("info", INFO.SerializeToString())
    # An empty message is stored as tensorflow_hub's proto3 writer stores it: no value field.
    default_attachments = saved_model.meta_graphs[0].collection_def["hub_module_attachments"]
    assert default_attachments.bytes_list.value[1] == b"\n\x05other"
    train = saved_model.meta_graphs[1]
    assert len(train.collection_def["update_ops"].node_list.value) == 2
    assert "update_ops" not in saved_model.meta_graphs[0].collection_def
    # The partitioned variable is stored under its full name with the full shape.
    ckpt = dict(tf.train.list_variables(os.path.join(path, "variables", "variables")))
    assert ckpt == {
        "emb": [5, 4],
        "dense/w": [4, 3],
        "bn/moving_mean": [3],
        "bn/moving_variance": [3],
    }


@pytest.mark.parametrize("tags", [[], ["train"]], ids=["default", "train"])
def test_plain_tensorflow_v1_loader_runs_every_signature(created, tags):
    _, path = created
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = load_tf1_saved_model(sess, tags, path)
        assert sorted(meta_graph.signature_def) == SIGNATURES
        for name in SIGNATURES:
            signature_def = meta_graph.signature_def[name]
            fetches = {k: v.name for k, v in signature_def.outputs.items()}
            got = sess.run(fetches, feed_for(signature_def, name))
            want = expected(name, train=bool(tags))
            assert sorted(got) == sorted(want)
            for key in want:
                np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
        if tags:  # the train variant's update ops move the averages
            sess.run(
                tf.compat.v1.get_collection("update_ops"),
                feed_for(meta_graph.signature_def["default"], "default"),
            )


def test_plain_tensorflow_v2_loader(created):
    _, path = created
    loaded = tf.saved_model.load(path, tags=[])
    out = loaded.signatures["default"](default=tf.constant(TEXT))
    want = expected("default", train=False)
    np.testing.assert_allclose(out["default"].numpy(), want["default"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["ids"].numpy(), want["ids"])


def test_hubcore_loads_the_export(created):
    spec, path = created
    loaded = hub.load_module_spec(path)
    assert loaded.get_tags() == spec.get_tags()
    assert loaded.checkpoint_path == os.path.join(path, "variables", "variables")
    for tags in ([], ["train"]):
        assert sorted(loaded.get_signature_names(tags)) == SIGNATURES
        for sig in SIGNATURES:
            for get in ("get_input_info_dict", "get_output_info_dict"):
                a = getattr(loaded, get)(sig, tags)
                b = getattr(spec, get)(sig, tags)
                assert {k: repr(v) for k, v in a.items()} == {k: repr(v) for k, v in b.items()}
    assert loaded.get_attached_message("info", tensor_shape_pb2.TensorShapeProto) == INFO
    (asset,) = loaded.variant().assets
    assert asset.path == os.path.join(path, "assets", "vocab.txt")


def _run_module(spec, tags=None):
    """Outputs of every signature through hubcore.Module (needs hubcore.module)."""
    with tf.Graph().as_default():
        m = hub.Module(spec, tags=tags)
        outs = {}
        outs["default"] = m(TEXT, as_dict=True)
        outs["dense"] = m({"x": X}, signature="dense", as_dict=True)
        outs["sparse_sum"] = m(
            {"sp": tf.SparseTensor(*SPARSE)}, signature="sparse_sum", as_dict=True
        )
        rt = tf.RaggedTensor.from_row_splits(RAGGED[0], RAGGED[1])
        outs["ragged_sum"] = m(rt, signature="ragged_sum", as_dict=True)
        with tf.compat.v1.Session() as sess:
            sess.run(
                [tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()]
            )
            return sess.run(outs)


def test_hubcore_module_computes_the_same(created):
    pytest.importorskip("hubcore.module")
    _, path = created
    for tags in (None, ["train"]):
        got = _run_module(hub.load_module_spec(path), tags)
        for name in SIGNATURES:
            want = expected(name, train=bool(tags))
            for key in want:
                np.testing.assert_allclose(got[name][key], want[key], rtol=1e-5, atol=1e-6)


def test_module_export_round_trip(created, tmp_path):
    pytest.importorskip("hubcore.module")
    _, path = created
    spec = hub.load_module_spec(path)
    again = tmp_path / "again"
    spec.export(str(again), checkpoint_path=os.path.join(path, "variables", "variables"))
    got = _run_module(hub.load_module_spec(again))
    for name in SIGNATURES:
        for key, want in expected(name, train=False).items():
            np.testing.assert_allclose(got[name][key], want, rtol=1e-5, atol=1e-6)


# ---- errors ---------------------------------------------------------------------------------


def _signature_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None])
    hub.add_signature(inputs=x, outputs=x * 2)


def test_no_signature():
    with pytest.raises(
        ValueError,
        match=r"No signatures present. Please call "
        r"hub.add_signature\(...\)at least once in the module_fn.",
    ):
        hub.create_module_spec(lambda: tf.constant(1.0))


def test_duplicate_tags():
    with pytest.raises(ValueError, match="used repeatedly"):
        hub.create_module_spec(_signature_fn, [({"a", "b"}, {}), (["b", "a"], {})])


def test_unsupported_collection_and_drop_collections():
    def module_fn():
        _signature_fn()
        tf.compat.v1.summary.scalar("s", tf.constant(1.0))
        tf.compat.v1.add_to_collection("losses", tf.constant(2.0))

    with pytest.raises(
        ValueError,
        match=r"Unsupported collections in graph: .*'losses'.*"
        r"'summaries'.*drop_collections",
    ):
        hub.create_module_spec(module_fn)
    spec = hub.create_module_spec(module_fn, drop_collections=["summaries", "losses"])
    assert "summaries" not in spec.variant().collection_keys


def test_state_op_colocation():
    def module_fn():
        c = tf.constant(1.0, name="c")
        with tf.compat.v1.colocate_with(c):
            v = tf.compat.v1.get_variable("v", [])
        hub.add_signature(outputs=v.read_value())

    with pytest.raises(ValueError, match="state-holding node") as e:
        hub.create_module_spec(module_fn)
    assert "for tags" not in str(e.value)
    with pytest.raises(ValueError, match=r"in the graph for tags \['x'\], node 'v'"):
        hub.create_module_spec(module_fn, [(["x"], {})])


def test_state_op_colocated_with_state_op_is_fine():
    def module_fn():
        a = tf.compat.v1.get_variable("a", [])
        with tf.compat.v1.colocate_with(a.op):
            b = tf.compat.v1.get_variable("b", [])
        hub.add_signature(outputs=a + b)

    assert sorted(v.name for v in hub.create_module_spec(module_fn).variant().variables) == [
        "a",
        "b",
    ]


def test_signature_input_colocation():
    def module_fn():
        c = tf.constant(1.0)
        with tf.compat.v1.colocate_with(c):
            x = tf.compat.v1.placeholder(tf.float32, [])
        hub.add_signature(inputs=x, outputs=x)

    with pytest.raises(ValueError, match="must not be subject to a tf.colocate_with"):
        hub.create_module_spec(module_fn)


def test_signature_value_types():
    def bad_output():
        v = tf.compat.v1.get_variable("v", [])
        hub.add_signature(outputs={"v": v})

    def bad_input():
        x = tf.compat.v1.placeholder(tf.float32, [])
        hub.add_signature(inputs=[x], outputs=x)

    with pytest.raises(ValueError, match=r"one of the types.*\n  \* output .v. has type"):
        hub.create_module_spec(bad_output)
    with pytest.raises(AttributeError):
        hub.create_module_spec(bad_input)


def test_signature_names_and_replacement():
    def module_fn():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        hub.add_signature("a:b", inputs={"x": x}, outputs={"y": x + 1})
        hub.add_signature("a:b", inputs={"x": x}, outputs={"z": x + 2})  # last one wins
        hub.add_signature(None, outputs=tf.constant([1.0]))  # no inputs, name "default"

    spec = hub.create_module_spec(module_fn)
    assert sorted(spec.get_signature_names()) == ["a:b", "default"]
    assert list(spec.get_output_info_dict("a:b")) == ["z"]
    assert spec.get_input_info_dict() == {}


def test_attach_message_errors():
    for key in ("", "1abc", "a-b", "a b"):
        with pytest.raises(ValueError, match="malformed key"):
            hub.attach_message(key, INFO)
    with pytest.raises(TypeError):
        hub.attach_message("ok", 42)


def test_variants_are_traced_with_their_arguments():
    def module_fn(scale=1.0):
        x = tf.compat.v1.placeholder(tf.float32, [None])
        hub.add_signature(inputs=x, outputs=x * scale)
        hub.attach_message(
            "scale",
            tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=int(scale))]
            ),
        )

    spec = hub.create_module_spec(module_fn, [(["b"], {"scale": 3.0}), ([], {})])
    assert [sorted(v.tags) for v in spec.native.variants] == [["b"], []]
    msg = spec.get_attached_message("scale", tensor_shape_pb2.TensorShapeProto, tags=["b"])
    assert msg.dim[0].size == 3


def test_ref_variables():
    def module_fn():
        with tf.compat.v1.variable_scope("ref", use_resource=False):
            v = tf.compat.v1.get_variable("v", [2])
        hub.add_signature(outputs=v + 0.0)

    (var,) = hub.create_module_spec(module_fn).variant().variables
    assert var.name == "ref/v" and not var.resource
