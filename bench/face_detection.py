"""Face detectors: latency on a 640x480 photo beside the bare library call, and recall/precision on the 17
annotated faces.

Each registered detector at its page defaults (figures named after its card: ``yunet_640x480_ms``), and each
of a detector's presets (Viola-Jones's thorough setup: ``viola_jones_thorough_*``).
``*_vs_raw``: the detector object's time over the library's own call at the same settings (the product's
overhead: resizing, checks, the Detections structure; for YuNet, ONNX Runtime's ``run`` on the padded blob).
``yunet_vs_opencv_640x480_*``: YuNet beside OpenCV's FaceDetectorYN (the engine it left) on the same file, as
``_raw_ms`` (FaceDetectorYN) and ``_vs_raw`` (ours over it). ``*_scaled_photos_recall_min`` / ``_median``: recall
over the same photos resized to 80-120%, which tells a detector that finds faces from a setting that only
suits these 17 faces at one size.

python bench/face_detection.py [--quick]
"""

from __future__ import annotations

import cv2
import numpy as np

from _harness import Bench

from vision_backend import samples  # noqa: E402
from vision_backend.face_detection import DETECTORS, MTCNN, DlibHOG, ViolaJones, YuNet  # noqa: E402
from vision_backend.face_detection import evaluate as fde  # noqa: E402
from vision_backend.face_detection.detectors import yunet_blob  # noqa: E402
from vision_backend.imageops import fit_long_side  # noqa: E402


def bare_call(name: str, photo: np.ndarray, settings: dict):
    """The library's own call at the detector's settings, on the same working copy of the photo: each engine's
    bare call written out here, by the detector's class (the bench compares against what the library does)."""
    detector = DETECTORS[name]
    if isinstance(detector, ViolaJones):
        small, _ = fit_long_side(photo, settings["max_side"])
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        cascade = detector.runtime(settings["cascade"])
        return lambda: cascade.detectMultiScale(grey, settings["scale_factor"], settings["min_neighbors"],
                                                minSize=(settings["min_size"],) * 2)
    if isinstance(detector, DlibHOG):
        scale = detector.working_scale(*photo.shape[:2], settings["min_face"], settings["max_side"])
        work = np.ascontiguousarray(cv2.resize(photo, None, fx=scale, fy=scale))
        return lambda: detector.runtime().run(work, settings["upsample"], settings["threshold"])
    if isinstance(detector, MTCNN):
        return lambda: detector.runtime().detect_faces(photo, min_face_size=settings["min_face_size"])
    session = detector.runtime()
    blob = {session.get_inputs()[0].name: yunet_blob(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))}
    return lambda: session.run(None, blob)


def opencv_yunet(photo: np.ndarray, settings: dict):
    """OpenCV's own FaceDetectorYN on the same file and settings: the engine YuNet ran on before ONNX Runtime."""
    yunet = cv2.FaceDetectorYN.create(str(next(d for d in DETECTORS.values() if isinstance(d, YuNet)).card.path()),
                                      "", (photo.shape[1], photo.shape[0]),
                                      settings["score_threshold"], settings["nms_threshold"], 5000)
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    return lambda: yunet.detect(bgr)


def setups() -> list[tuple[str, str, dict]]:
    """(figure stem, detector, settings) of every run: each detector at its defaults, then each of its presets."""
    runs = [(name, name, {}) for name in DETECTORS]
    runs += [(f"{name}_{preset.lower()}", name, overrides) for name, d in DETECTORS.items()
             for preset, overrides in d.presets.items() if overrides]
    return runs


def main() -> None:
    bench = Bench("face_detection", __doc__)
    photo = cv2.resize(samples.load_sample("group_7faces_family.jpg"), (640, 480), interpolation=cv2.INTER_CUBIC)
    for figure, name, overrides in setups():
        detector = DETECTORS[name]
        if not detector.ready():
            continue
        with bench.about(name):
            measure_one(bench, figure, detector, photo, detector.settings(overrides))


def measure_one(bench: Bench, figure: str, detector, photo: np.ndarray, settings: dict) -> None:
    bench.compare(f"{figure}_640x480", lambda: detector.detect(photo, **settings),
                  bare_call(detector.name, photo, settings), repeats=bench.repeats(21, 5))
    if isinstance(detector, YuNet):
        bench.compare_in_blocks(f"{figure}_vs_opencv_640x480", lambda: detector.detect(photo, **settings),
                                opencv_yunet(photo, settings), rounds=bench.repeats(5, 2),
                                per_block=bench.repeats(15, 5))
    measured = fde.measure_group_photos(detector, settings)
    bench.record(f"{figure}_group_photos_recall", measured.evaluation.recall, "fraction")
    bench.record(f"{figure}_group_photos_precision", measured.evaluation.precision, "fraction")
    recalls = sorted(r.recall for r in fde.measure_at_scales(detector, settings).values())
    bench.record(f"{figure}_scaled_photos_recall_min", recalls[0], "fraction")
    bench.record(f"{figure}_scaled_photos_recall_median", recalls[len(recalls) // 2], "fraction")


if __name__ == "__main__":
    main()
