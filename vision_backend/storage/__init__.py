"""Storage every collection here shares: the interface (a catalogue and blobs per scope), its SQLite + folder
implementation, atomic files, names, saved models, and the store this server is configured with.

``open_store()`` is the store workspaces live in: SQLite files and folders under ``$VISION_LAB_HOME`` by
default (a laptop needs no server), or PostgreSQL and an S3 object store where
``VISION_LAB_DATABASE_URL`` and ``VISION_LAB_BLOBS`` are set (several servers; see ``storage.remote``).
"""

from __future__ import annotations

import os
import threading

from vision_backend import paths
from vision_backend.errors import InvalidName, NameTaken
from vision_backend.storage.files import FeatureCache, atomic_path, atomic_write, file_mode, sweep_temp
from vision_backend.storage.local import FolderBlobs, LocalStore, SQLiteCatalogue
from vision_backend.storage.names import MAX_NAME, check_name, safe_part
from vision_backend.storage.saved import SavedModel, SavedModels
from vision_backend.storage.types import Blobs, Catalogue, Store, Transaction, join

_STORES: dict[tuple[str, ...], Store] = {}
_LOCK = threading.Lock()


def configured() -> tuple[str, ...]:
    """What the environment asks for: ("local", home) or ("remote", database URL, blobs URL)."""
    database, blobs = os.environ.get("VISION_LAB_DATABASE_URL", ""), os.environ.get("VISION_LAB_BLOBS", "")
    if database or blobs:
        return ("remote", database, blobs)
    return ("local", str(paths.app_home()))


def open_store() -> Store:
    """The store this process's workspaces live in, one per configuration (its connections are shared)."""
    key = configured()
    with _LOCK:
        if key not in _STORES:
            if key[0] == "local":
                _STORES[key] = LocalStore(paths.app_home())
            else:
                from vision_backend.storage.remote import RemoteStore

                _STORES[key] = RemoteStore(key[1], key[2])
        return _STORES[key]


__all__ = ["Blobs", "Catalogue", "FeatureCache", "FolderBlobs", "InvalidName", "LocalStore", "MAX_NAME", "NameTaken",
           "SQLiteCatalogue", "SavedModel", "SavedModels", "Store", "Transaction", "atomic_path", "atomic_write",
           "check_name", "file_mode", "join", "open_store", "safe_part", "sweep_temp"]
