"""What a tracked video gives people to read and keep: per-frame tracks as a table (CSV, Parquet), the counts as
rows (the same on the page and the command line), and counts and zone occupancy over time for charts.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vision_backend.detections import Detections
from vision_backend.tracking.zones import anchor_points, inside_polygon
from vision_backend.video.pipeline import COLUMNS, VideoResult

COUNT_COLUMNS = ("counter", "direction", "label", "count")
"""One count a row: which counter (``line``, ``zone 1``...), which way (``in``, ``out``, ``entered``), which
class (``all`` for the total) and how many: long format, so any pivot is one line of pandas."""


def tracks(result: VideoResult) -> pd.DataFrame:
    """One row per tracked box per frame (:data:`~vision_backend.video.pipeline.COLUMNS`)."""
    return pd.DataFrame({name: result.rows[name] for name in COLUMNS})


def counts(result: VideoResult) -> list[dict[str, Any]]:
    """The line's crossings each way and each zone's entries, per class and in all."""
    rows = []
    if result.line is not None:
        for direction in ("in", "out"):
            by_class = result.line[f"{direction}_by_class"]
            rows.append({"counter": "line", "direction": direction, "label": "all", "count": result.line[direction]})
            rows += [{"counter": "line", "direction": direction, "label": k, "count": v}
                     for k, v in sorted(by_class.items())]
    for zone in result.zones:
        entries = zone["entries"]
        rows.append({"counter": zone["name"], "direction": "entered", "label": "all", "count": sum(entries.values())})
        rows += [{"counter": zone["name"], "direction": "entered", "label": k, "count": v}
                 for k, v in sorted(entries.items())]
    return rows


def zone_table(result: VideoResult) -> pd.DataFrame:
    """Per zone: objects entered, inside at the end, and the mean and longest time a track spent inside."""
    rows = []
    for zone in result.zones:
        dwell = list(zone["dwell_s"].values())
        rows.append({"zone": zone["name"], "entered": sum(zone["entries"].values()),
                     "inside at the end": sum(zone["occupancy"].values()),
                     "mean time inside (s)": round(float(np.mean(dwell)), 2) if dwell else 0.0,
                     "longest (s)": round(float(max(dwell)), 2) if dwell else 0.0})
    return pd.DataFrame(rows)


def counts_over_time(result: VideoResult) -> pd.DataFrame:
    """The line's running totals each way, a step at each crossing, from 0 s to the last frame."""
    end = result.frames / result.info.fps if result.info.fps else 0.0
    rows = []
    for direction in ("in", "out"):
        times = sorted(c.time_s for c in result.crossings if c.direction == direction)
        rows.append({"time_s": 0.0, "direction": direction, "count": 0})
        rows += [{"time_s": t, "direction": direction, "count": k + 1} for k, t in enumerate(times)]
        rows.append({"time_s": max(end, times[-1] if times else 0.0), "direction": direction, "count": len(times)})
    return pd.DataFrame(rows)


def occupancy_over_time(result: VideoResult, zones: Sequence[Sequence[Sequence[float]]], anchor: str) -> pd.DataFrame:
    """Tracks inside each zone, frame by frame (frames with nobody inside too), from the per-frame rows."""
    rows, frames = result.rows, max(result.frames, 1)
    boxes = np.c_[rows["x1"], rows["y1"], rows["x2"], rows["y2"]].reshape(-1, 4)
    points = anchor_points(Detections(boxes, np.ones(len(boxes)), np.zeros(len(boxes))), anchor)
    time_s = np.arange(frames) / (result.info.fps or 1.0)
    parts = []
    for k, zone in enumerate(zones):
        inside = inside_polygon(points, np.asarray(zone, np.float64))
        occupied = np.bincount(rows["frame"][inside], minlength=frames)[:frames]
        name = result.zones[k]["name"] if k < len(result.zones) else f"zone {k + 1}"
        parts.append(pd.DataFrame({"time_s": time_s, "zone": name, "objects": occupied}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["time_s", "zone", "objects"])


def csv_bytes(table: pd.DataFrame | list[dict[str, Any]]) -> bytes:
    return pd.DataFrame(table).to_csv(index=False).encode()


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
