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
from build_notebooks import REPO, parse  # noqa: E402

SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))


def _load(source: Path) -> dict:
    return json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text())


def test_every_lesson_source_has_a_notebook_and_vice_versa():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert SOURCES, "no lesson sources found"
    assert notebooks == {s.stem for s in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_matches_its_source(source):
    text = source.read_text().replace("{{REPO}}", REPO).replace("{{NAME}}", source.stem)
    expected = [(c.cell_type, c.source) for c in parse(text)]
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
