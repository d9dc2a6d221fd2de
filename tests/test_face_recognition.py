"""Face recognition: real dlib embeddings, LFW fold 1, the VGGFace2 loader on a generated file, the gallery
(idempotent, refusing hostile names, swept on open), bulk enrolment, and the page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, require_real
from test_intake import BAD_FILES
from test_pages import open_tab, start
from vision_backend import samples
from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS
from vision_backend.face_recognition import EMBEDDERS, VGGFace2, lfw, recognise, scratch, vggface
from vision_backend.workspace import Workspace
from vision_backend.imageops import l2_normalise
from vision_backend.storage import InvalidName, NameTaken

DLIB = "dlib_resnet_face"


@pytest.fixture(scope="module")
def dlib(real_model):
    real_model("dlib_hog")
    return real_model(DLIB)


def embed_largest(embedder, name: str) -> np.ndarray:
    image = samples.load_sample(name)
    faces = recognise.largest(DETECTORS["dlib_hog"].detect(image))
    vectors, crops = embedder.embed(image, faces)
    assert vectors.shape == (1, 128) and crops[0].shape == (150, 150, 3)
    return vectors


def test_same_person_is_closer_than_another(dlib, photo) -> None:
    photo("obama_1.jpg")
    obama_1, obama_2, biden = (embed_largest(dlib, n) for n in ("obama_1.jpg", "obama_2.jpg", "biden.jpg"))
    assert np.allclose(np.linalg.norm(obama_1), 1.0, atol=1e-5), "unit vectors"
    same, different = recognise.distances(obama_1, obama_2)[0, 0], recognise.distances(obama_1, biden)[0, 0]
    assert same < different
    threshold = dlib.threshold
    assert recognise.verify(obama_1, obama_2, threshold)[0] and not recognise.verify(obama_1, biden, threshold)[0]


def test_analyse_finds_and_embeds_every_face(dlib, photo) -> None:
    faces = recognise.analyse(dlib, photo("two_people.jpg"))
    assert len(faces) == 2 and faces.vectors.shape == (2, 128) and len(faces.crops) == 2
    none = recognise.analyse(dlib, photo("no_face_eagle.jpg"))
    assert len(none) == 0 and none.vectors.shape == (0, 128) and none.crops == []


@pytest.mark.slow
def test_lfw_fold1_pair_accuracy(dlib) -> None:
    require_real("lfw")
    pairs = lfw.lfw_pairs()
    assert len(pairs) == 600 and sum(s for *_, s in pairs) == 300
    seen: list[tuple[int, int]] = []
    results = lfw.verify_pairs(dlib, lambda done, total: seen.append((done, total)))
    assert len(results.distances) == 600 and results.same.sum() == 300
    assert seen and seen[-1][0] == seen[-1][1], "progress reaches the end"
    metrics = results.metrics
    assert metrics.best_accuracy > 0.97 and metrics.auc > 0.99
    assert metrics.interval[0] < metrics.best_accuracy < metrics.interval[1]
    assert abs(metrics.best_threshold - dlib.threshold) < 0.1, "the default threshold is LFW's best"


def test_recognise_labels_unknown_beyond_the_threshold() -> None:
    gallery = l2_normalise(np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    faces = l2_normalise(np.array([[0.9, 0.1, 0], [0, 0, 1]], np.float32))
    first, second = recognise.recognise(faces, ["Ann", "Bob"], gallery, threshold=0.5)
    assert first.name == "Ann" and first.distance < 0.5
    assert second.name == "unknown" and second.nearest in {"Ann", "Bob"} and second.distance == pytest.approx(np.sqrt(2))
    assert recognise.recognise(faces, [], np.zeros((0, 3)), 0.5)[0].name == "unknown"


def test_near_the_threshold_a_face_is_uncertain_and_a_small_one_too_small_to_tell() -> None:
    gallery = l2_normalise(np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    angle = np.radians([10, 25, 28, 60])  # distances 0.17, 0.43, 0.48, 1.0 from Ann
    faces = np.stack([np.cos(angle), np.zeros(4), np.sin(angle)], 1).astype(np.float32)
    matches = recognise.recognise(faces, ["Ann", "Bob"], gallery, threshold=0.45, margin=0.04)
    assert [m.verdict for m in matches] == ["same", "uncertain", "uncertain", "different"]
    assert [m.name for m in matches] == ["Ann", "unknown", "unknown", "unknown"], "only a sure face is named"
    assert matches[1].caption.startswith("Ann? ") and matches[0].caption.startswith("Ann ")
    small = recognise.recognise(faces[:1], ["Ann", "Bob"], gallery, 0.45, 0.04, face_sides=np.array([30]), min_face=48)
    assert small[0].verdict == "too small" and small[0].name == "unknown" and small[0].caption == "too small to tell"
    assert recognise.judge(faces[0], gallery[0], 0.45, 0.04)[0] == "same"
    assert recognise.judge(faces[1], gallery[0], 0.45, 0.04)[0] == "uncertain"
    assert recognise.verify(faces[1], gallery[0], 0.45, 0.04)[0] is False, "an uncertain pair is not called the same"


def test_the_gallery_suggests_a_threshold_between_its_own_pairs() -> None:
    rng = np.random.default_rng(0)
    centres = l2_normalise(rng.normal(size=(3, 16)))
    vectors = l2_normalise(np.repeat(centres, 3, axis=0) + 0.1 * rng.normal(size=(9, 16)))
    names = [n for n in ("Ann", "Bob", "Cy") for _ in range(3)]
    threshold, same, different = recognise.suggest_threshold(names, vectors)
    d = recognise.distances(vectors, vectors)
    inside = max(d[i, j] for i in range(9) for j in range(9) if i < j and names[i] == names[j])
    outside = min(d[i, j] for i in range(9) for j in range(9) if names[i] != names[j])
    assert inside < threshold < outside and (same, different) == (9, 27)
    assert recognise.suggest_threshold(names[:2], vectors[:2]) is None, "too few pairs to suggest anything"


def test_a_face_near_someone_else_is_a_lookalike() -> None:
    gallery = l2_normalise(np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    near_ann = l2_normalise(np.array([0.95, 0.05, 0.0], np.float32))
    assert recognise.lookalike(near_ann, ["Ann", "Bob"], gallery, "Carol", 0.45)[0] == "Ann"
    assert recognise.lookalike(near_ann, ["Ann", "Bob"], gallery, "Ann", 0.45) is None, "Ann's own face"
    assert recognise.lookalike(l2_normalise(np.array([0, 0, 1.0], np.float32)), ["Ann", "Bob"], gallery, "Carol",
                               0.45) is None


def test_pair_metrics_on_a_known_case() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.25])
    same = np.array([True, True, True, False, False, False])
    metrics = lfw.pair_metrics(d, same)
    assert metrics.best_accuracy == pytest.approx(5 / 6) and metrics.best_threshold == pytest.approx(0.2)
    assert metrics.auc == pytest.approx(8 / 9)


# ---- VGGFace2 ResNet50: keras-vggface's layout, written by the test --------------------------
def keras_vggface_layers() -> list[tuple[str, list[tuple[str, tuple[int, ...]]]]]:
    """(layer name, [(weight name, shape)]) in keras-vggface's RESNET50 notop, names as it writes them."""
    def conv(name: str, k: int, cin: int, cout: int):
        return [(name, [(f"{name}/kernel:0", (k, k, cin, cout))]),
                (f"{name}/bn", [(f"{name}/bn/{w}:0", (cout,)) for w in ("gamma", "beta", "moving_mean", "moving_variance")])]

    layers = conv("conv1/7x7_s2", 7, 3, 64) + [("activation_1", []), ("max_pooling2d_1", [])]
    channels = 64
    for stage, (f1, f2, f3), blocks in ((2, (64, 64, 256), 3), (3, (128, 128, 512), 4), (4, (256, 256, 1024), 6),
                                        (5, (512, 512, 2048), 3)):
        for block in range(1, blocks + 1):
            p = f"conv{stage}_{block}"
            layers += conv(p + "_1x1_reduce", 1, channels, f1) + conv(p + "_3x3", 3, f1, f2) \
                + conv(p + "_1x1_increase", 1, f2, f3)
            if block == 1:
                layers += conv(p + "_1x1_proj", 1, channels, f3)
            channels = f3
    return layers + [("avg_pool", []), ("global_average_pooling2d_1", [])]


def write_keras_vggface_file(path: Path, seed: int = 0, skip: str | None = None) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    written = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        layers = [item for item in keras_vggface_layers() if item[0] != skip]
        handle.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, weights in layers:
            group = handle.create_group(name)
            group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights], dtype="S")
            values = []
            for weight, shape in weights:
                value = rng.uniform(0.5, 1.5, shape).astype(np.float32) if "variance" in weight \
                    else rng.normal(0, 0.05, shape).astype(np.float32)
                group.create_dataset(weight, data=value)
                values.append(value)
            written[name] = values
    return written


@pytest.mark.slow
def test_vggface2_loader_on_a_file_in_keras_vggface_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random weights in the published file's exact layout: plumbing only, never shown as the model
    (a private instance, so the registry's shared one never holds them)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    embedder = VGGFace2()
    card = embedder.card
    assert card is EMBEDDERS["vggface2_resnet50"].card
    written = write_keras_vggface_file(card.files[0].local)
    model = embedder.runtime()
    assert model.count_params() == 23_561_152 == card.params
    with_weights = [n for n, w in written.items() if w]
    assert len(with_weights) == len([layer for layer in model.layers if layer.weights]) == 106
    for name in with_weights:
        for expected, actual in zip(written[name], model.get_layer(vggface.keras_name(name)).get_weights()):
            np.testing.assert_array_equal(expected, actual)
    image = samples.load_sample("Astronaut (scikit-image)")
    vectors, crops = embedder.embed(image, Detections([[176, 62, 272, 172]], [1], [0]))
    assert vectors.shape == (1, 2048) and np.linalg.norm(vectors) == pytest.approx(1.0, abs=1e-5)
    assert crops[0].shape == (224, 224, 3)


def test_vggface2_loader_refuses_a_file_that_misses_a_layer(tmp_path: Path) -> None:
    write_keras_vggface_file(tmp_path / "partial.h5", skip="conv3_2_3x3")
    with pytest.raises(ValueError, match="got no weights"):
        vggface.load_weights(vggface.resnet50(), tmp_path / "partial.h5")


def test_vggface2_preprocessing_and_crop() -> None:
    rgb = np.zeros((1, 2, 2, 3), np.float32)
    rgb[..., 0] = 200  # red
    out = vggface.preprocess(rgb)
    assert out[0, 0, 0].tolist() == pytest.approx([-91.4953, -103.8827, 200 - 131.0912]), "BGR minus means"
    image = np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3)
    assert vggface.crop(image, np.array([-10, -10, 30, 30])).shape == (224, 224, 3), "edges are padded"


# ---- the gallery ---------------------------------------------------------------------------
def face(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A made-up (embedding, crop): different seeds give different crops."""
    rng = np.random.default_rng(seed)
    return l2_normalise(rng.normal(size=128).astype(np.float32)), rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)


def test_gallery_persists_across_a_new_process(tmp_path: Path) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    person = gallery.add_person("Ada")
    crop = np.full((20, 20, 3), 90, np.uint8)
    vector = l2_normalise(np.arange(128, dtype=np.float32))
    other_vector, other_crop = face(1)
    assert gallery.add_face(person, DLIB, vector, crop, "ada.jpg")
    assert not gallery.add_face(person, DLIB, vector, crop, "ada_again.jpg"), "the same face again adds no row"
    assert gallery.add_face(person, DLIB, other_vector, other_crop, "ada_2.jpg")
    gallery.add_face(person, "vggface2_resnet50", face(2)[0].repeat(16), crop, "ada.jpg")
    assert len(list((tmp_path / "faces" / "crops").iterdir())) == 2, "the same crop is stored once"
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from vision_backend.workspace import Workspace\n"
            f"g = Workspace.at({str(tmp_path)!r}).gallery(); names, vectors = g.embeddings({DLIB!r}, 128)\n"
            "print(g.people()[0]['name'], g.people()[0]['faces'], names, vectors.shape, round(float(vectors[0, 127]), 4))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"Ada 3 ['Ada', 'Ada'] (2, 128) {round(float(vector[127]), 4)}", "one recogniser's faces only"
    gallery.rename(person, "Ada Lovelace")
    assert gallery.people()[0]["name"] == "Ada Lovelace"
    gallery.delete_person(person)
    assert gallery.people() == [] and gallery.embeddings(DLIB, 128)[0] == []
    assert gallery.embeddings(DLIB, 128)[1].shape == (0, 128)
    assert list((tmp_path / "faces" / "crops").iterdir()) == [], "a deleted person's crops go too"
    with pytest.raises(ValueError):
        gallery.add_person("  ")


def test_enrolling_the_same_face_twice_is_one_row(tmp_path: Path) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    vector, crop = face(0)
    assert gallery.enrol("Ada", DLIB, [(vector, crop, "ada.jpg")]) == 1
    assert gallery.enrol("Ada", DLIB, [(vector, crop, "ada.jpg")]) == 0
    assert gallery.enrol("Ada", DLIB, [(vector, crop, "ada.jpg"), face(1) + ("ada_2.jpg",)]) == 1
    assert gallery.people() == [{"id": gallery.people()[0]["id"], "name": "Ada", "faces": 2}]
    assert len(gallery.embeddings(DLIB, 128)[0]) == 2
    assert len(list((tmp_path / "faces" / "crops").iterdir())) == 2


def test_rename_onto_a_taken_name_raises_name_taken(tmp_path: Path) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    gallery.enrol("Ada", DLIB, [face(0) + ("a.jpg",)])
    gallery.enrol("Bob", DLIB, [face(1) + ("b.jpg",)])
    bob = next(p["id"] for p in gallery.people() if p["name"] == "Bob")
    with pytest.raises(NameTaken, match="Ada"):
        gallery.rename(bob, "Ada")
    with pytest.raises(NameTaken):
        gallery.rename(bob, "  Ada ")
    assert sorted(p["name"] for p in gallery.people()) == ["Ada", "Bob"], "nothing changed"
    gallery.rename(bob, "Bob")  # its own name is not taken


HOSTILE = ["../../x", "a/b", "a\\b", "Ada\x00", "\x00", "x" * 10_000, ".", "..", ".hidden", "Ada\nLovelace", "\t"]


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    with pytest.raises(InvalidName):
        gallery.enrol(name, DLIB, [face(0) + ("a.jpg",)])
    with pytest.raises(InvalidName):
        gallery.add_person(name)
    person = gallery.add_person("Ada")
    with pytest.raises(InvalidName):
        gallery.rename(person, name)
    assert [p["name"] for p in gallery.people()] == ["Ada"]
    assert list((tmp_path / "faces" / "crops").iterdir()) == [], "a refused enrolment stores no crop"


def test_a_trailing_newline_never_reaches_the_gallery(tmp_path: Path) -> None:
    """The naming rule strips surrounding white space (a newline too) before checking, so "Ada\\n" is Ada,
    the same person, not a look-alike; a newline inside a name is refused (test above)."""
    gallery = Workspace.at(tmp_path).gallery()
    gallery.enrol("Ada", DLIB, [face(0) + ("a.jpg",)])
    gallery.enrol("Ada\n", DLIB, [face(1) + ("b.jpg",)])
    assert gallery.people()[0]["name"] == "Ada" and gallery.people()[0]["faces"] == 2 and len(gallery.people()) == 1


def test_enrolling_no_faces_creates_nobody(tmp_path: Path) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    assert gallery.enrol("Ada", DLIB, []) == 0
    assert gallery.people() == []


def test_a_crop_without_a_row_is_swept_when_the_gallery_opens(tmp_path: Path) -> None:
    gallery = Workspace.at(tmp_path).gallery()
    gallery.enrol("Ada", DLIB, [face(0) + ("a.jpg",)])
    kept = set((tmp_path / "faces" / "crops").iterdir())
    orphan = tmp_path / "faces" / "crops" / ("0" * 64 + ".png")
    orphan.write_bytes(b"a crash left this crop without its row")
    Workspace.at(tmp_path).gallery()
    assert not orphan.exists()
    assert set((tmp_path / "faces" / "crops").iterdir()) == kept, "enrolled crops stay"
    assert gallery.people()[0]["faces"] == 1


# ---- bulk enrolment ------------------------------------------------------------------------
def test_enrol_photos_reports_every_file_and_enrols_one_face_each(dlib, tmp_path: Path) -> None:
    require_real("photos")
    files = {n: (samples.photos_dir() / n).read_bytes() for n in ("obama_1.jpg", "obama_2.jpg", "two_people.jpg",
                                                                 "no_face_eagle.jpg")}
    photos = [(n, data) for n, data in files.items()] + [("broken.jpg", BAD_FILES["truncated_half.jpg"]),
                                                          ("obama_1 again.jpg", files["obama_1.jpg"])]
    gallery = Workspace.at(tmp_path).gallery()
    report = recognise.enrol_photos(gallery, dlib, " Barack Obama ", photos)
    assert [r["photo"] for r in report] == [n for n, _ in photos], "one row per file, in order"
    assert [r["result"] for r in report] == ["enrolled", "enrolled", "skipped", "skipped", "skipped",
                                             "already enrolled"], "the same photo under another file name: one face"
    assert "2 faces" in report[2]["reason"] and "pick the one" in report[2]["reason"]
    assert "no face" in report[3]["reason"]
    assert "broken.jpg" in report[4]["reason"]
    assert gallery.people()[0]["name"] == "Barack Obama" and gallery.people()[0]["faces"] == 2
    again = recognise.enrol_photos(gallery, dlib, "Barack Obama", photos[:1])
    assert again[0]["result"] == "already enrolled" and gallery.people()[0]["faces"] == 2


def test_enrol_photos_without_a_usable_face_creates_nobody_and_checks_the_name_first(dlib, tmp_path: Path) -> None:
    require_real("photos")
    gallery = Workspace.at(tmp_path).gallery()
    eagle = (samples.photos_dir() / "no_face_eagle.jpg").read_bytes()
    report = recognise.enrol_photos(gallery, dlib, "Nobody", [("eagle.jpg", eagle)])
    assert report[0]["result"] == "skipped" and gallery.people() == []
    with pytest.raises(InvalidName):
        recognise.enrol_photos(gallery, dlib, "../x", [("eagle.jpg", eagle)])


def test_demo_people_are_enrolled_once(dlib, tmp_path: Path) -> None:
    require_real("photos")
    gallery = Workspace.at(tmp_path).gallery()
    first = recognise.enrol_demo_people(gallery, dlib)
    assert [r["result"] for r in first] == ["enrolled", "enrolled"]
    assert [r["result"] for r in recognise.enrol_demo_people(gallery, dlib)] == ["already enrolled"] * 2
    assert {p["name"]: p["faces"] for p in gallery.people()} == {"Barack Obama": 1, "Joe Biden": 1}
    names, vectors = gallery.embeddings(DLIB, 128)
    two = recognise.analyse(dlib, samples.load_sample("two_people.jpg"))
    matches = recognise.recognise(two.vectors, names, vectors, dlib.threshold)
    assert {m.name for m in matches} == set(recognise.DEMO_PEOPLE)


# ---- the page ------------------------------------------------------------------------------
@pytest.fixture
def fresh_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's gallery in a folder of this test's own, so page tests do not see each other's people."""
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path))
    return tmp_path


def recognised_table(app) -> pd.DataFrame:
    return next(d.value for d in app.dataframe if "who" in d.value.columns)


def gallery_labels(app) -> list[str]:
    return sorted(e.label for e in app.expander if "·" in e.label and "face(s)" in e.label)


def test_face_recognition_page_enrols_recognises_and_verifies(fresh_workspace) -> None:
    require_real("photos")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    assert any(m.value.startswith("**0 people enrolled**") for m in app.markdown)
    app.button(key="fr_demo").click().run()
    assert not app.exception, app.exception
    assert gallery_labels(app) == ["Barack Obama · 1 face(s)", "Joe Biden · 1 face(s)"]
    assert any(m.value.startswith("**2 people enrolled** with 2 face(s)") for m in app.markdown), "counted at once"
    app.button(key="fr_demo").click().run()
    assert any(m.value.startswith("**2 people enrolled** with 2 face(s)") for m in app.markdown), "a 2nd click adds none"
    app.sidebar.selectbox(key="sample_name").set_value("two_people.jpg").run()
    assert any(i.value.startswith("2 faces in this photo") for i in app.info), "two faces: pick one to enrol"

    open_tab(app, "Recognise").sidebar.selectbox(key="sample_name").set_value("obama_2.jpg").run()
    assert not app.exception, app.exception
    assert list(recognised_table(app)["who"]) == ["Barack Obama"]
    assert any(c.value.startswith("1 face(s) in obama_2.jpg; 1 recognised") for c in app.caption)
    app.sidebar.selectbox(key="sample_name").set_value("two_people.jpg").run()
    table = recognised_table(app)
    assert set(table["who"]) == {"Barack Obama", "Joe Biden"} and set(table["verdict"]) == {"named"}
    assert any(c.value.startswith("2 face(s) in two_people.jpg; 2 recognised") for c in app.caption)
    assert {"Annotated image (PNG)", "Faces (CSV)"} <= {b.label for b in app.get("download_button")}

    open_tab(app, "Verify two faces").sidebar.selectbox(key="sample_name").set_value("obama_1.jpg").run()
    assert any("Verdict: **the same person**" in c.value for c in app.caption), "obama_1 vs obama_2"
    app.selectbox(key="fr_other_sample").set_value("biden.jpg").run()
    assert any("Verdict: **different people**" in c.value for c in app.caption), "obama_1 vs biden"

    open_tab(app, "Gallery: enrol people").sidebar.selectbox(key="sample_name").set_value("no_face_eagle.jpg").run()
    assert not app.exception, app.exception
    assert any(w.value.startswith("No face found in no_face_eagle.jpg") for w in app.warning)


def test_face_recognition_page_threshold_and_names(fresh_workspace) -> None:
    require_real("photos")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    app.sidebar.selectbox(key="sample_name").set_value("obama_1.jpg").run()
    assert app.slider(key=f"fr:{DLIB}:threshold").value == EMBEDDERS[DLIB].threshold
    app.text_input(key="fr_enrol_name").input("../Obama").run()
    app.button(key="fr_enrol").click().run()
    assert any("cannot contain a slash" in e.value for e in app.error), "the naming rule's message, in the page"
    assert gallery_labels(app) == [], "nobody enrolled"
    app.text_input(key="fr_enrol_name").input("Barack").run()
    app.button(key="fr_enrol").click().run()
    assert any(s.value.startswith("Face 1 of obama\\_1\\.jpg: enrolled as Barack") for s in app.success), \
        [s.value for s in app.success]
    assert any(m.value.startswith("**1 person enrolled** with 1 face(s)") for m in app.markdown)

    open_tab(app, "Recognise").sidebar.selectbox(key="sample_name").set_value("obama_2.jpg").run()
    assert list(recognised_table(app)["who"]) == ["Barack"]
    app.slider(key=f"fr:{DLIB}:threshold").set_value(0.1).run()
    assert list(recognised_table(app)["who"]) == ["unknown"], "a tight threshold names nobody"
    assert any(c.value.startswith("1 face(s) in obama_2.jpg; 0 recognised at distance ≤ 0.07") for c in app.caption)

    open_tab(app, "Gallery: enrol people").sidebar.selectbox(key="sample_name").set_value("biden.jpg").run()
    app.text_input(key="fr_enrol_name").input("Joe").run()
    app.button(key="fr_enrol").click().run()
    assert any(m.value.startswith("**2 people enrolled** with 2 face(s)") for m in app.markdown)
    app.text_input(key="fr_rename_2").input("Barack").run()
    app.button(key="fr_rename_go_2").click().run()
    assert not app.exception, app.exception
    assert any("already enrolled" in e.value for e in app.error), "NameTaken, as a message"
    assert gallery_labels(app) == ["Barack · 1 face(s)", "Joe · 1 face(s)"]


def upload_several(app, names: list[str], person: str, extra: list | None = None) -> None:
    """Photos into the "several photos of one person" uploader (whichever version it is now) and a name."""
    folder = samples.photos_dir()
    uploader = next(u for u in app.get("file_uploader") if str(u.key).startswith("fr_multi_"))
    files = [(n, (folder / n).read_bytes(), "image/jpeg") for n in names] + (extra or [])
    uploader.set_value(files).run()
    next(t for t in app.text_input if str(t.key).startswith("fr_multi_name_")).input(person).run()


def test_face_recognition_page_enrols_several_uploads_with_a_report(fresh_workspace) -> None:
    require_real("photos")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    upload_several(app, ["obama_1.jpg", "obama_2.jpg", "two_people.jpg"], "Barack Obama",
                   [("broken.jpg", BAD_FILES["truncated_half.jpg"], "image/jpeg")])
    assert any("two\\_people\\.jpg** has 2 faces" in m.value for m in app.markdown), "a photo of two: pick one"
    pick = next(r for r in app.radio if str(r.key).startswith("fr_multi_face_"))
    two = recognise.analyse(EMBEDDERS[DLIB], samples.load_sample("two_people.jpg")).vectors
    obama = recognise.analyse(EMBEDDERS[DLIB], samples.load_sample("obama_1.jpg")).vectors
    pick.set_value(int(recognise.distances(obama, two)[0].argmin())).run()  # the face in it that is Obama
    app.button(key="fr_multi_go").click().run()
    assert not app.exception, app.exception
    report = next(d.value for d in app.dataframe if "photo" in d.value.columns and "reason" in d.value.columns)
    assert report.set_index("photo")["result"].to_dict() == {
        "obama_1.jpg": "enrolled", "obama_2.jpg": "enrolled", "two_people.jpg": "enrolled", "broken.jpg": "skipped"}
    assert any(m.value.startswith("**1 person enrolled** with 3 face(s)") for m in app.markdown)
    names, vectors = Workspace.local().gallery().embeddings(DLIB, 128)
    assert recognise.distances(obama, vectors).max() < EMBEDDERS[DLIB].threshold, "the picked face is Obama's"
    assert not [u for u in app.get("file_uploader") if str(u.key).startswith("fr_multi_") and u.value], \
        "the uploader starts empty again"


def test_enrolling_two_people_in_a_row_mixes_nobody_up(fresh_workspace) -> None:
    """The issue's mix-up: enrol A, then B's photo with B's name: B must hold only B's face, and a face of A
    uploaded again under B's name is flagged, not added."""
    require_real("photos")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    upload_several(app, ["obama_1.jpg"], "Barack Obama")
    app.button(key="fr_multi_go").click().run()
    upload_several(app, ["biden.jpg"], "Joe Biden")
    app.button(key="fr_multi_go").click().run()
    assert gallery_labels(app) == ["Barack Obama · 1 face(s)", "Joe Biden · 1 face(s)"], "one face each, their own"
    upload_several(app, ["obama_2.jpg"], "Joe Biden")  # Obama's other photo, under Biden's name
    app.button(key="fr_multi_go").click().run()
    report = next(d.value for d in app.dataframe if "reason" in d.value.columns)
    assert list(report["result"]) == ["flagged"] and "Barack Obama" in report["reason"][0]
    assert gallery_labels(app) == ["Barack Obama · 1 face(s)", "Joe Biden · 1 face(s)"], "the flagged face is not added"


def test_the_current_photo_flags_a_face_enrolled_under_another_name(fresh_workspace) -> None:
    require_real("photos")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    app.button(key="fr_demo").click().run()
    app.sidebar.selectbox(key="sample_name").set_value("obama_2.jpg").run()
    app.text_input(key="fr_enrol_name").input("Someone Else").run()
    assert any("looks like **Barack Obama**" in w.value for w in app.warning), [w.value for w in app.warning]
    app.button(key="fr_enrol").click().run()
    assert any("flagged" in w.value for w in app.warning) and "Someone Else · 1 face(s)" not in gallery_labels(app)
    app.checkbox(key="fr_enrol_anyway").check().run()
    app.button(key="fr_enrol").click().run()
    assert "Someone Else · 1 face(s)" in gallery_labels(app), "enrolled when the person says so"


@pytest.mark.slow
def test_face_recognition_page_measures_on_lfw() -> None:
    """The measure tab shows the backend's LFW figures (embeddings cached on disk by the LFW test before it)."""
    require_real("lfw")
    require_real(DLIB)
    app = open_tab(start("pages/face_recognition.py"), "Measure on LFW")
    app.button(key="fr_measure").click().run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Accuracy at the best threshold"].rstrip("%")) > 97
    assert float(metrics["ROC AUC"]) > 0.99
    assert abs(float(metrics["Suggested threshold"]) - EMBEDDERS[DLIB].threshold) < 0.1
    assert any(c.value.startswith("LFW fold 1: accuracy") and "Published: LFW 99.38%" in c.value for c in app.caption)


def test_the_five_lfw_people_and_their_split() -> None:
    require_real("lfw")
    files, labels, names = lfw.lfw_people()
    assert len(files) == 1140 and names[2] == "George_W_Bush" and np.bincount(labels)[2] == 530
    train, test = scratch.stratified_split(labels)
    assert len(test) == 285 and not set(train) & set(test)
    assert np.allclose(np.bincount(labels[test]) / len(test), np.bincount(labels) / len(labels), atol=0.01)
    face = scratch.centre_face(np.zeros((250, 250, 3), np.uint8))
    assert face.shape == (64, 64)
    model = scratch.scratch_cnn(5)
    assert model.output_shape == (None, 5)


def test_comparison_accuracies_and_confusion() -> None:
    result = scratch.Comparison(["Ann", "Bob", "Cy"], np.array([0, 0, 1, 2]), np.array([0, 0, 1, 2]),
                                np.array([0, 1, 1, 1]))
    assert result.embeddings_accuracy == 1.0 and result.scratch_accuracy == 0.5
    assert result.confusion(result.scratch_predicted).tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]], "rows: true"
