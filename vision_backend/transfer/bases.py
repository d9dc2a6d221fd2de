"""Frozen bases for transfer learning: ImageNet networks without their top, each one model object.

A base knows its Keras application, its own pixel scaling (as numpy for features and as Keras
layers for an exported model, so the two cannot disagree), and the layers whose pooled maps make
the "layers" features. ``feature_maps`` runs photos through it on ONNX Runtime (the base converted
once, its scaling inside, kept under ``$VISION_LAB_HOME/onnx``): about 3x Keras's speed on a batch, the
same maps to 1e-4. ``rebuilt`` makes a trainable Keras copy on a new input for full mode, export and
Grad-CAM, which need the Keras graph; ``keras_feature_maps`` is the Keras path the ONNX one is checked
against.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend import engines, paths
from vision_backend.cards import KERAS_APPS, AssetFile, ModelCard, shared_file
from vision_backend.imageops import PixelScaling, resize_square
from vision_backend.model import Model
from vision_backend.transfer.onnx_base import Lanes


class FeatureBase(Model):
    """An ImageNet network without its top: photos in, feature maps of chosen layers out."""

    application: Callable[[Any], Callable[..., Any]] = staticmethod(lambda apps: apps.MobileNetV2)
    options: dict[str, Any] = {}
    scaling: PixelScaling = PixelScaling("tf")
    size: int = 224
    taps: tuple[str, ...] = ()
    """Layers whose pooled maps make the "layers" features, the base's output last."""
    group = "base"
    per_worker = False

    @property
    def features_key(self) -> str:
        """What names this base's cached features: its card, pixel scaling and input size, so a base
        with other preprocessing (or a test's variant of a registered one) never reads another's vectors."""
        return f"{self.name}_{self.scaling.mode}_{self.size}"

    def load(self) -> Any:
        keras = engines.keras()
        return self.application(keras.applications)(weights=str(self.card.path()), include_top=False,
                                                    input_shape=(self.size, self.size, 3), **self.options)

    def probe(self, taps: tuple[str, ...]) -> Any:
        """The base with the outputs of ``taps``; built once per set of taps (a new model retraces)."""
        with self._lock:
            probes = self._loaded.setdefault("probes", {})
            if taps not in probes:
                base = self.runtime()
                probes[taps] = engines.keras().Model(base.inputs, [base.get_layer(t).output for t in taps])
            return probes[taps]

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        return self.scaling(self.resized(images))

    def resized(self, images: list[np.ndarray], size: int | None = None) -> np.ndarray:
        """Photos as the ONNX graph takes them: resized square, raw 0-255 RGB, float32 (N, size, size, 3)."""
        size = size or self.size
        batch = np.empty((len(images), size, size, 3), np.float32)
        for row, image in zip(batch, images):
            row[...] = resize_square(image, size)
        return batch

    def feature_maps(self, images: list[np.ndarray], taps: tuple[str, ...],
                     size: int | None = None) -> list[np.ndarray]:
        """The (N, H, W, C) maps of ``taps`` for a batch of photos (resized to ``size``, the base's by default),
        on ONNX Runtime, one lane a core (``onnx_base.Lanes``)."""
        return self.feature_lanes(taps, size).run(list(taps), images, lambda part: self.resized(part, size))

    def keras_feature_maps(self, images: list[np.ndarray], taps: tuple[str, ...]) -> list[np.ndarray]:
        """The same maps through the Keras base (at its own size): what the ONNX graph is checked against."""
        probe = self.probe(taps)
        with self._lock:
            outputs = probe.predict_on_batch(self.preprocess(images))
        return [np.asarray(m) for m in (outputs if isinstance(outputs, (list, tuple)) else [outputs])]

    def feature_lanes(self, taps: tuple[str, ...], size: int | None = None) -> Lanes:
        """The ONNX Runtime sessions of :meth:`features_graph`, built once per process."""
        key = (tuple(taps), size or self.size)
        with self._lock:
            built = self._loaded.setdefault("onnx", {})
            if key not in built:
                built[key] = Lanes(self.features_graph(*key).read_bytes())
            return built[key]

    def features_graph(self, taps: tuple[str, ...], size: int | None = None) -> Path:
        """The base as ONNX (raw 0-255 RGB ``image`` (N, size, size, 3) in, one output per tap, named by it),
        converted once from Keras and kept, keyed by :attr:`features_key`, the size and the taps."""
        size = size or self.size
        key = self.features_key if size == self.size else f"{self.features_key}_at{size}"
        digest = hashlib.sha256("|".join(taps).encode()).hexdigest()[:12]
        path = paths.app_dir("onnx", "features") / f"{key}_{digest}.onnx"
        with self._lock:
            if not path.is_file():
                from vision_backend.transfer.onnx_base import convert_base  # onnx and tf2onnx: only to convert

                convert_base(self, tuple(taps), size, path)
        return path

    def rebuilt(self, tensor: Any) -> Any:
        """A copy of the base built on ``tensor`` (one flat graph, not a nested model) with its weights.

        Flat, so Grad-CAM and the ONNX/TFLite converters see every layer; a copy, so training it
        never touches the shared, cached base. Weights are copied layer by layer, by name: built on a
        tensor, the copy also holds the layers that made the tensor (a caffe or torch scaling has
        weights of its own), so the two weight lists do not line up.
        """
        keras = engines.keras()
        copy = self.application(keras.applications)(input_tensor=tensor, weights=None, include_top=False,
                                                    **self.options)
        for layer in self.runtime().layers:
            if layer.weights:
                copy.get_layer(layer.name).set_weights(layer.get_weights())
        return copy


MOBILENET_V2 = FeatureBase(
    card=ModelCard(
        name="mobilenet_v2_notop", title="MobileNetV2 1.0/224 base, no top (Keras)", task="ImageNet features",
        seedable=True,
        files=(AssetFile("models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                         KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                         seed_hash="7465b5f65724569df0bcd4e04f99bb73cae85506365dcf804b25eec646a801ea"),),
        licence="Apache-2.0", input="224x224x3", preprocessing="mobilenet_v2.preprocess_input: x/127.5 - 1",
        params=2_257_984, accuracy="top-1 71.3%, top-5 90.1% (Keras, with top)",
        note="The shared copy holds Google's TF-slim ImageNet weights in Keras' h5 layout (its own sha256); "
             "Keras publishes no hash for its download.",
    ),
    short_title="MobileNetV2 1.0/224 (ImageNet)", application=lambda apps: apps.MobileNetV2,
    roles=("transfer base",), warm=True,
    taps=("block_12_add", "block_14_add", "block_16_project_BN", "out_relu"),
)
MOBILENET_V1_025 = FeatureBase(
    card=ModelCard(
        name="mobilenet_v1_025_notop", title="MobileNet v1 alpha 0.25/224 base, no top (Keras)",
        task="ImageNet features", seedable=True,
        files=(shared_file("models/mobilenet_2_5_224_tf_no_top.h5",
                           "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf", 2_108_140,
                           KERAS_APPS + "mobilenet/mobilenet_2_5_224_tf_no_top.h5"),),
        licence="Apache-2.0", input="224x224x3", preprocessing="mobilenet.preprocess_input: x/127.5 - 1",
        params=218_544, accuracy="top-1 41.5%, top-5 66.6% (Keras, with top)", note="Teachable Machine's base.",
    ),
    short_title="MobileNet v1 0.25/224, Teachable Machine's base", application=lambda apps: apps.MobileNet,
    roles=("teachable machine base",),
    options={"alpha": 0.25},
    taps=("conv_pw_11_relu", "conv_pw_12_relu", "conv_pw_13_relu"),
)

BASES: dict[str, FeatureBase] = {b.name: b for b in (MOBILENET_V2, MOBILENET_V1_025)}
"""Every frozen base by card name; MobileNetV2 is the default, MobileNet v1 0.25 Teachable Machine's."""
