"""Build site/, the drawing page that runs the model in the browser, for any static file server:

    python3 scripts/build_site.py [--out site] [--model models/mnist_cnn.onnx]
    python3 -m http.server -d site -b 127.0.0.1 8000     # then open http://127.0.0.1:8000/

It installs onnxruntime-web from package-lock.json with `npm ci` when node_modules/ lacks it, then copies the page,
the runtime files it needs and the model (app/static_site.py lists them). Standard library only.
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app import static_site


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the static site of the drawing page.")
    parser.add_argument("--out", default=str(static_site.REPO / "site"), help="folder to write (default: %(default)s)")
    parser.add_argument("--model", default=str(static_site.MODEL), help="ONNX model (default: %(default)s)")
    args = parser.parse_args(argv)
    if not static_site.runtime_installed():
        if not shutil.which("npm"):
            print("npm is not installed: it installs onnxruntime-web (apt-get install npm)", file=sys.stderr)
            return 2
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=static_site.REPO, check=True)
    try:
        files = static_site.build(args.out, args.model)
    except static_site.SiteError as err:
        print(f"build_site: {err}", file=sys.stderr)
        return 2
    for name, size in files.items():
        print(f"{size:>12,}  {name}")
    print(f"{sum(files.values()):>12,}  bytes in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
