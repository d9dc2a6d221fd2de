"""Grad-CAM (Selvaraju et al. 2017): where a Keras classifier looked for the class it names."""

from __future__ import annotations

from typing import Any

import numpy as np

from vision_backend import engines
from vision_backend.convolution import is_spatial


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
