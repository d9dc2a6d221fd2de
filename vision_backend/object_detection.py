"""Object detection: region proposals, anchors, and COCO detectors on ONNX Runtime.

The building blocks of the R-CNN family are here to play with: :func:`selective_search`
(R-CNN's proposals), :func:`anchor_boxes` (Faster R-CNN's RPN: 3 scales x 3 ratios at a
point), and :mod:`vision_backend.boxes` for IoU and NMS. Each real detector has one adapter
(``detect_nanodet``, ``detect_yolov8_seg``, ``detect_mask_rcnn``) that turns an RGB photo into
:class:`~vision_backend.detections.Detections` in the photo's pixels: preprocessing
(letterbox, normalisation, layout) and decoding written out as each model's authors define it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend.boxes import area, iou, non_max_suppression
from vision_backend.detections import Detections
from vision_backend.face_detection import fit_long_side
from vision_backend.models import card


@lru_cache(maxsize=1)
def coco_names() -> tuple[str, ...]:
    """The 80 COCO class names, index 0 = person (the order both real models use)."""
    return tuple(card("nanodet_m").path(1).read_text().split("\n")[:80])


# ---- shared pieces -------------------------------------------------------------------------
@dataclass(frozen=True)
class Letterbox:
    """How a photo was fitted into a square input: scale, then padding on each side."""

    scale: float
    pad_x: int
    pad_y: int

    def to_photo(self, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float32).copy()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale
        return boxes


def letterbox(image: np.ndarray, size: int, pad_value: int = 0) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad, centred, to ``size`` x ``size``."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    canvas = np.full((size, size, 3), pad_value, np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, pad_x, pad_y)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Per-class NMS in one call: boxes of different classes are moved apart so they never overlap."""
    if not len(boxes):
        return np.zeros(0, np.int64)
    offset = labels[:, None].astype(np.float64) * (float(boxes.max()) + 1.0)
    return non_max_suppression(boxes + offset, scores, iou_threshold)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _finish(found: Detections, image: np.ndarray, started: float, **meta: Any) -> Detections:
    found = found.clipped(image.shape[1], image.shape[0])
    found = found[np.argsort(-found.scores, kind="stable")]
    found.meta.update(ms=(time.perf_counter() - started) * 1000, **meta)
    return found


# ---- NanoDet-m -----------------------------------------------------------------------------
NANODET_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
NANODET_STD = np.array([57.375, 57.12, 58.395], np.float32)


def detect_nanodet(
    session: Any, image: np.ndarray, score_threshold: float = 0.35, iou_threshold: float = 0.6, size: int = 416,
) -> Detections:
    """NanoDet-m: an anchor-free FCOS-style head on three strides with distribution boxes (GFL).

    Each grid cell predicts 80 sigmoid class scores and, for each side (l, t, r, b), a
    distribution over 8 bins; the side's distance is the distribution's mean times the stride.
    """
    started = time.perf_counter()
    canvas, box = letterbox(image, size, 0)
    blob = ((canvas[:, :, ::-1].astype(np.float32) - NANODET_MEAN) / NANODET_STD).transpose(2, 0, 1)[None]
    outputs = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(blob)})
    scores_by_n = {o.shape[1]: o[0] for o in outputs if o.shape[2] == 80}
    dists_by_n = {o.shape[1]: o[0] for o in outputs if o.shape[2] == 32}
    all_boxes, all_scores, all_labels = [], [], []
    for stride in (8, 16, 32):
        cells = size // stride
        scores, dists = scores_by_n[cells * cells], dists_by_n[cells * cells]
        labels = scores.argmax(1)
        best = scores[np.arange(len(scores)), labels]
        keep = best > score_threshold
        if not keep.any():
            continue
        index = np.nonzero(keep)[0]
        rows, cols = index // cells, index % cells
        cx, cy = cols * stride + (stride - 1) / 2, rows * stride + (stride - 1) / 2
        sides = (_softmax(dists[keep].reshape(-1, 4, 8)) * np.arange(8)).sum(2) * stride
        all_boxes.append(np.c_[cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]])
        all_scores.append(best[keep])
        all_labels.append(labels[keep])
    if not all_boxes:
        return _finish(Detections.empty(coco_names()), image, started, input=size)
    boxes, scores, labels = np.concatenate(all_boxes), np.concatenate(all_scores), np.concatenate(all_labels)
    keep = batched_nms(boxes, scores, labels, iou_threshold)
    found = Detections(box.to_photo(boxes[keep]), scores[keep], labels[keep], coco_names())
    return _finish(found, image, started, input=size)


# ---- YOLOv8n-seg ---------------------------------------------------------------------------
def detect_yolov8_seg(
    session: Any, image: np.ndarray, score_threshold: float = 0.35, iou_threshold: float = 0.6,
    mask_threshold: float = 0.5, size: int = 320,
) -> Detections:
    """YOLOv8n-seg: per anchor a box (cx, cy, w, h), 80 class scores and 32 mask coefficients.

    A mask is ``sigmoid(coefficients @ prototypes)`` on the 80x80 prototype grid, cropped to
    its box, then taken back through the letterbox to the photo's size.
    """
    started = time.perf_counter()
    canvas, box = letterbox(image, size, 114)
    blob = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    predictions, prototypes = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(blob)})
    predictions = predictions[0].T  # (anchors, 4 + 80 + 32)
    class_scores = predictions[:, 4:84]
    labels = class_scores.argmax(1)
    scores = class_scores[np.arange(len(labels)), labels]
    keep = scores > score_threshold
    predictions, labels, scores = predictions[keep], labels[keep], scores[keep]
    cx, cy, w, h = predictions[:, :4].T
    boxes = np.c_[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    kept = batched_nms(boxes, scores, labels, iou_threshold)
    boxes, scores, labels, coefficients = boxes[kept], scores[kept], labels[kept], predictions[kept, 84:]
    masks = _yolo_masks(coefficients, prototypes[0], boxes, box, image.shape[:2], size, mask_threshold)
    found = Detections(box.to_photo(boxes), scores, labels, coco_names(), masks=masks)
    return _finish(found, image, started, input=size)


def _yolo_masks(coefficients: np.ndarray, prototypes: np.ndarray, boxes: np.ndarray, box: Letterbox,
                photo_hw: tuple[int, int], size: int, threshold: float) -> np.ndarray:
    """Masks in photo pixels: the prototype grid cut to the letterboxed photo, resized, cropped to each box."""
    height, width = photo_hw
    if not len(coefficients):
        return np.zeros((0, height, width), bool)
    channels, grid_h, grid_w = prototypes.shape
    # einsum, not BLAS's matmul: OpenBLAS's threads busy-wait after a call and slow the next session run
    logits = np.einsum("nc,cp->np", coefficients, prototypes.reshape(channels, -1))
    probabilities = _sigmoid(logits.reshape(-1, grid_h, grid_w))
    ratio = grid_w / size  # the grid covers the padded square: cut the pad, then resize to the photo
    x0, y0 = round(box.pad_x * ratio), round(box.pad_y * ratio)
    x1, y1 = round((size - box.pad_x) * ratio), round((size - box.pad_y) * ratio)
    photo_boxes = box.to_photo(boxes).round().astype(int)
    masks = np.zeros((len(probabilities), height, width), bool)
    for i, p in enumerate(probabilities.astype(np.float32)):
        a, b = np.clip(photo_boxes[i, [0, 2]], 0, width)
        c, d = np.clip(photo_boxes[i, [1, 3]], 0, height)
        full = cv2.resize(p[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_LINEAR)
        masks[i, c:d, a:b] = full[c:d, a:b] > threshold
    return masks


# ---- Mask R-CNN (ONNX Model Zoo) -----------------------------------------------------------
MASK_RCNN_MEAN_BGR = np.array([102.9801, 115.9465, 122.7717], np.float32)


def mask_rcnn_input(image: np.ndarray, shorter: int = 800, longer: int = 1333) -> tuple[np.ndarray, float]:
    """The Zoo's preprocessing: shorter side 800 (longer <= 1333), BGR minus means, CHW, padded to x32."""
    height, width = image.shape[:2]
    scale = min(shorter / min(height, width), longer / max(height, width))
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
    chw = (resized[:, :, ::-1].astype(np.float32) - MASK_RCNN_MEAN_BGR).transpose(2, 0, 1)
    pad_h, pad_w = -chw.shape[1] % 32, -chw.shape[2] % 32
    return np.pad(chw, ((0, 0), (0, pad_h), (0, pad_w))), scale


def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """A 28x28 mask probability map resized into its box on a full-size canvas."""
    out = np.zeros((height, width), bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    if x2 > x1 and y2 > y1:
        out[y1:y2, x1:x2] = cv2.resize(mask.astype(np.float32), (x2 - x1, y2 - y1)) > threshold
    return out


def detect_mask_rcnn(session: Any, image: np.ndarray, score_threshold: float = 0.5, mask_threshold: float = 0.5,
                     iou_threshold: float = 0.5) -> Detections:
    """Mask R-CNN R50-FPN: outputs boxes, labels (1..80; 0 = background), scores and 28x28 masks."""
    started = time.perf_counter()
    blob, scale = mask_rcnn_input(image)
    boxes, labels, scores, masks = session.run(None, {session.get_inputs()[0].name: blob})
    keep = scores > score_threshold
    boxes, labels, scores, masks = boxes[keep] / scale, labels[keep].astype(np.int64) - 1, scores[keep], masks[keep]
    kept = batched_nms(boxes, scores, labels, iou_threshold)
    height, width = image.shape[:2]
    pasted = np.stack([paste_mask(masks[i, 0], boxes[i], height, width, mask_threshold) for i in kept]) \
        if len(kept) else np.zeros((0, height, width), bool)
    found = Detections(boxes[kept], scores[kept], labels[kept], coco_names(), masks=pasted)
    return _finish(found, image, started, input=blob.shape[1:])


@dataclass(frozen=True)
class ObjectDetector:
    name: str
    title: str
    model: str
    detect: Callable[..., Detections]
    has_masks: bool
    defaults: dict[str, Any]


DETECTORS: dict[str, ObjectDetector] = {
    d.name: d for d in (
        ObjectDetector("nanodet", "NanoDet-m 416 (Apache-2.0)", "nanodet_m", detect_nanodet, False,
                       dict(score_threshold=0.35, iou_threshold=0.6)),
        ObjectDetector("yolov8n_seg", "YOLOv8n-seg 320 int8 (AGPL-3.0)", "yolov8n_seg", detect_yolov8_seg, True,
                       dict(score_threshold=0.35, iou_threshold=0.6, mask_threshold=0.5)),
        ObjectDetector("mask_rcnn", "Mask R-CNN R50-FPN (MIT)", "mask_rcnn", detect_mask_rcnn, True,
                       dict(score_threshold=0.5, iou_threshold=0.5, mask_threshold=0.5)),
    )
}


def detect(name: str, session: Any, image: np.ndarray, **settings: Any) -> Detections:
    detector = DETECTORS[name]
    return detector.detect(session, image, **{**detector.defaults, **settings})


# ---- R-CNN's building blocks ---------------------------------------------------------------
def selective_search(image: np.ndarray, mode: str = "fast", max_side: int = 480, top: int | None = None) -> Detections:
    """OpenCV's selective search (Uijlings et al.): hierarchical grouping of superpixels.

    Runs on a copy whose long side is at most ``max_side`` (it is slow: seconds at 640x480);
    boxes come back in the photo's pixels, in OpenCV's order (most promising first).
    """
    started = time.perf_counter()
    small, factor = fit_long_side(image, max_side)
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    if mode == "quality":
        search.switchToSelectiveSearchQuality()
    else:
        search.switchToSelectiveSearchFast()
    rects = np.asarray(search.process(), np.float32).reshape(-1, 4)
    if top:
        rects = rects[:top]
    boxes = np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]] * factor
    found = Detections(boxes, np.linspace(1, 0, len(boxes)), np.zeros(len(boxes)), ("proposal",))
    found = found.clipped(image.shape[1], image.shape[0])
    found.meta.update(ms=(time.perf_counter() - started) * 1000, scale=1 / factor)
    return found


def anchor_boxes(cx: float, cy: float, scales: tuple[int, ...] = (64, 128, 256),
                 ratios: tuple[float, ...] = (0.5, 1.0, 2.0)) -> np.ndarray:
    """A Region Proposal Network's anchors at one position: each scale (sqrt of area) at each h/w ratio."""
    boxes = []
    for scale in scales:
        for ratio in ratios:
            w, h = scale / np.sqrt(ratio), scale * np.sqrt(ratio)
            boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    return np.asarray(boxes, np.float32)


def roi_pool(feature_map: np.ndarray, box: np.ndarray, output: int = 7) -> np.ndarray:
    """Fast R-CNN's ROI pooling: split a box of any size into ``output`` x ``output`` bins, max of each.

    Every proposal becomes the same fixed-size grid, so one head can classify them all.
    """
    height, width = feature_map.shape[:2]
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    xs = np.clip(np.floor(np.linspace(x1, x2, output + 1)).astype(int), 0, width)
    ys = np.clip(np.floor(np.linspace(y1, y2, output + 1)).astype(int), 0, height)
    pooled = np.zeros((output, output) + feature_map.shape[2:], feature_map.dtype)
    for r in range(output):
        for c in range(output):
            cell = feature_map[ys[r] : max(ys[r + 1], ys[r] + 1), xs[c] : max(xs[c + 1], xs[c] + 1)]
            if cell.size:
                pooled[r, c] = cell.max(axis=(0, 1))
    return pooled


def nms_steps(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
              labels: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Greedy NMS written out: which box is kept at each step and which it suppresses.

    With ``labels``, boxes only suppress boxes of their own class (as detectors run it).
    """
    labels = np.zeros(len(boxes), np.int64) if labels is None else np.asarray(labels)
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    steps = []
    while order:
        best, rest = order[0], order[1:]
        overlaps = iou(boxes[best], boxes[rest])[0] if rest else np.zeros(0)
        overlaps = np.where(labels[rest] == labels[best], overlaps, 0.0) if rest else overlaps
        suppressed = [int(r) for r, o in zip(rest, overlaps) if o > iou_threshold]
        steps.append({"keep": int(best), "score": float(scores[best]), "suppressed": suppressed,
                      "overlaps": {int(r): round(float(o), 3) for r, o in zip(rest, overlaps)}})
        order = [r for r, o in zip(rest, overlaps) if o <= iou_threshold]
    return steps


# ---- results -------------------------------------------------------------------------------
# COCO's official category ids (1..90 with gaps) for the 80 contiguous classes the models predict
COCO_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
                     31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
                     56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
                     85, 86, 87, 88, 89, 90)


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO's uncompressed RLE: run lengths in column-major order, starting with background."""
    flat = np.asarray(mask, bool).flatten(order="F")
    changes = np.flatnonzero(np.diff(np.r_[0, flat.astype(np.int8), 0]))
    counts = np.diff(np.r_[0, changes]).tolist()  # a change at index 0 gives an empty first background run
    if sum(counts) < flat.size:
        counts.append(int(flat.size - sum(counts)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    height, width = rle["size"]
    values = np.zeros(height * width, bool)
    position, value = 0, False
    for run in rle["counts"]:
        values[position : position + run] = value
        position += run
        value = not value
    return values.reshape((height, width), order="F")


def to_coco(found: Detections, image_id: str = "photo") -> list[dict[str, Any]]:
    """COCO-style results: bbox as [x, y, width, height], COCO's category ids, RLE masks."""
    official = found.class_names == coco_names()
    rows = []
    for i in range(len(found)):
        x1, y1, x2, y2 = (float(v) for v in found.boxes[i])
        row = {"image_id": image_id, "category_id": COCO_CATEGORY_IDS[found.labels[i]] if official else int(found.labels[i]) + 1,
               "category": found.class_names[found.labels[i]], "score": round(float(found.scores[i]), 4),
               "bbox": [round(x1, 1), round(y1, 1), round(x2 - x1, 1), round(y2 - y1, 1)]}
        if found.masks is not None:
            row["segmentation"] = rle_encode(found.masks[i])
            row["area"] = int(found.masks[i].sum())
        rows.append(row)
    return rows


def keep_only(image: np.ndarray, found: Detections, class_name: str = "person",
              background: tuple[int, int, int] | None = (255, 255, 255), blur: int = 0) -> np.ndarray:
    """Background removal from instance masks: keep the pixels of ``class_name`` instances only.

    ``background`` paints everything else a colour; ``blur`` > 0 blurs it instead (as video calls do).
    """
    if found.masks is None:
        raise ValueError("this detector gives boxes only; pick one with masks")
    wanted = [i for i, n in enumerate(found.names) if n == class_name]
    keep = np.any(found.masks[wanted], axis=0) if wanted else np.zeros(image.shape[:2], bool)
    if blur:
        k = blur | 1
        rest = cv2.GaussianBlur(image, (k, k), 0)
    else:
        rest = np.empty_like(image)
        rest[:] = background
    return np.where(keep[:, :, None], image, rest)
