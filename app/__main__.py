"""Start the web app:  python -m app [--host 127.0.0.1] [--port 8000] [--model PATH] [--allow-origin URL]"""
import argparse
import os
import sys
from pathlib import Path

import uvicorn

import mnist_digits


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve the digit page and the HTTP API.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--model", default=str(mnist_digits.DEFAULT_MODEL),
                        help="ONNX model, or a Keras .keras file (needs TensorFlow) (default: %(default)s)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                        help="let pages from this origin call the API (CORS); repeatable; default: none")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        mnist_digits.load_model(args.model)  # a missing, damaged or mismatched model is one line here,
        mnist_digits.load_metadata(args.model)  # not a start-up traceback
    except ValueError as err:
        print(f"{args.model}: {err}", file=sys.stderr)
        return 2
    os.environ["MNIST_MODEL"] = str(Path(args.model).resolve())
    if args.allow_origin:
        os.environ["MNIST_ALLOW_ORIGINS"] = ",".join(args.allow_origin)
    print(f"Serving the digit recogniser on http://{args.host}:{args.port}/ (API: /api/predict, /api/health)",
          flush=True)
    uvicorn.run("app.main:app", host=args.host, port=args.port, workers=args.workers, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
