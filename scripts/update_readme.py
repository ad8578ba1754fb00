#!/usr/bin/env python3
"""Write the recorded runs' results into README.md and docs/results.md, between their markers.

Every number comes from a file the runs wrote (figures/*.csv, models/mnist_cnn.json) or from what the committed
notebooks printed, so that no document holds a number typed by hand. scripts/run_notebook.sh runs this after the
series; tests/test_notebook_record.py checks that the documents agree with the record.
"""
import csv
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CARD = "MNIST_project.ipynb"
NOTEBOOKS = {  # the series in the order it runs, and what each teaches
    CARD: "the design card: exploration, a fully connected baseline, a CNN, the results table, the confusion "
          "matrix and the per-class report (stands alone: Colab by upload)",
    "notebooks/1_toward_99_6.ipynb": "toward 99.6%: augmentation, batch normalisation, the schedule; KerasTuner, a "
                                     "residual network, the ensemble, the seed spread",
    "notebooks/2_what_it_does_not_know.ipynb": "what it does not know: synthetic non-digits and other styles, the "
                                               "stress sets, the digit / unsure / not-a-digit rule, the export; "
                                               "Kaggle mode",
    "notebooks/3_inside_the_served_model.ipynb": "inside the served model: errors, calibration, abstention, filters, "
                                                 "attributions checked for faithfulness, embeddings, your own digits",
}
MARKERS = {name: (f"<!-- {name}:start -->", f"<!-- {name}:end -->")
           for name in ("notebooks", "results", "toward", "served", "recipe", "stress", "ablation", "speed")}


def code_lines(notebook):
    """Lines of code, blank ones included, as the issues count them."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return sum(len("".join(cell["source"]).splitlines()) for cell in cells if cell["cell_type"] == "code")


def printed_lines(notebook):
    """Every line the notebook's code cells printed, stripped."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    texts = ("".join(output.get("text", "")) for cell in cells for output in cell.get("outputs", []))
    return [line.strip() for text in texts for line in text.splitlines()]


def first_line(lines, pattern, notebook):
    found = next((line for line in lines if re.search(pattern, line)), None)
    if found is None:
        sys.exit(f"{notebook} printed no line matching {pattern!r}: run it first")
    return found


def minutes(repo, notebook):
    """The run time the notebook printed at its end, in minutes."""
    line = first_line(printed_lines(repo / notebook), r"Run time", notebook)
    return float(re.search(r"Run time[^\d]*([\d.]+) minutes", line)[1])


def read_csv(path):
    with path.open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


def notebooks_block(repo=REPO):
    printed = printed_lines(repo / "notebooks" / "1_toward_99_6.ipynb")
    policy = re.search(r"compute policy (\w+)", first_line(printed, "compute policy", "notebook 1"))[1]
    lines = ["| notebook | what it teaches | code lines | minutes on a 2-core CPU |", "| --- | --- | ---: | ---: |"]
    total = 0.0
    for notebook, teaches in NOTEBOOKS.items():
        spent = minutes(repo, notebook)
        total += spent
        lines.append(f"| [`{Path(notebook).name}`]({notebook}) | {teaches} | {code_lines(repo / notebook)} "
                     f"| {spent:.1f} |")
    lines += ["", f"Minutes as the recorded runs printed them: {total:.1f} for the whole series, on 2 CPU cores "
                  f"computing in {policy} and no GPU."]
    return "\n".join(lines)


def results_block(repo=REPO):
    rows = read_csv(repo / "figures" / "results.csv")
    lines = ["| model | parameters | epochs | training time (s) | test loss | test accuracy | test errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        lines.append(f"| {row['model']} | {int(row['params']):,} | {row['epochs']} "
                     f"| {float(row['train_seconds']):.0f} | {float(row['test_loss']):.4f} "
                     f"| {100 * float(row['test_accuracy']):.2f}% | {row['test_errors']} |")
    printed = printed_lines(repo / CARD)
    software = first_line(printed, r"^TensorFlow [\d.]+, Keras", CARD)
    lines += ["", f"From `{CARD}`, whose run took {minutes(repo, CARD):.1f} minutes with {software}."]
    return "\n".join(lines)


def toward_block(repo=REPO):
    rows = read_csv(repo / "figures" / "toward_99_6.csv")
    lines = ["| model | parameters | training time (s) | validation accuracy | test accuracy | test errors |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        seconds = f"{float(row['train_seconds']):.0f}" if row["train_seconds"] else "–"
        lines.append(f"| {row['model']} | {int(float(row['params'])):,} | {seconds} "
                     f"| {100 * float(row['val_accuracy']):.2f}% | {100 * float(row['test_accuracy']):.2f}% "
                     f"| {row['test_errors']} |")
    spread = read_csv(repo / "figures" / "seed_spread.csv")
    mean, deviation, _ = spread_statistics(spread)
    lines += ["", f"From `notebooks/1_toward_99_6.ipynb` (MNIST alone; the tuner's model is trained inside its search, "
                  f"the ensemble's weights chosen on validation data). Over {len(spread)} seeds the improved CNN "
                  f"scores {mean:.2f}% on average (standard deviation {deviation:.2f} points, "
                  "`figures/seed_spread.csv`)."]
    return "\n".join(lines)


def served_block(repo=REPO):
    metadata = json.loads((repo / "models" / "mnist_cnn.json").read_text(encoding="utf-8"))
    after = stress_columns(repo)["after: served"]
    letters = max(after[kind]["coverage"] for kind in ("drawn letters and symbols", "printed letters and symbols"))
    return (f"The served model (`models/mnist_cnn.onnx`, trained in `notebooks/2_what_it_does_not_know.ipynb` on "
            f"MNIST and synthetic images): {100 * metadata['test_accuracy']:.2f}% of MNIST's test digits right; it "
            f"answers {100 * metadata['test_coverage']:.1f}% of them as a confident digit, with "
            f"{100 * metadata['test_error_on_accepted']:.2f}% errors among those, and holds back the rest as unsure. "
            f"Of held-out letters and symbols it passes at most {100 * letters:.1f}% as a digit; AUROC of digits "
            f"against non-digits {metadata['auroc']:.4f}. Trained {metadata['date']}.")


def recipe_block(repo=REPO):
    """The served model's previous and new training recipes side by side, from figures/recipe_speed.csv
    (scripts/benchmark_training.py --recipes): means over seeds, per compute policy."""
    rows = read_csv(repo / "figures" / "recipe_speed.csv")
    lines = ["| policy | recipe | epochs | seeds | mean training time (s) | mean validation accuracy "
             "| mean test accuracy | lowest test accuracy |", "| --- | --- |" + " ---: |" * 6]
    notes = []
    for policy in dict.fromkeys(row["policy"] for row in rows):
        mine = [row for row in rows if row["policy"] == policy]
        stats = {}
        for recipe in ("previous", "new"):
            runs = [row for row in mine if row["recipe"] == recipe]
            mean = {key: sum(float(row[key]) for row in runs) / len(runs)
                    for key in ("train_seconds", "val_accuracy", "test_accuracy")}
            stats[recipe] = {**mean, "lowest": min(float(row["test_accuracy"]) for row in runs)}
            lines.append(f"| {policy} | {recipe} | {runs[0]['epochs']} | {', '.join(row['seed'] for row in runs)} "
                         f"| {mean['train_seconds']:.0f} | {100 * mean['val_accuracy']:.2f}% "
                         f"| {100 * mean['test_accuracy']:.3f}% | {100 * stats[recipe]['lowest']:.2f}% |")
        cpu = " and ".join(dict.fromkeys(row.get("cpu") or "CPU not recorded" for row in mine))
        previous, new = stats["previous"], stats["new"]
        met = {"at most 40% of the previous one's time": new["train_seconds"] <= 0.4 * previous["train_seconds"],
               "a mean test accuracy of at least 99.60%": new["test_accuracy"] >= 0.996,
               "no seed below 99.52%": new["lowest"] >= 0.9952}
        notes.append(f"in {policy}, on a {cpu}, the new recipe trains in "
                     f"{new['train_seconds'] / previous['train_seconds']:.0%} of the previous one's time "
                     f"(targets met: {', '.join(k for k, v in met.items() if v) or 'none'}; "
                     f"not met: {', '.join(k for k, v in met.items() if not v) or 'none'})")
    lines += ["", "Measured by `scripts/benchmark_training.py --recipes`, the two recipes' runs interleaved on one "
                  f"machine: {'; '.join(notes)}."]
    return "\n".join(lines)


def stress_columns(repo):
    """figures/stress_results.csv as {model: {set: {column: value}}}."""
    with (repo / "figures" / "stress_results.csv").open(encoding="utf-8") as file:
        models, columns, *rows = list(csv.reader(file))
    table = {}
    for row in rows:
        if not any(row[1:]):
            continue  # the row that names the index
        for model, column, text in zip(models[1:], columns[1:], row[1:]):
            table.setdefault(model, {}).setdefault(row[0], {})[column] = float(text) if text else None
    return table


def stress_block(repo=REPO):
    """Notebook 2's before/after table on the test parts of the stress sets: the improved CNN trained on MNIST alone
    (before) and the same recipe with the synthetic images, with its rule (after)."""
    table = stress_columns(repo)
    before, after = table["before: MNIST only"], table["after: served"]

    def cell(values, column, digits=1):
        value = values.get(column)
        return "–" if value is None else f"{100 * value:.{digits}f}%"

    lines = ["| test part | before: accuracy | coverage | after: accuracy | coverage | error among accepted "
             "| called not a digit |", "| --- |" + " ---: |" * 6]
    for name, values in after.items():
        lines.append(f"| {name} | {cell(before[name], 'accuracy')} | {cell(before[name], 'coverage')} "
                     f"| {cell(values, 'accuracy', 2)} | {cell(values, 'coverage')} "
                     f"| {cell(values, 'error_on_accepted', 2)} | {cell(values, 'not_a_digit')} |")
    notebook = "notebooks/2_what_it_does_not_know.ipynb"
    lines += ["", first_line(printed_lines(repo / notebook), "^MNIST test digits against all non-digits:", notebook)]
    return "\n".join(lines)


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


BLOCKS = {"README.md": {"notebooks": notebooks_block, "results": results_block, "toward": toward_block,
                        "served": served_block, "recipe": recipe_block},
          "docs/results.md": {"stress": stress_block, "ablation": ablation_block, "speed": speed_block}}


def between(text, name):
    """The block between a document's markers."""
    start, end = MARKERS[name]
    if start not in text or end not in text:
        raise ValueError(f"the markers {start} and {end} are missing")
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def replace_between(text, name, block):
    start, end = MARKERS[name]
    between(text, name)
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}"


def main():
    for document, blocks in BLOCKS.items():
        path = REPO / document
        text = path.read_text(encoding="utf-8")
        for name, block in blocks.items():
            text = replace_between(text, name, block())
        path.write_text(text, encoding="utf-8")
        print(f"updated the results in {document}")


if __name__ == "__main__":
    main()
