"""The README's Python snippets run as written (module paths redirected to a temporary dir)."""

from __future__ import annotations

import re

from conftest import ROOT
from hubcore.examples import write_example


def _python_blocks(section: str) -> list[str]:
    """The ```python blocks under the README heading `section`, up to the next heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{section}\n")
    end = re.search(r"\n#{1,3} ", text[start + len(section) + 2 :])
    body = text[start : start + len(section) + 2 + end.start()] if end else text[start:]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_tf2_and_keras_section_runs(tmp_path, capsys):
    write_example("text-embedding", tmp_path / "hubcore-example")
    blocks = _python_blocks("### TF2 and Keras 3")
    assert blocks
    namespace: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    for expected in re.findall(r"print\(.*\)  # (.*)", "".join(blocks)):
        assert expected in printed
