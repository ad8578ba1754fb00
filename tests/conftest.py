"""Shared fixtures: the repository paths, the real MNIST files, test images made from them, and the web app running
as a server."""
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageOps

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "MNIST_project.ipynb"
COMPANIONS = sorted((REPO / "notebooks").glob("*.ipynb"))
NOTEBOOKS = [NOTEBOOK, *COMPANIONS]
sys.path.insert(0, str(REPO))  # `import mnist_digits` also without `pip install -e .`


def notebook_cells(path, kind="code"):
    """The cells of a committed notebook (for checks of its record; no test runs their code)."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == kind]


def cell_source(cell):
    return "".join(cell["source"])


def outputs_text(cell):
    """The text a code cell printed (stdout and stderr) and its plain-text results."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif "data" in output and "text/plain" in output["data"]:
            parts.append("".join(output["data"]["text/plain"]))
    return "".join(parts)


@pytest.fixture(scope="session")
def idx():
    """The package's IDX reader: read_idx, load_mnist_idx, MnistDataError, IDX_FILES."""
    from mnist_digits import data
    return vars(data)


@pytest.fixture(scope="session")
def mnist_dir():
    """The folder of the real MNIST files: $MNIST_DATA_DIR, or ../shared/data/mnist beside the repository."""
    configured = os.environ.get("MNIST_DATA_DIR")
    folder = Path(configured) if configured else REPO.parent / "shared" / "data" / "mnist"
    if not configured and not folder.is_dir():
        pytest.skip("the MNIST files are not here: set MNIST_DATA_DIR to their folder")
    assert folder.is_dir(), f"MNIST_DATA_DIR={folder} is not a folder"
    return folder


@pytest.fixture(scope="session")
def mnist(idx, mnist_dir):
    return idx["load_mnist_idx"](mnist_dir)


STYLES = ["inverted", "scaled up", "off-centre", "rgb colours", "rgba transparent", "jpeg"]


def dark_on_light(digit, size=None):
    """An MNIST digit (white on black) as dark ink on white paper, optionally resized to size x size."""
    image = Image.fromarray(255 - digit)
    return image.resize((size, size), Image.Resampling.BICUBIC) if size else image


def transform(digit, style, rng, folder, name):
    """Write an MNIST digit (white on black, uint8) to a file the way photos and scans differ; return its path."""
    size = int(rng.integers(56, 200))
    if style == "inverted":
        image = dark_on_light(digit)
    elif style == "scaled up":
        image = dark_on_light(digit, size)
        if rng.random() < 0.5:  # light ink on a dark board, too
            image = ImageOps.invert(image)
    elif style == "off-centre":
        page = Image.new("L", (size * 3, size * 2), int(rng.integers(170, 256)))
        page.paste(ImageOps.autocontrast(dark_on_light(digit, size)).point(lambda v: min(v, page.getpixel((0, 0)))),
                   (int(rng.integers(0, size * 2)), int(rng.integers(0, size))))
        image = page
    elif style == "rgb colours":
        ink, paper = tuple(int(v) for v in rng.integers(0, 90, 3)), tuple(int(v) for v in rng.integers(170, 256, 3))
        image = ImageOps.colorize(dark_on_light(digit, size), black=ink, white=paper)
    elif style == "rgba transparent":
        image = Image.new("RGBA", (size, size), (20, 20, 20, 0))
        image.putalpha(ImageOps.invert(dark_on_light(digit, size)))
    elif style == "jpeg":
        path = folder / f"{name}.jpg"
        dark_on_light(digit, size).convert("RGB").save(path, quality=int(rng.integers(40, 90)))
        return path
    path = folder / f"{name}.png"
    image.save(path)
    return path




# Capital letters as a user draws them on the web page's 280 x 280 canvas, one list of points per pen stroke
LETTERS = {
    "A": [[(70, 245), (140, 40), (210, 245)], [(98, 165), (182, 165)]],
    "X": [[(70, 50), (210, 235)], [(210, 50), (70, 235)]],
    "H": [[(80, 40), (80, 240)], [(200, 40), (200, 240)], [(80, 140), (200, 140)]],
}


def drawing(strokes):
    """Strokes drawn with the page's pen (23 pixels wide) in black on a white 280 x 280 canvas."""
    image = Image.new("L", (280, 280), 255)
    for stroke in strokes:
        ImageDraw.Draw(image).line(stroke, fill=0, width=23, joint="curve")
    return image


# Chromium comes from Debian's packages (.ci/run installs it) and is driven by Playwright through executable_path,
# since `playwright install` cannot download here. As root and without a network it needs these flags, or its
# start-up connections are refused many at a time.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_chromium():
    """Skip the calling test module when Chromium is missing, except in CI, where that is an error."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            raise RuntimeError("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)


def polyline(points, steps=8):
    """Points in canvas units (0-280), interpolated so that the mouse moves in small steps like a hand."""
    path = [points[0]]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        path += [(x0 + (x1 - x0) * t / steps, y0 + (y1 - y0) * t / steps) for t in range(1, steps + 1)]
    return path


def draw_with_mouse(page, strokes):
    """Draw strokes (lists of points on the 280 x 280 canvas) with the mouse, then wait for the answer to the
    finished drawing: one prediction starts at each pen-up."""
    before = int(page.evaluate("document.body.dataset.requested || 0"))
    box = page.locator("#canvas").bounding_box()
    scale = box["width"] / 280
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * scale, box["y"] + y * scale)
        page.mouse.up()
    page.wait_for_function(f"document.body.dataset.requested >= {before + len(strokes)} "
                           "&& document.body.dataset.pending === '0'")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command, url, what, timeout=120):
    """Start a local server and wait until `url` answers 200; fail the test with its last errors if it does not."""
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"{what} did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.3)


def stop_server(server):
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server():
    """The web app started as `python -m app` on a free local port, as scripts/serve.sh starts it; its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server([sys.executable, "-m", "app", "--port", str(port)], f"{base}/api/health", "the app")
    yield base
    stop_server(server)
