"""Fast transfer learning on the real MobileNetV2 base: time for 100 new images, the cached rerun, flowers accuracy.

python bench/transfer_learning.py [--quick]

``fast_transfer_100_images_s``: a fresh project of 100 flower photos, base features (photo and
mirror: the app's default) plus 20 head epochs; ``fast_transfer_cached_s``: the same again, every
feature from the cache. ``flowers_demo_accuracy``: stratified 5-fold mean with the app's default
head settings on all 250 photos (``--quick``: 3 folds).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import numpy as np

from _common import Recorder

from vision_backend import models, projects, transfer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    record = Recorder("transfer_learning")
    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="vision_lab_bench_")
    folders = transfer.class_folders(models.card("demo_classes").path())
    base = models.load("mobilenet_v2_notop")
    transfer.embed(base, [np.zeros((224, 224, 3), np.uint8)])  # warm-up: graph tracing is not the user's wait
    settings = replace(transfer.HeadSettings(), epochs=20, patience=0)

    for mirror, suffix in ((True, ""), (False, "_no_mirror")):
        project = projects.Project(f"hundred{suffix}")
        for label, files in folders.items():
            for file in files[:20]:
                project.add_example(label, file.read_bytes(), file.name)
        started = time.perf_counter()
        features, labels, _, _ = transfer.project_features(project, "mobilenet_v2_notop", base, mirror=True) \
            if mirror else _plain(project, base)
        transfer.fit_head(features, labels, 5, replace(settings, mirror=mirror))
        record(f"fast_transfer_100_images{suffix}_s", time.perf_counter() - started, "s")
        if mirror:
            started = time.perf_counter()
            features, labels, _, _ = transfer.project_features(project, "mobilenet_v2_notop", base, mirror=True)
            transfer.fit_head(features, labels, 5, settings)
            record("fast_transfer_cached_s", time.perf_counter() - started, "s")

    demo = projects.Project("flowers")
    for label, files in folders.items():
        for file in files:
            demo.add_example(label, file.read_bytes(), file.name)
    features, labels, _, _ = transfer.project_features(demo, "mobilenet_v2_notop", base, mirror=True)
    scores = transfer.cross_validate(features, labels, transfer.HeadSettings(), folds=3 if args.quick else 5)
    record("flowers_demo_accuracy", float(np.mean(scores)), "fraction")
    print(f"# folds: {[round(s, 3) for s in scores]}; settings: {transfer.HeadSettings()}")


def _plain(project, base):
    examples = project.examples()
    names = sorted({e.label for e in examples})
    features, _ = project.cached_features("mobilenet_v2_notop_plain", [e.digest for e in examples],
                                          lambda files: transfer.image_features(base, "MobileNetV2", files))
    return features, np.array([names.index(e.label) for e in examples]), names, examples


if __name__ == "__main__":
    main()
