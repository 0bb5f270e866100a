"""The package's shape: public names import, module boundaries hold, and the code is lint-clean."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import diffusion_lab

PACKAGE = Path(diffusion_lab.__file__).parent
ROOT = PACKAGE.parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")

# who may import whom inside the package (STYLE.md 4.2); widgets is imported by nobody
ALLOWED = {
    "utils": set(),
    "schedules": {"utils"},
    "forward": {"utils", "schedules"},
    "data": {"utils"},
    "viz": {"data", "beyond"},  # beyond: the spectrograms of show_sounds
    "exercises": {"schedules"},  # lesson 11's checks until merged into exercises
    "weights": {"data"},
    "conditioning": set(),
    "captions": {"data", "metrics"},
    "toy": {"models", "utils"},
    "training": {"utils", "schedules", "forward", "conditioning"},
    "samplers": {"utils", "schedules", "forward", "conditioning"},
    "metrics": {"data", "forward", "weights"},
    "pretrained": {
        "applications",
        "beyond",
        "captions",
        "data",
        "models",
        "schedules",
        "training",
        "utils",
        "weights",
    },
    "widgets": {"utils", "schedules", "forward", "samplers", "viz"},
    "applications": {"utils", "schedules", "forward", "samplers", "models"},
    "beyond": {"utils", "forward", "data", "training", "samplers"},  # lesson 13: data + flows
}


def _internal_imports(path: Path) -> set[str]:
    imports = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            imports.add((node.module or "").split(".")[0])
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffusion_lab."):
            imports.add(node.module.split(".")[1])
    return imports


def test_all_names_import():
    for name in diffusion_lab.__all__:
        assert hasattr(diffusion_lab, name), name
    for module in MODULES:
        mod = importlib.import_module(f"diffusion_lab.{module}")
        for name in getattr(mod, "__all__", []):
            assert hasattr(mod, name), f"{module}.{name}"


@pytest.mark.parametrize("module", MODULES)
def test_module_dependencies_follow_the_pipeline(module):
    assert module in ALLOWED, f"add {module} to ALLOWED with its dependencies"
    extra = _internal_imports(PACKAGE / f"{module}.py") - ALLOWED[module]
    assert not extra, f"{module} imports {extra}, outside its allowed dependencies"


def test_only_widgets_imports_ipywidgets_and_the_package_imports_headless():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "widgets.py":
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in getattr(node, "names", [])] + [getattr(node, "module", "")]
                if isinstance(node, ast.Import | ast.ImportFrom):
                    assert not any((n or "").startswith("ipywidgets") for n in names), path
    code = "import sys, diffusion_lab, diffusion_lab.exercises; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_device_is_hard_coded():
    for path in PACKAGE.rglob("*.py"):
        assert ".cuda()" not in path.read_text(), path


def test_public_functions_have_docstrings_and_type_hints():
    for module in MODULES:
        mod = importlib.import_module(f"diffusion_lab.{module}")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if callable(obj) and not isinstance(obj, dict):
                assert obj.__doc__, f"{module}.{name} has no docstring"


def test_ruff_lint_and_format_are_clean():
    # ruff comes with requirements-dev.txt; run it through this Python so a PATH quirk can't skip it
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        ["ruff", "format", "--check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_every_subpackage_is_listed_for_installation():
    """A non-editable install (Colab's `pip install git+...`) ships only the listed packages."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "diffusion_lab").rglob("__init__.py")
    }
    assert found == listed, f"pyproject.toml [tool.setuptools] packages must be {sorted(found)}"
