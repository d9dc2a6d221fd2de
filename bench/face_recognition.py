"""Face recognition with dlib's ResNet: embedding latency beside the bare dlib call, recognising a group photo,
LFW fold-1 pairs and the five LFW people.

``face_embedding_dlib_vs_raw``: the embedder's time for one face (5 landmarks, the aligned 150x150 chip, the
descriptor, L2 normalisation) over dlib's bare ``compute_face_descriptor`` on that same chip: the share of the
time the alignment and the product's plumbing take. ``recognise_group_photo_ms``: the face finder's detection,
embedding every face and naming each against a gallery of 50 faces.

python bench/face_recognition.py [--quick]

``--quick`` skips the five-person comparison (1,140 images to embed, a CNN to train).
"""

from __future__ import annotations

import numpy as np

from _harness import Bench

from vision_backend import models, samples  # noqa: E402
from vision_backend.face_recognition import lfw, recognise, scratch  # noqa: E402
from vision_backend.imageops import l2_normalise  # noqa: E402


def main() -> None:
    bench = Bench("face_recognition", __doc__)
    embedder = models.default("embed")
    with bench.about(embedder.name, recognise.face_finder()):
        embedder_figures(bench, embedder)
    with bench.about(embedder.name, lfw.LFW.name):
        lfw_figures(bench, embedder)


def embedder_figures(bench: Bench, embedder) -> None:
    group = samples.load_sample("group_7faces_family.jpg")
    faces = recognise.analyse(embedder, group)
    one, chip = faces.detections[[0]], faces.crops[0]
    network, _ = embedder.runtime()
    bench.compare("face_embedding_dlib", lambda: embedder.embed(group, one),
                  lambda: network.compute_face_descriptor(chip), repeats=bench.repeats(11))

    gallery = l2_normalise(np.random.default_rng(0).normal(size=(50, 128)))
    names = [f"person {i}" for i in range(50)]

    def recognise_group() -> None:
        found = recognise.analyse(embedder, group)
        recognise.recognise(found.vectors, names, gallery, embedder.threshold)

    bench.record("recognise_group_photo_ms", bench.time(recognise_group, bench.repeats(5)), "ms")
    print(f"# the group photo has {len(faces)} faces; gallery of 50 faces")


def lfw_figures(bench: Bench, embedder) -> None:
    metrics = lfw.verify_pairs(embedder).metrics
    bench.record("lfw_fold1_pair_accuracy_dlib", metrics.best_accuracy, "fraction")
    bench.record("lfw_fold1_auc_dlib", metrics.auc, "auc")
    bench.record("lfw_fold1_best_threshold_dlib", metrics.best_threshold, "distance")

    if not bench.quick:
        comparison = scratch.from_scratch_vs_embeddings(embedder)
        bench.record("lfw_people5_accuracy_embeddings", comparison.embeddings_accuracy, "fraction")
        bench.record("lfw_people5_accuracy_scratch_cnn", comparison.scratch_accuracy, "fraction")
        print(f"# five LFW people, {len(comparison.test_labels)} held-out faces (stratified quarter): logistic "
              "regression on dlib embeddings vs a small CNN trained from scratch (40 epochs, class weights)")


if __name__ == "__main__":
    main()
