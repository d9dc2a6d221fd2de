"""Fast mode's head: a small classifier (optional hidden layer, dropout, softmax) on cached features."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vision_backend import engines
from vision_backend.imageops import l2_normalise
from vision_backend.transfer.bases import FeatureBase
from vision_backend.transfer.evaluate import Trained
from vision_backend.transfer.features import project_features


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


def _prepare(features: np.ndarray, settings: HeadSettings) -> np.ndarray:
    features = np.asarray(features, np.float32)
    return l2_normalise(features) if settings.normalise else features


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
    layers = engines.keras().layers
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
    keras = engines.keras()
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


def train_project(project: Any, base: FeatureBase, settings: HeadSettings = HeadSettings(),
                  callbacks: list | None = None, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Fast transfer learning on a project: cached features, a stratified validation split, the head."""
    require_trainable(project)
    started = time.perf_counter()
    features, labels, names, _ = project_features(project, base, settings.pooling, progress)
    if not settings.mirror:
        features = features[:, : features.shape[1] // 2]
    train_index, val_index = split(labels, settings.validation, settings.seed)
    head, history = fit_head(features[train_index], labels[train_index], len(names), settings,
                             (features[val_index], labels[val_index]), callbacks)
    probabilities = predict_head(head, features[val_index], settings) if len(val_index) else np.zeros((0, len(names)))
    return Trained(head, names, history, val_index, probabilities, labels[val_index], settings, base.name,
                   time.perf_counter() - started)


def cross_validate(features: np.ndarray, labels: np.ndarray, settings: HeadSettings, folds: int = 5) -> list[float]:
    """Stratified k-fold accuracies of the head on fixed features (the benchmark's figure)."""
    from sklearn.model_selection import StratifiedKFold

    scores = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=settings.seed).split(features, labels):
        head, _ = fit_head(features[train], labels[train], int(labels.max()) + 1, settings)
        scores.append(float((predict_head(head, features[test], settings).argmax(1) == labels[test]).mean()))
    return scores


