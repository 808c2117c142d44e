"""Benchmark: hubcore.Module against plain TensorFlow on a large TF1 Hub module.

Builds (once, cached under --dir) a module with hubcore.create_module_spec: an MLP of --layers
dense + batch-norm blocks (6 variables each), a partitioned embedding, batch-norm update ops in
the {"train"} variant; ~20k graph nodes and ~600 variables with the defaults. Then runs each
measurement in a fresh process so that peak RSS covers only that work:

  hubcore   load_module_spec + Module() + 1 call + global_variables_initializer/tables init
            + first sess.run; and separately 10 calls (1st and 10th call time).
  plain TF  parse saved_model.pb + tf.compat.v1.train.import_meta_graph of the variant into a
            fresh graph + Saver.restore + tables init + first sess.run.

Usage: python bench/bench_module.py [--layers 100] [--dir /tmp/hubcore_bench_module] [--repeat 3]
(HUBCORE_BUILD_DIR=build/dev measures a development build instead of the installed package.)
(TensorFlow import time is excluded everywhere; times are the median over --repeat processes.)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dev_build import run_child, use_build_dir

WIDTH = 64
VOCAB = 1000
EXTRA_STEPS = 25


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build(path: str, layers: int) -> None:
    """Writes the benchmark module to `path` with hubcore (create_module_spec + Module.export)."""
    import numpy as np
    import tensorflow as tf

    import hubcore as hub

    v1 = tf.compat.v1

    def module_fn(training: bool) -> None:
        x = v1.placeholder(tf.float32, [None, WIDTH], name="x")
        ids = v1.placeholder(tf.int64, [None], name="ids")
        emb = v1.get_variable(
            "embedding",
            [VOCAB, WIDTH],
            partitioner=v1.fixed_size_partitioner(4),
            initializer=v1.random_normal_initializer(stddev=0.1),
        )
        h = x + tf.nn.embedding_lookup(emb, ids)
        for i in range(layers):
            with v1.variable_scope(f"block{i}"):
                w = v1.get_variable(
                    "kernel", [WIDTH, WIDTH], initializer=v1.glorot_uniform_initializer()
                )
                b = v1.get_variable("bias", [WIDTH], initializer=v1.zeros_initializer())
                gamma = v1.get_variable("gamma", [WIDTH], initializer=v1.ones_initializer())
                beta = v1.get_variable("beta", [WIDTH], initializer=v1.zeros_initializer())
                mean_var = v1.get_variable(
                    "moving_mean", [WIDTH], trainable=False, initializer=v1.zeros_initializer()
                )
                var_var = v1.get_variable(
                    "moving_variance", [WIDTH], trainable=False, initializer=v1.ones_initializer()
                )
                z = tf.matmul(h, w) + b
                if training:
                    mean, var = tf.nn.moments(z, [0])
                    for variable, value in ((mean_var, mean), (var_var, var)):
                        update = v1.assign(variable, 0.99 * variable + 0.01 * value)
                        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, update)
                else:
                    mean, var = mean_var, var_var
                z = tf.nn.batch_normalization(z, mean, var, beta, gamma, 1e-3)
                h = tf.nn.relu(z) + 0.1 * tf.tanh(z) * tf.sigmoid(z)
                # Cheap elementwise ops: the node count of a deep real-world module.
                for k in range(EXTRA_STEPS):
                    h = h * (1.0 - 0.001 * k) + tf.tanh(h) * 0.001
        hub.add_signature(inputs={"x": x, "ids": ids}, outputs={"default": h})
        hub.add_signature(
            "mean", inputs={"x": x, "ids": ids}, outputs={"default": tf.reduce_mean(h, axis=1)}
        )

    spec = hub.create_module_spec(
        module_fn, tags_and_args=[(set(), {"training": False}), ({"train"}, {"training": True})]
    )
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(path, session)
    loaded = hub.load_module_spec(path)
    for variant in loaded.native.variants:
        print(
            f"variant {sorted(variant.tags)}: {variant.num_nodes} nodes, "
            f"{sum(max(1, len(v.partitions)) for v in variant.variables)} variables",
            file=sys.stderr,
        )
    del np


def _inputs():
    import numpy as np

    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal([8, WIDTH]).astype(np.float32),
        "ids": rng.integers(0, VOCAB, [8]).astype(np.int64),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_hubcore(path: str, calls: int) -> dict:
    import tensorflow as tf

    import hubcore as hub

    v1 = tf.compat.v1
    inputs = _inputs()
    result: dict = {}
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    spec = hub.load_module_spec(path)
    t1 = time.perf_counter()
    with tf.Graph().as_default() as graph:
        module = hub.Module(spec)
        t2 = time.perf_counter()
        # Placeholders fed at run time, like the plain-TF column (constant inputs would let
        # grappler fold part of the graph and skew the first-run figures).
        feeds = {
            "x": v1.placeholder(tf.float32, [None, WIDTH], name="x"),
            "ids": v1.placeholder(tf.int64, [None], name="ids"),
        }
        call_times = []
        out = None
        for _ in range(max(1, calls)):
            start = time.perf_counter()
            out = module(feeds)
            call_times.append(time.perf_counter() - start)
        t3 = time.perf_counter()
        init = tf.group(v1.global_variables_initializer(), v1.tables_initializer())
        with v1.Session() as session:
            t4 = time.perf_counter()
            session.run(init)
            t5 = time.perf_counter()
            session.run(out, {feeds[k]: v for k, v in inputs.items()})
            t6 = time.perf_counter()
        result.update(
            load_spec=t1 - t0,
            module=t2 - t1,
            call_1=call_times[0],
            call_10=call_times[-1] if calls >= 10 else None,
            session_init=t5 - t3,
            first_result=(t6 - t0) if calls == 1 else None,
            ops=len(graph.get_operations()),
            rss_mb=_peak_rss_mb(),
            rss_delta_mb=_peak_rss_mb() - rss_before,
        )
        del t4
    return result


def run_plain(path: str) -> dict:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    v1 = tf.compat.v1
    inputs = _inputs()
    rss_before = _peak_rss_mb()
    t0 = time.perf_counter()
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    meta_graph = next(m for m in saved_model.meta_graphs if not m.meta_info_def.tags)
    t1 = time.perf_counter()
    with tf.Graph().as_default() as graph:
        v1.train.import_meta_graph(meta_graph)
        t2 = time.perf_counter()
        saver = v1.train.Saver(v1.global_variables())
        signature = meta_graph.signature_def["default"]
        out = graph.get_tensor_by_name(signature.outputs["default"].name)
        feeds = {graph.get_tensor_by_name(signature.inputs[k].name): v for k, v in inputs.items()}
        tables = v1.tables_initializer()
        t3 = time.perf_counter()
        with v1.Session() as session:
            saver.restore(session, os.path.join(path, "variables", "variables"))
            session.run(tables)
            t4 = time.perf_counter()
            session.run(out, feeds)
            t5 = time.perf_counter()
    return dict(
        load_spec=t1 - t0,
        module=t2 - t1,
        call_1=None,
        call_10=None,
        session_init=t4 - t2,
        first_result=t5 - t0,
        ops=len(graph.get_operations()),
        rss_mb=_peak_rss_mb(),
        rss_delta_mb=_peak_rss_mb() - rss_before,
        restore_only=t4 - t3,
    )


def _child(mode: str, path: str) -> None:
    use_build_dir()  # HUBCORE_BUILD_DIR=build/dev measures a development build
    _quiet()
    import tensorflow as tf  # noqa: F401  (import time excluded from every figure)

    if mode == "hubcore-first":
        result = run_hubcore(path, calls=1)
    elif mode == "hubcore-calls":
        result = run_hubcore(path, calls=10)
    else:
        result = run_plain(path)
    print("RESULT " + json.dumps(result))


def _spawn(mode: str, path: str) -> dict:
    return run_child(__file__, ["--child", mode, "--dir", path], mode)


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=100)
    parser.add_argument("--dir", default="/tmp/hubcore_bench_module")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.dir)
        return
    _quiet()
    if not os.path.exists(os.path.join(args.dir, "tfhub_module.pb")):
        build(args.dir, args.layers)

    # Interleaved, so that a burst of load from elsewhere hits both columns alike.
    hub_first, hub_calls, plain = [], [], []
    for _ in range(args.repeat):
        hub_first.append(_spawn("hubcore-first", args.dir))
        plain.append(_spawn("plain", args.dir))
        hub_calls.append(_spawn("hubcore-calls", args.dir))

    def fmt(v, unit="s"):
        if v is None:
            return "—"
        return f"{v:.3f} s" if unit == "s" else f"{v:.0f} MB"

    rows = [
        (
            "load spec / parse saved_model.pb",
            _median(hub_first, "load_spec"),
            _median(plain, "load_spec"),
            "s",
        ),
        (
            "Module() / import_meta_graph",
            _median(hub_first, "module"),
            _median(plain, "module"),
            "s",
        ),
        ("1st call", _median(hub_calls, "call_1"), None, "s"),
        ("10th call", _median(hub_calls, "call_10"), None, "s"),
        (
            "session init (variables + tables)",
            _median(hub_first, "session_init"),
            _median(plain, "session_init"),
            "s",
        ),
        (
            "time to first result",
            _median(hub_first, "first_result"),
            _median(plain, "first_result"),
            "s",
        ),
        ("peak RSS (whole process)", _median(hub_first, "rss_mb"), _median(plain, "rss_mb"), "MB"),
        (
            "peak RSS growth after `import tensorflow`",
            _median(hub_first, "rss_delta_mb"),
            _median(plain, "rss_delta_mb"),
            "MB",
        ),
        ("graph ops after first result", _median(hub_first, "ops"), _median(plain, "ops"), "n"),
    ]
    print("| measure | hubcore | plain TensorFlow | ratio |")
    print("|---|---|---|---|")
    for label, a, b, unit in rows:
        ratio = f"{a / b:.2f}x" if a is not None and b else ""
        if unit == "n":
            print(f"| {label} | {a:.0f} | {b:.0f} | {ratio} |")
        else:
            print(f"| {label} | {fmt(a, unit)} | {fmt(b, unit)} | {ratio} |")
    c1, c10 = _median(hub_calls, "call_1"), _median(hub_calls, "call_10")
    print(f"\n10th call / 1st call: {c10 / c1:.2f}x  (median of {args.repeat} processes each)")


if __name__ == "__main__":
    main()
