"""The laptop default behind the storage interface: a SQLite file per catalogue and a folder per blob store.

A scope is a folder under the store's root (``projects/Shoes/``), its catalogue ``NAME.sqlite`` and its
blobs ``KIND/<sha256>``: the layout workspaces always had, so existing ones open as they are. SQLite
runs in WAL mode with a busy timeout; every change is one ``BEGIN IMMEDIATE`` transaction; a blob is
written to a unique temporary name beside it and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

from vision_backend.storage.files import atomic_write, sweep_temp
from vision_backend.storage.types import Blobs, Catalogue, Store

SQLITE_TYPES = {"ID": "INTEGER PRIMARY KEY", "BLOB": "BLOB", "REAL": "REAL"}


class FolderBlobs(Blobs):
    """Blobs as files in one folder, each named by its key."""

    def __init__(self, folder: Path, suffix: str = ""):
        super().__init__(suffix)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.folder / Path(key).name  # a key never leaves the folder

    def put(self, data: bytes) -> str:
        key = self.key(data)
        if not self.path(key).is_file():
            atomic_write(self.path(key), data)
        return key

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def local(self, key: str) -> Path:
        return self.path(key)

    def keys(self) -> set[str]:
        return {p.name for p in self.folder.iterdir() if not p.name.startswith(".") and p.is_file()}

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def leftovers(self) -> int:
        return sweep_temp(self.folder)

    def scratch(self) -> Path:
        return self.folder


class SQLiteCatalogue(Catalogue):
    """A SQLite file: WAL, a busy timeout, foreign keys, and one transaction per change."""

    BUSY_TIMEOUT_S = 30.0

    def __init__(self, path: Path, schema: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            for statement in filter(str.strip, schema.format(**SQLITE_TYPES).split(";")):
                db.execute(statement)

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT_S * 1000)}")
        self._write_ahead_log(db)
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _write_ahead_log(self, db: sqlite3.Connection) -> None:
        """Switch to WAL, retrying while another process holds the file: the switch needs the file to itself
        and SQLite answers "database is locked" at once, without its busy timeout, when two processes open
        a new catalogue together."""
        deadline = time.monotonic() + self.BUSY_TIMEOUT_S
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        db = self.connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        db = self.connect()
        try:
            return db.execute(sql, tuple(args)).fetchall()
        finally:
            db.close()

    def unique_violation(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def tables(self) -> list[str]:
        return [t for (t,) in self.rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                        "'sqlite!_%' ESCAPE '!' ORDER BY name")]

    def integrity(self) -> str:
        return self.rows("PRAGMA integrity_check")[0][0]


class LocalStore(Store):
    """Collections as folders under ``root`` (a workspace's own folder, or the app's)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"<LocalStore {self.root}>"

    @property
    def where(self) -> str:
        return str(self.root)

    def folder(self, scope: str) -> Path:
        return self.root / scope if scope else self.root

    def catalogue(self, scope: str, name: str, schema: str) -> SQLiteCatalogue:
        return SQLiteCatalogue(self.folder(scope) / f"{name}.sqlite", schema)

    def blobs(self, scope: str, kind: str, suffix: str = "") -> FolderBlobs:
        return FolderBlobs(self.folder(scope) / kind, suffix)

    def has(self, scope: str, name: str) -> bool:
        return (self.folder(scope) / f"{name}.sqlite").is_file()

    def children(self, parent: str, name: str) -> list[str]:
        folder = self.folder(parent)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if not p.name.startswith(".") and (p / f"{name}.sqlite").is_file())

    def catalogues(self, prefix: str = "") -> list[tuple[str, str]]:
        """Every ``NAME.sqlite`` at or under the prefix's folder (folders starting with a dot are not scopes)."""
        found = []
        for path in self.folder(prefix).rglob("*.sqlite") if self.folder(prefix).is_dir() else ():
            parts = path.relative_to(self.root).parts
            if path.is_file() and not any(part.startswith(".") for part in parts):
                found.append(("/".join(parts[:-1]), path.stem))
        return sorted(found)

    def remove(self, scope: str) -> None:
        """The folder renamed away first (one atomic step: it is gone for every reader), then deleted."""
        folder = self.folder(scope)
        if not folder.is_dir():
            return
        gone = folder.with_name(f".removed-{uuid.uuid4().hex}")
        os.replace(folder, gone)
        shutil.rmtree(gone, ignore_errors=True)

    def local_dir(self, scope: str) -> Path:
        folder = self.folder(scope)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def touch(self, scope: str) -> None:
        folder = self.local_dir(scope)
        os.utime(folder)

    def remove_stale(self, parent: str, max_age_s: float) -> int:
        """Scopes whose newest file (or the folder itself) is older than ``max_age_s``."""
        root, removed = self.folder(parent), 0
        for scope in root.iterdir() if root.is_dir() else ():
            if scope.name.startswith(".") or not scope.is_dir():
                continue
            newest = max((p.stat().st_mtime for p in scope.rglob("*")), default=scope.stat().st_mtime)
            if time.time() - max(newest, scope.stat().st_mtime) > max_age_s:
                shutil.rmtree(scope, ignore_errors=True)
                removed += 1
        return removed
