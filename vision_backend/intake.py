"""Image intake: whatever a person uploads becomes one RGB ``uint8`` array, or one clear error.

Browsers hand us bytes with a file name that may lie. Every page wants the same thing: an
``(H, W, 3)`` ``uint8`` RGB array the right way up. So all decoding happens here, once:
EXIF orientation is applied (phones store portrait photos sideways), transparency is
composited on white (a model has no alpha channel), 16-bit and float images are scaled to
8 bits, palette/CMYK/greyscale become RGB, and an animation gives its first frame. Limits on
bytes and pixels stop a decompression bomb before it is decoded. Anything we cannot turn into
a photo raises :class:`ImageIntakeError`, whose message is written for the person, not for us.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vision_backend.errors import ImageIntakeError

MAX_BYTES = 25 * 1024 * 1024
"""Upload limit; the same figure as ``server.maxUploadSize`` in ``.streamlit/config.toml``."""

MAX_PIXELS = 50_000_000
"""About 8,000 x 6,000: every real camera photo fits, a decompression bomb does not."""

MIN_SIDE = 32
"""Below this a photo holds nothing any model here can see (a 1x1 photo gave confident nonsense)."""

SUPPORTED = "JPEG, PNG, WebP, BMP, GIF, TIFF"




@dataclass(frozen=True)
class Photo:
    """A decoded photo and what the person should know about the decoding ("frame 1 of 3")."""

    image: np.ndarray
    note: str = ""


def read_photo(
    data: bytes,
    name: str = "image",
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> Photo:
    """Decode ``data`` into an ``(H, W, 3)`` RGB ``uint8`` array, saying which frame an animation gave.

    ``name`` only makes messages readable; the format is sniffed from the bytes.
    """
    _check_bytes(data, name, max_bytes)
    with _decoding(name):
        image = Image.open(io.BytesIO(data))
        _check_size(image.size, name, max_pixels, min_side)
        note = frames_note(image, name)
        image.seek(0)  # animated GIF/WebP/APNG, multi-page TIFF: the first frame
        image.load()
        image = ImageOps.exif_transpose(image) or image
        return Photo(_to_rgb_array(image), note)


def frames_note(image: Image.Image, name: str) -> str:
    """What to tell the person when a file holds several frames or pages: which one Vision Lab uses."""
    frames, what = getattr(image, "n_frames", 1), "page" if image.format == "TIFF" else "frame"
    return f"“{name}” has {frames} {what}s; Vision Lab uses {what} 1 of {frames}." if frames > 1 else ""


@contextlib.contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Whatever goes wrong while Pillow decodes, one message for the person (never an exception's name)."""
    try:
        with warnings.catch_warnings():
            # Pillow warns (and past 2x its own limit raises) on huge images; we check ourselves.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ImageIntakeError:
        raise
    except UnidentifiedImageError:
        raise ImageIntakeError(f"“{name}” is not an image Vision Lab can read. Supported: {SUPPORTED}.") from None
    except Image.DecompressionBombError:
        raise ImageIntakeError(f"“{name}” declares too many pixels to be a photo (a decompression bomb?).") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError):
        raise ImageIntakeError(f"“{name}” looks like an image but could not be decoded: it may be truncated or "
                               "corrupt. Try exporting it again.") from None


def check_photo(data: bytes, name: str = "image", *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                min_side: int = MIN_SIDE) -> str:
    """Prove ``data`` decodes as a photo within the limits, keeping no pixels; returns its note
    ("frame 1 of 3"), empty when there is nothing to say.

    What a collection stores is checked this way: the decode is the real test of a file, and
    dropping the pixels at once keeps memory flat through an archive of large photos.
    """
    _check_bytes(data, name, max_bytes)
    with _decoding(name), Image.open(io.BytesIO(data)) as image:
        _check_size(image.size, name, max_pixels, min_side)
        note = frames_note(image, name)
        image.seek(0)
        image.load()
        return note


def read_image(data: bytes, name: str = "image", **limits: int) -> np.ndarray:
    """:func:`read_photo`'s pixels: an ``(H, W, 3)`` RGB ``uint8`` array, or :class:`ImageIntakeError`."""
    return read_photo(data, name, **limits).image


def _check_bytes(data: bytes, name: str, max_bytes: int) -> None:
    if data is None or len(data) == 0:
        raise ImageIntakeError(f"“{name}” is empty (0 bytes). Choose a photo file.")
    if len(data) > max_bytes:
        raise ImageIntakeError(
            f"“{name}” is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB. "
            "Save it smaller or as JPEG and try again."
        )


def _check_size(size: tuple[int, int], name: str, max_pixels: int, min_side: int) -> None:
    """The header's size against the limits, before a single pixel is decoded."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageIntakeError(f"“{name}” has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageIntakeError(
            f"“{name}” is {width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels."
        )
    if min(width, height) < min_side:
        raise ImageIntakeError(f"“{name}” is only {width}x{height} pixels; Vision Lab needs at least "
                               f"{min_side} pixels a side to show anything. Pick a larger photo.")


def read_image_file(path: str | Path, **limits: int) -> np.ndarray:
    """:func:`read_image` on a file on disk (stored files were checked when they came in)."""
    path = Path(path)
    return read_image(path.read_bytes(), path.name, **{"min_side": 1, **limits})


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8, compositing transparency on white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        if mode.startswith("I;16") and high > 255:
            scaled = values / 65535.0 * 255.0
        elif high > low and (high > 255 or low < 0 or mode == "F"):
            scaled = (values - low) / (high - low) * 255.0
        else:
            scaled = values
        grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    elif mode == "L" and "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(array)


def encode_png(image: np.ndarray) -> bytes:
    """An RGB (or greyscale) array as PNG bytes, for download buttons."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB").save(
        buffer, format="JPEG", quality=quality
    )
    return buffer.getvalue()
