"""Storage every collection here shares: SQLite catalogues, content-addressed files, atomic writes, names.

Projects and the face gallery are each a folder: a SQLite catalogue plus files named by the
SHA-256 of their bytes (the same upload twice is one file). The rules that keep them whole
when a process is killed, two processes write at once, or a name is hostile live here:

* files are written to a unique temporary name in the target folder and renamed over the
  target (a reader sees the old file or the new one, never half of either);
* SQLite runs in WAL mode with a busy timeout; every change is one ``BEGIN IMMEDIATE``
  transaction, and a content file is written inside the transaction that records it, so an
  orphan can only come from a crash between the two, and the sweep on open (under the same
  write lock) removes it;
* one rule for names (:func:`check_name`), with a message a person can act on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import tempfile
import time
import unicodedata
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from vision_backend.errors import InvalidName, NameTaken

MAX_NAME = 100
TEMP_SUFFIX = ".tmp"




def check_name(name: str, what: str = "name") -> str:
    """``name`` stripped, or :class:`InvalidName` if it cannot name a class, person or project.

    Printable characters only, no path separators, at most 100 characters and 255 bytes, no leading dot,
    not ``__MACOSX``: names become folder names in exports, and a name must never leave its folder.
    """
    if not isinstance(name, str):
        raise InvalidName(f"A {what} must be text.")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise InvalidName(f"Give the {what} a name.")
    if len(cleaned) > MAX_NAME:
        raise InvalidName(f"A {what} has at most {MAX_NAME} characters ({len(cleaned)} given).")
    if any(c in "/\\" for c in cleaned):
        raise InvalidName(f"A {what} cannot contain / or \\.")
    if any(not c.isprintable() for c in cleaned):
        raise InvalidName(f"A {what} cannot contain control characters (new lines, tabs, NUL).")
    if cleaned in (".", "..") or cleaned.startswith("."):
        raise InvalidName(f"A {what} cannot start with a dot.")
    if cleaned == "__MACOSX":
        raise InvalidName(f"A {what} cannot be __MACOSX (ZIP tools keep macOS metadata there).")
    if len(cleaned.encode()) > 255:
        raise InvalidName(f"A {what} is at most 255 bytes as a file name; this one is {len(cleaned.encode())}.")
    return cleaned


def safe_part(name: str, fallback: str = "file", limit: int = 120) -> str:
    """Any text made into one harmless path component (for names inside exported archives)."""
    cleaned = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in unicodedata.normalize("NFC", name))
    cleaned = cleaned.strip().lstrip(".") or fallback
    while len(cleaned.encode()) > limit:
        cleaned = cleaned[:-1]
    return cleaned


# ---- files -------------------------------------------------------------------------------------
TEMP_NAME = re.compile(r"\.(\d+)\.[^.]+\.tmp[^.]*(\.\w+)?$")


def _temp_name(target: Path, suffix: str = "") -> Path:
    """A unique temporary file beside ``target``, named with this process's id (see :func:`sweep_temp`)
    and ending in ``suffix`` for writers that insist on one (Keras's ``.keras``)."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name[:40]}.{os.getpid()}.", suffix=TEMP_SUFFIX + suffix,
                                    dir=target.parent)
    os.close(handle)
    return Path(name)


@contextlib.contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path to write ``target``'s new content to with any writer (``model.save``,
    ``np.savez``); it replaces ``target`` when the block ends, and is removed if the block fails."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(target, suffix)
    try:
        yield temp
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def atomic_write(target: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``target`` atomically (flushed to disk before the rename)."""
    with atomic_path(target) as temp:
        with open(temp, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(target)


def sweep_temp(folder: Path, older_than_s: float = 3600.0) -> int:
    """Remove temporary files left by writers that died (their process is gone, or they are old)."""
    removed = 0
    for temp in Path(folder).glob(f".*{TEMP_SUFFIX}*"):
        found = TEMP_NAME.search(temp.name)
        pid = int(found.group(1)) if found else -1
        try:
            stale = not _alive(pid) or time.time() - temp.stat().st_mtime > older_than_s
        except FileNotFoundError:
            continue
        if stale:
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BlobStore:
    """Files named by the SHA-256 of their bytes (plus a suffix), in one folder. A file's name is its key."""

    def __init__(self, folder: Path, suffix: str = ""):
        self.folder = Path(folder)
        self.suffix = suffix
        self.folder.mkdir(parents=True, exist_ok=True)

    def key(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest() + self.suffix

    def path(self, key: str) -> Path:
        return self.folder / Path(key).name

    def put(self, data: bytes) -> str:
        """Store ``data`` once; returns its key."""
        key = self.key(data)
        if not self.path(key).is_file():
            atomic_write(self.path(key), data)
        return key

    def keys(self) -> set[str]:
        return {p.name for p in self.folder.iterdir() if not p.name.startswith(".") and p.is_file()}

    def sweep(self, referenced: Iterable[str]) -> int:
        """Remove every stored file no row refers to, and dead writers' temporary files.

        Call it inside the catalogue's write transaction: writers store a file and its row under
        that lock, so no file seen here is waiting for a row that is about to be written.
        """
        removed = sweep_temp(self.folder)
        for key in self.keys() - set(referenced):
            self.path(key).unlink(missing_ok=True)
            removed += 1
        return removed


# ---- SQLite ------------------------------------------------------------------------------------
class Database:
    """A SQLite catalogue: WAL, a busy timeout, foreign keys, and one transaction per change."""

    BUSY_TIMEOUT_S = 30.0

    def __init__(self, path: Path, schema: str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.transaction() as db:
            for statement in filter(str.strip, schema.split(";")):
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
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken at the start, so two
        writers queue instead of failing half-way); committed if the block succeeds, else rolled back."""
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

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple]:
        db = self.connect()
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def integrity(self) -> str:
        return self.rows("PRAGMA integrity_check")[0][0]

    def rename(self, sql: str, args: tuple[Any, ...], taken: str) -> None:
        """One renaming ``UPDATE`` in its own transaction; a name already in use raises :class:`NameTaken`
        with ``taken`` (the person's words), never SQLite's IntegrityError."""
        try:
            with self.transaction() as db:
                db.execute(sql, args)
        except sqlite3.IntegrityError as error:
            if unique_violation(error):
                raise NameTaken(taken) from None
            raise


def unique_violation(error: sqlite3.IntegrityError) -> bool:
    return "UNIQUE" in str(error)


class FeatureCache:
    """Vectors computed from files, kept in one ``.npz`` by key, so each is computed once.

    A cache, not a record: two writers at once may each write their own version and the last one
    stays; nothing is lost that cannot be computed again.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        try:
            with np.load(self.path) as stored:
                return {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return {}  # a cache that cannot be read is computed again

    def lookup(self, keys: list[str], compute: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for ``keys`` (one row each, in order), computing only the missing ones with
        ``compute(missing_keys)``. Returns the rows and how many had to be computed."""
        cache = self.load()
        missing = [k for k in dict.fromkeys(keys) if k not in cache]
        if missing:
            cache.update(zip(missing, compute(missing)))
            with atomic_path(self.path) as temp:
                with open(temp, "wb") as handle:
                    np.savez(handle, **cache)
        return np.stack([cache[k] for k in keys]) if keys else np.zeros((0,)), len(missing)
