#!/usr/bin/env python3
"""Train the notebook's improved CNN and the design it replaced side by side, and measure the spread over seeds.

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python scripts/benchmark_training.py [--seeds 42 1 2 3 4]

The new design, its training recipe and the helpers (augmentation layer, schedule) are taken from the notebook's own
cells, so what is measured is what the notebook runs. The reference is the improved CNN as it was before (strided
5 x 5 convolutions, 20 epochs), kept here as a fixed baseline. With the first seed both train in one process,
their epochs interleaved in proportion, so that this machine's drifting speed weighs on both alike; the other seeds
train the new design alone. Every model trains on the notebook's split for that seed, is scored on the validation
split with its final weights, and is evaluated once on the test set.

Writes figures/training_benchmark.csv (the side-by-side run) and figures/seed_spread.csv (every seed of the new
design), and prints both tables. With --epochs N other than the notebook's, the new design trains N epochs and the
files are named training_benchmark_N_epochs.csv and seed_spread_N_epochs.csv, so the record's stay as they are.

With --ablation it trains instead the same network on four training sets, for each seed: MNIST alone, MNIST with the
synthetic non-digits (outlier exposure), MNIST with the synthetic digits in other styles and the scanned ones, and
all of them (the notebook's recipe), each with the notebook's generators and its train_recipe, and scores each on MNIST
and on validation parts of the stress sets (held-out generators). Writes figures/ablation.csv, keeping the rows of
other seeds already there, so that seeds can be run one at a time.
"""
import argparse
import ast
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "MNIST_project.ipynb"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def is_constant(node):
    """An assignment of a literal, such as the IDX file names beside the loader."""
    if not isinstance(node, ast.Assign):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def notebook_namespace(names, whole_cells=()):
    """Execute the notebook's cells that define `names` (definitions and constants only) and its parameters, and
    the cells that define `whole_cells` in full (the generator cells, which only define)."""
    import itertools
    import time

    import keras
    import matplotlib
    import tensorflow as tf
    from keras import layers
    from PIL import Image, ImageDraw, ImageFont, ImageOps
    from scipy import ndimage
    from sklearn.model_selection import train_test_split

    cells = ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    namespace = {"np": np, "keras": keras, "layers": layers, "tf": tf, "Path": Path, "gzip": gzip,
                 "train_test_split": train_test_split, "itertools": itertools, "time": time, "matplotlib": matplotlib,
                 "Image": Image, "ImageDraw": ImageDraw, "ImageFont": ImageFont, "ImageOps": ImageOps,
                 "ndimage": ndimage}
    parameters = next(c for c in cells if c.lstrip().startswith("SEED: int"))
    exec(compile(parameters, "parameters", "exec"), namespace)
    sources = [next(c for c in cells if f"def {name}(" in c or f"class {name}(" in c) for name in names]
    for source in dict.fromkeys(sources):  # each cell once, in the order of the names
        tree = ast.parse(source)
        tree.body = [node for node in tree.body
                     if isinstance(node, ast.FunctionDef | ast.ClassDef) or is_constant(node)]
        exec(compile(tree, "notebook cell", "exec"), namespace)
    for name in whole_cells:
        source = next(c for c in cells if f"def {name}(" in c)
        exec(compile(source, "notebook cell", "exec"), namespace)
    return namespace


def build_reference_cnn(ns, seed):
    """The improved CNN before this benchmark's change: 32-32-32(5x5, stride 2) and 64-64-64(5x5, stride 2), 40%
    dropout, with Keras's own BatchNormalization."""
    keras, layers = ns["keras"], ns["layers"]

    def conv_bn_relu(filters, kernel_size, strides=1, padding="valid"):
        return [layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False),
                layers.BatchNormalization(), layers.ReLU()]

    keras.config.set_dtype_policy(ns["IMPROVED_POLICY"])
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        ns["RandomAffine"](seed=seed, name="augment"),
        *conv_bn_relu(32, 3), *conv_bn_relu(32, 3), *conv_bn_relu(32, 5, strides=2, padding="same"),
        layers.Dropout(0.4),
        *conv_bn_relu(64, 3), *conv_bn_relu(64, 3), *conv_bn_relu(64, 5, strides=2, padding="same"),
        layers.Dropout(0.4),
        *conv_bn_relu(128, 4), layers.Flatten(), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax", dtype="float32"),
    ], name="reference_cnn")
    keras.config.set_dtype_policy("float32")
    return model


class Run:
    """One model with its recipe, trained an epoch at a time so that two runs can be interleaved."""

    def __init__(self, ns, label, model, epochs, peak_learning_rate, data):
        keras = ns["keras"]
        self.label, self.model, self.epochs, self.data = label, model, epochs, data
        schedule = ns["cosine_schedule"](peak_learning_rate, epochs, ns["BATCH_SIZE"], warmup_fraction=0.1)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        self.batch_size, self.done, self.epoch_seconds = ns["BATCH_SIZE"], 0, []

    def train_epoch(self):
        (x_train, y_train), (x_val, y_val), _ = self.data
        start = time.perf_counter()
        history = self.model.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=self.batch_size,
                                 epochs=self.done + 1, initial_epoch=self.done, verbose=0)
        self.epoch_seconds.append(time.perf_counter() - start)
        self.done += 1
        print(f"  {self.label:14} epoch {self.done:2d}/{self.epochs}: {self.epoch_seconds[-1]:5.1f} s, validation "
              f"accuracy {history.history['val_accuracy'][-1]:.4f}", flush=True)

    def scores(self):
        _, (x_val, y_val), (x_test, y_test) = self.data
        val = (self.model.predict(x_val, batch_size=512, verbose=0).argmax(axis=1) == y_val).mean()
        errors = int((self.model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1) != y_test).sum())
        return {"model": self.label, "epochs": self.epochs, "train_seconds": round(sum(self.epoch_seconds), 1),
                "seconds_per_epoch": round(float(np.mean(self.epoch_seconds)), 1),
                "val_accuracy": round(float(val), 4), "test_accuracy": round(1 - errors / len(y_test), 4),
                "test_errors": errors}


def split(ns, mnist, seed):
    """The notebook's preprocessing and stratified validation split for this seed."""
    (x_full, y_full), (x_test, y_test) = mnist
    prepare = lambda images: (images.astype(np.float32) / 255.0)[..., np.newaxis]  # noqa: E731
    x_train, x_val, y_train, y_val = ns["train_test_split"](prepare(x_full), y_full, test_size=ns["VALIDATION_SIZE"],
                                                            stratify=y_full, random_state=seed)
    ns["x_train"] = x_train  # cosine_schedule counts the steps from it
    return (x_train, y_train), (x_val, y_val), (prepare(x_test), y_test)


ABLATION_ARMS = {"MNIST only": (False, False), "+ outlier exposure": (True, False),
                 "+ other styles and scans": (False, True), "both (the notebook's recipe)": (True, True)}


def run_ablation(ns, mnist, seeds, epochs, output):
    """Train the improved CNN on each training set of ABLATION_ARMS for each seed; score it on MNIST and on
    validation parts of the stress sets. Writes ablation.csv."""
    import pandas as pd
    keras = ns["keras"]
    path = output / "ablation.csv"
    rows = [row for row in pd.read_csv(path).to_dict("records") if row["seed"] not in seeds] if path.exists() else []
    for seed in seeds:
        ns["SEED"] = seed
        (x_train, y_train), (x_val, y_val), (x_test, y_test) = split(ns, mnist, seed)
        seed_of = ns["stress_seed"]  # reads ns["SEED"]
        kinds = ns["STRESS_KINDS"]
        synthetic = ns["make_synthetic_training_data"](x_train, y_train)
        ns["synthetic_training"] = synthetic  # what the notebook's train_recipe trains on
        size = 1000
        chosen = np.random.default_rng(seed).choice(len(x_val), size, replace=False)
        probes = {"thicker strokes": (ns["make_shifted"](x_val[chosen, ..., 0], "thicker strokes",
                                                         seed_of("validation", 1)), y_val[chosen]),
                  "other styles": ns["make_style_digits"](size, "validation", seed_of("validation", 40)),
                  "scanned": (ns["make_scanned"](x_val[chosen, ..., 0], held_out=True,
                                                 seed=seed_of("validation", 42)), y_val[chosen])}
        held_out_non_digits = np.concatenate([ns["make_non_digits"](kind, size // len(kinds), "validation",
                                                                    seed_of("validation", 20 + number))
                                              for number, kind in enumerate(kinds)])
        for arm, (with_non_digits, with_styles) in ABLATION_ARMS.items():
            start = time.perf_counter()
            model = ns["train_recipe"](x_train, y_train, seed, epochs, "improved_cnn", with_non_digits, with_styles,
                                       verbose=0)
            seconds = time.perf_counter() - start
            images = len(ns["improved_training_data"](x_train, y_train, synthetic, with_non_digits, with_styles)[0])
            predict = lambda x, model=model: model.predict(x, batch_size=512, verbose=0)  # noqa: E731
            row = {"seed": seed, "training_set": arm, "epochs": epochs, "training_images": images,
                   "seconds_per_epoch": round(seconds / epochs, 1),
                   "val_accuracy": round(float((predict(x_val).argmax(1) == y_val).mean()), 4),
                   "test_accuracy": round(float((predict(x_test).argmax(1) == y_test).mean()), 4)}
            for name, (probe_images, probe_labels) in probes.items():
                accuracy = (predict(probe_images[..., None]).argmax(1) == probe_labels).mean()
                row[f"{name.replace(' ', '_')}_val_accuracy"] = round(float(accuracy), 4)
            confident = predict(held_out_non_digits[..., None]).max(axis=1) >= 0.99
            row["non_digits_at_99_percent"] = round(float(confident.mean()), 4)
            rows.append(row)
            print(", ".join(f"{key} {value}" for key, value in row.items()), flush=True)
            pd.DataFrame(rows).to_csv(path, index=False)
            keras.backend.clear_session(free_memory=True)
    table = pd.DataFrame(rows)
    print(table.groupby("training_set", sort=False).mean(numeric_only=True).drop(columns="seed").to_string())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--output", type=Path, default=REPO / "figures", help="folder for the two CSV files")
    parser.add_argument("--spread-only", action="store_true",
                        help="skip the side-by-side run; add each seed of the new design to seed_spread.csv")
    parser.add_argument("--epochs", type=int, help="epochs of the new design (default: the notebook's)")
    parser.add_argument("--smoke", action="store_true", help="a check that the script runs: 2,000 images, 1-2 epochs")
    parser.add_argument("--ablation", action="store_true",
                        help="train the notebook's network with and without its synthetic training images")
    args = parser.parse_args()
    data_dir = os.environ.get("MNIST_DATA_DIR")
    if not data_dir:
        sys.exit("set MNIST_DATA_DIR to the folder of the four MNIST IDX files")

    import pandas as pd
    ns = notebook_namespace(["load_mnist_idx", "RandomAffine", "cpu_computes_bfloat16", "FusedBatchNorm",
                             "conv_bn_relu", "build_improved_cnn", "cosine_schedule"]
                            + ["make_synthetic_training_data", "improved_training_data",
                               "train_recipe"] * args.ablation,
                            whole_cells=["mnist_style", "make_non_digits", "make_style_digits"] * args.ablation)
    keras, tf = ns["keras"], ns["tf"]
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    ns["IMPROVED_POLICY"] = "mixed_bfloat16" if not on_gpu and ns["cpu_computes_bfloat16"]() else "float32"
    ns["SEED"] = args.seeds[0]
    mnist = ns["load_mnist_idx"](data_dir)
    suffix = ""
    if args.epochs and args.epochs != ns["IMPROVED_EPOCHS"]:
        ns["IMPROVED_EPOCHS"], suffix = args.epochs, f"_{args.epochs}_epochs"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, policy {ns['IMPROVED_POLICY']}, "
          f"{os.cpu_count()} cores; new design: {ns['IMPROVED_EPOCHS']} epochs, peak rate {ns['IMPROVED_PEAK_LR']}",
          flush=True)

    if args.ablation:
        run_ablation(ns, mnist, args.seeds, args.epochs or ns["IMPROVED_EPOCHS"], args.output)
        return
    reference_epochs = 20
    if args.smoke:
        ns["IMPROVED_EPOCHS"], reference_epochs = 1, 2
    spread_csv = args.output / f"seed_spread{suffix}.csv"
    spread = pd.read_csv(spread_csv).to_dict("records") if args.spread_only and spread_csv.exists() else []
    for seed in args.seeds:
        data = split(ns, mnist, seed)
        if args.smoke:
            data = ((data[0][0][:2000], data[0][1][:2000]), *data[1:])
            ns["x_train"] = data[0][0]
        keras.utils.set_random_seed(seed)
        new = Run(ns, "improved_cnn", ns["build_improved_cnn"](seed), ns["IMPROVED_EPOCHS"], ns["IMPROVED_PEAK_LR"],
                  data)
        if seed == args.seeds[0] and not args.spread_only:
            keras.utils.set_random_seed(seed)
            reference = Run(ns, "reference_cnn", build_reference_cnn(ns, seed), reference_epochs, 3e-3, data)
            print(f"seed {seed}: both designs, epochs interleaved", flush=True)
            while reference.done < reference.epochs or new.done < new.epochs:
                # keep the two at the same share of their schedules
                behind = min((r for r in (reference, new) if r.done < r.epochs), key=lambda r: r.done / r.epochs)
                behind.train_epoch()
            side_by_side = pd.DataFrame([reference.scores(), new.scores()])
            side_by_side.insert(0, "seed", seed)
            ratio = side_by_side["train_seconds"].iloc[1] / side_by_side["train_seconds"].iloc[0]
            side_by_side.to_csv(args.output / f"training_benchmark{suffix}.csv", index=False)
            print(f"\n{side_by_side.to_string(index=False)}\n\nThe new design trains in {ratio:.0%} of the "
                  "reference's seconds.\n", flush=True)
        else:
            print(f"seed {seed}: the new design", flush=True)
            while new.done < new.epochs:
                new.train_epoch()
        spread.append({"seed": seed, **new.scores()})
        pd.DataFrame(spread).to_csv(spread_csv, index=False)
        keras.backend.clear_session(free_memory=True)

    spread = pd.DataFrame(spread)
    print(spread.to_string(index=False))
    print(f"\nTest accuracy over {len(spread)} seeds: mean {spread['test_accuracy'].mean():.4%}, standard deviation "
          f"{spread['test_accuracy'].std():.4%}, lowest {spread['test_accuracy'].min():.2%}; validation accuracy mean "
          f"{spread['val_accuracy'].mean():.4%}")


if __name__ == "__main__":
    main()
