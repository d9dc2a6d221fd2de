"""Video: counting on the real car clip, a video file's speed, the tracker alone, live tracking, memory over ten minutes.

- ``car_clip_line_count_error``: |in - 2| + |out - 2| on the car clip (768x432, 12.5 fps, 377 frames; 4 cars cross
  its middle, 2 up, 2 down) with the Video page's defaults (NanoDet-m, tracking settings of
  ``vision_backend/video/options.py``, a line across the middle); ``car_clip_id_switches``: ids that change on a
  car (the test's measure, ``tests/test_video.crossings_by_car``).
- ``video_file_fps``: that whole run, decode, detect, track, count, draw and H.264 encode, frames a second (median of
  the runs); ``video_file_ms`` per frame and ``video_file_vs_raw`` over NanoDet-m's bare ``detect`` on the clip's
  frames at the same settings (``video_file_raw_ms``): what the rest of the pipeline adds.
- ``tracker_ms_per_frame``: ``ByteTrack.update`` on 50 moving boxes a frame, at the page's settings.
- ``live_tracking_fps``: the live camera's "Track and count" task through ``FrameProcessor.video_frames`` on yuv420p
  frames of the clip in order (as ``bench/live.py`` measures ``live_*``), ``live_tracking_vs_raw`` over the bare
  detect; ``live_browser_tracking_fps``: the rate the Live page reports with that task while Chromium's fake camera
  plays the clip's frames at 30 fps (server and browser sharing the 2 cores).
- ``video_10min_rss_growth_mb``: the process's resident memory at the end of a 10-minute video (the clip looped through
  the writer, 7,490 frames) over what it was 300 frames in, the annotated video written.

Targets (the video issue): count error 0, id switches <= 1, video file >= 25 FPS, tracker <= 2 ms, live tracking
>= 20 FPS, in Chromium >= 15 FPS, memory growth < 50 MB.

python bench/video.py [--quick] [--no-browser]
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from _harness import ROOT, Bench

os.environ.setdefault("VISION_LAB_HOME", tempfile.mkdtemp(prefix="video_bench_"))
sys.path.insert(0, str(ROOT / "tests"))
from vision_backend import live, models  # noqa: E402
from vision_backend.clips import CAR_CLIP  # noqa: E402
from vision_backend.detections import Detections  # noqa: E402
from vision_backend.video import options, read_frames, regions, track_video, video_writer  # noqa: E402
from vision_backend.video.pipeline import detection_settings  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="video_bench_work_"))
"""The clips made here (the looped 10-minute clip, the camera's Y4M: a few hundred MB), removed at exit."""
atexit.register(shutil.rmtree, WORK, True)
CARS_EACH_WAY = 2
TEN_MINUTES = 7490
"""Frames of the looped clip: 599.2 s at 12.5 fps, inside video intake's 10-minute cap."""


def page_run(detector, clip: Path, out: Path | None = None, progress=None):
    """The Video page's run at its defaults: a line across the middle, the tracking settings' defaults."""
    values = options.defaults()
    with av.open(str(clip)) as container:
        width, height = container.streams.video[0].width, container.streams.video[0].height
    return track_video(clip, detector, {}, options.tracker(values), regions.middle_line(width, height), (), out,
                       progress=progress, anchor=values["anchor"], progress_every_s=0.5)


def car_clip(bench: Bench, detector) -> None:
    from test_video import crossings_by_car

    clip = CAR_CLIP.path()
    runs = [page_run(detector, clip, WORK / f"clip_{k}.mp4") for k in range(bench.repeats(3, 1))]
    result = runs[-1]
    _, switches = crossings_by_car(result.rows, result.crossings)
    bench.record("car_clip_line_count_error", abs(result.line["in"] - CARS_EACH_WAY) +
                 abs(result.line["out"] - CARS_EACH_WAY), "crossings")
    bench.record("car_clip_id_switches", switches, "switches")
    fps = statistics.median(r.fps for r in runs)
    frames = [f.image for f in read_frames(clip) if f.index % 6 == 0]
    settings = detection_settings(detector, {}, options.tracker(options.defaults()))
    raw_ms = bench.time(lambda: [detector.detect(f, **settings) for f in frames], bench.repeats(3, 1)) / len(frames)
    bench.record("video_file_fps", fps, "FPS")
    bench.record("video_file_ms", 1000 / fps, "ms")
    bench.record("video_file_raw_ms", raw_ms, "ms")
    bench.record("video_file_vs_raw", 1000 / fps / raw_ms, "ratio")


def fifty_boxes(count: int = 240) -> list[Detections]:
    """50 objects a frame on a 1920x1080 scene, each moving at its own speed, with detector-like jitter."""
    rng = np.random.default_rng(0)
    start, speed = rng.uniform([0, 0], [1800, 1000], (50, 2)), rng.uniform(-6, 6, (50, 2))
    frames = []
    for t in range(count):
        centre = start + speed * t + rng.normal(0, 1.5, (50, 2))
        boxes = np.c_[centre - [20, 40], centre + [20, 40]]
        frames.append(Detections(boxes, rng.uniform(0.3, 0.95, 50), rng.integers(0, 3, 50), ("person", "car", "bus")))
    return frames


def tracker(bench: Bench) -> None:
    frames = fifty_boxes()
    tracking = options.tracker(options.defaults())
    for found in frames[:20]:
        tracking.update(found)
    times = []
    for found in frames[20:]:
        started = time.perf_counter()
        tracking.update(found)
        times.append((time.perf_counter() - started) * 1000)
    bench.record("tracker_ms_per_frame", statistics.median(times), "ms")


def live_tracking(bench: Bench, detector) -> None:
    """The live task on the clip's frames in order, each as aiortc hands it over (yuv420p)."""
    frames = [av.VideoFrame.from_ndarray(f.image, format="rgb24").reformat(format="yuv420p")
              for f in read_frames(CAR_CLIP.path()) if 40 <= f.index < 250]
    rgb = [f.to_ndarray(format="rgb24") for f in frames[::10]]
    processor = live.FrameProcessor()
    processor.configure(live.TrackTask(detector))
    turn = {"product": 0, "raw": 0}

    def product() -> None:
        processor.video_frames([frames[turn["product"] % len(frames)]])
        turn["product"] += 1

    def raw() -> None:
        detector.detect(rgb[turn["raw"] % len(rgb)])
        turn["raw"] += 1

    ms = bench.compare("live_tracking", product, raw, repeats=bench.repeats(120, 20))
    bench.record("live_tracking_fps", 1000 / ms, "FPS")


def write_y4m(path: Path, start: int = 40, stop: int = 250, fps: int = 30) -> Path:
    """The clip's frames as a raw 4:2:0 video for Chromium's fake camera (which loops it)."""
    with open(path, "wb") as out:
        first = True
        for frame in read_frames(CAR_CLIP.path()):
            if not start <= frame.index < stop:
                continue
            height, width = frame.image.shape[:2]
            if first:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                first = False
            yuv = av.VideoFrame.from_ndarray(frame.image, format="rgb24").reformat(format="yuv420p")
            out.write(b"FRAME\n" + yuv.to_ndarray().tobytes())
    return path


def browser(bench: Bench) -> None:
    """The FPS the Live page reports with "Track and count", read every half second once 10 frames are through."""
    import test_live as page
    from playwright.sync_api import sync_playwright

    camera = write_y4m(WORK / "cars.y4m")
    with page.streamlit_server(WORK / "home", WORK) as server, sync_playwright() as driver:
        chromium, tab = page.open_live_page(driver, camera, server.url)
        try:
            page.wait_for_tensorflow(server.process.pid)
            tab.get_by_test_id("stSidebar").get_by_role("link", name="Live camera").click()
            tab.get_by_role("heading", name="Live camera").wait_for()
            tab.get_by_test_id("stMainBlockContainer").get_by_text("Track and count", exact=True).click()
            tab.get_by_text("Count crossings of a line").first.wait_for()
            page.press_start(tab)
            page.wait_for_report(tab, lambda r: r["processed"] >= 10)
            readings = []
            for _ in range(8 if bench.quick else 30):
                time.sleep(0.5)
                readings.append(page.reported(tab)["fps"])
            tab.screenshot(path=str(WORK / "live_tracking.png"))
        finally:
            chromium.close()
    bench.record("live_browser_tracking_fps", statistics.median(readings), "FPS")


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def looped_clip(frames: int) -> Path:
    """The car clip looped through the writer to ``frames`` frames (12.5 fps)."""
    path = WORK / "looped.mp4"
    with video_writer(path, 12.5, 768, 432) as writer:
        while writer.frames < frames:
            for frame in read_frames(CAR_CLIP.path()):
                if writer.frames >= frames:
                    break
                writer.write(frame.image)
    return path


def memory(bench: Bench, detector) -> None:
    frames = 1000 if bench.quick else TEN_MINUTES
    clip = looped_clip(frames)
    resident: dict[int, float] = {}
    result = page_run(detector, clip, WORK / "looped_tracked.mp4",
                      progress=lambda p: resident.__setitem__(p.frames_done, resident_mb()))
    assert result.frames == frames and not result.error, (result.frames, result.error)
    base = resident[min(k for k in resident if k >= 300)]
    bench.record("video_10min_rss_growth_mb", max(resident.values()) - base, "MB")
    bench.record("video_10min_fps", result.fps, "FPS")


def main() -> None:
    bench = Bench("video", __doc__, extra=lambda parser: parser.add_argument(
        "--no-browser", action="store_true", help="skip the Chromium run (live_browser_tracking_fps)"))
    detector = models.default("objects")
    with bench.about(detector.name, CAR_CLIP.name):
        car_clip(bench, detector)
    tracker(bench)
    with bench.about(detector.name):
        live_tracking(bench, detector)
        if not bench.args.no_browser:
            browser(bench)
    with bench.about(detector.name, CAR_CLIP.name):
        memory(bench, detector)


if __name__ == "__main__":
    main()
