"""R-CNN on your own boxes, step by step, the way the deck tells it (with Fast R-CNN's shared feature map).

1. **Region proposals**: selective search (``object_detection.rcnn.selective_search``) gives a few hundred boxes
   likely to hold *something*, knowing nothing of the classes.
2. **Positives and negatives**: a proposal overlapping a person's box by IoU >= 0.5 is an example of that box's
   class, one under 0.5 of "background" (:func:`label_regions`).
3. **Features per region**: the photo goes through the frozen base once; each proposal is cut out of one of its
   feature maps by ROI-align (a fixed ``pool`` x ``pool`` grid of bilinear averages, whatever the box's size),
   Fast R-CNN's saving over R-CNN's one pass of the CNN per proposal.
4. **A head per region**: one hidden layer, then a softmax over the classes and background, and per class a
   box regression (R-CNN's dx, dy, dw, dh, ``coding``) that moves the proposal onto the object.
5. **Non-maximum suppression** per class keeps the best of overlapping boxes.

Training samples 64 regions a photo (a quarter positives; the person's boxes, and jittered copies of them, join
the proposals so every object has positives), from the cached maps of each photo and its mirror image. The
head trains in numpy; the regions are pooled by the same ONNX ``RoiAlign`` as the exported graph
(``graph.rcnn_graph``: the base, ROI-align, the head and the box decoding; selective search and NMS outside).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend import engines, paths
from vision_backend.boxes import batched_nms, iou
from vision_backend.detections import Detections
from vision_backend.imageops import softmax
from vision_backend.model import Param
from vision_backend.object_detection.rcnn import selective_search
from vision_backend.own_detection.annotations import LabelledPhoto
from vision_backend.own_detection.coding import apply_regression, box_regression, smooth_l1
from vision_backend.own_detection.fast import detection_taps
from vision_backend.own_detection.layers import Adam, Weights, cosine_rate, dense, dense_backward, he
from vision_backend.own_detection.maps import (PhotoMaps, Progress, Stopped, class_indices, mirrored, never, nothing,
                                               photo_image, photo_maps, to_input, to_photo)
from vision_backend.own_detection.trained import TrainedDetector, check_photos, chosen_settings
from vision_backend.storage import atomic_path

NEGATIVE_FLOOR = 0.1
"""Fast R-CNN's background examples overlap a box by [0.1, 0.5): near misses teach more than empty sky. Half
the negatives come from there, half from anywhere, since a photo's proposals at detection time are mostly sky."""
POSITIVE_SHARE, JITTERS = 0.25, 8
MAX_DETECTIONS = 100

PARAMS = (
    Param("input_size", "Input size (px)", 448, options=(320, 384, 448, 512, 640),
          help="The photo is resized to this square for the base: larger gives a finer feature map."),
    Param("layer", "Feature map", "stride 16", options=("stride 16", "stride 32"),
          help="Which map of the base regions are cut from: finer (stride 16) or later and more abstract (32)."),
    Param("pool", "ROI-align grid", 4, options=(2, 3, 4, 5, 7)),
    Param("proposals", "Proposals a photo", 1000, options=(300, 500, 1000, 2000)),
    Param("search_side", "Selective search at (px)", 320, options=(240, 320, 480),
          help="Selective search runs on a copy this long: larger finds smaller regions and is slower."),
    Param("positive_iou", "Positive IoU", 0.5, 0.3, 0.8, 0.05),
    Param("epochs", "Epochs", 5, 1, 100, 1),
    Param("learning_rate", "Learning rate", 1e-3, options=(3e-4, 1e-3, 3e-3)),
    Param("hidden", "Hidden units", 256, options=(64, 128, 256, 512)),
    Param("dropout", "Dropout", 0.3, 0.0, 0.7, 0.05),
    Param("regions", "Regions a photo per step", 64, options=(32, 64, 128)),
    Param("mirror", "Mirror images too", True),
    Param("seed", "Seed", 0, 0, 10_000, 1),
)
"""R-CNN's training settings as data: the page builds its widgets from them."""


def rcnn_tap(base: Any, layer: str) -> str:
    taps = detection_taps(base)
    return taps[0] if layer == "stride 16" else taps[-1]


# ---- 1. proposals ------------------------------------------------------------------------------------------
def proposals(image: np.ndarray, count: int = 1000, search_side: int = 320) -> Detections:
    """Step 1: selective search's boxes, at most ``count``, in the photo's pixels, the same on every call.

    OpenCV ranks its regions by hierarchy level times a random number it does not let anyone seed, so its order
    (and so any top ``count``) changes from call to call while the set does not: the set is taken whole, in a fixed
    order, and a larger one thinned to ``count`` by a fixed draw."""
    found = selective_search(image, "fast", max_side=search_side).with_area()
    boxes = np.unique(found.boxes, axis=0)
    if len(boxes) > count:
        boxes = boxes[np.sort(np.random.default_rng(0).permutation(len(boxes))[:count])]
    return Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes)), ("proposal",), meta=dict(found.meta))


class ProposalCache:
    """Selective search's boxes per photo (by its bytes and the search's settings): it is training's slowest step."""

    def __init__(self, count: int, search_side: int):
        self.count, self.search_side = count, search_side
        self.folder = paths.app_dir("cache", "proposals", f"selective_fast_{search_side}_{count}")

    def boxes(self, photo: LabelledPhoto, image: Callable[[], np.ndarray]) -> np.ndarray:
        path = self.folder / f"{hashlib.sha256(photo.data).hexdigest()[:32]}.npy"
        try:
            return np.load(path)
        except (OSError, ValueError):
            found = proposals(image(), self.count, self.search_side).boxes
            with atomic_path(path, ".npy") as temp:
                np.save(temp, found)
            return found


def photo_proposals(photos: Sequence[LabelledPhoto], settings: dict, progress: Progress = nothing,
                    should_stop: Callable[[], bool] = never) -> list[np.ndarray]:
    """Every photo's proposals on the ``input_size`` square (kept ones read back)."""
    cache, found = ProposalCache(settings["proposals"], settings["search_side"]), []
    for index, photo in enumerate(photos):
        if should_stop():
            raise Stopped("stopped while proposing regions")
        boxes = cache.boxes(photo, lambda p=photo: photo_image(p))
        found.append(to_input(boxes, photo.width, photo.height, settings["input_size"]))
        progress("proposals", index + 1, len(photos))
    return found


# ---- 2. positives and negatives -----------------------------------------------------------------------------
def match_regions(regions: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                  positive_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(class: k + 1 or 0 background, best IoU, index of the true box it overlaps most, regression targets onto it)."""
    if not len(boxes) or not len(regions):
        return (np.zeros(len(regions), np.int64), np.zeros(len(regions)), np.full(len(regions), -1),
                np.zeros((len(regions), 4), np.float32))
    overlaps = iou(regions, boxes)
    best, best_iou = overlaps.argmax(1), overlaps.max(1)
    classes = np.where(best_iou >= positive_iou, np.asarray(labels)[best] + 1, 0)
    return classes, best_iou, best, box_regression(regions, np.asarray(boxes)[best])


def label_regions(found: Detections, photo: LabelledPhoto, classes: Sequence[str],
                  positive_iou: float = 0.5) -> Detections:
    """Step 2 on one photo: each proposal labelled with the class of the box it overlaps by IoU >= ``positive_iou``
    or "background" (the last class name). ``data``: ``iou``, ``role`` (positive, negative: [0.1, IoU), or
    easy negative), ``truth`` (the box it overlaps most, -1 for none) and the regression targets ``dx .. dh``."""
    boxes, labels = class_indices(photo, list(classes))
    kind, best_iou, truth, targets = match_regions(found.boxes, boxes, labels, positive_iou)
    role = np.where(kind > 0, "positive", np.where(best_iou >= NEGATIVE_FLOOR, "negative", "easy negative"))
    targets = np.where((kind > 0)[:, None], targets, 0)
    moves = {name: targets[:, i] for i, name in enumerate(("dx", "dy", "dw", "dh"))}
    return Detections(found.boxes, found.scores, np.where(kind > 0, kind - 1, len(classes)), (*classes, "background"),
                      data={"iou": best_iou, "role": role.astype(object), "truth": truth, **moves})


def jittered(rng: np.random.Generator, boxes: np.ndarray, count: int, size: int) -> np.ndarray:
    """``count`` copies of each true box, shifted by up to 15% of its size and scaled by 0.8-1.25: positives of
    every overlap for the regression to learn from, however few proposals selective search put there."""
    if not len(boxes):
        return np.zeros((0, 4), np.float32)
    boxes = np.repeat(np.asarray(boxes, np.float32), count, axis=0)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    shift = rng.uniform(-0.15, 0.15, (len(boxes), 2)) * np.c_[w, h]
    scale = np.exp(rng.uniform(np.log(0.8), np.log(1.25), (len(boxes), 2)))
    cx, cy = boxes[:, 0] + w / 2 + shift[:, 0], boxes[:, 1] + h / 2 + shift[:, 1]
    w, h = w * scale[:, 0], h * scale[:, 1]
    return np.clip(np.c_[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 0, size).astype(np.float32)


def sample_regions(rng: np.random.Generator, regions: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                   settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo's training regions: (rois, class, regression targets), a quarter positives at most."""
    candidates = np.concatenate([regions, np.asarray(boxes, np.float32).reshape(-1, 4),
                                 jittered(rng, boxes, JITTERS, settings["input_size"])])
    kind, best_iou, _, targets = match_regions(candidates, boxes, labels, settings["positive_iou"])
    count = settings["regions"]
    positive = rng.permutation(np.flatnonzero(kind > 0))[: int(count * POSITIVE_SHARE)]
    near = rng.permutation(np.flatnonzero((kind == 0) & (best_iou >= NEGATIVE_FLOOR)))
    far = rng.permutation(np.flatnonzero(kind == 0))
    room = count - len(positive)
    pool = np.concatenate([near[: room // 2], far])
    negative = pool[np.sort(np.unique(pool, return_index=True)[1])][:room]  # near ones first, each once
    rows = np.concatenate([positive, negative]).astype(np.int64)
    return candidates[rows], kind[rows], targets[rows]


# ---- 3 and 4. features per region, the head -----------------------------------------------------------------
@dataclass
class RcnnHead:
    """The trained head on ROI-aligned regions: a hidden ReLU layer, class logits (background first), and per
    class the box deltas (``4 K``)."""

    weights: Weights
    classes: tuple[str, ...]
    tap: str
    size: int
    cells: int
    pool: int
    channels: int

    def meta(self) -> dict[str, Any]:
        return {"taps": [self.tap], "cells": [self.cells], "pool": self.pool}

    def forward(self, x: np.ndarray, rng: np.random.Generator | None = None, dropout: float = 0.0) -> tuple:
        """(class probabilities (R, K + 1), deltas (R, K, 4), what backward needs); dropout only with ``rng``."""
        w = self.weights
        a = dense(x, w["hidden/kernel"], w["hidden/bias"])
        gate = (a > 0).astype(np.float32)  # the ReLU, and dropout's mask and scaling: h = a * gate
        if rng is not None and dropout:
            gate *= (rng.random(a.shape) >= dropout) / np.float32(1 - dropout)
        h = a * gate
        probabilities = softmax(dense(h, w["classes/kernel"], w["classes/bias"]))
        deltas = dense(h, w["boxes/kernel"], w["boxes/bias"]).reshape(len(x), -1, 4)
        return probabilities, deltas, (x, gate, h)

    def backward(self, cache: tuple, d_logits: np.ndarray, d_deltas: np.ndarray) -> Weights:
        x, gate, h = cache
        w, grads = self.weights, {}
        d_h, grads["classes/kernel"], grads["classes/bias"] = dense_backward(h, w["classes/kernel"], d_logits)
        d_box, grads["boxes/kernel"], grads["boxes/bias"] = dense_backward(h, w["boxes/kernel"],
                                                                           d_deltas.reshape(len(x), -1))
        d_a = (d_h + d_box) * gate
        _, grads["hidden/kernel"], grads["hidden/bias"] = dense_backward(x, w["hidden/kernel"], d_a, inputs=False)
        return grads

    def predict(self, pooled: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores (R, K + 1), boxes (R, K, 4) input pixels): what the ONNX graph outputs for these regions."""
        probabilities, deltas, _ = self.forward(pooled)
        sources = np.repeat(np.asarray(rois, np.float32), len(self.classes), axis=0)
        return probabilities, apply_regression(sources, deltas.reshape(-1, 4)).reshape(deltas.shape)


def initial_head(rng: np.random.Generator, channels: int, classes: tuple[str, ...], tap: str, cells: int,
                 settings: dict) -> RcnnHead:
    inputs, hidden, k = channels * settings["pool"] ** 2, settings["hidden"], len(classes)
    weights = {"hidden/kernel": he(rng, inputs, (inputs, hidden)), "hidden/bias": np.zeros(hidden, np.float32),
               "classes/kernel": (rng.standard_normal((hidden, k + 1)) * 0.01).astype(np.float32),
               "classes/bias": np.zeros(k + 1, np.float32),
               "boxes/kernel": (rng.standard_normal((hidden, 4 * k)) * 0.001).astype(np.float32),
               "boxes/bias": np.zeros(4 * k, np.float32)}
    return RcnnHead(weights, classes, tap, settings["input_size"], cells, settings["pool"], channels)


class RegionPool:
    """ROI-align of cached maps on ONNX Runtime: the exported graph's own op (``graph.roi_align_graph``)."""

    def __init__(self, head: RcnnHead):
        from vision_backend.own_detection.graph import roi_align_graph

        self.session = engines.onnx_session(roi_align_graph(head.channels, head.pool, head.cells / head.size))

    def __call__(self, maps: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """(R, C pool²) features of ``rois`` (input pixels) on one photo's (H, W, C) maps."""
        return self.session.run(["pooled"], {"maps": np.asarray(maps, np.float32)[None],
                                             "rois": np.asarray(rois, np.float32).reshape(-1, 4)})[0]


def _step(head: RcnnHead, x: np.ndarray, kind: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
          dropout: float) -> tuple[dict, Weights]:
    """Cross-entropy over classes and background, smooth L1 on each positive's own class's deltas; (losses, grads)."""
    probabilities, deltas, cache = head.forward(x, rng, dropout)
    n = len(x)
    class_loss = float(-np.log(np.clip(probabilities[np.arange(n), kind], 1e-7, 1)).mean())
    d_logits = probabilities.copy()
    d_logits[np.arange(n), kind] -= 1
    positive = np.flatnonzero(kind > 0)
    d_deltas = np.zeros_like(deltas)
    box_loss, d_box = smooth_l1(deltas[positive, kind[positive] - 1] - targets[positive], beta=1.0)
    d_deltas[positive, kind[positive] - 1] = d_box
    grads = head.backward(cache, d_logits / n, d_deltas / n)
    return {"class_loss": class_loss, "box_loss": float(box_loss.sum() / n)}, grads


def fit(head: RcnnHead, data: PhotoMaps, regions: list[np.ndarray], settings: dict, rng: np.random.Generator,
        progress: Progress, should_stop: Callable[[], bool], per_step: int = 2) -> dict[str, list[float]]:
    """Adam on ``per_step`` photos' sampled regions a step (Fast R-CNN's 2 x 64), new regions every epoch."""
    pool = RegionPool(head)
    epochs, rate = settings["epochs"], settings["learning_rate"]
    steps = epochs * -(-len(data) // per_step)
    adam, history, step = Adam(head.weights, rate), {}, 0
    for _ in range(epochs):
        order, sums = rng.permutation(len(data)), {}
        for start in range(0, len(data), per_step):
            if should_stop():
                return history
            parts = [sample_regions(rng, regions[r], data.boxes[r], data.labels[r], settings)
                     for r in order[start : start + per_step]]
            x = np.concatenate([pool(data.maps[0][r], p[0]) for r, p in zip(order[start : start + per_step], parts)])
            losses, grads = _step(head, x, np.concatenate([p[1] for p in parts]),
                                  np.concatenate([p[2] for p in parts]), rng, settings["dropout"])
            adam.step(head.weights, grads, cosine_rate(rate, step, steps, min(100, steps // 10)))
            step += 1
            sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
            progress("training", step, steps)
        for key, value in sums.items():
            history.setdefault(key, []).append(value / -(-len(data) // per_step))
    return history


def train_rcnn(photos: Sequence[LabelledPhoto], classes: Sequence[str], base: Any, settings: dict | None = None,
               progress: Progress = nothing, should_stop: Callable[[], bool] = never) -> TrainedDetector:
    """Train R-CNN on labelled photos: proposals, maps through the base once, the head on sampled regions.

    ``progress(stage, done, total)`` for ``proposals``, ``features`` and ``training``. Stopped during training it
    keeps the head trained so far; before that, :class:`Stopped`.
    """
    started, chosen, classes = time.perf_counter(), chosen_settings(PARAMS, settings), tuple(classes)
    check_photos(photos, classes)
    tap, size = rcnn_tap(base, chosen["layer"]), chosen["input_size"]
    found = photo_proposals(photos, chosen, progress, should_stop)
    data = photo_maps(base, photos, classes, (tap,), size, chosen["mirror"], 0, progress, should_stop)
    regions = [found[p] if v == 0 else mirrored(found[p], size) for p, v in zip(data.photo, data.view)]
    rng = np.random.default_rng(chosen["seed"])
    head = initial_head(rng, data.maps[0].shape[-1], classes, tap, data.maps[0].shape[1], chosen)
    history = fit(head, data, regions, chosen, rng, progress, should_stop)
    if not history and should_stop():
        raise Stopped("stopped before the first epoch ended")
    boxes = sum(int(np.isin(p.labels, classes).sum()) for p in photos)
    from vision_backend.own_detection.graph import rcnn_graph  # onnx: only to build (detecting never needs it)

    return TrainedDetector("rcnn", classes, base.name, rcnn_graph(base, head), head, chosen, history,
                           len(photos), boxes, time.perf_counter() - started)


# ---- 5. scores, regression, NMS: the steps on one photo ------------------------------------------------------
Run = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``run(image, rois)``: a photo and its regions (input pixels) -> (scores (R, K + 1), boxes (R, K, 4) input px)."""


@dataclass(frozen=True)
class RcnnSteps:
    """R-CNN on one photo, stage by stage, each as Detections in the photo's pixels (rows in the same order in
    ``scored`` and ``regressed``: proposal i is row i of both)."""

    proposals: Detections
    """Step 1: selective search's boxes."""
    scored: Detections
    """Each proposal's most likely class (never background) and its score; the box still the proposal's."""
    regressed: Detections
    """The same rows, each box moved by its class's regression; ``data["proposal"]`` is where it started."""
    detections: Detections
    """Step 5: over the score threshold, after NMS per class."""


def numpy_run(base: Any, head: RcnnHead) -> Run:
    """The training-time form as a :data:`Run`: ONNX Runtime's base map, the numpy head."""
    pool = RegionPool(head)

    def run(image: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps = base.feature_maps([image], (head.tap,), head.size)[0][0]
        return head.predict(pool(maps, rois), rois)

    return run


def steps(run: Run, image: np.ndarray, classes: tuple[str, ...], size: int, proposal_count: int = 1000,
          search_side: int = 320, score_threshold: float = 0.5, iou_threshold: float = 0.3) -> RcnnSteps:
    """Every stage of R-CNN on one photo (a page draws each)."""
    found = proposals(image, proposal_count, search_side)
    height, width = image.shape[:2]
    if not len(found):
        nothing_found = Detections.empty(classes)
        return RcnnSteps(found, nothing_found, nothing_found, nothing_found)
    scores, boxes = run(image, to_input(found.boxes, width, height, size))
    best = scores[:, 1:].argmax(1)
    rows = np.arange(len(best))
    moved = to_photo(boxes[rows, best], width, height, size)
    scored = Detections(found.boxes, scores[rows, best + 1], best, classes)
    regressed = Detections(moved, scores[rows, best + 1], best, classes, data={"proposal": found.boxes})
    return RcnnSteps(found, scored, regressed, final(scores, boxes, found.boxes, classes, (height, width), size,
                                                     score_threshold, iou_threshold))


def final(scores: np.ndarray, boxes: np.ndarray, regions: np.ndarray, classes: tuple[str, ...],
          photo_hw: tuple[int, int], size: int, score_threshold: float, iou_threshold: float) -> Detections:
    """Every (region, class) over the threshold with its class's box, NMS per class, at most 100, photo pixels."""
    region, label = np.nonzero(scores[:, 1:] > score_threshold)
    score = scores[region, label + 1]
    keep = batched_nms(boxes[region, label], score, label, iou_threshold)[:MAX_DETECTIONS]
    height, width = photo_hw
    return Detections(to_photo(boxes[region[keep], label[keep]], width, height, size), score[keep], label[keep],
                      classes, data={"proposal": np.asarray(regions, np.float32)[region[keep]].reshape(-1, 4)})
