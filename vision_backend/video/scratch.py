"""A folder of one's own for a video's files (the upload, the annotated copy) under ``$VISION_LAB_HOME/tmp/video``.

Videos are too large to keep in memory the way photos are, so each browser session writes them to its own folder,
removed when the session's state is dropped (the session ended), and by a sweep of folders nobody touched for
``MAX_AGE_S`` (a server that was killed never dropped them).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from pathlib import Path

from vision_backend import paths

MAX_AGE_S = 6 * 3600.0
"""Folders untouched this long are swept: longer than any visit works on one video."""


def root() -> Path:
    return paths.app_dir("tmp", "video")


def sweep(max_age_s: float = MAX_AGE_S) -> int:
    """Remove session folders untouched for ``max_age_s`` (by their newest file); how many went."""
    gone = 0
    for folder in root().iterdir():
        try:
            newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())])
        except OSError:  # not a folder, or another session removed it (or a file in it) meanwhile
            continue
        if time.time() - newest > max_age_s:
            shutil.rmtree(folder, ignore_errors=True)
            gone += 1
    return gone


class Scratch:
    """One session's folder; removed when this object is garbage (its session's state went) or :meth:`close`."""

    def __init__(self) -> None:
        sweep()
        self.path = Path(tempfile.mkdtemp(prefix="session-", dir=root()))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def file(self, name: str) -> Path:
        """A path in the folder (which is made again if a sweep took it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path / name

    def close(self) -> None:
        self._finalizer()
