"""Mutation fuzzer for hubcore's module reader and loader (docs/security.md, "Fuzzing").

Each case copies a seed module from tests/data, mutates it (truncation, bit flips, byte edits,
special files, structural edits of saved_model.pb) and runs it through ``load_module_spec``,
``Runner`` (every signature, on small generated inputs) and ``Module``. Cases run in a worker
child process under a per-case timeout, so a crash (signal) or a hang is detected, reported and
its module saved. An exception that is not a ``hubcore.Error`` (or, from ``session.run``, a
``tf.errors.OpError``) is a finding too.

    python bench/fuzz.py --seconds 60 --out /tmp/fuzz        # what bench/fuzz.sh runs
    python bench/fuzz.py --replay tests/fuzz_corpus            # the saved crashers, once each

Deterministic for a given ``--seed``. Exit status 1 when anything was found. To keep a finding
as a regression case, fix it, copy its directory into tests/fuzz_corpus/ and set "expected" in its
case.json to the outcome it must have now (tests/test_fuzz_corpus.py replays them all).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEEDS = ["tiny", "text_table", "sparse_in", "ragged_in", "partitioned"]
FILES = ["saved_model.pb", "tfhub_module.pb", "variables/variables.index"]
CASE_TIMEOUT = 60.0  # seconds; a healthy case takes well under one


# ---- mutations (parent side; only the protobuf runtime, no TensorFlow) -------------------------


def _saved_model(module: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((module / "saved_model.pb").read_bytes())
    return sm


def _tensor_infos(sm):
    for mg in sm.meta_graphs:
        for sig in mg.signature_def.values():
            yield from sig.inputs.values()
            yield from sig.outputs.values()


def _structural(module: Path, rng: random.Random) -> str:
    """One random edit of saved_model.pb's structure; returns its description."""
    from tensorflow.core.framework import function_pb2, variable_pb2

    sm = _saved_model(module)
    graph = sm.meta_graphs[0].graph_def
    infos = list(_tensor_infos(sm))
    kind = rng.choice(
        ["dtype", "index", "drop_node", "op", "cycle", "ragged", "slice", "input", "shape"]
    )
    if kind == "dtype" and infos:
        rng.choice(infos).dtype = rng.choice([0, 7, 14, 20, 21, 30, 99, 101])
    elif kind == "index" and infos:
        info = rng.choice(infos)
        if info.name:
            info.name = info.name.split(":")[0] + f":{rng.choice([1, 7, 99])}"
    elif kind == "drop_node" and graph.node:
        del graph.node[rng.randrange(len(graph.node))]
    elif kind == "op" and graph.node:
        rng.choice(graph.node).op = rng.choice(["NoSuchOp", "Identity", "WriteFile", "Const"])
    elif kind == "cycle":
        names = [f"f{i}" for i in range(rng.choice([1, 2, 3]))]
        for i, name in enumerate(names):
            f = function_pb2.FunctionDef()
            f.signature.name = name
            f.node_def.add(name="call", op=names[(i + 1) % len(names)])
            graph.library.function.append(f)
    elif kind == "ragged":
        for info in infos:
            if info.HasField("composite_tensor"):
                state = info.composite_tensor.type_spec.type_state.tuple_value.values
                if len(state) > 2:
                    state[2].int64_value = rng.choice([-2, -1, 0, 3, 9])
                if rng.random() < 0.5:
                    state[0].tensor_shape_value.unknown_rank = True
                    del state[0].tensor_shape_value.dim[:]
                if rng.random() < 0.5:
                    del info.composite_tensor.components[:]
    elif kind == "slice":
        values = sm.meta_graphs[0].collection_def["variables"].bytes_list.value
        for i, raw in enumerate(values):
            var = variable_pb2.VariableDef()
            var.ParseFromString(raw)
            info = var.save_slice_info_def
            field = rng.choice([info.var_shape, info.var_offset, info.full_shape])
            if rng.random() < 0.5:
                del field[:]
            else:
                field.append(rng.choice([-1, 0, 1 << 40]))
            values[i] = var.SerializeToString()
    elif kind == "input" and graph.node:
        node = rng.choice(graph.node)
        if node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(["nowhere", node.name, "^x"])
    elif kind == "shape" and infos:
        shape = rng.choice(infos).tensor_shape
        del shape.dim[:]
        for _ in range(rng.choice([0, 1, 3])):
            shape.dim.add(size=rng.choice([-1, 0, 2, 1 << 40]))
    (module / "saved_model.pb").write_bytes(sm.SerializeToString())
    return f"structural:{kind}"


def _bytes(module: Path, rng: random.Random) -> str:
    path = module / rng.choice([*FILES, "variables/variables.data-00000-of-00001"])
    if not path.exists():
        path = module / "saved_model.pb"
    data = bytearray(path.read_bytes())
    kind = rng.choice(["truncate", "flip", "insert", "delete", "zero"])
    if kind == "truncate":
        data = data[: rng.randrange(len(data) + 1)]
    elif kind == "flip":
        for _ in range(rng.choice([1, 2, 8])):
            if data:
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.choice([1, 4, 64]))
    elif kind == "delete" and data:
        at = rng.randrange(len(data))
        del data[at : at + rng.choice([1, 4, 64])]
    elif kind == "zero":
        data = bytearray(len(data))
    path.write_bytes(bytes(data))
    return f"bytes:{kind}:{path.relative_to(module)}"


def _special(module: Path, rng: random.Random) -> str:
    assets = sorted((module / "assets").glob("*")) if (module / "assets").exists() else []
    members = [module / f for f in FILES] + assets
    members = [p for p in members if p.is_file() and not p.is_symlink()]  # not already special
    if not members:
        return "special:none"
    path = rng.choice(members)
    path.unlink()
    kind = rng.choice(["fifo", "devzero", "directory", "dangling"])
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "devzero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(module / "nowhere")
    return f"special:{kind}:{path.relative_to(module)}"


def make_case(root: Path, rng: random.Random) -> dict:
    """Writes one mutated module under ``root``; returns its description."""
    seed = rng.choice(SEEDS)
    module = root / "module"
    shutil.copytree(DATA / seed, module)
    for p in [module, *module.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    mutate = rng.choices([_structural, _bytes, _special], weights=[5, 4, 1])[0]
    steps = [mutate(module, rng) for _ in range(rng.choice([1, 1, 2]))]
    return {"seed": seed, "mutation": steps}


# ---- the target (worker side) ------------------------------------------------------------------


def _inputs(spec) -> dict:
    """Small valid inputs for a signature's ValueSpecs."""
    import numpy as np

    values = {}
    for name, v in spec.inputs.items():
        dtype = np.dtype(object) if v.is_string else v.dtype
        fill = b"a b" if v.is_string else 1
        if v.kind == "sparse":
            rank = len(v.shape) if v.shape is not None else 2
            values[name] = (np.zeros((1, rank), np.int64), np.array([fill], dtype), [2] * rank)
        elif v.kind == "ragged":
            values[name] = (np.full(3, fill, dtype), [np.array([0, 1, 3])])
        else:
            shape = [2 if d is None else min(d, 4) for d in (v.shape or [2])]
            values[name] = np.full(shape, fill, dtype)
    return values


def run_target(path: str) -> str:
    """Loads and runs the module at ``path`` every way hubcore offers; returns the outcome."""
    import hubcore

    try:
        hubcore.load_module_spec(path)
        runner = hubcore.Runner(path)
        for name, sig in runner.signatures.items():
            runner(_inputs(sig), signature=name, as_dict=True)
    except hubcore.Error as e:
        return type(e).__name__
    import tensorflow as tf

    try:
        with tf.Graph().as_default():
            module = hubcore.Module(path)
            with tf.compat.v1.Session() as session:
                session.run(tf.compat.v1.global_variables_initializer())
                session.run(tf.compat.v1.tables_initializer())
                for name, sig in runner.signatures.items():
                    session.run(module(_inputs(sig), signature=name, as_dict=True))
    except hubcore.Error as e:
        return "Module:" + type(e).__name__
    except tf.errors.OpError as e:
        return "Module:tf." + type(e).__name__
    return "ok"


def _use_build_dir() -> None:
    """With HUBCORE_BUILD_DIR set (development), python/hubcore with that build's extension, as
    tests/conftest.py does; otherwise the installed package."""
    build = os.environ.get("HUBCORE_BUILD_DIR")
    if not build:
        return
    import glob
    import importlib.util

    sys.path.insert(0, str(ROOT / "python"))
    (so,) = glob.glob(os.path.join(build, "_core*.so"))
    spec = importlib.util.spec_from_file_location("hubcore._core", so)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["hubcore._core"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]


def worker() -> None:
    """Reads module paths from stdin, one per line; writes one JSON outcome line for each."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _use_build_dir()
    for line in sys.stdin:
        try:
            outcome = run_target(line.strip())
        except Exception as e:  # anything else is what the fuzzer looks for
            outcome = f"UNEXPECTED:{type(e).__module__}.{type(e).__name__}: {str(e)[:200]}"
        print(json.dumps({"outcome": outcome}), flush=True)


# ---- the driver (parent side) ------------------------------------------------------------------


class Worker:
    def __init__(self, python_path: list[str]) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path)}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_MAIN, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, path: Path, timeout: float) -> str:
        """The case's outcome; "CRASH:<signal>" or "HANG" when the worker died or stalled."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            return "HANG"
        line = self.proc.stdout.readline()
        if not line:
            return f"CRASH:signal {-self.proc.wait()}"
        return json.loads(line)["outcome"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# The worker imports this file by path: bench/ is not a package.
_WORKER_MAIN = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("hubcore_fuzz", sys.argv[1])
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)
fuzz.worker()
"""


def is_finding(outcome: str) -> bool:
    return outcome.startswith(("CRASH", "HANG", "UNEXPECTED"))


def fuzz(seconds: float, out: Path, seed: int, python_path: list[str]) -> int:
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    findings = 0
    deadline = time.monotonic() + seconds
    work = Worker(python_path)
    try:
        while time.monotonic() < deadline:
            with tempfile.TemporaryDirectory(prefix="hubcore-fuzz-") as tmp:
                case = make_case(Path(tmp), rng)
                timeout = max(1.0, min(CASE_TIMEOUT, deadline - time.monotonic() + 30))
                outcome = work.run(Path(tmp) / "module", timeout)
                counts[outcome.split(":")[0] if is_finding(outcome) else outcome] += 1
                if is_finding(outcome):
                    findings += 1
                    saved = out / f"finding-{findings:03d}"
                    _save(Path(tmp) / "module", saved, {**case, "outcome": outcome})
                    print(f"FOUND {outcome} {case} -> {saved}", flush=True)
                    work.close()
                    work = Worker(python_path)
    finally:
        work.close()
    total = sum(counts.values())
    print(f"{total} cases in {seconds:.0f} s, {findings} findings")
    for outcome, n in counts.most_common():
        print(f"  {n:5d}  {outcome}")
    return 1 if findings else 0


def _save(module: Path, dest: Path, case: dict) -> None:
    """Keeps the files that differ from the seed (special files as a note) and the case."""
    dest.mkdir(parents=True, exist_ok=True)
    seed = DATA / case["seed"]
    changed = []
    for path in sorted(module.rglob("*")):
        rel = path.relative_to(module)
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            changed.append(f"{rel} (special: not saved)")
        elif path.is_file() and (
            not (seed / rel).is_file() or (seed / rel).read_bytes() != path.read_bytes()
        ):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel)
            changed.append(str(rel))
    (dest / "case.json").write_text(json.dumps({**case, "files": changed}, indent=2) + "\n")


def build_case(case_dir: Path, into: Path) -> Path:
    """The module of a saved case: its seed with the saved files laid over it."""
    case = json.loads((case_dir / "case.json").read_text())
    module = into / case_dir.name
    shutil.copytree(DATA / case["seed"], module)
    for p in [module, *module.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    for path in case_dir.rglob("*"):
        if path.is_file() and path.name != "case.json":
            shutil.copyfile(path, module / path.relative_to(case_dir))
    return module


def replay(corpus: Path, python_path: list[str]) -> int:
    """Runs every saved case once; prints "<case> <outcome>" lines."""
    status = 0
    work = Worker(python_path)
    with tempfile.TemporaryDirectory(prefix="hubcore-replay-") as tmp:
        for case_dir in sorted(p.parent for p in corpus.glob("*/case.json")):
            outcome = work.run(build_case(case_dir, Path(tmp)), CASE_TIMEOUT)
            print(f"{case_dir.name} {outcome}", flush=True)
            if is_finding(outcome):
                status = 1
                work.close()
                work = Worker(python_path)
    work.close()
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--replay", type=Path, default=None, help="a corpus directory to replay")
    args = parser.parse_args()
    python_path = [p for p in sys.path if p]
    if args.replay is not None:
        return replay(args.replay, python_path)
    print(f"fuzzing for {args.seconds:.0f} s, seed {args.seed}", flush=True)
    return fuzz(args.seconds, args.out, args.seed, python_path)


if __name__ == "__main__":
    sys.exit(main())
