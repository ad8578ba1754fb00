#!/usr/bin/env python3
"""Write the example images of the README into a folder, made from MNIST test digits the way people's images differ
from MNIST: a noisy low-contrast JPEG photo of a 7, a 2 drawn on a transparent background, a 4 in blue ink on yellow
paper, a capital A drawn as on the web page's canvas, and a blank page.
Usage: MNIST_DATA_DIR=/path/to/mnist .venv/bin/python scripts/make_examples.py FOLDER
"""
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package also without `pip install -e .`
from mnist_digits.data import load_mnist_idx


def main():
    if len(sys.argv) != 2 or not os.environ.get("MNIST_DATA_DIR"):
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    _, (images, labels) = load_mnist_idx(os.environ["MNIST_DATA_DIR"])
    first = {digit: images[np.flatnonzero(labels == digit)[0]] for digit in (2, 4, 7)}
    big = {d: Image.fromarray(255 - image).resize((168, 168), Image.Resampling.BICUBIC) for d, image in first.items()}
    rng = np.random.default_rng(0)
    photo = np.asarray(big[7], np.float32) * 0.35 + 150 + rng.normal(0, 4, (168, 168))
    Image.fromarray(np.uint8(photo.clip(0, 255))).convert("RGB").save(out / "photo_of_a_seven.jpg", quality=60)
    drawing = Image.new("RGBA", big[2].size, (0, 0, 0, 0))
    drawing.putalpha(ImageOps.invert(big[2]))
    drawing.save(out / "drawing.png")
    ImageOps.colorize(big[4], black=(30, 40, 160), white=(250, 240, 190)).save(out / "blue_ink.png")
    letter = Image.new("L", (280, 280), 255)  # a capital A, two pen strokes as a user draws it on the page
    for stroke in ([(70, 245), (140, 40), (210, 245)], [(98, 165), (182, 165)]):
        ImageDraw.Draw(letter).line(stroke, fill=0, width=23, joint="curve")
    letter.save(out / "letter_a.png")
    Image.new("L", (168, 168), 235).save(out / "blank_page.png")
    print(f"wrote 5 images to {out}")


if __name__ == "__main__":
    main()
