"""Full mode: the photos themselves, randomly flipped, turned, zoomed and brightened every epoch, go
through a copy of the base; the base's top layers can then be fine-tuned at a low rate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vision_backend import engines
from vision_backend.imageops import resize_square
from vision_backend.intake import read_image_file
from vision_backend.model import Param
from vision_backend.transfer.bases import FeatureBase
from vision_backend.transfer.evaluate import Trained
from vision_backend.transfer.head import _head_layers, class_weights, require_trainable, split


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


PARAMS = (
    Param("pooling", "Pooling", FullSettings.pooling, options=("average", "flatten")),
    Param("hidden", "Hidden units", FullSettings.hidden, options=(0, 32, 64, 100, 128, 256)),
    Param("dropout", "Dropout", FullSettings.dropout, 0.0, 0.7, 0.05),
    Param("epochs", "Epochs (head)", FullSettings.epochs, 1, 50, 1),
    Param("learning_rate", "Learning rate", FullSettings.learning_rate, options=(1e-4, 3e-4, 1e-3, 3e-3)),
    Param("validation", "Validation share", FullSettings.validation, 0.1, 0.4, 0.05),
    Param("batch_size", "Batch size", FullSettings.batch_size, options=(4, 8, 16, 32)),
    Param("augment", "Augment (flip, turn, zoom, brightness)", FullSettings.augment),
    Param("fine_tune_layers", "Fine-tune the top N base layers", FullSettings.fine_tune_layers, 0, 40, 1,
          help="0 = the base stays frozen"),
    Param("fine_tune_epochs", "Fine-tuning epochs", FullSettings.fine_tune_epochs, 1, 20, 1),
    Param("fine_tune_learning_rate", "Fine-tuning rate", FullSettings.fine_tune_learning_rate,
          options=(1e-6, 1e-5, 1e-4)),
    Param("class_weights", "Class weights", FullSettings.class_weights),
)
"""Full mode's settings as data: the page builds its widgets from them."""


def augmentation() -> Any:
    keras = engines.keras()
    layers = keras.layers
    return keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.05), layers.RandomZoom(0.15),
                             layers.RandomBrightness(0.2, value_range=(0, 255))], name="augment")


def raw_input(base: FeatureBase) -> tuple[Any, Any]:
    """Raw RGB 0..255 in (``base.size`` square), scaled the base's own way by Keras layers."""
    inputs = engines.keras().Input((base.size, base.size, 3), name="rgb_0_255")
    return inputs, base.scaling.keras_layers(inputs)


def full_model(base: FeatureBase, classes: int, settings: FullSettings) -> tuple[Any, Any]:
    """(model to train: augmentation then the whole model; the whole model alone, for use and export)."""
    keras = engines.keras()
    layers = keras.layers
    inputs, scaled = raw_input(base)
    copy = base.rebuilt(scaled)
    for layer in copy.layers:
        layer.trainable = False
    x = layers.Flatten(name="flatten")(copy.output) if settings.pooling == "flatten" \
        else layers.GlobalAveragePooling2D(name="pool")(copy.output)
    whole = keras.Model(inputs, _head_layers(x, classes, settings.hidden, settings.dropout), name=f"{base.name}_full")
    raw = keras.Input((base.size, base.size, 3), name="photo")
    trainer = keras.Model(raw, whole(augmentation()(raw) if settings.augment else raw), name="trainer")
    return trainer, whole


def unfreeze_top(whole: Any, count: int) -> list[str]:
    """Make the base's top ``count`` layers with weights trainable (BatchNorm stays frozen: its
    statistics from millions of photos beat those of a small batch). Returns their names."""
    keras = engines.keras()
    head = {"hidden", "classes", "pool", "flatten"}
    candidates = [l for l in whole.layers if l.weights and l.name not in head
                  and not isinstance(l, keras.layers.BatchNormalization)]
    chosen = candidates[-count:] if count else []
    for layer in chosen:
        layer.trainable = True
    return [l.name for l in chosen]


def read_photos(examples: list[Any], size: int, progress: Callable[[int, int], None] | None) -> np.ndarray:
    photos = []
    for k, example in enumerate(examples):
        photos.append(resize_square(read_image_file(example.path), size))
        if progress:
            progress(k + 1, len(examples))
    return np.stack(photos).astype(np.float32)


def train_full(project: Any, base: FeatureBase, settings: FullSettings = FullSettings(),
               callbacks: list | None = None, progress: Callable[[int, int], None] | None = None) -> Trained:
    """Full mode on a project: the head trained on augmented photos, then optional fine-tuning."""
    keras = engines.keras()
    require_trainable(project)
    started = time.perf_counter()
    examples = project.examples()
    names = sorted({e.label for e in examples})
    labels = np.array([names.index(e.label) for e in examples])
    x = read_photos(examples, base.size, progress)
    train_index, val_index = split(labels, settings.validation, settings.seed)
    keras.utils.set_random_seed(settings.seed)
    trainer, whole = full_model(base, len(names), settings)
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
    probabilities = np.asarray(whole.predict(x[val_index], verbose=0)) if len(val_index) else np.zeros((0, len(names)))
    return Trained(None, names, history, val_index, probabilities, labels[val_index], settings, base.name,
                   time.perf_counter() - started, whole)
