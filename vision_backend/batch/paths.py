"""What a person types on the command line, made into one ordered list of photo paths.

Files are taken as given (a text file named ``.jpg`` still becomes a row saying why it is not a
photo), folders are searched recursively for photo suffixes, globs are expanded (``**`` too), and a
``.txt``/``.lst`` file lists paths one a line (relative ones relative to the list). Each photo
appears once, in the order first met, so a resumed run sees the same order.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
"""What ``track`` looks for in a folder (the containers video intake reads)."""
LIST_SUFFIXES = frozenset({".txt", ".lst"})


def expand(inputs: Iterable[str | os.PathLike], warn: Callable[[str], None] | None = None,
           suffixes: frozenset[str] = PHOTO_SUFFIXES) -> list[str]:
    """Every photo (or, with ``suffixes=VIDEO_SUFFIXES``, video) named by ``inputs``, de-duplicated by real path,
    in order.

    ``warn(message)`` hears about an input that names nothing (a glob with no match, a folder
    without photos); a file that does not exist is kept, so its row can say so.
    """
    seen: set[str] = set()
    found: list[str] = []
    for given in inputs:
        matched = 0
        for path in _one(str(given), suffixes=suffixes):
            key = os.path.realpath(path)
            matched += 1
            if key not in seen:
                seen.add(key)
                found.append(path)
        if not matched and warn:
            warn(f"{given}: no {'photos' if suffixes == PHOTO_SUFFIXES else 'videos'} there")
    return found


def _one(given: str, lists: bool = True, suffixes: frozenset[str] = PHOTO_SUFFIXES) -> Iterator[str]:
    """One input's photos; a list file inside a list is taken as a file (no list can list itself)."""
    path = Path(given)
    if path.is_dir():
        yield from _folder(path, suffixes)
    elif lists and path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        yield from _listed(path, suffixes)
    elif glob.has_magic(given) and not path.exists():
        for match in sorted(glob.glob(given, recursive=True)):
            yield from _folder(Path(match), suffixes) if Path(match).is_dir() else [match]
    else:
        yield given


def _folder(folder: Path, suffixes: frozenset[str] = PHOTO_SUFFIXES) -> Iterator[str]:
    """Photos under ``folder`` by suffix, sorted, skipping hidden files and folders (``.thumbnails``)."""
    for root, folders, files in os.walk(folder, followlinks=False):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                yield str(Path(root) / name)


def _listed(listing: Path, suffixes: frozenset[str] = PHOTO_SUFFIXES) -> Iterator[str]:
    """The paths a list file names, one a line; blank lines and ``#`` comments skipped."""
    for line in listing.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line).expanduser()
            yield from _one(str(path if path.is_absolute() else listing.parent / path), lists=False, suffixes=suffixes)
