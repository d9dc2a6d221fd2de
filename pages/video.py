"""Video: objects tracked through a video file (ByteTrack), counted across a line and in zones, the annotated video
back to watch and download with per-frame tracks and the counts."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import (keep, kept_choice, licence_note, param_widgets, ready_model, settings_widgets, start_page,
                           tabbed, workspace)
from pages._stoppable import running
from pages._tracking import (KeepWhatWasDone, choose_clip, clip_key, kept, line_and_zones, preview, probe,
                             scratch, stem, wait_for_a_stopped_run)
from vision_backend import live, models
from vision_backend.model import Detector
from vision_backend.object_detection import DETECTORS
from vision_backend.video import VideoResult, options, report, track_video
from vision_backend.video.io import clock

PREFIX = "video"


@dataclass
class Run:
    """A finished (or stopped) run, kept for the page's reruns: which clip, what it gave, what it counted in."""

    clip: tuple[str, int, int]
    name: str
    result: VideoResult
    zones: list
    anchor: str


@dataclass
class Choice:
    """What the person chose: the model and its settings, the tracking settings, faces blurred or not."""

    detector: Detector
    settings: dict
    tracking: dict
    blur: bool


# ---- settings --------------------------------------------------------------------------------------
def detector_label(choices: dict[str, Detector]) -> Any:
    def label(name: str) -> str:
        card = choices[name].card
        return choices[name].title + ("" if card.ready() else " — fetched on first use" if card.downloadable()
                                      else " — not on this machine")

    return label


def choose_settings() -> Choice | None:
    """The detector (the objects' default first, then your own fast detectors), its settings, and the tracking
    settings with this page's defaults (see ``vision_backend/video/options.py``: class-agnostic tracks, the box
    centre counted)."""
    choices = live.object_detectors(workspace())  # the registry's, then yours (Your own objects)
    name = st.radio("Model", list(choices), format_func=detector_label(choices), horizontal=True,
                    key=kept_choice("video_model", [models.default("objects").name, *choices]))
    licence_note(choices[name].card)
    detector = ready_model(name) if name in DETECTORS else choices[name]
    if detector is None:
        return None
    with st.expander(f"{detector.title} settings"):
        settings = param_widgets(detector, PREFIX)
    with st.expander("Tracking settings"):
        tracking = settings_widgets(options.PARAMS, lambda p: f"video:track:{p.name}", columns=2)
        st.caption("The defaults suit a fixed camera looking down (a road, a car park, a floor): tracks take any "
                   "class, since a small detector's class flickers on an object seen from above, and the box centre "
                   "is counted. For a camera looking across a scene, count the bottom centre.")
    blur = st.toggle("Blur faces along their tracks", key=keep("video_blur", False),
                     help="Faces found by the face detector stay blurred for a few frames after it loses them.")
    return Choice(detector, settings, options.chosen(tracking), blur)


# ---- the run ----------------------------------------------------------------------------------------
def run(name: str, path: Path, choice: Choice, line: Any, zones: list) -> None:
    """Detect, track, count, draw and encode with a progress bar; Stop (or any click) keeps what was done."""
    st.button("Stop (keeps what was done)", key="video_stop", icon=":material/stop:")
    bar = KeepWhatWasDone(st.progress(0.0, "Starting…"))
    out, key = scratch().file(f"{stem(name)}_tracked.mp4"), clip_key(path)
    with running(kept()) as box:  # no Streamlit call in the block: a stopped run may make none
        result = track_video(path, choice.detector, choice.settings, options.tracker(choice.tracking), line, zones,
                             out, choice.blur, bar, anchor=choice.tracking["anchor"], name=name)
        box.result = Run(key, name, result, list(zones), choice.tracking["anchor"])
    bar.resume()
    st.rerun()  # the results below, drawn once, without the bar and the Stop button


def outcome_notes(run: Run) -> None:
    result = run.result
    if result.error:
        st.warning(f"{result.error} What was done is kept below.", icon=":material/broken_image:")
    elif result.stopped:
        st.info(f"Stopped after {result.frames:,} of {result.info.frames:,} frames; what was done is kept below.",
                icon=":material/stop_circle:")
    speed = f"{result.frames:,} frames in {result.seconds:.1f} s ({result.fps:.1f} frames/s)"
    st.caption(f"{run.name}: {speed}. " + " ".join(result.notes))


def counts_panel(run: Run) -> None:
    """Totals as metrics, then each count per class and each zone's entries and time inside."""
    result = run.result
    m = st.columns(4)
    if result.line is not None:
        m[0].metric("In", result.line["in"], help="Crossed towards the arrow's side of the line.")
        m[1].metric("Out", result.line["out"], help="Crossed the other way.")
    m[2].metric("Tracks", len(set(result.rows["id"].tolist())))
    m[3].metric("Frames", f"{result.frames:,}")
    counted = pd.DataFrame(report.counts(result), columns=list(report.COUNT_COLUMNS))
    if len(counted):
        st.dataframe(counted, hide_index=True, width="stretch")
    if result.zones:
        st.dataframe(report.zone_table(result), hide_index=True, width="stretch")


def charts(run: Run) -> None:
    """Counts over time (a step at each crossing) and how many objects each zone held, frame by frame."""
    result = run.result
    if result.line is not None:
        over_time = report.counts_over_time(result)
        chart = px.line(over_time, x="time_s", y="count", color="direction", line_shape="hv", height=260,
                        title="Line crossings over time", labels={"time_s": "seconds into the video"})
        st.plotly_chart(chart.update_yaxes(dtick=1, rangemode="tozero"), width="stretch")
    if run.zones:
        occupancy = report.occupancy_over_time(result, run.zones, run.anchor)
        chart = px.line(occupancy, x="time_s", y="objects", color="zone", line_shape="hv", height=260,
                        title="Objects inside each zone", labels={"time_s": "seconds into the video"})
        st.plotly_chart(chart.update_yaxes(dtick=1, rangemode="tozero"), width="stretch")


def downloads(run: Run) -> None:
    """The annotated MP4, the per-frame tracks (CSV, Parquet) and the counts (CSV), each made on the click."""
    result, base = run.result, stem(run.name)

    def tracks() -> pd.DataFrame:  # made on the click, not on every rerun
        return report.tracks(result)

    cells = st.columns(4)
    if result.video is not None and result.video.exists():
        cells[0].download_button("Annotated video (MP4)", lambda: result.video.read_bytes(), f"{base}_tracked.mp4",
                                 "video/mp4", on_click="ignore", icon=":material/movie:")
    cells[1].download_button("Tracks (CSV)", lambda: report.csv_bytes(tracks()), f"{base}_tracks.csv", "text/csv",
                             on_click="ignore", help="One row per tracked box per frame.")
    cells[2].download_button("Tracks (Parquet)", lambda: report.parquet_bytes(tracks()), f"{base}_tracks.parquet",
                             "application/vnd.apache.parquet", on_click="ignore")
    cells[3].download_button("Counts (CSV)", lambda: report.csv_bytes(report.counts(result)), f"{base}_counts.csv",
                             "text/csv", on_click="ignore")


def results(key: tuple[str, int, int]) -> None:
    """The last run on this clip: notes, counts, charts, the video and the downloads."""
    box = kept()
    if box.result is None or box.result.clip != key:
        box.result = None  # another clip: its results (and memory) go
        return
    last = box.result
    st.subheader("Result")
    outcome_notes(last)
    left, right = st.columns([3, 2])
    with left:
        if last.result.video is not None and last.result.video.exists():
            st.video(str(last.result.video))
    with right:
        counts_panel(last)
    charts(last)
    downloads(last)


def track_tab() -> None:
    """Choose a clip, see its first frame with the line and zones, run, and read what was counted."""
    wait_for_a_stopped_run()
    clip = choose_clip()
    if clip is None:
        return
    name, path = clip
    info, first = probe(path, name)
    st.caption(f"{name}: {info.width}x{info.height} · {info.fps:g} frames/s · {info.frames:,} frames · "
               f"{clock(info.duration_s)} · {info.codec}")
    left, right = st.columns([3, 2])
    with right:
        choice = choose_settings()
        line, zones, on_canvas = line_and_zones(first, left)
    if not on_canvas:
        left.image(preview(first, line, zones), caption="The first frame: the line's arrow points to “in”.",
                   width="stretch")
    if choice is not None and st.button("Track and count", type="primary", key="video_run_button",
                                        icon=":material/play_arrow:"):
        run(name, path, choice, line, zones)
    results(clip_key(path))


def how_tab() -> None:
    st.markdown(
        "**Detect, then track.** A detector finds boxes in each frame on its own; **ByteTrack** (Zhang et al., 2022) "
        "links them over time. A Kalman filter predicts where each track's box goes next; boxes are matched to the "
        "predictions by overlap (IoU), the confident ones first, then the weak ones, which keep a half-hidden "
        "object's track alive. A track nobody matches waits a while to be revived, so an object missed for a few "
        "frames keeps its id.\n\n"
        "**Counting.** A track is counted once each way when its chosen point (the box centre, or the bottom centre "
        "for a camera looking across a scene) goes from one side of the line to the other, clear of a small band "
        "around it so a box jittering on the line never counts. A zone counts who is inside now, who has entered "
        "and how long each track stayed.\n\n"
        "**The same on the live camera and the command line:** `python -m vision_backend track VIDEO --line "
        "x1,y1,x2,y2 --out tracks.parquet --video annotated.mp4 --counts counts.csv`.")


start_page("Video: track and count", "Upload a video (or use a sample clip): objects are followed from frame to "
           "frame with ids and trails, counted across a line and in zones, and the annotated video comes back to "
           "watch and download, with every frame's tracks and the counts.")
tabbed({"Track and count": track_tab, "How it works": how_tab})
