"""``python tests/cli_entry.py ARGS`` runs the hubcore CLI as ``python -m hubcore`` would, but
against the in-tree build when HUBCORE_BUILD_DIR is set (see conftest.py). Tests start it as a
subprocess through ``conftest.cli_command()`` when they need real pipes, FIFOs or file
descriptors."""

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

from hubcore.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
