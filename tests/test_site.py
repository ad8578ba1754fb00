"""The page without a server: site/ as scripts/build_site.py builds it, served by Python's plain http.server and
used in Chromium, with every request to a host other than 127.0.0.1 blocked and failing the test.

- The JavaScript preprocessing (app/static/digits.js) against mnist_digits.mnist_style on 300+ images: MNIST test
  digits written as files the way photos and scans differ, uploads of several sizes, modes and formats, and
  drawings made with the mouse. The largest pixel difference allowed is PIXEL_BOUND (1/255), and the digit and the
  verdict must be the same.
- The model in onnxruntime-web against Python's onnxruntime on the same inputs: PROBABILITY_BOUND (1e-4).
- The rule in JavaScript against mnist_digits.verdicts, thresholds read from the model's JSON.
- The static site as a user, offline once loaded: a 7, an A and a continental 1 with a foot drawn with the mouse,
  and no request to /api.
- The app's page (python -m app) runs the model in the browser too, and asks the API when the runtime cannot load.
"""
import base64
import hashlib
import io
import os
import sys
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LETTERS,
    STYLES,
    dark_on_light,
    draw_with_mouse,
    free_port,
    polyline,
    require_chromium,
    start_server,
    stop_server,
    transform,
)
from PIL import Image, ImageOps

import mnist_digits
from app import static_site

playwright = pytest.importorskip("playwright.sync_api")
require_chromium()

PIXEL_BOUND = 1 / 255  # the largest difference allowed between the JavaScript and the Python 28 x 28 inputs
PROBABILITY_BOUND = 1e-4  # ... and between the probabilities of onnxruntime-web and Python's onnxruntime

CONTINENTAL_ONE = [polyline([(100, 105), (160, 45), (158, 235)]), polyline([(115, 238), (200, 238)])]  # with a foot
SEVEN = [polyline([(75, 60), (205, 60), (115, 240)])]


def require_runtime():
    """Skip without the pinned onnxruntime-web, except in CI, which installs it (`npm ci` in scripts/test.sh)."""
    if not static_site.runtime_installed():
        message = "onnxruntime-web is not installed: run `npm ci` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    require_runtime()
    out = tmp_path_factory.mktemp("site") / "site"
    static_site.build(out)
    return out


@pytest.fixture(scope="module")
def static_server(built_site):
    """`python -m http.server -d site`, as the README publishes the site; its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    server = start_server([sys.executable, "-m", "http.server", "-d", str(built_site), "-b", "127.0.0.1", str(port)],
                          base, "http.server", timeout=30)
    yield base
    stop_server(server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Opens pages in Chromium, each in a fresh profile; every request leaving 127.0.0.1 is blocked and recorded."""
    contexts, requests, foreign = [], [], []

    def guard(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    with playwright.sync_playwright() as p:
        def open_page(url, block=None):
            context = p.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
                headless=True, args=CHROMIUM_ARGS, viewport={"width": 1000, "height": 760})
            contexts.append(context)
            context.route("**/*", guard)
            if block:
                context.route(block, lambda route: route.abort())
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            page.wait_for_function("document.body.dataset.engine", timeout=60_000)
            return page

        open_page.requests = requests
        yield open_page
        for context in contexts:
            context.close()
    assert not foreign, f"requests to other hosts: {foreign[:5]}"


@pytest.fixture(scope="module")
def site_page(browser, static_server):
    page = browser(static_server)
    assert page.evaluate("document.body.dataset.engine") == "browser", page.locator("#error").inner_text()
    return page


@pytest.fixture(scope="module")
def served_model():
    return mnist_digits.load_model(mnist_digits.DEFAULT_MODEL), mnist_digits.load_metadata()["rule"]


def test_the_site_holds_the_page_the_runtime_and_the_model_only(built_site):
    files = sorted(str(path.relative_to(built_site)) for path in built_site.rglob("*") if path.is_file())
    assert files == sorted(["index.html", "static/app.js", "static/digits.js", "static/style.css",
                            *(f"static/ort/{name}" for name in static_site.RUNTIME_FILES),
                            "models/mnist_cnn.onnx", "models/mnist_cnn.json"])
    assert (built_site / "models" / "mnist_cnn.onnx").read_bytes() == mnist_digits.DEFAULT_MODEL.read_bytes()
    page = (built_site / "index.html").read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page, "the page must load nothing from another host"


def test_the_build_refuses_metadata_of_another_model(tmp_path):
    model = tmp_path / "mnist_cnn.onnx"
    model.write_bytes(mnist_digits.DEFAULT_MODEL.read_bytes() + b"\0")
    (tmp_path / "mnist_cnn.json").write_bytes(mnist_digits.metadata_path(mnist_digits.DEFAULT_MODEL).read_bytes())
    require_runtime()
    with pytest.raises(static_site.SiteError, match="SHA-256 differs"):
        static_site.build(tmp_path / "site", model)


def test_the_build_replaces_only_a_site_built_before(tmp_path):
    require_runtime()
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "mine.txt").write_text("not a site")
    for folder in (keep, static_site.REPO):
        with pytest.raises(static_site.SiteError, match="not a site built before"):
            static_site.build(folder)
    assert (keep / "mine.txt").exists()
    static_site.build(tmp_path / "site")
    assert static_site.build(tmp_path / "site")["index.html"] > 0  # built again over itself


def png_bytes(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def upload_images(x_test, rng, folder):
    """(name, bytes) of image files: transformed test digits, and uploads of several sizes, modes and formats."""
    files = []
    for i in range(150):
        path = transform(x_test[i], STYLES[i % len(STYLES)], rng, folder, f"digit{i}")
        files.append((f"{STYLES[i % len(STYLES)]} {i}", path.read_bytes()))
    modes = ["L", "RGB", "RGBA", "P", "LA", "1"]
    for i in range(90):
        digit = x_test[150 + i]
        size = int(rng.choice([9, 16, 28, 45, 100, 333, 640]))
        image = dark_on_light(digit, size)
        if i % 3 == 2:  # JPEG, gray or colour
            buffer = io.BytesIO()
            image.convert("RGB" if i % 2 else "L").save(buffer, "JPEG", quality=int(rng.integers(50, 95)))
            files.append((f"jpeg {size} {i}", buffer.getvalue()))
        else:
            mode = modes[i % len(modes)]
            if mode == "RGBA":  # ink on a transparent background
                ink = Image.eval(image, lambda v: 255 - v)
                image = Image.merge("RGBA", [Image.new("L", image.size, 30)] * 3 + [ink])
            files.append((f"png {mode} {size} {i}", png_bytes(image.convert(mode))))
    for i, orientation in enumerate([3, 6, 8]):  # photos that say in EXIF how to turn them
        exif = Image.Exif()
        exif[0x0112] = orientation
        buffer = io.BytesIO()
        dark_on_light(x_test[240 + i], 120).rotate(90 * i).convert("RGB").save(buffer, "JPEG", exif=exif)
        files.append((f"jpeg exif {orientation}", buffer.getvalue()))
    return files


def python_answer(model, rule, image):
    """What mnist_digits makes of an image: the 28 x 28 input, digit and verdict, or the error's text."""
    try:
        digit_image = mnist_digits.mnist_style(image)
    except ValueError as err:
        return {"error": str(err)}
    [prediction] = mnist_digits.predict(model, [digit_image], rule)
    return {"input": digit_image, "digit": prediction.digit, "verdict": prediction.verdict}


def rgba_of(data):
    """The RGBA pixels Pillow decodes from a file, turned as its EXIF orientation says (browsers do the same)."""
    return np.asarray(ImageOps.exif_transpose(mnist_digits.decode_image(data)).convert("RGBA"))


def javascript_answers(page, images):
    """The page's answers to (name, file bytes) pairs, through the path of an upload (createImageBitmap, a canvas),
    with the decoded pixels where they differ from Pillow's."""
    return page.evaluate("""async (files) => {
        const hex = async (bytes) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)),
                                                (b) => b.toString(16).padStart(2, '0')).join('');
        const answers = [];
        for (const [type, data, pillowDigest] of files) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            try {
                const { data: rgba, width, height } = await window.digitEngine.decode(new Blob([bytes], { type }));
                const answer = await window.digitEngine.classify(rgba, width, height);
                if (await hex(rgba) !== pillowDigest) {
                    answer.rgba = btoa(Array.from(rgba, (v) => String.fromCharCode(v)).join(''));
                    answer.shape = [height, width, 4];
                }
                answers.push(answer);
            } catch (err) {
                answers.push({ error: err.message });
            }
        }
        return answers; }""", [["image/jpeg" if data[:2] == b"\xff\xd8" else "image/png",
                                base64.b64encode(data).decode(), hashlib.sha256(rgba_of(data).tobytes()).hexdigest()]
                               for _, data in images])


def random_drawing(rng):
    """A digit, a letter or a scribble, moved, scaled and jittered, as strokes on the 280 x 280 canvas."""
    shapes = [SEVEN, CONTINENTAL_ONE, *([polyline(stroke) for stroke in strokes] for strokes in LETTERS.values()),
              [polyline([(110, 40), (75, 160), (210, 160)]), polyline([(170, 70), (165, 245)])],
              [[(140 + 55 * np.sin(t / 6), 140 - 85 * np.cos(t / 6)) for t in range(40)]]]
    strokes = shapes[int(rng.integers(len(shapes)))]
    scale, dx, dy = rng.uniform(0.3, 1.0), rng.uniform(-60, 60), rng.uniform(-60, 60)
    return [[(float(np.clip(140 + (x - 140) * scale + dx + rng.normal(0, 2), 2, 278)),
              float(np.clip(140 + (y - 140) * scale + dy + rng.normal(0, 2), 2, 278))) for x, y in stroke]
            for stroke in strokes]


def test_preprocessing_in_the_browser_matches_python(site_page, mnist, served_model, tmp_path):
    """Every image gets the same digit and verdict from the page as from mnist_digits, and on the same pixels a
    28 x 28 input within PIXEL_BOUND of mnist_style's. From the files themselves, the browser's own decoders add
    their differences (JPEG, partly transparent PNG), which are reported."""
    model, rule = served_model
    (_, _), (x_test, _) = mnist
    rng = np.random.default_rng(24)
    images = upload_images(x_test, rng, tmp_path)
    answers = javascript_answers(site_page, images)
    for i in range(70):  # drawn with the mouse on the page; the canvas is also taken as the PNG the API would get
        site_page.click("#clear")
        draw_with_mouse(site_page, random_drawing(rng))
        drawn = site_page.evaluate("document.getElementById('canvas').toDataURL('image/png')")
        images.append((f"drawing {i}", base64.b64decode(drawn.split(",", 1)[1])))
        answers += javascript_answers(site_page, images[-1:])
    assert len(images) >= 300
    verdicts_differ, same_pixels, from_files = [], {}, {}
    for (name, data), answer in zip(images, answers):
        whole = python_answer(model, rule, mnist_digits.decode_image(data))
        if "error" in whole or "error" in answer:
            if whole.get("error") != answer.get("error"):
                verdicts_differ.append((name, whole.get("error"), answer.get("error")))
            continue
        if (answer["digit"], answer["verdict"]) != (whole["digit"], whole["verdict"]):
            verdicts_differ.append((name, (whole["digit"], whole["verdict"]), (answer["digit"], answer["verdict"])))
        page_input = np.array(answer["model_input"])
        kind = name.split()[0]
        from_files[kind] = max(from_files.get(kind, 0.0), float(np.abs(page_input - whole["input"]).max()))
        reference = whole["input"]
        if "rgba" in answer:  # the browser decoded other pixels than Pillow: preprocess the browser's
            rgba = np.frombuffer(base64.b64decode(answer["rgba"]), np.uint8).reshape(answer["shape"])
            reference = mnist_digits.mnist_style(Image.fromarray(rgba))
        same_pixels[name] = float(np.abs(page_input - reference).max())
    print(f"{len(images)} images. Same pixels: largest difference {max(same_pixels.values()) * 255:.0f}/255. From "
          "the files, largest by kind: " + ", ".join(f"{kind} {value * 255:.0f}/255" for kind, value in
                                                     from_files.items()))
    assert not verdicts_differ, verdicts_differ[:5]
    beyond = {name: round(value * 255, 1) for name, value in same_pixels.items() if value > PIXEL_BOUND + 1e-6}
    assert not beyond, f"beyond {PIXEL_BOUND * 255:.0f}/255: {beyond}"
    assert sum("error" in answer for answer in answers) < 10, "most images must hold a digit"


def test_model_in_the_browser_matches_python_onnxruntime(site_page, mnist, served_model):
    model, _ = served_model
    (_, _), (x_test, _) = mnist
    rng = np.random.default_rng(7)
    inputs = np.concatenate([x_test[:400] / 255.0, rng.random((50, 28, 28)),  # digits and noise
                             np.clip(x_test[400:450] / 255.0 * rng.uniform(0.2, 1.5, (50, 1, 1)), 0, 1)])
    inputs = inputs.astype(np.float32)
    javascript = np.array(site_page.evaluate("""async (data) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const inputs = new Float32Array(bytes.buffer);
        return Array.from(await window.digitEngine.run(inputs, inputs.length / 784)); }""",
                                             base64.b64encode(inputs.tobytes()).decode())).reshape(-1, 10)
    python = model(inputs[..., np.newaxis])
    difference = float(np.abs(javascript - python).max())
    print(f"{len(inputs)} inputs; largest probability difference {difference:.2e}")
    assert difference <= PROBABILITY_BOUND


def test_rule_in_the_browser_matches_python(site_page, served_model):
    _, rule = served_model
    rng = np.random.default_rng(3)
    rows = [rng.dirichlet(np.full(10, alpha)) for alpha in (0.05, 0.2, 1.0, 5.0) for _ in range(100)]
    for threshold in (rule["unsure_below"], rule["not_a_digit_below"] / 2):  # right at the thresholds
        row = np.full(10, (1 - threshold) / 9)
        row[3] = threshold
        rows.append(row)
    rows = np.array(rows)
    javascript = site_page.evaluate("""async ([rows, metadataUrl]) => {
        const digits = await import('./static/digits.js');
        const rule = digits.ruleFrom(await (await fetch(metadataUrl)).json());
        return rows.map((row) => digits.verdict(row, rule)); }""", [rows.tolist(), "models/mnist_cnn.json"])
    assert javascript == list(mnist_digits.verdicts(rows, rule))
    assert {"digit", "unsure", "not_a_digit"} <= set(javascript)


def test_static_site_answers_a_user_with_no_server_behind_it(browser, static_server):
    page = browser(static_server)
    assert page.locator("#engine").inner_text().startswith("Runs in your browser")
    page.context.set_offline(True)  # once loaded, it needs no network at all
    answers = {}
    for name, strokes in [("7", SEVEN), ("A", [polyline(stroke) for stroke in LETTERS["A"]]),
                          ("continental 1", CONTINENTAL_ONE)]:
        page.click("#clear")
        draw_with_mouse(page, strokes)
        answers[name] = page.locator("#status").inner_text()
    assert answers["7"].startswith("It is a 7"), answers
    assert not answers["A"].startswith("It is a"), answers
    assert answers["continental 1"].startswith("It is a 1"), answers
    page.click("#clear")
    page.click("#predict")
    page.locator("#error").wait_for(state="visible")
    assert "no ink found" in page.locator("#error").inner_text()
    assert not [url for url in browser.requests if "/api" in url], "the static site asked for an API"
    page.context.set_offline(False)


def test_app_page_runs_the_model_in_the_browser(browser, live_server):
    require_runtime()
    page = browser(live_server)
    assert page.evaluate("document.body.dataset.engine") == "browser"
    before = len([url for url in browser.requests if "/api/predict" in url])
    page.click("#clear")
    draw_with_mouse(page, SEVEN)
    assert page.locator("#status").inner_text().startswith("It is a 7")
    assert len([url for url in browser.requests if "/api/predict" in url]) == before
    assert page.locator("#api-note").is_hidden()


def test_app_page_asks_the_api_when_the_runtime_cannot_load(browser, live_server):
    page = browser(live_server, block="**/static/ort/**")
    assert page.evaluate("document.body.dataset.engine") == "server"
    assert "did not load" in page.locator("#engine").inner_text()
    before = len([url for url in browser.requests if "/api/predict" in url])
    page.click("#clear")
    draw_with_mouse(page, SEVEN)
    assert page.locator("#status").inner_text().startswith("It is a 7")
    assert len([url for url in browser.requests if "/api/predict" in url]) > before
    assert page.locator("#api-note").is_visible()


def test_the_app_serves_the_runtime_and_the_model_the_page_needs(live_server):
    model = httpx.get(f"{live_server}/models/mnist_cnn.onnx")
    assert model.content == mnist_digits.DEFAULT_MODEL.read_bytes()
    assert httpx.get(f"{live_server}/models/mnist_cnn.json").json()["rule"] == mnist_digits.load_metadata()["rule"]
    assert httpx.get(f"{live_server}/models/mnist_cnn.keras").status_code == 404
    assert httpx.get(f"{live_server}/static/ort/ort.all.min.js").json()["error"].startswith("ort.all.min.js")
    require_runtime()
    for name in static_site.RUNTIME_FILES:
        response = httpx.get(f"{live_server}/static/ort/{name}")
        assert response.status_code == 200 and response.content == (static_site.RUNTIME_DIR / name).read_bytes()
