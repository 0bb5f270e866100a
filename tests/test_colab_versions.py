"""Colab's versions: the widget tests and a lesson pass with ipywidgets 7.7.1, as on Colab.

Builds (once; cached in build/colab-venv/) a virtual environment that sees this Python's
packages but has Colab's ipywidgets installed over them, then runs the widget unit tests and
lesson 2 under nbval inside it, in FAST mode. Colab runs Python 3.13; the package must not use
what 3.13 removed from the standard library, which the last test checks statically.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "build" / "colab-venv"
COLAB_PINS = ["ipywidgets==7.7.1"]  # what Colab ships (with Python 3.13)
LESSON = "notebooks/02_forward_process.ipynb"
# standard-library modules removed in Python 3.12 and 3.13 (PEP 594, PEP 632, imp)
REMOVED_IN_313 = {
    "aifc", "asynchat", "asyncore", "audioop", "cgi", "cgitb", "chunk", "crypt", "distutils",
    "imghdr", "imp", "lib2to3", "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes",
    "sndhdr", "spwd", "sunau", "telnetlib", "uu", "xdrlib",
}  # fmt: skip


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-4000:]}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def colab_python() -> Path:
    """The cached environment's Python, rebuilt when this Python or the pins change."""
    python = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    stamp = VENV / "colab-pins.txt"
    wanted = "\n".join([sys.executable, sys.version, *COLAB_PINS])
    if not (python.exists() and stamp.exists() and stamp.read_text() == wanted):
        shutil.rmtree(VENV, ignore_errors=True)
        _run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)])
        _run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *COLAB_PINS]
        )
        stamp.write_text(wanted)
    return python


def test_the_environment_has_colabs_ipywidgets(colab_python):
    code = "import ipywidgets, diffusion_lab.widgets; print(ipywidgets.__version__)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    assert _run([str(colab_python), "-c", code], cwd=ROOT, env=env).stdout.strip() == "7.7.1"


def test_widget_tests_and_a_lesson_pass_with_colabs_ipywidgets(colab_python):
    probe = VENV / "kernel_probe.ipynb"  # proves that nbval's kernel runs in this environment
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets\nassert ipywidgets.__version__ == '7.7.1', ipywidgets.__version__"
        )
    ]
    nbformat.write(notebook, probe)
    report = VENV / "report.xml"
    env = {
        **os.environ,
        "DIFFUSION_LAB_FAST": "1",
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    paths = ["tests/test_widgets.py", LESSON, str(probe.relative_to(ROOT))]
    command = [str(colab_python), "-m", "pytest", *paths, "-q", f"--junitxml={report}"]
    command += ["--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider"]
    _run(command, cwd=ROOT, env=env)
    cases = ET.parse(report).getroot().iter("testcase")
    ran = [(case.get("classname", "") + case.get("file", ""), case) for case in cases]
    for path in paths:
        stem = Path(path).stem
        mine = [case for name, case in ran if stem in name]
        assert mine, f"nothing from {path} ran"
        assert not any(case.find("skipped") is not None for case in mine), f"{path} skipped"


def test_the_package_avoids_modules_python_3_13_removed():
    for path in sorted((ROOT / "diffusion_lab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in REMOVED_IN_313, f"{path.name} imports {name}"
