"""Benchmark: where session init goes when a TF1 session restores a large module's variables.

On the large module of bench_module.py (built once under --dir), each in a fresh process and side
by side with plain TensorFlow, it splits "session init" into its parts:

  extend     the first Session.run of a no-op: TensorFlow copies the graph into the session
  restore    the first run of the variables' initializers (hubcore: global_variables_initializer
             of Module(); plain TF: Saver(global_variables()).restore after import_meta_graph),
             which includes grappler optimizing the restore subgraph and building its executor
  again      the same restore run a second time (executor cached: the restore's own work)

once with TensorFlow's default session config and once with grappler's meta optimizer off, so
the share of grappler shows. With --call, hubcore's Module is also called once before the
session starts (as in bench_module.py), which makes the graph the session copies larger.

Usage: python bench/bench_session_init.py [--dir /tmp/hubcore_bench_module] [--repeat 3] [--call]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _dev_build import run_child, use_build_dir
from bench_module import WIDTH
from bench_module import build as build_large_module

MODES = ("hubcore", "plain")


def _session(grappler: bool):
    import tensorflow as tf

    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = not grappler
    return tf.compat.v1.Session(config=config)


def _measure(mode: str, path: str, grappler: bool, call: bool) -> dict[str, float]:
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        if mode == "hubcore":
            import hubcore

            module = hubcore.Module(hubcore.load_module_spec(path))
            if call:
                module({"x": v1.placeholder(tf.float32, [None, WIDTH]), "ids": [0]})

            initializer = v1.global_variables_initializer()

            def restore(session):
                session.run(initializer)
        else:
            from tensorflow.core.protobuf import saved_model_pb2

            saved_model = saved_model_pb2.SavedModel()
            saved_model.ParseFromString(Path(path, "saved_model.pb").read_bytes())
            meta_graph = next(m for m in saved_model.meta_graphs if not m.meta_info_def.tags)
            v1.train.import_meta_graph(meta_graph)
            saver = v1.train.Saver(v1.global_variables())
            prefix = os.path.join(path, "variables", "variables")

            def restore(session):
                saver.restore(session, prefix)

        noop = tf.no_op()
        with _session(grappler) as session:
            t0 = time.perf_counter()
            session.run(noop)
            t1 = time.perf_counter()
            restore(session)
            t2 = time.perf_counter()
            restore(session)
            t3 = time.perf_counter()
        return {
            "ops": len(graph.get_operations()),
            "extend": t1 - t0,
            "restore": t2 - t1,
            "again": t3 - t2,
        }


def _in_child(mode: str, path: str, grappler: bool, call: bool) -> dict[str, float]:
    args = ["--child", mode, "--dir", path]
    args += ["--no-grappler"] if not grappler else []
    args += ["--call"] if call else []
    return run_child(__file__, args, mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/tmp/hubcore_bench_module", help="the large module")
    parser.add_argument("--layers", type=int, default=100, help="blocks of the large module")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure")
    parser.add_argument("--call", action="store_true", help="call the Module before the session")
    parser.add_argument("--no-grappler", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_build_dir()
    if args.child:
        result = _measure(args.child, args.dir, not args.no_grappler, args.call)
        print("RESULT " + json.dumps(result))
        return
    if not Path(args.dir, "saved_model.pb").exists():
        build_large_module(args.dir, args.layers)
    print("| session config | measure | hubcore.Module | plain TF (Saver) |")
    print("|---|---|---|---|")
    for grappler in (True, False):
        runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for _ in range(args.repeat):  # the two kinds of process taken in turn
            for mode in MODES:
                runs[mode].append(_in_child(mode, args.dir, grappler, args.call))
        config = "default" if grappler else "meta optimizer off"
        for key in ("ops", "extend", "restore", "again"):
            cells = []
            for mode in MODES:
                value = statistics.median(r[key] for r in runs[mode])
                cells.append(f"{value:,.0f}" if key == "ops" else f"{value:.3f} s")
            label = "graph ops" if key == "ops" else key
            print(f"| {config} | {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
