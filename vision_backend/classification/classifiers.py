"""ImageNet classifiers on three engines: Keras, ONNX Runtime and LiteRT (TFLite), each model one object.

A classifier knows its input size and its own preprocessing (VGG/ResNet subtract BGR means,
MobileNet/Inception scale to [-1, 1], DenseNet standardises, EfficientNet rescales inside the
model; Google's int8 TFLite takes raw bytes; the ONNX Zoo's crops and standardises), the engines
it runs on, and how its raw outputs become 1,000 probabilities in Keras' class order, so labels
come from one place (:mod:`~vision_backend.classification.imagenet`). Keras models convert once to
ONNX, and the TFLite model too; the loaded engine of each (classifier, engine) pair is a
:class:`Runner`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend import engines
from vision_backend.cards import KERAS_APPS, AssetFile, ModelCard, shared_file
from vision_backend.errors import SettingError
from vision_backend.classification import imagenet
from vision_backend.convert import converted_path, keras_to_onnx, tflite_to_onnx
from vision_backend.imageops import IMAGENET_MEAN, IMAGENET_STD, PixelScaling, centre_crop, resize_square, softmax
from vision_backend.model import Model

ENGINE_NAMES = {"keras": "Keras", "onnx": "ONNX Runtime", "tflite": "LiteRT (TFLite)"}


def engine_title(engine: str) -> str:
    """An engine's name as people read it (any other engine a model brings: its own key)."""
    return ENGINE_NAMES.get(engine, engine)


@dataclass
class Runner:
    """One classifier loaded on one engine: ``run(batch) -> raw outputs``; ``model`` is the engine object."""

    engine: str
    run: Callable[[np.ndarray], np.ndarray]
    model: Any
    load_s: float = 0.0


@dataclass(frozen=True)
class Prediction:
    """Top-k of one photo: (ImageNet id, label, probability) rows, best first."""

    top: list[tuple[str, str, float]]
    probabilities: np.ndarray
    ms: float
    classifier: str
    engine: str

    def to_record(self) -> dict[str, Any]:
        return {"model": self.classifier, "engine": self.engine, "ms": round(self.ms, 1),
                "top5": [{"label": label, "id": wnid, "probability": round(p, 4)} for wnid, label, p in self.top]}


def onnx_runner(session: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A batch through a session; one image at a time when the graph's batch is fixed at 1."""
    first = session.get_inputs()[0]
    if first.shape and first.shape[0] == 1:
        return lambda x: np.concatenate([session.run(None, {first.name: x[i : i + 1]})[0] for i in range(len(x))])
    return lambda x: session.run(None, {first.name: x})[0]


class ImageNetClassifier(Model):
    """A classifier of ImageNet's 1,000 classes. ``runtime(engine)`` is a :class:`Runner`."""

    engines: tuple[str, ...] = ("onnx",)
    size: int = 224
    group = "classifier"
    area_resize: bool = False
    """True where its preprocessing shrinks by area averaging, so a photo decoded at twice its input size
    gives the same input (batch work may then decode large JPEGs smaller)."""

    @property
    def batch_engine(self) -> str:
        """The engine workers run it on: the page's own, unless that is Keras (one per process, slow to copy),
        when its ONNX conversion runs instead (the same weights, converted once)."""
        return next((e for e in self.engines if e != "keras"), self.engines[0])

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        """A batch in the model's own input layout and scale."""
        raise NotImplementedError

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs -> (N, 1000) probabilities in Keras' ImageNet order."""
        return np.asarray(raw, np.float32)

    def default_variant(self) -> str:
        return self.engines[0]

    def variants(self) -> tuple[str, ...]:
        return self.engines

    def load(self, engine: str | None = None) -> Runner:
        engine = engine or self.engines[0]
        if engine not in self.engines:
            raise SettingError(f"{self.title} does not run on {engine_title(engine)}")
        started = time.perf_counter()
        runner = self.load_engine(engine)
        runner.load_s = time.perf_counter() - started
        return runner

    def load_engine(self, engine: str, threads: int | None = None) -> Runner:
        """The model on ``engine``; ``threads`` sizes the engine's pool (None: every core)."""
        raise NotImplementedError

    def load_worker(self, variant: str, threads: int) -> Runner:
        return self.load_engine(variant or self.batch_engine, threads)

    def file_mb(self) -> float:
        """Megabytes of the model's files on disk (its weights and the shared class index)."""
        return sum(path.stat().st_size for path in self.card.paths() if path.is_file()) / 1e6

    def classify(self, images: list[np.ndarray], engine: str | None = None, top: int = 5, runner: Runner | None = None,
                 prepared: np.ndarray | None = None) -> list[Prediction]:
        """Top-k for each photo (the one classify path: pages, batch lanes, the API); ``ms`` is the time per
        photo, preprocessing included. A worker passes its own ``runner`` and may have ``prepared`` the batch."""
        engine = runner.engine if runner is not None else engine or self.engines[0]
        started = time.perf_counter()
        batch = self.preprocess(images) if prepared is None else prepared
        with self.engine_for(runner, engine) as running:
            raw = running.run(batch)
        probabilities = self.probabilities(np.asarray(raw))
        ms = (time.perf_counter() - started) * 1000 / len(images)
        return [Prediction(rows, p, ms, self.name, engine)
                for rows, p in zip(imagenet.decode(probabilities, top), probabilities)]


class TFLiteQuantClassifier(ImageNetClassifier):
    """Google's int8 MobileNetV2: raw uint8 RGB in, uint8 probabilities (/256) of 1001 classes out."""

    short_title = "MobileNetV2 int8 (Google, TFLite)"
    roles = ("classify",)
    warm = True

    card = ModelCard(
        name="mobilenet_v2_quant_tflite", title="MobileNetV2 1.0/224 int8 (TFLite)", task="ImageNet classification",
        seedable=True,
        files=(shared_file("models/vision_lab/mobilenet_v2_1.0_224_quant.tflite",
                           "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776", 3_610_798,
                           "https://github.com/google-coral/test_data/raw/master/mobilenet_v2_1.0_224_quant.tflite"),
               imagenet.CLASS_INDEX.files[0]),
        licence="Apache-2.0 (Google)", input="224x224x3 uint8 RGB",
        preprocessing="resize to 224x224 (bilinear), no normalisation; output uint8/256, 1001 classes (0 = background)",
        params=3_538_984, accuracy="top-1 70.8% (float 71.8%), top-5 ~90% (TF-slim)",
    )
    engines = ("tflite", "onnx")

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        return np.stack([cv2.resize(i, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for i in images])

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return raw[:, 1:].astype(np.float32) / 256.0  # uint8 probabilities; drop "background"

    def load_engine(self, engine: str, threads: int | None = None) -> Runner:
        if engine == "tflite":
            interpreter = engines.tflite_interpreter(self.card.path(), threads)
            return Runner(engine, lambda x: self._invoke(interpreter, x), interpreter)
        session = engines.onnx_session(tflite_to_onnx(self.card.path(), converted_path(self.name)), threads=threads)
        return Runner(engine, onnx_runner(session), session)

    @staticmethod
    def _invoke(interpreter: Any, batch: np.ndarray) -> np.ndarray:
        """One image at a time (the file's batch dimension is fixed at 1)."""
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        rows = []
        for image in batch:
            interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out["index"])[0].copy())
        return np.stack(rows)


class ZooClassifier(ImageNetClassifier):
    """The ONNX Model Zoo's int8 MobileNetV2: centre crop, ImageNet mean/std, NCHW; logits out."""

    short_title = "MobileNetV2 int8 (ONNX Model Zoo)"
    warm = True

    card = ModelCard(
        name="mobilenetv2_int8_onnx", title="MobileNetV2 int8 (ONNX Model Zoo)", task="ImageNet classification",
        seedable=True,
        files=(shared_file("models/vision_lab/mobilenetv2-12-int8.onnx",
                           "cc028fe6cae7bc11a4ff53cfc9b79c920e8be65ce33a904ec3e2a8f66d77f95f", 3_655_033,
                           "https://github.com/onnx/models/raw/main/validated/vision/classification/mobilenet/model/"
                           "mobilenetv2-12-int8.onnx"),
               imagenet.CLASS_INDEX.files[0]),
        licence="Apache-2.0", input="Nx3x224x224 float32",
        preprocessing="short side 256, centre crop 224, /255, ImageNet mean/std, NCHW; logits",
        params=3_504_872, accuracy="top-1 68.3%, top-5 88.4% (ONNX Model Zoo)",
    )
    engines = ("onnx",)
    concurrent = True

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        crops = np.stack([centre_crop(i, self.size, 256) for i in images]).astype(np.float32) / 255.0
        return np.ascontiguousarray(((crops - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2))

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        return softmax(np.asarray(raw, np.float32), axis=1)

    def load_engine(self, engine: str, threads: int | None = None) -> Runner:
        session = engines.onnx_session(self.card.path(), threads=threads)
        return Runner(engine, onnx_runner(session), session)


class KerasApplication(ImageNetClassifier):
    """One of ``keras.applications`` with its ImageNet top, on Keras or (converted once) ONNX Runtime."""

    engines = ("keras", "onnx")
    area_resize = True  # resize_square averages areas
    application: Callable[[Any], Callable[..., Any]] = staticmethod(lambda apps: apps.MobileNetV2)
    """Picks the constructor from ``keras.applications`` (given the module, so Keras loads only when needed)."""
    scaling: PixelScaling = PixelScaling("tf")

    def preprocess(self, images: list[np.ndarray]) -> np.ndarray:
        return self.scaling(np.stack([resize_square(i, self.size) for i in images]))

    def pool_limit(self, variant: Any) -> int:
        """One Keras model at a time (VGG16 alone is 528 MB); its ONNX conversion may have one a core."""
        return 1 if variant == "keras" else super().pool_limit(variant)

    def keras_model(self) -> Any:
        return self.runtime("keras").model

    def load_engine(self, engine: str, threads: int | None = None) -> Runner:
        if engine == "keras":
            keras = engines.keras()
            model = self.application(keras.applications)(weights=str(self.card.path()), include_top=True)
            return Runner(engine, lambda x: np.asarray(model.predict_on_batch(x)), model)
        path = converted_path(self.name)
        if not path.is_file():  # converted once; later loads need neither Keras nor the Keras model
            keras_to_onnx(self.keras_model(), path)
        session = engines.onnx_session(path, threads=threads)
        return Runner(engine, onnx_runner(session), session)


def engine_agreement(predictions: list[Prediction]) -> list[dict[str, Any]]:
    """Whether engines running one model's weights agree on a photo: each engine against the next,
    per model on two or more engines (same top-1 class, largest probability difference).

    A conversion (Keras or TFLite to ONNX) keeps the weights, so anything beyond rounding
    (int8: 2/256) means a conversion or the preprocessing went wrong.
    """
    by_model: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        by_model.setdefault(prediction.classifier, []).append(prediction)
    return [{"model": CLASSIFIERS[name].title if name in CLASSIFIERS else name,
             "engines": f"{engine_title(a.engine)} vs {engine_title(b.engine)}",
             "same top-1": a.top[0][0] == b.top[0][0],
             "max probability difference": float(np.abs(a.probabilities - b.probabilities).max())}
            for name, same in by_model.items() for a, b in zip(same, same[1:])]


def _keras_card(name: str, title: str, file: str, url: str, md5: str | None, size: int | None, **card: Any) -> ModelCard:
    return ModelCard(name=name, title=f"{title} (Keras)", task="ImageNet classification",
                     files=(AssetFile(f"models/{file}", url, md5, size), imagenet.CLASS_INDEX.files[0]), **card)


DECK_APPLICATIONS = (
    KerasApplication(short_title="MobileNetV2", application=lambda apps: apps.MobileNetV2, roles=("grad-cam",), card=_keras_card(
        "mobilenet_v2", "MobileNetV2 1.0/224 with ImageNet top", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
        KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", None, None,
        licence="Apache-2.0", input="224x224x3", preprocessing="x/127.5 - 1", params=3_538_984,
        accuracy="top-1 71.3%, top-5 90.1%", note="Keras publishes no hash for this file.")),
    KerasApplication(short_title="VGG16", application=lambda apps: apps.VGG16, scaling=PixelScaling("caffe"), card=_keras_card(
        "vgg16", "VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b",
        553_467_096, licence="CC BY 4.0 (Oxford VGG)", input="224x224x3",
        preprocessing="caffe: RGB->BGR, minus ImageNet means", params=138_357_544,
        accuracy="top-1 71.3%, top-5 92.7% (the deck; Simonyan & Zisserman 2014: 92.7%)")),
    KerasApplication(short_title="ResNet50", application=lambda apps: apps.ResNet50, scaling=PixelScaling("caffe"), card=_keras_card(
        "resnet50", "ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
        KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "2cb95161c43110f7111970584f804107",
        102_967_424, licence="MIT (Kaiming He)", input="224x224x3",
        preprocessing="caffe: RGB->BGR, minus ImageNet means", params=25_636_712,
        accuracy="top-1 74.9%, top-5 92.1% (Keras)")),
)
"""The deck's Keras models (MobileNetV2 with its top, VGG16, ResNet50), fetched on first use."""
MORE_APPLICATIONS = (
    KerasApplication(short_title="DenseNet121", application=lambda apps: apps.DenseNet121, scaling=PixelScaling("torch"), card=_keras_card(
        "densenet121", "DenseNet121", "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
        KERAS_APPS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5", "9d60b8095a5708f2dcce2bca79d332c7",
        None, licence="BSD-3-Clause (Keras weights)", input="224x224x3",
        preprocessing="torch: /255, ImageNet mean/std", params=8_062_504, accuracy="top-1 75.0%, top-5 92.3% (Keras)")),
    KerasApplication(short_title="EfficientNetB0", application=lambda apps: apps.EfficientNetB0, scaling=PixelScaling("none"), card=_keras_card(
        "efficientnet_b0", "EfficientNetB0", "efficientnetb0.h5",
        "https://storage.googleapis.com/keras-applications/efficientnetb0.h5", "902e53a9f72be733fc0bcb005b3ebbac", None,
        licence="Apache-2.0", input="224x224x3", preprocessing="none (rescaling is inside the model)",
        params=5_330_571, accuracy="top-1 77.1%, top-5 93.3% (Keras)")),
    KerasApplication(short_title="InceptionV3", application=lambda apps: apps.InceptionV3, size=299, card=_keras_card(
        "inception_v3", "InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        KERAS_APPS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "9a0d58056eeedaa3f26cb7ebd46da564", None, licence="Apache-2.0", input="299x299x3",
        preprocessing="tf: x/127.5 - 1", params=23_851_784, accuracy="top-1 77.9%, top-5 93.7% (Keras)")),
    KerasApplication(short_title="NASNetMobile", application=lambda apps: apps.NASNetMobile, card=_keras_card(
        "nasnet_mobile", "NASNetMobile", "NASNet-mobile.h5", KERAS_APPS + "nasnet/NASNet-mobile.h5",
        "020fb642bf7360b370c678b08e0adf61", None, licence="Apache-2.0", input="224x224x3",
        preprocessing="tf: x/127.5 - 1", params=5_326_716, accuracy="top-1 74.4%, top-5 91.9% (Keras)")),
    KerasApplication(short_title="Xception", application=lambda apps: apps.Xception, size=299, card=_keras_card(
        "xception", "Xception", "xception_weights_tf_dim_ordering_tf_kernels.h5",
        KERAS_APPS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5", "0a58e3b7378bc2990ea3b43d5981f1f6",
        None, licence="MIT (Keras weights)", input="299x299x3", preprocessing="tf: x/127.5 - 1",
        params=22_910_480, accuracy="top-1 79.0%, top-5 94.5% (Keras)")),
)
"""More of Keras's ImageNet models, fetched on first use."""

CLASSIFIERS: dict[str, ImageNetClassifier] = {c.name: c for c in (
    TFLiteQuantClassifier(), ZooClassifier(), *DECK_APPLICATIONS, *MORE_APPLICATIONS)}
"""Every ImageNet classifier by card name; the two int8 MobileNetV2s run here, the Keras ones once fetched."""
