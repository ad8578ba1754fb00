#!/usr/bin/env python3
"""Write the recorded run's results into README.md, between its results markers.

The numbers come from figures/results.csv and the notebook's own printed run time and machine, so the README never
holds a number typed by hand. scripts/run_notebook.sh runs this after each full run; tests check that they agree.
"""
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
SPEED_START, SPEED_END = "<!-- speed:start -->", "<!-- speed:end -->"
STRESS_START, STRESS_END = "<!-- stress:start -->", "<!-- stress:end -->"
ABLATION_START, ABLATION_END = "<!-- ablation:start -->", "<!-- ablation:end -->"


def printed_lines(notebook):
    """Every line the notebook's code cells printed, stripped."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    texts = ("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", []))
    return [line.strip() for text in texts for line in text.splitlines()]


def first_line(lines, prefix):
    found = next((line for line in lines if line.startswith(prefix)), None)
    if found is None:
        raise SystemExit(f"the notebook printed no line starting with {prefix!r}: run it first")
    return found


def results_block(repo=REPO):
    with (repo / "figures" / "results.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    printed = printed_lines(repo / "MNIST_project.ipynb")
    lines = ["| model | parameters | epochs | training time (s) | test loss | test accuracy | test errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['model']} | {int(row['params']):,} | {row['epochs'] or '–'} "
                     f"| {float(row['train_seconds']):.0f} "
                     f"| {float(row['test_loss']):.4f} | {100 * float(row['test_accuracy']):.2f}% "
                     f"| {row['test_errors']} |")
    runtime = first_line(printed, "Total run time:").split(";")[0]
    software = ", ".join(" ".join(first_line(printed, name).split()) for name in ("TensorFlow", "Keras"))
    devices = " ".join(first_line(printed, "Devices:").split()[1:])
    lines += ["", f"{runtime} for the whole notebook, measured by the recorded run with {software} "
                  f"on {devices}."]
    return "\n".join(lines)


def read_csv(path):
    with path.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def speed_block(repo=REPO):
    """The side-by-side training benchmark and the seed spread, from the CSVs of scripts/benchmark_training.py."""
    benchmark = read_csv(repo / "figures" / "training_benchmark.csv")
    spread = read_csv(repo / "figures" / "seed_spread.csv")
    lines = ["| design | epochs | seconds per epoch | training time (s) | validation accuracy | test accuracy |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in benchmark:
        lines.append(f"| {row['model']} | {row['epochs']} | {float(row['seconds_per_epoch']):.1f} "
                     f"| {float(row['train_seconds']):.0f} | {100 * float(row['val_accuracy']):.2f}% "
                     f"| {100 * float(row['test_accuracy']):.2f}% |")
    ratio = float(benchmark[1]["train_seconds"]) / float(benchmark[0]["train_seconds"])
    mean, deviation, accuracies = spread_statistics(spread)
    validation = [100 * float(row["val_accuracy"]) for row in benchmark]
    lines += ["", f"The new design trained in {ratio:.0%} of the reference's time (seed {benchmark[0]['seed']}, "
                  f"both in one run), with a validation accuracy of {validation[1]:.2f}% against the reference's "
                  f"{validation[0]:.2f}%."]
    if len(spread) > 1:
        lines[-1] += (f" Over {len(spread)} seeds ({', '.join(row['seed'] for row in spread)}) its test accuracy is "
                      f"{mean:.3f}% on average (standard deviation {deviation:.3f} points, lowest "
                      f"{min(accuracies):.2f}%, highest {max(accuracies):.2f}%).")
    else:
        lines[-1] += " Its spread over more seeds is not measured yet (`--spread-only --seeds 1 2 3 4` adds them)."
    spread_by_seed = {row["seed"]: row for row in spread}
    for path in sorted((repo / "figures").glob("seed_spread_*_epochs.csv"), key=lambda p: int(p.stem.split("_")[2])):
        longer = read_csv(path)
        longer_mean, longer_deviation, longer_accuracies = spread_statistics(longer)
        per_epoch = sum(float(row["seconds_per_epoch"]) for row in longer) / len(longer)
        lines += ["", f"Trained {longer[0]['epochs']} epochs instead (`--epochs {longer[0]['epochs']}`, "
                      f"`{path.name}`), over {len(longer)} seeds ({', '.join(row['seed'] for row in longer)}): "
                      f"{longer_mean:.3f}% on average (standard deviation {longer_deviation:.3f} points, lowest "
                      f"{min(longer_accuracies):.2f}%, highest {max(longer_accuracies):.2f}%)"]
        if all(row["seed"] in spread_by_seed for row in longer):
            same_seeds = spread_statistics([spread_by_seed[row["seed"]] for row in longer])[0]
            lines[-1] += f", against {same_seeds:.3f}% for the same seeds with {spread[0]['epochs']} epochs"
        lines[-1] += (f"; {per_epoch:.1f} s per epoch in that run (the seconds of runs on different days are not "
                      "compared: this machine's speed drifts too much).")
    return "\n".join(lines)


def spread_statistics(spread):
    """Mean and sample standard deviation of the test accuracies (in %), and the accuracies."""
    accuracies = [100 * float(row["test_accuracy"]) for row in spread]
    mean = sum(accuracies) / len(accuracies)
    deviation = (sum((a - mean) ** 2 for a in accuracies) / max(len(accuracies) - 1, 1)) ** 0.5
    return mean, deviation, accuracies


def stress_block(repo=REPO):
    """Section 7.4's before/after table on the test parts of the stress sets, from figures/stress_results.csv: the
    networks trained on MNIST alone (before) and the served model with its rule (after)."""
    with (repo / "figures" / "stress_results.csv").open(encoding="utf-8") as file:
        models, columns, *rows = list(csv.reader(file))
    rows = [row for row in rows if any(row[1:])]  # not the row that names the index
    names = list(dict.fromkeys(models[1:]))
    before, [after] = [n for n in names if n.startswith("before: ")], [n for n in names if n.startswith("after: ")]
    value = dict(zip(zip(models[1:], columns[1:]), range(1, len(columns))))

    def cell(row, model, column, digits=2):
        text = row[value[model, column]] if (model, column) in value else ""
        return f"{100 * float(text):.{digits}f}%" if text else "–"

    header = "| test part | " + " | ".join(f"{name.split(': ', 1)[1]}: accuracy | coverage" for name in before)
    header += f" | {after.split(': ', 1)[1]}: accuracy | coverage | error among accepted | called not a digit |"
    lines = [header, "| --- |" + " ---: |" * (2 * len(before) + 4)]
    for row in rows:
        cells = [f"{cell(row, name, 'accuracy', 1)} | {cell(row, name, 'coverage', 1)}" for name in before]
        cells += [cell(row, after, "accuracy"), cell(row, after, "coverage", 1), cell(row, after, "error_on_accepted"),
                  cell(row, after, "not_a_digit", 1)]
        lines.append(f"| {row[0]} | " + " | ".join(cells) + " |")
    printed = printed_lines(repo / "MNIST_project.ipynb")
    lines += ["", first_line(printed, "MNIST test digits against all non-digits:")]
    return "\n".join(lines)


def ablation_block(repo=REPO):
    """The improved CNN trained with and without the synthetic images, from figures/ablation.csv (means over seeds)."""
    rows = read_csv(repo / "figures" / "ablation.csv")
    arms = list(dict.fromkeys(row["training_set"] for row in rows))
    seeds = list(dict.fromkeys(row["seed"] for row in rows))
    columns = [("val_accuracy", "MNIST validation"), ("test_accuracy", "MNIST test"),
               ("thicker_strokes_val_accuracy", "thicker strokes"), ("other_styles_val_accuracy", "other styles"),
               ("scanned_val_accuracy", "scanned"), ("non_digits_at_99_percent", "non-digits at >= 99%")]
    lines = ["| training set | " + " | ".join(title for _, title in columns) + " | seconds per epoch |",
             "| --- |" + " ---: |" * (len(columns) + 1)]
    for arm in arms:
        mine = [row for row in rows if row["training_set"] == arm]
        means = {key: sum(float(row[key]) for row in mine) / len(mine)
                 for key in [key for key, _ in columns] + ["seconds_per_epoch"]}
        lines.append(f"| {arm} | " + " | ".join(f"{100 * means[key]:.2f}%" for key, _ in columns)
                     + f" | {means['seconds_per_epoch']:.1f} |")
    lines += ["", f"Means over {len(seeds)} seed{'s' * (len(seeds) != 1)} ({', '.join(seeds)}), "
                  f"{rows[0]['epochs']} epochs each; the stress columns are accuracies on validation parts of 1,000 "
                  "images from the held-out generators, and the last the share of held-out non-digits answered "
                  "with a probability of at least 99%."]
    return "\n".join(lines)


def replace_between(text, start, end, block):
    if start not in text or end not in text:
        sys.exit(f"README.md: the markers {start} and {end} are missing")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def main():
    readme = REPO / "README.md"
    text = replace_between(readme.read_text(encoding="utf-8"), START, END, results_block())
    if (REPO / "figures" / "seed_spread.csv").exists():
        text = replace_between(text, SPEED_START, SPEED_END, speed_block())
    text = replace_between(text, STRESS_START, STRESS_END, stress_block())
    if (REPO / "figures" / "ablation.csv").exists():
        text = replace_between(text, ABLATION_START, ABLATION_END, ablation_block())
    readme.write_text(text, encoding="utf-8")
    print(f"updated the results in {readme}")


if __name__ == "__main__":
    main()
