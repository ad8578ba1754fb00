"""The static site: the drawing page with the model and onnxruntime-web's files, for any static file server.

    site/index.html                    the page (app/static/index.html)
    site/static/{app.js,digits.js,style.css}
    site/static/ort/                   onnxruntime-web's wasm-only bundle and its WebAssembly (RUNTIME_FILES)
    site/models/mnist_cnn.{onnx,json}  the model and its decision rule

The app (python -m app) serves the same page at the same paths, so the page finds everything relative to itself.
Standard library only: scripts/build_site.py runs it with any Python 3.10+.
"""
import hashlib
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE_DIR = Path(__file__).resolve().parent / "static"
PAGE_FILES = ("app.js", "digits.js", "style.css")
RUNTIME_DIR = REPO / "node_modules" / "onnxruntime-web" / "dist"
# The wasm-only ES module bundle, the Emscripten loader it imports, and the SIMD build of onnxruntime it loads; the
# package's WebGPU, WebGL and JSPI builds and its threaded worker are not needed with one thread on the CPU.
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MODEL = REPO / "models" / "mnist_cnn.onnx"


class SiteError(RuntimeError):
    """Something the site needs is missing or does not match."""


def runtime_version():
    """The installed onnxruntime-web's version, or None when `npm ci` has not been run."""
    package = RUNTIME_DIR.parent / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["version"] if package.is_file() else None


def locked_version():
    """The onnxruntime-web version that package-lock.json pins."""
    lock = json.loads((REPO / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"]["node_modules/onnxruntime-web"]["version"]


def runtime_installed():
    """Whether node_modules/ holds the onnxruntime-web that package-lock.json pins."""
    return runtime_version() == locked_version()


def build(out, model=MODEL):
    """Write the site into `out` (emptied first); return {relative path: bytes} of what it holds."""
    out, model = Path(out), Path(model)
    if not runtime_installed():
        raise SiteError(f"onnxruntime-web {locked_version()} is not installed in node_modules/: run `npm ci`")
    metadata_file = model.with_suffix(".json")
    for path in (model, metadata_file):
        if not path.is_file():
            raise SiteError(f"{path}: file not found")
    described = json.loads(metadata_file.read_text(encoding="utf-8")).get("files", {}).get(model.name, {})
    if "sha256" in described and described["sha256"] != hashlib.sha256(model.read_bytes()).hexdigest():
        raise SiteError(f"{metadata_file.name} does not describe {model.name} (SHA-256 differs)")
    if out.exists():  # a site built before is replaced; anything else is left alone
        if out.resolve() in (REPO, *REPO.parents) or not out.is_dir() or (
                any(out.iterdir()) and not (out / "static" / "ort").is_dir()):
            raise SiteError(f"{out}: exists and is not a site built before: choose an empty or new folder")
        shutil.rmtree(out)
    copies = {"index.html": PAGE_DIR / "index.html",
              **{f"static/{name}": PAGE_DIR / name for name in PAGE_FILES},
              **{f"static/ort/{name}": RUNTIME_DIR / name for name in RUNTIME_FILES},
              "models/mnist_cnn.onnx": model, "models/mnist_cnn.json": metadata_file}
    for target, source in copies.items():
        (out / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / target)
    return {target: (out / target).stat().st_size for target in copies}
