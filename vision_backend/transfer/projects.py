"""Labelled-image projects for transfer learning, kept in a workspace so nothing labelled is ever lost.

A project is a scope of the workspace's store (``projects/<name>``): its ``images`` blobs hold every
example once, named by the SHA-256 of its bytes (the same upload twice is one file), and its
catalogue says which class each example belongs to and which trained models it keeps. Everything goes
through :mod:`vision_backend.storage`'s interface (SQLite and folders on a laptop, PostgreSQL and S3
on several servers): one transaction per change, each photo stored inside the transaction that
records it, a trained model and its metadata saved as one unit, orphans swept when the project
opens, one rule for names. Base-network features are cached per (photo, base, pooling) on this
machine (derived data): adding five photos later costs five forward passes.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from vision_backend.archive import MAX_ENTRY_PIXELS, Entry, Skipped, class_images, entry_count
from vision_backend.errors import ImageIntakeError, NotFound
from vision_backend.imageops import centre_crop
from vision_backend.intake import MAX_PIXELS, check_photo, read_image_file
from vision_backend.storage import (FeatureCache, SavedModel, SavedModels, Store, Transaction, check_name, join,
                                    safe_part)

SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (id {ID}, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id {ID}, class INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    digest TEXT NOT NULL, source TEXT, added {REAL} NOT NULL, UNIQUE (class, digest))
"""
CATALOGUE = "catalogue"
IMPORT_BATCH = 64
"""Photos of a ZIP stored in one transaction."""


@dataclass(frozen=True)
class Example:
    id: int
    label: str
    digest: str
    path: Path
    source: str


class Project:
    """One project: scope ``parent/<name>`` of ``store`` (``parent`` is a workspace's ``projects``)."""

    def __init__(self, store: Store, parent: str, name: str, create: bool = True):
        self.name = check_name(name, "project name")
        self.store, self.scope = store, join(parent, self.name)
        if not create and not store.has(self.scope, CATALOGUE):
            raise NotFound(f"There is no project called “{self.name}”.")
        self.images = store.blobs(self.scope, "images")
        self.db = store.catalogue(self.scope, CATALOGUE, SCHEMA)
        self.models = SavedModels(self.db, store.blobs(self.scope, "models", ".keras"))
        self._adopt_legacy_models()
        with self.db.transaction() as db:
            self.images.sweep(d for (d,) in db.execute("SELECT digest FROM examples").fetchall())
            self.models.sweep(db)

    def _adopt_legacy_models(self) -> None:
        """Models an earlier version kept as ``models/<stem>.keras`` beside ``<stem>.json``: kept as saved models
        (file and metadata as one unit) the first time the project opens. All are read before the first is
        saved, since saving sweeps the folder of files no row names."""
        folder = self.derived / "models"
        legacy = [p for p in folder.glob("*.keras") if len(p.stem) != 64 and not p.name.startswith(".")] \
            if folder.is_dir() else []
        found = [(p.stem, p.read_bytes(), json.loads(p.with_suffix(".json").read_text())
                  if p.with_suffix(".json").is_file() else {}) for p in sorted(legacy)]
        for stem, data, meta in found:
            self.models.save(stem, data, meta)

    @property
    def derived(self) -> Path:
        """This machine's folder for what is made from the project's data again at will (features, conversions)."""
        return self.store.local_dir(self.scope)

    def image_path(self, digest: str) -> Path:
        return self.images.local(digest)

    # ---- classes --------------------------------------------------------------------------
    def classes(self) -> list[str]:
        return [n for (n,) in self.db.rows("SELECT name FROM classes ORDER BY name")]

    def add_class(self, name: str) -> str:
        name = check_name(name, "class name")
        with self.db.transaction() as db:
            db.execute("INSERT INTO classes (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
        return name

    def rename_class(self, old: str, new: str) -> None:
        new = check_name(new, "class name")
        self.db.rename("UPDATE classes SET name = ? WHERE name = ?", (new, old),
                       f"There is already a class called “{new}”; pick another name.")

    def delete_class(self, name: str) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM classes WHERE name = ?", (name,))
        self.sweep_images()

    # ---- examples -------------------------------------------------------------------------
    def add_example(self, label: str, data: bytes, source: str = "", max_pixels: int = MAX_PIXELS,
                    notes: list[str] | None = None, shown_as: str = "") -> bool:
        """Store one photo (checked to decode first) under ``label``; False if it was already there.
        What the person should know about the file ("frame 1 of 3") goes to ``notes``, naming it
        ``shown_as`` (its path in an archive) or its ``source``."""
        label = check_name(label, "class name")
        note = check_photo(data, shown_as or source or "upload", max_pixels=max_pixels)  # refuse what cannot be read
        if note and notes is not None:
            notes.append(note)
        with self.db.transaction() as db:
            digest = self.images.put(data)
            return self._record_example(db, label, digest, source)

    @staticmethod
    def _record_example(db: Transaction, label: str, digest: str, source: str) -> bool:
        db.execute("INSERT INTO classes (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (label,))
        (class_id,) = db.execute("SELECT id FROM classes WHERE name = ?", (label,)).fetchone()
        cursor = db.execute("INSERT INTO examples (class, digest, source, added) VALUES (?, ?, ?, ?) "
                            "ON CONFLICT DO NOTHING",
                            (class_id, digest, safe_part(Path(source).name, "photo") if source else "", time.time()))
        return cursor.rowcount == 1

    def add_examples(self, label: str, photos: Iterable[tuple[str, bytes]],
                     notes: list[str] | None = None) -> tuple[int, list[str]]:
        """Several uploads added to ``label``: (how many were new, one message per photo refused), so
        one bad file among many is said and the rest are kept."""
        added, skipped = 0, []
        for name, data in photos:
            try:
                added += self.add_example(label, data, name, notes=notes)
            except ImageIntakeError as error:
                skipped.append(str(error))
        return added, skipped

    def examples(self, label: str | None = None) -> list[Example]:
        query = ("SELECT e.id, c.name, e.digest, e.source FROM examples e JOIN classes c ON c.id = e.class"
                 + (" WHERE c.name = ?" if label else "") + " ORDER BY c.name, e.id")
        rows = self.db.rows(query, (label,) if label else ())
        return [Example(i, n, d, self.images.local(d), s) for i, n, d, s in rows]

    def counts(self) -> dict[str, int]:
        rows = self.db.rows("SELECT c.name, COUNT(e.id) FROM classes c LEFT JOIN examples e ON e.class = c.id "
                            "GROUP BY c.id ORDER BY c.name")
        return dict(rows)

    def move_example(self, example: int, label: str) -> None:
        label = check_name(label, "class name")
        with self.db.transaction() as db:
            db.execute("INSERT INTO classes (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (label,))
            (target,) = db.execute("SELECT id FROM classes WHERE name = ?", (label,)).fetchone()
            # a photo already in the target class stays where it is (one photo, one row per class)
            db.execute("UPDATE examples SET class = ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM examples other "
                       "WHERE other.class = ? AND other.digest = examples.digest)", (target, example, target))

    def delete_example(self, example: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM examples WHERE id = ?", (example,))
        self.sweep_images()

    def sweep_images(self) -> None:
        """Photos no committed example names, removed after the change's commit (a kill before it must not leave
        rows naming removed files)."""
        with self.db.transaction() as db:
            self.images.sweep(d for (d,) in db.execute("SELECT digest FROM examples").fetchall())

    def problems(self) -> list[str]:
        """What stops training, said plainly (an empty list means ready)."""
        counts = {k: v for k, v in self.counts().items() if v}
        issues = []
        if len(counts) < 2:
            issues.append("Training needs at least two classes with examples.")
        issues += [f"Class '{k}' has {v} example(s); give it at least 2 (10 or more works well)."
                   for k, v in counts.items() if v < 2]
        return issues

    def feature_cache(self, name: str) -> FeatureCache:
        return FeatureCache(self.derived / "features" / f"{safe_part(name)}.npz")

    # ---- trained models ---------------------------------------------------------------------
    def save_model(self, stem: str, model: Any, meta: dict[str, Any]) -> SavedModel:
        """Keep a trained Keras model and its metadata with the project, as one unit (see ``SavedModels``)."""
        return self.models.save_written(safe_part(stem), model.save, meta, ".keras")

    def saved_models(self) -> dict[str, SavedModel]:
        """Models trained on this project, by stem."""
        return self.models.all()

    # ---- export and import ----------------------------------------------------------------
    def export_zip(self) -> bytes:
        """One folder per class, the photos inside: the layout :meth:`import_zip` and most tools read.

        A class's folder is its name as is (the naming rule already made it one safe path part, up
        to 255 bytes; shortening it would rename the class on import). Each photo is prefixed with
        its digest, so same-named photos of one class stay apart; import takes the prefix off.
        """
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for example in self.examples():
                archive.write(example.path, f"{safe_part(example.label, 'class', limit=255)}/{example.digest[:16]}_"
                                            f"{safe_part(example.source, 'photo')}")
        return buffer.getvalue()

    def import_zip(self, data: Any, notes: list[str] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[int, list[str]]:
        """Add every photo of a ZIP laid out as ``<class>/<photo>``; returns (added, skipped with reasons).

        Photos are checked one by one and stored a batch at a time, one transaction a batch (a transaction a
        photo made a ZIP of 5,000 photos take 105 s); ``progress(done, total)`` after each batch."""
        total = entry_count(data)
        added, skipped, batch, done = 0, [], [], 0
        for item in class_images(data):
            done += 1
            checked = self._checked(item, notes)
            if isinstance(checked, str):
                skipped.append(checked)
            else:
                batch.append(checked)
            if len(batch) >= IMPORT_BATCH or done == total:
                added += self._store(batch)
                batch = []
                if progress:
                    progress(done, total)
        return added + self._store(batch), skipped

    def _checked(self, item: Entry | Skipped, notes: list[str] | None) -> tuple[str, bytes, str] | str:
        """(class, bytes, source name) of an archive entry that decodes, or why it is skipped."""
        if isinstance(item, Skipped):
            return str(item)
        try:
            label = check_name(item.label, "class name")
            note = check_photo(item.data, f"{item.label}/{item.name}", max_pixels=MAX_ENTRY_PIXELS)
        except ValueError as error:  # not a photo, or a name the rule refuses: said, the rest imported
            return f"{item.label}/{item.name}: {error}"
        if note and notes is not None:
            notes.append(note)
        return label, item.data, _exported_source(item)

    def _store(self, batch: list[tuple[str, bytes, str]]) -> int:
        """Checked photos stored in one transaction (each file inside it, as one photo's would be)."""
        if not batch:
            return 0
        with self.db.transaction() as db:
            return sum(self._record_example(db, label, self.images.put(data), source) for label, data, source in batch)

    def delete(self) -> None:
        self.store.remove(self.scope)


def _exported_source(entry: Entry) -> str:
    """The photo's own name when the entry came from :meth:`Project.export_zip` (its digest prefix
    off), so an export then import gives back the same examples with the same names."""
    prefix = hashlib.sha256(entry.data).hexdigest()[:16] + "_"
    return entry.name[len(prefix):] if entry.name.startswith(prefix) and len(entry.name) > len(prefix) else entry.name


def thumbnail(path: Path, side: int = 160) -> np.ndarray | None:
    """A stored photo as a small square RGB array (its centre) for the page's grid, decoded the one
    way every photo is (so a 16-bit PNG or a CMYK JPEG shows like any other); None when it cannot be
    read, so the page can still offer to delete it."""
    try:
        return centre_crop(read_image_file(path), side, side)
    except (ImageIntakeError, OSError):
        return None


__all__ = ["CATALOGUE", "Entry", "Example", "Project", "thumbnail"]
