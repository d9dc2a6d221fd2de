"""ByteTrack, counting lines, zones and trails on hand-made sequences of boxes, where the truth is known.

Each sequence is a list of frames, each frame a list of ``(name, (cx, cy), score)`` boxes (40x80 pixels unless
said), so what a test means is readable from the test itself.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from vision_backend import drawing
from vision_backend.detections import Detections
from vision_backend.errors import SettingError
from vision_backend.tracking import (
    PARAMS,
    ByteTrack,
    LineCounter,
    PolygonZone,
    Trails,
    anchor_points,
    kalman,
)
from vision_backend.tracking.zones import inside_polygon

CLASSES = ("person", "car")


def frame(*objects: tuple, size: tuple[float, float] = (40, 80)) -> Detections:
    """Boxes from ``(name, (cx, cy), score)`` tuples (optionally ``(name, (cx, cy), score, (w, h))``)."""
    boxes, scores, labels = [], [], []
    for obj in objects:
        name, (cx, cy), score = obj[:3]
        w, h = obj[3] if len(obj) > 3 else size
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        scores.append(score)
        labels.append(CLASSES.index(name))
    return Detections(np.asarray(boxes, float).reshape(-1, 4), scores, labels, CLASSES)


def run(tracker: ByteTrack, frames: list[Detections]) -> list[dict[int, np.ndarray]]:
    """Each frame's output as {track id: box centre}."""
    out = []
    for found in frames:
        tracked = tracker.update(found)
        assert tracked.tracker_id is not None and (tracked.tracker_id > 0).all(), "only rows with a track come out"
        centres = (tracked.boxes[:, :2] + tracked.boxes[:, 2:]) / 2
        out.append({int(i): c for i, c in zip(tracked.tracker_id, centres)})
    return out


def nearest_id(seen: dict[int, np.ndarray], point: tuple[float, float]) -> int:
    return min(seen, key=lambda i: float(np.hypot(*(seen[i] - point))))


# ---- ByteTrack ----------------------------------------------------------------------------------------------
def test_two_objects_crossing_paths_keep_their_ids() -> None:
    """A walks right, B walks left, 20 px lower; they overlap by IoU up to 0.6 as they pass."""
    frames = [frame(("person", (100 + 8 * t, 140), 0.9), ("person", (420 - 8 * t, 160), 0.9)) for t in range(41)]
    out = run(ByteTrack(), frames)
    a, b = nearest_id(out[0], (100, 140)), nearest_id(out[0], (420, 160))
    assert a != b
    for t, seen in enumerate(out):
        assert set(seen) == {a, b}, f"frame {t}: {sorted(seen)}"
        assert abs(seen[a][0] - (100 + 8 * t)) < 1 and abs(seen[b][0] - (420 - 8 * t)) < 1, f"ids swapped at {t}"


def test_an_object_hidden_for_a_few_frames_gets_its_id_back() -> None:
    """B passes behind A (missing for 6 frames while they overlap), then reappears: the Kalman filter carried its
    box on at its speed, so it takes its old id, not a new one and not A's."""
    frames = []
    for t in range(40):
        a = ("person", (260, 150), 0.9)
        b = ("person", (100 + 8 * t, 160), 0.9)
        frames.append(frame(a) if 17 <= t < 23 else frame(a, b))
    out = run(ByteTrack(), frames)
    b_id = nearest_id(out[0], (100, 160))
    a_id = nearest_id(out[0], (260, 150))
    for t in range(17, 23):
        assert set(out[t]) == {a_id}, "a hidden object gives no row"
    assert set(out[23]) == {a_id, b_id} and abs(out[23][b_id][0] - (100 + 8 * 23)) < 1
    assert max(max(seen) for seen in out) == 2, "no new id was made"


def test_lost_frames_is_how_long_a_lost_track_waits() -> None:
    frames = [frame() if 5 <= t < 12 else frame(("car", (100 + 5 * t, 200), 0.9)) for t in range(20)]
    patient = run(ByteTrack(lost_frames=30), frames)
    hasty = run(ByteTrack(lost_frames=3), frames)
    assert set(patient[12]) == set(patient[0]) == {1}, "seven missing frames inside lost_frames: same id"
    assert set(hasty[0]) == {1} and hasty[12] == {}, "past lost_frames the old track is gone; the new one unconfirmed"
    assert set(hasty[13]) == {2}, "the returning object is a new track, confirmed on its second frame"


def test_a_missed_frame_leaves_no_row_and_no_new_id() -> None:
    frames = [frame() if t == 6 else frame(("car", (50 + 10 * t, 100), 0.8)) for t in range(12)]
    out = run(ByteTrack(), frames)
    assert out[6] == {}
    assert all(set(seen) == {1} for t, seen in enumerate(out) if t != 6)


def test_a_weak_box_keeps_a_track_alive_but_never_starts_one() -> None:
    """ByteTrack's second stage: a box scoring 0.2 (under the 0.35 track threshold, over the 0.1 low one)
    continues a track; without that stage (low threshold = track threshold) the track is lost and comes back
    under a new id."""
    scores = [0.9] * 5 + [0.2] * 10 + [0.9] * 5
    frames = [frame(("car", (100 + 6 * t, 200), s)) for t, s in enumerate(scores)]
    byte = run(ByteTrack(lost_frames=5), frames)
    assert all(set(seen) == {1} for seen in byte), "weak boxes kept track 1 through frames 5-14"
    plain = run(ByteTrack(lost_frames=5, low_threshold=0.35), frames)
    assert all(seen == {} for seen in plain[5:16]) and set(plain[16]) == {2}
    alone = run(ByteTrack(), [frame(("car", (300, 200), 0.2))] * 10)
    assert all(seen == {} for seen in alone), "weak boxes alone never start a track"


def test_a_one_frame_false_positive_never_gets_an_id() -> None:
    frames = [frame(("person", (100, 100), 0.9))]
    frames += [frame(("person", (100, 100), 0.9), ("car", (400, 300), 0.9)) if t == 3 else
               frame(("person", (100, 100), 0.9)) for t in range(1, 8)]
    frames += [frame(("person", (100, 100), 0.9), ("car", (500, 300), 0.9))] * 3
    out = run(ByteTrack(), frames)
    assert all(set(seen) == {1} for seen in out[:8]), "the one-frame car is never shown"
    assert out[8] == {1: out[8][1]} and set(out[9]) == {1, 2}, "a lasting car: confirmed on its second frame, id 2"


def test_class_aware_a_car_track_never_takes_a_person_box() -> None:
    """A car stops being detected and a person box appears where it was: class-aware, the person is a new
    track; not class-aware, the box continues the car's track and keeps the car's label (its vote)."""
    frames = [frame(("car", (200 + 4 * t, 200), 0.9)) for t in range(6)]
    frames += [frame(("person", (200 + 4 * t, 200), 0.9)) for t in range(6, 10)]
    aware = ByteTrack()
    rows = [aware.update(f) for f in frames]
    assert rows[5].tracker_id.tolist() == [1] and rows[6].tracker_id.tolist() == []
    assert rows[7].tracker_id.tolist() == [2] and rows[7].names == ["person"]
    blind = ByteTrack(class_aware=False)
    rows = [blind.update(f) for f in frames]
    assert all(r.tracker_id.tolist() == [1] for r in rows), "one track through the class change"
    assert rows[-1].names == ["car"], "six frames as a car outvote four as a person"


def test_without_class_awareness_one_object_with_two_class_boxes_is_one_track() -> None:
    """Per-class NMS leaves one box per class on an object the detector is unsure of; merged, it is one track."""
    frames = [frame(("car", (300, 200 + 5 * t), 0.6), ("person", (302, 201 + 5 * t), 0.5)) for t in range(8)]
    assert all(len(seen) == 1 for seen in run(ByteTrack(class_aware=False), frames))
    assert all(len(seen) == 2 for seen in run(ByteTrack(), frames)), "class-aware: two classes, two tracks"


def test_the_kalman_filter_learns_a_constant_velocity() -> None:
    mean, covariance = kalman.initiate(kalman.xyxy_to_xyah(np.array([[0, 0, 40, 80]])))
    for t in range(1, 15):
        mean, covariance = kalman.predict(mean, covariance)
        mean, covariance = kalman.update(mean, covariance, kalman.xyxy_to_xyah(np.array([[6 * t, 0, 6 * t + 40, 80]])))
    assert mean[0, 4] == pytest.approx(6, abs=0.3) and abs(mean[0, 5]) < 0.3
    ahead, _ = kalman.predict(mean, covariance)
    np.testing.assert_allclose(kalman.xyah_to_xyxy(ahead)[0], [90, 0, 130, 80], atol=1.5)


def test_parameters_are_data_and_settings_are_checked() -> None:
    names = [p.name for p in PARAMS]
    assert {"track_threshold", "low_threshold", "match_iou", "lost_frames", "class_aware"} <= set(names)
    tracker = ByteTrack.from_settings({"lost_frames": "12", "class_aware": "false", "match_iou": 0.3})
    assert (tracker.lost_frames, tracker.class_aware, tracker.match_iou) == (12, False, 0.3)
    with pytest.raises(SettingError, match="no setting"):
        ByteTrack.from_settings({"buffer": 3})
    with pytest.raises(SettingError, match="between"):
        ByteTrack.from_settings({"match_iou": 2})


def crowd(count: int, frames: int, seed: int = 0) -> list[Detections]:
    """``count`` boxes of three classes drifting across a 1920x1080 frame, with jitter and random scores."""
    rng = np.random.default_rng(seed)
    position = rng.uniform([0, 0], [1800, 1000], (count, 2))
    velocity, size = rng.normal(0, 4, (count, 2)), rng.uniform(30, 120, (count, 2))
    labels = rng.integers(0, 2, count)
    out = []
    for _ in range(frames):
        position += velocity
        centre = position + rng.normal(0, 1.5, (count, 2))
        out.append(Detections(np.c_[centre - size / 2, centre + size / 2], rng.uniform(0.05, 0.95, count), labels,
                              CLASSES))
    return out


@pytest.mark.parametrize("class_aware", [True, False])
def test_a_frame_of_50_boxes_takes_at_most_2_ms(class_aware: bool) -> None:
    frames = crowd(50, 260)
    medians = []
    for _ in range(3):  # the best of three runs: the machine is shared
        tracker, times = ByteTrack(class_aware=class_aware), []
        for found in frames:
            started = time.perf_counter()
            tracker.update(found)
            times.append(time.perf_counter() - started)
        medians.append(float(np.median(times[60:])) * 1000)
    assert len(tracker.tracks) >= 40, "the crowd was tracked, not dropped"
    assert min(medians) <= 2.0, medians


# ---- counting line ------------------------------------------------------------------------------------------
def tracked_frame(*objects: tuple) -> Detections:
    """Tracked rows from ``(id, name, (cx, cy))``: 40x80 boxes, as a tracker would give them."""
    found = frame(*((name, centre, 0.9) for _, name, centre in objects))
    return found.with_ids([i for i, _, _ in objects])


def count(counter: LineCounter, path: list[tuple]) -> None:
    for t, objects in enumerate(path):
        counter.update(tracked_frame(*objects), time_s=t / 10, frame=t)


def test_a_line_counts_each_way_once_per_track_whatever_the_jitter() -> None:
    """A horizontal line at y = 200, drawn left to right: ``in`` is downwards. Car 1 drives down across it,
    jitters on it (its centre within the dead band) for 10 frames, backs up across it and drives down again;
    person 2 walks up across it. Anchor: centre."""
    counter = LineCounter((0, 200, 640, 200), anchor="center")
    car = [150 + 10 * t for t in range(8)]  # 150 .. 220: crosses downwards
    car += [200 + (5 if t % 2 else -5) for t in range(10)]  # on the line, +-5 px (band: 0.1 x 80 = 8 px)
    car += [230 - 10 * t for t in range(8)]  # 230 .. 160: backs up across it
    car += [170 + 10 * t for t in range(8)]  # and down again: already counted that way
    person = [260 - 8 * t for t in range(len(car))]
    count(counter, [[(1, "car", (100, y)), (2, "person", (400, p))] for y, p in zip(car, person)])
    assert dict(counter.counts_in) == {"car": 1}
    assert dict(counter.counts_out) == {"car": 1, "person": 1}
    assert [(c.id, c.direction) for c in counter.crossings] == [(1, "in"), (2, "out"), (1, "out")]
    first = counter.crossings[0]
    assert first.frame == 6 and first.time_s == pytest.approx(0.6), "counted when the car was 10 px past the line"
    assert counter.summary()["in"] == 1 and counter.summary()["out"] == 2


def test_jitter_across_the_line_inside_the_dead_band_never_counts() -> None:
    counter = LineCounter((0, 200, 640, 200), anchor="center", margin=0.1)
    count(counter, [[(7, "car", (100, 200 + (6 if t % 2 else -6)))] for t in range(30)])
    assert counter.total_in == counter.total_out == 0
    bare = LineCounter((0, 200, 640, 200), anchor="center", margin=0.0)  # no dead band: each jitter crosses
    count(bare, [[(7, "car", (100, 200 + (6 if t % 2 else -6)))] for t in range(30)])
    assert bare.total_in == bare.total_out == 1, "even without the band a track counts once each way"


def test_going_round_the_end_of_the_line_is_no_crossing_and_anchors_differ() -> None:
    counter = LineCounter((100, 200, 300, 200), anchor="center")
    path = [(50, 150)] * 3 + [(50, 250)] * 3 + [(150, 250)] * 3  # down beside the segment, then under it
    count(counter, [[(3, "person", p)] for p in path])
    assert counter.total_in == 0
    feet = LineCounter((0, 200, 640, 200), anchor="bottom_center")
    count(feet, [[(4, "person", (100, y))] for y in (140, 150, 170)])  # centre above, feet 10 px past the line
    assert feet.total_in == 1, "the bottom centre crossed while the centre had not"
    np.testing.assert_allclose(anchor_points(tracked_frame((1, "car", (100, 100))), "bottom_center"), [[100, 140]])


def test_a_line_needs_tracks() -> None:
    with pytest.raises(ValueError, match="tracker"):
        LineCounter((0, 0, 10, 10)).update(frame(("car", (5, 5), 0.9)), 0.0)
    with pytest.raises(ValueError):
        LineCounter((5, 5, 5, 5))


# ---- zones and trails ---------------------------------------------------------------------------------------
SQUARE = [(100, 100), (300, 100), (300, 300), (100, 300)]


def test_inside_polygon_on_a_concave_shape() -> None:
    l_shape = [(0, 0), (100, 0), (100, 40), (40, 40), (40, 100), (0, 100)]
    points = [(20, 20), (70, 20), (20, 70), (70, 70), (150, 20), (-5, 50)]
    assert inside_polygon(np.array(points), np.array(l_shape)).tolist() == [True, True, True, False, False, False]


def test_a_zone_counts_occupancy_entries_and_dwell_time_from_frame_times() -> None:
    """Frames at uneven times. Car 1 is inside from t=1.0 to t=3.5, missed by the tracker at t=2.0 (its time
    still counts), then leaves; person 2 is inside from t=2.0 to the end; car 3 stays outside."""
    zone = PolygonZone(SQUARE, anchor="center", name="bay")
    times = [0.0, 1.0, 1.5, 2.0, 3.5, 4.0, 5.25]
    car = [(50, 200), (150, 200), (200, 200), None, (250, 200), (400, 200), (450, 200)]
    person = [None, None, None, (200, 150), (200, 160), (210, 170), (220, 170)]
    occupancy = []
    for t, c, p in zip(times, car, person):
        objects = [(3, "car", (500, 500))]
        objects += [(1, "car", c)] if c else []
        objects += [(2, "person", p)] if p else []
        zone.update(tracked_frame(*objects), t)
        occupancy.append(dict(zone.occupancy))
    assert occupancy[2] == {"car": 1} and occupancy[3] == {"person": 1} and occupancy[4] == {"car": 1, "person": 1}
    assert occupancy[-1] == {"person": 1} and zone.inside_ids == {2}
    assert dict(zone.entries) == {"car": 1, "person": 1}
    assert zone.dwell[1] == pytest.approx(3.5 - 1.0) and zone.dwell[2] == pytest.approx(5.25 - 2.0)
    assert 3 not in zone.dwell
    assert zone.summary()["dwell_s"] == {1: 2.5, 2: 3.25}


def test_a_track_that_leaves_and_comes_back_is_one_entry_and_its_time_outside_does_not_count() -> None:
    zone = PolygonZone(SQUARE, anchor="center")
    path = [(200, 200), (200, 200), (500, 200), (500, 200), (200, 200), (200, 200)]
    for t, point in enumerate(path):
        zone.update(tracked_frame((5, "person", point)), float(t))
    assert dict(zone.entries) == {"person": 1}
    assert zone.dwell[5] == pytest.approx(2.0), "1 s inside, out for two frames, 1 s inside again"


def test_trails_keep_the_last_points_and_forget_old_tracks() -> None:
    trails = Trails(length=5, anchor="center", forget_frames=3)
    for t in range(10):
        trails.update(tracked_frame((1, "car", (10 * t, 50))) if t < 4 else
                      tracked_frame((2, "car", (10 * t, 90))))
    paths = trails.points()
    assert list(paths) == [2], "track 1, unseen for 6 frames, is forgotten"
    np.testing.assert_allclose(paths[2][:, 0], [50, 60, 70, 80, 90])


def test_drawing_tracks_trails_a_line_zones_and_a_panel_keeps_the_frame_size() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    tracked = tracked_frame((1, "car", (100, 120)), (2, "person", (220, 120)))
    trails = {1: np.array([[100, 200], [100, 160], [100, 120]]), 2: np.array([[220, 40], [220, 120]])}
    out = drawing.draw_tracks(image, tracked, trails)
    assert out.shape == image.shape and not np.array_equal(out, image)
    for track, (x, y) in ((1, (100, 180)), (2, (220, 50))):  # between two points of its trail, off its box
        row = out[y, x - 3:x + 4].astype(int)
        assert np.abs(row - drawing.colour(track)).sum(1).min() < 40, "a trail in its track's colour"
    lined = drawing.draw_counting_line(image, (0, 200, 320, 200), 3, 1)
    assert tuple(lined[200, 300]) == drawing.LINE_RGB
    zoned = drawing.draw_zone(image, np.array(SQUARE) * 0.5, "bay: 2")
    assert zoned[100, 100].tolist() != [90, 90, 90] and zoned[10, 300].tolist() == [90, 90, 90]
    paneled = drawing.draw_panel(image, ["car: in 3 | out 1"])
    assert paneled.shape == image.shape and paneled[8:20, -60:].mean() < 90
    assert (image == 90).all(), "every helper returns a new image"
