"""Face recognition with embeddings: a face becomes a vector; the same person's faces lie close together.

One interface for every recogniser: a photo and its face boxes in, aligned crops and
L2-normalised embeddings out, so *distance* (Euclidean between unit vectors, 0..2) means the
same thing for all of them. dlib's ResNet aligns each face on 5 landmarks into a 150x150 chip
and gives 128 numbers; VGGFace2's ResNet50 (:mod:`vision_backend.vggface`) crops the detector's
box grown by 30% and gives 2048. On top: a persistent :class:`Gallery` of enrolled people,
:func:`recognise` (nearest enrolled face, or "unknown" beyond a threshold), :func:`verify`,
and the LFW pair protocol (:func:`lfw_pairs`, :func:`pair_metrics`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend import models, paths
from vision_backend.detections import Detections
from vision_backend.intake import encode_png, read_image


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between two sets of unit vectors, (len(a), len(b))."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    similarity = np.einsum("id,jd->ij", a, b)  # einsum: no BLAS threads left spinning (see object_detection)
    return np.sqrt(np.clip(2.0 - 2.0 * similarity, 0.0, 4.0))


# ---- recognisers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Recogniser:
    name: str
    title: str
    model: str  # registry card
    dimensions: int
    threshold: float  # default "same person" distance between unit vectors (measured on LFW fold 1)

    def embed(self, loaded: Any, image: np.ndarray, faces: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
        """(N, d) unit embeddings and the N aligned crops the network saw."""
        if not len(faces):
            return np.zeros((0, self.dimensions), np.float32), []
        if self.name == "dlib":
            return _embed_dlib(loaded, image, faces)
        from vision_backend import vggface

        return vggface.embed(loaded, image, faces)


def _embed_dlib(loaded: Any, image: np.ndarray, faces: Detections) -> tuple[np.ndarray, list[np.ndarray]]:
    import dlib

    network, landmarks = loaded
    image = np.ascontiguousarray(image)
    chips = []
    for x1, y1, x2, y2 in faces.boxes.round().astype(int):
        shape = landmarks(image, dlib.rectangle(int(x1), int(y1), int(x2), int(y2)))
        chips.append(np.asarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)))
    vectors = np.asarray(network.compute_face_descriptor(chips), np.float32)
    return l2_normalise(vectors), chips


RECOGNISERS = {r.name: r for r in (
    Recogniser("dlib", "dlib ResNet (128-d)", "dlib_resnet_face", 128, 0.42),
    Recogniser("vggface2", "VGGFace2 ResNet50 (2048-d)", "vggface2_resnet50", 2048, 0.9),
)}


def find_faces(detector_model: Any, image: np.ndarray, detector: str = "hog", **settings: Any) -> Detections:
    from vision_backend import face_detection as fd

    return fd.detect(detector, detector_model, image, **settings)


# ---- recognising and verifying -------------------------------------------------------------
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


# ---- the gallery ---------------------------------------------------------------------------
class Gallery:
    """Enrolled people and their faces: SQLite (embeddings per recogniser) plus PNG crops, under the app folder.

    Each change is one transaction, so a crash never leaves half a person; crops are stored
    under their content hash, so the same face enrolled twice is one file.
    """

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder else paths.app_dir("faces")
        (self.folder / "crops").mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "gallery.sqlite"
        with self._connect() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
                CREATE TABLE IF NOT EXISTS faces (
                    id INTEGER PRIMARY KEY, person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
                    recogniser TEXT NOT NULL, embedding BLOB NOT NULL, crop TEXT NOT NULL, source TEXT,
                    added REAL NOT NULL);
            """)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        return db

    def add_person(self, name: str) -> int:
        name = name.strip()
        if not name:
            raise ValueError("give the person a name")
        with self._connect() as db:
            row = db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            return row[0] if row else db.execute("INSERT INTO people (name) VALUES (?)", (name,)).lastrowid

    def rename(self, person: int, name: str) -> None:
        if not name.strip():
            raise ValueError("give the person a name")
        with self._connect() as db:
            db.execute("UPDATE people SET name = ? WHERE id = ?", (name.strip(), person))

    def delete_person(self, person: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM people WHERE id = ?", (person,))

    def add_face(self, person: int, recogniser: str, embedding: np.ndarray, crop: np.ndarray, source: str = "") -> int:
        png = encode_png(crop)
        name = hashlib.sha256(png).hexdigest()[:20] + ".png"
        target = self.folder / "crops" / name
        if not target.exists():
            partial = target.with_suffix(".partial")
            partial.write_bytes(png)
            partial.replace(target)
        vector = np.asarray(embedding, np.float32).tobytes()
        with self._connect() as db:
            return db.execute("INSERT INTO faces (person, recogniser, embedding, crop, source, added) "
                              "VALUES (?, ?, ?, ?, ?, ?)", (person, recogniser, vector, name, source, time.time())).lastrowid

    def delete_face(self, face: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM faces WHERE id = ?", (face,))

    def people(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT p.id, p.name, COUNT(f.id) FROM people p LEFT JOIN faces f ON f.person = p.id "
                              "GROUP BY p.id ORDER BY p.name").fetchall()
        return [{"id": i, "name": n, "faces": c} for i, n, c in rows]

    def faces(self, person: int) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT id, recogniser, crop, source FROM faces WHERE person = ? ORDER BY id",
                              (person,)).fetchall()
        return [{"id": i, "recogniser": r, "crop": self.folder / "crops" / c, "source": s} for i, r, c, s in rows]

    def embeddings(self, recogniser: str) -> tuple[list[str], np.ndarray]:
        """Every enrolled face's person name and embedding for one recogniser."""
        with self._connect() as db:
            rows = db.execute("SELECT p.name, f.embedding FROM faces f JOIN people p ON p.id = f.person "
                              "WHERE f.recogniser = ? ORDER BY f.id", (recogniser,)).fetchall()
        if not rows:
            return [], np.zeros((0, RECOGNISERS[recogniser].dimensions), np.float32)
        return [n for n, _ in rows], np.stack([np.frombuffer(e, np.float32) for _, e in rows])


# ---- LFW -----------------------------------------------------------------------------------
def lfw_root() -> Path:
    return models.card("lfw").path()


def lfw_pairs(root: Path | None = None) -> list[tuple[Path, Path, bool]]:
    """Fold 1 of LFW's View-2 pairs: 300 same-person pairs, then 300 different-person pairs."""
    root = root or lfw_root()
    lines = (root / "pairs_subset.txt").read_text().split("\n")
    count = int(lines[0].split()[1])
    pairs = []

    def image(name: str, number: str) -> Path:
        return root / "pairs_images" / name / f"{name}_{int(number):04d}.jpg"

    for line in lines[1 : 1 + 2 * count]:
        parts = line.split("\t")
        if len(parts) == 3:
            pairs.append((image(parts[0], parts[1]), image(parts[0], parts[2]), True))
        else:
            pairs.append((image(parts[0], parts[1]), image(parts[2], parts[3]), False))
    return pairs


def lfw_face(detector_model: Any, image: np.ndarray) -> Detections:
    """The face LFW labels: LFW images are centred on it, so the detection nearest the centre;
    where the detector finds none, the central 110x110 box (the standard fallback)."""
    height, width = image.shape[:2]
    faces = find_faces(detector_model, image, "hog", work_side=max(height, width))  # faces are ~110 px: no upscaling
    if len(faces):
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        return faces[[int(np.linalg.norm(centres - [width / 2, height / 2], axis=1).argmin())]]
    box = np.array([[width / 2 - 55, height / 2 - 55, width / 2 + 55, height / 2 + 55]])
    return Detections(box, [0.0], [0], meta={"fallback": True})


def embed_files(recogniser: Recogniser, loaded: Any, detector_model: Any, files: list[Path],
                progress: Callable[[int, int], None] | None = None) -> dict[Path, np.ndarray]:
    """One embedding per LFW image (its centred face), cached on disk per recogniser."""
    cache_path = paths.app_dir("faces", "cache") / f"lfw_{recogniser.name}.npz"
    cache: dict[str, np.ndarray] = dict(np.load(cache_path)) if cache_path.is_file() else {}
    out, missing = {}, []
    for file in files:
        key = f"{file.parent.name}/{file.name}"
        if key in cache:
            out[file] = cache[key]
        else:
            missing.append(file)
    for i, file in enumerate(missing):
        image = read_image(file.read_bytes(), file.name)
        vectors, _ = recogniser.embed(loaded, image, lfw_face(detector_model, image))
        out[file] = cache[f"{file.parent.name}/{file.name}"] = vectors[0]
        if progress:
            progress(i + 1, len(missing))
    if missing:
        partial = cache_path.with_suffix(".partial.npz")
        np.savez(partial, **cache)
        partial.replace(cache_path)
    return out


@dataclass(frozen=True)
class PairMetrics:
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray  # distance thresholds for the ROC points
    auc: float
    best_threshold: float
    best_accuracy: float
    interval: tuple[float, float]  # 95% Wilson interval of the best accuracy


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)


def pair_metrics(pair_distances: np.ndarray, same: np.ndarray) -> PairMetrics:
    """ROC of "same person if distance <= t", its AUC, and the threshold with the best accuracy."""
    from sklearn.metrics import roc_auc_score, roc_curve

    same = np.asarray(same, bool)
    fpr, tpr, thresholds = roc_curve(same, -np.asarray(pair_distances))
    candidates = np.unique(pair_distances)
    accuracies = [((pair_distances <= t) == same).mean() for t in candidates]
    best = int(np.argmax(accuracies))
    correct = int(round(accuracies[best] * len(same)))
    return PairMetrics(fpr, tpr, -thresholds, float(roc_auc_score(same, -pair_distances)), float(candidates[best]),
                       float(accuracies[best]), wilson_interval(correct, len(same)))


# ---- from scratch vs transfer (the deck's experiment) -------------------------------------
def lfw_people(root: Path | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """The five LFW people with the most photos (1,140 images): files, labels, names."""
    folder = (root or lfw_root()) / "people"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [f for n in names for f in sorted((folder / n).glob("*.jpg"))]
    labels = np.array([names.index(f.parent.name) for f in files])
    return files, labels, names


def stratified_split(labels: np.ndarray, test: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=test, stratify=labels, random_state=seed)


def centre_face(image: np.ndarray, size: int = 64) -> np.ndarray:
    """LFW's face sits in the middle: the central 120x120 of 250x250, greyscale, ``size`` x ``size``."""
    height, width = image.shape[:2]
    half = round(min(height, width) * 0.24)
    patch = image[height // 2 - half : height // 2 + half, width // 2 - half : width // 2 + half]
    return cv2.resize(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)


def scratch_cnn(classes: int, size: int = 64) -> Any:
    """A small CNN that learns faces from nothing but these photos (the deck's "from scratch" side)."""
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((size, size, 1)),
        layers.RandomFlip("horizontal"), layers.RandomTranslation(0.05, 0.05), layers.RandomRotation(0.03),
        layers.Conv2D(32, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Conv2D(128, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(128, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ], name="faces_from_scratch")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@dataclass(frozen=True)
class Comparison:
    names: list[str]
    test_labels: np.ndarray
    embeddings_predicted: np.ndarray
    scratch_predicted: np.ndarray

    @property
    def embeddings_accuracy(self) -> float:
        return float((self.embeddings_predicted == self.test_labels).mean())

    @property
    def scratch_accuracy(self) -> float:
        return float((self.scratch_predicted == self.test_labels).mean())


def from_scratch_vs_embeddings(recogniser: Recogniser, loaded: Any, detector_model: Any, epochs: int = 40,
                               progress: Callable[[str, float], None] | None = None, seed: int = 0) -> Comparison:
    """Classify the five LFW people two ways on one stratified held-out quarter:
    (a) logistic regression on face embeddings (transfer), (b) a small CNN trained from scratch."""
    import keras
    from sklearn.linear_model import LogisticRegression

    files, labels, names = lfw_people()
    train, test = stratified_split(labels, seed=seed)
    step = (lambda text, share: progress(text, share)) if progress else (lambda text, share: None)
    vectors = embed_files(recogniser, loaded, detector_model, files,
                          lambda done, total: step(f"Embedding faces {done}/{total}", 0.6 * done / total))
    x = np.stack([vectors[f] for f in files])
    head = LogisticRegression(C=10, max_iter=2000).fit(x[train], labels[train])
    embeddings_predicted = head.predict(x[test])

    faces = np.stack([centre_face(read_image(f.read_bytes(), f.name)) for f in files]).astype(np.float32)[..., None] / 255
    keras.utils.set_random_seed(seed)
    model = scratch_cnn(len(names))
    counts = np.bincount(labels[train])
    weights = {k: len(train) / (len(counts) * c) for k, c in enumerate(counts)}  # George W. Bush has 530 photos

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            step(f"Training the CNN from scratch: epoch {epoch + 1}/{epochs}", 0.6 + 0.4 * (epoch + 1) / epochs)

    model.fit(faces[train], labels[train], epochs=epochs, batch_size=32, class_weight=weights, verbose=0,
              callbacks=[Report()])
    scratch_predicted = np.asarray(model.predict(faces[test], verbose=0)).argmax(1)
    return Comparison(names, labels[test], embeddings_predicted, scratch_predicted)
