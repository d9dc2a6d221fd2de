"""Face recognition with dlib's ResNet: LFW fold-1 pairs, the five LFW people, embedding and recognition latency.

python bench/face_recognition.py [--quick]

``--quick`` skips the five-person comparison (1,140 images to embed, a CNN to train).
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import Recorder, median_ms

from vision_backend import face_recognition as fr  # noqa: E402
from vision_backend import models, samples  # noqa: E402
from vision_backend.intake import read_image  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    record = Recorder("face_recognition")
    recogniser = fr.RECOGNISERS["dlib"]
    network, hog = models.load("dlib_resnet_face"), models.load("dlib_hog")

    group = samples.load_sample("group_7faces_family.jpg")
    faces = fr.find_faces(hog, group)
    one = faces[[0]]
    record("face_embedding_ms_dlib", median_ms(lambda: recogniser.embed(network, group, one), 11, warmup=2), "ms")
    gallery = fr.l2_normalise(np.random.default_rng(0).normal(size=(50, 128)))
    names = [f"person {i}" for i in range(50)]

    def recognise_group() -> None:
        found = fr.find_faces(hog, group)
        vectors, _ = recogniser.embed(network, group, found)
        fr.recognise(vectors, names, gallery, recogniser.threshold)

    record("recognise_group_photo_ms", median_ms(recognise_group, 5, warmup=1), "ms")
    print(f"# the group photo has {len(faces)} faces; gallery of 50 faces")

    pairs = fr.lfw_pairs()
    files = sorted({p for a, b, _ in pairs for p in (a, b)})
    vectors = fr.embed_files(recogniser, network, hog, files)
    d = np.array([fr.distances(vectors[a], vectors[b])[0, 0] for a, b, _ in pairs])
    metrics = fr.pair_metrics(d, np.array([s for *_, s in pairs]))
    record("lfw_fold1_pair_accuracy_dlib", metrics.best_accuracy, "fraction")
    record("lfw_fold1_auc_dlib", metrics.auc, "auc")
    record("lfw_fold1_best_threshold_dlib", metrics.best_threshold, "distance")

    if not args.quick:
        comparison = fr.from_scratch_vs_embeddings(recogniser, network, hog)
        record("lfw_people5_accuracy_embeddings", comparison.embeddings_accuracy, "fraction")
        record("lfw_people5_accuracy_scratch_cnn", comparison.scratch_accuracy, "fraction")
        print(f"# five LFW people, {len(comparison.test_labels)} held-out faces (stratified quarter): logistic "
              "regression on dlib embeddings vs a small CNN trained from scratch (40 epochs, class weights)")
    record.save()


if __name__ == "__main__":
    main()
