"""Object detectors on ONNX Runtime and selective search: latency beside the bare session run, memory, proposals.

Every registered ONNX detector whose files are here, its figures named after its card: ``<card>_ms`` is the
whole detector object (letterbox, session, decoding, NMS, masks, tidying) on the staged 768x576 photo,
``<card>_raw_ms`` onnxruntime's run alone on the same preprocessed blob, ``<card>_vs_raw`` their ratio (the
product's overhead, which holds across days where a time does not), ``<card>_session_ms`` the session alone
at the model's input size. Peak memory is measured in a fresh subprocess per detector (the process's own
high-water mark after five runs).

python bench/object_detection.py [--quick]
"""

from __future__ import annotations

import json

import cv2

from _harness import CHILD_PEAK_RSS_MB, Bench, in_fresh_process

from vision_backend import samples  # noqa: E402
from vision_backend.object_detection import DETECTORS, rcnn  # noqa: E402
from vision_backend.object_detection.detectors import OnnxDetector  # noqa: E402

PHOTOS = ["dog_bicycle_truck.jpg", "person_horse_dog.jpg"]


def peak_rss_mb(name: str) -> float:
    """Load one detector in a new process, run it, and report the process's peak resident memory."""
    return float(in_fresh_process(
        "from vision_backend import models, samples\n"
        f"d = models.get({name!r}); p = samples.load_sample('dog_bicycle_truck.jpg')\n"
        "[d.detect(p) for _ in range(5)]\n"
        f"print({CHILD_PEAK_RSS_MB})\n"))


def detector_figures(bench: Bench, name: str, photo) -> float:
    """The detector against its bare session run, the session alone, what it finds; returns its peak memory."""
    detector = DETECTORS[name]
    session = detector.runtime()
    feed = {session.get_inputs()[0].name: detector.preprocess(photo)[0]}
    bench.compare(name, lambda: detector.detect(photo), lambda: session.run(None, feed), repeats=bench.repeats(31, 7),
                  warmup=3)
    bench.record(f"{name}_session_ms", bench.time(lambda: session.run(None, feed), bench.repeats(31, 7), 3), "ms")
    for p in PHOTOS:
        found = detector.detect(samples.load_sample(p))
        print(f"# {name} on {p}: " + json.dumps([f"{n} {s:.2f}" for n, s in zip(found.names, found.scores)]))
    peak = peak_rss_mb(name)
    bench.record(f"{name}_peak_rss_mb", peak, "MB")
    return peak


def main() -> None:
    bench = Bench("object_detection", __doc__)
    samples.PHOTOS.require()
    photo = samples.load_sample("dog_bicycle_truck.jpg")
    peaks = []
    for name, detector in DETECTORS.items():
        if detector.ready() and isinstance(detector, OnnxDetector):  # the bare call: the session's run
            with bench.about(name):
                peaks.append(detector_figures(bench, name, photo))
    bench.record("detector_peak_rss_mb", max(peaks), "MB")

    small = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
    repeats = bench.repeats(7, 3)
    for side, size in ((640, "640x480"), (320, "320x240")):
        seconds = bench.time(lambda: rcnn.selective_search(small, "fast", max_side=side), repeats, warmup=1) / 1000
        bench.record(f"selective_search_fast_{size}_s", seconds, "s")
    bench.record("proposals_fast_640x480", len(rcnn.selective_search(small, "fast", max_side=640)), "boxes")


if __name__ == "__main__":
    main()
