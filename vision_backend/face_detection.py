"""Face detection: Viola-Jones, HOG, MTCNN and YuNet behind one interface.

Every detector is a function ``detect_<name>(model, image, **settings) -> Detections`` on an
RGB ``uint8`` photo; ``model`` comes from the registry (loaded once by the caller). Large photos
are shrunk so their long side is at most ``max_side`` before detection and the boxes are
mapped back, which is where most of the speed comes from on a 2-core machine.

The module also shows *how* the classic detector works: :func:`integral_image`,
:func:`rect_sum` with four look-ups, two- and three-rectangle :func:`haar_feature` values,
and :func:`cascade_funnel`, a plain numpy evaluation of OpenCV's cascade XML that counts how
many windows each stage rejects. :func:`mtcnn_stages` does the same for MTCNN's three nets.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend.boxes import iou, match
from vision_backend.detections import Detections

LANDMARK_NAMES = ("right eye", "left eye", "nose", "mouth right", "mouth left")


# ---- shared helpers ----------------------------------------------------------------------
def fit_long_side(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """``image`` shrunk (never enlarged) so its long side is at most ``max_side``.

    Returns the image and the factor that maps its coordinates back to the original.
    """
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return image, 1.0
    factor = max(height, width) / max_side
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def _finish(detections: Detections, factor: float, image: np.ndarray, started: float) -> Detections:
    detections = detections.scaled(factor).clipped(image.shape[1], image.shape[0])
    order = np.argsort(-detections.scores, kind="stable")
    detections = detections[order]
    detections.meta.update(ms=(time.perf_counter() - started) * 1000, scale=1 / factor)
    return detections


# ---- Viola-Jones ---------------------------------------------------------------------------
def rotated_windows(
    cascade: cv2.CascadeClassifier, grey: np.ndarray, degrees: float, scale_factor: float, min_px: int, max_px: int,
) -> np.ndarray:
    """Every window the cascade accepts in ``grey`` turned by ``degrees``, as upright (x, y, w, h) boxes
    centred where the window's centre falls in the unturned photo.

    The frontal cascades were trained on upright faces and lose a head tilted by more than about
    10 degrees; scanning turned copies of the photo is the classic remedy.
    """
    height, width = grey.shape
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    turned = cv2.warpAffine(grey, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) \
        if degrees else grey
    windows = np.asarray(cascade.detectMultiScale(turned, scaleFactor=scale_factor, minNeighbors=0,
                                                  minSize=(min_px, min_px), maxSize=(max_px, max_px)),
                         np.float64).reshape(-1, 4)
    if degrees and len(windows):
        centres = np.c_[windows[:, :2] + windows[:, 2:] / 2, np.ones(len(windows))] @ cv2.invertAffineTransform(turn).T
        windows[:, :2] = centres - windows[:, 2:] / 2
    return windows


def haar_windows(
    cascade: cv2.CascadeClassifier, image: np.ndarray, scale_factor: float = 1.1, min_size: int = 20,
    max_size: int = 0, max_side: int | None = 480, equalize: bool = True, tilt: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Every window the cascade accepts, before any grouping, as (x, y, w, h) in the shrunk photo,
    and the factor that maps them back to ``image``."""
    small, factor = fit_long_side(image, max_side)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    if equalize:
        grey = cv2.equalizeHist(grey)
    min_px = max(1, round(min_size / factor))
    max_px = round(max_size / factor) if max_size else 0
    turns = [0.0, -tilt, tilt] if tilt else [0.0]
    return np.concatenate([rotated_windows(cascade, grey, t, scale_factor, min_px, max_px) for t in turns]), factor


def group_windows(windows: np.ndarray, min_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's own grouping, as detectMultiScale does it: clusters of similar windows, kept when more
    than ``min_neighbors`` windows fall in them. Returns xyxy boxes (the clusters' means) and votes."""
    rects, votes = cv2.groupRectangles(np.round(windows).astype(np.int32).tolist(), min_neighbors, 0.2) \
        if len(windows) else ((), ())
    rects = np.asarray(rects, np.float32).reshape(-1, 4)
    votes = np.asarray(votes, np.float32).reshape(-1)
    if len(votes) != len(rects):  # min_neighbors 0: every window stands alone
        votes = np.ones(len(rects), np.float32)
    return np.c_[rects[:, :2], rects[:, :2] + rects[:, 2:]], votes


def detect_haar(
    cascade: cv2.CascadeClassifier, image: np.ndarray, scale_factor: float = 1.1, min_neighbors: int = 5,
    min_size: int = 20, max_size: int = 0, max_side: int | None = 480, equalize: bool = True,
    tilt: float = 0.0,
) -> Detections:
    """OpenCV's Viola-Jones cascade. Score = how many overlapping windows voted for the face.

    ``tilt`` (degrees, e.g. 12) also scans the photo turned by plus and minus that angle; the
    windows of all three scans vote together, so a tilted head gathers votes it would not get upright.
    """
    started = time.perf_counter()
    windows, factor = haar_windows(cascade, image, scale_factor, min_size, max_size, max_side, equalize, tilt)
    boxes, votes = group_windows(windows, min_neighbors)
    found = Detections(boxes, votes, np.zeros(len(boxes)))
    found.meta["windows"] = len(windows)
    return _finish(found, factor, image, started)


def detect_eyes(cascade: cv2.CascadeClassifier, image: np.ndarray, faces: Detections) -> Detections:
    """Eyes searched only in the upper half of each face, as the classic demo does."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    boxes = []
    for x1, y1, x2, y2 in faces.boxes.astype(int):
        top = grey[y1 : y1 + (y2 - y1) // 2 + 1, x1:x2]
        if top.size == 0:
            continue
        side = max(8, (x2 - x1) // 8)
        for ex, ey, ew, eh in cascade.detectMultiScale(top, 1.1, 5, minSize=(side, side)):
            boxes.append([x1 + ex, y1 + ey, x1 + ex + ew, y1 + ey + eh])
    return Detections(np.asarray(boxes).reshape(-1, 4), np.ones(len(boxes)), np.zeros(len(boxes)), ("eye",))


# ---- HOG -----------------------------------------------------------------------------------
def detect_hog(
    detector: Any, image: np.ndarray, upsample: int = 0, threshold: float = 0.0, work_side: int | None = 900,
) -> Detections:
    """dlib's HOG + linear SVM over an 80x80 window, so it only finds faces of 40-80 px and up.

    ``work_side`` resizes the photo (up or down) so its long side is that many pixels before
    the search: on a 500-640 px group photo, 900 px brings 37 px faces within reach at
    less cost than dlib's ``upsample`` (which doubles both sides). The score is the SVM
    margin; ``threshold`` is added to dlib's own (0 = dlib's default).
    """
    started = time.perf_counter()
    height, width = image.shape[:2]
    factor = max(height, width) / work_side if work_side else 1.0
    work = image if factor == 1.0 else cv2.resize(
        image, (max(1, round(width / factor)), max(1, round(height / factor))),
        interpolation=cv2.INTER_AREA if factor > 1 else cv2.INTER_LINEAR,
    )
    rects, scores, _ = detector.run(np.ascontiguousarray(work), int(upsample), float(threshold))
    boxes = np.asarray([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
    found = Detections(boxes.reshape(-1, 4), np.asarray(scores, np.float32), np.zeros(len(boxes)))
    return _finish(found, factor, image, started)


def hog_cells(image: np.ndarray, cell: int = 8, max_side: int = 512) -> np.ndarray:
    """What HOG sees: the dominant gradient orientations per cell, as an image in 0..255."""
    from skimage.feature import hog

    small, _ = fit_long_side(image, max_side)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    _, picture = hog(grey, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), visualize=True)
    picture = picture / max(float(picture.max()), 1e-9)
    return (np.sqrt(picture) * 255).astype(np.uint8)


# ---- MTCNN ---------------------------------------------------------------------------------
def _safe_pnet_class() -> type:
    """mtcnn 1.0.0's P-Net stage, minus its pyramid bug.

    mtcnn counts its pyramid levels from the image size alone, ignoring the first scale
    (12 / min_face_size). With ``min_face_size`` > 12, or a ``scale_factor`` near 1, the last
    levels are smaller than P-Net's 12x12 input; TensorFlow then fails, mtcnn catches the
    error and reports *no faces at all*. This stage keeps only levels of at least 12 px.
    """
    from mtcnn.stages import StagePNet
    from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
    from mtcnn.utils.images import build_scale_pyramid, scale_images

    class PyramidSafePNet(StagePNet):
        def __call__(self, images_normalized, images_oshapes, min_face_size=20, min_size=12, scale_factor=0.709,
                     threshold_pnet=0.6, nms_pnet1=0.5, nms_pnet2=0.7, **kwargs):
            height, width = (int(v) for v in np.max(np.asarray(images_oshapes), axis=0)[:2])
            scales = build_scale_pyramid(width, height, min_face_size=min_face_size, scale_factor=scale_factor)
            scales = scales[min(height, width) * scales >= 12]
            batch = images_normalized.shape[0]
            boxes = []
            for scale in scales:
                result = self._model(scale_images(images_normalized, scale))
                proposals = generate_bounding_box(result[0], result[1], threshold_pnet)
                proposals = upscale_bboxes(proposals, np.asarray([scale] * batch))
                boxes.append(smart_nms_from_bboxes(proposals, threshold=nms_pnet1, method="union", initial_sort=False))
            merged = np.concatenate(boxes, axis=0) if boxes else np.empty((0, 6))
            merged = smart_nms_from_bboxes(merged, threshold=nms_pnet2, method="union", initial_sort=True)
            return resize_to_square(merged)

    return PyramidSafePNet


def load_mtcnn(card: Any = None) -> Any:
    """The registry's loader: MTCNN with the pyramid-safe P-Net, each net compiled once.

    mtcnn calls its Keras nets eagerly, paying TensorFlow's per-op overhead on every pyramid
    level; one ``tf.function`` per net with a shape-agnostic signature traces once and runs
    2.5x faster here (150 -> 60 ms on a 640x480 group photo).
    """
    import tensorflow as tf
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StageRNet

    detector = MTCNN(stages=[_safe_pnet_class()(), StageRNet(), StageONet()], device="CPU:0")
    signature = [tf.TensorSpec([None, None, None, 3], tf.float32)]
    for stage in detector.stages:
        stage._model = tf.function(stage._model, input_signature=signature, reduce_retracing=True)
    return detector


def _mtcnn_settings(min_face_size: int, scale_factor: float, thresholds: tuple[float, float, float]) -> dict:
    return dict(min_face_size=int(min_face_size), scale_factor=float(scale_factor), threshold_pnet=thresholds[0],
                threshold_rnet=thresholds[1], threshold_onet=thresholds[2])


def _mtcnn_rows_to_detections(rows: np.ndarray, with_landmarks: bool) -> Detections:
    rows = np.asarray(rows, np.float32).reshape(-1, rows.shape[-1] if np.ndim(rows) == 2 else 16)
    landmarks = None
    if with_landmarks:
        # mtcnn's numpy rows: five x's then five y's, eyes and mouth corners from the viewer's left,
        # i.e. the person's right eye first: the same order as YuNet and LANDMARK_NAMES
        landmarks = np.stack([rows[:, 6:11], rows[:, 11:16]], axis=2) if len(rows) else np.zeros((0, 5, 2))
    return Detections(rows[:, 1:5], rows[:, 5], np.zeros(len(rows)), landmarks=landmarks)


def detect_mtcnn(
    mtcnn: Any, image: np.ndarray, min_face_size: int = 20, scale_factor: float = 0.709,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8), max_side: int | None = 640,
) -> Detections:
    """MTCNN's three-net cascade; boxes, confidence and five landmarks."""
    started = time.perf_counter()
    small, factor = fit_long_side(image, max_side)
    rows = mtcnn.detect_faces(small, box_format="xyxy", output_type="numpy",
                              **_mtcnn_settings(max(1, min_face_size / factor), scale_factor, thresholds))
    return _finish(_mtcnn_rows_to_detections(np.asarray(rows), True), factor, image, started)


def mtcnn_stages(
    mtcnn: Any, image: np.ndarray, min_face_size: int = 20, scale_factor: float = 0.709,
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8), max_side: int | None = 640,
) -> list[tuple[str, Detections]]:
    """The candidates after P-Net, R-Net and O-Net in turn, in the photo's coordinates."""
    from mtcnn.utils.images import standarize_batch

    small, factor = fit_long_side(image, max_side)
    settings = _mtcnn_settings(max(1, min_face_size / factor), scale_factor, thresholds)
    normalized, shapes, _ = standarize_batch([small.astype(np.float32)], justification="center", normalize=True)
    rows, out = None, []
    for stage, name in zip(mtcnn.stages, ("P-Net", "R-Net", "O-Net")):
        if rows is not None and len(rows) == 0:
            out.append((name, Detections.empty()))
            continue
        rows = np.asarray(stage(bboxes_batch=rows, images_normalized=normalized, images_oshapes=shapes, **settings))
        found = _mtcnn_rows_to_detections(rows, with_landmarks=name == "O-Net")
        out.append((name, found.scaled(factor).clipped(image.shape[1], image.shape[0])))
    return out


# ---- YuNet ---------------------------------------------------------------------------------
def detect_yunet(
    yunet: Any, image: np.ndarray, score_threshold: float = 0.7, nms_threshold: float = 0.3,
    max_side: int | None = 640,
) -> Detections:
    """OpenCV Zoo's YuNet CNN: boxes, score and five landmarks. BGR input, any size."""
    started = time.perf_counter()
    small, factor = fit_long_side(image, max_side)
    height, width = small.shape[:2]
    yunet.setInputSize((width, height))
    yunet.setScoreThreshold(float(score_threshold))
    yunet.setNMSThreshold(float(nms_threshold))
    _, faces = yunet.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    faces = np.zeros((0, 15), np.float32) if faces is None else faces
    boxes = np.c_[faces[:, :2], faces[:, :2] + faces[:, 2:4]]
    # YuNet's order: right eye, left eye, nose tip, right and left mouth corners (the person's)
    found = Detections(boxes, faces[:, 14], np.zeros(len(faces)), landmarks=faces[:, 4:14].reshape(-1, 5, 2))
    return _finish(found, factor, image, started)


# ---- one table of detectors ----------------------------------------------------------------
@dataclass(frozen=True)
class FaceDetector:
    name: str
    title: str
    model: str
    """Registry name of the model it runs."""
    detect: Callable[..., Detections]
    defaults: dict[str, Any]


DETECTORS: dict[str, FaceDetector] = {
    d.name: d
    for d in (
        # frontalface_alt at a 1.2 pyramid step, upright only: on the 17 annotated faces it keeps the best
        # recall any upright setting under 40 ms reached without false alarms (15/17) at about half the time
        # of frontalface_default at 1.1. Settings that reach 16/17 in time do so at one working size only and
        # fall to 9-15 when the photos come 5-20% smaller or larger (bench/haar_settings.py), so none is
        # the default. HAAR_THOROUGH trades time for tilted heads.
        FaceDetector("haar", "Viola-Jones (Haar cascade)", "haar_frontalface_alt", detect_haar,
                     dict(scale_factor=1.2, min_neighbors=2, min_size=28, max_size=0, max_side=480, equalize=False,
                          tilt=0)),
        FaceDetector("hog", "HOG + linear SVM (dlib)", "dlib_hog", detect_hog,
                     dict(upsample=0, threshold=0.0, work_side=900)),
        FaceDetector("mtcnn", "MTCNN", "mtcnn", detect_mtcnn,
                     dict(min_face_size=20, scale_factor=0.709, thresholds=(0.6, 0.7, 0.8), max_side=640)),
        FaceDetector("yunet", "YuNet (CNN)", "yunet", detect_yunet,
                     dict(score_threshold=0.7, nms_threshold=0.3, max_side=640)),
    )
}


# Viola-Jones made tolerant of tilted heads: a finer pyramid step and copies of the photo turned by
# +-12 degrees, with more votes asked of each face because three scans cast more votes. It finds heads
# tilted by 25 degrees that the upright scan never finds; on the 17 annotated faces 16 (the upright default:
# 15), 13-16 with the photos at 80-120% size (upright: 10-15), with no false alarm on the astronaut, the
# two no-face photos or seven other sample photos; the price is five times the time.
HAAR_THOROUGH: dict[str, Any] = dict(scale_factor=1.1, min_neighbors=5, tilt=12)


def detect(name: str, model: Any, image: np.ndarray, **settings: Any) -> Detections:
    """Run detector ``name`` with its defaults, overridden by ``settings``."""
    detector = DETECTORS[name]
    return detector.detect(model, image, **{**detector.defaults, **settings})


# ---- evaluation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    true_positives: int
    false_positives: int
    faces: int
    mean_iou: float

    @property
    def recall(self) -> float:
        return self.true_positives / self.faces if self.faces else 1.0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0


def evaluate(found: list[Detections], truth: list[np.ndarray], threshold: float = 0.5) -> Evaluation:
    """Precision, recall and mean IoU over photos: a detection counts if it matches an unmatched box at IoU >= 0.5."""
    tp = fp = faces = 0
    ious: list[float] = []
    for detections, boxes in zip(found, truth):
        assigned, matched = match(detections.boxes, np.asarray(boxes).reshape(-1, 4), threshold)
        tp += int((assigned >= 0).sum())
        fp += int((assigned < 0).sum())
        faces += len(boxes)
        ious += matched[assigned >= 0].tolist()
    return Evaluation(tp, fp, faces, float(np.mean(ious)) if ious else 0.0)


PHOTO_SCALES = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized by ``factor`` (area averaging to shrink, bicubic to enlarge)."""
    if factor == 1.0:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor,
                      interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def evaluate_at_scales(
    find: Callable[[np.ndarray], Detections], photos: list[np.ndarray], truth: list[np.ndarray],
    scales: tuple[float, ...] = PHOTO_SCALES, progress: Callable[[float], None] | None = None,
) -> dict[float, Evaluation]:
    """:func:`evaluate` with every photo (and its boxes) resized by each factor in ``scales``.

    Seventeen faces are few: a setting picked because it scores well on them at one size may only
    have met a lucky alignment of its pyramid with these faces. A detector that finds faces keeps
    its recall when the same photos come 20% smaller or larger; one tuned to the photos does not.
    """
    results = {}
    for step, factor in enumerate(scales):
        found = [find(resized(photo, factor)) for photo in photos]
        results[factor] = evaluate(found, [np.asarray(boxes, np.float64).reshape(-1, 4) * factor for boxes in truth])
        if progress:
            progress((step + 1) / len(scales))
    return results


# ---- how Viola-Jones works -----------------------------------------------------------------
def integral_image(image: np.ndarray) -> np.ndarray:
    """``ii[y, x]`` = sum of ``image[:y+1, :x+1]``: any rectangle's sum from four look-ups."""
    return np.asarray(image, np.int64).cumsum(axis=0).cumsum(axis=1)


def rect_sum(ii: np.ndarray, x: int, y: int, w: int, h: int) -> int:
    """Sum of the ``w`` x ``h`` rectangle at (x, y): D - B - C + A on the integral image."""
    x2, y2 = x + w - 1, y + h - 1
    total = ii[y2, x2]
    if x > 0:
        total -= ii[y2, x - 1]
    if y > 0:
        total -= ii[y - 1, x2]
    if x > 0 and y > 0:
        total += ii[y - 1, x - 1]
    return int(total)


HAAR_KINDS = {
    "two-rectangle (left/right)": [(0, 0, 1, 2, +1), (1, 0, 1, 2, -1)],
    "two-rectangle (top/bottom)": [(0, 0, 2, 1, +1), (0, 1, 2, 1, -1)],
    "three-rectangle (horizontal)": [(0, 0, 1, 3, +1), (1, 0, 1, 3, -2), (2, 0, 1, 3, +1)],
    "three-rectangle (vertical)": [(0, 0, 3, 1, +1), (0, 1, 3, 1, -2), (0, 2, 3, 1, +1)],
}
"""Each feature as (col, row, cols, rows, weight) cells on a grid: 2x2 or 3x3 equal parts."""


def haar_feature(ii: np.ndarray, kind: str, x: int, y: int, w: int, h: int) -> tuple[int, list[tuple]]:
    """Value of a Haar feature over the box (x, y, w, h) and its weighted rectangles.

    Value = sum of white (+) minus sum of black (-) pixels; a three-rectangle feature's middle
    band weighs -2 so a flat patch gives 0.
    """
    parts = HAAR_KINDS[kind]
    grid_x = max(p[0] + p[2] for p in parts)
    grid_y = max(p[1] + p[3] for p in parts)
    cell_w, cell_h = w // grid_x, h // grid_y
    value, rects = 0, []
    for col, row, cols, rows, weight in parts:
        rect = (x + col * cell_w, y + row * cell_h, cols * cell_w, rows * cell_h)
        value += weight * rect_sum(ii, *rect)
        rects.append((*rect, weight))
    return value, rects


@dataclass(frozen=True)
class Cascade:
    """OpenCV's cascade XML, as arrays: stages of decision stumps over weighted rectangles."""

    window: tuple[int, int]
    stage_thresholds: np.ndarray
    stumps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    """Per stage: feature index, node threshold, left leaf, right leaf."""
    rects: list[np.ndarray]
    """Per feature: (k, 5) rows of x, y, w, h, weight."""


@lru_cache(maxsize=4)
def read_cascade(path: str) -> Cascade:
    root = ET.parse(path).getroot().find("cascade")
    window = (int(root.findtext("width")), int(root.findtext("height")))
    thresholds, stumps = [], []
    for stage in root.find("stages"):
        thresholds.append(float(stage.findtext("stageThreshold")))
        nodes = [c for c in stage.find("weakClassifiers")]
        internal = np.array([n.findtext("internalNodes").split() for n in nodes], float)
        leaves = np.array([n.findtext("leafValues").split() for n in nodes], float)
        stumps.append((internal[:, 2].astype(int), internal[:, 3], leaves[:, 0], leaves[:, 1]))
    rects = [
        np.array([r.text.split() for r in feature.find("rects")], float).reshape(-1, 5)
        for feature in root.find("features")
    ]
    return Cascade(window, np.array(thresholds), stumps, rects)


def cascade_funnel(
    cascade_path: str | Path, image: np.ndarray, scale_factor: float = 1.25, step: int = 2,
    max_side: int = 320, min_size: int = 24,
) -> tuple[list[int], np.ndarray]:
    """Slide the cascade's window over a pyramid and count survivors after each stage.

    A plain numpy evaluation of the XML (variance-normalised features, stumps, stage
    thresholds), as OpenCV does it, without grouping. Returns the windows alive before stage 1
    and after each stage, and the final windows as xyxy boxes in the photo's coordinates.
    """
    cascade = read_cascade(str(cascade_path))
    small, factor = fit_long_side(image, max_side)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float64)
    win_w, win_h = cascade.window
    counts = np.zeros(len(cascade.stumps) + 1, np.int64)
    survivors: list[np.ndarray] = []
    scale = max(1.0, min_size / win_w)
    while grey.shape[1] / scale >= win_w and grey.shape[0] / scale >= win_h:
        level = cv2.resize(grey, (int(grey.shape[1] / scale), int(grey.shape[0] / scale)), interpolation=cv2.INTER_LINEAR)
        ii = np.pad(level.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        ii2 = np.pad((level**2).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        ys, xs = np.mgrid[0 : level.shape[0] - win_h + 1 : step, 0 : level.shape[1] - win_w + 1 : step]
        ys, xs = ys.ravel(), xs.ravel()

        def box_sum(table: np.ndarray, x: float, y: float, w: float, h: float, xs=xs, ys=ys) -> np.ndarray:
            x, y, w, h = int(x), int(y), int(w), int(h)
            return (table[ys + y + h, xs + x + w] - table[ys + y, xs + x + w]
                    - table[ys + y + h, xs + x] + table[ys + y, xs + x])

        # OpenCV normalises by the window's standard deviation, measured 1 px inside the border
        area = (win_w - 2) * (win_h - 2)
        total, squares = box_sum(ii, 1, 1, win_w - 2, win_h - 2), box_sum(ii2, 1, 1, win_w - 2, win_h - 2)
        norm = area * squares - total**2
        norm = np.where(norm > 0, np.sqrt(np.maximum(norm, 0)), 1.0)
        alive = np.arange(len(xs))
        counts[0] += len(alive)
        for s, (features, thresholds, left, right) in enumerate(cascade.stumps):
            if not len(alive):
                break
            sub_x, sub_y, sub_norm = xs[alive], ys[alive], norm[alive]
            stage_sum = np.zeros(len(alive))
            for f, t, lv, rv in zip(features, thresholds, left, right):
                value = np.zeros(len(alive))
                for x, y, w, h, weight in cascade.rects[f]:
                    value += weight * box_sum(ii, x, y, w, h, xs=sub_x, ys=sub_y)
                stage_sum += np.where(value < t * sub_norm, lv, rv)
            alive = alive[stage_sum >= cascade.stage_thresholds[s]]
            counts[s + 1] += len(alive)
        if len(alive):
            x1, y1 = xs[alive] * scale, ys[alive] * scale
            survivors.append(np.c_[x1, y1, x1 + win_w * scale, y1 + win_h * scale])
        scale *= scale_factor
    boxes = np.concatenate(survivors) * factor if survivors else np.zeros((0, 4))
    for s in range(1, len(counts)):  # a scale that ran out of windows early still counts as 0
        counts[s] = min(counts[s], counts[s - 1])
    return counts.tolist(), boxes


def windows_overlapping(boxes: np.ndarray, face: np.ndarray, threshold: float = 0.3) -> int:
    return int((iou(boxes, face) >= threshold).sum())
