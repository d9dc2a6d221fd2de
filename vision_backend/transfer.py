"""Transfer learning: a network trained on ImageNet describes your photos; a small head learns your classes.

Fast mode: the frozen base turns each photo into a feature vector once (cached per photo and
base); the head trains on those vectors in seconds. Full mode: the photos themselves, randomly
flipped, turned, zoomed and brightened, go through a copy of the base every epoch, and the
base's top layers can be fine-tuned at a low rate. Either way the result becomes one Keras model,
raw pixels in, class probabilities out, ready for Grad-CAM and for ONNX or TFLite.

Because the base is frozen in fast mode, running it again every epoch would compute the same
vectors again: caching them ("fast transfer learning") makes training cost the head's work only.
"""

from __future__ import annotations

import time
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


# ---- the studio: projects, settings, training, evaluation, export ---------------------------
@dataclass(frozen=True)
class Base:
    app: str
    """The Keras application (its ``preprocess_input`` and constructor)."""
    title: str
    taps: tuple[str, ...]
    """Layers whose pooled maps make the "layers" features, the base's output last."""


BASES = {  # registry card -> base
    "mobilenet_v2_notop": Base("MobileNetV2", "MobileNetV2 1.0/224 (ImageNet)",
                               ("block_12_add", "block_14_add", "block_16_project_BN", "out_relu")),
    "mobilenet_v1_025_notop": Base("MobileNet", "MobileNet v1 0.25/224, Teachable Machine's base",
                                   ("conv_pw_11_relu", "conv_pw_12_relu", "conv_pw_13_relu")),
}

POOLINGS = {
    "layers": "several layers, averaged and side by side: mid-level textures as well as late parts",
    "average": "global average pooling of the last feature map",
    "flatten": "the last feature map flattened (the deck's recipe; many more weights to learn)",
}


@dataclass(frozen=True)
class HeadSettings:
    """The head trained on cached features. Defaults are the ones the flowers benchmark uses.

    "layers" pooling is the default because the last layer alone is tuned to ImageNet's classes:
    on the flowers demo, adding three earlier layers' pooled maps raised held-out accuracy from
    83% to 87% (3x5-fold, same head), where resolution, crops and bigger heads moved it by 1-2%.
    """

    pooling: str = "layers"
    hidden: int = 0  # Dense units before the softmax (Teachable Machine: 100); 0 = softmax only
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


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


_PROBES: dict[tuple[int, tuple[str, ...]], tuple[Any, Any]] = {}


def feature_probe(base: Any, taps: tuple[str, ...]) -> Any:
    """``base`` with the outputs of ``taps`` (built once per base and taps: a new model retraces)."""
    import keras

    key = (id(base), taps)
    if key not in _PROBES or _PROBES[key][0] is not base:
        _PROBES[key] = (base, keras.Model(base.inputs, [base.get_layer(t).output for t in taps]))
    return _PROBES[key][1]


def pool(maps: list[np.ndarray], pooling: str) -> np.ndarray:
    """Feature maps (N, H, W, C) of the tapped layers -> one feature vector per photo."""
    if pooling == "layers":
        return np.concatenate([_unit(m.mean(axis=(1, 2))) for m in maps], axis=1).astype(np.float32)
    if pooling == "flatten":
        return maps[-1].reshape(len(maps[-1]), -1).astype(np.float16)  # half the disk; plenty for a head
    return maps[-1].mean(axis=(1, 2)).astype(np.float32)


def describe(base_name: str, base: Any, images: list[np.ndarray], pooling: str, batch_size: int = 32,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of photos through a frozen base, pooled the studio's way (see :data:`POOLINGS`)."""
    spec = BASES[base_name]
    probe = feature_probe(base, spec.taps if pooling == "layers" else spec.taps[-1:])
    size, preprocess = base_input_size(base), keras_preprocess(spec.app)
    rows = []
    for start in range(0, len(images), batch_size):
        batch = preprocess(np.stack([resize(i, size) for i in images[start : start + batch_size]]))
        outputs = probe.predict_on_batch(batch)
        rows.append(pool([np.asarray(m) for m in (outputs if isinstance(outputs, (list, tuple)) else [outputs])],
                         pooling))
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(rows)


def image_features(base_name: str, base: Any, images: list[np.ndarray], pooling: str, mirror: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of photos (and of their mirror images, side by side after them)."""
    features = describe(base_name, base, images, pooling, progress=progress)
    if mirror:
        features = np.concatenate([features, describe(base_name, base, [i[:, ::-1] for i in images], pooling)],
                                  axis=1)
    return features


def read_files(files: list[Path]) -> list[np.ndarray]:
    return [read_image(Path(f).read_bytes(), Path(f).name) for f in files]


def project_features(project: Any, base_name: str, base: Any, pooling: str = "layers",
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, list[str], list[Any]]:
    """(features, labels, class names, examples) from the project's cache, computing only new photos.

    Each row holds the photo's features then its mirror's: the cache stores both halves, so
    switching mirroring on or off costs nothing.
    """
    examples = project.examples()
    names = sorted({e.label for e in examples})
    features, _ = project.cached_features(f"{base_name}_{pooling}_mirror", [e.digest for e in examples],
                                          lambda files: image_features(base_name, base, read_files(files), pooling,
                                                                       True, progress))
    labels = np.array([names.index(e.label) for e in examples])
    return features, labels, names, examples


def _prepare(features: np.ndarray, settings: HeadSettings) -> np.ndarray:
    features = np.asarray(features, np.float32)
    return _unit(features) if settings.normalise else features


@dataclass
class Trained:
    head: Any
    """The head on cached features (fast mode), or None (full mode: see ``model``)."""
    names: list[str]
    history: dict[str, list[float]]
    validation: np.ndarray  # indices of the examples held out
    probabilities: np.ndarray  # validation probabilities
    labels: np.ndarray  # validation labels
    settings: Any  # HeadSettings or FullSettings
    base_name: str
    seconds: float = 0.0
    model: Any = None
    """Full mode: the whole model, raw 224x224 RGB 0..255 in, probabilities out."""

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


def class_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    """Each class weighted by how rare it is, so a big class cannot drown a small one."""
    counts = np.bincount(labels, minlength=classes)
    return {k: len(labels) / (classes * max(int(c), 1)) for k, c in enumerate(counts)}


def _head_layers(inputs: Any, classes: int, hidden: int, dropout: float) -> Any:
    from keras import layers

    x = layers.Dropout(dropout)(inputs)
    if hidden:
        x = layers.Dropout(dropout)(layers.Dense(hidden, activation="relu", name="hidden")(x))
    return layers.Dense(classes, activation="softmax", name="classes")(x)


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
    x = _prepare(x, settings)
    inputs = keras.Input((x.shape[1],))
    head = keras.Model(inputs, _head_layers(inputs, classes, settings.hidden, settings.dropout))
    head.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    val_data, extra = None, list(callbacks or [])
    if validation is not None and len(validation[1]):
        vx, vy = validation
        if settings.mirror:
            vx = vx[:, : vx.shape[1] // 2]
        val_data = (_prepare(vx, settings), vy)
        if settings.patience:
            extra.append(keras.callbacks.EarlyStopping(patience=settings.patience, restore_best_weights=True))
    history = head.fit(x, y, epochs=settings.epochs, batch_size=settings.batch_size, verbose=0,
                       class_weight=class_weights(y, classes) if settings.class_weights else None,
                       validation_data=val_data, callbacks=extra, shuffle=True)
    return head, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def predict_head(head: Any, features: np.ndarray, settings: HeadSettings) -> np.ndarray:
    if settings.mirror:
        half = features.shape[1] // 2
        return (np.asarray(head.predict(_prepare(features[:, :half], settings), verbose=0))
                + np.asarray(head.predict(_prepare(features[:, half:], settings), verbose=0))) / 2
    return np.asarray(head.predict(_prepare(features, settings), verbose=0))


def require_trainable(project: Any) -> None:
    """Raise the project's problems (one class, a class with one photo) as one plain message."""
    problems = project.problems()
    if problems:
        raise ValueError(" ".join(problems))


def train_project(project: Any, base_name: str, base: Any, settings: HeadSettings = HeadSettings(),
                  callbacks: list | None = None, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Fast transfer learning on a project: cached features, a stratified validation split, the head."""
    require_trainable(project)
    started = time.perf_counter()
    features, labels, names, _ = project_features(project, base_name, base, settings.pooling, progress)
    if not settings.mirror:
        features = features[:, : features.shape[1] // 2]
    train_index, val_index = split(labels, settings.validation, settings.seed)
    head, history = fit_head(features[train_index], labels[train_index], len(names), settings,
                             (features[val_index], labels[val_index]), callbacks)
    probabilities = predict_head(head, features[val_index], settings) if len(val_index) else np.zeros((0, len(names)))
    return Trained(head, names, history, val_index, probabilities, labels[val_index], settings, base_name,
                   time.perf_counter() - started)


def cross_validate(features: np.ndarray, labels: np.ndarray, settings: HeadSettings, folds: int = 5) -> list[float]:
    """Stratified k-fold accuracies of the head on fixed features (the benchmark's figure)."""
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=settings.seed).split(features, labels):
        head, _ = fit_head(features[train], labels[train], int(labels.max()) + 1, settings)
        scores.append(float((predict_head(head, features[test], settings).argmax(1) == labels[test]).mean()))
    return scores


def project_2d(features: np.ndarray, method: str = "PCA", seed: int = 0) -> np.ndarray:
    """A 2-D map of feature vectors: PCA (the directions of most variance) or t-SNE (neighbours
    kept together), so people see whether their classes separate before any head is trained."""
    x = _unit(np.asarray(features, np.float32))
    if method == "t-SNE" and len(x) > 3:
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed).fit_transform(x)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(x)


# ---- whole models: photo in, probabilities out ---------------------------------------------
def rebuilt_base(base_name: str, base: Any, tensor: Any) -> Any:
    """A copy of ``base`` built on ``tensor`` (one flat graph, not a nested model) with its weights.

    Flat, so Grad-CAM and the ONNX/TFLite converters see every layer; a copy, so training it
    never touches the shared, cached base.
    """
    import keras

    options = dict(models.card(base_name).options)
    options.pop("input_shape", None)
    app = options.pop("app")
    copy = getattr(keras.applications, app)(input_tensor=tensor, weights=None, **options)
    copy.set_weights(base.get_weights())
    return copy


def _raw_input() -> tuple[Any, Any]:
    """Raw 224x224 RGB 0..255 in, scaled the MobileNet way (both bases here use x / 127.5 - 1)."""
    import keras

    inputs = keras.Input((224, 224, 3), name="rgb_0_255")
    return inputs, keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale_to_minus1_1")(inputs)


def export_model(base_name: str, base: Any, trained: Trained) -> Any:
    """One flat Keras model, raw 224x224 RGB 0..255 in, class probabilities out: the base's own
    scaling, the base, the pooling, L2 normalisation if used, and the head's layers (mirror
    averaging is a training-time trick and is left out)."""
    import keras
    from keras import layers

    if trained.model is not None:
        return trained.model
    settings = trained.settings
    inputs, scaled = _raw_input()
    copy = rebuilt_base(base_name, base, scaled)
    taps = BASES[base_name].taps if settings.pooling == "layers" else BASES[base_name].taps[-1:]
    maps = [copy.get_layer(t).output for t in taps]
    if settings.pooling == "layers":
        pooled = [layers.UnitNormalization(name=f"l2_{t}")(layers.GlobalAveragePooling2D(name=f"pool_{t}")(m))
                  for t, m in zip(taps, maps)]
        x = layers.Concatenate(name="layers")(pooled)
    elif settings.pooling == "flatten":
        x = layers.Flatten(name="flatten")(maps[-1])
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(maps[-1])
    if settings.normalise:
        x = layers.UnitNormalization(name="l2_normalise")(x)
    for layer in trained.head.layers:
        if isinstance(layer, layers.Dense):
            copy_ = layers.Dense(layer.units, activation=layer.activation, name=layer.name)
            x = copy_(x)
            copy_.set_weights(layer.get_weights())
    return keras.Model(inputs, x, name=f"{base_name}_transfer")


def photo_probabilities(model: Any, images: list[np.ndarray]) -> np.ndarray:
    """Class probabilities from a whole (exported) model: photos resized to 224x224, raw pixels."""
    batch = np.stack([resize(i, 224) for i in images]).astype(np.float32)
    return np.asarray(model.predict(batch, batch_size=32, verbose=0))


def predict_images(trained: Trained, base: Any, images: list[np.ndarray]) -> np.ndarray:
    """Probabilities for new photos, the way the model was trained (fast mode: mirror averaged)."""
    if trained.model is not None:
        return photo_probabilities(trained.model, images)
    settings = trained.settings
    features = image_features(trained.base_name, base, images, settings.pooling, settings.mirror)
    return predict_head(trained.head, features, settings)


# ---- full mode: the photos themselves, augmented, through the base every epoch -------------
@dataclass(frozen=True)
class FullSettings:
    """End to end on the photos: random flips, turns, zooms and brightness every epoch, the frozen
    base, a head; then optionally the base's top layers unfrozen and tuned at a low rate.

    Slower than fast mode (every epoch runs the base again) but it can learn what cached
    features cannot: new views of each photo, and base layers adapted to your classes.
    """

    pooling: str = "average"  # or "flatten"
    hidden: int = 0
    dropout: float = 0.3
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    validation: float = 0.2
    class_weights: bool = True
    augment: bool = True
    fine_tune_layers: int = 0  # unfreeze this many of the base's top layers (BatchNorm layers stay frozen)
    fine_tune_epochs: int = 5
    fine_tune_learning_rate: float = 1e-5
    patience: int = 5  # early stopping on validation loss (0 = off)
    seed: int = 0


def augmentation() -> Any:
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05), layers.RandomZoom(0.15),
                             layers.RandomBrightness(0.2, value_range=(0, 255))], name="augment")


def full_model(base_name: str, base: Any, classes: int, settings: FullSettings) -> tuple[Any, Any]:
    """(model to train: augmentation then the whole model; the whole model alone, for use and export)."""
    import keras
    from keras import layers

    inputs, scaled = _raw_input()
    copy = rebuilt_base(base_name, base, scaled)
    for layer in copy.layers:
        layer.trainable = False
    x = layers.Flatten(name="flatten")(copy.output) if settings.pooling == "flatten" \
        else layers.GlobalAveragePooling2D(name="pool")(copy.output)
    whole = keras.Model(inputs, _head_layers(x, classes, settings.hidden, settings.dropout),
                        name=f"{base_name}_full")
    raw = keras.Input((224, 224, 3), name="photo")
    trainer = keras.Model(raw, whole(augmentation()(raw) if settings.augment else raw), name="trainer")
    return trainer, whole


def unfreeze_top(whole: Any, count: int) -> list[str]:
    """Make the base's top ``count`` layers with weights trainable (BatchNorm stays frozen: its
    statistics from millions of photos beat those of a small batch). Returns their names."""
    import keras

    head = {"hidden", "classes", "pool", "flatten"}
    candidates = [l for l in whole.layers if l.weights and l.name not in head
                  and not isinstance(l, keras.layers.BatchNormalization)]
    chosen = candidates[-count:] if count else []
    for layer in chosen:
        layer.trainable = True
    return [l.name for l in chosen]


def train_full(project: Any, base_name: str, base: Any, settings: FullSettings = FullSettings(),
               callbacks: list | None = None, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Full mode on a project: the head trained on augmented photos, then optional fine-tuning."""
    import keras

    require_trainable(project)
    started = time.perf_counter()
    examples = project.examples()
    names = sorted({e.label for e in examples})
    labels = np.array([names.index(e.label) for e in examples])
    photos = []
    for k, example in enumerate(examples):
        photos.append(resize(read_image(example.path.read_bytes(), example.source or "image"), 224))
        if progress:
            progress(k + 1, len(examples))
    x = np.stack(photos).astype(np.float32)
    train_index, val_index = split(labels, settings.validation, settings.seed)
    keras.utils.set_random_seed(settings.seed)
    trainer, whole = full_model(base_name, base, len(names), settings)
    weights = class_weights(labels[train_index], len(names)) if settings.class_weights else None
    validation = (x[val_index], labels[val_index]) if len(val_index) else None
    history: dict[str, list[float]] = {}

    def fit(epochs: int, rate: float, first: int) -> None:
        extra = list(callbacks or [])
        if validation is not None and settings.patience:
            extra.append(keras.callbacks.EarlyStopping(patience=settings.patience, restore_best_weights=True))
        trainer.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy",
                        metrics=["accuracy"])
        run = trainer.fit(x[train_index], labels[train_index], epochs=first + epochs, initial_epoch=first,
                          batch_size=settings.batch_size, class_weight=weights, validation_data=validation,
                          callbacks=extra, verbose=0, shuffle=True)
        for key, values in run.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)

    fit(settings.epochs, settings.learning_rate, 0)
    if settings.fine_tune_layers and settings.fine_tune_epochs:
        unfreeze_top(whole, settings.fine_tune_layers)
        fit(settings.fine_tune_epochs, settings.fine_tune_learning_rate, len(history.get("loss", [])))
    probabilities = np.asarray(whole.predict(x[val_index], verbose=0)) if len(val_index) \
        else np.zeros((0, len(names)))
    return Trained(None, names, history, val_index, probabilities, labels[val_index], settings, base_name,
                   time.perf_counter() - started, whole)


# ---- the flowers demo classifier (Grad-CAM's example on the pretrained page) ----------------
DEMO_HEAD = HeadSettings(pooling="average", hidden=0, dropout=0.2, epochs=60, learning_rate=1e-3, validation=0.0,
                         class_weights=False, normalise=False, mirror=False, patience=0)
"""A plain softmax on the last layer's average: the classic recipe, so the page explains the classic model."""


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
    features = describe("mobilenet_v2_notop", base, images, DEMO_HEAD.pooling, progress=progress)
    head, _ = fit_head(features, np.asarray(labels), len(folders), DEMO_HEAD)
    model = attach(base, head)
    partial = path.with_suffix(".partial.keras")
    model.save(partial)
    partial.replace(path)
    names_path.write_text("\n".join(folders))
    return model, list(folders)
