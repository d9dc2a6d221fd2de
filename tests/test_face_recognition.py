"""Face recognition: real dlib embeddings, LFW fold 1, the VGGFace2 loader on a generated file, the gallery, the page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import ROOT, require_real
from test_pages import start
from vision_backend import face_recognition as fr
from vision_backend import models, samples, vggface
from vision_backend.detections import Detections


@pytest.fixture(scope="module")
def dlib_parts(real_model):
    return real_model("dlib_resnet_face"), real_model("dlib_hog")


def embed_largest(parts, name: str) -> np.ndarray:
    network, hog = parts
    image = samples.load_sample(name)
    faces = fr.largest(fr.find_faces(hog, image))
    vectors, crops = fr.RECOGNISERS["dlib"].embed(network, image, faces)
    assert vectors.shape == (1, 128) and crops[0].shape == (150, 150, 3)
    return vectors


def test_same_person_is_closer_than_another(dlib_parts, photo) -> None:
    photo("obama_1.jpg")
    obama_1, obama_2, biden = (embed_largest(dlib_parts, n) for n in ("obama_1.jpg", "obama_2.jpg", "biden.jpg"))
    assert np.allclose(np.linalg.norm(obama_1), 1.0, atol=1e-5), "unit vectors"
    same, different = fr.distances(obama_1, obama_2)[0, 0], fr.distances(obama_1, biden)[0, 0]
    assert same < different
    threshold = fr.RECOGNISERS["dlib"].threshold
    assert fr.verify(obama_1, obama_2, threshold)[0] and not fr.verify(obama_1, biden, threshold)[0]


def test_lfw_fold1_pair_accuracy(dlib_parts) -> None:
    require_real("lfw")
    network, hog = dlib_parts
    pairs = fr.lfw_pairs()
    assert len(pairs) == 600 and sum(s for *_, s in pairs) == 300
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    vectors = fr.embed_files(fr.RECOGNISERS["dlib"], network, hog, files)
    d = np.array([fr.distances(vectors[a], vectors[b])[0, 0] for a, b, _ in pairs])
    metrics = fr.pair_metrics(d, np.array([s for *_, s in pairs]))
    assert metrics.best_accuracy > 0.97 and metrics.auc > 0.99
    assert metrics.interval[0] < metrics.best_accuracy < metrics.interval[1]
    assert abs(metrics.best_threshold - fr.RECOGNISERS["dlib"].threshold) < 0.1, "the default threshold is LFW's best"


def test_recognise_labels_unknown_beyond_the_threshold() -> None:
    gallery = fr.l2_normalise(np.array([[1, 0, 0], [0, 1, 0]], np.float32))
    faces = fr.l2_normalise(np.array([[0.9, 0.1, 0], [0, 0, 1]], np.float32))
    first, second = fr.recognise(faces, ["Ann", "Bob"], gallery, threshold=0.5)
    assert first.name == "Ann" and first.distance < 0.5
    assert second.name == "unknown" and second.nearest in {"Ann", "Bob"} and second.distance == pytest.approx(np.sqrt(2))
    assert fr.recognise(faces, [], np.zeros((0, 3)), 0.5)[0].name == "unknown"


def test_pair_metrics_on_a_known_case() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.25])
    same = np.array([True, True, True, False, False, False])
    metrics = fr.pair_metrics(d, same)
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


def test_vggface2_loader_on_a_file_in_keras_vggface_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random weights in the published file's exact layout: plumbing only, never shown as the model."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    card = models.card("vggface2_resnet50")
    written = write_keras_vggface_file(card.files[0].local)
    model = models.load("vggface2_resnet50")
    assert model.count_params() == 23_561_152 == card.params
    with_weights = [n for n, w in written.items() if w]
    assert len(with_weights) == len([layer for layer in model.layers if layer.weights]) == 106
    for name in with_weights:
        for expected, actual in zip(written[name], model.get_layer(vggface.keras_name(name)).get_weights()):
            np.testing.assert_array_equal(expected, actual)
    image = samples.load_sample("Astronaut (scikit-image)")
    vectors, crops = vggface.embed(model, image, Detections([[176, 62, 272, 172]], [1], [0]))
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
def test_gallery_persists_across_a_new_process(tmp_path: Path) -> None:
    gallery = fr.Gallery(tmp_path / "faces")
    person = gallery.add_person("Ada")
    crop = np.full((20, 20, 3), 90, np.uint8)
    vector = fr.l2_normalise(np.arange(128, dtype=np.float32))
    gallery.add_face(person, "dlib", vector, crop, "ada.jpg")
    gallery.add_face(person, "dlib", vector, crop, "ada_again.jpg")
    assert len(list((tmp_path / "faces" / "crops").iterdir())) == 1, "the same crop is stored once"
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from vision_backend import face_recognition as fr\n"
            f"g = fr.Gallery({str(tmp_path / 'faces')!r}); names, vectors = g.embeddings('dlib')\n"
            "print(g.people()[0]['name'], g.people()[0]['faces'], names, vectors.shape, round(float(vectors[0, 127]), 4))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"Ada 2 ['Ada', 'Ada'] (2, 128) {round(float(vector[127]), 4)}"
    gallery.rename(person, "Ada Lovelace")
    assert gallery.people()[0]["name"] == "Ada Lovelace"
    gallery.delete_person(person)
    assert gallery.people() == [] and gallery.embeddings("dlib")[0] == []
    with pytest.raises(ValueError):
        gallery.add_person("  ")


# ---- the page ------------------------------------------------------------------------------
def test_face_recognition_page_enrols_recognises_and_verifies() -> None:
    require_real("photos")
    require_real("dlib_resnet_face")
    app = start("pages/face_recognition.py")
    app.button(key="fr_demo").click().run()
    assert not app.exception, app.exception
    assert any("Barack Obama · 1 face(s)" in e.label for e in app.expander)

    app.sidebar.selectbox(key="sample_name").set_value("two_people.jpg").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert set(table["who"]) == {"Barack Obama", "Joe Biden"}
    assert any(c.value.startswith("2 face(s) in two_people.jpg; 2 recognised") for c in app.caption)
    assert any(i.value.startswith("2 faces in this photo") for i in app.info), "two faces: pick one to enrol"
    assert {"Annotated image (PNG)", "Faces (CSV)"} <= {b.label for b in app.get("download_button")}

    app.sidebar.selectbox(key="sample_name").set_value("obama_1.jpg").run()
    assert any("Verdict: **the same person**" in c.value for c in app.caption), "obama_1 vs obama_2"

    app.sidebar.selectbox(key="sample_name").set_value("no_face_eagle.jpg").run()
    assert not app.exception, app.exception
    assert any(w.value.startswith("No face found in no_face_eagle.jpg") for w in app.warning)


def test_the_five_lfw_people_and_their_split() -> None:
    require_real("lfw")
    files, labels, names = fr.lfw_people()
    assert len(files) == 1140 and names[2] == "George_W_Bush" and np.bincount(labels)[2] == 530
    train, test = fr.stratified_split(labels)
    assert len(test) == 285 and not set(train) & set(test)
    assert np.allclose(np.bincount(labels[test]) / len(test), np.bincount(labels) / len(labels), atol=0.01)
    face = fr.centre_face(np.zeros((250, 250, 3), np.uint8))
    assert face.shape == (64, 64)
    model = fr.scratch_cnn(5)
    assert model.output_shape == (None, 5)
