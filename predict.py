#!/usr/bin/env python3
"""Predict the digit in any image with the model trained by MNIST_project.ipynb.

    python predict.py [--model PATH] [--json] IMAGE [IMAGE ...]

Each image is preprocessed the way MNIST itself was made (see mnist_style below), then classified. One line per
image goes to standard output; a refused image (missing, not an image, blank, ...) gets one line on standard error
and the exit status is 1. A missing or unreadable model is an error with exit status 2.
"""
import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MODEL = Path(__file__).resolve().parent / "models" / "mnist_cnn.keras"


def mnist_style(image, min_side=8, min_contrast=0.15):
    """Turn a PIL image of one digit into a 28 x 28 float32 array in [0, 1], white ink on black, like MNIST.

    MNIST's recipe: grayscale; ink made white on a black background; cropped to the ink; scaled with
    anti-aliasing to fit a 20 x 20 box, keeping the aspect ratio; placed in a 28 x 28 image so that its centre of
    mass is at the centre. Raises ValueError for an image too small to hold a digit or with no visible ink.
    """
    image = ImageOps.exif_transpose(image)
    if min(image.size) < min_side:
        raise ValueError(f"image is {image.width}x{image.height} pixels, too small to hold a digit "
                         f"(at least {min_side}x{min_side})")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[..., 3]
    if alpha.min() < 1.0:  # transparency: put the strokes on a background of the opposite brightness
        opaque = alpha > 0.5
        ink_is_dark = gray[opaque].mean() < 0.5 if opaque.any() else True
        gray = gray * alpha + (1.0 if ink_is_dark else 0.0) * (1.0 - alpha)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    if background > 0.5:  # dark ink on light paper: invert so that ink is bright
        gray, background = 1.0 - gray, 1.0 - background
    ink = np.clip(gray - background, 0.0, None)
    if ink.max() < min_contrast:
        raise ValueError("no ink found: the image is blank or has almost no contrast")
    ink /= ink.max()
    rows, cols = np.nonzero(ink > 0.3)  # the ink's bounding box, ignoring faint noise
    box = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box[box < 0.1] = 0.0
    height, width = box.shape
    scale = 20.0 / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.uint8(np.round(box * 255))).resize(size, Image.Resampling.LANCZOS)
    small = np.asarray(small, dtype=np.float32) / 255.0
    total = small.sum()
    if total == 0:
        raise ValueError("no ink left after scaling the digit down")
    center_row = (np.arange(small.shape[0]) @ small.sum(axis=1)) / total
    center_col = (np.arange(small.shape[1]) @ small.sum(axis=0)) / total
    top, left = round(14.0 - center_row), round(14.0 - center_col)  # MNIST puts the centre of mass at (14, 14)
    top, left = min(max(top, 0), 28 - small.shape[0]), min(max(left, 0), 28 - small.shape[1])
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def read_image(path):
    """Open and fully decode an image file, or raise ValueError with the problem in a few words."""
    path = Path(path)
    if not path.exists():
        raise ValueError("no such file")
    if path.is_dir():
        raise ValueError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise ValueError("the file is empty")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except Image.UnidentifiedImageError:
        raise ValueError("not an image format Pillow can read") from None
    except PermissionError:
        raise ValueError("permission denied") from None
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for truncated or corrupt data
        raise ValueError(f"truncated or corrupt image ({err})") from None
    except Image.DecompressionBombError:
        raise ValueError("the image is too large to decode safely") from None


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide TensorFlow's C++ start-up notices, which it writes to file descriptor 2 before logging is configured."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_model(path):
    """Load a Keras model in safe mode, or raise ValueError."""
    path = Path(path)
    if not path.is_file():
        raise ValueError("model file not found" if not path.exists() else "model path is not a file")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_stderr_silenced():
        import keras
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for a damaged or foreign file
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"cannot load the model: {message}") from None
    if tuple(model.input_shape[1:]) != (28, 28, 1):
        raise ValueError(f"the model takes inputs of shape {model.input_shape[1:]}, not 28 x 28 x 1 digits")
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description="Predict the handwritten digit in each image, MNIST style.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="Keras model file (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
    except ValueError as err:
        print(f"{args.model}: {err}", file=sys.stderr)
        return 2

    refused = 0
    for path in args.images:
        try:
            digit_image = mnist_style(read_image(path))
        except ValueError as err:
            print(f"{path}: {err}", file=sys.stderr)
            refused += 1
            continue
        probabilities = np.asarray(model(digit_image[np.newaxis, :, :, np.newaxis], training=False), np.float64)[0]
        top3 = [(int(d), round(float(probabilities[d]), 4)) for d in np.argsort(-probabilities)[:3]]
        if args.json:
            print(json.dumps({"path": path, "digit": top3[0][0], "probability": top3[0][1],
                              "top3": [{"digit": d, "probability": p} for d, p in top3]}))
        else:
            print(f"{path}: {top3[0][0]} ({top3[0][1]:.1%}; next {top3[1][0]} {top3[1][1]:.1%}, "
                  f"{top3[2][0]} {top3[2][1]:.1%})")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
