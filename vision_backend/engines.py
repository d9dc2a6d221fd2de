"""The inference engines (TensorFlow/Keras, ONNX Runtime, LiteRT, MTCNN), imported once and quietly.

A Streamlit server runs every browser session in its own thread. TensorFlow's import is not
safe to run in two threads at once: on a cold server, sessions that each imported it lazily
failed with ``_DeadlockError`` or a half-initialised ``keras`` and left the process unable to
use TensorFlow at all. So every engine is imported here, under one process-wide lock, and
:func:`warm_up` imports them all in a background thread as the server starts; a session that
needs an engine before that is done waits for it instead of racing it.

Importing here also turns the engines' own chatter off (TensorFlow's C++ INFO lines, absl's
warnings, ONNX Runtime's graph notes) and points TensorFlow's temporary files (autograph's
generated code) into ``$VISION_LAB_HOME/tmp`` so nothing is written outside the app's folder.
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from vision_backend import paths

_LOCK = threading.RLock()
_READY: dict[str, Any] = {}
_WARMED = threading.Event()
_WARMING: threading.Thread | None = None
_QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", "ABSL_MIN_LOG_LEVEL": "3",
              "GRPC_VERBOSITY": "ERROR", "KMP_WARNINGS": "0",
              # ONNX Runtime's telemetry writes a device id and a database under ~/.cache
              "ORT_DISABLE_TELEMETRY": "1"}


def _quiet() -> None:
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # tempfile reads TMPDIR once; autograph and Keras write their scratch files through it
    tempfile.tempdir = str(paths.app_dir("tmp"))


def _once(name: str, load: Callable[[], Any]) -> Any:
    """``load()``'s module, imported once under the engines' lock; later calls take no lock at all, so a
    page that needs an engine already imported never waits behind another engine's import."""
    module = _READY.get(name)
    if module is None:
        with _LOCK:
            module = _READY.get(name)
            if module is None:
                _quiet()
                module = _READY[name] = load()
    return module


def _import_tensorflow() -> Any:
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    tf.autograph.set_verbosity(0)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tf


def _import_keras() -> Any:
    tensorflow()
    import keras as keras_module

    return keras_module


def _import_onnxruntime() -> Any:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    ort.disable_telemetry_events()
    return ort


def _import_mtcnn() -> Any:
    tensorflow()  # mtcnn imports TensorFlow at import time
    import mtcnn as mtcnn_module
    import mtcnn.stages  # noqa: F401  (the stage classes the detector is built from)
    import mtcnn.utils.bboxes  # noqa: F401
    import mtcnn.utils.images  # noqa: F401

    return mtcnn_module


def _import_dlib() -> Any:
    import dlib as dlib_module

    return dlib_module


def _import_litert() -> Any:
    from ai_edge_litert import interpreter

    return interpreter


def tensorflow() -> Any:
    """TensorFlow, imported once, with its logs off."""
    return _once("tensorflow", _import_tensorflow)


def keras() -> Any:
    """Keras 3 on TensorFlow (imported after TensorFlow)."""
    return _once("keras", _import_keras)


def onnxruntime() -> Any:
    return _once("onnxruntime", _import_onnxruntime)


def mtcnn() -> Any:
    return _once("mtcnn", _import_mtcnn)


def dlib() -> Any:
    return _once("dlib", _import_dlib)


def litert() -> Any:
    """LiteRT's interpreter module (``ai-edge-litert``), TensorFlow Lite's successor package."""
    return _once("litert", _import_litert)


def onnx_session(path: str | Path | bytes, spinning: bool = False, threads: int | None = None) -> Any:
    """An ONNX Runtime session on the CPU, from a graph's file or its bytes.

    ``spinning`` off (the pages' default on a shared server): idle worker threads sleep instead of
    busy-waiting, so they do not steal the 2 cores from the decoding and drawing around each run
    (YOLOv8n-seg's adapter 140 -> ~95 ms). Batch work over folders turns it on for throughput.
    """
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 2
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3  # errors only: ORT warns about any graph listing weights as inputs
    graph = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def constant_weights(path: str | Path) -> str | bytes:
    """The graph with its weights no longer listed among its inputs (its file's path when none are).

    Older exporters list every initialiser as a graph input too; ONNX Runtime must then treat each
    weight as something a caller may replace, so it neither folds constants nor fuses and re-lays out
    the convolutions. NanoDet-m's file lists 158 of them: freed, a run takes 16% less (22.3 -> 18.7 ms
    on one thread), outputs equal to 5e-6.
    """
    import onnx

    graph = onnx.load(str(path))
    weights = {w.name for w in graph.graph.initializer}
    inputs = [i for i in graph.graph.input if i.name not in weights]
    if len(inputs) == len(graph.graph.input):
        return str(path)
    del graph.graph.input[:]
    graph.graph.input.extend(inputs)
    return graph.SerializeToString()


def tflite_interpreter(path: str | Path, threads: int | None = None) -> Any:
    """A TFLite interpreter from LiteRT (``ai-edge-litert``), TensorFlow Lite's successor package."""
    interpreter = litert().Interpreter(model_path=str(path), num_threads=threads or os.cpu_count() or 2)
    interpreter.allocate_tensors()
    return interpreter


WARM_UP: tuple[Callable[[], Any], ...] = (onnxruntime, dlib, litert, tensorflow, keras, mtcnn)
"""The light engines first: pages on ONNX Runtime, dlib and LiteRT are ready within a second of the first
visit, while TensorFlow (about 4 s) imports behind them."""


def warm_up(background: bool = True, then: Callable[[], Any] | None = None) -> None:
    """Import every engine once, before sessions need them (in a background thread by default), then
    run ``then`` (the app loads its most used models there)."""
    global _WARMING

    def run() -> None:
        try:
            for engine in WARM_UP:
                engine()
            if then is not None:
                then()
        finally:
            # the engines' millions of objects never change: frozen, they leave the full collection that
            # Streamlit runs after every script run (0.3-0.45 s with TensorFlow loaded, 0.15 s frozen)
            gc.collect()
            gc.freeze()
            _WARMED.set()

    with _LOCK:
        if _WARMING is not None or _WARMED.is_set():
            return
        _WARMING = threading.Thread(target=run, name="vision-lab-warm-up", daemon=True)
        _WARMING.start()
    if not background:
        _WARMED.wait()


def loaded(*names: str) -> bool:
    """True when every engine named (``"tensorflow"``, ``"mtcnn"``...) is imported: a call then never waits."""
    return all(name in _READY for name in names)


def warmed() -> bool:
    return _WARMED.is_set()
