#!/usr/bin/env bash
# Install the requirements and run every test: ruff on the notebook and the Python files; the unit tests of the
# IDX and Kaggle CSV loaders, the stress-set generators, mnist_digits and predict.py; the ONNX model against the
# Keras model on all 10,000 test digits; the HTTP API (including a schemathesis fuzz from its OpenAPI description
# and 16 concurrent clients); the page in Chromium (Debian's package, driven by Playwright), served by the app and
# as the static site (npm installs onnxruntime-web from package-lock.json), with its JavaScript preprocessing, rule
# and model against the Python; checks of the committed record; nbval, which re-executes the whole notebook in quick mode (MNIST_QUICK=1: a small subset, one or two
# epochs, outputs in a temporary folder, so the work tree is untouched), and the notebook in Kaggle mode on small
# Kaggle-format files. Then two more venvs: requirements-serve.txt alone (predict.py and the API without
# TensorFlow), and requirements-colab.txt (Colab's TensorFlow and Keras: the committed model, predict.py, and the
# quick-mode notebook again under nbval).
# Without internet, set MNIST_DATA_DIR to the folder holding the four MNIST IDX files.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
ensure_venv .venv-serve requirements-serve.txt
ensure_venv .venv-colab requirements-colab.txt
ensure_node_modules
export SERVE_PYTHON="$PWD/.venv-serve/bin/python" COLAB_PYTHON="$PWD/.venv-colab/bin/python"
.venv/bin/ruff check .
MNIST_QUICK=1 .venv/bin/python -m pytest -p no:cacheprovider tests MNIST_project.ipynb \
  --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout=180 --nbval-cell-timeout=1200 "$@"
echo "The quick-mode notebook under Colab's versions (requirements-colab.txt):"
MNIST_QUICK=1 .venv-colab/bin/python -m pytest -p no:cacheprovider MNIST_project.ipynb \
  --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout=180 --nbval-cell-timeout=1200
