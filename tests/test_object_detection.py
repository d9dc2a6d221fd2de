"""Object detection: box geometry, R-CNN's building blocks, real COCO detectors, Mask R-CNN's adapter, the page."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import require_real, require_shared
from test_intake import JPEG
from test_pages import open_tab, start
from vision_backend import drawing, samples
from vision_backend.boxes import batched_nms, iou, non_max_suppression
from vision_backend.detections import Detections
from vision_backend.intake import encode_png
from vision_backend.object_detection import COCO_NAMES, DETECTORS, MaskRCNN, coco, rcnn

# annotated by hand (xyxy pixels) on the staged photos in ../shared/data/photos
DOG_BICYCLE_TRUCK = {"dog": [132, 222, 310, 540], "bicycle": [125, 135, 568, 420], "truck": [465, 75, 695, 170]}
PERSON_HORSE_DOG = {"person": [190, 98, 275, 375], "horse": [405, 138, 602, 345], "dog": [62, 263, 200, 345]}
REAL = ["nanodet_m", "yolov8n_seg"]
PAGE = "pages/object_detection.py"


# ---- IoU and NMS ---------------------------------------------------------------------------
def test_iou_on_hand_computed_cases() -> None:
    a = np.array([[0, 0, 10, 10]])
    others = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [10, 10, 20, 20], [0, 0, 5, 10], [2, 2, 2, 8]])
    # same box; 25 / (100 + 100 - 25); touching corners; half of it; a zero-width box
    assert np.allclose(iou(a, others)[0], [1.0, 25 / 175, 0.0, 0.5, 0.0])
    assert iou(others, a).shape == (5, 1) and np.allclose(iou(others, a)[:, 0], iou(a, others)[0])


def test_iou_parts_are_the_terms_of_the_fraction() -> None:
    assert rcnn.iou_parts([0, 0, 100, 100], [50, 0, 150, 100]) == pytest.approx((5000, 10000, 10000, 5000 / 15000))
    assert rcnn.iou_parts([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx((25, 100, 100, 25 / 175))
    assert rcnn.iou_parts([0, 0, 10, 10], [20, 20, 30, 30]) == (0.0, 100.0, 100.0, 0.0), "apart: no negative overlap"
    assert rcnn.iou_parts([0, 0, 10, 10], [10, 0, 20, 10])[0] == 0.0, "touching edges share no area"


def test_nms_on_a_hand_computed_case() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 (best) overlaps box 0 at 0.9 and box 1 at 72/(90+100-72)=0.61; box 2 stands alone
    assert non_max_suppression(boxes, scores, 0.5).tolist() == [3, 2]
    assert non_max_suppression(boxes, scores, 0.65).tolist() == [3, 1, 2]
    assert non_max_suppression(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    steps = rcnn.nms_steps(boxes, scores, 0.5)
    assert [s["keep"] for s in steps] == [3, 2] and sorted(steps[0]["suppressed"]) == [0, 1]


def test_nms_steps_only_suppress_within_a_class() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    assert [s["keep"] for s in rcnn.nms_steps(boxes, np.array([0.9, 0.8]), 0.5, np.array([0, 1]))] == [0, 1]
    assert batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, np.array([0.9, 0.8]), np.array([1, 1]), 0.5).tolist() == [0]


def test_batched_nms_keeps_other_classes_at_negative_coordinates() -> None:
    """A box hanging off the photo's top-left corner has negative coordinates: moving classes apart by the
    largest coordinate would move them by nothing (or backwards) there."""
    boxes = np.array([[-20, -20, -1, -1], [-20, -20, -1, -1], [-19, -19, -1, -1]])
    assert batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    boxes = np.array([[-500, -400, -300, -200], [-500, -400, -300, -200], [-490, -390, -300, -200], [0, 0, 0.5, 0.5]])
    kept = batched_nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([2, 0, 0, 1]), 0.5)
    assert kept.tolist() == [0, 1, 3], "class 0's second box goes; the other classes stay"


@pytest.mark.parametrize("seed", range(12))
def test_nms_agrees_with_tensorflow(seed: int) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    corners = rng.uniform(0, 200, (n, 2))
    boxes = np.c_[corners, corners + rng.uniform(5, 80, (n, 2))]
    scores = rng.uniform(0, 1, n)
    threshold = float(rng.uniform(0.2, 0.8))
    ours = non_max_suppression(boxes, scores, threshold)
    theirs = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]].astype(np.float32), scores.astype(np.float32),
                                          max_output_size=n, iou_threshold=threshold).numpy()
    assert ours.tolist() == theirs.tolist()


# ---- Detections ----------------------------------------------------------------------------
def test_filtered_copies_do_not_share_meta() -> None:
    found = Detections([[0, 0, 10, 10], [5, 5, 20, 20]], [0.4, 0.9], [0, 1], ("a", "b"))
    found.meta["ms"] = 12.0
    copies = [found[found.scores > 0.5], found[[1]], found.sorted(), found.clipped(8, 8), found.scaled(2.0)]
    for copy in copies:
        assert copy.meta == {"ms": 12.0}, "a copy starts with the original's meta"
        copy.meta["ms"] = 99.0
        copy.meta["input"] = (416, 416)
    assert found.meta == {"ms": 12.0}, "writing a copy's meta must not change the original's"
    assert len({id(c.meta) for c in copies}) == len(copies)


# ---- R-CNN's building blocks ---------------------------------------------------------------
def test_selective_search_boxes_lie_inside_the_photo() -> None:
    image = samples.load_sample("Coffee cup (scikit-image)")
    height, width = image.shape[:2]
    found = rcnn.selective_search(image, "fast", max_side=240)
    assert len(found) > 50
    boxes = found.boxes
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes[:, 2].max() > 0.9 * width, "boxes are mapped back from the downscaled copy to the photo"
    assert found.meta["scale"] == pytest.approx(240 / max(height, width), rel=0.01)
    assert len(rcnn.selective_search(image, "fast", max_side=240, top=10)) == 10


def test_medium_proposal_is_the_largest_that_is_not_the_photo() -> None:
    boxes = np.array([[0, 0, 100, 100], [0, 0, 10, 10], [0, 0, 60, 60], [0, 0, 40, 40], [0, 0, 1, 1]])
    # the whole photo (100%) and the specks (1%, 0.01%) are left out; of 36% and 16%, the larger
    assert rcnn.medium_proposal(boxes, (100, 100)) == 2
    assert rcnn.medium_proposal(boxes[[0, 1]], (100, 100)) == 0, "none fits: the first (most promising) one"


def test_anchor_boxes_are_three_scales_by_three_ratios() -> None:
    anchors = rcnn.anchor_boxes(100, 80, scales=(32, 64, 128), ratios=(0.5, 1.0, 2.0))
    assert anchors.shape == (9, 4)
    widths, heights = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    assert np.allclose(np.sqrt(widths * heights), np.repeat([32, 64, 128], 3), rtol=1e-5)
    assert np.allclose(heights / widths, np.tile([0.5, 1.0, 2.0], 3), rtol=1e-5)
    assert np.allclose((anchors[:, 0] + anchors[:, 2]) / 2, 100) and np.allclose((anchors[:, 1] + anchors[:, 3]) / 2, 80)
    assert rcnn.anchor_scales(768, 576) == (72, 144, 288), "an eighth, a quarter and half the short side"
    assert rcnn.anchor_scales(40, 100) == (16, 32, 64), "never under 16 px"


def test_roi_pool_gives_a_fixed_grid_of_maxima() -> None:
    feature = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    pooled = rcnn.roi_pool(feature, np.array([2, 4, 16, 18]), output=7)
    assert pooled.shape == (7, 7)
    assert pooled[-1, -1] == feature[4:18, 2:16].max() and pooled[0, 0] == feature[4:6, 2:4].max()
    assert rcnn.roi_pool(feature, np.array([0, 0, 30, 20]), output=2).tolist() == [[feature[:10, :15].max(),
                                                                                    feature[:10, 15:].max()],
                                                                                   [feature[10:, :15].max(),
                                                                                    feature[10:, 15:].max()]]


# ---- real detectors ------------------------------------------------------------------------
def best_iou(found: Detections, names: set[str], truth: list[int]) -> float:
    chosen = found[np.isin(found.names, list(names))]
    return float(iou(chosen.boxes, np.array([truth])).max()) if len(chosen) else 0.0


@pytest.mark.parametrize("detector", REAL)
def test_finds_the_dog_and_the_bicycle(real_model, photo, detector: str) -> None:
    found = real_model(detector).detect(photo("dog_bicycle_truck.jpg"))
    assert best_iou(found, {"dog"}, DOG_BICYCLE_TRUCK["dog"]) >= 0.5
    assert best_iou(found, {"bicycle"}, DOG_BICYCLE_TRUCK["bicycle"]) >= 0.5
    assert best_iou(found, {"car", "truck"}, DOG_BICYCLE_TRUCK["truck"]) >= 0.5
    assert found.meta["ms"] > 0 and (np.diff(found.scores) <= 0).all()


@pytest.mark.parametrize("detector", REAL)
def test_finds_the_person_horse_and_dog(real_model, photo, detector: str) -> None:
    found = real_model(detector).detect(photo("person_horse_dog.jpg"))
    for name, box in PERSON_HORSE_DOG.items():
        assert best_iou(found, {name}, box) >= 0.5, name


@pytest.mark.parametrize("detector", REAL)
def test_preprocess_run_decode_is_detect(real_model, photo, detector: str) -> None:
    """The halves a batch uses (preprocess many, run together, decode each) give what ``detect`` gives."""
    model, image = real_model(detector), photo("dog_bicycle_truck.jpg")
    blob, geometry = model.preprocess(image)
    session = model.runtime()
    outputs = session.run(None, {session.get_inputs()[0].name: blob})
    halves = model.decode(outputs, geometry, image.shape[:2], **model.defaults())
    halves = halves.clipped(image.shape[1], image.shape[0]).sorted()
    direct = model.detect(image)
    assert len(direct) >= 3 and halves.names == direct.names
    assert np.allclose(halves.boxes, direct.boxes) and np.allclose(halves.scores, direct.scores)
    if direct.masks is not None:
        assert (halves.masks == direct.masks).all()


def test_yolo_person_mask_covers_most_of_its_box(real_model, photo) -> None:
    image = photo("person_horse_dog.jpg")
    found = real_model("yolov8n_seg").detect(image)
    assert found.masks is not None and found.masks.shape == (len(found),) + image.shape[:2]
    person = found[np.asarray(found.names) == "person"]
    assert len(person) == 1
    x1, y1, x2, y2 = person.boxes[0].round().astype(int)
    inside = person.masks[0][y1:y2, x1:x2].mean()
    assert 0.5 <= inside <= 0.95, "a person fills most of the box but not all of it"
    assert person.masks[0].sum() == person.masks[0][y1:y2, x1:x2].sum(), "masks are cropped to their box"
    hand = np.zeros(image.shape[:2], bool)
    b = PERSON_HORSE_DOG["person"]
    hand[b[1]:b[3], b[0]:b[2]] = True
    assert (person.masks[0] & hand).sum() / person.masks[0].sum() >= 0.9


@pytest.mark.parametrize("detector", REAL)
def test_raising_the_threshold_never_adds_detections(real_model, photo, detector: str) -> None:
    image = photo("dog_bicycle_truck.jpg")
    model = real_model(detector)
    previous = None
    for threshold in (0.1, 0.2, 0.3, 0.45, 0.6, 0.8):
        found = model.detect(image, score_threshold=threshold)
        assert (found.scores > threshold).all()
        if previous is not None:
            assert len(found) <= len(previous)
            assert iou(found.boxes, previous.boxes).max(axis=1).min(initial=1.0) > 0.999, "a subset of the lower run"
        previous = found
    assert len(model.detect(image, score_threshold=0.1)) > len(previous)


def test_class_filter_and_drawing_keep_the_photo_intact(real_model, photo) -> None:
    image = photo("person_horse_dog.jpg")
    found = real_model("yolov8n_seg").detect(image)
    dogs = found[np.asarray(found.names) == "dog"]
    assert set(dogs.names) == {"dog"} and dogs.masks.shape[0] == len(dogs)
    painted = drawing.draw_masks(image, dogs, opacity=1.0, outline=False)
    assert (painted[dogs.masks[0]] == drawing.colour(dogs.labels[0])).all()
    assert (painted[~dogs.masks.any(0)] == image[~dogs.masks.any(0)]).all()


def test_keep_only_people_removes_the_background(real_model, photo) -> None:
    image = photo("person_horse_dog.jpg")
    found = real_model("yolov8n_seg").detect(image)
    kept = drawing.keep_only(image, found, "person", background=(255, 255, 255))
    person = found.masks[np.asarray(found.names) == "person"].any(0)
    assert (kept[person] == image[person]).all() and (kept[~person] == 255).all()
    blurred = drawing.keep_only(image, found, "person", blur=31)
    assert (blurred[person] == image[person]).all() and not (blurred[~person] == image[~person]).all()
    with pytest.raises(ValueError, match="boxes only"):
        drawing.keep_only(image, real_model("nanodet_m").detect(image))


# ---- results -------------------------------------------------------------------------------
def test_coco_names_are_the_shared_label_file() -> None:
    labels = (require_shared() / "models" / "onnx" / "coco80_labels.txt").read_text().splitlines()
    assert COCO_NAMES == tuple(labels) and len(COCO_NAMES) == 80
    assert all(d.class_names == COCO_NAMES for d in DETECTORS.values())


def test_rle_roundtrip_and_coco_layout() -> None:
    tiny = np.array([[0, 1], [1, 1]], bool)
    assert coco.rle_encode(tiny)["counts"] == [1, 3], "column-major runs, background first"
    assert coco.rle_encode(np.ones((2, 2), bool))["counts"] == [0, 4]
    rng = np.random.default_rng(0)
    for mask in [rng.random((37, 53)) > 0.5, np.zeros((5, 7), bool), np.ones((5, 7), bool),
                 rng.random((64, 48)) > 0.95]:
        rle = coco.rle_encode(mask)
        assert sum(rle["counts"]) == mask.size and (coco.rle_decode(rle) == mask).all()
    masks = np.zeros((1, 20, 30), bool)
    masks[0, 5:15, 10:20] = True
    found = Detections([[10, 5, 20, 15]], [0.8], [16], COCO_NAMES, masks=masks)
    (row,) = coco.to_coco(found, "x.jpg")
    assert row["category_id"] == 18 and row["category"] == "dog", "COCO's own id for dog"
    assert row["bbox"] == [10, 5, 10, 10]
    assert row["area"] == 100 and (coco.rle_decode(row["segmentation"]) == masks[0]).all()
    assert len(coco.COCO_CATEGORY_IDS) == 80 and coco.COCO_CATEGORY_IDS[-1] == 90
    assert coco.to_coco(Detections([[0, 0, 1, 1]], [1], [0], ("proposal",)))[0]["category_id"] == 1
    json.dumps(row)


# ---- Mask R-CNN: its real pre/post-processing on a graph this test builds -------------------
def mask_rcnn_like_graph(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray, masks: np.ndarray) -> bytes:
    """An ONNX graph with the Zoo model's interface (image [3,H,W] -> boxes, labels, scores, masks).

    The boxes are scaled by the input's own width so the output depends on what the adapter
    feeds in; every other output is a constant.
    """
    def const(name: str, value: np.ndarray):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))

    nodes = [
        const("box_units", boxes.astype(np.float32)), const("labels", labels.astype(np.int64)),
        const("scores", scores.astype(np.float32)), const("masks", masks.astype(np.float32)),
        helper.make_node("Shape", ["image"], ["shape"]),
        const("width_index", np.array([2], np.int64)),
        helper.make_node("Gather", ["shape", "width_index"], ["width_int"]),
        helper.make_node("Cast", ["width_int"], ["width"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["box_units", "width"], ["boxes"]),
    ]
    graph = helper.make_graph(
        nodes, "mask_rcnn_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [3, "height", "width"])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["n", 4]),
         helper.make_tensor_value_info("labels", TensorProto.INT64, ["n"]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["n", 1, 28, 28])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def mask_rcnn_on(session: ort.InferenceSession) -> MaskRCNN:
    """A Mask R-CNN model object whose engine is ``session`` (the 178 MB file is not needed)."""
    return MaskRCNN(card=replace(MaskRCNN.card, files=()), load=lambda: session)


def test_mask_rcnn_input_is_the_zoo_preprocessing() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 200, 100, 50  # RGB
    blob, scale = DETECTORS["mask_rcnn"].preprocess(image)
    assert scale == pytest.approx(800 / 300)
    assert blob.shape == (3, 800, 1088), "shorter side 800, 1067 padded up to a multiple of 32"
    assert blob[:, 400, 500] == pytest.approx([50 - 102.9801, 100 - 115.9465, 200 - 122.7717]), "BGR minus means"
    assert (blob[:, :, 1067:] == 0).all()
    wide = DETECTORS["mask_rcnn"].preprocess(np.zeros((100, 1000, 3), np.uint8))[0]
    assert wide.shape[2] <= 1344 and wide.shape[2] % 32 == 0, "the longer side is capped at 1333"


def test_mask_rcnn_adapter_on_a_generated_graph() -> None:
    image = np.full((300, 400, 3), 128, np.uint8)
    width_in = 1088  # what the Zoo preprocessing makes of 400x300
    scale = 800 / 300
    in_resized = np.array([[80, 160, 400, 560], [300, 300, 600, 700], [82, 162, 398, 558], [0, 0, 100, 100]], np.float32)
    masks = np.zeros((4, 1, 28, 28), np.float32)
    masks[:, 0, 7:21, :14] = 0.9  # the left half of the box, middle rows
    session = ort.InferenceSession(
        mask_rcnn_like_graph(in_resized / width_in, np.array([1, 17, 1, 3]), np.array([0.9, 0.8, 0.7, 0.2]), masks),
        providers=["CPUExecutionProvider"])
    model = mask_rcnn_on(session)
    found = model.detect(image)
    assert found.names == ["person", "dog"], "labels 1..80 become COCO names; duplicate suppressed; 0.2 dropped"
    assert np.allclose(found.boxes, in_resized[[0, 1]] / scale, atol=0.05)
    assert found.masks.shape == (2, 300, 400)
    x1, y1, x2, y2 = (in_resized[0] / scale).round().astype(int)
    assert found.masks[0, :y1].sum() == 0 and found.masks[0, :, x2:].sum() == 0
    middle = (y1 + y2) // 2
    assert found.masks[0, middle, x1 + 2] and not found.masks[0, middle, x2 - 2]
    assert len(model.detect(image, score_threshold=0.85)) == 1


def test_paste_mask_fills_its_box() -> None:
    from vision_backend.object_detection.detectors import paste_mask

    pasted = paste_mask(np.ones((28, 28)), np.array([10, 20, 50, 40]), 60, 80)
    assert pasted.sum() == 40 * 20 and pasted[20:40, 10:50].all()
    assert paste_mask(np.ones((28, 28)), np.array([-10, -10, 5, 5]), 60, 80).sum() == 25


# ---- the page ------------------------------------------------------------------------------
def require_page_models() -> None:
    require_real("photos")
    require_real("nanodet_m")
    require_real("yolov8n_seg")


@pytest.mark.slow
def test_object_detection_page_on_the_staged_photos() -> None:
    require_page_models()
    app = start(PAGE)
    app.sidebar.selectbox(key="sample_name").set_value("dog_bicycle_truck.jpg").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value
    assert {"dog", "bicycle"} <= set(table["class"]) and not app.warning, "NanoDet is the default; no AGPL notice"
    caption = next(c.value for c in app.caption if "object(s) shown" in c.value)
    assert f"{len(table)} object(s) shown of {len(table)} found" in caption
    labels = {b.label for b in app.get("download_button")}
    assert {"Annotated image (PNG)", "Detections (COCO JSON)"} <= labels

    classes = next(m for m in app.multiselect if m.label == "Classes to show")
    classes.set_value(["dog"]).run()
    assert set(app.dataframe[0].value["class"]) == {"dog"}

    app.slider(key="od:nanodet_m:score_threshold").set_value(0.9).run()
    assert not app.exception and any("Nothing found" in i.value for i in app.info)

    app.sidebar.selectbox(key="sample_name").set_value("person_horse_dog.jpg").run()
    app.radio(key="od_model").set_value("yolov8n_seg").run()
    app.slider(key="od:yolov8n_seg:score_threshold").set_value(0.35).run()
    assert any("AGPL-3.0" in w.value for w in app.warning)
    assert "mask_area" in app.dataframe[0].value.columns
    app.button(key="od_keep").click().run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("Kept 1 person mask(s)") for c in app.caption)


def test_building_block_tabs_compute_what_they_show() -> None:
    require_page_models()
    app = start(PAGE)
    app.sidebar.selectbox(key="sample_name").set_value("dog_bicycle_truck.jpg").run()
    open_tab(app, "Non-max suppression")
    before = next(c.value for c in app.caption if c.value.startswith("Before:"))
    after = next(c.value for c in app.caption if c.value.startswith("After NMS"))
    raw, kept = int(before.split("'s ")[1].split(" ")[0]), int(after.split(": ")[1].split(" ")[0])
    assert 0 < kept < raw
    app.slider(key="nms_iou").set_value(0.95).run()
    after = next(c.value for c in app.caption if c.value.startswith("After NMS"))
    assert int(after.split(": ")[1].split(" ")[0]) > kept, "a looser threshold suppresses less"

    open_tab(app, "IoU")
    for key, value in (("iou_a_x", 0), ("iou_a_y", 0), ("iou_a_w", 100), ("iou_a_h", 100),
                       ("iou_b_x", 50), ("iou_b_y", 0), ("iou_b_w", 100), ("iou_b_h", 100)):
        app.slider(key=key).set_value(value)
    app.run()
    assert app.metric[0].value == f"{5000 / 15000:.3f}"
    assert any("intersection 5,000 px² ÷ union (10,000 + 10,000 − 5,000)" in c.value for c in app.caption)
    proposals = next(c.value for c in open_tab(app, "Selective search").caption if c.value.startswith("Top 50 of"))
    assert "fast mode" in proposals


def test_mask_rcnn_is_fetched_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Picking Mask R-CNN asks for its files (here a fetch that fails, as offline) and says what is missing."""
    from vision_backend import fetch

    require_page_models()
    if DETECTORS["mask_rcnn"].ready():
        pytest.skip("Mask R-CNN is already on this machine: nothing to fetch")
    asked = []

    def offline(card, progress=None):
        asked.append(card.name)
        return fetch.Outcome(card, False, (), "no internet here")

    monkeypatch.setattr(fetch, "ensure", offline)
    app = start(PAGE)
    assert "fetched on first use" in app.radio(key="od_model").options[2]
    app.radio(key="od_model").set_value("mask_rcnn").run()
    assert not app.exception, app.exception
    assert asked == ["mask_rcnn"]
    assert any("not on this machine: no internet here" in w.value for w in app.warning)
    assert not [b for b in app.get("download_button") if b.label == "Annotated image (PNG)"]


def tiny_photo_shown_everywhere(app) -> None:
    """Every tab runs to its end on the 1x1 photo: a message where boxes cannot be drawn, results elsewhere."""
    too_small = []
    for tab in ("Detect objects", "Selective search", "IoU", "Non-max suppression", "R-CNN → Mask R-CNN"):
        open_tab(app, tab)
        assert not app.exception, (tab, app.exception)
        assert not app.error, (tab, [e.value for e in app.error])
        too_small += [tab for i in app.info if "1x1 px: too small" in i.value]
        if tab == "Detect objects":
            assert any(c.value.startswith("NanoDet-m 416 (Apache-2.0): 0 object(s) shown of 0 found")
                       for c in app.caption)
        if tab == "Non-max suppression":
            assert any("NanoDet-m 416 (Apache-2.0) has no raw box" in i.value for i in app.info), "NMS ran to its end"
    assert too_small == ["Selective search", "IoU", "R-CNN → Mask R-CNN"], "each tab with boxes to draw says so"


def test_a_one_pixel_photo_breaks_no_tab() -> None:
    """IoU's and the anchors' sliders cannot be drawn on a 1x1 photo: each tab says so instead of crashing."""
    require_page_models()
    app = start(PAGE)
    app.sidebar.selectbox(key="sample_name").set_value("dog_bicycle_truck.jpg").run()
    open_tab(app, "IoU").slider(key="iou_a_x").set_value(500).run()
    open_tab(app, "R-CNN → Mask R-CNN").slider(key="anchor_x").set_value(700).run()  # kept beyond a smaller photo
    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    dot = encode_png(np.zeros((1, 1, 3), np.uint8))
    app.sidebar.file_uploader(key="photo_upload").upload("dot.png", dot, "image/png")
    app.run()
    assert not app.exception, app.exception
    if app.session_state.photo[0] == "dot.png":  # the picker took it: the tabs must cope
        tiny_photo_shown_everywhere(app)
    else:  # the picker refused it with a message; the tabs still run on the previous photo
        shown = app.sidebar.error[0].value.replace("\\", "")  # the name is Markdown-escaped, shown as typed
        assert "dot.png" in shown and not app.main.error
    # a 1x1 photo that reaches the page by another way (the camera, a stored file): no tab breaks
    app.sidebar.radio(key="photo_source").set_value("Camera")
    app.session_state["photo"] = ("dot.png", np.zeros((1, 1, 3), np.uint8))
    app.run()
    assert app.session_state.photo[0] == "dot.png"
    tiny_photo_shown_everywhere(app)

    app.sidebar.radio(key="photo_source").set_value("Upload").run()
    app.sidebar.file_uploader(key="photo_upload").upload("small.jpg", JPEG, "image/jpeg")
    app.run()
    assert not app.exception, app.exception
    assert app.session_state.photo[1].shape == (48, 64, 3) and not [i for i in app.info if "too small" in i.value]
    assert open_tab(app, "R-CNN → Mask R-CNN").slider(key="anchor_x").value == 63
    assert open_tab(app, "IoU").slider(key="iou_a_x").value == 63, "kept positions are moved into the smaller photo"


def test_constant_weights_frees_the_weights_nanodet_lists_as_inputs(real_model) -> None:
    """NanoDet-m's file lists its weights as graph inputs (ONNX Runtime then keeps them overridable and
    leaves its convolutions unfused); the session's graph has only the photo as input, same outputs."""
    from vision_backend import engines

    nanodet = real_model("nanodet_m")
    path = nanodet.card.path()
    assert len(onnx.load(str(path)).graph.input) > 100
    graph = engines.constant_weights(path)
    assert isinstance(graph, bytes) and [i.name for i in onnx.load_from_string(graph).graph.input] == ["input.1"]
    assert [i.name for i in nanodet.runtime().get_inputs()] == ["input.1"]
    blob = nanodet.preprocess(samples.load_sample("dog_bicycle_truck.jpg"))[0]
    as_filed = engines.onnx_session(path).run(None, {"input.1": blob})
    for mine, theirs in zip(nanodet.runtime().run(None, {"input.1": blob}), as_filed):
        np.testing.assert_allclose(mine, theirs, atol=1e-4)
    assert engines.constant_weights(real_model("yolov8n_seg").card.path()) == str(real_model("yolov8n_seg").card.path())
