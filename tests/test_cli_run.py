"""``hubcore run``: every input format, both output formats, and bad inputs that leave no output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore.cli import build_parser, finish_parsing, main
from hubcore.errors import InvalidArgumentError

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def tiny_x() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(11, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_want(tiny_x) -> dict:
    return hubcore.Runner(DATA / "tiny")(tiny_x, as_dict=True)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["run", *map(str, argv)])
    return rc, capsys.readouterr().err


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_inputs(tmp_path: Path, x: np.ndarray) -> dict[str, Path]:
    files = {
        "npy": tmp_path / "x.npy",
        "npz": tmp_path / "x.npz",
        "jsonl": tmp_path / "x.jsonl",
        "csv": tmp_path / "x.csv",
    }
    np.save(files["npy"], x)
    np.savez(files["npz"], x=x)
    files["jsonl"].write_text("".join(json.dumps({"x": r.tolist()}) + "\n" for r in x))
    header = ",".join(f"x[{i}]" for i in range(4))
    files["csv"].write_text(
        header + "\n" + "".join(",".join(map(repr, r.tolist())) + "\n" for r in x)
    )
    return files


@pytest.mark.parametrize("fmt", ["npy", "npz", "jsonl", "csv"])
def test_each_numeric_input_format(capsys, tmp_path, tiny_x, tiny_want, fmt):
    src = write_inputs(tmp_path, tiny_x)[fmt]
    rc, err = run_cli(
        capsys, DATA / "tiny", "--input", src, "--output", tmp_path / "o.npz", "--batch-size", "4"
    )
    assert rc == 0, err
    assert "11 rows in" in err and "rows/s" in err
    out = np.load(tmp_path / "o.npz")
    np.testing.assert_allclose(out["default"], tiny_want["default"], rtol=1e-5)
    np.testing.assert_allclose(out["sum"], tiny_want["sum"], rtol=1e-5)
    rc, err = run_cli(
        capsys,
        DATA / "tiny",
        "-i",
        src,
        "-o",
        tmp_path / "o.jsonl",
        "-b",
        "3",
        "--in-flight",
        "1",
        "--threads",
        "1",
    )
    assert rc == 0, err
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert len(rows) == 11
    np.testing.assert_allclose([r["default"] for r in rows], tiny_want["default"], rtol=1e-5)


def test_golden_npz_with_input_prefixed_keys(capsys, tmp_path):
    golden = np.load(DATA / "tiny.golden.npz")
    rc, err = run_cli(
        capsys,
        DATA / "tiny",
        "-i",
        DATA / "tiny.golden.npz",
        "-o",
        tmp_path / "o.npz",
        "-s",
        "encode",
    )
    assert rc == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "o.npz")["default"], golden["encode.default"], rtol=1e-5
    )


def test_text_lines_on_the_text_module(capsys, tmp_path):
    # (An empty sentence last in a batch would shrink that batch's embedding: the module's
    # embedding_lookup_sparse only returns rows up to the last one with a token.)
    lines = ["hello world", "", "the cat sat on the mat", "zebra"]
    src = tmp_path / "sentences.txt"
    src.write_text("\n".join(lines) + "\n")
    want = hubcore.Runner(DATA / "text_table")(lines, as_dict=True)
    rc, err = run_cli(capsys, DATA / "text_table", "-i", src, "-o", tmp_path / "o.npz", "-b", "3")
    assert rc == 0, err
    out = np.load(tmp_path / "o.npz")
    np.testing.assert_allclose(out["default"], want["default"], rtol=1e-5)
    np.testing.assert_array_equal(out["num_tokens"], want["num_tokens"])
    # Sparse string output as JSON lines: one object per sentence.
    rc, err = run_cli(
        capsys,
        DATA / "text_table",
        "-i",
        src,
        "-o",
        tmp_path / "t.jsonl",
        "-s",
        "tokens",
        "-b",
        "2",
    )
    assert rc == 0, err
    rows = read_jsonl(tmp_path / "t.jsonl")
    assert [r["default"]["values"] for r in rows] == [line.split() for line in lines]
    # ... and as .npz, merged across batches.
    rc, err = run_cli(
        capsys, DATA / "text_table", "-i", src, "-o", tmp_path / "t.npz", "-s", "tokens", "-b", "2"
    )
    assert rc == 0, err
    t = np.load(tmp_path / "t.npz")
    assert t["default.values"].tolist() == [w.encode() for line in lines for w in line.split()]
    assert t["default.indices"][:, 0].tolist() == [0, 0, 2, 2, 2, 2, 2, 2, 3]
    assert t["default.dense_shape"].tolist() == [4, 6]


def test_sparse_and_ragged_inputs_from_json_lines(capsys, tmp_path):
    src = tmp_path / "rt.jsonl"
    src.write_text('{"rt": [1.0, 2.0]}\n[]\n[3.5, 1.5, 1.0]\n')
    rc, err = run_cli(capsys, DATA / "ragged_in", "-i", src, "-o", tmp_path / "o.jsonl", "-b", "2")
    assert rc == 0, err
    assert [r["default"] for r in read_jsonl(tmp_path / "o.jsonl")] == [3.0, 0.0, 6.0]
    src = tmp_path / "sp.jsonl"
    src.write_text('{"indices": [[1]], "values": [2.0]}\n[0, 0, 0, 0, 0, 1.0]\n')
    rc, err = run_cli(capsys, DATA / "sparse_in", "-i", src, "-o", tmp_path / "s.npz")
    assert rc == 0, err
    runner = hubcore.Runner(DATA / "sparse_in")
    want = runner(([[0, 1], [1, 5]], [2.0, 1.0], [2, 6]))
    np.testing.assert_allclose(np.load(tmp_path / "s.npz")["default"], want, rtol=1e-5)


BAD_INPUTS = {
    "wrong_dtype.jsonl": (
        '{"x": [1, 2, 3, 4]}\n{"x": [1, 2, "three", 4]}\n',
        ":2:",
        "expects float32",
    ),
    "ragged_rows.jsonl": (
        '{"x": [1, 2, 3, 4]}\n{"x": [1, 2, 3, 4]}\n{"x": [1, 2, 3]}\n',
        ":3:",
        "shape (4,)",
    ),
    "missing_key.jsonl": ('{"x": [1, 2, 3, 4]}\n{"y": [1, 2, 3, 4]}\n', ":2:", "'y'"),
    "bad_json.jsonl": ('{"x": [1, 2, 3, 4]}\n{"x": [1, 2\n', ":2:", "invalid JSON"),
    "missing_column.csv": ("a,b,c,d\n1,2,3,4\n", ":1:", "missing column 'x'"),
    "ragged_rows.csv": ("x[0],x[1],x[2],x[3]\n1,2,3,4\n5,6,7\n", ":3:", "expected 4 fields"),
    "wrong_dtype.csv": ("x[0],x[1],x[2],x[3]\n1,2,3,4\n5,6,seven,8\n", ":3:", "expects float32"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
@pytest.mark.parametrize("out_name", ["o.npz", "o.jsonl"])
def test_bad_input_names_the_line_and_leaves_no_output(capsys, tmp_path, name, out_name):
    text, line, message = BAD_INPUTS[name]
    src = tmp_path / name
    src.write_text(text)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # batch size 1: the good first rows have already been run and written when the error hits.
    rc, err = run_cli(capsys, DATA / "tiny", "-i", src, "-o", out_dir / out_name, "-b", "1")
    assert rc == 1
    assert f"{name}{line}" in err and message in err, err
    assert list(out_dir.iterdir()) == []


def test_bad_array_files(capsys, tmp_path):
    np.savez(tmp_path / "wrong_key.npz", y=np.zeros((2, 4), np.float32))
    rc, err = run_cli(
        capsys, DATA / "tiny", "-i", tmp_path / "wrong_key.npz", "-o", tmp_path / "o.npz"
    )
    assert rc == 1 and "missing array for input 'x'" in err
    np.save(tmp_path / "strings.npy", np.array([["a", "b", "c", "d"]]))
    rc, err = run_cli(
        capsys, DATA / "tiny", "-i", tmp_path / "strings.npy", "-o", tmp_path / "o.npz"
    )
    assert rc == 1 and "strings.npy: array 'x' expects float32, got strings" in err
    np.save(tmp_path / "wide.npy", np.zeros((3, 5), np.float32))
    rc, err = run_cli(capsys, DATA / "tiny", "-i", tmp_path / "wide.npy", "-o", tmp_path / "o.npz")
    assert rc == 1 and "(3, 5)" in err
    assert not (tmp_path / "o.npz").exists()
    rc, err = run_cli(
        capsys, DATA / "tiny", "-i", tmp_path / "missing.npy", "-o", tmp_path / "o.npz"
    )
    assert rc == 1 and "does not exist" in err


def _huge_npy(path: Path) -> None:
    with open(path, "wb") as f:  # a header that declares 14 TiB of float32, and no data
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (14 * 2**40 // 4,)}
        )


def _truncated_npz(path: Path) -> None:
    np.savez(path, x=np.zeros((1000, 4), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES = {
    "garbage.npz": (lambda p: p.write_bytes(b"PK\x03\x04" + b"\x17" * 200), "cannot read as npz"),
    "truncated.npz": (_truncated_npz, "truncated.npz"),
    "huge.npy": (_huge_npy, "15,393,162,788,864 bytes"),
    "latin1.jsonl": (
        lambda p: p.write_bytes(b'{"x": [1, 2, 3, 4]}\n{"x": "caf\xe9"}\n'),
        "latin1.jsonl:2: not UTF-8",
    ),
    "latin1.txt": (lambda p: p.write_bytes(b"hello\nworld\n\xff\xfe\n"), "latin1.txt:3: not UTF-8"),
    "pickle.npy": (
        lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "Python objects",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_damaged_input_files_fail_before_the_module_loads(tmp_path, name):
    make, message = BAD_FILES[name]
    make(tmp_path / name)
    # The module path does not exist: the input's error must come first, as InvalidArgumentError.
    args = build_parser().parse_args(
        [
            "run",
            str(tmp_path / "nowhere"),
            "-i",
            str(tmp_path / name),
            "-o",
            str(tmp_path / "o.npz"),
        ]
    )
    finish_parsing(args)
    with pytest.raises(InvalidArgumentError) as e:
        args.handler(args)
    assert type(e.value) is InvalidArgumentError
    assert str(tmp_path / name) in str(e.value) and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_deeply_nested_json_is_one_line_error(capsys, tmp_path):
    src = tmp_path / "deep.jsonl"
    src.write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    rc, err = run_cli(capsys, DATA / "tiny", "-i", src, "-o", tmp_path / "o.npz")
    assert rc == 1 and err.strip() == f"hubcore run: error: {src}:1: JSON nested too deeply"
    args = build_parser().parse_args(["run", str(DATA / "tiny"), "-i", str(src), "-o", "-"])
    with pytest.raises(InvalidArgumentError) as e:
        args.handler(args)
    assert type(e.value) is InvalidArgumentError


@pytest.mark.parametrize(
    "header, message",
    [
        ("x[0],x[1],x[2],x[7]", "x[3] is missing"),
        ("x[1],x[2],x[3],x[4]", "x[0] is missing"),
        ("x[0],x[1],x[1],x[2]", "column 'x[1]' appears twice"),
        ("x[0],x[1],x[2]", "takes 4 values per row"),
    ],
)
def test_csv_numbered_columns_must_be_complete(tmp_path, header, message):
    src = tmp_path / "x.csv"
    width = header.count(",") + 1
    src.write_text(header + "\n" + ",".join(["1"] * width) + "\n")
    args = build_parser().parse_args(
        ["run", str(DATA / "tiny"), "-i", str(src), "-o", str(tmp_path / "o.npz")]
    )
    with pytest.raises(InvalidArgumentError) as e:
        args.handler(args)
    assert type(e.value) is InvalidArgumentError
    assert f"{src}:1:" in str(e.value) and message in str(e.value), str(e.value)


def test_zero_rows_write_zero_row_arrays_of_the_right_dtype_and_shape(capsys, tmp_path):
    one = hubcore.Runner(DATA / "tiny")(np.zeros((1, 4), np.float32), as_dict=True)
    for name, write in [
        ("x.npz", lambda p: np.savez(p, x=np.zeros((0, 4), np.float32))),
        ("x.jsonl", lambda p: p.write_text("")),
        ("x.csv", lambda p: p.write_text("x[0],x[1],x[2],x[3]\n")),
    ]:
        write(tmp_path / name)
        rc, err = run_cli(capsys, DATA / "tiny", "-i", tmp_path / name, "-o", tmp_path / "o.npz")
        assert rc == 0, err
        out = np.load(tmp_path / "o.npz")
        assert sorted(out.files) == sorted(one)
        for key, value in one.items():
            assert out[key].shape == (0, *value.shape[1:]) and out[key].dtype == value.dtype
    # Sparse string outputs of the text module, from an empty text file.
    (tmp_path / "empty.txt").write_text("")
    rc, err = run_cli(
        capsys, DATA / "text_table", "-i", tmp_path / "empty.txt", "-o", tmp_path / "t.npz"
    )
    assert rc == 0, err
    out = np.load(tmp_path / "t.npz")
    assert out["default"].shape == (0, 8) and out["default"].dtype == np.float32
    rc, err = run_cli(
        capsys,
        DATA / "text_table",
        "-i",
        tmp_path / "empty.txt",
        "-o",
        tmp_path / "t.npz",
        "-s",
        "tokens",
    )
    assert rc == 0, err
    tokens = np.load(tmp_path / "t.npz")
    assert tokens["default.indices"].shape == (0, 2)
    assert tokens["default.values"].dtype.kind == "S" and len(tokens["default.values"]) == 0
    assert tokens["default.dense_shape"].tolist()[0] == 0


@pytest.fixture(scope="module")
def bfloat16_module(tmp_path_factory) -> Path:
    """doubled = 2 * x in bfloat16, and a float32 row sum."""
    import tensorflow as tf

    def module_fn() -> None:
        x = tf.compat.v1.placeholder(tf.bfloat16, [None, 2], name="x")
        hubcore.add_signature(
            inputs={"x": x},
            outputs={"doubled": x * 2, "sum": tf.reduce_sum(tf.cast(x, tf.float32), 1)},
        )

    path = tmp_path_factory.mktemp("bfloat16") / "m"
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn))
        with tf.compat.v1.Session() as session:
            module.export(str(path), session)
    return path


def test_bfloat16_round_trip_through_npy_npz_and_jsonl(capsys, tmp_path, bfloat16_module):
    """numpy saves bfloat16 arrays as raw 2-byte values ('<V2'): they were refused ("got void16"),
    and bfloat16 outputs were written the same way, their dtype lost."""
    import ml_dtypes

    # Exact in bfloat16; 2**100 is beyond float16, 1 + 2**-7 needs bfloat16's last mantissa bit.
    x = np.array([[1.5, -2.25], [1 + 2**-7, 2.0**100], [0.0, -0.0]], ml_dtypes.bfloat16)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    assert np.load(tmp_path / "x.npy").dtype.kind == "V"  # what numpy itself reads back
    want = x.astype(np.float32) * 2
    for src in ("x.npy", "x.npz"):
        rc, err = run_cli(capsys, bfloat16_module, "-i", tmp_path / src, "-o", tmp_path / "o.npz")
        assert rc == 0, err
        out = np.load(tmp_path / "o.npz")
        assert out["doubled"].dtype == np.float32  # every bfloat16 value, exactly
        np.testing.assert_array_equal(out["doubled"], want)
        np.testing.assert_array_equal(out["sum"], x.astype(np.float32).sum(1))
    # The float32 output feeds the bfloat16 input again without loss.
    np.savez(tmp_path / "again.npz", x=out["doubled"])
    rc, err = run_cli(
        capsys, bfloat16_module, "-i", tmp_path / "again.npz", "-o", tmp_path / "o2.npz"
    )
    assert rc == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "o2.npz")["doubled"], want * 2)
    rc, err = run_cli(capsys, bfloat16_module, "-i", tmp_path / "x.npy", "-o", tmp_path / "o.jsonl")
    assert rc == 0, err
    rows = read_jsonl(tmp_path / "o.jsonl")
    assert [r["doubled"] for r in rows] == want.tolist()
    assert all(type(v) is float for r in rows for v in r["doubled"])
    # No rows: a zero-row float32 array, as with rows.
    np.save(tmp_path / "none.npy", x[:0])
    rc, err = run_cli(
        capsys, bfloat16_module, "-i", tmp_path / "none.npy", "-o", tmp_path / "o.npz"
    )
    assert rc == 0, err
    empty = np.load(tmp_path / "o.npz")["doubled"]
    assert empty.shape == (0, 2) and empty.dtype == np.float32


def test_raw_bytes_feed_only_a_bfloat16_input(capsys, tmp_path, bfloat16_module):
    """Void arrays of another width are not guessed at: the error names the file and array."""
    np.save(tmp_path / "v4.npy", np.zeros((2, 2), "V4"))
    rc, err = run_cli(capsys, bfloat16_module, "-i", tmp_path / "v4.npy", "-o", tmp_path / "o.npz")
    assert rc == 1
    assert f"{tmp_path / 'v4.npy'}: array 'x' expects bfloat16, got void32" in err
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize(
    ("dtype", "stored"),
    [
        ("float8_e5m2", np.float32),
        ("float8_e4m3fn", np.float32),
        ("int4", np.int8),
        ("uint2", np.uint8),
    ],
)
def test_npz_widens_the_types_numpy_lacks_exactly(tmp_path, dtype, stored):
    """np.savez writes these as raw bytes ('<V1') or a descriptor numpy cannot read ('<f1')."""
    import ml_dtypes

    from hubcore import batch_io
    from hubcore._convert import ValueSpec
    from hubcore.output_file import OutputFile

    values = np.array([[1, 2], [3, 0]], getattr(ml_dtypes, dtype))
    spec = ValueSpec("y", "dense", values.dtype, (None, 2))
    for name, outputs, rows in [("o.npz", {"y": values}, 2), ("none.npz", {}, 0)]:
        writer = batch_io.NpzWriter(OutputFile(str(tmp_path / name), binary=True), {"y": spec})
        writer.write(outputs, rows)
        writer.commit()
        out = np.load(tmp_path / name)["y"]
        assert out.dtype == stored
        np.testing.assert_array_equal(out, values.astype(stored)[:rows])
