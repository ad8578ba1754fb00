"""The app's page in a real browser: draw digits with the mouse, read the prediction and the bars, clear, undo,
upload a file, see the refusal of a blank canvas, use it by keyboard and at phone width, and take the README's
screenshot. The page runs the model in the browser when onnxruntime-web is installed (`npm ci`), and asks the app's
API otherwise; tests/test_site.py checks both ways and the static site.

Chromium comes from Debian's packages (`.ci/run` installs it) and is driven by Playwright through
`executable_path`, since `playwright install` cannot download here. Set WEB_APP_SCREENSHOT to a path to keep the
screenshots (figures/web_app.png for the README, with web_app_letter.png written beside it); without it, the first
goes to a temporary folder and the second is not taken.
"""
import math
import os
from pathlib import Path

import pytest
from conftest import CHROMIUM, CHROMIUM_ARGS, LETTERS, dark_on_light, polyline, require_chromium
from conftest import draw_with_mouse as draw

playwright = pytest.importorskip("playwright.sync_api")
require_chromium()


ZERO = [[(140 + 55 * math.sin(2 * math.pi * t / 40), 140 - 85 * math.cos(2 * math.pi * t / 40)) for t in range(41)]]
DIGITS = {
    1: [polyline([(150, 45), (140, 235)])],
    0: ZERO,
    7: [polyline([(75, 60), (205, 60), (115, 240)])],
    4: [polyline([(110, 40), (75, 160), (210, 160)]), polyline([(170, 70), (165, 245)])],
}


@pytest.fixture(scope="module")
def open_page(live_server, tmp_path_factory):
    """Opens the app in a new Chromium, each with a fresh user-data folder; closes them all at the end."""
    contexts = []
    with playwright.sync_playwright() as p:
        def opener(**options):
            context = p.chromium.launch_persistent_context(
                str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
                args=CHROMIUM_ARGS, **options)
            contexts.append(context)
            page = context.new_page()
            page.goto(live_server)
            return page

        yield opener
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def browser_page(open_page):
    return open_page(viewport={"width": 1000, "height": 760})


def shown_prediction(page):
    """The digit on the page and the ten bars' percentages once the answer has arrived."""
    page.wait_for_function("document.getElementById('digit').textContent !== '?'")
    percentages = [float(t.rstrip("%")) for t in page.locator("#bars .pct").all_inner_texts()]
    widths = page.eval_on_selector_all(  # as drawn: the bar's rendered width as a percentage of its track
        "#bars .fill", "bars => bars.map(b => 100 * b.getBoundingClientRect().width / b.parentElement.clientWidth)")
    top = page.eval_on_selector_all("#bars li", "items => items.findIndex(i => i.classList.contains('top'))")
    return page.locator("#digit").inner_text(), percentages, widths, top


@pytest.mark.parametrize("digit", list(DIGITS))
def test_drawn_digit_is_recognised_with_its_bars(browser_page, digit):
    page = browser_page
    page.click("#clear")
    draw(page, DIGITS[digit])
    shown, percentages, widths, top = shown_prediction(page)
    assert shown.rstrip("?") == str(digit), page.locator("#status").inner_text()  # "7?" when the model is unsure
    assert len(percentages) == 10 and abs(sum(percentages) - 100) < 0.6
    assert max(percentages) == percentages[digit] and top == digit
    assert widths == pytest.approx(percentages, abs=0.5)
    assert "It is a" in page.locator("#status").inner_text() or "Not sure" in page.locator("#status").inner_text()
    preview = page.evaluate("""() => {
        const pixels = document.getElementById('preview').getContext('2d').getImageData(0, 0, 28, 28).data;
        let ink = 0;
        for (let i = 0; i < pixels.length; i += 4) ink += pixels[i] > 128;
        return ink; }""")
    assert preview > 20, "the 28 x 28 preview of what the model sees is empty"


# Styles MNIST's American writers rarely used (issue 22)
CROSSED_SEVEN = [polyline([(75, 60), (205, 60), (115, 240)]), polyline([(115, 150), (200, 150)])]
CONTINENTAL_ONE = [polyline([(95, 110), (165, 40), (160, 245)])]  # a flag a third of its height, no foot
# A heart drawn as one smooth curve (the classic parametric heart), not a training skeleton
HEART = [[(140 + 6 * 16 * math.sin(t) ** 3,
           130 - 6 * (13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)))
          for t in (2 * math.pi * step / 60 for step in range(61))]]


def test_crossed_seven_is_answered_with_confidence(browser_page):
    page = browser_page
    page.click("#clear")
    draw(page, CROSSED_SEVEN)
    shown = shown_prediction(page)[0]
    status = page.locator("#status").inner_text()
    assert shown == "7" and status.startswith("It is a 7"), status


def test_continental_one_is_read_as_a_one(browser_page):
    """The long up-stroke must not turn the 1 into a 7: 1 is the answer, or the first of two when unsure."""
    page = browser_page
    page.click("#clear")
    draw(page, CONTINENTAL_ONE)
    shown, percentages, _, _ = shown_prediction(page)
    status = page.locator("#status").inner_text()
    assert shown.rstrip("?") == "1" and max(percentages) == percentages[1], status


def test_drawn_heart_gets_no_confident_digit(browser_page):
    page = browser_page
    page.click("#clear")
    draw(page, HEART)
    status = page.locator("#status").inner_text()
    assert page.locator("#digit").get_attribute("class") in ("unsure", "not_a_digit"), status
    assert not status.startswith("It is a"), status
    page.click("#clear")


@pytest.mark.parametrize("letter", ["A", "X"])
def test_drawn_letter_gets_no_confident_digit(browser_page, letter):
    """Drawn stroke by stroke with the mouse: the page must not answer a letter with a confident digit."""
    page = browser_page
    page.click("#clear")
    draw(page, [polyline(stroke) for stroke in LETTERS[letter]])
    status = page.locator("#status").inner_text()
    verdict = page.locator("#digit").get_attribute("class")
    assert verdict in ("unsure", "not_a_digit") and not status.startswith("It is a"), f"{letter}: {status}"
    assert status == "This does not look like a digit." if verdict == "not_a_digit" else status.startswith("Not sure")
    assert "dimmed" in page.locator("#bars").get_attribute("class"), "the bars are not dimmed"
    if letter == "A" and os.environ.get("WEB_APP_SCREENSHOT"):  # the README's second screenshot, beside the first
        page.screenshot(path=str(Path(os.environ["WEB_APP_SCREENSHOT"]).with_name("web_app_letter.png")),
                        full_page=True)
    page.click("#clear")
    assert "dimmed" not in (page.locator("#bars").get_attribute("class") or "")


def test_clear_and_undo(browser_page):
    page = browser_page
    page.click("#clear")
    draw(page, DIGITS[4])
    page.wait_for_function("document.getElementById('digit').textContent.startsWith('4')")
    page.click("#undo")  # only the first stroke of the 4 is left
    page.wait_for_function("!document.getElementById('digit').textContent.startsWith('4')")
    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"
    assert page.locator("#status").inner_text() == "Draw a digit to start."
    assert page.locator("#bars .pct").all_inner_texts() == ["–"] * 10


def test_blank_canvas_is_refused_with_the_reason_on_the_page(browser_page):
    page = browser_page
    page.click("#clear")
    page.click("#predict")
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert "no ink found" in error.inner_text() and page.locator("#digit").inner_text() == "?"


def test_uploaded_file_goes_through_the_same_path(browser_page, mnist, tmp_path):
    (_, _), (x_test, y_test) = mnist
    path = Path(tmp_path) / "digit.png"
    dark_on_light(x_test[1], 150).save(path)  # test digit 1 is a 2
    page = browser_page
    page.click("#clear")
    page.set_input_files("#file", str(path))
    shown, *_ = shown_prediction(page)
    assert shown.rstrip("?") == str(y_test[1]) and page.locator("#error").is_hidden()


def test_usable_by_keyboard(browser_page):
    page = browser_page
    page.click("#clear")
    draw(page, DIGITS[7])
    page.wait_for_function("document.getElementById('digit').textContent.startsWith('7')")
    page.focus("#predict")
    reached = set()
    for _ in range(6):
        reached.add(page.evaluate("document.activeElement.id"))
        page.keyboard.press("Tab")
    assert {"predict", "undo", "clear", "file"} <= reached
    page.focus("#clear")
    page.keyboard.press("Enter")
    assert page.locator("#digit").inner_text() == "?"


def test_phone_width(open_page):
    page = open_page(viewport={"width": 380, "height": 800}, has_touch=True, is_mobile=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    assert page.locator("#canvas").bounding_box()["width"] <= 380
    draw(page, DIGITS[1])
    assert shown_prediction(page)[0].rstrip("?") == "1"


def test_screenshot_of_a_drawn_seven(open_page, tmp_path):
    page = open_page(viewport={"width": 960, "height": 640})
    draw(page, DIGITS[7])
    assert shown_prediction(page)[0].rstrip("?") == "7"
    screenshot = Path(os.environ.get("WEB_APP_SCREENSHOT") or tmp_path / "web_app.png")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
