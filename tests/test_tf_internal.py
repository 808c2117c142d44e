"""Every private TensorFlow symbol hubcore uses still exists with the signature it relies on.

A TensorFlow upgrade that renames or changes one of them fails here, naming the symbol.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hubcore import _tf_internal

PACKAGE = Path(_tf_internal.__file__).parent


@pytest.mark.parametrize("symbol", _tf_internal.PRIVATE_SYMBOLS, ids=lambda s: s.path)
def test_private_symbol_exists_with_expected_signature(symbol):
    try:
        value = _tf_internal.resolve(symbol.path)
    except (ImportError, AttributeError) as e:
        pytest.fail(f"{symbol.path} is gone from TensorFlow: {e}")
    actual = _tf_internal.signature_text(value)
    if symbol.signature is None:
        assert isinstance(value, property), f"{symbol.path} is no longer a property"
    else:
        assert actual == symbol.signature, f"{symbol.path} changed signature"
    assert symbol.why.strip(), f"{symbol.path} does not say why it is needed"


def test_every_symbol_is_registered_once():
    paths = [s.path for s in _tf_internal.PRIVATE_SYMBOLS]
    assert len(paths) == len(set(paths))
    assert all(p.startswith("tensorflow.") for p in paths)


def test_no_other_module_imports_tensorflow_python():
    """The boundary holds: only _tf_internal.py names ``tensorflow.python``."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_tf_internal.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("tensorflow.python")]
    assert offenders == []
