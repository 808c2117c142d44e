"""``hubcore run MODULE --input FILE --output FILE``: batch inference with the C++ runtime.

Reads rows from ``.npy``/``.npz``, JSON lines, CSV or plain text lines (one string per line),
runs them through a signature in batches, and writes ``.npz`` or JSON lines. ``-`` as input or
output means standard input or output, streamed (``cat x.txt | hubcore run M -i - -o - | head``).
TensorFlow's Python API is not imported. A progress bar (rows done, rows/s, ETA) shows on a
terminal; a throughput summary ends the run. Problems with the files are reported before the
module loads; bad rows stop the run with a message naming the line. A regular output file appears
only when the run succeeds; pipes, devices and symlinks are written in place, never replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator

from hubcore.commands import add_module_argument, add_tags_option, description
from hubcore.errors import InvalidArgumentError

__all__ = ["add_parser", "run"]


@contextlib.contextmanager
def _writing(output: str) -> Iterator[None]:
    """Turns a failed write (a full disk, a vanished mount) into a one-line error naming the
    output; a closed pipe stays BrokenPipeError, which ends the run quietly."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as e:
        raise InvalidArgumentError(f"Cannot write output {output}: {e.strerror or e}") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a module's signature over an input file (batch inference)",
        description=description(__doc__),
        usage="%(prog)s [options] MODULE --input FILE --output FILE",
    )
    add_module_argument(p)
    p.add_argument(
        "--input",
        "-i",
        required=True,
        metavar="FILE",
        help=".npy, .npz, .jsonl, .csv or text file; '-' reads standard input (text, jsonl, csv)",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="FILE",
        help=".npz or .jsonl file to write; '-' writes standard output (JSON lines by default)",
    )
    p.add_argument("--signature", "-s", default=None, help="signature to run (default: 'default')")
    add_tags_option(p, ["module"])
    p.add_argument(
        "--batch-size", "-b", type=_positive, default=64, help="rows per batch (default 64)"
    )
    p.add_argument(
        "--threads",
        type=_non_negative,
        default=None,
        help="TensorFlow intra-op threads (default or 0: all cores)",
    )
    p.add_argument(
        "--in-flight",
        type=_positive,
        default=2,
        help="batches run concurrently, overlapping reading with compute (default 2)",
    )
    p.add_argument(
        "--input-format",
        choices=["npy", "npz", "jsonl", "csv", "text"],
        default=None,
        help="input format (default: from the file extension; text for '-')",
    )
    p.add_argument(
        "--output-format",
        choices=["npz", "jsonl"],
        default=None,
        help="output format (default: from the file extension; jsonl for '-')",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    p.add_argument(
        "--safe-mode",
        action="store_true",
        help="refuse a module using ops outside the pure-compute allowlist (docs/security.md)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hubcore import batch_io
    from hubcore.output_file import refuse_same_file
    from hubcore.runner import Runner

    # Everything about the files is checked before the module loads.
    refuse_same_file(args.input, args.output)
    output_format = batch_io.output_format(args.output, args.output_format)
    source = batch_io.open_input(args.input, args.input_format)
    out = batch_io.open_output(args.output, output_format)
    progress = None
    done = 0
    try:
        runner = Runner(
            args.module,
            args.tags,
            args.signature,
            intra_op_threads=args.threads,
            safe_mode=args.safe_mode,
        )
        signature = runner.resolve_signature(args.signature)
        sig = runner.signatures[signature]
        source.prepare(sig)
        writer = batch_io.output_writer(out, output_format, sig.outputs)
        if not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            progress = tqdm(total=source.total, unit=" rows", dynamic_ncols=True, leave=False)
        start = time.perf_counter()
        stream = runner.stream_batches(
            signature, source.batches(args.batch_size), max_in_flight=args.in_flight
        )
        for n, outputs in stream:
            with _writing(args.output):
                writer.write(outputs, n)
            done += n
            if progress is not None:
                progress.update(n)
        with _writing(args.output):
            writer.commit()
    except BaseException:
        out.abort()
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
