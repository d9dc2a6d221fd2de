"""Transfer learning studio: persistent projects, the feature cache, training on real photos, export, the page."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, require_real
from test_intake import BAD_FILES
from test_pages import start
from vision_backend import classification as cl
from vision_backend import models, projects, transfer
from vision_backend.intake import ImageIntakeError, read_image


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def flowers() -> dict[str, list[Path]]:
    require_real("demo_classes")
    return transfer.class_folders(models.card("demo_classes").path())


@pytest.fixture(scope="module")
def base():
    require_real("mobilenet_v2_notop")
    return models.load("mobilenet_v2_notop")


def fill(project: projects.Project, flowers, classes=("daisy", "sunflower"), per_class: int = 12) -> None:
    for label in classes:
        for file in flowers[label][:per_class]:
            project.add_example(label, file.read_bytes(), file.name)


def test_a_project_survives_a_restart(home: Path, flowers) -> None:
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from pathlib import Path\nfrom vision_backend import projects\n"
            "p = projects.Project('mugs')\n"
            f"files = sorted(Path({str(flowers['rose'][0].parent)!r}).glob('*.jpg'))[:3]\n"
            "[p.add_example('rose', f.read_bytes(), f.name) for f in files]\nprint(p.counts())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "VISION_LAB_HOME": str(home)})
    assert out.stdout.strip() == "{'rose': 3}"
    again = projects.Project("mugs", create=False)
    assert again.counts() == {"rose": 3} and projects.list_projects() == ["mugs"]
    assert all(e.path.is_file() for e in again.examples())


def test_duplicates_are_stored_once_and_bad_files_not_at_all(home: Path, flowers) -> None:
    project = projects.Project("p")
    data = flowers["tulip"][0].read_bytes()
    assert project.add_example("tulip", data, "a.jpg") and not project.add_example("tulip", data, "copy.jpg")
    project.add_example("other", data, "same bytes, other class")
    assert len(list((project.folder / "images").iterdir())) == 1, "one file for the same bytes"
    with pytest.raises(ImageIntakeError):
        project.add_example("tulip", BAD_FILES["truncated_half.jpg"], "broken.jpg")
    assert project.counts() == {"other": 1, "tulip": 1}
    with pytest.raises(ValueError):
        projects.Project("../escape")


def test_classes_and_examples_can_be_renamed_moved_and_deleted(home: Path, flowers) -> None:
    project = projects.Project("p")
    fill(project, flowers, ("daisy", "rose"), 3)
    first = project.examples("daisy")[0]
    project.move_example(first.id, "rose")
    assert project.counts() == {"daisy": 2, "rose": 4}
    project.rename_class("rose", "roses")
    project.delete_example(project.examples("daisy")[0].id)
    assert project.counts() == {"daisy": 1, "roses": 4}
    assert "Class 'daisy' has 1 example(s)" in " ".join(project.problems())
    project.delete_class("daisy")
    assert project.problems() == ["Training needs at least two classes with examples."]


def test_zip_export_and_import_round_trip(home: Path, flowers) -> None:
    project = projects.Project("a")
    fill(project, flowers, ("daisy", "rose"), 4)
    archive = project.export_zip()
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert sorted({n.split("/")[0] for n in z.namelist()}) == ["daisy", "rose"]
    copy = projects.Project("b")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("rose/broken.jpg", BAD_FILES["truncated_half.jpg"])
    added, skipped = copy.import_zip(archive)
    assert added == 8 and skipped == [] and copy.counts() == project.counts()
    added, skipped = copy.import_zip(buffer.getvalue())
    assert added == 0 and len(skipped) == 1 and "broken.jpg" in skipped[0]


def test_the_feature_cache_is_hit_on_the_second_run(home: Path, flowers, base) -> None:
    project = projects.Project("p")
    fill(project, flowers, ("daisy", "rose"), 4)
    calls = []

    def compute(files):
        calls.append(len(files))
        return transfer.image_features("mobilenet_v2_notop", base, transfer.read_files(files), "layers")

    digests = [e.digest for e in project.examples()]
    first, computed = project.cached_features("mobilenet_v2_notop", digests, compute)
    again, computed_again = project.cached_features("mobilenet_v2_notop", digests, compute)
    assert (computed, computed_again, calls) == (8, 0, [8])
    np.testing.assert_array_equal(first, again)
    fill(project, flowers, ("tulip",), 2)
    _, computed = project.cached_features("mobilenet_v2_notop", [e.digest for e in project.examples()], compute)
    assert computed == 2, "adding two photos costs two forward passes"


def test_two_classes_of_real_photos_then_a_held_out_one(home: Path, flowers, base) -> None:
    project = projects.Project("p")
    fill(project, flowers, ("daisy", "sunflower"), 20)
    trained = transfer.train_project(project, "mobilenet_v2_notop", base, transfer.HeadSettings(epochs=60))
    assert trained.names == ["daisy", "sunflower"] and trained.accuracy >= 0.8
    held_out = {name: transfer.read_files(flowers[name][40:50]) for name in trained.names}  # never labelled
    right = sum(int((transfer.predict_images(trained, base, photos).argmax(1) == k).sum())
                for k, photos in enumerate(held_out.values()))
    assert right >= 17, f"{right}/20 held-out photos"
    assert {row["class"] for row in trained.per_class()} == {"daisy", "sunflower"}
    assert trained.confusion().sum() == len(trained.labels)


def test_training_refuses_one_class_with_a_clear_message(home: Path, flowers, base) -> None:
    project = projects.Project("p")
    fill(project, flowers, ("daisy",), 3)
    with pytest.raises(ValueError, match="at least two classes"):
        transfer.train_project(project, "mobilenet_v2_notop", base)


@pytest.mark.parametrize("pooling", list(transfer.POOLINGS))
def test_exported_model_takes_raw_pixels_and_onnx_agrees(home: Path, flowers, base, tmp_path: Path,
                                                          pooling: str) -> None:
    project = projects.Project("p")
    fill(project, flowers, ("daisy", "rose", "tulip"), 6)
    settings = transfer.HeadSettings(pooling=pooling, hidden=16, epochs=20, mirror=False, validation=0.2)
    trained = transfer.train_project(project, "mobilenet_v2_notop", base, settings)
    exported = transfer.export_model("mobilenet_v2_notop", base, trained)
    photos = [read_image(f.read_bytes(), f.name) for f in (flowers["daisy"][40], flowers["rose"][40])]
    raw = np.stack([cl.resize(p, 224) for p in photos]).astype(np.float32)
    from_export = np.asarray(exported.predict_on_batch(raw))
    np.testing.assert_allclose(from_export, transfer.predict_images(trained, base, photos), atol=1e-4)
    assert cl.last_conv_layer(exported) == "out_relu", "one flat graph: Grad-CAM sees the base's layers"
    session = models.onnx_session(cl.keras_to_onnx(exported, tmp_path / "exported.onnx"))
    from_onnx = session.run(None, {session.get_inputs()[0].name: raw})[0]
    np.testing.assert_allclose(from_onnx, from_export, atol=1e-4)


def test_exported_model_converts_to_tflite(home: Path, flowers, base, tmp_path: Path) -> None:
    import tensorflow as tf

    project = projects.Project("p")
    fill(project, flowers, ("daisy", "rose"), 5)
    trained = transfer.train_project(project, "mobilenet_v2_notop", base, transfer.HeadSettings(epochs=10))
    exported = transfer.export_model("mobilenet_v2_notop", base, trained)
    path = cl.keras_to_tflite(exported, tmp_path / "exported.tflite")
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    raw = cl.resize(read_image(flowers["rose"][30].read_bytes(), "r.jpg"), 224)[None].astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], raw)
    interpreter.invoke()
    from_tflite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(from_tflite, exported.predict_on_batch(raw), atol=1e-4)


def test_full_mode_trains_through_augmented_photos_and_fine_tunes(home: Path, flowers, base) -> None:
    """End to end on real photos; fine-tuning changes the unfrozen copy's weights and never the shared base."""
    project = projects.Project("full")
    fill(project, flowers, ("daisy", "sunflower"), 12)
    before = [w.copy() for w in base.get_weights()]
    settings = transfer.FullSettings(epochs=6, batch_size=4, learning_rate=3e-3, fine_tune_layers=4,
                                     fine_tune_epochs=2, patience=0, validation=0.25)
    trained = transfer.train_full(project, "mobilenet_v2_notop", base, settings)
    assert trained.head is None and len(trained.history["loss"]) == 8
    assert trained.accuracy >= 0.8, trained.accuracy
    tuned = dict(zip([w.path for w in trained.model.weights], trained.model.get_weights()))
    conv = next(k for k in tuned if k.startswith("Conv_1/") or k.endswith("Conv_1/kernel"))
    assert np.abs(tuned[conv] - base.get_layer("Conv_1").get_weights()[0]).max() > 0, "the top conv was tuned"
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights())), "the shared base is untouched"
    right = sum(int((transfer.predict_images(trained, base, transfer.read_files(flowers[name][40:50])).argmax(1)
                     == k).sum()) for k, name in enumerate(trained.names))
    assert right >= 16, f"{right}/20 held-out photos"
    assert transfer.export_model("mobilenet_v2_notop", base, trained) is trained.model


def test_killing_a_training_process_loses_no_labelled_image(home: Path, flowers) -> None:
    require_real("mobilenet_v2_notop")
    source = str(flowers["daisy"][0].parent.parent)
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from pathlib import Path\nfrom vision_backend import models, projects, transfer\n"
            "p = projects.Project('k')\n"
            f"for c in ('daisy', 'rose'):\n"
            f"    [p.add_example(c, f.read_bytes(), f.name) for f in sorted(Path({source!r}, c).glob('*.jpg'))[:20]]\n"
            "print('added', flush=True)\n"
            "transfer.train_project(p, 'mobilenet_v2_notop', models.load('mobilenet_v2_notop'))\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "VISION_LAB_HOME": str(home)})
    assert process.stdout.readline().strip() == "added"
    time.sleep(4)  # inside feature extraction or training
    process.send_signal(signal.SIGKILL)
    process.wait()
    project = projects.Project("k", create=False)
    assert project.counts() == {"daisy": 20, "rose": 20}
    assert all(e.path.is_file() and e.path.stat().st_size > 0 for e in project.examples())
    assert not list((project.folder / "images").glob("*.partial"))


def test_transfer_learning_page_labels_trains_and_predicts(home: Path, flowers) -> None:
    require_real("mobilenet_v2_notop")
    project = projects.Project("tiny")
    fill(project, flowers, ("daisy", "sunflower"), 8)
    app = start("pages/transfer_learning.py")
    assert not app.exception, app.exception
    assert any("**tiny**: 2 classes, 16 examples" in m.value for m in app.markdown)
    app.slider(key="tl_epochs").set_value(30).run()
    app.button(key="tl_train").click().run()
    assert not app.exception, app.exception
    caption = next(c.value for c in app.caption if c.value.startswith("Validation accuracy"))
    assert float(caption.split()[2]) >= 0.5
    assert any(c.value.startswith("Prediction for") for c in app.caption)
    saved = project.folder / "models" / "mobilenet_v2_notop_fast.keras"
    assert saved.is_file() and "Keras (.keras)" in {b.label for b in app.get("download_button")}

    # after a restart only the saved model is left: it predicts on its own
    app = start("pages/transfer_learning.py")
    assert app.selectbox(key="tl_predict_model").value == "mobilenet_v2_notop_fast"
    assert any(c.value.startswith("Prediction for") for c in app.caption)
    app.button(key="tl_tflite_mobilenet_v2_notop_fast").click().run()
    assert not app.exception, app.exception
    assert saved.with_suffix(".tflite").is_file() and "TFLITE (.tflite)" in {b.label for b in app.get("download_button")}

    app.button(key="tl_recipe_Teachable Machine").click().run()
    assert (app.selectbox(key="tl_base").value, app.select_slider(key="tl_hidden").value) == \
        ("mobilenet_v1_025_notop", 100)
    app.radio(key="tl_mode").set_value("full").run()
    app.slider(key="tl_full_epochs").set_value(2).run()
    app.button(key="tl_train").click().run()
    assert not app.exception, app.exception
    assert (project.folder / "models" / "mobilenet_v1_025_notop_full.keras").is_file()
    app.radio(key="tl_projection").set_value("t-SNE").run()
    assert not app.exception, app.exception

    app.text_input(key="tl_rename_daisy").input("daisies").run()
    app.button(key="tl_rename_go_daisy").click().run()
    assert project.counts() == {"daisies": 8, "sunflower": 8}


def test_grad_cam_on_an_exported_transfer_model(home: Path, flowers, base) -> None:
    """Grad-CAM on the exported (flat) model: each class's map sits on its own half of a pair."""
    import cv2

    project = projects.Project("cam")
    fill(project, flowers, ("daisy", "sunflower"), 20)
    trained = transfer.train_project(project, "mobilenet_v2_notop", base, transfer.HeadSettings(epochs=60))
    exported = transfer.export_model("mobilenet_v2_notop", base, trained)
    wins = 0
    for sunflower, daisy in zip(flowers["sunflower"][40:46], flowers["daisy"][40:46]):
        pair = np.concatenate([cv2.resize(read_image(sunflower.read_bytes(), "s.jpg"), (224, 224)),
                               cv2.resize(read_image(daisy.read_bytes(), "d.jpg"), (224, 224))], axis=1)
        raw = cl.resize(pair, 224)[None].astype(np.float32)
        shares = []
        for name in ("sunflower", "daisy"):
            cam, index = cl.grad_cam(exported, raw, trained.names.index(name))
            assert cam.shape == (7, 7) and index == trained.names.index(name)
            shares.append(cam[:, :3].sum() / (cam[:, :3].sum() + cam[:, 4:].sum() + 1e-9))
        wins += shares[0] > shares[1]
    assert wins >= 5
