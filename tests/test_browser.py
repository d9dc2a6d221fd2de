"""The whole app in a real browser: ``streamlit run`` on 127.0.0.1, driven by headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from browser_tools import chromium, eight_visitors, streamlit_server
from conftest import require_real
from test_intake import BAD_FILES

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]


def start_server(tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[str]:
    with streamlit_server(tmp_path_factory.mktemp("browser_home"), tmp_path_factory.mktemp("logs"), env) as server:
        yield server.url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_server(tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    tab.goto(server)
    tab.get_by_role("heading", name="Vision Lab").wait_for()
    yield tab
    context.close()


@pytest.mark.slow
def test_a_page_url_opened_first_on_a_fresh_server_has_the_whole_app(browser, tmp_path_factory) -> None:
    """Streamlit's folder mode must not take over the first request (no sidebar picker then)."""
    for url in start_server(tmp_path_factory):
        context = browser.new_context()
        tab = context.new_page()
        tab.set_default_timeout(90_000)
        tab.goto(url + "/face_detection")
        tab.get_by_role("heading", name="Face detection").wait_for()
        sidebar = tab.get_by_test_id("stSidebar")
        sidebar.get_by_text("Your photo").wait_for()
        assert sidebar.get_by_role("link", name="Object detection").count() == 1
        assert sidebar.get_by_role("link", name="shared").count() == 0
        context.close()


def choose_sample(tab, name: str) -> None:
    sidebar = tab.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").click()
    tab.get_by_role("option", name=name, exact=True).click()


@pytest.mark.slow
def test_home_then_another_page_with_a_sample_photo(page, tmp_path: Path) -> None:
    require_real("photos")
    sidebar = page.get_by_test_id("stSidebar")
    page.get_by_role("heading", name="Models and data").wait_for()
    titles = re.findall(r'st\.Page\([^\n]*? title="([^"]+)"', (ROOT / "app.py").read_text())
    assert len(titles) >= 13
    for title in titles:  # every topic in sight, none behind "View more"
        assert sidebar.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).is_visible(), title
    sidebar.get_by_role("link", name="Face detection").click()
    page.get_by_role("heading", name="Face detection").wait_for()
    assert "face_detection" in page.url
    choose_sample(page, "Three people at a party")
    caption = sidebar.get_by_text("Three people at a party · 500x375")
    caption.wait_for()
    image = sidebar.get_by_test_id("stImage").locator("img").first
    image.wait_for()
    width = image.evaluate("img => img.naturalWidth")
    assert width > 0, "the photo is really shown"
    page.screenshot(path=str(tmp_path / "face_detection.png"))


@pytest.mark.slow
def test_corrupt_upload_shows_a_clear_message(page) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("link", name="Object detection").click()
    page.get_by_role("heading", name="Object detection").wait_for()
    sidebar.get_by_text("Upload", exact=True).click()
    sidebar.locator("input[type=file]").set_input_files(
        files=[{"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": BAD_FILES["truncated_half.jpg"]}]
    )
    message = sidebar.get_by_text("could not be decoded")
    message.wait_for()
    assert "broken.jpg" in message.inner_text()
    assert page.get_by_text("Traceback").count() == 0


@pytest.mark.slow
def test_draw_a_digit_on_the_canvas_after_training(page) -> None:
    """The canvas component only exists under ``streamlit run``: train on real digits, draw a 1, read the answer."""
    require_real("mnist_t10k")
    page.get_by_test_id("stSidebar").get_by_role("link", name="Train a CNN").click()
    page.get_by_role("heading", name="Train a CNN").wait_for()
    # Let the first run finish before switching: on a cold machine it imports TensorFlow and reads
    # Fashion-MNIST, and a widget change queued behind that can take longer than any fixed wait.
    page.get_by_text("60,000 training and 10,000 test images").wait_for(timeout=300_000)
    page.get_by_test_id("stSelectbox").filter(has_text="Data set").click()
    page.get_by_role("option", name="MNIST test digits (8,000 + 2,000 real digits)").click()
    page.get_by_text("8,000 training and 2,000 test images").wait_for(timeout=180_000)
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
    page.get_by_text("Done: test accuracy").wait_for(timeout=180_000)
    page.get_by_role("tab", name="Try it: draw a digit").click()
    canvas = page.locator("canvas").last
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 150, box["y"] + 45)
    page.mouse.down()
    for y in range(45, 245, 8):
        page.mouse.move(box["x"] + 150 - (y - 45) // 14, box["y"] + y)
    page.mouse.up()
    answer = page.get_by_text("It says")
    answer.wait_for(timeout=60_000)
    assert answer.inner_text().startswith("It says 1")
    assert page.get_by_text("Traceback").count() == 0


@pytest.mark.slow
def test_eight_visitors_open_the_app_together_on_a_cold_server(tmp_path_factory) -> None:
    """A demo: a room of people opens the link at the same moment on a server that has just started.
    Each visitor is on a different page doing its main work; all eight finish, with the navigation
    and the photo picker, and without an error box (before: 4-5 of 8, TensorFlow's import raced)."""
    require_real("photos")
    for url in start_server(tmp_path_factory):
        results = eight_visitors(url, timeout_s=900)
        assert [why for _, ok, why in results if not ok] == [], results


@pytest.fixture(scope="module")
def labelling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server whose workspace holds a detection project with a class and one real photo, no box yet."""
    from vision_backend import samples
    from vision_backend.workspace import Workspace

    require_real("photos")
    home = tmp_path_factory.mktemp("labelling_home")
    project = Workspace.at(home).detection_project("Street")
    project.add_class("bicycle")
    project.add_photo((samples.photos_dir() / "dog_bicycle_truck.jpg").read_bytes(), "dog_bicycle_truck.jpg")
    with streamlit_server(home, tmp_path_factory.mktemp("logs")) as server:
        yield server.url, home


@pytest.mark.slow
def test_a_box_dragged_on_the_canvas_is_kept_with_its_class_in_the_photos_pixels(browser, labelling) -> None:
    """The canvas only exists under ``streamlit run``: drag a rectangle on your photo on the Your own objects page and
    the project holds the box, with the class picked, in the photo's own pixels."""
    import time

    from vision_backend.own_detection import canvas as boxes_canvas
    from vision_backend.workspace import Workspace

    url, home = labelling
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    tab = context.new_page()
    tab.set_default_timeout(90_000)
    tab.goto(url + "/own_objects")
    tab.get_by_role("heading", name="Your own objects").wait_for()
    tab.get_by_text("Class of the boxes you draw").wait_for()
    drawn = tab.locator("canvas").last
    drawn.wait_for(timeout=60_000)
    drawn.scroll_into_view_if_needed()
    box = drawn.bounding_box()
    tab.mouse.move(box["x"] + 100, box["y"] + 80)
    tab.mouse.down()
    for step in range(1, 11):
        tab.mouse.move(box["x"] + 100 + 20 * step, box["y"] + 80 + 12 * step)
    tab.mouse.up()
    project = Workspace.at(home).detection_project("Street", create=False)
    photo = project.photos()[0]
    deadline = time.monotonic() + 60
    while not len(project.boxes(photo.id)[0]) and time.monotonic() < deadline:
        time.sleep(0.5)
    stored, labels = project.boxes(photo.id)
    scale = boxes_canvas.canvas_scale(photo.width, photo.height)
    assert labels == ("bicycle",), labels
    assert np.allclose(stored[0], np.array([100, 80, 300, 200]) / scale, atol=3 / scale), stored  # on-screen px
    tab.get_by_text("Boxes on this photo (1)").wait_for()
    assert tab.get_by_text("Traceback").count() == 0 and tab.get_by_text("Something went wrong").count() == 0
    context.close()
