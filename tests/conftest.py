"""Test setup: fixtures directory, and an optional in-tree build for development.

CI tests the installed package (``pip install .``). For development, set HUBCORE_BUILD_DIR to a
CMake build directory (e.g. build/dev) to test python/hubcore with that build's extension.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

_build = os.environ.get("HUBCORE_BUILD_DIR")
if _build:
    sys.path.insert(0, str(ROOT / "python"))
    (_so,) = glob.glob(os.path.join(_build, "_core*.so"))
    _spec = importlib.util.spec_from_file_location("hubcore._core", _so)
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["hubcore._core"] = _mod
    _spec.loader.exec_module(_mod)


def cli_command() -> list[str]:
    """The argv prefix that runs the ``hubcore`` CLI in a subprocess (``python -m hubcore``, or
    the in-tree build when HUBCORE_BUILD_DIR is set)."""
    if _build:
        os.environ["HUBCORE_BUILD_DIR"] = os.path.abspath(_build)
        return [sys.executable, str(ROOT / "tests" / "cli_entry.py")]
    return [sys.executable, "-m", "hubcore"]


def vocab_table(vocab_path, default_value: int = -1, name: str | None = None):
    """A string -> line-number StaticHashTable read from a vocabulary file (an asset)."""
    import tensorflow as tf

    initializer = tf.lookup.TextFileInitializer(
        str(vocab_path),
        tf.string,
        tf.lookup.TextFileIndex.WHOLE_LINE,
        tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    kwargs = {"name": name} if name else {}
    return tf.lookup.StaticHashTable(initializer, default_value=default_value, **kwargs)


def load_tf1_saved_model(session, tags, path):
    """Loads `path` with plain TensorFlow's v1 SavedModel loader and initializes its tables.

    The loader feeds asset paths only to a main op; TF1 Hub modules have none, so the
    AssetFileDef paths are fed to the table initializers, as TF's own loader would.
    """
    import os

    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    meta_graph = tf.compat.v1.saved_model.loader.load(session, list(tags), str(path))
    feeds = {}
    for value in meta_graph.collection_def["saved_model_assets"].any_list.value:
        asset = meta_graph_pb2.AssetFileDef()
        value.Unpack(asset)
        feeds[asset.tensor_info.name] = os.path.join(path, "assets", asset.filename)
    session.run(tf.compat.v1.tables_initializer(), feeds)
    return meta_graph


def importable_hubcore_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which any new Python process (e.g. a Beam worker) imports the hubcore
    under test: the installed one, or python/hubcore with HUBCORE_BUILD_DIR's extension."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _build:
        package = tmp_path / "pythonpath" / "hubcore"
        package.mkdir(parents=True)
        for entry in (ROOT / "python" / "hubcore").iterdir():
            (package / entry.name).symlink_to(entry)
        (package / os.path.basename(_so)).symlink_to(os.path.abspath(_so))
        env["PYTHONPATH"] = os.pathsep.join(
            [str(package.parent), *filter(None, [env.get("PYTHONPATH")])]
        )
        env.pop("HUBCORE_BUILD_DIR", None)
    return env


FIXTURES = ["batchnorm", "partitioned", "ragged_in", "sparse_in", "text_table", "tiny"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def manifest() -> dict:
    import json

    return json.loads((DATA / "manifest.json").read_text())["modules"]
