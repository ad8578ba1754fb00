#!/usr/bin/env python3
"""Measure the drawing page answering in the browser against the same page asking the server, side by side.

    .venv/bin/python scripts/benchmark_site.py [--drawings 100] [--opens 5] [--serve-python .venv-serve/bin/python]

The page is used in three ways, each in Debian's Chromium driven by Playwright, one after the other in one run:
- the static site (scripts/build_site.py) served by `python -m http.server`: the model runs in the browser;
- the app (`python -m app`) serving the same page, which runs the model in the browser too;
- the app's page asking the app's API for every answer (`?engine=server`), as the page did before.
For each, the page is opened cold (a new browser profile, nothing cached) --opens times: the bytes it downloads,
the time until it can answer, and the time from opening it to the answer to a 7 drawn as soon as the canvas is
there. Then, in one page, --drawings drawings of one stroke each: the time from the pen leaving the canvas to the
answer on the page, median and 95th percentile, and the bytes each answer sends and receives.
"""
import argparse
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from app import static_site  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STROKES = [  # one-stroke digits on the 280 x 280 canvas
    [(75, 60), (205, 60), (115, 240)],
    [(150, 45), (140, 235)],
    [(140 + 55 * np.sin(t / 6.4), 140 - 85 * np.cos(t / 6.4)) for t in range(42)],
    [(85, 80), (140, 45), (195, 80), (90, 235), (200, 235)],
]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command, url):
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"{command[:3]} did not start")
        time.sleep(0.2)


def draw(page, stroke, rng):
    box = page.locator("#canvas").bounding_box()
    points = [(x + rng.normal(0, 3), y + rng.normal(0, 3)) for x, y in stroke]
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for t in (0.25, 0.5, 0.75, 1.0):
            page.mouse.move(box["x"] + x0 + (x1 - x0) * t, box["y"] + y0 + (y1 - y0) * t)
    page.mouse.up()


class Traffic:
    """Bytes of the requests a page makes: bodies and headers, both ways."""

    def __init__(self, page):
        self.received = self.sent = self.requests = 0
        page.on("requestfinished", self.count)

    def count(self, request):
        sizes = request.sizes()
        self.requests += 1
        self.received += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        body = int(request.all_headers().get("content-length", 0))  # a Blob's bytes are not in post_data
        self.sent += body + sizes["requestHeadersSize"]


def open_context(playwright, profile):
    """Chromium with a new, empty profile: nothing cached."""
    return playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                          args=CHROMIUM_ARGS, viewport={"width": 1000, "height": 760})


def measure(playwright, url, opens, drawings):
    rng = np.random.default_rng(0)
    cold = []
    for _ in range(opens):
        with tempfile.TemporaryDirectory() as profile:
            context = open_context(playwright, profile)
            page = context.new_page()
            traffic = Traffic(page)
            page.goto(url, wait_until="commit")
            page.locator("#canvas").wait_for()
            page.wait_for_function("document.getElementById('bars').children.length === 10")
            draw(page, STROKES[0], rng)
            page.wait_for_function("Number(document.body.dataset.answered) >= 1", timeout=60_000)
            assert page.locator("#status").inner_text().startswith("It is a 7"), page.locator("#status").inner_text()
            page.wait_for_load_state("networkidle")
            cold.append((traffic.received, float(page.evaluate("document.body.dataset.readyMs")),
                         float(page.evaluate("document.body.dataset.answeredAtMs"))))
            context.close()
    with tempfile.TemporaryDirectory() as profile:
        context = open_context(playwright, profile)
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("document.body.dataset.engine === 'browser' || document.body.dataset.engine === "
                               "'server'")
        for i in range(5):  # warm-up
            page.click("#clear")
            draw(page, STROKES[i % len(STROKES)], rng)
            page.wait_for_function(f"Number(document.body.dataset.answered) >= {i + 1}")
        traffic = Traffic(page)
        latencies = []
        for i in range(drawings):
            page.click("#clear")
            draw(page, STROKES[i % len(STROKES)], rng)
            page.wait_for_function(f"Number(document.body.dataset.answered) >= {i + 6} "
                                   "&& document.body.dataset.pending === '0'")
            latencies.append(float(page.evaluate("document.body.dataset.answerMs")))
        engine = page.evaluate("document.body.dataset.engine")
        context.close()
    return engine, cold, latencies, traffic


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=100, help="drawings per way of using the page")
    parser.add_argument("--opens", type=int, default=5, help="cold openings per way of using the page")
    parser.add_argument("--serve-python", default=sys.executable, help="interpreter that runs the app")
    args = parser.parse_args()
    if not CHROMIUM:
        sys.exit("Chromium is missing: apt-get install chromium")
    scratch = tempfile.TemporaryDirectory(prefix="site-")  # removed when the script exits
    site_dir = Path(scratch.name) / "site"
    static_site.build(site_dir)
    site_port, app_port = free_port(), free_port()
    static = start([sys.executable, "-m", "http.server", "-d", str(site_dir), "-b", "127.0.0.1", str(site_port)],
                   f"http://127.0.0.1:{site_port}/")
    app = start([args.serve_python, "-m", "app", "--port", str(app_port)], f"http://127.0.0.1:{app_port}/api/health")
    ways = [("static site (python -m http.server)", f"http://127.0.0.1:{site_port}/"),
            ("app, model in the browser", f"http://127.0.0.1:{app_port}/"),
            ("app, answers from its API", f"http://127.0.0.1:{app_port}/?engine=server")]
    rows = []
    try:
        with sync_playwright() as playwright:
            for name, url in ways:
                rows.append((name, *measure(playwright, url, args.opens, args.drawings)))
    finally:
        static.terminate()
        app.terminate()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.split()[1]
    print(f"{os.cpu_count()} cores, Chromium {chromium}, onnxruntime-web {static_site.runtime_version()}; medians of "
          f"{args.opens} cold openings; {args.drawings} one-stroke drawings\n")
    print("| page | answers from | downloaded on opening (bytes) | opening to ready (ms) | opening to the first "
          "answer (ms) | pen-up to answer, median (ms) | 95th percentile (ms) | bytes per answer, sent / received |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, engine, cold, latencies, traffic in rows:
        received, ready, first = (statistics.median(column) for column in zip(*cold))
        per_answer = (f"{traffic.sent / args.drawings:,.0f} / {traffic.received / args.drawings:,.0f}"
                      if traffic.requests else "0 / 0")
        print(f"| {name} | {engine} | {received:,.0f} | {ready:.0f} | {first:.0f} | "
              f"{statistics.median(latencies):.1f} | {np.percentile(latencies, 95):.1f} | {per_answer} |")


if __name__ == "__main__":
    main()
