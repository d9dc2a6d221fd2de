"""Transfer learning, the fast way: a frozen pretrained base turns each photo into a feature vector
once; a small softmax head trains on those vectors in seconds; base + head become one Keras model.

Because the base is frozen, running it again every epoch would compute the same vectors again:
caching them ("fast transfer learning") makes training cost the head's work only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import models
from vision_backend.classification import keras_preprocess, resize
from vision_backend.intake import read_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def class_folders(root: Path) -> dict[str, list[Path]]:
    """``root/<class>/<image>`` -> {class: sorted image paths}, classes sorted by name."""
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(Path(root).iterdir()) if d.is_dir()}


def base_input_size(base: Any) -> int:
    return int(base.inputs[0].shape[1])


def embed(base: Any, images: list[np.ndarray], app: str = "MobileNetV2", batch_size: int = 32,
          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pooled base features, (N, channels): global average of the last feature map.

    ``app`` names the Keras application the base comes from (its ``preprocess_input``).
    """
    size = base_input_size(base)
    preprocess = keras_preprocess(app)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(np.stack([resize(i, size) for i in images[start : start + batch_size]]))
        maps = np.asarray(base.predict_on_batch(batch))
        rows.append(maps.mean(axis=(1, 2)) if maps.ndim == 4 else maps)
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(rows).astype(np.float32)


def train_head(features: np.ndarray, labels: np.ndarray, classes: int, epochs: int = 60, seed: int = 0,
               dropout: float = 0.2, callbacks: list | None = None, validation: tuple | None = None) -> Any:
    """A softmax layer (with dropout) trained on cached features with Adam."""
    import keras

    keras.utils.set_random_seed(seed)
    head = keras.Sequential([keras.Input((features.shape[1],)), keras.layers.Dropout(dropout),
                             keras.layers.Dense(classes, activation="softmax", name="classes")])
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(features, labels, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks or [],
             validation_data=validation)
    return head


def attach(base: Any, head: Any) -> Any:
    """One flat Keras model, photo in, class probabilities out (so Grad-CAM can see the base's layers)."""
    import keras

    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(base.outputs[0])
    dense = head.get_layer("classes")
    classes = keras.layers.Dense(dense.units, activation="softmax", name="classes")
    model = keras.Model(base.inputs, classes(pooled), name=f"{base.name}_transfer")
    classes.set_weights(dense.get_weights())
    return model


def _demo_paths() -> tuple[Path, Path]:
    from vision_backend import paths

    folder = paths.app_dir("models")
    return folder / "demo_flowers_mobilenet_v2.keras", folder / "demo_flowers_mobilenet_v2.classes"


def demo_classifier_trained() -> bool:
    return all(p.is_file() for p in _demo_paths())


def demo_classifier(progress: Callable[[int, int], None] | None = None, per_class: int = 40) -> tuple[Any, list[str]]:
    """The built-in demo: the real MobileNetV2 base + a head trained on the flowers demo classes.

    Trained once (about 20 s here) and saved under ``$VISION_LAB_HOME/models``; later calls load it.
    Returns the flat Keras model and its class names.
    """
    import keras

    path, names_path = _demo_paths()
    if demo_classifier_trained():
        return keras.models.load_model(path, compile=False), names_path.read_text().split("\n")
    folders = class_folders(models.card("demo_classes").path())
    images, labels = [], []
    for k, files in enumerate(folders.values()):
        for file in files[:per_class]:
            images.append(read_image(file.read_bytes(), file.name))
            labels.append(k)
    base = models.load("mobilenet_v2_notop")
    features = embed(base, images, "MobileNetV2", progress=progress)
    model = attach(base, train_head(features, np.asarray(labels), len(folders)))
    partial = path.with_suffix(".partial.keras")
    model.save(partial)
    partial.replace(path)
    names_path.write_text("\n".join(folders))
    return model, list(folders)
