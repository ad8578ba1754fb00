# Sourced by the other scripts: create .venv beside the notebook if needed, install the pinned requirements and the
# project's package (editable, so that the notebooks, scripts and tests import this checkout's mnist_digits).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
ensure_venv .venv requirements.txt
