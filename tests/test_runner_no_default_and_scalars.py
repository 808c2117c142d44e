"""Runner on modules that tensorflow_hub's ``hub.Module`` accepted: no ``default`` signature (BERT
style ``tokens``/``mlm``), and scalar (shape ``()``) inputs such as a ``scale`` float.

With tensorflow_hub 0.15, ``hub.Module(path)`` constructed fine on such a module, a call without
``signature=`` raised ``ValueError("Signature 'default' is missing from meta graph.")``, and the
``scale`` input took ``1.5``, ``np.float32(1.5)`` and ``np.array(1.5)`` alike.
"""

from __future__ import annotations

import numpy as np
import pytest

import hubcore
from hubcore.cli import main

IDS = np.array([[1, 2, 3, 4], [0, 1, 0, 1], [5, 5, 5, 5]], np.int32)


@pytest.fixture(scope="module")
def bert_like(tmp_path_factory) -> str:
    tf = pytest.importorskip("tensorflow")
    tf1 = tf.compat.v1

    def module_fn() -> None:
        tokens = tf1.placeholder(tf.int32, [None, 4], name="tokens")
        scale = tf1.placeholder(tf.float32, [], name="scale")
        pooled = tf.reduce_sum(tf.cast(tokens, tf.float32) * scale, 1)
        hubcore.add_signature(
            "tokens", inputs={"input_ids": tokens, "scale": scale}, outputs={"pooled": pooled}
        )
        hubcore.add_signature(
            "mlm", inputs={"input_ids": tokens}, outputs={"logits": tf.cast(tokens, tf.float32)}
        )

    path = tmp_path_factory.mktemp("bert_like") / "module"
    with tf.Graph().as_default():
        module = hubcore.Module(hubcore.create_module_spec(module_fn))
        with tf1.Session() as session:
            module.export(str(path), session)
    return str(path)


def test_runner_loads_a_module_without_default_and_asks_for_a_signature(bert_like):
    runner = hubcore.Runner(bert_like)
    assert runner.signature is None
    with pytest.raises(hubcore.SignatureNotFoundError, match="'tokens'.*'mlm'|'mlm'.*'tokens'"):
        runner(IDS)
    with pytest.raises(ValueError, match="no 'default' signature"):
        list(runner.predict_batches(IDS))
    np.testing.assert_array_equal(runner(IDS, signature="mlm", as_dict=True)["logits"], IDS)


def test_explicit_unknown_signature_still_fails_at_construction(bert_like):
    with pytest.raises(hubcore.SignatureNotFoundError, match="'nope'.*Signatures: "):
        hubcore.Runner(bert_like, signature="nope")


@pytest.mark.parametrize("scale", [1.5, np.float32(1.5), np.array(1.5)], ids=type)
def test_scalar_input_is_fed_as_given(bert_like, scale):
    runner = hubcore.Runner(bert_like, signature="tokens")
    got = runner({"input_ids": IDS, "scale": scale}, as_dict=True)["pooled"]
    np.testing.assert_allclose(got, IDS.sum(1) * 1.5)


def test_predict_batches_takes_scalars_per_call(bert_like):
    runner = hubcore.Runner(bert_like, signature="tokens")
    batches = list(runner.predict_batches(IDS, batch_size=2, scalars={"scale": 2.0}))
    assert [len(b["pooled"]) for b in batches] == [2, 1]
    np.testing.assert_allclose(np.concatenate([b["pooled"] for b in batches]), IDS.sum(1) * 2.0)
    with pytest.raises(
        hubcore.InvalidArgumentError, match=r"scalar \(shape \(\)\) inputs \['scale'\]"
    ):
        list(runner.predict_batches(IDS))
    with pytest.raises(hubcore.InvalidArgumentError, match="no scalar .* input 'input_ids'"):
        list(runner.predict_batches(IDS, scalars={"scale": 2.0, "input_ids": 1}))


def test_cli_run_names_the_signatures_when_there_is_no_default(bert_like, tmp_path, capsys):
    np.save(tmp_path / "ids.npy", IDS)
    argv = ["run", bert_like, "--input", str(tmp_path / "ids.npy"), "--quiet"]
    assert main([*argv, "--output", str(tmp_path / "a.npz")]) == 1
    err = capsys.readouterr().err
    assert "no 'default' signature" in err and "'mlm'" in err and "'tokens'" in err
    assert not (tmp_path / "a.npz").exists()
    assert main([*argv, "--output", str(tmp_path / "b.npz"), "--signature", "mlm"]) == 0
    with np.load(tmp_path / "b.npz") as out:
        np.testing.assert_array_equal(out["logits"], IDS)


def test_beam_names_the_signatures_when_there_is_no_default(bert_like):
    beam = pytest.importorskip("apache_beam")
    from apache_beam.options.pipeline_options import PipelineOptions

    import hubcore.beam

    options = PipelineOptions(flags=[], runner="DirectRunner", direct_num_workers=1)
    with pytest.raises(Exception, match="no 'default' signature.*'mlm'"):
        with beam.Pipeline(options=options) as p:
            _ = p | beam.Create(list(IDS)) | hubcore.beam.RunModule(bert_like)
    from apache_beam.testing.util import assert_that, equal_to

    with beam.Pipeline(options=options) as p:
        logits = (
            p
            | beam.Create(list(IDS))
            | hubcore.beam.RunModule(bert_like, signature="mlm")
            | beam.Map(lambda row: row.tolist())
        )
        assert_that(logits, equal_to(IDS.astype(np.float32).tolist()))
