"""``hubcore example NAME DIR``: the built-in example modules."""

from __future__ import annotations

import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")


import hubcore as hub  # noqa: E402
from conftest import load_tf1_saved_model  # noqa: E402
from hubcore import cli, examples  # noqa: E402

SENTENCES = ["The cat and the dog", "", "zzz qqq", "Hub module!", "the"]


@pytest.fixture(scope="module")
def text_module(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("example") / "text"
    assert cli.main(["example", "text-embedding", str(path)]) == 0
    return str(path)


@pytest.fixture(scope="module")
def image_module(tmp_path_factory) -> str:
    return examples.write_example("image", tmp_path_factory.mktemp("example") / "image")


def _run_plain(path: str, inputs: dict[str, object], tags=()) -> dict[str, np.ndarray]:
    """Runs the default signature with plain TensorFlow's v1 SavedModel loader."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = load_tf1_saved_model(sess, list(tags), path)
        sig = meta_graph.signature_def["default"]
        return sess.run(
            {k: v.name for k, v in sig.outputs.items()},
            {sig.inputs[k].name: v for k, v in inputs.items()},
        )


def test_text_embedding_module(text_module):
    spec = hub.load_module_spec(text_module)
    assert spec.get_signature_names() == ["default"]
    (inp,) = spec.get_input_info_dict().values()
    assert inp.dtype == tf.string and inp.get_shape().as_list() == [None]
    out = spec.get_output_info_dict()["default"]
    assert out.dtype == tf.float32 and out.get_shape().as_list() == [None, examples.EMBEDDING_DIM]
    assert sorted(os.listdir(os.path.join(text_module, "assets"))) == ["vocab.txt"]
    with open(os.path.join(text_module, "assets", "vocab.txt")) as f:
        assert f.read().split("\n")[:-1] == examples.VOCABULARY
    (var,) = spec.variant().variables
    assert (var.name, list(var.shape)) == (
        "embeddings",
        [len(examples.VOCABULARY), examples.EMBEDDING_DIM],
    )

    got = _run_plain(text_module, {"default": SENTENCES})["default"]
    assert got.shape == (len(SENTENCES), examples.EMBEDDING_DIM)
    emb = tf.train.load_variable(os.path.join(text_module, "variables", "variables"), "embeddings")
    index = {w: i for i, w in enumerate(examples.VOCABULARY)}
    want0 = emb[[index[w] for w in ["the", "cat", "and", "the", "dog"]]].mean(axis=0)
    np.testing.assert_allclose(got[0], want0, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got[1], 0.0)  # empty sentence
    np.testing.assert_array_equal(got[2], 0.0)  # unknown words only (<unk> is all zeros)
    np.testing.assert_allclose(
        got[3], emb[[index["hub"], index["module"]]].mean(axis=0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(got[4], emb[index["the"]], rtol=1e-5)
    assert np.abs(got[0]).sum() > 0


def test_text_embedding_is_deterministic(text_module, tmp_path):
    again = examples.write_example("text-embedding", tmp_path / "again")
    prefix = os.path.join("variables", "variables")
    np.testing.assert_array_equal(
        tf.train.load_variable(os.path.join(text_module, prefix), "embeddings"),
        tf.train.load_variable(os.path.join(again, prefix), "embeddings"),
    )


def test_text_embedding_through_hubcore_module(text_module):
    pytest.importorskip("hubcore.module")
    want = _run_plain(text_module, {"default": SENTENCES})["default"]
    with tf.Graph().as_default():
        m = hub.Module(text_module)
        embeddings = m(SENTENCES)
        with tf.compat.v1.Session() as sess:
            sess.run(
                [tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()]
            )
            got = sess.run(embeddings)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_image_module(image_module):
    spec = hub.load_module_spec(image_module)
    assert list(spec.get_input_info_dict()) == ["images"]
    assert spec.get_output_info_dict()["default"].get_shape().as_list() == [
        None,
        examples.IMAGE_FEATURES,
    ]
    data = spec.variant().attached_messages["image_module_info"]
    assert data == b"\x0a\x04\x08\x20\x10\x20"  # default_image_size { height: 32 width: 32 }
    assert hub.get_expected_image_size(spec) == [examples.IMAGE_SIZE, examples.IMAGE_SIZE]
    assert hub.get_num_image_channels(spec) == 3
    images = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    got = _run_plain(image_module, {"images": images})["default"]
    assert got.shape == (2, examples.IMAGE_FEATURES) and np.all(got >= 0) and got.std() > 0


def test_cli_errors(tmp_path, capsys):
    target = tmp_path / "busy"
    target.mkdir()
    (target / "x").write_text("x")
    assert cli.main(["example", "text-embedding", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["example", "nope", str(tmp_path / "n")])
    with pytest.raises(ValueError, match="Unknown example 'nope'"):
        examples.write_example("nope", tmp_path / "n")
    assert not (tmp_path / "n").exists()
