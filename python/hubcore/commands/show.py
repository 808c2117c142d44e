"""``hubcore show MODULE``: what a module offers (variants, signatures, variables, assets).

Every signature input and output is listed with its dtype, shape and graph tensor names.
``--tags`` and ``--signature`` narrow the output to one graph variant or one signature, as
``saved_model_cli show --tag_set --signature_def`` does. An archive is shown under its own path.
``--ops`` adds the op types each variant uses and flags those that touch files, the network or
other processes, or that safe mode does not allow (docs/security.md).
The module is read with the C++ core only; TensorFlow's Python API is never imported, so this is
fast enough to run on every module of a directory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from hubcore import _core
from hubcore.commands import add_module_argument, add_tags_option, description
from hubcore.errors import ModulePathNotFoundError, SignatureNotFoundError, VariantNotFoundError
from hubcore.resolver import normalize_handle, resolve

__all__ = ["add_parser", "describe", "render_text", "run"]


def _shape(shape: _core.TensorShape) -> list[int | None] | None:
    if shape.unknown_rank:
        return None
    return [None if d < 0 else d for d in shape.dims]


def _tensor(info: _core.TensorInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dtype": _core.dtype_name(info.dtype) if info.dtype else None,
        "shape": _shape(info.shape),
        "kind": info.kind.name.lower(),
        "tensors": list(info.tensor_names),
    }
    if info.kind == _core.TensorKind.RAGGED:
        out["ragged_rank"] = info.ragged_rank
        out["row_splits_dtype"] = _core.dtype_name(info.row_splits_dtype)
    if info.kind == _core.TensorKind.COMPOSITE:
        out["type_spec"] = info.type_spec_class_name
    return out


def _format_tag_set(tags: Any) -> str:
    return "{" + ", ".join(sorted(tags)) + "}"


def describe(
    spec: _core.ModuleSpec,
    tags: list[str] | None = None,
    signature: str | None = None,
    path: str | None = None,
    ops: bool = False,
) -> dict[str, Any]:
    """A JSON-serializable description of a loaded module (the ``--json`` output).

    ``tags`` keeps only that graph variant, ``signature`` only that signature (in every variant
    shown); ``path`` is the path to report (an archive's own path rather than its extraction).
    Files of the module (checkpoint, assets) are given relative to the module directory.
    ``ops`` adds each variant's op types and what they touch.
    """
    chosen = sorted(spec.variants, key=lambda v: (len(v.tags), sorted(v.tags)))
    if tags is not None:
        chosen = [v for v in chosen if set(v.tags) == set(tags)]
        if not chosen:
            known = ", ".join(_format_tag_set(v.tags) for v in spec.variants)
            raise VariantNotFoundError(
                f"{path or spec.path} has no graph variant with tags {_format_tag_set(tags)}; "
                f"its tag sets: {known}"
            )
    if signature is not None:
        for v in chosen:
            if signature not in {s.name for s in v.signatures}:
                known = ", ".join(sorted(s.name for s in v.signatures)) or "none"
                raise SignatureNotFoundError(
                    f"Graph variant {_format_tag_set(v.tags)} of {path or spec.path} has no "
                    f"signature '{signature}'; its signatures: {known}"
                )
    variants = []
    for v in chosen:
        variants.append(
            {
                "tags": sorted(v.tags),
                "num_nodes": v.num_nodes,
                "signatures": {
                    s.name: {
                        "inputs": {t.key: _tensor(t) for t in s.inputs},
                        "outputs": {t.key: _tensor(t) for t in s.outputs},
                    }
                    for s in v.signatures
                    if signature is None or s.name == signature
                },
                "variables": [
                    {
                        "name": var.name,
                        "dtype": _core.dtype_name(var.dtype),
                        "shape": list(var.shape),
                        "bytes": var.num_bytes,
                        "trainable": var.trainable,
                        "partitions": [
                            {"node": p.node_name, "offset": list(p.offset), "shape": list(p.shape)}
                            for p in var.partitions
                        ],
                    }
                    for var in v.variables
                ],
                "assets": [{"file": a.filename, "path": _inside(spec, a.path)} for a in v.assets],
                "attached_messages": {
                    k: len(value) for k, value in sorted(v.attached_messages.items())
                },
                "collections": list(v.collection_keys),
                **({"ops": _ops(spec, set(v.tags))} if ops else {}),
            }
        )
    return {
        "path": path or spec.path,
        "format_version": spec.format_version,
        "checkpoint": _inside(spec, spec.checkpoint_prefix) or None,
        "checkpoint_entries": len(spec.checkpoint_entries),
        "variants": variants,
    }


def _ops(spec: _core.ModuleSpec, tags: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "op": use.op,
            "count": use.count,
            "effect": use.effect_name,
            "safe": use.effect == _core.OpEffect.COMPUTE,
            "first_node": use.first_node,
        }
        for use in spec.op_types(tags)
    ]


def _inside(spec: _core.ModuleSpec, path: str) -> str:
    """``path`` relative to the module directory (which for an archive is a cache directory)."""
    if path and os.path.isabs(path) and path.startswith(os.path.join(spec.path, "")):
        return os.path.relpath(path, spec.path)
    return path


def _fmt_shape(shape: list[int | None] | None) -> str:
    if shape is None:
        return "<unknown rank>"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def render_text(desc: dict[str, Any]) -> str:
    lines = [
        f"Module: {desc['path']}",
        f"Format: TF1 Hub module, format version {desc['format_version']}",
    ]
    total = sum(var["bytes"] for v in desc["variants"][:1] for var in v["variables"])
    if desc["checkpoint"]:
        lines.append(
            f"Checkpoint: {desc['checkpoint']} ({desc['checkpoint_entries']} entries,"
            f" {_fmt_bytes(total)} of variables)"
        )
    for v in desc["variants"]:
        tags = "{" + ", ".join(v["tags"]) + "}"
        lines.append("")
        lines.append(f"Graph variant tags={tags}  ({v['num_nodes']} nodes)")
        lines.append("  Signatures:")
        for name, sig in v["signatures"].items():
            lines.append(f"    {name}:")
            for direction in ("inputs", "outputs"):
                for key, t in sig[direction].items():
                    kind = "" if t["kind"] == "dense" else f" {t['kind']}"
                    arrow = "in " if direction == "inputs" else "out"
                    names = ", ".join(t["tensors"])
                    lines.append(
                        f"      {arrow} {key}: {t['dtype']} {_fmt_shape(t['shape'])}{kind}"
                        f"  (tensor{'s' if len(t['tensors']) > 1 else ''} {names})"
                    )
        if v["variables"]:
            lines.append(f"  Variables ({len(v['variables'])}):")
            for var in v["variables"]:
                parts = f", {len(var['partitions'])} partitions" if var["partitions"] else ""
                train = ", trainable" if var["trainable"] else ""
                lines.append(
                    f"    {var['name']}: {var['dtype']} {_fmt_shape(var['shape'])}"
                    f" ({_fmt_bytes(var['bytes'])}{parts}{train})"
                )
        if v["assets"]:
            lines.append("  Assets:")
            lines.extend(f"    {a['file']}" for a in v["assets"])
        if v["attached_messages"]:
            lines.append("  Attached messages:")
            lines.extend(f"    {k} ({n} bytes)" for k, n in v["attached_messages"].items())
        if "ops" in v:
            flagged = [op for op in v["ops"] if not op["safe"]]
            lines.append(f"  Ops ({len(v['ops'])} types, {len(flagged)} flagged):")
            for op in v["ops"]:
                flag = "" if op["safe"] else f"  ! {op['effect']} (node '{op['first_node']}')"
                lines.append(f"    {op['op']} x{op['count']}{flag}")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show",
        help="describe a module: variants, signatures (with tensor names), variables, assets",
        description=description(__doc__),
        usage="%(prog)s [options] MODULE",
    )
    add_module_argument(p)
    add_tags_option(
        p, ["module"], default="every graph variant; a bare --tags: the variant without tags"
    )
    p.add_argument(
        "--signature",
        "-s",
        default=None,
        help="show only this signature (default: all of them)",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument(
        "--ops",
        action="store_true",
        help="list the op types each variant uses; flag those touching files, network, processes",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    local = resolve(args.module)
    if not os.path.exists(local):
        raise ModulePathNotFoundError(f"{args.module}: no such file or directory")
    tags = args.tags if args.tag_groups else None  # a bare --tags: the variant without tags
    spec = _core.ModuleSpec.load(local)
    desc = describe(spec, tags, args.signature, normalize_handle(args.module), ops=args.ops)
    if args.json:
        print(json.dumps(desc, indent=2))
    else:
        print(render_text(desc))
    sys.stdout.flush()
    return 0
