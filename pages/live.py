"""Live camera: faces, people, objects and your own classes on the webcam stream, with frames per second."""

import time
from typing import Any

import streamlit as st

from pages._shared import (ensure_ready, friendly_errors, keep, kept_choice, licence_note, param_widgets,
                           ready_model, settings_widgets, start_page, workspace)
from vision_backend import live, models
from vision_backend.errors import SettingError
from vision_backend.video import options as video_options
from vision_backend.video import regions

live.preload_srtp()  # before aiortc: TensorFlow's SSL symbols would crash it
from streamlit_webrtc import WebRtcMode, webrtc_streamer  # noqa: E402
from vision_backend.face_detection import DETECTORS as FACE_DETECTORS  # noqa: E402
from vision_backend.face_recognition import EMBEDDERS  # noqa: E402
from vision_backend.face_recognition.recognise import face_finder  # noqa: E402
from vision_backend.object_detection import DETECTORS as OBJECT_DETECTORS  # noqa: E402
from vision_backend.transfer.projects import Project  # noqa: E402

PREFIX = "live"
STREAM = "live_stream"
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}, "audio": False}
HOLD_HTML = '<button type="button" class="hold">Hold to record</button>'
HOLD_CSS = """
.hold { width: 100%; padding: 0.5rem 1rem; border-radius: 0.5rem; cursor: pointer; user-select: none;
        border: 1px solid var(--st-primary-color); background: transparent; color: var(--st-text-color);
        font: inherit; touch-action: none; }
.hold.on { background: var(--st-primary-color); color: white; }
"""
HOLD_JS = """
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  const button = parentElement.querySelector("button.hold");
  button.textContent = data.label;
  const hold = (on) => { button.classList.toggle("on", on); setStateValue("holding", on); };
  button.onpointerdown = (event) => { button.setPointerCapture(event.pointerId); hold(true); };
  button.onpointerup = () => hold(false);
  button.onpointercancel = () => hold(false);
  button.onkeydown = (event) => { if ((event.key === " " || event.key === "Enter") && !event.repeat) hold(true); };
  button.onkeyup = (event) => { if (event.key === " " || event.key === "Enter") hold(false); };
}
"""


@st.cache_resource(show_spinner=False)
def hold_button() -> Any:
    """A button that says whether it is held down (Streamlit's own buttons only say they were clicked)."""
    return st.components.v2.component("vision_lab.hold_to_record", html=HOLD_HTML, css=HOLD_CSS, js=HOLD_JS)


def processor() -> live.FrameProcessor:
    """This browser session's frame processor: it outlives reruns, and the stream's thread calls it."""
    return st.session_state.setdefault("_live_processor", live.FrameProcessor())


def live_secrets() -> Any:
    """The ``[live]`` section of ``.streamlit/secrets.toml`` (ICE servers for remote use), if any."""
    try:
        return st.secrets.get("live")
    except Exception:  # noqa: BLE001 — no secrets file at all
        return None


# ---- the tasks' pickers --------------------------------------------------------------------------
def model_label(group: dict) -> Any:
    """A model's title in a picker, marked when its files are not here ("fetched on first use" or "missing")."""
    def label(name: str) -> str:
        card = group[name].card
        return group[name].title + ("" if card.ready() else
                                    " — fetched on first use" if card.downloadable() else " — not on this machine")

    return label


def detector_settings(name: str) -> dict | None:
    """A face detector's settings, with the same widgets as the photo pages (None until it is here)."""
    detector = ready_model(name)
    if detector is None:
        return None
    with st.expander(f"{detector.title} settings"):
        return param_widgets(detector, PREFIX)


def face_task() -> live.FaceTask | None:
    name = st.selectbox("Detector", list(FACE_DETECTORS), key=keep("live_face_detector", models.default("faces").name),
                        format_func=model_label(FACE_DETECTORS))
    privacy = st.radio("Privacy", ["none", "blur", "pixelate"], horizontal=True, key=keep("live_privacy", "none"))
    settings = detector_settings(name)
    return None if settings is None else live.FaceTask(FACE_DETECTORS[name], settings, privacy)


def recognition_task() -> live.RecognitionTask | None:
    chosen = st.radio("Recogniser", list(EMBEDDERS), horizontal=True, key=keep("live_embedder", models.default("embed").name),
                      format_func=model_label(EMBEDDERS))
    embedder = EMBEDDERS[chosen]
    if not ensure_ready(embedder.card):
        return None
    recognition = param_widgets(embedder, PREFIX)
    threshold = recognition["threshold"]
    finder = st.selectbox("Face detector", list(FACE_DETECTORS), key=keep("live_finder", face_finder()),
                          format_func=model_label(FACE_DETECTORS))
    settings = detector_settings(finder)
    recheck = st.slider("Faces re-checked per frame (0 = every face, every frame)", 0, 5, step=1,
                        key=keep("live_recheck", 1),
                        help="A face that stays where it was keeps its name; new faces are recognised at once. "
                             "Re-checking one face a frame keeps five faces near 15 frames a second instead of 3.")
    if settings is None:
        return None
    task = live.RecognitionTask.from_gallery(embedder, workspace().gallery(), threshold, finder, settings, recheck,
                                             recognition["margin"], recognition["min_named_face"])
    if not task.names:
        st.info("Nobody is enrolled for this recogniser yet: everyone shows as unknown. Enrol people on the "
                "Face recognition page (Gallery tab).", icon=":material/person_add:")
    st.caption(f"Captions give the similarity (cosine, 1 = the same face); a face is named when its distance is "
               f"at most {threshold:.2f}, i.e. similarity at least {live.similarity(threshold):.2f}.")
    return task


def object_task() -> live.ObjectTask | None:
    choices = live.object_detectors(workspace())  # the registry's, then your own fast detectors (Your own objects)
    name = st.radio("Model", list(choices), horizontal=True, format_func=model_label(choices),
                    key=kept_choice("live_object_model", [models.default("objects").name, *choices]))
    licence_note(choices[name].card)
    detector = ready_model(name) if name in OBJECT_DETECTORS else choices[name]
    if detector is None:
        return None
    with st.expander(f"{detector.title} settings"):
        settings = param_widgets(detector, PREFIX)
    people = st.toggle("Keep only people (background blurred)", key=keep("live_keep_people", False),
                       disabled=not detector.has_masks, help="Needs a model with masks: " + ", ".join(
                           d.title for d in OBJECT_DETECTORS.values() if d.has_masks))
    return live.ObjectTask(detector, settings, people and detector.has_masks)


def record(project: Project) -> live.Recorder | None:
    """Hold to record: while the button is held the stream adds a few frames a second to one class."""
    new = "(a new class)"
    options = project.classes() + [new]
    c1, c2 = st.columns(2)
    label = c1.selectbox("Record into class", options, key=kept_choice("live_record_class", options))
    if label == new:
        label = c2.text_input("New class", key="live_new_class", placeholder="e.g. thumbs up").strip()
    held = hold_button()(key="live_hold", data={"label": f"Hold to record “{label}”" if label else
                                                "Name a class, then hold to record"},
                         default={"holding": False}, on_holding_change=lambda: None)
    if not (held.holding and label):
        return None
    current = processor().recorder
    if current is not None and current.project.scope == project.scope and current.label == label:
        return current
    return live.Recorder(project, label)


def class_task() -> live.ClassTask | None:
    space = workspace()
    projects = space.projects()
    if not projects:
        st.info("No project yet: create one (or load the flowers demo) on the Transfer learning page.",
                icon=":material/folder_open:")
        return None
    project = space.project(st.selectbox("Project", projects, key=kept_choice("live_project", projects)),
                            create=False)
    processor().recorder = record(project)
    saved = project.saved_models()
    if not saved:
        st.info("No trained model in this project yet: record examples here, then train on the Transfer learning "
                "page; the class bars appear once a model is saved.", icon=":material/model_training:")
        return None
    stem = st.selectbox("Model", list(saved), key=kept_choice("live_saved_model", list(saved)),
                        format_func=lambda s: f"{s} ({saved[s].meta.get('validation_accuracy', float('nan')):.0%} "
                                              "validation)")
    return live.ClassTask.from_project(project, stem)


def percent_line() -> tuple[float, float, float, float] | None:
    """The counting line's ends as percentages of the frame (a camera's size is known only once it plays)."""
    if not st.toggle("Count crossings of a line", key=keep("live_line_on", True)):
        return None
    cells = st.columns(4)
    ends = [cell.number_input(label, 0, 100, step=5, key=keep(f"live_line_{name}", default))
            for cell, label, name, default in zip(cells, ("from x %", "from y %", "to x %", "to y %"),
                                                  ("x1", "y1", "x2", "y2"), (0, 50, 100, 50))]
    if (ends[0], ends[1]) == (ends[2], ends[3]):
        st.warning("The line's two ends are the same point: no line is counted.", icon=":material/warning:")
        return None
    return tuple(v / 100 for v in ends)


def percent_zones() -> tuple:
    """Zones typed as corners in percent of the frame, one a line (``10,60 50,60 50,95 10,95``)."""
    text = st.text_area("Zones: one a line, corners as x,y in % of the frame", key=keep("live_zones", ""), height=68,
                        placeholder="10,60 50,60 50,95 10,95")
    try:
        return tuple(tuple((x / 100, y / 100) for x, y in zone) for zone in regions.parse_zones(text))
    except SettingError as error:
        st.error(str(error), icon=":material/error:")
        return ()


def tracking_task() -> live.TrackTask | None:
    """The Video page's tracker on the stream: a detector, the tracking settings, a line and zones."""
    name = st.radio("Model", list(OBJECT_DETECTORS), horizontal=True, format_func=model_label(OBJECT_DETECTORS),
                    key=keep("live_track_model", models.default("objects").name))
    detector = ready_model(name)
    if detector is None:
        return None
    with st.expander(f"{detector.title} and tracking settings"):
        settings = param_widgets(detector, PREFIX)
        tracking = settings_widgets(video_options.PARAMS, lambda p: f"live:track:{p.name}", columns=2)
    line, zones = percent_line(), percent_zones()
    blur = st.toggle("Blur faces along their tracks", key=keep("live_track_blur", False))
    st.caption("Ids and trails on each object; counts per class at the top left. In is to the right walking the "
               "line from its first end (downwards for a line drawn left to right). New settings count afresh.")
    return live.TrackTask(detector, settings, tracking, line, zones, blur)


PICKERS = {"faces": face_task, "recognition": recognition_task, "objects": object_task, "tracking": tracking_task,
           "classes": class_task}


# ---- the stream ----------------------------------------------------------------------------------
def frames_callback(proc: live.FrameProcessor) -> Any:
    """What the stream's thread calls with the frames that queued up since its last call."""
    async def on_frames(frames: list) -> list:
        return proc.video_frames(frames)

    return on_frames


def found_text(stats: live.Stats, task: str) -> str:
    if stats.seen is None:
        return "nothing yet"
    if task == "classes":
        return ", ".join(f"{label} {p:.0%}" for label, p in zip(stats.seen.labels, stats.seen.scores))
    return ", ".join(f"{n} × {label}" for label, n in sorted(stats.counts.items())) or "nothing"


def show_stats(proc: live.FrameProcessor, task: str) -> None:
    """Frames per second, milliseconds per frame and what the newest frame holds (refreshed every second)."""
    stats = proc.stats()
    m1, m2, m3, m4 = st.columns(4)
    # labels of a word or two: a metric's label is cut at its column's width (four columns on a projector)
    m1.metric("FPS", f"{stats.fps:.1f}", help="frames processed a second")
    m2.metric("ms / frame", f"{stats.ms:.0f}", help="the model's time for one frame")
    m3.metric("Processed", f"{stats.processed:,}", help="frames processed since the camera started")
    m4.metric("Dropped", f"{stats.dropped:,}", help="frames skipped while the model was busy: the newest frame wins")
    st.markdown(f"**In the newest frame:** {found_text(stats, task)}")
    if stats.seen is not None and stats.seen.notes:
        st.markdown("**Counted:** " + "; ".join(stats.seen.notes))
    if proc.recorder is not None:
        st.markdown(f"**Recording into “{proc.recorder.label}”:** {stats.recorded} frame(s) added while held")
    if stats.error:
        st.warning(stats.error, icon=":material/error:")


def take_snapshot() -> None:
    """The newest camera frame becomes the photo every page uses (the sidebar's picker shows it)."""
    frame = processor().snapshot()
    if frame is None:
        st.session_state.live_note = "Start the camera first: there is no frame to keep yet."
        return
    st.session_state.live_snapshot = st.session_state.photo = (f"live snapshot {time.strftime('%H-%M-%S')}.png", frame)
    st.session_state.photo_source = "Live snapshot"  # the picker shows it (the sample would come back otherwise)
    st.session_state.live_note = "Kept: the snapshot is now the photo on every page."


def main() -> None:
    proc = processor()
    left, right = st.columns([3, 2])
    with right:
        task = st.radio("Task", list(live.TASKS), format_func=live.TASKS.get, horizontal=True,
                        key=keep("live_task", "faces"))
        if task != "classes":
            proc.recorder = None
        with friendly_errors(), st.spinner("Loading the model…"):
            proc.configure(PICKERS[task]())
    with left:
        context = webrtc_streamer(key=STREAM, mode=WebRtcMode.SENDRECV, rtc_configuration=live.rtc_configuration(live_secrets()),
                                  media_stream_constraints=CAMERA, queued_video_frames_callback=frames_callback(proc),
                                  async_processing=True)
        st.button("Snapshot: use this frame as the photo", on_click=take_snapshot, icon=":material/photo_camera:",
                  key="live_snapshot_button")
        if "live_note" in st.session_state:
            st.caption(st.session_state.pop("live_note"))
        st.fragment(show_stats, run_every=1.0 if context.state.playing else None)(proc, task)


start_page("Live camera", "Your webcam, live: faces, people you enrolled, objects (tracked and counted across a "
           "line, too) and your own trained classes, with frames per second. Frames that arrive while one is "
           "processed are dropped, so what you see is now.")
main()
