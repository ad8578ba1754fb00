#!/usr/bin/env bash
# Install the requirements and run every test: ruff on the notebook and the Python files; the unit tests of the
# IDX loader, mnist_digits and predict.py; the HTTP API (including a schemathesis fuzz from its OpenAPI description
# and 16 concurrent clients); the page in Chromium (Debian's package, driven by Playwright); checks of the committed
# record; and nbval, which re-executes the whole notebook in quick mode (MNIST_QUICK=1: a small subset, one or two
# epochs, outputs in a temporary folder, so the work tree is untouched).
# Without internet, set MNIST_DATA_DIR to the folder holding the four MNIST IDX files.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
.venv/bin/ruff check .
MNIST_QUICK=1 .venv/bin/python -m pytest -p no:cacheprovider tests MNIST_project.ipynb \
  --nbval-lax --nbval-current-env --nbval-kernel-startup-timeout=180 --nbval-cell-timeout=1200 "$@"
