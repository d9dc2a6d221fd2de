"""ImageNet classification with pretrained CNNs on three engines: Keras, ONNX Runtime and TFLite.

A :class:`Classifier` names a registered model, its input size and preprocessing (each
family has its own: VGG/ResNet subtract BGR means, MobileNet/Inception scale to [-1, 1],
DenseNet standardises, EfficientNet rescales inside the model), and the engines it runs on.
Keras models convert once to ONNX (``keras_to_onnx``) and the TFLite model too
(``tflite_to_onnx``); converted files live under ``$VISION_LAB_HOME/onnx``. Every engine's
output becomes 1000 ImageNet probabilities in Keras' class order, so labels come from one
place: Keras' ``decode_predictions`` reading ``imagenet_class_index.json`` from the cache.
:func:`grad_cam` shows where a Keras classifier looked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend import models, paths

ENGINES = ("keras", "onnx", "tflite")


# ---- preprocessing -------------------------------------------------------------------------
def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Plain resize to a square (what Keras' ``load_img(target_size=...)`` does)."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if min(image.shape[:2]) > size
                      else cv2.INTER_LINEAR)


def centre_crop(image: np.ndarray, size: int, short_side: int) -> np.ndarray:
    """Resize the short side, then cut the centre square (the torchvision / ONNX Zoo way)."""
    height, width = image.shape[:2]
    scale = short_side / min(height, width)
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top : top + size, left : left + size]


def keras_preprocess(app: str) -> Callable[[np.ndarray], np.ndarray]:
    """The application's own ``preprocess_input`` (float32, batch of HWC RGB 0..255)."""
    import keras

    module = {"VGG16": "vgg16", "ResNet50": "resnet50", "MobileNetV2": "mobilenet_v2", "MobileNet": "mobilenet",
              "DenseNet121": "densenet", "EfficientNetB0": "efficientnet", "InceptionV3": "inception_v3",
              "NASNetMobile": "nasnet", "Xception": "xception"}[app]
    function = getattr(keras.applications, module).preprocess_input
    return lambda batch: np.asarray(function(batch.astype(np.float32)), np.float32)


ZOO_MEAN, ZOO_STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


# ---- classifiers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Classifier:
    name: str
    title: str
    model: str  # registry card
    engines: tuple[str, ...]
    size: int
    family: str  # "keras", "tflite_quant" or "onnx_zoo": how inputs and outputs look

    @property
    def card(self) -> models.ModelCard:
        return models.card(self.model)

    def prepare(self, images: list[np.ndarray]) -> np.ndarray:
        """A batch in the model's own input layout and scale."""
        if self.family == "tflite_quant":
            return np.stack([cv2.resize(i, (self.size, self.size), interpolation=cv2.INTER_LINEAR) for i in images])
        if self.family == "onnx_zoo":
            crops = np.stack([centre_crop(i, self.size, 256) for i in images]).astype(np.float32) / 255.0
            return np.ascontiguousarray(((crops - ZOO_MEAN) / ZOO_STD).transpose(0, 3, 1, 2))
        return keras_preprocess(self.card.options["app"])(np.stack([resize(i, self.size) for i in images]))

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Raw outputs -> (N, 1000) probabilities in Keras' ImageNet order."""
        if self.family == "tflite_quant":
            return raw[:, 1:].astype(np.float32) / 256.0  # uint8 probabilities; drop "background"
        if self.family == "onnx_zoo":
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return np.asarray(raw, np.float32)


def _keras(name: str, app_title: str, size: int = 224) -> Classifier:
    return Classifier(name, app_title, name, ("keras", "onnx"), size, "keras")


CLASSIFIERS: dict[str, Classifier] = {c.name: c for c in (
    Classifier("mobilenet_v2_quant_tflite", "MobileNetV2 int8 (Google, TFLite)", "mobilenet_v2_quant_tflite",
               ("tflite", "onnx"), 224, "tflite_quant"),
    Classifier("mobilenetv2_int8_onnx", "MobileNetV2 int8 (ONNX Model Zoo)", "mobilenetv2_int8_onnx",
               ("onnx",), 224, "onnx_zoo"),
    _keras("mobilenet_v2", "MobileNetV2"),
    _keras("vgg16", "VGG16"),
    _keras("resnet50", "ResNet50"),
    _keras("densenet121", "DenseNet121"),
    _keras("efficientnet_b0", "EfficientNetB0"),
    _keras("inception_v3", "InceptionV3", 299),
    _keras("nasnet_mobile", "NASNetMobile"),
    _keras("xception", "Xception", 299),
)}

# The deck's ILSVRC table: top-5 error of the winners (and VGG, the runner-up everyone uses).
ILSVRC_TOP5_ERROR = [
    ("2010 · NEC-UIUC (SIFT + SVM)", 28.2), ("2011 · XRCE (Fisher vectors)", 25.8), ("2012 · AlexNet", 16.4),
    ("2013 · ZFNet", 11.7), ("2014 · VGG16 (2nd)", 7.3), ("2014 · GoogLeNet", 6.7), ("2015 · ResNet-152", 3.6),
    ("2016 · Trimps-Soushen", 3.0), ("2017 · SENet", 2.3), ("human (Karpathy)", 5.1),
]


# ---- engines -------------------------------------------------------------------------------
def converted_path(name: str) -> Path:
    return paths.app_dir("onnx") / f"{name}.onnx"


def keras_to_onnx(model: Any, path: Path) -> Path:
    """Export a Keras model to ONNX once (Keras 3 ``model.export(format="onnx")``, via tf2onnx)."""
    if not path.is_file():
        shape = (1,) + tuple(model.inputs[0].shape[1:])
        model.predict_on_batch(np.zeros(shape, np.float32))  # export needs a model that has been called
        partial = path.with_suffix(".partial.onnx")
        model.export(str(partial), format="onnx", verbose=False)
        partial.replace(path)
    return path


def keras_to_tflite(model: Any, path: Path) -> Path:
    """Convert a Keras model to a float TFLite flatbuffer once (TensorFlow's converter)."""
    if not path.is_file():
        import tensorflow as tf

        partial = path.with_suffix(".partial.tflite")
        partial.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        partial.replace(path)
    return path


def tflite_to_onnx(tflite_path: Path, path: Path) -> Path:
    """Convert a TFLite flatbuffer to ONNX with tf2onnx (quantised ops become QLinear/DequantizeLinear)."""
    if not path.is_file():
        import tf2onnx

        partial = path.with_suffix(".partial.onnx")
        tf2onnx.convert.from_tflite(str(tflite_path), output_path=str(partial))
        partial.replace(path)
    return path


@dataclass
class Runner:
    """One classifier on one engine, loaded and ready: ``run(batch) -> raw outputs``."""

    classifier: Classifier
    engine: str
    run: Callable[[np.ndarray], np.ndarray]
    model: Any = None
    load_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def load_runner(classifier: Classifier, engine: str, keras_model: Any = None) -> Runner:
    """Load ``classifier`` on ``engine`` (converting to ONNX on first use)."""
    if engine not in classifier.engines:
        raise ValueError(f"{classifier.title} does not run on {engine}")
    started = time.perf_counter()
    card = classifier.card
    card.require()
    if classifier.family == "keras":
        model = keras_model if keras_model is not None else models.load(card.name)
        if engine == "keras":
            runner = Runner(classifier, engine, lambda x: np.asarray(model.predict_on_batch(x)), model)
        else:
            session = models.onnx_session(keras_to_onnx(model, converted_path(card.name)))
            runner = Runner(classifier, engine, _onnx_run(session), session)
    elif classifier.family == "tflite_quant" and engine == "tflite":
        interpreter = models.load(card.name)
        runner = Runner(classifier, engine, lambda x: _tflite_run(interpreter, x), interpreter)
    else:
        path = card.path() if classifier.family == "onnx_zoo" else tflite_to_onnx(card.path(), converted_path(card.name))
        session = models.onnx_session(path)
        runner = Runner(classifier, engine, _onnx_run(session), session)
    runner.load_s = time.perf_counter() - started
    return runner


def _onnx_run(session: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A batch through a session; one image at a time when the graph's batch is fixed at 1."""
    first = session.get_inputs()[0]
    if first.shape and first.shape[0] == 1:
        return lambda x: np.concatenate([session.run(None, {first.name: x[i : i + 1]})[0] for i in range(len(x))])
    return lambda x: session.run(None, {first.name: x})[0]


def _tflite_run(interpreter: Any, batch: np.ndarray) -> np.ndarray:
    """TFLite runs one image at a time here (the file's batch dimension is fixed at 1)."""
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in batch:
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(rows)


# ---- results -------------------------------------------------------------------------------
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


def decode(probabilities: np.ndarray, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Keras' ``decode_predictions`` on (N, 1000) probabilities, offline from the cached class index."""
    import keras

    models.card("imagenet_class_index").require()
    decoded = keras.applications.imagenet_utils.decode_predictions(np.asarray(probabilities, np.float32), top=top)
    return [[(str(w), str(n), float(p)) for w, n, p in row] for row in decoded]


def imagenet_labels() -> list[str]:
    """The 1000 labels in Keras' order (from the same cached class index)."""
    index = models.load("imagenet_class_index")
    return [index[str(i)][1] for i in range(1000)]


def classify(runner: Runner, images: list[np.ndarray], top: int = 5) -> list[Prediction]:
    """Top-k for each photo; ``ms`` is the engine's time per photo (preprocessing included)."""
    started = time.perf_counter()
    batch = runner.classifier.prepare(images)
    with runner.lock:  # interpreters and sessions are shared by every browser session
        raw = runner.run(batch)
    probabilities = runner.classifier.probabilities(np.asarray(raw))
    ms = (time.perf_counter() - started) * 1000 / len(images)
    return [Prediction(rows, p, ms, runner.classifier.name, runner.engine)
            for rows, p in zip(decode(probabilities, top), probabilities)]


# ---- Grad-CAM ------------------------------------------------------------------------------
def last_conv_layer(model: Any) -> str:
    """The last layer with a spatial (N, H, W, C) output: where Grad-CAM looks."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None) is not None and layer.output.shape
        if shape is not None and len(shape) == 4 and shape[1] and shape[1] > 1:
            return layer.name
    raise ValueError("this model has no convolutional feature map")


def grad_cam(model: Any, batch: np.ndarray, class_index: int | None = None, layer: str | None = None
             ) -> tuple[np.ndarray, int]:
    """Grad-CAM (Selvaraju et al. 2017): feature maps weighted by the mean gradient of the class score.

    The score is the log-probability (not the probability) so a confident prediction's
    gradient does not vanish in the softmax. Returns the map in [0, 1] at the layer's
    resolution and the class it explains (the top class unless given).
    """
    import keras
    import tensorflow as tf

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
