#!/usr/bin/env bash
# Start the web app (the drawing page and the HTTP API) on the committed model, in the same .venv as the other
# scripts.   Usage: bash scripts/serve.sh [--host 127.0.0.1] [--port 8000] [--model PATH] [--allow-origin URL]
# It binds 127.0.0.1 unless --host says otherwise, and prints the URL to open.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
exec .venv/bin/python -m app "$@"
