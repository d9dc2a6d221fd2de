"""Object detectors on ONNX Runtime and selective search: latency, memory and what they find.

python bench/object_detection.py [--quick]

``*_ms`` is the whole adapter (letterbox, session, decoding, NMS, masks) on the staged
768x576 photo; ``*_session_ms`` is onnxruntime's run alone at the model's input size.
Peak memory is measured in a fresh subprocess per detector (ru_maxrss after the timed runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import cv2
import numpy as np

from _common import ROOT, Recorder, median_ms

from vision_backend import models, samples  # noqa: E402
from vision_backend import object_detection as od  # noqa: E402

REAL = ["nanodet", "yolov8n_seg"]
PHOTOS = ["dog_bicycle_truck.jpg", "person_horse_dog.jpg"]


def peak_rss_mb(detector: str) -> float:
    """Load one detector in a new process, run it, and report the process's peak resident memory."""
    code = (
        "import resource, sys; sys.path.insert(0, %r)\n"
        "from vision_backend import models, samples, object_detection as od\n"
        "d = od.DETECTORS[%r]; s = models.load(d.model); p = samples.load_sample('dog_bicycle_truck.jpg')\n"
        "[od.detect(%r, s, p) for _ in range(5)]\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    ) % (str(ROOT), detector, detector)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats = 7 if args.quick else 31
    record = Recorder("object_detection")
    models.card("photos").require()
    photo = samples.load_sample("dog_bicycle_truck.jpg")
    peaks = []
    for name in REAL:
        detector = od.DETECTORS[name]
        session = models.load(detector.model)
        record(f"{name}_ms", median_ms(lambda: od.detect(name, session, photo), repeats, warmup=3), "ms")
        shape = session.get_inputs()[0].shape  # fixed: [1, 3, size, size]
        blob = np.random.default_rng(0).random(shape, dtype=np.float32)
        feed = {session.get_inputs()[0].name: blob}
        record(f"{name}_session_ms", median_ms(lambda: session.run(None, feed), repeats, warmup=3), "ms")
        for p in PHOTOS:
            found = od.detect(name, session, samples.load_sample(p))
            print(f"# {name} on {p}: " + json.dumps([f"{n} {s:.2f}" for n, s in zip(found.names, found.scores)]))
        peaks.append(peak_rss_mb(name))
        record(f"{name}_peak_rss_mb", peaks[-1], "MB")
    record("detector_peak_rss_mb", max(peaks), "MB")

    small = cv2.resize(samples.load_sample("dog_bicycle_truck.jpg"), (640, 480), interpolation=cv2.INTER_AREA)
    ss_repeats = 3 if args.quick else 7
    record("selective_search_fast_640x480_s",
           median_ms(lambda: od.selective_search(small, "fast", max_side=640), ss_repeats) / 1000, "s")
    record("selective_search_fast_320x240_s",
           median_ms(lambda: od.selective_search(small, "fast", max_side=320), ss_repeats) / 1000, "s")
    record("proposals_fast_640x480", len(od.selective_search(small, "fast", max_side=640)), "boxes")
    record.save()


if __name__ == "__main__":
    main()
