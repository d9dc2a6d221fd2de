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


VERDICTS = {"same": "named", "uncertain": "uncertain", "different": "unknown", "too small": "too small to tell"}
"""What each verdict means for a face in a photo."""


def verdict(distance: float, threshold: float, margin: float = 0.0) -> str:
    """``same`` well inside the threshold, ``different`` well beyond it, ``uncertain`` within ``margin`` of it
    (where true matches and strangers overlap: a face there is never named, nor called a stranger)."""
    if distance <= threshold - margin:
        return "same"
    return "different" if distance > threshold + margin else "uncertain"


@dataclass(frozen=True)
class Match:
    name: str
    """The person named, or "unknown" (not named: a stranger, an uncertain face or one too small to tell)."""
    distance: float
    nearest: str
    verdict: str = "same"
    """``same``, ``uncertain``, ``different`` or ``too small`` (see :func:`verdict`)."""

    @property
    def caption(self) -> str:
        """The face's label on a photo: a name and distance, the nearest with a question mark, or why not."""
        if self.verdict == "same":
            return f"{self.name} {self.distance:.2f}"
        if self.verdict == "uncertain":
            return f"{self.nearest}? {self.distance:.2f}"
        return "too small to tell" if self.verdict == "too small" else "unknown"


def recognise(embeddings: np.ndarray, gallery_names: list[str], gallery: np.ndarray, threshold: float,
              margin: float = 0.0, face_sides: np.ndarray | None = None, min_face: float = 0.0) -> list[Match]:
    """For each face, the nearest enrolled face; its person when the verdict is ``same``, else "unknown"
    (``face_sides``: each face's box side in pixels; a face under ``min_face`` is too small to tell)."""
    if not len(gallery):
        return [Match("unknown", float("inf"), "", "different") for _ in range(len(embeddings))]
    d = distances(embeddings, gallery)
    best = d.argmin(axis=1)
    sides = np.full(len(best), np.inf) if face_sides is None else np.asarray(face_sides, float)
    matches = []
    for i, j in enumerate(best):
        call = "too small" if sides[i] < min_face else verdict(float(d[i, j]), threshold, margin)
        matches.append(Match(gallery_names[j] if call == "same" else "unknown", float(d[i, j]), gallery_names[j], call))
    return matches


def face_sides(faces: Detections) -> np.ndarray:
    """Each face's size in pixels (the shorter side of its box): what a minimum face size is compared with."""
    return np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])


def recognise_faces(faces: "Faces", names: list[str], gallery: np.ndarray, settings: dict[str, Any]) -> list[Match]:
    """:func:`recognise` with an embedder's settings (threshold, margin, smallest face)."""
    return recognise(faces.vectors, names, gallery, settings["threshold"], settings.get("margin", 0.0),
                     face_sides(faces.detections), settings.get("min_named_face", 0.0))


def suggest_threshold(names: list[str], vectors: np.ndarray, least: int = 3) -> tuple[float, int, int] | None:
    """A threshold from the person's own gallery: the distance that best splits its same-person pairs from its
    different-person pairs, with how many of each it rests on; None with fewer than ``least`` of either."""
    if len(names) < 2:
        return None
    d = distances(vectors, vectors)
    upper = np.triu_indices(len(names), 1)
    same = np.asarray(names)[upper[0]] == np.asarray(names)[upper[1]]
    if same.sum() < least or (~same).sum() < least:
        return None
    pair = d[upper]
    candidates = np.unique(pair)
    accuracy = [((pair <= t) == same).mean() for t in candidates]
    best = float(candidates[int(np.argmax(accuracy))])
    beyond = pair[~same][pair[~same] > best]
    if len(beyond):  # between the last same-person pair inside and the nearest stranger outside
        best = (best + float(beyond.min())) / 2
    return best, int(same.sum()), int((~same).sum())


def largest_index(faces: Detections) -> int:
    """Index of the biggest face (verification and enrolment take one face per photo)."""
    sizes = (faces.boxes[:, 2] - faces.boxes[:, 0]) * (faces.boxes[:, 3] - faces.boxes[:, 1])
    return int(sizes.argmax())


def largest(faces: Detections) -> Detections:
    return faces[[largest_index(faces)]] if len(faces) else faces


def verify(a: np.ndarray, b: np.ndarray, threshold: float, margin: float = 0.0) -> tuple[bool, float]:
    """(the same person, distance): True only when the verdict is ``same`` (an uncertain pair is not)."""
    call, distance = judge(a, b, threshold, margin)
    return call == "same", distance


def judge(a: np.ndarray, b: np.ndarray, threshold: float, margin: float = 0.0) -> tuple[str, float]:
    """(verdict, distance) of two faces: ``same``, ``uncertain`` or ``different`` (see :func:`verdict`)."""
    distance = float(distances(a, b)[0, 0])
    return verdict(distance, threshold, margin), distance


# ---- enrolment -----------------------------------------------------------------------------
DEMO_PEOPLE = {"Barack Obama": "obama_1.jpg", "Joe Biden": "biden.jpg"}
"""The people the page enrols in one click, from the staged demo photos (the largest face of each)."""


def enrol_photos(gallery: Gallery, embedder: FaceEmbedder, name: str, photos: Iterable[tuple[str, bytes]],
                 chosen: dict[str, int] | None = None, anyway: bool = False) -> list[dict[str, str]]:
    """Enrol several uploaded photos of one person, given as (file name, bytes), one face each.

    A photo with several faces gives the face ``chosen[file name]`` (the page lets the person pick), else it
    is skipped saying so; a face that looks like someone enrolled under another name is flagged and skipped
    unless ``anyway``; a photo that cannot be read or holds no face is skipped with the reason. One report
    row per file: ``photo``, ``result`` (``enrolled``, ``already enrolled``, ``flagged`` or ``skipped``) and
    ``reason``. The name is checked before any photo is read, and nobody is created unless a face is enrolled.
    """
    name = check_name(name, "person's name")
    report = []
    for file_name, data in photos:
        try:
            faces = analyse(embedder, read_image(data, file_name))
        except ImageIntakeError as error:
            report.append({"photo": file_name, "result": "skipped", "reason": str(error)})
            continue
        report.append({"photo": file_name, **enrol_face(gallery, embedder, name, faces, file_name,
                                                        (chosen or {}).get(file_name), anyway)})
    return report


def enrol_face(gallery: Gallery, embedder: FaceEmbedder, name: str, faces: Faces, source: str,
               which: int | None = None, anyway: bool = False) -> dict[str, str]:
    """One face of a photo enrolled as ``name`` (``which``: the one the person picked where there are several),
    unless it looks like someone else; the report row's ``result`` and ``reason``."""
    if which is None and len(faces) != 1:
        reason = "no face found" if not len(faces) else f"{len(faces)} faces found: pick the one that is {name}"
        return {"result": "skipped", "reason": reason}
    one = 0 if which is None else int(which)
    names, vectors = gallery.embeddings(embedder.name, embedder.dimensions)
    other = lookalike(faces.vectors[one], names, vectors, name, embedder.threshold, embedder.margin)
    if other is not None and not anyway:
        return {"result": "flagged", "reason": f"looks like “{other[0]}” (distance {other[1]:.2f}), who is enrolled "
                                               "already: check the photo, or enrol it anyway"}
    return _enrolled(gallery.enrol(name, embedder.name, [(faces.vectors[one], faces.crops[one], source)]))


def lookalike(vector: np.ndarray, names: list[str], gallery: np.ndarray, person: str, threshold: float,
              margin: float = 0.0) -> tuple[str, float] | None:
    """(someone else, distance) when this face is as near to a person enrolled under another name as a match
    or an uncertain one would be: enrolling it as ``person`` would mix the two up."""
    others = [i for i, name in enumerate(names) if name != check_name(person, "person's name")]
    if not others:
        return None
    d = distances(vector, gallery[others])[0]
    nearest = int(d.argmin())
    if verdict(float(d[nearest]), threshold, margin) == "different":
        return None
    return names[others[nearest]], float(d[nearest])


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
