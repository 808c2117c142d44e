"""``hubcore export-serving``: the SavedModel loads in TF2 and saved_model_cli like the Runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore.cli import main
from hubcore.serving_export import export_serving

DATA = Path(__file__).resolve().parent / "data"

CASES = {
    "tiny": {"x": np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)},
    "text_table": {"default": np.array([b"hello world", b"the cat", b"zebra mat"])},
    "partitioned": {"default": np.array([0, 6, 7, 13, 14, 19], np.int64)},
    "batchnorm": {"default": np.random.default_rng(4).normal(size=(3, 5)).astype(np.float32)},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serving")
    return {name: Path(export_serving(DATA / name, root / name)) for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tf_saved_model_load_equals_runner(exported, name):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(exported[name]), tags=["serve"])
    serving = loaded.signatures["serving_default"]
    inputs = CASES[name]
    got = serving(**{k: tf.constant(v) for k, v in inputs.items()})
    want = hubcore.Runner(DATA / name)(inputs, as_dict=True)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        np.testing.assert_allclose(got[key].numpy(), value, rtol=1e-5, err_msg=f"{name}.{key}")


def test_layout_and_other_signatures(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel.FromString((exported["tiny"] / "saved_model.pb").read_bytes())
    (meta,) = sm.meta_graphs
    assert list(meta.meta_info_def.tags) == ["serve"]
    assert sorted(meta.signature_def) == ["default", "encode", "no_default", "serving_default"]
    assert meta.signature_def["serving_default"].method_name == "tensorflow/serving/predict"
    assert (exported["text_table"] / "assets" / "_vocab.txt").is_file()


def test_saved_model_cli_run(exported, tmp_path):
    out_dir = tmp_path / "cli_out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tensorflow.python.tools.saved_model_cli",
            "run",
            "--dir",
            str(exported["text_table"]),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--input_exprs",
            'default=["hello world", "the cat", "zebra mat"]',
            "--outdir",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    want = hubcore.Runner(DATA / "text_table")(CASES["text_table"], as_dict=True)
    np.testing.assert_allclose(np.load(out_dir / "default.npy"), want["default"], rtol=1e-5)
    np.testing.assert_array_equal(np.load(out_dir / "num_tokens.npy"), want["num_tokens"])


def test_export_is_hermetic_and_atomic(tmp_path, capsys):
    import tensorflow as tf

    module = tmp_path / "module"
    shutil.copytree(DATA / "text_table", module)
    out = tmp_path / "served"
    assert main(["export-serving", str(module), str(out)]) == 0
    shutil.rmtree(module)  # the export must not point back into the module
    loaded = tf.saved_model.load(str(out))
    got = loaded.signatures["serving_default"](default=tf.constant([b"hello world"]))
    want = hubcore.Runner(DATA / "text_table")([b"hello world"])
    np.testing.assert_allclose(got["default"].numpy(), want, rtol=1e-5)
    # An existing target is refused and left alone; nothing temporary stays behind.
    assert main(["export-serving", str(DATA / "tiny"), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]
    # A failing export (no such signature) leaves nothing either.
    with pytest.raises(hubcore.SignatureNotFoundError):
        export_serving(DATA / "tiny", tmp_path / "bad", signature="nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]


def test_train_variant_by_tags(tmp_path):
    import tensorflow as tf

    out = export_serving(DATA / "batchnorm", tmp_path / "bn_train", tags=["train"])
    x = CASES["batchnorm"]["default"]
    got = tf.saved_model.load(out).signatures["serving_default"](default=tf.constant(x))
    want = hubcore.Runner(DATA / "batchnorm", tags=["train"])(x)
    np.testing.assert_allclose(got["default"].numpy(), want, rtol=1e-5)
    with pytest.raises(hubcore.VariantNotFoundError):
        export_serving(DATA / "batchnorm", tmp_path / "nope", tags=["serve"])
