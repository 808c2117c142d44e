"""Benchmark: hubcore.load and hubcore.KerasLayer against tensorflow_hub 0.16's hub.load.

Side by side on the same TF1 Hub modules (the `tiny` and `text_table` fixtures and the large
module of bench_module.py, ~21k nodes, built once under --dir):

  load      time to load the module and get the first result at batch 1, each library in a
            fresh process (fastest of --loads processes, interleaved; `import tensorflow`,
            tensorflow_hub, keras and hubcore excluded): hub.load, hubcore.load, hubcore.Runner,
            hubcore.KerasLayer.
  call      rows/s of the eager `default` signature at batch 1 and 512 in this process (from
            the fastest of many short windows taken in turn):
            hub.load(...).signatures["default"](**tensors), hubcore.load(...).signatures[...]
            and obj(tensors), and hubcore.Runner(path)(arrays); outputs are checked equal first.
  fit       one Keras 3 `train_on_batch` step of a Dense(1) head on hubcore.KerasLayer (frozen,
            and trainable) against the same head on precomputed features.

Targets: hubcore.load call throughput >= hub.load's; hubcore.load time <= 0.5x hub.load's.

tensorflow_hub 0.16 must be importable next to hubcore (it is never a hubcore dependency), e.g.
  python -m venv --system-site-packages /tmp/hub016
  /tmp/hub016/bin/pip install tensorflow-hub==0.16.1
  HUBCORE_BUILD_DIR=build/dev /tmp/hub016/bin/python bench/bench_tf2.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dev_build import run_child, use_build_dir
from bench_module import VOCAB, WIDTH
from bench_module import build as build_large_module
from bench_runner import DATA, make_inputs

LARGE = "large"
LOADERS = ("hub.load", "hubcore.load", "hubcore.Runner", "hubcore.KerasLayer")


def module_path(name: str, large_dir: str) -> str:
    return large_dir if name == LARGE else str(DATA / name)


def make_feeds(name: str, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of the module's `default` signature, by input name."""
    if name == LARGE:
        return {
            "x": rng.standard_normal([batch, WIDTH]).astype(np.float32),
            "ids": rng.integers(0, VOCAB, [batch]).astype(np.int64),
        }
    key, x = make_inputs(name, batch, rng)
    return {key: x}


def as_tensors(feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    import tensorflow as tf

    return {key: tf.constant(value) for key, value in feeds.items()}


def has_hubcore_load() -> bool:
    import hubcore

    return hasattr(hubcore, "load")


def open_callable(loader: str, path: str) -> Callable[[dict[str, np.ndarray]], Any]:
    """Loads `path` with `loader`; returns a function from input arrays to the default output."""
    if loader == "hub.load":
        import tensorflow_hub as hub

        signature = hub.load(path).signatures["default"]
        return lambda feeds: signature(**as_tensors(feeds))["default"]
    import hubcore

    if loader == "hubcore.load":
        signature = hubcore.load(path).signatures["default"]
        return lambda feeds: signature(**as_tensors(feeds))["default"]
    if loader == "hubcore.Runner":
        runner = hubcore.Runner(path)
        return lambda feeds: runner(feeds)
    if loader == "hubcore.KerasLayer":
        layer = hubcore.KerasLayer(path)
        return lambda feeds: layer(as_tensors(feeds))
    raise SystemExit(f"unknown loader {loader!r}")


def _load_child(loader: str, name: str, path: str) -> dict[str, float]:
    """One cold load in this (fresh) process: load time and load + first result."""
    import keras  # noqa: F401  (imports excluded from the figures)
    import tensorflow as tf

    import hubcore

    if loader == "hub.load":
        import tensorflow_hub  # noqa: F401
    else:
        getattr(hubcore, loader.split(".", 1)[1])  # imports the lazily loaded submodule
    tf.constant(0.0).numpy()  # the process's eager context, whichever library comes first
    feeds = make_feeds(name, 1, np.random.default_rng(0))
    start = time.perf_counter()
    call = open_callable(loader, path)
    loaded = time.perf_counter()
    np.asarray(call(feeds))
    first = time.perf_counter()
    return {"load": loaded - start, "first_result": first - start}


def cold_loads(loader: str, name: str, path: str) -> dict[str, float]:
    args = ["--child", loader, "--modules", name, "--dir", path]
    return run_child(__file__, args, f"{loader} on {name}")


def load_table(modules: list[str], large_dir: str, repeat: int, loaders: list[str]) -> None:
    print("\n| module | measure | " + " | ".join(loaders) + " | hubcore.load / hub.load |")
    print("|---|---|" + "---|" * (len(loaders) + 1))
    for name in modules:
        runs: dict[str, list[dict[str, float]]] = {loader: [] for loader in loaders}
        for _ in range(repeat):  # interleaved, so load from elsewhere hits every column alike
            for loader in loaders:
                runs[loader].append(cold_loads(loader, name, module_path(name, large_dir)))
        for measure in ("load", "first_result"):
            # The fastest process: the one least disturbed by other load on the machine.
            fastest = {k: min(r[measure] for r in v) for k, v in runs.items()}
            cells = " | ".join(f"{fastest[k]:.3f} s" for k in loaders)
            ratio = (
                f"{fastest['hubcore.load'] / fastest['hub.load']:.2f}x"
                if "hubcore.load" in fastest and "hub.load" in fastest
                else "n/a"
            )
            label = "load" if measure == "load" else "load + 1st result"
            print(f"| {name} | {label} | {cells} | {ratio} |", flush=True)


def interleaved_rates(
    calls: dict[str, Callable[[], Any]], rows: int, seconds: float, window: float = 0.02
) -> dict[str, float]:
    """Rows/s of each call from its fastest short window (>= `window` seconds of calls), windows
    taken in turn for every call until `seconds` have passed, after a warm-up. Short windows in
    turn give every call the same chance of running undisturbed on a loaded machine."""
    for fn in calls.values():
        for _ in range(3):
            fn()
    fastest = dict.fromkeys(calls, float("inf"))
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for label, fn in calls.items():
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= window:
                    break
            fastest[label] = min(fastest[label], elapsed / n)
    return {label: rows / t for label, t in fastest.items()}


def call_table(modules: list[str], large_dir: str, seconds: float) -> None:
    import tensorflow_hub as hub

    import hubcore

    rng = np.random.default_rng(0)
    columns = ["hub.load sig", "hubcore.load sig", "hubcore.load obj()", "Runner"]
    print("\n| module | batch | " + " | ".join(f"{c} rows/s" for c in columns), end="")
    print(" | hubcore.load sig / hub.load |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    for name in modules:
        path = module_path(name, large_dir)
        for batch in (1, 512):
            feeds = make_feeds(name, batch, rng)
            tensors = as_tensors(feeds)
            runner = hubcore.Runner(path)
            want = np.asarray(runner(feeds))
            calls: dict[str, Callable[[], Any]] = {}
            calls["Runner"] = lambda runner=runner, feeds=feeds: runner(feeds)
            hub_sig = hub.load(path).signatures["default"]
            calls["hub.load sig"] = lambda s=hub_sig, t=tensors: s(**t)["default"]
            if has_hubcore_load():
                obj = hubcore.load(path)
                sig = obj.signatures["default"]
                calls["hubcore.load sig"] = lambda s=sig, t=tensors: s(**t)["default"]
                calls["hubcore.load obj()"] = lambda o=obj, t=tensors: o(t)
            for fn in calls.values():
                np.testing.assert_allclose(np.asarray(fn()), want, rtol=1e-4, atol=1e-5)
            rates = interleaved_rates(calls, batch, seconds * len(calls))
            cells = " | ".join(f"{rates[c]:,.0f}" if c in rates else "n/a" for c in columns)
            ratio = (
                f"{rates['hubcore.load sig'] / rates['hub.load sig']:.2f}"
                if "hubcore.load sig" in rates
                else "n/a"
            )
            print(f"| {name} | {batch} | {cells} | {ratio} |", flush=True)


def step_times(steps: dict[str, Callable[[], Any]], count: int) -> dict[str, float]:
    """Median seconds of one call of each step, taken in turn, after a warm-up (the first
    steps trace the tf.functions)."""
    for step in steps.values():
        for _ in range(3):
            step()
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(count):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - start)
    return {label: statistics.median(t) for label, t in times.items()}


def fit_table(modules: list[str], large_dir: str, steps: int, batch: int) -> None:
    import keras

    import hubcore

    if not hasattr(hubcore, "KerasLayer"):
        print("\n(hubcore.KerasLayer not available: no Keras fit figures)")
        return
    rng = np.random.default_rng(0)
    print(f"\n| module | Keras train_on_batch, batch {batch} | ms/step | vs precomputed features |")
    print("|---|---|---|---|")
    for name in modules:
        path = module_path(name, large_dir)
        feeds = make_feeds(name, batch, rng)
        x = feeds if len(feeds) > 1 else next(iter(feeds.values()))
        target = rng.standard_normal([batch, 1]).astype(np.float32)

        def head_on_layer(trainable: bool, path: str = path, feeds=feeds) -> keras.Model:
            inputs = {
                key: keras.Input(
                    shape=value.shape[1:],
                    dtype="string" if value.dtype == object else value.dtype.name,
                    name=key,
                )
                for key, value in feeds.items()
            }
            if len(inputs) == 1:
                inputs = next(iter(inputs.values()))
            features = hubcore.KerasLayer(path, trainable=trainable)(inputs)
            return keras.Model(inputs, keras.layers.Dense(1)(features))

        precomputed = np.asarray(hubcore.KerasLayer(path)(as_tensors(feeds)))
        head = keras.Sequential([keras.Input(precomputed.shape[1:]), keras.layers.Dense(1)])
        models = {"Dense(1) on precomputed features": (head, precomputed)}
        for trainable in (False, True):
            label = f"Dense(1) on KerasLayer(trainable={trainable})"
            models[label] = (head_on_layer(trainable), x)
        for model, _ in models.values():
            model.compile(optimizer="sgd", loss="mse")
        times = step_times(
            {
                label: (lambda m=model, x=inputs, y=target: m.train_on_batch(x, y))
                for label, (model, inputs) in models.items()
            },
            steps,
        )
        base = times["Dense(1) on precomputed features"]
        for label, t in times.items():
            print(f"| {name} | {label} | {t * 1e3:.2f} | {t / base:.2f}x |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", default=["tiny", "text_table", LARGE])
    parser.add_argument("--dir", default="/tmp/hubcore_bench_module", help="the large module")
    parser.add_argument("--layers", type=int, default=100, help="blocks of the large module")
    parser.add_argument("--loads", type=int, default=3, help="fresh processes per load figure")
    parser.add_argument("--seconds", type=float, default=1.0, help="time per call figure")
    parser.add_argument("--steps", type=int, default=20, help="timed Keras steps")
    parser.add_argument("--fit-batch", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], choices=["load", "call", "fit"])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    use_build_dir()
    if args.child:
        name = args.modules[0]
        result = _load_child(args.child, name, module_path(name, args.dir))
        print("RESULT " + json.dumps(result))
        return 0
    try:
        import tensorflow_hub as hub
    except ImportError as e:
        raise SystemExit("tensorflow_hub 0.16 must be importable (see the docstring)") from e
    import keras
    import tensorflow as tf

    import hubcore

    if LARGE in args.modules and not os.path.exists(os.path.join(args.dir, "tfhub_module.pb")):
        build_large_module(args.dir, args.layers)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, tensorflow_hub {hub.__version__}, "
        f"hubcore {hubcore.__version__}"
    )
    loaders = [
        loader
        for loader in LOADERS
        if loader == "hub.load" or hasattr(hubcore, loader.split(".", 1)[1])
    ]
    if "load" not in args.skip:
        load_table(args.modules, args.dir, args.loads, loaders)
    if "call" not in args.skip:
        call_table(args.modules, args.dir, args.seconds)
    if "fit" not in args.skip:
        fit_table(args.modules, args.dir, args.steps, args.fit_batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
