#!/usr/bin/env python3
"""Measure serving with TensorFlow against onnxruntime, side by side in one run on this machine.

    .venv/bin/python scripts/benchmark_api.py [--requests 400] [--serve-python .venv-serve/bin/python]

For each runtime (TensorFlow with models/mnist_cnn.keras, onnxruntime with models/mnist_cnn.onnx):
- predict.py on one image, cold (a new process each time): median wall time of 5 runs and the peak memory;
- the server (`python -m app`) from start until /api/health answers, and its resident memory after the load;
- the size of the venv it runs in;
- where a request's CPU time goes, in one process set up as the server is: the model call, the decoding and
  MNIST-style preprocessing, writing the JSON;
- the latency (p50, p95) and throughput of /api/predict for 1, 4 and 16 concurrent clients, with one uvicorn worker
  and with two.

The load comes from ApacheBench (`ab`, Debian's apache2-utils): a client written in C, so that the clients take
little of the two cores they share with the server (16 Python clients took more of them than the server did). The
requests are 280 x 280 PNG drawings like the ones the page sends, and every answer is checked first. --serve-python
runs the onnxruntime rows with another interpreter, such as the venv of requirements-serve.txt, which has no
TensorFlow at all.
"""
import argparse
import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


def venv_mb(python):
    """Disk size of the venv an interpreter belongs to (the folder above its bin/), in MB."""
    root = Path(python).absolute().parents[1]
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


PROFILE = """
import json, resource, sys, time
import numpy as np
from PIL import Image
import io, mnist_digits
from app.main import Classifier, keep_freed_memory
keep_freed_memory()  # as the server does
data = open(sys.argv[1], "rb").read()
classifier = Classifier(sys.argv[2])
image = mnist_digits.mnist_style(mnist_digits.decode_image(data))
batch = image.reshape(1, 28, 28, 1)

def cpu_ms(step, n=300):
    for _ in range(20):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        step()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return 1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / n

answer = classifier.classify(data)
print(json.dumps({"model call": cpu_ms(lambda: classifier.model(batch)),
                  "decode and MNIST-style preprocessing": cpu_ms(
                      lambda: mnist_digits.mnist_style(mnist_digits.decode_image(data))),
                  "JSON of the answer": cpu_ms(lambda: answer.model_dump_json())}))
"""


def profile(python, model, image):
    """CPU milliseconds per request of each step, measured in a separate process of that interpreter."""
    run = subprocess.run([python, "-c", PROFILE, str(image), str(model)], cwd=REPO, capture_output=True, text=True,
                         check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def resident_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(python, model, workers=1):
    """Start the app; return the process, its base URL and the seconds until /api/health answered."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    server = subprocess.Popen([python, "-m", "app", "--port", str(port), "--model", str(model), "--workers",
                               str(workers)], cwd=REPO, stdout=subprocess.DEVNULL)
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


def resident_mb_tree(pid):
    """Resident memory of a process and its children (uvicorn's workers), in MB."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return resident_mb(pid) + sum(resident_mb(int(child)) for child in children)


def check_answers(base, bodies):
    with httpx.Client(base_url=base, timeout=60) as http:
        for digit, body in bodies:
            answer = http.post("/api/predict", content=body, headers={"Content-Type": "image/png"}).json()
            if answer["digit"] != digit or answer["verdict"] != "digit":
                sys.exit(f"wrong answer: {answer['digit']} ({answer['verdict']}) for a drawn {digit}")


def load(base, clients, requests, image):
    """ab's p50 and p95 latency (ms) and requests per second for `requests` posts from `clients` at once."""
    with tempfile.TemporaryDirectory() as folder:
        percentiles = Path(folder) / "percentiles.csv"
        run = subprocess.run(["ab", "-q", "-n", str(requests), "-c", str(clients), "-p", str(image), "-T",
                              "image/png", "-e", str(percentiles), f"{base}/api/predict"],
                             capture_output=True, text=True, check=True)
        failed = re.search(r"Failed requests:\s+(\d+)", run.stdout)
        if failed is None or int(failed[1]) or "Non-2xx" in run.stdout:
            sys.exit(f"requests failed under load:\n{run.stdout}")
        with percentiles.open() as file:
            at = {int(float(row[0])): float(row[1]) for row in list(csv.reader(file))[1:]}
    return at[50], at[95], float(re.search(r"Requests per second:\s+([\d.]+)", run.stdout)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per row")
    parser.add_argument("--serve-python", default=sys.executable, help="interpreter for the onnxruntime rows")
    args = parser.parse_args()
    if not shutil.which("ab"):
        sys.exit("ab is missing: apt-get install apache2-utils")
    runtimes = [("TensorFlow", sys.executable, REPO / "models" / "mnist_cnn.keras"),
                ("onnxruntime", args.serve_python, REPO / "models" / "mnist_cnn.onnx")]
    bodies = [(digit, drawing(strokes)) for digit, strokes in STROKES.items()]
    scratch = tempfile.TemporaryDirectory()  # removed when the script exits
    image = Path(scratch.name) / "seven.png"
    image.write_bytes(bodies[1][1])

    print(f"{os.cpu_count()} cores; predict.py: median of 5 cold runs; API: {args.requests} requests per row from ab "
          "after 200 of warm-up, a 280 x 280 PNG drawing of a 7\n")
    print("| runtime | venv size (MB) | predict.py wall (s) | predict.py peak memory (MB) | "
          "server start to /api/health (s) | server memory, 1 worker (MB) | 2 workers (MB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    latency_rows, profiles = [], {}
    for name, python, model in runtimes:
        wall, peak = predict_cold(python, model, image)
        profiles[name] = profile(python, model, image)
        memory = {}
        for workers in (1, 2):
            server, base, started = start_server(python, model, workers)
            try:
                check_answers(base, bodies)
                load(base, 4, 200, image)  # warm-up, of every worker
                for clients in (1, 4, 16):
                    p50, p95, per_second = load(base, clients, args.requests, image)
                    latency_rows.append(f"| {name} | {workers} | {clients} | {p50:.1f} | {p95:.1f} "
                                        f"| {per_second:.0f} |")
                memory[workers] = resident_mb_tree(server.pid)
                if workers == 1:
                    first_start = started
            finally:
                server.terminate()
                server.wait(timeout=30)
        print(f"| {name} | {venv_mb(python):,.0f} | {wall:.2f} | {peak:.0f} | {first_start:.2f} | {memory[1]:.0f} "
              f"| {memory[2]:.0f} |", flush=True)
    print("\n| runtime | step of a request | CPU per request (ms) |")
    print("| --- | --- | ---: |")
    for name, steps in profiles.items():
        for step, milliseconds in steps.items():
            print(f"| {name} | {step} | {milliseconds:.2f} |")
    print("\n| runtime | uvicorn workers | clients | p50 latency (ms) | p95 latency (ms) | predictions per second |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(latency_rows))


if __name__ == "__main__":
    main()
