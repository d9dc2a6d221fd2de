"""Box annotations in and out: Pascal VOC XML, COCO JSON and YOLO txt (and the CSV of a split), one way.

People bring boxes drawn in labelImg, CVAT, Label Studio or Roboflow, and take them away to other
tools. Whatever the format, a photo's labels become one :class:`LabelledPhoto`, and the rules are the
same everywhere:

* **Boxes** are ``(N, 4)`` float ``x1, y1, x2, y2`` in pixels of the photo *as the app shows it*:
  decoded by :mod:`vision_backend.intake` (EXIF orientation applied), edges continuous (a box from
  0 to W spans the whole width). VOC's numbers are taken as written, as labelImg writes them and
  torchvision and Ultralytics read them (no 1-based shift); YOLO's normalised centre and size are
  scaled by the photo's real size.
* **Sizes** come from decoding the photo, never from the annotation: a declared size that is 0x0
  or wrong is said in a note, and boxes stay in pixels (they are not rescaled).
* **EXIF orientation.** A phone stores a portrait photo sideways with a tag saying how to turn it;
  the app always shows it turned. Tools disagree about which pixels the boxes were drawn on:
  labelImg (Qt's reader without auto-transform), Yolo_mark/darknet and the original COCO drew on
  the pixels as stored; CVAT (since 2022), labelme and Ultralytics' loaders turn the photo first. So
  with ``exif="auto"`` the declared size decides when it can (a photo turned by 90° has its sides
  swapped: a declared size equal to the stored one means boxes on the stored pixels, the turned one
  means boxes on the turned photo); otherwise boxes are taken as drawn on the stored pixels, as the
  tools that wrote VOC and YOLO files mostly did. Boxes on the stored pixels are turned with the
  photo. Every tagged photo gets a note saying which was assumed; ``exif="stored"`` or
  ``"upright"`` decides for the whole set. Exports hold every photo upright with no tag, so every
  tool, turning or not, sees the pixels the boxes are on.
* **Never raise on one bad file.** Each reader returns an :class:`AnnotationSet`: the photos read,
  what was skipped (a file, a box) with its reason, and notes on what was changed (a box clipped
  to the photo, a size corrected). :class:`AnnotationError` only when nothing at all can be read.
* **Hostile input.** Files are read within byte caps (an annotation file, a photo, a ZIP entry, the
  ZIP in all); a ZIP is read through :mod:`vision_backend.archive`'s capped streaming; XML with a
  DOCTYPE (entities: the billion-laughs bomb) is refused before parsing; class names go through
  :func:`~vision_backend.storage.check_name`; names inside a ZIP never become paths.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Literal, Sequence
from xml.etree import ElementTree as ET

import numpy as np
from PIL import Image

from vision_backend import intake
from vision_backend.archive import MAX_ENTRIES, MAX_TOTAL_BYTES, Skipped, read_capped
from vision_backend.errors import AnnotationError, BadInput, ImageIntakeError, InvalidName
from vision_backend.storage import check_name, safe_part

FORMATS = ("voc", "coco", "yolo", "csv")
"""What :func:`read_annotations` reads; the writers write the first three."""

Exif = Literal["auto", "stored", "upright"]

MAX_XML_BYTES = 1 << 20
"""One VOC file: a photo with a thousand boxes is about 250 kB; past this it is not an annotation."""
MAX_TEXT_BYTES = 16 << 20
"""A YOLO label file, classes.txt, data.yaml or a split's CSV (a CSV of 100,000 boxes is about 6 MB)."""
MAX_JSON_BYTES = 64 << 20
"""A COCO file for a few thousand photos is a few MB; COCO's own 118,000 photos are beyond a teaching lab."""
MAX_FOLDER_FILES = 50_000
FEW_BOXES = 10
"""Below this a class gets a note, as transfer-learning projects say of their examples."""
OUTSIDE_PX = 0.5
"""A box clipped by more than this gets a note; less is rounding (YOLO's six decimals)."""

PHOTO_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".bmp": "BMP", ".gif": "GIF",
                 ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
NAMES_FILES = {"classes.txt", "obj.names", "data.yaml", "data.yml", "dataset.yaml"}
LIST_FILES = {"train.txt", "val.txt", "valid.txt", "test.txt", "readme.txt", "license.txt", "licence.txt"}
PARALLEL = {"annotations": "images", "labels": "images", "xml": "images", "json": "images"}
"""Folders where annotations live beside the photos' folder (VOC's Annotations/JPEGImages, YOLO's labels/images)."""
ORIENTATIONS = {2: "mirrored left to right", 3: "turned 180°", 4: "mirrored top to bottom",
                5: "mirrored and turned 90° anticlockwise", 6: "turned 90° clockwise",
                7: "mirrored and turned 90° clockwise", 8: "turned 90° anticlockwise"}
"""EXIF orientation tag values, as what the viewer does to show the stored pixels upright."""


@dataclass(frozen=True, eq=False)  # numpy boxes: equal by identity, never an ambiguous array comparison
class LabelledPhoto:
    """One photo's boxes: ``boxes`` (N, 4) float64 xyxy pixels of the upright photo, one label each.

    ``width`` and ``height`` are the photo's as decoded by :mod:`vision_backend.intake`, and ``data`` its
    file's bytes as read (decode them with ``intake.read_image`` and the boxes sit on the pixels).
    """

    name: str
    width: int
    height: int
    boxes: np.ndarray
    labels: tuple[str, ...]
    data: bytes = field(default=b"", repr=False, compare=False)

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", tuple(self.labels))
        if len(self.labels) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(self.labels)} labels for “{self.name}”")


@dataclass(frozen=True)
class Note:
    """Something changed on the way in (a box clipped, a size corrected), written for a person."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


@dataclass(frozen=True)
class AnnotationSet:
    """What a reader gives: the labelled photos, what was skipped and why, and notes on what was changed."""

    format: str
    photos: tuple[LabelledPhoto, ...]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[Note, ...] = ()
    classes: tuple[str, ...] = ()
    """Class names in the file's own order (COCO's category ids, YOLO's class numbers), then any others."""

    @property
    def boxes(self) -> int:
        return sum(len(photo.boxes) for photo in self.photos)

    def summary(self) -> str:
        """One line for a page: how many photos, boxes and classes came in, and how many things were skipped."""
        return (f"{len(self.photos)} photos, {self.boxes} boxes of {len(self.classes)} "
                f"class{'es' if len(self.classes) != 1 else ''} ({self.format.upper()}); "
                f"{len(self.skipped)} skipped, {len(self.notes)} notes.")


# ---- the files of a folder or a ZIP ----------------------------------------------------------------
@dataclass
class _Files:
    """A folder's or a ZIP's files by relative POSIX path, read within a cap, and what was skipped."""

    names: list[str]
    sizes: dict[str, int]
    load: Callable[[str, int], bytes]
    """Reads at most the cap + 1 bytes, so a file that grew after it was listed cannot fill memory."""
    skipped: list[Skipped] = field(default_factory=list)

    def read(self, name: str, cap: int, what: str) -> bytes | Skipped:
        """The file's bytes, or a :class:`Skipped` saying why not (too large for ``what``, unreadable)."""
        too_big = Skipped(name, f"is {_mb(self.sizes[name])}; the limit for {what} is {_mb(cap)}")
        if self.sizes[name] > cap:
            return too_big
        try:
            data = self.load(name, cap)
        except OSError as error:
            return Skipped(name, f"could not be read ({error.strerror or error})")
        return too_big if len(data) > cap else data


def _mb(count: int) -> str:
    return f"{count / 2**20:.1f} MB" if count >= 2**20 else f"{count / 1024:.0f} kB"


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _file_size(path: Path) -> int | str:
    """A regular file's size, or why it is not one to read (a link, a pipe or device, unreadable)."""
    try:
        mode = path.lstat()
    except OSError as error:
        return f"could not be read ({error.strerror or error})"
    if stat.S_ISLNK(mode.st_mode):
        return "a link, not a file"
    return mode.st_size if stat.S_ISREG(mode.st_mode) else "not a regular file"


def _read_start(path: Path, cap: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(cap + 1)


def _folder_files(root: Path) -> _Files:
    """Every regular file under ``root`` (links, pipes and hidden files skipped with a reason), up to a cap."""
    names, sizes, skipped = [], {}, []
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        skipped += [Skipped(f"{(here / d).relative_to(root).as_posix()}/", "a hidden or system folder")
                    for d in subfolders if _hidden(d)]
        subfolders[:] = sorted(d for d in subfolders if not _hidden(d))
        for file in sorted(files):
            rel = (here / file).relative_to(root).as_posix()
            size = "a hidden or system file" if _hidden(file) else _file_size(here / file)
            if isinstance(size, str):
                skipped.append(Skipped(rel, size))
            elif len(names) >= MAX_FOLDER_FILES:
                skipped.append(Skipped("(the rest)", f"the folder has more than {MAX_FOLDER_FILES:,} files; "
                                                     "the rest were not read"))
                return _Files(names, sizes, lambda n, cap: _read_start(root / n, cap), skipped)
            else:
                names.append(rel)
                sizes[rel] = size
    return _Files(names, sizes, lambda n, cap: _read_start(root / n, cap), skipped)


def _zip_reason(info: zipfile.ZipInfo, path: PurePosixPath, seen: dict[str, bytes]) -> str | None:
    """Why a ZIP entry is not a file to read here (checked before a byte is inflated), or None."""
    if info.is_dir():
        return "a folder"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a link, not a file"
    if path.is_absolute() or ".." in path.parts:
        return "a path that leaves the archive's folders (names never become paths here)"
    if any(_hidden(part) for part in path.parts):
        return "a hidden or system file"
    if path.as_posix() in seen:
        return "a second entry with the same name"
    if info.file_size > MAX_JSON_BYTES:
        return f"{_mb(info.file_size)} inflated; the limit for one file is {_mb(MAX_JSON_BYTES)}"
    return None


def _zip_files(source: bytes | Path) -> _Files:
    """The entries of a ZIP, each read through the archive module's capped streaming (a ZIP bomb stops at the cap)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise AnnotationError(f"This is not a ZIP archive that can be read ({error}).") from None
    data: dict[str, bytes] = {}
    skipped: list[Skipped] = []
    total = 0
    with archive:
        for count, info in enumerate(archive.infolist()):
            if count >= MAX_ENTRIES:
                skipped.append(Skipped("(the rest)", f"the archive has more than {MAX_ENTRIES:,} entries; "
                                                     "the rest were not read"))
                break
            path = PurePosixPath(info.filename.replace("\\", "/"))
            reason = _zip_reason(info, path, data)
            if reason is None:
                read = _zip_entry(archive, info, MAX_TOTAL_BYTES - total)
                reason = read if isinstance(read, str) else None
                if isinstance(read, bytes):
                    data[path.as_posix()] = read
                    total += len(read)
            if reason is not None and not info.is_dir():
                skipped.append(Skipped(info.filename, reason))
    return _Files(list(data), {k: len(v) for k, v in data.items()}, lambda n, cap: data[n], skipped)


def _zip_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, room: int) -> bytes | str:
    """An entry's bytes within the per-file cap and the ``room`` left in the archive's total, or why not."""
    try:
        data = read_capped(archive, info, min(MAX_JSON_BYTES, room))
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error) as error:
        return f"could not be read from the archive ({error})"
    if data is None:
        return ("inflates past the size limit for one file (a ZIP bomb?)" if room > MAX_JSON_BYTES
                else "the archive's files inflate past the limit in all; the rest were not read")
    return data


def _open(source: str | Path | bytes) -> tuple[_Files, str | None]:
    """A folder, a ZIP (path or bytes) or one annotation file (then its folder, reading only that file)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _zip_files(bytes(source)), None
    path = Path(source)
    if path.is_dir():
        return _folder_files(path), None
    if path.is_file() and (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)):
        return _zip_files(path), None
    if path.is_file():
        root = path.parent.parent if path.parent.name.lower() in PARALLEL else path.parent
        return _folder_files(root), path.relative_to(root).as_posix()
    raise AnnotationError(f"“{path}” is neither a folder, a ZIP nor an annotation file.")


# ---- finding the photo an annotation names -----------------------------------------------------------
def _natural(text: str) -> list:
    """Sort key that puts raccoon-2 before raccoon-10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _is_photo(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in PHOTO_FORMATS


class _PhotoIndex:
    """The set's photos by base name and by stem, case-insensitively, to match annotations to them."""

    def __init__(self, names: Iterable[str]):
        self.names = sorted((n for n in names if _is_photo(n)), key=_natural)
        self.by_name: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for name in self.names:
            path = PurePosixPath(name)
            self.by_name.setdefault(path.name.lower(), []).append(name)
            self.by_stem.setdefault(path.stem.lower(), []).append(name)

    def find(self, hint: str, near: str, stems: Sequence[str] = ()) -> tuple[str | None, str]:
        """The photo named ``hint`` (a file name, maybe with folders), else one with a stem in ``stems``;
        among several, the one beside ``near`` (the annotation file). Returns it and a note when it was a guess."""
        base = PurePosixPath(hint.replace("\\", "/")).name
        found = self.by_name.get(base.lower(), [])
        exact = [n for n in found if PurePosixPath(n).name == base]
        if exact or found:
            return _nearest(exact or found, hint, near), ""
        for stem in stems:
            if candidates := self.by_stem.get(stem.lower()):
                chosen = _nearest(candidates, hint, near)
                note = f"names the photo “{base}”, which is not here; used “{chosen}”" if base else ""
                return chosen, note
        return None, ""


def _nearest(candidates: list[str], hint: str, near: str) -> str:
    """Of photos with the same name, the one whose path ends like ``hint``, else the one beside ``near``."""
    if len(candidates) == 1:
        return candidates[0]
    hinted = [c for c in candidates if c.endswith(hint.replace("\\", "/").lstrip("./"))]
    folder = PurePosixPath(near).parent
    parallel = PurePosixPath(*[PARALLEL.get(p.lower(), p) for p in folder.parts]) if folder.parts else folder
    beside = [c for c in candidates if PurePosixPath(c).parent in (folder, parallel)]
    return (hinted or beside or candidates)[0]


# ---- the photo: decoded the one way the app does ------------------------------------------------------
@dataclass(frozen=True)
class _Facts:
    """What decoding a photo tells: its upright size, its stored size and orientation, and what to note."""

    width: int
    height: int
    stored: tuple[int, int]
    orientation: int
    notes: tuple[str, ...]


def _inspect(data: bytes, name: str) -> _Facts:
    """Decode with :func:`intake.read_photo` (the app's one way: it raises :class:`ImageIntakeError`), then read
    the header for what the pixels alone cannot say: the stored size, the orientation tag, the real format."""
    photo = intake.read_photo(data, name)
    height, width = photo.image.shape[:2]
    notes = [photo.note] if photo.note else []
    with Image.open(io.BytesIO(data)) as image:
        stored, real = image.size, image.format or "?"
        try:
            orientation = int(image.getexif().get(0x0112, 1))
        except Exception:  # a broken EXIF block: intake could not turn by it either
            orientation = 1
        if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
            notes.append("has transparency; it is shown on white, as the detector will see it")
    expected = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    if orientation not in ORIENTATIONS or tuple(stored) != expected:
        orientation = 1
    claimed = PHOTO_FORMATS.get(PurePosixPath(name).suffix.lower())
    if claimed and claimed != real:
        notes.append(f"is a {real} file named {PurePosixPath(name).suffix}; read as {real}")
    return _Facts(width, height, tuple(stored), orientation, tuple(notes))


def _size_note(declared: tuple[float, float] | None, facts: _Facts) -> str:
    """What to say when the annotation's declared size is not the photo's (boxes stay in pixels)."""
    if declared is None:
        return ""
    width, height = declared
    real = f"{facts.width}x{facts.height}"
    if not (width > 0 and height > 0):
        return f"its annotation declares the size {_number(width)}x{_number(height)}; the photo's real size {real} is used"
    if (round(width), round(height)) in ((facts.width, facts.height), facts.stored):
        return ""
    return (f"its annotation declares the size {_number(width)}x{_number(height)} but the photo is {real}; "
            "the real size is used and the boxes are kept in pixels, not rescaled")


def _frame(facts: _Facts, declared: tuple[float, float] | None, exif: Exif) -> tuple[bool, str]:
    """Whether the boxes were drawn on the stored pixels (True) or on the upright photo, and the note that says so."""
    if facts.orientation == 1:
        return False, ""
    upright = (facts.width, facts.height)
    size = (round(declared[0]), round(declared[1])) if declared and min(declared) > 0 else None
    if exif != "auto":
        stored, why = exif == "stored", f"as asked (exif={exif!r})"
    elif facts.orientation >= 5 and facts.stored != upright and size in (facts.stored, upright):
        stored = size == facts.stored
        why = f"its declared size {size[0]}x{size[1]} is the photo's {'as stored' if stored else 'turned upright'}"
    else:
        stored, why = True, ("as labelImg and other tools that ignore the tag draw them; read with exif='upright' "
                             "if they were drawn on the turned photo")
    where = "the pixels as stored, and turned with the photo" if stored else "the photo turned upright"
    return stored, (f"carries an EXIF orientation ({facts.orientation}: shown {ORIENTATIONS[facts.orientation]}); "
                    f"its boxes were taken as drawn on {where} ({why})")


def stored_to_upright(boxes: np.ndarray, orientation: int, stored_size: tuple[int, int]) -> np.ndarray:
    """Boxes on a photo's stored pixels moved to where they are once its EXIF ``orientation`` is applied
    (as ``PIL.ImageOps.exif_transpose`` turns it); ``stored_size`` is (width, height) as stored."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    width, height = stored_size
    x = boxes[:, [0, 2]]
    y = boxes[:, [1, 3]]
    moved = {1: (x, y), 2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y), 5: (y, x),
             6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x)}[orientation]
    new_x, new_y = moved
    return np.stack([new_x.min(1), new_y.min(1), new_x.max(1), new_y.max(1)], axis=1)


# ---- from what an annotation says to a labelled photo ------------------------------------------------
@dataclass
class _Raw:
    """One photo's annotation as a format's parser found it, before the photo is seen.

    ``boxes`` holds (where, label, numbers): xyxy pixels, or xyxy fractions of the photo when ``normalised``.
    """

    source: str
    hint: str
    declared: tuple[float, float] | None
    boxes: list[tuple[str, str, list[float]]]
    normalised: bool = False
    stems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.declared is not None and not all(math.isfinite(v) for v in self.declared):
            self.declared = None  # NaN or infinite: no size was declared, and none can be compared


@dataclass
class _Parsed:
    """A parser's output: per-photo annotations, what it skipped and noted, and the class names it declares."""

    raws: list[_Raw] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    background: bool = False
    """Unannotated photos are photos with nothing to find (YOLO's convention), not photos left out."""


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _corners(box: np.ndarray) -> str:
    return "(" + ", ".join(_number(v) for v in box) + ")"


def _place_box(where: str, numbers: list[float], raw: _Raw, facts: _Facts, on_stored: bool,
               out: tuple[list[Skipped], list[Note]]) -> np.ndarray | None:
    """One box moved onto the upright photo and clipped to it, or None (skipped, with the reason in ``out``)."""
    skipped, notes = out
    box = np.asarray(numbers, np.float64)
    frame = facts.stored if on_stored else (facts.width, facts.height)
    if raw.normalised:
        box = box * np.array([frame[0], frame[1], frame[0], frame[1]], np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        skipped.append(Skipped(where, "its corners are not four numbers"))
        return None
    if on_stored:
        box = stored_to_upright(box, facts.orientation, facts.stored)[0]
    clipped = np.clip(box, 0, [facts.width, facts.height, facts.width, facts.height])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        skipped.append(Skipped(where, f"has no area on the {facts.width}x{facts.height} photo "
                                      f"{_corners(box)}: a box needs x1 < x2 and y1 < y2 inside the photo"))
        return None
    if np.abs(clipped - box).max() > OUTSIDE_PX:
        notes.append(Note(where, f"reached outside the {facts.width}x{facts.height} photo {_corners(box)}; "
                                 f"clipped to {_corners(clipped)}"))
    return clipped


def _place_boxes(raw: _Raw, facts: _Facts, on_stored: bool,
                 out: tuple[list[Skipped], list[Note]]) -> tuple[np.ndarray, list[str]]:
    """Every box of ``raw`` whose class name passes the naming rule and that keeps an area on the photo."""
    kept, labels = [], []
    for where, label, numbers in raw.boxes:
        try:
            name = check_name(label, "class name")
        except InvalidName as error:
            out[0].append(Skipped(where, str(error)))
            continue
        box = _place_box(where, numbers, raw, facts, on_stored, out)
        if box is not None:
            kept.append(box)
            labels.append(name)
    return np.asarray(kept, np.float64).reshape(-1, 4), labels


def _label_photo(raw: _Raw, rel: str, files: _Files, exif: Exif,
                 out: tuple[list[Skipped], list[Note]]) -> LabelledPhoto | None:
    """The annotation ``raw`` on its photo ``rel``: decoded, sized, turned and clipped; None when the photo fails."""
    skipped, notes = out
    data = files.read(rel, intake.MAX_BYTES, "a photo")
    if isinstance(data, Skipped):
        skipped.append(Skipped(raw.source, f"its photo {data}"))
        return None
    name = PurePosixPath(rel).name
    try:
        facts = _inspect(data, name)
    except ImageIntakeError as error:
        skipped.append(Skipped(raw.source, str(error)))
        return None
    on_stored, exif_note = _frame(facts, raw.declared, exif)
    notes += [Note(name, text) for text in (*facts.notes, _size_note(raw.declared, facts), exif_note) if text]
    boxes, labels = _place_boxes(raw, facts, on_stored, out)
    return LabelledPhoto(name, facts.width, facts.height, boxes, tuple(labels), data)


def _claim(raw: _Raw, index: _PhotoIndex, claimed: dict[str, str],
           out: tuple[list[Skipped], list[Note]]) -> str | None:
    """The photo ``raw`` is about, if it is here and no earlier annotation has it."""
    rel, guess = index.find(raw.hint, raw.source, raw.stems)
    if rel is None:
        out[0].append(Skipped(raw.source, f"names the photo “{raw.hint or raw.stems[0] + '.*'}”, which is not in "
                                          "the set"))
        return None
    if rel in claimed:
        out[0].append(Skipped(raw.source, f"a second annotation of “{rel}” (the first is {claimed[rel]}); "
                                          "only the first is used"))
        return None
    if guess:
        out[1].append(Note(raw.source, guess))
    claimed[rel] = raw.source
    return rel


def _unique_names(photos: list[LabelledPhoto], notes: list[Note], paths: list[str]) -> list[LabelledPhoto]:
    """Photo names must be unique in a set (writers and evaluation go by name): a repeated one gets its folders."""
    seen: set[str] = set()
    unique = []
    for photo, path in zip(photos, paths):
        if photo.name.lower() in seen:
            renamed = path.replace("/", "_")
            notes.append(Note(path, f"another photo is also called “{photo.name}”; this one is called “{renamed}”"))
            photo = replace(photo, name=renamed)
        seen.add(photo.name.lower())
        unique.append(photo)
    return unique


def _class_notes(photos: Sequence[LabelledPhoto]) -> list[Note]:
    counts: dict[str, int] = {}
    for photo in photos:
        for label in photo.labels:
            counts[label] = counts.get(label, 0) + 1
    return [Note(f"class “{name}”", f"has 1 box: a detector cannot both learn it and be tested on it; give it at "
                                    f"least 2 ({FEW_BOXES} or more work well)" if count == 1 else
                 f"has only {count} boxes; {FEW_BOXES} or more work well")
            for name, count in sorted(counts.items()) if count < FEW_BOXES]


def _nothing_read(source: str, skipped: Sequence[Skipped]) -> AnnotationError:
    reasons = "; ".join(str(s) for s in skipped[:3]) or "no photo matched an annotation"
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return AnnotationError(f"Nothing could be read from {source}: {reasons}{more}.")


def _assemble(fmt: str, parsed: _Parsed, files: _Files, exif: Exif, source: str) -> AnnotationSet:
    """Every parsed annotation on its photo; unannotated photos kept (YOLO) or left out with one line."""
    index = _PhotoIndex(files.names)
    out: tuple[list[Skipped], list[Note]] = (files.skipped + parsed.skipped, list(parsed.notes))
    claimed: dict[str, str] = {}
    photos, paths = [], []
    for raw in parsed.raws:
        rel = _claim(raw, index, claimed, out)
        photo = _label_photo(raw, rel, files, exif, out) if rel else None
        if photo is not None:
            photos.append(photo)
            paths.append(rel)
    unclaimed = [n for n in index.names if n not in claimed]
    if unclaimed and parsed.background:
        out[1].append(Note(f"{len(unclaimed)} photos", "have no label file; kept as photos with nothing to find "
                                                       f"(YOLO's convention): {_few(unclaimed)}"))
        for rel in unclaimed:
            if photo := _label_photo(_Raw(rel, rel, None, []), rel, files, exif, out):
                photos.append(photo)
                paths.append(rel)
    elif unclaimed and parsed.raws:
        out[0].append(Skipped(f"{len(unclaimed)} photos", f"have no annotation here; left out: {_few(unclaimed)}"))
    if not photos:
        raise _nothing_read(source, out[0])
    order = sorted(range(len(photos)), key=lambda i: _natural(paths[i]))
    photos = _unique_names([photos[i] for i in order], out[1], [paths[i] for i in order])
    seen = {label for photo in photos for label in photo.labels}
    declared = list(dict.fromkeys(name for name in map(_valid_name, parsed.classes) if name))
    classes = declared + sorted(seen - set(declared))
    return AnnotationSet(fmt, tuple(photos), tuple(out[0]), tuple(out[1] + _class_notes(photos)), tuple(classes))


def _photos_alone(files: _Files, exif: Exif, source: str) -> AnnotationSet:
    """Every photo of a set that has no annotation file, each with no box yet (decoded and checked as any other)."""
    out: tuple[list[Skipped], list[Note]] = (list(files.skipped), [])
    photos, paths = [], []
    for rel in _PhotoIndex(files.names).names:
        if photo := _label_photo(_Raw(rel, rel, None, []), rel, files, exif, out):
            photos.append(photo)
            paths.append(rel)
    if not photos:
        raise _nothing_read(source, out[0] or [Skipped(source, "holds no photo and no annotation file")])
    return AnnotationSet("photos", tuple(_unique_names(photos, out[1], paths)), tuple(out[0]), tuple(out[1]))


def _valid_name(name: str) -> str | None:
    """A declared class name as boxes carry it (stripped, NFC), or None if the naming rule refuses it."""
    try:
        return check_name(name, "class name")
    except InvalidName:
        return None


def _few(names: Sequence[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


# ---- Pascal VOC XML --------------------------------------------------------------------------------
def _xml_root(name: str, data: bytes) -> ET.Element | Skipped:
    """The parsed XML, or why not. A DOCTYPE is refused unparsed: VOC needs none, and entities are how XML bombs."""
    if b"\x00" in data[:1024] or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Skipped(name, "is not UTF-8 text (UTF-16?); Pascal VOC files are UTF-8")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return Skipped(name, "declares a DOCTYPE or entities, which a Pascal VOC file never needs (refused unread: "
                             "that is how XML bombs work)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as error:
        line = getattr(error, "position", (0, 0))[0]
        return Skipped(name, f"is not well-formed XML (line {line}); it may be truncated or not XML at all")
    if root.tag != "annotation":
        return Skipped(name, f"is XML but not a Pascal VOC annotation (its root is <{root.tag[:40]}>, "
                             "not <annotation>)")
    return root


def _voc_size(root: ET.Element) -> tuple[float, float] | None:
    try:
        return float(root.findtext("size/width") or "nan"), float(root.findtext("size/height") or "nan")
    except ValueError:
        return None


def _voc_object(where: str, element: ET.Element) -> tuple[str, str, list[float]] | Skipped:
    label = (element.findtext("name") or "").strip()
    try:
        numbers = [float(element.findtext(f"bndbox/{k}") or "") for k in ("xmin", "ymin", "xmax", "ymax")]
    except ValueError:
        return Skipped(where, "has no <bndbox> with four numbers (xmin, ymin, xmax, ymax)")
    return where, label, numbers


def _parse_voc_file(name: str, data: bytes) -> tuple[_Raw | None, list[Skipped]]:
    root = _xml_root(name, data)
    if isinstance(root, Skipped):
        return None, [root]
    boxes, skipped = [], []
    for number, element in enumerate(root.findall("object"), 1):
        item = _voc_object(f"{name}, box {number} ({(element.findtext('name') or '?').strip()[:40]})", element)
        (skipped if isinstance(item, Skipped) else boxes).append(item)
    declared = _voc_size(root)
    hint = (root.findtext("filename") or "").strip()
    stem = PurePosixPath(name).stem
    return _Raw(name, hint or stem, declared, boxes, stems=(PurePosixPath(hint.replace("\\", "/")).stem, stem)), skipped


def _parse_voc(files: _Files, names: list[str]) -> _Parsed:
    parsed = _Parsed()
    for name in names:
        data = files.read(name, MAX_XML_BYTES, "a Pascal VOC file")
        if isinstance(data, Skipped):
            parsed.skipped.append(data)
            continue
        raw, skipped = _parse_voc_file(name, data)
        parsed.skipped += skipped
        parsed.raws += [raw] if raw else []
    return parsed


# ---- COCO JSON -----------------------------------------------------------------------------------------
def _coco_document(name: str, data: bytes) -> dict | Skipped:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, bad UTF-8, huge ints, deep nesting
        return Skipped(name, f"is not JSON that can be read ({str(error)[:80]})")
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        return Skipped(name, "is JSON but not a COCO file (it has no list of \"images\")")
    return document


def _coco_list(document: dict, key: str) -> list:
    value = document.get(key)
    return value if isinstance(value, list) else []


def _key(value: object) -> int | str | None:
    """An id as COCO files give them (a number, sometimes text); anything else matches nothing."""
    return value if isinstance(value, (int, str)) else None


def _coco_categories(name: str, document: dict, parsed: _Parsed) -> dict[int, str]:
    categories = {}
    for item in _coco_list(document, "categories"):
        if isinstance(item, dict) and isinstance(item.get("id"), int) and isinstance(item.get("name"), str):
            categories[item["id"]] = item["name"]
        else:
            parsed.skipped.append(Skipped(f"{name}, category {str(item)[:60]}", "needs an integer id and a name"))
    parsed.classes += list(categories.values())
    return categories


def _coco_images(name: str, document: dict, parsed: _Parsed) -> dict[object, _Raw]:
    images: dict[object, _Raw] = {}
    for item in document["images"]:
        ok = isinstance(item, dict) and isinstance(item.get("file_name"), str) and _key(item.get("id")) is not None
        if not ok or item["id"] in images:
            parsed.skipped.append(Skipped(f"{name}, image {str(item)[:60]}", "needs a file_name and an id of its own"))
            continue
        size = (item.get("width"), item.get("height"))
        declared = tuple(map(float, size)) if all(isinstance(v, (int, float)) for v in size) else None
        images[item["id"]] = _Raw(f"{name}, image {item['id']}", item["file_name"], declared, [],
                                  stems=(PurePosixPath(item["file_name"].replace("\\", "/")).stem,))
    return images


def _coco_box(item: object, categories: dict[int, str], images: dict) -> tuple[str, list[float]] | str:
    """An annotation's label and xyxy box, or why it cannot be used."""
    if not isinstance(item, dict):
        return "is not an object"
    if _key(item.get("image_id")) not in images:
        return f"is for image id {str(item.get('image_id'))[:20]}, which the file does not list"
    if _key(item.get("category_id")) not in categories:
        known = ", ".join(str(k) for k in sorted(categories)[:10])
        return f"has category id {str(item.get('category_id'))[:20]}, which is not among the file's categories ({known})"
    if item.get("iscrowd"):
        return "marks a crowd (iscrowd=1): COCO scores it neither as a hit nor a miss, so it is left out"
    bbox = item.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
        return "has no bbox of four numbers [x, y, width, height]"
    x, y, width, height = map(float, bbox)
    return categories[item["category_id"]], [x, y, x + width, y + height]


def _parse_coco(files: _Files, names: list[str]) -> _Parsed:
    parsed = _Parsed()
    for name in names:
        data = files.read(name, MAX_JSON_BYTES, "a COCO file")
        document = _coco_document(name, data) if isinstance(data, bytes) else data
        if isinstance(document, Skipped):
            parsed.skipped.append(document)
            continue
        categories = _coco_categories(name, document, parsed)
        images = _coco_images(name, document, parsed)
        for number, item in enumerate(_coco_list(document, "annotations"), 1):
            where = f"{name}, annotation {item.get('id', number) if isinstance(item, dict) else number}"
            found = _coco_box(item, categories, images)
            if isinstance(found, str):
                parsed.skipped.append(Skipped(where, found))
            else:
                images[item["image_id"]].boxes.append((f"{where} ({found[0][:40]})", *found))
        parsed.raws += list(images.values())
    return parsed


# ---- YOLO txt ----------------------------------------------------------------------------------------
def _yaml_scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            return text[1:-1]
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def _yaml_names(text: str) -> list[str] | None:
    """``names`` from a data.yaml (a flow list, a flow map, or a block list or map), without a YAML library:
    Ultralytics writes ``names: {0: a}`` or a block map, older files ``names: ['a', 'b']``."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        found = re.match(r"^names\s*:(.*)$", line)
        if not found:
            continue
        rest = re.sub(r"\s+#.*$", "", found.group(1)).strip()
        if rest.startswith(("[", "{")):
            flow = " ".join([rest, *lines[number + 1:]]) if "]" not in rest and "}" not in rest else rest
            items = re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'|[^,\[\]{}]+', flow.split("]")[0].split("}")[0])
            items = [item for item in items if item.strip()]
            return [_yaml_scalar(i.split(":", 1)[1] if rest[0] == "{" else i) for i in items]
        block = []
        for item in lines[number + 1:]:
            if not item.strip() or item.lstrip().startswith("#"):
                continue
            if not item[:1].isspace() and not item.startswith("-"):
                break
            entry = re.sub(r"\s+#.*$", "", item).strip()
            block.append(_yaml_scalar(entry[1:] if entry.startswith("-") else entry.split(":", 1)[-1]))
        return block
    return None


def _yolo_names(files: _Files, parsed: _Parsed) -> tuple[list[str] | None, str]:
    """The class names (classes.txt, darknet's obj.names or data.yaml's ``names``) and the file they came from."""
    candidates = sorted((n for n in files.names if PurePosixPath(n).name.lower() in NAMES_FILES),
                        key=lambda n: (n.count("/"), PurePosixPath(n).suffix.lower() != ".txt", _natural(n)))
    for name in candidates:
        data = files.read(name, MAX_TEXT_BYTES, "a class list")
        text = data.decode("utf-8-sig", "replace") if isinstance(data, bytes) else ""
        names = (_yaml_names(text) if name.lower().endswith((".yaml", ".yml"))
                 else [line.strip() for line in text.splitlines() if line.strip()])
        if names:
            return names, name
        parsed.skipped.append(data if isinstance(data, Skipped) else Skipped(name, "lists no class names"))
    return None, ""


def _yolo_line(where: str, line: str, names: list[str] | None, listed_in: str) -> tuple[str, str, list[float]] | str:
    """One label line as (where, class name, normalised xyxy), or why it cannot be used."""
    parts = line.split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return f"has something that is not a number: “{line[:60]}”"
    if len(numbers) != 5 and (len(numbers) < 7 or len(numbers) % 2 == 0):
        return (f"has {len(numbers)} numbers; a YOLO box line has 5 (class x_centre y_centre width height), "
                "a polygon 1 + an even number")
    if not numbers[0].is_integer() or numbers[0] < 0:
        return f"starts with {parts[0]!r}; a class number is a whole number from 0"
    number = int(numbers[0])
    if names is not None and number >= len(names):
        return f"has class {number}, but {listed_in} lists {len(names)} classes (0-{len(names) - 1})"
    label = names[number] if names is not None else str(number)
    if len(numbers) == 5:
        cx, cy, w, h = numbers[1:]
        return where, label, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    xs, ys = numbers[1::2], numbers[2::2]
    return where + " (a polygon: its bounding box is used)", label, [min(xs), min(ys), max(xs), max(ys)]


def _parse_yolo(files: _Files, names: list[str]) -> _Parsed:
    parsed = _Parsed(background=True)
    classes, listed_in = _yolo_names(files, parsed)
    if classes is None:
        parsed.notes.append(Note("classes", "no classes.txt, obj.names or data.yaml: classes are named by their "
                                            "numbers (0, 1, ...)"))
    parsed.classes += classes or []
    for name in names:
        data = files.read(name, MAX_TEXT_BYTES, "a YOLO label file")
        if isinstance(data, Skipped):
            parsed.skipped.append(data)
            continue
        stem = PurePosixPath(name).stem
        raw = _Raw(name, "", None, [], normalised=True, stems=(stem,))
        for number, line in enumerate(data.decode("utf-8-sig", "replace").splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                item = _yolo_line(f"{name}, line {number}", line, classes, listed_in)
                raw.boxes.append(item) if isinstance(item, tuple) else parsed.skipped.append(
                    Skipped(f"{name}, line {number}", item))
        parsed.raws.append(raw)
    return parsed


# ---- the CSV of a split (filename,width,height,class,xmin,ymin,xmax,ymax) -----------------------------
CSV_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")


def _csv_rows(name: str, data: bytes) -> list[tuple[int, dict[str, str]]] | Skipped:
    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        header = {(column or "").strip().lower(): column for column in reader.fieldnames or []}
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            return Skipped(name, f"is not a box CSV: it lacks the column(s) {', '.join(missing)} "
                                 f"(expected {','.join(CSV_COLUMNS)})")
        return [(reader.line_num, {c: (row.get(header[c]) or "").strip() for c in CSV_COLUMNS}) for row in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        return Skipped(name, f"is not a CSV that can be read ({str(error)[:80]})")


def _parse_csv(files: _Files, names: list[str]) -> _Parsed:
    parsed = _Parsed()
    for name in names:
        data = files.read(name, MAX_TEXT_BYTES, "a CSV")
        rows = _csv_rows(name, data) if isinstance(data, bytes) else data
        if isinstance(rows, Skipped):
            parsed.skipped.append(rows)
            continue
        raws: dict[str, _Raw] = {}
        for line, row in rows:
            where = f"{name}, line {line} ({row['class'][:40]})"
            try:
                declared = (float(row["width"]), float(row["height"]))
                numbers = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            except ValueError:
                parsed.skipped.append(Skipped(where, "has a size or corner that is not a number"))
                continue
            raw = raws.setdefault(row["filename"], _Raw(f"{name} ({row['filename'][:60]})", row["filename"],
                                                        declared, [], stems=(PurePosixPath(row["filename"]).stem,)))
            raw.boxes.append((where, row["class"], numbers))
        parsed.raws += list(raws.values())
    return parsed


# ---- reading: which format, and the readers ---------------------------------------------------------
_PARSERS = {"voc": _parse_voc, "coco": _parse_coco, "yolo": _parse_yolo, "csv": _parse_csv}
_SUFFIXES = {"coco": ".json", "voc": ".xml", "yolo": ".txt", "csv": ".csv"}
_TITLES = {"voc": "Pascal VOC", "coco": "COCO", "yolo": "YOLO", "csv": "CSV"}


def _annotation_files(files: _Files, only: str | None) -> dict[str, list[str]]:
    """The files each format would read, by suffix (class lists and lists of photos aside)."""
    kinds: dict[str, list[str]] = {fmt: [] for fmt in FORMATS}
    for name in [only] if only else files.names:
        path = PurePosixPath(name)
        if path.name.lower() in NAMES_FILES | LIST_FILES:
            continue
        for fmt, suffix in _SUFFIXES.items():
            if path.suffix.lower() == suffix:
                kinds[fmt].append(name)
    return {fmt: sorted(names, key=_natural) for fmt, names in kinds.items()}


def _choose(kinds: dict[str, list[str]], format: str, source: str) -> tuple[str, list[Note]]:
    """The format asked for, or the one found (COCO, then VOC, YOLO, CSV), with a note on files left unread."""
    if format not in ("auto", *FORMATS):
        raise AnnotationError(f"“{format}” is not an annotation format Vision Lab reads: {', '.join(FORMATS)}.")
    present = [fmt for fmt in ("coco", "voc", "yolo", "csv") if kinds[fmt]]
    chosen = format if format != "auto" else (present[0] if present else "")
    if not kinds.get(chosen):
        wanted = f"{_TITLES[chosen]} {_SUFFIXES[chosen]} files" if chosen else (
            "annotation files: Pascal VOC .xml, COCO .json, YOLO .txt (with classes.txt) or a .csv")
        raise AnnotationError(f"Found no {wanted} in {source}.")
    notes = [Note(f"{len(kinds[fmt])} {_SUFFIXES[fmt]} file{'s' if len(kinds[fmt]) > 1 else ''}",
                  f"not read: the set was read as {_TITLES[chosen]} (read_{fmt} reads them)")
             for fmt in present if fmt != chosen]
    return chosen, notes


def _describe(source: str | Path | bytes) -> str:
    return "the ZIP" if isinstance(source, (bytes, bytearray, memoryview)) else f"“{Path(source).name}”"


def read_annotations(source: str | Path | bytes, format: str = "auto", *, exif: Exif = "auto",
                     photos_alone: bool = False) -> AnnotationSet:
    """Boxes and photos from a folder, a ZIP (a path or its bytes) or one annotation file (then its folder's photos).

    ``format`` is ``"auto"`` (found by the files: COCO .json, VOC .xml, YOLO .txt, a .csv) or one of
    :data:`FORMATS`; annotations are matched to photos by file name. ``exif`` says which pixels boxes on
    a photo with an EXIF orientation were drawn on (see the module's docstring). With ``photos_alone``, a folder
    or ZIP holding photos and no annotation file at all gives its photos with no box (format ``"photos"``: a set
    to draw the boxes of in the app) instead of an error.
    """
    if exif not in ("auto", "stored", "upright"):
        raise BadInput(f"exif is “auto”, “stored” or “upright”, not “{exif}”.")
    files, only = _open(source)
    kinds = _annotation_files(files, only)
    if photos_alone and format == "auto" and not only and not any(kinds.values()):
        return _photos_alone(files, exif, _describe(source))
    fmt, notes = _choose(kinds, format, _describe(source))
    parsed = _PARSERS[fmt](files, kinds[fmt])
    parsed.notes[:0] = notes
    return _assemble(fmt, parsed, files, exif, _describe(source))


def read_voc(source: str | Path | bytes, *, exif: Exif = "auto") -> AnnotationSet:
    """Pascal VOC: one .xml per photo (labelImg, CVAT), ``<filename>`` naming the photo."""
    return read_annotations(source, "voc", exif=exif)


def read_coco(source: str | Path | bytes, *, exif: Exif = "auto") -> AnnotationSet:
    """COCO: a .json with images, categories and ``bbox`` [x, y, width, height] annotations."""
    return read_annotations(source, "coco", exif=exif)


def read_yolo(source: str | Path | bytes, *, exif: Exif = "auto") -> AnnotationSet:
    """YOLO: one .txt per photo (same stem), lines ``class cx cy w h`` normalised; names from classes.txt or data.yaml."""
    return read_annotations(source, "yolo", exif=exif)


def read_csv(source: str | Path | bytes, *, exif: Exif = "auto") -> AnnotationSet:
    """A split's CSV (``filename,width,height,class,xmin,ymin,xmax,ymax``, one row a box), as the raccoon set's
    author ships ``train_labels.csv`` and ``test_labels.csv``: pass the CSV's path to read that split alone."""
    return read_annotations(source, "csv", exif=exif)


# ---- writing: a ZIP of the photos and their annotations ------------------------------------------------
@dataclass(frozen=True)
class _Export:
    """One photo as it goes into an export: its file name there, its labels, and its upright bytes."""

    name: str
    photo: LabelledPhoto
    data: bytes


def _upright_bytes(photo: LabelledPhoto) -> tuple[bytes, str]:
    """The photo's bytes with its pixels upright (re-encoded only when it carries an EXIF orientation, so every
    tool sees the pixels its boxes are on), and the suffix they need; refused if they do not fit the labels."""
    if not photo.data:
        raise BadInput(f"“{photo.name}” has no photo to export (its bytes are empty).")
    try:
        with Image.open(io.BytesIO(photo.data)) as image:
            size, real, orientation = image.size, image.format, int(image.getexif().get(0x0112, 1))
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError):
        raise ImageIntakeError(f"“{photo.name}” is not a photo Vision Lab can read, so it cannot be exported.") from None
    turned = orientation in ORIENTATIONS
    upright = (size[1], size[0]) if orientation in (5, 6, 7, 8) else size
    if tuple(upright) != (photo.width, photo.height):
        raise AnnotationError(f"“{photo.name}” is {upright[0]}x{upright[1]} but its boxes are for a "
                              f"{photo.width}x{photo.height} photo; it cannot be exported with them.")
    if not turned:
        return photo.data, ""
    pixels = intake.read_image(photo.data, photo.name, min_side=1)
    return (intake.encode_jpeg(pixels, quality=95), ".jpg") if real == "JPEG" else (intake.encode_png(pixels), ".png")


def _exports(photos: Iterable[LabelledPhoto]) -> list[_Export]:
    """Each photo with a safe file name (``storage.safe_part``) whose stem no other photo has (one
    annotation file per stem in VOC and YOLO)."""
    exports, stems = [], set()
    for photo in photos:
        data, suffix = _upright_bytes(photo)
        path = PurePosixPath(safe_part(photo.name, "photo"))
        stem, suffix = path.stem or "photo", suffix or path.suffix or ".jpg"
        unique, count = stem, 1
        while unique.lower() in stems:
            count += 1
            unique = f"{stem}-{count}"
        stems.add(unique.lower())
        exports.append(_Export(unique + suffix, photo, data))
    return exports


def _classes(exports: list[_Export], classes: Sequence[str] | None) -> list[str]:
    """The class order for ids: the one given (labels it lacks appended), else alphabetical."""
    seen = sorted({label for e in exports for label in e.photo.labels})
    given = list(dict.fromkeys(classes or []))
    return given + [label for label in seen if label not in given]


def _zip_bytes(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A ZIP of the entries: photos stored (they are compressed already), text deflated, fixed dates."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if _is_photo(name) else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _voc_xml(export: _Export) -> bytes:
    """labelImg's layout; corners rounded to whole pixels, as VOC's readers expect integers."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "images"
    ET.SubElement(root, "filename").text = export.name
    size = ET.SubElement(root, "size")
    for key, value in (("width", export.photo.width), ("height", export.photo.height), ("depth", 3)):
        ET.SubElement(size, key).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for box, label in zip(export.photo.boxes, export.photo.labels):
        element = ET.SubElement(root, "object")
        for key, value in (("name", label), ("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            ET.SubElement(element, key).text = value
        x1, y1, x2, y2 = (int(v) for v in np.rint(box))
        corners = (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))  # a sub-pixel box keeps one pixel
        bndbox = ET.SubElement(element, "bndbox")
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            ET.SubElement(bndbox, key).text = str(value)
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode").encode() + b"\n"


def write_voc(photos: Iterable[LabelledPhoto]) -> bytes:
    """A ZIP of ``images/<photo>`` and ``annotations/<stem>.xml`` (Pascal VOC, as labelImg writes it)."""
    exports = _exports(photos)
    return _zip_bytes([*((f"images/{e.name}", e.data) for e in exports),
                       *((f"annotations/{PurePosixPath(e.name).stem}.xml", _voc_xml(e)) for e in exports)])


def _coco_json(exports: list[_Export], classes: list[str]) -> bytes:
    """COCO's instances file: ``bbox`` [x, y, width, height] in pixels (to a thousandth), ids from 1."""
    ids = {name: number for number, name in enumerate(classes, 1)}
    images, annotations = [], []
    for image_id, export in enumerate(exports, 1):
        images.append({"id": image_id, "file_name": export.name, "width": export.photo.width,
                       "height": export.photo.height})
        for (x1, y1, x2, y2), label in zip(export.photo.boxes.tolist(), export.photo.labels):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": ids[label],
                                "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                                "area": round((x2 - x1) * (y2 - y1), 3), "iscrowd": 0, "segmentation": []})
    document = {"info": {"description": "Exported from Vision Lab"}, "licenses": [], "images": images,
                "annotations": annotations,
                "categories": [{"id": ids[name], "name": name, "supercategory": ""} for name in classes]}
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def write_coco(photos: Iterable[LabelledPhoto], classes: Sequence[str] | None = None) -> bytes:
    """A ZIP of ``images/<photo>`` and ``annotations.json`` (COCO); category ids follow ``classes`` from 1."""
    exports = _exports(photos)
    return _zip_bytes([*((f"images/{e.name}", e.data) for e in exports),
                       ("annotations.json", _coco_json(exports, _classes(exports, classes)))])


def _yolo_txt(export: _Export, ids: dict[str, int]) -> bytes:
    """One line a box: class, centre and size as fractions of the photo; six decimals keep a box to a
    thousandth of a pixel on the largest photo the app takes."""
    width, height = export.photo.width, export.photo.height
    lines = [f"{ids[label]} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
             f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
             for (x1, y1, x2, y2), label in zip(export.photo.boxes.tolist(), export.photo.labels)]
    return "".join(line + "\n" for line in lines).encode()


def write_yolo(photos: Iterable[LabelledPhoto], classes: Sequence[str] | None = None) -> bytes:
    """A ZIP of ``images/<photo>``, ``labels/<stem>.txt``, ``classes.txt`` and Ultralytics' ``data.yaml``."""
    exports = _exports(photos)
    names = _classes(exports, classes)
    ids = {name: number for number, name in enumerate(names)}
    data_yaml = ("path: .\ntrain: images\nval: images\n"
                 f"nc: {len(names)}\nnames:\n" + "".join(f"  {i}: {json.dumps(n, ensure_ascii=False)}\n"
                                                         for i, n in enumerate(names)))
    return _zip_bytes([*((f"images/{e.name}", e.data) for e in exports),
                       *((f"labels/{PurePosixPath(e.name).stem}.txt", _yolo_txt(e, ids)) for e in exports),
                       ("classes.txt", "".join(n + "\n" for n in names).encode()),
                       ("data.yaml", data_yaml.encode())])


def export(photos: AnnotationSet | Iterable[LabelledPhoto], format: str,
           classes: Sequence[str] | None = None) -> bytes:
    """The photos and their boxes as a ZIP in ``format`` (``"voc"``, ``"coco"`` or ``"yolo"``), as bytes."""
    if isinstance(photos, AnnotationSet):
        photos, classes = photos.photos, classes or photos.classes
    if format == "voc":
        return write_voc(photos)
    if format in ("coco", "yolo"):
        return (write_coco if format == "coco" else write_yolo)(photos, classes)
    raise BadInput(f"“{format}” is not a format Vision Lab writes: voc, coco or yolo.")
