"""Module-backed feature columns via input_layer and the v2 protocol, checked against Runner."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import hubcore
from hubcore import _tf_internal
from hubcore.examples import write_example

DATA = Path(__file__).resolve().parent / "data"
SENTENCES = ["the cat sat", "dog ran very fast", "zebra", "unknown words here"]
v1 = tf.compat.v1


def run_initialized(fetch):
    with v1.Session() as session:
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])
        return session.run(fetch)


@pytest.fixture(scope="module")
def image_module(tmp_path_factory) -> Path:
    return Path(write_example("image", tmp_path_factory.mktemp("fc") / "image"))


def test_text_embedding_column_in_input_layer():
    column = hubcore.text_embedding_column("comment", DATA / "text_table")
    assert column.name == "comment_hub_module_embedding"
    assert column.variable_shape == tf.TensorShape([8])
    assert column.parse_example_spec == {"comment": tf.io.FixedLenFeature([1], tf.string)}
    assert column.trainable is False
    with tf.Graph().as_default():
        # [batch, 1] as parsed by parse_example_spec; the column flattens it
        features = {"comment": tf.constant([[s] for s in SENTENCES])}
        layer = v1.feature_column.input_layer(features, [column])
        got = run_initialized(layer)
    np.testing.assert_allclose(got, hubcore.Runner(DATA / "text_table")(SENTENCES), rtol=1e-5)


def test_text_embedding_column_through_the_v2_protocol():
    column = hubcore.text_embedding_column("comment", str(DATA / "text_table"), trainable=True)
    assert column.get_config() == {
        "key": "comment",
        "module_spec_path": str(DATA / "text_table"),
        "trainable": True,
    }
    with tf.Graph().as_default():
        state = _tf_internal.StateManagerImpl(layer=None, trainable=True)
        column.create_state(state)
        cache = _tf_internal.FeatureTransformationCache({"comment": tf.constant(SENTENCES)})
        tensor = column.get_dense_tensor(cache, state)
        assert {v.name.split("/")[-1] for v in v1.trainable_variables()} == {"embeddings:0"}
        got = run_initialized(tensor)
    np.testing.assert_allclose(got, hubcore.Runner(DATA / "text_table")(SENTENCES), rtol=1e-5)


def test_text_modules_are_checked():
    with pytest.raises(
        hubcore.InvalidModuleError, match=r"tiny is not a text-embedding.*one input"
    ):
        hubcore.text_embedding_column("x", DATA / "tiny")
    with pytest.raises(ValueError, match="is not a text-embedding"):
        hubcore.sparse_text_embedding_column("x", DATA / "tiny", "mean", None)
    with pytest.raises(hubcore.InvalidArgumentError, match="combiner must be .*'max'"):
        hubcore.sparse_text_embedding_column("x", DATA / "text_table", "max", None)
    spec = hubcore.load_module_spec(DATA / "text_table")
    with pytest.raises(NotImplementedError, match="string `module_spec`"):
        hubcore.text_embedding_column("x", spec).get_config()


@pytest.mark.parametrize("combiner", ["mean", "sqrtn", "sum"])
def test_sparse_text_embedding_column_combines_token_embeddings(combiner):
    rows = [["the cat", "zebra"], [], ["dog", "ran", "fast"]]
    column = hubcore.sparse_text_embedding_column("tokens", DATA / "text_table", combiner, "zebra")
    assert column.parse_example_spec == {"tokens": tf.io.VarLenFeature(tf.string)}
    indices = [[i, j] for i, row in enumerate(rows) for j in range(len(row))]
    values = [token for row in rows for token in row]
    with tf.Graph().as_default():
        tokens = tf.SparseTensor(indices, values, dense_shape=[len(rows), 3])
        got = run_initialized(v1.feature_column.input_layer({"tokens": tokens}, [column]))
    runner = hubcore.Runner(DATA / "text_table")
    want = []
    for row in rows:
        embedded = runner(row or ["zebra"])  # an empty row gets the default token
        total = embedded.sum(axis=0)
        scale = {"mean": len(embedded), "sqrtn": np.sqrt(len(embedded)), "sum": 1.0}[combiner]
        want.append(total / scale)
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-5, atol=1e-6)


def test_image_embedding_column(image_module, tmp_path):
    column = hubcore.image_embedding_column("pixels", image_module)
    height, width = hubcore.get_expected_image_size(hubcore.load_module_spec(image_module))
    assert column.parse_example_spec == {
        "pixels": tf.io.FixedLenFeature([height, width, 3], tf.float32)
    }
    images = np.random.default_rng(0).uniform(size=(2, height, width, 3)).astype(np.float32)
    with tf.Graph().as_default():
        got = run_initialized(
            v1.feature_column.input_layer({"pixels": tf.constant(images)}, [column])
        )
    want = hubcore.Runner(image_module)({"images": images})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    sized = hubcore.image_embedding_column("pixels", image_module, image_size=[5, 7])
    assert sized.image_size == (5, 7)
    assert sized.parse_example_spec["pixels"].shape == [5, 7, 3]


def test_image_modules_are_checked(tmp_path):
    with pytest.raises(hubcore.InvalidModuleError, match="not usable as image embedding.*'images'"):
        hubcore.image_embedding_column("x", DATA / "tiny")

    def any_size_module():  # float32 images of unknown size, and no ImageModuleInfo
        images = v1.placeholder(tf.float32, [None, None, None, 3], name="images")
        hubcore.add_signature(inputs={"images": images}, outputs=tf.reduce_mean(images, [1, 2]))

    path = tmp_path / "any_size"
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(any_size_module))
        with v1.Session() as session:
            module.export(str(path), session)
    with pytest.raises(hubcore.InvalidModuleError, match=r"get_expected_image_size\(\)"):
        hubcore.image_embedding_column("x", path)
    # With an explicit size the module is usable.
    assert hubcore.image_embedding_column("x", path, image_size=(4, 4)).variable_shape == [3]


def export_module(path: Path, module_fn) -> Path:
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn))
        with v1.Session() as session:
            module.export(str(path), session)
    return path


def test_wrong_output_and_image_shapes_are_checked(tmp_path):
    """A 1-D string input with an int output is no text embedding; 'images' of rank 2 is no image
    input, whatever size is asked for: tensorflow_hub's messages, naming the module."""

    def int_output():
        text = v1.placeholder(tf.string, [None], name="text")
        hubcore.add_signature(inputs=text, outputs=tf.zeros([tf.shape(text)[0], 4], tf.int32))

    def flat_images():
        images = v1.placeholder(tf.float32, [None, 64], name="images")
        hubcore.add_signature(inputs={"images": images}, outputs=images * 2)

    text = export_module(tmp_path / "int_output", int_output)
    want = "must have a 'default' output of tf.Tensor(shape=(?,K), dtype=float32)"
    for make in (
        lambda: hubcore.text_embedding_column("x", text),
        lambda: hubcore.sparse_text_embedding_column("x", text, "mean", None),
    ):
        with pytest.raises(hubcore.InvalidModuleError, match=re.escape(want)) as e:
            make()
        assert str(text) in str(e.value)
    images = export_module(tmp_path / "flat_images", flat_images)
    with pytest.raises(hubcore.InvalidModuleError, match=r"Shape of module input is \(None, 64\)"):
        hubcore.image_embedding_column("x", images)
    column = hubcore.image_embedding_column("x", images, image_size=(8, 8))
    with tf.Graph().as_default(), pytest.raises(hubcore.InvalidArgumentError, match="'images'"):
        v1.feature_column.input_layer({"x": tf.zeros([2, 8, 8, 3])}, [column])


# A TF2 SavedModel: a hashed bag-of-words embedding, returned in a dict. Saved by a fresh
# interpreter, so that no TensorFlow state left by other tests changes how it traces.
TWO_OUTPUTS = """
import sys, numpy as np, tensorflow as tf
class TwoOutputs(tf.Module):
    def __init__(self):
        super().__init__()
        self.table = tf.Variable(np.random.default_rng(1).normal(size=(32, 4)).astype(np.float32))
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, text):
        words = tf.strings.split(text)
        ids = tf.strings.to_hash_bucket_fast(words, 32)
        embedding = tf.reduce_mean(tf.gather(self.table, ids), axis=1)
        return {"embedding": embedding, "length": words.row_lengths()}
tf.saved_model.save(TwoOutputs(), sys.argv[1])
"""


def test_text_embedding_column_v2(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [sys.executable, "-c", TWO_OUTPUTS, str(tmp_path / "saved")],
        check=True,
        env=env,
        timeout=300,
    )
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    column = hubcore.text_embedding_column_v2("text", tmp_path / "saved", output_key="embedding")
    state = _tf_internal.StateManagerImpl(layer=None, trainable=False)
    column.create_state(state)
    assert column.variable_shape == tf.TensorShape([4])
    cache = _tf_internal.FeatureTransformationCache({"text": tf.constant([[s] for s in SENTENCES])})
    got = column.get_dense_tensor(cache, state)
    np.testing.assert_allclose(got, loaded(tf.constant(SENTENCES))["embedding"], rtol=1e-6)
    assert state.get_resource(column, "hub_text_column_text").trainable_variables == ()

    no_key = hubcore.text_embedding_column_v2("text", tmp_path / "saved")
    with pytest.raises(hubcore.InvalidArgumentError, match="right `output_key`"):
        no_key.create_state(_tf_internal.StateManagerImpl(layer=None, trainable=False))

    # A TF1 Hub module loads with hubcore.load.
    hub_column = hubcore.text_embedding_column_v2("text", DATA / "text_table", trainable=True)
    state = _tf_internal.StateManagerImpl(layer=None, trainable=True)
    hub_column.create_state(state)
    assert hub_column.variable_shape == tf.TensorShape([8])
    cache = _tf_internal.FeatureTransformationCache({"text": tf.constant(SENTENCES)})
    np.testing.assert_allclose(
        hub_column.get_dense_tensor(cache, state),
        hubcore.Runner(DATA / "text_table")(SENTENCES),
        rtol=1e-5,
    )


def test_text_embedding_column_v2_on_bad_paths(tmp_path):
    """A missing path, a FIFO and a truncated SavedModel: documented errors naming the path."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"\x0a\xff")
    cases = [
        ("missing", hubcore.ModulePathNotFoundError),
        ("fifo", hubcore.NotAModuleError),
        ("broken", hubcore.CorruptModuleError),
    ]
    for name, error in cases:
        column = hubcore.text_embedding_column_v2("text", tmp_path / name)
        with pytest.raises(error, match=str(tmp_path / name)):
            column.create_state(_tf_internal.StateManagerImpl(layer=None, trainable=False))


def test_docs_snippets_run_as_written(tmp_path, monkeypatch):
    """docs/feature_columns.md's snippets, from the repository root; /tmp/ paths go to tmp_path."""
    text = (DATA.parent.parent / "docs" / "feature_columns.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(snippets) == 2
    monkeypatch.chdir(DATA.parent.parent)
    for i, code in enumerate(snippets):
        script = tmp_path / f"snippet{i}.py"
        script.write_text(code.replace('"/tmp/', f'"{tmp_path}/'))
        runpy.run_path(str(script), run_name="__main__")
    assert (tmp_path / "hubcore-trained" / "tfhub_module.pb").is_file()
    trained = hubcore.Runner(tmp_path / "hubcore-trained")(["the cat sat"])
    assert not np.allclose(trained, hubcore.Runner(DATA / "text_table")(["the cat sat"]))
