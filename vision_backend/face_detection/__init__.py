"""Face detection: Viola-Jones, HOG, MTCNN and YuNet behind one interface.

``detectors`` holds the models (inference); ``explain`` shows how they work (integral image,
Haar features, the cascade's funnel, HOG's cells, MTCNN's stages); ``evaluate`` measures them
on hand-annotated group photos.
"""

from vision_backend.face_detection.detectors import DETECTORS, LANDMARK_NAMES, MTCNN, DlibHOG, ViolaJones, YuNet

__all__ = ["DETECTORS", "LANDMARK_NAMES", "MTCNN", "DlibHOG", "ViolaJones", "YuNet"]
