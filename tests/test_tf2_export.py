"""hubcore export-tf2: TF2 SavedModels that plain TensorFlow loads without hubcore."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

import hubcore as hub
from conftest import DATA, cli_command
from hubcore.cli import main
from hubcore.errors import AlreadyExistsError, VariantNotFoundError

MODULES = ["tiny", "text_table", "partitioned", "sparse_in", "batchnorm", "ragged_in"]

SPARSE = {
    "sp_indices": np.array([[0, 1], [1, 3], [2, 0], [2, 5]], np.int64),
    "sp_values": np.array([1.0, -2.0, 0.5, 3.0], np.float32),
    "sp_dense_shape": np.array([3, 6], np.int64),
}
RAGGED = {
    "rt_flat_values": np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], np.float32),
    "rt_row_splits_0": np.array([0, 2, 2, 6], np.int64),
}
SENTENCES = np.array([b"hello world", b"the cat", b"unknown words here"])

# Runs in a fresh interpreter that must never import hubcore: loads every export with
# tf.saved_model.load and writes what its signatures and __call__ return.
PLAIN_TF_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    root, inputs_path, out_path = sys.argv[1:]
    requests = json.load(open(inputs_path))
    inputs = np.load(inputs_path + ".npz")
    results = {}
    for name, calls in requests.items():
        obj = tf.saved_model.load(f"{root}/{name}")
        for signature, keys in calls.items():
            args = {k: tf.constant(inputs[f"{name}.{signature}.{k}"]) for k in keys}
            for key, value in obj.signatures[signature](**args).items():
                results[f"{name}.{signature}.{key}"] = value.numpy()
        if "default" in calls and len(calls["default"]) == 1:
            (key,) = calls["default"]
            results[f"{name}.__call__"] = obj(inputs[f"{name}.default.{key}"]).numpy()
        results[f"{name}.num_variables"] = np.array(len(obj.variables))
        results[f"{name}.num_trainable"] = np.array(len(obj.trainable_variables))
        results[f"{name}.losses"] = np.array([float(f()) for f in obj.regularization_losses])
    assert "hubcore" not in sys.modules
    results = {k: v.astype(bytes) if v.dtype == object else v for k, v in results.items()}
    np.savez(out_path, **results)
    """
)


def _golden_inputs(name):
    golden = np.load(DATA / f"{name}.golden.npz")
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for key in golden.files:
        if key.startswith("input."):
            _, signature, input_name = key.split(".", 2)
            inputs.setdefault(signature, {})[input_name] = golden[key]
    return inputs


def _requests():
    requests = {
        name: _golden_inputs(name) for name in ("tiny", "text_table", "partitioned", "batchnorm")
    }
    requests["text_table"]["tokens"] = {"sentences": SENTENCES}
    requests["sparse_in"] = {"default": SPARSE}
    requests["ragged_in"] = {"default": RAGGED}
    return requests


@pytest.fixture(scope="module")
def plain_tf_results(tmp_path_factory):
    """Exports every fixture (from a copy of the module that is deleted afterwards, so the
    SavedModel must carry its own assets), then evaluates them in plain TensorFlow."""
    root = tmp_path_factory.mktemp("tf2")
    copies = root / "modules"
    for name in MODULES:
        shutil.copytree(DATA / name, copies / name)
        hub.export_tf2(copies / name, root / "exports" / name)
    shutil.rmtree(copies)
    requests = _requests()
    arrays = {
        f"{name}.{signature}.{key}": value
        for name, calls in requests.items()
        for signature, values in calls.items()
        for key, value in values.items()
    }
    inputs_path = root / "inputs.json"
    inputs_path.write_text(
        json.dumps({n: {s: sorted(v) for s, v in c.items()} for n, c in requests.items()})
    )
    np.savez(str(inputs_path) + ".npz", **arrays)
    script = root / "plain_tf.py"
    script.write_text(PLAIN_TF_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    subprocess.run(
        [sys.executable, str(script), str(root / "exports"), str(inputs_path), str(root / "out")],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    return dict(np.load(root / "out.npz"))


@pytest.mark.parametrize("name", ["tiny", "text_table", "partitioned", "batchnorm"])
def test_signatures_and_call_reproduce_the_goldens(plain_tf_results, name):
    golden = np.load(DATA / f"{name}.golden.npz")
    expected = [k for k in golden.files if not k.startswith("input.")]
    assert expected
    for key in expected:
        signature, output = key.split(".", 1)
        np.testing.assert_allclose(
            plain_tf_results[f"{name}.{signature}.{output}"], golden[key], rtol=1e-5
        )
    if f"{name}.__call__" in plain_tf_results:
        np.testing.assert_allclose(
            plain_tf_results[f"{name}.__call__"], golden["default.default"], rtol=1e-5
        )


def test_state_and_losses_are_exported(plain_tf_results):
    for name, variables, trainable in [("tiny", 2, 2), ("partitioned", 4, 4), ("batchnorm", 3, 1)]:
        assert plain_tf_results[f"{name}.num_variables"] == variables
        assert plain_tf_results[f"{name}.num_trainable"] == trainable
    module = hub.load(DATA / "batchnorm")
    np.testing.assert_allclose(
        plain_tf_results["batchnorm.losses"], [module.regularization_losses[0]()], rtol=1e-6
    )


def test_composite_values_travel_as_components(plain_tf_results):
    sparse = tf.SparseTensor(SPARSE["sp_indices"], SPARSE["sp_values"], SPARSE["sp_dense_shape"])
    np.testing.assert_allclose(
        plain_tf_results["sparse_in.default.default"],
        hub.load(DATA / "sparse_in")(sparse),
        rtol=1e-6,
    )
    ragged = tf.RaggedTensor.from_row_splits(RAGGED["rt_flat_values"], RAGGED["rt_row_splits_0"])
    np.testing.assert_allclose(
        plain_tf_results["ragged_in.default.default"], hub.load(DATA / "ragged_in")(ragged)
    )
    tokens = hub.load(DATA / "text_table")(SENTENCES, signature="tokens")
    for part in ("indices", "values", "dense_shape"):
        np.testing.assert_array_equal(
            plain_tf_results[f"text_table.tokens.default_{part}"], getattr(tokens, part)
        )


def test_cli_writes_quietly_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "saved"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [*cli_command(), "export-tf2", str(DATA / "batchnorm"), str(out), "--tags", "train"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0
    assert done.stderr.splitlines() == [f"hubcore export-tf2: wrote TF2 SavedModel {out}"]
    assert (out / "saved_model.pb").is_file()
    before = sorted(p.name for p in out.iterdir())
    assert main(["export-tf2", str(DATA / "tiny"), str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before
    target = tmp_path / "a_file"
    target.write_text("keep me")
    with pytest.raises(AlreadyExistsError):
        hub.export_tf2(DATA / "tiny", target)
    assert target.read_text() == "keep me"
    with pytest.raises(VariantNotFoundError, match=r"\{train\}"):
        hub.export_tf2(DATA / "tiny", tmp_path / "nope", tags=["gpu"])
    assert not (tmp_path / "nope").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
