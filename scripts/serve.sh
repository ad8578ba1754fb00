#!/usr/bin/env bash
# Start the web app (the drawing page and the HTTP API) on the committed ONNX model with onnxruntime, from a venv of
# requirements-serve.txt alone (.venv-serve/, made on the first run; no TensorFlow). It binds 127.0.0.1 unless
# --host says otherwise, and prints the URL to open. Where npm is installed it also installs onnxruntime-web from
# package-lock.json, so that the page runs the model in the browser; without it the page asks the app's API.
#   Usage: bash scripts/serve.sh [--host 127.0.0.1] [--port 8000] [--model PATH] [--allow-origin URL] [--workers N]
# A .keras model (--model models/mnist_cnn.keras) needs TensorFlow: run `.venv/bin/python -m app` instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
ensure_venv .venv-serve requirements-serve.txt
if command -v npm >/dev/null; then ensure_node_modules; fi
exec .venv-serve/bin/python -m app "$@"
