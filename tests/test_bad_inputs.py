"""Every uploader, every bad file: a generated corpus of files a demo room throws at the app.

Each file goes through every uploader of the app under AppTest: the sidebar's photo picker,
Transfer learning's class photos and class ZIP, Face recognition's enrol-several and verify
uploads, Pretrained's many-photos uploader and Train a CNN's digit photo. A file that is not a
usable photo gives a message naming it; an odd but valid photo (16-bit, CMYK, animated, a page of
a TIFF, turned by EXIF, a hostile name) is used, and a note says which frame; nothing shows
Streamlit's crash box or an internal exception's name, and the project and the gallery still work
afterwards. ``feed_every_uploader`` is also what ``bench/demo.py`` counts crashes with.
"""

from __future__ import annotations

import functools
import io
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import ROOT, require_real
from test_intake import BAD_FILES, encode, gradient
from test_pages import open_tab, plain

TIMEOUT = 300

# ---- the corpus ----------------------------------------------------------------------------------
INTERNAL = re.compile(r"\b\w+(Error|Exception|Warning)\b|BadZipFile|Traceback|zlib\.error|errno|\bline \d+")
"""What a message for a person never shows: an exception's type, a traceback, an errno."""


def png(size: tuple[int, int], colour=(120, 90, 60), mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, size, colour), "PNG")


def frames(fmt: str, count: int = 3, size: tuple[int, int] = (64, 48)) -> bytes:
    images = [Image.new("RGB", size, c) for c in ((230, 30, 30), (30, 230, 30), (30, 30, 230))[:count]]
    buffer = io.BytesIO()
    images[0].save(buffer, format=fmt, save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


def sixteen_bit() -> bytes:
    return encode(Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)), "PNG")


def exif_rotated() -> bytes:
    image = gradient(80, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone's portrait photo
    return encode(image, "JPEG", exif=exif)


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def noise(side: int = 200) -> Image.Image:
    return Image.fromarray(np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8))


def png_bad_crc() -> bytes:
    data = bytearray(encode(gradient(), "PNG"))
    at = data.index(b"IHDR") + 17  # the IHDR chunk's CRC
    data[at] ^= 0xFF
    return bytes(data)


@functools.lru_cache(maxsize=1)
def corpus() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, what the app must do): ``refuse`` (a message naming it), ``use`` (an odd
    but valid photo, used as is) or ``frames`` (used, with a note saying which frame or page)."""
    refuse = {name: data for name, data in BAD_FILES.items()}
    refuse |= {
        "zero_bytes.png": b"",
        "one_by_one.png": png((1, 1)),
        "thin_31x400.png": png((31, 400)),
        "strip_4000x8.png": png((4000, 8)),
        "flat_64_megapixels.png": png((8000, 8000), mode="L", colour=200),
        "zip_renamed.png": zip_of({"a/b.txt": b"hello"}),
        "truncated_lossless.webp": encode(noise(), "WEBP", lossless=True)[:60_000],
        "jpeg_soi_eoi.jpg": b"\xff\xd8\xff\xd9",
        "png_bad_crc.png": png_bad_crc(),
        "heic_photo.jpg": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64),
        "photoshop.png": b"8BPS\x00\x01" + bytes(200),
        "windows_program.jpg": b"MZ\x90\x00" + bytes(300),
        "gif_header_only.gif": b"GIF89a\x40\x00\x30\x00",
        "../../etc/passwd.png": b"root:x:0:0:root:/root:/bin/bash\n",
        "名前\n改行.jpg": b"\xff\xd8\xff\xe0 not really a jpeg",
        "<img src=x onerror=alert(1)>.png": b"<script>alert(1)</script>",
        "**bold** _it_ `code` $x$.png": b"markdown in a name, text in the file",
        "twenty_six_megabytes.jpg": b"\xff\xd8\xff\xe0" + bytes(26 * 2**20),
    }
    use = {
        "deep_16bit_grey.png": sixteen_bit(),
        "print_cmyk.jpg": encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG"),
        "phone_exif_rotated.jpg": exif_rotated(),
        "smallest_32x32.png": png((32, 32)),
        "tall_32x2000.png": png((32, 2000)),
        "flat_49_megapixels.png": png((7000, 7000)),
        "png_named.jpg": encode(gradient(64, 48), "PNG"),
        "palette_transparent.gif": encode(Image.new("P", (40, 40), 0), "GIF", transparency=0),
        "grey_alpha.png": encode(Image.new("LA", (40, 40), (90, 128)), "PNG"),
        "../../x.png": encode(gradient(66, 48), "PNG"),
        "名前\n.png": encode(gradient(68, 48), "PNG"),
    }
    frames_ = {"animated_3_frames.gif": frames("GIF"), "three_pages.tif": frames("TIFF"),
               "animated_3_frames.webp": frames("WEBP")}
    files = {name: (data, "refuse") for name, data in refuse.items()}
    files |= {name: (data, "use") for name, data in use.items()}
    files |= {name: (data, "frames") for name, data in frames_.items()}
    return files


def uploadable(name: str, allowed: list[str]) -> str:
    """The name a browser lets through an uploader that takes ``allowed`` extensions: the browser refuses
    any other before the app sees it, so those bytes come in renamed, as after someone renames a file."""
    return name if any(name.lower().endswith(ext) for ext in allowed) else f"{name}.png"


def flat(text: str) -> str:
    """Text as a person reads it: Markdown escapes undone, line breaks as spaces."""
    return re.sub(r"\s+", " ", re.sub(r"\\(.)", r"\1", str(text))).strip()


def names_it(message: str, name: str) -> bool:
    return flat(name) in flat(message)


# ---- judging one file in one uploader -------------------------------------------------------------
@dataclass
class Outcome:
    uploader: str
    name: str
    crashed: bool = False
    problems: list[str] = field(default_factory=list)


def crash_box(app: AppTest) -> bool:
    """Streamlit's own crash box, or the pages' last line of defence (a bug kept off the screen)."""
    return bool(app.exception) or any("Something went wrong" in e.value for e in app.error)


def leaks(app: AppTest) -> list[str]:
    """Every text on the page, table cells included, that names an internal exception."""
    texts = [str(e.value) for kind in ("error", "warning", "info", "success", "toast", "caption", "markdown")
             for e in getattr(app, kind)]
    texts += [str(v) for frame in app.dataframe for v in frame.value.astype(str).to_numpy().ravel()]
    return [t[:160] for t in texts if INTERNAL.search(t)]


NO_NOTE = "no note says which frame is used"


def judge(app: AppTest, uploader: str, name: str, sent: str, kind: str, messages: list[str], used: bool,
          notes: list[str] = ()) -> Outcome:
    """What one file did in one uploader, against what it must do (see :func:`corpus`)."""
    outcome = Outcome(uploader, name, crash_box(app))
    if kind == "refuse":
        if not any(names_it(m, sent) for m in messages):
            outcome.problems.append("no message names the file")
        if used:
            outcome.problems.append("a bad file was used")
    else:
        if not used or any(names_it(m, sent) for m in messages):
            outcome.problems.append("a valid photo was refused")
        if kind == "frames" and not any(names_it(n, sent) and "1 of 3" in n for n in notes):
            outcome.problems.append(NO_NOTE)
    if outcome.crashed:
        outcome.problems.append(f"crash: {[e.value for e in app.exception][:1] or 'Something went wrong'}")
    if leaked := leaks(app):
        outcome.problems.append(f"internal names shown: {leaked[:2]}")
    return outcome


def failures(outcomes: list[Outcome], ignore: str = "") -> list[str]:
    """One line per file that did not do what it must (problems starting with ``ignore`` left out)."""
    lines = []
    for o in outcomes:
        if problems := [p for p in o.problems if not (ignore and p.startswith(ignore))]:
            lines.append(f"{o.uploader} · {o.name!r}: {'; '.join(problems)}")
    return lines


def start(page: str | None = None) -> AppTest:
    """The whole app, optionally on ``page`` (as tests/test_pages.py starts it)."""
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    if page:
        app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def uploader_of(app: AppTest, prefix: str):
    return next(u for u in app.file_uploader if u.key == prefix or u.key.startswith(f"{prefix}_"))


def sent_files(files: dict[str, tuple[bytes, str]], allowed: list[str]) -> list[tuple[str, str, bytes, str]]:
    """(name in the corpus, name as sent, bytes, kind) for an uploader taking ``allowed``."""
    return [(name, uploadable(name, allowed), data, kind) for name, (data, kind) in files.items()]


MIME = "application/octet-stream"


# ---- the uploaders --------------------------------------------------------------------------------
def feed_sidebar(app: AppTest, files: dict[str, tuple[bytes, str]], where: str = "Home") -> list[Outcome]:
    """One file at a time into the sidebar's photo picker; the page below runs on each."""
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    picker = app.sidebar.file_uploader(key="photo_upload")
    outcomes = []
    for name, sent, data, kind in sent_files(files, picker.allowed_type):
        app.sidebar.file_uploader(key="photo_upload").set_value((sent, data, MIME)).run()
        used = app.session_state.photo[0] == sent
        errors = [e.value for e in app.error]
        outcome = judge(app, f"sidebar photo on {where}", name, sent, kind, errors, used,
                        [i.value for i in app.sidebar.info])
        if kind != "refuse" and errors:
            outcome.problems.append(f"the page shows an error: {errors[:2]}")
        outcomes.append(outcome)
    return outcomes


def workspace_project(name: str):
    from vision_backend.workspace import Workspace

    return Workspace.local().project(name, create=False)


def new_project(app: AppTest, project: str = "corpus", label: str = "odd") -> None:
    app.text_input(key="tl_new_name").input(project).run()
    app.button(key="tl_create").click().run()
    app.text_input(key="tl_new_class").input(label).run()
    app.button(key="tl_add_class").click().run()
    assert not app.exception, app.exception


def stored_sources(project: str, label: str) -> set[str]:
    return {e.source for e in workspace_project(project).examples(label)}


def source_of(sent: str) -> str:
    """The name a project keeps for an upload (its last path part, made printable)."""
    from pathlib import Path

    from vision_backend.storage import safe_part

    return safe_part(Path(sent).name, "photo")


def feed_class_photos(app: AppTest, files: dict[str, tuple[bytes, str]], project: str = "corpus",
                      label: str = "odd") -> list[Outcome]:
    """Every file at once into one class's uploader of Transfer learning, then "Add"."""
    files = sent_files(files, uploader_of(app, f"tl_up_{label}").allowed_type)
    uploader_of(app, f"tl_up_{label}").set_value([(sent, data, MIME) for _, sent, data, _ in files]).run()
    app.button(key=f"tl_up_go_{label}").click().run()
    messages = [w.value for w in app.warning] + [e.value for e in app.error]
    notes = [m.value for m in (*app.info, *app.toast)]
    stored = stored_sources(project, label)
    return [judge(app, "class photos", name, sent, kind, messages, source_of(sent) in stored, notes)
            for name, sent, _, kind in files]


def too_many_pixels_for_an_archive(data: bytes) -> bool:
    from vision_backend.archive import MAX_ENTRY_PIXELS

    with Image.open(io.BytesIO(data)) as image:
        return image.size[0] * image.size[1] > MAX_ENTRY_PIXELS


def in_archive(name: str, data: bytes, kind: str) -> str:
    """What a class ZIP must do with a file: paths that leave their folder and photos over the archive's
    pixel limit are refused there too (with a reason naming them)."""
    if kind != "refuse" and ("/" in name or too_many_pixels_for_an_archive(data)):
        return "refuse"
    return kind


def feed_class_zip(app: AppTest, files: dict[str, tuple[bytes, str]], project: str = "corpus",
                   label: str = "odd") -> list[Outcome]:
    """The corpus as one ZIP of a class folder (``odd/<file>``) through Transfer learning's import."""
    archive = zip_of({f"{label}/{name}": data for name, (data, _) in files.items()})
    app.file_uploader(key="tl_zip").set_value((f"{project}.zip", archive, "application/zip")).run()
    app.button(key="tl_zip_go").click().run()
    messages = [w.value for w in app.warning] + [e.value for e in app.error]
    notes = [m.value for m in (*app.info, *app.success, *app.toast)]
    stored = stored_sources(project, label)
    return [judge(app, "class ZIP", name, f"{label}/{name}", in_archive(name, data, kind), messages,
                  source_of(name) in stored, notes) for name, (data, kind) in files.items()]


BAD_ARCHIVES = {"empty.zip": b"", "photo_named.zip": encode(gradient(), "PNG"), "text.zip": b"PK not really",
                "truncated.zip": zip_of({"a/b.png": encode(noise(), "PNG")})[:3000]}


def feed_bad_archives(app: AppTest) -> list[Outcome]:
    outcomes = []
    for name, data in BAD_ARCHIVES.items():
        app.file_uploader(key="tl_zip").set_value((name, data, "application/zip")).run()
        app.button(key="tl_zip_go").click().run()
        outcomes.append(judge(app, "class ZIP itself", name, name, "refuse", [e.value for e in app.error], False))
    return outcomes


def feed_enrol(app: AppTest, files: dict[str, tuple[bytes, str]], person: str = "Corpus Person") -> list[Outcome]:
    """Every file at once into Face recognition's "Enrol several photos of one person"."""
    open_tab(app, "Gallery: enrol people")
    files = sent_files(files, several_uploader(app).allowed_type)
    several_uploader(app).set_value([(sent, data, MIME) for _, sent, data, _ in files]).run()
    next(t for t in app.text_input if str(t.key).startswith("fr_multi_name_")).input(person).run()
    app.button(key="fr_multi_go").click().run()
    report = next((d.value for d in app.dataframe if {"photo", "reason"} <= set(d.value.columns)), None)
    outcomes = []
    for name, sent, _, kind in files:
        rows = report[report["photo"] == sent] if report is not None else []
        reasons = list(rows["reason"]) if len(rows) else []
        looked_at = len(reasons) == 1 and ("no face found" in reasons[0] or "faces found" in reasons[0])  # searched
        # a row is labelled with its file's name; which frame matters only for a face enrolled (tested apart)
        outcomes.append(judge(app, "enrol several", name, sent, "use" if kind == "frames" else kind,
                              [f"{sent}: {r}" for r in reasons if not looked_at], looked_at))
    return outcomes


def several_uploader(app: AppTest):
    """The "several photos of one person" uploader, whichever version it is (a new one after each enrolment)."""
    return next(u for u in app.get("file_uploader") if str(u.key).startswith("fr_multi_"))


def feed_verify(app: AppTest, files: dict[str, tuple[bytes, str]]) -> list[Outcome]:
    """One file at a time as Face recognition's second photo to verify against."""
    open_tab(app, "Verify two faces").radio(key="fr_other_source").set_value("Upload").run()
    allowed = app.file_uploader(key="fr_other_upload").allowed_type
    outcomes = []
    for name, sent, data, kind in sent_files(files, allowed):
        app.file_uploader(key="fr_other_upload").set_value((sent, data, MIME)).run()
        used = any(names_it(w.value, sent) for w in app.warning if "No face found" in w.value) or \
            any(names_it(c.value, sent) for c in app.caption)
        outcomes.append(judge(app, "verify", name, sent, kind, [e.value for e in app.error], used,
                              [i.value for i in app.info]))
    return outcomes


def feed_many_photos(app: AppTest, files: dict[str, tuple[bytes, str]]) -> list[Outcome]:
    """Every file at once into Pretrained's many-photos uploader: one table row each."""
    open_tab(app, "Many photos")
    files = sent_files(files, app.file_uploader(key="pt_batch").allowed_type)
    app.file_uploader(key="pt_batch").set_value([(sent, data, MIME) for _, sent, data, _ in files]).run()
    table = next((d.value for d in app.dataframe if "top-5" in d.value.columns and "photo" in d.value.columns), None)
    outcomes = []
    for name, sent, _, kind in files:
        rows = table[table["photo"] == sent] if table is not None else []
        cells = [f"{sent}: {t}" for t in rows["top-5"]] if len(rows) else []
        used = len(rows) == 1 and rows["top-1"].iloc[0] != "—"
        outcomes.append(judge(app, "many photos", name, sent, kind, [c for c in cells if "skipped" in c], used,
                              [i.value for i in app.info]))
    return outcomes


def untrained_digit_run() -> dict:
    """A session's trained network as Train a CNN keeps it, with random weights: the uploader's plumbing
    does not need a good network."""
    from vision_backend.small_cnn import networks

    return {"model": networks.build("deck", 10), "history": {}, "dataset": "mnist_t10k", "preset": "deck",
            "classes": tuple(str(d) for d in range(10)), "evaluation": None, "images": 0, "path": None}


def feed_digit(app: AppTest, files: dict[str, tuple[bytes, str]]) -> list[Outcome]:
    """One file at a time as Train a CNN's photo of a digit."""
    app.session_state["cnn"] = untrained_digit_run()
    open_tab(app, "Try it: draw a digit")
    allowed = app.file_uploader(key="cnn_digit_upload").allowed_type
    outcomes = []
    for name, sent, data, kind in sent_files(files, allowed):
        app.file_uploader(key="cnn_digit_upload").set_value((sent, data, MIME)).run()
        used = any(c.value.startswith("It says") for c in app.caption) or \
            any(names_it(i.value, sent) and "no digit" in i.value.lower() for i in app.info)
        outcomes.append(judge(app, "digit photo", name, sent, kind, [e.value for e in app.error], used,
                              [i.value for i in app.info]))
    return outcomes


def feed_every_uploader() -> list[Outcome]:
    """The whole corpus through every uploader of the app (in the workspace ``$VISION_LAB_HOME`` names)."""
    files = corpus()
    outcomes = feed_sidebar(start(), files)
    app = start(TRANSFER)
    new_project(app)
    outcomes += feed_class_photos(app, files)
    new_project(app, "corpus_zip")
    outcomes += feed_class_zip(app, files, "corpus_zip") + feed_bad_archives(app)
    app = start(RECOGNITION)
    outcomes += feed_enrol(app, files) + feed_verify(app, files)
    outcomes += feed_many_photos(start(PRETRAINED), files)
    return outcomes + feed_digit(start(TRAIN_CNN), files)


# ---- the tests ------------------------------------------------------------------------------------
TRANSFER, RECOGNITION = "pages/transfer_learning.py", "pages/face_recognition.py"
PRETRAINED, TRAIN_CNN = "pages/pretrained.py", "pages/train_cnn.py"
PHOTO_PAGES = ["pages/cnn_basics.py", PRETRAINED, TRANSFER, "pages/face_detection.py", RECOGNITION,
               "pages/object_detection.py"]
GOOD = ("good.jpg", encode(gradient(96, 72), "JPEG"), "image/jpeg")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A workspace of this test's own: projects and people made here are seen nowhere else."""
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def odd_photos() -> dict[str, tuple[bytes, str]]:
    """The valid photos of the corpus, and two it refuses (the page keeps the photo before)."""
    files = corpus()
    return {n: v for n, v in files.items() if v[1] != "refuse"} | \
        {n: files[n] for n in ("truncated_half.jpg", "thin_31x400.png")}


def images_in(expander) -> int:
    return sum(len(e.proto.imgs) for e in expander.get("image"))


@pytest.mark.slow
def test_the_sidebar_picker_takes_every_file_and_then_a_good_photo() -> None:
    app = start()
    assert failures(feed_sidebar(app, corpus())) == []
    app.sidebar.file_uploader(key="photo_upload").set_value(GOOD).run()
    assert app.session_state.photo[0] == "good.jpg" and not app.error and not app.exception


@pytest.mark.parametrize("page", PHOTO_PAGES)
@pytest.mark.slow
def test_every_photo_page_runs_on_every_odd_photo(page: str) -> None:
    """16-bit, CMYK, EXIF-turned, animated, 32 px, 32x2000 and 49 megapixels: every tab of every page
    that uses the photo runs on each, without an error."""
    assert failures(feed_sidebar(start(page), odd_photos(), page)) == []


@pytest.mark.slow
def test_class_photos_take_every_file_and_the_project_still_works() -> None:
    app = start(TRANSFER)
    new_project(app)
    assert failures(feed_class_photos(app, corpus()), ignore=NO_NOTE) == []
    project = workspace_project("corpus")
    examples = project.examples("odd")
    assert len(examples) == sum(kind != "refuse" for _, kind in corpus().values())
    odd = next(e for e in app.expander if e.label.startswith("odd"))
    assert odd.label == f"odd · {len(examples)} example(s)" and images_in(odd) == len(examples), \
        "every stored photo (16-bit, CMYK, animated, 49 megapixels...) shows as a thumbnail"

    import streamlit as st

    examples[0].path.write_bytes(b"damaged on disk")  # a stored file the app can no longer read
    st.cache_data.clear()
    app.run()
    assert not app.exception and any(c.value == "cannot be shown" for c in app.caption)
    for example in examples:
        app.button(key=f"tl_del_{example.id}").click().run()
        assert not app.exception, app.exception
    assert project.counts() == {"odd": 0}
    uploader_of(app, "tl_up_odd").set_value([GOOD]).run()
    app.button(key="tl_up_go_odd").click().run()
    assert project.counts() == {"odd": 1} and not app.exception


@pytest.mark.slow
def test_the_class_zip_takes_every_file() -> None:
    app = start(TRANSFER)
    new_project(app)
    assert failures(feed_class_zip(app, corpus()) + feed_bad_archives(app), ignore=NO_NOTE) == []
    project = workspace_project("corpus")
    assert project.counts()["odd"] == sum(in_archive(n, d, k) != "refuse" for n, (d, k) in corpus().items())
    for example in project.examples("odd"):
        app.button(key=f"tl_del_{example.id}").click().run()
    assert project.counts() == {"odd": 0} and not app.exception


@pytest.mark.slow
def test_transfer_learning_says_which_frame_it_keeps() -> None:
    frames_only = {n: v for n, v in corpus().items() if v[1] == "frames"}
    app = start(TRANSFER)
    new_project(app)
    assert failures(feed_class_photos(app, frames_only) + feed_class_zip(app, frames_only)) == []


def face_photos() -> list[tuple[str, bytes, str]]:
    """Real faces in files a browser or JPEG encoder may not show: 16-bit grey, CMYK, and frame 1 of 3."""
    from vision_backend import samples

    obama = Image.open(samples.photos_dir() / "obama_1.jpg").convert("RGB")
    grey16 = Image.fromarray((np.asarray(obama.convert("L"), np.uint16) * 257))
    other = Image.open(samples.photos_dir() / "obama_2.jpg").convert("CMYK")
    animated = io.BytesIO()
    obama.save(animated, "GIF", save_all=True, duration=100,
               append_images=[Image.new("RGB", obama.size, c) for c in ((0, 0, 0), (255, 255, 255))])
    return [("obama_16bit.png", encode(grey16, "PNG"), "image/png"), ("obama_cmyk.jpg", encode(other, "JPEG"),
            "image/jpeg"), ("obama_3_frames.gif", animated.getvalue(), "image/gif")]


@pytest.mark.slow
def test_enrol_several_takes_every_file_and_the_gallery_still_works() -> None:
    require_real("photos")
    require_real("dlib_resnet_face")
    app = start(RECOGNITION)
    assert failures(feed_enrol(app, corpus())) == []
    assert any(m.value.startswith("**0 people enrolled**") for m in app.markdown), "bad photos enrol nobody"

    several_uploader(app).set_value(face_photos()).run()
    next(t for t in app.text_input if str(t.key).startswith("fr_multi_name_")).input("Barack Obama").run()
    app.button(key="fr_multi_go").click().run()
    assert not app.exception, app.exception
    assert any(m.value.startswith("**3 photo(s) of Barack Obama:** 3 enrolled") for m in app.markdown), \
        [m.value for m in app.markdown]
    assert any("obama_3_frames.gif" in plain(i.value) and "frame 1 of 3" in i.value for i in app.info)
    assert any(m.value.startswith("**1 person enrolled** with 3 face(s)") for m in app.markdown)
    panel = next(e for e in app.expander if e.label.startswith("Barack Obama"))
    assert images_in(panel) == 3

    from vision_backend.workspace import Workspace

    gallery = Workspace.local().gallery()
    person = gallery.people()[0]["id"]
    faces = gallery.faces(person)
    faces[0]["crop"].write_bytes(b"damaged on disk")
    app.run()
    assert not app.exception and not [e for e in app.error if "Something went wrong" in e.value]
    assert any(c.value == "cannot be shown" for c in app.caption), "the damaged face says so, and can go"
    app.button(key=f"fr_remove_{faces[0]['id']}").click().run()
    assert not app.exception and len(gallery.faces(person)) == 2
    assert any(m.value.startswith("**1 person enrolled** with 2 face(s)") for m in app.markdown)


@pytest.mark.slow
def test_verify_takes_every_file() -> None:
    require_real("dlib_resnet_face")
    app = start(RECOGNITION)
    assert failures(feed_verify(app, corpus())) == []


@pytest.mark.slow
def test_many_photos_take_every_file() -> None:
    require_real("mobilenet_v2_quant_tflite")  # the table needs a classifier; on an empty cache the page says so
    app = start(PRETRAINED)
    assert failures(feed_many_photos(app, corpus())) == []
    table = next(d.value for d in app.dataframe if "top-5" in d.value.columns)
    assert len(table) == len(corpus()), "one row per file"


@pytest.mark.slow
def test_the_digit_photo_takes_every_file() -> None:
    require_real("mnist_t10k")
    app = start(TRAIN_CNN)
    assert failures(feed_digit(app, corpus())) == []
    one = np.full((200, 200, 3), 255, np.uint8)
    one[20:180, 95:110] = 20
    app.file_uploader(key="cnn_digit_upload").set_value(("one.png", encode(Image.fromarray(one), "PNG"),
                                                         "image/png")).run()
    assert any(c.value.startswith("It says") for c in app.caption) and not app.exception


def test_the_corpus_has_forty_bad_files_of_every_kind() -> None:
    files = corpus()
    assert len(files) >= 40 and {kind for _, kind in files.values()} == {"refuse", "use", "frames"}
    assert len(files["flat_49_megapixels.png"][0]) < 2**20, "a flat photo compresses to little"
