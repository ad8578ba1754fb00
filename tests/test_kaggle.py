"""Kaggle's Digit Recognizer: the notebook's CSV reader on good and damaged files, scripts/make_kaggle_files.py, and
the whole notebook in quick mode in Kaggle mode, whose submission is checked against the kept answers."""
import ast
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import NOTEBOOK, REPO, cell_source, notebook_cells, notebook_definitions, outputs_text


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
    return notebook_definitions("def read_kaggle_csv(", notebook_definitions("def load_mnist_idx("))


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


def test_notebook_in_kaggle_mode_writes_a_submission_that_scores(kaggle_files, tmp_path):
    """Quick mode (3,000 training images, one or two epochs): a lower bar than a real run's 99%."""
    papermill = pytest.importorskip("papermill")
    output = tmp_path / "out"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "kaggle.ipynb"), cwd=str(tmp_path), progress_bar=False,
                               parameters={"QUICK": True, "KAGGLE_DIR": str(kaggle_files), "OUTPUT_DIR": str(output),
                                           "DATA_DIR": "/nonexistent"}, kernel_name="python3")
    printed = "".join(outputs_text(c) for c in json.loads((tmp_path / "kaggle.ipynb").read_text())["cells"])
    assert "refitted on all 8,000 labelled rows" in printed and "Expected score: about " in printed
    submission = pd.read_csv(output / "submission.csv")
    answers = pd.read_csv(kaggle_files / "test_answers.csv")
    assert list(submission.columns) == ["ImageId", "Label"] and len(submission) == len(answers)
    assert (submission["ImageId"] == answers["ImageId"]).all() and submission["Label"].between(0, 9).all()
    score = (submission["Label"] == answers["Label"]).mean()
    print(f"quick-mode Kaggle submission: {score:.2%} right")
    assert score >= 0.5
    assert (output / "models" / "mnist_cnn.onnx").is_file() and not (REPO / "kaggle_output").exists()


def test_the_refit_reads_only_kaggles_labelled_rows():
    """The refit trains on train.csv's rows alone (never MNIST, which Kaggle mode does not load), chooses nothing on
    test.csv or on validation data, and takes its epochs from the validation run."""
    [source] = [cell_source(c) for c in notebook_cells() if "def refit(" in cell_source(c)]
    tree = ast.parse(source)
    [refit] = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "refit"]
    names = {node.id for node in ast.walk(refit) if isinstance(node, ast.Name)}
    assert not names & {"x_kaggle_test", "x_val", "y_val", "x_test", "y_test", "validation"}, names
    assert "validation_data" not in ast.unparse(refit) and "histories" in names
    labelled = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "labelled_images" for t in node.targets))
    assert {n.id for n in ast.walk(labelled.value) if isinstance(n, ast.Name)} >= {"x_train_full", "x_test_raw"}
    [loader] = [cell_source(c) for c in notebook_cells() if "x_kaggle_test = load_kaggle(" in cell_source(c)]
    assert loader.index("if KAGGLE_DIR:") < loader.index("load_kaggle(") < loader.index("load_mnist_idx(")
