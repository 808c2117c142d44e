"""Hostile modules and inputs: each case ends in its documented hubcore error, never a crash, a
hang or a wrong answer (docs/security.md). Each test names the case it guards."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hubcore as hub

ROOT = Path(__file__).resolve().parent.parent


def writable_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for p in [dst, *dst.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return dst


def edit_saved_model(module: Path, edit) -> None:
    """Applies ``edit(saved_model_pb2.SavedModel)`` to the module's saved_model.pb in place."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = module / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    edit(sm)
    pb.write_bytes(sm.SerializeToString())


def export_module(path: Path, module_fn) -> Path:
    """Exports a variable-free module built by ``module_fn`` (hubcore.add_signature inside)."""
    import tensorflow as tf

    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn))
        with tf.compat.v1.Session() as session:
            module.export(str(path), session)
    return path


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    """One small module with a signature per conversion case."""
    import tensorflow as tf

    def module_fn() -> None:
        s = tf.compat.v1.placeholder(tf.string, [None], name="s")
        i = tf.compat.v1.placeholder(tf.int64, [None], name="i")
        f = tf.compat.v1.placeholder(tf.float32, [None], name="f")
        b = tf.compat.v1.placeholder(tf.bfloat16, [None], name="b")
        hub.add_signature("length", inputs={"x": s}, outputs=tf.strings.length(s))
        hub.add_signature("ids", inputs={"x": i}, outputs=i + 1)
        hub.add_signature(inputs={"x": f}, outputs=f * 2.0)
        hub.add_signature("bf16", inputs={"x": b}, outputs=b * tf.constant(2, tf.bfloat16))

    return export_module(tmp_path_factory.mktemp("probe") / "probe", module_fn)


# ---- crashes -----------------------------------------------------------------------------------


def test_ragged_spec_with_negative_ragged_rank_and_no_components(tmp_path, data_dir):
    """Once accepted, then a segfault in Runner (ComponentSpecs wrote into an empty vector)."""
    from tensorflow.core.protobuf import struct_pb2

    module = writable_copy(data_dir / "ragged_in", tmp_path / "m")

    def edit(sm):
        for sig in sm.meta_graphs[0].signature_def.values():
            for info in sig.inputs.values():
                if info.HasField("composite_tensor"):
                    state = info.composite_tensor.type_spec.type_state.tuple_value.values
                    state[0].CopyFrom(
                        struct_pb2.StructuredValue(
                            tensor_shape_value={"unknown_rank": True},
                        )
                    )
                    state[2].int64_value = -1
                    del info.composite_tensor.components[:]

    edit_saved_model(module, edit)
    with pytest.raises(hub.CorruptModuleError, match=r"saved_model.pb.*'rt'.*ragged_rank -1"):
        hub.load_module_spec(module)
    with pytest.raises(hub.CorruptModuleError, match="ragged_rank"):
        hub.Runner(module)


def test_ragged_rank_not_below_rank(tmp_path, data_dir):
    module = writable_copy(data_dir / "ragged_in", tmp_path / "m")

    def edit(sm):
        for sig in sm.meta_graphs[0].signature_def.values():
            for info in sig.inputs.values():
                if info.HasField("composite_tensor"):
                    info.composite_tensor.type_spec.type_state.tuple_value.values[2].int64_value = 5

    edit_saved_model(module, edit)
    with pytest.raises(hub.CorruptModuleError, match="ragged_rank 5 for rank 2"):
        hub.load_module_spec(module)


def test_partition_with_short_var_shape(tmp_path, data_dir):
    """Once a segfault in Runner and heap garbage in Module's error text."""
    import tensorflow as tf
    from tensorflow.core.framework import variable_pb2

    module = writable_copy(data_dir / "partitioned", tmp_path / "m")

    def edit(sm):
        values = sm.meta_graphs[0].collection_def["variables"].bytes_list.value
        var = variable_pb2.VariableDef()
        var.ParseFromString(values[0])
        del var.save_slice_info_def.var_shape[:]
        values[0] = var.SerializeToString()

    edit_saved_model(module, edit)
    match = r"partition '.*' of variable '.*' has a save_slice_info_def"
    with pytest.raises(hub.CorruptModuleError, match=match):
        hub.load_module_spec(module)
    with pytest.raises(hub.CorruptModuleError, match=match):
        hub.Runner(module)
    with tf.Graph().as_default(), pytest.raises(hub.CorruptModuleError, match=match):
        hub.Module(module)


def test_huge_input_reports_the_allocation(probe, tmp_path):
    """TF_AllocateTensor's NULL for an impossible size is an error naming the byte count."""
    overcommit = Path("/proc/sys/vm/overcommit_memory")
    if not overcommit.exists() or overcommit.read_text().strip() == "1":
        pytest.skip("with unconditional overcommit an 8 TiB allocation would succeed")
    big = tmp_path / "big.bin"
    size = 1 << 43  # 8 TiB, sparse: nothing is read or written
    try:
        with open(big, "wb") as f:
            f.truncate(size)
    except OSError:
        pytest.skip("the file system has no sparse 8 TiB files")
    x = np.memmap(big, dtype=np.float32, mode="r", shape=(size // 4,))
    runner = hub.Runner(probe)
    with pytest.raises(hub.InvalidArgumentError, match=f"Input 'x'.*cannot allocate {size} bytes"):
        runner.run_native("default", {"x": [x]})


@pytest.mark.parametrize(
    ("dense_shape", "indices", "match"),
    [
        ([-3, 6], [[0, 0]], "dense_shape .* is invalid: a dimension is negative"),
        ([2**62, 2**62], [[0, 0]], "dense_shape .* is invalid: its size overflows"),
        ([3, 6], [[0, 6]], r"indices\[0\]\[1\] = 6 is out of bounds"),
        ([3, 6], [[-1, 0]], r"indices\[0\]\[0\] = -1 is out of bounds"),
    ],
)
def test_bad_sparse_values_are_refused_before_tensorflow(data_dir, dense_shape, indices, match):
    """A negative or overflowing dense_shape once aborted inside a TensorFlow kernel."""
    runner = hub.Runner(data_dir / "sparse_in")
    value = (np.array(indices, np.int64), np.ones(len(indices), np.float32), dense_shape)
    with pytest.raises(
        hub.InvalidArgumentError, match="Input 'sp' of signature 'default': " + match
    ):
        runner({"sp": value})


@pytest.mark.parametrize(
    ("splits", "match"),
    [
        ([0, 3, 1, 4], "row_splits_0 decreases at position 2"),
        ([1, 2, 4], "row_splits_0 must start with 0"),
        ([0, 2, 9], "row_splits_0 ends at 9 but the next level has 4 rows"),
    ],
)
def test_bad_row_splits_are_refused(data_dir, splits, match):
    """Decreasing row_splits were accepted and gave a wrong answer."""
    runner = hub.Runner(data_dir / "ragged_in")
    value = (np.arange(4, dtype=np.float32), [np.array(splits, np.int64)])
    with pytest.raises(hub.InvalidArgumentError, match=f"Input 'rt' .*: {match}"):
        runner({"rt": value})


def _add_function(sm, name: str, calls: str) -> None:
    from tensorflow.core.framework import function_pb2

    f = function_pb2.FunctionDef()
    f.signature.name = name
    node = f.node_def.add()
    node.name = "call"
    node.op = calls
    sm.meta_graphs[0].graph_def.library.function.append(f)


def test_call_cycles_are_refused_at_load(tmp_path, data_dir):
    """A self-recursive function overflowed the stack in TensorFlow's shape refiner."""
    module = writable_copy(data_dir / "tiny", tmp_path / "self")
    edit_saved_model(module, lambda sm: _add_function(sm, "loop", "loop"))
    with pytest.raises(hub.CorruptModuleError, match="call cycle: loop -> loop"):
        hub.load_module_spec(module)
    module = writable_copy(data_dir / "tiny", tmp_path / "pair")

    def pair(sm):
        _add_function(sm, "f", "g")
        _add_function(sm, "g", "f")

    edit_saved_model(module, pair)
    with pytest.raises(hub.CorruptModuleError, match=r"call cycle: (f -> g -> f|g -> f -> g)"):
        hub.Runner(module)


# ---- special files, limits, hangs --------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    ["saved_model.pb", "tfhub_module.pb", "variables/variables.index", "assets/_vocab.txt"],
)
def test_device_files_are_refused(tmp_path, data_dir, member):
    """A symlink to /dev/zero was read until memory ran out."""
    module = writable_copy(data_dir / "text_table", tmp_path / "m")
    if member == "variables/variables.index":
        module = writable_copy(data_dir / "tiny", tmp_path / "t")
    target = module / member
    assert target.exists()
    target.unlink()
    target.symlink_to("/dev/zero")
    # An asset's real path is checked first: /dev/zero is outside the module.
    match = f"{member}.* (is a character device|resolves to /dev/zero, outside)"
    with pytest.raises(hub.CorruptModuleError, match=match):
        hub.load_module_spec(module)


def test_size_limit_is_checked_before_reading(tmp_path, data_dir, monkeypatch):
    module = writable_copy(data_dir / "tiny", tmp_path / "m")
    size = (module / "saved_model.pb").stat().st_size
    monkeypatch.setenv("HUBCORE_MAX_PROTO_BYTES", str(size - 1))
    with pytest.raises(hub.CorruptModuleError, match=f"saved_model.pb has {size} bytes, more than"):
        hub.load_module_spec(module)
    monkeypatch.setenv("HUBCORE_MAX_PROTO_BYTES", "1G")
    hub.load_module_spec(module)
    monkeypatch.setenv("HUBCORE_MAX_ASSET_BYTES", "4")
    text = writable_copy(data_dir / "text_table", tmp_path / "text")
    with pytest.raises(hub.CorruptModuleError, match=r"_vocab.txt has \d+ bytes, more than the"):
        hub.load_module_spec(text)


def test_fifos_are_refused_without_blocking(tmp_path, data_dir):
    """A FIFO in place of any module file blocked forever. Checked in a child process under a
    timeout, so a regression fails the test instead of hanging the suite."""
    cases = {}
    for member in [
        "saved_model.pb",
        "tfhub_module.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
        "assets/_vocab.txt",
    ]:
        source = "tiny" if member.startswith("variables") else "text_table"
        module = writable_copy(data_dir / source, tmp_path / member.replace("/", "_"))
        (module / member).unlink()
        os.mkfifo(module / member)
        cases[member] = str(module)
    script = textwrap.dedent(
        f"""
        import hubcore
        for member, path in {cases!r}.items():
            try:
                hubcore.load_module_spec(path)
                print(member, "loaded")
            except hubcore.Error as e:
                ok = member.rsplit("/", 1)[-1] in str(e) and "FIFO" in str(e)
                print(member, type(e).__name__, ok)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", _child_prelude() + script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert sorted(out.stdout.split("\n")[:-1]) == sorted(
        f"{m} CorruptModuleError True" for m in cases
    )


def _child_prelude() -> str:
    """Makes a child interpreter import the same hubcore (and _core build) as this process."""
    core = sys.modules["hubcore._core"].__file__
    return textwrap.dedent(
        f"""
        import importlib.util, sys
        sys.path.insert(0, {str(Path(hub.__file__).parent.parent)!r})
        spec = importlib.util.spec_from_file_location("hubcore._core", {core!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["hubcore._core"] = module
        spec.loader.exec_module(module)
        """
    )


def test_asset_symlink_leaving_the_module_is_refused(tmp_path, data_dir):
    """A table was initialized from /etc/passwd through a symlink in assets/."""
    module = writable_copy(data_dir / "text_table", tmp_path / "m")
    outside = tmp_path / "secret.txt"
    outside.write_text("root\n")
    (module / "assets" / "_vocab.txt").unlink()
    (module / "assets" / "_vocab.txt").symlink_to(outside)
    with pytest.raises(hub.CorruptModuleError, match="_vocab.txt resolves to .*outside the module"):
        hub.Runner(module)


# ---- wrong answers -----------------------------------------------------------------------------


def test_bytes_arrays_keep_inner_nuls(probe):
    """'S' arrays were cut at the first NUL; object arrays were not."""
    runner = hub.Runner(probe, signature="length")
    items = [b"a\x00b", b"\x00\x00x", b"ab"]
    want = [3, 3, 2]
    assert runner(np.array(items, dtype="S")).tolist() == want
    assert runner(np.array(items, dtype=object)).tolist() == want
    assert runner.run_native("length", {"x": [np.array(items, "S")]})["default"].tolist() == want


def test_big_endian_input(probe):
    """run_native ignored byte order: '>f4' gave wrong outputs."""
    runner = hub.Runner(probe)
    x = np.array([1.5, -2.0, 3.25], dtype=">f4")
    assert runner.run_native("default", {"x": [x]})["default"].tolist() == [3.0, -4.0, 6.5]
    assert runner(x).tolist() == [3.0, -4.0, 6.5]


def test_uint64_beyond_int64_is_refused(probe):
    """uint64 ids above 2**63 wrapped to negative."""
    runner = hub.Runner(probe, signature="ids")
    assert runner(np.array([1, 2**62], np.uint64)).tolist() == [2, 2**62 + 1]
    with pytest.raises(hub.InvalidArgumentError, match="Input 'x'.*out of range for int64"):
        runner(np.array([2**63 + 5], np.uint64))


def test_numpy_integers_out_of_range_are_refused_by_module_and_load(probe):
    """TensorFlow's conversion wraps numpy integers silently (uint64 2**63 + 5 became negative in
    hub.Module and hubcore.load, as in tensorflow_hub 0.15); Python ints it already refused."""
    import tensorflow as tf

    match = r"Input 'x'.*value 9223372036854775813 is out of range for int64"
    loaded = hub.load(probe)
    for value in (np.array([1, 2**63 + 5], np.uint64), np.uint64(2**63 + 5)):
        with tf.Graph().as_default(), pytest.raises(hub.InvalidArgumentError, match=match):
            hub.Module(probe)(value, signature="ids")
        with pytest.raises(hub.InvalidArgumentError, match=match):
            loaded(value, signature="ids")
    assert loaded(np.array([1, 2**62], np.uint64), signature="ids").numpy().tolist() == [
        2,
        2**62 + 1,
    ]


def test_bfloat16_signatures_run(probe):
    """bfloat16 in a signature made a valid module unusable through Runner."""
    import ml_dtypes

    runner = hub.Runner(probe, signature="bf16")
    spec = runner.signatures["bf16"]
    assert spec.inputs["x"].dtype == np.dtype(ml_dtypes.bfloat16)
    out = runner(np.array([1.5, -3.0], ml_dtypes.bfloat16))
    assert out.dtype == np.dtype(ml_dtypes.bfloat16)
    assert out.astype(np.float32).tolist() == [3.0, -6.0]
    assert runner([1.5, -3.0]).astype(np.float32).tolist() == [3.0, -6.0]


# ---- one taxonomy ------------------------------------------------------------------------------


def test_missing_or_short_data_shard_fails_at_load(tmp_path, data_dir):
    module = writable_copy(data_dir / "tiny", tmp_path / "m")
    shard = module / "variables" / "variables.data-00000-of-00001"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(hub.CorruptModuleError, match=r"variables.data-00000-of-00001 is truncated"):
        hub.load_module_spec(module)
    shard.unlink()
    with pytest.raises(
        hub.CorruptModuleError, match=r"variables.data-00000-of-00001 .* is missing"
    ):
        hub.load_module_spec(module)


def test_corrupt_data_shard_is_a_module_error_in_runner(tmp_path, data_dir):
    module = writable_copy(data_dir / "tiny", tmp_path / "m")
    shard = module / "variables" / "variables.data-00000-of-00001"
    shard.write_bytes(bytes(b ^ 0xFF for b in shard.read_bytes()))
    with pytest.raises(hub.CorruptModuleError, match="restoring variables"):
        hub.Runner(module)


def test_graph_that_fails_to_import_is_a_module_error(tmp_path, data_dir):
    module = writable_copy(data_dir / "tiny", tmp_path / "m")

    def edit(sm):
        for node in sm.meta_graphs[0].graph_def.node:
            if node.op == "MatMul":
                node.input[0] = "no_such_node"

    edit_saved_model(module, edit)
    with pytest.raises(hub.CorruptModuleError, match="cannot import the graph"):
        hub.Runner(module)


@pytest.mark.parametrize(
    ("corrupt", "error", "match"),
    [
        ("attr_value", hub.CorruptModuleError, "cannot import the graph: Value for attr 'T'"),
        ("attr_missing", hub.CorruptModuleError, "cannot import the graph: NodeDef missing attr"),
        ("op_type", hub.FailedPreconditionError, "'NoSuchOp'"),
    ],
)
def test_graph_nodes_tensorflow_refuses_are_hubcore_errors_in_runner_and_load(
    tmp_path, data_dir, corrupt, error, match
):
    """hubcore.load once raised TensorFlow's importer errors (a builtin ValueError) at the first
    call, without naming the module."""
    module = writable_copy(data_dir / "tiny", tmp_path / "m")

    def edit(sm):
        (matmul,) = [n for n in sm.meta_graphs[0].graph_def.node if n.op == "MatMul"]
        if corrupt == "attr_value":
            matmul.attr["T"].type = 7  # DT_STRING, which MatMul does not allow
        elif corrupt == "attr_missing":
            del matmul.attr["T"]
        else:
            matmul.op = "NoSuchOp"

    edit_saved_model(module, edit)
    with pytest.raises(error, match=match):
        hub.Runner(module)
    loaded = hub.load(module)
    with pytest.raises(error, match=f"Module {module}: .*{match}") as raised:
        loaded(np.zeros((1, 4), np.float32))
    assert type(raised.value) is error


@pytest.fixture(scope="module")
def resource_matmul(tmp_path_factory) -> Path:
    """x @ w with a resource variable w (so the graph has ReadVariableOps), exported."""
    import tensorflow as tf

    def module_fn() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        w = tf.compat.v1.get_variable(
            "w", [2, 2], use_resource=True, initializer=tf.compat.v1.ones_initializer()
        )
        hub.add_signature(inputs={"x": x}, outputs=tf.matmul(x, w))

    path = tmp_path_factory.mktemp("resource_matmul") / "m"
    with tf.Graph().as_default():
        module = hub.Module(hub.create_module_spec(module_fn))
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            module.export(str(path), session)
    return path


@pytest.mark.parametrize(
    ("corrupt", "error", "match"),
    [
        ("matmul_string", hub.CorruptModuleError, "cannot import the graph: Value for attr 'T'"),
        ("read_no_dtype", hub.CorruptModuleError, "cannot import the graph: NodeDef missing attr"),
        ("op_type", hub.FailedPreconditionError, "uses op type 'NoSuchOp' \\(node '"),
    ],
)
def test_graph_nodes_tensorflow_refuses_are_module_errors_in_hub_module(
    tmp_path, resource_matmul, corrupt, error, match
):
    """hub.Module raised ExecutionError("Importing the module graph failed") at instantiation or
    call, naming neither the module nor its variant, where Runner and hubcore.load raise these."""
    import tensorflow as tf

    module = writable_copy(resource_matmul, tmp_path / "m")
    op = "ReadVariableOp" if corrupt == "read_no_dtype" else "MatMul"

    def edit(sm):
        for node in sm.meta_graphs[0].graph_def.node:
            if node.op != op:
                continue
            if corrupt == "matmul_string":
                node.attr["T"].type = 7  # DT_STRING, which MatMul does not allow
            elif corrupt == "read_no_dtype":
                del node.attr["dtype"]
            else:
                node.op = "NoSuchOp"

    edit_saved_model(module, edit)
    x = np.ones((1, 2), np.float32)
    with pytest.raises(error) as from_runner:
        hub.Runner(module)
    with pytest.raises(error) as from_load:
        hub.load(module)(x)
    assert type(from_runner.value) is type(from_load.value) is error
    with tf.Graph().as_default(), pytest.raises(error) as raised:
        hub.Module(module)(x)
    assert type(raised.value) is error
    message = str(raised.value)
    assert message.startswith(f"Module {module} (graph variant {{}})")
    assert re.search(match, message), message
    assert re.search(f"node '?module(_apply_default)?/[^ ]*{op}", message), message


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        ("dtype0", "input 'x'' has an invalid dtype \\(0\\)"),
        ("dtype99", "input 'x'' has an invalid dtype \\(99\\)"),
        ("output", "refers to tensor '.*:99', but node"),
    ],
)
def test_corrupt_signatures_fail_at_load_for_every_entry_point(tmp_path, data_dir, corrupt, match):
    """Module raised builtin TypeError/KeyError where Runner raised hubcore errors."""
    import tensorflow as tf

    module = writable_copy(data_dir / "tiny", tmp_path / "m")

    def edit(sm):
        sig = sm.meta_graphs[0].signature_def["default"]
        if corrupt == "output":
            out = next(iter(sig.outputs.values()))
            out.name = out.name.split(":")[0] + ":99"
        else:
            sig.inputs["x"].dtype = 0 if corrupt == "dtype0" else 99

    edit_saved_model(module, edit)
    match = match.replace("input 'x''", "input 'x'")
    for load in (hub.load_module_spec, hub.Runner):
        with pytest.raises(hub.CorruptModuleError, match=match):
            load(module)
    with tf.Graph().as_default(), pytest.raises(hub.CorruptModuleError, match=match):
        hub.Module(module)


# ---- safe mode ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def writer_module(tmp_path_factory) -> Path:
    """A module whose signature writes a file named by its input, as a hostile module would."""
    import tensorflow as tf

    def module_fn() -> None:
        path = tf.compat.v1.placeholder(tf.string, [], name="path")
        write = tf.io.write_file(path, "pwned")
        with tf.control_dependencies([write]):
            out = tf.identity(path)
        hub.add_signature(inputs={"path": path}, outputs=out)

    return export_module(tmp_path_factory.mktemp("writer") / "writer", module_fn)


def test_modules_are_code_and_safe_mode_refuses_them(writer_module, tmp_path):
    import tensorflow as tf

    target = tmp_path / "written.txt"
    hub.Runner(writer_module)({"path": str(target)})
    assert target.read_bytes() == b"pwned"  # Why safe mode exists.
    match = r"node '.*WriteFile.*' uses op 'WriteFile', which touches files"
    with pytest.raises(hub.UnsafeModuleError, match=match):
        hub.Runner(writer_module, safe_mode=True)
    with tf.Graph().as_default(), pytest.raises(hub.UnsafeModuleError, match=match):
        hub.Module(writer_module, safe_mode=True)
    with pytest.raises(hub.UnsafeModuleError, match=match):
        hub.load_module_spec(writer_module).check_safe_mode()
    with pytest.raises(hub.UnsafeModuleError, match=match):
        hub.load(writer_module, safe_mode=True)


def test_safe_mode_accepts_pure_modules_and_own_assets(data_dir, probe):
    for name in ["tiny", "text_table", "sparse_in", "ragged_in", "partitioned", "batchnorm"]:
        hub.load_module_spec(data_dir / name).check_safe_mode()
    hub.Runner(data_dir / "text_table", safe_mode=True)(["a b"])
    hub.Runner(probe, safe_mode=True)
    hub.load(data_dir / "batchnorm", safe_mode=True)  # with its {"train"} variant


def test_safe_mode_refuses_table_from_a_file_outside_the_module(tmp_path, data_dir):
    module = writable_copy(data_dir / "text_table", tmp_path / "m")

    def edit(sm):
        graph = sm.meta_graphs[0].graph_def
        (init,) = [n for n in graph.node if n.op == "InitializeTableFromTextFileV2"]
        const = graph.node.add()
        const.CopyFrom(next(n for n in graph.node if n.name == init.input[1].split(":")[0]))
        const.name = "elsewhere"
        const.attr["value"].tensor.string_val[:] = [b"/etc/hostname"]
        init.input[1] = "elsewhere"

    edit_saved_model(module, edit)
    with pytest.raises(hub.UnsafeModuleError, match="not one of the module's own assets"):
        hub.Runner(module, safe_mode=True)


def test_allowlist_names_real_ops():
    import tensorflow as tf

    from hubcore import _core

    allowlist = _core.safe_mode_allowlist()
    assert len(allowlist) > 400
    assert [op for op in allowlist if not hasattr(tf.raw_ops, op)] == []
    assert "WriteFile" not in allowlist and "PyFunc" not in allowlist


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    code = _child_prelude() + "from hubcore.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_cli_show_ops_and_run_safe_mode(writer_module, tmp_path):
    shown = _cli("show", str(writer_module), "--ops")
    assert shown.returncode == 0, shown.stderr
    assert "WriteFile x1  ! files (node '" in shown.stdout
    assert "Placeholder x1\n" in shown.stdout
    (tmp_path / "in.jsonl").write_text('{"path": "%s"}\n' % (tmp_path / "x"))
    run = _cli(
        "run", str(writer_module), "--safe-mode", "-i", str(tmp_path / "in.jsonl"),
        "-o", str(tmp_path / "out.npz"),
    )  # fmt: skip
    assert run.returncode != 0
    assert "UnsafeModuleError" in run.stderr or "uses op 'WriteFile'" in run.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "out.npz").exists()
