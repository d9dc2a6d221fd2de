"""Live camera: frames per second as the server processes them (640x480, 2 cores), and in a browser.

Each figure feeds yuv420p PyAV frames (what aiortc's VP8 decoder hands over) one after another through
``FrameProcessor.video_frames``, as the stream's thread does: colour conversion in, the task, the overlay
and the rate, conversion out. ``live_*_vs_raw``: that time over the model's own call on the same RGB
frame at the same settings (what the live path adds). ``live_recognition_5_faces_fps`` is at the page's
default (one face re-checked a frame; a face that stays put keeps its name), ``..._every_frame_fps``
embeds all five on every frame as the photo page does. ``live_transfer_head_fps``: a fast-mode model
(MobileNetV2 + head) trained and saved on two flower classes. ``live_browser_yunet_fps``: the rate the
Live page reports with YuNet while Chromium's fake camera plays group-photo frames at 30 fps (server
and browser sharing the 2 cores).

Every registered face and object detector whose files are here, its figure named after its card
(``live_yunet_fps``). Targets (issue #19): YuNet >= 25, HOG >= 10, MTCNN >= 8, NanoDet >= 15, YOLOv8n-seg
with masks >= 8, recognition of a 5-face frame >= 4, transfer head >= 20; YuNet in the browser >= 20.

python bench/live.py [--quick] [--no-browser]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from _harness import ROOT, Bench

os.environ.setdefault("VISION_LAB_HOME", tempfile.mkdtemp(prefix="live_bench_"))
from vision_backend import live, models, samples  # noqa: E402
from vision_backend.face_detection import DETECTORS as FACE_DETECTORS  # noqa: E402
from vision_backend.face_recognition import recognise  # noqa: E402
from vision_backend.object_detection import DETECTORS as OBJECT_DETECTORS  # noqa: E402
from vision_backend.workspace import Workspace  # noqa: E402
from vision_backend.imageops import resize_square  # noqa: E402

SIZE = (640, 480)
PEOPLE = {"Barack Obama": "obama_1.jpg", "Joe Biden": "biden.jpg"}


def frame_of(photo: np.ndarray) -> np.ndarray:
    return cv2.resize(photo, SIZE, interpolation=cv2.INTER_AREA)


def five_faces() -> np.ndarray:
    """A 640x480 frame with five faces: the three-face group beside Obama and Biden."""
    canvas = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    canvas[120:360, :320] = cv2.resize(samples.load_sample("group_3faces.jpg"), (320, 240), interpolation=cv2.INTER_AREA)
    two = samples.load_sample("two_people.jpg")
    two = cv2.resize(two, (320, round(320 * two.shape[0] / two.shape[1])), interpolation=cv2.INTER_AREA)
    top = (SIZE[1] - len(two)) // 2
    canvas[top:top + len(two), 320:] = two
    return canvas


def measure(bench: Bench, figure: str, task: live.Task, rgb: np.ndarray, raw) -> None:
    """``live_FIGURE_fps`` (and the harness's ms and ratio) for ``task`` on ``rgb`` as a decoded camera frame."""
    processor = live.FrameProcessor(task)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    ms = bench.compare(f"live_{figure}", lambda: processor.video_frames([frame]), raw, repeats=bench.repeats(31, 5))
    bench.record(f"live_{figure}_fps", 1000 / ms, "FPS")


def detectors(bench: Bench) -> None:
    faces, objects = frame_of(samples.load_sample("group_7faces_family.jpg")), frame_of(
        samples.load_sample("dog_bicycle_truck.jpg"))
    runs = [*((d, faces, live.FaceTask) for d in FACE_DETECTORS.values()),
            *((d, objects, live.ObjectTask) for d in OBJECT_DETECTORS.values())]
    for detector, rgb, task in runs:
        if detector.ready():
            with bench.about(detector.name):
                measure(bench, detector.name, task(detector), rgb, lambda d=detector, r=rgb: d.detect(r))


def recognition(bench: Bench) -> None:
    embedder = models.default("embed")
    gallery = Workspace.at(Path(tempfile.mkdtemp(prefix="live_gallery_"))).gallery()
    for person, photo in PEOPLE.items():
        faces = recognise.analyse(embedder, samples.load_sample(photo))
        one = recognise.largest_index(faces.detections)
        gallery.enrol(person, embedder.name, [(faces.vectors[one], faces.crops[one], photo)])
    rgb = five_faces()
    names, vectors = gallery.embeddings(embedder.name, embedder.dimensions)

    def raw() -> None:
        found = recognise.analyse(embedder, rgb)
        recognise.recognise(found.vectors, names, vectors, embedder.threshold)

    assert len(recognise.analyse(embedder, rgb)) == 5, "the frame holds five faces"
    for figure, recheck in (("recognition_5_faces", 1), ("recognition_5_faces_every_frame", 0)):
        with bench.about(embedder.name, recognise.face_finder()):
            measure(bench, figure, live.RecognitionTask.from_gallery(embedder, gallery, embedder.threshold,
                                                                     recheck=recheck), rgb, raw)


def transfer_head(bench: Bench) -> None:
    """A real fast-mode model: MobileNetV2 features, a head trained on 2 flower classes x 8 photos, saved."""
    from vision_backend.transfer import demo, export
    from vision_backend.transfer.bases import MOBILENET_V2
    from vision_backend.transfer.head import HeadSettings, train_project
    from vision_backend.workspace import Workspace

    project = Workspace.at(Path(tempfile.mkdtemp(prefix="live_space_"))).project("flowers")
    folders = demo.class_folders(demo.DEMO_CLASSES.path())
    for label in ("daisy", "sunflower"):
        for file in folders[label][:8]:
            project.add_example(label, file.read_bytes(), file.name)
    trained = train_project(project, MOBILENET_V2, HeadSettings(epochs=60, validation=0.25, patience=0))
    task = live.ClassTask.from_project(project, export.save_trained(project, MOBILENET_V2, trained).stem)
    rgb = frame_of(samples.load_sample("Cat, Chelsea (scikit-image)"))
    model, _ = export.loaded(task.saved)
    size = int(model.inputs[0].shape[1])
    with bench.about(MOBILENET_V2.name):
        measure(bench, "transfer_head", task, rgb,
                lambda: model.predict_on_batch(resize_square(rgb, size)[None].astype(np.float32)))


def browser(bench: Bench) -> None:
    """The FPS the Live page reports with YuNet, read every half second once 10 frames are through."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_live as page  # the browser test's own server, fake camera and readers
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="live_browser_"))
    camera = page.write_y4m(work / "group.y4m", samples.load_sample("group_7faces_family.jpg"))
    with page.streamlit_server(work / "home", work) as server, sync_playwright() as driver:
        chromium, tab = page.open_live_page(driver, camera, server.url)
        try:
            page.wait_for_tensorflow(server.process.pid)  # the server's warm-up done: a steady state
            page.go_live(tab)
            page.press_start(tab)
            page.wait_for_report(tab, lambda r: r["processed"] >= 10)
            readings = []
            for _ in range(8 if bench.quick else 30):
                time.sleep(0.5)
                readings.append(page.reported(tab)["fps"])
        finally:
            chromium.close()
    default = models.default("faces").name  # the detector the Live page starts with
    with bench.about(default):
        bench.record(f"live_browser_{default}_fps", statistics.median(readings), "FPS")


def main() -> None:
    bench = Bench("live", __doc__, extra=lambda parser: parser.add_argument(
        "--no-browser", action="store_true", help="skip the Chromium run (live_browser_yunet_fps)"))
    detectors(bench)
    recognition(bench)
    transfer_head(bench)
    if not bench.args.no_browser:
        browser(bench)


if __name__ == "__main__":
    main()
