"""The room harness (``tests/room_tools.py``) kept working: visitors speaking Streamlit's websocket protocol to a
real ``streamlit run app.py``, and the arithmetic its figures use."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

import room_tools
from browser_tools import streamlit_server
from conftest import require_real
from room_tools import FACE_SLIDERS, Plan, Slider, Values, percentile


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.5
    assert percentile([1.0, 2.0], 0.95) == pytest.approx(1.95)
    assert percentile([7.0], 0.99) == 7.0


def test_fresh_values_come_back_only_after_every_other_one() -> None:
    """The MTCNN room's presses are model runs only if no value repeats within the result cache's 32 entries."""
    slider = Slider("$$ID-abc-fd:mtcnn:min_face_size", "Min face size (px)", 8, 200, 1, 20, "frag")
    assert slider.key == "fd:mtcnn:min_face_size" and len(slider.values()) == 193
    values = Values(Plan(visitors=1, seconds=1, keys=(slider.key,), values="fresh", span=(8, 60)))
    asked = [values.next(slider, random.Random(0)) for _ in range(53 * 2)]
    assert sorted(asked[:53]) == list(range(8, 61)), "the first round asks each value of the span once"
    assert asked[53:] == asked[:53], "then the same order again: each value 53 presses after its last time"


def caption_count(captions: list[str], title: str) -> int:
    return int(re.match(rf"{re.escape(title)}: (\d+) face", next(c for c in reversed(captions)
                                                                      if c.startswith(title))).group(1))


async def _press_and_read(url: str) -> list[int]:
    """A visitor loads the page and moves YuNet's score threshold up to 1 and back: the count of faces follows."""
    visitor = room_tools.Visitor(url, "face_detection", timeout_s=240)
    try:
        load = await visitor.open()
        assert load.errors == [] and load.images, load.errors
        counts = [caption_count(load.captions, "YuNet (CNN)")]
        for value in (1.0, 0.7):
            run = await visitor.move("fd:yunet:score_threshold", value)
            assert run.errors == [] and len(run.images) == 1, run.errors
            assert [c for c in run.captions if c.startswith("YuNet")] == run.captions, "only YuNet's part reran"
            counts.append(caption_count(run.captions, "YuNet (CNN)"))
        return counts
    finally:
        await visitor.close()


@pytest.mark.slow
def test_three_protocol_visitors_move_every_detector_s_slider_without_errors(tmp_path) -> None:
    require_real("yunet")
    require_real("photos")
    with streamlit_server(tmp_path / "home", tmp_path) as server:
        faces, strict, back = asyncio.run(_press_and_read(server.url))
        assert strict < faces == back, "a threshold of 1 keeps fewer faces; the default's back, its faces too"
        plan = Plan(visitors=3, seconds=20, keys=FACE_SLIDERS, arrive_s=2, timeout_s=120)
        result = room_tools.room(server.url, plan, server.process.pid)
    assert result.errors == []
    assert len(result.loads) == 3 and result.visitors_done == 3
    assert {key for key, _, _ in result.reruns} == set(FACE_SLIDERS), "each detector's slider in turn"
    assert len(result.reruns) >= 12 and max(result.rerun_times()) < 60
    assert room_tools.caption_times(result.captions, "MTCNN"), "MTCNN's caption gives its own time and the wait"
    assert result.server.peak_rss_mb() > 100 and result.cores() > 0
