"""A trained head or model as one whole Keras model, raw pixels in, class probabilities out, and
predictions with it: the base's own scaling is inside, so Grad-CAM, ONNX and TFLite see one flat graph.

A saved model is loaded once per process (:func:`loaded`) and shared by every page, session, live stream,
batch lane and API call, each call under its own lock; its file's content key names it, so a model
retrained under the same name is another entry, never a stale one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import engines
from vision_backend.imageops import resize_square
from vision_backend.storage import SavedModel
from vision_backend.transfer.bases import FeatureBase
from vision_backend.transfer.evaluate import Trained
from vision_backend.transfer.features import image_features
from vision_backend.transfer.full import raw_input
from vision_backend.transfer.head import predict_head


def _pooled(layers: Any, maps: list[Any], taps: tuple[str, ...], pooling: str) -> Any:
    if pooling == "layers":
        pooled = [layers.UnitNormalization(name=f"l2_{t}")(layers.GlobalAveragePooling2D(name=f"pool_{t}")(m))
                  for t, m in zip(taps, maps)]
        return layers.Concatenate(name="layers")(pooled)
    if pooling == "flatten":
        return layers.Flatten(name="flatten")(maps[-1])
    return layers.GlobalAveragePooling2D(name="pool")(maps[-1])


def export_model(base: FeatureBase, trained: Trained) -> Any:
    """One flat Keras model, raw RGB 0..255 in, class probabilities out: the base's own scaling, the
    base, the pooling, L2 normalisation if used, and the head's layers (mirror averaging is a
    training-time trick and is left out)."""
    if trained.model is not None:
        return trained.model
    keras = engines.keras()
    layers = keras.layers
    settings = trained.settings
    inputs, scaled = raw_input(base)
    copy = base.rebuilt(scaled)
    taps = base.taps if settings.pooling == "layers" else base.taps[-1:]
    x = _pooled(layers, [copy.get_layer(t).output for t in taps], taps, settings.pooling)
    if settings.normalise:
        x = layers.UnitNormalization(name="l2_normalise")(x)
    for layer in trained.head.layers:  # the numpy head's weights in Keras layers of the same names
        dense = layers.Dense(layer.bias.shape[0], activation=layer.activation, name=layer.name)
        x = dense(x)
        dense.set_weights(layer.weights())
    return keras.Model(inputs, x, name=f"{base.name}_transfer")


KEEP_LOADED = 4
"""Saved models kept loaded at once (the newest used); each is a Keras model of 10-30 MB."""
_LOADED: OrderedDict[str, tuple[Any, threading.Lock]] = OrderedDict()
_LOADED_LOCK = threading.Lock()


def loaded(saved: SavedModel) -> tuple[Any, threading.Lock]:
    """The saved model loaded once per file and shared, with the lock every call to it takes (one Keras model
    is not called from two threads at once)."""
    with _LOADED_LOCK:
        if saved.key in _LOADED:
            _LOADED.move_to_end(saved.key)
            return _LOADED[saved.key]
    model = load_saved(saved.path)  # outside the registry's lock: loading takes a second
    with _LOADED_LOCK:
        entry = _LOADED.setdefault(saved.key, (model, threading.Lock()))
        while len(_LOADED) > KEEP_LOADED:
            _LOADED.popitem(last=False)
        return entry


def input_batch(model: Any, images: list[np.ndarray]) -> np.ndarray:
    """Photos as a whole (exported) model takes them: resized to its input, raw 0-255 pixels."""
    size = int(model.inputs[0].shape[1])
    return np.stack([resize_square(i, size) for i in images]).astype(np.float32)


def photo_probabilities(model: Any, images: list[np.ndarray]) -> np.ndarray:
    """Class probabilities from a whole (exported) model, called by whoever holds its lock."""
    return np.asarray(model.predict(input_batch(model, images), batch_size=32, verbose=0))


def saved_probabilities(saved: SavedModel, images: list[np.ndarray]) -> np.ndarray:
    """Class probabilities from a saved model (loaded once, shared, called under its lock)."""
    model, lock = loaded(saved)
    batch = input_batch(model, images)
    with lock:
        return np.asarray(model.predict_on_batch(batch) if len(batch) <= 32 else
                          model.predict(batch, batch_size=32, verbose=0))


def converted(saved: SavedModel, fmt: str, folder: Path, conversion: Callable[[Any, Path], Any]) -> Path:
    """The saved model converted to ``fmt`` (ONNX, TFLite) once, kept on this machine by its file's key."""
    target = Path(folder) / f"{saved.key.removesuffix('.keras')}.{fmt}"
    if not target.is_file():
        model, lock = loaded(saved)
        target.parent.mkdir(parents=True, exist_ok=True)
        with lock:
            conversion(model, target)  # the converters write whole files once (convert.py)
    return target


def predict_images(trained: Trained, base: FeatureBase, images: list[np.ndarray]) -> np.ndarray:
    """Probabilities for new photos, the way the model was trained (fast mode: mirror averaged)."""
    if trained.model is not None:
        return photo_probabilities(trained.model, images)
    settings = trained.settings
    features = image_features(base, images, settings.pooling, settings.mirror)
    return predict_head(trained.head, features, settings)


def save_trained(project: Any, base: FeatureBase, trained: Trained) -> SavedModel:
    """The trained model exported (raw pixels in) and kept with the project as ``<base>_<mode>``,
    with what the Predict and Export tabs show about it after a restart."""
    mode = "fast" if trained.head is not None else "full"
    meta = {"classes": trained.names, "validation_accuracy": trained.accuracy, "base": base.name, "mode": mode,
            "per_class": trained.per_class(), "examples": int(sum(project.counts().values())),
            "settings": trained.settings.__dict__}
    return project.save_model(f"{base.name}_{mode}", export_model(base, trained), meta)


def load_saved(path: Path) -> Any:
    """A model saved with a project (``.keras``), ready to predict and convert."""
    return engines.keras().models.load_model(Path(path), compile=False)


def prediction_rows(photos: list[str], probabilities: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """One row per photo: its name, the predicted class and every class's probability (the CSV's rows)."""
    return [{"photo": photo, "prediction": class_names[int(p.argmax())],
             **{c: round(float(v), 4) for c, v in zip(class_names, p)}} for photo, p in zip(photos, probabilities)]
