"""Train a detector on your own boxes: the data side, with no model in it.

``annotations`` reads and writes box annotations (Pascal VOC XML, COCO JSON, YOLO txt, and the
author's CSV of a split) as :class:`LabelledPhoto` rows whose boxes sit on the photo as the app shows
it; ``evaluate`` scores a detector's boxes against them as COCO does (AP at IoU 0.5 and 0.50:0.95,
precision-recall curves, and each photo's misses and false alarms to draw).
"""

from vision_backend.own_detection.annotations import (FORMATS, AnnotationSet, LabelledPhoto, Note, Skipped,
                                                      export, read_annotations, read_coco, read_csv, read_voc,
                                                      read_yolo, stored_to_upright, write_coco, write_voc,
                                                      write_yolo)
from vision_backend.own_detection.evaluate import (ClassResult, DetectionEvaluation, FalseAlarm, Miss, PhotoErrors,
                                                   PrecisionRecall)

# ``evaluate`` stays the module (``own_detection.evaluate.evaluate(...)``), as in the other topics' packages.

__all__ = ["FORMATS", "AnnotationSet", "ClassResult", "DetectionEvaluation", "FalseAlarm", "LabelledPhoto", "Miss",
           "Note", "PhotoErrors", "PrecisionRecall", "Skipped", "export", "read_annotations",
           "read_coco", "read_csv", "read_voc", "read_yolo", "stored_to_upright", "write_coco", "write_voc",
           "write_yolo"]
