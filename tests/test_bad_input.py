"""Broken modules raise the documented exception with a clear message, in-process, never a crash."""

from __future__ import annotations

import os
import random
import shutil
import stat
from pathlib import Path

import pytest

import hubcore as hub
from hubcore.serving_export import export_serving


@pytest.fixture
def tiny_copy(tmp_path, data_dir) -> Path:
    dst = tmp_path / "tiny"
    shutil.copytree(data_dir / "tiny", dst)
    for p in dst.rglob("*"):
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    dst.chmod(dst.stat().st_mode | stat.S_IWUSR)
    return dst


def test_missing_path(tmp_path):
    with pytest.raises(hub.ModulePathNotFoundError, match="does not exist") as info:
        hub.load_module_spec(tmp_path / "nowhere")
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)


def test_tf2_saved_model_is_not_a_module(tmp_path):
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            return 2 * x

    path = tmp_path / "tf2"
    tf.saved_model.save(Doubler(), str(path))
    with pytest.raises(ValueError, match="SavedModel but not a TF1 Hub module.*tfhub_module.pb"):
        hub.load_module_spec(path)


def test_empty_directory_is_not_a_module(tmp_path):
    with pytest.raises(hub.NotAModuleError, match="not a TF1 Hub module"):
        hub.load_module_spec(tmp_path)


def test_file_is_not_a_module(tmp_path):
    f = tmp_path / "saved_model.pb"
    f.write_bytes(b"not a module")
    with pytest.raises(hub.NotAModuleError, match="is a file"):
        hub.load_module_spec(f)


def test_fifo_is_not_a_module(tmp_path):
    fifo = tmp_path / "module"
    os.mkfifo(fifo)
    with pytest.raises(hub.NotAModuleError, match=f"'{fifo}' is a FIFO, socket or device"):
        hub.load_module_spec(fifo)  # never opened, so never blocks


def test_garbage_archive_is_corrupt(tmp_path):
    f = tmp_path / "module.tar.gz"
    f.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(hub.CorruptModuleError, match="module.tar.gz"):
        hub.load_module_spec(f)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.33, 0.5, 0.9, 0.999])
def test_truncated_saved_model(tiny_copy, fraction):
    pb = tiny_copy / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(hub.CorruptModuleError, match="saved_model.pb") as info:
        hub.load_module_spec(tiny_copy)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("seed", range(5))
def test_random_saved_model(tiny_copy, seed):
    pb = tiny_copy / "saved_model.pb"
    pb.write_bytes(random.Random(seed).randbytes(pb.stat().st_size))
    with pytest.raises(hub.CorruptModuleError, match="saved_model.pb"):
        hub.load_module_spec(tiny_copy)


def test_bit_flips_never_crash(tiny_copy):
    """Flipped bytes either still parse (a valid proto) or raise CorruptModuleError naming the
    file (every case with this seed is one or the other; most no longer parse)."""
    pb = tiny_copy / "saved_model.pb"
    original = pb.read_bytes()
    rng = random.Random(7)
    outcomes = []
    for _ in range(40):
        data = bytearray(original)
        for _ in range(4):
            data[rng.randrange(len(data))] = rng.randrange(256)
        pb.write_bytes(bytes(data))
        try:
            hub.load_module_spec(tiny_copy)
        except hub.Error as e:
            assert type(e) is hub.CorruptModuleError, e
            assert "saved_model.pb" in str(e)
            outcomes.append("corrupt")
        else:
            outcomes.append("parsed")
    assert outcomes.count("corrupt") >= 30


@pytest.mark.parametrize("marker", [b"\x08\x04", b"\x08\x02", b"", b"\x08\x03\x12\x04sgmt"])
def test_unsupported_module_def(tiny_copy, marker):
    (tiny_copy / "tfhub_module.pb").write_bytes(marker)
    with pytest.raises(hub.UnsupportedFormatError, match="Unsupported") as info:
        hub.load_module_spec(tiny_copy)
    assert isinstance(info.value, ValueError)
    assert "tfhub_module.pb" in str(info.value)


def test_unknown_required_feature_is_named(tiny_copy):
    (tiny_copy / "tfhub_module.pb").write_bytes(b"\x08\x03\x12\x0cfuture_thing")
    with pytest.raises(hub.UnsupportedFormatError, match="'future_thing'"):
        hub.load_module_spec(tiny_copy)


def test_garbage_module_def(tiny_copy):
    (tiny_copy / "tfhub_module.pb").write_bytes(b"\x08")
    with pytest.raises(hub.CorruptModuleError, match="tfhub_module.pb"):
        hub.load_module_spec(tiny_copy)


def test_missing_variables_index(tiny_copy):
    os.remove(tiny_copy / "variables" / "variables.index")
    with pytest.raises(hub.CorruptModuleError, match=r"variables\.index is missing"):
        hub.load_module_spec(tiny_copy)


def test_corrupt_variables_index(tiny_copy):
    (tiny_copy / "variables" / "variables.index").write_bytes(b"\x00" * 64)
    with pytest.raises(hub.CorruptModuleError, match="checkpoint"):
        hub.load_module_spec(tiny_copy)


def test_missing_saved_model(tiny_copy):
    os.remove(tiny_copy / "saved_model.pb")
    with pytest.raises(hub.NotAModuleError, match="saved_model.pb is missing"):
        hub.load_module_spec(tiny_copy)


def test_asset_escaping_the_module_is_rejected(tmp_path, data_dir):
    """A hostile saved_model_assets entry pointing outside assets/ is refused."""
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

    dst = tmp_path / "text_table"
    shutil.copytree(data_dir / "text_table", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((dst / "saved_model.pb").read_bytes())
    for any_value in sm.meta_graphs[0].collection_def["saved_model_assets"].any_list.value:
        asset = meta_graph_pb2.AssetFileDef()
        any_value.Unpack(asset)
        asset.filename = "../../../etc/passwd"
        any_value.Pack(asset)
    (dst / "saved_model.pb").write_bytes(sm.SerializeToString())
    with pytest.raises(hub.CorruptModuleError, match="outside the module's assets"):
        hub.load_module_spec(dst)


def test_unsupported_collection_is_rejected(tmp_path, data_dir):
    from tensorflow.core.protobuf import saved_model_pb2

    dst = tmp_path / "tiny"
    shutil.copytree(data_dir / "tiny", dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((dst / "saved_model.pb").read_bytes())
    sm.meta_graphs[0].collection_def["summaries"].node_list.value.append("x:0")
    (dst / "saved_model.pb").write_bytes(sm.SerializeToString())
    message = r"Unsupported collections in graph: \['summaries'\]"
    with pytest.raises(hub.UnsupportedFormatError, match=message):
        hub.load_module_spec(dst)


def test_bit_flipped_modules_run_or_raise_never_crash(tiny_copy, data_dir):
    """Corrupt graphs that still parse go through the Runner and Module in-process: each either
    works or raises a Python exception (a crash would take the test process down)."""
    import numpy as np
    import tensorflow as tf

    x = np.load(data_dir / "tiny.golden.npz")["input.default.x"]
    pb = tiny_copy / "saved_model.pb"
    original = pb.read_bytes()
    rng = random.Random(11)
    outcomes = set()
    for _ in range(25):
        data = bytearray(original)
        for _ in range(rng.choice([1, 2, 4])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        pb.write_bytes(bytes(data))
        try:
            hub.Runner(tiny_copy)({"x": x})
            with tf.Graph().as_default():
                out = hub.Module(tiny_copy)({"x": x})
                with tf.compat.v1.Session() as session:
                    session.run(tf.compat.v1.global_variables_initializer())
                    session.run(out)
            outcomes.add("ok")
        except (hub.Error, tf.errors.OpError) as e:
            outcomes.add(type(e).__name__)
    assert "CorruptModuleError" in outcomes


def test_trainable_variable_missing_from_variables_collection(tiny_copy):
    """An inconsistent variables collection is reported, not a C++ exception or a crash."""
    import tensorflow as tf
    from tensorflow.core.framework import variable_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    pb = tiny_copy / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    for meta_graph in sm.meta_graphs:
        ghost = variable_pb2.VariableDef(variable_name="ghost:0")
        meta_graph.collection_def["trainable_variables"].bytes_list.value.append(
            ghost.SerializeToString()
        )
    pb.write_bytes(sm.SerializeToString())
    with tf.Graph().as_default(), pytest.raises(hub.CorruptModuleError, match="'ghost:0'"):
        hub.Module(tiny_copy, trainable=True)


def test_damaged_checkpoint_data_is_corrupt_everywhere(tiny_copy, tmp_path):
    """A variables.data file of the right size but wrong bytes: every reader names the
    checkpoint, none leaks a builtin error from TensorFlow's checkpoint reader or a
    graph-execution stack."""
    data = tiny_copy / "variables" / "variables.data-00000-of-00001"
    data.write_bytes(b"\xff" * data.stat().st_size)
    checkpoint = str(tiny_copy / "variables" / "variables")
    with pytest.raises(hub.CorruptModuleError, match=f"Cannot read .* checkpoint {checkpoint}"):
        hub.load(tiny_copy)
    with pytest.raises(hub.CorruptModuleError, match=f"checkpoint {checkpoint}"):
        hub.export_tf2(tiny_copy, tmp_path / "tf2")
    with pytest.raises(hub.CorruptModuleError, match=f"checkpoint {checkpoint}: [^\n]*$"):
        export_serving(tiny_copy, tmp_path / "serving")
    with pytest.raises(hub.Error, match=checkpoint):
        hub.Runner(tiny_copy)
    assert not (tmp_path / "tf2").exists() and not (tmp_path / "serving").exists()


@pytest.mark.parametrize("handle", [123, None, b"/tmp/module"])
def test_handle_of_the_wrong_type(handle):
    with pytest.raises(hub.InvalidArgumentError, match="must be a str path or URL") as info:
        hub.resolve(handle)
    assert isinstance(info.value, TypeError)


def test_inputs_with_wrong_names(data_dir):
    loaded = hub.load(data_dir / "tiny")
    with pytest.raises(
        hub.InvalidArgumentError, match=r"missing \['x'\], extra given \['y'\]"
    ) as e:
        loaded({"y": [[1.0, 2.0, 3.0, 4.0]]})
    assert isinstance(e.value, TypeError)  # what tensorflow_hub raised


def test_export_to_a_link_leaves_the_link(tmp_path, data_dir):
    """A symlink (even to an empty directory) is the user's: refused up front, named as a link."""
    target = tmp_path / "empty"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(hub.AlreadyExistsError, match=f"'{link}' is a symbolic link"):
        hub.export_tf2(data_dir / "tiny", link)
    assert link.is_symlink() and os.readlink(link) == str(target) and not os.listdir(target)
    assert sorted(os.listdir(tmp_path)) == ["empty", "link"]  # no temporary directory left
