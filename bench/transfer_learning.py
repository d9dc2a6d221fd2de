"""Fast transfer learning on the real MobileNetV2 base: time for 100 new images, the cached rerun, the features of
16 photos beside the bare Keras call, flowers accuracy.

python bench/transfer_learning.py [--quick]

``fast_transfer_100_images_s``: a fresh project of 100 flower photos, base features (photo and
mirror, several layers pooled: the app's default) plus 20 head epochs; ``fast_transfer_cached_s``:
the same again, every feature from the cache. ``features_16_photos_*``: ``features.describe`` on 16
photos (resize, the base's own scaling, the four tapped layers under the model's lock, pooling)
against the bare ``probe.predict_on_batch`` on the same batch already resized and scaled;
``_vs_raw`` is the product's overhead. ``flowers_demo_accuracy``: stratified 5-fold mean with the
app's default head settings on all 250 photos (``--quick``: 3 folds), and the same with the last
layer's average alone (``..._last_layer``) to show what the earlier layers add.
``flowers_demo_page_train_s``: what the Train tab's "Done in" says for the flowers demo at the page's
defaults with every feature cached (``train_project``: the cache read, the split, 150 epochs of the
numpy head, the held-out predictions), median of 5 (``--quick``: 3). The Keras head took 26 s here.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import replace

import numpy as np

from _harness import Bench

from vision_backend.transfer import demo, features, head  # noqa: E402
from vision_backend.transfer.bases import MOBILENET_V2  # noqa: E402
from vision_backend.transfer.projects import Project  # noqa: E402
from vision_backend.workspace import Workspace  # noqa: E402


def fill(name: str, folders: dict, per_class: int | None = None) -> Project:
    project = Workspace.local().project(name)
    for label, files in folders.items():
        for file in files[:per_class]:
            project.add_example(label, file.read_bytes(), file.name)
    return project


def main() -> None:
    bench = Bench("transfer_learning", __doc__)
    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="vision_lab_bench_")
    with bench.about(MOBILENET_V2.name, demo.DEMO_CLASSES.name):
        measure(bench)


def measure(bench: Bench) -> None:
    folders = demo.class_folders(demo.DEMO_CLASSES.path())
    base = MOBILENET_V2
    settings = replace(head.HeadSettings(), epochs=20, patience=0)
    warm = fill("warm-up", folders, 2)  # graph tracing and the first fit are not the user's wait
    head.fit_head(*features.project_features(warm, base, settings.pooling)[:2], 5, settings)

    project = fill("hundred", folders, 20)
    for figure in ("fast_transfer_100_images_s", "fast_transfer_cached_s"):
        started = time.perf_counter()
        vectors, labels, _, _ = features.project_features(project, base, settings.pooling)
        head.fit_head(vectors, labels, 5, settings)
        bench.record(figure, time.perf_counter() - started, "s")

    photos = features.read_files([file for files in folders.values() for file in files[:4]][:16])
    probe, batch = base.probe(base.taps), base.preprocess(photos)
    bench.compare("features_16_photos", lambda: features.describe(base, photos, "layers"),
                  lambda: probe.predict_on_batch(batch), repeats=bench.repeats(11, 3))

    flowers = Workspace.local().project(demo.DEMO_PROJECT)
    demo.load_demo_project(flowers)
    for pooling, suffix in (("layers", ""), ("average", "_last_layer")):
        chosen = replace(head.HeadSettings(), pooling=pooling)
        vectors, labels, _, _ = features.project_features(flowers, base, pooling)
        scores = head.cross_validate(vectors, labels, chosen, folds=3 if bench.quick else 5)
        bench.record(f"flowers_demo_accuracy{suffix}", float(np.mean(scores)), "fraction")
        print(f"# folds: {[round(s, 3) for s in scores]}; settings: {chosen}")

    head.train_project(flowers, base)  # every feature is cached now (the accuracy above computed them)
    seconds = [head.train_project(flowers, base).seconds for _ in range(bench.repeats(5, 3))]
    bench.record("flowers_demo_page_train_s", statistics.median(seconds), "s")


if __name__ == "__main__":
    main()
