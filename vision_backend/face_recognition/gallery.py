"""The gallery: enrolled people and their faces, kept in a person's workspace.

A catalogue (people, and each face's embedding per recogniser) plus PNG crops stored by content hash,
through :mod:`vision_backend.storage`'s interface: every change is one transaction, a crop is stored
inside the transaction that records it, the same face of the same photo enrolled twice is one row,
and opening the gallery sweeps crops that a crash left without a row. Face embeddings are biometric
data: a gallery lives in one workspace and is never shared.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vision_backend.intake import encode_png
from vision_backend.storage import Store, Transaction, check_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS people (id {ID}, name TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id {ID}, person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    recogniser TEXT NOT NULL, embedding {BLOB} NOT NULL, crop TEXT NOT NULL, source TEXT, added {REAL} NOT NULL);
DELETE FROM faces WHERE id NOT IN (SELECT MIN(id) FROM faces GROUP BY person, recogniser, crop);
CREATE UNIQUE INDEX IF NOT EXISTS one_face_once ON faces (person, recogniser, crop)
"""


class Gallery:
    """Enrolled people and their faces: scope ``scope`` of ``store`` (a catalogue ``gallery``, blobs ``crops``)."""

    def __init__(self, store: Store, scope: str):
        self.store, self.scope = store, scope
        self.crops = store.blobs(scope, "crops", ".png")
        self.db = store.catalogue(scope, "gallery", SCHEMA)
        with self.db.transaction() as db:
            self._sweep(db)

    def _sweep(self, db: Transaction) -> None:
        self.crops.sweep(crop for (crop,) in db.execute("SELECT crop FROM faces").fetchall())

    # ---- people --------------------------------------------------------------------------------
    def add_person(self, name: str) -> int:
        """The id of the person called ``name``, created if new."""
        name = check_name(name, "person's name")
        with self.db.transaction() as db:
            return self._person(db, name)

    @staticmethod
    def _person(db: Transaction, name: str) -> int:
        db.execute("INSERT INTO people (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
        return db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]

    def rename(self, person: int, name: str) -> None:
        name = check_name(name, "person's name")
        self.db.rename("UPDATE people SET name = ? WHERE id = ?", (name, person),
                       f"Someone called “{name}” is already enrolled; pick another name.")

    def delete_person(self, person: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM people WHERE id = ?", (person,))
            self._sweep(db)

    # ---- faces ---------------------------------------------------------------------------------
    def enrol(self, name: str, recogniser: str, faces: list[tuple[np.ndarray, np.ndarray, str]]) -> int:
        """Enrol (embedding, crop, source photo) faces as ``name`` in one transaction; returns how many
        were new. The person is created only with a first face, so a failed enrolment leaves nobody."""
        name = check_name(name, "person's name")
        if not faces:
            return 0
        with self.db.transaction() as db:
            person = self._person(db, name)
            return sum(self._add_face(db, person, recogniser, *face) for face in faces)

    def add_face(self, person: int, recogniser: str, embedding: np.ndarray, crop: np.ndarray, source: str = "") -> bool:
        """One face for an enrolled person; False if this very face is already enrolled."""
        with self.db.transaction() as db:
            return self._add_face(db, person, recogniser, embedding, crop, source)

    def _add_face(self, db: Transaction, person: int, recogniser: str, embedding: np.ndarray,
                  crop: np.ndarray, source: str) -> bool:
        key = self.crops.put(encode_png(crop))
        vector = np.asarray(embedding, np.float32).tobytes()
        cursor = db.execute("INSERT INTO faces (person, recogniser, embedding, crop, source, added) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            (person, recogniser, vector, key, source, time.time()))
        return cursor.rowcount == 1

    def delete_face(self, face: int) -> None:
        with self.db.transaction() as db:
            db.execute("DELETE FROM faces WHERE id = ?", (face,))
            self._sweep(db)

    # ---- reading -------------------------------------------------------------------------------
    def people(self) -> list[dict[str, Any]]:
        rows = self.db.rows("SELECT p.id, p.name, COUNT(f.id) FROM people p LEFT JOIN faces f ON f.person = p.id "
                            "GROUP BY p.id ORDER BY p.name")
        return [{"id": i, "name": n, "faces": c} for i, n, c in rows]

    def faces(self, person: int) -> list[dict[str, Any]]:
        rows = self.db.rows("SELECT id, recogniser, crop, source FROM faces WHERE person = ? ORDER BY id", (person,))
        return [{"id": i, "recogniser": r, "crop": self.crops.local(c), "source": s} for i, r, c, s in rows]

    def embeddings(self, recogniser: str, dimensions: int) -> tuple[list[str], np.ndarray]:
        """Every enrolled face's person name and embedding for one recogniser."""
        rows = self.db.rows("SELECT p.name, f.embedding FROM faces f JOIN people p ON p.id = f.person "
                            "WHERE f.recogniser = ? ORDER BY f.id", (recogniser,))
        if not rows:
            return [], np.zeros((0, dimensions), np.float32)
        return [n for n, _ in rows], np.stack([np.frombuffer(bytes(e), np.float32) for _, e in rows])
