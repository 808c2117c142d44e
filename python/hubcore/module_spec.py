"""``ModuleSpec`` and ``load_module_spec``: a TF1 Hub module's description, parsed in C++."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from hubcore import _core
from hubcore.errors import (
    SignatureNotFoundError,
    VariantNotFoundError,
)
from hubcore.resolver import resolve

__all__ = [
    "ModuleSpec",
    "SpecVariantView",
    "Tags",
    "format_tags",
    "load_module_spec",
    "normalize_tags",
]

Tags = frozenset[str]


def normalize_tags(tags: Iterable[str] | None) -> Tags:
    """``None`` and empty mean the default (empty) tag set."""
    if tags is None:
        return frozenset()
    if isinstance(tags, str):
        return frozenset([tags])
    return frozenset(tags)


def format_tags(tags: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(tags)) + "}"


class ModuleSpec:
    """The description of a TF1 Hub module: graph variants, signatures, variables, assets.

    Create one with :func:`load_module_spec` (a module directory) or
    :func:`hubcore.create_module_spec` (a ``module_fn``).
    """

    def __init__(self, native: _core.ModuleSpec, checkpoint_path: str | None = None) -> None:
        self._native = native
        self._checkpoint_path = checkpoint_path
        self._variants = {frozenset(v.tags): v for v in native.variants}
        self._info_cache: dict[tuple[Tags, str, bool], dict[str, Any]] = {}

    # ---- the tensorflow_hub API -------------------------------------------------------------

    def get_tags(self) -> list[Tags]:
        """The tag sets of the graph variants (the default variant is the empty set).

        As tensorflow_hub returned them: the file's order (``tags_and_args`` order for a spec
        from ``create_module_spec``) put through ``sorted``, which for sets orders only a subset
        before its supersets and otherwise keeps the file's order.
        """
        return sorted(frozenset(v.tags) for v in self._native.variants)

    def get_signature_names(self, tags: Iterable[str] | None = None) -> list[str]:
        return [s.name for s in self.variant(tags).signatures]

    def get_input_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Maps input names to :class:`hubcore.tensor_info.ParsedTensorInfo`."""
        return self._info_dict(signature, tags, inputs=True)

    def get_output_info_dict(
        self, signature: str | None = None, tags: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """Maps output names to :class:`hubcore.tensor_info.ParsedTensorInfo`."""
        return self._info_dict(signature, tags, inputs=False)

    def get_attached_message(
        self, key: str, message_type: Any, tags: Iterable[str] | None = None, required: bool = False
    ) -> Any:
        """Parses the message attached under ``key`` into a new ``message_type()``.

        Returns None when absent, or raises ``KeyError`` if ``required``.
        """
        variant = self.variant(tags)
        data = variant.attached_messages.get(key)
        if data is None:
            if required:
                raise KeyError(
                    f"No attached message for key '{key}' in graph version "
                    f"{sorted(variant.tags)} of Hub Module"
                )
            return None
        message = message_type()
        message.ParseFromString(data)
        return message

    def export(
        self,
        path: str,
        _sentinel: Any = None,
        checkpoint_path: str | None = None,
        name_transform_fn: Any = None,
    ) -> None:
        """Writes this spec to ``path`` with variable values from ``checkpoint_path``."""
        from hubcore.module import export_spec  # Module imports this module.

        export_spec(self, path, _sentinel, checkpoint_path, name_transform_fn)

    # ---- hubcore additions --------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The module directory ('' for a spec created in memory and not yet exported)."""
        return self._native.path

    @property
    def checkpoint_path(self) -> str | None:
        """Checkpoint prefix the variables are initialized from, or None."""
        if self._checkpoint_path is not None:
            return self._checkpoint_path
        return self._native.checkpoint_prefix or None

    @property
    def format_version(self) -> int:
        return self._native.format_version

    @property
    def native(self) -> _core.ModuleSpec:
        """The C++ spec (hubcore._core.ModuleSpec)."""
        return self._native

    def variant(self, tags: Iterable[str] | None = None) -> _core.GraphVariant:
        """The graph variant for ``tags``; raises VariantNotFoundError listing those that exist."""
        key = normalize_tags(tags)
        try:
            return self._variants[key]
        except KeyError:
            known = ", ".join(format_tags(t) for t in self.get_tags())
            raise VariantNotFoundError(
                f"No such graph variant: tags={sorted(key)}. The module has: {known}"
            ) from None

    def check_safe_mode(self, tags: Iterable[str] | None = None) -> None:
        """Raises :class:`hubcore.UnsafeModuleError`, naming the node and its op, unless the
        variant for ``tags`` uses only the safe-mode allowlist of ops (docs/security.md).

        The one safe-mode check behind ``Runner``, ``Module`` and ``hubcore run`` ``safe_mode``.
        """
        self.variant(tags)
        self._native.check_safe_mode(set(normalize_tags(tags)))

    def op_types(self, tags: Iterable[str] | None = None) -> list[_core.OpTypeUse]:
        """Every op type the variant uses (graph and function library) and what it touches."""
        self.variant(tags)
        return self._native.op_types(set(normalize_tags(tags)))

    def signature(self, name: str | None, tags: Iterable[str] | None = None) -> _core.SignatureInfo:
        variant = self.variant(tags)
        name = name or "default"
        for sig in variant.signatures:
            if sig.name == name:
                return sig
        known = ", ".join(repr(s.name) for s in variant.signatures) or "none"
        raise SignatureNotFoundError(
            f"Signature '{name}' is missing from meta graph {format_tags(variant.tags)}. "
            f"Signatures: {known}"
        )

    def _info_dict(self, signature: str | None, tags: Iterable[str] | None, inputs: bool):
        from hubcore.tensor_info import ParsedTensorInfo

        key = (normalize_tags(tags), signature or "default", inputs)
        cached = self._info_cache.get(key)
        if cached is None:
            sig = self.signature(signature, tags)
            cached = {t.key: ParsedTensorInfo(t) for t in (sig.inputs if inputs else sig.outputs)}
            self._info_cache[key] = cached
        return dict(cached)

    def __repr__(self) -> str:
        tags = ", ".join(format_tags(t) for t in self.get_tags())
        return f"<hubcore.ModuleSpec path={self.path!r} variants=[{tags}]>"


class SpecVariantView:
    """What an instance of one graph variant of a spec tells about it (``hub.Module`` and
    ``hubcore.load``'s object share it); the class sets ``_spec`` and ``_tags``."""

    _spec: ModuleSpec
    _tags: Tags

    def get_signature_names(self) -> list[str]:
        return self._spec.get_signature_names(tags=self._tags)

    def get_input_info_dict(self, signature: str | None = None) -> dict[str, Any]:
        return self._spec.get_input_info_dict(signature=signature, tags=self._tags)

    def get_output_info_dict(self, signature: str | None = None) -> dict[str, Any]:
        return self._spec.get_output_info_dict(signature=signature, tags=self._tags)

    def get_attached_message(self, key: str, message_type: Any, required: bool = False) -> Any:
        return self._spec.get_attached_message(
            key, message_type, tags=self._tags, required=required
        )

    @property
    def spec(self) -> ModuleSpec:
        return self._spec

    @property
    def tags(self) -> Tags:
        return self._tags


def load_module_spec(path: str | os.PathLike[str]) -> ModuleSpec:
    """Loads a TF1 Hub module; raises a hubcore.Error subclass on problems.

    ``path`` is any handle :func:`hubcore.resolve` accepts: a directory, a ``.tar``/``.tar.gz``
    archive, a ``file://``, ``http(s)://`` or ``gs://`` URL (fetched into the cache first).
    """
    return ModuleSpec(_core.ModuleSpec.load(resolve(path)))
