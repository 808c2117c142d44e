"""Builds the modules of test_eager_control_flow.py: ``python control_flow_modules.py DIR``.

Each module comes from one module_fn with control flow v1 (TF1: Switch/Merge, Enter/Exit and the
cond_context / while_context collections) or v2 (If/While ops with library functions) switched on
around its graph construction. Their signature maps x [None, 3] through a cond or a while loop
over a resource variable w [3] and a TF1 ref variable b [].
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import tensorflow as tf

import conftest  # noqa: F401  (the in-tree build, when HUBCORE_BUILD_DIR is set)
import hubcore as hub

v1 = tf.compat.v1


@contextlib.contextmanager
def _control_flow(v2: bool):
    """Control flow v2 on or off while building a graph; the global setting is restored."""
    was_v2 = v1.control_flow_v2_enabled()
    (v1.enable_control_flow_v2 if v2 else v1.disable_control_flow_v2)()
    try:
        yield
    finally:
        (v1.enable_control_flow_v2 if was_v2 else v1.disable_control_flow_v2)()


def _cond(x, w, b):
    return tf.cond(tf.reduce_sum(x) > 0, lambda: x * w + b, lambda: x - w * b)


def _other_cond(x, w, b):  # The structure of _cond (so as many functions), other math.
    return tf.cond(tf.reduce_sum(x) > 0, lambda: x * w - b, lambda: x + w * b)


def _counting_cond(x, w, b):
    """A cond whose taken branch also writes a variable (through a Switch of its handle)."""
    count = v1.get_variable("count", initializer=0.0, trainable=False, use_resource=True)

    def taken():
        with tf.control_dependencies([count.assign_add(1.0)]):
            return x * w + b

    return tf.cond(tf.reduce_sum(x) > 0, taken, lambda: x - w * b)


def _while_loop(x, w, b):
    _, y = v1.while_loop(
        lambda i, acc: i < 3, lambda i, acc: (i + 1, tf.tanh(acc * w + b)), [tf.constant(0), x]
    )
    return y


# name -> (control flow v2?, construct, op types the exported graph must contain)
MODULES = {
    "v1_cond": (False, _cond, {"Switch", "Merge"}),
    "v1_counting_cond": (False, _counting_cond, {"Switch", "AssignAddVariableOp"}),
    "v1_while": (False, _while_loop, {"Enter", "Exit", "NextIteration"}),
    "v2_cond": (True, _cond, {"If"}),
    "v2_while": (True, _while_loop, {"While"}),
    "v2_other_cond": (True, _other_cond, {"If"}),
}


def export(path: Path, v2: bool, construct) -> None:
    def module_fn():
        x = v1.placeholder(tf.float32, [None, 3])
        w = v1.get_variable("w", initializer=tf.constant([1.0, 2.0, -0.5]), use_resource=True)
        # A TF1 ref variable too: the function form turns it into a resource variable.
        b = v1.get_variable("b", initializer=tf.constant(0.25), use_resource=False)
        with _control_flow(v2):
            y = construct(x, w, b)
        hub.add_signature(inputs=x, outputs=y)

    spec = hub.create_module_spec(module_fn)
    with tf.Graph().as_default():
        module = hub.Module(spec)
        with v1.Session() as session:
            session.run(v1.global_variables_initializer())
            module.export(str(path), session)


if __name__ == "__main__":
    for name, (v2, construct, _) in MODULES.items():
        export(Path(sys.argv[1]) / name, v2, construct)
