"""COCO object detectors on ONNX Runtime: NanoDet-m, YOLOv8n-seg and Mask R-CNN, each one model object.

Each detector writes out its authors' preprocessing (``preprocess``: letterbox, normalisation,
layout) and decoding (``decode``: raw outputs to :class:`~vision_backend.detections.Detections` in
the photo's pixels). The two halves are apart so a batch can preprocess many photos, run them
together and decode each.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from vision_backend import engines
from vision_backend.boxes import batched_nms
from vision_backend.cards import AssetFile, ModelCard, shared_file
from vision_backend.detections import Detections
from vision_backend.imageops import Letterbox, letterbox, sigmoid, softmax
from vision_backend.model import Detector, Param
from vision_backend.object_detection.coco import COCO_NAMES

def _thresholds(score: float, iou: float) -> tuple[Param, ...]:
    return (Param("score_threshold", "Score threshold", score, 0.05, 0.95, 0.05),
            Param("iou_threshold", "NMS IoU threshold", iou, 0.1, 1.0, 0.05,
                  help="Boxes of one class overlapping a better one by more than this go."))


MASK_THRESHOLD = Param("mask_threshold", "Mask threshold", 0.5, 0.1, 0.9, 0.05)


class OnnxDetector(Detector):
    """A detector whose engine is an ONNX Runtime session (safe to run from several threads)."""

    concurrent = True
    class_names = COCO_NAMES
    group = "object detector"
    size: int | None = None
    """The square input the photo is letterboxed into (None: the model takes any size)."""

    def working_side(self, settings: dict[str, Any]) -> int | None:
        return None if self.has_masks else self.size

    def load(self) -> Any:
        return engines.onnx_session(self.graph())

    def load_worker(self, variant: Any, threads: int) -> Any:
        return engines.onnx_session(self.graph(), spinning=threads > 1, threads=threads)

    def graph(self) -> str | bytes:
        """The graph ONNX Runtime gets: the card's file, its weights made constants (see ``constant_weights``)."""
        return engines.constant_weights(self.card.path())

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Any]:
        """(the model's input blob, what ``decode`` needs to map back to the photo)."""
        raise NotImplementedError

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, Any]:
        return self.preprocess(image)

    def decode(self, outputs: list[np.ndarray], geometry: Any, image_hw: tuple[int, int],
               **settings: Any) -> Detections:
        raise NotImplementedError

    def infer(self, session: Any, image: np.ndarray, prepared: Any = None, **settings: Any) -> Detections:
        blob, geometry = prepared or self.preprocess(image)
        outputs = session.run(None, {session.get_inputs()[0].name: blob})
        found = self.decode(outputs, geometry, image.shape[:2], **settings)
        found.meta["input"] = tuple(blob.shape[-2:]) if blob.ndim >= 3 else blob.shape
        return found


# ---- NanoDet-m -----------------------------------------------------------------------------
class NanoDet(OnnxDetector):
    """NanoDet-m: an anchor-free FCOS-style head on three strides with distribution boxes (GFL).

    Each grid cell predicts 80 sigmoid class scores and, for each side (l, t, r, b), a
    distribution over 8 bins; the side's distance is the distribution's mean times the stride.
    """

    short_title = "NanoDet-m 416 (Apache-2.0)"
    roles = ("objects",)
    warm = True

    card = ModelCard(
        name="nanodet_m", title="NanoDet-m 416 (COCO)", task="object detection", seedable=True,
        files=(shared_file("models/vision_lab/nanodet_m_416_coco.onnx",
                           "4b82da9944b88577175ee23a459dce2e26e6e4be573def65b1055dc2d9720186", 3_800_954,
                           "https://github.com/opencv/opencv_zoo/raw/main/models/object_detection_nanodet/"
                           "object_detection_nanodet_2022nov.onnx"),),
        licence="Apache-2.0", input="1x3x416x416 float32, letterboxed BGR", params=950_000,
        preprocessing="(BGR - [103.53,116.28,123.675]) / [57.375,57.12,58.395]", accuracy="COCO val mAP 20.6",
    )
    params = _thresholds(0.35, 0.6)
    size = 416
    mean = np.array([103.53, 116.28, 123.675], np.float32)
    std = np.array([57.375, 57.12, 58.395], np.float32)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        canvas, box = letterbox(image, self.size, 0)
        blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[::-1], dtype=np.float32)  # BGR, CHW
        blob -= self.mean[:, None, None]  # in place: half the time of the expression with temporaries
        blob /= self.std[:, None, None]
        return blob[None], box

    def _stride_candidates(self, scores: np.ndarray, dists: np.ndarray, stride: int, threshold: float) -> tuple:
        cells = self.size // stride
        labels = scores.argmax(1)
        best = scores[np.arange(len(scores)), labels]
        keep = np.flatnonzero(best > threshold)
        rows, cols = keep // cells, keep % cells
        cx, cy = cols * stride + (stride - 1) / 2, rows * stride + (stride - 1) / 2
        sides = (softmax(dists[keep].reshape(-1, 4, 8)) * np.arange(8)).sum(2) * stride
        boxes = np.c_[cx - sides[:, 0], cy - sides[:, 1], cx + sides[:, 2], cy + sides[:, 3]]
        return boxes.reshape(-1, 4), best[keep], labels[keep]

    def decode(self, outputs: list[np.ndarray], box: Letterbox, image_hw: tuple[int, int], score_threshold: float,
               iou_threshold: float) -> Detections:
        scores_by_n = {o.shape[1]: o[0] for o in outputs if o.shape[2] == 80}
        dists_by_n = {o.shape[1]: o[0] for o in outputs if o.shape[2] == 32}
        parts = [self._stride_candidates(scores_by_n[(self.size // s) ** 2], dists_by_n[(self.size // s) ** 2], s,
                                         score_threshold) for s in (8, 16, 32)]
        boxes, scores, labels = (np.concatenate(p) for p in zip(*parts))
        keep = batched_nms(boxes, scores, labels, iou_threshold)
        return Detections(box.to_photo(boxes[keep]), scores[keep], labels[keep], COCO_NAMES)


# ---- YOLOv8n-seg ---------------------------------------------------------------------------
def yolo_masks(coefficients: np.ndarray, prototypes: np.ndarray, boxes: np.ndarray, box: Letterbox,
               photo_hw: tuple[int, int], size: int, threshold: float) -> np.ndarray:
    """Masks in photo pixels: the prototype grid cut to the letterboxed photo, resized, cropped to each box."""
    height, width = photo_hw
    if not len(coefficients):
        return np.zeros((0, height, width), bool)
    channels, grid_h, grid_w = prototypes.shape
    # einsum, not BLAS's matmul: OpenBLAS's threads busy-wait after a call and slow the next session run
    logits = np.einsum("nc,cp->np", coefficients, prototypes.reshape(channels, -1))
    probabilities = sigmoid(logits.reshape(-1, grid_h, grid_w))
    ratio = grid_w / size  # the grid covers the padded square: cut the pad, then resize to the photo
    x0, y0 = round(box.pad_x * ratio), round(box.pad_y * ratio)
    x1, y1 = max(x0 + 1, round((size - box.pad_x) * ratio)), max(y0 + 1, round((size - box.pad_y) * ratio))
    photo_boxes = box.to_photo(boxes).round().astype(int)
    masks = np.zeros((len(probabilities), height, width), bool)
    for i, p in enumerate(probabilities.astype(np.float32)):
        a, b = np.clip(photo_boxes[i, [0, 2]], 0, width)
        c, d = np.clip(photo_boxes[i, [1, 3]], 0, height)
        full = cv2.resize(p[y0:y1, x0:x1], (width, height), interpolation=cv2.INTER_LINEAR)
        masks[i, c:d, a:b] = full[c:d, a:b] > threshold
    return masks


class YOLOv8Seg(OnnxDetector):
    """YOLOv8n-seg: per anchor a box (cx, cy, w, h), 80 class scores and 32 mask coefficients.

    A mask is ``sigmoid(coefficients @ prototypes)`` on the 80x80 prototype grid, cropped to
    its box, then taken back through the letterbox to the photo's size.
    """

    short_title = "YOLOv8n-seg 320 int8 (AGPL-3.0)"

    card = ModelCard(
        name="yolov8n_seg", title="YOLOv8n-seg int8 320 (COCO) — AGPL-3.0", task="instance segmentation",
        seedable=True,
        files=(shared_file("models/vision_lab/yolov8n-seg_int8_320_coco.onnx",
                           "a892891617cbadd34d860f66a866393a8d4c487c49f1474e9b6d9e578332e56a", 3_711_949),),
        licence="AGPL-3.0 (Ultralytics weights)", input="1x3x320x320 float32, letterboxed RGB/255 (pad 114)",
        params=3_400_000, preprocessing="letterbox 114, RGB/255, NCHW",
        accuracy="COCO val box mAP 36.7 / mask 30.5 at 640 (Ultralytics; lower at 320 int8)",
        note="AGPL-3.0: an explicit choice, never the default. Exported and quantised by the team "
             "(no public download of this file).",
    )
    params = (*_thresholds(0.35, 0.6), MASK_THRESHOLD)
    has_masks = True
    size = 320

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        canvas, box = letterbox(image, self.size, 114)
        return np.ascontiguousarray((canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]), box

    def decode(self, outputs: list[np.ndarray], box: Letterbox, image_hw: tuple[int, int], score_threshold: float,
               iou_threshold: float, mask_threshold: float) -> Detections:
        predictions, prototypes = outputs
        predictions = predictions[0].T  # (anchors, 4 + 80 + 32)
        labels = predictions[:, 4:84].argmax(1)
        scores = predictions[np.arange(len(labels)), 4 + labels]
        keep = scores > score_threshold
        predictions, labels, scores = predictions[keep], labels[keep], scores[keep]
        cx, cy, w, h = predictions[:, :4].T
        boxes = np.c_[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        kept = batched_nms(boxes, scores, labels, iou_threshold)
        masks = yolo_masks(predictions[kept, 84:], prototypes[0], boxes[kept], box, image_hw, self.size,
                           mask_threshold)
        return Detections(box.to_photo(boxes[kept]), scores[kept], labels[kept], COCO_NAMES, masks=masks)


# ---- Mask R-CNN (ONNX Model Zoo) -----------------------------------------------------------
def paste_mask(mask: np.ndarray, box: np.ndarray, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """A 28x28 mask probability map resized into its box on a full-size canvas."""
    out = np.zeros((height, width), bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    if x2 > x1 and y2 > y1:
        out[y1:y2, x1:x2] = cv2.resize(mask.astype(np.float32), (x2 - x1, y2 - y1)) > threshold
    return out


class MaskRCNN(OnnxDetector):
    """Mask R-CNN R50-FPN (the deck's model): boxes, labels (1..80; 0 = background), scores, 28x28 masks."""

    short_title = "Mask R-CNN R50-FPN (MIT)"

    card = ModelCard(
        name="mask_rcnn", title="Mask R-CNN R50-FPN (ONNX Model Zoo)", task="instance segmentation",
        files=(AssetFile("models/vision_lab/MaskRCNN-12.onnx",
                         "https://github.com/onnx/models/raw/main/validated/vision/object_detection_segmentation/"
                         "mask-rcnn/model/MaskRCNN-12.onnx",
                         "5bf940c124d9117f6fae350c4e0d46df180cbb01981832b35fdbed148078b946", 177_970_010),),
        licence="MIT", input="3xHxW float32 BGR, shorter side 800, padded to x32",
        preprocessing="BGR minus [102.9801, 115.9465, 122.7717]", params=44_400_000,
        accuracy="COCO val2017 box AP 36.1 / mask AP 32.7 (the deck's model)",
        note="Opset-12 file of the same model as MaskRCNN-10.onnx; hash from the Zoo's LFS pointer.",
    )
    params = (*_thresholds(0.5, 0.5), MASK_THRESHOLD)
    has_masks = True
    mean_bgr = np.array([102.9801, 115.9465, 122.7717], np.float32)

    def preprocess(self, image: np.ndarray, shorter: int = 800, longer: int = 1333) -> tuple[np.ndarray, float]:
        """The Zoo's preprocessing: shorter side 800 (longer <= 1333), BGR minus means, CHW, padded to x32."""
        height, width = image.shape[:2]
        scale = min(shorter / min(height, width), longer / max(height, width))
        small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
        chw = (small[:, :, ::-1].astype(np.float32) - self.mean_bgr).transpose(2, 0, 1)
        pad_h, pad_w = -chw.shape[1] % 32, -chw.shape[2] % 32
        return np.pad(chw, ((0, 0), (0, pad_h), (0, pad_w))), scale

    def decode(self, outputs: list[np.ndarray], scale: float, image_hw: tuple[int, int], score_threshold: float,
               iou_threshold: float, mask_threshold: float) -> Detections:
        boxes, labels, scores, masks = outputs
        keep = scores > score_threshold
        boxes, labels, scores, masks = boxes[keep] / scale, labels[keep].astype(np.int64) - 1, scores[keep], masks[keep]
        kept = batched_nms(boxes, scores, labels, iou_threshold)
        height, width = image_hw
        pasted = np.stack([paste_mask(masks[i, 0], boxes[i], height, width, mask_threshold) for i in kept]) \
            if len(kept) else np.zeros((0, height, width), bool)
        return Detections(boxes[kept], scores[kept], labels[kept], COCO_NAMES, masks=pasted)


DETECTORS: dict[str, Detector] = {d.name: d for d in (NanoDet(), YOLOv8Seg(), MaskRCNN())}
"""Every object detector by card name; NanoDet-m (Apache-2.0) is the default."""
