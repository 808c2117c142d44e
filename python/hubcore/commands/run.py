"""``hubcore run MODULE --input FILE --output FILE``: batch inference with the C++ runtime.

Reads rows from ``.npy``/``.npz``, JSON lines, CSV or plain text lines (one string per line),
runs them through a signature in batches, and writes ``.npz`` or JSON lines. TensorFlow's Python
API is not imported. A progress bar (rows done, rows/s, ETA) shows on a terminal; a throughput
summary ends the run. Bad input stops the run with a message naming the line, and leaves no
output file. See hubcore.batch_io for the accepted layouts.
"""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a module's signature over an input file (batch inference)",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("module", help="path of a TF1 Hub module directory")
    p.add_argument("--input", "-i", required=True, help=".npy, .npz, .jsonl, .csv or text file")
    p.add_argument("--output", "-o", required=True, help=".npz or .jsonl file to write")
    p.add_argument("--signature", "-s", default=None, help="signature to run (default: 'default')")
    p.add_argument("--tags", nargs="*", default=[], metavar="TAG", help="graph variant tags")
    p.add_argument("--batch-size", "-b", type=int, default=64, help="rows per batch (64)")
    p.add_argument(
        "--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all cores)"
    )
    p.add_argument("--in-flight", type=int, default=2, help="batches run concurrently (default 2)")
    p.add_argument("--input-format", choices=["npy", "npz", "jsonl", "csv", "text"], default=None)
    p.add_argument("--output-format", choices=["npz", "jsonl"], default=None)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hubcore import batch_io
    from hubcore.commands import muted_native_stderr
    from hubcore.errors import InvalidArgumentError
    from hubcore.runner import Runner

    if args.batch_size < 1:
        raise InvalidArgumentError("--batch-size must be at least 1")
    with muted_native_stderr():
        runner = Runner(args.module, args.tags, args.signature, intra_op_threads=args.threads)
    sig = runner.signatures[runner.signature]
    source = batch_io.open_input(args.input, sig, args.input_format)
    writer = batch_io.open_output(args.output, args.output_format)
    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(total=source.total or None, unit=" rows", dynamic_ncols=True, leave=False)
    start = time.perf_counter()
    done = 0
    try:
        stream = runner.stream_batches(
            runner.signature, source.batches(args.batch_size), max_in_flight=args.in_flight
        )
        for n, outputs in stream:
            writer.write(outputs, n)
            done += n
            if progress is not None:
                progress.update(n)
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if progress is not None:
            progress.close()
    elapsed = time.perf_counter() - start
    if not args.quiet:
        rate = done / elapsed if elapsed > 0 else float("inf")
        print(
            f"hubcore run: {done} rows in {elapsed:.2f} s ({rate:,.0f} rows/s, batch size "
            f"{args.batch_size}) -> {args.output}",
            file=sys.stderr,
        )
    return 0
