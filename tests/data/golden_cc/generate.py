"""Writes the C++ runtime test's golden files (tests/data/golden_cc/*.txt) from the fixtures.

The golden .npz files are hard to read from C++, so each signature call becomes a small text file
of tensors. Signatures whose .npz is empty (sparse_in, ragged_in) and the text module's sparse
``tokens`` output get their reference values from plain TensorFlow (import_meta_graph + restore).

    python tests/data/golden_cc/generate.py      # with hubcore importable

File format, one block per tensor component:

    tensor <input|output> <key> <component> <dtype> <rank> <dim>...
    <values, space separated; strings as hex ("-" for empty)>
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent
sys.path.insert(0, str(DATA.parent))  # tests/plain_tf.py


def fmt_values(arr: np.ndarray) -> str:
    flat = arr.reshape(-1)
    if arr.dtype == object or arr.dtype.kind == "S":
        return " ".join(bytes(v).hex() or "-" for v in flat)
    if arr.dtype.kind == "f":
        return " ".join(f"{v:.9g}" for v in flat.tolist())
    if arr.dtype.kind == "b":
        return " ".join(str(int(v)) for v in flat)
    return " ".join(str(v) for v in flat.tolist())


def dtype_name(arr: np.ndarray) -> str:
    return "string" if arr.dtype == object or arr.dtype.kind == "S" else arr.dtype.name


def block(role: str, key: str, component: int, arr: np.ndarray) -> str:
    arr = np.asarray(arr)
    dims = " ".join(str(d) for d in arr.shape)
    head = f"tensor {role} {key} {component} {dtype_name(arr)} {arr.ndim}" + (
        f" {dims}" if dims else ""
    )
    return head + "\n" + fmt_values(arr) + "\n"


def write(name: str, sig: str, inputs: dict, outputs: dict) -> None:
    """inputs/outputs: key -> list of component arrays (TensorInfo::tensor_names order)."""
    text = "".join(
        block(role, key, i, c)
        for role, values in (("input", inputs), ("output", outputs))
        for key, comps in sorted(values.items())
        for i, c in enumerate(comps)
    )
    (HERE / f"{name}.{sig}.txt").write_text(text)


def from_npz(name: str) -> None:
    z = np.load(DATA / f"{name}.golden.npz")
    for sig in sorted({k.split(".")[1] for k in z.files if k.startswith("input.")}):
        inputs = {k.split(".", 2)[2]: [z[k]] for k in z.files if k.startswith(f"input.{sig}.")}
        outputs = {
            k.split(".", 1)[1]: [z[k]]
            for k in z.files
            if k.startswith(f"{sig}.") and not k.startswith("input.")
        }
        write(name, sig, inputs, outputs)


def from_plain_tf(name: str, sig: str, inputs: dict) -> None:
    import tensorflow as tf

    from plain_tf import ImportedVariant

    variant = ImportedVariant(DATA / name)
    signature = variant.signature(sig)
    with tf.compat.v1.Session(graph=variant.graph) as sess:
        variant.restore(sess)
        feed = {}
        for key, comps in inputs.items():
            tensors = variant.tensor(signature.inputs[key])
            if isinstance(tensors, tuple):
                feed.update(zip(tensors, comps, strict=True))
            else:
                feed[tensors] = comps[0]
        fetches = {k: variant.tensor(i) for k, i in signature.outputs.items()}
        result = sess.run(fetches, feed)
    outputs = {k: list(v) if isinstance(v, tuple) else [v] for k, v in result.items()}
    write(name, sig, inputs, outputs)


def main() -> None:
    for name in ("batchnorm", "partitioned", "text_table", "tiny"):
        from_npz(name)
    # Components in TensorInfo order: sparse (values, indices, dense_shape); ragged
    # (flat_values, row_splits_0).
    from_plain_tf(
        "sparse_in",
        "default",
        {
            "sp": [
                np.array([1.5, -2.0, 3.0, 0.25], np.float32),
                np.array([[0, 1], [0, 4], [1, 0], [2, 5]], np.int64),
                np.array([3, 6], np.int64),
            ]
        },
    )
    from_plain_tf(
        "ragged_in",
        "default",
        {
            "rt": [
                np.array([1.0, 2.0, 3.5, 4.0, -1.0], np.float32),
                np.array([0, 3, 3, 5], np.int64),
            ]
        },
    )
    from_plain_tf(
        "text_table",
        "tokens",
        {
            "sentences": [
                np.array([b"hello world", b"", b"the quick brown fox"], dtype=object),
            ]
        },
    )


if __name__ == "__main__":
    main()
