"""Adding a model is one class and one registry entry: a toy face detector, a toy object detector and a toy
classifier on an engine of its own appear in the pages' widgets, the live page's lists, the command line's
``--model`` and the model cards, and run through each, with nothing else changed.

Toy weights (a fixed rule) are plumbing, not evidence that a feature works: the real models' tests are the
evidence. These only prove that every place reads the registry.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_real
from test_pages import start
from vision_backend import models
from vision_backend.__main__ import build_parser, main
from vision_backend.cards import ModelCard
from vision_backend.classification import imagenet
from vision_backend.classification.classifiers import ImageNetClassifier, Runner
from vision_backend.detections import Detections
from vision_backend.intake import encode_png
from vision_backend.model import Detector, Param


def _card(name: str, title: str, task: str) -> ModelCard:
    return ModelCard(name=name, title=title, task=task, licence="MIT (toy)", source="package", package="numpy",
                     accuracy="none: a fixed rule", input="RGB, any size")


class ToyFaces(Detector):
    """One "face" in the middle of every photo, its size a setting."""

    card = _card("toy_faces", "Toy face finder", "face detection")
    group = "face detector"
    concurrent = True
    params = (Param("share", "Toy face share of the photo", 0.5, 0.1, 0.9, 0.1),)

    def load(self) -> Any:
        return "toy engine"

    def infer(self, engine: Any, image: np.ndarray, share: float) -> Detections:
        height, width = image.shape[:2]
        half_w, half_h = width * share / 2, height * share / 2
        box = [[width / 2 - half_w, height / 2 - half_h, width / 2 + half_w, height / 2 + half_h]]
        return Detections(np.asarray(box), [0.9], [0])


class ToyObjects(ToyFaces):
    """One "thing" in the middle of every photo."""

    card = _card("toy_objects", "Toy thing finder", "object detection")
    group = "object detector"
    class_names = ("toy thing",)
    params = (Param("share", "Toy thing share of the photo", 0.5, 0.1, 0.9, 0.1),)

    def infer(self, engine: Any, image: np.ndarray, share: float) -> Detections:
        found = super().infer(engine, image, share)
        return Detections(found.boxes, found.scores, found.labels, self.class_names)


class ToyClassifier(ImageNetClassifier):
    """ImageNet class 1 for bright photos and class 0 for dark ones, on an engine of its own (numpy)."""

    card = ModelCard(name="toy_classifier", title="Toy brightness classifier", task="ImageNet classification",
                     licence="MIT (toy)", source="package", package="numpy", accuracy="none: a fixed rule",
                     files=(imagenet.CLASS_INDEX.files[0],), input="any")
    engines = ("numpy",)
    size = 8

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([np.asarray(i, np.float32).mean() / 255.0 for i in images])

    def load_engine(self, engine: str, threads: int | None = None) -> Runner:
        def run(brightness: np.ndarray) -> np.ndarray:
            logits = np.zeros((len(brightness), 1000), np.float32)
            logits[:, 1] = 10 * (brightness - 0.5)
            return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

        return Runner(engine, run, None)


@pytest.fixture
def toys() -> Any:
    added = [models.register(m) for m in (ToyFaces(), ToyObjects(), ToyClassifier())]
    yield {m.group: m for m in added}
    for model in added:
        models.unregister(model.name)


def test_the_registry_has_them_and_unregistering_removes_them(toys: dict) -> None:
    assert {"toy_faces", "toy_objects", "toy_classifier"} <= set(models.all_models())
    assert {"toy_faces", "toy_objects", "toy_classifier"} <= {row["name"] for row in models.status()}
    with pytest.raises(ValueError, match="registered already"):
        models.register(ToyFaces())


def test_the_pages_show_their_widgets_and_run_them(toys: dict) -> None:
    app = start("pages/face_detection.py")
    chosen = app.multiselect(key="fd_chosen")
    assert "Toy face finder" in chosen.options
    chosen.set_value([*(n for n in chosen.value if n != "toy_faces"), "toy_faces"]).run()
    assert any(s.label == "Toy face share of the photo" for s in app.slider), "its setting, from its Param"
    assert any(c.value.startswith("Toy face finder: 1 face(s)") for c in app.caption)
    app = start("pages/object_detection.py")
    app.radio(key="od_model").set_value("toy_objects").run()
    assert not app.exception, app.exception
    assert any(s.label == "Toy thing share of the photo" for s in app.slider)
    assert any(c.value.startswith("Toy thing finder: 1 object(s) shown") for c in app.caption)
    require_real("imagenet_class_index")  # its labels are ImageNet's
    app = start("pages/pretrained.py")
    app.selectbox(key="pt_model").set_value("toy_classifier").run()
    assert not app.exception, app.exception
    assert any("Top-1" in c.value for c in app.caption)


def test_the_live_page_lists_them(toys: dict) -> None:
    """AppTest cannot run the camera's WebRTC component (it needs a browser and a real server), but the page draws
    its lists before it."""
    app = start()
    app.switch_page("pages/live.py").run()
    assert "Toy face finder" in app.selectbox(key="live_face_detector").options
    app.radio(key="live_task").set_value("objects").run()
    assert "Toy thing finder" in app.radio(key="live_object_model").options


def test_the_command_line_lists_and_runs_them(toys: dict, tmp_path: Path) -> None:
    photo = tmp_path / "grey.png"
    photo.write_bytes(encode_png(np.full((64, 96, 3), 200, np.uint8)))
    require_real("imagenet_class_index")
    parser = build_parser()
    for command, name in (("faces", "toy_faces"), ("objects", "toy_objects"), ("classify", "toy_classifier")):
        assert name in parser._subparsers._group_actions[0].choices[command].format_help()
        out = tmp_path / f"{command}.jsonl"
        with redirect_stdout(io.StringIO()):
            assert main([command, str(photo), "--model", name, "--out", str(out), "--quiet"]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert rows and all(r.get("model") == name and "error" not in r for r in rows), rows
    boxes = [json.loads(line) for line in (tmp_path / "objects.jsonl").read_text().splitlines()]
    assert boxes[0]["label"] == "toy thing" and boxes[0]["x1"] == pytest.approx(24.0)
    top = json.loads((tmp_path / "classify.jsonl").read_text().splitlines()[0])
    assert top["id"] == models.get("toy_classifier").classify([np.full((64, 96, 3), 200, np.uint8)])[0].top[0][0]


def test_their_cards_are_on_the_models_page(toys: dict) -> None:
    app = start("pages/models.py")
    titles = [e.label for e in app.expander]
    assert any(t.startswith("**Toy face finder**") for t in titles)
    assert any(t.startswith("**Toy thing finder**") for t in titles)
    assert any(t.startswith("**Toy brightness classifier**") for t in titles)
