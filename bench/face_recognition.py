"""Face recognition with dlib's ResNet: embedding latency beside the bare dlib call, recognising a group photo,
LFW fold-1 pairs and the five LFW people.

``face_embedding_dlib_vs_raw``: the embedder's time for one face (5 landmarks, the aligned 150x150 chip, the
descriptor, L2 normalisation) over dlib's bare ``compute_face_descriptor`` on that same chip: the share of the
time the alignment and the product's plumbing take. ``recognise_group_photo_ms``: the face finder's detection,
embedding every face and naming each against a gallery of 50 faces.

``enrol_two_people_mixups``: seven people (the five LFW people and the two staged ones) enrolled one after another
through the Face recognition page's "several photos of one person" uploader (AppTest, the page's defaults), two
photos each where there are two: faces stored under a person that came from another person's files (the demo's
mix-up); ``enrol_in_a_row_faces_held_back``: their own faces that did not get in (held back as looking like
someone enrolled before, within the uncertain band: LFW's George W Bush 0001 at 0.45 from Donald Rumsfeld; the
page offers to enrol such a face anyway). ``strangers_named_in_group_photos``:
faces of the staged group photos (17 people none of whom is enrolled) named rather than unknown, uncertain or too
small, with the page's demo gallery (its one-click two people); ``..._7_people`` with the seven people above.

python bench/face_recognition.py [--quick]

``--quick`` skips the five-person comparison (1,140 images to embed, a CNN to train).
"""

from __future__ import annotations

import numpy as np

import sys
import tempfile
from pathlib import Path

from _harness import ROOT, Bench

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
        demo_figures(bench, embedder)


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


GROUP_PHOTOS = ("group_3faces.jpg", "group_7faces_elvis.jpg", "group_7faces_family.jpg")


def people_to_enrol() -> dict[str, list[Path]]:
    """Seven people and two photos of each where there are two: the LFW people's first two, the staged ones."""
    files, _, names = lfw.lfw_people()
    people = {name.replace("_", " "): [f for f in files if f.parent.name == name][:2] for name in names}
    staged = samples.photos_dir()
    return {**people, "Barack Obama": [staged / "obama_1.jpg", staged / "obama_2.jpg"], "Joe Biden": [staged / "biden.jpg"]}


def enrol_through_the_page(people: dict[str, list[Path]]):
    """Each person's photos into the page's uploader with their name, one person after another; the gallery."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_pages import open_tab, start

    from pages._shared import navigation_mode_in_apptest
    from vision_backend.workspace import Workspace

    navigation_mode_in_apptest()

    app = open_tab(start("pages/face_recognition.py"), "Gallery: enrol people")
    for person, files in people.items():
        uploader = next(u for u in app.get("file_uploader") if str(u.key).startswith("fr_multi_"))
        uploader.set_value([(f.name, f.read_bytes(), "image/jpeg") for f in files]).run()
        next(t for t in app.text_input if str(t.key).startswith("fr_multi_name_")).input(person).run()
        app.button(key="fr_multi_go").click().run()
    return Workspace.local().gallery()


def strangers_named(embedder, gallery) -> int:
    """Faces in the staged group photos named from ``gallery`` (nobody in them is enrolled)."""
    names, vectors = gallery.embeddings(embedder.name, embedder.dimensions)
    named = 0
    for photo in GROUP_PHOTOS:
        faces = recognise.analyse(embedder, samples.load_sample(photo))
        named += sum(m.verdict == "same" for m in recognise.recognise_faces(faces, names, vectors, embedder.defaults()))
    return named


def demo_figures(bench: Bench, embedder) -> None:
    import os

    from vision_backend.workspace import Workspace

    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="fr_bench_demo_")
    recognise.enrol_demo_people(Workspace.local().gallery(), embedder)
    bench.record("strangers_named_in_group_photos", strangers_named(embedder, Workspace.local().gallery()), "faces")
    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="fr_bench_enrol_")
    people = people_to_enrol()
    gallery = enrol_through_the_page(people)
    own = {person: {f.name for f in files} for person, files in people.items()}
    stored = {p["name"]: [f["source"] for f in gallery.faces(p["id"])] for p in gallery.people()}
    bench.record("enrol_two_people_mixups", sum(s not in own.get(person, ()) for person, sources in stored.items()
                                              for s in sources), "faces")
    bench.record("enrol_in_a_row_faces_held_back", sum(len(own[p] - set(stored.get(p, ()))) for p in own), "faces")
    bench.record("strangers_named_in_group_photos_7_people", strangers_named(embedder, gallery), "faces")


if __name__ == "__main__":
    main()
