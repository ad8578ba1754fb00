#!/usr/bin/env bash
# Re-run the notebook with other seeds and print each run's results table, to measure the spread of the test
# accuracy. The baselines get one epoch each (only the improved CNN's spread is of interest); outputs go to a
# temporary folder, so the committed record is untouched.   Usage: bash scripts/seed_spread.sh SEED [SEED ...]
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
for seed in "$@"; do
  out="$(mktemp -d)"
  .venv/bin/papermill --log-level WARNING --no-progress-bar MNIST_project.ipynb "$out/run.ipynb" \
    -p SEED "$seed" -p OUTPUT_DIR "$out" -p FNN_EPOCHS 1 -p CNN_EPOCHS 1
  echo "seed $seed ($out):"
  cat "$out/figures/results.csv"
done
