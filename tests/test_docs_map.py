"""docs/architecture.md maps every source file, and no doc refers to issue numbers."""

from __future__ import annotations

import re

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "examples/cpp/README.md"]


def _sources() -> list[str]:
    """Python modules of the package and C++ files, as the map names them."""
    python = [p.name for p in (ROOT / "python/hubcore").glob("*.py")]
    commands = ["commands/*.py"]  # one line covers the command files
    cpp = [p.name for p in (ROOT / "cpp").rglob("*") if p.suffix in (".cc", ".h")]
    return python + commands + cpp


def _mentioned(name: str, text: str) -> bool:
    stem, _, suffix = name.rpartition(".")
    # "restore_ops.{h,cc}" names both files.
    braces = rf"\b{re.escape(stem)}\.\{{[^}}]*\b{suffix}\b"
    return name in text or re.search(braces, text) is not None


def test_architecture_lists_every_source_file():
    # The map is the document's first code block: one line (a job) per file.
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8").split("```")[1]
    cpp_tests = {p.name for p in (ROOT / "cpp/tests").glob("*")}
    missing = [
        name
        for name in _sources()
        if name not in cpp_tests and not _mentioned(name, text)  # the tests share one line
    ]
    assert not missing, f"docs/architecture.md does not list {missing}"


def test_docs_do_not_mention_issue_numbers():
    for doc in DOCS:
        hits = re.findall(r"\b(?:issue|Issue)s? #?\d+", doc.read_text(encoding="utf-8"))
        assert not hits, (doc.name, hits)
