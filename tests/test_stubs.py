"""The committed stub python/hubcore/_core.pyi matches what the extension exports.

Regenerate it with `python tools/gen_stubs.py BUILD_DIR` after changing a binding.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hubcore._core as core

STUB = Path(__file__).resolve().parent.parent / "python" / "hubcore" / "_core.pyi"


def _stub() -> dict[str, set[str]]:
    """Top-level names (key "") and, per class, its member names."""
    tree = ast.parse(STUB.read_text())
    names: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[""].add(node.name)
            names[node.name] = {
                n.name if isinstance(n, ast.FunctionDef) else n.target.id
                for n in node.body
                if isinstance(n, ast.FunctionDef)
                or (isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))
            }
        elif isinstance(node, ast.FunctionDef):
            names[""].add(node.name)
    return names


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def test_stub_has_every_function_and_class():
    assert _public(_stub()[""]) == _public(vars(core))


def test_stub_has_every_class_member():
    stub = _stub()
    for name in _public(stub[""]):
        obj = getattr(core, name)
        if isinstance(obj, type):
            assert _public(vars(obj)) == _public(stub[name]), name
