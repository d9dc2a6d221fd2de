"""Reading one photo for batch work: the pages' decoding, with JPEG draft mode where a model only sees a shrunk copy.

A 12-megapixel JPEG decoded in full only to be shrunk to 640 pixels is most of a batch's time.
Pillow's draft mode decodes a JPEG at 1/2, 1/4 or 1/8 of its size straight from its DCT
coefficients, several times faster. Asked for (``--draft``), it is used only where the model shrinks
the photo with area averaging anyway, and only down to twice the size the model works at, so the
copy the model sees differs by a grey level or two and boxes by under one pixel of the model's
input. Everything else (PNG, small photos, CMYK, any doubt, and every photo by default) goes through
:mod:`vision_backend.intake` as on the pages, which also gives every refusal its message.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from vision_backend import intake
from vision_backend.intake import ImageIntakeError

Wanted = Callable[[int, int], "tuple[int, int] | None"]
"""(photo width, height) -> the smallest (width, height) a model needs decoded, or None for full size."""

SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the photo by 90 degrees (width and height change places)."""


@dataclass(frozen=True)
class Decoded:
    image: np.ndarray
    scale: float = 1.0
    """Photo pixels per decoded pixel: 1, or 2, 4, 8 after a draft (multiply boxes by it)."""
    width: int = 0
    height: int = 0
    """The photo's own size, the right way up."""
    note: str = ""
    """What the person should know about the decoding ("“a.gif” has 3 frames; Vision Lab uses frame 1 of 3")."""


def read_bytes(path: str) -> bytes:
    """A file's bytes, or :class:`ImageIntakeError` saying why it cannot be read (missing, a folder, no access)."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ImageIntakeError(f"“{Path(path).name}” could not be read: {error.strerror or error}.") from None


def decode(data: bytes, name: str, wanted: Wanted | None = None) -> Decoded:
    """``data`` as an RGB array the way the pages decode it, or drafted when ``wanted`` allows."""
    drafted = _drafted(data, wanted) if wanted else None
    if drafted is not None:
        return drafted
    photo = intake.read_photo(data, name)
    return Decoded(photo.image, 1.0, photo.image.shape[1], photo.image.shape[0], photo.note)


def _drafted(data: bytes, wanted: Wanted) -> Decoded | None:
    """A baseline RGB or grey JPEG decoded at least 2x smaller; None for anything else, so intake decides."""
    if data[:3] != b"\xff\xd8\xff" or len(data) > intake.MAX_BYTES:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if not _draftable(image):
                return None
            target = wanted(width, height)
            if not target or min(width // target[0], height // target[1]) < 2:
                return None
            image.draft(image.mode, target)
            scale = 2.0 ** round(math.log2(width / image.size[0]))
            orientation = image.getexif().get(0x0112, 1)
            image.load()
            image = ImageOps.exif_transpose(image) or image
            array = np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8))
    except Exception:  # noqa: BLE001 - whatever Pillow disliked, the full decode says it properly
        return None
    if scale < 2:
        return None
    width, height = (height, width) if orientation in SWAPPING_ORIENTATIONS else (width, height)
    return Decoded(array, scale, width, height)


def _draftable(image: Image.Image) -> bool:
    """A plain JPEG within intake's limits (a refused photo must be refused by intake, with its message)."""
    width, height = image.size
    return (image.format == "JPEG" and image.mode in ("RGB", "L") and width * height <= intake.MAX_PIXELS
            and min(width, height) >= intake.MIN_SIDE)
