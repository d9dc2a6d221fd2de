"""The Video page's parts that are not layout: where its files go, the clip it works on, the line and zones a person
types or draws, and a progress bar whose interruption (the Stop button) keeps what was done.

Not a page itself (the underscore): imported by ``pages/video.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import streamlit as st

from pages import _stoppable as stoppable
from pages._shared import ensure_ready, keep
from pages._stoppable import Interruptible, Kept
from vision_backend import drawing
from vision_backend.clips import CLIPS
from vision_backend.errors import SettingError
from vision_backend.intake import encode_png
from vision_backend.video import VideoInfo, open_video, regions
from vision_backend.video.io import MAX_SECONDS, SUPPORTED, clock, decode
from vision_backend.video.pipeline import Progress
from vision_backend.video.scratch import Scratch

VIDEO_TYPES = ["mp4", "m4v", "mov", "webm", "mkv", "avi"]
CANVAS_WIDTH = 560
"""The drawing canvas's width on screen (a frame wider than this is shown smaller; coordinates are scaled back)."""


# ---- the session's folder and the clip -----------------------------------------------------------
def scratch() -> Scratch:
    """This session's folder under ``$VISION_LAB_HOME/tmp/video``, removed when the session ends."""
    if "_video_scratch" not in st.session_state:
        st.session_state._video_scratch = Scratch()
    return st.session_state._video_scratch


def upload_cap_mb() -> int:
    """The server's upload limit (``server.maxUploadSize``): a larger file never reaches the page."""
    return int(st.get_option("server.maxUploadSize"))


def uploaded_clip() -> tuple[str, Path] | None:
    """The uploaded video written once to the session's folder (the uploader keeps it in memory until then)."""
    cap = upload_cap_mb()
    upload = st.file_uploader(f"Upload a video ({SUPPORTED}; up to {cap} MB and {clock(MAX_SECONDS)} long)",
                              type=VIDEO_TYPES, key="video_upload")
    if upload is None:
        return None
    if upload.size > cap * 1024 * 1024:
        st.error(f"“{upload.name}” is {upload.size / 2**20:.0f} MB; the limit is {cap} MB. Cut it shorter or export "
                 "it smaller.", icon=":material/error:")
        return None
    path = scratch().file("upload" + (Path(upload.name).suffix.lower() or ".mp4"))
    if st.session_state.get("_video_upload") != (upload.file_id, str(path)) or not path.exists():
        for earlier in path.parent.glob("upload.*"):  # one upload at a time in the folder
            earlier.unlink(missing_ok=True)
        path.write_bytes(upload.getvalue())
        st.session_state._video_upload = (upload.file_id, str(path))
    return upload.name, path


def sample_clip() -> tuple[str, Path] | None:
    """A sample clip from the registry, fetched on first use (or the command that gets it, offline)."""
    name = st.selectbox("Sample clip", list(CLIPS), key=keep("video_sample", next(iter(CLIPS))),
                        format_func=lambda n: CLIPS[n].card.title)
    clip = CLIPS[name]
    st.caption(f"{clip.story[0].upper()}{clip.story[1:]}. Credit: {clip.card.files[0].name} from "
               f"{clip.card.title.split('(')[-1].rstrip(')')}, licence {clip.card.licence}.")
    if not ensure_ready(clip.card):
        return None
    return clip.card.files[0].name, clip.card.path()


def choose_clip() -> tuple[str, Path] | None:
    """The clip to work on: an upload, or a sample clip (the default once one is on this machine)."""
    ready = any(c.card.ready() for c in CLIPS.values())
    source = st.radio("Video", ["Sample clip", "Upload"], horizontal=True, label_visibility="collapsed",
                      key=keep("video_source", "Sample clip" if ready else "Upload"))
    return sample_clip() if source == "Sample clip" else uploaded_clip()


def clip_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def probe(path: Path, name: str) -> tuple[VideoInfo, np.ndarray]:
    """What the header says and the first frame, once per file: a refused file raises its reason here."""
    cache = st.session_state.setdefault("_video_probe", {})
    key = clip_key(path)
    if key not in cache:
        cache.clear()
        with open_video(path, name) as (container, stream, info):
            frames = decode(container, stream, info)
            first = next(frames).image
            frames.close()
        cache[key] = (info, first)
    return cache[key]


def stem(name: str) -> str:
    """A file name's stem made safe for the files derived from it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "video"


# ---- the line and zones ----------------------------------------------------------------------------
def bounded(key: str, default: int, low: int, high: int) -> str:
    """``keep(key, default)`` with the kept value moved into range (another video may be smaller)."""
    keep(key, default)
    st.session_state[key] = min(max(int(st.session_state[key]), low), high)
    return key


def typed_line(width: int, height: int) -> regions.Line | None:
    """The line's two ends in pixels (a horizontal line across the middle to start), or None when switched off."""
    if not st.toggle("Count crossings of a line", key=keep("video_line_on", True)):
        return None
    start = regions.middle_line(width, height)
    values = []
    for cell, name, top, value in zip(st.columns(4), ("x1", "y1", "x2", "y2"), (width, height) * 2, start):
        key = bounded(f"video_line:{width}x{height}:{name}", round(value), 0, top)
        values.append(cell.number_input(f"{name} (px)", 0, top, step=1, key=key))
    try:
        return regions.check_line(values)
    except SettingError as error:
        st.error(str(error), icon=":material/error:")
        return None


def typed_zones() -> list[regions.Zone]:
    text = st.text_area("Zones: one a line, each corner as x,y in pixels", key=keep("video_zones", ""), height=68,
                        placeholder="100,250 350,250 350,420 100,420")
    try:
        return regions.parse_zones(text)
    except SettingError as error:
        st.error(str(error), icon=":material/error:")
        return []


def canvas() -> Any:
    """``st_canvas``, or None where the component cannot be loaded."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception:  # noqa: BLE001 — the component registers only where Streamlit can serve it
        return None
    return st_canvas


def drawn(frame: np.ndarray, st_canvas: Any) -> tuple[regions.Line | None, list[regions.Zone]]:
    """A line and zones drawn on the first frame (the newest line counts; each closed polygon is a zone)."""
    tool = st.radio("Draw", ["line", "polygon"], horizontal=True, key=keep("video_draw_tool", "line"),
                    format_func={"line": "the counting line (drag)",
                                 "polygon": "a zone (click its corners, then the first again)"}.get)
    scale = min(1.0, CANVAS_WIDTH / frame.shape[1])
    size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA) if scale < 1 else frame
    result = st_canvas(stroke_width=3, stroke_color="#facc15", fill_color="rgba(37, 99, 235, 0.2)",
                       background_image=encode_png(small), width=size[0], height=size[1], drawing_mode=tool,
                       key="video_canvas")
    return regions.from_canvas(result.json_data, scale)


def line_and_zones(frame: np.ndarray, board: Any) -> tuple[regions.Line | None, list[regions.Zone], bool]:
    """The counting line and zones, typed (always there, and what tests drive) or drawn on the first frame in
    ``board`` (a wide column); and whether the canvas is shown there."""
    height, width = frame.shape[:2]
    st_canvas = canvas()
    ways = ["Type them", "Draw them on the frame"] if st_canvas else ["Type them"]
    how = st.radio("Line and zones", ways, horizontal=True, key=keep("video_regions_how", ways[0]))
    line, zones = typed_line(width, height), typed_zones()
    if how == ways[0] or st_canvas is None:
        return line, zones, False
    with board:
        drawn_line, drawn_zones = drawn(frame, st_canvas)
        if drawn_line is None and not drawn_zones:
            st.caption("Nothing drawn yet: the typed line and zones count.")
    return drawn_line or line, drawn_zones or zones, True


def preview(frame: np.ndarray, line: regions.Line | None, zones: list[regions.Zone]) -> np.ndarray:
    """The first frame with the line (its arrow pointing to "in") and the zones, as they will be counted."""
    image = frame
    for k, zone in enumerate(zones):
        image = drawing.draw_zone(image, np.asarray(zone), f"zone {k + 1}")
    return drawing.draw_counting_line(image, line, 0, 0) if line is not None else image


# ---- a run that can be stopped -----------------------------------------------------------------------
class KeepWhatWasDone(Interruptible):
    """A video run's progress bar whose interruption stops the run instead of losing it (the frames done are kept:
    the video is finished, the rows returned); see ``pages/_stoppable.py``."""

    def __init__(self, bar: Any):
        self.bar = bar

    def __call__(self, progress: Progress) -> bool:
        total = max(progress.frames_total, progress.frames_done)
        left = f" · {progress.seconds_left:.0f} s left" if progress.seconds_left is not None else ""
        text = f"Frame {progress.frames_done:,} of {total:,} · {progress.fps:.1f} frames/s{left}"
        return self.draw(lambda: self.bar.progress(min(1.0, progress.frames_done / total) if total else 0.0, text))


def kept() -> Kept:
    return stoppable.kept("_video_kept")


def wait_for_a_stopped_run(timeout_s: float = 60) -> None:
    stoppable.wait_for_a_stopped_run("_video_kept", "Stopping: keeping what was done…", timeout_s)