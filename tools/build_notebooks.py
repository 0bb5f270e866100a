"""Build the lesson notebooks from their sources in notebooks/src/ and run them.

Each source is a Python file in the "percent" format (`# %%` starts a code cell,
`# %% [markdown]` a markdown cell whose lines start with `# `). This script turns it into
notebooks/NAME.ipynb, executes it top to bottom on a fresh kernel (full mode unless --fast),
stores the outputs without widget state, and prints the wall time and any problems.

    python tools/build_notebooks.py                 # every lesson, full mode
    python tools/build_notebooks.py 02 --fast       # one lesson, FAST mode (quick check)
    python tools/build_notebooks.py --no-execute    # convert only
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


def build(path: Path, execute: bool, fast: bool) -> dict:
    name = path.stem
    text = path.read_text().replace("{{REPO}}", REPO).replace("{{NAME}}", name)
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(text)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("only", nargs="*", help="prefixes of lessons to build (default: all)")
    parser.add_argument("--fast", action="store_true", help="execute in FAST mode")
    parser.add_argument("--no-execute", action="store_true", help="convert without running")
    args = parser.parse_args()
    sources = sorted(SRC.glob("*.py"))
    if args.only:
        sources = [s for s in sources if any(s.stem.startswith(p) for p in args.only)]
    failed = False
    for source in sources:
        report = build(source, execute=not args.no_execute, fast=args.fast)
        print(json.dumps(report))
        failed |= bool(report["problems"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
