"""Training a detector on your own boxes: the base's features on ONNX Runtime (equal to Keras's), the fast
single-shot detector and R-CNN trained on real raccoon photos, the one exported graph against the training-time
form, R-CNN's steps on one photo, and the detector as a model object (detect, a worker's engine, saved and
reloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_real, require_shared
from vision_backend.boxes import iou
from vision_backend.errors import BadInput
from vision_backend.own_detection import evaluate, fast, rcnn, read_csv
from vision_backend.own_detection.coding import anchors, apply_regression, box_regression, smooth_l1
from vision_backend.own_detection.detector import FastDetector, RcnnDetector, detector_from_saved, detector_from_trained
from vision_backend.own_detection.maps import PhotoMaps, Stopped, View, mirrored, photo_image, views
from vision_backend.own_detection.trained import chosen_settings
from vision_backend.storage import LocalStore, SavedModels

RACCOON = "data/detection/raccoon"


# ---- geometry and training maths, no model ---------------------------------------------------------------------
def test_box_regression_is_rcnns_parameterisation_and_apply_undoes_it() -> None:
    sources = np.float32([[10, 20, 50, 100], [0, 0, 8, 4]])
    targets = np.float32([[14, 16, 64, 96], [1, 1, 9, 9]])
    deltas = box_regression(sources, targets)
    # by hand, box 0: centres (30, 60) -> (39, 56), sizes (40, 80) -> (50, 80); divided by (0.1, 0.1, 0.2, 0.2)
    np.testing.assert_allclose(deltas[0], [9 / 40 / 0.1, -4 / 80 / 0.1, np.log(50 / 40) / 0.2, 0.0], rtol=1e-5)
    np.testing.assert_allclose(apply_regression(sources, deltas), targets, atol=1e-4)


def test_anchors_are_laid_out_cell_by_cell_as_the_head_reshapes() -> None:
    boxes = anchors(64, 2, (16.0, 32.0), (0.5, 1.0, 2.0))
    assert boxes.shape == (2 * 2 * 6, 4)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    np.testing.assert_allclose(centres[:6], [[16, 16]] * 6)  # cell (0, 0) first, all its shapes
    np.testing.assert_allclose(centres[6], [48, 16])  # then the next cell along the row
    np.testing.assert_allclose(np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:6],
                               [16, 16, 16, 32, 32, 32], rtol=1e-5)


def test_smooth_l1_is_quadratic_then_linear_with_its_gradient() -> None:
    loss, grad = smooth_l1(np.float32([-2.0, 0.05, 0.0]), beta=0.1)
    np.testing.assert_allclose(loss, [1.95, 0.0125, 0.0], rtol=1e-5)
    np.testing.assert_allclose(grad, [-1.0, 0.5, 0.0], rtol=1e-5)


def _toy_maps(rng: np.random.Generator) -> PhotoMaps:
    maps = [rng.random((2, 4, 4, 5)).astype(np.float32), rng.random((2, 2, 2, 6)).astype(np.float32)]
    boxes = [np.float32([[10, 10, 40, 50]]), np.float32([[20, 5, 60, 30]])]
    return PhotoMaps(maps, boxes, [np.array([1]), np.array([0])], 64, ("a", "b"), np.arange(2), np.zeros(2, int))


def _numeric_check(loss, weights: dict, grads: dict, rng: np.random.Generator, names: list[str]) -> None:
    for name in names:
        w = weights[name]
        index = tuple(int(rng.integers(0, s)) for s in w.shape)
        w[index] += 1e-4
        up = loss()
        w[index] -= 2e-4
        down = loss()
        w[index] += 1e-4
        assert (up - down) / 2e-4 == pytest.approx(grads[name][index], rel=2e-3, abs=1e-7), name


def test_the_fast_heads_gradients_are_the_losss_own() -> None:
    """Focal loss, smooth L1, the 1x1, depthwise 3x3 and output layers' backward passes, against finite differences."""
    rng = np.random.default_rng(0)
    data = _toy_maps(rng)
    head = fast.initial_head(rng, data, ("p", "q"), chosen_settings(fast.PARAMS, {"hidden": 32}))
    head.weights = {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float64) for k, v in head.weights.items()}
    targets = [fast.anchor_targets(head.anchors(), b, l) for b, l in zip(data.boxes, data.labels)]
    classes, deltas = np.stack([t[0] for t in targets]), np.stack([t[1] for t in targets])
    assert (classes > 0).sum() >= 2, "every true box claims an anchor"

    def loss() -> float:
        losses, _ = fast._step(head, [m.astype(np.float64) for m in data.maps], classes, deltas)
        return losses["class_loss"] + losses["box_loss"]

    _, grads = fast._step(head, [m.astype(np.float64) for m in data.maps], classes, deltas)
    _numeric_check(loss, head.weights, grads, rng, ["0/reduce/kernel", "0/depthwise/kernel", "0/depthwise/bias",
                                                    "0/pointwise/kernel", "1/classes/bias", "1/boxes/kernel"])


def test_the_rcnn_heads_gradients_are_the_losss_own() -> None:
    rng = np.random.default_rng(1)
    settings = chosen_settings(rcnn.PARAMS, {"hidden": 64, "pool": 2})
    head = rcnn.initial_head(rng, 3, ("p", "q"), "a", 4, settings)
    head.weights = {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float64) for k, v in head.weights.items()}
    x = rng.random((6, 12))
    kind = np.array([0, 1, 2, 0, 2, 1])
    targets = rng.normal(0, 1, (6, 4))

    def loss() -> float:
        losses, _ = rcnn._step(head, x, kind, targets, None, 0.0)
        return losses["class_loss"] + losses["box_loss"]

    _, grads = rcnn._step(head, x, kind, targets, None, 0.0)
    _numeric_check(loss, head.weights, grads, rng, ["hidden/kernel", "hidden/bias", "classes/kernel", "boxes/kernel"])


def test_a_crop_keeps_the_boxes_whose_centre_it_holds_cut_to_it_and_mirrors_them() -> None:
    boxes = np.float32([[10, 10, 50, 50], [80, 0, 120, 20]])
    cut, labels = View((20, 0, 100, 40), flip=False).boxes(boxes, np.array([0, 1]), 80)
    np.testing.assert_allclose(cut, [[0, 20, 30, 80]])  # box 0 cut at x=20 and y=40, on an 80x80 input (x1, y2)
    assert labels.tolist() == [0]
    flipped, _ = View((20, 0, 100, 40), flip=True).boxes(boxes, np.array([0, 1]), 80)
    np.testing.assert_allclose(flipped, mirrored(cut, 80))


def test_settings_are_checked_against_the_params() -> None:
    assert chosen_settings(fast.PARAMS, {"epochs": "20"})["epochs"] == 20
    with pytest.raises(BadInput):
        chosen_settings(fast.PARAMS, {"epochs": 20, "anchors": 9})
    with pytest.raises(BadInput):
        chosen_settings(rcnn.PARAMS, {"pool": 6})


# ---- real photos ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def raccoons() -> tuple:
    folder = require_shared() / RACCOON
    return read_csv(folder / "train_labels.csv").photos, read_csv(folder / "test_labels.csv").photos


@pytest.fixture(scope="module")
def base():
    require_real("mobilenet_v2_notop")
    from vision_backend.transfer.bases import MOBILENET_V2

    return MOBILENET_V2


def test_the_photo_views_are_the_same_every_time_and_keep_a_box(raccoons) -> None:
    photo = raccoons[0][3]
    first, again = views(photo, True, 4), views(photo, True, 4)
    assert first == again and len(first) == 6 and first[1].flip and not first[2].flip and first[3].flip
    for view in first[2:]:
        assert len(view.boxes(photo.boxes, np.zeros(len(photo.boxes)), 64)[0]) >= 1


def test_positives_are_the_proposals_overlapping_a_box_enough(raccoons) -> None:
    photo = raccoons[0][0]
    image = photo_image(photo)
    found = rcnn.proposals(image, 300, 240)
    labelled = rcnn.label_regions(found, photo, ("raccoon",), positive_iou=0.5)
    truth = iou(found.boxes, photo.boxes).max(1)
    positive = labelled.data["role"] == "positive"
    assert positive.any() and (~positive).any()
    assert (truth[positive] >= 0.5).all() and (truth[~positive] < 0.5).all()
    np.testing.assert_allclose(labelled.data["iou"], truth, atol=1e-6)
    assert set(np.asarray(labelled.names)[positive]) == {"raccoon"} and set(np.asarray(labelled.names)[~positive]) == {
        "background"}
    # the regression targets move each positive exactly onto its box
    deltas = np.stack([labelled.data[k] for k in ("dx", "dy", "dw", "dh")], 1)[positive]
    np.testing.assert_allclose(apply_regression(found.boxes[positive], deltas),
                               np.repeat(photo.boxes, positive.sum(), 0), atol=0.05)


@pytest.mark.slow
def test_onnx_features_equal_keras_and_never_run_keras(base, raccoons, monkeypatch) -> None:
    images = [photo_image(p) for p in raccoons[1][:6]]
    keras_maps = base.keras_feature_maps(images, base.taps)
    from vision_backend.transfer import features

    keras_pooled = features.pool(keras_maps, "layers")
    monkeypatch.setattr(type(base), "probe", lambda *_: pytest.fail("feature_maps ran the Keras base"))
    onnx_maps = base.feature_maps(images, base.taps)
    for tap, ours, theirs in zip(base.taps, onnx_maps, keras_maps):
        assert ours.shape == theirs.shape, tap
        # to 1e-4 of each map's own scale (block_12_add reaches 34; float32 across two engines differs ~5e-6 of it)
        assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max()), tap
    np.testing.assert_allclose(features.describe(base, images, "layers"), keras_pooled, atol=1e-4)
    assert base.features_graph(base.taps).is_file(), "converted once and kept under $VISION_LAB_HOME"


@pytest.fixture(scope="module")
def trained_fast(base, raccoons):
    calls: list[tuple] = []
    trained = fast.train_fast(raccoons[0][:40], ["raccoon"], base, {"epochs": 10, "crops": 1, "input_size": 256},
                              progress=lambda *step: calls.append(step))
    return trained, calls


@pytest.mark.slow
def test_the_fast_detector_learns_raccoons_from_40_photos(trained_fast, raccoons) -> None:
    trained, calls = trained_fast
    assert {c[0] for c in calls} == {"features", "training"} and calls[-1][1] == calls[-1][2]
    held_out = raccoons[1][:20]
    detector = detector_from_trained(trained)
    found = [detector.detect(photo_image(p), score_threshold=0.05) for p in held_out]
    measured = evaluate.evaluate(held_out, found, ["raccoon"])
    assert measured.map50 >= 0.4, measured.map50  # chance (a box anywhere) is near 0
    assert trained.measured(measured).meta()["ap50"] == pytest.approx(measured.map50, abs=1e-4)


@pytest.mark.slow
def test_the_exported_fast_graph_gives_the_trained_models_boxes(trained_fast, raccoons, base) -> None:
    """The one graph (base + head + decoding, raw pixels in) against the base on Keras and the numpy head."""
    trained, _ = trained_fast
    images = [photo_image(p) for p in raccoons[1][:4]]
    scores, boxes = fast.keras_reference(base, trained.head, images)
    detector = detector_from_trained(trained)
    blob = np.concatenate([detector.preprocess(i) for i in images])
    ours = detector.runtime().run(["scores", "boxes"], {"image": blob})
    np.testing.assert_allclose(ours[0], scores, atol=1e-3)
    live = (scores > 0.05) | (ours[0] > 0.05)
    assert live.any()
    assert np.abs(ours[1] - boxes)[live.any(-1)].max() <= 1.0


@pytest.mark.slow
def test_the_fast_detector_is_a_detector_through_detect_and_a_workers_engine(trained_fast, raccoons, tmp_path) -> None:
    trained, _ = trained_fast
    detector = detector_from_trained(trained, "raccoons", "Raccoons")
    assert isinstance(detector, FastDetector) and detector.group == "object detector" and detector.concurrent
    assert detector.class_names == ("raccoon",) and [p.name for p in detector.params] == ["score_threshold",
                                                                                           "iou_threshold"]
    image = photo_image(raccoons[1][0])
    shared = detector.detect(image, score_threshold=0.2)
    own = detector.detect(image, engine=detector.worker_engine(threads=1), score_threshold=0.2)
    prepared = detector.detect(image, prepared=detector.prepare(image), score_threshold=0.2)
    assert len(shared) >= 1 and shared.names[0] == "raccoon" and "ms" in shared.meta
    for other in (own, prepared):
        np.testing.assert_allclose(other.boxes, shared.boxes, atol=1e-3)
    store = LocalStore(tmp_path)
    saved = SavedModels(store.catalogue("w", "catalogue", ""), store.blobs("w", "models", ".onnx"))
    kept = saved.save("raccoons", trained.graph, trained.meta())
    back = detector_from_saved(saved.get("raccoons").read(), saved.get("raccoons").meta, "raccoons")
    assert kept.meta["kind"] == "fast" and kept.meta["photos"] == 40 and kept.meta["boxes"] >= 40
    np.testing.assert_allclose(back.detect(image, score_threshold=0.2).boxes, shared.boxes, atol=1e-3)


@pytest.mark.slow
def test_rcnn_steps_on_one_photo_and_its_exported_graph(base, raccoons) -> None:
    """Trained on 24 photos: positives really overlap, the regression moves boxes towards the truth, and the
    detector object (one graph, selective search outside) gives the training-time form's boxes."""
    settings = {"epochs": 6, "proposals": 300, "search_side": 240, "input_size": 320, "hidden": 128}
    calls: list[tuple] = []
    trained = rcnn.train_rcnn(raccoons[0][:24], ["raccoon"], base, settings, lambda *s: calls.append(s))
    assert {c[0] for c in calls} == {"proposals", "features", "training"}
    detector = detector_from_trained(trained)
    assert isinstance(detector, RcnnDetector)
    photo = raccoons[0][1]
    image = photo_image(photo)
    steps = detector.steps(image, proposals=300, score_threshold=0.3)
    before = iou(steps.scored.boxes, photo.boxes).max(1)
    after = iou(steps.regressed.boxes, photo.boxes).max(1)
    near = (before >= 0.3) & (steps.scored.scores > 0.5)
    assert near.sum() >= 3 and after[near].mean() > before[near].mean(), (before[near].mean(), after[near].mean())
    np.testing.assert_allclose(steps.regressed.data["proposal"], steps.scored.boxes)
    assert len(steps.detections) >= 1 and iou(steps.detections.boxes[:1], photo.boxes).max() >= 0.5
    reference = rcnn.steps(rcnn.numpy_run(base, trained.head), image, trained.classes, trained.head.size, 300, 240,
                           0.3, 0.3)
    np.testing.assert_allclose(reference.regressed.boxes, steps.regressed.boxes, atol=0.5)
    np.testing.assert_allclose(reference.scored.scores, steps.scored.scores, atol=1e-3)


def test_training_stops_when_asked_before_there_is_a_model(raccoons) -> None:
    class Base:  # never reached: the stop comes first
        name, taps, features_key = "none", ("a", "b"), "none"

        def feature_maps(self, *_):
            pytest.fail("the base ran after a stop")

    with pytest.raises(Stopped):
        fast.train_fast(raccoons[0][:4], ["raccoon"], Base(), {"epochs": 5}, should_stop=lambda: True)
    with pytest.raises(BadInput):
        fast.train_fast(raccoons[0][:4], ["dog"], Base(), {"epochs": 5})
