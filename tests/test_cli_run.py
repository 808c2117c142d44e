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
