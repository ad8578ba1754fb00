"""Images as MNIST's digits are: decode a user's image safely, then grayscale, white ink on black, cropped, scaled
into a 20 x 20 box and centred by mass in 28 x 28 (`mnist_style`). NumPy and Pillow only: predict.py, the app and
the generators of the synthetic images all use it. app/static/digits.js is its JavaScript copy, held equal by
tests/test_site.py.
"""
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 25_000_000  # refuse larger images before decoding them (decompression bombs)


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
    # Plain float32 arithmetic, not a matrix product: NumPy hands that to OpenBLAS, whose AVX-512 kernel rounds
    # some gray levels otherwise than its AVX2 one, so that an image would give another input on another CPU
    gray = rgba[..., 0] * np.float32(0.299) + rgba[..., 1] * np.float32(0.587) + rgba[..., 2] * np.float32(0.114)
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


class ImageTooLarge(ValueError):
    """The image has more pixels than it is safe to decode."""


def decode_image(source, max_pixels=MAX_PIXELS):
    """Fully decode an image from a file object or bytes, or raise ValueError with the problem in a few words.

    The size in the header is checked before any pixel is decoded, so a small file that would expand to
    gigabytes (a decompression bomb) is refused cheaply.
    """
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ValueError("the file is empty")
        source = io.BytesIO(source)
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise ImageTooLarge(f"the image is too large to decode safely ({image.width}x{image.height} pixels, "
                                 f"at most {max_pixels:,})")
            image.load()
            return image.copy()
    except Image.UnidentifiedImageError:
        raise ValueError("not an image format Pillow can read") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge("the image is too large to decode safely") from None
    except PermissionError:
        raise ValueError("permission denied") from None
    except ValueError:
        raise
    except (OSError, SyntaxError, EOFError, IndexError, TypeError) as err:  # Pillow's errors for corrupt data
        raise ValueError(f"truncated or corrupt image ({str(err).splitlines()[0] if str(err) else 'no detail'})"
                         ) from None


def read_image(path, max_pixels=MAX_PIXELS):
    """Open and fully decode an image file, or raise ValueError with the problem in a few words."""
    path = Path(path)
    if not path.exists():
        raise ValueError("no such file")
    if path.is_dir():
        raise ValueError("is a directory, not an image")
    if path.stat().st_size == 0:
        raise ValueError("the file is empty")
    try:
        with open(path, "rb") as file:
            return decode_image(file, max_pixels)
    except PermissionError:
        raise ValueError("permission denied") from None


