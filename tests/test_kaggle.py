"""Kaggle's Digit Recognizer: the package's CSV reader on good and damaged files, scripts/make_kaggle_files.py, and
notebooks 1 and 2 in quick mode in Kaggle mode, whose submission is checked against the kept answers."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, outputs_text


@pytest.fixture(scope="session")
def kaggle_files(mnist_dir, tmp_path_factory):
    """Small Kaggle-format files made from MNIST: 8,000 rows of train.csv, 2,000 of test.csv, and the answers."""
    folder = tmp_path_factory.mktemp("kaggle")
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "make_kaggle_files.py"), str(folder), "--train",
                          "8000", "--test", "2000"], capture_output=True, text=True, env={
                              "MNIST_DATA_DIR": str(mnist_dir), "PATH": ""}, timeout=300)
    assert run.returncode == 0, run.stderr
    return folder


@pytest.fixture(scope="module")
def reader():
    from mnist_digits import data
    return vars(data)


def test_files_have_kaggles_layout(kaggle_files):
    train, test = pd.read_csv(kaggle_files / "train.csv"), pd.read_csv(kaggle_files / "test.csv")
    assert list(train.columns) == ["label", *(f"pixel{i}" for i in range(784))] and len(train) == 8000
    assert list(test.columns) == [f"pixel{i}" for i in range(784)] and len(test) == 2000
    answers = pd.read_csv(kaggle_files / "test_answers.csv")
    assert list(answers.columns) == ["ImageId", "Label"] and (answers["ImageId"] == np.arange(1, 2001)).all()
    sample = pd.read_csv(kaggle_files / "sample_submission.csv")
    assert list(sample.columns) == ["ImageId", "Label"] and len(sample) == 2000


def test_reader_reads_good_files(reader, kaggle_files):
    images, labels = reader["read_kaggle_csv"](kaggle_files / "train.csv", labelled=True)
    assert images.shape == (8000, 28, 28) and images.dtype == np.uint8 and set(np.unique(labels)) == set(range(10))
    (x_train, _), (x_test, y_test), unlabelled = reader["load_kaggle"](kaggle_files, 1000, 42, exact_rows=False)
    assert len(x_train) == 7000 and len(x_test) == 1000 and unlabelled.shape == (2000, 28, 28)
    assert np.bincount(y_test).min() >= 80  # stratified
    with pytest.raises(reader["MnistDataError"], match="8,000 rows, expected 42,000"):
        reader["load_kaggle"](kaggle_files, 1000, 42, exact_rows=True)


def damage(frame, how):
    frame = frame.copy()
    if how == "missing column":
        return frame.drop(columns="pixel5")
    if how == "extra column":
        return frame.assign(extra=0)
    if how == "missing value":
        frame.loc[3, "pixel100"] = np.nan
        return frame
    if how == "text value":
        frame["pixel7"] = frame["pixel7"].astype(object)
        frame.loc[2, "pixel7"] = "dark"
        return frame
    if how == "pixel over 255":
        frame.loc[1, "pixel9"] = 300
        return frame
    if how == "negative pixel":
        frame.loc[1, "pixel9"] = -1
        return frame
    if how == "label 10":
        frame.loc[0, "label"] = 10
        return frame
    raise ValueError(how)


@pytest.mark.parametrize("how, words", [
    ("missing column", "missing pixel5"), ("extra column", "unexpected extra"), ("missing value", "data row 4"),
    ("text value", "pixel7 holds values that are not whole numbers"), ("pixel over 255", "outside 0-255"),
    ("negative pixel", "outside 0-255"), ("label 10", "outside 0-9")])
def test_damaged_train_csv_is_refused_with_one_clear_line(reader, kaggle_files, tmp_path, how, words):
    frame = pd.read_csv(kaggle_files / "train.csv", nrows=20)
    path = tmp_path / "train.csv"
    damage(frame, how).to_csv(path, index=False)
    with pytest.raises(reader["MnistDataError"]) as error:
        reader["read_kaggle_csv"](path, labelled=True)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message, message


@pytest.mark.parametrize("content, words", [(b"", "cannot read it as CSV"),
                                            (b"\x00\xff\xfe garbage", "cannot read it as CSV"),
                                            (b"label,pixel0\n1,2\n", "found 2 columns")])
def test_unreadable_files_are_refused(reader, tmp_path, content, words):
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(reader["MnistDataError"], match=words):
        reader["read_kaggle_csv"](path, labelled=True)
    with pytest.raises(reader["MnistDataError"], match="file not found"):
        reader["read_kaggle_csv"](tmp_path / "none.csv", labelled=False)
    with pytest.raises(reader["MnistDataError"], match="not a folder"):
        reader["load_kaggle"](tmp_path / "none", 10, 0)


def test_test_csv_with_a_label_column_is_refused(reader, kaggle_files, tmp_path):
    pd.read_csv(kaggle_files / "train.csv", nrows=5).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(reader["MnistDataError"], match="unexpected label"):
        reader["read_kaggle_csv"](tmp_path / "test.csv", labelled=False)


def test_notebooks_in_kaggle_mode_write_a_submission_that_scores(kaggle_files, tmp_path, monkeypatch):
    """Notebook 1 (its MNIST-only model is notebook 2's "before"), then notebook 2, in quick mode (a few thousand
    images, one or two epochs: a lower bar than a real run's 99%). DATA_DIR names no folder, so any read of MNIST
    fails: Kaggle mode reads Kaggle's files alone. The refit trains on every labelled row of train.csv."""
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # quick mode's output folder lies in the kernel's temporary folder
    printed = ""
    for notebook in ("1_toward_99_6.ipynb", "2_what_it_does_not_know.ipynb"):
        executed = tmp_path / notebook
        papermill.execute_notebook(str(REPO / "notebooks" / notebook), str(executed), cwd=str(REPO / "notebooks"),
                                   progress_bar=False, kernel_name="python3",
                                   parameters={"QUICK": True, "KAGGLE_DIR": str(kaggle_files),
                                               "DATA_DIR": "/nonexistent"})
        printed += "".join(outputs_text(c) for c in json.loads(executed.read_text())["cells"])
    assert "on Kaggle" in printed and "on all 8,000 labelled rows" in printed and "Expected score: about " in printed
    output = tmp_path / "mnist-quick-kaggle"
    submission = pd.read_csv(output / "submission.csv")
    answers = pd.read_csv(kaggle_files / "test_answers.csv")
    assert list(submission.columns) == ["ImageId", "Label"] and len(submission) == len(answers)
    assert (submission["ImageId"] == answers["ImageId"]).all() and submission["Label"].between(0, 9).all()
    score = (submission["Label"] == answers["Label"]).mean()
    print(f"quick-mode Kaggle submission: {score:.2%} right")
    assert score >= 0.5
    assert (output / "models" / "mnist_cnn.onnx").is_file() and not (REPO / "kaggle_output").exists()


def test_kaggle_mode_never_reads_mnist(kaggle_files, monkeypatch, tmp_path):
    """load_data in Kaggle mode takes train.csv's rows and holds out a part of them as the test set; it reads no
    MNIST file, even where they are (Keras's MNIST includes Kaggle's test images)."""
    from mnist_digits import data

    def no_mnist(*args, **kwargs):
        raise AssertionError("Kaggle mode read MNIST")

    monkeypatch.setattr(data, "load_mnist_idx", no_mnist)
    (x_train, y_train), (x_test, y_test), kaggle_test = data.load_data(str(tmp_path), str(kaggle_files), 1000, 42,
                                                                       exact_rows=False)
    assert len(x_train) + len(x_test) == 8000 and len(kaggle_test) == 2000
    rows = pd.read_csv(kaggle_files / "train.csv")
    images = rows.drop(columns="label").to_numpy(np.uint8).reshape(-1, 28, 28)
    loaded = zip(np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]))
    assert sorted((bytes(image), int(label)) for image, label in loaded) == sorted(
        (bytes(image), int(label)) for image, label in zip(images, rows["label"]))
