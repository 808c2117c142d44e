"""The committed stub python/hubcore/_core.pyi matches what the extension exports: the same names
and, for every function and method, the same signature (parameter names, defaults and return
type as pybind11 reports them).

Regenerate it with `python tools/gen_stubs.py BUILD_DIR` after changing a binding.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import hubcore._core as core

STUB = Path(__file__).resolve().parent.parent / "python" / "hubcore" / "_core.pyi"


def _stub() -> dict[str, dict[str, ast.AST]]:
    """Top-level names (key "") and, per class (also nested), its members, with their nodes."""
    tree = ast.parse(STUB.read_text())
    names: dict[str, dict[str, ast.AST]] = {}

    def visit(body: list[ast.stmt], owner: str) -> None:
        members = names.setdefault(owner, {})
        for node in body:
            if isinstance(node, ast.ClassDef):
                members[node.name] = node
                visit(node.body, f"{owner}.{node.name}".lstrip("."))
            elif isinstance(node, ast.FunctionDef):
                members.setdefault(node.name, node)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                members[node.target.id] = node

    visit(tree.body, "")
    return names


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _normalize(text: str) -> str:
    return re.sub(r"\bhubcore\._core\.", "", text).replace(" ", "")


def _split_top_level(params: str) -> list[str]:
    """Splits "a: dict[str, int], b: int = 0" at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(params):
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(params[start:i].strip())
            start = i + 1
    parts.append(params[start:].strip())
    return parts


def _native_signatures(function) -> set[tuple[tuple[str, ...], str]]:
    """(parameter names with '=' for a default, return type) per overload, from pybind11's
    docstring signatures."""
    result = set()
    for line in (function.__doc__ or "").splitlines():
        match = re.match(rf"^(?:\d+\. )?{re.escape(function.__name__)}\((.*)\) -> (.*)$", line)
        if not match:
            continue
        params = []
        for part in _split_top_level(match.group(1)):
            if not part or part.startswith("self"):
                continue
            name = part.split(":")[0].strip().lstrip("*")
            params.append(name + ("=" if "=" in part else ""))
        result.add((tuple(params), _normalize(match.group(2))))
    return result


def _stub_signatures(name: str, body: list[ast.stmt]) -> set[tuple[tuple[str, ...], str]]:
    result = set()
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            args = node.args
            positional = args.posonlyargs + args.args
            defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
            params = [
                a.arg + ("=" if d is not None else "")
                for a, d in zip(positional, defaults, strict=True)
                if a.arg != "self"
            ]
            params += [
                a.arg + ("=" if d is not None else "")
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
            ]
            returns = _normalize(ast.unparse(node.returns)) if node.returns else "None"
            result.add((tuple(params), returns))
    return result


def test_stub_has_every_function_and_class():
    assert _public(_stub()[""]) == _public(vars(core))


def test_stub_has_every_class_member():
    stub = _stub()
    for owner, members in stub.items():
        if not owner:
            continue
        obj = core
        for part in owner.split("."):
            obj = getattr(obj, part)
        assert _public(vars(obj)) == _public(members), owner


def test_stub_signatures_match_the_extension():
    tree = ast.parse(STUB.read_text())
    checked = 0

    def check(body: list[ast.stmt], owner: object, where: str) -> None:
        nonlocal checked
        for node in body:
            if isinstance(node, ast.ClassDef):
                check(node.body, getattr(owner, node.name), f"{where}{node.name}.")
            elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                native_function = getattr(owner, node.name)
                if isinstance(native_function, property):
                    continue  # a read-only attribute; its name is checked above
                native = _native_signatures(native_function)
                if native:
                    assert _stub_signatures(node.name, body) == native, where + node.name
                    checked += 1

    check(tree.body, core, "")
    assert checked > 20  # the check really compared the bindings
