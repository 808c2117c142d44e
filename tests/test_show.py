"""`hubcore show`: the CLI prints variants and signatures, JSON for machines, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

import hubcore
from hubcore import cli


def test_show_text(data_dir, capsys):
    assert cli.main(["show", str(data_dir / "tiny")]) == 0
    out = capsys.readouterr().out
    assert "Graph variant tags={}" in out and "Graph variant tags={train}" in out
    assert "in  x: float32 [?, 4]" in out
    assert "dense/kernel: float32 [4, 3] (48 B" in out
    assert "image_module_info" in out


def test_show_json_matches_spec(data_dir, capsys):
    from tensorflow.core.protobuf import saved_model_pb2

    assert cli.main(["show", "--json", str(data_dir / "partitioned")]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["format_version"] == 3
    (variant,) = desc["variants"]
    table = next(v for v in variant["variables"] if v["name"] == "table")
    assert len(table["partitions"]) == 3 and table["bytes"] == 20 * 5 * 4
    sig = variant["signatures"]["default"]
    saved_model = saved_model_pb2.SavedModel.FromString(
        (data_dir / "partitioned" / "saved_model.pb").read_bytes()
    )
    saved_model_input = saved_model.meta_graphs[0].signature_def["default"].inputs["default"]
    assert sig["inputs"]["default"] == {
        "dtype": "int64",
        "shape": [None],
        "kind": "dense",
        "tensors": [saved_model_input.name],
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


def test_show_prints_tensor_names_and_filters_like_saved_model_cli(data_dir, capsys):
    assert cli.main(["show", str(data_dir / "tiny"), "--tags", "train", "-s", "encode"]) == 0
    out = capsys.readouterr().out
    assert "Graph variant tags={train}" in out and "Graph variant tags={}" not in out
    assert "in  default: float32 [?, 4]  (tensor x:0)" in out
    assert "out default: float32 [?, 3]  (tensor Relu:0)" in out
    assert "    default:\n" not in out  # only the chosen signature
    assert cli.main(["show", "--tags", str(data_dir / "tiny"), "--json"]) == 0  # untagged only
    desc = json.loads(capsys.readouterr().out)
    assert [v["tags"] for v in desc["variants"]] == [[]]
    sparse = json.loads(_show_json(capsys, data_dir / "sparse_in"))
    (inp,) = sparse["variants"][0]["signatures"]["default"]["inputs"].values()
    assert len(inp["tensors"]) == 3  # indices, values, dense_shape
    assert cli.main(["show", str(data_dir / "sparse_in")]) == 0
    assert "(tensors " + ", ".join(inp["tensors"]) + ")" in capsys.readouterr().out


def test_show_help_states_its_tags_default(data_dir, capsys):
    """Without --tags, show lists every variant, and its help says so (not the untagged one)."""
    assert len(json.loads(_show_json(capsys, data_dir / "tiny"))["variants"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["show", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: every graph variant; a bare --tags: the variant without tags)" in text


def _show_json(capsys, path) -> str:
    assert cli.main(["show", "--json", str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, error",
    [
        (["--tags", "serve"], hubcore.VariantNotFoundError),
        (["-s", "nope"], hubcore.SignatureNotFoundError),
    ],
)
def test_show_unknown_filters(data_dir, argv, error):
    args = cli.build_parser().parse_args(["show", str(data_dir / "tiny"), *argv])
    cli.finish_parsing(args)
    with pytest.raises(error) as e:
        args.handler(args)
    assert type(e.value) is error and "tiny" in str(e.value)


def test_show_names_an_archive_by_its_own_path(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(tmp_path / "cache"))
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(data_dir / "tiny", arcname="tiny")
    assert cli.main(["show", str(archive)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Module: {archive}\n") and str(tmp_path / "cache") not in out
    desc = json.loads(_show_json(capsys, archive))
    assert desc["path"] == str(archive)
