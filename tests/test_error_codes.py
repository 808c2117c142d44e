"""Each C++ status code reaches Python as the one exception class errors.py maps it to, with no
re-wrapping on the way: the same failure raises the same class from every entry point."""

from __future__ import annotations

import pytest

import hubcore as hub
from hubcore import _core, cli, errors


def test_unknown_variant_and_signature_from_every_native_entry_point(data_dir):
    spec = _core.ModuleSpec.load(str(data_dir / "tiny"))
    rewriter = _core.GraphRewriter(spec)
    with pytest.raises(hub.VariantNotFoundError, match="serve"):
        _core.LoadedModule.load_spec(spec, {"serve"})
    with pytest.raises(hub.VariantNotFoundError, match="serve"):
        rewriter.build_state_graph({"serve"}, "module", False, "")
    with pytest.raises(hub.SignatureNotFoundError, match="'nope'"):
        rewriter.build_apply_graph(set(), "nope", "module_apply_nope", "module", False, {})
    loaded = _core.LoadedModule.load_spec(spec, set())
    with pytest.raises(hub.SignatureNotFoundError, match="'nope'"):
        loaded.run("nope", {}, [])


def test_status_code_table():
    assert errors.error_for_status_code("NOT_FOUND") is hub.ModulePathNotFoundError
    assert errors.error_for_status_code("UNIMPLEMENTED") is hub.UnsupportedFormatError
    assert issubclass(hub.UnsupportedFormatError, hub.InvalidModuleError)
    assert errors.error_for_status_code("VARIANT_NOT_FOUND") is hub.VariantNotFoundError
    assert errors.error_for_status_code("SIGNATURE_NOT_FOUND") is hub.SignatureNotFoundError


def test_show_and_load_module_spec_agree_on_an_unsupported_module(tmp_path, data_dir, capsys):
    """`hubcore show` reads the spec through _core directly: it must raise the same class."""
    import shutil

    from tensorflow.core.protobuf import saved_model_pb2

    module = tmp_path / "tiny"
    shutil.copytree(data_dir / "tiny", module)
    saved_model = saved_model_pb2.SavedModel.FromString((module / "saved_model.pb").read_bytes())
    saved_model.meta_graphs[0].collection_def["summaries"].node_list.value.append("x:0")
    (module / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    with pytest.raises(hub.UnsupportedFormatError, match="summaries"):
        hub.load_module_spec(module)
    args = cli.build_parser().parse_args(["show", str(module)])
    cli.finish_parsing(args)
    with pytest.raises(hub.UnsupportedFormatError, match="summaries"):
        args.handler(args)
    assert cli.main(["show", str(module)]) == 1
    assert "Unsupported collections" in capsys.readouterr().err
