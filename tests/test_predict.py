"""predict.py: MNIST-style preprocessing, predictions on transformed test digits, and every kind of bad input."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import LETTERS, REPO, STYLES, dark_on_light, drawing, transform
from PIL import Image

import mnist_digits

MODEL = REPO / "models" / "mnist_cnn.onnx"
KERAS_MODEL = REPO / "models" / "mnist_cnn.keras"


@pytest.fixture(scope="module")
def test_digits(mnist):
    (_, _), (x_test, y_test) = mnist
    return x_test, y_test


def center_of_mass(image):
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def assert_mnist_like(result, reference, tolerance):
    assert result.shape == (28, 28) and result.dtype == np.float32
    assert result.min() >= 0.0 and 0.9 < result.max() <= 1.0
    row, col = center_of_mass(result)
    assert abs(row - 14.0) < 0.75 and abs(col - 14.0) < 0.75
    rows, cols = np.nonzero(result > 0.05)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 22  # the 20 x 20 box, plus anti-aliasing fringe
    # Rounding the centre of mass may place a resampled digit one pixel off: compare at the best of those shifts.
    difference = min(np.abs(np.roll(result, (dr, dc), axis=(0, 1)) - reference).mean()
                     for dr in (-1, 0, 1) for dc in (-1, 0, 1))
    assert difference < tolerance, difference


def test_mnist_digits_come_back_nearly_unchanged(test_digits):
    x_test, _ = test_digits
    for digit in x_test[:20]:
        assert_mnist_like(mnist_digits.mnist_style(Image.fromarray(digit)), digit / 255.0, 0.01)


def test_inverted_input_gives_the_same_result(test_digits):
    digit = test_digits[0][3]
    original = mnist_digits.mnist_style(Image.fromarray(digit))
    np.testing.assert_allclose(mnist_digits.mnist_style(dark_on_light(digit)), original, atol=1e-6)


@pytest.mark.parametrize("style", STYLES)
def test_each_kind_of_image_becomes_mnist_like(test_digits, style, tmp_path):
    rng = np.random.default_rng(7)
    x_test, _ = test_digits
    for i, digit in enumerate(x_test[10:20]):
        with Image.open(transform(digit, style, rng, tmp_path, f"{style}-{i}")) as image:
            assert_mnist_like(mnist_digits.mnist_style(image), mnist_digits.mnist_style(Image.fromarray(digit)), 0.05)


def test_off_centre_digit_on_large_canvas_is_centred():
    canvas = np.full((400, 600), 255, np.uint8)
    canvas[30:90, 480:500] = 0  # a thick vertical stroke, a "1", near the top right corner
    result = mnist_digits.mnist_style(Image.fromarray(canvas))
    rows, cols = np.nonzero(result > 0.5)
    assert np.ptp(rows) + 1 == 20 and np.ptp(cols) + 1 <= 8
    row, col = center_of_mass(result)
    assert abs(row - 14.0) < 0.6 and abs(col - 14.0) < 0.6


def test_blank_and_tiny_images_are_refused():
    with pytest.raises(ValueError, match="no ink"):
        mnist_digits.mnist_style(Image.new("L", (100, 100), 255))
    with pytest.raises(ValueError, match="no ink"):
        mnist_digits.mnist_style(Image.new("RGBA", (100, 100), (0, 0, 0, 0)))
    with pytest.raises(ValueError, match="too small"):
        mnist_digits.mnist_style(Image.new("L", (5, 40), 0))


def run_predict(*args):
    return subprocess.run([sys.executable, str(REPO / "predict.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_300_transformed_test_digits_are_predicted(test_digits, tmp_path):
    """Held-out test digits, chosen at random and transformed six ways; the acceptance is >= 97% correct."""
    x_test, y_test = test_digits
    rng = np.random.default_rng(2026)
    chosen = rng.choice(len(x_test), size=300, replace=False)
    paths, labels = [], {}
    for n, index in enumerate(chosen):
        path = transform(x_test[index], STYLES[n % len(STYLES)], rng, tmp_path, f"digit{n:03d}")
        paths.append(path)
        labels[str(path)] = int(y_test[index])
    run = run_predict("--json", *paths)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["path"] for a in answers] == [str(p) for p in paths]
    for answer in answers:
        assert 0 <= answer["digit"] <= 9 and 0.0 <= answer["probability"] <= 1.0
        assert answer["verdict"] in ("digit", "unsure", "not_a_digit")
        assert answer["unsure"] == (answer["verdict"] != "digit")
        assert len(answer["top3"]) == 3 and answer["top3"][0]["digit"] == answer["digit"]
    correct = {style: [] for style in STYLES}
    for n, answer in enumerate(answers):
        correct[STYLES[n % len(STYLES)]].append(answer["digit"] == labels[answer["path"]])
    accuracy = np.mean([a["digit"] == labels[a["path"]] for a in answers])
    by_style = {style: f"{np.mean(c):.0%}" for style, c in correct.items()}
    print(f"accuracy on 300 transformed test digits: {accuracy:.2%}; by style {by_style}")
    assert accuracy >= 0.97, by_style


def test_text_output_and_exit_code_zero(test_digits, tmp_path):
    path = tmp_path / "seven.png"
    dark_on_light(test_digits[0][0], 120).save(path)  # test digit 0 is a 7
    run = run_predict(path)
    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith(f"{path}: 7 (") and run.stdout.count("\n") == 1


def test_bad_inputs_are_refused_one_line_each_and_the_rest_still_predicted(test_digits, tmp_path):
    good = tmp_path / "good.png"
    dark_on_light(test_digits[0][1], 100).save(good)
    png_bytes = good.read_bytes()
    (tmp_path / "notes.png").write_text("this is not an image\n")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "truncated.png").write_bytes(png_bytes[: len(png_bytes) // 2])
    Image.new("L", (64, 64), 250).save(tmp_path / "blank.png")
    Image.new("L", (4, 4), 0).save(tmp_path / "tiny.png")
    (tmp_path / "folder.png").mkdir()
    bad = {"missing.png": "no such file", "folder.png": "directory", "notes.png": "not an image",
           "empty.png": "empty", "truncated.png": "truncated", "blank.png": "no ink", "tiny.png": "too small"}
    run = run_predict("--json", tmp_path / "missing.png", good, *(tmp_path / name for name in list(bad)[1:]))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    errors = run.stderr.splitlines()
    assert len(errors) == len(bad), run.stderr
    for line, (name, problem) in zip(errors, bad.items()):
        assert line.startswith(f"{tmp_path / name}: ") and problem in line, line
    [answer] = [json.loads(line) for line in run.stdout.splitlines()]
    assert answer["path"] == str(good) and answer["digit"] == test_digits[1][1]


def drawn_letter(letter, path):
    drawing(LETTERS[letter]).save(path)
    return path


def test_letters_get_no_confident_digit_and_say_so(tmp_path):
    paths = [drawn_letter(letter, tmp_path / f"{letter}.png") for letter in "AXH"]
    run = run_predict("--json", *paths)
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert all(a["verdict"] != "digit" and a["unsure"] for a in answers), answers
    text = run_predict(*paths).stdout.splitlines()
    for line, answer in zip(text, answers):
        said = "not a digit: this does not look like a digit" if answer["verdict"] == "not_a_digit" else "not sure:"
        assert said in line, line


def test_keras_model_gives_the_same_answers(test_digits, tmp_path):
    """--model with the .keras file runs TensorFlow instead of onnxruntime: the same digits and verdicts."""
    paths = [dark_on_light(test_digits[0][i], 120) for i in range(6)]
    for i, image in enumerate(paths):
        image.save(tmp_path / f"{i}.png")
    files = [tmp_path / f"{i}.png" for i in range(6)] + [drawn_letter("A", tmp_path / "A.png")]
    onnx = [json.loads(line) for line in run_predict("--json", *files).stdout.splitlines()]
    keras = [json.loads(line) for line in run_predict("--json", "--model", KERAS_MODEL, *files).stdout.splitlines()]
    assert len(onnx) == len(files) and [(a["digit"], a["verdict"]) for a in onnx] == [
        (a["digit"], a["verdict"]) for a in keras]


def test_missing_model_is_a_clear_error(tmp_path):
    for name in ("none.onnx", "none.keras"):
        run = run_predict("--model", tmp_path / name, tmp_path / "x.png")
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.splitlines() == [f"{tmp_path / name}: model file not found"]


@pytest.mark.parametrize("model", [MODEL, KERAS_MODEL], ids=["onnx", "keras"])
def test_corrupt_model_is_a_clear_error(tmp_path, model):
    broken = tmp_path / f"broken{model.suffix}"
    broken.write_bytes(model.read_bytes()[:5000])
    run = run_predict("--model", broken, tmp_path / "x.png")
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    [line] = run.stderr.splitlines()
    assert line.startswith(f"{broken}: cannot load the model")


def test_a_model_with_another_runs_metadata_is_refused(tmp_path, test_digits):
    """The metadata names the SHA-256 of the files it describes: a retrained model beside old thresholds is refused."""
    model = tmp_path / "mnist_cnn.onnx"
    model.write_bytes(MODEL.read_bytes())
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    (tmp_path / "mnist_cnn.json").write_text(json.dumps(metadata))
    dark_on_light(test_digits[0][0], 120).save(tmp_path / "seven.png")
    assert run_predict("--model", model, tmp_path / "seven.png").returncode == 0  # the pair as the notebook saved it
    metadata["files"]["mnist_cnn.onnx"]["sha256"] = "0" * 64
    (tmp_path / "mnist_cnn.json").write_text(json.dumps(metadata))
    run = run_predict("--model", model, tmp_path / "seven.png")
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr
    assert run.stderr.splitlines() == [f"{model}: mnist_cnn.json does not describe this model file (SHA-256 differs): "
                                       "the model and its metadata come from different runs"]


def test_usage_error_without_images():
    run = run_predict()
    assert run.returncode == 2 and "usage:" in run.stderr
