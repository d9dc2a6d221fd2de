"""The face detectors: Viola-Jones, HOG, MTCNN and YuNet, each one :class:`~vision_backend.model.Detector`.

Every detector takes an RGB ``uint8`` photo and gives :class:`~vision_backend.detections.Detections`
in the photo's pixels. Large photos are shrunk so their long side is at most ``max_side`` before
detection and the boxes are mapped back, which is where most of the speed comes from on a
2-core machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision_backend import engines
from vision_backend.cards import ModelCard, shared_file
from vision_backend.detections import Detections
from vision_backend.imageops import fit_long_side
from vision_backend.model import Detector, Param

LANDMARK_NAMES = ("right eye", "left eye", "nose", "mouth right", "mouth left")


def _max_side(default: int) -> Param:
    return Param("max_side", "Detect at long side (px)", default, 160, 1600, 40,
                 help="Larger photos are shrunk to this first: faster, but small faces get lost.")


def _mapped_back(found: Detections, factor: float) -> Detections:
    """Detections on a copy shrunk by ``factor``, in the photo's pixels, with the working scale in ``meta``."""
    found = found.scaled(factor)
    found.meta["scale"] = 1 / factor
    return found


# ---- Viola-Jones ---------------------------------------------------------------------------
CASCADES = {"frontalface_alt": "frontal face (alt)", "frontalface_default": "frontal face (default)",
            "frontalface_alt2": "frontal face (alt2)", "profileface": "profile face", "eye": "eyes"}


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


class ViolaJones(Detector):
    """OpenCV's Viola-Jones cascades. Score = how many overlapping windows voted for the face.

    Defaults: frontalface_alt at a 1.2 pyramid step, upright only. On the 17 annotated faces it keeps
    the best recall any upright setting under 40 ms reached without false alarms (15/17) at about half
    the time of frontalface_default at 1.1. Settings that reach 16/17 in time do so at one working size
    only and fall to 9-15 when the photos come 5-20% smaller or larger (bench/haar_settings.py).

    The thorough preset trades time for tilted heads: a finer step and copies of the photo turned by
    +-12 degrees, with more votes asked of each face because three scans cast more votes. It finds heads
    tilted by 25 degrees that the upright scan never finds; on the 17 faces 16 (13-16 with the photos at
    80-120% size), with no false alarm on the astronaut, the two no-face photos or seven other sample
    photos; the price is five times the time.
    """

    short_title = "Viola-Jones (Haar cascade)"
    group = "face detector"
    warm = True
    score_label = "votes"
    score_help = "how many overlapping windows voted for the face (its minNeighbors counts these)"

    card = ModelCard(
        name="viola_jones", title="Viola-Jones Haar cascades (OpenCV)", task="face detection", source="package",
        package="cv2", package_files=tuple(f"data/haarcascade_{c}.xml" for c in CASCADES),
        licence="Intel BSD-3 (OpenCV)", input="greyscale, any size; sliding 24x24 (20x20) window over a pyramid",
        preprocessing="grey, optional histogram equalisation",
        accuracy="Viola & Jones 2001: ~93% detection at 50 false positives on MIT+CMU",
        note="Five cascades: frontal (default, alt, alt2), profile, eyes.",
    )
    params = (
        Param("cascade", "Cascade", "frontalface_alt", options=tuple(c for c in CASCADES if c != "eye"),
              option_labels=tuple(CASCADES.items())),
        Param("scale_factor", "scaleFactor", 1.2, 1.02, 1.5, 0.01, help="Pyramid step: smaller finds more sizes, slower."),
        Param("min_neighbors", "minNeighbors", 2, 0, 12, 1,
              help="Overlapping windows needed to call it a face: higher = fewer false alarms."),
        Param("tilt", "Also scan turned copies (± degrees)", 0, options=(0, 5, 8, 10, 12, 15, 20, 25),
              help="The cascade was trained on upright faces; copies of the photo turned both ways catch tilted "
                   "heads: two more scans."),
        Param("min_size", "minSize (px)", 28, 10, 200, 1, in_photo_pixels=True),
        Param("max_size", "maxSize (px, 0 = none)", 0, 0, 1000, 1, in_photo_pixels=True),
        _max_side(480),
        Param("equalize", "Equalise the histogram first", False,
              help="Stretches contrast: helps in dim photos, adds false alarms in busy ones."),
    )
    presets = {"Fast": {}, "Thorough": {"scale_factor": 1.1, "min_neighbors": 5, "tilt": 12}}

    def cascade_path(self, cascade: str) -> str:
        return str(self.card.path(list(CASCADES).index(cascade)))

    def load(self, variant: str = "frontalface_alt") -> Any:
        cascade = cv2.CascadeClassifier(self.cascade_path(variant))
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not read {self.cascade_path(variant)}")
        return cascade

    def variant(self, settings: dict[str, Any]) -> Any:
        return settings["cascade"]

    def default_variant(self) -> str:
        return self.param("cascade").default

    def variants(self) -> tuple[str, ...]:
        return tuple(CASCADES)

    def infer(self, classifier: Any, image: np.ndarray, cascade: str, min_neighbors: int,
              **settings: Any) -> Detections:
        windows, factor = haar_windows(classifier, image, **settings)
        boxes, votes = group_windows(windows, min_neighbors)
        found = _mapped_back(Detections(boxes, votes, np.zeros(len(boxes))), factor)
        found.meta["windows"] = len(windows)
        return found

    def detect_eyes(self, image: np.ndarray, faces: Detections) -> Detections:
        """Eyes searched only in the upper half of each face, as the classic demo does."""
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        boxes = []
        with self.using("eye") as cascade:
            for x1, y1, x2, y2 in faces.boxes.astype(int):
                top = grey[y1 : y1 + (y2 - y1) // 2 + 1, x1:x2]
                side = max(8, (x2 - x1) // 8)
                if min(top.shape[:2], default=0) < side:
                    continue
                for ex, ey, ew, eh in cascade.detectMultiScale(top, 1.1, 5, minSize=(side, side)):
                    boxes.append([x1 + ex, y1 + ey, x1 + ex + ew, y1 + ey + eh])
        return Detections(np.asarray(boxes).reshape(-1, 4), np.ones(len(boxes)), np.zeros(len(boxes)), ("eye",))


# ---- HOG -----------------------------------------------------------------------------------
class DlibHOG(Detector):
    """dlib's HOG + linear SVM over an 80x80 window, so at a photo's own size it finds faces of 80 px and up.

    The photo is resized by ``WINDOW / min_face`` so the smallest face asked for fills the window,
    and no further: enlarging a photo to a fixed 900 px blew 250x250 portraits up 3.6x, where
    their ~110 px faces need no enlarging at all; with ``min_face`` at or above the window the
    photo is never enlarged (above it, shrunk: faster). ``max_side`` caps the copy's long side
    for speed. The default smallest face, 32 px, is the group photos' faces at 80% size (the
    bench's smallest): every photo with a long side of 360 px or more is searched at 900 px as
    before (same faces, same time on the 640x480 bench photo), and smaller ones are enlarged
    2.5x at most (a 250 px portrait: 625 px). dlib's ``upsample`` (doubling both sides) comes on
    top. The score is the SVM margin; ``threshold`` is added to dlib's own (0 = dlib's default).
    """

    short_title = "HOG + linear SVM (dlib)"
    group = "face detector"
    roles = ("face finder",)
    warm = True
    score_help = "the SVM margin"
    WINDOW = 80
    """The detector's window in pixels: the smallest face box it reports in the image it searches."""

    needs = ("dlib",)

    card = ModelCard(
        name="dlib_hog", title="dlib HOG + linear SVM face detector", task="face detection", source="package",
        package="dlib", licence="Boost (dlib)", input="RGB or grey, any size; 80x80 sliding window over a pyramid",
        preprocessing="resize by 80 / smallest face (upsample x2 adds more)", accuracy="dlib: FDDB ~0.8 recall at 0 FP",
        note="Compiled into dlib; no weight file.",
    )
    params = (
        Param("min_face", "Smallest face (px)", 32, 20, 320, 2, in_photo_pixels=True,
              help="The photo is resized by 80 / this, so faces this big fill HOG's 80x80 window: smaller = "
                   "more enlarging (slower), larger = shrinking (faster, small faces lost)."),
        Param("max_side", "Search at most at long side (px)", 900, 160, 1600, 20,
              help="The resized copy's long side is capped here for speed; on large photos this, not the "
                   "smallest face, decides what is found."),
        Param("upsample", "Upsample (x2 each)", 0, 0, 2, 1),
        Param("threshold", "Score threshold", 0.0, -1.0, 4.0, 0.05,
              help="Added to dlib's own threshold; the score is the SVM margin."),
    )

    def load(self) -> Any:
        return engines.dlib().get_frontal_face_detector()

    @classmethod
    def working_scale(cls, height: int, width: int, min_face: float, max_side: int) -> float:
        """How much the photo is resized before the search: the smallest face to the window, long side capped."""
        return min(cls.WINDOW / min_face, max_side / max(height, width, 1))

    def infer(self, detector: Any, image: np.ndarray, min_face: float, max_side: int, upsample: int,
              threshold: float) -> Detections:
        height, width = image.shape[:2]
        scale = self.working_scale(height, width, min_face, max_side)
        work = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
        )
        rects, scores, _ = detector.run(np.ascontiguousarray(work), int(upsample), float(threshold))
        boxes = np.asarray([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        found = Detections(boxes.reshape(-1, 4), np.asarray(scores, np.float32), np.zeros(len(boxes)))
        return _mapped_back(found, 1 / scale)


# ---- MTCNN ---------------------------------------------------------------------------------
def _safe_pnet_class() -> type:
    """mtcnn 1.0.0's P-Net stage, minus its pyramid bug.

    mtcnn counts its pyramid levels from the image size alone, ignoring the first scale
    (12 / min_face_size). With ``min_face_size`` > 12, or a ``scale_factor`` near 1, the last
    levels are smaller than P-Net's 12x12 input; TensorFlow then fails, mtcnn catches the
    error and reports *no faces at all*. This stage keeps only levels of at least 12 px.
    """
    mtcnn = engines.mtcnn()
    boxes_of, images_of = mtcnn.utils.bboxes, mtcnn.utils.images

    class PyramidSafePNet(mtcnn.stages.StagePNet):
        def __call__(self, images_normalized, images_oshapes, min_face_size=20, min_size=12, scale_factor=0.709,
                     threshold_pnet=0.6, nms_pnet1=0.5, nms_pnet2=0.7, **kwargs):
            height, width = (int(v) for v in np.max(np.asarray(images_oshapes), axis=0)[:2])
            scales = images_of.build_scale_pyramid(width, height, min_face_size=min_face_size,
                                                   scale_factor=scale_factor)
            scales = scales[min(height, width) * scales >= 12]
            batch = images_normalized.shape[0]
            boxes = []
            for scale in scales:
                result = self._model(images_of.scale_images(images_normalized, scale))
                proposals = boxes_of.generate_bounding_box(result[0], result[1], threshold_pnet)
                proposals = boxes_of.upscale_bboxes(proposals, np.asarray([scale] * batch))
                boxes.append(boxes_of.smart_nms_from_bboxes(proposals, threshold=nms_pnet1, method="union",
                                                            initial_sort=False))
            merged = np.concatenate(boxes, axis=0) if boxes else np.empty((0, 6))
            merged = boxes_of.smart_nms_from_bboxes(merged, threshold=nms_pnet2, method="union", initial_sort=True)
            return boxes_of.resize_to_square(merged)

    return PyramidSafePNet


def mtcnn_rows_to_detections(rows: np.ndarray, with_landmarks: bool) -> Detections:
    """mtcnn's numpy rows (index, box, score, five x's, five y's) as Detections."""
    rows = np.asarray(rows, np.float32).reshape(-1, rows.shape[-1] if np.ndim(rows) == 2 else 16)
    landmarks = None
    if with_landmarks:
        # eyes and mouth corners from the viewer's left, i.e. the person's right eye first:
        # the same order as YuNet and LANDMARK_NAMES
        landmarks = np.stack([rows[:, 6:11], rows[:, 11:16]], axis=2) if len(rows) else np.zeros((0, 5, 2))
    return Detections(rows[:, 1:5], rows[:, 5], np.zeros(len(rows)), landmarks=landmarks)


class MTCNN(Detector):
    """MTCNN's three-net cascade (P-Net, R-Net, O-Net): boxes, confidence and five landmarks."""

    short_title = "MTCNN"
    needs = ("tensorflow", "mtcnn")
    group = "face detector"
    warm = True

    card = ModelCard(
        name="mtcnn", title="MTCNN (P-Net, R-Net, O-Net)", task="face detection + 5 landmarks", source="package",
        package="mtcnn", package_files=("assets/weights/pnet.lz4", "assets/weights/rnet.lz4", "assets/weights/onet.lz4"),
        licence="MIT (ipazc/mtcnn)", input="RGB, any size; pyramid down to 12 px", params=495_850,
        preprocessing="(x - 127.5) / 128", accuracy="Zhang et al. 2016: FDDB 95.0% at 2,000 FP",
    )
    params = (
        Param("min_face_size", "Min face size (px)", 20, 8, 200, 1, in_photo_pixels=True),
        Param("scale_factor", "Scale factor", 0.709, 0.3, 0.95, 0.01, help="Pyramid step between levels."),
        Param("threshold_pnet", "P-Net threshold", 0.6, 0.0, 1.0, 0.05),
        Param("threshold_rnet", "R-Net threshold", 0.7, 0.0, 1.0, 0.05),
        Param("threshold_onet", "O-Net threshold", 0.8, 0.0, 1.0, 0.05),
        _max_side(640),
    )
    has_landmarks = True

    def load(self) -> Any:
        """MTCNN with the pyramid-safe P-Net, each net compiled once.

        mtcnn calls its Keras nets eagerly, paying TensorFlow's per-op overhead on every pyramid
        level; one ``tf.function`` per net with a shape-agnostic signature traces once and runs
        2.5x faster here (150 -> 60 ms on a 640x480 group photo).
        """
        tf, mtcnn = engines.tensorflow(), engines.mtcnn()
        stages = [_safe_pnet_class()(), mtcnn.stages.StageRNet(), mtcnn.stages.StageONet()]
        detector = mtcnn.MTCNN(stages=stages, device="CPU:0")
        signature = [tf.TensorSpec([None, None, None, 3], tf.float32)]
        for stage in detector.stages:
            stage._model = tf.function(stage._model, input_signature=signature, reduce_retracing=True)
        return detector

    @staticmethod
    def stage_settings(factor: float, min_face_size: int, **settings: Any) -> dict[str, Any]:
        """mtcnn's own keyword arguments, the minimum face size taken into the shrunk photo.

        A photo shrunk to ``max_side`` is never enlarged again by MTCNN's pyramid (a minimum under its
        12 px window would do that: a 4000x3000 photo took 1.7 s instead of 0.2 s for the same faces).
        """
        settings.pop("max_side", None)
        smallest = min_face_size / factor
        return dict(min_face_size=max(12.0, smallest) if factor > 1 else max(1.0, smallest), **settings)

    def infer(self, mtcnn: Any, image: np.ndarray, max_side: int, **settings: Any) -> Detections:
        small, factor = fit_long_side(image, max_side)
        rows = self.run_stages(mtcnn, small, **self.stage_settings(factor, **settings))
        return _mapped_back(mtcnn_rows_to_detections(np.asarray(rows), True), factor)

    @staticmethod
    def run_stages(mtcnn: Any, image: np.ndarray, **settings: Any) -> np.ndarray:
        """mtcnn's ``detect_faces`` on one RGB photo (rows of image index, xyxy box, score, landmarks), with the
        normalised photo made a float32 tensor once.

        mtcnn normalises into a float64 numpy array and hands that to every stage, so each of P-Net's pyramid
        levels and R-Net's and O-Net's crops converted it to a tensor again: a 6 MB copy holding the GIL each
        time, 59% of the GIL a room of ten visitors pressing MTCNN's slider held (py-spy ``--gil``), while the
        other visitors' runs waited for it. The same rows as ``detect_faces`` (tests/test_face_detection.py).
        """
        tf, bboxes = engines.tensorflow(), engines.mtcnn().utils.bboxes
        normalised = tf.constant((image[None].astype(np.float32) - 127.5) / 128)  # mtcnn's own normalisation
        shapes = np.asarray([image.shape])
        rows = None
        try:
            with tf.device(mtcnn._device):
                for stage in mtcnn.stages:
                    rows = stage(bboxes_batch=rows, images_normalized=normalised, images_oshapes=shapes, **settings)
        except tf.errors.InvalidArgumentError:  # how mtcnn itself reads a stage left with no boxes: no faces
            return np.empty((0, 16))
        return bboxes.limit_bboxes(rows, images_shapes=shapes, limit_landmarks=False)


# ---- YuNet ---------------------------------------------------------------------------------
YUNET_STRIDES = (8, 16, 32)
"""YuNet's three heads: one cell every 8, 16 and 32 pixels of its (padded) input."""


def yunet_graph(path: str | Path) -> bytes:
    """The YuNet graph with its input's height and width left free.

    The file says 1x3x640x640, but the network is fully convolutional (OpenCV's FaceDetectorYN feeds it
    any size that is a multiple of 32); freed, ONNX Runtime runs it at the photo's own size.
    """
    import onnx

    graph = onnx.load(str(path))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "cells"
    del graph.graph.value_info[:]
    return graph.SerializeToString()


def yunet_blob(bgr: np.ndarray) -> np.ndarray:
    """FaceDetectorYN's input: BGR 0-255 as float, NCHW, padded with black on the right and bottom to a
    multiple of 32 (the coarsest head's stride)."""
    height, width = bgr.shape[:2]
    padded = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.float32)
    padded[0, :, :height, :width] = bgr.transpose(2, 0, 1)
    return padded


def yunet_faces(outputs: list[np.ndarray], padded: tuple[int, int], score_threshold: float,
                nms_threshold: float, top_k: int = 5000) -> np.ndarray:
    """FaceDetectorYN's decoding, as rows (x, y, w, h, 5 landmarks (x, y), score).

    Each cell's score is sqrt(class x objectness), both clipped to [0, 1]; the box is the cell's
    offset centre and exp-scaled size, times the stride; then OpenCV's NMS on whole-pixel boxes.
    """
    heads = len(YUNET_STRIDES)
    rows = []
    for i, stride in enumerate(YUNET_STRIDES):
        cls, obj, box, kps = (np.asarray(outputs[i + heads * k]).reshape(-1, width)
                              for k, width in enumerate((1, 1, 4, 10)))
        columns = padded[1] // stride
        cells = np.arange(len(box))
        grid = np.c_[cells % columns, cells // columns].astype(np.float32)
        score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
        keep = score >= score_threshold
        size = np.exp(box[keep, 2:4]) * stride
        corner = (grid[keep] + box[keep, :2]) * stride - size / 2
        marks = (kps[keep].reshape(-1, 5, 2) + grid[keep, None, :]) * stride
        rows.append(np.c_[corner, size, marks.reshape(-1, 10), score[keep]])
    faces = np.concatenate(rows).astype(np.float32)
    if len(faces) < 2:
        return faces
    keep = cv2.dnn.NMSBoxes(faces[:, :4].astype(np.int32).tolist(), faces[:, 14].tolist(), float(score_threshold),
                            float(nms_threshold), top_k=top_k)
    return faces[np.asarray(keep, np.int64).reshape(-1)]


class YuNet(Detector):
    """OpenCV Zoo's YuNet CNN: boxes, score and five landmarks. BGR input, any size.

    Run on ONNX Runtime with OpenCV's FaceDetectorYN decoding (same rows to a thousandth of a pixel on
    the staged photos): 2.3x faster on one thread than FaceDetectorYN's own DNN engine at 640x480
    (7 against 16 ms here), and a session holds no per-call state, so sessions and threads share it
    without a lock (FaceDetectorYN keeps the last call's input size and thresholds).
    """

    short_title = "YuNet (CNN)"
    needs = ("onnxruntime",)
    concurrent = True
    group = "face detector"
    roles = ("faces",)
    warm = True

    card = ModelCard(
        name="yunet", title="YuNet 2023mar (OpenCV Zoo)", task="face detection + 5 landmarks", seedable=True,
        files=(shared_file("models/vision_lab/face_detection_yunet_2023mar.onnx",
                           "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232_589,
                           "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                           "face_detection_yunet_2023mar.onnx"),),
        licence="MIT", input="BGR uint8, any size (long side <= 640 advised)", params=75_856,
        preprocessing="BGR 0-255 as float, padded to a multiple of 32; OpenCV FaceDetectorYN's decoding",
        accuracy="WIDER Face val AP easy 0.884 / medium 0.866 / hard 0.751",
    )
    params = (
        Param("score_threshold", "Score threshold", 0.7, 0.05, 1.0, 0.05),
        Param("nms_threshold", "NMS IoU threshold", 0.3, 0.05, 1.0, 0.05),
        _max_side(640),
    )
    has_landmarks = True

    def load(self) -> Any:
        return engines.onnx_session(self.graph())

    def load_worker(self, variant: Any, threads: int) -> Any:
        return engines.onnx_session(self.graph(), spinning=threads > 1, threads=threads)

    def graph(self) -> bytes:
        """The graph ONNX Runtime gets: its input size left free."""
        return yunet_graph(self.card.path())

    def infer(self, session: Any, image: np.ndarray, score_threshold: float, nms_threshold: float,
              max_side: int) -> Detections:
        small, factor = fit_long_side(image, max_side)
        blob = yunet_blob(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        outputs = session.run(None, {session.get_inputs()[0].name: blob})
        faces = yunet_faces(outputs, blob.shape[2:], score_threshold, nms_threshold)
        boxes = np.c_[faces[:, :2], faces[:, :2] + faces[:, 2:4]]
        # YuNet's order: right eye, left eye, nose tip, right and left mouth corners (the person's)
        found = Detections(boxes, faces[:, 14], np.zeros(len(faces)), landmarks=faces[:, 4:14].reshape(-1, 5, 2))
        return _mapped_back(found, factor)


DETECTORS: dict[str, Detector] = {d.name: d for d in (ViolaJones(), DlibHOG(), MTCNN(), YuNet())}
"""Every face detector, by card name, in the page's order (oldest first)."""

__all__ = ["DETECTORS", "LANDMARK_NAMES", "ViolaJones", "DlibHOG", "MTCNN", "YuNet",
           "haar_windows", "group_windows", "rotated_windows", "mtcnn_rows_to_detections"]
