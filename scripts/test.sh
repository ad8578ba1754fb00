#!/usr/bin/env bash
# Install the requirements and the package, and run every test: ruff on the notebooks and the Python files; the
# package's unit tests (IDX and Kaggle CSV readers, generators, stress sets, FusedBatchNorm, export, serving without
# TensorFlow), predict.py and the ONNX model against the Keras model on all 10,000 test digits; the HTTP API
# (including a schemathesis fuzz from its OpenAPI description and 16 concurrent clients); the page in Chromium
# (Debian's package, driven by Playwright), served by the app and as the static site (npm installs onnxruntime-web
# from package-lock.json), with its JavaScript preprocessing, rule and model against the Python; checks of the
# committed record; nbval, which re-executes every notebook in quick mode, in the order of the series (MNIST_QUICK=1:
# a small subset, one or two epochs, outputs in a temporary folder, so the work tree is untouched); and notebooks 1
# and 2 in Kaggle mode on small Kaggle-format files. Then two more venvs: requirements-serve.txt alone (predict.py and
# the API without TensorFlow), and requirements-colab.txt (Colab's TensorFlow and Keras: the committed model,
# predict.py, and the quick-mode series again under nbval).
# Without internet, set MNIST_DATA_DIR to the folder holding the four MNIST IDX files.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
ensure_venv .venv-serve requirements-serve.txt
ensure_venv .venv-colab requirements-colab.txt
ensure_node_modules
export SERVE_PYTHON="$PWD/.venv-serve/bin/python" COLAB_PYTHON="$PWD/.venv-colab/bin/python"
series=(MNIST_project.ipynb notebooks/1_toward_99_6.ipynb notebooks/2_what_it_does_not_know.ipynb
        notebooks/3_inside_the_served_model.ipynb)
# Everything the tests write to a temporary folder (quick mode's outputs, pytest's folders, TensorFlow's autograph
# files, which a stopped kernel leaves behind) goes to one folder, removed at the end
TMPDIR="$(mktemp -d)"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
.venv/bin/ruff check .
MNIST_QUICK=1 .venv/bin/python -m pytest -p no:cacheprovider --basetemp="$TMPDIR/pytest" tests "${series[@]}" \
  --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout=180 --nbval-cell-timeout=1200 "$@"
echo "The quick-mode series under Colab's versions (requirements-colab.txt):"
rm -rf "$TMPDIR/mnist-quick"
MNIST_QUICK=1 .venv-colab/bin/python -m pytest -p no:cacheprovider --basetemp="$TMPDIR/pytest-colab" "${series[@]}" \
  --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout=180 --nbval-cell-timeout=1200
