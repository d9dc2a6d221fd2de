"""Train a detector on your own boxes: the data, two detectors (R-CNN the deck's way, a fast one for the live
camera), and the detector as a model object.

``annotations`` reads and writes box annotations (Pascal VOC XML, COCO JSON, YOLO txt, and the
author's CSV of a split) as :class:`LabelledPhoto` rows whose boxes sit on the photo as the app shows
it; ``evaluate`` scores a detector's boxes against them as COCO does (AP at IoU 0.5 and 0.50:0.95,
precision-recall curves, and each photo's misses and false alarms to draw).

``fast`` (a single-shot head with anchors: :func:`train_fast`) and ``rcnn`` (proposals, ROI-align, a head per
region, each step on one photo: :func:`train_rcnn`) train on the frozen base's feature maps (``maps``, computed
once per photo and kept; ``coding`` the box geometry, ``layers`` the numpy layers) and export one ONNX graph
(``graph``); ``detector`` makes a :class:`TrainedDetector` or a saved one (graph bytes + metadata) a
``Detector`` (:func:`detector_from_saved`). Those names load on first use: detecting never imports ``onnx``.
"""

from vision_backend.own_detection.annotations import (FORMATS, AnnotationSet, LabelledPhoto, Note, Skipped,
                                                      export, read_annotations, read_coco, read_csv, read_voc,
                                                      read_yolo, stored_to_upright, write_coco, write_voc,
                                                      write_yolo)
from vision_backend.own_detection.evaluate import (ClassResult, DetectionEvaluation, FalseAlarm, Miss, PhotoErrors,
                                                   PrecisionRecall)

# ``evaluate`` stays the module (``own_detection.evaluate.evaluate(...)``), as in the other topics' packages.

_LAZY = {"train_fast": "fast", "FAST_PARAMS": ("fast", "PARAMS"), "train_rcnn": "rcnn",
         "RCNN_PARAMS": ("rcnn", "PARAMS"), "RcnnSteps": "rcnn", "TrainedDetector": "trained", "Stopped": "maps",
         "OwnDetector": "detector", "FastDetector": "detector", "RcnnDetector": "detector",
         "detector_from_saved": "detector", "detector_from_trained": "detector", "measure": "detector",
         "held_out": "trained"}


def __getattr__(name: str) -> object:
    """The training and detector names, imported when first asked for (they bring numpy layers and ONNX)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
    return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


__all__ = ["FORMATS", "AnnotationSet", "ClassResult", "DetectionEvaluation", "FalseAlarm", "LabelledPhoto", "Miss",
           "Note", "PhotoErrors", "PrecisionRecall", "Skipped", "export", "read_annotations",
           "read_coco", "read_csv", "read_voc", "read_yolo", "stored_to_upright", "write_coco", "write_voc",
           "write_yolo", "FAST_PARAMS", "FastDetector", "OwnDetector", "RCNN_PARAMS", "RcnnDetector", "RcnnSteps",
           "Stopped", "TrainedDetector", "detector_from_saved", "detector_from_trained", "held_out", "measure",
           "train_fast", "train_rcnn"]
