"""In a real browser: JupyterLab runs a lesson, a slider moves, and the picture changes.

Starts JupyterLab on a free localhost port (FAST mode, autosave off, its own settings), opens
each notebook in CASES in headless Chromium (Debian's `chromium`, driven by Playwright), runs
all cells from the Run menu, moves the widget's slider with the keyboard and checks that the
image is re-rendered. The time from key press to new image is printed (`pytest -s`) and written
to build/browser/latency.json; screenshots go to build/browser/, and to docs/screenshots/ when
DIFFUSION_LAB_SCREENSHOTS=update (or when a committed one is missing).

    python -m pytest tests/test_browser.py -s
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_SCREENSHOT_BYTES = 150_000


@dataclass(frozen=True)
class Case:
    """One widget to drive: the nth widget in `notebook` whose slider is labelled `slider`."""

    notebook: str  # a file in notebooks/
    slider: str  # the slider's description, exactly as shown beside it
    nth: int = 0  # which of the matching widgets, in page order
    screenshot: str | None = None  # file name in docs/screenshots/
    keys: tuple[str, ...] = ("ArrowRight",) * 6 + ("Home",)  # small steps, then a big jump

    def __str__(self) -> str:
        return f"{Path(self.notebook).stem}-{self.slider}-{self.nth}"


# Widgets checked in the browser. Cases of one notebook share a single run of it.
CASES = [
    Case("02_forward_process.ipynb", "t", 0, "02_timestep_explorer_cat.png"),
    Case("02_forward_process.ipynb", "t", 1, "02_timestep_explorer_digits.png"),
    # ReverseWalkthrough starts at frame 0 (pure noise), so its big jump goes to the end
    Case(
        "06_sampling.ipynb",
        "frame",
        0,
        "06_reverse_walkthrough.png",
        ("ArrowRight",) * 6 + ("End",),
    ),
    # GuidanceExplorer: a selection slider over the guidance scales (3 of them in FAST mode)
    Case(
        "08_conditioning.ipynb",
        "guidance w",
        0,
        "08_guidance_explorer.png",
        ("ArrowRight", "Home", "End"),
    ),
    # lesson 10's SDEdit strength slider (a FrameSlider from strength 0; 4 strengths in FAST mode)
    Case(
        "10_applications.ipynb",
        "strength",
        0,
        "10_sdedit_strength.png",
        ("ArrowRight",) * 2 + ("End",),
    ),
    # lesson 12's FrameSlider over the GAN and diffusion snapshots (starts at the first one)
    Case(
        "12_why_diffusion.ipynb",
        "snapshot",
        0,
        "12_training_snapshots.png",
        ("ArrowRight",) * 3 + ("End",),
    ),
    # lesson 13: the video model's clips frame by frame, and the flow model's Euler trajectory
    Case("13_beyond_images.ipynb", "frame", 0, "13_clips.png", ("ArrowRight",) * 3 + ("End",)),
    Case(
        "13_beyond_images.ipynb",
        "step",
        0,
        "13_flow_trajectory.png",
        ("ArrowRight",) * 3 + ("End",),
    ),
]

LAB_SETTINGS = {  # JupyterLab user settings for the test server
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},  # never save a lesson
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}

# In the page: note when the key goes down, when the <img> gets a new src, and when it loads.
WATCH_IMAGE = """(img) => {
    const r = window.__move = {src0: img.src};
    document.addEventListener('keydown', () => { r.key = performance.now(); },
                              {capture: true, once: true});
    const observer = new MutationObserver(() => {
        if (img.src === r.src0) return;
        r.src = performance.now();
        r.url = img.src;
        observer.disconnect();
    });
    observer.observe(img, {attributes: true, attributeFilter: ['src']});
    img.addEventListener('load', () => { r.load = performance.now(); }, {once: true});
}"""
CELLS_RUNNING = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .some(p => p.textContent.trim() === '[*]:')"""


def _require_playwright():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (.ci/run "
            "does this) or point CHROMIUM at one"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Playwright client is missing: pip install -r requirements-dev.txt")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


@dataclass
class Lab:
    """A running JupyterLab: its URL, token, process, log, and the notebooks opened in it."""

    url: str
    token: str
    process: subprocess.Popen
    log: Path
    opened: dict = field(default_factory=dict)  # path -> its bytes before it was opened

    def api(self, path: str, method: str = "GET", timeout: float = 5):
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        return urllib.request.urlopen(request, timeout=timeout)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _stop(lab: Lab) -> None:
    """Stop JupyterLab and its kernels, politely first (kernels run in their own groups)."""
    process = lab.process
    below = _descendants(process.pid)
    try:
        lab.api("/api/shutdown", method="POST").close()
        process.wait(timeout=15)
    except Exception:
        pass
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    for pid in below:  # whatever outlived the server, kernels included
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving the repository, stopped (with its kernels) whatever happens."""
    _require_playwright()
    home = tmp_path_factory.mktemp("lab")
    for plugin, values in LAB_SETTINGS.items():
        path = home / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "DIFFUSION_LAB_FAST": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    log = home / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Lab(f"http://127.0.0.1:{port}", token, process, log)
    pidfile = BUILD / "jupyterlab.pid"  # for .ci/run, should this process die before cleaning up
    BUILD.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(process.pid))
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("/api/status", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 60 s:\n{server.log_tail()}")
                time.sleep(0.25)
        yield server
    finally:
        _stop(server)
        pidfile.unlink(missing_ok=True)
        changed = [path for path, data in server.opened.items() if path.read_bytes() != data]
        for path in changed:  # autosave is off, so this should never happen
            path.write_bytes(server.opened[path])
        assert not changed, f"JupyterLab wrote to {[p.name for p in changed]}; restored them"


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    """Headless Chromium with a fresh profile."""
    sync_playwright = _require_playwright()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 1400},
        )
        try:
            yield context
        finally:
            context.close()


def _open_and_run(browser, lab: Lab, notebook: str):
    """Open a lesson in JupyterLab, clear its stored outputs and run all cells from the menu."""
    path = ROOT / "notebooks" / notebook
    lab.opened[path] = path.read_bytes()
    cells = json.loads(lab.opened[path])["cells"]
    code_cells = sum(cell["cell_type"] == "code" for cell in cells)
    page = browser.new_page()
    page.goto(f"{lab.url}/lab/tree/notebooks/{notebook}?token={lab.token}")
    # every cell rendered, then the kernel ready: a waiting limit, not a measurement (opening the
    # 1.2 MB lesson 13 once took over 60 s in a clean-clone CI run on the 2-core CPU)
    page.wait_for_function(
        f"() => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length === {code_cells}",
        timeout=150_000,
    )
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$")).wait_for(
        timeout=150_000
    )
    menu = page.locator("#jp-MainMenu")
    menu.get_by_text("Edit", exact=True).click()  # stored outputs must not count
    page.locator('li[data-command="editmenu:clear-all"]').click()
    menu.get_by_text("Run", exact=True).click()
    page.locator('li[data-command="runmenu:run-all"]').click()
    start = time.perf_counter()
    try:  # Run All marks every cell [*] until it has run
        page.wait_for_function(CELLS_RUNNING, timeout=30_000, polling=100)
        page.wait_for_function(f"() => !({CELLS_RUNNING})()", timeout=180_000, polling=250)
    except Exception:
        BUILD.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(BUILD / f"{Path(notebook).stem}-failed.png"))
        raise
    errors = page.locator(".jp-OutputArea-output", has_text="Traceback")
    assert errors.count() == 0, errors.first.inner_text()[:2000]
    print(f"\n{notebook}: Run All took {time.perf_counter() - start:.1f} s in the browser")
    return page


@pytest.fixture(scope="module")
def run_notebook(lab, browser):
    """Open and run a notebook once per module, however many cases use it; returns the page."""
    pages = {}

    def run(notebook: str):
        if notebook not in pages:
            pages[notebook] = _open_and_run(browser, lab, notebook)
        return pages[notebook]

    return run


@pytest.fixture(scope="module")
def results():
    """Slider timings of every case, written to build/browser/latency.json at the end."""
    found: dict = {}
    yield found
    if found:
        BUILD.mkdir(parents=True, exist_ok=True)
        (BUILD / "latency.json").write_text(json.dumps(found, indent=1) + "\n")


def _save_screenshot(png: bytes, name: str) -> None:
    """Store a shrunken (at most 640 px wide, palette) copy under build/, docs/ if asked."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    width = min(640, image.width)
    while True:
        small = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        out = io.BytesIO()
        small.quantize(colors=64).save(out, format="PNG", optimize=True)
        if out.tell() <= MAX_SCREENSHOT_BYTES or width < 200:
            break
        width = int(width * 0.8)
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / name).write_bytes(out.getvalue())
    committed = SCREENSHOTS / name
    if os.environ.get("DIFFUSION_LAB_SCREENSHOTS") == "update" or not committed.exists():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUILD / name, committed)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_moving_the_slider_redraws_the_image(case, run_notebook, results):
    page = run_notebook(case.notebook)
    label = page.locator(
        ".widget-slider > .widget-label", has_text=re.compile(rf"^{re.escape(case.slider)}$")
    )
    boxes = page.locator(".jp-OutputArea-output > .widget-vbox").filter(has=label)
    boxes = boxes.filter(has=page.locator("img.widget-image"))
    assert boxes.count() > case.nth, f"{case}: only {boxes.count()} such widgets on the page"
    box = boxes.nth(case.nth)
    box.scroll_into_view_if_needed()
    image = box.locator("img.widget-image").first
    handle = box.locator(".widget-slider [role=slider]").first
    image.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    size = image.evaluate("(img) => [img.naturalWidth, img.naturalHeight, img.width, img.height]")
    before = box.screenshot()
    if case.screenshot:
        _save_screenshot(before, case.screenshot)
    picture_before = image.screenshot()
    moves = []
    for key in case.keys:
        value = handle.get_attribute("aria-valuenow")
        image.evaluate(WATCH_IMAGE)
        handle.press(key)
        page.wait_for_function(
            "() => window.__move.src !== undefined && window.__move.load !== undefined",
            timeout=10_000,
        )
        move = page.evaluate("() => window.__move")
        assert move["url"].startswith(("blob:", "data:")), move["url"][:80]
        assert handle.get_attribute("aria-valuenow") != value, f"{key} did not move the slider"
        moves.append(
            {
                "key": key,
                "value": handle.get_attribute("aria-valuenow"),
                "to_new_src_ms": round(move["src"] - move["key"], 1),
                "to_image_loaded_ms": round(move["load"] - move["key"], 1),
            }
        )
    assert image.screenshot() != picture_before, "the picture looks the same after the jump"
    BUILD.mkdir(parents=True, exist_ok=True)
    (BUILD / f"{case}-after.png").write_bytes(box.screenshot())
    src = [m["to_new_src_ms"] for m in moves]
    loaded = [m["to_image_loaded_ms"] for m in moves]
    results[str(case)] = {
        "notebook": case.notebook,
        "slider": case.slider,
        "widget": case.nth,
        "image_natural_px": size[:2],
        "image_shown_px": size[2:],
        "moves": moves,
        "median_to_new_src_ms": statistics.median(src),
        "median_to_image_loaded_ms": statistics.median(loaded),
        "max_to_image_loaded_ms": max(loaded),
    }
    print(
        f"{case}: key press -> new image src median {statistics.median(src):.0f} ms "
        f"(max {max(src):.0f}); -> image loaded median {statistics.median(loaded):.0f} ms "
        f"(max {max(loaded):.0f}), {len(moves)} moves; image {size[0]}x{size[1]} px "
        f"shown at {size[2]}x{size[3]}"
    )
