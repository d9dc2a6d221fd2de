"""Transfer learning, the fast way: a frozen pretrained base turns each photo into a feature vector
once; a small softmax head trains on those vectors in seconds; base + head become one Keras model.

Because the base is frozen, running it again every epoch would compute the same vectors again:
caching them ("fast transfer learning") makes training cost the head's work only.
"""

from __future__ import annotations

from dataclasses import dataclass
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


# ---- the studio: projects, settings, training, evaluation, export ---------------------------
BASES = {  # registry card -> (Keras application, what it is)
    "mobilenet_v2_notop": ("MobileNetV2", "MobileNetV2 1.0/224 (ImageNet): 1280 features"),
    "mobilenet_v1_025_notop": ("MobileNet", "MobileNet v1 0.25/224, Teachable Machine's base: 256 features"),
}


@dataclass(frozen=True)
class HeadSettings:
    """The head trained on cached features. Defaults are the ones the flowers benchmark uses."""

    hidden: int = 256  # Dense units before the softmax (Teachable Machine: 100); 0 = softmax only
    dropout: float = 0.5
    epochs: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-3
    validation: float = 0.2
    class_weights: bool = True
    normalise: bool = True  # L2-normalise features (helps a linear head)
    mirror: bool = True  # also learn from each photo's mirror image (feature augmentation)
    patience: int = 25  # early stopping on validation loss (0 = off)
    seed: int = 0


def image_features(base: Any, app: str, files: list[Path], mirror: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Pooled base features of image files (and of their mirror images, stacked after them)."""
    images = [read_image(Path(f).read_bytes(), Path(f).name) for f in files]
    features = embed(base, images, app, progress=progress)
    if mirror:
        features = np.concatenate([features, embed(base, [i[:, ::-1] for i in images], app)], axis=1)
    return features


def project_features(project: Any, base_name: str, base: Any, mirror: bool = True,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, list[str], list[Any]]:
    """(features, labels, class names, examples) with features from the project's cache.

    With ``mirror``, each row holds the photo's features then its mirror's (split them with
    :func:`split_mirror`); the cache stores both halves, so switching it costs nothing.
    """
    examples = [e for e in project.examples()]
    names = sorted({e.label for e in examples})
    app = BASES[base_name][0]
    features, _ = project.cached_features(base_name + "_mirror", [e.digest for e in examples],
                                          lambda files: image_features(base, app, files, True, progress))
    if not mirror:
        features = features[:, : features.shape[1] // 2]
    labels = np.array([names.index(e.label) for e in examples])
    return features, labels, names, examples


def _prepare(features: np.ndarray, settings: HeadSettings, mirrored_rows: bool) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12) if settings.normalise \
        else features


@dataclass
class Trained:
    head: Any
    names: list[str]
    history: dict[str, list[float]]
    validation: np.ndarray  # indices of the examples held out
    probabilities: np.ndarray  # validation probabilities
    labels: np.ndarray  # validation labels
    settings: HeadSettings
    base_name: str
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return float((self.probabilities.argmax(1) == self.labels).mean()) if len(self.labels) else float("nan")

    def confusion(self) -> np.ndarray:
        matrix = np.zeros((len(self.names), len(self.names)), np.int64)
        np.add.at(matrix, (self.labels, self.probabilities.argmax(1)), 1)
        return matrix

    def per_class(self) -> list[dict[str, Any]]:
        matrix = self.confusion()
        rows = []
        for k, name in enumerate(self.names):
            predicted, actual = matrix[:, k].sum(), matrix[k].sum()
            rows.append({"class": name, "precision": matrix[k, k] / predicted if predicted else float("nan"),
                         "recall": matrix[k, k] / actual if actual else float("nan"), "examples": int(actual)})
        return rows


def split(labels: np.ndarray, share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation indices (every class keeps at least one training example)."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for k in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == k))
        cut = min(len(index) - 1, round(len(index) * share))
        validation += list(index[:cut])
        train += list(index[cut:])
    return np.array(sorted(train), np.int64), np.array(sorted(validation), np.int64)


def fit_head(features: np.ndarray, labels: np.ndarray, classes: int, settings: HeadSettings,
             validation: tuple[np.ndarray, np.ndarray] | None = None, callbacks: list | None = None) -> tuple[Any, dict]:
    """A head (optional hidden layer, dropout, softmax) trained with Adam on prepared features.

    With ``settings.mirror`` the rows hold [photo | mirror] features: each half becomes its own
    training example (twice the data), and prediction averages the two (see :func:`predict_head`).
    """
    import keras

    keras.utils.set_random_seed(settings.seed)
    x, y = features, labels
    if settings.mirror:
        half = features.shape[1] // 2
        x, y = np.concatenate([features[:, :half], features[:, half:]]), np.concatenate([labels, labels])
    x = _prepare(x, settings, False)
    layers_ = [keras.Input((x.shape[1],)), keras.layers.Dropout(settings.dropout)]
    if settings.hidden:
        layers_ += [keras.layers.Dense(settings.hidden, activation="relu"), keras.layers.Dropout(settings.dropout)]
    head = keras.Sequential(layers_ + [keras.layers.Dense(classes, activation="softmax", name="classes")])
    head.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    weights = None
    if settings.class_weights:
        counts = np.bincount(y, minlength=classes)
        weights = {k: len(y) / (classes * max(c, 1)) for k, c in enumerate(counts)}
    val_data, extra = None, list(callbacks or [])
    if validation is not None and len(validation[1]):
        vx, vy = validation
        if settings.mirror:
            vx = vx[:, : vx.shape[1] // 2]
        val_data = (_prepare(vx, settings, False), vy)
        if settings.patience:
            extra.append(keras.callbacks.EarlyStopping(patience=settings.patience, restore_best_weights=True))
    history = head.fit(x, y, epochs=settings.epochs, batch_size=settings.batch_size, verbose=0, class_weight=weights,
                       validation_data=val_data, callbacks=extra, shuffle=True)
    return head, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict_head(head: Any, features: np.ndarray, settings: HeadSettings) -> np.ndarray:
    if settings.mirror:
        half = features.shape[1] // 2
        return (np.asarray(head.predict(_prepare(features[:, :half], settings, False), verbose=0))
                + np.asarray(head.predict(_prepare(features[:, half:], settings, False), verbose=0))) / 2
    return np.asarray(head.predict(_prepare(features, settings, False), verbose=0))


def train_project(project: Any, base_name: str, base: Any, settings: HeadSettings = HeadSettings(),
                  callbacks: list | None = None, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Fast transfer learning on a project: cached features, a stratified validation split, the head."""
    import time as _time

    problems = project.problems()
    if problems:
        raise ValueError(" ".join(problems))
    started = _time.perf_counter()
    features, labels, names, _ = project_features(project, base_name, base, True, progress)
    if not settings.mirror:
        features = features[:, : features.shape[1] // 2]
    train_index, val_index = split(labels, settings.validation, settings.seed)
    head, history = fit_head(features[train_index], labels[train_index], len(names), settings,
                             (features[val_index], labels[val_index]), callbacks)
    probabilities = predict_head(head, features[val_index], settings) if len(val_index) else np.zeros((0, len(names)))
    return Trained(head, names, history, val_index, probabilities, labels[val_index], settings, base_name,
                   _time.perf_counter() - started)


def cross_validate(features: np.ndarray, labels: np.ndarray, settings: HeadSettings, folds: int = 5) -> list[float]:
    """Stratified k-fold accuracies of the head on fixed features (the benchmark's figure)."""
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=settings.seed).split(features, labels):
        head, _ = fit_head(features[train], labels[train], int(labels.max()) + 1, settings)
        scores.append(float((predict_head(head, features[test], settings).argmax(1) == labels[test]).mean()))
    return scores


def export_model(base_name: str, base: Any, trained: Trained) -> Any:
    """One Keras model, raw 224x224 RGB 0..255 in, class probabilities out: the base's own scaling,
    the base, pooling, L2 normalisation if used, and the head's layers (mirror averaging is a
    training-time trick and is left out)."""
    import keras
    from keras import layers

    inputs = keras.Input((224, 224, 3), name="rgb_0_255")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_minus1_1")(inputs)  # MobileNet v1/v2 preprocessing
    features = layers.GlobalAveragePooling2D(name="pool")(base(scaled))
    if trained.settings.normalise:
        features = layers.UnitNormalization(name="l2_normalise")(features)
    x = features
    for layer in trained.head.layers:
        if isinstance(layer, layers.Dropout):
            continue
        copy = layers.Dense(layer.units, activation=layer.activation, name=layer.name)
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=f"{base_name}_transfer")
