"""Every crasher the fuzzer (bench/fuzz.py) or a probe ever found, kept under tests/fuzz_corpus/,
replayed in a child process under a timeout: each ends in the outcome its case.json expects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"


def test_corpus_replays_to_expected_outcomes():
    cases = sorted(p.parent for p in CORPUS.glob("*/case.json"))
    assert cases
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--replay", str(CORPUS)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    got = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    want = {c.name: json.loads((c / "case.json").read_text())["expected"] for c in cases}
    assert got == want, out.stderr[-2000:]
    assert out.returncode == 0
