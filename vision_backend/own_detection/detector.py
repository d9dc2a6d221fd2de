"""A detector trained on a person's own boxes as a model object, like every other object detector here.

Built from what a saved detector keeps (its ONNX graph's bytes and its metadata: :func:`detector_from_saved`) or
straight from training (:func:`detector_from_trained`); pages, the live camera, the batch command line and the API
call it through ``Detector.detect`` with its ``Param`` settings. Its engine is an ONNX Runtime session (safe from
several threads: ``concurrent``); a worker gets a session of its own (``load_worker``). Nothing registers it
globally: a person's detector belongs to their workspace, and whoever lists a workspace's models wires it in.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vision_backend import engines
from vision_backend.cards import ModelCard
from vision_backend.detections import Detections
from vision_backend.errors import BadInput
from vision_backend.imageops import resize_square
from vision_backend.model import Detector, Param
from vision_backend.own_detection import fast, rcnn
from vision_backend.own_detection.annotations import LabelledPhoto
from vision_backend.own_detection.evaluate import evaluate
from vision_backend.own_detection.maps import Progress, nothing, photo_image
from vision_backend.own_detection.trained import KINDS, TrainedDetector


def _thresholds(score: float, iou: float) -> tuple[Param, ...]:
    return (Param("score_threshold", "Score threshold", score, 0.05, 0.95, 0.05),
            Param("iou_threshold", "NMS IoU threshold", iou, 0.1, 1.0, 0.05,
                  help="Boxes of one class overlapping a better one by more than this go."))


class OwnDetector(Detector):
    """Your own detector: the base and the head trained on your boxes, in one ONNX graph."""

    group = "object detector"
    concurrent = True
    needs = ("onnxruntime",)
    kind = ""
    score_help = "how sure the detector you trained is, 0 to 1"

    def __init__(self, graph: bytes, meta: dict[str, Any], name: str = "own_detector", title: str = ""):
        size, ap50 = int(meta["input_size"]), meta.get("ap50")
        measured = f"AP50 {ap50:.2f} on {meta.get('tested_photos')} held-out photos" if ap50 is not None else ""
        card = ModelCard(name=name, title=title or f"{name} (yours, {self.kind})", task="object detection",
                         licence="yours (trained here on your boxes)", input=f"{size}x{size} RGB 0-255",
                         accuracy=measured, note=f"{meta.get('photos')} photos, {meta.get('boxes')} boxes, "
                                                 f"base {meta.get('base')}")
        super().__init__(card=card, class_names=tuple(meta["classes"]), short_title=title or name)
        self.graph, self.meta, self.size = graph, dict(meta), size

    def load(self) -> Any:
        return engines.onnx_session(self.graph)

    def load_worker(self, variant: Any, threads: int) -> Any:
        return engines.onnx_session(self.graph, spinning=threads > 1, threads=threads)

    def working_side(self, settings: dict[str, Any]) -> int | None:
        return None  # resized square, not by the long side: a drafted photo would not give the same input

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """The graph's input: the photo resized square, raw 0-255 RGB, (1, size, size, 3) float32."""
        return resize_square(image, self.size).astype(np.float32)[None]


class FastDetector(OwnDetector):
    """The single-shot detector (``own_detection.fast``): one run of the graph, then threshold and NMS."""

    kind = "fast"
    params = _thresholds(0.3, 0.4)
    """NMS at 0.4, not 0.5: neighbouring anchors give overlapping boxes of one object (raccoon AP50 0.855 at 0.3,
    0.829 at 0.5, precision at a 0.3 score 0.88 against 0.58)."""

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self.preprocess(image)

    def infer(self, session: Any, image: np.ndarray, prepared: Any = None, score_threshold: float = 0.3,
              iou_threshold: float = 0.4) -> Detections:
        blob = self.preprocess(image) if prepared is None else prepared
        scores, boxes = session.run(["scores", "boxes"], {"image": blob})
        return fast.detections(scores[0], boxes[0], self.class_names, image.shape[:2], self.size, score_threshold,
                               iou_threshold)


class RcnnDetector(OwnDetector):
    """R-CNN (``own_detection.rcnn``): selective search's proposals, then one run of the graph over them all."""

    kind = "rcnn"
    params = (*_thresholds(0.5, 0.3),
              Param("proposals", "Proposals", 1000, options=(300, 500, 1000, 2000),
                    help="How many of selective search's boxes are scored: more finds more, slower."))

    def run(self, session: Any) -> rcnn.Run:
        """The graph as :data:`rcnn.Run`: a photo and its regions in, scores and each class's box out."""
        def run(image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return tuple(session.run(["scores", "boxes"], {"image": self.preprocess(image),
                                                           "rois": np.asarray(rois, np.float32).reshape(-1, 4)}))
        return run

    def infer(self, session: Any, image: np.ndarray, score_threshold: float = 0.5, iou_threshold: float = 0.3,
              proposals: int = 1000) -> Detections:
        return self.steps(image, session, score_threshold=score_threshold, iou_threshold=iou_threshold,
                          proposals=proposals).detections

    def steps(self, image: np.ndarray, session: Any = None, **overrides: Any) -> rcnn.RcnnSteps:
        """Every stage on one photo, for a page to draw: proposals, scored, regressed, kept (``rcnn.RcnnSteps``)."""
        settings = self.settings(overrides)
        search_side = int(self.meta.get("settings", {}).get("search_side", 320))
        with self.engine_for(session) as running:
            return rcnn.steps(self.run(running), image, self.class_names, self.size, settings["proposals"],
                              search_side, settings["score_threshold"], settings["iou_threshold"])


KIND_CLASSES: dict[str, type[OwnDetector]] = {"fast": FastDetector, "rcnn": RcnnDetector}


def detector_from_saved(graph: bytes, meta: dict[str, Any], name: str = "own_detector", title: str = "") -> OwnDetector:
    """The model object of a saved detector (``SavedModel.read()`` and ``.meta``; ``name``: e.g. its stem)."""
    kind = meta.get("kind")
    if kind not in KINDS:
        raise BadInput(f"“{name}” is not a detector trained here (its kind is {kind!r}, not fast or rcnn).")
    return KIND_CLASSES[kind](graph, meta, name, title)


def detector_from_trained(trained: TrainedDetector, name: str = "own_detector", title: str = "") -> OwnDetector:
    """The model object of a detector just trained (what saving then loading it gives)."""
    return detector_from_saved(trained.graph, trained.meta(), name, title)


def save(models: Any, stem: str, trained: TrainedDetector) -> Any:
    """Keep ``trained`` in a collection's ``SavedModels`` as ``stem``: its graph and metadata as one unit."""
    return models.save(stem, trained.graph, trained.meta())



def measure(trained: TrainedDetector, photos: Sequence[LabelledPhoto], progress: Progress = nothing) -> TrainedDetector:
    """``trained`` with its AP measured on held-out ``photos`` through its own detector object, every detection
    scoring 0.05 or more ranked (as COCO's evaluation takes a detector's output); ``meta()`` then carries it."""
    detector, found = detector_from_trained(trained), []
    for index, photo in enumerate(photos):
        found.append(detector.detect(photo_image(photo), score_threshold=0.05))
        progress("evaluation", index + 1, len(photos))
    return trained.measured(evaluate(photos, found, trained.classes))
