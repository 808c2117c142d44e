"""`hubcore show`: the CLI prints variants and signatures, JSON for machines, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hubcore import cli


def test_show_text(data_dir, capsys):
    assert cli.main(["show", str(data_dir / "tiny")]) == 0
    out = capsys.readouterr().out
    assert "Graph variant tags={}" in out and "Graph variant tags={train}" in out
    assert "in  x: float32 [?, 4]" in out
    assert "dense/kernel: float32 [4, 3] (48 B" in out
    assert "image_module_info" in out


def test_show_json_matches_spec(data_dir, capsys, manifest):
    assert cli.main(["show", "--json", str(data_dir / "partitioned")]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["format_version"] == 3
    (variant,) = desc["variants"]
    table = next(v for v in variant["variables"] if v["name"] == "table")
    assert len(table["partitions"]) == 3 and table["bytes"] == 20 * 5 * 4
    sig = variant["signatures"]["default"]
    assert sig["inputs"]["default"] == {
        "dtype": "int64",
        "shape": [None],
        "kind": "dense",
        "tensors": sig["inputs"]["default"]["tensors"],
    }


def test_show_sparse_and_ragged_kinds(data_dir, capsys):
    cli.main(["show", "--json", str(data_dir / "ragged_in")])
    desc = json.loads(capsys.readouterr().out)
    rt = desc["variants"][0]["signatures"]["default"]["inputs"]["rt"]
    assert rt["kind"] == "ragged" and rt["ragged_rank"] == 1 and len(rt["tensors"]) == 2


@pytest.mark.parametrize(
    "target, message",
    [("nowhere", "no such file or directory"), (".", "not a TF1 Hub module")],
)
def test_show_errors(tmp_path, capsys, target, message):
    assert cli.main(["show", str(tmp_path / target)]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.skipif(
    bool(os.environ.get("HUBCORE_BUILD_DIR")), reason="needs the installed package (pip install .)"
)
def test_console_script_and_module_entry_point(data_dir):
    for cmd in (["hubcore"], [sys.executable, "-m", "hubcore"]):
        if cmd == ["hubcore"] and not _on_path("hubcore"):
            continue
        result = subprocess.run(
            [*cmd, "show", str(data_dir / "tiny")], capture_output=True, text=True, check=True
        )
        assert "signature" not in result.stderr
        assert "default:" in result.stdout


def _on_path(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None
