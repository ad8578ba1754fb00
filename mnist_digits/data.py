"""Reading the data, validated: MNIST's four IDX files (gzip-compressed or not) and Kaggle's Digit Recognizer CSV
files. A missing, empty, truncated or wrong file stops with one MnistDataError that names the file and the problem:
nothing ever falls back to other data.
"""
import gzip
import os
from pathlib import Path

import numpy as np

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
MNIST_SIZES = {"train": 60_000, "test": 10_000}


class MnistDataError(ValueError):
    """An MNIST file is missing or does not hold what MNIST holds."""


def read_idx(path, ndim):
    """Read one IDX file (gzip-compressed when its name ends in .gz) into a uint8 array, checking its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError) as err:  # gzip raises these for a damaged or cut-off stream
        raise MnistDataError(f"{path}: cannot read it: {err}") from None
    if not raw:
        raise MnistDataError(f"{path}: the file is empty")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise MnistDataError(f"{path}: truncated: {len(raw)} bytes, shorter than an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != 0x800 + ndim:
        raise MnistDataError(f"{path}: magic number 0x{magic:08x}, expected 0x{0x800 + ndim:08x}: "
                             "not the right kind of IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header_size != expected:
        problem = "truncated" if len(raw) - header_size < expected else "has trailing bytes"
        raise MnistDataError(f"{path}: {problem}: {len(raw) - header_size} data bytes, "
                             f"its header {shape} needs {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def load_mnist_idx(data_dir):
    """Load ((x_train, y_train), (x_test, y_test)) from the four IDX files in data_dir, validated."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise MnistDataError(f"{data_dir}: MNIST_DATA_DIR is not a folder")
    arrays, paths = {}, {}
    for key, stem in IDX_FILES.items():
        path = next((p for p in (data_dir / f"{stem}.gz", data_dir / stem) if p.exists()), None)
        if path is None:
            raise MnistDataError(f"{data_dir / stem}[.gz]: file not found")
        arrays[key], paths[key] = read_idx(path, ndim=3 if key.startswith("x") else 1), path
    for split, size in MNIST_SIZES.items():
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.shape != (size, 28, 28):
            raise MnistDataError(f"{paths[f'x_{split}']}: holds images of shape {images.shape}, "
                                 f"expected ({size}, 28, 28)")
        if labels.shape != (size,):
            raise MnistDataError(f"{paths[f'y_{split}']}: holds {labels.shape[0]} labels for {size} images")
        if labels.max() > 9:
            raise MnistDataError(f"{paths[f'y_{split}']}: label {labels.max()} is outside 0-9")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


KAGGLE_PIXELS = [f"pixel{i}" for i in range(784)]  # pixel x lies at row x // 28, column x % 28
KAGGLE_ROWS = {"train.csv": 42_000, "test.csv": 28_000}


def read_kaggle_csv(path, labelled, rows=None):
    """Read one of Kaggle's Digit Recognizer CSVs: uint8 images (n, 28, 28) and labels (None for test.csv)."""
    path = Path(path)
    if not path.is_file():
        raise MnistDataError(f"{path}: file not found")
    import pandas as pd  # only Kaggle mode needs pandas

    try:
        table = pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as err:  # pandas' parser errors are ValueErrors
        raise MnistDataError(f"{path}: cannot read it as CSV: {str(err).strip().splitlines()[0]}") from None
    expected = ["label", *KAGGLE_PIXELS] if labelled else KAGGLE_PIXELS
    if list(table.columns) != expected:
        missing = [str(c) for c in expected if c not in table.columns]
        unexpected = [str(c) for c in table.columns if c not in expected]
        detail = (f"missing {', '.join(missing[:3])}" if missing else
                  f"unexpected {', '.join(unexpected[:3])}" if unexpected else "in another order")
        raise MnistDataError(f"{path}: expected the columns {'label, ' if labelled else ''}pixel0..pixel783, found "
                             f"{len(table.columns)} columns ({detail})")
    if table.empty or (rows is not None and len(table) != rows):
        raise MnistDataError(f"{path}: {len(table):,} rows, expected {f'{rows:,}' if rows else 'at least one'}")
    incomplete = np.flatnonzero(table.isna().any(axis=1).to_numpy())
    if len(incomplete):
        raise MnistDataError(f"{path}: missing values in {len(incomplete):,} rows, the first in data row "
                             f"{incomplete[0] + 1}")
    not_whole = [name for name, kind in table.dtypes.items() if not pd.api.types.is_integer_dtype(kind)]
    if not_whole:
        raise MnistDataError(f"{path}: column {not_whole[0]} holds values that are not whole numbers")
    pixels = table[KAGGLE_PIXELS].to_numpy()
    if pixels.min() < 0 or pixels.max() > 255:
        raise MnistDataError(f"{path}: pixel values from {pixels.min()} to {pixels.max()}, outside 0-255")
    labels = table["label"].to_numpy() if labelled else None
    if labelled and (labels.min() < 0 or labels.max() > 9):
        raise MnistDataError(f"{path}: labels from {labels.min()} to {labels.max()}, outside 0-9")
    return pixels.reshape(-1, 28, 28).astype(np.uint8), None if labels is None else labels.astype(np.uint8)


def load_kaggle(kaggle_dir, test_size, seed, exact_rows=True):
    """train.csv split into training images and a labelled test part (stratified), and test.csv's images.

    exact_rows checks Kaggle's row counts; quick mode reads smaller files made for the tests.
    """
    kaggle_dir = Path(kaggle_dir)
    if not kaggle_dir.is_dir():
        raise MnistDataError(f"{kaggle_dir}: KAGGLE_DIR is not a folder")
    rows = KAGGLE_ROWS if exact_rows else {}
    images, labels = read_kaggle_csv(kaggle_dir / "train.csv", labelled=True, rows=rows.get("train.csv"))
    unlabelled, _ = read_kaggle_csv(kaggle_dir / "test.csv", labelled=False, rows=rows.get("test.csv"))
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=test_size, stratify=labels,
                                                        random_state=seed)
    return (x_train, y_train), (x_test, y_test), unlabelled


KAGGLE_INPUT = Path("/kaggle/input/digit-recognizer")  # where Kaggle attaches the competition's data


def load_data(data_dir="", kaggle_dir="", kaggle_test_size=6_000, seed=42, exact_rows=True):
    """((x_train, y_train), (x_test, y_test), kaggle_test) as uint8 images and labels.

    From Kaggle's files when kaggle_dir is given (never keras.datasets.mnist, whose images include Kaggle's test
    set), else from the IDX files in data_dir, else through Keras's download. kaggle_test is None outside Kaggle mode.
    """
    if kaggle_dir:
        train, test, kaggle_test = load_kaggle(kaggle_dir, kaggle_test_size, seed, exact_rows=exact_rows)
        return train, test, kaggle_test
    if data_dir:
        train, test = load_mnist_idx(data_dir)
    else:
        import keras

        train, test = keras.datasets.mnist.load_data()
    return train, test, None


def data_dirs(data_dir="", kaggle_dir=""):
    """The settings as given, or from the environment: $MNIST_DATA_DIR, and Kaggle's folder when it is attached."""
    data_dir = data_dir or os.environ.get("MNIST_DATA_DIR", "")
    kaggle_dir = kaggle_dir or os.environ.get("MNIST_KAGGLE_DIR", "") or (
        str(KAGGLE_INPUT) if KAGGLE_INPUT.is_dir() else "")
    return data_dir, kaggle_dir


def to_model_input(images):
    """uint8 images (n, 28, 28) -> float32 in [0, 1] with a channel axis (n, 28, 28, 1)."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def split(images, labels, validation_size=5_000, seed=42):
    """The training images split into training and validation parts, stratified by class, as model input."""
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(to_model_input(images), labels, test_size=validation_size,
                                                      stratify=labels, random_state=seed)
    return (x_train, y_train), (x_val, y_val)
