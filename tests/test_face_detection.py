"""Face detection on real weights and real photos, and the pieces that explain it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import require_real
from vision_backend import drawing, samples
from vision_backend.boxes import iou
from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS, explain
from vision_backend.face_detection import evaluate as fde
from vision_backend.imageops import resized

ASTRONAUT = "Astronaut (scikit-image)"
ASTRONAUT_FACE = np.array([[176, 62, 272, 172]])  # annotated by hand: hairline to chin, ear to ear
GROUPS = ["group_3faces.jpg", "group_7faces_family.jpg", "group_7faces_elvis.jpg"]
MIN_RECALL = {"dlib_hog": 17, "mtcnn": 17, "yunet": 16, "viola_jones": 15}
THOROUGH = DETECTORS["viola_jones"].presets["Thorough"]


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    require_real("photos")
    return samples.annotated_faces()


def run(real_model, detector: str, image: np.ndarray, **settings) -> Detections:
    return real_model(detector).detect(image, **settings)


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_finds_the_astronaut(real_model, detector: str) -> None:
    found = run(real_model, detector, samples.load_sample(ASTRONAUT))
    assert len(found) >= 1
    assert iou(found.boxes[:1], ASTRONAUT_FACE)[0, 0] >= 0.5, "the best-scoring box is her face"
    assert found.meta["ms"] > 0


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_group_photos_recall_and_precision(real_model, truth, detector: str) -> None:
    found = [run(real_model, detector, samples.load_sample(p)) for p in GROUPS]
    result = fde.evaluate(found, [truth[p] for p in GROUPS])
    assert result.faces == 17
    assert result.true_positives >= MIN_RECALL[detector]
    assert result.precision >= 0.9
    assert result.mean_iou >= 0.6


@pytest.mark.parametrize("detector, at_least", [("mtcnn", 17), ("yunet", 16), ("dlib_hog", 15)])
def test_recall_holds_when_the_photos_come_smaller_or_larger(real_model, truth, detector: str, at_least: int) -> None:
    photos = [samples.load_sample(p) for p in GROUPS]
    boxes = [truth[p] for p in GROUPS]
    model = real_model(detector)
    seen: list[float] = []
    results = fde.evaluate_at_scales(lambda image: model.detect(image), photos, boxes, progress=seen.append)
    assert sorted(results) == list(fde.PHOTO_SCALES) and seen[-1] == 1.0 and seen == sorted(seen)
    assert results[1.0] == fde.evaluate([model.detect(p) for p in photos], boxes)
    for factor, result in results.items():  # the boxes shrink and grow with the photos
        assert result.faces == 17 and result.true_positives >= at_least, factor
    assert resized(photos[0], 0.8).shape[:2] == (300, 400)


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_no_face_photos_and_noise_give_no_face(real_model, detector: str) -> None:
    require_real("photos")
    for photo in samples.NO_FACE_PHOTOS:
        assert len(run(real_model, detector, samples.load_sample(photo))) == 0, photo
    noise = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert len(run(real_model, detector, noise)) == 0


def test_large_photo_is_downscaled_and_boxes_mapped_back(real_model) -> None:
    import cv2

    image = samples.load_sample(ASTRONAUT)
    big = cv2.resize(image, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    found = run(real_model, "yunet", big)
    assert found.meta["scale"] == pytest.approx(640 / 2048)
    assert iou(found.boxes[:1], ASTRONAUT_FACE * 4)[0, 0] >= 0.5


def test_hog_enlarges_a_photo_only_as_far_as_its_smallest_face_needs() -> None:
    scale = DETECTORS["dlib_hog"].working_scale
    assert scale(250, 250, 32, 900) == pytest.approx(2.5), "a portrait: 625 px, not the old fixed 900"
    assert scale(480, 640, 32, 900) == pytest.approx(900 / 640), "the cap: the bench photo costs what it did"
    assert scale(3000, 4000, 32, 900) == pytest.approx(900 / 4000)
    assert scale(250, 250, 80, 900) == 1.0 and scale(250, 250, 160, 900) == 0.5, "large faces: never enlarged"
    assert scale(250, 250, 20, 300) == pytest.approx(1.2), "the cap holds for small photos too"


def old_hog_default(engine, image: np.ndarray) -> Detections:
    """HOG as it was before the smallest face set its scale: every photo resized to a long side of 900 px."""
    import cv2

    height, width = image.shape[:2]
    factor = max(height, width) / 900
    work = cv2.resize(image, (round(width / factor), round(height / factor)),
                      interpolation=cv2.INTER_AREA if factor > 1 else cv2.INTER_LINEAR)
    rects, scores, _ = engine.run(np.ascontiguousarray(work), 0, 0.0)
    boxes = np.asarray([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
    return Detections(boxes.reshape(-1, 4) * factor, np.asarray(scores), np.zeros(len(boxes)))


@pytest.mark.slow
def test_hog_finds_lfw_portraits_without_blowing_them_up(real_model) -> None:
    """LFW's 250x250 portraits (every 10th of the five people's 1,140) are centred on a ~110 px face: found
    at least as often as when every photo was enlarged to 900 px (3.6x), at 2.5x."""
    require_real("lfw")
    from vision_backend.face_recognition.lfw import lfw_people
    from vision_backend.intake import read_image_file

    hog = real_model("dlib_hog")
    centre = np.array([[70, 70, 180, 180]])  # the central 110 px box LFW's faces sit in

    def found(detections: Detections) -> bool:
        return bool(len(detections)) and iou(detections.boxes, centre).max() >= 0.4

    files = lfw_people()[0][::10]
    now = before = 0
    for file in files:
        image = read_image_file(file)
        detections = hog.detect(image)
        assert detections.meta["scale"] == pytest.approx(2.5)
        now += found(detections)
        with hog.using() as engine:
            before += found(old_hog_default(engine, image))
    assert len(files) == 114 and now >= before and now / len(files) >= 0.97, (now, before)


def test_landmarks_fall_inside_the_face(real_model) -> None:
    for detector in ("mtcnn", "yunet"):
        found = run(real_model, detector, samples.load_sample(ASTRONAUT))
        x1, y1, x2, y2 = found.boxes[0]
        points = found.landmarks[0]
        assert points.shape == (5, 2)
        assert ((points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2)).all()
        right_eye, left_eye = points[0], points[1]
        assert right_eye[0] < left_eye[0], f"{detector}: the person's right eye is on the viewer's left"


@pytest.mark.parametrize("settings", [dict(min_face_size=40), dict(min_face_size=80), dict(scale_factor=0.8),
                                      dict(scale_factor=0.85)])
def test_mtcnn_pyramid_fix_finds_the_face_where_the_library_finds_none(real_model, settings) -> None:
    image = samples.load_sample(ASTRONAUT)
    found = run(real_model, "mtcnn", image, **{**settings, "max_side": 1600})  # the photo as it is
    assert len(found) == 1 and iou(found.boxes, ASTRONAUT_FACE)[0, 0] >= 0.5
    from mtcnn import MTCNN

    try:
        raw = MTCNN().detect_faces(image, **settings)
    except ValueError:  # under Keras 3 the too-small pyramid level raises instead of returning nothing
        raw = []
    assert raw == [], "mtcnn 1.0.0 itself loses the face at these settings (why the fix exists)"


def test_mtcnn_stages_narrow_down(real_model) -> None:
    image = samples.load_sample(ASTRONAUT)
    stages = explain.mtcnn_stages(real_model("mtcnn"), image)
    assert [name for name, _ in stages] == ["P-Net", "R-Net", "O-Net"]
    counts = [len(found) for _, found in stages]
    assert counts[0] > counts[1] >= counts[2] == 1
    final = run(real_model, "mtcnn", image)
    assert iou(stages[2][1].boxes, final.boxes)[0, 0] > 0.99


@pytest.mark.parametrize("degrees", [-25, 25])
def test_haar_thorough_setup_finds_a_tilted_head(real_model, degrees: int) -> None:
    import cv2

    image = samples.load_sample(ASTRONAUT)
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    tilted = cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)
    centre = turn @ [*(ASTRONAUT_FACE[0, :2] + ASTRONAUT_FACE[0, 2:]) / 2, 1]
    half = (ASTRONAUT_FACE[0, 2:] - ASTRONAUT_FACE[0, :2]) / 2
    face = np.r_[centre - half, centre + half][None]
    upright = run(real_model, "viola_jones", tilted, **{**THOROUGH, "tilt": 0})
    assert not len(upright) or iou(upright.boxes, face).max() < 0.5, "a head tilted 25 degrees defeats the upright scan"
    found = run(real_model, "viola_jones", tilted, **THOROUGH)
    assert len(found) == 1 and iou(found.boxes, face)[0, 0] >= 0.5, "windows from turned copies map back onto her face"


@pytest.mark.slow
def test_haar_thorough_setup_on_the_group_photos(real_model, truth) -> None:
    found = [run(real_model, "viola_jones", samples.load_sample(p), **THOROUGH) for p in GROUPS]
    result = fde.evaluate(found, [truth[p] for p in GROUPS])
    assert result.true_positives >= 16 and result.precision >= 0.9
    fast = fde.evaluate([run(real_model, "viola_jones", samples.load_sample(p)) for p in GROUPS],
                       [truth[p] for p in GROUPS])
    assert result.true_positives > fast.true_positives, "the tilted head in the family photo is found"
    noise = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for image in [samples.load_sample(p) for p in samples.NO_FACE_PHOTOS] + [noise]:
        assert len(run(real_model, "viola_jones", image, **THOROUGH)) == 0
    assert len(run(real_model, "viola_jones", samples.load_sample(ASTRONAUT), **THOROUGH)) == 1


def test_haar_stage_funnel_ends_on_the_face(real_model) -> None:
    image = samples.load_sample(ASTRONAUT)
    counts, windows = explain.cascade_funnel(real_model("viola_jones").cascade_path("frontalface_default"), image)
    assert len(counts) == 26  # all windows, then 25 stages
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    assert counts[0] > 10_000 and counts[1] < counts[0] * 0.6 and 0 < counts[-1] < 50
    assert explain.windows_overlapping(windows, ASTRONAUT_FACE, 0.3) >= len(windows) // 2


def test_integral_image_matches_the_deck() -> None:
    example = np.array([[2, 4, 1, 2], [1, 1, 2, 2], [3, 2, 2, 1]])
    expected = np.array([[2, 6, 7, 9], [3, 8, 11, 15], [6, 13, 18, 23]])
    np.testing.assert_array_equal(explain.integral_image(example), expected)


def test_rectangle_sums_from_four_lookups() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (40, 50))
    ii = explain.integral_image(image)
    for _ in range(200):
        x, y = rng.integers(0, 45), rng.integers(0, 35)
        w, h = rng.integers(1, 50 - x), rng.integers(1, 40 - y)
        assert explain.rect_sum(ii, x, y, w, h) == image[y : y + h, x : x + w].sum()


def test_haar_features() -> None:
    flat = explain.integral_image(np.full((30, 30), 77))
    for kind in explain.HAAR_KINDS:
        assert explain.haar_feature(flat, kind, 3, 3, 24, 24)[0] == 0, "flat patch: no edge, no line"
    dark_top = np.full((24, 24), 200)
    dark_top[:12] = 20  # eyes darker than cheeks
    value, rects = explain.haar_feature(explain.integral_image(dark_top), "two-rectangle (top/bottom)", 0, 0, 24, 24)
    assert value == (20 - 200) * 24 * 12 and len(rects) == 2


def test_blur_changes_only_face_pixels(real_model) -> None:
    image = samples.load_sample(ASTRONAUT)
    faces = run(real_model, "mtcnn", image)
    for mode in ("blur", "pixelate"):
        out = drawing.anonymise(image, faces, mode, grow=0.15)
        changed = np.any(out != image, axis=2)
        x1, y1, x2, y2 = faces.boxes[0]
        dx, dy = (x2 - x1) * 0.15, (y2 - y1) * 0.15
        inside = np.zeros_like(changed)
        inside[int(max(0, y1 - dy)) : int(y2 + dy), int(max(0, x1 - dx)) : int(x2 + dx)] = True
        assert not changed[~inside].any(), "nothing outside the (grown) face box changes"
        assert changed[inside].mean() > 0.5, "the face itself is hidden"


def test_crops_zip_and_records(real_model) -> None:
    import io
    import zipfile

    image = samples.load_sample(ASTRONAUT)
    faces = run(real_model, "yunet", image)
    crops = drawing.crops(image, faces)
    assert len(crops) == len(faces) and crops[0].shape[2] == 3
    archive = zipfile.ZipFile(io.BytesIO(drawing.zip_pngs(crops)))
    assert archive.namelist() == ["face_01.png"]
    record = faces.to_records()[0]
    assert record["label"] == "face" and len(record["landmarks"]) == 5 and len(record["box_xyxy"]) == 4
    json.dumps(record)


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_tiny_and_flat_photos_give_finite_boxes_or_none(real_model, detector: str) -> None:
    """YuNet once returned a NaN box on a 1x1 photo in 6 of 30 runs, and drawing it then failed."""
    model = real_model(detector)
    for image in [np.zeros((1, 1, 3), np.uint8), np.full((2, 3, 3), 200, np.uint8), np.zeros((33, 33, 3), np.uint8)]:
        for _ in range(10 if detector == "yunet" else 1):
            found = model.detect(image)
            assert np.isfinite(found.boxes).all() and np.isfinite(found.scores).all()
            drawing.draw_detections(image, found)


def test_settings_are_checked_against_the_parameters() -> None:
    yunet = DETECTORS["yunet"]
    assert yunet.settings({"score_threshold": "0.5"})["score_threshold"] == 0.5
    with pytest.raises(ValueError, match="between"):
        yunet.settings({"score_threshold": 7})
    with pytest.raises(KeyError, match="no setting"):
        yunet.settings({"min_neighbors": 3})
    haar = DETECTORS["viola_jones"]
    with pytest.raises(ValueError, match="one of"):
        haar.settings({"cascade": "../../etc/passwd"})
    assert set(THOROUGH) <= {p.name for p in haar.params}


def test_one_detector_instance_is_safe_from_many_threads(real_model) -> None:
    """Two photos of different sizes detected from several threads at once each get their own faces
    (YuNet's session is shared without a lock: nothing of a call may stay behind in it)."""
    from concurrent.futures import ThreadPoolExecutor

    require_real("photos")
    yunet = real_model("yunet")
    photos = [samples.load_sample("group_7faces_elvis.jpg"), samples.load_sample("obama_1.jpg")]
    expected = [len(yunet.detect(p)) for p in photos]
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda i: len(yunet.detect(photos[i % 2])), range(64)))
    assert counts == [expected[i % 2] for i in range(64)]


@pytest.mark.slow
def test_a_detector_whose_engine_still_loads_is_run_after_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a restart TensorFlow is still importing: Viola-Jones, HOG and YuNet are drawn first, MTCNN
    (which needs TensorFlow) last in its own place, so the first visit does not wait for TensorFlow to show them."""
    require_real("photos")
    from test_pages import start

    from vision_backend import engines
    from vision_backend.intake import encode_png
    from vision_backend.model import Detector

    order: list[str] = []
    detect = Detector.detect
    monkeypatch.setattr(Detector, "detect", lambda self, *a, **k: order.append(self.name) or detect(self, *a, **k))
    photo = samples.load_sample("group_3faces.jpg").copy()
    photo[0, 0] = np.random.default_rng().integers(0, 255, 3)  # a photo no earlier run has cached
    app = start("pages/face_detection.py")
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="photo_upload").upload("fresh.png", encode_png(photo), "image/png")
    monkeypatch.delitem(engines._READY, "mtcnn")  # as before the server's warm-up reached it
    order.clear()
    app.run()
    assert not app.exception and set(order) == set(DETECTORS), order
    first = {name: order.index(name) for name in DETECTORS}
    assert first["mtcnn"] == max(first.values()), order
    captions = [c.value for c in app.caption]
    assert not any("still loading" in c for c in captions), "the note goes once the detector is drawn"
    assert any(c.startswith("MTCNN: ") and "face(s)" in c for c in captions)


@pytest.mark.parametrize("max_side", [640, 320, 1000])
def test_yunet_gives_opencv_face_detector_yn_rows(real_model, max_side: int) -> None:
    """YuNet on ONNX Runtime with its decoding written out gives FaceDetectorYN's rows (boxes, landmarks,
    scores, which faces NMS keeps) on every staged photo, at several working sizes and thresholds."""
    import cv2

    from vision_backend.imageops import fit_long_side

    require_real("photos")
    yunet = real_model("yunet")
    assert yunet.runtime().get_inputs()[0].shape == [1, 3, "height", "width"], "ONNX Runtime at the photo's size"
    reference = cv2.FaceDetectorYN.create(str(yunet.card.path()), "", (320, 320), 0.7, 0.3, 5000)
    compared = 0
    for name in samples.sample_names():
        image = samples.load_sample(name)
        for threshold in (0.7, 0.3):
            small, factor = fit_long_side(image, max_side)
            reference.setInputSize((small.shape[1], small.shape[0]))
            reference.setScoreThreshold(threshold)
            rows = reference.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))[1]
            rows = np.zeros((0, 15), np.float32) if rows is None else rows
            mine = yunet.infer(yunet.runtime(), image, threshold, 0.3, max_side).scaled(1 / factor)
            assert len(mine) == len(rows), (name, threshold)
            np.testing.assert_allclose(mine.boxes, np.c_[rows[:, :2], rows[:, :2] + rows[:, 2:4]], atol=1e-3)
            np.testing.assert_allclose(mine.landmarks.reshape(-1, 10), rows[:, 4:14], atol=1e-3)
            np.testing.assert_allclose(mine.scores, rows[:, 14], atol=1e-5)
            compared += len(rows)
    assert compared >= 40, "the staged photos hold dozens of faces at these settings"



@pytest.mark.parametrize("photo, settings", [(ASTRONAUT, {}), ("group_7faces_family.jpg", {}),
                                             ("group_3faces.jpg", dict(min_face_size=12, threshold_onet=0.5))])
def test_mtcnn_stages_get_one_float32_tensor_and_find_the_library_s_rows(real_model, monkeypatch, photo,
                                                                         settings) -> None:
    """mtcnn hands its stages a float64 array, converted to a tensor again at every pyramid level (most of the GIL a
    room's MTCNN calls held): the stages get one float32 tensor, and find exactly what ``detect_faces`` finds."""
    require_real("photos")
    mtcnn = real_model("mtcnn")
    image = samples.load_sample(photo)
    image = resized(image, 640 / max(image.shape[:2]))
    chosen = mtcnn.stage_settings(1.0, **{**mtcnn.defaults(), **settings})
    engine, seen = mtcnn.runtime(), []

    def spy(original):
        def call(self, *args, **kwargs):
            given = kwargs["images_normalized"]
            seen.append(f"{type(given).__name__} {given.dtype}")
            return original(self, *args, **kwargs)
        return call

    for stage in engine.stages:
        monkeypatch.setattr(type(stage), "__call__", spy(type(stage).__call__))
    ours = mtcnn.run_stages(engine, image, **chosen)
    monkeypatch.undo()
    library = engine.detect_faces(image, box_format="xyxy", output_type="numpy", **chosen)
    assert len(ours) == len(library) > 0 and np.allclose(ours, library, atol=1e-3)
    assert len(seen) == 3 and all(kind == "EagerTensor <dtype: 'float32'>" for kind in seen), seen
