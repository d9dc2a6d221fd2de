"""Recognising and verifying faces with embeddings: nearest enrolled face within a threshold.

:func:`analyse` finds every face in a photo and embeds it; :func:`recognise` names each face by
the nearest enrolled face (or "unknown" beyond the threshold); :func:`verify` says whether two
faces are the same person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS
from vision_backend.face_recognition.embedders import FaceEmbedder

FACE_FINDER = "dlib_hog"
"""The face detector recognition uses by default (dlib's own pairing: HOG boxes, ResNet embeddings)."""


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between two sets of unit vectors, (len(a), len(b))."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    similarity = np.einsum("id,jd->ij", a, b)  # einsum: no BLAS threads left spinning after the call
    return np.sqrt(np.clip(2.0 - 2.0 * similarity, 0.0, 4.0))


@dataclass(frozen=True)
class Faces:
    """Every face found in one photo: boxes, unit embeddings and the crops the network saw."""

    detections: Detections
    vectors: np.ndarray
    crops: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.detections)


def analyse(embedder: FaceEmbedder, image: np.ndarray, detector: str = FACE_FINDER, **settings: Any) -> Faces:
    """Find every face (HOG by default) and embed each."""
    found = DETECTORS[detector].detect(image, **settings)
    vectors, crops = embedder.embed(image, found)
    return Faces(found, vectors, crops)


@dataclass(frozen=True)
class Match:
    name: str  # "unknown" beyond the threshold
    distance: float
    nearest: str


def recognise(embeddings: np.ndarray, gallery_names: list[str], gallery: np.ndarray, threshold: float) -> list[Match]:
    """For each face, the nearest enrolled face; its person if close enough, else "unknown"."""
    if not len(gallery):
        return [Match("unknown", float("inf"), "") for _ in range(len(embeddings))]
    d = distances(embeddings, gallery)
    best = d.argmin(axis=1)
    return [Match(gallery_names[j] if d[i, j] <= threshold else "unknown", float(d[i, j]), gallery_names[j])
            for i, j in enumerate(best)]


def largest_index(faces: Detections) -> int:
    """Index of the biggest face (verification and enrolment take one face per photo)."""
    sizes = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    return int(sizes.argmax())


def largest(faces: Detections) -> Detections:
    return faces[[largest_index(faces)]] if len(faces) else faces


def verify(a: np.ndarray, b: np.ndarray, threshold: float) -> tuple[bool, float]:
    distance = float(distances(a, b)[0, 0])
    return distance <= threshold, distance


