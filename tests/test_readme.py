"""The README's and docs/cli.md's snippets run as written (``/tmp/`` redirected to a temporary dir).

The TF2 and Keras section runs in this process. For the command line, shell blocks that call
``hubcore`` run in bash (``set -euo pipefail``) with ``hubcore`` the CLI under test, then the
file's other Python blocks run in a subprocess. Installation and development steps (``pip
install``, ``cmake``, ``.ci/run``, linters, benchmarks) are left out. A ``print(...)  # value``
line must print that value.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, cli_command
from hubcore.examples import write_example

_TF2_SECTION = "### TF2 and Keras 3"


def _python_blocks(section: str) -> list[str]:
    """The ```python blocks under the README heading `section`, up to the next heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n{section}\n")
    end = re.search(r"\n#{1,3} ", text[start + len(section) + 2 :])
    body = text[start : start + len(section) + 2 + end.start()] if end else text[start:]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


def test_tf2_and_keras_section_runs(tmp_path, capsys):
    write_example("text-embedding", tmp_path / "hubcore-example")
    blocks = _python_blocks(_TF2_SECTION)
    assert blocks
    namespace: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    for expected in re.findall(r"print\(.*\)  # (.*)", "".join(blocks)):
        assert expected in printed


# ---- the command line ----------------------------------------------------------------------------


DOCS = [ROOT / "README.md", ROOT / "docs" / "cli.md"]
_IN_PROCESS = set(_python_blocks(_TF2_SECTION))  # run by test_tf2_and_keras_section_runs
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_DEVELOPMENT = ("cmake", ".ci/run", "ruff ", "clang-format", "tools/", "bench/", "pytest")
_EXPECTED = re.compile(r"^[ \t]*print\(.*\)[ \t]+# (.+)$", re.M)


def snippets(doc: Path) -> tuple[list[str], list[str]]:
    """(shell commands that call hubcore, Python blocks) of ``doc``, in order."""
    shell, python = [], []
    for lang, code in _FENCE.findall(doc.read_text()):
        if lang in ("bash", "sh"):
            steps = [s for s in code.split(" && ") if not s.lstrip().startswith("pip install")]
            code = " && ".join(steps)
            if "hubcore " in code and not any(word in code for word in _DEVELOPMENT):
                shell.append(code)
        elif lang == "python" and code not in _IN_PROCESS:
            python.append(code)
    return shell, python


def test_docs_have_cli_snippets():
    assert all(snippets(doc)[0] for doc in DOCS)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_doc_snippets_run(doc, tmp_path):
    shell, python = snippets(doc)
    cli = " ".join(cli_command())
    for code in shell:
        script = f'set -euo pipefail\nhubcore() {{ {cli} "$@"; }}\n' + code.replace(
            "/tmp/", f"{tmp_path}/"
        )
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert result.returncode == 0, f"{code}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
    in_tree = cli_command()[-1].endswith("cli_entry.py")  # then Python needs the build too
    run_python = [*cli_command(), "--exec"] if in_tree else [sys.executable]
    for n, code in enumerate(python):
        script = tmp_path / f"snippet{n}.py"
        script.write_text(code.replace("/tmp/", f"{tmp_path}/"))
        result = subprocess.run(
            [*run_python, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert result.returncode == 0, f"{code}\n{result.stderr[-3000:]}"
        for expected in _EXPECTED.findall(code):
            assert expected.strip() in result.stdout, (expected, result.stdout)
