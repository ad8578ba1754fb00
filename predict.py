#!/usr/bin/env python3
"""Predict the digit in any image with the model trained by notebooks/2_what_it_does_not_know.ipynb.

    python predict.py [--model PATH] [--json] IMAGE [IMAGE ...]

Each image is preprocessed the way MNIST itself was made (mnist_digits.mnist_style), then classified by the ONNX
model with onnxruntime (TensorFlow is imported only for a .keras model given with --model). One line per image goes
to standard output: the digit, "not sure: 4 or 9?" when the model is unsure, or "not a digit" when nothing in the
image looks like one, by the rule saved beside the model. A refused image (missing, not an image, blank, ...) gets
one line on standard error and the exit status is 1. A missing or unreadable model is an error with exit status 2.
"""
import argparse
import json
import sys

import mnist_digits


def main(argv=None):
    parser = argparse.ArgumentParser(description="Predict the handwritten digit in each image, MNIST style.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--model", default=str(mnist_digits.DEFAULT_MODEL),
                        help="ONNX model, or a Keras .keras file (needs TensorFlow) (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args(argv)
    try:
        model = mnist_digits.load_model(args.model)
        rule = mnist_digits.load_metadata(args.model)["rule"]
    except ValueError as err:
        print(f"{args.model}: {err}", file=sys.stderr)
        return 2

    refused = 0
    for path in args.images:
        try:
            digit_image = mnist_digits.mnist_style(mnist_digits.read_image(path))
        except ValueError as err:
            print(f"{path}: {err}", file=sys.stderr)
            refused += 1
            continue
        [prediction] = mnist_digits.predict(model, [digit_image], rule)
        if args.json:
            print(json.dumps({"path": path, "digit": prediction.digit, "probability": prediction.probability,
                              "verdict": prediction.verdict, "unsure": prediction.unsure,
                              "top3": [{"digit": d, "probability": p} for d, p in prediction.top3]}))
        else:
            print(f"{path}: {prediction.describe()}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
