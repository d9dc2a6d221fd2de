"""A fast detector for the live camera: a single-shot head with anchors on the frozen base's feature maps.

SSD's and RetinaNet's idea: no proposals. Every cell of two feature maps of the base (one at stride 16 for
small objects, the last at stride 32 for large ones) carries anchors, boxes of three sizes and three shapes;
for each anchor a small head (a 1x1 convolution, SSDLite's 3x3 depthwise and 1x1 pair for context, then two
1x1 outputs) says how likely each class is there (a sigmoid per class) and how to move the anchor onto the
object (R-CNN's box regression, ``coding``). Anchors overlapping a true box by IoU >= 0.5 learn its class and
its box, those under 0.4 learn "nothing here", those between are left out; RetinaNet's focal loss keeps the
thousands of easy background anchors from drowning the few positives. The base is frozen, so its maps are
computed once per view of a photo (whole, mirrored, random crops: ``maps``) and the head trains on them in
numpy (``layers``), with channel dropout: 160 raccoon photos overfit it otherwise (AP50 0.66 without against
0.69 with, 0.76-0.79 with two crops a photo as well).

Exported as one ONNX graph (``graph.fast_graph``): raw 0-255 RGB in at the input size, the base, the head and
the decoding of every anchor's box; only the score threshold and NMS stay in numpy (:func:`detections`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend.boxes import batched_nms, iou
from vision_backend.detections import Detections
from vision_backend.model import Param
from vision_backend.own_detection.annotations import LabelledPhoto
from vision_backend.own_detection.coding import anchors, apply_regression, box_regression, smooth_l1
from vision_backend.own_detection.layers import (Adam, Weights, cosine_rate, dense, dense_backward, depthwise,
                                                 depthwise_backward, he)
from vision_backend.own_detection.maps import PhotoMaps, Progress, Stopped, never, nothing, photo_maps, to_photo
from vision_backend.own_detection.trained import TrainedDetector, check_photos, chosen_settings

LEVEL_SCALES = ((0.1, 0.2, 0.3), (0.45, 0.65, 0.9))
"""Anchor sizes (square root of the area) as fractions of the input's side: the stride-16 map's, then the last's."""
RATIOS = (0.5, 1.0, 2.0)
"""Anchor shapes, height over width."""
POSITIVE_IOU, NEGATIVE_IOU = 0.5, 0.4
FOCAL_ALPHA, FOCAL_GAMMA, PRIOR = 0.25, 2.0, 0.01
"""RetinaNet's focal loss and its prior: every anchor starts at a 1% score, so early background costs little."""
MAX_CANDIDATES, MAX_DETECTIONS = 1000, 100

PARAMS = (
    Param("input_size", "Input size (px)", 320, options=(224, 256, 320, 384, 448),
          help="Photos are resized to this square: larger finds smaller objects, and is slower live."),
    Param("epochs", "Epochs", 12, 2, 200, 1),
    Param("learning_rate", "Learning rate", 1e-3, options=(3e-4, 1e-3, 3e-3)),
    Param("hidden", "Head channels", 128, options=(32, 64, 128, 256)),
    Param("context", "3x3 context layer", True,
          help="A 3x3 depthwise and a 1x1 convolution in the head: each anchor sees its neighbours."),
    Param("dropout", "Channel dropout", 0.2, 0.0, 0.5, 0.05,
          help="Each training step hides this share of the base's channels, so the head cannot lean on a few."),
    Param("batch_size", "Batch size", 16, options=(8, 16, 32)),
    Param("mirror", "Mirror images too", True,
          help="Learn from each photo's mirror image as well (its own pass of the base)."),
    Param("crops", "Random crops a photo", 2, 0, 8, 1,
          help="Also learn from parts of each photo (objects larger, cut at the edges): a pass of the base each."),
    Param("seed", "Seed", 0, 0, 10_000, 1),
)
"""The fast detector's training settings as data: the page builds its widgets from them."""


def detection_taps(base: Any) -> tuple[str, ...]:
    """The base's maps a detector reads: the first of its tapped layers (stride 16) and its last (stride 32).

    On MobileNetV2 ``block_12_add`` (96 channels) and ``out_relu`` (1280). SSDLite's ``block_13_expand_relu``
    (576) instead trained the raccoon heads no better (fast AP50 0.77 against 0.79, R-CNN 0.88 against 0.84 with
    more epochs) at 6x the memory and several times the training time."""
    return base.taps[0], base.taps[-1]


@dataclass
class FastHead:
    """The trained head: per level a 1x1 reduction, an optional 3x3 depthwise + 1x1 context pair, class logits and
    box deltas."""

    weights: Weights
    classes: tuple[str, ...]
    taps: tuple[str, ...]
    size: int
    cells: tuple[int, ...]
    context: bool

    @property
    def per_cell(self) -> int:
        return len(LEVEL_SCALES[0]) * len(RATIOS)

    def anchors(self) -> np.ndarray:
        """Every anchor, level after level, in the order the head's outputs are concatenated."""
        return np.concatenate([anchors(self.size, cells, tuple(s * self.size for s in scales), RATIOS)
                               for cells, scales in zip(self.cells, LEVEL_SCALES)])

    def meta(self) -> dict[str, Any]:
        return {"taps": list(self.taps), "cells": list(self.cells), "context": self.context}

    def level(self, index: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        """(class logits (N, cells² A, K), deltas (N, cells² A, 4), what backward needs) of one level's maps."""
        w, k = self.weights, f"{index}/"
        a1 = dense(x, w[k + "reduce/kernel"], w[k + "reduce/bias"])
        h1 = h = np.maximum(a1, 0)
        a2 = a3 = h2 = None
        if self.context:
            a2 = depthwise(h1, w[k + "depthwise/kernel"], w[k + "depthwise/bias"])
            h2 = np.maximum(a2, 0)
            a3 = dense(h2, w[k + "pointwise/kernel"], w[k + "pointwise/bias"])
            h = np.maximum(a3, 0)
        n = len(x)
        logits = dense(h, w[k + "classes/kernel"], w[k + "classes/bias"]).reshape(n, -1, len(self.classes))
        deltas = dense(h, w[k + "boxes/kernel"], w[k + "boxes/bias"]).reshape(n, -1, 4)
        return logits, deltas, (x, a1, h1, a2, h2, a3, h)

    def level_backward(self, index: int, cache: tuple, d_logits: np.ndarray, d_deltas: np.ndarray) -> Weights:
        w, k = self.weights, f"{index}/"
        x, a1, h1, a2, h2, a3, h = cache
        grads: Weights = {}
        d_h = 0
        for name, grad in (("classes", d_logits), ("boxes", d_deltas)):
            grad = grad.reshape(*h.shape[:3], -1)
            d_in, grads[k + name + "/kernel"], grads[k + name + "/bias"] = dense_backward(
                h, w[k + name + "/kernel"], grad)
            d_h = d_h + d_in
        if self.context:
            d_h2, grads[k + "pointwise/kernel"], grads[k + "pointwise/bias"] = dense_backward(
                h2, w[k + "pointwise/kernel"], d_h * (a3 > 0))
            d_h, grads[k + "depthwise/kernel"], grads[k + "depthwise/bias"] = depthwise_backward(
                h1, w[k + "depthwise/kernel"], d_h2 * (a2 > 0))
        _, grads[k + "reduce/kernel"], grads[k + "reduce/bias"] = dense_backward(x, w[k + "reduce/kernel"],
                                                                                 d_h * (a1 > 0), inputs=False)
        return grads

    def forward(self, maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
        parts = [self.level(i, np.asarray(m, np.float32)) for i, m in enumerate(maps)]
        return (np.concatenate([p[0] for p in parts], 1), np.concatenate([p[1] for p in parts], 1),
                [p[2] for p in parts])

    def backward(self, caches: list[tuple], d_logits: np.ndarray, d_deltas: np.ndarray) -> Weights:
        grads: Weights = {}
        start = 0
        for index, cache in enumerate(caches):
            count = cache[0].shape[1] * cache[0].shape[2] * self.per_cell
            grads.update(self.level_backward(index, cache, d_logits[:, start : start + count],
                                             d_deltas[:, start : start + count]))
            start += count
        return grads

    def predict(self, maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(scores (N, anchors, K), boxes (N, anchors, 4) xyxy input pixels): what the ONNX graph outputs."""
        logits, deltas, _ = self.forward(maps)
        boxes = apply_regression(np.broadcast_to(self.anchors(), deltas.shape).reshape(-1, 4), deltas.reshape(-1, 4))
        return 1 / (1 + np.exp(-logits)), boxes.reshape(deltas.shape)


def initial_head(rng: np.random.Generator, data: PhotoMaps, classes: tuple[str, ...], settings: dict) -> FastHead:
    """He-initialised layers; class logits start at the prior (1%), boxes at "do not move"."""
    hidden, a, weights = settings["hidden"], len(LEVEL_SCALES[0]) * len(RATIOS), {}
    for index, maps in enumerate(data.maps):
        k, channels = f"{index}/", maps.shape[-1]
        weights[k + "reduce/kernel"] = he(rng, channels, (channels, hidden))
        weights[k + "reduce/bias"] = np.zeros(hidden, np.float32)
        if settings["context"]:
            weights[k + "depthwise/kernel"] = he(rng, 9, (9, hidden))
            weights[k + "depthwise/bias"] = np.zeros(hidden, np.float32)
            weights[k + "pointwise/kernel"] = he(rng, hidden, (hidden, hidden))
            weights[k + "pointwise/bias"] = np.zeros(hidden, np.float32)
        weights[k + "classes/kernel"] = (rng.standard_normal((hidden, a * len(classes))) * 0.01).astype(np.float32)
        weights[k + "classes/bias"] = np.full(a * len(classes), -np.log((1 - PRIOR) / PRIOR), np.float32)
        weights[k + "boxes/kernel"] = (rng.standard_normal((hidden, a * 4)) * 0.01).astype(np.float32)
        weights[k + "boxes/bias"] = np.zeros(a * 4, np.float32)
    cells = tuple(int(m.shape[1]) for m in data.maps)
    return FastHead(weights, classes, data.taps, data.size, cells, bool(settings["context"]))


def anchor_targets(anchor_boxes: np.ndarray, boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each anchor's class (k + 1; 0 background; -1 left out) and box deltas onto the true box it overlaps most.

    Every true box also claims the anchor that overlaps it most, however little: no object goes unlearnt.
    """
    classes = np.zeros(len(anchor_boxes), np.int16)
    deltas = np.zeros((len(anchor_boxes), 4), np.float32)
    if not len(boxes):
        return classes, deltas
    overlaps = iou(anchor_boxes, boxes)
    best, best_iou = overlaps.argmax(1), overlaps.max(1)
    claimed = overlaps.argmax(0)
    best[claimed], best_iou[claimed] = np.arange(len(boxes)), 1.0
    classes[(best_iou >= NEGATIVE_IOU) & (best_iou < POSITIVE_IOU)] = -1
    positive = best_iou >= POSITIVE_IOU
    classes[positive] = labels[best[positive]] + 1
    deltas[positive] = box_regression(anchor_boxes[positive], boxes[best[positive]])
    return classes, deltas


def focal_loss(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """RetinaNet's sigmoid focal loss summed over anchors and classes (targets as :func:`anchor_targets`), and its
    gradient: ``-alpha_t (1 - p_t)^gamma log p_t``, so well-classified anchors count for little."""
    k = logits.shape[-1]
    positive = targets[..., None] == np.arange(1, k + 1)
    valid = (targets >= 0)[..., None]
    p = 1 / (1 + np.exp(-logits))
    log_p, log_q = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
    alpha, gamma = FOCAL_ALPHA, FOCAL_GAMMA
    loss = np.where(positive, -alpha * (1 - p) ** gamma * log_p, -(1 - alpha) * p**gamma * log_q)
    grad = np.where(positive, alpha * (1 - p) ** gamma * (gamma * p * log_p - (1 - p)),
                    (1 - alpha) * p**gamma * (p - gamma * (1 - p) * log_q))
    return float((loss * valid).sum()), (grad * valid).astype(np.float32)


def channel_dropout(rng: np.random.Generator, maps: np.ndarray, rate: float) -> np.ndarray:
    """Maps as float32 with a share ``rate`` of each row's channels zeroed and the rest scaled up (spatial dropout:
    neighbouring cells of a channel are alike, so dropping single values would hide little)."""
    maps = maps.astype(np.float32)
    if rate:
        maps *= (rng.random((len(maps), 1, 1, maps.shape[-1])) >= rate) / np.float32(1 - rate)
    return maps


def _step(head: FastHead, maps: list[np.ndarray], classes: np.ndarray, deltas: np.ndarray) -> tuple[dict, Weights]:
    """One batch forward and back: (losses, gradients), both divided by the batch's positive anchors."""
    logits, predicted, caches = head.forward(maps)
    positive = classes > 0
    count = max(1, int(positive.sum()))
    class_loss, d_logits = focal_loss(logits, classes)
    box_loss, d_box = smooth_l1(predicted - deltas)
    box_loss = float((box_loss.sum(-1) * positive).sum())
    grads = head.backward(caches, d_logits / count, d_box * positive[..., None] / count)
    return {"class_loss": class_loss / count, "box_loss": box_loss / count}, grads


def fit(head: FastHead, data: PhotoMaps, settings: dict, rng: np.random.Generator, progress: Progress,
        should_stop: Callable[[], bool]) -> dict[str, list[float]]:
    """Adam on shuffled mini-batches of cached maps, warm-up then cosine decay; stops between batches when asked."""
    targets = [anchor_targets(head.anchors(), b, l) for b, l in zip(data.boxes, data.labels)]
    classes, deltas = np.stack([t[0] for t in targets]), np.stack([t[1] for t in targets])
    batch, epochs = settings["batch_size"], settings["epochs"]
    steps = epochs * -(-len(data) // batch)
    adam, history, step = Adam(head.weights, settings["learning_rate"]), {}, 0
    for _ in range(epochs):
        order, sums = rng.permutation(len(data)), {}
        for start in range(0, len(data), batch):
            if should_stop():
                return history
            rows = np.sort(order[start : start + batch])
            maps = [channel_dropout(rng, m[rows], settings["dropout"]) for m in data.maps]
            losses, grads = _step(head, maps, classes[rows], deltas[rows])
            adam.step(head.weights, grads, cosine_rate(settings["learning_rate"], step, steps, min(100, steps // 10)))
            step += 1
            sums = {k: sums.get(k, 0.0) + v * len(rows) for k, v in losses.items()}
            progress("training", step, steps)
        for key, value in sums.items():
            history.setdefault(key, []).append(value / len(data))
    return history


def train_fast(photos: Sequence[LabelledPhoto], classes: Sequence[str], base: Any, settings: dict | None = None,
               progress: Progress = nothing, should_stop: Callable[[], bool] = never) -> TrainedDetector:
    """Train the fast detector on labelled photos: maps through the base once, the head on them, one ONNX graph.

    Stopped (``should_stop``) during training, it keeps the head trained so far; before that, :class:`Stopped`.
    """
    started, chosen, classes = time.perf_counter(), chosen_settings(PARAMS, settings), tuple(classes)
    check_photos(photos, classes)
    data = photo_maps(base, photos, classes, detection_taps(base), chosen["input_size"], chosen["mirror"],
                      chosen["crops"], progress, should_stop)
    rng = np.random.default_rng(chosen["seed"])
    head = initial_head(rng, data, classes, chosen)
    history = fit(head, data, chosen, rng, progress, should_stop)
    if not history and should_stop():
        raise Stopped("stopped before the first epoch ended")
    boxes = sum(int(np.isin(p.labels, classes).sum()) for p in photos)
    from vision_backend.own_detection.graph import fast_graph  # onnx: only to build (detecting never needs it)

    return TrainedDetector("fast", classes, base.name, fast_graph(base, head), head, chosen, history,
                           len(photos), boxes, time.perf_counter() - started)


def detections(scores: np.ndarray, boxes: np.ndarray, classes: tuple[str, ...], photo_hw: tuple[int, int], size: int,
               score_threshold: float, iou_threshold: float) -> Detections:
    """One photo's (anchors, K) scores and (anchors, 4) input-pixel boxes as Detections in the photo's pixels:
    every (anchor, class) over the threshold, the best 1000, per-class NMS, at most 100."""
    anchor, label = np.nonzero(scores > score_threshold)
    score = scores[anchor, label]
    best = np.argsort(-score, kind="stable")[:MAX_CANDIDATES]
    anchor, label, score = anchor[best], label[best], score[best]
    keep = batched_nms(boxes[anchor], score, label, iou_threshold)[:MAX_DETECTIONS]
    height, width = photo_hw
    return Detections(to_photo(boxes[anchor[keep]], width, height, size), score[keep], label[keep], classes)


def predict_photos(base: Any, head: FastHead, images: Sequence[np.ndarray], score_threshold: float = 0.05,
                   iou_threshold: float = 0.4, batch: int = 16) -> list[Detections]:
    """Detections in the training-time form (ONNX Runtime's base maps, the numpy head), photo by photo."""
    found = []
    for start in range(0, len(images), batch):
        part = images[start : start + batch]
        scores, boxes = head.predict(base.feature_maps(part, head.taps, head.size))
        found += [detections(s, b, head.classes, i.shape[:2], head.size, score_threshold, iou_threshold)
                  for s, b, i in zip(scores, boxes, part)]
    return found


def keras_reference(base: Any, head: FastHead, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, boxes) of every anchor with the base on Keras and the numpy head: what the exported graph is
    checked against (``own_fast_onnx_vs_keras_max_box_diff_px``)."""
    from vision_backend.transfer.onnx_base import keras_probe

    probe = keras_probe(base, head.taps, head.size)
    maps = probe.predict_on_batch(base.resized(list(images), head.size))
    return head.predict([np.asarray(m) for m in (maps if isinstance(maps, (list, tuple)) else [maps])])
