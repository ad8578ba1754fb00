"""The package mnist_digits on its own: what needs no TensorFlow imports none, it builds and installs as declared,
and its helpers for runs, stress sets, abstention and the checked model load behave."""
import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import REPO

from mnist_digits import data, stress
from mnist_digits.serving import file_sha256, verdicts

WITHOUT_TENSORFLOW = ["mnist_digits", "mnist_digits.serving", "mnist_digits.preprocess", "mnist_digits.data",
                      "mnist_digits.synthetic", "mnist_digits.stress", "mnist_digits.notebook"]


def test_what_serving_and_the_data_need_imports_no_tensorflow():
    probe = ("import sys\n"
             f"for name in {WITHOUT_TENSORFLOW!r}: __import__(name)\n"
             "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stdout + run.stderr


def test_the_package_builds_as_declared(tmp_path):
    """pyproject.toml declares the package: its wheel holds every module, the serving dependencies, and the extra
    for training."""
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path),
                          str(REPO)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    [wheel] = tmp_path.glob("mnist_digits-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {path.name for path in (REPO / "mnist_digits").glob("*.py")}
    assert modules <= {name.split("/")[-1] for name in names if name.startswith("mnist_digits/")}
    [metadata] = [name for name in names if name.endswith("/METADATA")]
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: onnxruntime" in text and "Provides-Extra: train" in text
    assert "Requires-Dist: tensorflow" in text and 'extra == "train"' in text
    shutil.rmtree(REPO / "build", ignore_errors=True)  # setuptools' build folder: the work tree stays as it was


def test_load_checked_refuses_a_model_its_metadata_does_not_describe(tmp_path):
    export = pytest.importorskip("mnist_digits.export")
    model = REPO / "models" / "mnist_cnn.keras"
    shutil.copy(model, tmp_path / model.name)
    metadata = json.loads(model.with_suffix(".json").read_text())
    (tmp_path / "mnist_cnn.json").write_text(json.dumps(metadata))
    loaded, described = export.load_checked(tmp_path / model.name)
    assert described["files"][model.name]["sha256"] == file_sha256(tmp_path / model.name)
    assert loaded.output_shape == (None, 10)
    metadata["files"][model.name]["sha256"] = "0" * 64
    (tmp_path / "mnist_cnn.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"its SHA-256 differs from the one in mnist_cnn\.json"):
        export.load_checked(tmp_path / model.name)


def test_quick_runs_write_to_a_temporary_folder_never_to_the_record(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    from mnist_digits import notebook, training
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("MNIST_QUICK", raising=False)  # scripts/test.sh sets it for nbval
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    monkeypatch.setattr(training, "BATCH_SIZE", training.BATCH_SIZE)  # restored after the test
    run = notebook.start(seed=3, quick=True, data_dir="/nonexistent")
    assert run.output_dir == tmp_path / "mnist-quick" and run.models_dir.is_dir() and run.figures_dir.is_dir()
    assert run.pick(15, 2) == 2 and training.BATCH_SIZE == notebook.QUICK_BATCH_SIZE
    assert notebook.start(quick=False, data_dir="/nonexistent").output_dir == REPO


def test_split_is_stratified_and_scaled():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 100)
    images = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    (x_train, y_train), (x_val, y_val) = data.split(images, labels, validation_size=200, seed=1)
    assert x_train.shape == (800, 28, 28, 1) and x_val.dtype == np.float32 and x_val.max() <= 1.0
    assert (np.bincount(y_val) == 20).all() and (np.bincount(y_train) == 80).all()


def confident(labels, right, confidence):
    """Probabilities whose top class is the label where `right`, another class elsewhere, at these confidences."""
    predicted = np.where(right, labels, (labels + 1) % 10)
    probabilities = np.repeat(((1 - confidence) / 9)[:, np.newaxis], 10, axis=1)  # the rest spread evenly
    probabilities[np.arange(len(labels)), predicted] = confidence
    return probabilities


def test_abstention_threshold_keeps_the_error_among_accepted_answers_within_bounds():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, 2000)
    right = rng.random(2000) > 0.05
    confidence = np.where(right, rng.uniform(0.6, 1.0, 2000), rng.uniform(0.3, 0.8, 2000))
    probabilities = confident(labels, right, confidence)
    threshold = stress.abstention_threshold(probabilities, labels, max_error=0.01)
    accepted = probabilities.max(axis=1) >= threshold
    assert 0 < accepted.mean() < 1 and (~right[accepted]).mean() <= 0.01
    ordered, coverage, risk = stress.risk_coverage(probabilities, labels)
    assert (np.diff(ordered) <= 0).all() and (np.diff(coverage) > 0).all() and coverage[-1] == 1
    assert risk[-1] == pytest.approx((~right).mean())


def test_reliability_of_a_calibrated_model_is_near_the_diagonal():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.2, 1.0, 20_000)
    labels = rng.integers(0, 10, 20_000)
    right = rng.random(20_000) < confidence  # right exactly as often as it is confident
    table, ece = stress.reliability(confident(labels, right, confidence), labels)
    assert ece < 0.02 and table["count"].sum() == 20_000
    wrong_way = confident(labels, rng.random(20_000) < confidence / 2, confidence)  # overconfident
    assert stress.reliability(wrong_way, labels)[1] > 0.2


def test_rule_verdicts():
    rule = {"unsure_below": 0.9, "not_a_digit_below": 0.4, "not_a_digit_score": "max_probability"}
    probabilities = np.array([[0.95] + [0.05 / 9] * 9, [0.6, 0.3] + [0.1 / 8] * 8, [0.2] * 2 + [0.6 / 8] * 8])
    assert list(verdicts(probabilities, rule)) == ["digit", "unsure", "not_a_digit"]
