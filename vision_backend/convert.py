"""Converting between engines: Keras to ONNX and to TFLite, TFLite to ONNX. Each file is written once,
atomically, and reused after."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vision_backend import engines, paths
from vision_backend.storage import atomic_path


def converted_path(name: str) -> Path:
    """Where a registered model converted to ONNX is kept (shared by everyone: it is derived data)."""
    return paths.app_dir("onnx") / f"{name}.onnx"


def keras_to_onnx(model: Any, path: Path) -> Path:
    """Export a Keras model to ONNX once (Keras 3 ``model.export(format="onnx")``, via tf2onnx)."""
    if not path.is_file():
        shape = (1,) + tuple(model.inputs[0].shape[1:])
        model.predict_on_batch(np.zeros(shape, np.float32))  # export needs a model that has been called
        with atomic_path(path, ".onnx") as temp:
            model.export(str(temp), format="onnx", verbose=False)
    return path


def keras_to_tflite(model: Any, path: Path) -> Path:
    """Convert a Keras model to a float TFLite flatbuffer once (TensorFlow's converter)."""
    if not path.is_file():
        tf = engines.tensorflow()
        flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        with atomic_path(path) as temp:
            temp.write_bytes(flatbuffer)
    return path


def tflite_to_onnx(tflite_path: Path, path: Path) -> Path:
    """Convert a TFLite flatbuffer to ONNX with tf2onnx (quantised ops become QLinear/DequantizeLinear)."""
    if not path.is_file():
        engines.tensorflow()
        import tf2onnx

        with atomic_path(path) as temp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")  # tf2onnx's own use
            tf2onnx.convert.from_tflite(str(tflite_path), output_path=str(temp))
    return path
