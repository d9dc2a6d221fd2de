"""Object detection: region proposals, anchors, and COCO detectors on ONNX Runtime.

``detectors`` holds the models (NanoDet-m, YOLOv8n-seg, Mask R-CNN); ``rcnn`` the R-CNN family's
building blocks to play with (selective search, anchors, ROI pooling, NMS step by step);
``coco`` the 80 classes and COCO's results format (RLE masks).
"""

from vision_backend.object_detection.coco import COCO_NAMES
from vision_backend.object_detection.detectors import DETECTORS, MaskRCNN, NanoDet, YOLOv8Seg

__all__ = ["COCO_NAMES", "DETECTORS", "MaskRCNN", "NanoDet", "YOLOv8Seg"]
