"""The one structure for what detectors find, and the box geometry every detector shares."""

from __future__ import annotations

import numpy as np
import pytest

from vision_backend.boxes import area, batched_nms, iou, match, non_max_suppression
from vision_backend.detections import Detections


def test_detections_filter_every_array_together() -> None:
    found = Detections(np.arange(12).reshape(3, 4), [0.9, 0.2, 0.6], [0, 0, 0],
                       landmarks=np.arange(30).reshape(3, 5, 2))
    kept = found[found.scores > 0.5]
    assert len(kept) == 2 and kept.scores.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_array_equal(kept.landmarks[1], found.landmarks[2])
    np.testing.assert_array_equal(found.scaled(2).boxes, found.boxes * 2)
    with pytest.raises(ValueError):
        Detections(np.zeros((2, 4)), [1, 1], [0, 0], landmarks=np.zeros((3, 5, 2)))


def test_filtered_copies_do_not_share_meta() -> None:
    found = Detections(np.zeros((2, 4)), [0.9, 0.1], [0, 0], meta={"ms": 5.0})
    for copy in (found[[0]], found.scaled(2), found.clipped(10, 10), found.sorted()):
        copy.meta["ms"] = 99.0
        assert found.meta["ms"] == 5.0, "changing a copy's meta changed the original's"


def test_finite_drops_rows_with_nan_or_inf() -> None:
    boxes = np.array([[0, 0, 5, 5], [np.nan, 0, 5, 5], [0, 0, np.inf, 5], [1, 1, 2, 2]], np.float32)
    found = Detections(boxes, [0.9, 0.8, 0.7, np.nan], [0, 0, 0, 0], landmarks=np.zeros((4, 5, 2)))
    assert len(found.finite()) == 1
    found.landmarks[0, 2, 1] = np.nan
    assert len(found.finite()) == 0


def test_iou_and_nms() -> None:
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou(a, b)[0], [50 / 150, 0.0, 1.0])
    assert area(np.array([[0, 0, -1, 5]]))[0] == 0, "an inverted box has no area"
    keep = non_max_suppression(np.r_[a, b], [0.9, 0.8, 0.7, 0.6], 0.5)
    assert keep.tolist() == [0, 1, 2], "the identical box is suppressed; a 0.33 overlap is not"


def test_batched_nms_keeps_other_classes_even_with_negative_coordinates() -> None:
    boxes = np.array([[-50, -50, 10, 10], [-48, -50, 12, 10], [-50, -50, 10, 10]], np.float64)
    keep = batched_nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.5)
    assert sorted(keep.tolist()) == [0, 2], "box 1 overlaps box 0 (same class); box 2 is another class"


def test_match_is_one_to_one() -> None:
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10]])
    predicted = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 0, 30, 10]])
    assigned, ious = match(predicted, truth, 0.5)
    assert assigned.tolist() == [0, -1, 1] and ious[0] == 1.0


def test_boxes_without_area_are_dropped() -> None:
    found = Detections(np.array([[32, 0, 32, 0], [0, 0, 5, 5], [3, 3, 9, 3]]), [0.9, 0.8, 0.7], [0, 0, 0])
    assert found.with_area().boxes.tolist() == [[0, 0, 5, 5]]
