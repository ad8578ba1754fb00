# Sourced by the other scripts: ensure_venv DIR REQUIREMENTS makes the venv DIR from the pinned REQUIREMENTS file
# and installs the project's package mnist_digits into it (editable, without dependencies: the file pins them). It
# installs again only when that file or pyproject.toml has changed since (copies of them are kept in DIR).
ensure_venv() {
  local venv="$1" requirements="$2"
  if ! cmp -s "$requirements" "$venv/$(basename "$requirements")" 2>/dev/null \
      || ! cmp -s pyproject.toml "$venv/pyproject.toml" 2>/dev/null; then
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
    cp "$requirements" pyproject.toml "$venv/"
  fi
}

# ensure_node_modules installs the page's JavaScript runtime (onnxruntime-web) from package-lock.json with `npm ci`,
# and again only when the lockfile has changed since (a copy of it is kept in node_modules/).
ensure_node_modules() {
  if ! cmp -s package-lock.json node_modules/package-lock.json 2>/dev/null; then
    if ! command -v npm >/dev/null; then
      echo "npm is missing: it installs the page's runtime, onnxruntime-web (apt-get install nodejs npm)" >&2
      return 1
    fi
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/
  fi
}
