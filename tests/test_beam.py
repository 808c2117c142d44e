"""hubcore.beam: ModelHandler (RunInference) and RunModule on the DirectRunner match the Runner."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that
except ImportError:
    if os.environ.get("CI"):  # CI installs apache-beam: a missing one is a failure there
        raise
    pytest.skip(
        "apache-beam is not installed (pip install 'hubcore[beam]')", allow_module_level=True
    )

import hubcore
import hubcore.beam
from conftest import importable_hubcore_env
from hubcore.examples import write_example
from hubcore.runner import RaggedValue, SparseValue

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

SENTENCES = [
    "the cat sat",
    "dog ran very fast",
    "zebra",
    "a cat and a dog",
    "fast zebra",
    "unknown words here",
    "the the the",
]
TINY_ROWS = {f"k{i}": {"x": np.arange(4, dtype=np.float32) * (i + 1) - 3.0} for i in range(6)}


def pipeline_options(**extra) -> PipelineOptions:
    # flags=[]: without it PipelineOptions parses (and warns about) pytest's command line
    return PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1, **extra)


@pytest.fixture(scope="session")
def text_runner() -> hubcore.Runner:
    return hubcore.Runner(DATA / "text_table")


@pytest.fixture(scope="session")
def tiny_runner() -> hubcore.Runner:
    return hubcore.Runner(DATA / "tiny")


def match_unordered(expected: list[np.ndarray]):
    """A matcher: the results equal ``expected`` in some order (rtol 1e-5)."""

    def check(actual: list) -> None:
        assert len(actual) == len(expected), (len(actual), len(expected))
        left = list(expected)
        for value in actual:
            hits = [i for i, e in enumerate(left) if np.allclose(value, e, rtol=1e-5, atol=1e-6)]
            assert hits, f"unexpected result {value!r}"
            left.pop(hits[0])

    return check


def match_keyed(expected: dict, check_value):
    """A matcher for (key, result) pairs: every key once, each result checked against its own."""

    def check(actual: list) -> None:
        got = dict(actual)
        assert len(got) == len(actual), "a key came out twice"
        assert sorted(got) == sorted(expected)
        for key, value in got.items():
            check_value(key, value, expected[key])

    return check


def test_pipeline_matches_runner(text_runner, tiny_runner):
    want_text = list(text_runner(SENTENCES))
    want_tiny = tiny_runner(np.stack([r["x"] for r in TINY_ROWS.values()]), as_dict=True)
    want_tiny = {
        key: {name: value[i] for name, value in want_tiny.items()}
        for i, key in enumerate(TINY_ROWS)
    }
    tokens = text_runner(SENTENCES, signature="tokens")
    want_tokens = {s: tokens.to_dense(b"")[i] for i, s in enumerate(SENTENCES)}

    def check_tiny(key, value, want):
        assert sorted(value) == ["default", "sum"], key
        for name in want:
            np.testing.assert_allclose(value[name], want[name], rtol=1e-5, err_msg=key)

    def check_tokens(key, value, want):
        assert isinstance(value, SparseValue) and value.indices.shape[1] == 1, key
        dense = value.to_dense(b"")
        assert list(dense[: len(key.split())]) == [w.encode() for w in key.split()], key
        assert list(dense[: len(want)]) == list(want[: len(dense)]), key

    with beam.Pipeline(options=pipeline_options()) as p:
        text = p | "Text" >> beam.Create(SENTENCES)
        vectors = text | "Embed" >> hubcore.beam.RunModule(DATA / "text_table", batch_size=3)
        assert_that(vectors, match_unordered(want_text), label="CheckText")

        keyed = p | "Tiny" >> beam.Create(list(TINY_ROWS.items()))
        tiny = keyed | "RunTiny" >> hubcore.beam.RunModule(
            DATA / "tiny", keyed=True, as_dict=True, batch_size=4
        )
        assert_that(tiny, match_keyed(want_tiny, check_tiny), label="CheckTiny")

        pairs = text | "Key" >> beam.Map(lambda s: (s, s))
        toks = pairs | "Tokens" >> hubcore.beam.RunModule(
            DATA / "text_table", signature="tokens", keyed=True, batch_size=4
        )
        assert_that(toks, match_keyed(want_tokens, check_tokens), label="CheckTokens")


def test_outputs_selects_and_unsplittable_outputs_are_named(tiny_runner):
    want = tiny_runner(np.stack([r["x"] for r in TINY_ROWS.values()]), as_dict=True)["sum"]
    with beam.Pipeline(options=pipeline_options()) as p:
        sums = (
            p
            | beam.Create(list(TINY_ROWS.values()))
            | hubcore.beam.RunModule(DATA / "tiny", outputs=["sum"], batch_size=2)
            | beam.Map(lambda d: d["sum"] if sorted(d) == ["sum"] else f"other keys: {sorted(d)}")
        )
        assert_that(sums, match_unordered(list(want)))
    with pytest.raises(hubcore.InvalidArgumentError, match="output 'sum' has shape"):
        hubcore.beam.split_rows("sum", np.float32(1.0), 3)


def test_bad_row_fails_naming_it():
    rows = [(k, r) for k, r in TINY_ROWS.items()]
    rows.insert(3, ("bad-7", {"x": [1.0, 2.0]}))
    with pytest.raises(Exception, match=r"row with key 'bad-7': input 'x' expects shape \(4,\)"):
        with beam.Pipeline(options=pipeline_options()) as p:
            _ = (
                p
                | beam.Create(rows)
                | hubcore.beam.RunModule(DATA / "tiny", keyed=True, batch_size=8)
            )


def load(**kwargs) -> hubcore.beam.LoadedSignature:
    """What a worker gets from ModelHandler.load_model()."""
    return hubcore.beam.ModelHandler(kwargs.pop("path", DATA / "tiny"), **kwargs).load_model()


def test_unkeyed_bad_row_and_bad_pairs_are_named(tiny_runner):
    model = load()
    rows = [r["x"] for r in TINY_ROWS.values()]
    good = model.predict(rows)
    np.testing.assert_allclose(np.stack(good), tiny_runner(np.stack(rows)), rtol=1e-5)
    with pytest.raises(hubcore.InvalidArgumentError, match=r"row 'oops': input 'x' expects"):
        model.predict([np.zeros(4, np.float32), "oops"])
    keyed = hubcore.beam.RunModule(DATA / "tiny", keyed=True)._handler
    with pytest.raises(hubcore.InvalidArgumentError, match=r"takes \(key, row\) pairs, got row"):
        keyed.run_inference([("a", np.zeros(4, np.float32)), np.zeros(4, np.float32)], model)
    text = load(path=DATA / "text_table")
    # text_table drops trailing empty sentences from its "default" output
    with pytest.raises(hubcore.beam.UnsplittableOutputError, match=r"^row '': output 'default'"):
        text.predict(["a b", "x", ""])
    sparse = load(path=DATA / "sparse_in")
    rows = [{"indices": [[0], [2]], "values": [1.0, 2.0]}, [0.0, 3.0, 0.0], [1.0] * 6]
    want = hubcore.Runner(DATA / "sparse_in")(
        {"sp": ([[0, 0], [0, 2], [1, 1], *([2, i] for i in range(6))], [1, 2, 3] + [1] * 6, [3, 6])}
    )
    np.testing.assert_allclose(np.stack(sparse.predict(rows)), want, rtol=1e-5)
    # TensorFlow fails the batch without naming a row: each row runs alone to find it.
    rows.insert(1, {"indices": [[7]], "values": [1.0]})
    with pytest.raises(hubcore.InvalidArgumentError, match=r"^row \{'indices': \[\[7\]\].*out of"):
        sparse.predict(rows)
    with pytest.raises(hubcore.SignatureNotFoundError, match="nope"):
        load(signature="nope")
    with pytest.raises(hubcore.InvalidArgumentError, match="no output 'nope'"):
        load(output_keys=["nope"])
    with pytest.raises(hubcore.InvalidArgumentError, match="takes no inference_args"):
        hubcore.beam.ModelHandler(DATA / "tiny").validate_inference_args({"training": True})


def test_model_handler_in_run_inference_and_keyed_model_handler(tiny_runner):
    from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference

    handler = hubcore.beam.ModelHandler(DATA / "tiny", output_keys="sum", max_batch_size=4)
    assert handler.batch_elements_kwargs() == {"max_batch_size": 4}
    assert not handler.share_model_across_processes() and handler.model_copies() == 1
    rows = [r["x"] for r in TINY_ROWS.values()]
    want = dict(zip(TINY_ROWS, tiny_runner(np.stack(rows), as_dict=True)["sum"], strict=True))
    want_both = tiny_runner(np.stack(rows), as_dict=True)

    def check_results(actual: list) -> None:
        assert sorted(type(r).__name__ for r in actual) == ["PredictionResult"] * len(rows)
        for result in actual:
            assert isinstance(result, PredictionResult) and result.model_id == str(DATA / "tiny")
            i = next(i for i, x in enumerate(rows) if np.array_equal(x, result.example))
            np.testing.assert_allclose(result.inference, want_both["sum"][i], rtol=1e-5)

    def check_keyed(actual: list) -> None:
        assert sorted(k for k, _ in actual) == sorted(TINY_ROWS)
        for key, result in actual:
            assert isinstance(result, PredictionResult)
            np.testing.assert_allclose(result.inference, want[key], rtol=1e-5)

    def check_dicts(actual: list) -> None:
        assert len(actual) == len(rows)
        for result in actual:
            i = next(i for i, x in enumerate(rows) if np.array_equal(x, result.example["x"]))
            assert sorted(result.inference) == ["default", "sum"]
            np.testing.assert_allclose(result.inference["default"], want_both["default"][i])

    with beam.Pipeline(options=pipeline_options()) as p:
        results = p | "Rows" >> beam.Create(rows) | "Sum" >> RunInference(handler)
        assert_that(results, check_results, label="CheckResults")
        keyed = (
            p
            | "Pairs" >> beam.Create([(k, r["x"]) for k, r in TINY_ROWS.items()])
            | "Keyed" >> RunInference(KeyedModelHandler(handler))
        )
        assert_that(keyed, check_keyed, label="CheckKeyed")
        dicts = (
            p
            | "Dicts" >> beam.Create(list(TINY_ROWS.values()))
            | "All" >> RunInference(hubcore.beam.ModelHandler(DATA / "tiny", as_dict=True))
        )
        assert_that(dicts, check_dicts, label="CheckDicts")


def test_numpy_batches_run_whole(text_runner):
    from apache_beam.ml.inference.base import RunInference

    batches = [np.array(SENTENCES[:4], dtype=object), np.array(SENTENCES[4:], dtype=object)]
    handler = hubcore.beam.ModelHandler(DATA / "text_table", inputs_are_batches=True)
    assert handler.batch_elements_kwargs() == {"max_batch_size": 1}
    want = text_runner(SENTENCES)

    def check(actual: list) -> None:
        assert len(actual) == 2
        for result in actual:
            start = 0 if len(result.example) == 4 else 4
            assert result.inference.shape == (len(result.example), want.shape[1])
            np.testing.assert_allclose(result.inference, want[start : start + len(result.example)])

    with beam.Pipeline(options=pipeline_options()) as p:
        results = p | beam.Create(batches) | RunInference(handler)
        assert_that(results, check)


def test_split_ragged_rows():
    value = RaggedValue(
        np.arange(6, dtype=np.float32),
        (np.array([0, 2, 2, 4]), np.array([0, 1, 3, 3, 6])),
    )
    rows = hubcore.beam.split_rows("r", value, 3)
    assert [r.to_list() for r in rows] == [[[0.0], [1.0, 2.0]], [], [[], [3.0, 4.0, 5.0]]]
    flat = hubcore.beam.split_rows("r", RaggedValue(value.flat_values, (value.row_splits[1],)), 4)
    assert [list(r) for r in flat] == [[0.0], [1.0, 2.0], [], [3.0, 4.0, 5.0]]
    with pytest.raises(hubcore.InvalidArgumentError, match="output 'r'"):
        hubcore.beam.split_rows("r", value, 2)


def test_multithreaded_pipeline_in_a_process_without_tensorflow(text_runner, tmp_path):
    """A fresh interpreter runs RunModule on 2 worker threads and never imports TensorFlow."""
    want = text_runner(SENTENCES)
    env = dict(os.environ)
    if env.get("HUBCORE_BUILD_DIR"):
        env["HUBCORE_BUILD_DIR"] = os.path.abspath(env["HUBCORE_BUILD_DIR"])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import conftest\n"
        "import numpy as np, apache_beam as beam, hubcore.beam\n"
        "from apache_beam.options.pipeline_options import PipelineOptions\n"
        "class Keep(beam.DoFn):\n"
        "    def process(self, kv):\n"
        f"        np.save({str(tmp_path)!r} + f'/row{{kv[0]}}.npy', kv[1])\n"
        "opts = PipelineOptions(flags=[], runner='DirectRunner', direct_num_workers=2,\n"
        "                       direct_running_mode='multi_threading')\n"
        "with beam.Pipeline(options=opts) as p:\n"
        f"    _ = (p | beam.Create(list(enumerate({SENTENCES!r})))\n"
        f"         | hubcore.beam.RunModule({str(DATA / 'text_table')!r}, keyed=True,\n"
        "                                   batch_size=2)\n"
        "         | beam.ParDo(Keep()))\n"
        "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NO_TF" in result.stdout
    got = [np.load(tmp_path / f"row{i}.npy") for i in range(len(SENTENCES))]
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5)


def test_transform_labels():
    assert hubcore.beam.RunModule(DATA / "tiny").label == "RunModule(tiny)"
    assert hubcore.beam.RunModule(DATA / "tiny", "encode").label == "RunModule(tiny:encode)"


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Runs ``code`` in a fresh interpreter (and its Beam workers) importing this hubcore."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=importable_hubcore_env(tmp_path),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_multi_process_direct_runner_shares_one_runner(text_runner, tmp_path):
    """RunInference on the DirectRunner with 2 worker processes, the module loaded once for both
    (large_model: Beam serves it from one process and the workers send their batches to it)."""
    want = text_runner(SENTENCES)
    code = (
        "import os, numpy as np, apache_beam as beam, hubcore.beam\n"
        "from apache_beam.ml.inference.base import KeyedModelHandler, RunInference\n"
        "from apache_beam.options.pipeline_options import PipelineOptions\n"
        "class Keep(beam.DoFn):\n"
        "    def process(self, kv):\n"
        f"        out = {str(tmp_path)!r} + f'/row{{kv[0]}}'\n"
        "        np.save(out + '.npy', kv[1].inference)\n"
        "        open(out + '.pid', 'w').write(str(os.getpid()))\n"
        "opts = PipelineOptions(flags=[], runner='DirectRunner', direct_num_workers=2,\n"
        "                       direct_running_mode='multi_processing')\n"
        f"handler = hubcore.beam.ModelHandler({str(DATA / 'text_table')!r}, max_batch_size=2,\n"
        "                                     large_model=True)\n"
        "with beam.Pipeline(options=opts) as p:\n"
        f"    _ = (p | beam.Create(list(enumerate({SENTENCES!r})), reshuffle=True)\n"
        "         | RunInference(KeyedModelHandler(handler)) | beam.ParDo(Keep()))\n"
        "print('launcher', os.getpid())\n"
    )
    result = run_python(code, tmp_path)
    launcher = result.stdout.split()[-1]
    got = [np.load(tmp_path / f"row{i}.npy") for i in range(len(SENTENCES))]
    np.testing.assert_allclose(np.stack(got), want, rtol=1e-5)
    workers = {(tmp_path / f"row{i}.pid").read_text() for i in range(len(SENTENCES))}
    assert launcher not in workers  # the rows ran in worker processes


def test_docs_example_runs_as_written(tmp_path):
    """docs/beam.md's example, on local files: only its /tmp/ paths move into tmp_path."""
    text = (ROOT / "docs" / "beam.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, re.S)
    write_example("text-embedding", tmp_path / "hubcore-example")
    code = code.replace('"/tmp/', f'"{tmp_path}/')
    result = run_python(code, tmp_path)
    want = hubcore.Runner(tmp_path / "hubcore-example")(
        ["hello world", "good morning", "the cat sat"]
    )
    lines = sorted(result.stdout.strip().splitlines())
    assert [line.split("\t")[0] for line in lines] == ["good morning", "hello world", "the cat sat"]
    got = {line.split("\t")[0]: ast.literal_eval(line.split("\t")[1]) for line in lines}
    np.testing.assert_allclose(got["hello world"], np.round(want[0][:3], 3), atol=1e-3)
