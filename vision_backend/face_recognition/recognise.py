"""Recognising and verifying faces with embeddings: nearest enrolled face within a threshold.

:func:`analyse` finds every face in a photo and embeds it; :func:`recognise` names each face by
the nearest enrolled face (or "unknown" beyond the threshold); :func:`verify` says whether two
faces are the same person; :func:`enrol_photos` and :func:`enrol_demo_people` fill a gallery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from vision_backend import samples
from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS
from vision_backend.face_recognition.embedders import FaceEmbedder
from vision_backend.face_recognition.gallery import Gallery
from vision_backend.intake import ImageIntakeError, read_image
from vision_backend.model import with_role
from vision_backend.storage import check_name



def face_finder() -> str:
    """The face detector recognition uses by default (the one whose role it is: dlib's own pairing, HOG boxes
    for ResNet embeddings)."""
    return with_role(DETECTORS.values(), "face finder").name


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


def analyse(embedder: FaceEmbedder, image: np.ndarray, detector: str | None = None,
            engines: tuple[Any, Any] = (None, None), **settings: Any) -> Faces:
    """Find every face (the face finder's by default) and embed each; a worker may pass its own
    (detector, embedder) ``engines``."""
    found = DETECTORS[detector or face_finder()].detect(image, engine=engines[0], **settings)
    vectors, crops = embedder.embed(image, found, engines[1])
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


# ---- enrolment -----------------------------------------------------------------------------
DEMO_PEOPLE = {"Barack Obama": "obama_1.jpg", "Joe Biden": "biden.jpg"}
"""The people the page enrols in one click, from the staged demo photos (the largest face of each)."""


def enrol_photos(gallery: Gallery, embedder: FaceEmbedder, name: str,
                 photos: Iterable[tuple[str, bytes]]) -> list[dict[str, str]]:
    """Enrol several uploaded photos of one person, given as (file name, bytes), one face each.

    A photo that cannot be read, or holds no face or several (which one is the person?), is
    skipped. One report row per file: ``photo``, ``result`` (``enrolled``, ``already enrolled`` or
    ``skipped``) and ``reason``. The name is checked before any photo is read, and nobody is
    created unless a face is enrolled.
    """
    name = check_name(name, "person's name")
    report = []
    for file_name, data in photos:
        try:
            faces = analyse(embedder, read_image(data, file_name))
        except ImageIntakeError as error:
            report.append({"photo": file_name, "result": "skipped", "reason": str(error)})
            continue
        if len(faces) != 1:
            report.append({"photo": file_name, "result": "skipped",
                           "reason": f"{len(faces)} faces found; it needs exactly one"})
            continue
        report.append({"photo": file_name, **_enrolled(gallery.enrol(
            name, embedder.name, [(faces.vectors[0], faces.crops[0], file_name)]))})
    return report


def _enrolled(new: int) -> dict[str, str]:
    return {"result": "enrolled", "reason": ""} if new else {"result": "already enrolled",
                                                             "reason": "this very face is in the gallery"}


def enrol_demo_people(gallery: Gallery, embedder: FaceEmbedder) -> list[dict[str, str]]:
    """Enrol :data:`DEMO_PEOPLE` (the largest face of each staged photo); a second click adds nothing."""
    report = []
    for person, photo in DEMO_PEOPLE.items():
        faces = analyse(embedder, samples.load_sample(photo))
        if not len(faces):
            report.append({"person": person, "photo": photo, "result": "skipped", "reason": "no face found"})
            continue
        one = largest_index(faces.detections)
        report.append({"person": person, "photo": photo, **_enrolled(gallery.enrol(
            person, embedder.name, [(faces.vectors[one], faces.crops[one], photo)]))})
    return report
