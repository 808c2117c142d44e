"""Coverage-guided fuzzer for hubcore's module reader and loader (docs/security.md, "Fuzzing").

libFuzzer's engine, through atheris, with hubcore's Python modules instrumented for coverage.
A fuzz input is a seed module from tests/data with one of its files (saved_model.pb,
tfhub_module.pb, variables.index or the data shard) replaced; besides libFuzzer's byte mutations a
custom mutator makes structural edits of saved_model.pb (dtypes, tensor references, nodes, ops,
call cycles, ragged and partitioned-variable metadata, shapes). Each case runs through
``load_module_spec`` and then, each on its own, ``Runner``, ``hub.Module`` (in a graph and a
session) and ``hubcore.load``, every signature on small generated inputs. Any exception that is
not a ``hubcore.Error`` is a finding (``ALLOWED`` below names the one exception), and so are a
crash (signal), a hang (libFuzzer's ``-timeout``) and running out of memory.

libFuzzer runs in a worker child; after a finding, the driver saves it and starts a new worker
on the corpus grown so far (``OUT/corpus``, seeded from tests/data and tests/fuzz_corpus/).

    python bench/fuzz.py --seconds 60 --out /tmp/fuzz        # what bench/fuzz.sh runs
    python bench/fuzz.py --replay tests/fuzz_corpus            # the saved crashers, once each

Exit status 1 when anything was found. A finding is saved as ``OUT/finding-NNN/`` (the changed
file, the raw ``input`` and a case.json). To keep it as a regression case, fix it, copy the
directory into tests/fuzz_corpus/ and set "expected" in its case.json to the outcome it must have
now (tests/test_fuzz_corpus.py replays them all). ``make_case`` and the mutators below it are also
tests/test_mutations.py's deterministic mutation suite.
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
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEEDS = ["tiny", "text_table", "sparse_in", "ragged_in", "partitioned"]
FILES = ["saved_model.pb", "tfhub_module.pb", "variables/variables.index"]
CORPUS = ROOT / "tests" / "fuzz_corpus"
CASE_TIMEOUT = 30.0  # seconds; a healthy case takes well under one (libFuzzer's -timeout)
WORKER_GRACE = 120  # seconds for a worker's start-up (TensorFlow) and its initial corpus
MAX_WORKER_RUNS = 5  # a worker restarts after each finding, up to this many times
RSS_LIMIT_MB = 4096  # libFuzzer's -rss_limit_mb: above it, an OOM finding
REPLAY_TIMEOUT = 120.0  # seconds per replayed case (the first one starts TensorFlow)
MAX_LEN = 65536  # bytes of a fuzz input (the largest seed file is about 11 KB)


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
    sm = _saved_model(module)
    kind = edit_saved_model(sm, rng)
    (module / "saved_model.pb").write_bytes(sm.SerializeToString())
    return f"structural:{kind}"


def edit_saved_model(sm, rng: random.Random) -> str:
    """One random structural edit of a SavedModel proto, in place; returns its kind."""
    from tensorflow.core.framework import function_pb2, variable_pb2

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
    return kind


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


def _run_runner(path: str, signatures: dict) -> str:
    import hubcore

    runner = hubcore.Runner(path)
    for name, sig in runner.signatures.items():
        runner(_inputs(sig), signature=name, as_dict=True)
    return "ok"


def _run_module(path: str, signatures: dict) -> str:
    import tensorflow as tf

    import hubcore

    with tf.Graph().as_default():
        module = hubcore.Module(path)
        outputs = [module(_inputs(s), signature=n, as_dict=True) for n, s in signatures.items()]
        with tf.compat.v1.Session() as session:
            try:
                session.run(tf.compat.v1.global_variables_initializer())
                session.run(tf.compat.v1.tables_initializer())
                session.run(outputs)
            except tf.errors.OpError as e:  # the caller's own session.run (see ALLOWED)
                return "tf." + type(e).__name__
    return "ok"


def _run_load(path: str, signatures: dict) -> str:
    import tensorflow as tf

    import hubcore

    module = hubcore.load(path)
    for name, sig in signatures.items():
        module.signatures[name]  # builds the function: any error here is hubcore's
        try:
            module(_inputs(sig), signature=name, as_dict=True)
        except tf.errors.OpError as e:  # TensorFlow running the built function (see ALLOWED)
            return "tf." + type(e).__name__
    return "ok"


# Every entry point must end in success or a hubcore.Error. The one allowance: a
# tf.errors.OpError raised while TensorFlow *runs* a graph hubcore built without complaint (the
# caller's session.run for hub.Module, the call of hubcore.load's function): that is TensorFlow's
# documented runtime error, as with tensorflow_hub, and hubcore is not on that call's stack.
ALLOWED = "tf.errors.OpError from running a built graph (Module's session.run, hubcore.load's call)"
STAGES = [("", _run_runner), ("Module:", _run_module), ("load:", _run_load)]


def run_target(path: str) -> str:
    """Runs the module at ``path`` through every entry point (load_module_spec, then Runner,
    hub.Module and hubcore.load, each on every signature, each regardless of the others).

    Returns "ok", the first error met ("<Error>" from load_module_spec or Runner, "Module:<Error>"
    or "load:<Error>"), or "UNEXPECTED:<entry point>:<exception>" if any entry point raised
    anything but a hubcore.Error (beyond ALLOWED)."""
    import hubcore
    from hubcore._convert import signature_spec

    try:
        spec = hubcore.load_module_spec(path)
        signatures = {s.name: signature_spec(s) for s in spec.variant().signatures}
    except hubcore.Error as e:
        return type(e).__name__
    except Exception as e:
        return _unexpected("load_module_spec", e)
    first = "ok"
    for prefix, stage in STAGES:
        try:
            outcome = stage(path, signatures)
        except hubcore.Error as e:
            outcome = type(e).__name__
        except Exception as e:
            return _unexpected(prefix.rstrip(":") or "Runner", e)
        if first == "ok" and outcome != "ok":
            first = prefix + outcome
    return first


def _unexpected(where: str, e: BaseException) -> str:
    traceback.print_exc()  # into the worker's log, for whoever looks at the finding
    return f"UNEXPECTED:{where}:{type(e).__module__}.{type(e).__name__}: {str(e)[:200]}"


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
            outcome = _unexpected("run_target", e)
        print(json.dumps({"outcome": outcome}), flush=True)


# ---- coverage-guided fuzzing with atheris (worker side) ----------------------------------------
#
# A fuzz input is two header bytes and a file: byte 0 picks the seed module (SEEDS), byte 1 the
# file of it to replace (TARGETS), the rest is that file's new content. libFuzzer mutates the
# bytes; the custom mutator below also makes structural edits of saved_model.pb.

TARGETS = [*FILES, "variables/variables.data-00000-of-00001"]
INSTRUMENTED = [  # hubcore's modules on the load and call paths (atheris traces their branches)
    "hubcore",
    "hubcore.errors",
    "hubcore._convert",
    "hubcore._function_state",
    "hubcore._tf_internal",
    "hubcore._tf_libraries",
    "hubcore.batching",
    "hubcore.eager_module",
    "hubcore.module",
    "hubcore.module_spec",
    "hubcore.resolver",
    "hubcore.runner",
    "hubcore.tensor_info",
]


def encode(seed: str, target: str, content: bytes) -> bytes:
    return bytes([SEEDS.index(seed), TARGETS.index(target)]) + content


def decode(data: bytes) -> tuple[str, str, bytes]:
    """(seed, target file, content) of a fuzz input."""
    if len(data) < 2:
        return SEEDS[0], TARGETS[0], data
    return SEEDS[data[0] % len(SEEDS)], TARGETS[data[1] % len(TARGETS)], data[2:]


def write_module(data: bytes, module: Path) -> str:
    """Lays a fuzz input out as a module directory; returns its seed's name."""
    seed, target, content = decode(data)
    shutil.rmtree(module, ignore_errors=True)
    shutil.copytree(DATA / seed, module)
    for p in [module, *module.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    (module / target).parent.mkdir(parents=True, exist_ok=True)
    (module / target).write_bytes(content)
    return seed


def _custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """libFuzzer's byte mutations, plus (a third of the time, on saved_model.pb) a structural edit
    of the SavedModel proto, plus (rarely) a switch to another seed module or file."""
    import atheris
    from tensorflow.core.protobuf import saved_model_pb2

    rng = random.Random(seed)
    module, target, content = decode(data)
    roll = rng.random()
    if roll < 0.03:
        module, target = rng.choice(SEEDS), rng.choice(TARGETS)
        path = DATA / module / target
        content = path.read_bytes() if path.is_file() else b""
    elif roll < 0.35 and target == "saved_model.pb":
        sm = saved_model_pb2.SavedModel()
        try:
            sm.ParseFromString(content)
            edit_saved_model(sm, rng)
            content = sm.SerializeToString()
        except Exception:  # not a SavedModel this edit applies to (the mutator is no target)
            content = atheris.Mutate(content, max(0, max_size - 2))
    else:
        content = atheris.Mutate(content, max(0, max_size - 2))
    return encode(module, target, content)[:max_size]


def atheris_worker(workdir: Path, libfuzzer_args: list[str]) -> None:
    """Runs libFuzzer (through atheris) over run_target until it finds something or its time is
    up. Before each case the input goes to ``workdir/current`` (what the driver saves if the
    process dies without libFuzzer writing an artifact); outcome counts go to
    ``workdir/counts.json``; a finding's outcome to ``workdir/finding.txt``, then it raises."""
    import importlib

    import atheris

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _use_build_dir()
    import tensorflow  # noqa: F401  (imported uninstrumented: only hubcore's code is traced)

    with atheris.instrument_imports(include=["hubcore"]):
        for name in INSTRUMENTED:
            importlib.import_module(name)
    module = workdir / "module"
    counts: Counter[str] = Counter()

    def test_one_input(data: bytes) -> None:
        (workdir / "current").write_bytes(data)
        write_module(data, module)
        outcome = run_target(str(module))
        counts[outcome.split(":")[0] if is_finding(outcome) else outcome] += 1
        (workdir / "counts.json").write_text(json.dumps(counts))
        if is_finding(outcome):
            (workdir / "finding.txt").write_text(outcome)
            raise FuzzFinding(outcome)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input, custom_mutator=_custom_mutator)
    atheris.Fuzz()


class FuzzFinding(Exception):
    """Raised in the worker so that libFuzzer saves the input and stops."""


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


def seed_corpus(corpus: Path) -> int:
    """Writes the starting inputs: every target file of every seed module, and every file of the
    saved crashers in tests/fuzz_corpus/. Returns their number."""
    corpus.mkdir(parents=True, exist_ok=True)
    inputs = {}
    for seed in SEEDS:
        for target in TARGETS:
            if (DATA / seed / target).is_file():
                inputs[f"{seed}-{target}"] = encode(
                    seed, target, (DATA / seed / target).read_bytes()
                )
    for case_json in sorted(CORPUS.glob("*/case.json")):
        case = json.loads(case_json.read_text())
        for target in TARGETS:
            if (case_json.parent / target).is_file():
                content = (case_json.parent / target).read_bytes()
                inputs[f"corpus-{case_json.parent.name}"] = encode(case["seed"], target, content)
    for name, data in inputs.items():
        (corpus / name.replace("/", "_")).write_bytes(data)
    return len(inputs)


def _libfuzzer_verdict(log: str) -> str:
    """What a worker's libFuzzer log says ended it, when the worker itself could not say."""
    if "libFuzzer: timeout" in log:
        return "HANG"
    if "libFuzzer: out-of-memory" in log:
        return "OOM"
    if "libFuzzer: deadly signal" in log:
        return "CRASH:deadly signal"
    return "CRASH:worker died"


def _save_finding(data: bytes, dest: Path, outcome: str) -> None:
    """Saves a finding as a case directory that build_case and tests/fuzz_corpus/ understand."""
    seed, target, content = decode(data)
    (dest / target).parent.mkdir(parents=True, exist_ok=True)
    (dest / target).write_bytes(content)
    (dest / "input").write_bytes(data)
    case = {"seed": seed, "mutation": ["atheris"], "outcome": outcome, "files": [target]}
    (dest / "case.json").write_text(json.dumps(case, indent=2) + "\n")


def fuzz(seconds: float, out: Path, seed: int, python_path: list[str]) -> int:
    """Coverage-guided fuzzing for ``seconds``: libFuzzer workers, one at a time, each restarted
    after a finding on the corpus grown so far (``out/corpus``). Exit status 1 on any finding."""
    out.mkdir(parents=True, exist_ok=True)
    corpus, artifacts = out / "corpus", out / "artifacts"
    artifacts.mkdir(exist_ok=True)
    print(f"corpus {corpus}: {seed_corpus(corpus)} seed inputs", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(python_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONHASHSEED"] = "0"  # the same set and dict orders, so the same coverage, each run
    counts: Counter[str] = Counter()
    findings: list[str] = []
    coverage = ""
    deadline = time.monotonic() + seconds
    fuzzing_seconds = 0.0
    for run in range(MAX_WORKER_RUNS):
        remaining = int(deadline - time.monotonic())
        if remaining < 1:
            break
        # A fixed place, cleared for each worker: module paths end up in error messages, and the
        # same paths keep a run with a given seed as repeatable as libFuzzer's timing allows.
        workdir = out / "work"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir()
        args = [
            f"-max_total_time={remaining}",
            f"-timeout={int(CASE_TIMEOUT)}",
            f"-seed={seed + run}",
            f"-rss_limit_mb={RSS_LIMIT_MB}",
            f"-max_len={MAX_LEN}",
            f"-artifact_prefix={artifacts}/",
            str(corpus),
        ]
        before = set(artifacts.iterdir())
        log_path = out / f"worker-{run}.log"
        started = time.monotonic()
        with open(log_path, "w") as log:
            command = [sys.executable, str(Path(__file__).resolve()), "--worker-dir", str(workdir)]
            proc = subprocess.Popen(
                [*command, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
            try:
                # libFuzzer stops itself; this only guards against a stuck worker.
                returncode = proc.wait(timeout=remaining + CASE_TIMEOUT + WORKER_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                returncode = proc.wait()
        fuzzing_seconds += time.monotonic() - started
        log_text = log_path.read_text(errors="replace")
        coverage = _last_coverage(log_text) or coverage
        if (workdir / "counts.json").exists():
            counts.update(json.loads((workdir / "counts.json").read_text()))
        if returncode == 0:
            break
        finding_txt = workdir / "finding.txt"
        outcome = finding_txt.read_text() if finding_txt.exists() else _libfuzzer_verdict(log_text)
        new = sorted(set(artifacts.iterdir()) - before)
        if new:
            data = new[0].read_bytes()
        elif (workdir / "current").exists():
            data = (workdir / "current").read_bytes()
        else:
            print(f"worker {run} failed before fuzzing (exit {returncode}); {log_path}:")
            print(_tail(log_text), flush=True)
            findings.append(f"WORKER FAILED: exit {returncode}")
            break
        if not outcome.startswith("UNEXPECTED"):
            counts[outcome.split(":")[0]] += 1  # the worker died before counting it
        findings.append(outcome)
        saved = out / f"finding-{len(findings):03d}"
        _save_finding(data, saved, outcome)
        print(f"FOUND {outcome} -> {saved}; {log_path} ends:", flush=True)
        print(_tail(log_text), flush=True)
    total = sum(counts.values())
    rate = total / fuzzing_seconds if fuzzing_seconds else 0.0
    print(
        f"{total} cases in {fuzzing_seconds:.0f} s ({rate:.1f}/s, TensorFlow start-up included), "
        f"{coverage}, corpus {len(list(corpus.iterdir()))} inputs, {len(findings)} findings"
    )
    for outcome, n in counts.most_common():
        print(f"  {n:5d}  {outcome}")
    return 1 if findings else 0


def _tail(log: str, lines: int = 30) -> str:
    return "\n".join("    " + line for line in log.splitlines()[-lines:])


def _last_coverage(log: str) -> str:
    """The "cov: N ft: M" of the last libFuzzer status line of a log."""
    for line in reversed(log.splitlines()):
        if line.startswith("#") and " cov: " in line:
            words = line.split()
            return f"cov {words[words.index('cov:') + 1]} ft {words[words.index('ft:') + 1]}"
    return ""


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
            outcome = work.run(build_case(case_dir, Path(tmp)), REPLAY_TIMEOUT)
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
    parser.add_argument("--worker-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args, libfuzzer_args = parser.parse_known_args()
    if args.worker_dir is not None:
        atheris_worker(args.worker_dir, libfuzzer_args)
        return 0
    python_path = [p for p in sys.path if p]
    if args.replay is not None:
        return replay(args.replay, python_path)
    print(f"fuzzing for {args.seconds:.0f} s, seed {args.seed}", flush=True)
    return fuzz(args.seconds, args.out, args.seed, python_path)


if __name__ == "__main__":
    sys.exit(main())
