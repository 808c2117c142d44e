"""Deterministic mutation suite (docs/security.md): module files mutated by bench/fuzz.py's
mutators with fixed seeds (truncation, bit flips, byte edits, special files, structural proto
edits), hostile archives, bad call inputs and CLI misuse. Each case asserts its exact outcome.

Module-file outcomes are recorded in tests/data/mutation_outcomes.json: "ok", the hubcore error
class name, or "Module:<class>" for a failure met only when hubcore.Module runs the module.
After an intended change, regenerate it with HUBCORE_REGENERATE_MUTATIONS=1 and review the diff.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import random
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import hubcore as hub

ROOT = Path(__file__).resolve().parent.parent
OUTCOMES = ROOT / "tests" / "data" / "mutation_outcomes.json"
NUM_MODULE_CASES = 60

_spec = importlib.util.spec_from_file_location("hubcore_fuzz", ROOT / "bench" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(fuzz)  # type: ignore[union-attr]


def test_mutated_modules(tmp_path):
    outcomes = {}
    for i in range(NUM_MODULE_CASES):
        root = tmp_path / f"case{i}"
        root.mkdir()
        case = fuzz.make_case(root, random.Random(i))
        outcome = fuzz.run_target(str(root / "module"))
        outcomes[str(i)] = {"mutation": case["mutation"], "seed": case["seed"], "outcome": outcome}
    if os.environ.get("HUBCORE_REGENERATE_MUTATIONS"):
        OUTCOMES.write_text(json.dumps(outcomes, indent=1, sort_keys=True) + "\n")
    expected = json.loads(OUTCOMES.read_text())
    assert outcomes == expected
    counts = Counter(c["outcome"] for c in outcomes.values())
    assert not any(fuzz.is_finding(o) for o in counts), counts
    print("mutation outcomes:", dict(counts))


# ---- hostile archives --------------------------------------------------------------------------


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("members", "error"),
    [
        ([(_member("../evil.txt"), b"x")], hub.UnsafeArchiveError),
        ([(_member("/abs/evil.txt"), b"x")], hub.UnsafeArchiveError),
        ([(_member("link", tarfile.SYMTYPE, "/etc/passwd"), b"")], hub.UnsafeArchiveError),
        ([(_member("hard", tarfile.LNKTYPE, "/etc/passwd"), b"")], hub.UnsafeArchiveError),
        ([(_member("dev", tarfile.CHRTYPE), b"")], hub.UnsafeArchiveError),
        ([(_member("fifo", tarfile.FIFOTYPE), b"")], hub.UnsafeArchiveError),
        ([(_member("saved_model.pb"), b"junk")], hub.NotAModuleError),
    ],
)
def test_hostile_archives(tmp_path, members, error):
    archive = _archive(tmp_path / "m.tar.gz", members)
    with pytest.raises(error) as info:
        hub.load_module_spec(archive)
    assert type(info.value) is error


# ---- bad call inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "inputs", "error"),
    [
        ("tiny", {"x": np.zeros((2, 5), np.float32)}, hub.InvalidArgumentError),
        ("tiny", {"x": np.array([["a"] * 4])}, hub.InvalidArgumentError),
        ("tiny", {"x": np.zeros((2, 4)), "y": 1}, hub.InvalidArgumentError),
        ("tiny", {}, hub.InvalidArgumentError),
        ("tiny", {"x": [[1, 2], [3]]}, hub.InvalidArgumentError),
        ("text_table", [1, 2], hub.InvalidArgumentError),
        ("sparse_in", {"sp": ([[0, 9]], [1.0], [3, 6])}, hub.InvalidArgumentError),
        ("sparse_in", {"sp": ([[0, 0]], [1.0], [-1, 6])}, hub.InvalidArgumentError),
        ("sparse_in", {"sp": ([[0, 0]], [1.0, 2.0], [3, 6])}, hub.InvalidArgumentError),
        ("ragged_in", {"rt": ([1.0, 2.0], [[0, 2, 1]])}, hub.InvalidArgumentError),
        ("ragged_in", {"rt": ([1.0, 2.0], [[0, 5]])}, hub.InvalidArgumentError),
        ("ragged_in", {"rt": "not ragged"}, hub.InvalidArgumentError),
    ],
)
def test_bad_call_inputs(data_dir, module, inputs, error):
    runner = hub.Runner(data_dir / module)
    with pytest.raises(error) as info:
        runner(inputs)
    assert type(info.value) is error


def test_bad_call_inputs_by_name(data_dir):
    runner = hub.Runner(data_dir / "tiny")
    with pytest.raises(hub.SignatureNotFoundError):
        runner({"x": np.zeros((1, 4), np.float32)}, signature="nope")


# ---- CLI misuse --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["show", "/no/such/module"], 1, "no such file or directory"),
        (["show", "{data}/tiny", "--tags", "nope"], 1, "has no graph variant"),
        (["run", "{data}/tiny", "-i", "/no/such.npy", "-o", "{tmp}/o.npz"], 1, "/no/such.npy"),
        (["run", "{data}/tiny", "-i", "x.npy", "-o", "{tmp}/o.npz", "-b", "0"], 2, "batch-size"),
        (["nonsense"], 2, "invalid choice"),
    ],
)
def test_cli_misuse(data_dir, tmp_path, capsys, argv, status, message):
    from hubcore.cli import main

    argv = [a.format(data=data_dir, tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    assert code == status
    assert message in capsys.readouterr().err
