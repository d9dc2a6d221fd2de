"""Every page renders under Streamlit's AppTest; the shared photo picker handles bad files."""

from __future__ import annotations

from typing import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, require_real
from test_intake import BAD_FILES, JPEG

TIMEOUT = 180  # TensorFlow imports slowly on two cores

PAGES = {
    "pages/home.py": "Vision Lab",
    "pages/models.py": "Models and data",
    "pages/cnn_basics.py": "CNN basics",
    "pages/train_cnn.py": "Train a CNN",
    "pages/pretrained.py": "Pretrained CNNs",
    "pages/transfer_learning.py": "Transfer learning",
    "pages/face_detection.py": "Face detection",
    "pages/face_recognition.py": "Face recognition",
    "pages/object_detection.py": "Object detection",
    "pages/own_objects.py": "Your own objects",
    "pages/video.py": "Video",
    "pages/api_keys.py": "API keys",
}


def start(page: str | None = None) -> AppTest:
    """The whole app (navigation + sidebar), optionally switched to ``page``."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    if page:
        app.switch_page(page).run()
        assert not app.exception, app.exception
    return app


def open_tab(app: AppTest, label: str) -> AppTest:
    """Open the page's tab called ``label`` (tabs are lazy: only the open one runs) and rerun."""
    from pages._shared import tab_key

    labels = [tab.label for tab in app.tabs]
    for start_at in range(len(labels)):  # the run of tab labels that one ``tabbed`` drew holds its key
        for end in range(start_at + 1, len(labels) + 1):
            if label in labels[start_at:end] and tab_key(labels[start_at:end]) in app.session_state:
                app.session_state[tab_key(labels[start_at:end])] = label
                return app.run()
    raise AssertionError(f"no tab {label!r} on this page: {labels}")


def every_tab(app: AppTest) -> Iterator[str]:
    """Open each of the page's lazy tabs (``tabbed``) in turn, yielding its label ("" for the page as it came up;
    tabs that are not lazy show at once and need no opening)."""
    yield ""
    from pages._shared import tab_key

    labels = [tab.label for tab in app.tabs]
    lazy = [labels[a:b] for a in range(len(labels)) for b in range(a + 1, len(labels) + 1)
            if tab_key(labels[a:b]) in app.session_state]
    for label in (lazy[0][1:] if lazy else []):
        open_tab(app, label)
        yield label


def plain(markdown: str) -> str:
    """Markdown a page escaped to show literally (``literal``), as the person reads it."""
    import re

    return re.sub(r"\\(.)", r"\1", markdown)


def text_of(app: AppTest) -> str:
    parts = [e.value for e in app.title] + [e.value for e in app.markdown] + [e.value for e in app.caption]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_exception(page: str) -> None:
    app = start(page)
    assert any(PAGES[page] in t.value for t in app.title), [t.value for t in app.title]
    assert not app.error, [e.value for e in app.error]


def test_home_shows_topics_and_the_model_status_table() -> None:
    app = start()
    table = app.dataframe[0].value
    from vision_backend import models

    assert set(table["title"]) == {c.title for c in models.cards()}
    assert "ready" in set(table["status"])
    missing = table[table["status"].str.startswith("missing")]
    assert (missing["get it with"].str.len() > 0).all()


def test_home_links_to_every_topic_in_the_navigation() -> None:
    """Each page of the navigation but Home and the two housekeeping pages is a topic on Home, with its icon."""
    import re

    navigation = set(re.findall(r'url_path="(\w+)"', (ROOT / "app.py").read_text())) - {"models", "api_keys"}
    links = {link.proto.page: link.proto for link in start().get("page_link")}
    assert navigation and navigation <= set(links), navigation - set(links)
    assert all(links[page].icon for page in navigation)


def test_sample_photo_flows_to_other_pages() -> None:
    require_real("photos")
    app = start()
    app.sidebar.selectbox(key="sample_name").set_value("group_3faces.jpg").run()
    app.switch_page("pages/face_detection.py")
    app.run()
    name, image = app.session_state.photo
    assert name == "group_3faces.jpg" and image.shape == (375, 500, 3)


@pytest.mark.parametrize("page", ["pages/home.py", "pages/face_detection.py", "pages/object_detection.py"])
def test_bad_upload_shows_a_message_and_keeps_the_photo(page: str) -> None:
    app = start(page)
    before, _ = app.session_state.photo
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="photo_upload").upload("holiday.jpg", BAD_FILES["truncated_half.jpg"], "image/jpeg")
    app.run()
    assert not app.exception
    messages = [plain(e.value) for e in app.sidebar.error]
    assert messages and "holiday.jpg" in messages[0] and "truncated or corrupt" in messages[0]
    assert app.session_state.photo[0] == before, "the previous photo is kept"
    notice = [plain(w.value) for w in app.main.warning if "could not be used" in w.value]
    assert notice and "holiday.jpg" in notice[0] and "still for the photo before" in notice[0], \
        "the page says its results are the previous photo's, not the refused one's"
    app.sidebar.radio(key="photo_source").set_value("Sample").run()
    assert not [w for w in app.main.warning if "could not be used" in w.value], "gone once another photo is picked"


@pytest.mark.slow
def test_good_upload_becomes_the_current_photo() -> None:
    app = start("pages/pretrained.py")
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="photo_upload").upload("mine.jpg", JPEG, "image/jpeg")
    app.run()
    assert not app.exception and not app.sidebar.error
    name, image = app.session_state.photo
    assert name == "mine.jpg" and image.shape == (48, 64, 3)


@pytest.mark.slow
def test_face_detection_page_on_a_group_photo() -> None:
    require_real("photos")
    app = start("pages/face_detection.py")
    app.sidebar.selectbox(key="sample_name").set_value("group_3faces.jpg").run()
    assert not app.exception, app.exception
    captions = [c.value for c in app.caption]
    for title in ("HOG + linear SVM (dlib): 3 face(s)", "MTCNN: 3 face(s)", "YuNet (CNN): 3 face(s)"):
        assert any(c.startswith(title) for c in captions), (title, captions)
    app.radio(key="fd_privacy").set_value("pixelate").run()
    assert not app.exception
    labels = [b.label for b in app.get("download_button")]
    assert {"Download image (PNG)", "Faces as ZIP", "Detections (JSON)"} <= set(labels)
    open_tab(app, "Measure on group photos")
    assert not app.exception, app.exception
    measured = app.dataframe[-1].value
    assert list(measured["found"]) and measured.set_index("detector").loc["MTCNN", "found"] == "17/17"
    app.toggle(key="fd_scaled").set_value(True).run()
    assert not app.exception, app.exception
    spread = app.dataframe[-1].value
    assert list(spread.index) == list(measured["detector"]), "one row per measured detector"
    assert spread.loc["MTCNN", "recall min"] == 1.0 and (spread["recall min"] <= spread["recall max"]).all()


@pytest.mark.slow
def test_face_detection_settings_change_the_result() -> None:
    require_real("photos")
    app = start("pages/face_detection.py")
    app.sidebar.selectbox(key="sample_name").set_value("group_7faces_elvis.jpg").run()
    def hog_count() -> int:
        caption = next(c.value for c in app.caption if c.value.startswith("HOG + linear SVM (dlib): "))
        return int(caption.split(": ")[1].split(" ")[0])

    assert hog_count() == 7
    app.slider(key="fd:dlib_hog:threshold").set_value(2.0).run()
    assert not app.exception
    assert 0 < hog_count() < 7, "a higher SVM threshold keeps only the surest faces"
    app.slider(key="fd:dlib_hog:threshold").set_value(3.5).run()
    assert hog_count() == 0


@pytest.mark.slow
def test_face_detection_thorough_viola_jones_setup() -> None:
    require_real("photos")
    app = start("pages/face_detection.py")
    app.sidebar.selectbox(key="sample_name").set_value("group_7faces_family.jpg").run()
    app.multiselect(key="fd_chosen").set_value(["viola_jones"]).run()

    def haar_count() -> int:
        caption = next(c.value for c in app.caption if c.value.startswith("Viola-Jones (Haar cascade): "))
        return int(caption.split(": ")[1].split(" ")[0])

    fast = haar_count()
    measured = open_tab(app, "Measure on group photos").dataframe[-1].value.set_index("detector")
    assert "Viola-Jones, thorough setup" in measured.index, "the trade-off is shown next to the fast setup"
    open_tab(app, "Detect").radio(key="fd:viola_jones:preset").set_value("Thorough").run()
    assert not app.exception, app.exception
    assert (app.slider(key="fd:viola_jones:scale_factor").value, app.slider(key="fd:viola_jones:min_neighbors").value) \
        == (1.1, 5)
    assert app.select_slider(key="fd:viola_jones:tilt").value == 12
    assert haar_count() == fast + 1, "the tilted head is found"
    measured = open_tab(app, "Measure on group photos").dataframe[-1].value.set_index("detector")
    assert "Viola-Jones, thorough setup" not in measured.index
    assert measured.loc["Viola-Jones (Haar cascade)", "found"] == "16/17"


@pytest.mark.slow
def test_settings_stay_put_across_page_switches() -> None:
    require_real("photos")
    app = start("pages/face_detection.py")
    app.radio(key="fd:viola_jones:preset").set_value("Thorough").run()
    app.slider(key="fd:yunet:score_threshold").set_value(0.5).run()
    app.multiselect(key="fd_chosen").set_value(["yunet", "viola_jones"]).run()
    app.switch_page("pages/home.py").run()
    app.switch_page("pages/object_detection.py").run()
    app.switch_page("pages/face_detection.py").run()
    assert not app.exception, app.exception
    assert app.radio(key="fd:viola_jones:preset").value == "Thorough"
    assert app.slider(key="fd:viola_jones:scale_factor").value == 1.1
    assert app.slider(key="fd:yunet:score_threshold").value == 0.5
    assert app.multiselect(key="fd_chosen").value == ["yunet", "viola_jones"]


def stray_strings(path) -> list[str]:
    """The text of every string that stands alone on a line of a page's module (bar its docstring): what
    Streamlit's "magic" would write to the page."""
    import ast

    tree = ast.parse(path.read_text())
    return [node.value.value.strip().splitlines()[0] for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            and node is not tree.body[0] and node.value.value.strip()]


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_text_no_widget_wrote(page: str) -> None:
    """Magic is off (.streamlit/config.toml): the strings documenting a page's constants and functions never show."""
    app = start(page)
    shown = "\n".join(m.value for m in app.markdown) + "\n".join(c.value for c in app.caption)
    strays = [s for s in stray_strings(ROOT / page) if len(s) > 20]
    assert [s for s in strays if s in shown] == [], "a docstring is shown in the page"
