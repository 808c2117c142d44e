"""The Python snippets of docs/security.md run as written (from the repository root)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_security_doc_snippets_run(monkeypatch):
    text = (ROOT / "docs" / "security.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert snippets
    monkeypatch.chdir(ROOT)
    for snippet in snippets:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(snippet, "docs/security.md", "exec"), {})
        assert "InitializeTableFromTextFileV2 1 reads assets" in out.getvalue()
        assert out.getvalue().rstrip().endswith("(1, 8)")
