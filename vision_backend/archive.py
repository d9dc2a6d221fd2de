"""Reading a ZIP of class folders safely: streamed, capped, and every skipped entry said with its reason.

An uploaded archive is hostile until proven otherwise. Entries are read in blocks with a running
count, so an entry that inflates past its cap (a ZIP bomb) is stopped after the cap, not after it
has filled memory; the archive as a whole, and the number of entries, are capped too. Folders,
links, hidden files and entries outside ``<class>/<image>`` are skipped with a reason each. Entry
names never become paths: the class is the entry's parent folder's name, checked by the one
naming rule, and the image is kept under its content hash.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO, Iterator

from vision_backend.errors import ArchiveError
from vision_backend.intake import MAX_BYTES
from vision_backend.storage import InvalidName, check_name

MAX_ENTRIES = 5_000
MAX_ENTRY_PIXELS = 24_000_000
"""A photo in an archive may have 24 megapixels (a large camera's photo): checking one decodes it, and
this keeps an archive of the largest photos allowed under the 200 MiB a server can spare for it."""
MAX_TOTAL_BYTES = 1 << 30  # 1 GiB inflated in all: a large photo collection, not a bomb
BLOCK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One image of the archive: its class, its name inside the archive, and its bytes."""

    label: str
    name: str
    data: bytes


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"




def read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    """The entry's bytes, or None as soon as more than ``cap`` come out of it."""
    parts, total = [], 0
    with archive.open(info) as handle:
        while block := handle.read(BLOCK):
            total += len(block)
            if total > cap:
                return None
            parts.append(block)
    return b"".join(parts)


def _size(count: int) -> str:
    return f"{count / 2**30:.1f} GB" if count >= 2**30 else f"{count / 2**20:.0f} MB"


def _why_not(info: zipfile.ZipInfo, max_entry: int) -> str | None:
    """Why an entry is not an image of a class, or None when it may be one (its declared size is
    checked here, before any byte is inflated; a header that lies is caught while streaming)."""
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if info.is_dir():
        return "a folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a link, not a file"
    if path.is_absolute() or ".." in path.parts:
        return "a path that leaves the archive's folders (names never become paths here)"
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return "a hidden or system file"
    if len(path.parts) < 2:
        return "not inside a class folder (the layout is <class>/<image>)"
    if info.file_size > max_entry:
        return f"{_size(info.file_size)} inflated; the limit for one photo is {_size(max_entry)}"
    return None


def _entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_entry: int, room: int) -> Entry | Skipped:
    """One entry read within ``max_entry`` bytes and the ``room`` the archive's total has left."""
    reason = _why_not(info, max_entry)
    path = PurePosixPath(info.filename.replace("\\", "/"))
    if reason is None:
        try:
            label = check_name(path.parent.name, "class name")
        except InvalidName as error:
            reason = str(error)
    if reason is not None:
        return Skipped(info.filename, reason)
    try:
        data = read_capped(archive, info, min(max_entry, room))
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as error:
        return Skipped(info.filename, f"could not be read from the archive ({error})")
    if data is None:
        return Skipped(info.filename, "inflates past the size limit for one photo (a ZIP bomb?)" if room > max_entry
                       else "the archive's photos inflate past the limit in all; the rest were not read")
    return Entry(label, path.name, data)


def entry_count(source: bytes | BinaryIO) -> int:
    """How many entries a ZIP lists (its central directory only: nothing is inflated), for a progress bar."""
    try:
        with zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source) as archive:
            return min(len(archive.infolist()), MAX_ENTRIES + 1)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ArchiveError(f"This is not a ZIP archive that can be read ({error}).") from None
    finally:
        if not isinstance(source, bytes):
            source.seek(0)


def class_images(source: bytes | BinaryIO, max_entries: int = MAX_ENTRIES, max_total: int = MAX_TOTAL_BYTES,
                 max_entry: int = MAX_BYTES) -> Iterator[Entry | Skipped]:
    """Every ``<class>/<image>`` entry of a ZIP as an :class:`Entry`, or a :class:`Skipped` with its reason."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ArchiveError(f"This is not a ZIP archive that can be read ({error}).") from None
    total = 0
    with archive:
        for count, info in enumerate(archive.infolist()):
            if count >= max_entries:
                yield Skipped("(the rest)", f"the archive has more than {max_entries:,} entries; the rest were not read")
                return
            item = _entry(archive, info, max_entry, max_total - total)
            if isinstance(item, Entry):
                total += len(item.data)
            yield item
