"""Grad-CAM (Selvaraju et al. 2017): where a Keras classifier looked for the class it names.

Grad-CAM needs gradients through the Keras graph, so it explains Keras models only: an ImageNet
application, the flowers demo, or a model saved in a transfer-learning project. Each takes its
input differently, so each comes as an :class:`Explainable` that knows how a photo becomes its input.
Models without gradients (int8, TFLite, ONNX) are explained without them by
:mod:`~vision_backend.classification.saliency`, which also scores every map (deletion / insertion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend import engines
from vision_backend.classification import imagenet
from vision_backend.convolution import is_spatial
from vision_backend.transfer.bases import MOBILENET_V2
from vision_backend.transfer.demo import demo_classifier


def last_conv_layer(model: Any) -> str:
    """The last layer with a spatial (N, H, W, C) output: where Grad-CAM looks."""
    for layer in reversed(model.layers):
        if is_spatial(layer):
            return layer.name
    raise ValueError("this model has no convolutional feature map")


def grad_cam(model: Any, batch: np.ndarray, class_index: int | None = None, layer: str | None = None
             ) -> tuple[np.ndarray, int]:
    """Grad-CAM (Selvaraju et al. 2017): feature maps weighted by the mean gradient of the class score.

    The score is the log-probability (not the probability) so a confident prediction's
    gradient does not vanish in the softmax. Returns the map in [0, 1] at the layer's
    resolution and the class it explains (the top class unless given).
    """
    keras, tf = engines.keras(), engines.tensorflow()
    name = layer or last_conv_layer(model)
    probe = keras.Model(model.inputs, [model.get_layer(name).output, model.outputs[0]])
    inputs = tf.convert_to_tensor(batch[:1], tf.float32)
    with tf.GradientTape() as tape:
        maps, probabilities = probe(inputs, training=False)
        if class_index is None:
            class_index = int(tf.argmax(probabilities[0]))
        score = tf.math.log(probabilities[:, class_index] + 1e-9)
    gradients = tape.gradient(score, maps)
    weights = tf.reduce_mean(gradients, axis=(1, 2))
    cam = tf.nn.relu(tf.reduce_sum(maps * weights[:, None, None, :], axis=-1))[0].numpy()
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam), class_index


@dataclass(frozen=True)
class Explainable:
    """A Keras classifier with how a photo becomes its input and the names of its classes."""

    model: Any
    prepare: Callable[[list[np.ndarray]], np.ndarray]
    class_names: list[str]
    lock: Any = field(default_factory=threading.RLock)
    """Held for every call: the model may be shared by every session (one Keras model, one caller at a time)."""

    def batch(self, photo: np.ndarray) -> np.ndarray:
        return self.prepare([photo])

    def top(self, batch: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
        """The ``k`` most probable classes of the batch's first photo: (class index, probability)."""
        with self.lock:
            probabilities = np.asarray(self.model.predict_on_batch(batch))[0]
        return [(int(i), float(probabilities[i])) for i in np.argsort(-probabilities, kind="stable")[:k]]

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) for RGB photos, 32 a call under the lock: what the gradient-free methods and the
        deletion / insertion scores of :mod:`~vision_backend.classification.saliency` ask of a classifier."""
        rows = []
        for start in range(0, len(images), 32):
            batch = self.prepare(list(images[start : start + 32]))
            with self.lock:
                rows.append(np.asarray(self.model.predict_on_batch(batch)))
        return np.concatenate(rows)

    def explain(self, batch: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
        with self.lock:
            return grad_cam(self.model, batch, class_index)

    @property
    def layer(self) -> str:
        return last_conv_layer(self.model)


def imagenet_explainable(classifier: Any) -> Explainable:
    """A Keras ImageNet application with its own pixel scaling and Keras' 1,000 labels."""
    return Explainable(classifier.keras_model(), classifier.preprocess, imagenet.labels(), classifier.turn("keras"))


def demo_explainable(progress: Callable[[int, int], None] | None = None) -> Explainable:
    """The flowers demo (trained once on first use): it takes MobileNetV2's scaled input."""
    model, names = demo_classifier(progress)
    return Explainable(model, MOBILENET_V2.preprocess, names)


def saved_explainable(saved: Any) -> Explainable:
    """A model saved in a transfer-learning project (a ``SavedModel``, loaded once and shared): raw 0-255 RGB
    in (its base's scaling is a layer inside it), class names in its metadata."""
    from vision_backend.transfer.export import input_batch, loaded

    model, lock = loaded(saved)
    names = saved.meta.get("classes") or [f"class {i}" for i in range(int(model.outputs[0].shape[-1]))]
    return Explainable(model, lambda images: input_batch(model, images), list(names), lock)
