# Sourced by the other scripts: create .venv beside the notebook if needed and install the pinned requirements.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh
ensure_venv .venv requirements.txt
