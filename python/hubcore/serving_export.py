"""``hubcore export-serving``: a TF1 Hub module as a plain SavedModel for standard serving.

TF1 Hub modules cannot be served as they are (empty tag set, no init op). The export imports one
graph variant into a fresh graph, restores its variables from the module checkpoint, and writes a
SavedModel with the ``serve`` tag, every module signature (method ``tensorflow/serving/predict``)
plus ``serving_default``, the assets, and a main op that initializes the tables. The result loads
with ``tf.saved_model.load`` and ``saved_model_cli run``.

This module needs TensorFlow's Python API (imported lazily). The plain-TensorFlow import of a
variant is also what the tests and benchmarks compare the Runner against (``tests/plain_tf.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from hubcore._export import atomic_directory
from hubcore.errors import (
    AlreadyExistsError,
    CorruptModuleError,
    InvalidArgumentError,
    SignatureNotFoundError,
)
from hubcore.module_spec import format_tags, load_module_spec, normalize_tags

__all__ = ["PREDICT_METHOD", "SERVE_TAG", "SERVING_DEFAULT", "export_serving"]

SERVE_TAG = "serve"
SERVING_DEFAULT = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


class _ImportedVariant:
    """A module variant imported into its own ``tf.Graph`` with plain TensorFlow (no hubcore).

    ``restore(sess)`` loads the checkpoint and initializes the tables.
    """

    def __init__(self, path: str | os.PathLike[str], tags: Iterable[str] | None = None) -> None:
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        spec = load_module_spec(path)
        self.tags = normalize_tags(tags)
        spec.variant(self.tags)  # VariantNotFoundError listing the tag sets
        saved_model = saved_model_pb2.SavedModel.FromString(spec.native.saved_model_bytes())
        (self.meta_graph,) = [
            m for m in saved_model.meta_graphs if frozenset(m.meta_info_def.tags) == self.tags
        ]
        self.checkpoint = spec.checkpoint_path
        self.graph = tf.Graph()
        with self.graph.as_default():
            # With variables and no saver_def, import_meta_graph returns a Saver over all of them
            # (partitioned ones included, by their full names): exactly the checkpoint's keys.
            self.saver = tf.compat.v1.train.import_meta_graph(self.meta_graph, clear_devices=True)
            self.table_init = tf.compat.v1.tables_initializer()
        self.signatures = dict(self.meta_graph.signature_def)

    def restore(self, sess: Any) -> None:
        import tensorflow as tf

        with self.graph.as_default():  # Saver.restore must not see eager mode
            if self.saver is not None and self.checkpoint:
                try:
                    self.saver.restore(sess, self.checkpoint)
                except tf.errors.OpError as e:  # a truncated or corrupt checkpoint
                    # The message's last unindented line is the reason; the rest is a stack.
                    lines = [s for s in e.message.splitlines() if s and not s[0].isspace()]
                    raise CorruptModuleError(
                        f"Cannot restore checkpoint {self.checkpoint}: {lines[-1]}"
                    ) from None
            sess.run(self.table_init)

    def signature(self, name: str) -> Any:
        if name not in self.signatures:
            raise SignatureNotFoundError(
                f"Signature '{name}' is missing from meta graph {format_tags(self.tags)}. "
                f"Signatures: {', '.join(sorted(self.signatures))}"
            )
        return self.signatures[name]


def export_serving(
    module_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    tags: Iterable[str] | None = None,
    signature: str = "default",
) -> str:
    """Writes ``out_dir`` as a SavedModel (tag ``serve``) whose ``serving_default`` is the
    module's ``signature``. The directory appears complete or not at all. Returns its path."""
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not (os.path.isdir(out_dir) and not os.listdir(out_dir)):
        raise AlreadyExistsError(f"Export target {out_dir} already exists")
    variant = _ImportedVariant(module_path, tags)
    variant.signature(signature)
    signature_defs = {}
    for name, sig in variant.signatures.items():
        copy = meta_graph_pb2.SignatureDef()
        copy.CopyFrom(sig)
        copy.method_name = PREDICT_METHOD
        signature_defs[name] = copy
    if SERVING_DEFAULT in signature_defs and signature != SERVING_DEFAULT:
        raise InvalidArgumentError(
            f"The module already has a '{SERVING_DEFAULT}' signature; export it with "
            f"--signature {SERVING_DEFAULT}"
        )
    signature_defs[SERVING_DEFAULT] = signature_defs[signature]

    with atomic_directory(out_dir) as tmp:
        with variant.graph.as_default():
            assets = variant.graph.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
            with tf.compat.v1.Session(graph=variant.graph) as sess:
                variant.restore(sess)
                builder = tf.compat.v1.saved_model.Builder(tmp)
                builder.add_meta_graph_and_variables(
                    sess,
                    [SERVE_TAG],
                    signature_def_map=signature_defs,
                    assets_collection=assets or None,
                    main_op=variant.table_init,
                    strip_default_attrs=True,
                    saver=variant.saver,
                )
                builder.save()
    return out_dir
