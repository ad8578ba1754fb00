#!/usr/bin/env bash
# Install the requirements and the package, then run the notebooks top to bottom in place, in order: the full run,
# which rewrites their outputs, figures/ and models/ (the record). With arguments, only those notebooks, in the order
# given; later notebooks read what earlier ones wrote to models/ (notebook 2 reads notebook 1's MNIST-only model,
# notebook 3 the model notebook 2 exports). Then the generated tables of README.md and docs/, and, when notebook 2
# ran, the transcripts of docs/serving.md.
# Without internet, set MNIST_DATA_DIR to the folder holding the four MNIST IDX files.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
unset MNIST_QUICK
notebooks=("$@")
if [ ${#notebooks[@]} -eq 0 ]; then
  notebooks=(MNIST_project.ipynb notebooks/1_toward_99_6.ipynb notebooks/2_what_it_does_not_know.ipynb
             notebooks/3_inside_the_served_model.ipynb)
fi
for notebook in "${notebooks[@]}"; do
  echo "Running $notebook"
  .venv/bin/jupyter nbconvert --to notebook --execute --inplace "$notebook" \
    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3
done
.venv/bin/python scripts/update_readme.py
if [[ " ${notebooks[*]} " == *" notebooks/2_what_it_does_not_know.ipynb "* ]]; then
  ensure_venv .venv-serve requirements-serve.txt  # a new served model: docs/serving.md's transcripts run it again
  .venv/bin/python scripts/update_examples.py --serve-python .venv-serve/bin/python
fi
