"""Counting lines and zones as people give them: typed (``x1,y1,x2,y2``; a zone's corners ``x,y x,y x,y``), drawn
on a canvas (Fabric.js objects, as ``streamlit-drawable-canvas`` returns them) or as fractions of a camera's frame,
whose size is not known until its first frame. Every one comes out in the frame's own pixels, checked, with a
message saying what is wrong.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

from vision_backend.errors import SettingError

Line = tuple[float, float, float, float]
Zone = tuple[tuple[float, float], ...]
ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}
"""Where Fabric.js puts an object's ``left``/``top`` within its box, per ``originX``/``originY``."""


def middle_line(width: int, height: int) -> Line:
    """A horizontal line across the middle of the frame, drawn left to right (so ``in`` is downwards)."""
    return 0.0, height / 2, float(width), height / 2


def _numbers(text: str, what: str) -> list[float]:
    parts = [p for p in re.split(r"[\s,;()\[\]]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise SettingError(f"{what} takes numbers, like “0,216,768,216”, not “{text.strip()}”") from None
    if not all(math.isfinite(v) for v in values):
        raise SettingError(f"{what} takes finite numbers, not “{text.strip()}”")
    return values


def parse_line(text: str, what: str = "a line") -> Line:
    """``x1,y1,x2,y2`` (commas, spaces or semicolons between) as a line with two different ends."""
    values = _numbers(text, what)
    if len(values) != 4:
        raise SettingError(f"{what} is four numbers, x1,y1,x2,y2 (its two ends), not {len(values)}")
    return check_line(tuple(values))


def check_line(line: Sequence[float]) -> Line:
    x1, y1, x2, y2 = (float(v) for v in line)
    if (x1, y1) == (x2, y2):
        raise SettingError("a counting line needs two different ends")
    return x1, y1, x2, y2


def parse_zone(text: str, what: str = "a zone") -> Zone:
    """A zone's corners as ``x,y`` pairs (``x,y x,y x,y`` or ``x,y; x,y; x,y``): at least three."""
    values = _numbers(text, what)
    if len(values) % 2 or len(values) < 6:
        raise SettingError(f"{what} is at least three corners as x,y pairs, like “100,100 300,100 200,250”")
    corners = tuple((values[k], values[k + 1]) for k in range(0, len(values), 2))
    if polygon_area(corners) < 1:
        raise SettingError(f"{what} has no area: its corners lie on one line")
    return corners


def parse_zones(text: str) -> list[Zone]:
    """One zone a line of text (blank lines skipped), each named in its message by its number."""
    lines = [line for line in text.splitlines() if line.strip()]
    return [parse_zone(line, f"zone {k + 1}") for k, line in enumerate(lines)]


def polygon_area(corners: Sequence[Sequence[float]]) -> float:
    """The shoelace formula's area (absolute)."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(corners, [*corners[1:], corners[0]]):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def scaled_line(line: Sequence[float], width: float, height: float) -> Line:
    """A line given as fractions of the frame (0 to 1), in the frame's pixels."""
    x1, y1, x2, y2 = line
    return check_line((x1 * width, y1 * height, x2 * width, y2 * height))


def scaled_zone(zone: Sequence[Sequence[float]], width: float, height: float) -> Zone:
    return tuple((x * width, y * height) for x, y in zone)


def zone_text(zone: Sequence[Sequence[float]]) -> str:
    return " ".join(f"{x:g},{y:g}" for x, y in zone)


# ---- drawn on a canvas ---------------------------------------------------------------------------
def _box_origin(obj: dict[str, Any]) -> tuple[float, float, float, float]:
    """An object's top-left corner, and its scale, from Fabric.js's ``left``/``top`` and origin."""
    sx, sy = float(obj.get("scaleX", 1) or 1), float(obj.get("scaleY", 1) or 1)
    width, height = float(obj.get("width", 0)) * sx, float(obj.get("height", 0)) * sy
    left = float(obj.get("left", 0)) - ORIGIN.get(obj.get("originX", "left"), 0.0) * width
    top = float(obj.get("top", 0)) - ORIGIN.get(obj.get("originY", "top"), 0.0) * height
    return left, top, sx, sy


def canvas_line(obj: dict[str, Any]) -> Line:
    """A Fabric.js ``Line``: its ends ``x1..y2`` are kept relative to the object's centre."""
    left, top, sx, sy = _box_origin(obj)
    cx = left + float(obj.get("width", 0)) * sx / 2
    cy = top + float(obj.get("height", 0)) * sy / 2
    return (cx + float(obj["x1"]) * sx, cy + float(obj["y1"]) * sy, cx + float(obj["x2"]) * sx,
            cy + float(obj["y2"]) * sy)


def canvas_polygon(obj: dict[str, Any]) -> Zone:
    """A Fabric.js ``Polygon``: its points as drawn, moved and scaled with the object if it was edited since
    (the box's corner is half a stroke outside the points)."""
    points = [(float(p["x"]), float(p["y"])) for p in obj.get("points", [])]
    if not points:
        return ()
    left, top, sx, sy = _box_origin(obj)
    half = float(obj.get("strokeWidth", 0)) / 2
    x0, y0 = min(x for x, _ in points), min(y for _, y in points)
    return tuple((left + half * sx + (x - x0) * sx, top + half * sy + (y - y0) * sy) for x, y in points)


def from_canvas(drawing: dict[str, Any] | None, scale: float) -> tuple[Line | None, list[Zone]]:
    """The newest line and every closed polygon of a canvas drawing, in frame pixels (canvas pixels over
    ``scale``, the canvas's size over the frame's)."""
    line, zones = None, []
    for obj in (drawing or {}).get("objects", []):
        kind = str(obj.get("type", "")).lower()
        if kind == "line":
            ends = canvas_line(obj)
            if math.dist(ends[:2], ends[2:]) >= 2:
                line = tuple(v / scale for v in ends)
        elif kind == "polygon":
            corners = canvas_polygon(obj)
            if len(corners) >= 3 and polygon_area(corners) >= 1:
                zones.append(tuple((x / scale, y / scale) for x, y in corners))
    return line, zones
