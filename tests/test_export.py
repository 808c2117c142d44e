"""Export: atomic writes, target checks, asset naming, ModuleSpec.export, converted SavedModels."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2  # noqa: E402

import hubcore as hub  # noqa: E402
from conftest import vocab_table  # noqa: E402
from hubcore import _core, _export  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _table_fn(vocab_path: str, name: str = "table"):
    def module_fn():
        text = tf.compat.v1.placeholder(tf.string, [None])
        table = vocab_table(vocab_path, -1, name=name)
        w = tf.compat.v1.get_variable("w", [3], initializer=tf.compat.v1.ones_initializer())
        hub.add_signature(inputs=text, outputs=tf.gather(w, tf.maximum(table.lookup(text), 0)))

    return module_fn


@pytest.fixture(scope="module")
def vocab(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("a\nb\nc\n")
    return str(path)


@pytest.fixture(scope="module")
def spec(vocab):
    return hub.create_module_spec(_table_fn(vocab))


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def _assets_of(path: Path) -> list[list[tuple[str, str]]]:
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    out = []
    for meta_graph in saved_model.meta_graphs:
        pairs = []
        for value in meta_graph.collection_def["saved_model_assets"].any_list.value:
            asset = meta_graph_pb2.AssetFileDef()
            value.Unpack(asset)
            pairs.append((asset.tensor_info.name, asset.filename))
        out.append(pairs)
    return out


def test_export_without_variables_has_empty_variables_dir(tmp_path):
    def module_fn():
        x = tf.compat.v1.placeholder(tf.float32, [None])
        hub.add_signature(inputs=x, outputs=x + 1)

    path = tmp_path / "m"
    called = []
    _export.export_module(hub.create_module_spec(module_fn), path, called.append)
    assert called == []  # no variables: save_variables is not called
    assert sorted(os.listdir(path)) == ["assets", "saved_model.pb", "tfhub_module.pb", "variables"]
    assert os.listdir(path / "variables") == [] and os.listdir(path / "assets") == []
    assert hub.load_module_spec(path).checkpoint_path is None
    assert _siblings(path) == ["m"]


def test_exception_mid_export_leaves_nothing(spec, tmp_path):
    path = tmp_path / "out" / "m"

    def save_variables(prefix):
        assert os.path.isfile(
            os.path.join(os.path.dirname(os.path.dirname(prefix)), "saved_model.pb")
        )
        assert os.path.dirname(os.path.dirname(prefix)).startswith(str(path) + ".tmp-")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        _export.export_module(spec, path, save_variables)
    assert not path.exists()
    assert _siblings(path) == []  # the temporary directory is gone too


def test_existing_target(spec, tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    (path / "keep.txt").write_text("x")
    with pytest.raises(hub.AlreadyExistsError, match="already exists") as e:
        _export.export_with_values(spec, path)
    assert isinstance(e.value, FileExistsError)
    assert sorted(os.listdir(path)) == ["keep.txt"]
    assert _siblings(path) == ["m"]
    file_target = tmp_path / "file"
    file_target.write_text("x")
    with pytest.raises(hub.AlreadyExistsError):
        _export.export_with_values(spec, file_target)


def test_empty_directory_target_is_replaced(spec, tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    _export.export_with_values(spec, path, {"w": np.array([1.0, 2.0, 3.0], np.float32)})
    loaded = hub.load_module_spec(path)
    assert [e.key for e in loaded.native.checkpoint_entries] == ["w"]
    with pytest.raises(hub.AlreadyExistsError):  # re-export into a module: refused
        _export.export_with_values(spec, path)
    assert _siblings(path) == ["m"]


_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    {preload}
    import hubcore as hub
    from hubcore import _export
    import tensorflow as tf

    def module_fn():
        v = tf.compat.v1.get_variable("v", [2])
        hub.add_signature(outputs=v + 1.0)

    def save_variables(prefix):
        open({ready!r}, "w").close()
        time.sleep(600)

    _export.export_module(hub.create_module_spec(module_fn), {path!r}, save_variables)
""")


def test_killed_export_leaves_no_module(tmp_path):
    path = tmp_path / "m"
    ready = tmp_path / "ready"
    preload = ""
    build = os.environ.get("HUBCORE_BUILD_DIR")
    if build:
        # A development build (see conftest.py); CI tests the installed package.
        preload = "\n".join(
            [
                f"sys.path.insert(0, {str(ROOT / 'python')!r})",
                "import glob, importlib.util",
                f"(_so,) = glob.glob(os.path.join({build!r}, '_core*.so'))",
                "_s = importlib.util.spec_from_file_location('hubcore._core', _so)",
                "_m = importlib.util.module_from_spec(_s)",
                "sys.modules['hubcore._core'] = _m",
                "_s.loader.exec_module(_m)",
            ]
        )
    script = _KILL_SCRIPT.format(preload=preload, ready=str(ready), path=str(path))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the export never reached save_variables"
            time.sleep(0.05)
        temp = [p for p in tmp_path.iterdir() if p.name.startswith("m.tmp-")]
        assert len(temp) == 1 and (temp[0] / "saved_model.pb").exists()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not path.exists()
    # The next export beside it removes the dead process's directory, and only that one.
    (stale,) = [p for p in tmp_path.iterdir() if p.name.startswith("m.tmp-")]
    assert stale.name.startswith(f"m.tmp-{socket.gethostname()}.{proc.pid}-")
    live = tmp_path / f"m.tmp-{socket.gethostname()}.{os.getpid()}-0123456789abcdef"
    other_host = tmp_path / f"m.tmp-elsewhere.example.{proc.pid}-0123456789abcdef"
    live.mkdir()
    other_host.mkdir()
    with _export.atomic_directory(path) as temp:
        (Path(temp) / "f").write_text("done")
    assert (path / "f").read_text() == "done"
    assert not stale.exists() and live.is_dir() and other_host.is_dir()


def test_asset_names_shared_across_variants_and_clashes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    vocab_a = tmp_path / "a" / "vocab.txt"
    vocab_b = tmp_path / "b" / "vocab.txt"
    vocab_a.write_text("a\nb\n")
    vocab_b.write_text("x\ny\nz\n")

    def module_fn(second: bool):
        text = tf.compat.v1.placeholder(tf.string, [None])
        outputs = {}
        for name, path in [("t1", vocab_a)] + ([("t2", vocab_b)] if second else []):
            table = vocab_table(str(path), -1, name=name)
            outputs[name] = table.lookup(text)
        hub.add_signature(inputs=text, outputs=outputs)

    spec = hub.create_module_spec(module_fn, [([], {"second": False}), (["two"], {"second": True})])
    path = tmp_path / "m"
    _export.export_module(spec, path, None)
    assert sorted(os.listdir(path / "assets")) == ["vocab.txt", "vocab.txt0"]
    assert (path / "assets" / "vocab.txt").read_text() == "a\nb\n"
    assert (path / "assets" / "vocab.txt0").read_text() == "x\ny\nz\n"
    # Sorted by tensor name: asset_path:0 (a) before asset_path_1:0 (b).
    assert _assets_of(path) == [
        [("asset_path:0", "vocab.txt")],
        [("asset_path:0", "vocab.txt"), ("asset_path_1:0", "vocab.txt0")],
    ]
    loaded = hub.load_module_spec(path)
    assert sorted(a.filename for a in loaded.variant(["two"]).assets) == ["vocab.txt", "vocab.txt0"]
    # A re-export of the loaded module reads its own assets and keeps the names.
    again = tmp_path / "again"
    _export.export_module(loaded, again, None)
    assert _assets_of(again) == _assets_of(path)
    assert (again / "assets" / "vocab.txt0").read_text() == "x\ny\nz\n"


def test_missing_asset_source(tmp_path):
    vocab = tmp_path / "gone.txt"
    vocab.write_text("a\n")
    spec = hub.create_module_spec(_table_fn(str(vocab)))
    vocab.unlink()
    path = tmp_path / "m"
    with pytest.raises(hub.ModulePathNotFoundError, match="gone.txt"):
        _export.export_module(spec, path, None)
    assert _siblings(path) == []


def test_asset_that_is_not_a_string_const():
    def module_fn():
        x = tf.compat.v1.placeholder(tf.string, [], name="not_const")
        tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS, x)
        hub.add_signature(inputs=x, outputs=x)

    with pytest.raises(TypeError, match="not_const"):
        hub.create_module_spec(module_fn)


def test_build_export_saved_model_matches_the_written_file(spec, tmp_path):
    data, copies = _core.build_export_saved_model(spec.native)
    assert [name for _, name in copies] == ["vocab.txt"]
    path = tmp_path / "m"
    _export.export_module(spec, path, None)
    assert saved_model_pb2.SavedModel.FromString(data) == saved_model_pb2.SavedModel.FromString(
        (path / "saved_model.pb").read_bytes()
    )


def test_spec_export_requires_checkpoint_path(spec, tmp_path):
    with pytest.raises(ValueError, match="Missing mandatory `checkpoint_path` parameter"):
        spec.export(str(tmp_path / "m"))
    with pytest.raises(ValueError, match="by name"):
        spec.export(str(tmp_path / "m"), "some/checkpoint")
    assert not (tmp_path / "m").exists()


def test_spec_export_with_checkpoint(spec, tmp_path):
    pytest.importorskip("hubcore.module")
    ckpt_dir = tmp_path / "ckpt"
    with tf.Graph().as_default():
        v = tf.compat.v1.get_variable("outer/w", initializer=tf.constant([4.0, 5.0, 6.0]))
        with tf.compat.v1.Session() as sess:
            sess.run(v.initializer)
            prefix = tf.compat.v1.train.Saver([v]).save(sess, str(ckpt_dir / "model"))
    path = tmp_path / "m"
    spec.export(str(path), checkpoint_path=prefix, name_transform_fn=lambda k: "outer/" + k)
    value = tf.train.load_variable(str(path / "variables" / "variables"), "w")
    np.testing.assert_array_equal(value, [4.0, 5.0, 6.0])
    with pytest.raises(ValueError):
        spec.export(str(tmp_path / "bad"), checkpoint_path=prefix)  # "w" is not in it
    assert not (tmp_path / "bad").exists()


@pytest.fixture(scope="module")
def tf1_saved_model(tmp_path_factory, vocab) -> str:
    path = tmp_path_factory.mktemp("sm") / "saved_model"
    with tf.Graph().as_default():
        tf.compat.v1.train.get_or_create_global_step()
        x = tf.compat.v1.placeholder(tf.string, [None], name="x")
        table = vocab_table(vocab, -1)
        w = tf.compat.v1.get_variable("w", initializer=tf.constant([10.0, 1.0, 2.0, 3.0]))
        y = tf.gather(w, table.lookup(x) + 1)
        tf.compat.v1.add_to_collection("train_op", y)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(
                sess,
                ["serve"],
                {
                    "serving_default": tf.compat.v1.saved_model.predict_signature_def(
                        {"x": x}, {"y": y}
                    )
                },
                main_op=tf.compat.v1.tables_initializer(),
                assets_collection=tf.compat.v1.get_collection("asset_filepaths"),
            )
            builder.save()
    return str(path)


def test_create_module_spec_from_saved_model(tf1_saved_model, tmp_path):
    with pytest.raises(ValueError, match="Unsupported collections in graph: .*train_op"):
        hub.create_module_spec_from_saved_model(tf1_saved_model)
    spec = hub.create_module_spec_from_saved_model(tf1_saved_model, drop_collections=["train_op"])
    assert spec.get_tags() == [frozenset({"serve"})]
    assert spec.get_signature_names(["serve"]) == ["serving_default"]
    assert spec.checkpoint_path == os.path.join(tf1_saved_model, "variables", "variables")
    variant = spec.variant(["serve"])
    assert sorted(v.name for v in variant.variables) == ["global_step", "w"]
    assert "global_step" not in variant.collection_keys
    assert "saved_model_main_op" not in variant.collection_keys
    (asset,) = variant.assets
    assert asset.path == os.path.join(tf1_saved_model, "assets", "vocab.txt")
    with pytest.raises(hub.VariantNotFoundError):
        spec.variant([])
    # Exported as a TF1 Hub module, with the SavedModel's variable values and saver_def.
    path = tmp_path / "m"
    _export.export_with_values(spec, path, tags=["serve"])
    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    assert saved_model.meta_graphs[0].HasField("saver_def")
    np.testing.assert_array_equal(
        tf.train.load_variable(str(path / "variables" / "variables"), "w"), [10, 1, 2, 3]
    )
    loaded = hub.load_module_spec(path)
    assert loaded.get_signature_names(["serve"]) == ["serving_default"]
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta_graph = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(path))
        sess.run(
            tf.compat.v1.tables_initializer(), {"asset_path:0": str(path / "assets" / "vocab.txt")}
        )
        sig = meta_graph.signature_def["serving_default"]
        got = sess.run(sig.outputs["y"].name, {sig.inputs["x"].name: ["c", "a", "zz"]})
    np.testing.assert_array_equal(got, [3.0, 1.0, 10.0])


def test_create_module_spec_from_saved_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        hub.create_module_spec_from_saved_model(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="saved_model.pb"):
        hub.create_module_spec_from_saved_model(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "saved_model.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(hub.CorruptModuleError, match="Cannot parse"):
        hub.create_module_spec_from_saved_model(str(tmp_path / "bad"))
