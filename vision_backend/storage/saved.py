"""Trained models kept with a collection, each file and its metadata as one unit.

A model's file is a blob (its key the SHA-256 of its bytes) and its metadata (classes, accuracy, base) a row
that names the blob, written in one transaction: a crash leaves the old pair or the new one, never a new
model with an old model's class names, and a file whose row never came is swept as any orphan blob is.
The key also names everything derived from the file (its ONNX or TFLite conversion, its loaded model in
memory), so nothing derived can outlive the file it came from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from vision_backend.errors import NotFound
from vision_backend.storage.files import scratch_file
from vision_backend.storage.types import Blobs, Catalogue, Transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS saved_models (
    stem TEXT PRIMARY KEY, blob TEXT NOT NULL, meta TEXT NOT NULL, saved DOUBLE PRECISION NOT NULL)
"""


@dataclass(frozen=True)
class SavedModel:
    stem: str
    key: str
    meta: dict[str, Any]
    saved: float
    blobs: Blobs

    @property
    def path(self) -> Path:
        """The file on this machine (the blob itself, or a cached copy)."""
        return self.blobs.local(self.key)

    def read(self) -> bytes:
        return self.blobs.read(self.key)


class SavedModels:
    """The models of one collection: ``stem`` (its name) -> file and metadata."""

    def __init__(self, catalogue: Catalogue, blobs: Blobs):
        self.catalogue, self.blobs = catalogue, blobs
        with catalogue.transaction() as db:
            db.execute(SCHEMA)

    def save(self, stem: str, data: bytes, meta: dict[str, Any]) -> SavedModel:
        """Keep ``data`` as ``stem`` with ``meta``: the blob and its row in one transaction."""
        text = json.dumps(meta, default=float)
        now = time.time()
        with self.catalogue.transaction() as db:
            key = self.blobs.put(data)
            db.execute("INSERT INTO saved_models (stem, blob, meta, saved) VALUES (?, ?, ?, ?) ON CONFLICT (stem) "
                       "DO UPDATE SET blob = excluded.blob, meta = excluded.meta, saved = excluded.saved",
                       (stem, key, text, now))
        self.sweep_after()  # the file this stem held before, if no other stem has it
        return SavedModel(stem, key, json.loads(text), now, self.blobs)

    def save_written(self, stem: str, write: Callable[[Path], None], meta: dict[str, Any], suffix: str) -> SavedModel:
        """:meth:`save` for writers that want a path (``model.save(path)``): written to a scratch file of the
        blob store first (a killed writer's is swept when the collection opens), then kept as bytes."""
        with scratch_file(self.blobs.scratch(), suffix) as path:
            write(path)
            return self.save(stem, path.read_bytes(), meta)

    def all(self) -> dict[str, SavedModel]:
        """Every saved model by stem, oldest first."""
        rows = self.catalogue.rows("SELECT stem, blob, meta, saved FROM saved_models ORDER BY saved, stem")
        return {stem: SavedModel(stem, key, json.loads(meta), saved, self.blobs) for stem, key, meta, saved in rows}

    def get(self, stem: str) -> SavedModel:
        found = self.all().get(stem)
        if found is None:
            raise NotFound(f"There is no saved model called “{stem}”.")
        return found

    def newest(self) -> SavedModel | None:
        saved = self.all()
        return max(saved.values(), key=lambda m: m.saved) if saved else None

    def delete(self, stem: str) -> None:
        with self.catalogue.transaction() as db:
            db.execute("DELETE FROM saved_models WHERE stem = ?", (stem,))
        self.sweep_after()

    def keep_newest(self, count: int) -> list[str]:
        """Delete all but the ``count`` newest (a model saved per session must not pile up); the stems gone."""
        old = [m.stem for m in sorted(self.all().values(), key=lambda m: m.saved, reverse=True)[count:]]
        for stem in old:
            self.delete(stem)
        return old

    def sweep(self, db: Transaction) -> int:
        return self.blobs.sweep(self.referenced(db))

    def sweep_after(self) -> int:
        """Files no committed row names, removed in a transaction of their own once a change has committed: removed
        inside the change, a kill before its commit left the old row naming a file already gone (1 trial in 10)."""
        with self.catalogue.transaction() as db:
            return self.sweep(db)

    @staticmethod
    def referenced(db: Transaction) -> list[str]:
        return [key for (key,) in db.execute("SELECT blob FROM saved_models").fetchall()]
