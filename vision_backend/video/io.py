"""Video intake and output with PyAV (FFmpeg): frames in as RGB arrays with their times, an H.264 MP4 out.

Reading mirrors photo intake (:mod:`vision_backend.intake`): the container is sniffed from the bytes, never
trusted from the name (MP4, MOV, WebM/MKV and AVI are taken; a PNG renamed ``.mp4`` is refused), the header's
size and length are checked against caps before a frame is decoded, a phone's rotation flag is applied, and
anything that goes wrong raises :class:`~vision_backend.errors.VideoIntakeError` with a message for the person.
Frames are yielded one at a time (a long video never sits in memory); a file cut short or damaged part-way
raises after the frames before the damage were yielded, with ``error.frames_read`` saying how many, so a
caller keeps the work done on them.

Writing: H.264 in MP4, yuv420p, ``+faststart`` (browsers play it while it downloads), to a temporary file
beside the target, renamed only once whole. This PyAV build has ``libx264``; without an H.264 encoder
(``libx264``, ``libopenh264``, then FFmpeg's ``h264``) the writer falls back to VP9 in MP4, which Chrome,
Firefox and Edge play, and says so in ``writer.codec``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import av
import numpy as np

from vision_backend.errors import VideoIntakeError
from vision_backend.storage import atomic_path

SUPPORTED = "MP4, MOV, WebM, MKV or AVI"
CONTAINERS = ("mp4", "mov", "matroska", "webm", "avi")
"""FFmpeg demuxer names taken (the ``mov,mp4,...`` and ``matroska,webm`` demuxers list several)."""
MAX_SECONDS = 600.0
"""Ten minutes: a demo clip fits many times over, and NanoDet-m needs about a third of that to get through it."""
MAX_FRAMES = 18_000
"""Ten minutes at 30 frames a second."""
MAX_PIXELS = 3840 * 2160
"""4K UHD: every camera's video fits, a decompression bomb's frame size does not."""
MIN_SIDE = 32
"""As for photos (``intake.MIN_SIDE``): below this a frame holds nothing any detector here can see."""
DEFAULT_FPS = 25.0
"""The rate assumed when a file states none."""


@dataclass(frozen=True)
class VideoInfo:
    """What the header says: size as stored (a phone's portrait video's frames come out turned upright, so
    take a frame's own shape for drawing), rate, length (``frames`` estimated from the duration when the
    container does not count them; 0 when unknown), codec and container."""

    name: str
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    codec: str
    container: str


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index from 0, its time in seconds from the first frame, RGB ``uint8`` pixels."""

    index: int
    time_s: float
    image: np.ndarray


def intake_error(message: str, frames_read: int = 0) -> VideoIntakeError:
    """A :class:`VideoIntakeError` that says how many frames were read before it (0: none)."""
    error = VideoIntakeError(message)
    error.frames_read = frames_read
    return error


# ---- reading -------------------------------------------------------------------------------------
@contextlib.contextmanager
def open_video(path: str | Path, name: str | None = None, *, max_seconds: float = MAX_SECONDS,
               max_frames: int = MAX_FRAMES, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE) -> Iterator[tuple[Any, Any, VideoInfo]]:
    """The open container, its video stream and what its header says, checked against the caps."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise intake_error(f"“{name}” is not there (no such file).")
    if path.stat().st_size == 0:
        raise intake_error(f"“{name}” is empty (0 bytes). Choose a video file ({SUPPORTED}).")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as error:
        raise unreadable(path, name) from error
    try:
        stream = video_stream(container, name)
        info = header(container, stream, name)
        check_caps(info, max_seconds, max_frames, max_pixels, min_side)
        yield container, stream, info
    finally:
        container.close()


def unreadable(path: Path, name: str) -> VideoIntakeError:
    """Why FFmpeg could not open a file: an MP4 or MOV (its first box is ``ftyp``) whose index is missing,
    or not a video at all."""
    with open(path, "rb") as handle:
        start = handle.read(12)
    if start[4:8] == b"ftyp":
        return intake_error(f"“{name}” starts as an MP4 but cannot be read: it is probably cut short (an MP4 keeps "
                            "its index at the end, so an incomplete copy has none). Copy or export it again.")
    return intake_error(f"“{name}” is not a video Vision Lab can read ({SUPPORTED}).")


def video_stream(container: Any, name: str) -> Any:
    """The first video stream of a container we take, or why there is none."""
    demuxer = container.format.name
    if not set(demuxer.split(",")) & set(CONTAINERS):
        what = demuxer.split("_")[0].upper() + " image" if demuxer.endswith("_pipe") else container.format.long_name
        raise intake_error(f"“{name}” is not a video but a {what} file. Vision Lab reads {SUPPORTED} videos.")
    if not container.streams:
        raise intake_error(f"“{name}” has no tracks at all: it is probably cut short (an MP4 keeps its index at the "
                           "end, so an incomplete copy has none). Copy or export it again.")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        raise intake_error(f"“{name}” has no video track (only {' and '.join(kinds)}). Choose a video file.")
    return container.streams.video[0]


def header(container: Any, stream: Any, name: str) -> VideoInfo:
    """What the header says, with a rate and length even when the container does not state them."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate and float(rate) > 0 else DEFAULT_FPS
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / av.time_base if container.duration and len(container.streams) == 1 else 0.0
    frames = stream.frames or round(duration * fps)
    context = stream.codec_context
    return VideoInfo(name, int(context.width or 0), int(context.height or 0), fps, int(frames), duration,
                     context.name, container.format.name)


def check_caps(info: VideoInfo, max_seconds: float, max_frames: int, max_pixels: int, min_side: int) -> None:
    """The header against the caps, before a frame is decoded: too small, too large or too long is refused."""
    name, width, height = info.name, info.width, info.height
    if width <= 0 or height <= 0:
        raise intake_error(f"“{name}” has a video track without a picture size; it cannot be decoded.")
    if min(width, height) < min_side:
        raise intake_error(f"“{name}” is only {width}x{height} pixels: too small to hold anything a detector can "
                           f"see (Vision Lab needs at least {min_side} pixels a side), so it is refused unread.")
    if width * height > max_pixels:
        raise intake_error(f"“{name}” is {width}x{height} pixels a frame; the limit is {max_pixels / 1e6:.1f} "
                           "megapixels (4K). Export it smaller and try again.")
    if info.duration_s > max_seconds or info.frames > max_frames:
        raise intake_error(f"“{name}” is {clock(info.duration_s)} long ({info.frames} frames); the limit is "
                           f"{clock(max_seconds)} ({max_frames} frames). Cut it shorter and try again.")


def clock(seconds: float) -> str:
    """``m:ss`` (a video's length as players show it)."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def read_frames(path: str | Path, name: str | None = None, **caps: Any) -> Iterator[Frame]:
    """Every frame of a video, in order, as RGB ``uint8`` with its time; caps as :func:`open_video`'s.

    Raises :class:`VideoIntakeError` before the first frame when the file is refused, and after the last good
    frame when the file is cut short, damaged, changes size, or runs past the caps (its header lied):
    ``error.frames_read`` frames were yielded before it.
    """
    with open_video(path, name, **caps) as (container, stream, info):
        limits = {k: caps.get(k, default) for k, default in (("max_seconds", MAX_SECONDS), ("max_frames", MAX_FRAMES))}
        yield from decode(container, stream, info, **limits)


def decode(container: Any, stream: Any, info: VideoInfo, max_seconds: float = MAX_SECONDS,
           max_frames: int = MAX_FRAMES) -> Iterator[Frame]:
    """The frames of a stream :func:`open_video` opened (see :func:`read_frames`)."""
    stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads: decoding is a small part of a frame's time
    count, start, last, shape = 0, None, 0.0, None
    try:
        for decoded in container.decode(stream):
            if decoded.time is not None:
                start = decoded.time if start is None else start
                last = max(0.0, decoded.time - start)
            else:
                last = count / info.fps
            if count >= max_frames or last > max_seconds:
                raise intake_error(f"“{info.name}” runs past the limit of {clock(max_seconds)} ({max_frames} frames) "
                                   f"its header did not show; its first {count} frames were read.", count)
            image = upright(decoded.to_ndarray(format="rgb24"), decoded.rotation)
            if shape is not None and image.shape != shape:
                raise intake_error(f"“{info.name}” changes its picture size at frame {count + 1}; "
                                   f"its first {count} frames were read.", count)
            shape = image.shape
            yield Frame(count, float(last), image)
            count += 1
    except av.error.FFmpegError as error:
        raise cut_short(info, count, last) from error
    if count == 0:
        raise intake_error(f"“{info.name}” has a video track but not one frame could be decoded from it.")
    if _missing_frames(info, count, last):
        raise cut_short(info, count, last)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """A frame turned the way players show it: FFmpeg's rotation is counter-clockwise in degrees (-90 for a
    phone held upright), and ``np.rot90`` turns counter-clockwise by quarter turns."""
    turns = round((rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def _missing_frames(info: VideoInfo, count: int, last_s: float) -> bool:
    """True when the header promised clearly more than was decoded (a header's count may be off by a frame)."""
    if info.frames and count < info.frames * 0.98 - 2:
        return True
    missing_s = info.duration_s - (last_s + 1 / info.fps)
    return info.duration_s > 0 and missing_s > max(0.5, 0.02 * info.duration_s)


def cut_short(info: VideoInfo, count: int, last_s: float) -> VideoIntakeError:
    expected = f" of its {info.frames}" if info.frames else ""
    length = f" ({last_s:.1f} s of {info.duration_s:.1f} s)" if info.duration_s else ""
    if count == 0:
        return intake_error(f"“{info.name}” is damaged: not one frame could be decoded. Copy or export it again.")
    return intake_error(f"“{info.name}” stops after {count}{expected} frames{length}: the file is cut short or "
                        f"damaged. Its first {count} frames were read.", count)


# ---- writing -------------------------------------------------------------------------------------
ENCODERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("libx264", {"crf": "23", "preset": "veryfast"}),
    ("libopenh264", {"b": "2M"}),
    ("h264", {}),  # whichever H.264 encoder this FFmpeg was built with
    ("libvpx-vp9", {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}),
)
"""Browser-playable encoders, best first: H.264 plays everywhere; VP9 in MP4 in Chrome, Firefox and Edge."""


def pick_encoder() -> tuple[str, dict[str, str]]:
    """The first encoder of :data:`ENCODERS` this PyAV build has, with its options."""
    for name, options in ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (ValueError, av.error.FFmpegError):
            continue
        return name, options
    raise RuntimeError("this PyAV build has no H.264 or VP9 encoder; install PyAV's wheel from PyPI")


def _even(value: int) -> int:
    return value + value % 2


class VideoWriter:
    """Frames to an MP4 at a constant rate (yuv420p halves colour resolution, so an odd width or height is
    padded by one pixel, repeating the edge). Use :func:`video_writer`, which makes the file appear whole."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int):
        self.codec, options = pick_encoder()
        self.container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001),
                                                options=options)
        self.stream.width, self.stream.height = _even(int(width)), _even(int(height))
        self.stream.pix_fmt = "yuv420p"
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        height, width = self.stream.height, self.stream.width
        if image.shape[:2] != (height, width):
            pad = ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0))
            if min(pad[0][1], pad[1][1]) < 0 or max(pad[0][1], pad[1][1]) > 1:
                raise ValueError(f"a {image.shape[1]}x{image.shape[0]} frame in a {width}x{height} video")
            image = np.pad(image, pad, mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, np.uint8), format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


@contextlib.contextmanager
def video_writer(path: str | Path, fps: float, width: int, height: int) -> Iterator[VideoWriter]:
    """A :class:`VideoWriter` on a temporary file beside ``path``; ``path`` appears, whole, when the block ends
    (with at least one frame written), and nothing appears when it fails."""
    with atomic_path(Path(path), suffix=".mp4") as temp:
        writer = VideoWriter(temp, fps, width, height)
        try:
            yield writer
            if not writer.frames:
                raise ValueError("no frame was written")
            writer.finish()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.container.close()
            raise
