"""The committed notebook is the record of one clean, complete run on the full data, and its outputs agree."""
import ast
import hashlib
import importlib.util
import io
import json
import logging
import re
import subprocess
import sys

import pandas as pd
import pytest
from conftest import NOTEBOOK, REPO, cell_source, notebook_cells, outputs_text

CHECKER = REPO.parent / "shared" / "tools" / "check_notebook.py"
TARGETS = {"fully_connected": 0.970, "cnn": 0.988, "improved_cnn": 0.996}  # from the issues' acceptance
# A cap on the recorded run time that only a runaway breaks: wall time on these machines swings by 1.5 times within
# an hour, and a CPU without bfloat16 trains about three times as slowly. The budget proper is relative: a change
# may make the full run at most 10% slower than main's, measured side by side on one machine.
SANITY_CAP_MINUTES = {"mixed_bfloat16": 45, "float32": 90}
MODEL = REPO / "models" / "mnist_cnn.keras"


def cell_printing(pattern, cells=None):
    cells = [c for c in cells or notebook_cells() if re.search(pattern, outputs_text(c))]
    assert cells, f"no cell of the record printed {pattern!r}"
    return cells[0]


def committed(path):
    """A file of the record as committed (git's HEAD). The targets judge the committed record, not a run a user has
    just made in the work tree; outside a git checkout, they judge the work tree's files."""
    run = subprocess.run(["git", "show", f"HEAD:{path.relative_to(REPO).as_posix()}"], cwd=REPO, capture_output=True)
    return io.BytesIO(run.stdout if run.returncode == 0 else path.read_bytes())


def committed_cells():
    return [c for c in json.load(committed(NOTEBOOK))["cells"] if c["cell_type"] == "code"]


def test_shared_checker_passes():
    if not CHECKER.exists():
        pytest.skip(f"{CHECKER} is not beside the repository")
    run = subprocess.run([sys.executable, str(CHECKER), str(NOTEBOOK)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_one_top_to_bottom_run_without_errors():
    code = [c for c in notebook_cells() if cell_source(c).strip()]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for number, cell in enumerate(code, 1):
        assert all(o["output_type"] != "error" for o in cell["outputs"]), f"code cell {number} holds an error"
    assert sum("parameters" in c["metadata"].get("tags", []) for c in code) == 1


def test_record_is_a_full_run_on_all_training_images():
    mode = outputs_text(cell_printing(r"Mode: "))
    assert "full run" in mode and "QUICK" not in mode
    assert "Training on 55,000 images, validating on 5,000, testing on 10,000" in outputs_text(
        cell_printing(r"Training on [\d,]+ images"))
    assert "full run" in outputs_text(cell_printing(r"Total run time"))


def test_record_reads_clean():
    """No TensorFlow start-up noise, warnings or progress bars in the saved outputs."""
    noise = re.compile(r"cuda|oneDNN|absl|cpu_feature_guard|Traceback|Warning|\[=+", re.IGNORECASE)
    for number, cell in enumerate(notebook_cells(), 1):
        for output in cell["outputs"]:
            if output["output_type"] == "stream":
                text = "".join(output["text"])
                assert output["name"] == "stdout", f"cell {number} wrote to stderr: {text[:200]}"
                assert not noise.search(text), f"cell {number}: {noise.search(text).group()} in {text[:200]}"


def recorded_results(cells=None):
    printed = outputs_text(cell_printing(r"(?m)^\s*model\s+params\s+epochs", cells))
    [table] = [part for part in printed.split("\n\n") if re.match(r"\s*model\s+params\s+epochs", part)]
    return pd.read_csv(io.StringIO(table), sep=r"\s+", na_values=["-"])


def test_record_prints_no_path_of_the_machine_it_ran_on():
    machine_path = re.compile(r"(?<![\w.])/(?:tmp|work|root|home|usr|opt|var)/|[A-Z]:\\")
    for number, cell in enumerate(notebook_cells(), 1):
        found = machine_path.search(outputs_text(cell))
        assert not found, f"cell {number} prints a path of the machine: {outputs_text(cell)[found.start() - 40:][:120]}"


def test_parameters_cell_is_papermill_clean(caplog):
    """Annotated literals only: papermill lists every setting with its type and default, and warns about none."""
    papermill = pytest.importorskip("papermill")
    with caplog.at_level(logging.WARNING):
        parameters = papermill.inspect_notebook(str(NOTEBOOK))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    [cell] = [c for c in notebook_cells() if "parameters" in c["metadata"].get("tags", [])]
    assigned = [line.split(":")[0] for line in cell_source(cell).splitlines() if line.strip()]
    assert list(parameters) == assigned
    for name, parameter in parameters.items():
        assert parameter["inferred_type_name"] in {"int", "float", "str", "bool"}, name
        ast.literal_eval(parameter["default"])


def test_model_metadata_matches_the_record():
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    results = recorded_results().set_index("model")
    assert metadata["file"] == MODEL.name and metadata["model"] in results.index
    for name, described in metadata["files"].items():  # the pair of model files this run wrote
        assert described["sha256"] == hashlib.sha256((MODEL.parent / name).read_bytes()).hexdigest(), name
    assert set(metadata["files"]) == {"mnist_cnn.keras", "mnist_cnn.onnx"}
    rule = metadata["rule"]
    assert 0.5 < rule["unsure_below"] <= 1.0 and rule["unsure_below"] == metadata["unsure_below"]
    assert 0.0 < rule["not_a_digit_below"] < 2.0 and rule["not_a_digit_score"] in ("max_probability", "top_two_mass")
    printed = outputs_text(cell_printing(r"Rule chosen on the validation parts"))
    assert f"highest probability >= {rule['unsure_below']:.6f}" in printed
    assert f"{rule['not_a_digit_score']} < {rule['not_a_digit_below']:.6f}" in printed
    stress = stress_results()
    after = stress.xs(f"after: {metadata['model']}", axis=1, level=0)
    assert metadata["test_accuracy"] == round(after.loc["MNIST", "accuracy"], 4)
    assert metadata["test_coverage"] == round(after.loc["MNIST", "coverage"], 4)
    assert re.match(r"\d{4}-\d{2}-\d{2}$", metadata["date"]) and "28 x 28" in metadata["input"]


def stress_results(source=None):
    return pd.read_csv(source or REPO / "figures" / "stress_results.csv", header=[0, 1], index_col=0)


def test_committed_record_meets_the_out_of_distribution_targets():
    """The served model's targets on the test parts of the stress sets, in the committed record: MNIST coverage and
    error among accepted answers, non-digits answered as a confident digit, errors on every shifted set."""
    metadata = json.load(committed(MODEL.with_suffix(".json")))
    after = stress_results(committed(REPO / "figures" / "stress_results.csv")).xs(
        f"after: {metadata['model']}", axis=1, level=0)
    mnist = after.loc["MNIST"]
    assert mnist["coverage"] >= 0.97 and mnist["error_on_accepted"] <= 0.001, mnist
    for kind in ("drawn letters and symbols", "printed letters and symbols"):
        assert after.loc[kind, "coverage"] <= 0.05, (kind, after.loc[kind, "coverage"])
    shifted = after[after["accuracy"].notna()].drop(["MNIST", "other styles", "scanned"])
    assert len(shifted) == 9 and (shifted["error_on_accepted"] <= 0.005).all(), shifted["error_on_accepted"]
    assert metadata["auroc"] > 0.99


def test_results_csv_matches_the_printed_table():
    saved = pd.read_csv(REPO / "figures" / "results.csv")
    assert list(saved.columns) == ["model", "params", "epochs", "train_seconds", "test_loss", "test_accuracy",
                                   "test_errors"]
    pd.testing.assert_frame_equal(saved, recorded_results(), check_dtype=False)
    assert (saved["test_accuracy"] == 1 - saved["test_errors"] / 10_000).all()


def test_committed_record_meets_the_targets():
    cells = committed_cells()
    results = recorded_results(cells).set_index("model")
    for model, target in TARGETS.items():
        assert results.loc[model, "test_accuracy"] >= target, f"{model}: {results.loc[model, 'test_accuracy']}"
    minutes = float(re.search(r"Total run time: ([\d.]+) minutes", outputs_text(cell_printing("Total run time",
                                                                                             cells)))[1])
    policy = re.search(r"compute policy: (\w+)", outputs_text(cell_printing("compute policy", cells)))[1]
    assert minutes <= SANITY_CAP_MINUTES[policy], f"{minutes} minutes with {policy}"


def test_every_saved_figure_is_committed():
    names = set()
    for cell in notebook_cells():
        names.update(re.findall(r'save_fig\(\s*"(\w+)"', cell_source(cell)))
        names.update(re.findall(r'show_digits\([^)]*"(\w+)"\)', cell_source(cell).replace("\n", " ")))
    assert len(names) >= 15
    missing = [name for name in sorted(names) if not (REPO / "figures" / f"{name}.png").is_file()]
    assert not missing, f"figures not in figures/: {missing}"


def test_notebook_stands_alone():
    """It imports no module of this repository, so it runs unchanged in Colab."""
    local = {path.stem for path in REPO.glob("*.py")} | {"tests", "conftest"}
    for cell in notebook_cells():
        for node in ast.walk(ast.parse(cell_source(cell))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not local & {n.split(".")[0] for n in names if n}, ast.unparse(node)


@pytest.mark.parametrize("name", ["mnist_style", "top_two_mass", "verdicts"])
def test_notebook_helpers_are_the_ones_predict_py_uses(name):
    """The preprocessing and the decision rule exist once in mnist_digits.py; the notebook's copies are the same."""
    predict_source = (REPO / "mnist_digits.py").read_text()
    [function] = [n for n in ast.parse(predict_source).body if isinstance(n, ast.FunctionDef) and n.name == name]
    [cell] = [c for c in notebook_cells() if f"def {name}(" in cell_source(c)]
    cell_tree = ast.parse(cell_source(cell))
    [copy] = [n for n in cell_tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    assert ast.get_source_segment(cell_source(cell), copy) == ast.get_source_segment(predict_source, function), (
        f"the notebook's {name} differs from mnist_digits.py's: keep the two copies identical")


def test_readme_shows_the_recorded_results():
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    update_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update_readme)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split(update_readme.START, 1)[1].split(update_readme.END, 1)[0].strip()
    assert block == update_readme.results_block(), "README.md's results differ: run scripts/update_readme.py"
    speed = readme.split(update_readme.SPEED_START, 1)[1].split(update_readme.SPEED_END, 1)[0].strip()
    assert speed == update_readme.speed_block(), "README.md's training benchmark differs: run scripts/update_readme.py"
    stress = readme.split(update_readme.STRESS_START, 1)[1].split(update_readme.STRESS_END, 1)[0].strip()
    assert stress == update_readme.stress_block(), "README.md's stress-set table differs: run scripts/update_readme.py"
    ablation = readme.split(update_readme.ABLATION_START, 1)[1].split(update_readme.ABLATION_END, 1)[0].strip()
    assert ablation == update_readme.ablation_block(), "README.md's ablation differs: run scripts/update_readme.py"


def test_training_benchmark_and_seed_spread_are_complete_runs():
    benchmark = pd.read_csv(REPO / "figures" / "training_benchmark.csv")
    spread = pd.read_csv(REPO / "figures" / "seed_spread.csv")
    assert list(benchmark["model"]) == ["reference_cnn", "improved_cnn"] and benchmark["seed"].nunique() == 1
    assert list(benchmark["epochs"]) == [20, ast.literal_eval(notebook_parameter("IMPROVED_EPOCHS"))]
    assert len(spread) >= 1 and spread["seed"].is_unique and (spread["model"] == "improved_cnn").all()
    assert (spread["epochs"] == benchmark["epochs"].iloc[1]).all(), "the spread and the benchmark differ in design"
    first = spread.iloc[0]
    assert first["seed"] == benchmark["seed"].iloc[0]
    assert first["test_accuracy"] == benchmark.set_index("model").loc["improved_cnn", "test_accuracy"]
    longer = {path: pd.read_csv(path) for path in (REPO / "figures").glob("seed_spread_*_epochs.csv")}
    for path, table in longer.items():  # scripts/benchmark_training.py --epochs N
        assert (table["epochs"] == int(path.stem.split("_")[2])).all() and table["seed"].is_unique, path.name
    for table in (benchmark, spread, *longer.values()):
        assert ((table["test_accuracy"] - (1 - table["test_errors"] / 10_000)).abs() < 1e-9).all()


def notebook_parameter(name):
    [cell] = [c for c in notebook_cells() if "parameters" in c["metadata"].get("tags", [])]
    [value] = [line.split("=", 1)[1].split("#")[0].strip() for line in cell_source(cell).splitlines()
               if line.startswith(f"{name}:")]
    return value


def test_ablation_covers_the_notebooks_recipe_over_two_seeds():
    """scripts/benchmark_training.py --ablation: four training sets, each over the same two or more seeds, the last
    one the notebook's recipe (MNIST and its synthetic images, in the shares of its parameters)."""
    ablation = pd.read_csv(REPO / "figures" / "ablation.csv")
    arms = list(dict.fromkeys(ablation["training_set"]))
    assert arms == ["MNIST only", "+ outlier exposure", "+ other styles and scans", "both (the notebook's recipe)"]
    seeds = {arm: set(ablation.loc[ablation["training_set"] == arm, "seed"]) for arm in arms}
    assert len(seeds[arms[0]]) >= 2 and all(s == seeds[arms[0]] for s in seeds.values()), seeds
    synthetic = sum(ast.literal_eval(notebook_parameter(name)) for name in ("OE_NON_DIGITS", "STYLE_DIGITS",
                                                                           "SCANNED_DIGITS"))
    sizes = ablation.groupby("training_set")["training_images"].unique()
    assert list(sizes[arms[0]]) == [55_000] and list(sizes[arms[3]]) == [55_000 + synthetic], sizes
    assert ablation["val_accuracy"].between(0.9, 1).all() and ablation["test_accuracy"].between(0.9, 1).all()
