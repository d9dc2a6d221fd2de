"""Storage that survives crashes and races: real subprocesses killed with SIGKILL at random points while
they import photos or enrol faces, and two processes writing one project and one gallery at once.

After every kill: nothing a writer reported as saved is lost, no photo or crop is left without its row,
the same face is never stored twice, and SQLite's integrity check passes.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from vision_backend.workspace import Workspace

pytestmark = pytest.mark.slow

IMPORT_PHOTOS = """
import io, sys
import numpy as np
from PIL import Image
from vision_backend.workspace import Workspace
project = Workspace.at(sys.argv[1]).project("crash test")
rng = np.random.default_rng(int(sys.argv[2]))
for i in range(int(sys.argv[3])):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    label = ["cats", "dogs", "birds"][i % 3]
    project.add_example(label, buffer.getvalue(), f"photo_{i}.png")
    print("saved", label, flush=True)
"""

ENROL_FACES = """
import sys
import numpy as np
from vision_backend.workspace import Workspace
gallery = Workspace.at(sys.argv[1]).gallery()
rng = np.random.default_rng(0)  # the same 25 faces every run: enrolling again must not duplicate them
faces = [(rng.normal(size=128).astype(np.float32), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8), f"p{i}.jpg")
         for i in range(25)]
for i, face in enumerate(faces):
    gallery.enrol(f"person {i % 5}", "dlib_resnet_face", [face])
    print("saved", i, flush=True)
"""


def run_child(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_at_random(child: subprocess.Popen, rng: random.Random) -> list[str]:
    """Wait until the child has saved something, then SIGKILL it at a random moment; its reports."""
    first = child.stdout.readline()
    time.sleep(rng.uniform(0.0, 0.4))
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    return [line for line in (first + rest).splitlines() if line.startswith("saved")]


def check_project(root: Path, saved_lines: int) -> None:
    project = Workspace.at(root).project("crash test", create=False)  # opening sweeps what a kill left behind
    examples = project.examples()
    assert project.db.integrity() == "ok"
    assert len(examples) >= saved_lines, "a photo the writer reported as saved is lost"
    assert all(e.path.is_file() for e in examples), "a row without its photo"
    on_disk = {p.name for p in project.images.folder.iterdir()}
    assert on_disk == {e.digest for e in examples}, "a photo without its row, or a temporary file left"


def test_killing_a_photo_import_at_random_points_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    saved = 0
    for trial in range(6):
        child = run_child(IMPORT_PHOTOS, str(tmp_path), str(trial), "400")
        saved += len(kill_at_random(child, rng))
        check_project(tmp_path, saved)
    assert saved > 6, "the children really saved photos before they were killed"


def test_killing_an_enrolment_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(11)
    best = 0
    for _ in range(6):
        best = max(best, len(kill_at_random(run_child(ENROL_FACES, str(tmp_path)), rng)))
        gallery = Workspace.at(tmp_path).gallery()
        rows = gallery.db.rows("SELECT person, recogniser, crop FROM faces")
        assert gallery.db.integrity() == "ok"
        assert len(rows) == len(set(rows)) <= 25, "the same face of the same photo is one row"
        assert len(rows) >= best, "a face the writer reported as saved is lost"
        crops = {p.name for p in gallery.crops.folder.iterdir()}
        assert crops == {crop for _, _, crop in rows}, "a crop without its row, or a temporary file left"
        assert all(p["faces"] > 0 for p in gallery.people()), "a person without a face"


WRITER = """
import io, sys
import numpy as np
from PIL import Image
from vision_backend.workspace import Workspace
root, seed = sys.argv[1], int(sys.argv[2])
project, gallery = Workspace.at(root).project("shared"), Workspace.at(root).gallery()
shared = np.random.default_rng(99)
for i in range(200):
    rng = np.random.default_rng(seed * 1000 + i) if i % 2 else shared  # half the photos are the same in both
    pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    project.add_example(f"class {i % 4}", buffer.getvalue(), f"w{seed}_{i}.png")
    gallery.enrol(f"person {i % 7}", "dlib_resnet_face", [(pixels.reshape(-1)[:128].astype(np.float32), pixels, "x")])
print("done", flush=True)
"""


def test_two_processes_writing_one_project_and_one_gallery(tmp_path: Path) -> None:
    children = [run_child(WRITER, str(tmp_path), str(seed)) for seed in (1, 2)]
    outputs = [child.communicate(timeout=600) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0 and out.strip() == "done", err[-2000:]
    project = Workspace.at(tmp_path).project("shared", create=False)
    gallery = Workspace.at(tmp_path).gallery()
    digests = {e.digest for e in project.examples()}
    assert len(project.examples()) == len({(e.label, e.digest) for e in project.examples()})
    assert len(digests) == len({p.name for p in project.images.folder.iterdir()})
    assert sum(project.counts().values()) == len(project.examples()) == 100 + 2 * 100, "no lost or doubled rows"
    assert project.db.integrity() == gallery.db.integrity() == "ok"
    assert sum(p["faces"] for p in gallery.people()) == len(gallery.db.rows("SELECT id FROM faces")) == 300


def test_a_photo_written_by_a_transaction_that_never_commits_is_swept(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The window a kill can hit: the photo is on disk, its row is not. Opening the project again removes it."""
    project = Workspace.at(tmp_path).project("crash test")
    project.add_example("cats", PNG_A, "a.png")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("killed between the photo and its row")

    monkeypatch.setattr(type(project), "_record_example", crash, raising=True)
    with pytest.raises(KeyboardInterrupt):
        project.add_example("dogs", PNG_B, "b.png")
    monkeypatch.undo()
    assert len(list(project.images.folder.iterdir())) == 2, "the photo got to disk, its row did not"
    reopened = Workspace.at(tmp_path).project("crash test", create=False)
    assert {p.name for p in reopened.images.folder.iterdir()} == {e.digest for e in reopened.examples()}
    assert len(reopened.examples()) == 1


def _png(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


PNG_A, PNG_B = _png(1), _png(2)


SAVE_MODELS = """
import sys
import numpy as np
from vision_backend import engines
from vision_backend.workspace import Workspace
keras = engines.keras()
project = Workspace.at(sys.argv[1]).project("models")
inputs = keras.Input((8, 8, 3))
layer = keras.layers.Dense(2, name="classes")
model = keras.Model(inputs, layer(keras.layers.GlobalAveragePooling2D()(inputs)))
for version in range(int(sys.argv[2]), 10_000):
    layer.set_weights([np.full((3, 2), version, np.float32), np.zeros(2, np.float32)])  # the model knows its version
    project.save_model("head", model, {"classes": [f"version {version}", "other"]})
    print("saved", version, flush=True)
"""


def saved_pair(root: Path) -> tuple[int, int, list[str]]:
    """(the version the kept model's weights say, the version its metadata says, files that are neither a kept blob
    nor anything else known) after opening the project, as a page would."""
    from vision_backend.transfer.export import load_saved

    project = Workspace.at(root).project("models", create=False)
    kept = project.models.get("head")
    weights = int(load_saved(kept.path).get_layer("classes").get_weights()[0][0, 0])
    label = int(kept.meta["classes"][0].split()[1])
    stray = sorted(p.name for p in project.models.blobs.folder.iterdir() if p.name != kept.key)
    return weights, label, stray


def test_killing_a_model_save_leaves_the_old_pair_or_the_new_never_a_mix(tmp_path: Path) -> None:
    """The model file and its class names are one unit: killed at random while saving, the project opens with a
    model whose weights and metadata are of one version, and no temporary file is left behind."""
    rng = random.Random(5)
    first = run_child(SAVE_MODELS, str(tmp_path), "0")
    first.stdout.readline()
    first.kill()
    first.communicate(timeout=60)
    for trial in range(1, 11):
        child = run_child(SAVE_MODELS, str(tmp_path), str(trial * 100))
        kill_at_random(child, rng)
        weights, label, stray = saved_pair(tmp_path)
        assert weights == label, f"trial {trial}: weights of version {weights} with the class names of {label}"
        assert stray == [], f"trial {trial}: left behind {stray}"


IMPORT_ZIP = """
import json, sys
def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
def now():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) / 1024
data = open(sys.argv[2], "rb").read()
from vision_backend.workspace import Workspace
project = Workspace.at(sys.argv[1]).project("zip test")
before = now()
added, skipped = project.import_zip(data)
print(json.dumps({"rise_mb": peak() - before, "added": added, "skipped": skipped}))
"""


def hostile_archive(path: Path) -> Path:
    """A ZIP under the 25 MB upload limit that inflates past 2 GiB, with twenty 49-megapixel PNGs, a
    zip-slip entry and a link."""
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (7000, 7000), (90, 140, 200)).save(buffer, "PNG")
    big_png = buffer.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("bombs/zeros_1.jpg", "bombs/zeros_2.jpg"):
            with archive.open(name, "w", force_zip64=True) as handle:
                block = bytes(1 << 20)
                for _ in range(1100):
                    handle.write(block)
        for i in range(20):
            archive.writestr(f"huge/photo_{i}.png", big_png)
        archive.writestr("../../escaped/evil.png", PNG_A)
        archive.writestr("fine/ok.png", PNG_A)
        link = zipfile.ZipInfo("fine/link.png")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
    assert path.stat().st_size < 25 * 2**20
    return path


def test_a_hostile_zip_keeps_memory_flat_and_writes_nothing_outside(tmp_path: Path) -> None:
    import json

    archive = hostile_archive(tmp_path / "hostile.zip")
    child = run_child(IMPORT_ZIP, str(tmp_path / "projects"), str(archive))
    out, err = child.communicate(timeout=600)
    assert child.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["rise_mb"] < 200, result["rise_mb"]
    assert result["added"] == 1, result
    reasons = result["skipped"]
    assert sum(r.startswith("bombs/zeros_") for r in reasons) == 2
    assert sum(r.startswith("huge/photo_") and "megapixels" in r for r in reasons) == 20
    assert any("evil.png" in r for r in reasons) and any(r.startswith("fine/link.png") for r in reasons)
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


MAIN_FLOWS = """
import io
import numpy as np
from PIL import Image
from vision_backend import models, samples
from vision_backend.classification import CLASSIFIERS
from vision_backend.convert import keras_to_onnx, keras_to_tflite
from vision_backend.face_detection import DETECTORS as FACES
from vision_backend.face_recognition.recognise import analyse
from vision_backend.object_detection import DETECTORS as OBJECTS
from vision_backend.small_cnn import data, networks, training
from vision_backend.transfer import export, head
from vision_backend.transfer.bases import MOBILENET_V2
from vision_backend.workspace import Workspace

photo = samples.load_sample("two_people.jpg")
for name, classifier in CLASSIFIERS.items():
    if classifier.ready():
        for engine in classifier.engines:
            classifier.classify([photo], engine)
for detector in [*FACES.values(), *OBJECTS.values()]:
    if detector.ready():
        detector.detect(photo)
space = Workspace.local()
faces = analyse(models.default("embed"), photo)
space.gallery().enrol("Someone", models.default("embed").name, [(faces.vectors[0], faces.crops[0], "two_people.jpg")])
project = space.project("flows")
rng = np.random.default_rng(0)
for label in ("a", "b"):
    for i in range(4):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
        project.add_example(label, buffer.getvalue(), f"{label}{i}.png")
trained = head.train_project(project, MOBILENET_V2, head.HeadSettings(epochs=3))
model = export.export_model(MOBILENET_V2, trained)
saved = project.save_model("flows", model, {"classes": trained.names})
export.converted(saved, "onnx", project.derived / "exports", keras_to_onnx)
export.converted(saved, "tflite", project.derived / "exports", keras_to_tflite)
(x, y), _ = data.load("mnist_t10k")
cnn = networks.build("deck")
training.train(cnn, x[:500], y[:500], epochs=1)
print("done")
"""


def test_main_flows_write_nothing_outside_the_app_folder(tmp_path: Path) -> None:
    """HOME and TMPDIR pointed at empty folders: after classifying on every engine, detecting, enrolling,
    training, exporting and converting, nothing new is there (the Keras cache aside, which lives elsewhere)."""
    from conftest import require_real
    from vision_backend.paths import keras_home

    for name in ("photos", "mnist_t10k", "mobilenet_v2_notop"):
        require_real(name)
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(home), TMPDIR=str(temp), KERAS_HOME=str(keras_home()),
               VISION_LAB_HOME=str(tmp_path / "lab"))
    result = subprocess.run([sys.executable, "-c", MAIN_FLOWS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0 and result.stdout.strip().endswith("done"), result.stderr[-3000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in [*home.rglob("*"), *temp.rglob("*")])
    assert written == [], written
    assert (tmp_path / "lab" / "projects" / "flows").is_dir(), "the flows ran and wrote where they should"
