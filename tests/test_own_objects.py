"""Your own objects, end to end: detection projects in a workspace (classes, photos upright, boxes to the pixel, the
names rule, crash safety, a hostile annotation set, VOC/COCO/YOLO round trips), the canvas's boxes, training on real
raccoon photos with AP above chance on photos held out, the page (AppTest), the command line, and the live camera's
list of models. The API's call is in ``test_api.py``, the browser's canvas in ``test_browser.py``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, require_real, require_shared
from test_own_detection_data import photo_bytes, voc_xml
from vision_backend import intake, live
from vision_backend.errors import InvalidName, NotFound
from vision_backend.own_detection import canvas, read_csv, write_voc, workflow
from vision_backend.own_detection import projects as detection
from vision_backend.own_detection.projects import Report
from vision_backend.workspace import Workspace

RACCOON = "data/detection/raccoon"


@pytest.fixture(scope="module")
def raccoons() -> tuple[list, list]:
    """The author's split: 160 training photos, 40 test photos, with their boxes."""
    folder = require_shared() / RACCOON
    return read_csv(folder / "train_labels.csv").photos, read_csv(folder / "test_labels.csv").photos


def add_all(project, photos) -> None:
    for photo in photos:
        project.add_photo(photo.data, photo.name, photo.boxes, photo.labels)


# ---- the store ----------------------------------------------------------------------------------------------
def test_classes_photos_and_boxes_are_kept_to_the_pixel_under_the_names_rule(tmp_path: Path) -> None:
    space = Workspace.at(tmp_path)
    project = space.detection_project("Mugs")
    for bad in ("a/b", "", ".hidden", "x\x00y", "../up"):
        with pytest.raises(InvalidName):
            project.add_class(bad)
    with pytest.raises(InvalidName):
        space.detection_project("../escape")
    report = Report()
    photo = project.add_photo(photo_bytes(200, 100), "desk.jpg", [[10, 10, 60, 50], [150, 20, 260, 90],
                                                                  [30, 30, 30, 80], [5, 5, 9, 9]],
                              ["mug", "cup", "mug", "a/b"], report)
    boxes, labels = project.boxes(photo)
    assert labels == ("mug", "cup") and boxes.tolist() == [[10, 10, 60, 50], [150, 20, 200, 90]]
    assert "clipped to (150, 20, 200, 90)" in report.notes[0]
    assert any("has no area" in line for line in report.skipped) and any("slash" in line for line in report.skipped)
    assert project.add_photo(photo_bytes(200, 100), "again.jpg") == photo and len(project.photos()) == 1
    project.set_boxes(photo, [[12.5, 10.25, 61, 50]], ["mug"])  # a box moved on the canvas, the other deleted
    again = Workspace.at(tmp_path).detection_project("Mugs", create=False)
    assert again.boxes(photo)[0].tolist() == [[12.5, 10.25, 61.0, 50.0]]
    assert again.counts() == {"cup": 0, "mug": 1} and space.detection_projects() == ["Mugs"]
    again.delete_class("mug")
    assert again.boxes(photo)[1] == () and len(again.photos()) == 1, "a class's boxes go with it, the photo stays"
    again.delete_photo(photo)
    assert again.photos() == [] and again.blobs.keys() == set()
    with pytest.raises(NotFound):
        space.detection_project("Nope", create=False)


def test_a_photo_turned_by_exif_is_stored_upright_and_a_jpg_that_is_a_png_is_read(tmp_path: Path) -> None:
    project = Workspace.at(tmp_path).detection_project("Turned")
    tagged = photo_bytes(120, 80, orientation=6, block=(10, 20, 40, 30))  # stored 120x80, shown 80x120
    report = Report()
    photo = project.add_photo(tagged, "phone.jpg", [[50, 10, 60, 40]], ["block"], report)
    stored = project.photo(photo)
    assert (stored.width, stored.height) == (80, 120) and "stored turned upright" in report.notes[0]
    with Image.open(io.BytesIO(project.photo_bytes(photo))) as image:
        assert image.size == (80, 120) and image.getexif().get(0x0112, 1) == 1, "no tag: every tool sees it upright"
    assert np.abs(project.image(photo).astype(int) - intake.read_image(tagged).astype(int)).mean() < 3
    png = project.add_photo(photo_bytes(64, 48, "PNG"), "really_a.jpg")
    assert project.image(png).shape == (48, 64, 3)
    assert project.add_photo(b"\xff\xd8\xff broken", "broken.jpg", report=report) is None
    assert "broken.jpg" in report.skipped[-1]


def test_a_failed_write_is_rolled_back_and_an_orphan_photo_is_swept(tmp_path: Path, monkeypatch) -> None:
    project = Workspace.at(tmp_path).detection_project("Crash")
    project.blobs.put(b"a photo whose row never came")  # what a writer killed between the blob and its row leaves

    def broken(*args):
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(detection, "_insert_boxes", broken)
    with pytest.raises(RuntimeError):
        project.add_photo(photo_bytes(64, 64), "half.jpg", [[1, 1, 30, 30]], ["a"])
    monkeypatch.undo()
    again = Workspace.at(tmp_path).detection_project("Crash", create=False)
    assert again.photos() == [] and again.blobs.keys() == set(), "the photo's row went with its boxes' failure"


KILLED_IMPORT = """
import sys
from vision_backend.workspace import Workspace
project = Workspace.at(sys.argv[1]).detection_project("Raccoons")
project.import_set(sys.argv[2], lambda done, total: print(done, flush=True))
"""


@pytest.mark.slow
def test_an_import_killed_half_way_keeps_whole_batches_and_no_orphan(tmp_path: Path) -> None:
    """kill -9 during the raccoon set's import: every photo kept has its blob and its boxes, and nothing else is."""
    folder = require_shared() / RACCOON
    process = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, str(tmp_path), str(folder)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert int(process.stdout.readline()) == detection.IMPORT_BATCH, "the first batch is in"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    project = Workspace.at(tmp_path).detection_project("Raccoons", create=False)
    photos = project.photos()
    assert len(photos) % detection.IMPORT_BATCH in (0, 196 % detection.IMPORT_BATCH) and photos
    assert project.blobs.keys() == {p.digest for p in photos}, "no orphan blob, no row without its photo"
    assert all(p.boxes >= 1 for p in photos), "every photo kept has its boxes"


def hostile_set(folder: Path) -> bytes:
    """A VOC set of three classes with what real ones hold: a 0x0 size, a wrong size, a box outside, a box of no
    area, a class with one box, an XML naming a photo that is not there, a .jpg that is a PNG, a transparent PNG,
    a phone's EXIF-turned photo. Returned as a ZIP."""
    files = {"good.jpg": photo_bytes(200, 100), "zero.jpg": photo_bytes(160, 120), "outside.jpg": photo_bytes(200, 100, block=(0, 0, 9, 9)),
             "png.jpg": photo_bytes(100, 80, "PNG"), "turned.jpg": photo_bytes(120, 80, orientation=6),
             "lonely.jpg": photo_bytes(90, 90), "clear.png": photo_bytes(70, 50, "PNG", mode="RGBA")}
    xmls = {"good": voc_xml("good.jpg", (200, 100), [("mug", 10, 10, 60, 50), ("mug", 100, 10, 150, 60)]),
            "zero": voc_xml("zero.jpg", (0, 0), [("mug", 20, 20, 80, 70)]),
            "outside": voc_xml("outside.jpg", (200, 100), [("mug", -20, 10, 250, 60), ("mug", 30, 30, 30, 90)]),
            "png": voc_xml("png.jpg", (100, 80), [("mug", 5, 5, 50, 40)]),
            "turned": voc_xml("turned.jpg", (80, 120), [("mug", 10, 60, 50, 110)]),
            "lonely": voc_xml("lonely.jpg", (90, 90), [("kite", 10, 10, 40, 40)]),
            "clear": voc_xml("clear.png", (700, 500), [("cup", 5, 5, 25, 25)]),
            "ghost": voc_xml("ghost.jpg", (100, 100), [("mug", 1, 1, 50, 50)])}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"images/{name}", data)
        for name, text in xmls.items():
            archive.writestr(f"annotations/{name}.xml", text)
    return buffer.getvalue()


def test_a_hostile_annotation_set_gives_a_reason_for_each_problem_and_keeps_the_rest(tmp_path: Path) -> None:
    project = Workspace.at(tmp_path).detection_project("Hostile")
    report = project.import_set(hostile_set(tmp_path))
    said = "\n".join(report.skipped + report.notes)
    assert "ghost.jpg" in said and "not in the set" in said
    assert "has no area" in said and "clipped to (0, 10, 200, 60)" in said
    assert "declares the size 0x0" in said and "is a PNG file named .jpg" in said and "EXIF orientation" in said
    assert "class “kite”" in said and "has 1 box" in said and "class “cup”" in said
    assert "has transparency" in said and "declares the size 700x500 but the photo is 70x50" in said
    assert report.photos == 7 and report.boxes == 8 and project.counts() == {"cup": 1, "kite": 1, "mug": 6}
    turned = next(p for p in project.photos() if p.name == "turned.jpg")
    assert (turned.width, turned.height) == (80, 120) and project.boxes(turned.id)[0].tolist() == [[10, 60, 50, 110]]


def test_voc_coco_yolo_round_trip_through_projects_gives_back_every_box_to_the_pixel(tmp_path: Path, raccoons) -> None:
    space = Workspace.at(tmp_path)
    first = space.detection_project("First")
    add_all(first, raccoons[1])
    first.set_boxes(first.photos()[0].id, [[10.25, 20.5, 100.75, 90]], ["raccoon"])  # a box drawn on the canvas
    current = first
    for fmt in ("voc", "coco", "yolo"):
        following = space.detection_project(f"after {fmt}")
        report = following.import_set(current.export(fmt))
        assert report.skipped == [] and report.photos == len(first.photos()), (fmt, report.skipped)
        current = following
    expected = {p.name: p for p in first.labelled()}
    for photo in current.labelled():
        original = expected[photo.name]
        assert photo.labels == original.labels and photo.data == original.data
        # VOC keeps whole pixels, COCO thousandths, YOLO six decimals of the photo's side: to the pixel, each way
        assert np.abs(photo.boxes - np.rint(original.boxes)).max() < 0.01, photo.name
    assert sum(len(p.boxes) for p in current.labelled()) == sum(len(p.boxes) for p in first.labelled()) == 44


def test_the_canvas_gives_boxes_in_the_photos_pixels() -> None:
    """Fabric.js objects in canvas pixels (the photo shown at half its size): a box moved with its origin in its
    centre, one resized (scaleX), a click and a freehand path left out; the stored boxes start the canvas."""
    boxes = np.array([[10.0, 20.0, 110.0, 70.0], [0.0, 0.0, 40.0, 30.0]])
    drawing = canvas.to_canvas(boxes, ["mug", "cup"], 0.5, {"mug": "#ff0000"})
    assert drawing["objects"][0]["stroke"] == "#ff0000" and drawing["objects"][0]["width"] == 50
    back, labels = canvas.from_canvas(drawing, 0.5)
    assert labels == ("mug", "cup") and np.allclose(back, boxes)
    moved = {**drawing["objects"][0], "originX": "center", "originY": "center", "left": 40, "top": 30}
    resized = {**drawing["objects"][1], "scaleX": 2.0}
    click = {**drawing["objects"][1], "width": 1, "height": 1}
    found, labels = canvas.from_canvas({"objects": [moved, resized, click, {"type": "path"}]}, 0.5)
    assert labels == ("mug", "cup") and found.tolist() == [[30, 35, 130, 85], [0, 0, 80, 30]]
    assert canvas.same_boxes((found, labels), (found + 0.01, labels)) and not canvas.same_boxes((found, labels),
                                                                                               (found + 1, labels))
    assert canvas.canvas_scale(4000, 3000) == pytest.approx(0.1867, abs=1e-3) and canvas.canvas_scale(100, 80) == 2.0


# ---- training on real raccoon photos, and where the detector is used -------------------------------------------
QUICK_FAST = {"epochs": 8, "input_size": 224, "crops": 0}
"""A fast detector in seconds (the benchmark's settings train for longer and reach AP50 0.85 on the 40 test photos)."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, raccoons):
    """A workspace whose project "Raccoons" holds 40 real photos and a fast detector trained on 30 of them."""
    require_real("mobilenet_v2_notop")
    home = tmp_path_factory.mktemp("own_objects_home")
    project = Workspace.at(home).detection_project("Raccoons")
    add_all(project, raccoons[0][:40])
    stages: list[str] = []
    done = workflow.train_project(project, "fast", QUICK_FAST, 0.25, progress=lambda stage, *_: stages.append(stage))
    return home, project, done, stages


@pytest.mark.slow
def test_a_fast_detector_trained_on_30_raccoon_photos_finds_them_on_the_10_held_out(trained) -> None:
    home, project, done, stages = trained
    assert list(dict.fromkeys(stages)) == ["features", "training", "evaluation"]
    meta = done.saved.meta
    assert meta["kind"] == "fast" and meta["classes"] == ["raccoon"] and meta["photos"] == 30
    assert meta["tested_photos"] == 10 and len(meta["held_out"]) == 10 and not done.stopped
    assert meta["ap50"] >= 0.4, meta["ap50"]  # chance (boxes anywhere) is near 0
    held = workflow.held_out_photos(project, done.saved)
    assert {p.digest for p in held} == set(meta["held_out"])
    measured = workflow.measure(project.detector(), project.labelled(held), ["raccoon"])
    assert measured.evaluation.map50 == pytest.approx(meta["ap50"], abs=1e-4), "the same detector, the same AP"
    summary = workflow.summary(measured.evaluation)
    assert set(summary) >= {"ap50", "ap", "per_class"} and summary["per_class"]["raccoon"]["boxes"] >= 10


@pytest.mark.slow
def test_training_stopped_keeps_the_head_trained_so_far(tmp_path: Path, raccoons) -> None:
    require_real("mobilenet_v2_notop")
    project = Workspace.at(tmp_path).detection_project("Stopped")
    add_all(project, raccoons[0][:12])
    steps = []
    done = workflow.train_project(project, "fast", {**QUICK_FAST, "epochs": 50}, 0.25,
                                  progress=lambda stage, done, total: steps.append(stage),
                                  should_stop=lambda: steps.count("training") >= 3)
    assert done.stopped and done.saved.meta["stopped"] and done.saved.meta["epochs_done"] < 50
    assert project.newest_detector().stem == done.saved.stem, "what was trained is kept with the project"


@pytest.mark.slow
def test_the_live_camera_offers_your_fast_detectors_and_runs_one_on_a_frame(trained, raccoons) -> None:
    home, project, done, _ = trained
    space = Workspace.at(home)
    offered = live.object_detectors(space)
    name = f"Raccoons/{done.saved.stem}"
    assert name in offered and set(live.object_detectors()) < set(offered), "the registry's, then yours"
    assert space.own_detectors("rcnn") == {}, "R-CNN is too slow for a stream and is not offered"
    frame = intake.read_image(raccoons[1][0].data)
    seen = live.FrameProcessor(live.ObjectTask(offered[name], {"score_threshold": 0.3})).submit(frame)
    assert seen is not None and "raccoon" in seen.labels and seen.image.shape == frame.shape


@pytest.mark.slow
def test_the_command_line_imports_trains_evaluates_and_detects(tmp_path: Path, raccoons, capsys) -> None:
    """detector import (a reason per file skipped), train (progress, AP), evaluate (metrics.json), objects --project."""
    from vision_backend.__main__ import main

    require_real("mobilenet_v2_notop")
    home, sets = tmp_path / "home", tmp_path / "sets"
    (sets / "train").mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(write_voc(raccoons[0][:24]))) as archive:
        archive.extractall(sets / "train")
    (sets / "train" / "annotations" / "broken.xml").write_text("<annotation><filename>raccoon-1.jpg</filename>")
    assert main(["detector", "import", str(sets / "train"), "--project", "Raccoons", "--home", str(home)]) == 0
    said = capsys.readouterr().out
    assert "skipped: annotations/broken.xml: is not well-formed XML" in said and "Added 24 photos and" in said
    assert main(["detector", "train", "--project", "Raccoons", "--kind", "fast", "--home", str(home), "--quiet",
                 *[f"--set={k}={v}" for k, v in QUICK_FAST.items()], "--held-out", "0.25"]) == 0
    assert "held-out photos; kept as Raccoons/fast_" in capsys.readouterr().out
    (sets / "test.zip").write_bytes(write_voc(raccoons[1][:10]))
    metrics = tmp_path / "metrics.json"
    assert main(["detector", "evaluate", "--project", "Raccoons", "--on", str(sets / "test.zip"), "--out",
                 str(metrics), "--home", str(home), "--quiet"]) == 0
    found = json.loads(metrics.read_text())
    assert set(found) >= {"ap50", "ap", "per_class"} and found["per_class"]["raccoon"]["boxes"] == 10
    assert 0.3 <= found["ap50"] <= 1 and found["ap"] <= found["ap50"]
    rows = tmp_path / "rows.csv"
    photos = [str(sets / "train" / "images" / name) for name in ("raccoon-1.jpg", "raccoon-10.jpg")]
    assert main(["objects", *photos, "--project", "Raccoons", "--home", str(home), "--out", str(rows), "--quiet"]) == 0
    text = rows.read_text()
    assert text.startswith("path,model,objects,object,label,score,x1,y1,x2,y2") and ",raccoon," in text
    assert main(["detector", "train", "--project", "Nope", "--home", str(home)]) == 2
    assert "no detection project called “Nope”" in capsys.readouterr().err


# ---- the page ---------------------------------------------------------------------------------------------------
def own_page():
    from test_pages import start

    app = start("pages/own_objects.py")
    assert any("Your own objects" in t.value for t in app.title)
    return app


def no_trouble(app) -> None:
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]


def canvas_drawing(app, project, photo_id: int, boxes: np.ndarray, labels: list[str]) -> None:
    """What the canvas sends after a rectangle is drawn or moved: every box on it, Fabric.js objects in canvas
    pixels, as its state (the browser's own drawing is ``test_browser.py``'s)."""
    stored = project.photo(photo_id)
    version = app.session_state["own_canvas_version"] if "own_canvas_version" in app.session_state else 0
    key = f"own_canvas:{project.name}:{photo_id}:{version}"
    assert key in app.session_state, "the page shows this photo's canvas"
    drawing = canvas.to_canvas(boxes, labels, canvas.canvas_scale(stored.width, stored.height))
    app.session_state[key] = {"drawing": {"raw": drawing, "data": None}}
    app.run()


@pytest.mark.slow
def test_the_page_loads_the_raccoon_set_and_keeps_the_boxes_drawn_moved_and_deleted() -> None:
    require_real("raccoon")
    app = own_page()
    app.button(key="own_sample").click().run()
    no_trouble(app)
    assert app.session_state["own_project"] == "Raccoons" and "196 photos" in app.markdown[0].value
    assert any("raccoon\\-74\\.jpg" in w.value for w in app.warning), "why 4 boxes were not added, at the top"
    project = Workspace.local().detection_project("Raccoons", create=False)
    first = app.session_state["own_photo:Raccoons"]
    boxes, labels = project.boxes(first)
    drawn = np.vstack([boxes, [[20, 30, 120, 110]]])
    canvas_drawing(app, project, first, drawn, [*labels, "raccoon"])  # a new box dragged on the photo
    no_trouble(app)
    assert np.allclose(project.boxes(first)[0], drawn, atol=0.05)
    canvas_drawing(app, project, first, drawn[[1]] + [5, 0, 5, 0], ["raccoon"])  # the first deleted, the new moved
    assert np.allclose(project.boxes(first)[0], [[25, 30, 125, 110]], atol=0.05)
    app.button(key="own_next").click().run()
    assert app.session_state["own_photo:Raccoons"] != first
    app.button(key="own_previous").click().run()
    assert app.session_state["own_photo:Raccoons"] == first
    app.button(key=f"own_box_delete:{first}:0").click().run()  # the list beside the canvas deletes too
    no_trouble(app)
    assert len(project.boxes(first)[0]) == 0


@pytest.mark.slow
def test_the_page_says_why_each_file_of_a_hostile_set_was_not_taken(tmp_path: Path) -> None:
    from test_pages import open_tab

    app = own_page()
    app.text_input(key="own_new_name").set_value("Hostile page").run()
    app.button(key="own_create").click().run()
    open_tab(app, "Import / export")
    app.file_uploader(key="own_zip_0").upload("hostile.zip", hostile_set(tmp_path), "application/zip")
    app.run()
    app.button(key="own_import").click().run()
    no_trouble(app)
    said = "\n".join(w.value + i.value for w, i in zip(app.warning, app.info))
    assert "ghost\\.jpg" in said and "has no area" in said and "declares the size 0x0" in said
    assert any("Added 7 photos and 8 boxes" in s.value for s in app.success)
    assert [b.label for b in app.get("download_button")] == list(("Pascal VOC XML", "COCO JSON", "YOLO txt"))


@pytest.mark.slow
def test_the_page_trains_on_raccoon_photos_then_evaluates_and_detects(raccoons) -> None:
    """Import 40 real photos, train the fast detector with the person's settings and held-out share, read its AP on
    the held-out photos, evaluate (PR curve, mistakes drawn), and detect on an uploaded raccoon photo."""
    from test_pages import open_tab

    require_real("mobilenet_v2_notop")
    app = own_page()
    app.text_input(key="own_new_name").set_value("Page raccoons").run()
    app.button(key="own_create").click().run()
    open_tab(app, "Import / export")
    app.file_uploader(key="own_zip_0").upload("raccoons.zip", write_voc(raccoons[0][:40]), "application/zip")
    app.run()
    app.button(key="own_import").click().run()
    open_tab(app, "Train")
    for name, value in {**QUICK_FAST, "held_out": 0.25}.items():
        app.session_state[f"own_fast_{name}" if name != "held_out" else "own_held_out"] = value
    app.run()
    app.button(key="own_train").click().run()
    no_trouble(app)
    outcome = app.session_state._own_training.result
    assert outcome.meta["tested_photos"] == 10 and outcome.meta["ap50"] >= 0.3, outcome.meta  # chance: near 0
    assert any("held-out photos" in s.value for s in app.success) and len(app.get("plotly_chart")) == 1
    open_tab(app, "Evaluate")
    no_trouble(app)
    assert app.metric[0].label.startswith("AP50") and float(app.metric[0].value) == pytest.approx(
        outcome.meta["ap50"], abs=1e-3)
    assert len(app.get("plotly_chart")) == 1, "the precision-recall curve"
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="photo_upload").upload("raccoon.jpg", raccoons[1][0].data, "image/jpeg")
    app.run()
    open_tab(app, "Detect")
    no_trouble(app)
    rows = app.dataframe[0].value
    assert "raccoon" in set(rows["label"]) and [b.label for b in app.get("download_button")] == ["Boxes (CSV)",
                                                                                                 "Boxes (JSON)"]
    app.switch_page("pages/models.py").run()  # Models and data lists it with its card
    no_trouble(app)
    cards = app.dataframe[-1].value
    mine = cards[cards["project"] == "Page raccoons"].iloc[0]
    assert (mine["kind"], mine["classes"], mine["photos"], mine["base"]) == ("fast", "raccoon", 30, "mobilenet_v2_notop")
    assert mine["measured"].startswith(f"AP50 {outcome.meta['ap50']:.2f}") and "10 held-out photos" in mine["measured"]


@pytest.mark.slow
def test_the_rcnn_tab_shows_each_step_on_a_photo_with_a_trained_rcnn(raccoons) -> None:
    from test_pages import open_tab

    require_real("mobilenet_v2_notop")
    project = Workspace.local().detection_project("Steps")
    add_all(project, raccoons[0][64:80])
    workflow.train_project(project, "rcnn", {"epochs": 2, "proposals": 300, "search_side": 240, "input_size": 320,
                                             "hidden": 64}, 0.25)
    app = own_page()
    app.session_state["own_project"] = "Steps"
    app.run()
    open_tab(app, "R-CNN step by step")
    no_trouble(app)
    captions = "\n".join(c.value for c in app.caption)
    assert "300 proposals" in captions and "positives" in captions and "after NMS" in captions
    assert len(app.get("image")) >= 4, "proposals, positives and negatives, regression, NMS"


@pytest.mark.slow
def test_the_page_takes_photos_from_uploads_a_zip_the_current_photo_and_the_camera() -> None:
    """Label tab, Add photos: two photos and a ZIP with its VOC boxes in one upload, the sidebar's photo, a shot."""
    app = own_page()
    app.text_input(key="own_new_name").set_value("Photos in").run()
    app.button(key="own_create").click().run()
    boxed = io.BytesIO()
    with zipfile.ZipFile(boxed, "w") as archive:
        archive.writestr("images/boxed.jpg", photo_bytes(100, 80))
        archive.writestr("annotations/boxed.xml", voc_xml("boxed.jpg", (100, 80), [("mug", 10, 10, 50, 40)]))
    app.file_uploader(key="own_uploads_0").set_value([("a.jpg", photo_bytes(120, 90), "image/jpeg"),
                                                      ("b.png", photo_bytes(80, 60, "PNG"), "image/png"),
                                                      ("set.zip", boxed.getvalue(), "application/zip")]).run()
    app.button(key="own_add_uploads").click().run()
    no_trouble(app)
    project = Workspace.local().detection_project("Photos in", create=False)
    assert {p.name for p in project.photos()} == {"a.jpg", "b.png", "boxed.jpg"} and project.counts() == {"mug": 1}
    app.button(key="own_add_current").click().run()
    no_trouble(app)
    current = app.session_state["photo"][0].rsplit(".", 1)[0] + ".png"
    assert current in {p.name for p in project.photos()}, "the sidebar's photo"
    app.toggle(key="own_camera_on").set_value(True).run()
    app.camera_input(key="own_camera").upload("shot.jpg", photo_bytes(64, 48), "image/jpeg").run()
    app.run()  # a rerun does not add the same shot again
    no_trouble(app)
    assert [p.name for p in project.photos()].count("camera.jpg") == 1 and len(project.photos()) == 5


def test_each_training_stage_has_its_bar_with_the_time_left(monkeypatch) -> None:
    """The Train tab's bars: one a stage, "N of M · S s left" from the stage's own pace, none once it is done."""
    from types import SimpleNamespace

    from pages import _own_train

    clock = iter([0.0, 1.0, 2.0, 10.0, 11.0])
    monkeypatch.setattr(_own_train, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    drawn: list[tuple[float, str]] = []

    class Where:
        def progress(self, value: float, text: str) -> "Where":
            drawn.append((value, text))
            return self

    bars = _own_train.StageBars(Where())
    for stage, done, total in [("features", 0, 4), ("features", 1, 4), ("features", 2, 4), ("training", 5, 50),
                               ("training", 50, 50)]:
        bars(stage, done, total)
    texts = [text for _, text in drawn]
    assert "Feature maps through the base: 1 of 4 · 3 s left" in texts, texts  # 1 s a photo, 3 photos to go
    assert "Feature maps through the base: 2 of 4 · 2 s left" in texts
    assert texts[-1] == "Training the head: 50 of 50" and drawn[-1][0] == 1.0
    assert not bars.should_stop()


PETS = {"dog_bicycle_truck.jpg": ([[128, 224, 314, 537], [124, 131, 567, 424]], ["Dog", "Bicycle"]),
        "person_horse_dog.jpg": ([[62, 264, 202, 348], [400, 134, 605, 340]], ["Dog", "mug"])}
"""Two demo photos boxed by hand: "Dog" and "Bicycle" are COCO classes (whatever the case), "mug" is not here."""


def pets(photo) -> list:
    from vision_backend.own_detection import LabelledPhoto
    from vision_backend.samples import photos_dir

    found = []
    for name, (boxes, labels) in PETS.items():
        image = photo(name)
        found.append(LabelledPhoto(name, image.shape[1], image.shape[0], np.asarray(boxes, float), tuple(labels),
                                   (photos_dir() / name).read_bytes()))
    return found


def test_classes_also_in_coco_are_measured_on_the_registrys_detector_beside_yours(photo) -> None:
    from vision_backend import models

    require_real("nanodet_m")
    labelled = pets(photo)
    assert workflow.coco_names(["Dog", "Bicycle", "mug"]) == {"Dog": "dog", "Bicycle": "bicycle"}
    beside = workflow.pretrained_beside(labelled, ["Dog", "Bicycle", "mug"], models.default("objects"))
    assert [c.name for c in beside.evaluation.classes] == ["Dog", "Bicycle"], "mug is no COCO class: left out"
    dog, bicycle = beside.evaluation.classes
    assert (dog.boxes, bicycle.boxes) == (2, 1) and (dog.ap50, bicycle.ap50) == pytest.approx((1.0, 1.0))
    assert all(set(found.names) <= {"Dog", "Bicycle"} for found in beside.found), "named with your classes"
    assert workflow.pretrained_beside(labelled, ["mug"], models.default("objects")) is None


@pytest.mark.slow
def test_the_evaluate_tab_puts_the_registrys_coco_detector_beside_yours(photo) -> None:
    from test_pages import open_tab
    from vision_backend import models

    require_real("mobilenet_v2_notop")
    require_real("nanodet_m")
    project = Workspace.local().detection_project("Pets")
    for one in pets(photo):
        project.add_photo(one.data, one.name, one.boxes, one.labels)
    workflow.train_project(project, "fast", {**QUICK_FAST, "epochs": 2}, 0.5)
    app = own_page()
    app.session_state["own_project"] = "Pets"
    app.run()
    open_tab(app, "Evaluate")
    no_trouble(app)
    title = models.default("objects").title
    assert any("also COCO class" in c.value and title in c.value for c in app.caption)
    table = app.dataframe[0].value.set_index("class")
    assert table.loc["Dog", f"{title} AP50"] == pytest.approx(1.0), table


def test_the_pages_name_no_model_they_take_it_from_the_registry() -> None:
    """The design rule: a page asks the registry (a default by role), it never spells a model's name."""
    from vision_backend import models

    for page in [ROOT / "pages" / "own_objects.py", *sorted((ROOT / "pages").glob("_own_*.py"))]:
        text = page.read_text()
        named = [name for name in models.all_models() if f'"{name}"' in text or f"'{name}'" in text]
        assert not named, f"{page.name} names {named}"


@pytest.mark.slow
def test_the_video_page_offers_your_fast_detectors_and_a_video_is_tracked_with_one(trained, monkeypatch) -> None:
    from test_pages import start
    from vision_backend.clips import CAR_CLIP
    from vision_backend.video import track_video

    require_real(CAR_CLIP.name)
    home, project, done, _ = trained
    monkeypatch.setenv("VISION_LAB_HOME", str(home))
    app = start("pages/video.py")
    detector = project.detector(kind="fast")
    assert detector.title in app.radio(key="video_model").options, "the registry's detectors, then yours"
    app.radio(key="video_model").set_value(detector.name).run()
    assert not app.exception and any(e.label == f"{detector.title} settings" for e in app.expander)
    result = track_video(CAR_CLIP.path(), detector, {"score_threshold": 0.3}, line=(0, 216, 768, 216))
    assert result.frames == 377 and not result.error, (result.frames, result.error)
