"""Feature maps of labelled photos through the frozen base, computed once and kept: what both detectors train on.

The base never changes while a head trains, so each photo goes through it once (ONNX Runtime, a few photos a
batch) and its maps are kept on disk by the photo's bytes, the base, the input size and the layers: training
again with other settings, or another seed, reads them back instead. A photo is shown to the base in several
views (:func:`views`): whole, mirrored (a real second view, not the maps flipped: a CNN's filters are not
mirror-symmetric) and, for the fast detector, random crops (SSD's augmentation), each with its boxes carried
along. Photos are resized square to the input (the way a detector here sees a frame), so boxes scale by the
width and the height apart.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from vision_backend import intake, paths
from vision_backend.own_detection.annotations import LabelledPhoto
from vision_backend.storage import atomic_path

MAX_CACHE_BYTES = 2 << 30
"""The kept maps of one base, size and set of layers stop at this (about 700 photos in 4 views at 320)."""
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: a page shows a bar and the time left for each stage."""


class Stopped(Exception):
    """Training was stopped (``should_stop``) before there was a model to keep."""


def never() -> bool:
    return False


def nothing(stage: str, done: int, total: int) -> None:
    """The progress callback when nobody listens."""


def photo_image(photo: LabelledPhoto) -> np.ndarray:
    """The photo's pixels, upright (the boxes sit on them)."""
    return intake.read_image(photo.data, photo.name)


def to_input(boxes: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """Photo-pixel boxes on the ``size`` x ``size`` input the photo is resized to."""
    return np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32([size / width, size / height] * 2)


def to_photo(boxes: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """Input-pixel boxes back on the photo: :func:`to_input` undone."""
    return np.asarray(boxes, np.float32).reshape(-1, 4) * np.float32([width / size, height / size] * 2)


def mirrored(boxes: np.ndarray, width: float) -> np.ndarray:
    """Boxes of a photo ``width`` wide, on its mirror image."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def class_indices(photo: LabelledPhoto, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(boxes, class indices) of the photo's boxes whose class is one of ``classes`` (others are left out)."""
    keep = np.asarray([label in classes for label in photo.labels], bool)
    labels = np.asarray([classes.index(label) for label in photo.labels if label in classes], np.int64)
    return photo.boxes[keep] if len(keep) else np.zeros((0, 4)), labels


@dataclass(frozen=True)
class View:
    """What the base is shown of a photo: the part ``rect`` (x1, y1, x2, y2 photo pixels), mirrored or not."""

    rect: tuple[float, float, float, float]
    flip: bool = False

    def image(self, image: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (round(v) for v in self.rect)
        part = image[y1:y2, x1:x2]
        return part[:, ::-1] if self.flip else part

    def boxes(self, boxes: np.ndarray, labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The boxes whose centre is in the view, cut to it, on its ``size`` square input (SSD's crop rule)."""
        x1, y1, x2, y2 = self.rect
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)
        cut = np.clip(boxes[inside] - np.float32([x1, y1, x1, y1]), 0, np.float32([x2 - x1, y2 - y1] * 2))
        on_input = to_input(cut, x2 - x1, y2 - y1, size)
        return (mirrored(on_input, size) if self.flip else on_input), np.asarray(labels)[inside]


def views(photo: LabelledPhoto, mirror: bool, crops: int) -> list[View]:
    """The photo, its mirror image (``mirror``), then ``crops`` random parts (every other one mirrored).

    SSD's "random crop": a part 40-100% of each side that keeps the centre of at least one box, so objects are
    seen larger and cut at the edges, as the camera will show them. Drawn from the photo's own bytes, so the
    same photo always gives the same parts (and its kept maps stay valid).
    """
    whole = (0.0, 0.0, float(photo.width), float(photo.height))
    chosen = [View(whole), *([View(whole, True)] if mirror else [])]
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(photo.data).digest()[:8], "little"))
    for index in range(crops):
        for _ in range(30):
            w, h = rng.uniform(0.4, 1.0, 2) * (photo.width, photo.height)
            x, y = rng.uniform(0, photo.width - w), rng.uniform(0, photo.height - h)
            view = View((x, y, x + w, y + h), mirror and index % 2 == 1)
            if min(w, h) >= 16 and len(view.boxes(photo.boxes, np.zeros(len(photo.boxes)), 32)[1]):
                chosen.append(view)
                break
    return chosen


@dataclass(frozen=True)
class PhotoMaps:
    """Training rows, every view of every photo: ``maps[i]`` is tap ``i``'s ``(rows, H, W, C)`` float16 maps;
    ``boxes``/``labels`` each row's true boxes on the ``size`` x ``size`` input and their class indices;
    ``photo`` the index of the photo each row shows and ``view`` which of its views."""

    maps: list[np.ndarray]
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    size: int
    taps: tuple[str, ...]
    photo: np.ndarray
    view: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


class MapCache:
    """One ``.npz`` a photo (the maps of its views, float16) under ``$VISION_LAB_HOME/cache/detection_maps``."""

    def __init__(self, base: Any, taps: tuple[str, ...], size: int):
        key = hashlib.sha256(f"{base.features_key}|{size}|{'|'.join(taps)}".encode()).hexdigest()[:16]
        self.folder = paths.app_dir("cache", "detection_maps", key)
        self.taps = taps

    def path(self, photo: LabelledPhoto, chosen: list[View]) -> Path:
        digest = hashlib.sha256(photo.data + repr(chosen).encode()).hexdigest()[:32]
        return self.folder / f"{digest}.npz"

    def read(self, photo: LabelledPhoto, chosen: list[View]) -> list[np.ndarray] | None:
        """``[tap maps (views, H, W, C)]``, or None when not kept (or unreadable)."""
        try:
            with np.load(self.path(photo, chosen)) as stored:
                return [stored[f"m{i}"] for i in range(len(self.taps))]
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def write(self, photo: LabelledPhoto, chosen: list[View], maps: list[np.ndarray]) -> None:
        with atomic_path(self.path(photo, chosen), ".npz") as temp:
            with open(temp, "wb") as handle:
                np.savez(handle, **{f"m{i}": m for i, m in enumerate(maps)})

    def trim(self, keep_bytes: int = MAX_CACHE_BYTES) -> None:
        """Remove the least recently written files past ``keep_bytes``: a cache, not a record."""
        found = []
        for file in self.folder.glob("*.npz"):
            with contextlib.suppress(OSError):  # another trainer may have removed it meanwhile
                status = file.stat()
                found.append((status.st_mtime, status.st_size, file))
        total = 0
        for _, size, file in sorted(found, reverse=True):
            total += size
            if total > keep_bytes:
                file.unlink(missing_ok=True)


def _compute(base: Any, photos: Sequence[LabelledPhoto], chosen: list[list[View]], taps: tuple[str, ...],
             size: int) -> list[list[np.ndarray]]:
    """Per photo, ``[tap maps (views, H, W, C) float16]``: every view of the photos through the base in one batch."""
    images = []
    for photo, its_views in zip(photos, chosen):
        image = photo_image(photo)
        images += [view.image(image) for view in its_views]
    maps, per_photo, start = base.feature_maps(images, taps, size), [], 0
    for its_views in chosen:
        per_photo.append([m[start : start + len(its_views)].astype(np.float16) for m in maps])
        start += len(its_views)
    return per_photo


def photo_maps(base: Any, photos: Sequence[LabelledPhoto], classes: Sequence[str], taps: tuple[str, ...], size: int,
               mirror: bool = True, crops: int = 0, progress: Progress = nothing,
               should_stop: Callable[[], bool] = never, batch: int = 4) -> PhotoMaps:
    """Every view's maps (kept ones read back, the rest computed ``batch`` photos at a time), with its boxes.

    The maps go straight into one array a tap (allocated once the first photo's shapes are known), so memory
    holds them once: 160 photos in 4 views at 320 are about 460 MB of float16."""
    cache, maps, row = MapCache(base, taps, size), [], 0
    chosen = [views(p, mirror, crops) for p in photos]
    total = sum(len(v) for v in chosen)
    progress("features", 0, len(photos))
    for start in range(0, len(photos), batch):
        if should_stop():
            raise Stopped("stopped while the photos went through the base")
        part, part_views = photos[start : start + batch], chosen[start : start + batch]
        kept = [cache.read(p, v) for p, v in zip(part, part_views)]
        missing = [i for i, k in enumerate(kept) if k is None]
        fresh = _compute(base, [part[i] for i in missing], [part_views[i] for i in missing], taps, size)
        for i, computed in zip(missing, fresh):
            cache.write(part[i], part_views[i], computed)
            kept[i] = computed
        for its_maps in kept:
            maps = maps or [np.empty((total, *m.shape[1:]), np.float16) for m in its_maps]
            for whole, part_maps in zip(maps, its_maps):
                whole[row : row + len(part_maps)] = part_maps
            row += len(its_maps[0])
        progress("features", min(start + batch, len(photos)), len(photos))
    cache.trim()
    return _rows(photos, classes, chosen, maps, taps, size)


def _rows(photos: Sequence[LabelledPhoto], classes: Sequence[str], chosen: list[list[View]],
          maps: list[np.ndarray], taps: tuple[str, ...], size: int) -> PhotoMaps:
    boxes, labels, photo_index, view_index = [], [], [], []
    for index, (photo, its_views) in enumerate(zip(photos, chosen)):
        found, indices = class_indices(photo, classes)
        for number, view in enumerate(its_views):
            on_view, kept = view.boxes(found, indices, size)
            boxes.append(on_view)
            labels.append(kept)
            photo_index.append(index)
            view_index.append(number)
    return PhotoMaps(maps, boxes, labels, size, taps, np.asarray(photo_index), np.asarray(view_index))
