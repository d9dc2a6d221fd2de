"""Fast transfer learning on the real MobileNetV2 base: time for 100 new images, the cached rerun, flowers accuracy.

python bench/transfer_learning.py [--quick]

``fast_transfer_100_images_s``: a fresh project of 100 flower photos, base features (photo and
mirror, several layers pooled: the app's default) plus 20 head epochs; ``fast_transfer_cached_s``:
the same again, every feature from the cache. ``flowers_demo_accuracy``: stratified 5-fold mean
with the app's default head settings on all 250 photos (``--quick``: 3 folds), and the same with
the last layer's average alone (``..._last_layer``) to show what the earlier layers add.
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

BASE = "mobilenet_v2_notop"


def fill(name: str, folders: dict, per_class: int | None = None) -> projects.Project:
    project = projects.Project(name)
    for label, files in folders.items():
        for file in files[:per_class]:
            project.add_example(label, file.read_bytes(), file.name)
    return project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    record = Recorder("transfer_learning")
    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="vision_lab_bench_")
    folders = transfer.class_folders(models.card("demo_classes").path())
    base = models.load(BASE)
    settings = replace(transfer.HeadSettings(), epochs=20, patience=0)
    warm = fill("warm-up", folders, 2)  # graph tracing and the first fit are not the user's wait
    transfer.fit_head(*transfer.project_features(warm, BASE, base, settings.pooling)[:2], 5, settings)

    project = fill("hundred", folders, 20)
    for figure in ("fast_transfer_100_images_s", "fast_transfer_cached_s"):
        started = time.perf_counter()
        features, labels, _, _ = transfer.project_features(project, BASE, base, settings.pooling)
        transfer.fit_head(features, labels, 5, settings)
        record(figure, time.perf_counter() - started, "s")

    demo = fill("flowers", folders)
    folds = 3 if args.quick else 5
    for pooling, suffix in (("layers", ""), ("average", "_last_layer")):
        chosen = replace(transfer.HeadSettings(), pooling=pooling)
        features, labels, _, _ = transfer.project_features(demo, BASE, base, pooling)
        scores = transfer.cross_validate(features, labels, chosen, folds=folds)
        record(f"flowers_demo_accuracy{suffix}", float(np.mean(scores)), "fraction")
        print(f"# folds: {[round(s, 3) for s in scores]}; settings: {chosen}")


if __name__ == "__main__":
    main()
