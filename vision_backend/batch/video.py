"""``python -m vision_backend track``: videos through detection, tracking and counting, with the batch conventions.

One row per tracked box per frame (``path, frame, time_s, id, label, score, x1, y1, x2, y2``) in ``.csv``, ``.jsonl``
or ``.parquet``. A video that cannot be read is a row with an ``error`` (video intake's own message) and the run goes
on; one cut short keeps the rows of the frames before the damage, and adds a row saying where it stopped; a video with
nothing tracked still gets a row (its path), so ``--resume`` knows it was done. A video's rows are written when it is
finished, so a run stopped half-way and resumed does each video whole, once. ``--counts`` writes the line's and the
zones' counts (one count a row, see :data:`~vision_backend.video.report.COUNT_COLUMNS`) and the end summary says them.
The tracker's settings are the Video page's (:mod:`vision_backend.video.options`), so the page and the command line
count alike.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vision_backend.batch.tasks import Column, _known, ensure_ready
from vision_backend.errors import BadInput, UserError

TRACK_COLUMNS = [Column("path"), Column("frame", "int"), Column("time_s", "float"), Column("id", "int"),
                 Column("label"), Column("score", "float"), *(Column(c, "float") for c in ("x1", "y1", "x2", "y2")),
                 Column("error")]
COUNT_COLUMNS = [Column("path"), Column("counter"), Column("direction"), Column("label"), Column("count", "int")]


@dataclass
class Tracked:
    """One video's outcome: its rows, its counts, what the run said, or why it could not be done."""

    path: str
    rows: list[dict[str, Any]]
    counts: list[dict[str, Any]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    line: dict[str, Any] | None = None
    zones: list[dict[str, Any]] = field(default_factory=list)
    tracks: int = 0
    error: str = ""


class TrackVideos:
    """The ``track`` subcommand's choices, checked before any video is read (:meth:`resolve`), then run video by
    video (:meth:`track`)."""

    name = "track"

    def __init__(self, model: str, overrides: dict[str, Any], line: str | None = None, zones: tuple[str, ...] = (),
                 video: str | None = None, blur_faces: bool = False):
        self.model, self.overrides, self.line_text, self.zone_texts = model, overrides, line, zones
        self.video, self.blur_faces = video, blur_faces
        self.line, self.zones, self.tracking, self.settings = None, [], {}, {}

    @property
    def detector(self) -> Any:
        from vision_backend.object_detection import DETECTORS

        return _known(DETECTORS, self.model, "object detector")

    def resolve(self) -> "TrackVideos":
        """Names, settings, the line and the zones checked: a :class:`UserError` saying what is wrong."""
        from vision_backend.video import options, regions

        self.tracking, self.settings = options.split(self.detector, self.overrides)
        self.line = regions.parse_line(self.line_text, "--line") if self.line_text else None
        self.zones = [regions.parse_zone(text, f"--zone {k + 1}") for k, text in enumerate(self.zone_texts)]
        return self

    def load(self) -> None:
        ensure_ready(self.detector.card)
        self.detector.runtime()

    def annotated(self, path: str, many: bool) -> Path | None:
        """Where ``path``'s annotated MP4 goes: ``--video`` itself for one video; for several, ``--video``'s name
        with the video's own (``annotated_clip.mp4``), or, when ``--video`` names no ``.mp4``, a folder."""
        if not self.video:
            return None
        target = Path(self.video).expanduser()
        if target.suffix.lower() != ".mp4":
            return target / f"{Path(path).stem}.mp4"
        return target.with_name(f"{target.stem}_{Path(path).stem}.mp4") if many else target

    def track(self, path: str, many: bool, progress: Callable[[Any], Any] | None = None) -> Tracked:
        """One video through the tracker; a video that cannot be read is an outcome with its reason."""
        from vision_backend.video import options, track_video

        started, name = time.perf_counter(), Path(path).name
        try:
            result = track_video(path, self.detector, self.settings, options.tracker(self.tracking), self.line,
                                 self.zones, self.annotated(path, many), self.blur_faces, progress,
                                 anchor=self.tracking["anchor"])
        except UserError as error:
            return Tracked(path, [{"path": path, "error": str(error)}], error=str(error))
        except Exception as error:  # noqa: BLE001 - one odd video never stops a run of many
            reason = f"“{name}” could not be tracked: {error}"
            return Tracked(path, [{"path": path, "error": reason}], error=reason)
        return outcome(path, result, time.perf_counter() - started)


def outcome(path: str, result: Any, seconds: float) -> Tracked:
    """A finished run's rows (its path alone when nothing was tracked; a last row with the error when it was cut
    short) and counts."""
    from vision_backend.video import report

    rows = [{"path": path, **record} for record in result.records()] or ([] if result.error else [{"path": path}])
    if result.error:
        rows.append({"path": path, "error": result.error})
    counts = [{"path": path, **row} for row in report.counts(result)]
    return Tracked(path, rows, counts, result.frames, seconds, result.line, result.zones,
                   len(set(result.rows["id"].tolist())), result.error)


@dataclass
class VideoSummary:
    """What a ``track`` run did: videos, frames and speed, each video's counts and the totals, failures."""

    videos: list[Tracked] = field(default_factory=list)
    skipped: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        frames = sum(v.frames for v in self.videos)
        failed = [v for v in self.videos if v.error and not v.frames]
        rate = frames / self.seconds if self.seconds else 0.0
        lines = [f"track: {len(self.videos)} video(s), {frames} frames in {self.seconds:.1f} s ({rate:.1f} frames/s): "
                 f"{len(self.videos) - len(failed)} done, {len(failed)} failed"
                 + (f", {self.skipped} skipped (already in the output)" if self.skipped else "")]
        for video in self.videos:
            lines += video_lines(video)
        lines += totals(self.videos)
        return "\n".join(lines)


def by_class(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {n}" for label, n in sorted(counts.items())) or "none"


def video_lines(video: Tracked) -> list[str]:
    name = Path(video.path).name
    if video.error and not video.frames:
        return [f"  failed: {video.path}: {video.error}"]
    lines = [f"  {name}: {video.frames} frames, {video.tracks} track(s)"]
    if video.line is not None:
        lines.append(f"    line: in {video.line['in']} | out {video.line['out']} "
                     f"(in: {by_class(video.line['in_by_class'])}; out: {by_class(video.line['out_by_class'])})")
    for zone in video.zones:
        lines.append(f"    {zone['name']}: {sum(zone['entries'].values())} entered ({by_class(zone['entries'])})")
    if video.error:
        lines.append(f"    stopped early: {video.error}")
    return lines


def totals(videos: list[Tracked]) -> list[str]:
    counted = [v.line for v in videos if v.line is not None]
    if len(counted) < 2:
        return []
    return [f"  all videos, across the line: in {sum(c['in'] for c in counted)} | out {sum(c['out'] for c in counted)}"]


class FrameBar:
    """A tqdm bar of frames for one video, made at its first progress report (when its length is known)."""

    def __init__(self, name: str, enabled: bool):
        self.name, self.enabled, self.bar = name, enabled, None

    def __call__(self, progress: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.frames_total or None, unit="frame", desc=self.name, file=sys.stderr)
        self.bar.total = max(self.bar.total or 0, progress.frames_total)
        self.bar.update(progress.frames_done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def videos_of(paths: list[str]) -> list[str]:
    from vision_backend.batch.paths import VIDEO_SUFFIXES, expand

    found = expand(paths, warn=lambda message: print(message, file=sys.stderr), suffixes=VIDEO_SUFFIXES)
    if not found:
        raise BadInput("no videos in the paths given")
    return found


def counts_writer(path: str | None, resume: bool) -> Any:
    import contextlib

    from vision_backend.batch.output import open_writer

    return open_writer(path, COUNT_COLUMNS, resume) if path else contextlib.nullcontext(None)


def run_track(args: Any, settings: dict[str, Any]) -> int:
    """The ``track`` subcommand: every video not yet in ``--out``, its rows written when it is done (its counts
    first, so a run killed between the two redoes the video without counting it twice)."""
    from vision_backend.batch.output import open_writer

    videos = videos_of(args.paths)
    job = TrackVideos(args.model, settings, args.line, tuple(args.zone), args.video, args.blur_faces).resolve()
    if args.counts and job.line is None and not job.zones:
        raise BadInput("--counts needs a --line or a --zone to count")
    started = time.perf_counter()
    with open_writer(args.out, TRACK_COLUMNS, args.resume) as rows, counts_writer(args.counts, args.resume) as counts:
        todo = [v for v in videos if v not in rows.done]
        summary = VideoSummary(skipped=len(videos) - len(todo))
        if todo:
            job.load()
        for path in todo:
            bar = FrameBar(Path(path).name, not args.quiet)
            try:
                done = job.track(path, len(videos) > 1, bar)
            finally:
                bar.close()
            if counts is not None and path not in counts.done:
                counts.write(done.counts)
            rows.write(done.rows)
            summary.videos.append(done)
    summary.seconds = time.perf_counter() - started
    print(summary.text())
    print(f"rows in {args.out}" + (f"; counts in {args.counts}" if args.counts else ""))
    return 0
