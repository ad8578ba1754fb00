"""What runs outside the main .venv, driven by scripts/test.sh:

- SERVE_PYTHON: the interpreter of a venv made from requirements-serve.txt alone. predict.py and the web app must
  work there without TensorFlow.
- COLAB_PYTHON: the interpreter of a venv made from requirements-colab.txt (Colab's TensorFlow and Keras). The
  committed Keras model must load there, and predict.py must answer with it.

Outside CI, a test whose interpreter is not given is skipped.
"""
import json
import os
import socket
import subprocess
import time

import httpx
import pytest
from conftest import REPO, dark_on_light


def interpreter(name):
    python = os.environ.get(name)
    if not python:
        if os.environ.get("CI"):
            raise RuntimeError(f"{name} is not set: scripts/test.sh sets it in CI")
        pytest.skip(f"{name} is not set")
    return python


@pytest.fixture(scope="module")
def images(mnist, tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    x_test = mnist[1][0]
    dark_on_light(x_test[0], 140).save(folder / "seven.png")  # test digit 0 is a 7
    return folder


def run(python, *args, **options):
    return subprocess.run([python, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          **options)


def test_serving_venv_has_no_tensorflow_and_predicts(images):
    python = interpreter("SERVE_PYTHON")
    probe = run(python, "-c", "import importlib.util as u; print(u.find_spec('tensorflow'), u.find_spec('keras'))")
    assert probe.stdout.split() == ["None", "None"], probe.stdout + probe.stderr
    answer = run(python, "predict.py", "--json", images / "seven.png")
    assert answer.returncode == 0 and answer.stderr == "", answer.stderr
    assert json.loads(answer.stdout)["digit"] == 7 and json.loads(answer.stdout)["verdict"] == "digit"
    keras_model = run(python, "predict.py", "--model", REPO / "models" / "mnist_cnn.keras", images / "seven.png")
    assert keras_model.returncode == 2 and "needs TensorFlow and Keras" in keras_model.stderr


def test_serving_venv_serves_the_api(images):
    python = interpreter("SERVE_PYTHON")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    server = subprocess.Popen([python, "-m", "app", "--port", str(port)], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                health = httpx.get(f"{base}/api/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() - start < 60, server.stderr.read()[-2000:]
            time.sleep(0.05)
        print(f"serving venv: /api/health answered {time.monotonic() - start:.2f} s after the start")
        assert health.json()["runtime"].startswith("onnxruntime") and health.json()["model"] == "mnist_cnn.onnx"
        answer = httpx.post(f"{base}/api/predict", content=(images / "seven.png").read_bytes(),
                            headers={"Content-Type": "image/png"}, timeout=30).json()
        assert answer["digit"] == 7 and answer["verdict"] == "digit"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_committed_keras_model_loads_and_predicts_under_colabs_versions(images):
    python = interpreter("COLAB_PYTHON")
    versions = run(python, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'; import keras, tensorflow as tf; "
                   "print(tf.__version__, keras.__version__)")
    assert versions.returncode == 0, versions.stderr
    print("Colab versions:", versions.stdout.strip())
    answer = run(python, "predict.py", "--json", "--model", REPO / "models" / "mnist_cnn.keras", images / "seven.png")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["digit"] == 7 and json.loads(answer.stdout)["verdict"] == "digit"
