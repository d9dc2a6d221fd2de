"""Storage as a small interface: where a person's collections live, whatever holds them.

A workspace's collections (a transfer-learning project, the face gallery, the trained CNNs, a detection
project) each have a **catalogue** (rows in a few tables, changed one transaction at a time) and
**blobs** (files named by the SHA-256 of their bytes: the same upload twice is one file). A
:class:`Store` hands both out by *scope*, a path-like name (``people/3fa2…/projects/Shoes``). Two
implementations sit behind it: SQLite files and folders (the laptop default, no server;
:mod:`~vision_backend.storage.local`) and PostgreSQL plus an S3 object store (several servers;
:mod:`~vision_backend.storage.remote`). Projects, the gallery, workspaces, exports and the batch command
line use only this interface.

The rules that keep a collection whole hold for every implementation: a blob is stored before the row
that refers to it is committed, both inside the catalogue's write transaction, so a crash can only leave
a blob no row refers to; opening a collection sweeps those (:meth:`Blobs.sweep`) under the same lock.
SQL is written once, in the subset both engines speak: ``?`` placeholders, ``INSERT ... ON CONFLICT DO
NOTHING``, and ``{ID}``, ``{BLOB}`` and ``{REAL}`` in a schema for the types the two spell differently.
"""

from __future__ import annotations

import contextlib
import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

from vision_backend.errors import NameTaken


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> tuple | None: ...

    def fetchall(self) -> list[tuple]: ...


class Transaction(Protocol):
    """What a write transaction offers: statements with ``?`` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...


class Catalogue(ABC):
    """One collection's rows: a few tables, one write transaction per change."""

    @abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Transaction]:
        """One write transaction, taking the collection's write lock at its start (writers queue instead of
        failing half-way); committed when the block ends, rolled back whole if it fails."""

    @abstractmethod
    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """A read, outside any write transaction."""

    @abstractmethod
    def unique_violation(self, error: BaseException) -> bool:
        """True when ``error`` is this engine's "that value is taken" (a UNIQUE constraint)."""

    @abstractmethod
    def tables(self) -> list[str]:
        """The names of its tables, sorted (an export checks that it copies every one)."""

    def continue_ids(self, db: Transaction, table: str) -> None:
        """After rows were copied into ``table`` with their own ids, make new rows' ids follow them (SQLite's
        ``INTEGER PRIMARY KEY`` does so by itself)."""

    def rename(self, sql: str, args: Sequence[Any], taken: str) -> None:
        """One renaming ``UPDATE`` in its own transaction; a name already in use raises :class:`NameTaken`
        with ``taken`` (the person's words), never the engine's own error."""
        try:
            with self.transaction() as db:
                db.execute(sql, args)
        except Exception as error:
            if self.unique_violation(error):
                raise NameTaken(taken) from None
            raise


class Blobs(ABC):
    """Files named by the SHA-256 of their bytes (plus a suffix); a file's name is its key."""

    def __init__(self, suffix: str = ""):
        self.suffix = suffix

    def key(self, data: bytes) -> str:
        return hashlib.sha256(data).hexdigest() + self.suffix

    @abstractmethod
    def put(self, data: bytes) -> str:
        """Store ``data`` once (whole or not at all); returns its key."""

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def local(self, key: str) -> Path:
        """A file on this machine holding the blob's bytes (the blob itself, or a cached copy), for readers
        that want a path (Keras, Pillow, Streamlit's images)."""

    @abstractmethod
    def keys(self) -> set[str]: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def leftovers(self) -> int:
        """Remove what killed writers left half-written (temporary files, unfinished uploads)."""
        return 0

    def scratch(self) -> Path:
        """A folder on this machine for files on their way in (a model written to a path before it is kept),
        swept of a killed writer's files by :meth:`leftovers`."""
        raise NotImplementedError

    def sweep(self, referenced: Iterable[str]) -> int:
        """Remove every blob no row refers to, and dead writers' leftovers.

        Call it inside the catalogue's write transaction: writers store a blob and its row under that
        lock, so no blob seen here is waiting for a row about to be written.
        """
        removed = self.leftovers()
        for key in self.keys() - set(referenced):
            self.delete(key)
            removed += 1
        return removed


class Store(ABC):
    """Where collections live: a catalogue and blob stores per scope."""

    @property
    @abstractmethod
    def where(self) -> str:
        """Where it is, as a person reads it (a folder, or a database and a bucket; never a password)."""

    @abstractmethod
    def catalogue(self, scope: str, name: str, schema: str) -> Catalogue:
        """The catalogue ``name`` of ``scope``, its tables made from ``schema`` if new."""

    @abstractmethod
    def blobs(self, scope: str, kind: str, suffix: str = "") -> Blobs: ...

    @abstractmethod
    def has(self, scope: str, name: str) -> bool:
        """True when ``scope`` holds a catalogue called ``name`` (a project exists)."""

    @abstractmethod
    def children(self, parent: str, name: str) -> list[str]:
        """The names of the scopes right under ``parent`` that hold a catalogue called ``name``, sorted."""

    @abstractmethod
    def catalogues(self, prefix: str = "") -> list[tuple[str, str]]:
        """(scope, name) of every catalogue at or under ``prefix``, sorted: what a whole copy must carry."""

    @abstractmethod
    def remove(self, scope: str) -> None:
        """Delete ``scope`` and everything under it (its catalogues and blobs)."""

    @abstractmethod
    def local_dir(self, scope: str) -> Path:
        """A folder on this machine for what is derived from ``scope``'s data and can be made again (cached
        features, converted models): per machine, never shared, never the record."""

    @abstractmethod
    def touch(self, scope: str) -> None:
        """Note that ``scope`` was used now (temporary workspaces expire by it)."""

    @abstractmethod
    def remove_stale(self, parent: str, max_age_s: float) -> int:
        """Delete the scopes right under ``parent`` unused for ``max_age_s`` seconds; how many went."""


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield


def join(*parts: str) -> str:
    """Scope parts joined with ``/`` (empty parts left out)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))
