"""Train a detector on your own boxes: the base's features on ONNX Runtime, then R-CNN and the fast detector trained
on the raccoon set (the author's 160 photos) and tested on its 40, median of 3 seeds.

``features_b16_vs_floor``: 16 photos through MobileNetV2 at 224 (ONNX Runtime, the lanes the features use) over
the floor ``16 x 0.6 GFLOP / sgemm rate``, the rate measured with numpy (a 2048² float32 product) in the same run,
alternating with the base. ``features_16_photos_vs_keras``: ``transfer.features.describe`` of 16 photos (resize,
the base on ONNX Runtime, pooling) over the bare Keras ``predict_on_batch`` of the same photos already resized and
scaled (what fast transfer learning ran before).

``raccoon_{fast,rcnn}_ap50`` / ``_ap``: COCO AP at IoU 0.5 / 0.5:0.95 on the 40 test photos through the detector
object (``Detector.detect``, score threshold 0.05); ``_train_s``: ``train_*``'s own time with the feature maps and
proposals kept from the first seed (``_train_cold_s``: the first seed, computing them; the base's one-off ONNX
conversion is done before). ``own_fast_onnx_vs_keras_max_box_diff_px``: the exported graph's boxes against the
base on Keras with the numpy head (every anchor scoring 0.05 or more, 8 test photos). ``own_fast_live_fps``: a
640x480 frame through ``live.FrameProcessor`` with an ``ObjectTask`` (as ``bench/live.py``), ``_vs_raw`` over
``detect`` alone; ``own_rcnn_photo_s``: ``detect`` on a test photo (selective search, the graph over 1000
proposals, NMS), median over the 40.

``voc_coco_yolo_roundtrip_boxes_lost``: the raccoon set imported into a detection project (as the page and
``detector import`` do), then exported and imported again as Pascal VOC, then COCO, then YOLO, project to project;
the boxes of the first project with no box of the same class within half a pixel in the last one (``--roundtrip``
measures this alone, in seconds).

Targets: raccoon AP50 >= 0.70 for both, fast training <= 120 s, R-CNN's <= 300 s, live >= 15 FPS, R-CNN <= 2 s a
photo, ONNX vs Keras <= 1 px, features_b16_vs_floor <= 1.3, features_16_photos_vs_keras <= 0.4, no box lost in the
round trip.

python bench/own_detector.py [--quick] [--roundtrip]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from _harness import ROOT, Bench

os.environ.setdefault("VISION_LAB_HOME", tempfile.mkdtemp(prefix="own_detector_bench_"))
from vision_backend import live  # noqa: E402
from vision_backend.own_detection import evaluate, fast, rcnn, read_csv  # noqa: E402
from vision_backend.own_detection.detector import detector_from_trained  # noqa: E402
from vision_backend.own_detection.maps import photo_image  # noqa: E402
from vision_backend.transfer import features  # noqa: E402
from vision_backend.transfer.bases import MOBILENET_V2  # noqa: E402

RACCOON = ROOT.parent / "shared" / "data" / "detection" / "raccoon"
GFLOP_PER_IMAGE = 0.6
"""MobileNetV2 1.0 at 224: 300 M multiply-adds."""


def sgemm_rate() -> float:
    """float32 GFLOP/s of numpy's BLAS on this machine now (a 2048² product, best of 3)."""
    a = np.random.default_rng(0).random((2048, 2048), np.float32)
    a @ a
    best = min(_seconds(lambda: a @ a) for _ in range(3))
    return 2 * 2048**3 / best / 1e9


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def feature_speed(bench: Bench, photos: list[np.ndarray]) -> None:
    base = MOBILENET_V2
    batch, lanes = base.resized(photos), base.feature_lanes(base.taps)
    run = lambda: lanes.run(list(base.taps), batch)  # noqa: E731
    run()
    ratios, times, rates = [], [], []
    for _ in range(bench.repeats(7, 3)):
        rate = sgemm_rate()
        # numpy's BLAS threads spin on after a product: they took the lanes' cores (1.42x the floor; 1.29x after a pause)
        time.sleep(0.5)
        seconds = statistics.median(_seconds(run) for _ in range(3))
        times.append(seconds)
        rates.append(rate)
        ratios.append(seconds / (16 * GFLOP_PER_IMAGE / rate))
    with bench.about(base.name):
        bench.record("features_b16_ms", statistics.median(times) * 1000, "ms")
        bench.record("features_b16_sgemm_gflops", statistics.median(rates), "GFLOP/s")
        bench.record("features_b16_vs_floor", statistics.median(ratios), "ratio")
        probe, scaled = base.probe(base.taps), base.preprocess(photos)
        ours, keras = _alternating(lambda: features.describe(base, photos, "layers"),
                                   lambda: probe.predict_on_batch(scaled), bench.repeats(11, 3))
        bench.record("features_16_photos_ms", ours * 1000, "ms")
        bench.record("features_16_photos_keras_ms", keras * 1000, "ms")
        bench.record("features_16_photos_vs_keras", ours / keras, "ratio")


def _alternating(first, second, repeats: int) -> tuple[float, float]:
    """Median seconds of two calls timed one after the other (after two untimed rounds)."""
    for _ in range(2):
        first(), second()
    times = [(_seconds(first), _seconds(second)) for _ in range(repeats)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def raccoons(bench: Bench, kind: str, train, test, settings: dict) -> object:
    """``raccoon_KIND_*``: trained with seeds 0, 1, 2 (``--quick``: one), each tested through the detector object;
    the figures are the medians. Returns seed 0's training."""
    trainer = fast.train_fast if kind == "fast" else rcnn.train_rcnn
    images = [photo_image(p) for p in test]
    runs = []
    for seed in range(bench.repeats(3, 1)):
        trained = trainer(train, ["raccoon"], MOBILENET_V2, {**settings, "seed": seed})
        detector = detector_from_trained(trained)
        found = [detector.detect(i, score_threshold=0.05) for i in images]
        measured = evaluate.evaluate(test, found, ["raccoon"])
        print(f"# {kind} seed {seed}: AP50 {measured.map50:.3f}, AP {measured.map:.3f}, {trained.seconds:.1f} s")
        runs.append((trained.seconds, measured.map50, measured.map, trained))
    bench.record(f"raccoon_{kind}_train_cold_s", runs[0][0], "s")
    bench.record(f"raccoon_{kind}_train_s", statistics.median(r[0] for r in runs[1:] or runs), "s")
    bench.record(f"raccoon_{kind}_ap50", statistics.median(r[1] for r in runs), "AP")
    bench.record(f"raccoon_{kind}_ap", statistics.median(r[2] for r in runs), "AP")
    return runs[0][3]


def export_check(bench: Bench, trained, test) -> None:
    """The exported graph against the base on Keras and the numpy head, every anchor either scores >= 0.05."""
    images = [photo_image(p) for p in test[:8]]
    scores, boxes = fast.keras_reference(MOBILENET_V2, trained.head, images)
    detector = detector_from_trained(trained)
    blob = np.concatenate([detector.preprocess(i) for i in images])
    ours = detector.runtime().run(["scores", "boxes"], {"image": blob})
    live_anchors = ((scores > 0.05) | (ours[0] > 0.05)).any(-1)
    bench.record("own_fast_onnx_vs_keras_max_box_diff_px", float(np.abs(ours[1] - boxes)[live_anchors].max()), "px")
    bench.record("own_fast_onnx_vs_keras_max_score_diff", float(np.abs(ours[0] - scores).max()), "score")


def live_rate(bench: Bench, trained, photo: np.ndarray) -> None:
    """The fast detector on a 640x480 frame as the live camera runs it (``bench/live.py``'s way)."""
    detector = detector_from_trained(trained, "own_fast")
    rgb = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    processor = live.FrameProcessor(live.ObjectTask(detector))
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    ms = bench.compare("own_fast_live", lambda: processor.video_frames([frame]), lambda: detector.detect(rgb),
                       repeats=bench.repeats(31, 5))
    bench.record("own_fast_live_fps", 1000 / ms, "FPS")


def rcnn_photo(bench: Bench, trained, test) -> None:
    detector = detector_from_trained(trained, "own_rcnn")
    images = [photo_image(p) for p in test[: bench.repeats(40, 5)]]
    detector.detect(images[0])
    bench.record("own_rcnn_photo_s", statistics.median(_seconds(lambda i=i: detector.detect(i)) for i in images), "s")


def boxes_lost(first, last) -> int:
    """Boxes of ``first`` (photos by name) with no box of the same class in ``last`` within half a pixel."""
    found = {photo.name: photo for photo in last}
    lost = 0
    for photo in first:
        there = found.get(photo.name)
        for box, label in zip(photo.boxes, photo.labels):
            near = [] if there is None else [np.abs(other - box).max() <= 0.5
                                             for other, name in zip(there.boxes, there.labels) if name == label]
            lost += not any(near)
    return lost


def round_trip(bench: Bench) -> None:
    """The raccoon set through detection projects: VOC in, then VOC, COCO and YOLO out and in again."""
    from vision_backend.workspace import Workspace

    space = Workspace.at(Path(tempfile.mkdtemp(prefix="own_roundtrip_")))
    first = space.detection_project("raccoons")
    started = time.perf_counter()
    first.import_set(RACCOON)
    current = first
    for fmt in ("voc", "coco", "yolo"):
        following = space.detection_project(f"after {fmt}")
        following.import_set(current.export(fmt))
        current = following
    seconds = time.perf_counter() - started
    original = first.labelled()
    with bench.about("raccoon"):
        bench.record("voc_coco_yolo_roundtrip_boxes", sum(len(p.boxes) for p in original), "boxes")
        bench.record("voc_coco_yolo_roundtrip_boxes_lost", boxes_lost(original, current.labelled()), "boxes")
        bench.record("voc_coco_yolo_roundtrip_s", seconds, "s")


def options(parser) -> None:
    parser.add_argument("--roundtrip", action="store_true", help="only the VOC/COCO/YOLO round trip through projects")
    parser.add_argument("--features", action="store_true", help="only the base's feature speed (features_*)")


def main() -> None:
    bench = Bench("own_detector", __doc__, extra=options)
    train, test = (read_csv(RACCOON / f"{split}_labels.csv").photos for split in ("train", "test"))
    if bench.args.features:
        return feature_speed(bench, [photo_image(p) for p in test[:16]])
    round_trip(bench)
    if bench.args.roundtrip:
        return
    feature_speed(bench, [photo_image(p) for p in test[:16]])
    # the base's one-off conversions to ONNX at the detectors' sizes (kept for every later training)
    MOBILENET_V2.features_graph(fast.detection_taps(MOBILENET_V2), fast.PARAMS[0].default)
    MOBILENET_V2.features_graph((rcnn.rcnn_tap(MOBILENET_V2, rcnn.PARAMS[1].default),), rcnn.PARAMS[0].default)
    quick = {"epochs": 5} if bench.quick else {}
    trained_fast = raccoons(bench, "fast", train, test, quick)
    export_check(bench, trained_fast, test)
    live_rate(bench, trained_fast, photo_image(test[0]))
    trained_rcnn = raccoons(bench, "rcnn", train, test, {"epochs": 3} if bench.quick else {})
    rcnn_photo(bench, trained_rcnn, test)


if __name__ == "__main__":
    main()
