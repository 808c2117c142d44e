"""ModuleSpec on modules exported by tensorflow_hub 0.15: what it reports equals manifest.json."""

from __future__ import annotations

import pytest
import tensorflow as tf

import hubcore as hub
from conftest import FIXTURES


def _tags_key(tags) -> str:
    return "|".join(sorted(tags))


@pytest.mark.parametrize("name", FIXTURES)
def test_tags_signatures_and_infos_match_manifest(name, data_dir, manifest):
    expected = manifest[name]
    spec = hub.load_module_spec(str(data_dir / name))
    assert sorted(sorted(t) for t in spec.get_tags()) == sorted(sorted(t) for t in expected["tags"])
    for tags_key, signatures in expected["signatures"].items():
        tags = set(tags_key.split("|")) if tags_key else set()
        assert sorted(spec.get_signature_names(tags=tags)) == sorted(signatures)
        for sig_name, sig in signatures.items():
            for direction, infos in (
                ("inputs", spec.get_input_info_dict(sig_name, tags)),
                ("outputs", spec.get_output_info_dict(sig_name, tags)),
            ):
                assert sorted(infos) == sorted(sig[direction]), (name, sig_name, direction)
                for key, want in sig[direction].items():
                    got = infos[key]
                    assert got.dtype == tf.as_dtype(want["dtype"])
                    assert isinstance(got.dtype, tf.DType)
                    assert isinstance(got.get_shape(), tf.TensorShape)
                    want_shape = want["shape"]
                    if want_shape is None:
                        assert got.get_shape().rank is None
                    else:
                        assert got.get_shape().as_list() == want_shape
                    assert got.is_sparse == want["is_sparse"]
                    assert type(got.type_spec).__name__ == want["type_spec"]


def test_default_signature_and_tags_are_the_defaults(data_dir):
    spec = hub.load_module_spec(data_dir / "tiny")
    assert spec.get_input_info_dict() == spec.get_input_info_dict("default", set())
    assert sorted(spec.get_input_info_dict()) == ["x"]
    assert sorted(spec.get_output_info_dict(tags=["train"])) == ["default", "sum"]


def test_ragged_type_spec(data_dir):
    info = hub.load_module_spec(data_dir / "ragged_in").get_input_info_dict()["rt"]
    assert info.type_spec == tf.RaggedTensorSpec([None, None], tf.float32, 1, tf.int64)
    assert info.is_composite and not info.is_sparse


def test_sparse_type_spec(data_dir):
    info = hub.load_module_spec(data_dir / "sparse_in").get_input_info_dict()["sp"]
    assert info.type_spec == tf.SparseTensorSpec([None, 6], tf.float32)
    assert info.is_sparse and info.is_composite
    assert "is_sparse=True" in repr(info)


def test_attached_image_module_info(data_dir, manifest):
    spec = hub.load_module_spec(data_dir / "tiny")
    info = spec.get_attached_message("image_module_info", hub.ImageModuleInfo)
    want = manifest["tiny"]["attached_image_module_info"]["default_image_size"]
    assert [info.default_image_size.height, info.default_image_size.width] == want == [224, 160]
    # Each call parses into a new message.
    assert info is not spec.get_attached_message("image_module_info", hub.ImageModuleInfo)
    assert spec.get_attached_message("nothing", hub.ImageModuleInfo) is None
    with pytest.raises(KeyError, match="No attached message for key 'nothing'"):
        spec.get_attached_message("nothing", hub.ImageModuleInfo, required=True)


def test_unknown_signature_is_key_error_and_value_error(data_dir):
    spec = hub.load_module_spec(data_dir / "tiny")
    with pytest.raises(hub.SignatureNotFoundError, match="'nope'.*'default', 'encode'") as info:
        spec.get_input_info_dict("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)


def test_unknown_tags_is_value_error_and_key_error(data_dir):
    spec = hub.load_module_spec(data_dir / "tiny")
    for call in (
        lambda: spec.get_signature_names(tags={"serve"}),
        lambda: spec.get_output_info_dict(tags={"serve"}),
        lambda: spec.get_attached_message("image_module_info", hub.ImageModuleInfo, tags=["x"]),
    ):
        with pytest.raises(ValueError, match=r"No such graph variant.*\{train\}") as info:
            call()
        assert isinstance(info.value, KeyError)


def test_variables_and_assets(data_dir):
    spec = hub.load_module_spec(data_dir / "text_table")
    variant = spec.variant()
    assert [v.name for v in variant.variables] == ["embeddings"]
    assert [a.filename for a in variant.assets] == ["_vocab.txt"]
    assert (data_dir / "text_table" / "assets" / "_vocab.txt").samefile(variant.assets[0].path)
    partitioned = hub.load_module_spec(data_dir / "partitioned").variant()
    table = next(v for v in partitioned.variables if v.name == "table")
    assert [p.node_name for p in table.partitions] == [f"table/part_{i}" for i in range(3)]
    assert table.shape == [sum(p.shape[0] for p in table.partitions), 5]
