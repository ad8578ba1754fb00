#!/usr/bin/env python3
"""Train the improved CNN and the design it replaced side by side, and measure the spread over seeds.

    MNIST_DATA_DIR=/path/to/mnist .venv/bin/python scripts/benchmark_training.py [--seeds 42 1 2 3 4]

The new design, its training recipe and the helpers (augmentation layer, schedule) are the package's
(mnist_digits.training), the ones the notebooks train with, so what is measured is what the notebooks run. The
reference is the improved CNN as it was before (strided 5 x 5 convolutions, 20 epochs), kept here as a fixed
baseline. With the first seed both train in one process, their epochs interleaved in proportion, so that this
machine's drifting speed weighs on both alike; the other seeds train the new design alone. Every model trains on
the notebooks' split for that seed, is scored on the validation split with its final weights, and is evaluated once
on the test set.

Writes figures/training_benchmark.csv (the side-by-side run) and figures/seed_spread.csv (every seed of the new
design), and prints both tables. With --epochs N other than the recipe's, the new design trains N epochs and the
files are named training_benchmark_N_epochs.csv and seed_spread_N_epochs.csv, so the record's stay as they are.

With --ablation it trains instead the same network on four training sets, for each seed: MNIST alone, MNIST with the
synthetic non-digits (outlier exposure), MNIST with the synthetic digits in other styles and the scanned ones, and
all of them (the served model's recipe), each with the package's generators and train_improved_cnn, and scores each
on MNIST and on validation parts of the stress sets (held-out generators). Writes figures/ablation.csv, keeping the
rows of other seeds already there, so that seeds can be run one at a time.

With --recipes it trains the served model (MNIST and the synthetic images) with the package's PREVIOUS_RECIPE and
FAST_RECIPE from each seed, the two runs of a seed one after the other in alternating order, and writes
figures/recipe_speed.csv (recipe, policy, seed, epochs, training seconds, validation and test accuracy, the CPU, and
the trust on the stress sets of trust_scores).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the package also without `pip install -e .`
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_reference_cnn(seed, policy):
    """The improved CNN before this benchmark's change: 32-32-32(5x5, stride 2) and 64-64-64(5x5, stride 2), 40%
    dropout, with Keras's own BatchNormalization."""
    import keras
    from keras import layers

    from mnist_digits.training import RandomAffine

    def conv_bn_relu(filters, kernel_size, strides=1, padding="valid"):
        return [layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False),
                layers.BatchNormalization(), layers.ReLU()]

    keras.config.set_dtype_policy(policy)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        RandomAffine(seed=seed, name="augment"),
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

    def __init__(self, label, model, epochs, peak_learning_rate, data):
        import keras

        from mnist_digits import training
        self.label, self.model, self.epochs, self.data = label, model, epochs, data
        schedule = training.cosine_schedule(peak_learning_rate, epochs, training.steps_per_epoch(len(data[0][0])),
                                            training.WARMUP_FRACTION)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        self.batch_size, self.done, self.epoch_seconds = training.BATCH_SIZE, 0, []

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
        _, validation, test = self.data
        return {"model": self.label, "epochs": self.epochs, "train_seconds": round(sum(self.epoch_seconds), 1),
                "seconds_per_epoch": round(float(np.mean(self.epoch_seconds)), 1),
                **scores(self.model, validation, test)}


def scores(model, validation, test):
    """Validation accuracy with the final weights, and the one evaluation on the test set."""
    (x_val, y_val), (x_test, y_test) = validation, test
    val = (model.predict(x_val, batch_size=512, verbose=0).argmax(axis=1) == y_val).mean()
    errors = int((model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1) != y_test).sum())
    return {"val_accuracy": round(float(val), 4), "test_accuracy": round(1 - errors / len(y_test), 4),
            "test_errors": errors}


def split(mnist, seed):
    """The notebooks' preprocessing and stratified validation split for this seed."""
    from mnist_digits.data import split as split_training
    from mnist_digits.data import to_model_input
    (x_full, y_full), (x_test, y_test) = mnist
    return *split_training(x_full, y_full, seed=seed), (to_model_input(x_test), y_test)


ABLATION_ARMS = {"MNIST only": (False, False), "+ outlier exposure": (True, False),
                 "+ other styles and scans": (False, True), "both (the notebook's recipe)": (True, True)}


def run_ablation(mnist, seeds, epochs, policy, output):
    """Train the improved CNN on each training set of ABLATION_ARMS for each seed; score it on MNIST and on
    validation parts of the stress sets (held-out generators). Writes ablation.csv."""
    import keras
    import pandas as pd

    from mnist_digits import synthetic, training
    path = output / "ablation.csv"
    rows = [row for row in pd.read_csv(path).to_dict("records") if row["seed"] not in seeds] if path.exists() else []
    for seed in seeds:
        train, (x_val, y_val), (x_test, y_test) = split(mnist, seed)
        training_set = synthetic.make_synthetic_training_data(*train, seed=seed)
        seed_of = lambda number, seed=seed: synthetic.stress_seed("validation", number, seed)  # noqa: E731
        size = 1000
        chosen = np.random.default_rng(seed).choice(len(x_val), size, replace=False)
        probes = {"thicker strokes": (synthetic.make_shifted(x_val[chosen, ..., 0], "thicker strokes", seed_of(1)),
                                      y_val[chosen]),
                  "other styles": synthetic.make_style_digits(size, "validation", seed_of(40)),
                  "scanned": (synthetic.make_scanned(x_val[chosen, ..., 0], held_out=True, seed=seed_of(42)),
                              y_val[chosen])}
        kinds = synthetic.STRESS_KINDS
        held_out_non_digits = np.concatenate([synthetic.make_non_digits(kind, size // len(kinds), "validation",
                                                                        seed_of(20 + number))
                                              for number, kind in enumerate(kinds)])
        for arm, (with_non_digits, with_styles) in ABLATION_ARMS.items():
            model, _, seconds = training.train_improved_cnn(train, synthetic=training_set, seed=seed, epochs=epochs,
                                                            policy=policy, verbose=0, non_digits=with_non_digits,
                                                            other_digits=with_styles)
            images = len(training.improved_training_data(*train, training_set, with_non_digits, with_styles)[0])
            predict = lambda x, model=model: model.predict(x, batch_size=512, verbose=0)  # noqa: E731
            row = {"seed": seed, "training_set": arm, "epochs": epochs, "training_images": images,
                   "seconds_per_epoch": round(seconds / epochs, 1),
                   **{k: v for k, v in scores(model, (x_val, y_val), (x_test, y_test)).items() if k != "test_errors"}}
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


def trust_scores(model, sets):
    """The served form of the model on the stress sets (mnist_digits.stress.StressSets): the rule chosen on their
    validation parts, then per part MNIST's coverage (answered as a confident digit), the other digit sets' mean
    coverage and mean share called "not a digit", and the largest share of a kind of non-digit answered as a digit."""
    from mnist_digits import export, stress
    served = export.deployable(model)
    probabilities = sets.probabilities(lambda images: served.predict(images, batch_size=512, verbose=0))
    rule, _ = sets.choose_rule(probabilities)
    row = {"unsure_below": rule["unsure_below"]}
    for part, prefix in (("validation", "val"), ("test", "test")):
        table = sets.table(probabilities, rule, part)
        digit_sets = table.loc[stress.DIGIT_SETS]
        row.update({f"{prefix}_mnist_coverage": table.loc["MNIST", "coverage"],
                    f"{prefix}_digit_sets_coverage": digit_sets["coverage"].mean(),
                    f"{prefix}_digit_sets_not_a_digit": digit_sets["not_a_digit"].mean(),
                    f"{prefix}_non_digits_accepted": table.loc[stress.STRESS_KINDS, "coverage"].max()})
    return {key: round(float(value), 4) for key, value in row.items()}


def run_recipes(mnist, seeds, policy, output, smoke=False):
    """Train the served model's network with the previous recipe and the new one (the package's PREVIOUS_RECIPE and
    FAST_RECIPE) for each seed, on the notebooks' split and synthetic images for that seed, in the order new,
    previous / previous, new / ... so that the machine's drifting speed weighs on both alike. Each network is scored
    on the validation split with the weights it keeps, and once on the test set, then for its trust on the stress
    sets (trust_scores: the rule chosen on their validation parts, read once on their test parts). Writes
    recipe_speed.csv after each run; the runs already there (a stopped benchmark's) are kept and not repeated."""
    import keras
    import pandas as pd

    from mnist_digits import stress, synthetic, training
    path = output / "recipe_speed.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() and not smoke else []
    done = {(row["recipe"], row["seed"]) for row in rows if row["policy"] == policy}
    recipes = {"new": training.FAST_RECIPE, "previous": training.PREVIOUS_RECIPE}
    cpu = training.describe_cpu()
    for number, seed in enumerate(seeds):
        train, validation, test = split(mnist, seed)
        if smoke:
            train = (train[0][:2000], train[1][:2000])
        sizes = {"non_digits": 200, "style_digits": 100, "scanned_digits": 100} if smoke else {}
        training_set = synthetic.make_synthetic_training_data(*train, seed=seed, **sizes)
        sets = stress.StressSets(validation, test, *((200, 200) if smoke else (3_000, 1_000)), seed=seed)
        order = list(recipes) if number % 2 == 0 else list(recipes)[::-1]
        for name in [name for name in order if (name, seed) not in done]:
            recipe = recipes[name]
            epochs = min(recipe.epochs, 2) if smoke else recipe.epochs
            print(f"seed {seed}: the {name} recipe, {recipe}", flush=True)
            model, _, seconds = training.train_improved_cnn(train, validation, training_set, seed=seed,
                                                            epochs=epochs, policy=policy, recipe=recipe)
            row = {"recipe": name, "policy": policy, "seed": seed, "epochs": epochs,
                   "train_seconds": round(seconds, 1)}
            row.update({k: v for k, v in scores(model, validation, test).items() if k != "test_errors"})
            row["cpu"] = cpu
            row.update(trust_scores(model, sets))
            rows.append(row)
            print(", ".join(f"{key} {value}" for key, value in row.items()), flush=True)
            if not smoke:
                pd.DataFrame(rows).to_csv(path, index=False)
            keras.backend.clear_session(free_memory=True)
    table = pd.DataFrame(rows)
    summary = table.groupby(["policy", "recipe"]).agg(
        runs=("seed", "size"), mean_train_seconds=("train_seconds", "mean"),
        mean_test_accuracy=("test_accuracy", "mean"), lowest_test_accuracy=("test_accuracy", "min"))
    print(summary.to_string())
    trust = [column for column in table.columns if column.startswith("test_") and column != "test_accuracy"]
    if trust:
        print("Trust on the stress sets' test parts, means over seeds:")
        print(table.groupby(["policy", "recipe"])[trust].mean().round(4).to_string())
    for policy_name, group in summary.groupby(level="policy"):
        seconds = group.droplevel("policy")["mean_train_seconds"]
        print(f"{policy_name}: the new recipe trains in {seconds['new'] / seconds['previous']:.0%} of the previous "
              "one's seconds")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    parser.add_argument("--output", type=Path, default=REPO / "figures", help="folder for the CSV files")
    parser.add_argument("--spread-only", action="store_true",
                        help="skip the side-by-side run; add each seed of the new design to seed_spread.csv")
    parser.add_argument("--epochs", type=int, help="epochs of the new design (default: the recipe's)")
    parser.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16"], default="auto",
                        help="the compute policy (auto: bfloat16 where the CPU computes it natively)")
    parser.add_argument("--smoke", action="store_true", help="a check that the script runs: 2,000 images, 1-2 epochs")
    parser.add_argument("--recipes", action="store_true",
                        help="train the served model with the previous and the new recipe (figures/recipe_speed.csv)")
    parser.add_argument("--ablation", action="store_true",
                        help="train the network with and without its synthetic training images")
    args = parser.parse_args()
    data_dir = os.environ.get("MNIST_DATA_DIR")
    if not data_dir:
        sys.exit("set MNIST_DATA_DIR to the folder of the four MNIST IDX files")

    import keras
    import pandas as pd
    import tensorflow as tf

    from mnist_digits import training
    from mnist_digits.data import load_mnist_idx
    policy = training.compute_policy(args.precision)
    mnist = load_mnist_idx(data_dir)
    epochs, suffix = training.IMPROVED_EPOCHS, ""
    if args.epochs and args.epochs != training.IMPROVED_EPOCHS:
        epochs, suffix = args.epochs, f"_{args.epochs}_epochs"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, policy {policy}, {os.cpu_count()} cores; new "
          f"design: {epochs} epochs, peak rate {training.IMPROVED_PEAK_LR}", flush=True)

    if args.recipes:
        run_recipes(mnist, args.seeds, policy, args.output, args.smoke)
        return
    if args.ablation:
        run_ablation(mnist, args.seeds, epochs, policy, args.output)
        return
    reference_epochs = 20
    if args.smoke:
        epochs, reference_epochs = 1, 2
    spread_csv = args.output / f"seed_spread{suffix}.csv"
    spread = pd.read_csv(spread_csv).to_dict("records") if args.spread_only and spread_csv.exists() else []
    for seed in args.seeds:
        data = split(mnist, seed)
        if args.smoke:
            data = ((data[0][0][:2000], data[0][1][:2000]), *data[1:])
        keras.utils.set_random_seed(seed)
        new = Run("improved_cnn", training.build_improved_cnn(seed, policy=policy), epochs, training.IMPROVED_PEAK_LR,
                  data)
        if seed == args.seeds[0] and not args.spread_only:
            keras.utils.set_random_seed(seed)
            reference = Run("reference_cnn", build_reference_cnn(seed, policy), reference_epochs, 3e-3, data)
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
