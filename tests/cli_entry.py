"""``python tests/cli_entry.py ARGS`` runs the hubcore CLI as ``python -m hubcore`` would, but
against the in-tree build when HUBCORE_BUILD_DIR is set (see conftest.py). Tests start it as a
subprocess through ``conftest.cli_command()`` when they need real pipes, FIFOs or file
descriptors. ``python tests/cli_entry.py --exec SCRIPT`` runs a Python script against that build
instead (documentation snippets)."""

import glob
import importlib.util
import os
import sys

_build = os.environ.get("HUBCORE_BUILD_DIR")
if _build:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    from hubcore.commands import muted_native_stderr

    (_so,) = glob.glob(os.path.join(_build, "_core*.so"))
    _spec = importlib.util.spec_from_file_location("hubcore._core", _so)
    with muted_native_stderr():  # loading the library is where TensorFlow logs its start-up
        _mod = importlib.util.module_from_spec(_spec)
        sys.modules["hubcore._core"] = _mod
        _spec.loader.exec_module(_mod)

if sys.argv[1:2] == ["--exec"]:
    import runpy

    runpy.run_path(sys.argv[2], run_name="__main__")
else:
    from hubcore.cli import main

    sys.exit(main(sys.argv[1:]))
