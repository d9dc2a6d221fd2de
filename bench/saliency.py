"""Saliency on every classifier and engine here, offline: does each give a map, do the maps beat random ones, and
what does a map cost beside the classifier's own time for one photo.

``saliency_every_classifier``: 1 when every registered ImageNet classifier, on every engine, whose files are here
gives a finite, non-flat map in [0, 1] (occlusion; Grad-CAM too on Keras), else 0; a line per model and engine
(and per model that is not here). ``saliency_deletion_auc_vs_random``: the median over 20 staged photos (every
sample photo, then the flowers demo's, one a class) of the default classifier's occlusion map's deletion AUC over
the mean of 4 smooth random orders' on the same photo (Petsiuk et al. 2018: black pixels, 16 steps; below 1: the
map beats chance); ``..._insertion_...`` likewise (pixels put back into a blurred copy; above 1 is better); the
same for RISE (``saliency_rise_...``) and, on the flowers demo (Keras, the real MobileNetV2 base) over 20 of its
photos left out of its training, for Grad-CAM and for occlusion. ``{engine}_{model}_{method}_map_vs_raw``: one map
of the first photo (its deletion score not included) over ``classify`` on that photo, on the same engine.

python bench/saliency.py [--quick]
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import numpy as np

from _harness import Bench

from vision_backend import models, samples  # noqa: E402
from vision_backend.classification import CLASSIFIERS, gradcam, saliency  # noqa: E402
from vision_backend.intake import read_image  # noqa: E402
from vision_backend.transfer import demo  # noqa: E402
from vision_backend.transfer.bases import MOBILENET_V2  # noqa: E402


def staged_photos(count: int = 20) -> list[np.ndarray]:
    """Every sample photo, then the flowers demo's (one a class, round and round) up to ``count``."""
    photos = [samples.load_sample(name) for name in samples.sample_names()]
    if demo.DEMO_CLASSES.ready():
        folders = list(demo.class_folders(demo.DEMO_CLASSES.path()).values())
        extra = [folders[i % len(folders)][45 + i // len(folders)] for i in range(max(0, count - len(photos)))]
        photos += [read_image(path.read_bytes(), path.name) for path in extra]
    return photos[:count]


def unseen_flowers(count: int = 20) -> list[np.ndarray]:
    """Flowers demo photos its classifier was not trained on (it takes the first 40 of each class)."""
    folders = list(demo.class_folders(demo.DEMO_CLASSES.path()).values())
    paths = [folders[i % len(folders)][40 + i // len(folders)] for i in range(count)]
    return [read_image(path.read_bytes(), path.name) for path in paths]


def a_map(map_: np.ndarray) -> bool:
    return bool(np.isfinite(map_).all() and map_.min() >= 0 and map_.max() <= 1 and map_.max() > map_.min())


def one_map(what: str, subject: saliency.Subject, photo: np.ndarray, method: str) -> bool:
    """Whether ``subject`` gives a map of ``photo`` by ``method``, said in a line (what failed, if it did)."""
    started = time.perf_counter()
    try:
        ok, note = a_map(subject.explain(photo, method).map), ""
    except Exception as error:  # noqa: BLE001 — a bench says what failed and goes on
        ok, note = False, f" ({type(error).__name__}: {error})"
    print(f"  {what}, {method}: {'a map' if ok else 'NO MAP'} in {time.perf_counter() - started:.1f} s{note}")
    return ok


def every_classifier(bench: Bench, photo: np.ndarray) -> None:
    """A map from every classifier on every engine whose files are here; a line for each, and for each missing."""
    outcomes = []
    for name, classifier in CLASSIFIERS.items():
        if not classifier.ready():
            print(f"  {name}: not here ({classifier.card.how_to_get()})")
            continue
        for engine in classifier.engines:
            subject = saliency.classifier_subject(classifier, engine)
            for method in (["grad_cam"] if subject.gradients else []) + ["occlusion"]:
                outcomes.append(one_map(f"{name} on {engine}", subject, photo, method))
    bench.record("saliency_every_classifier", float(bool(outcomes) and all(outcomes)), "fraction")
    bench.record("saliency_classifier_engines_here", len(outcomes), "count")


def ratios(subject: saliency.Subject, photos: list[np.ndarray], method: str) -> np.ndarray:
    """(deletion, insertion) AUC over random's for each photo, with the method's default settings."""
    rows = []
    for photo in photos:
        found = subject.explain(photo, method)
        scored = subject.faithfulness(photo, found)
        rows.append((scored.deletion_vs_random, scored.insertion_vs_random))
    return np.array(rows)


def record_ratios(bench: Bench, stem: str, found: np.ndarray) -> None:
    bench.record(f"{stem}_deletion_auc_vs_random", float(np.nanmedian(found[:, 0])), "ratio")
    bench.record(f"{stem}_insertion_auc_vs_random", float(np.nanmedian(found[:, 1])), "ratio")
    bench.record(f"{stem}_deletion_beats_random", float(np.mean(found[:, 0] < 1)), "fraction")


def default_classifier(bench: Bench, photos: list[np.ndarray]) -> None:
    """The default classifier on its own engine: both gradient-free methods over the staged photos, and the cost
    of one map beside its classify call."""
    classifier = models.default("classify")
    engine = classifier.engines[0]
    subject = saliency.classifier_subject(classifier, engine)
    with bench.about(classifier.name):
        record_ratios(bench, "saliency", ratios(subject, photos, "occlusion"))
        record_ratios(bench, "saliency_rise", ratios(subject, photos, "rise"))
        for method in ("occlusion", "rise"):
            bench.compare(f"{engine}_{classifier.name}_{method}_map", lambda: subject.explain(photos[0], method),
                          lambda: classifier.classify(photos[:1], engine), repeats=bench.repeats(5, 1), warmup=1)


def keras_demo(bench: Bench, count: int) -> None:
    """Grad-CAM and occlusion on the flowers demo (a Keras model with gradients) over its unseen photos."""
    if not (demo.demo_classifier_trained() or (MOBILENET_V2.ready() and demo.DEMO_CLASSES.ready())):
        print("  the flowers demo is not here: no Keras model to compare Grad-CAM on")
        return
    subject = saliency.keras_subject("Flowers demo", gradcam.demo_explainable())
    photos = unseen_flowers(count)
    with bench.about(MOBILENET_V2.name, demo.DEMO_CLASSES.name):
        record_ratios(bench, "saliency_demo_grad_cam", ratios(subject, photos, "grad_cam"))
        record_ratios(bench, "saliency_demo_occlusion", ratios(subject, photos, "occlusion"))
        bench.record("saliency_demo_grad_cam_map_ms", timed(lambda: subject.explain(photos[0], "grad_cam")), "ms")


def timed(function: Callable[[], Any], repeats: int = 3) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    bench = Bench("saliency", __doc__)
    count = 5 if bench.quick else 20
    photos = staged_photos(count)
    every_classifier(bench, photos[0])
    default_classifier(bench, photos)
    keras_demo(bench, count)


if __name__ == "__main__":
    main()
