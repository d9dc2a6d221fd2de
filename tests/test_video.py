"""Video intake, output and the tracking pipeline: the real car clip counted by NanoDet-m and ByteTrack, hostile
files each refused with a reason, an annotated MP4 that reads back whole, and synthetic clips (written here with
PyAV) where the truth is known.

The synthetic clips are watched by ``Blobs``, a real detector for their scene (bright squares on dark ground,
found by connected components), so the pipeline runs end to end without a model.
"""

from __future__ import annotations

import os
import re
import struct
import time
from pathlib import Path
from typing import Any, Iterable

import av
import cv2
import numpy as np
import pytest
from conftest import require_shared

from vision_backend.detections import Detections
from vision_backend.errors import VideoIntakeError
from vision_backend.model import Param
from vision_backend.tracking import ByteTrack, LineCounter
from vision_backend.video import io as video_io
from vision_backend.video import pipeline, read_frames, track_video, video_writer

CLIP = "data/video/car-detection.mp4"


# ---- clips written here -------------------------------------------------------------------------------------
def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 25, codec: str = "libx264",
               container: str | None = None, options: dict[str, str] | None = None) -> Path:
    """RGB frames to a video file with PyAV (``options``: the muxer's, e.g. ``movflags``)."""
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w", format=container, options=options or {}) as output:
        stream = output.add_stream(codec, rate=fps, options={"preset": "ultrafast"} if codec == "libx264" else {})
        stream.width, stream.height, stream.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        for image in (first, *frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


def two_squares(count: int = 60, width: int = 320, height: int = 240) -> Iterable[np.ndarray]:
    """Square A (40 px) drives down the left half across the middle, square B up the right half."""
    for t in range(count):
        image = np.full((height, width, 3), 30, np.uint8)
        a_y = int(20 + (height - 80) * t / (count - 1))
        b_y = int(height - 60 - (height - 80) * t / (count - 1))
        image[a_y:a_y + 40, 60:100] = 230
        image[b_y:b_y + 40, 220:260] = 230
        yield image


class Blobs:
    """Bright blobs as "car" boxes: the detector interface the pipeline uses (settings, param, detect)."""

    title = "Bright blobs"
    params = (Param("score_threshold", "Score threshold", 0.5, 0.05, 1.0, 0.05),)

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"score_threshold": 0.5, **(overrides or {})}

    def param(self, name: str) -> Param:
        return self.params[0]

    def detect(self, image: np.ndarray, score_threshold: float = 0.5) -> Detections:
        mask = (image.mean(axis=2) > 150).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        x, y, w, h = stats[1:, :4].T.astype(float)
        keep = w * h >= 100
        found = Detections(np.c_[x, y, x + w, y + h][keep], np.full(keep.sum(), 0.9), np.zeros(keep.sum()), ("car",))
        return found[found.scores >= score_threshold]


def cut(path: Path, keep: float, to: Path) -> Path:
    data = path.read_bytes()
    to.write_bytes(data[: int(len(data) * keep)])
    return to


def decoded(path: Path) -> tuple[int, int, int, str, str]:
    """(frames, width, height, codec, pixel format) of a video as PyAV decodes it."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        context = stream.codec_context
        return frames, context.width, context.height, context.name, context.pix_fmt


# ---- the real clip --------------------------------------------------------------------------------------------
CARS = (  # name, first and last frame over the middle, box centre x from and to, way across y = 216
    ("white car", 60, 102, 320, 410, "out"),  # enters at the bottom, leaves at the top
    ("silver car", 190, 226, 120, 230, "in"),  # top left to bottom, beside the red car
    ("red car", 190, 234, 330, 440, "out"),  # bottom right to top
    ("second white car", 320, 348, 170, 280, "in"),  # top to bottom, the frame darkening as it passes
)
"""The clip's four crossings (its README and every 6th frame looked at): a line drawn left to right has ``in``
downwards."""


class Recorded:
    """A detector that keeps what it found, frame by frame, to replay into other trackers."""

    def __init__(self, detector: Any):
        self.detector, self.found = detector, []
        self.title, self.params = detector.title, detector.params

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.detector.settings(overrides)

    def param(self, name: str) -> Param:
        return self.detector.param(name)

    def detect(self, image: np.ndarray, **settings: Any) -> Detections:
        self.found.append(self.detector.detect(image, **settings))
        return self.found[-1]


def crossings_by_car(rows: dict[str, np.ndarray], crossings: list) -> tuple[list[list[str]], int]:
    """Each car's counted directions and the id switches on the cars (its ids holding it 3 frames or more, less 1)."""
    centre = (rows["x1"] + rows["x2"]) / 2
    directions, switches = [], 0
    for _, first, last, low, high, _ in CARS:
        on_car = (rows["frame"] >= first) & (rows["frame"] <= last) & (centre >= low) & (centre <= high)
        ids, frames = np.unique(rows["id"][on_car], return_counts=True)
        held = set(ids[frames >= 3].tolist())
        directions.append([c.direction for c in crossings if c.id in held])
        switches += max(0, len(held) - 1)
    return directions, switches


@pytest.mark.slow
def test_nanodet_and_bytetrack_count_the_four_cars_of_the_clip(real_model) -> None:
    """NanoDet-m sees these cars from above as "car", "cell phone", "bus" or "cup" from frame to frame, so the
    tracker is not class-aware; the camera looks down, so the line follows each box's centre. Then the weak
    boxes (NanoDet-m gives a car 0.2-0.5) carry the tracks: 4 crossings, 2 each way, each car once."""
    clip = require_shared() / CLIP
    detector = Recorded(real_model("nanodet_m"))
    result = track_video(clip, detector, {}, ByteTrack(class_aware=False), line=(0, 216, 768, 216), anchor="center")
    assert result.frames == 377 and result.error == "" and result.info.fps == 12.5
    assert (result.line["in"], result.line["out"]) == (2, 2), result.crossings
    directions, switches = crossings_by_car(result.rows, result.crossings)
    assert directions == [[way] for *_, way in CARS], directions
    assert switches <= 1
    assert "score threshold 0.1" in result.notes[0], "the detector ran down to the tracker's low threshold"
    for overrides in ({"lost_frames": 12}, {"lost_frames": 60}, {"track_threshold": 0.3, "new_track_threshold": 0.4},
                      {"track_threshold": 0.4, "new_track_threshold": 0.5}, {"match_iou": 0.3}, {"low_threshold": 0.2}):
        tracker = ByteTrack.from_settings({"class_aware": False, **overrides})
        line = LineCounter((0, 216, 768, 216), anchor="center")
        replay = pipeline.Rows()
        for index, found in enumerate(detector.found):
            tracked = tracker.update(found)
            line.update(tracked, index / 12.5, index)
            replay.add(index, index / 12.5, tracked)
        assert crossings_by_car(replay.columns(), line.crossings)[0] == directions, overrides
        assert line.total_in == line.total_out == 2, overrides


# ---- hostile files --------------------------------------------------------------------------------------------
def empty_file(folder: Path) -> Path:
    path = folder / "empty.mp4"
    path.write_bytes(b"")
    return path


def png_renamed(folder: Path) -> Path:
    path = folder / "holiday.mp4"
    _, png = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))
    path.write_bytes(png.tobytes())
    return path


def audio_only(folder: Path) -> Path:
    path = folder / "voice.mp4"
    with av.open(str(path), "w") as output:
        stream = output.add_stream("aac", rate=44100)
        for k in range(20):
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 44100, k * 1024
            for packet in stream.encode(samples):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


def mp4_cut_before_its_index(folder: Path) -> Path:
    """An MP4 as cameras and PyAV write it (index at the end), cut at 60%: no index, so nothing can be read."""
    return cut(write_clip(folder / "whole.mp4", two_squares(30)), 0.6, folder / "cut.mp4")


def random_bytes(folder: Path) -> Path:
    path = folder / "clip.avi"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return path


def tiny_long_clip(folder: Path) -> Path:
    return write_clip(folder / "tiny.mp4", (np.zeros((16, 16, 3), np.uint8) for _ in range(10_000)))


HOSTILE = {
    "0-byte file": (empty_file, "empty (0 bytes)"),
    "PNG renamed .mp4": (png_renamed, "not a video but a PNG image"),
    "no video stream": (audio_only, "no video track (only audio)"),
    "MP4 cut before its index": (mp4_cut_before_its_index, "cut short"),
    "random bytes named .avi": (random_bytes, "not a video Vision Lab can read"),
    "10,000 frames of 16x16": (tiny_long_clip, "16x16 pixels: too small"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_file_is_refused_with_a_reason_before_any_frame(case: str, tmp_path: Path) -> None:
    make, reason = HOSTILE[case]
    path = make(tmp_path)
    started = time.perf_counter()
    with pytest.raises(VideoIntakeError, match=re.escape(reason)) as refused:
        next(iter(read_frames(path)))
    assert time.perf_counter() - started < 2, "refused from its header, not by decoding it"
    assert refused.value.frames_read == 0 and path.name in str(refused.value)
    with pytest.raises(VideoIntakeError, match=re.escape(reason)):
        track_video(path, Blobs(), out_video=tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [], "no temporary file left"


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_a_video_cut_short_keeps_the_frames_before_the_cut_and_says_how_many(container: str, tmp_path: Path) -> None:
    """A streamable file (an MP4 with its index first, or a WebM) cut at 60%: its first frames decode."""
    options = {"movflags": "faststart"} if container == "mp4" else {}
    whole = write_clip(tmp_path / f"whole.{container}", two_squares(100),
                       codec="libx264" if container == "mp4" else "libvpx-vp9", options=options)
    path = cut(whole, 0.6, tmp_path / f"cut.{container}")
    read = []
    with pytest.raises(VideoIntakeError, match="cut short") as stopped:
        for frame in read_frames(path):
            read.append(frame.index)
    assert 0 < len(read) < 100 and stopped.value.frames_read == len(read) == read[-1] + 1
    assert f"first {len(read)} frames" in str(stopped.value)
    out = tmp_path / "annotated.mp4"
    result = track_video(path, Blobs(), out_video=out)
    assert result.frames == len(read) and "cut short" in result.error
    assert decoded(out)[0] == len(read), "the annotated video holds every frame done before the cut"



# ---- output and the pipeline on synthetic clips ---------------------------------------------------------------
def test_an_annotated_video_is_h264_mp4_that_reads_back_whole(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "squares.mov", two_squares(60))
    out = tmp_path / "out" / "annotated.mp4"
    result = track_video(clip, Blobs(), tracker=ByteTrack(), line=(0, 120, 320, 120), anchor="center", out_video=out)
    assert decoded(out) == (60, 320, 240, "h264", "yuv420p")
    assert result.video == out and result.codec == "libx264" and result.frames == 60
    assert (result.line["in"], result.line["out"]) == (1, 1), "A drove down across the middle, B up"
    assert result.line["in_by_class"] == {"car": 1}
    rows = result.rows
    assert list(rows) == list(pipeline.COLUMNS) and len(rows["id"]) >= 110
    assert set(rows["id"].tolist()) == {1, 2} and set(rows["label"].tolist()) == {"car"}
    assert rows["time_s"][-1] == pytest.approx(59 / 25)
    assert result.records()[0].keys() == set(pipeline.COLUMNS)
    assert [p.name for p in out.parent.iterdir()] == ["annotated.mp4"], "the temporary file was renamed"
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame[120, 5:315].astype(int) - (250, 204, 21)).sum(1).min() < 60, "the counting line is drawn"


def test_an_odd_sized_frame_is_padded_to_even_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "odd.mp4"
    with video_writer(target, 10, 65, 33) as writer:
        for _ in range(5):
            writer.write(np.full((33, 65, 3), 128, np.uint8))
    assert decoded(target)[:3] == (5, 66, 34)
    broken = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="disk full"), video_writer(broken, 10, 64, 32) as writer:
        writer.write(np.zeros((32, 64, 3), np.uint8))
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mp4"], "no broken or temporary file"


def test_caps_refuse_a_video_too_long_or_too_large_from_its_header(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "forty.mp4", two_squares(40))
    with pytest.raises(VideoIntakeError, match=r"limit is 0:01 \(30 frames\)"):
        next(iter(read_frames(clip, max_frames=30, max_seconds=1.0)))
    with pytest.raises(VideoIntakeError, match="megapixels"):
        next(iter(read_frames(clip, max_pixels=320 * 200)))
    assert sum(1 for _ in read_frames(clip, max_frames=40)) == 40


def test_a_phone_video_comes_the_right_way_up(tmp_path: Path) -> None:
    """A phone held upright records landscape frames and a rotation in the track header ('tkhd' matrix)."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:8, :8] = 255  # top left as recorded
    clip = write_clip(tmp_path / "phone.mp4", [image] * 5)
    data = bytearray(clip.read_bytes())
    matrix = data.find(b"tkhd") + 4 + 4 + 5 * 4 + 8 + 4 * 2  # version/flags, 5 fields, reserved, 4 shorts
    assert struct.unpack(">9i", data[matrix:matrix + 36])[0] == 65536, "the identity matrix is where expected"
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)  # 90 degrees
    clip.write_bytes(bytes(data))
    frames = list(read_frames(clip))
    upright = frames[0].image
    assert upright.shape == (64, 32, 3), "portrait, as a player shows it"
    assert upright[:8, -8:].mean() > 200 and upright[:8, :8].mean() < 50, "turned clockwise"


def test_progress_reports_rate_and_time_left_and_can_stop_a_run(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "squares.mp4", two_squares(80))
    seen: list[pipeline.Progress] = []

    def progress(p: pipeline.Progress) -> bool:
        seen.append(p)
        return p.frames_done < 30  # a page's Stop button

    result = track_video(clip, Blobs(), out_video=tmp_path / "part.mp4", progress=progress, progress_every_s=0)
    assert result.stopped and result.frames == 30 and result.error == ""
    assert [p.frames_done for p in seen] == [*range(1, 31), 30], "every frame, then the end"
    assert all(p.frames_total == 80 and p.fps > 0 for p in seen)
    assert seen[9].seconds_left == pytest.approx(70 / seen[9].fps) and seen[-1].seconds_left == 0.0
    assert decoded(tmp_path / "part.mp4")[0] == 30, "the frames done are kept"


def resident_mb() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
def test_memory_stays_flat_however_long_the_video(tmp_path: Path) -> None:
    """From frame 50 to frame 250 of a 480x360 clip the process does not grow: frames are streamed through,
    never gathered (holding them would add 0.5 MB a frame, 100 MB in all)."""
    clip = write_clip(tmp_path / "long.mp4", two_squares(250, 480, 360))
    resident = {}

    def progress(p: pipeline.Progress) -> None:
        resident[p.frames_done] = resident_mb()

    result = track_video(clip, Blobs(), line=(0, 180, 480, 180), anchor="center", out_video=tmp_path / "out.mp4",
                         progress=progress, progress_every_s=0)
    assert result.frames == 250 and result.line["in"] == result.line["out"] == 1
    assert max(resident.values()) - resident[50] < 25, (resident[50], max(resident.values()))


# ---- faces blurred along their tracks -------------------------------------------------------------------------
class Scripted:
    """A face detector that finds what the test says, frame by frame."""

    title = "Scripted faces"
    params = (Param("score_threshold", "Score threshold", 0.7, 0.05, 1.0, 0.05),)

    def __init__(self, frames: list[Detections]):
        self.frames = iter(frames)

    def detect(self, image: np.ndarray, **settings: Any) -> Detections:
        return next(self.frames)


def face(x: float, score: float = 0.9) -> Detections:
    return Detections(np.array([[x, 50, x + 40, 100]]), [score], [0])


def test_a_face_the_detector_misses_stays_blurred_where_its_track_goes() -> None:
    empty = Detections.empty()
    script = [face(100 + 5 * t) for t in range(6)] + [empty] * 16 + [face(300, 0.5)] * 3
    blur = pipeline.FaceBlur(Scripted(script), keep_frames=12)
    image = np.zeros((200, 400, 3), np.uint8)
    boxes = [blur.faces(image) for _ in script]
    assert all(len(b) >= 1 for b in boxes[:6])
    missed = boxes[6]
    assert len(missed) == 1 and missed[0][0] == pytest.approx(130, abs=2), "predicted one step on, 5 px a frame"
    assert all(len(b) == 1 for b in boxes[6:18]) and boxes[19].size == 0, "kept for 12 frames, then let go"
    assert all(b.size == 0 for b in boxes[22:]), "a weak face alone is not a face"


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Detail (variance of the Laplacian) in the middle of a box, clear of captions drawn at its edges."""
    x1, y1, x2, y2 = box.round().astype(int)
    dx, dy = (x2 - x1) // 5, (y2 - y1) // 5
    x1, y1, x2, y2 = x1 + dx, y1 + dy, x2 - dx, y2 - dy
    return float(cv2.Laplacian(cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_faces_are_blurred_in_the_annotated_video_with_yunet(tmp_path: Path, real_model, photo) -> None:
    """Two people panned past the camera (8 frames): with ``blur_faces`` their faces (YuNet's boxes) lose their
    detail in the output; without it they keep it."""
    people = photo("two_people.jpg")
    height, width = (people.shape[0] // 2) * 2, (people.shape[1] - 40) // 2 * 2
    clip = write_clip(tmp_path / "pan.mp4", [np.ascontiguousarray(people[:height, 5 * t:5 * t + width])
                                             for t in range(8)])
    yunet, nanodet = real_model("yunet"), real_model("nanodet_m")
    outputs = {}
    for blur in (False, True):
        outputs[blur] = tmp_path / f"blur_{blur}.mp4"
        track_video(clip, nanodet, out_video=outputs[blur], blur_faces=blur)
    frames = {}
    for blur, path in outputs.items():
        with av.open(str(path)) as container:
            frames[blur] = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][4]
    faces = yunet.detect(np.ascontiguousarray(people[:height, 20:20 + width]))
    assert len(faces) == 2
    for box in faces.boxes:
        assert sharpness(frames[True], box) < 0.25 * sharpness(frames[False], box)


def test_without_an_h264_encoder_the_writer_falls_back_to_vp9_in_mp4(tmp_path: Path, monkeypatch) -> None:
    """A PyAV build with no H.264 encoder (this one has libx264) still writes a browser-playable MP4: VP9."""
    assert video_io.pick_encoder()[0] == "libx264"
    monkeypatch.setattr(video_io, "ENCODERS", (("libnotthere264", {}), video_io.ENCODERS[-1]))
    with video_writer(tmp_path / "vp9.mp4", 10, 64, 32) as writer:
        for t in range(5):
            writer.write(np.full((32, 64, 3), 40 * t, np.uint8))
    assert writer.codec == "libvpx-vp9"
    assert decoded(tmp_path / "vp9.mp4")[:4] == (5, 64, 32, "vp9")
