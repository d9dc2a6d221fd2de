"""Boxes to and from the drawing canvas: ``streamlit-drawable-canvas``'s ``labeled_rect`` mode, Fabric.js objects.

The canvas shows the photo scaled (:func:`canvas_scale`) and sends back every box on it after each drag, move,
resize, relabel or delete, as Fabric.js ``LabeledRect`` objects in canvas pixels. :func:`from_canvas` turns them
into corners in the photo's pixels and class names, :func:`to_canvas` the stored boxes into the drawing the canvas
starts from. Nothing here knows Streamlit: the page hands the canvas's JSON in.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

MAX_WIDTH, MAX_HEIGHT, MAX_ZOOM = 760, 560, 2.0
"""The canvas on screen: at most this wide and high, a small photo shown at most twice its size."""
MIN_SIDE = 2.0
"""A box narrower or lower than this many canvas pixels is a click, not a box."""
ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}
"""Where Fabric.js's ``left`` and ``top`` sit on an object, by its ``originX`` / ``originY``."""


def canvas_scale(width: int, height: int) -> float:
    """Canvas pixels per photo pixel: the photo fitted into :data:`MAX_WIDTH` x :data:`MAX_HEIGHT`."""
    return float(min(MAX_WIDTH / width, MAX_HEIGHT / height, MAX_ZOOM))


def canvas_size(width: int, height: int) -> tuple[int, int]:
    scale = canvas_scale(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def hex_colour(rgb: Sequence[int]) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def to_canvas(boxes: np.ndarray, labels: Sequence[str], scale: float, colours: dict[str, str] | None = None,
              stroke_width: int = 3) -> dict[str, Any]:
    """The drawing the canvas starts from: each box a ``LabeledRect`` in canvas pixels, stroked in its class's
    colour."""
    objects = []
    for (x1, y1, x2, y2), label in zip(np.asarray(boxes, np.float64).reshape(-1, 4).tolist(), labels):
        colour = (colours or {}).get(label, "#2563eb")
        objects.append({"type": "LabeledRect", "label": label, "left": x1 * scale, "top": y1 * scale,
                        "width": (x2 - x1) * scale, "height": (y2 - y1) * scale, "originX": "left",
                        "originY": "top", "scaleX": 1, "scaleY": 1, "angle": 0, "stroke": colour,
                        "strokeWidth": stroke_width, "fill": "rgba(0, 0, 0, 0)", "lockRotation": True,
                        "strokeUniform": True})
    return {"objects": objects}


def _corners(obj: dict[str, Any]) -> list[float] | None:
    """A rectangle object's corners in canvas pixels (its scale applied, its origin wherever Fabric put it)."""
    try:
        width = float(obj.get("width", 0)) * float(obj.get("scaleX", 1))
        height = float(obj.get("height", 0)) * float(obj.get("scaleY", 1))
        left = float(obj.get("left", 0)) - ORIGIN.get(str(obj.get("originX", "left")), 0.0) * width
        top = float(obj.get("top", 0)) - ORIGIN.get(str(obj.get("originY", "top")), 0.0) * height
    except (TypeError, ValueError):
        return None
    corners = [min(left, left + width), min(top, top + height), max(left, left + width), max(top, top + height)]
    return corners if np.all(np.isfinite(corners)) else None


def from_canvas(drawing: dict[str, Any] | None, scale: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every box on the canvas, in the photo's pixels (canvas pixels over ``scale``), and its class name; a click
    (a box under :data:`MIN_SIDE` canvas pixels) and anything that is not a box are left out."""
    boxes, labels = [], []
    for obj in (drawing or {}).get("objects", []) or []:
        if not isinstance(obj, dict) or str(obj.get("type", "")).lower() not in ("labeledrect", "rect"):
            continue
        corners = _corners(obj)
        if corners is None or corners[2] - corners[0] < MIN_SIDE or corners[3] - corners[1] < MIN_SIDE:
            continue
        boxes.append([v / scale for v in corners])
        labels.append(str(obj.get("label", "")))
    return np.asarray(boxes, np.float64).reshape(-1, 4), tuple(labels)


def same_boxes(a: tuple[np.ndarray, Sequence[str]], b: tuple[np.ndarray, Sequence[str]], tolerance: float = 0.05) -> bool:
    """True when two sets of (boxes, labels) are the same boxes in the same order, within ``tolerance`` photo pixels
    (a canvas's floats are not the store's)."""
    return (len(a[0]) == len(b[0]) and tuple(a[1]) == tuple(b[1])
            and bool(np.allclose(a[0], b[0], atol=tolerance, rtol=0)))


__all__ = ["canvas_scale", "canvas_size", "from_canvas", "hex_colour", "same_boxes", "to_canvas"]
