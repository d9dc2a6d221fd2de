"""The live camera: the frame processor on real photos, and the page in Chromium with a fake camera.

The processor's promises: a frame that arrives while another is processed is dropped (never queued),
the rates are real, the task changes between frames without a restart, and each task draws what it
finds. The browser test feeds Chromium's fake camera from a Y4M file made of real photos at 30 fps,
presses START on the Live page and reads what the page reports; leaving the page must end the stream.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from browser_tools import CHROMIUM, CHROMIUM_ARGS, require_chromium, streamlit_server
from conftest import ROOT, require_real

from vision_backend import live
from vision_backend.model import Detector

GROUP, OBJECTS = "group_3faces.jpg", "dog_bicycle_truck.jpg"


def frame_of(photo: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A photo as a camera frame: 640x480 RGB."""
    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA)


class Gate:
    """A task that waits until it is let go and remembers every frame it was given."""

    def __init__(self) -> None:
        self.started, self.go = threading.Event(), threading.Event()
        self.frames: list[int] = []

    def run(self, frame: np.ndarray) -> live.Seen:
        self.frames.append(int(frame[0, 0, 0]))
        self.started.set()
        self.go.wait(10)
        return live.Seen(frame.copy(), ("thing",))


def numbered(n: int) -> np.ndarray:
    return np.full((48, 64, 3), n, np.uint8)


# ---- the processor ---------------------------------------------------------------------------------
def test_frames_that_arrive_while_one_is_processed_are_dropped_not_queued() -> None:
    gate = Gate()
    processor = live.FrameProcessor(gate)
    first = threading.Thread(target=processor.submit, args=(numbered(1),))
    first.start()
    assert gate.started.wait(10)
    for n in range(2, 7):
        started = time.perf_counter()
        assert processor.submit(numbered(n)) is None, "a busy processor drops the frame"
        assert time.perf_counter() - started < 0.5, "and never waits for the frame in progress"
    gate.go.set()
    first.join(10)
    assert (processor.processed, processor.dropped) == (1, 5)
    assert processor.submit(numbered(7)) is not None
    assert gate.frames == [1, 7], "frames 2-6 were never processed later: nothing was queued"


def test_video_frames_process_only_the_newest_of_those_that_queued_up() -> None:
    av = pytest.importorskip("av")
    gate = Gate()
    gate.go.set()
    processor = live.FrameProcessor(gate)
    frames = [av.VideoFrame.from_ndarray(numbered(n), format="rgb24").reformat(format="yuv420p") for n in (40, 80, 120)]
    out = processor.video_frames(frames)
    assert len(out) == 1 and (out[0].width, out[0].height) == (64, 48)
    assert out[0].format.name == "yuv420p", "in the encoder's format: the repeats are not converted again"
    assert np.abs(out[0].to_ndarray(format="rgb24")[-10:, :10].astype(int) - 120).max() <= 3, "the newest frame's"
    assert len(gate.frames) == 1 and abs(gate.frames[0] - 120) <= 3, "the newest frame wins"
    assert (processor.processed, processor.dropped) == (1, 2)


def test_rates_are_real_over_a_moving_window_and_fall_to_zero_when_frames_stop(real_model, photo) -> None:
    processor = live.FrameProcessor(live.FaceTask(real_model("yunet")), window=4, stale_s=0.5)
    frame = frame_of(photo(GROUP))
    for _ in range(6):
        processor.submit(frame)
    fps, ms = processor.rates()
    assert fps > 0 and ms > 0
    assert len(processor._done) == 4, "only the last frames count"
    assert 0.3 < fps * ms / 1000 <= 1.05, "back to back, frames per second and time per frame agree"
    stats = processor.stats()
    assert stats.fps > 0 and stats.processed == 6 and stats.counts == {"face": 3}
    time.sleep(0.6)
    assert processor.rates()[0] == 0.0, "no frames for a while: 0 FPS, not the last figure"


def test_the_rate_is_written_on_the_overlay_and_the_frame_is_kept_as_it_came(real_model, photo) -> None:
    processor = live.FrameProcessor(live.FaceTask(real_model("yunet")))
    frame = frame_of(photo(GROUP))
    original = frame.copy()
    seen = processor.submit(frame)
    assert np.array_equal(frame, original), "the task draws on a copy"
    assert not np.array_equal(seen.image[:30, -150:], frame[:30, -150:]), "FPS and ms at the top right"
    assert np.array_equal(processor.snapshot(), original), "a snapshot is the camera's frame, no overlay"


def test_settings_change_between_frames_without_a_restart(real_model, photo) -> None:
    yunet = real_model("yunet")
    processor = live.FrameProcessor(live.FaceTask(yunet))
    frame = frame_of(photo(GROUP))
    assert processor.submit(frame).counts() == {"face": 3}
    processor.configure(live.FaceTask(yunet, yunet.settings({"score_threshold": 1.0})))
    assert processor.submit(frame).counts() == {}
    processor.configure(live.FaceTask(yunet, privacy="blur"))
    blurred = processor.submit(frame)
    processor.configure(live.FaceTask(yunet))
    boxed = processor.submit(frame)
    assert processor.processed == 4 and processor.dropped == 0
    x1, y1, x2, y2 = (int(v) for v in yunet.detect(frame).boxes[0])
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))
    assert np.abs(blurred.image[inner].astype(int) - frame[inner]).mean() > 3, "the face is blurred"
    assert np.array_equal(blurred.image[-40:, :40], frame[-40:, :40]), "the rest untouched"
    assert not np.array_equal(boxed.image, blurred.image)


def test_a_new_task_is_loaded_before_the_stream_sees_it_and_its_rates_start_afresh() -> None:
    class Loading(Gate):
        def prepare(self) -> None:
            self.loaded_in = threading.current_thread()

    first, second = Loading(), Loading()
    first.go.set()
    processor = live.FrameProcessor(first)
    processor.submit(numbered(1))
    processor.submit(numbered(2))
    assert processor.rates()[0] > 0
    processor.configure(second)
    assert second.loaded_in is threading.current_thread(), "loaded by the page's thread, not the stream's"
    assert processor.rates() == (0.0, 0.0) and processor.processed == 2


def test_a_failing_task_is_written_on_the_frame_and_the_stream_goes_on(photo) -> None:
    class Broken:
        def run(self, frame: np.ndarray) -> live.Seen:
            raise RuntimeError("the model fell over")

    processor = live.FrameProcessor(Broken())
    seen = processor.submit(frame_of(photo(GROUP)))
    assert seen is not None and seen.labels == () and "fell over" in processor.stats().error
    assert processor.processed == 1


# ---- each task on real photos ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["viola_jones", "dlib_hog", "mtcnn", "yunet"])
def test_faces_with_every_detector(real_model, photo, name: str) -> None:
    detector: Detector = real_model(name)
    frame = frame_of(photo(GROUP))
    seen = live.FrameProcessor(live.FaceTask(detector)).submit(frame)
    assert seen.counts() == {"face": 3}
    assert not np.array_equal(seen.image, frame)
    pixelated = live.FaceTask(detector, privacy="pixelate").run(frame)
    assert np.array_equal(pixelated.image, live.drawing.anonymise(frame, detector.detect(frame), "pixelate"))
    assert pixelated.counts() == {"face": 3}


def enrolled_gallery(tmp_path: Path, embedder, photo):
    """A gallery with Barack Obama and Joe Biden, each from one staged photo (the largest face)."""
    from vision_backend.face_recognition import recognise
    from vision_backend.workspace import Workspace

    gallery = Workspace.at(tmp_path).gallery()
    for person, name in {"Barack Obama": "obama_1.jpg", "Joe Biden": "biden.jpg"}.items():
        faces = recognise.analyse(embedder, photo(name))
        one = recognise.largest_index(faces.detections)
        gallery.enrol(person, embedder.name, [(faces.vectors[one], faces.crops[one], name)])
    return gallery


@pytest.mark.parametrize("recheck", [0, 1])
def test_recognition_names_enrolled_people_and_leaves_others_unknown(real_model, photo, tmp_path: Path,
                                                                     recheck: int) -> None:
    embedder = real_model("dlib_resnet_face")
    gallery = enrolled_gallery(tmp_path, embedder, photo)
    task = live.RecognitionTask.from_gallery(embedder, gallery, embedder.threshold, recheck=recheck)
    processor = live.FrameProcessor(task)
    two = frame_of(photo("two_people.jpg"), (800, 470))
    for _ in range(3):  # carried-over faces keep their names
        seen = processor.submit(two)
        assert sorted(seen.labels) == ["Barack Obama", "Joe Biden"]
        assert all(s >= live.similarity(embedder.threshold) for s in seen.scores)
    strangers = processor.submit(frame_of(photo(GROUP)))
    assert strangers.labels == ("unknown",) * 3 and all(s < live.similarity(embedder.threshold) for s in strangers.scores)


def test_recognition_with_an_empty_gallery_calls_everyone_unknown(real_model, photo, tmp_path: Path) -> None:
    from vision_backend.workspace import Workspace

    embedder = real_model("dlib_resnet_face")
    task = live.RecognitionTask.from_gallery(embedder, Workspace.at(tmp_path / "empty").gallery(), embedder.threshold, "yunet")
    assert task.run(frame_of(photo("obama_1.jpg"))).labels == ("unknown",)


def test_objects_with_nanodet_find_the_dog_and_the_bicycle(real_model, photo) -> None:
    frame = frame_of(photo(OBJECTS))
    seen = live.FrameProcessor(live.ObjectTask(real_model("nanodet_m"))).submit(frame)
    assert {"dog", "bicycle"} <= set(seen.labels)
    assert not np.array_equal(seen.image, frame)


def test_yolov8n_seg_draws_masks_and_keeps_only_people(real_model, photo) -> None:
    yolo = real_model("yolov8n_seg")
    frame = frame_of(photo(OBJECTS))
    seen = live.ObjectTask(yolo).run(frame)
    assert {"dog", "bicycle"} <= set(seen.labels)
    found = yolo.detect(frame)
    dog = found.masks[found.names.index("dog")]
    boxes_only = live.drawing.draw_detections(frame, found, show_labels=True)
    assert np.abs(seen.image[dog].astype(int) - boxes_only[dog]).mean() > 5, "the dog's mask is painted"
    people = frame_of(photo("two_people.jpg"), (800, 470))
    kept = live.ObjectTask(yolo, keep_people=True).run(people)
    assert kept.labels == ("person", "person")
    person = np.any(yolo.detect(people).masks, axis=0)
    background = ~cv2.dilate(person.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool)
    assert np.abs(kept.image[background].astype(int) - people[background]).mean() > 3, "the background is blurred"


@pytest.fixture(scope="module")
def flowers_model(tmp_path_factory: pytest.TempPathFactory):
    """A real fast-mode model (MobileNetV2 base + head) trained on two flower classes and saved with its project."""
    require_real("demo_classes")
    require_real("mobilenet_v2_notop")
    from vision_backend.transfer import demo, export
    from vision_backend.transfer.bases import MOBILENET_V2
    from vision_backend.transfer.head import HeadSettings, train_project
    from vision_backend.workspace import Workspace

    project = Workspace.at(tmp_path_factory.mktemp("live_space")).project("flowers")
    folders = demo.class_folders(demo.DEMO_CLASSES.path())
    for label in ("daisy", "sunflower"):
        for file in folders[label][:8]:
            project.add_example(label, file.read_bytes(), file.name)
    trained = train_project(project, MOBILENET_V2, HeadSettings(epochs=60, validation=0.25, patience=0))
    stem = export.save_trained(project, MOBILENET_V2, trained).stem
    return project, stem, folders


def test_a_saved_transfer_model_draws_a_bar_per_class(flowers_model) -> None:
    from vision_backend.intake import read_image_file

    project, stem, folders = flowers_model
    task = live.ClassTask.from_project(project, stem)
    assert task.classes == ("daisy", "sunflower")
    for label in task.classes:
        frame = frame_of(read_image_file(folders[label][0]))
        seen = live.FrameProcessor(task).submit(frame)
        assert seen.labels == task.classes and abs(sum(seen.scores) - 1) < 1e-3
        assert seen.labels[int(np.argmax(seen.scores))] == label, "a photo it learnt from is its class"
        assert not np.array_equal(seen.image[-60:, :230], frame[-60:, :230]), "the bars are drawn"


def test_holding_record_adds_a_few_frames_a_second_to_a_class(flowers_model) -> None:
    project, _, _ = flowers_model
    before = project.counts().get("tulip", 0)
    recorder = live.Recorder(project, "tulip", per_second=3)
    rng = np.random.default_rng(0)
    added = [recorder.offer(rng.integers(0, 255, (48, 64, 3), np.uint8), t / 10) for t in range(11)]
    assert sum(added) == 3 and recorder.added == 3, "0.0, 0.4 and 0.8 s: three a second"
    processor = live.FrameProcessor()
    processor.recorder = live.Recorder(project, "tulip")
    seen = processor.submit(rng.integers(0, 255, (48, 64, 3), np.uint8))
    assert processor.stats().recorded == 1 and seen is not None
    assert project.counts()["tulip"] == before + 4


def test_no_ice_server_unless_the_secrets_list_some() -> None:
    import tomllib

    assert live.rtc_configuration(None) == {"iceServers": []}
    assert live.rtc_configuration({}) == {"iceServers": []}
    secrets = tomllib.loads('[live]\nice_servers = [{ urls = ["stun:stun.example.org:3478"] },\n'
                            '  { urls = ["turn:turn.example.org:3478"], username = "lab", credential = "secret" }]\n')
    assert live.rtc_configuration(secrets["live"]) == {"iceServers": [
        {"urls": ["stun:stun.example.org:3478"]},
        {"urls": ["turn:turn.example.org:3478"], "username": "lab", "credential": "secret"}]}


@pytest.mark.slow
def test_aiortc_imports_after_tensorflow_once_srtp_is_preloaded() -> None:
    """pylibsrtp's exported OpenSSL symbols lose to TensorFlow's: without the preload this segfaults."""
    code = ("import tensorflow; from vision_backend import live; live.preload_srtp(); "
            "import aiortc, streamlit_webrtc; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


# ---- in Chromium, with a fake camera ---------------------------------------------------------------
FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
               "--disable-features=WebRtcHideLocalIpsWithMdns"]  # plain host candidates: no mDNS lookups on one machine


def write_y4m(path: Path, photo: np.ndarray, seconds: float = 2.0, fps: int = 30,
              size: tuple[int, int] = (640, 480), pan: int = 0) -> Path:
    """A raw 4:2:0 video of one photo at ``fps``: what Chromium's fake camera plays (looping).
    ``pan`` moves the photo that many pixels a frame, so no two frames are the same."""
    frame = cv2.cvtColor(frame_of(photo, size), cv2.COLOR_RGB2BGR)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{size[0]} H{size[1]} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(round(seconds * fps)):
            shown = np.roll(frame, n * pan, axis=1) if pan else frame
            out.write(b"FRAME\n" + cv2.cvtColor(shown, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


STREAM_THREADS = ("async_media_processor", "video-decoder", "ShutdownPolling")
"""Threads one WebRTC stream starts (streamlit-webrtc's processor, aiortc's decoder, the session watcher);
the event loop's executor threads (``asyncio_N``) are a pool the server keeps."""


def thread_names(pid: int) -> list[str]:
    """The server's Python thread names, read with py-spy (Python 3.11 leaves every OS thread "python")."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        pytest.fail("py-spy is not installed (pip install py-spy): it reads the server's thread names")
    dump = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60)
    return re.findall(r'^Thread \d+ \([^)]*\): "([^"]*)"', dump.stdout, re.M)


def stream_threads(pid: int) -> list[str]:
    return [name for name in thread_names(pid) if name.startswith(STREAM_THREADS)]


def wait_for_tensorflow(pid: int, timeout: float = 180) -> None:
    """Until the server has TensorFlow loaded (its warm-up), so the live page imports aiortc after it."""
    deadline = time.monotonic() + timeout
    while "libtensorflow_framework" not in Path(f"/proc/{pid}/maps").read_text():
        assert time.monotonic() < deadline, "the server never loaded TensorFlow"
        time.sleep(0.5)


def open_live_page(playwright, camera: Path, url: str):
    """Chromium with ``camera`` as its webcam, on the app's home page, then the Live camera page."""
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + FAKE_CAMERA +
                                         [f"--use-file-for-fake-video-capture={camera}"])
    tab = browser.new_page(viewport={"width": 1280, "height": 800})
    tab.set_default_timeout(90_000)
    tab.goto(url)
    tab.get_by_role("heading", name="Vision Lab").wait_for()
    return browser, tab


TASK_MARKS = {"Objects": "Keep only people", "Your classes": "Record into class"}


def go_live(tab, task: str = "Faces") -> None:
    tab.get_by_test_id("stSidebar").get_by_role("link", name="Live camera").click()
    tab.get_by_role("heading", name="Live camera").wait_for()
    if task != "Faces":
        tab.get_by_test_id("stMainBlockContainer").get_by_text(task, exact=True).click()
        tab.get_by_text(TASK_MARKS[task]).first.wait_for()


def press_start(tab) -> None:
    tab.frame_locator("iframe[title*='streamlit_webrtc']").get_by_role("button", name="START").click()


def reported(tab) -> dict:
    """What the page says beside the video: its four figures and what the newest frame holds."""
    figures = {}
    for text in tab.get_by_test_id("stMetric").all_inner_texts():
        label, value = [line.strip() for line in text.split("\n") if line.strip()][:2]
        figures[label] = float(value.replace(",", ""))
    found = tab.get_by_text("In the newest frame:").locator("xpath=..").all_inner_texts()
    return {"fps": figures.get("FPS", 0.0), "processed": figures.get("Processed", 0.0),
            "found": found[0].split(":", 1)[1].strip() if found else ""}


def cut_labels(tab, test_id: str) -> list[str]:
    """The labels of ``test_id`` elements whose text does not fit their box (shown with an ellipsis)."""
    return tab.evaluate("""id => [...document.querySelectorAll(`[data-testid="${id}"]`)]
        .filter(el => [el, ...el.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1))
        .map(el => el.innerText)""", test_id)


def wait_for_report(tab, wanted, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    report = reported(tab)
    while not wanted(report):
        assert time.monotonic() < deadline, f"the page still reports {report}"
        time.sleep(0.5)
        report = reported(tab)
    return report


@pytest.fixture(scope="module")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live_home")


@pytest.fixture(scope="module")
def live_server(server_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen]]:
    with streamlit_server(server_home, tmp_path_factory.mktemp("logs")) as server:
        yield server.url, server.process


@pytest.fixture(scope="module")
def playwright():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.mark.browser
@pytest.mark.slow
def test_live_page_counts_the_faces_of_a_camera_and_stops_when_left(playwright, live_server, photo,
                                                                    tmp_path: Path) -> None:
    require_real("yunet")
    url, server = live_server
    camera = write_y4m(tmp_path / "group.y4m", photo(GROUP))
    browser, tab = open_live_page(playwright, camera, url)
    try:
        wait_for_tensorflow(server.pid)  # the crash this guards against needs TensorFlow loaded first
        go_live(tab)
        press_start(tab)
        report = wait_for_report(tab, lambda r: r["found"] == "3 × face" and r["fps"] > 0 and r["processed"] >= 10)
        assert report["fps"] > 0
        assert not cut_labels(tab, "stMetricLabel"), "a figure's label is cut at its column's width"
        assert {"async_media_processor", "video-decoder"} <= {n.rstrip("_0123456789") for n in
                                                              stream_threads(server.pid)}
        tab.screenshot(path=str(tmp_path / "live_faces.png"))
        tab.get_by_role("button", name="Snapshot: use this frame as the photo").click()
        sidebar = tab.get_by_test_id("stSidebar")
        caption = sidebar.get_by_text(re.compile(r"^live snapshot .*· 640x480"))
        caption.wait_for()
        sidebar.get_by_role("link", name="Home").click()
        tab.get_by_role("heading", name="Vision Lab").wait_for()
        caption.wait_for()  # the photo pages take the frame
        assert sidebar.get_by_role("radio", name="Live snapshot").is_checked()
        deadline = time.monotonic() + 30
        while stream_threads(server.pid) and time.monotonic() < deadline:
            time.sleep(1)
        assert stream_threads(server.pid) == [], "the stream's threads end when the page is left"
        start = cpu_seconds(server.pid)
        time.sleep(3)
        assert cpu_seconds(server.pid) - start < 0.3, "the server idles once the page is left"
        assert server.poll() is None
    finally:
        browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_live_page_finds_a_dog_and_a_bicycle_with_nanodet(playwright, live_server, photo, tmp_path: Path) -> None:
    require_real("nanodet_m")
    url, server = live_server
    camera = write_y4m(tmp_path / "objects.y4m", photo(OBJECTS))
    browser, tab = open_live_page(playwright, camera, url)
    try:
        go_live(tab, "Objects")
        press_start(tab)
        report = wait_for_report(tab, lambda r: "dog" in r["found"] and "bicycle" in r["found"] and r["fps"] > 0)
        # one dog and one bicycle; on a VP8-compressed frame NanoDet sometimes boxes either twice (each seen in CI)
        assert re.search(r"\b[12] × dog", report["found"]) and re.search(r"\b[12] × bicycle", report["found"]), report
        tab.screenshot(path=str(tmp_path / "live_objects.png"))
        assert server.poll() is None
    finally:
        browser.close()


@pytest.mark.browser
@pytest.mark.slow
def test_holding_record_adds_camera_frames_to_a_class_while_held(playwright, live_server, server_home: Path, photo,
                                                                  tmp_path: Path) -> None:
    from vision_backend.workspace import Workspace

    project = Workspace.at(server_home).project("gestures")
    project.add_class("wave")
    url, server = live_server
    camera = write_y4m(tmp_path / "moving.y4m", photo("Cat, Chelsea (scikit-image)"), pan=3)
    browser, tab = open_live_page(playwright, camera, url)
    try:
        go_live(tab, "Your classes")
        press_start(tab)
        wait_for_report(tab, lambda r: r["processed"] >= 5)
        box = tab.locator("button.hold").bounding_box()
        tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        tab.mouse.down()
        held = time.monotonic()
        tab.get_by_text("Recording into “wave”").wait_for()
        while time.monotonic() - held < 4:
            time.sleep(0.5)
        rising = project.counts()["wave"]
        tab.mouse.up()
        seconds = time.monotonic() - held
        tab.get_by_text("Recording into “wave”").wait_for(state="detached")
        added = project.counts()["wave"]
        assert 2 <= rising <= added <= 3 * seconds + 1, "a few frames a second, while held"
        time.sleep(2)
        assert project.counts()["wave"] == added, "nothing more once released"
    finally:
        browser.close()
