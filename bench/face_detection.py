"""Face detectors: latency on a 640x480 photo, and recall/precision on the 17 annotated faces.

Each detector at its page defaults, and Viola-Jones also in its thorough setup (``haar_thorough_*``).
``*_scaled_photos_recall_min`` / ``_median``: recall over the same photos resized to 80-120%, which
tells a detector that finds faces from a setting that only suits these 17 faces at one size.

python bench/face_detection.py [--quick]
"""

from __future__ import annotations

import argparse

import cv2

from _common import Recorder, median_ms

from vision_backend import models, samples  # noqa: E402
from vision_backend import face_detection as fd  # noqa: E402

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    record = Recorder("face_detection")
    models.card("photos").require()
    truth = samples.annotated_faces()
    photos = [samples.load_sample(p) for p in truth]
    boxes = list(truth.values())
    photo = cv2.resize(samples.load_sample("group_7faces_family.jpg"), (640, 480), interpolation=cv2.INTER_CUBIC)
    setups = [(name, name, {}) for name in fd.DETECTORS] + [("haar_thorough", "haar", fd.HAAR_THOROUGH)]
    for figure, name, settings in setups:
        model = models.load(fd.DETECTORS[name].model)
        ms = median_ms(lambda: fd.detect(name, model, photo, **settings), repeats=5 if args.quick else 21, warmup=2)
        record(f"{figure}_640x480_ms", ms, "ms")
        result = fd.evaluate([fd.detect(name, model, image, **settings) for image in photos], boxes)
        record(f"{figure}_group_photos_recall", result.recall, "fraction")
        record(f"{figure}_group_photos_precision", result.precision, "fraction")
        scaled = fd.evaluate_at_scales(lambda image: fd.detect(name, model, image, **settings), photos, boxes)
        recalls = sorted(r.recall for r in scaled.values())
        record(f"{figure}_scaled_photos_recall_min", recalls[0], "fraction")
        record(f"{figure}_scaled_photos_recall_median", recalls[len(recalls) // 2], "fraction")
    record.save()


if __name__ == "__main__":
    main()
