"""Build the lesson notebooks from their sources in notebooks/src/ and run them.

Each source is a Python file in the "percent" format (`# %%` starts a code cell,
`# %% [markdown]` a markdown cell whose lines start with `# `). This script turns it into
notebooks/NAME.ipynb, executes it top to bottom on a fresh kernel (full mode unless --fast),
stores the outputs without widget state, and prints the wall time and any problems. Every
cell gets RISE slide metadata (`slide_types`), so each lesson can be presented as slides.

    python tools/build_notebooks.py                 # every lesson, full mode
    python tools/build_notebooks.py 02 --fast       # one lesson, FAST mode (quick check)
    python tools/build_notebooks.py --no-execute    # convert only
    python tools/build_notebooks.py 02 --metadata-only  # refresh slide metadata, keep outputs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"
REPO = "diffusion-lab/diffusion-lab"  # GitHub owner/name used by the Colab badges
WIDGET_NOTE = "[Interactive widget: run this notebook in Jupyter or Colab to use it.]"
RISE = {"scroll": True}  # notebook-level RISE settings: long slides scroll instead of clipping


def source_text(path: Path) -> str:
    """A lesson source with the Colab badge's placeholders filled in."""
    return path.read_text().replace("{{REPO}}", REPO).replace("{{NAME}}", path.stem)


def parse(source: str) -> list:
    cells, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", line) for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        elif kind == "code" and text.strip():
            cells.append(nbformat.v4.new_code_cell(text))

    for line in source.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def slide_types(cells: list) -> list[str]:
    """The RISE slide type of each cell, for presenting a lesson in class.

    A `#` or `##` heading starts a slide; a `###` heading, or prose that follows code, starts a
    sub-slide below it (so an exercise's answer waits on its own sub-slide). Code shows on the
    slide of the prose above it; the Colab install cell is skipped and the setup cell is a
    sub-slide of its own.
    """
    types, setup_seen, previous = [], False, None
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            if re.match(r"#{1,2} ", text):
                kind = "slide"
            elif text.startswith("#") or previous == "code":
                kind = "subslide"
            else:
                kind = "-"
        elif "google.colab" in text:
            kind = "skip"
        elif not setup_seen:
            kind, setup_seen = "subslide", True
        else:
            kind = "-"
        types.append(kind)
        previous = cell["cell_type"]
    return types


def add_slide_metadata(nb) -> None:
    """Set every cell's `metadata.slideshow.slide_type` and the notebook's RISE settings."""
    for cell, kind in zip(nb.cells, slide_types(nb.cells), strict=True):
        cell.metadata["slideshow"] = {"slide_type": kind}
    nb.metadata["rise"] = dict(RISE)


def build(path: Path, execute: bool, fast: bool) -> dict:
    name = path.stem
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source_text(path))
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    add_slide_metadata(nb)
    report = {"name": name, "seconds": None, "problems": []}
    if execute:
        env_fast = os.environ.get("DIFFUSION_LAB_FAST")
        os.environ["DIFFUSION_LAB_FAST"] = "1" if fast else "0"
        os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        start = time.perf_counter()
        try:
            NotebookClient(
                nb,
                timeout=3600,
                kernel_name="python3",
                store_widget_state=False,
                resources={"metadata": {"path": str(OUT)}},
            ).execute()
        finally:
            if env_fast is None:
                os.environ.pop("DIFFUSION_LAB_FAST", None)
            else:
                os.environ["DIFFUSION_LAB_FAST"] = env_fast
        report["seconds"] = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:  # readers on GitHub see a note, not the widget's Python repr
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                data["text/plain"] = WIDGET_NOTE
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                report["problems"].append(f"cell {i}: error {output.get('ename')}")
            if output.get("name") == "stderr" and re.search(r"Warning|Traceback", output["text"]):
                report["problems"].append(f"cell {i}: warning on stderr: {output['text'][:200]}")
        if len(cell.source.splitlines()) > 25:
            report["problems"].append(f"cell {i}: {len(cell.source.splitlines())} lines")
    target = OUT / f"{name}.ipynb"
    nbformat.write(nb, target)
    size = target.stat().st_size
    if size > 2_000_000:
        report["problems"].append(f"{size / 1e6:.1f} MB, over the 2 MB budget")
    report["megabytes"] = round(size / 1e6, 2)
    return report


def update_metadata(path: Path) -> dict:
    """Refresh the slide metadata of a built notebook; its sources and outputs stay as they are."""
    target = OUT / f"{path.stem}.ipynb"
    report = {"name": path.stem, "problems": []}
    if not target.exists():
        report["problems"].append(f"no {target.name} yet: build it first")
        return report
    nb = nbformat.read(target, as_version=4)
    expected = [(c.cell_type, c.source) for c in parse(source_text(path))]
    if [(c.cell_type, c.source) for c in nb.cells] != expected:
        report["problems"].append("the notebook differs from its source: rebuild it")
        return report
    add_slide_metadata(nb)
    nbformat.write(nb, target)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="prefixes of lessons to build (default: all)")
    parser.add_argument("--fast", action="store_true", help="execute in FAST mode")
    parser.add_argument("--no-execute", action="store_true", help="convert without running")
    parser.add_argument(
        "--metadata-only",
        action="store_true",
        help="only refresh the slide metadata of existing notebooks (no run, outputs kept)",
    )
    args = parser.parse_args()
    sources = sorted(SRC.glob("*.py"))
    if args.only:
        sources = [s for s in sources if any(s.stem.startswith(p) for p in args.only)]
    failed = False
    for source in sources:
        if args.metadata_only:
            report = update_metadata(source)
        else:
            report = build(source, execute=not args.no_execute, fast=args.fast)
        print(json.dumps(report))
        failed |= bool(report["problems"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
