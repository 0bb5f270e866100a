"""The committed lessons: in sync with their sources, built by a full run, and within budget.

Executing them is nbval's job (pytest runs notebooks/*.ipynb in FAST mode); these checks are static.
"""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from build_notebooks import REPO, RISE, parse, slide_types, source_text  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))


def _load(source: Path) -> dict:
    return json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text())


def test_every_lesson_source_has_a_notebook_and_vice_versa():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert SOURCES, "no lesson sources found"
    assert notebooks == {s.stem for s in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_has_no_control_characters(source):
    # a "\bar" written inside a normal Python string becomes a backspace and "ar": garbled maths
    bad = [(i + 1, line) for i, line in enumerate(source.read_text().splitlines())
           if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", line)]  # fmt: skip
    assert not bad, f"control characters in {source.name}: {bad[:3]}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    expected = [(c.cell_type, c.source) for c in parse(source_text(source))]
    found = [(c["cell_type"], "".join(c["source"])) for c in _load(source)["cells"]]
    assert found == expected, "rebuild with: python tools/build_notebooks.py " + source.stem[:2]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_follows_the_lesson_template(source):
    nb = _load(source)
    cells = nb["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert f"colab.research.google.com/github/{REPO}/blob/main/notebooks/{source.stem}.ipynb" in (
        markdown
    )
    assert "Time to run" in markdown and "## Summary" in markdown
    unfilled = re.findall(r"\{\{[A-Z_0-9]+\}\}", markdown)
    assert not unfilled, f"placeholders left in the text: {unfilled}"
    assert "widgets" not in nb["metadata"], "saved widget state: rebuild the notebook"
    assert (ROOT / "notebooks" / f"{source.stem}.ipynb").stat().st_size < 2_000_000
    setup = "".join(code[1]["source"])
    assert 'FAST = os.environ.get("DIFFUSION_LAB_FAST") == "1"' in setup
    assert "device = get_device()" in setup and "seed_everything(" in setup
    assert sum("check_" in "".join(c["source"]) for c in code) >= 3, "at least three exercises"
    for i, cell in enumerate(code):
        src = "".join(cell["source"])
        assert not re.search(r"^\s*from \S+ import \*", src, re.M), f"cell {i}: import *"
        assert len(src.splitlines()) <= 25, f"cell {i} is longer than 25 lines"
        assert cell["execution_count"] is not None, f"cell {i} was not executed"
        for output in cell["outputs"]:
            assert output["output_type"] != "error", f"cell {i} stored an error"
            text = "".join(output.get("text", ""))
            assert not (output.get("name") == "stderr" and re.search("Warning|Traceback", text))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_carries_slide_metadata_for_teaching_mode(source):
    nb = _load(source)
    found = [c["metadata"].get("slideshow", {}).get("slide_type") for c in nb["cells"]]
    fix = "refresh with: python tools/build_notebooks.py --metadata-only " + source.stem[:2]
    assert found == slide_types(parse(source_text(source))), fix
    assert nb["metadata"].get("rise") == RISE, fix
    assert found[0] == "slide" and found.count("slide") >= 3
    for cell, kind in zip(nb["cells"], found):
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and re.match(r"#{1,2} ", text):
            assert kind == "slide", text.splitlines()[0]
        if "google.colab" in text:
            assert kind == "skip"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_first_cell_installs_the_package_only_on_colab(source):
    code = [c for c in _load(source)["cells"] if c["cell_type"] == "code"]
    first = "".join(code[0]["source"])
    guard = 'if "google.colab" in sys.modules:'
    assert guard in first, "the first code cell must install only on Colab"
    body = first.split(guard, 1)[1].splitlines()
    assert all(line.startswith("    ") for line in body if line.strip()), "pip outside the guard"
    assert f"git+https://github.com/{REPO}" in first
    for cell in code[1:]:
        assert "pip install" not in "".join(cell["source"]), "only the first cell installs"


def test_readme_has_a_colab_badge_for_every_lesson():
    readme = (ROOT / "README.md").read_text()
    assert not re.findall(r"\{\{[A-Z_0-9]+\}\}", readme), "placeholders left in the README"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        path = f"notebooks/{notebook.name}"
        assert f"]({path})" in readme, f"README's lesson table lacks {path}"
        badge = f"colab.research.google.com/github/{REPO}/blob/main/{path})"
        assert badge in readme, f"README has no Colab badge for {path}"
