"""The flowers demo: five classes of real photos to label and train on at one click, and a classifier
trained once on them (the real MobileNetV2 base + a plain softmax) that Grad-CAM can explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import engines, paths
from vision_backend.cards import AssetFile, ModelCard
from vision_backend.storage import atomic_path, atomic_write
from vision_backend.transfer.bases import MOBILENET_V2
from vision_backend.transfer.features import describe, read_files
from vision_backend.transfer.head import HeadSettings, fit_head

FLOWER_PHOTOS = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
"""TensorFlow's flower photos (228,813,984 bytes; no published hash: every kept file is checked against
our manifest instead)."""
FLOWER_FOLDERS = {"daisy": "daisy", "dandelion": "dandelion", "roses": "rose", "sunflowers": "sunflower",
                  "tulips": "tulip"}
"""The archive's class folders (``flower_photos/<folder>/``) -> ours."""


def build_demo_classes(folder: Path, download: Callable[..., Path]) -> None:
    """The 250 photos of our manifest out of TensorFlow's ``flower_photos.tgz`` (read as a stream; only
    they are kept, under our singular class names), then the archive is removed."""
    from vision_backend.fetch import extract_members, tree_manifest

    wanted = set(tree_manifest(DEMO_CLASSES.files[0]))

    def route(member: str) -> list[Path]:
        parts = member.split("/")
        if len(parts) != 3 or parts[0] != "flower_photos" or parts[1] not in FLOWER_FOLDERS:
            return []
        ours = f"{FLOWER_FOLDERS[parts[1]]}/{parts[2]}"
        return [folder / ours] if ours in wanted else []

    archive = download(FLOWER_PHOTOS, ".flower_photos.tgz")
    extract_members(archive, route)
    archive.unlink()


DEMO_CLASSES = ModelCard(
    name="demo_classes", title="Flowers demo project (5 classes x 50)", task="transfer-learning data",
    kind="dataset", seedable=True, licence="CC BY 2.0 (Flickr)",
    files=(AssetFile("datasets/vision_lab/demo-classes", is_tree=True, build=build_demo_classes,
                     size=228_813_984),),
    note="50 photos a class of TensorFlow's flower_photos (tf_flowers); fetched as the whole 229 MB archive, "
         "of which only these 250 files are kept.",
)
DEMO_PROJECT = "Flowers demo"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}

DEMO_HEAD = HeadSettings(pooling="average", hidden=0, dropout=0.2, epochs=60, learning_rate=1e-3, validation=0.0,
                         class_weights=False, normalise=False, mirror=False, patience=0)
"""A plain softmax on the last layer's average: the classic recipe, so the page explains the classic model."""


def class_folders(root: Path) -> dict[str, list[Path]]:
    """``root/<class>/<image>`` -> {class: sorted image paths}, classes sorted by name."""
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(Path(root).iterdir()) if d.is_dir()}


def import_folders(project: Any, root: Path) -> int:
    """Every image of ``root/<class>/`` added to ``project`` under its class; returns how many were new."""
    return sum(project.add_example(label, file.read_bytes(), file.name)
               for label, files in class_folders(root).items() for file in files)


def load_demo_project(project: Any) -> int:
    return import_folders(project, DEMO_CLASSES.path())


def attach(base: Any, head: Any) -> Any:
    """One flat Keras model, photo in, class probabilities out (so Grad-CAM can see the base's layers)."""
    keras = engines.keras()
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base.outputs[0])
    dense = head.layer("classes")
    classes = keras.layers.Dense(dense.bias.shape[0], activation="softmax", name="classes")
    model = keras.Model(base.inputs, classes(pooled), name=f"{base.name}_transfer")
    classes.set_weights(dense.weights())
    return model


def _demo_paths() -> tuple[Path, Path]:
    folder = paths.app_dir("models")
    return folder / "demo_flowers_mobilenet_v2.keras", folder / "demo_flowers_mobilenet_v2.classes"


def demo_classifier_trained() -> bool:
    return all(p.is_file() for p in _demo_paths())


def demo_classifier(progress: Callable[[int, int], None] | None = None, per_class: int = 40) -> tuple[Any, list[str]]:
    """The built-in demo: the real MobileNetV2 base + a head trained on the flowers demo classes.

    Trained once (about 20 s here) and saved under ``$VISION_LAB_HOME/models`` (it is derived from
    public data, so everyone shares it); later calls load it. Returns the flat Keras model, which
    takes MobileNetV2's scaled input, and its class names.
    """
    keras = engines.keras()
    path, names_path = _demo_paths()
    if demo_classifier_trained():
        return keras.models.load_model(path, compile=False), names_path.read_text().split("\n")
    folders = class_folders(DEMO_CLASSES.path())
    files = [(k, f) for k, fs in enumerate(folders.values()) for f in fs[:per_class]]
    features = describe(MOBILENET_V2, read_files([f for _, f in files]), DEMO_HEAD.pooling, progress=progress)
    head, _ = fit_head(features, np.asarray([k for k, _ in files]), len(folders), DEMO_HEAD)
    model = attach(MOBILENET_V2.runtime(), head)
    with atomic_path(path, ".keras") as temp:
        model.save(temp)
    atomic_write(names_path, "\n".join(folders))
    return model, list(folders)
