"""The CLI as a Unix tool: it never destroys what it does not own (FIFOs, sockets, symlinks, the
input), streams stdin to stdout, stops quietly on a closed pipe, parses ``--tags`` without eating
positionals, documents every option and prints no TensorFlow start-up noise."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import stat
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import hubcore
from conftest import cli_command
from hubcore import cli
from hubcore.errors import InvalidArgumentError

DATA = Path(__file__).resolve().parent / "data"
X = np.arange(12, dtype=np.float32).reshape(3, 4) / 10


@pytest.fixture(scope="module")
def want() -> np.ndarray:
    return hubcore.Runner(DATA / "tiny")(X)


@pytest.fixture
def x_jsonl(tmp_path) -> Path:
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps({"x": row.tolist()}) + "\n" for row in X))
    return path


def run_handler(*argv: str) -> int:
    """Runs a command's handler directly, so a test sees the exception class main() would print."""
    args = cli.build_parser().parse_args([str(a) for a in argv])
    cli.finish_parsing(args)
    return args.handler(args)


def run_tiny_to_jsonl(src: Path, out: Path) -> int:
    return cli.main(
        [
            "run",
            str(DATA / "tiny"),
            "-i",
            str(src),
            "-o",
            str(out),
            "-q",
            "--output-format",
            "jsonl",
        ]
    )


def defaults(text: str) -> list[list[float]]:
    return [json.loads(line)["default"] for line in text.splitlines()]


# ---- never destroy what the CLI does not own ----------------------------------------------------


def test_fifo_output_is_written_in_place(tmp_path, x_jsonl, want):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    rc = run_tiny_to_jsonl(x_jsonl, fifo)
    reader.join(timeout=60)
    assert rc == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO, not a regular file
    np.testing.assert_allclose(defaults(received[0].decode()), want, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.fifo", "x.jsonl"]


def test_unix_socket_output_is_connected_to(tmp_path, x_jsonl, want):
    path = tmp_path / "out.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        while chunk := conn.recv(65536):
            received.extend(chunk)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    rc = run_tiny_to_jsonl(x_jsonl, path)
    thread.join(timeout=60)
    server.close()
    assert rc == 0 and stat.S_ISSOCK(os.lstat(path).st_mode)
    np.testing.assert_allclose(defaults(received.decode()), want, rtol=1e-5)


def test_symlinks_stay_links_and_their_targets_get_the_output(tmp_path, x_jsonl, want):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert cli.main(["run", str(DATA / "tiny"), "-i", str(x_jsonl), "-o", str(link), "-q"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_allclose(defaults(target.read_text()), want, rtol=1e-5)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the replaced file keeps its mode
    # A dangling link: its target is created, the link stays.
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "new.jsonl")
    assert cli.main(["run", str(DATA / "tiny"), "-i", str(x_jsonl), "-o", str(dangling)]) == 0
    assert dangling.is_symlink() and len(defaults((tmp_path / "new.jsonl").read_text())) == 3
    # A failed run leaves the old target content and no temporary file.
    target.write_text("old\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": [1, 2, 3, 4]}\n{"x": "nope"}\n')
    assert cli.main(["run", str(DATA / "tiny"), "-i", str(bad), "-o", str(link), "-b", "1"]) == 1
    assert target.read_text() == "old\n" and link.is_symlink()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_output_that_is_the_input_is_refused(tmp_path):
    src = tmp_path / "a.npz"
    np.savez(src, x=X)
    before = src.read_bytes()
    alias = tmp_path / "alias.npz"
    alias.symlink_to(src)
    for out in (src, alias):
        with pytest.raises(InvalidArgumentError) as e:
            run_handler("run", DATA / "tiny", "--input", src, "--output", out)
        assert type(e.value) is InvalidArgumentError and "is the input file" in str(e.value)
    assert src.read_bytes() == before


def test_directory_and_unwritable_outputs_fail_before_the_module_loads(tmp_path, x_jsonl):
    # "nowhere" is not a module: the output errors must come first.
    (tmp_path / "out.npz").mkdir()
    with pytest.raises(InvalidArgumentError) as e:
        run_handler("run", tmp_path / "nowhere", "-i", x_jsonl, "-o", tmp_path / "out.npz")
    assert type(e.value) is InvalidArgumentError and "is a directory" in str(e.value)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    probe = locked / "probe"
    try:
        probe.touch()  # root ignores the mode: use a directory that refuses new files to anyone
        probe.unlink()
        locked = Path("/sys")
    except PermissionError:
        pass
    with pytest.raises(InvalidArgumentError) as e:
        run_handler("run", tmp_path / "nowhere", "-i", x_jsonl, "-o", locked / "o.npz")
    assert type(e.value) is InvalidArgumentError
    assert str(locked / "o.npz") in str(e.value) and "ermission denied" in str(e.value)


# ---- pipes -----------------------------------------------------------------------------------


def test_stdin_to_stdout_streaming_and_a_closed_pipe():
    lines = ["hello world", "the cat sat", "zebra"]
    want = hubcore.Runner(DATA / "text_table")(lines)
    base = [*cli_command(), "run", str(DATA / "text_table"), "-i", "-", "-o", "-", "-q"]
    result = subprocess.run(
        base, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    np.testing.assert_allclose(defaults(result.stdout), want, rtol=1e-5)
    # `... | head -n 1`: the reader goes away after one line; the CLI stops quietly and early.
    with subprocess.Popen(
        [*base, "-b", "16"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        feeder = threading.Thread(target=_feed_forever, args=(proc.stdin,))
        feeder.start()
        assert json.loads(proc.stdout.readline())["default"]
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
        feeder.join(timeout=60)
        assert proc.stderr.read() == b""


def _feed_forever(stream) -> None:
    try:
        while True:
            stream.write(b"hello world\n" * 1000)
    except (BrokenPipeError, ValueError, OSError):
        pass
    try:
        stream.close()  # the flush fails on the closed pipe; the descriptor is closed anyway
    except OSError:
        pass


# ---- argument parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, module, out, tags",
    [
        (["--tags", "train", "M", "O"], "M", "O", ["train"]),  # the old spelling that failed
        (["M", "O", "--tags", "a,b"], "M", "O", ["a", "b"]),
        (["--tags", "a", "--tags", "b", "M", "O"], "M", "O", ["a", "b"]),
        (["M", "--tags", "a", "b", "O"], "M", "O", ["a", "b"]),
        (["M", "O", "--tags"], "M", "O", []),
        (["M", "O"], "M", "O", []),
    ],
)
@pytest.mark.parametrize("command", ["export-serving", "export-tf2"])
def test_tags_do_not_swallow_positionals(command, argv, module, out, tags):
    args = cli.build_parser().parse_args([command, *argv])
    cli.finish_parsing(args)
    assert (args.module, args.out, args.tags) == (module, out, tags)


def test_missing_positionals_and_bad_numbers_are_usage_errors(capsys):
    for argv in (
        ["export-serving", "--tags", "M"],
        ["run", "M", "-i", "x", "-o", "y", "--batch-size", "0"],
        ["run", "M", "-i", "x", "-o", "y", "--in-flight", "-5"],
        ["run", "M", "-i", "x", "-o", "y", "--threads", "-1"],
    ):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "required: MODULE, OUT" in err or "must be" in err, err


def test_run_with_tags_before_the_module(tmp_path):
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "o.npz"
    assert (
        cli.main(
            [
                "run",
                "--tags",
                "train",
                str(DATA / "batchnorm"),
                "-i",
                str(tmp_path / "x.npy"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    want = hubcore.Runner(DATA / "batchnorm", tags=["train"])(x)
    np.testing.assert_allclose(np.load(out)["default"], want, rtol=1e-5)


def _actions(parser: argparse.ArgumentParser, prefix: str = "hubcore"):
    """(name, action, parser) for every action of ``parser`` and its subcommands, recursively."""
    for action in parser._actions:
        yield f"{prefix} {action.dest}", action, parser
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{prefix} {name}")


def test_every_option_has_help_and_none_points_at_python_modules():
    parser = cli.build_parser()
    texts = [parser.description or ""]
    for name, action, sub in _actions(parser):
        assert action.help, f"{name} has no help text"
        texts += [action.help, sub.description or "", sub.epilog or ""]
    module_reference = re.compile(r"hubcore\.[a-z_]+|:mod:|\.py\b")
    assert not [t for t in texts if module_reference.search(t)]


# ---- no TensorFlow noise ------------------------------------------------------------------------


def test_no_tensorflow_noise_from_any_command(tmp_path, monkeypatch):
    def run(*argv: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        return subprocess.run(
            [*cli_command(), *argv], capture_output=True, text=True, timeout=300, env=env
        )

    example = run("example", "text-embedding", str(tmp_path / "m"))
    assert example.returncode == 0 and example.stderr == "", example.stderr
    served = run("export-serving", "--tags", "train", str(DATA / "batchnorm"), str(tmp_path / "s"))
    assert served.returncode == 0
    assert served.stderr.splitlines() == [
        f"hubcore export-serving: wrote SavedModel {tmp_path / 's'} (tag 'serve', "
        "'serving_default' = 'default')"
    ]
    shown = run("show", str(tmp_path / "m"))
    assert shown.returncode == 0 and shown.stderr == ""
    (tmp_path / "s.txt").write_text("hello world\n")
    ran = run("run", str(tmp_path / "m"), "-i", str(tmp_path / "s.txt"), "-o", "-", "-q")
    assert ran.returncode == 0 and ran.stderr == "" and len(defaults(ran.stdout)) == 1
    monkeypatch.setenv("HUBCORE_CACHE_DIR", str(tmp_path / "cache"))
    cached = run("cache", "list")
    assert cached.returncode == 0 and cached.stderr == ""
    failed = run("show", str(tmp_path / "nowhere"))
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"hubcore show: error: {tmp_path / 'nowhere'}: no such file or directory"
    ]


def test_help_runs_without_a_module():
    result = subprocess.run([*cli_command(), "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--in-flight" in result.stdout and result.stderr == ""


def test_own_descriptor_paths_write_through_the_descriptor(tmp_path, x_jsonl, want):
    # `hubcore run ... -o /proc/self/fd/1 >> log` appends to the log: nothing is truncated or
    # replaced. (/dev/stdout takes the same path; the test does not write to the real one.)
    log = tmp_path / "log.jsonl"
    log.write_text('{"default": "earlier line"}\n')
    with open(log, "a") as stdout:
        argv = ["run", str(DATA / "tiny"), "-i", str(x_jsonl), "-o", "/proc/self/fd/1", "-q"]
        result = subprocess.run(
            [*cli_command(), *argv, "--output-format", "jsonl"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    earlier, *rows = defaults(log.read_text())
    assert earlier == "earlier line"
    np.testing.assert_allclose(rows, want, rtol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl", "x.jsonl"]


def test_a_failed_write_is_a_one_line_error(x_jsonl):
    # /dev/full takes opens and refuses every write with ENOSPC, like a full disk.
    with pytest.raises(InvalidArgumentError) as e:
        run_handler(
            "run", DATA / "tiny", "-i", x_jsonl, "-o", "/dev/full", "--output-format", "jsonl"
        )
    assert type(e.value) is InvalidArgumentError
    assert str(e.value) == "Cannot write output /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
