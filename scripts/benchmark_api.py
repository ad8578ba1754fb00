#!/usr/bin/env python3
"""Measure serving with TensorFlow against onnxruntime, side by side in one run on this machine.

    .venv/bin/python scripts/benchmark_api.py [--requests 400] [--serve-python .venv-serve/bin/python]

For each runtime (TensorFlow with models/mnist_cnn.keras, onnxruntime with models/mnist_cnn.onnx):
- predict.py on one image, cold (a new process each time): median wall time of 5 runs and the peak memory;
- the server (`python -m app`) from start until /api/health answers, and its resident memory after the load;
- the latency (p50, p95) and throughput of /api/predict for 1, 4 and 16 concurrent clients.

The clients run on the same machine as the server and take their share of its cores. The requests are 280 x 280
PNG drawings like the ones the page sends. --serve-python runs the onnxruntime rows with another interpreter, such
as the venv of requirements-serve.txt, which has no TensorFlow at all.
"""
import argparse
import io
import os
import socket
import subprocess
import sys
import tempfile
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


def predict_cold(python, model, image, runs=5):
    """Median wall time (s) of `predict.py IMAGE` in a new process, and the largest peak memory (MB) of the runs."""
    walls, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        process = subprocess.Popen([python, str(REPO / "predict.py"), "--model", str(model), str(image)],
                                   cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)  # kilobytes on Linux
        if status != 0:
            sys.exit(f"predict.py failed with {model.name}")
    return float(np.median(walls)), max(peaks)


def resident_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(python, model):
    """Start the app; return the process, its base URL and the seconds until /api/health answered."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    server = subprocess.Popen([python, "-m", "app", "--port", str(port), "--model", str(model)], cwd=REPO,
                              stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    while time.perf_counter() - start < 120:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return server, base, time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.02)
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
    parser.add_argument("--serve-python", default=sys.executable, help="interpreter for the onnxruntime rows")
    args = parser.parse_args()
    runtimes = [("TensorFlow", sys.executable, REPO / "models" / "mnist_cnn.keras"),
                ("onnxruntime", args.serve_python, REPO / "models" / "mnist_cnn.onnx")]
    bodies = [(digit, drawing(strokes)) for digit, strokes in STROKES.items()]
    image = Path(tempfile.mkdtemp()) / "seven.png"
    image.write_bytes(bodies[1][1])

    print(f"{os.cpu_count()} cores; predict.py: median of 5 cold runs; API: {args.requests} requests per row after "
          "40 of warm-up, 280 x 280 PNG drawings\n")
    print("| runtime | predict.py wall (s) | predict.py peak memory (MB) | server start to /api/health (s) | "
          "server memory (MB) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    latency_rows = []
    for name, python, model in runtimes:
        wall, peak = predict_cold(python, model, image)
        server, base, started = start_server(python, model)
        try:
            load(base, 4, 40, bodies)  # warm-up
            for clients in (1, 4, 16):
                latencies, seconds = load(base, clients, args.requests, bodies)
                p50, p95 = np.percentile(latencies, [50, 95]) * 1000
                latency_rows.append(f"| {name} | {clients} | {p50:.1f} | {p95:.1f} | {args.requests / seconds:.0f} |")
            memory = resident_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"| {name} | {wall:.2f} | {peak:.0f} | {started:.2f} | {memory:.0f} |", flush=True)
    print("\n| runtime | clients | p50 latency (ms) | p95 latency (ms) | predictions per second |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print("\n".join(latency_rows))


if __name__ == "__main__":
    main()
