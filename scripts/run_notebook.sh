#!/usr/bin/env bash
# Install the requirements and run MNIST_project.ipynb top to bottom in place: the full run, which rewrites the
# notebook's outputs, figures/ (with figures/results.csv) and models/mnist_cnn.keras.
# Without internet, set MNIST_DATA_DIR to the folder holding the four MNIST IDX files.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
unset MNIST_QUICK
.venv/bin/jupyter nbconvert --to notebook --execute --inplace MNIST_project.ipynb \
  --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3
cat figures/results.csv
.venv/bin/python scripts/update_readme.py
