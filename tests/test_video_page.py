"""The video feature end to end: the Video page (AppTest) on the real car clip and on hostile uploads, the ``track``
command line, the live camera's tracking task, and the parts they share (typed and drawn lines and zones, the
tracking settings' defaults, counts and occupancy over time, a run whose Stop keeps what was done).

The car clip (``../shared/data/video/car-detection.mp4``, seeded as the ``car_clip`` data set): a camera looks straight
down on a car park lane and 4 cars cross its middle, 2 up and 2 down; a line across the middle drawn left to right
counts down as "in", so 2 in and 2 out.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import require_real, require_shared
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
from streamlit.testing.v1 import AppTest
from test_video import (
    HOSTILE,
    Blobs,
    audio_only,
    crossings_by_car,
    cut,
    empty_file,
    png_renamed,
    tiny_long_clip,
    two_squares,
    write_clip,
)

from conftest import ROOT
from vision_backend import live, models
from vision_backend.__main__ import main
from vision_backend.batch.output import read_rows
from vision_backend.errors import SettingError
from vision_backend.video import options, read_frames, regions, report, track_video

CLIP = "data/video/car-detection.mp4"
LINE = {"x1": 0, "y1": 216, "x2": 768, "y2": 216}
TIMEOUT = 300


# ---- lines, zones and settings -----------------------------------------------------------------------------
def test_lines_and_zones_are_read_from_text_and_a_mistake_says_what_is_wrong() -> None:
    assert regions.parse_line("0,216,768,216") == (0, 216, 768, 216)
    assert regions.parse_line(" 0 216; 768 216 ") == (0, 216, 768, 216)
    assert regions.parse_zone("100,250 350,250 350,420") == ((100, 250), (350, 250), (350, 420))
    assert regions.parse_zones("1,1 9,1 9,9\n\n0,0; 4,0; 4,4; 0,4") == [((1, 1), (9, 1), (9, 9)),
                                                                     ((0, 0), (4, 0), (4, 4), (0, 4))]
    assert regions.middle_line(768, 432) == (0, 216, 768, 216)
    for text, reason in (("1,2,3", "four numbers"), ("a,b,c,d", "takes numbers"), ("5,5,5,5", "two different ends"),
                         ("1,2,3,inf", "finite")):
        with pytest.raises(SettingError, match=reason):
            regions.parse_line(text, "--line")
    for text, reason in (("1,1 2,2", "at least three corners"), ("0,0 1,1 2,2", "no area"), ("1,1 2", "x,y pairs")):
        with pytest.raises(SettingError, match=reason):
            regions.parse_zone(text)
    with pytest.raises(SettingError, match="zone 2"):
        regions.parse_zones("1,1 9,1 9,9\n1,1")
    assert regions.scaled_line((0, 0.5, 1, 0.5), 640, 480) == (0, 240, 640, 240)


def test_a_line_and_a_zone_drawn_on_the_canvas_come_back_in_the_frames_pixels() -> None:
    """Fabric.js keeps a line's ends relative to its centre (``originX/Y`` centre, as the canvas draws lines) and a
    polygon's points as drawn, its box half a stroke outside them; the canvas was shown at half the frame's size."""
    line = {"type": "Line", "left": 200, "top": 108, "width": 380, "height": 0, "originX": "center",
            "originY": "center", "x1": -190, "y1": 0, "x2": 190, "y2": 0, "scaleX": 1, "scaleY": 1}
    zone = {"type": "Polygon", "left": 48.5, "top": 98.5, "width": 100, "height": 60, "strokeWidth": 3,
            "points": [{"x": 50, "y": 100}, {"x": 150, "y": 100}, {"x": 150, "y": 160}]}
    moved = {**zone, "left": 98.5}  # dragged 50 px to the right in the canvas's edit mode
    found_line, zones = regions.from_canvas({"objects": [line, zone, moved, {"type": "Path"}]}, scale=0.5)
    assert found_line == pytest.approx((20, 216, 780, 216))
    assert np.allclose(zones[0], [(100, 200), (300, 200), (300, 320)])
    assert np.allclose(zones[1], [(200, 200), (400, 200), (400, 320)])
    assert regions.from_canvas(None, 1.0) == (None, [])
    click = {**line, "x1": 0, "x2": 0.5}
    assert regions.from_canvas({"objects": [click]}, 1.0) == (None, []), "a click is no line"


def test_tracking_settings_default_to_a_camera_looking_down_and_are_checked() -> None:
    values = options.defaults()
    assert values["class_aware"] is False and values["anchor"] == "center"
    assert {p.name for p in options.PARAMS} >= {"track_threshold", "low_threshold", "lost_frames", "anchor"}
    tracker = options.tracker(options.chosen({"class_aware": "true", "lost_frames": "12"}))
    assert tracker.class_aware is True and tracker.lost_frames == 12
    detector = models.default("objects")
    tracking, settings = options.split(detector, {"anchor": "bottom_center", "score_threshold": "0.5"})
    assert tracking["anchor"] == "bottom_center" and settings["score_threshold"] == 0.5
    with pytest.raises(SettingError, match="no setting 'nope'.*tracking has"):
        options.split(detector, {"nope": 1})
    with pytest.raises(SettingError, match="anchor is one of"):
        options.chosen({"anchor": "top"})


# ---- what a run gives ----------------------------------------------------------------------------------------
def test_counts_occupancy_and_tables_from_a_run(tmp_path: Path) -> None:
    """Square A drives down the left half, B up the right half: across the middle, 1 in and 1 out; a zone over
    the left half's lower part holds A from when it arrives to the end."""
    clip = write_clip(tmp_path / "squares.mp4", two_squares(60))
    zone = ((40, 130), (120, 130), (120, 240), (40, 240))
    result = track_video(clip, Blobs(), line=(0, 120, 320, 120), zones=[zone], anchor="center")
    counts = report.counts(result)
    assert {(c["counter"], c["direction"], c["label"], c["count"]) for c in counts} == {
        ("line", "in", "all", 1), ("line", "in", "car", 1), ("line", "out", "all", 1), ("line", "out", "car", 1),
        ("zone 1", "entered", "all", 1), ("zone 1", "entered", "car", 1)}
    steps = report.counts_over_time(result)
    assert list(steps[steps.direction == "in"]["count"]) == [0, 1, 1]
    occupancy = report.occupancy_over_time(result, [zone], "center")
    assert len(occupancy) == 60 and occupancy["objects"].iloc[0] == 0 and occupancy["objects"].iloc[-1] == 1
    table = report.zone_table(result)
    assert table.loc[0, "entered"] == 1 and 0 < table.loc[0, "longest (s)"] < 60 / 25
    tracks = report.tracks(result)
    assert list(tracks.columns) == ["frame", "time_s", "id", "label", "score", "x1", "y1", "x2", "y2"]
    assert report.parquet_bytes(tracks)[:4] == b"PAR1" and report.csv_bytes(counts).startswith(b"counter,")


class Bar:
    """A progress bar whose third update is interrupted, as Streamlit interrupts a script when Stop is clicked."""

    def __init__(self) -> None:
        self.updates = 0

    def progress(self, share: float, text: str) -> None:
        self.updates += 1
        if self.updates == 3:
            raise RerunException(None)


def test_stop_keeps_what_was_done_and_then_lets_the_page_rerun(tmp_path: Path) -> None:
    from pages._tracking import KeepWhatWasDone

    clip = write_clip(tmp_path / "squares.mp4", two_squares(40))
    bar = KeepWhatWasDone(Bar())
    result = track_video(clip, Blobs(), out_video=tmp_path / "part.mp4", progress=bar, progress_every_s=0)
    assert result.stopped and result.frames == 3 and result.video.exists()
    assert len(list(read_frames(result.video))) == 3, "the frames done are in the video"
    with pytest.raises(RerunException):
        bar.resume()


# ---- the Video page ------------------------------------------------------------------------------------------
def video_page() -> AppTest:
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("pages/video.py").run()
    assert not app.exception, app.exception
    return app


def upload(app: AppTest, name: str, data: bytes) -> AppTest:
    app.radio(key="video_source").set_value("Upload").run()
    app.file_uploader(key="video_upload").upload(name, data, "video/mp4")
    return app.run()


@pytest.mark.slow
def test_video_page_counts_the_four_cars_of_an_uploaded_clip() -> None:
    require_real("nanodet_m")
    app = upload(video_page(), "cars.mp4", (require_shared() / CLIP).read_bytes())
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("cars.mp4: 768x432 · 12.5 frames/s · 377 frames" in c.value for c in app.caption)
    for name, value in LINE.items():
        app.number_input(key=f"video_line:768x432:{name}").set_value(value)
    app.run()
    app.button(key="video_run_button").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["In"], metrics["Out"], metrics["Frames"]) == ("2", "2", "377"), metrics
    assert 4 <= int(metrics["Tracks"]) <= 5, "4 cars, at most one id switch"
    assert len(app.get("video")) == 1 and len(app.get("plotly_chart")) == 1
    assert [b.label for b in app.get("download_button")] == ["Annotated video (MP4)", "Tracks (CSV)",
                                                              "Tracks (Parquet)", "Counts (CSV)"]
    kept = app.session_state._video_kept.result
    assert len(list(read_frames(kept.result.video))) == 377, "the annotated video holds every frame"
    directions, switches = crossings_by_car(kept.result.rows, kept.result.crossings)
    assert directions == [["out"], ["in"], ["out"], ["in"]] and switches <= 1
    assert Path(kept.result.video).is_relative_to(Path(app.session_state._video_scratch.path))


def hostile_uploads(folder: Path) -> dict[str, tuple[Path, str]]:
    """The brief's hostile set, each with the reason the page must give: test_video's files, named as uploaded."""
    made = {"0-byte file": empty_file, "PNG renamed .mp4": png_renamed, "no video stream": audio_only,
            "10,000 frames of 16x16": tiny_long_clip}
    files = {case: (make(folder), HOSTILE[case][1]) for case, make in made.items()}
    whole = write_clip(folder / "whole.mp4", two_squares(30))
    files["truncated"] = (cut(whole, 0.6, folder / "cut.mp4"), "cut short")
    return files


@pytest.mark.slow
def test_video_page_gives_a_reason_for_each_hostile_upload_and_offers_the_sample_clip(tmp_path: Path) -> None:
    require_real("car_clip")
    app = video_page()
    assert app.radio(key="video_source").value == "Sample clip", "the seeded clip is the page's start"
    assert any(c.value.startswith("car-detection.mp4: 768x432") for c in app.caption)
    for case, (path, reason) in hostile_uploads(tmp_path).items():
        upload(app, path.name, path.read_bytes())
        assert not app.exception, (case, app.exception)
        errors = [re.sub(r"\\(.)", r"\1", e.value) for e in app.error]  # shown as literal Markdown
        assert len(errors) == 1 and reason in errors[0] and path.name in errors[0], (case, errors)
        assert "Something went wrong" not in errors[0]


@pytest.mark.slow
def test_video_page_keeps_the_frames_before_the_damage_of_a_file_cut_short(tmp_path: Path) -> None:
    require_real("nanodet_m")
    whole = write_clip(tmp_path / "whole.mp4", two_squares(60), options={"movflags": "faststart"})
    app = upload(video_page(), "cut.mp4", cut(whole, 0.6, tmp_path / "cut.mp4").read_bytes())
    assert not app.exception and not app.error, [e.value for e in app.error]
    app.button(key="video_run_button").click().run()
    warnings = [w.value for w in app.warning]
    assert any("cut short" in w and "What was done is kept below" in w for w in warnings), warnings
    frames = int(app.session_state._video_kept.result.result.frames)
    assert 0 < frames < 60 and {m.label: m.value for m in app.metric}["Frames"] == str(frames)
    assert len(app.get("video")) == 1


def test_the_car_clip_is_a_registered_data_set_seeded_from_the_shared_folder() -> None:
    card = models.card("car_clip")
    asset = card.files[0]
    assert card.kind == "dataset" and card.seedable and card.licence == "CC BY 4.0"
    assert asset.file_hash == "d31e0ebf194cc16e50eea784e7c3b0b1bb7976a4fb9b3fec26cb92a6704cca34"
    assert asset.size == 2_811_553 and asset.path.startswith("datasets/vision_lab/")
    assert asset.url == "https://github.com/intel-iot-devkit/sample-videos/raw/master/car-detection.mp4"


# ---- the command line ----------------------------------------------------------------------------------------
def track(*args: str) -> int:
    return main(["track", *map(str, args), "--quiet"])


def test_the_track_command_checks_settings_the_line_and_zones_before_reading_a_video(tmp_path: Path,
                                                                                      capsys) -> None:
    clip = write_clip(tmp_path / "squares.mp4", two_squares(10))
    out = tmp_path / "tracks.csv"
    for extra, reason in ((["--set", "nope=1"], "no setting 'nope'"), (["--set", "anchor=top"], "anchor is one of"),
                          (["--line", "1,2,3"], "--line is four numbers"), (["--zone", "1,1 2,2"], "--zone 1 is"),
                          (["--counts", tmp_path / "counts.csv"], "--counts needs a --line or a --zone"),
                          (["--model", "yunet"], "No object detector called 'yunet'")):
        assert track(clip, "--out", out, *extra) == 2, extra
        assert reason in capsys.readouterr().err, extra
    assert not out.exists(), "nothing was written"
    (tmp_path / "empty").mkdir()
    assert track(tmp_path / "empty", "--out", out) == 2 and "no videos" in capsys.readouterr().err


@pytest.mark.slow
def test_the_track_command_counts_the_cars_with_error_rows_and_resume(tmp_path: Path, capsys) -> None:
    require_real("nanodet_m")
    clip = require_shared() / CLIP
    bad = png_renamed(tmp_path)
    out, counts, video = tmp_path / "tracks.parquet", tmp_path / "counts.csv", tmp_path / "annotated.mp4"
    assert track(clip, bad, "--line", "0,216,768,216", "--out", out, "--counts", counts, "--video", video) == 0
    summary = capsys.readouterr().out
    assert "2 video(s), 377 frames" in summary and "1 done, 1 failed" in summary
    assert "line: in 2 | out 2" in summary and "not a video but a PNG image" in summary
    rows = read_rows(out)
    assert list(rows[0]) == ["path", "frame", "time_s", "id", "label", "score", "x1", "y1", "x2", "y2"]
    assert [r for r in rows if "error" in r] == [{"path": str(bad), "error": rows[-1]["error"]}]
    assert {r["path"] for r in rows} == {str(clip), str(bad)} and rows[0]["time_s"] == rows[0]["frame"] / 12.5
    with open(counts, newline="") as handle:
        totals = {(r["direction"], r["label"]): int(r["count"]) for r in csv.DictReader(handle)}
    assert totals[("in", "all")] == 2 and totals[("out", "all")] == 2
    assert len(list(read_frames(tmp_path / "annotated_car-detection.mp4"))) == 377, "one video each, named by it"
    assert track(clip, bad, "--line", "0,216,768,216", "--out", out, "--counts", counts, "--resume") == 0
    assert "2 skipped (already in the output)" in capsys.readouterr().out
    assert len(read_rows(out)) == len(rows), "nothing done twice"


# ---- the live camera -----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_live_tracking_task_counts_cars_on_camera_frames_and_keeps_no_rows() -> None:
    """Frames 40-250 of the clip as a camera's: cars 1 and 3 go up (out), car 2 down (in), counted on screen."""
    require_real("nanodet_m")
    task = live.TrackTask(models.default("objects"))
    processor = live.FrameProcessor()
    processor.configure(task)
    for frame in read_frames(require_shared() / CLIP):
        if 40 <= frame.index < 250:
            seen = processor.submit(frame.image)
    assert len(seen.notes) == 1 and re.search(r": in 1 \| out 2$", seen.notes[0]), seen.notes
    assert processor.stats().seen.notes == seen.notes, "the page reads the counts from the stats"
    run = task._state["run"]
    assert isinstance(run.rows, live.NoRows), "a stream keeps no per-frame rows"
    processor.configure(live.TrackTask(models.default("objects")))
    assert processor.task is task, "the page reran with the same choices: the counts go on"
    processor.configure(live.TrackTask(models.default("objects"), line=(0.5, 0, 0.5, 1)))
    assert processor.task is not task, "a new line counts afresh"
    drawn = np.abs(seen.image[4:20, 4:60].astype(int) - processor.snapshot()[4:20, 4:60]).mean()
    assert drawn > 20, "the counts are written at the top left"
