"""The HTTP API of the web app: predictions, health, every kind of bad input, and many clients at once."""
import hashlib
import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import LETTERS, REPO, STYLES, dark_on_light, drawing, transform
from fastapi.testclient import TestClient
from PIL import Image

import mnist_digits
from app.main import MAX_BODY_BYTES, app

MODEL = REPO / "models" / "mnist_cnn.onnx"
KEYS = {"digit", "probability", "probabilities", "top3", "verdict", "unsure", "model_input"}


@pytest.fixture(scope="module")
def client():
    with TestClient(app) as test_client:  # runs the start-up: the model is loaded once
        yield test_client


@pytest.fixture(scope="module")
def test_digits(mnist):
    return mnist[1]


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def post_image(client, data, content_type="image/png"):
    return client.post("/api/predict", content=data, headers={"Content-Type": content_type})


def assert_refused(response, status, words):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and words in body["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]


def test_health_names_the_model_the_runtime_and_the_rule(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL.name
    assert health["sha256"] == hashlib.sha256(MODEL.read_bytes()).hexdigest()
    import onnxruntime
    assert health["runtime"] == f"onnxruntime {onnxruntime.__version__}"
    rule = mnist_digits.load_metadata(MODEL)["rule"]
    assert (health["unsure_below"], health["not_a_digit_below"]) == (rule["unsure_below"], rule["not_a_digit_below"])
    assert health["threshold_from"] == "mnist_cnn.json"


def test_drawn_letters_are_not_answered_as_a_confident_digit(client):
    for letter in "AX":
        answer = post_image(client, png_bytes(drawing(LETTERS[letter]))).json()
        assert answer["verdict"] in ("unsure", "not_a_digit") and answer["unsure"] is True, answer


def test_raw_body_and_multipart_upload_give_the_same_answer(client, test_digits):
    x_test, y_test = test_digits
    data = png_bytes(dark_on_light(x_test[0], 140))
    raw = post_image(client, data).json()
    form = client.post("/api/predict", files={"file": ("seven.png", data, "image/png")}).json()
    assert set(raw) == KEYS and raw == form
    assert raw["digit"] == y_test[0] == raw["top3"][0]["digit"]
    assert len(raw["probabilities"]) == 10 and abs(sum(raw["probabilities"]) - 1) < 1e-3
    assert raw["probability"] == max(raw["probabilities"])
    assert np.array(raw["model_input"]).shape == (28, 28) and max(map(max, raw["model_input"])) == 1.0


def test_300_held_out_digits_as_user_images_are_at_least_99_percent_right(client, test_digits, tmp_path):
    x_test, y_test = test_digits
    rng = np.random.default_rng(2027)
    chosen = rng.choice(len(x_test), size=300, replace=False)
    correct = {style: [] for style in STYLES}
    for n, index in enumerate(chosen):
        style = STYLES[n % len(STYLES)]
        path = transform(x_test[index], style, rng, tmp_path, f"digit{n:03d}")
        if n % 2:
            response = client.post("/api/predict", files={"file": (path.name, path.read_bytes())})
        else:
            response = post_image(client, path.read_bytes(), "image/jpeg" if path.suffix == ".jpg" else "image/png")
        assert response.status_code == 200, response.text
        correct[style].append(response.json()["digit"] == y_test[index])
    accuracy = np.mean([hit for hits in correct.values() for hit in hits])
    print(f"API accuracy on 300 held-out test digits as user images: {accuracy:.2%}; "
          f"by style {({s: f'{np.mean(c):.0%}' for s, c in correct.items()})}")
    assert accuracy >= 0.99


def decompression_bomb():
    """A 48 kB PNG that decodes to 400 million pixels."""
    return png_bytes(Image.new("1", (20_000, 20_000), 0))


BAD_INPUTS = {
    "no body": (dict(headers={"Content-Type": "image/png"}), 400, "empty"),
    "not an image": (dict(content=b"just some text", headers={"Content-Type": "image/png"}), 400, "not an image"),
    "wrong content type": (dict(content=b"{}", headers={"Content-Type": "application/json"}), 415, "content type"),
    "no content type": (dict(content=b"abc"), 415, "content type"),
    "form without multipart": (dict(data={"file": "text"}), 415, "content type"),
    "multipart without a file": (dict(data={"file": "text, not a file"}, files={"other": ("a.txt", b"a")}), 400,
                                 "no file"),
    "multipart with an empty file": (dict(files={"file": ("a.png", b"", "image/png")}), 400, "empty"),
    "malformed multipart": (dict(content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}),
                            400, "no file"),
    "over the size limit": (dict(content=b"\0" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "image/png"}), 413,
                            "over the limit"),
    "decompression bomb": (dict(content=decompression_bomb(), headers={"Content-Type": "image/png"}), 413,
                           "too large"),
    "blank image": (dict(content=png_bytes(Image.new("L", (200, 200), 255)), headers={"Content-Type": "image/png"}),
                    422, "no ink"),
    "tiny image": (dict(content=png_bytes(Image.new("L", (5, 5), 0)), headers={"Content-Type": "image/png"}), 422,
                   "too small"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_its_status_and_one_line(client, case, test_digits):
    request, status, words = BAD_INPUTS[case]
    assert_refused(client.post("/api/predict", **request), status, words)
    assert post_image(client, png_bytes(dark_on_light(test_digits[0][0], 100))).status_code == 200  # still serving


def test_truncated_and_corrupt_images_are_refused(client, test_digits):
    data = png_bytes(dark_on_light(test_digits[0][0], 100))
    assert_refused(post_image(client, data[: len(data) // 2]), 400, "truncated")
    corrupt = bytearray(data)
    corrupt[60:90] = b"\xff" * 30
    assert_refused(post_image(client, bytes(corrupt)), 400, "corrupt")


def test_unknown_paths_and_methods_answer_in_json(client):
    assert_refused(client.get("/api/nothing"), 404, "Not Found")
    assert_refused(client.get("/api/predict"), 405, "Method Not Allowed")


def test_openapi_is_served_and_the_cdn_docs_pages_are_off(client):
    schema = client.get("/api/openapi.json").json()
    assert set(schema["paths"]) == {"/api/predict", "/api/health"}
    content = schema["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/png", "image/jpeg"} <= set(content)
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404


def test_the_page_and_its_assets_are_served_from_this_app(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert "http://" not in page.text.replace("http://127.0.0.1", "") and "https://" not in page.text


def test_the_three_verdicts_of_the_rule():
    class FixedModel:
        def __call__(self, batch):
            return np.array([[0, 0, 0, 0, 0.55, 0, 0, 0, 0, 0.45], [0.1] * 10, [0, 0, 0, 0, 0, 0, 0, 0.97, 0.03, 0]])

    rule = {"unsure_below": 0.9, "not_a_digit_below": 0.5, "not_a_digit_score": "top_two_mass"}
    doubtful, spread, sure = mnist_digits.predict(FixedModel(), np.zeros((3, 28, 28)), rule)
    assert (doubtful.verdict, spread.verdict, sure.verdict) == ("unsure", "not_a_digit", "digit")
    assert doubtful.unsure and spread.unsure and not sure.unsure
    assert doubtful.describe().startswith("not sure: 4 or 9?")
    assert spread.describe().startswith("not a digit: this does not look like a digit")
    assert sure.describe().startswith("7 (97.0%")
    by_top = {**rule, "not_a_digit_score": "max_probability", "not_a_digit_below": 0.5}
    assert [p.verdict for p in mnist_digits.predict(FixedModel(), np.zeros((3, 28, 28)), by_top)] == [
        "unsure", "not_a_digit", "digit"]
    assert [p.verdict for p in mnist_digits.predict(FixedModel(), np.zeros((3, 28, 28)))] == [
        "unsure", "unsure", "digit"]  # without metadata: never "not a digit"


def test_rule_is_read_from_the_metadata_beside_the_model(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"model bytes")
    assert mnist_digits.load_metadata(model) == {"rule": mnist_digits.DEFAULT_RULE, "source": "default"}
    (tmp_path / "model.json").write_text(json.dumps({"unsure_below": 0.75, "model": "x"}))  # an older file
    assert mnist_digits.load_metadata(model)["rule"]["unsure_below"] == 0.75
    rule = {"unsure_below": 0.96, "not_a_digit_below": 0.9, "not_a_digit_score": "top_two_mass"}
    files = {"model.onnx": {"sha256": hashlib.sha256(b"model bytes").hexdigest()}}
    (tmp_path / "model.json").write_text(json.dumps({"rule": rule, "files": files}))
    assert mnist_digits.load_metadata(model)["rule"] == rule
    for broken, words in [("{not json", "unreadable"), (json.dumps({"rule": {**rule, "unsure_below": 3}}), "range"),
                          (json.dumps({"rule": {**rule, "not_a_digit_score": "energy"}}), "unknown"),
                          (json.dumps({"rule": rule, "files": {"model.onnx": {"sha256": "0" * 64}}}), "SHA-256")]:
        (tmp_path / "model.json").write_text(broken)
        with pytest.raises(ValueError, match=words):
            mnist_digits.load_metadata(model)


def test_16_concurrent_clients_each_get_the_right_answers(live_server, test_digits):
    """400 requests of known digits from 16 clients at once against the running server: none lost, all right.

    Known: test digits that the model, called alone on the same image, classifies correctly, so that any wrong
    answer can only come from requests mixed up or lost under load."""
    x_test, y_test = test_digits
    candidates = np.random.default_rng(16).choice(len(x_test), size=450, replace=False)
    images = {i: png_bytes(dark_on_light(x_test[i], 112)) for i in candidates}
    alone = mnist_digits.predict(mnist_digits.load_model(MODEL),
                                 [mnist_digits.mnist_style(Image.open(io.BytesIO(images[i]))) for i in candidates])
    known = [i for i, p in zip(candidates, alone) if p.digit == y_test[i]][:400]
    assert len(known) == 400

    def ask(share):
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return [(k, http.post("/api/predict", content=images[known[k]], headers={"Content-Type": "image/png"}))
                    for k in share]

    with ThreadPoolExecutor(16) as pool:
        answers = [a for part in pool.map(ask, [range(c, 400, 16) for c in range(16)]) for a in part]
    assert sorted(k for k, _ in answers) == list(range(400)), "a request was lost"
    assert all(r.status_code == 200 for _, r in answers)
    wrong = [(k, r.json()["digit"]) for k, r in answers if r.json()["digit"] != y_test[known[k]]]
    assert not wrong, f"answers mixed up under load: {wrong[:5]}"


def test_the_server_refuses_to_start_without_a_usable_model(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(MODEL.read_bytes()[:4000])
    mismatched = tmp_path / "mnist_cnn.onnx"  # a model beside metadata that describes another file
    mismatched.write_bytes(MODEL.read_bytes())
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    metadata["files"]["mnist_cnn.onnx"]["sha256"] = "0" * 64
    mismatched.with_suffix(".json").write_text(json.dumps(metadata))
    for model, message in [(tmp_path / "none.onnx", "model file not found"), (broken, "cannot load the model"),
                           (mismatched, "does not describe this model file")]:
        run = subprocess.run([sys.executable, "-m", "app", "--model", str(model)], cwd=REPO, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert run.stderr.strip().splitlines() == [f"{model}: {run.stderr.split(': ', 1)[1].strip()}"]
        assert message in run.stderr
