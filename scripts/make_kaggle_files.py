#!/usr/bin/env python3
"""Write files in the format of Kaggle's Digit Recognizer competition, made from the MNIST IDX files.

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python scripts/make_kaggle_files.py FOLDER [--train N] [--test N]

Kaggle's data is MNIST too: 42,000 labelled digits in train.csv and 28,000 unlabelled ones in test.csv. This script
shuffles MNIST's 70,000 digits (seed 0) and writes the same layout: train.csv (label,pixel0..pixel783),
test.csv (pixel0..pixel783), sample_submission.csv (ImageId,Label), and the answers to test.csv in a separate file,
test_answers.csv (ImageId,Label), which Kaggle would keep to itself. With --train and --test it writes smaller
files, for the tests. Kaggle mode (notebooks 1 and 2) reads the folder through KAGGLE_DIR.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package also without `pip install -e .`
from mnist_digits.data import MnistDataError, load_mnist_idx


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the CSV files")
    parser.add_argument("--train", type=int, default=42_000, help="rows of train.csv (default: %(default)s)")
    parser.add_argument("--test", type=int, default=28_000, help="rows of test.csv (default: %(default)s)")
    args = parser.parse_args(argv)
    if not os.environ.get("MNIST_DATA_DIR"):
        parser.error("set MNIST_DATA_DIR to the folder of the four MNIST IDX files")
    if args.train < 1 or args.test < 1 or args.train + args.test > 70_000:
        parser.error("--train and --test must be positive and add up to at most 70,000")
    try:
        (x_train, y_train), (x_test, y_test) = load_mnist_idx(os.environ["MNIST_DATA_DIR"])
    except MnistDataError as error:
        sys.exit(str(error))
    images, labels = np.concatenate([x_train, x_test]).reshape(-1, 784), np.concatenate([y_train, y_test])
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:args.train], order[args.train:args.train + args.test]
    pixels = [f"pixel{i}" for i in range(784)]
    args.folder.mkdir(parents=True, exist_ok=True)
    pd.concat([pd.DataFrame({"label": labels[train]}), pd.DataFrame(images[train], columns=pixels)], axis=1).to_csv(
        args.folder / "train.csv", index=False)
    pd.DataFrame(images[test], columns=pixels).to_csv(args.folder / "test.csv", index=False)
    ids = np.arange(1, len(test) + 1)
    pd.DataFrame({"ImageId": ids, "Label": 0}).to_csv(args.folder / "sample_submission.csv", index=False)
    pd.DataFrame({"ImageId": ids, "Label": labels[test]}).to_csv(args.folder / "test_answers.csv", index=False)
    print(f"Wrote {args.folder}/train.csv ({len(train):,} rows), test.csv ({len(test):,} rows), sample_submission.csv "
          "and test_answers.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
