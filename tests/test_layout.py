"""Layout a demo can rely on, at a laptop's 1440x900 and a projector's 1280x800.

Unit tests: box captions never cover each other, however crowded the photo (the rest go to a legend).
Browser tests (``streamlit run`` in Debian's Chromium): every page at both sizes, screenshots kept in the
test's folder, and the DOM checked for what a demo stumbled on: topic lines cut mid-word, detector
results too small to read, scores without a word on what they mean, the canvas toolbar over its
instructions.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from browser_tools import CHROMIUM, CHROMIUM_ARGS, streamlit_server
from conftest import require_real
from vision_backend import drawing
from vision_backend.detections import Detections


# ---- captions that never cover each other --------------------------------------------------------
def crowded_scene(count: int = 40, seed: int = 3) -> tuple[np.ndarray, Detections]:
    """A street of ``count`` overlapping boxes of four classes on a 640x480 photo."""
    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, [560, 400], (count, 2))
    boxes = np.c_[corners, np.minimum(corners + rng.uniform(20, 120, (count, 2)), [640, 480])]
    found = Detections(boxes, rng.uniform(0.3, 1.0, count), rng.integers(0, 4, count),
                       ("person", "bicycle", "car", "dog"))
    return np.full((480, 640, 3), 200, np.uint8), found


def intersecting(rects: list) -> list[tuple]:
    placed = [r for r in rects if r is not None]
    return [(a, b) for a, b in itertools.combinations(placed, 2) if a[0] < b[2] and b[0] < a[2] and a[1] < b[3]
            and b[1] < a[3]]


@pytest.mark.parametrize("count", [3, 12, 40])
def test_no_two_captions_intersect_on_a_crowded_scene(count: int) -> None:
    image, found = crowded_scene(count)
    texts = drawing.caption_texts(found, show_scores=True, show_labels=True)
    layout = drawing.caption_layout(image, found, texts, legend=True)
    assert intersecting(layout.rects) == []
    height, width = image.shape[:2]
    assert all(0 <= r[0] and r[2] <= width and 0 <= r[1] and r[3] <= height for r in layout.rects if r), "inside"
    in_legend = {i for i, _ in layout.legend}
    for i, text in enumerate(texts):  # every caption is on the photo or in the legend, none lost
        assert (layout.texts[i] == text) != (i in in_legend)
    numbers = [line.split()[0] for _, line in layout.legend]
    assert numbers == [str(k) for k in range(1, len(numbers) + 1)]
    if count == 3:
        assert layout.legend == [] and all(layout.rects), "a few boxes: every caption at its box"
    if count == 40:
        assert layout.legend, "a crowd leaves some captions to the legend"
        surest = int(np.argmax(found.scores))
        assert surest not in in_legend, "the surest box gets its caption first"


def test_the_legend_is_a_strip_under_the_photo_and_video_frames_keep_their_size() -> None:
    image, found = crowded_scene(40)
    with_legend = drawing.draw_detections(image, found, show_labels=True, legend=True)
    assert with_legend.shape[0] > image.shape[0] and with_legend.shape[1:] == image.shape[1:]
    assert (with_legend[image.shape[0]:] == 255).mean() > 0.5, "a white strip with lines on it"
    frame = drawing.draw_detections(image, found, show_labels=True)
    assert frame.shape == image.shape
    few = found[np.arange(3)]
    assert drawing.draw_detections(image, few, show_labels=True, legend=True).shape == image.shape


def test_captions_sit_above_their_box_when_there_is_room() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    found = Detections(np.array([[100, 100, 200, 200], [100, 0, 200, 60]]), np.array([0.9, 0.8]), np.zeros(2))
    layout = drawing.caption_layout(image, found, drawing.caption_texts(found))
    above, top = layout.rects
    assert above[3] <= 100 and above[0] == 100, "above the box, at its left edge"
    assert top[1] >= 0 and intersecting(layout.rects) == []


@pytest.mark.slow
def test_every_number_on_a_box_says_what_it_means() -> None:
    """Face detection: votes for Viola-Jones, a 0-1 score for the rest; object detection: the class's
    confidence; recognition: the distance to the nearest enrolled face."""
    require_real("photos")
    from test_pages import start

    app = start("pages/face_detection.py")
    captions = [c.value for c in app.caption]
    assert any(c.startswith("Viola-Jones (Haar cascade): ") and "(box label: votes, how many overlapping windows "
               "voted" in c for c in captions), captions
    assert any(c.startswith("YuNet (CNN): ") and "(box label: score, its own confidence, 0 to 1)" in c for c in captions)
    app.switch_page("pages/object_detection.py").run()
    assert any("Box label: the class and the model's confidence, 0 to 1" in c.value for c in app.caption)
    app.switch_page("pages/face_recognition.py").run()
    assert any("Box label: the person and the distance" in c.value for c in app.caption)
    assert not app.exception


# ---- the pages in Chromium ------------------------------------------------------------------------
SIZES = [(1280, 800), (1440, 900)]
ERRORS = ("Something went wrong", "Traceback")
CUT_TEXT = """root => Array.from(root.querySelectorAll('*')).filter(e => {
    const style = getComputedStyle(e);
    const clips = style.textOverflow === 'ellipsis' || style.overflow === 'hidden' || style.overflowX === 'hidden';
    return clips && e.innerText && e.innerText.trim() && e.scrollWidth > e.clientWidth + 1;
}).map(e => e.innerText.trim().slice(0, 80))"""
"""Texts in ``root`` that do not fit their box and are clipped (cut mid-word or ended with an ellipsis)."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with streamlit_server(tmp_path_factory.mktemp("layout_home"), tmp_path_factory.mktemp("logs")) as running:
        yield running.url


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("VISION_REQUIRE_WEIGHTS") == "1":
            pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_app(browser, url: str, size: tuple[int, int]):
    tab = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    tab.set_default_timeout(180_000)
    tab.goto(url)
    settled(tab)
    return tab


def settled(tab) -> None:
    """The script run is over and every image on the page has loaded."""
    tab.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
    tab.wait_for_function("Array.from(document.images).every(i => i.complete)")


def go_to(tab, link: str) -> None:
    tab.get_by_test_id("stSidebar").get_by_role("link", name=link, exact=True).click()
    tab.get_by_role("heading", level=1).first.wait_for()
    tab.wait_for_timeout(300)  # the click's rerun starts
    settled(tab)


def slug(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_").lower()


def sidebar_links(tab) -> list[str]:
    names = [text.split("\n")[-1].strip() for text in tab.get_by_test_id("stSidebarNav").get_by_role("link")
             .all_inner_texts()]  # the text after the icon's
    return [n for n in names if n != "Live camera"]  # the camera page asks for a camera


def screenshots(tab, stem: Path, size: tuple[int, int]) -> None:
    """What the screen shows (``stem.png``), and the whole page at the same width (``stem_whole.png``):
    the page scrolls inside Streamlit's main block, which a full-page screenshot does not follow."""
    tab.screenshot(path=f"{stem}.png")
    height = tab.evaluate("Math.max(...Array.from(document.querySelectorAll('[data-testid=stMain], "
                          "[data-testid=stSidebar] > div')).map(e => e.scrollHeight))")
    tab.set_viewport_size({"width": size[0], "height": min(int(height) + 40, 12_000)})
    tab.wait_for_timeout(300)
    tab.screenshot(path=f"{stem}_whole.png")
    tab.set_viewport_size({"width": size[0], "height": size[1]})


def width_of(locator) -> float:
    return locator.bounding_box()["width"]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_page_fits_the_screen(browser, server, tmp_path: Path, size: tuple[int, int]) -> None:
    """Every page at the size of a projector and of a laptop: a screenshot each (kept in the test's folder
    for a person to look at), no error box, nothing wider than the window."""
    require_real("photos")
    tab = open_app(browser, server, size)
    problems = []
    for link in sidebar_links(tab):
        go_to(tab, link)
        screenshots(tab, tmp_path / f"{size[0]}x{size[1]}_{slug(link)}", size)
        errors = tab.get_by_test_id("stException").count() + sum(tab.get_by_text(t).count() for t in ERRORS)
        wide = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if errors or wide > 0:
            problems.append(f"{link}: {errors} error box(es), {wide} px wider than the window")
    tab.context.close()
    assert problems == [], problems


@pytest.mark.browser
@pytest.mark.slow
def test_home_topic_lines_are_not_cut_at_1280(browser, server, tmp_path: Path) -> None:
    tab = open_app(browser, server, (1280, 800))
    links = tab.get_by_test_id("stPageLink")  # the topic lines (the sidebar's links are another kind)
    links.nth(6).wait_for()  # a fresh session may still be drawing Home
    settled(tab)
    tab.screenshot(path=str(tmp_path / "home_1280.png"))
    cut = links.evaluate_all(f"links => links.flatMap(link => ({CUT_TEXT})(link))")
    tab.context.close()
    assert cut == [], "topic lines cut at 1280 px"


@pytest.mark.browser
@pytest.mark.slow
def test_face_detection_results_are_large_enough_to_read_at_1280(browser, server, tmp_path: Path) -> None:
    """Each detector's result at least 280 px wide, and the photo under them no larger than the main column's
    three quarters (before: four results of 193 px over a photo of 820)."""
    require_real("photos")
    tab = open_app(browser, server, (1280, 800))
    go_to(tab, "Face detection")
    screenshots(tab, tmp_path / "face_detection_1280", (1280, 800))
    panel = tab.get_by_role("tabpanel").first
    results = panel.get_by_test_id("stColumn").filter(has_text=re.compile(r"face\(s\) in \d+ ms"))
    assert results.count() == 4
    widths = [width_of(results.nth(i).get_by_test_id("stImage").locator("img").first) for i in range(4)]
    main = width_of(panel)
    below = panel.get_by_test_id("stImage").locator("img").nth(4)
    assert min(widths) >= 280, widths
    assert width_of(below) <= 0.8 * main, (width_of(below), main)
    tab.context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_the_canvas_toolbar_leaves_its_instructions_visible(browser, server, tmp_path: Path) -> None:
    """Train a tiny network on the real digits, then hover the canvas: Streamlit's element toolbar appears
    above it, and must not cover the line that says what to do."""
    require_real("mnist_t10k")
    tab = open_app(browser, server, (1280, 800))
    go_to(tab, "Train a CNN")
    tab.get_by_test_id("stSelectbox").filter(has_text="Data set").click()
    tab.get_by_role("option", name=re.compile("MNIST test digits")).click()
    tab.get_by_text("8,000 training and 2,000 test images").wait_for()
    settled(tab)
    for slider in ("Epochs", "Training images"):  # the smallest: a network in a few seconds
        tab.get_by_test_id("stSlider").filter(has_text=slider).get_by_role("slider").press("Home")
        settled(tab)
    tab.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
    tab.get_by_text("Done: test accuracy").wait_for()
    tab.get_by_role("tab", name="Try it: draw a digit").click()
    canvas = tab.locator("canvas").last
    canvas.wait_for()
    drawn = canvas.bounding_box()
    tab.mouse.move(drawn["x"] + 100, drawn["y"] + 100)
    toolbar = tab.locator(".dc-toolbar-card")  # the canvas's own toolbar (in its shadow DOM), shown on hover
    toolbar.wait_for()
    tab.wait_for_function("bar => getComputedStyle(bar.parentElement).opacity === '1'", arg=toolbar.element_handle())
    over = toolbar.bounding_box()
    over["top"] = over["y"]
    tab.screenshot(path=str(tmp_path / "canvas_hover_1280.png"))
    words = tab.get_by_text("Draw a digit (black on white)")
    text = words.bounding_box()
    assert text["y"] + text["height"] <= over["top"], (text, over)
    centre = words.evaluate("e => { const r = e.getBoundingClientRect(); "
                            "return e.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)); }")
    tab.context.close()
    assert centre, "the instructions are on top where they are"
