"""Feature columns computed by modules: tensorflow_hub 0.15's ``text_embedding_column``,
``text_embedding_column_v2``, ``sparse_text_embedding_column`` and ``image_embedding_column``.

The columns are dense columns for both feature-column APIs that TensorFlow 2.21 still ships:
``tf.compat.v1.feature_column.input_layer`` (TF1 graphs; the module is instantiated as a
:class:`hubcore.Module` when the layer is built) and the v2 protocol (``create_state`` /
``get_dense_tensor`` with a state manager, as tf_keras' ``DenseFeatures`` drives it).

tensorflow_hub's ``LatestModuleExporter`` and ``register_module_for_export`` are not here: they
were hooks into ``tf.estimator``, which TensorFlow 2.21 no longer has. Export a trained module with
:meth:`hubcore.Module.export` (``module.export(path, session)``) instead.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import tensorflow as tf

from hubcore import _tf_internal
from hubcore.errors import CorruptModuleError, InvalidArgumentError, InvalidModuleError
from hubcore.image_util import get_expected_image_size
from hubcore.module import Module
from hubcore.module_spec import ModuleSpec, load_module_spec

__all__ = [
    "image_embedding_column",
    "sparse_text_embedding_column",
    "text_embedding_column",
    "text_embedding_column_v2",
]

_MODULE_RESOURCE = "module"
_COMBINERS = ("mean", "sqrtn", "sum")


def text_embedding_column(
    key: Any, module_spec: ModuleSpec | str | os.PathLike[str], trainable: bool = False
) -> Any:
    """A dense column embedding a string feature with a text-embedding module.

    Each example's string (any length) goes through the module's default signature, which must
    take a 1-D string tensor and give a ``default`` output of shape ``[batch, K]`` float32.

    Args:
      key: the feature name (or a feature column giving the text).
      module_spec: a :class:`hubcore.ModuleSpec` or a path to load one from.
      trainable: whether the module's variables train (frozen by default).

    Raises:
      InvalidModuleError: (a ValueError) when the module does not have that signature.
    """
    return _TextEmbeddingColumn(key=key, module_spec_path=module_spec, trainable=trainable)


def sparse_text_embedding_column(
    key: Any,
    module_spec: ModuleSpec | str | os.PathLike[str],
    combiner: str,
    default_value: str | None,
    trainable: bool = False,
) -> Any:
    """A dense column combining the embeddings of a sparse string feature's tokens.

    Each token (a value of the ``SparseTensor`` feature) is embedded with the text-embedding
    module, and an example's tokens are reduced with ``combiner`` as a bag of words.

    Args:
      key: the feature name (or a feature column giving the tokens).
      module_spec: a :class:`hubcore.ModuleSpec` or a path to load one from.
      combiner: "mean", "sqrtn" or "sum".
      default_value: the token for examples with none; None assumes every example has one.
      trainable: whether the module's variables train (frozen by default).

    Raises:
      InvalidModuleError: when the module is not a text embedding (see text_embedding_column).
      InvalidArgumentError: (a ValueError) for another combiner.
    """
    spec = _as_module_spec(module_spec)
    _check_text_embedding(spec)
    if combiner not in _COMBINERS:
        raise InvalidArgumentError(f"combiner must be 'mean', 'sqrtn' or 'sum': {combiner!r}")
    return _SparseTextEmbeddingColumn(
        key=key,
        combiner=combiner,
        module_spec=spec,
        default_value=default_value,
        trainable=trainable,
    )


def image_embedding_column(
    key: Any,
    module_spec: ModuleSpec | str | os.PathLike[str],
    image_size: tuple[int, int] | list[int] | None = None,
) -> Any:
    """A dense column embedding images (float32 RGB pixels in [0, 1]) with an image module.

    The module's default signature must take one float32 input named ``images`` and give a
    ``default`` output of shape ``[batch, K]`` float32. Examples are ``[height, width, 3]``, at
    ``image_size`` or else the module's :func:`hubcore.get_expected_image_size`.

    Raises:
      InvalidModuleError: when the module does not have that signature, or (without
        ``image_size``) does not say which image size it expects.
    """
    if isinstance(image_size, list):
        image_size = tuple(image_size)  # the column is a namedtuple: keep it hashable
    return _ImageEmbeddingColumn(key=key, module_spec_path=module_spec, image_size=image_size)


def text_embedding_column_v2(
    key: Any,
    module_path: str | os.PathLike[str],
    output_key: str | None = None,
    trainable: bool = False,
) -> Any:
    """A v2 dense column embedding a string feature with a model loaded for TF2.

    ``module_path`` is a TF2 SavedModel (loaded with ``tf.saved_model.load``) or a TF1 Hub module
    (loaded with :func:`hubcore.load`); the loaded object is called on a 1-D string batch. When
    it returns a dict, ``output_key`` names the result to use. The column works with the v2
    feature-column protocol only (its state is created by ``create_state``).
    """
    if not hasattr(_tf_internal.StateManager, "has_resource"):
        raise InvalidArgumentError(
            f"TensorFlow {tf.__version__}'s feature-column StateManager has no has_resource, "
            "which text_embedding_column_v2 needs"
        )
    return _TextEmbeddingColumnV2(
        key=key, module_path=os.fspath(module_path), output_key=output_key, trainable=trainable
    )


# ---- validation ----------------------------------------------------------------------------------


def _as_module_spec(spec: ModuleSpec | str | os.PathLike[str]) -> ModuleSpec:
    return spec if isinstance(spec, ModuleSpec) else load_module_spec(spec)


def _describe(spec: ModuleSpec) -> str:
    return spec.path or "the module"


def _check_text_embedding(spec: ModuleSpec) -> None:
    issues = []
    inputs = spec.get_input_info_dict()
    if len(inputs) != 1:
        issues.append("Module default signature must require only one input")
    else:
        (info,) = inputs.values()
        shape = info.get_shape()
        if not (info.dtype == tf.string and shape.rank == 1 and shape.as_list() == [None]):
            issues.append(
                "Module default signature must have only one input "
                "tf.Tensor(shape=(?,), dtype=string)"
            )
    _check_embedding_output(spec, issues, text=True)
    if issues:
        raise InvalidModuleError(f"Module {_describe(spec)} is not a text-embedding: {issues!r}")


def _check_image_embedding(spec: ModuleSpec, check_image_size: bool) -> None:
    issues = []
    inputs = spec.get_input_info_dict()
    if list(inputs) != ["images"] or inputs["images"].dtype != tf.float32:
        issues.append(
            "Module 'default' signature must require a single input, which must have type "
            "float32 and name 'images'."
        )
    elif check_image_size:
        try:
            get_expected_image_size(spec)
        except ValueError as e:
            issues.append(
                f"Module does not support hub.get_expected_image_size(); original error was:\n{e}"
            )
    _check_embedding_output(spec, issues, text=False)
    if issues:
        raise InvalidModuleError(
            f"Module {_describe(spec)} is not usable as image embedding: {issues!r}"
        )


def _check_embedding_output(spec: ModuleSpec, issues: list[str], *, text: bool) -> None:
    """A float32 'default' output of shape [batch, K] with K known (and, for text, batch not)."""
    signature = "Module default signature" if text else "Module 'default' signature"
    outputs = spec.get_output_info_dict()
    if "default" not in outputs:
        issues.append(f"{signature} must have a 'default' output.")
        return
    info = outputs["default"]
    shape = info.get_shape()
    dims = shape.as_list() if shape.rank == 2 else None
    ok = info.dtype == tf.float32 and dims is not None and bool(dims[1])
    if text and dims is not None and dims[0]:
        ok = False
    if not ok:
        issues.append(
            f"{signature} must have a 'default' output of "
            f"tf.Tensor(shape={'(?,K)' if text else '(_,K)'}, dtype=float32)."
        )


# ---- the columns ---------------------------------------------------------------------------------


class _DenseModuleColumn(_tf_internal.DenseColumnV1, _tf_internal.DenseColumn):
    """A dense float32 column for both feature-column APIs, named ``<key>_hub_module_embedding``.

    Subclasses are namedtuples with ``key`` first; they define the module call.
    """

    key: Any

    @property
    def dtype(self) -> tf.DType:
        return tf.float32

    @property
    def _is_v2_column(self) -> bool:
        return True

    @property
    def parents(self) -> list[Any]:
        return [self.key]

    @property
    def name(self) -> str:
        key_name = self.key if isinstance(self.key, str) else self.key.name
        return f"{key_name}_hub_module_embedding"

    def _transform_feature(self, inputs: Any) -> Any:
        return inputs.get(self.key)

    def transform_feature(self, transformation_cache: Any, state_manager: Any) -> Any:
        return transformation_cache.get(self.key, state_manager)

    @property
    def _parse_example_spec(self) -> dict[Any, Any]:
        return self.parse_example_spec

    @property
    def _variable_shape(self) -> tf.TensorShape:
        return self.variable_shape

    def get_config(self) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))  # type: ignore[attr-defined]

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: Any = None, columns_by_name: Any = None
    ) -> Any:
        return cls(**config)


class _SpecColumn(_DenseModuleColumn):
    """A column over a TF1 Hub module: its output shape comes from the spec."""

    module_spec: ModuleSpec

    @property
    def variable_shape(self) -> tf.TensorShape:
        return self.module_spec.get_output_info_dict()["default"].get_shape()[1:]

    def _config(self, function: str) -> dict[str, Any]:
        path = self._fields[1]
        if not isinstance(getattr(self, path), str):
            raise NotImplementedError(
                f"Can only generate a valid config for `hub.{function}` that uses a string "
                f"`module_spec`. Got `type(module_spec)`: {type(getattr(self, path))}"
            )
        return super().get_config()


class _TextEmbeddingColumn(
    _SpecColumn,
    collections.namedtuple("_TextEmbeddingColumn", ("key", "module_spec_path", "trainable")),
):
    """Returned by text_embedding_column()."""

    def __init__(self, key: Any, module_spec_path: Any, trainable: bool) -> None:
        self.module_spec = _as_module_spec(self.module_spec_path)
        _check_text_embedding(self.module_spec)
        super().__init__()

    @property
    def parse_example_spec(self) -> dict[Any, Any]:
        return {self.key: tf.io.FixedLenFeature([1], tf.string)}

    def create_state(self, state_manager: Any) -> None:
        trainable = self.trainable and _tf_internal.state_manager_trainable(state_manager)
        module = Module(self.module_spec, trainable=trainable)
        state_manager.add_resource(self, _MODULE_RESOURCE, module)

    def _embed(self, text: tf.Tensor, module: Module) -> tf.Tensor:
        return module(tf.reshape(text, shape=[-1]))

    def _get_dense_tensor(
        self, inputs: Any, weight_collections: Any = None, trainable: bool | None = None
    ) -> tf.Tensor:
        module = Module(self.module_spec, trainable=bool(self.trainable and trainable))
        return self._embed(inputs.get(self), module)

    def get_dense_tensor(self, transformation_cache: Any, state_manager: Any) -> tf.Tensor:
        module = state_manager.get_resource(self, _MODULE_RESOURCE)
        return self._embed(transformation_cache.get(self, state_manager), module)

    def get_config(self) -> dict[str, Any]:
        return self._config("text_embedding_column")


class _ImageEmbeddingColumn(
    _SpecColumn,
    collections.namedtuple("_ImageEmbeddingColumn", ("key", "module_spec_path", "image_size")),
):
    """Returned by image_embedding_column()."""

    def __init__(self, key: Any, module_spec_path: Any, image_size: Any) -> None:
        self.module_spec = _as_module_spec(self.module_spec_path)
        _check_image_embedding(self.module_spec, check_image_size=self.image_size is None)
        super().__init__()

    @property
    def parse_example_spec(self) -> dict[Any, Any]:
        height, width = self.image_size or get_expected_image_size(self.module_spec)
        return {self.key: tf.io.FixedLenFeature([height, width, 3], tf.float32)}

    def create_state(self, state_manager: Any) -> None:
        state_manager.add_resource(self, _MODULE_RESOURCE, Module(self.module_spec))

    def _get_dense_tensor(
        self, inputs: Any, weight_collections: Any = None, trainable: bool | None = None
    ) -> tf.Tensor:
        return Module(self.module_spec)({"images": inputs.get(self)})

    def get_dense_tensor(self, transformation_cache: Any, state_manager: Any) -> tf.Tensor:
        module = state_manager.get_resource(self, _MODULE_RESOURCE)
        return module({"images": transformation_cache.get(self, state_manager)})

    def get_config(self) -> dict[str, Any]:
        return self._config("image_embedding_column")


class _SparseTextEmbeddingColumn(
    _SpecColumn,
    collections.namedtuple(
        "_SparseTextEmbeddingColumn",
        ("key", "combiner", "module_spec", "default_value", "trainable"),
    ),
):
    """Returned by sparse_text_embedding_column()."""

    @property
    def parse_example_spec(self) -> dict[Any, Any]:
        return {self.key: tf.io.VarLenFeature(tf.string)}

    def _embed(self, tokens: tf.SparseTensor, trainable: bool) -> tf.Tensor:
        module = Module(self.module_spec, trainable=bool(self.trainable and trainable))
        if self.default_value is not None:
            tokens = tf.sparse.fill_empty_rows(tokens, self.default_value)[0]
        token_embeddings = module(tokens.values)
        # Token i of the batch is row i of token_embeddings: combine each example's rows.
        token_ids = tf.SparseTensor(
            indices=tokens.indices,
            values=tf.range(tf.shape(tokens.indices)[0], dtype=tf.int32),
            dense_shape=tokens.dense_shape,
        )
        return tf.nn.embedding_lookup_sparse(
            token_embeddings, token_ids, sp_weights=None, combiner=self.combiner
        )

    def _get_dense_tensor(
        self, inputs: Any, weight_collections: Any = None, trainable: bool | None = None
    ) -> tf.Tensor:
        return self._embed(inputs.get(self), bool(self.trainable and trainable))

    def get_dense_tensor(self, transformation_cache: Any, state_manager: Any) -> tf.Tensor:
        return self._embed(transformation_cache.get(self, state_manager), self.trainable)


class _TextEmbeddingColumnV2(
    _DenseModuleColumn,
    collections.namedtuple(
        "_TextEmbeddingColumnV2", ("key", "module_path", "output_key", "trainable")
    ),
):
    """Returned by text_embedding_column_v2()."""

    @property
    def _resource_name(self) -> str:
        return f"hub_text_column_{self.key}"

    @property
    def parse_example_spec(self) -> dict[Any, Any]:
        return {self.key: tf.io.FixedLenFeature([1], tf.string)}

    def create_state(self, state_manager: Any) -> None:
        trainable = self.trainable and _tf_internal.state_manager_trainable(state_manager)
        model = _TextModel(self.module_path, self.output_key, trainable)
        state_manager.add_resource(self, self._resource_name, model)
        self._output_shape = model.output_shape()

    @property
    def variable_shape(self) -> tf.TensorShape:
        shape = getattr(self, "_output_shape", None)
        if shape is None:
            raise InvalidArgumentError(
                f"{self.name}: the output shape is known once the column's state is created "
                "(create_state, by a v2 feature-column layer)"
            )
        return shape

    def get_dense_tensor(self, transformation_cache: Any, state_manager: Any) -> tf.Tensor:
        text = transformation_cache.get(self, state_manager)
        model = state_manager.get_resource(self, self._resource_name)
        return model(tf.reshape(text, shape=[-1]))


class _TextModel(tf.Module):
    """A model loaded for TF2 and called on a string batch; picks ``output_key`` from a dict."""

    def __init__(self, path: str, output_key: str | None, trainable: bool) -> None:
        super().__init__(name="hub_text_model")
        tf2_saved_model = os.path.isfile(os.path.join(path, "saved_model.pb")) and not (
            os.path.exists(os.path.join(path, "tfhub_module.pb"))
        )
        if tf2_saved_model:
            try:
                self._loaded = tf.saved_model.load(path)
            except (OSError, ValueError, tf.errors.OpError) as e:
                raise CorruptModuleError(f"Cannot load SavedModel {path}: {e}") from None
        else:
            from hubcore.eager_module import load  # a TF1 Hub module; its errors name the path

            self._loaded = load(path)
        self._output_key = output_key
        self._trainable = trainable
        self._path = path

    @property
    def trainable_variables(self) -> tuple[tf.Variable, ...]:
        return tuple(self._loaded.trainable_variables) if self._trainable else ()

    def __call__(self, text: tf.Tensor) -> tf.Tensor:
        result = self._loaded(text)
        if isinstance(result, dict) and self._output_key is not None:
            if self._output_key not in result:
                raise InvalidArgumentError(
                    f"{self._path} has no output {self._output_key!r}; it returns {sorted(result)}"
                )
            result = result[self._output_key]
        return result

    def output_shape(self) -> tf.TensorShape:
        call = tf.function(self.__call__, input_signature=[tf.TensorSpec([None], tf.string)])
        concrete = call.get_concrete_function()
        if not isinstance(concrete.output_shapes, tf.TensorShape):
            raise InvalidArgumentError(
                f"The SavedModel {self._path} doesn't return a single result on __call__, "
                f"instead it returns {concrete.structured_outputs}. Did you specify the right "
                "`output_key`?"
            )
        return concrete.output_shapes[1:]
