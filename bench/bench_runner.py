"""Benchmark: rows/s of hubcore.Runner against a Python session loop and plain TensorFlow.

For each module (the `tiny` and `text_table` fixtures by default) and batch size (1, 64, 512),
on the same inputs in one process:

  runner    hubcore.Runner(path)(batch)                      (C++ runtime, no graph building)
  module    hubcore.Module(path) applied once in a tf.compat.v1 graph, then a
            tf.compat.v1.Session.run loop feeding the batch    ("n/a" if hubcore.Module fails)
  plain TF  tf.compat.v1.saved_model.loader.load(sess, [], path) + tables initializer, then a
            Session.run loop on the signature tensors. For modules with assets the v1 loader
            leaves the asset paths unresolved ("SAVEDMODEL-ASSET"), so those are imported with
            tf.compat.v1.train.import_meta_graph + Saver.restore instead (same graph).

and prints runner/plainTF and runner/module ratios. Targets: runner/plainTF >= 0.98 at batch
512; runner >= 2x the Python session loop at batch 1 on `tiny`. A second table measures
Runner.stream_batches (batches in flight) on the text module.

Usage: python bench/bench_runner.py [--seconds 1.0] [--modules tiny text_table]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
sys.path.insert(0, str(ROOT / "tests"))  # plain_tf: the plain-TensorFlow reference
WORDS = "the cat sat on a mat hello world quick brown fox jumps over lazy dog zebra".split()


def make_inputs(name: str, batch: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(input key, batch array) for the module's default signature."""
    if name == "text_table":
        sentences = [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(batch)]
        return "default", np.array([s.encode() for s in sentences], dtype=object)
    if name == "tiny":
        return "x", rng.normal(size=(batch, 4)).astype(np.float32)
    raise SystemExit(f"no input generator for module {name!r}")


def rate(fn: Callable[[], Any], rows: int, seconds: float) -> float:
    """Rows per second of `fn` (one call = `rows` rows), best of 3 windows after a warm-up."""
    for _ in range(3):
        fn()
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / 3:
                break
        best = max(best, n * rows / elapsed)
    return best


def plain_tf_fn(name: str, key: str, x: np.ndarray) -> tuple[Callable[[], Any], str]:
    """A Session.run loop body on the module's default signature, and how it was loaded."""
    import tensorflow as tf

    from plain_tf import ImportedVariant

    graph = tf.Graph()
    sess = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(sess, [], str(DATA / name))
            sess.run(tf.compat.v1.tables_initializer())
            sig = meta.signature_def["default"]
            feed = graph.get_tensor_by_name(sig.inputs[key].name)
            fetch = graph.get_tensor_by_name(sig.outputs["default"].name)
            sess.run(fetch, {feed: x})
        return (lambda: sess.run(fetch, {feed: x})), "loader.load"
    except Exception:
        sess.close()
    variant = ImportedVariant(DATA / name)
    sess = tf.compat.v1.Session(graph=variant.graph)
    variant.restore(sess)
    sig = variant.signature("default")
    feed_tensor = variant.tensor(sig.inputs[key])
    fetch = variant.tensor(sig.outputs["default"])
    return (lambda: sess.run(fetch, {feed_tensor: x})), "import_meta_graph"


def module_fn(name: str, x: np.ndarray) -> Callable[[], Any] | None:
    import tensorflow as tf

    try:
        import hubcore

        graph = tf.Graph()
        with graph.as_default():
            m = hubcore.Module(str(DATA / name))
            dtype = tf.string if x.dtype == object else tf.as_dtype(x.dtype)
            ph = tf.compat.v1.placeholder(dtype, [None, *x.shape[1:]])
            out = m(ph)
            init = [tf.compat.v1.global_variables_initializer(), tf.compat.v1.tables_initializer()]
        sess = tf.compat.v1.Session(graph=graph)
        sess.run(init)
        return lambda: sess.run(out, {ph: x})
    except Exception as e:
        print(
            f"  (hubcore.Module unavailable for {name}: {type(e).__name__}: {e})", file=sys.stderr
        )
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", default=["tiny", "text_table"])
    parser.add_argument("--batches", nargs="*", type=int, default=[1, 64, 512])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import hubcore

    rng = np.random.default_rng(0)
    loaders: set[str] = set()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}"
    )
    header = (
        "module",
        "batch",
        "runner rows/s",
        "module rows/s",
        "plainTF rows/s",
        "runner/plainTF",
        "runner/module",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in args.modules:
        runner = hubcore.Runner(DATA / name)
        for batch in args.batches:
            key, x = make_inputs(name, batch, rng)
            want = runner({key: x})
            r = rate(lambda runner=runner, key=key, x=x: runner({key: x}), batch, args.seconds)
            plain, how = plain_tf_fn(name, key, x)
            loaders.add(f"{name}: {how}")
            np.testing.assert_allclose(plain(), want, rtol=1e-5)
            p = rate(plain, batch, args.seconds)
            mod = module_fn(name, x)
            m = rate(mod, batch, args.seconds) if mod is not None else None
            m_text = f"{m:,.0f}" if m else "n/a"
            ratio_m = f"{r / m:.2f}" if m else "n/a"
            print(
                f"| {name} | {batch} | {r:,.0f} | {m_text} | {p:,.0f} | {r / p:.2f} | {ratio_m} |",
                flush=True,
            )

    print(f"\nplain TF loaded with: {', '.join(sorted(loaders))}")

    # Batches in flight (what `hubcore run --in-flight` uses), streaming 20k sentences.
    print()
    print("| stream (text_table, 20000 rows) | batch | in flight | rows/s |")
    print("|---|---|---|---|")
    runner = hubcore.Runner(DATA / "text_table")
    _, rows = make_inputs("text_table", 20000, rng)
    for batch in (64, 512):
        for in_flight in (1, 2, 4):

            def feeds(batch: int = batch):
                for i in range(0, len(rows), batch):
                    yield i, {"default": [rows[i : i + batch]]}

            start = time.perf_counter()
            for _ in runner.stream_batches("default", feeds(), max_in_flight=in_flight):
                pass
            elapsed = time.perf_counter() - start
            print(f"| | {batch} | {in_flight} | {len(rows) / elapsed:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
