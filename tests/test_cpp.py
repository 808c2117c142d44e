"""Drives the C++ tests (GoogleTest, through ctest) and the find_package examples: the core runs
modules with no Python.

.ci/run builds them with CMake and exports HUBCORE_CC_TEST, HUBCORE_EXAMPLES_DIR (examples built
against a `cmake --install` of the source tree) and HUBCORE_WHEEL_EXAMPLES_DIR (built against the
SDK in the installed wheel, found with `python -m hubcore --cmake-dir`). Locally the tests look for
builds under build/; they are skipped when none exists, except in CI.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import hubcore
from hubcore import cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(hubcore.__file__).resolve().parent
INSTALLED = not PACKAGE.is_relative_to(ROOT / "python")  # False: a source tree (HUBCORE_BUILD_DIR)


def _find(env: str, pattern: str) -> str | None:
    if os.environ.get(env):
        return os.environ[env]
    found = sorted(glob.glob(str(ROOT / "build" / pattern)), key=os.path.getmtime)
    if found:
        return found[-1]
    if os.environ.get("CI"):
        pytest.fail(f"{env} is not set: .ci/run must build the C++ binaries")
    pytest.skip(f"no C++ build found (set {env})")
    return None


def test_cc_tests_pass():
    """The GoogleTest binary, through ctest when its build directory registered the tests."""
    binary = _find("HUBCORE_CC_TEST", "*/hubcore_cc_test")
    build_dir = os.path.dirname(binary)
    if os.path.exists(os.path.join(build_dir, "CTestTestfile.cmake")) and shutil.which("ctest"):
        command = ["ctest", "--test-dir", build_dir, "--output-on-failure", "-j", "2"]
        passed = "100% tests passed"
    else:
        command = [binary, str(ROOT / "tests" / "data")]
        passed = "[  PASSED  ]"
    env = dict(os.environ, HUBCORE_TEST_DATA=str(ROOT / "tests" / "data"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert passed in result.stdout


@pytest.fixture(
    params=[
        ("HUBCORE_EXAMPLES_DIR", "ci-examples"),
        ("HUBCORE_WHEEL_EXAMPLES_DIR", "ci-wheel-examples"),
    ],
    ids=["cmake-install", "wheel"],
)
def examples(request) -> str:
    env, pattern = request.param
    return _find(env, pattern)


def test_find_package_example_reads_a_module(data_dir, examples):
    result = subprocess.run(
        [os.path.join(examples, "inspect_module"), str(data_dir / "tiny")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "variant {train}" in result.stdout
    assert "variable dense/kernel (48 bytes)" in result.stdout
    bad = subprocess.run(
        [os.path.join(examples, "inspect_module"), str(data_dir / "missing")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "NOT_FOUND" in bad.stderr


def test_installed_package_ships_the_cpp_sdk_with_relative_run_paths():
    if not INSTALLED:
        if os.environ.get("CI"):
            pytest.fail("CI must test the installed wheel, not python/hubcore")
        pytest.skip("tests a source tree (HUBCORE_BUILD_DIR), not an installed wheel")
    cmake_dir = Path(hubcore.get_cmake_dir())
    assert cmake_dir == PACKAGE / "cmake"
    for name in ("hubcoreConfig", "hubcoreConfigVersion", "hubcoreTargets", "FindTensorFlowWheel"):
        assert (cmake_dir / f"{name}.cmake").is_file(), name
    assert (Path(hubcore.get_include()) / "hubcore" / "runtime.h").is_file()
    libraries = sorted(PACKAGE.glob("*.so*"))
    assert {p.name.split(".")[0] for p in libraries} == {"_core", "libhubcore"}
    for library in libraries:
        dynamic = subprocess.run(
            ["readelf", "-d", library], capture_output=True, text=True, check=True
        ).stdout
        (runpath,) = re.findall(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", dynamic)
        assert all(p.startswith("$ORIGIN") for p in runpath.split(":")), (library, runpath)
    printed = subprocess.run(
        [sys.executable, "-m", "hubcore", "--cmake-dir"], capture_output=True, text=True, check=True
    )
    assert printed.stdout == f"{cmake_dir}\n" and printed.stderr == ""


def test_cmake_dir_names_a_source_tree(capsys):
    if INSTALLED:
        pytest.skip("hubcore is installed: the SDK is there")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--cmake-dir"])
    assert exit_info.value.code == 1
    assert f"{PACKAGE / 'cmake'} does not exist" in capsys.readouterr().err
    with pytest.raises(hubcore.ModulePathNotFoundError, match="not installed from a wheel"):
        hubcore.get_include()


def test_finding_tensorflow_names_the_python_it_asked(tmp_path):
    """FindTensorFlowWheel (shipped with the CMake package) asks an interpreter without TF."""
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / "venv"], check=True)
    cmake_dir = PACKAGE / "cmake" if INSTALLED else ROOT / "cmake"
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.21)\nproject(probe LANGUAGES NONE)\n"
        f'list(APPEND CMAKE_MODULE_PATH "{cmake_dir}")\nfind_package(TensorFlowWheel REQUIRED)\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the venv sees no TF
    result = subprocess.run(
        ["cmake", "-S", tmp_path, "-B", tmp_path / "build", f"-DTensorFlowWheel_PYTHON={python}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"asked {python} where the tensorflow wheel is" in message, result.stderr
    assert "no tensorflow package" in message


def test_installed_package_apart_from_tensorflow_loads(tmp_path, data_dir):
    """hubcore in another directory than tensorflow/ (a venv seeing the system TensorFlow, pip
    --user or --target) still finds TensorFlow's libraries, without importing TF's Python API."""
    if not INSTALLED:
        pytest.skip("tests an installed wheel (its run paths), not a source tree")
    shutil.copytree(PACKAGE, tmp_path / "site" / "hubcore")
    code = (
        "import sys, hubcore\n"
        f"runner = hubcore.Runner({str(data_dir / 'tiny')!r})\n"
        "print(hubcore.__file__, sorted(runner.signatures), 'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(str(tmp_path / "site" / "hubcore"))
    assert result.stdout.split(" ", 1)[1] == "['default', 'encode', 'no_default'] False\n"
