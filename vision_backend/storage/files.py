"""Files that are whole or absent: unique temporary names beside the target, atomic renames, a sweep of what
killed writers left, the person's umask on every file, and a cache of vectors computed from files.

A reader sees the old file or the new one, never half of either. ``mkstemp`` makes files only their owner
may read (0600); a file written for a person (an export, a blurred copy, a Parquet table) gets the mode
the person's umask gives any new file (0644 by default), as ``open`` would.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

TEMP_SUFFIX = ".tmp"


def _read_umask() -> int:
    """The process's umask, read without changing it (``os.umask`` sets it, which races other threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_mode() -> int:
    """The mode a new file gets under the person's umask (0644 under the usual 022)."""
    return 0o666 & ~_read_umask()


TEMP_NAME = re.compile(r"\.(\d+)\.[^.]+\.tmp[^.]*(\.\w+)?$")


def _temp_name(target: Path, suffix: str = "") -> Path:
    """A unique temporary file beside ``target``, named with this process's id (see :func:`sweep_temp`)
    and ending in ``suffix`` for writers that insist on one (Keras's ``.keras``)."""
    handle, name = tempfile.mkstemp(prefix=f".{target.name[:40]}.{os.getpid()}.", suffix=TEMP_SUFFIX + suffix,
                                    dir=target.parent)
    os.fchmod(handle, file_mode())  # mkstemp's 0600 would stay with the renamed file
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


@contextlib.contextmanager
def scratch_file(folder: Path, suffix: str = "") -> Iterator[Path]:
    """A unique temporary file in ``folder`` for a writer that wants a path (``model.save``), removed when the
    block ends; named with this process's id, so :func:`sweep_temp` removes it if the process is killed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(folder / "scratch", suffix)
    try:
        yield temp
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
