"""Small example modules built with hubcore's own ``create_module_spec`` (``hubcore example``).

- ``text-embedding``: a vocabulary asset and a hash table, lower-cases and tokenizes sentences
  (string input ``[None]``), looks the words up in an embedding variable and mean-pools them into
  the ``default`` output, float32 ``[None, 16]``. Unknown words map to ``<unk>``; an empty
  sentence gives zeros.
- ``image``: a 3x3 convolution with ReLU and global average pooling over ``images`` float32
  ``[None, None, None, 3]``, output ``default`` float32 ``[None, 8]``, with an attached
  ``image_module_info`` (32 x 32).

Weights come from a seeded NumPy generator, so every run writes the same module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import numpy as np

__all__ = [
    "EMBEDDING_DIM",
    "EXAMPLES",
    "IMAGE_FEATURES",
    "IMAGE_SIZE",
    "VOCABULARY",
    "write_example",
]

EMBEDDING_DIM = 16
IMAGE_SIZE = 32
IMAGE_FEATURES = 8
_SEED = 20260101

# Lower-case words; line 0 is the out-of-vocabulary token.
VOCABULARY = [
    "<unk>",
    *dict.fromkeys(
        """
the of and to a in is it you that he was for on are with as i his they be at one have this from
or had by hot word but what some we can out other were all there when up use your how said an each
she which do their time if will way about many then them write would like so these her long make
thing see him two has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light
kind off need house picture try us again animal point mother world near build self earth father
head stand own page should country found answer school grow study still learn plant cover food sun
four between state keep eye never last let thought city tree cross farm hard start might story saw
far sea draw left late run don't while press close night real life few north cat dog module hub
tensorflow embedding text vector model graph
""".split()
    ),
]


def _text_embedding_fn(vocab_path: str) -> Callable[[], None]:
    import tensorflow as tf

    from hubcore.creation import add_signature

    def module_fn() -> None:
        sentences = tf.compat.v1.placeholder(tf.string, shape=[None], name="sentences")
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocab_path,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=0,
        )
        normalized = tf.strings.regex_replace(tf.strings.lower(sentences), r"[^a-z0-9']+", " ")
        tokens = tf.strings.split(normalized)  # RaggedTensor [batch, (words)]
        ids = table.lookup(tokens.flat_values)
        embeddings = tf.compat.v1.get_variable(
            "embeddings",
            shape=[len(VOCABULARY), EMBEDDING_DIM],
            initializer=tf.compat.v1.zeros_initializer(),
        )
        vectors = tf.nn.embedding_lookup(embeddings, ids)
        pooled = tf.math.unsorted_segment_mean(
            vectors, tokens.value_rowids(), num_segments=tokens.nrows()
        )
        add_signature(inputs=sentences, outputs=tf.identity(pooled, name="default"))

    return module_fn


def _image_fn() -> None:
    import tensorflow as tf

    from hubcore.creation import add_signature
    from hubcore.image_util import ImageModuleInfo, attach_image_module_info

    images = tf.compat.v1.placeholder(tf.float32, shape=[None, None, None, 3], name="images")
    kernel = tf.compat.v1.get_variable(
        "conv/kernel", shape=[3, 3, 3, IMAGE_FEATURES], initializer=tf.compat.v1.zeros_initializer()
    )
    bias = tf.compat.v1.get_variable(
        "conv/bias", shape=[IMAGE_FEATURES], initializer=tf.compat.v1.zeros_initializer()
    )
    features = tf.nn.relu(tf.nn.conv2d(images, kernel, strides=1, padding="SAME") + bias)
    pooled = tf.reduce_mean(features, axis=[1, 2])
    add_signature(inputs={"images": images}, outputs=tf.identity(pooled, name="default"))
    info = ImageModuleInfo()
    info.default_image_size.height = IMAGE_SIZE
    info.default_image_size.width = IMAGE_SIZE
    attach_image_module_info(info)


def _write_text_embedding(directory: str) -> None:
    from hubcore import _export
    from hubcore.creation import create_module_spec

    rng = np.random.default_rng(_SEED)
    weights = rng.normal(0.0, 1.0 / np.sqrt(EMBEDDING_DIM), (len(VOCABULARY), EMBEDDING_DIM))
    weights[0] = 0.0  # <unk> contributes nothing but still counts in the mean
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = os.path.join(tmp, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            f.write("\n".join(VOCABULARY) + "\n")
        spec = create_module_spec(_text_embedding_fn(vocab_path))
        _export.export_with_values(spec, directory, {"embeddings": weights.astype(np.float32)})


def _write_image(directory: str) -> None:
    from hubcore import _export
    from hubcore.creation import create_module_spec

    rng = np.random.default_rng(_SEED + 1)
    kernel = rng.normal(0.0, 0.3, (3, 3, 3, IMAGE_FEATURES)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, (IMAGE_FEATURES,)).astype(np.float32)
    spec = create_module_spec(_image_fn)
    _export.export_with_values(spec, directory, {"conv/kernel": kernel, "conv/bias": bias})


EXAMPLES: dict[str, tuple[Callable[[str], None], str]] = {
    "text-embedding": (
        _write_text_embedding,
        f"sentences (string [None]) -> mean word embedding (float32 [None, {EMBEDDING_DIM}])",
    ),
    "image": (
        _write_image,
        f"images (float32 [None, H, W, 3]) -> pooled conv features "
        f"(float32 [None, {IMAGE_FEATURES}]), image_module_info {IMAGE_SIZE}x{IMAGE_SIZE}",
    ),
}


def write_example(name: str, directory: str | os.PathLike[str]) -> str:
    """Writes the example module ``name`` to ``directory`` (which must not exist or be empty).

    Returns the directory path. Raises ValueError for an unknown name.
    """
    entry = EXAMPLES.get(name)
    if entry is None:
        raise ValueError(f"Unknown example '{name}'. Examples: {', '.join(sorted(EXAMPLES))}")
    directory = os.fspath(directory)
    entry[0](directory)
    return directory
