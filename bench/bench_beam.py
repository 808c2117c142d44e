"""Benchmark: what Apache Beam's RunInference with hubcore.beam.ModelHandler adds per element.

On the same rows of the `text_table` fixture (short sentences, an 8-float embedding each), in one
process, timing whole passes over all rows (best of --repeat):

  runner               hubcore.Runner(path)(batch) on numpy batches of --batch-size rows
  handler (no Beam)    ModelHandler's own work without Beam: LoadedSignature.predict(rows) per
                       batch (assembling rows into a batch, the run, splitting outputs into rows)
  rows, no model       DirectRunner: Create(rows) | BatchElements | one output per row
  rows, RunInference   DirectRunner: Create(rows) | RunInference(ModelHandler(path))
  batches, no model    DirectRunner: Create(numpy batches of --batch-size rows) | Map
  batches, RunInference  Create(batches) | RunInference(ModelHandler(path, inputs_are_batches=True))

and prints rows/s, µs per row, and for each RunInference pipeline what it costs per row beyond the
same pipeline without a model (Beam's RunInference machinery plus the module's work), next to the
Runner's own µs per row.

Usage: python bench/bench_beam.py [--rows 20000] [--batch-size 256] [--repeat 5] [--module DIR]
(from a checkout without an installed hubcore: HUBCORE_BUILD_DIR=build/dev python bench/...)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

ROOT = Path(__file__).resolve().parent.parent
WORDS = "the cat sat on a mat hello world quick brown fox jumps over lazy dog zebra".split()


def best_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_pipeline(build: Callable[[beam.Pipeline], beam.PCollection]) -> None:
    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1)
    with beam.Pipeline(options=options) as p:
        _ = build(p) | "Count" >> beam.combiners.Count.Globally()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--module", default=str(ROOT / "tests" / "data" / "text_table"))
    args = parser.parse_args()
    if os.environ.get("HUBCORE_BUILD_DIR"):  # python/hubcore with that build's extension
        sys.path.insert(0, str(ROOT / "tests"))
        import conftest  # noqa: F401
    import hubcore
    import hubcore.beam

    n, size = args.rows, args.batch_size

    rng = np.random.default_rng(0)
    rows = [" ".join(rng.choice(WORDS, size=rng.integers(1, 12))) for _ in range(n)]
    batches = [np.array(rows[i : i + size], dtype=object) for i in range(0, n, size)]
    runner = hubcore.Runner(args.module)
    model = hubcore.beam.ModelHandler(args.module).load_model()
    handler = hubcore.beam.ModelHandler(args.module, min_batch_size=size, max_batch_size=size)
    batch_handler = hubcore.beam.ModelHandler(args.module, inputs_are_batches=True)

    def rows_no_model(p: beam.Pipeline) -> beam.PCollection:
        return (
            p
            | beam.Create(rows)
            | beam.BatchElements(min_batch_size=size, max_batch_size=size)
            | beam.FlatMap(lambda batch: batch)
        )

    cases: list[tuple[str, Callable[[], object]]] = [
        ("runner", lambda: [runner(b) for b in batches]),
        ("handler (no Beam)", lambda: [model.predict(list(b)) for b in batches]),
        ("rows, no model", lambda: run_pipeline(rows_no_model)),
        (
            "rows, RunInference",
            lambda: run_pipeline(lambda p: p | beam.Create(rows) | RunInference(handler)),
        ),
        (
            "batches, no model",
            lambda: run_pipeline(lambda p: p | beam.Create(batches) | beam.Map(lambda b: b)),
        ),
        (
            "batches, RunInference",
            lambda: run_pipeline(lambda p: p | beam.Create(batches) | RunInference(batch_handler)),
        ),
    ]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, apache-beam {beam.__version__}, hubcore "
        f"{hubcore.__version__}; {n} rows of {os.path.basename(args.module)}, batches of {size}, "
        f"best of {args.repeat}"
    )
    print("| path | seconds | rows/s | µs per row | RunInference beyond no model, µs per row |")
    print("|---|---|---|---|---|")
    timings = {name: best_time(fn, args.repeat) for name, fn in cases}
    for name, seconds in timings.items():
        extra = ""
        if name.endswith("RunInference"):
            baseline = timings[name.replace("RunInference", "no model")]
            extra = f"{(seconds - baseline) / n * 1e6:.1f}"
        per_row = seconds / n * 1e6
        print(f"| {name} | {seconds:.3f} | {n / seconds:,.0f} | {per_row:.1f} | {extra} |")


if __name__ == "__main__":
    main()
