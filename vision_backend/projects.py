"""Labelled-image projects for transfer learning, kept on disk so nothing labelled is ever lost.

A project is a folder under ``$VISION_LAB_HOME/projects/<name>/``: ``images/`` holds every
example once, named by the SHA-256 of its bytes (the same upload twice is one file), and
``catalogue.sqlite`` says which class each example belongs to. Files are written to a
temporary name and renamed, and catalogue changes are transactions, so a killed process
leaves either the old state or the new one. Base-network features are cached per (image
hash, base model) in ``features/<base>.npz``: adding five photos later costs five forward passes.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sqlite3
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vision_backend import paths
from vision_backend.intake import read_image

NAME = re.compile(r"^[\w][\w .-]{0,63}$")


def projects_root() -> Path:
    return paths.app_dir("projects")


def list_projects() -> list[str]:
    return sorted(p.name for p in projects_root().iterdir() if (p / "catalogue.sqlite").is_file())


@dataclass(frozen=True)
class Example:
    id: int
    label: str
    digest: str
    path: Path
    source: str


class Project:
    def __init__(self, name: str, create: bool = True):
        if not NAME.match(name or ""):
            raise ValueError("a project name is letters, digits, spaces, '.', '-' or '_' (up to 64)")
        self.name = name
        self.folder = projects_root() / name
        if not (self.folder / "catalogue.sqlite").is_file() and not create:
            raise FileNotFoundError(f"no project called {name}")
        (self.folder / "images").mkdir(parents=True, exist_ok=True)
        (self.folder / "features").mkdir(exist_ok=True)
        (self.folder / "models").mkdir(exist_ok=True)
        with self._connect() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS classes (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
                CREATE TABLE IF NOT EXISTS examples (
                    id INTEGER PRIMARY KEY, class INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
                    digest TEXT NOT NULL, source TEXT, added REAL NOT NULL, UNIQUE (class, digest));
            """)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.folder / "catalogue.sqlite", timeout=10)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        return db

    # ---- classes --------------------------------------------------------------------------
    def classes(self) -> list[str]:
        with self._connect() as db:
            return [n for (n,) in db.execute("SELECT name FROM classes ORDER BY name")]

    def add_class(self, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("give the class a name")
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO classes (name) VALUES (?)", (name,))

    def rename_class(self, old: str, new: str) -> None:
        if not new.strip():
            raise ValueError("give the class a name")
        with self._connect() as db:
            db.execute("UPDATE classes SET name = ? WHERE name = ?", (new.strip(), old))

    def delete_class(self, name: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM classes WHERE name = ?", (name,))

    # ---- examples -------------------------------------------------------------------------
    def add_example(self, label: str, data: bytes, source: str = "") -> bool:
        """Store one image (checked to decode first) under ``label``; False if it was already there."""
        read_image(data, source or "upload")  # refuse what cannot be read before storing anything
        digest = hashlib.sha256(data).hexdigest()
        target = self.folder / "images" / digest
        if not target.exists():
            partial = target.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(target)
        self.add_class(label)
        with self._connect() as db:
            (class_id,) = db.execute("SELECT id FROM classes WHERE name = ?", (label.strip(),)).fetchone()
            cursor = db.execute("INSERT OR IGNORE INTO examples (class, digest, source, added) VALUES (?, ?, ?, ?)",
                                (class_id, digest, source, time.time()))
            return cursor.rowcount == 1

    def examples(self, label: str | None = None) -> list[Example]:
        query = ("SELECT e.id, c.name, e.digest, e.source FROM examples e JOIN classes c ON c.id = e.class"
                 + (" WHERE c.name = ?" if label else "") + " ORDER BY c.name, e.id")
        with self._connect() as db:
            rows = db.execute(query, (label,) if label else ()).fetchall()
        return [Example(i, n, d, self.folder / "images" / d, s) for i, n, d, s in rows]

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT c.name, COUNT(e.id) FROM classes c LEFT JOIN examples e ON e.class = c.id "
                              "GROUP BY c.id ORDER BY c.name").fetchall()
        return dict(rows)

    def move_example(self, example: int, label: str) -> None:
        self.add_class(label)
        with self._connect() as db:
            db.execute("UPDATE OR IGNORE examples SET class = (SELECT id FROM classes WHERE name = ?) WHERE id = ?",
                       (label.strip(), example))

    def delete_example(self, example: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM examples WHERE id = ?", (example,))

    def problems(self) -> list[str]:
        """What stops training, said plainly (an empty list means ready)."""
        counts = {k: v for k, v in self.counts().items() if v}
        issues = []
        if len(counts) < 2:
            issues.append("Training needs at least two classes with examples.")
        issues += [f"Class '{k}' has {v} example(s); give it at least 2 (10 or more works well)."
                   for k, v in counts.items() if v < 2]
        return issues

    # ---- trained models ---------------------------------------------------------------------
    def save_model(self, stem: str, model: Any, meta: dict[str, Any]) -> Path:
        """Keep a trained model (``.keras``, written atomically) and its metadata with the project.

        Conversions of an earlier model of the same name (ONNX, TFLite) are removed: they are stale.
        """
        path = self.folder / "models" / f"{stem}.keras"
        partial = path.with_suffix(".partial.keras")
        model.save(partial)
        partial.replace(path)
        for stale in (path.with_suffix(".onnx"), path.with_suffix(".tflite")):
            stale.unlink(missing_ok=True)
        path.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=float))
        return path

    def saved_models(self) -> dict[str, tuple[Path, dict[str, Any]]]:
        """Models trained on this project: file stem -> (its .keras file, its metadata JSON)."""
        found = {}
        for path in sorted(p for p in (self.folder / "models").glob("*.keras") if ".partial" not in p.name):
            meta = path.with_suffix(".json")
            found[path.stem] = (path, json.loads(meta.read_text()) if meta.is_file() else {})
        return found

    # ---- export and import ----------------------------------------------------------------
    def export_zip(self) -> bytes:
        """One folder per class, the images inside: the layout :func:`import_zip` and most tools read."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for example in self.examples():
                archive.write(example.path, f"{example.label}/{example.digest[:16]}_{Path(example.source).name or 'image'}")
        return buffer.getvalue()

    def import_zip(self, data: bytes) -> tuple[int, list[str]]:
        """Add every image of a ZIP laid out as ``<class>/<image>``; returns (added, skipped with reasons)."""
        added, skipped = 0, []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                parts = Path(info.filename).parts
                if info.is_dir() or len(parts) < 2 or parts[-1].startswith("."):
                    continue
                try:
                    added += self.add_example(parts[-2], archive.read(info), parts[-1])
                except Exception as error:  # noqa: BLE001 — a bad file is reported, the rest imported
                    skipped.append(f"{info.filename}: {error}")
        return added, skipped

    def delete(self) -> None:
        shutil.rmtree(self.folder)

    # ---- the feature cache ----------------------------------------------------------------
    def cached_features(self, base: str, digests: list[str], compute: Any) -> tuple[np.ndarray, int]:
        """Features for ``digests``, computing only the missing ones with ``compute(paths)``.

        Returns the (N, d) features and how many had to be computed.
        """
        path = self.folder / "features" / f"{base}.npz"
        cache = dict(np.load(path)) if path.is_file() else {}
        missing = [d for d in dict.fromkeys(digests) if d not in cache]
        if missing:
            fresh = compute([self.folder / "images" / d for d in missing])
            cache.update(zip(missing, fresh))
            partial = path.with_suffix(".partial.npz")
            np.savez(partial, **cache)
            partial.replace(path)
        return np.stack([cache[d] for d in digests]), len(missing)
