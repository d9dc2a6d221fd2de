"""The first run on a fresh machine: every page works before the files arrive, missing models say in one line
how to get them (never a traceback), the model cards show what was measured here, and the flowers demo is
built from TensorFlow's own archive."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import ROOT, require_shared
from test_fetch import Server, cache, serve_folder, server, url  # noqa: F401 — fixtures and the 127.0.0.1 server
from test_pages import every_tab, start
from vision_backend import fetch, measured, models

PAGES = sorted(f"pages/{p.name}" for p in (ROOT / "pages").glob("[!_]*.py") if p.name != "live.py")
"""Every page AppTest can run (the live camera page needs a browser's WebRTC)."""
OPENS_A_MODEL = {"pages/cnn_basics.py", "pages/face_detection.py", "pages/face_recognition.py",
                 "pages/object_detection.py", "pages/pretrained.py", "pages/train_cnn.py"}
"""Pages whose first view needs a model or data set that is not in a pip package."""
NO_INTERNET = "no internet: copy it, or run `seed DIR`"


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache and app folder, and no internet: every download fails with one line."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))

    def offline(url: str, target: Path, *args: object, **kwargs: object) -> Path:
        raise fetch.FetchError(NO_INTERNET)

    monkeypatch.setattr(fetch, "download", offline)
    return tmp_path / "keras"


def missing_lines(app) -> list[str]:
    """The page's "not on this machine" warnings."""
    return [w.value for w in app.warning if "is not on this machine" in w.value]


def assert_clean(app) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert not app.error, [e.value for e in app.error]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_an_empty_cache_without_the_internet(empty: Path, page: str) -> None:
    app = start(page)
    lines, commands = [], []
    for _ in every_tab(app):  # tabs run lazily: each one opened, as a visitor would
        assert_clean(app)
        lines += missing_lines(app)
        commands += [c.value for c in app.code if "vision_backend.models" in c.value]
    assert all(line.endswith(NO_INTERNET) or "no internet: copy the folder" in line for line in lines), lines
    if page in OPENS_A_MODEL:
        assert lines, "a missing model is named, with why it could not be fetched"
        assert len(commands) >= len(lines), "each missing model says how to get it"
    assert not [p for p in empty.rglob("*") if p.is_file()], "nothing partial is left in the cache"


@pytest.mark.parametrize("page", ["pages/home.py", "pages/models.py"])
def test_get_everything_without_the_internet_says_so_in_one_line(empty: Path, page: str) -> None:
    app = start(page)
    button = next(b for b in app.button if b.label.startswith("Get everything ("))
    assert " MB" in button.label
    button.click().run()
    assert_clean(app)
    assert len(missing_lines(app)) == 1 and missing_lines(app)[0].endswith(NO_INTERNET), "stops at the first"
    assert any(c.value.startswith("Stopped at ") for c in app.caption)


def test_status_on_an_empty_cache_lists_every_card_and_how_to_get_it(tmp_path: Path) -> None:
    env = dict(os.environ, KERAS_HOME=str(tmp_path / "keras"), VISION_LAB_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "vision_backend.models", "status"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    lines = out.splitlines()
    for card in models.cards():
        row = next(i for i, line in enumerate(lines) if line.split()[:1] == [card.name])
        if card.source == "package":
            assert " ready " in lines[row], lines[row]
        elif all(f.url or f.build for f in card.files):
            assert "missing" in lines[row] and lines[row + 1].strip().startswith(
                f"-> python -m vision_backend.models fetch {card.name}"), lines[row:row + 2]
        else:  # no public download: never offered to fetch, told how to seed it, naming its files
            assert "missing" in lines[row] and "fetch" not in lines[row + 1] and "seed FOLDER" in lines[row + 1] \
                and all(name in lines[row + 1] for name in card.file_names()[:4]), lines[row:row + 2]
    ready = sum(c.source == "package" for c in models.cards())
    assert lines[-1].startswith(f"{ready} of {len(models.cards())} ready"), lines[-1]


# ---- the model cards -------------------------------------------------------------------------------
def panel(app, title: str):
    return next(e for e in app.expander if title in e.label)


def row(name: str, value: float, unit: str, day: int, quick: bool = False) -> dict:
    """A figure as the face detection bench records it about YuNet's card."""
    return {"bench": "face_detection", "name": name, "value": value, "unit": unit, "quick": quick,
            "time": f"2026-11-{day:02d}T10:00:00+00:00", "machine": "x86_64 2 cores", "cards": ["yunet"]}


def test_every_card_has_its_panel_with_source_hash_and_the_figures_measured_here(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([row("yunet_640x480_ms", 9.1, "ms", 20), row("yunet_640x480_ms", 6.2, "ms", 24),
                                   row("yunet_640x480_vs_raw", 1.08, "ratio", 24),
                                   row("yunet_640x480_ms", 60.0, "ms", 25, quick=True),
                                   row("yunet_group_photos_recall", 0.9412, "fraction", 24)]))
    monkeypatch.setattr(measured, "RESULTS", results)
    app = start("pages/models.py")
    assert_clean(app)
    labels = [e.label for e in app.expander]
    assert sorted(labels) == sorted(f"**{c.title}** · {c.status()}" for c in models.cards())
    yunet = panel(app, "YuNet")
    text = "\n".join(m.value for m in yunet.markdown)
    assert "sha256 `8f2383e4dd3c…`" in text and "github.com" in text and "MIT" in text
    tooltip = next(m for m in yunet.markdown if "8f2383e4dd3c" in m.value).proto.help
    assert tooltip == "sha256 " + models.card("yunet").files[0].file_hash
    table = yunet.dataframe[0].value.set_index("figure")
    assert list(table.index) == ["yunet_640x480_ms", "yunet_group_photos_recall"], "a card's figures, in order"
    assert table.loc["yunet_640x480_ms"].to_dict() == {
        "value": "6.2 ms", "vs raw": "1.08x", "date": "2026-11-24", "bench": "face_detection",
        "machine": "x86_64 2 cores"}, "the latest full run, its ratio beside it; quick runs left out"
    assert table.loc["yunet_group_photos_recall", "value"] == "94.1%"
    assert any(c.value.startswith("Not measured on this machine") for c in panel(app, "VGG16").caption)
    mtcnn = "\n".join(m.value for m in panel(app, "MTCNN").markdown)
    assert "`mtcnn`" in mtcnn and "pip install" in mtcnn


def test_the_card_named_in_the_address_is_open() -> None:
    app = start()
    app.query_params["card"] = "lfw"
    app.switch_page("pages/models.py").run()
    assert_clean(app)
    opened = [e.label for e in app.expander if e.proto.expanded]
    assert len(opened) == 1 and opened[0].startswith(f"**{models.card('lfw').title}** · ")


def test_home_links_the_cards_and_shows_a_figure_measured_here() -> None:
    app = start()
    assert any("models" in str(link.proto.page) for link in app.get("page_link"))
    table = app.dataframe[0].value.set_index("title")
    assert table.loc["YuNet 2023mar (OpenCV Zoo)", "measured here"].startswith("yunet_640x480_ms: ")


def test_get_it_fetches_the_card_with_its_hash_checked(empty: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The "Get it" button of a missing card downloads it (here: from the shared folder instead of the
    internet) and the card turns ready; a download of other bytes would be refused by the hash."""
    shared = require_shared() / "models" / "small"
    card = models.card("yunet")

    def copy(url: str, target: Path, expected_hash: str | None = None, progress=None, **kwargs) -> Path:
        source = shared / Path(url).name
        assert fetch.hash_matches(source, expected_hash)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    monkeypatch.setattr(fetch, "download", copy)
    app = start("pages/models.py")
    app.button(key="get:yunet").click().run()
    assert_clean(app)
    assert card.ready() and panel(app, "YuNet").label.endswith("· ready")


# ---- figures measured here and the report ------------------------------------------------------------
def test_the_latest_full_run_of_each_figure_with_its_ratio(tmp_path: Path) -> None:
    rows = [
        {"bench": "b", "name": "x_ms", "value": 10.0, "unit": "ms", "time": "2026-01-01T00:00:00+00:00"},
        {"bench": "b", "name": "x_vs_raw", "value": 1.5, "unit": "ratio", "time": "2026-01-01T00:00:00+00:00"},
        {"bench": "b", "name": "x_ms", "value": 12.0, "unit": "ms", "time": "2026-01-02T00:00:00+00:00",
         "machine": "m"},
        {"bench": "b", "name": "x_ms", "value": 99.0, "unit": "ms", "time": "2026-01-03T00:00:00+00:00",
         "quick": True},
        {"bench": "b", "name": "y_s", "value": 2.0, "unit": "s", "time": "2026-01-01T00:00:00+00:00"},
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    figures = measured.latest(results)
    assert (figures["x_ms"].value, figures["x_ms"].date, figures["x_ms"].machine) == (12.0, "2026-01-02", "m")
    assert figures["x_ms"].vs_raw == 1.5 and figures["y_s"].vs_raw is None
    assert measured.shown(figures["x_ms"]) == "12 ms (1.50x raw)"
    assert measured.latest(tmp_path / "none.json") == {}

    out = tmp_path / "REPORT.md"
    subprocess.run([sys.executable, "bench/report.py", "--results", str(results), "--out", str(out)], cwd=ROOT,
                   check=True, capture_output=True, timeout=60)
    report = out.read_text()
    assert "1.4-4x" in report and "## b" in report
    assert "| `x_ms` | 12.00 | ms | 1.50x | 2026-01-02 | m |" in report
    assert "`x_vs_raw`" not in report, "a ratio shown beside its time is not listed again"


def test_every_card_a_figure_is_about_exists_and_shows_it() -> None:
    """Figures name their cards in results.json; the Models page finds a card's figures by that alone."""
    figures = measured.latest()
    named = {card for f in figures.values() for card in f.cards}
    assert named and named <= {c.name for c in models.cards()}, named - {c.name for c in models.cards()}
    for card in named:
        assert all(card in f.cards for f in measured.for_card(card, figures))
    assert measured.for_card("yunet", figures)[0].is_time, "a card's times come first"


# ---- the flowers demo, built from TensorFlow's archive ------------------------------------------------
def serve_flowers(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Serve, on 127.0.0.1, an archive in flower_photos.tgz's layout (flower_photos/roses/<photo>.jpg, plural
    folders) made of the shared demo photos plus files we do not keep, and point the demo at it."""
    from vision_backend.transfer import demo

    shared = require_shared() / "data" / "demo-classes"
    theirs = {ours: folder for folder, ours in demo.FLOWER_FOLDERS.items()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        tar.add(shared / "daisy", "flower_photos/daisy", recursive=False)
        for path in sorted(shared.rglob("*.jpg")):
            tar.add(path, f"flower_photos/{theirs[path.parent.name]}/{path.name}")
        first = sorted((shared / "rose").glob("*.jpg"))[0]
        tar.add(first, "flower_photos/roses/not_in_our_manifest.jpg")
        tar.add(first, "flower_photos/rose/also_not_ours.jpg")
        tar.add(first, "flower_photos/LICENSE.txt")
    serve_folder(server, {"/flower_photos.tgz": buffer.getvalue()})
    monkeypatch.setattr(demo, "FLOWER_PHOTOS", url(server, "/flower_photos.tgz"))


def test_the_flowers_build_keeps_the_registered_photos_of_the_original_archive(
        server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The build keeps exactly the 250 registered files under our folder names, checked against the manifest,
    and removes the archive."""
    from vision_backend.transfer import demo

    serve_flowers(server, monkeypatch)
    outcome = fetch.ensure(demo.DEMO_CLASSES)
    assert outcome.ok, outcome.message
    built = demo.DEMO_CLASSES.files[0].local
    assert fetch.check_tree(demo.DEMO_CLASSES.files[0], built) == []
    kept = sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file())
    assert kept == sorted(fetch.tree_manifest(demo.DEMO_CLASSES.files[0])) and len(kept) == 250
    assert sorted(demo.class_folders(built)) == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    assert [p.name for p in built.parent.iterdir()] == ["demo-classes"], "no archive or staging folder left"


def test_a_flowers_archive_missing_a_registered_photo_is_refused(
        server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from vision_backend.transfer import demo

    shared = require_shared() / "data" / "demo-classes"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        theirs = {ours: folder for folder, ours in demo.FLOWER_FOLDERS.items()}
        for path in sorted(shared.rglob("*.jpg"))[1:]:
            tar.add(path, f"flower_photos/{theirs[path.parent.name]}/{path.name}")
    serve_folder(server, {"/flower_photos.tgz": buffer.getvalue()})
    monkeypatch.setattr(demo, "FLOWER_PHOTOS", url(server, "/flower_photos.tgz"))
    outcome = fetch.ensure(demo.DEMO_CLASSES)
    assert not outcome.ok and "is missing" in outcome.message and "\n" not in outcome.message
    assert not demo.DEMO_CLASSES.files[0].local.parent.exists() or \
        not list(demo.DEMO_CLASSES.files[0].local.parent.iterdir()), "nothing left in the cache"


def test_the_flowers_demo_button_fetches_the_photos_first_on_an_empty_cache(
        server: Server, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """One click on a fresh machine: the button says the photos come first, fetches them, and the project
    is there with its 250 photos."""
    from vision_backend.transfer import demo
    from vision_backend.workspace import Workspace

    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))
    serve_flowers(server, monkeypatch)
    assert not demo.DEMO_CLASSES.ready()
    app = start("pages/transfer_learning.py")
    button = app.button(key="tl_demo")
    assert "fetched first" in button.label and "MB" in button.label
    button.click().run(timeout=300)
    assert_clean(app)
    assert demo.DEMO_CLASSES.ready()
    project = Workspace.local().project(demo.DEMO_PROJECT)
    assert sorted(project.counts().items()) == [(c, 50) for c in ("daisy", "dandelion", "rose", "sunflower", "tulip")]
