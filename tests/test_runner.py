"""hubcore.Runner: the C++ runtime from Python, against golden outputs and plain TensorFlow."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore.runner import RaggedValue, SparseValue

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
GOLDEN_FIXTURES = ["batchnorm", "partitioned", "text_table", "tiny"]

# Makes a child interpreter see the same hubcore as this one (installed, or HUBCORE_BUILD_DIR).
BOOTSTRAP = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import conftest\n"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    if env.get("HUBCORE_BUILD_DIR"):
        env["HUBCORE_BUILD_DIR"] = os.path.abspath(env["HUBCORE_BUILD_DIR"])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@pytest.fixture(scope="session")
def runners() -> dict[str, hubcore.Runner]:
    return {}


def get_runner(runners: dict, name: str) -> hubcore.Runner:
    if name not in runners:
        runners[name] = hubcore.Runner(DATA / name)
    return runners[name]


def golden_calls(name: str):
    """(signature, inputs, expected outputs) per signature in NAME.golden.npz."""
    z = np.load(DATA / f"{name}.golden.npz")
    sigs = sorted({k.split(".")[1] for k in z.files if k.startswith("input.")})
    for sig in sigs:
        inputs = {k.split(".", 2)[2]: z[k] for k in z.files if k.startswith(f"input.{sig}.")}
        expected = {
            k.split(".", 1)[1]: z[k]
            for k in z.files
            if not k.startswith("input.") and k.startswith(f"{sig}.")
        }
        yield sig, inputs, expected


@pytest.fixture(scope="session")
def plain_tf():
    """Runs a module signature with plain TensorFlow (import_meta_graph + Saver restore)."""
    import tensorflow as tf

    from plain_tf import ImportedVariant

    cache: dict[str, tuple] = {}

    def run(name: str, signature: str, feeds: dict[str, tuple | np.ndarray]) -> dict:
        if name not in cache:
            variant = ImportedVariant(DATA / name)
            sess = tf.compat.v1.Session(graph=variant.graph)
            variant.restore(sess)
            cache[name] = (variant, sess)
        variant, sess = cache[name]
        sig = variant.signature(signature)
        feed_dict = {}
        for key, value in feeds.items():
            tensors = variant.tensor(sig.inputs[key])
            if isinstance(tensors, tuple):
                feed_dict.update(zip(tensors, value, strict=True))
            else:
                feed_dict[tensors] = value
        fetches = {k: variant.tensor(info) for k, info in sig.outputs.items()}
        return sess.run(fetches, feed_dict)

    return run


@pytest.mark.parametrize("name", GOLDEN_FIXTURES)
def test_every_golden_signature_matches(runners, name):
    runner = get_runner(runners, name)
    checked = 0
    for sig, inputs, expected in golden_calls(name):
        got = runner(inputs, signature=sig, as_dict=True)
        for key, want in expected.items():
            np.testing.assert_allclose(got[key], want, rtol=1e-5, err_msg=f"{name} {sig}.{key}")
            checked += 1
    assert checked >= 1


def test_single_value_and_default_output(runners):
    runner = get_runner(runners, "tiny")
    (_, inputs, expected), *_ = golden_calls("tiny")
    x = inputs["x"]
    np.testing.assert_allclose(runner(x), expected["default"], rtol=1e-5)
    # Lists and float64 arrays are cast to the input's float32.
    np.testing.assert_allclose(runner(x.tolist()), expected["default"], rtol=1e-5)
    np.testing.assert_allclose(runner(x.astype(np.float64)), expected["default"], rtol=1e-5)
    only_sum = runner({"x": x}, outputs=["sum"])
    assert list(only_sum) == ["sum"]
    np.testing.assert_allclose(only_sum["sum"], expected["sum"], rtol=1e-5)


def test_text_module_takes_str_bytes_and_arrays(runners):
    runner = get_runner(runners, "text_table")
    (_, inputs, expected), *_ = golden_calls("text_table")
    sentences = inputs["default"]  # a bytes ("S") array
    want = expected["default"]
    np.testing.assert_allclose(runner(sentences), want, rtol=1e-5)
    as_str = [s.decode() for s in sentences]
    np.testing.assert_allclose(runner(as_str), want, rtol=1e-5)
    np.testing.assert_allclose(runner(np.array(as_str)), want, rtol=1e-5)
    np.testing.assert_allclose(runner(list(sentences)), want, rtol=1e-5)


def test_sparse_output_matches_plain_tf(runners, plain_tf):
    runner = get_runner(runners, "text_table")
    sentences = np.array([b"hello world", b"", b"the quick brown fox"], dtype=object)
    got = runner(sentences, signature="tokens")
    assert isinstance(got, SparseValue)
    values, indices, dense_shape = plain_tf("text_table", "tokens", {"sentences": sentences})[
        "default"
    ]
    np.testing.assert_array_equal(got.indices, indices)
    np.testing.assert_array_equal(got.values, values)
    np.testing.assert_array_equal(got.dense_shape, dense_shape)
    assert got.values.tolist() == [b"hello", b"world", b"the", b"quick", b"brown", b"fox"]


def test_sparse_input_matches_plain_tf(runners, plain_tf):
    runner = get_runner(runners, "sparse_in")
    indices = np.array([[0, 1], [0, 4], [1, 0], [2, 5]], np.int64)
    values = np.array([1.5, -2.0, 3.0, 0.25], np.float32)
    shape = np.array([3, 6], np.int64)
    want = plain_tf("sparse_in", "default", {"sp": (values, indices, shape)})["default"]
    assert want.shape == (3, 2)
    for form in (
        (indices, values, shape),
        {"indices": indices.tolist(), "values": values.tolist(), "dense_shape": [3, 6]},
        SparseValue(indices, values, shape),
    ):
        np.testing.assert_allclose(runner(form), want, rtol=1e-5)


def test_ragged_input_matches_plain_tf(runners, plain_tf):
    runner = get_runner(runners, "ragged_in")
    rows = [[1.0, 2.0, 3.5], [], [4.0]]
    flat = np.array([1.0, 2.0, 3.5, 4.0], np.float32)
    splits = np.array([0, 3, 3, 4], np.int64)
    want = plain_tf("ragged_in", "default", {"rt": (flat, splits)})["default"]
    assert want.shape == (3,)
    for form in (
        rows,
        (flat, splits),
        {"flat_values": flat, "row_splits": [splits]},
        RaggedValue(flat, (splits,)),
    ):
        np.testing.assert_allclose(runner(form), want, rtol=1e-5)


def test_signatures_describe_inputs_and_outputs(runners):
    sigs = get_runner(runners, "tiny").signatures
    assert sorted(sigs) == ["default", "encode", "no_default"]
    x = sigs["default"].inputs["x"]
    assert (x.kind, x.dtype, x.shape) == ("dense", np.dtype(np.float32), (None, 4))
    assert sorted(sigs["default"].outputs) == ["default", "sum"]
    sparse = get_runner(runners, "sparse_in").signatures["default"].inputs["sp"]
    assert (sparse.kind, sparse.shape) == ("sparse", (None, 6))
    ragged = get_runner(runners, "ragged_in").signatures["default"].inputs["rt"]
    assert (ragged.kind, ragged.ragged_rank) == ("ragged", 1)
    tokens = get_runner(runners, "text_table").signatures["tokens"].outputs["default"]
    assert tokens.kind == "sparse" and tokens.is_string


def test_errors_name_the_problem(runners):
    runner = get_runner(runners, "tiny")
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(hubcore.SignatureNotFoundError, match="'encode', 'no_default'"):
        runner(x, signature="nope")
    with pytest.raises(hubcore.InvalidArgumentError, match="Input 'x'.*float32.*strings"):
        runner(np.array([["a"] * 4]))
    with pytest.raises(hubcore.InvalidArgumentError, match="Input 'x'.*float32, got int32"):
        runner._native.run("default", {"x": [np.zeros((2, 4), np.int32)]}, [])
    with pytest.raises(hubcore.InvalidArgumentError, match=r"Input 'x'.*\(None, 4\).*\[2, 5\]"):
        runner(np.zeros((2, 5), np.float32))
    with pytest.raises(hubcore.InvalidArgumentError, match="no input 'y'"):
        runner({"y": x})
    with pytest.raises(hubcore.InvalidArgumentError, match="as_dict"):
        runner(x, signature="no_default")
    with pytest.raises(hubcore.InvalidArgumentError, match="different lengths"):
        runner([[1.0, 2.0, 3.0, 4.0], [1.0]])
    with pytest.raises(hubcore.VariantNotFoundError, match=r"\{\}, \{train\}"):
        hubcore.Runner(DATA / "tiny", tags=["serve"])
    with pytest.raises(hubcore.ModulePathNotFoundError):
        hubcore.Runner(DATA / "no_such_module")
    with pytest.raises(hubcore.InvalidArgumentError, match="custom op library"):
        hubcore.Runner(DATA / "tiny", custom_op_libraries=["/no/such/lib.so"])


def test_train_variant_by_tags():
    runner = hubcore.Runner(DATA / "batchnorm", tags={"train"})
    assert runner.tags == frozenset({"train"})
    out = runner(np.ones((3, 5), np.float32))
    assert out.shape == (3, 5) and np.all(np.isfinite(out))


def test_unregistered_op_is_named(tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    module = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", module)
    (module / "saved_model.pb").chmod(0o644)
    sm = saved_model_pb2.SavedModel.FromString((module / "saved_model.pb").read_bytes())
    for meta in sm.meta_graphs:
        for node in meta.graph_def.node:
            if node.name == "add":
                node.op = "HubcoreNoSuchOp"
    (module / "saved_model.pb").write_bytes(sm.SerializeToString())
    with pytest.raises(hubcore.FailedPreconditionError, match="'HubcoreNoSuchOp'.*node 'add'"):
        hubcore.Runner(module)


def test_eight_threads_equal_serial(runners):
    runner = get_runner(runners, "text_table")
    rng = np.random.default_rng(0)
    words = ["hello", "world", "the", "cat", "sat", "zzz", "on", "mat"]
    batches = [
        [
            " ".join(rng.choice(words, size=rng.integers(0, 6)))
            for _ in range(int(rng.integers(1, 9)))
        ]
        for _ in range(64)
    ]
    serial = [runner(b, as_dict=True) for b in batches]
    results: list = [None] * len(batches)
    errors: list = []

    def work(t: int) -> None:
        try:
            for _ in range(3):
                for i in range(t, len(batches), 8):
                    results[i] = runner(batches[i], as_dict=True)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, want in zip(results, serial, strict=True):
        np.testing.assert_array_equal(got["default"], want["default"])
        np.testing.assert_array_equal(got["num_tokens"], want["num_tokens"])


def test_predict_batches_streams_in_order(runners):
    runner = get_runner(runners, "tiny")
    x = np.random.default_rng(1).normal(size=(23, 4)).astype(np.float32)
    whole = runner(x, as_dict=True)
    for in_flight in (1, 3):
        parts = list(runner.predict_batches(iter(x), batch_size=5, max_in_flight=in_flight))
        assert [len(p["default"]) for p in parts] == [5, 5, 5, 5, 3]
        np.testing.assert_allclose(
            np.concatenate([p["default"] for p in parts]), whole["default"], rtol=1e-5
        )
    named = list(runner.predict_batches(({"x": row.tolist()} for row in x), batch_size=50))
    np.testing.assert_allclose(named[0]["sum"], whole["sum"], rtol=1e-5)
    with pytest.raises(hubcore.InvalidArgumentError, match="row 2: input 'x' expects shape"):
        list(runner.predict_batches([x[0], x[1], x[2][:3]], batch_size=2))


def test_predict_batches_selects_outputs_as_call_does(runners):
    runner = get_runner(runners, "tiny")
    x = np.random.default_rng(2).normal(size=(7, 4)).astype(np.float32)
    # as_dict=False: each batch's result is what __call__ returns for those rows.
    parts = list(runner.predict_batches(x, batch_size=3, as_dict=False))
    assert all(isinstance(p, np.ndarray) for p in parts)
    np.testing.assert_allclose(np.concatenate(parts), runner(x), rtol=1e-5)
    # The default (as_dict=True) and outputs= give dicts, as __call__ with the same arguments.
    (everything,) = runner.predict_batches(x, batch_size=10)
    assert sorted(everything) == sorted(runner(x, as_dict=True))
    (chosen,) = runner.predict_batches(x, batch_size=10, outputs=["sum"])
    assert list(chosen) == ["sum"] == list(runner(x, outputs=["sum"]))
    np.testing.assert_allclose(chosen["sum"], runner(x, outputs=["sum"])["sum"], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": -3},
        {"batch_size": 2.5},
        {"batch_size": True},
        {"max_in_flight": 0},
        {"max_in_flight": -5},
    ],
)
def test_predict_batches_rejects_bad_counts_at_the_call(runners, kwargs):
    runner = get_runner(runners, "tiny")
    with pytest.raises(hubcore.InvalidArgumentError) as e:
        runner.predict_batches([np.zeros(4, np.float32)], **kwargs)  # no iteration needed
    assert type(e.value) is hubcore.InvalidArgumentError
    assert next(iter(kwargs)) in str(e.value)


def test_empty_path_and_bad_thread_counts():
    errors = []
    for load in (hubcore.Runner, hubcore.load_module_spec):
        with pytest.raises(hubcore.Error) as e:
            load("")
        errors.append(type(e.value))
    assert errors == [hubcore.ModulePathNotFoundError] * 2
    for option in ("intra_op_threads", "inter_op_threads"):
        with pytest.raises(hubcore.InvalidArgumentError) as e:
            hubcore.Runner(DATA / "tiny", **{option: -1})
        assert type(e.value) is hubcore.InvalidArgumentError and option in str(e.value)


def test_dir_shows_only_the_public_api():
    names = dir(hubcore)
    assert names == sorted([*hubcore.__all__, "__version__"])
    assert not {"Any", "annotations", "importlib", "errors", "runner"} & set(names)
    assert all(hasattr(hubcore, name) for name in names)


def test_predict_batches_sparse_and_ragged_rows(runners, plain_tf):
    sparse = get_runner(runners, "sparse_in")
    rows = [[0, 1.5, 0, 0, 0, 2.0], {"indices": [[3]], "values": [4.0]}]
    (out,) = sparse.predict_batches(rows, batch_size=8)
    feeds = (
        np.array([1.5, 2.0, 4.0], np.float32),
        np.array([[0, 1], [0, 5], [1, 3]]),
        np.array([2, 6]),
    )
    np.testing.assert_allclose(
        out["default"], plain_tf("sparse_in", "default", {"sp": feeds})["default"], rtol=1e-5
    )
    ragged = get_runner(runners, "ragged_in")
    (out,) = ragged.predict_batches([[1.0, 2.0], [], [5.0]], batch_size=8)
    np.testing.assert_allclose(out["default"], [3.0, 0.0, 5.0], rtol=1e-5)


def test_pickled_runner_in_a_subprocess_without_tensorflow(runners, tmp_path):
    runner = get_runner(runners, "text_table")
    sentences = ["hello world", "the cat sat on the mat", ""]
    want = runner(sentences, as_dict=True)
    (tmp_path / "runner.pkl").write_bytes(pickle.dumps(runner))
    code = BOOTSTRAP + (
        "import pickle, numpy as np\n"
        f"runner = pickle.loads(open({str(tmp_path / 'runner.pkl')!r}, 'rb').read())\n"
        f"out = runner({sentences!r}, as_dict=True)\n"
        f"np.savez({str(tmp_path / 'out.npz')!r}, **out)\n"
        "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF', runner.path)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NO_TF" in result.stdout
    got = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(got["default"], want["default"], rtol=1e-6)
    np.testing.assert_array_equal(got["num_tokens"], want["num_tokens"])


def test_runner_pickle_keeps_options():
    runner = hubcore.Runner(
        DATA / "tiny", signature="encode", intra_op_threads=1, inter_op_threads=1
    )
    clone = pickle.loads(pickle.dumps(runner))
    assert clone.signature == "encode" and clone.path == runner.path
    assert clone._options == runner._options
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(clone(x), runner(x))


def _examples_dir(env: str) -> str:
    """examples/cpp built by .ci/run against a CMake install (HUBCORE_EXAMPLES_DIR) or against
    the SDK in the installed wheel (HUBCORE_WHEEL_EXAMPLES_DIR)."""
    import glob

    if os.environ.get(env):
        return os.environ[env]
    pattern = "ci-wheel-examples" if "WHEEL" in env else "ci-examples"
    found = sorted(glob.glob(str(ROOT / "build" / pattern / "serve_module")), key=os.path.getmtime)
    if found:
        return os.path.dirname(found[-1])
    if os.environ.get("CI"):
        pytest.fail(f"{env} is not set: .ci/run must build the C++ examples")
    pytest.skip(f"no C++ examples build found (set {env})")
    return ""


@pytest.mark.parametrize("env", ["HUBCORE_EXAMPLES_DIR", "HUBCORE_WHEEL_EXAMPLES_DIR"])
def test_cpp_serve_module_example(tmp_path, env):
    binary = os.path.join(_examples_dir(env), "serve_module")
    (_, inputs, expected), *_ = golden_calls("tiny")
    np.save(tmp_path / "x.npy", inputs["x"])
    result = subprocess.run(
        [binary, str(DATA / "tiny"), str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "default: float32 [3, 3]"
    got = np.array(lines[1].split(), np.float32).reshape(3, 3)
    np.testing.assert_allclose(got, expected["default"], rtol=1e-5)
    (tmp_path / "s.txt").write_text("hello world\nthe cat\n")
    result = subprocess.run(
        [binary, str(DATA / "text_table"), str(tmp_path / "s.txt"), "--signature", "tokens"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert '"hello" "world" "the" "cat"' in result.stdout
    bad = subprocess.run(
        [binary, str(DATA / "tiny"), str(tmp_path / "x.npy"), "--tags", "nope"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=300,
    )
    assert bad.returncode == 1 and "{}, {train}" in bad.stderr


def test_gil_is_released_while_tensorflow_runs(runners):
    runner = get_runner(runners, "tiny")
    x = np.ones((2_000_000, 4), np.float32)
    runner(x[:10])
    stop = threading.Event()
    tick_times: list[float] = []

    def heartbeat() -> None:
        while not stop.is_set():
            tick_times.append(time.perf_counter())
            stop.wait(0.001)

    thread = threading.Thread(target=heartbeat)
    thread.start()
    start = time.perf_counter()
    runner(x)
    end = time.perf_counter()
    stop.set()
    thread.join()
    # Only ticks taken while the call ran count. A call that held the GIL throughout would allow
    # none; a fixed small floor (not a rate) keeps the check meaningful on a loaded machine.
    during = sum(start < t < end for t in tick_times)
    assert during >= 5, (during, end - start)


def test_eager_tensorflow_values_are_accepted(runners, plain_tf):
    import tensorflow as tf

    tiny = get_runner(runners, "tiny")
    (_, inputs, expected), *_ = golden_calls("tiny")
    np.testing.assert_allclose(tiny(tf.constant(inputs["x"])), expected["default"], rtol=1e-5)
    sparse = tf.sparse.SparseTensor([[0, 1], [1, 5]], tf.constant([1.5, -2.0]), [2, 6])
    want = plain_tf(
        "sparse_in",
        "default",
        {"sp": (np.array([1.5, -2.0], np.float32), np.array([[0, 1], [1, 5]]), np.array([2, 6]))},
    )["default"]
    np.testing.assert_allclose(get_runner(runners, "sparse_in")(sparse), want, rtol=1e-5)
    ragged = tf.ragged.constant([[1.0, 2.0], [], [4.0]])
    np.testing.assert_allclose(get_runner(runners, "ragged_in")(ragged), [3.0, 0.0, 4.0])


def test_ref_variables_are_restored(tmp_path):
    import tensorflow as tf

    def module_fn() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
        with tf.compat.v1.variable_scope("ref", use_resource=False):
            w = tf.compat.v1.get_variable(
                "w", [3, 2], initializer=tf.compat.v1.random_normal_initializer(seed=1)
            )
        hubcore.add_signature(inputs={"x": x}, outputs=tf.matmul(x, w))

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn))
        y = module({"x": x})
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            want = sess.run(y)
            module.export(str(tmp_path / "ref"), sess)
    spec = hubcore.load_module_spec(tmp_path / "ref")
    assert [v.resource for v in spec.native.variants[0].variables] == [False]
    np.testing.assert_allclose(hubcore.Runner(tmp_path / "ref")({"x": x}), want, rtol=1e-6)


def test_outputs_sharing_a_tensor_and_echoing_an_input(tmp_path):
    import tensorflow as tf

    def module_fn() -> None:
        x = tf.compat.v1.placeholder(tf.string, [None], name="x")
        n = tf.strings.length(x)
        hubcore.add_signature(inputs={"x": x}, outputs={"a": n, "b": n, "echo": x})

    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn))
        with tf.compat.v1.Session() as sess:
            module.export(str(tmp_path / "dup"), sess)
    runner = hubcore.Runner(tmp_path / "dup")
    words = [b"a", b"", "héllo".encode(), b"x" * 100]
    out = runner(words, as_dict=True)
    assert out["a"].tolist() == out["b"].tolist() == [1, 0, 6, 100]
    assert out["a"] is not out["b"]
    assert out["echo"].tolist() == words
    assert runner(words, outputs=["b", "a"])["a"].tolist() == [1, 0, 6, 100]
