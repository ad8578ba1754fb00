#!/usr/bin/env python3
"""Measure the web app's latency and throughput on this machine: start the server, send drawn digits from 1, 4 and
16 concurrent clients, and print a table of p50 / p95 latency and predictions per second.

    .venv/bin/python scripts/benchmark_api.py [--requests 400] [--compare-eager]

The clients run on the same machine as the server and take their share of its cores. The requests are 280 x 280
PNG drawings like the ones the page sends. --compare-eager also measures the server with the plain eager Keras call
instead of the compiled inference function.
"""
import argparse
import io
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
STROKES = {  # digits drawn on a 280 x 280 canvas, as a person draws them on the page
    1: [[(150, 45), (140, 235)]],
    7: [[(75, 60), (205, 60), (115, 240)]],
    4: [[(110, 40), (75, 160), (210, 160)], [(170, 70), (165, 245)]],
    0: [[(140 + 55 * np.sin(2 * np.pi * t / 40), 140 - 85 * np.cos(2 * np.pi * t / 40)) for t in range(41)]],
}


def drawing(strokes):
    image = Image.new("L", (280, 280), 255)
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill=0, width=23, joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def start_server(eager):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MNIST_EAGER": "1" if eager else "0"}
    server = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    sys.exit("the server did not start")


def load(base, clients, requests, bodies):
    """Send `requests` predictions from `clients` threads; return the latencies (s) and the wall time."""
    def client(share):
        latencies = []
        with httpx.Client(base_url=base, timeout=60) as http:
            for k in share:
                digit, body = bodies[k % len(bodies)]
                start = time.perf_counter()
                response = http.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200 or response.json()["digit"] != digit:
                    raise SystemExit(f"wrong answer under load: {response.status_code} {response.text[:200]}")
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for part in pool.map(client, [range(c, requests, clients) for c in range(clients)])
                     for t in part]
    return np.array(latencies), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level")
    parser.add_argument("--compare-eager", action="store_true", help="also measure the eager Keras call")
    args = parser.parse_args()
    bodies = [(digit, drawing(strokes)) for digit, strokes in STROKES.items()]
    print(f"{os.cpu_count()} cores; {args.requests} requests per row after 40 of warm-up; 280 x 280 PNG drawings\n")
    print("| inference | clients | p50 latency (ms) | p95 latency (ms) | predictions per second |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for eager in ([False, True] if args.compare_eager else [False]):
        server, base = start_server(eager)
        try:
            load(base, 4, 40, bodies)  # warm-up
            for clients in (1, 4, 16):
                latencies, seconds = load(base, clients, args.requests, bodies)
                p50, p95 = np.percentile(latencies, [50, 95]) * 1000
                print(f"| {'eager Keras call' if eager else 'compiled tf.function'} | {clients} | {p50:.1f} | "
                      f"{p95:.1f} | {args.requests / seconds:.0f} |", flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
