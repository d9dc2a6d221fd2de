"""Detection projects: your photos, the boxes you drew on them and the detectors trained on them, kept in a
workspace so nothing drawn is ever lost.

A project is a scope of the workspace's store (``detection/<name>``), kept as transfer-learning projects are
(:mod:`vision_backend.transfer.projects`): its ``photos`` blobs hold every photo once, named by the SHA-256 of its
bytes, and its catalogue holds the classes, a row a photo (its name and size) and a row a box (its class and its
corners ``x1, y1, x2, y2`` in the photo's pixels, edges continuous, as :mod:`~vision_backend.own_detection.annotations`
counts them). Photos are stored **upright**: a phone's photo stored sideways with an EXIF orientation is turned
once, on the way in, so the pixels a box is on are the pixels every tool reading the photo later sees. One
transaction per change, each photo stored inside the transaction that records it, orphans swept when the project
opens, one rule for names. A trained detector is its ONNX graph and its metadata saved as one unit (``SavedModels``).

Every way in (an upload, the camera, a ZIP or folder in Pascal VOC, COCO or YOLO, the boxes the drawing canvas
gives) goes through the same checks: a box reaching outside its photo is clipped with a note, one with no area is
refused with its reason, a class name follows the naming rule.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from vision_backend import intake
from vision_backend.errors import ImageIntakeError, InvalidName, NotFound
from vision_backend.own_detection.annotations import FEW_BOXES, OUTSIDE_PX, LabelledPhoto, export, read_annotations
from vision_backend.storage import SavedModel, SavedModels, Store, Transaction, check_name, join, safe_part

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (id {ID}, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS photos (
    id {ID}, digest TEXT UNIQUE NOT NULL, name TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    added {REAL} NOT NULL);
CREATE TABLE IF NOT EXISTS boxes (
    id {ID}, photo INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
    class INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    x1 {REAL} NOT NULL, y1 {REAL} NOT NULL, x2 {REAL} NOT NULL, y2 {REAL} NOT NULL)
"""
FOLDER, CATALOGUE = "detection", "labels"
"""A project lives in scope ``<workspace>/detection/<name>``, its catalogue called ``labels``."""
IMPORT_BATCH = 64
"""Photos of an imported set stored in one transaction."""
KEEP_LOADED = 8
"""Trained detectors kept loaded in this process (their ONNX sessions), shared by every session that uses them."""


@dataclass(frozen=True)
class StoredPhoto:
    """One photo of a project: its row, its upright size and how many boxes it has."""

    id: int
    digest: str
    name: str
    width: int
    height: int
    boxes: int


@dataclass
class Report:
    """What a change did, said for the person: photos and boxes added, what was refused and why (a line each), and
    what was changed on the way in (a box clipped, a photo turned upright)."""

    photos: int = 0
    boxes: int = 0
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    format: str = ""

    def summary(self) -> str:
        where = f" ({self.format.upper()})" if self.format else ""
        return (f"Added {self.photos} photo{'s' if self.photos != 1 else ''} and {_boxes(self.boxes)}{where}; "
                f"{len(self.skipped)} skipped, {len(self.notes)} notes.")


@dataclass(frozen=True)
class _Incoming:
    """A photo checked and turned upright, with its checked boxes, ready to be stored in a transaction."""

    name: str
    data: bytes
    width: int
    height: int
    boxes: np.ndarray
    labels: tuple[str, ...]


# ---- the checks every way in shares ---------------------------------------------------------------------
def upright(data: bytes, name: str) -> tuple[bytes, int, int, str]:
    """(bytes whose pixels are upright, width, height, a note or ""): the photo decoded the app's one way
    (:mod:`vision_backend.intake`, which raises what the person should read); a photo with an EXIF orientation is
    encoded again from its turned pixels (JPEG stays JPEG at quality 95, anything else becomes PNG)."""
    photo = intake.read_photo(data, name)
    height, width = photo.image.shape[:2]
    with Image.open(io.BytesIO(data)) as image:
        kind = image.format
        try:
            orientation = int(image.getexif().get(0x0112, 1))
        except Exception:  # noqa: BLE001 - a broken EXIF block: intake did not turn by it either
            orientation = 1
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        data = intake.encode_jpeg(photo.image, 95) if kind == "JPEG" else intake.encode_png(photo.image)
        return data, width, height, f"{name}: stored turned upright (it carried an EXIF orientation)"
    return data, width, height, f"{name}: {photo.note}" if photo.note else ""


def _corners(box: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}" for v in box) + ")"


def checked_box(box: Any, width: int, height: int, where: str, report: Report) -> np.ndarray | None:
    """``box`` clipped to a ``width`` x ``height`` photo (a note when it reached outside by more than rounding), or
    None with the reason in ``report`` when it is not four numbers or has no area on the photo."""
    try:
        box = np.asarray(box, np.float64).reshape(4)
    except (TypeError, ValueError):
        report.skipped.append(f"{where}: its corners are not four numbers")
        return None
    if not np.all(np.isfinite(box)):
        report.skipped.append(f"{where}: its corners are not four numbers")
        return None
    clipped = np.clip(box, 0, [width, height, width, height])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        report.skipped.append(f"{where}: has no area on the {width}x{height} photo {_corners(box)}: a box needs "
                              "x1 < x2 and y1 < y2 inside the photo")
        return None
    if np.abs(clipped - box).max() > OUTSIDE_PX:
        report.notes.append(f"{where}: reached outside the {width}x{height} photo {_corners(box)}; clipped to "
                            f"{_corners(clipped)}")
    return clipped


def checked_boxes(boxes: Any, labels: Sequence[str], width: int, height: int, name: str,
                  report: Report) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every box of a photo that keeps an area on it and whose class passes the naming rule (the rest said why)."""
    kept, names = [], []
    for index, (box, label) in enumerate(zip(list(boxes), labels)):
        where = f"{name}, box {index + 1} ({str(label)[:40]})"
        try:
            label = check_name(str(label), "class name")
        except InvalidName as error:
            report.skipped.append(f"{where}: {error}")
            continue
        box = checked_box(box, width, height, where, report)
        if box is not None:
            kept.append(box)
            names.append(label)
    return np.asarray(kept, np.float64).reshape(-1, 4), tuple(names)


def incoming(data: bytes, name: str, boxes: Any, labels: Sequence[str], report: Report) -> _Incoming | None:
    """A photo and its boxes checked for storing, or None with the reason in ``report``."""
    name = safe_part(Path(name).name or "photo", "photo")
    try:
        data, width, height, note = upright(data, name)
    except ImageIntakeError as error:
        report.skipped.append(str(error))
        return None
    if note:
        report.notes.append(note)
    kept, names = checked_boxes(boxes, labels, width, height, name, report)
    return _Incoming(name, data, width, height, kept, names)


# ---- the project ---------------------------------------------------------------------------------------
class DetectionProject:
    """One project: scope ``parent/<name>`` of ``store`` (``parent`` is a workspace's ``detection``)."""

    def __init__(self, store: Store, parent: str, name: str, create: bool = True):
        self.name = check_name(name, "project name")
        self.store, self.scope = store, join(parent, self.name)
        if not create and not store.has(self.scope, CATALOGUE):
            raise NotFound(f"There is no detection project called “{self.name}”.")
        self.blobs = store.blobs(self.scope, "photos")
        self.db = store.catalogue(self.scope, CATALOGUE, SCHEMA)
        self.models = SavedModels(self.db, store.blobs(self.scope, "models", ".onnx"))
        with self.db.transaction() as db:
            self.blobs.sweep(d for (d,) in db.execute("SELECT digest FROM photos").fetchall())
            self.models.sweep(db)

    # ---- classes --------------------------------------------------------------------------------
    def classes(self) -> list[str]:
        return [n for (n,) in self.db.rows("SELECT name FROM classes ORDER BY name")]

    def add_class(self, name: str) -> str:
        name = check_name(name, "class name")
        with self.db.transaction() as db:
            _class_id(db, name)
        return name

    def rename_class(self, old: str, new: str) -> None:
        new = check_name(new, "class name")
        self.db.rename("UPDATE classes SET name = ? WHERE name = ?", (new, old),
                       f"There is already a class called “{new}”; pick another name.")

    def delete_class(self, name: str) -> None:
        """The class and every box of it (the photos stay)."""
        with self.db.transaction() as db:
            db.execute("DELETE FROM classes WHERE name = ?", (name,))

    def counts(self) -> dict[str, int]:
        """Boxes a class, every class (one with none too), by name."""
        return dict(self.db.rows("SELECT c.name, COUNT(b.id) FROM classes c LEFT JOIN boxes b ON b.class = c.id "
                                 "GROUP BY c.id, c.name ORDER BY c.name"))

    # ---- photos and boxes -----------------------------------------------------------------------
    def add_photo(self, data: bytes, name: str = "", boxes: Any = (), labels: Sequence[str] = (),
                  report: Report | None = None) -> int | None:
        """Store one photo (and its boxes, in its upright pixels); its id, or None when it cannot be read (the
        reason in ``report``). A photo already here keeps the boxes it has."""
        report = report if report is not None else Report()
        checked = incoming(data, name or "photo", boxes, labels, report)
        if checked is None:
            return None
        with self.db.transaction() as db:
            return self._record(db, checked, report)

    def add_photos(self, photos: Iterable[tuple[str, bytes]]) -> Report:
        """Several uploads (name, bytes): one line per photo refused, the rest kept."""
        report = Report()
        for name, data in photos:
            self.add_photo(data, name, report=report)
        return report

    def _record(self, db: Transaction, photo: _Incoming, report: Report) -> int:
        """The photo's blob and row (once), then its boxes unless it has some already."""
        digest = self.blobs.put(photo.data)
        cursor = db.execute("INSERT INTO photos (digest, name, width, height, added) VALUES (?, ?, ?, ?, ?) "
                            "ON CONFLICT (digest) DO NOTHING", (digest, photo.name, photo.width, photo.height,
                                                                time.time()))
        (photo_id, name) = db.execute("SELECT id, name FROM photos WHERE digest = ?", (digest,)).fetchone()
        report.photos += cursor.rowcount == 1
        (had,) = db.execute("SELECT COUNT(*) FROM boxes WHERE photo = ?", (photo_id,)).fetchone()
        if had and len(photo.boxes):
            report.skipped.append(f"{photo.name}: the same photo, byte for byte, as “{name}”, which the project has "
                                  f"with {_boxes(had)}; this copy's {_boxes(len(photo.boxes))} not added")
        elif len(photo.boxes):
            _insert_boxes(db, photo_id, photo.boxes, photo.labels)
            report.boxes += len(photo.boxes)
        return int(photo_id)

    PHOTO_ROWS = ("SELECT p.id, p.digest, p.name, p.width, p.height, COUNT(b.id) FROM photos p LEFT JOIN boxes b "
                  "ON b.photo = p.id {where} GROUP BY p.id, p.digest, p.name, p.width, p.height ORDER BY p.id")

    def photos(self) -> list[StoredPhoto]:
        """Every photo in the order it came in, with its count of boxes."""
        rows = self.db.rows(self.PHOTO_ROWS.format(where=""))
        return [StoredPhoto(int(i), d, n, int(w), int(h), int(c)) for i, d, n, w, h, c in rows]

    def photo(self, photo_id: int) -> StoredPhoto:
        rows = self.db.rows(self.PHOTO_ROWS.format(where="WHERE p.id = ?"), (int(photo_id),))
        if not rows:
            raise NotFound(f"Photo #{photo_id} is not in the project “{self.name}” (deleted meanwhile?).")
        i, d, n, w, h, c = rows[0]
        return StoredPhoto(int(i), d, n, int(w), int(h), int(c))

    def boxes(self, photo_id: int) -> tuple[np.ndarray, tuple[str, ...]]:
        """A photo's boxes ((N, 4) float64 corners in its pixels) and their classes, in the order they were drawn."""
        rows = self.db.rows("SELECT b.x1, b.y1, b.x2, b.y2, c.name FROM boxes b JOIN classes c ON c.id = b.class "
                            "WHERE b.photo = ? ORDER BY b.id", (photo_id,))
        return np.asarray([r[:4] for r in rows], np.float64).reshape(-1, 4), tuple(r[4] for r in rows)

    def set_boxes(self, photo_id: int, boxes: Any, labels: Sequence[str]) -> Report:
        """Replace a photo's boxes with ``boxes`` (what the canvas holds after drawing, moving or deleting), checked,
        in one transaction; new class names become classes."""
        photo, report = self.photo(photo_id), Report()
        kept, names = checked_boxes(boxes, labels, photo.width, photo.height, photo.name, report)
        with self.db.transaction() as db:
            db.execute("DELETE FROM boxes WHERE photo = ?", (photo_id,))
            _insert_boxes(db, photo_id, kept, names)
        report.boxes = len(kept)
        return report

    def photo_bytes(self, photo_id: int) -> bytes:
        return self.blobs.read(self.photo(photo_id).digest)

    def image(self, photo_id: int) -> np.ndarray:
        """A photo's pixels (upright, as its boxes are)."""
        stored = self.photo(photo_id)
        return intake.read_image(self.blobs.read(stored.digest), stored.name, min_side=1)

    def labelled(self, photos: Sequence[StoredPhoto] | None = None) -> list[LabelledPhoto]:
        """Photos (every one by default) with their boxes and bytes, as training, evaluation and export take them."""
        found = []
        for stored in self.photos() if photos is None else photos:
            boxes, labels = self.boxes(stored.id)
            found.append(LabelledPhoto(stored.name, stored.width, stored.height, boxes, labels,
                                       self.blobs.read(stored.digest)))
        return found

    def delete_photo(self, photo_id: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM boxes WHERE photo = ?", (photo_id,))
            db.execute("DELETE FROM photos WHERE id = ?", (photo_id,))
        with self.db.transaction() as db:  # after the commit: a file goes only once no committed row names it
            self.blobs.sweep(d for (d,) in db.execute("SELECT digest FROM photos").fetchall())

    def problems(self) -> list[str]:
        """What stops training, said plainly (an empty list means ready)."""
        boxed = [p for p in self.photos() if p.boxes]
        if not boxed:
            return ["Draw boxes on some photos first: training needs boxes to learn from."]
        if len(boxed) < 2:
            return ["Training needs boxes on at least two photos (one to learn from, one to measure on); "
                    "20 or more work well."]
        return []

    def advice(self) -> list[str]:
        """What would make a better detector, said plainly (it does not stop training)."""
        return [f"Class “{name}” has {count} box{'es' if count != 1 else ''}: "
                + ("a detector cannot learn it from none." if not count else
                   f"{FEW_BOXES} or more work well.") for name, count in self.counts().items() if count < FEW_BOXES]

    # ---- import and export ----------------------------------------------------------------------
    def import_set(self, source: str | Path | bytes, progress: Callable[[int, int], None] | None = None,
                   exif: str = "auto") -> Report:
        """Photos and their boxes from a folder or ZIP in Pascal VOC, COCO, YOLO or a split's CSV (found by itself),
        or a folder or ZIP of photos alone (added with no box, to draw them here). The set is read and checked
        first (a reason for each file or box refused), then stored a batch of photos to a transaction;
        ``progress(done, total)`` after each batch."""
        found = read_annotations(source, exif=exif, photos_alone=True)  # type: ignore[arg-type]
        report = Report(skipped=[str(s) for s in found.skipped], notes=[str(n) for n in found.notes],
                        format=found.format)
        with self.db.transaction() as db:
            for name in found.classes:
                _class_id(db, name)
        total = len(found.photos)
        for start in range(0, total, IMPORT_BATCH):
            batch = [incoming(p.data, p.name, p.boxes, p.labels, report) for p in found.photos[start:start + IMPORT_BATCH]]
            with self.db.transaction() as db:
                for photo in batch:
                    if photo is not None:
                        self._record(db, photo, report)
            if progress:
                progress(min(start + IMPORT_BATCH, total), total)
        return report

    def export(self, format: str) -> bytes:
        """Every photo and its boxes as a ZIP in ``format`` (voc, coco or yolo), class ids in the classes' order."""
        return export(self.labelled(), format, self.classes())

    # ---- trained detectors ----------------------------------------------------------------------
    def save_detector(self, trained: Any, **extra: Any) -> SavedModel:
        """Keep a trained detector (its ONNX graph and metadata, with ``extra`` facts) as one unit, as
        ``<kind>_<date>-<time>`` (a number after it if that is taken)."""
        stem = f"{trained.kind}_{time.strftime('%Y%m%d-%H%M%S')}"
        taken, unique, count = self.models.all(), stem, 1
        while unique in taken:
            count += 1
            unique = f"{stem}-{count}"
        return self.models.save(unique, trained.graph, {**trained.meta(), **extra})

    def detectors(self) -> dict[str, SavedModel]:
        """Detectors trained on this project, by stem, oldest first."""
        return self.models.all()

    def newest_detector(self, kind: str | None = None) -> SavedModel | None:
        saved = [m for m in self.models.all().values() if kind is None or m.meta.get("kind") == kind]
        return max(saved, key=lambda m: m.saved) if saved else None

    def detector(self, stem: str | None = None, kind: str | None = None) -> Any:
        """A saved detector (``stem``, else the newest, of ``kind`` if given) as a model object, loaded once in this
        process; :class:`NotFound` saying what to do when there is none."""
        saved = self.models.get(stem) if stem else self.newest_detector(kind)
        if saved is None:
            what = f"no {kind} detector" if kind else "no detector"
            raise NotFound(f"The detection project “{self.name}” has {what} yet: train one on the Your own objects "
                           f"page (Train tab) or with python -m vision_backend detector train --project "
                           f"\"{self.name}\".")
        return loaded_detector(saved, f"{self.name}/{saved.stem}", f"{self.name} ({saved.meta.get('kind')})")

    def delete(self) -> None:
        self.store.remove(self.scope)


def _boxes(count: int) -> str:
    return f"{count} box{'es' if count != 1 else ''}"


def _class_id(db: Transaction, name: str) -> int:
    db.execute("INSERT INTO classes (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
    return int(db.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()[0])


def _insert_boxes(db: Transaction, photo_id: int, boxes: np.ndarray, labels: Sequence[str]) -> None:
    for box, label in zip(np.asarray(boxes, np.float64).reshape(-1, 4).tolist(), labels):
        db.execute("INSERT INTO boxes (photo, class, x1, y1, x2, y2) VALUES (?, ?, ?, ?, ?, ?)",
                   (photo_id, _class_id(db, label), *box))


# ---- trained detectors, loaded once ------------------------------------------------------------------
_LOADED: OrderedDict[tuple[str, float, str], Any] = OrderedDict()
_LOADED_LOCK = threading.Lock()


def loaded_detector(saved: SavedModel, name: str, title: str = "") -> Any:
    """The saved detector as a model object (``own_detection.detector``), kept loaded for every session: a saved
    model never changes (a new training is a new key), so one loaded copy per (file, save, name) serves all."""
    key = (saved.key, saved.saved, name)
    with _LOADED_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
    from vision_backend.own_detection.detector import detector_from_saved

    detector = detector_from_saved(saved.read(), saved.meta, name, title)
    with _LOADED_LOCK:
        detector = _LOADED.setdefault(key, detector)
        while len(_LOADED) > KEEP_LOADED:
            _LOADED.popitem(last=False)
    return detector


__all__ = ["CATALOGUE", "DetectionProject", "FOLDER", "Report", "SCHEMA", "StoredPhoto", "checked_boxes",
           "loaded_detector", "upright"]
