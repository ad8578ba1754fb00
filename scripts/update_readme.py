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
        lines.append(f"| {row['model']} | {int(row['params']):,} | {row['epochs']} | {float(row['train_seconds']):.0f} "
                     f"| {float(row['test_loss']):.4f} | {100 * float(row['test_accuracy']):.2f}% "
                     f"| {row['test_errors']} |")
    runtime = first_line(printed, "Total run time:").split(";")[0]
    software = ", ".join(" ".join(first_line(printed, name).split()) for name in ("TensorFlow", "Keras"))
    devices = " ".join(first_line(printed, "Devices:").split()[1:])
    lines += ["", f"{runtime} for the whole notebook, measured by the recorded run with {software} "
                  f"on {devices}."]
    return "\n".join(lines)


def main():
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{readme}: the markers {START} and {END} are missing")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{results_block()}\n{END}{tail}", encoding="utf-8")
    print(f"updated the results in {readme}")


if __name__ == "__main__":
    main()
