"""A room on one server (issue 28): protocol-level visitors on Face detection, each moving a slider.

``room``: 30 visitors (``tests/room_tools.py``: Streamlit's own websocket protocol, as a browser speaks it) arrive
over 10 s, load ``/face_detection`` and then every 3 s move a slider, each detector's in turn (Viola-Jones's
minNeighbors, HOG's smallest face, MTCNN's min face size, YuNet's score threshold) to a random value of its range,
for 5 minutes (``--quick``: 45 s). ``visitors_30_slider_rerun_p50/p95/p99_s``: press to ``script_finished``;
``_shown_p95_s`` adds fetching the run's images; ``_initial_load_p95_s`` connect to the first finished run;
``_errors``: exception deltas, error boxes (a busy model's included), time-outs (60 s) and broken connections;
``_server_rss_mb`` the server's peak RSS, ``_server_cpu_cores`` its CPU seconds over wall seconds while the whole
room was in (``/proc`` of its pid). ``room_check_*``: 10 protocol visitors and 2 Debian Chromium visitors doing the
same at the same time for 60 s, each side's rerun p50/p95 (Chromium's from the key press on the slider's thumb to
the end of the run it caused, so its 150-300 ms of slider debounce and drawing are in it).

``mtcnn_room``: 10 visitors pressing MTCNN's min face size again as soon as each answer is shown (0.2 s),
each press a value no press asked for before while the range lasts (so each answer is a model run, not the
result cache), 60 s (``--quick``: 30 s). ``mtcnn_answers_per_s_10_visitors``: presses answered per second while
all ten were in; ``server_cores_used_10_visitors``: the server's CPU over that time.

Every figure also has the machine's 1-minute load average beside it (``*_machine_load``): the VM is shared.

python bench/_room.py [--quick] [--only room,mtcnn,check]
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))
import browser_tools  # noqa: E402
import room_tools  # noqa: E402
from room_tools import FACE_SLIDERS, Plan, percentile  # noqa: E402

MTCNN_SLIDER = "fd:mtcnn:min_face_size"
MTCNN_SPAN = (8, 60)
"""The min face sizes the MTCNN room asks for: the small faces a group photo needs, where MTCNN's pyramid does the
most work (the default, 20, sits inside; 60 and up skip most levels and would flatter the figure)."""


@contextlib.contextmanager
def served(work: Path) -> Iterator[browser_tools.Server]:
    """``streamlit run app.py`` on 127.0.0.1 with a home of its own, its engines loaded before the room comes in
    (a cold start is ``bench/reliability.py``'s figure, not the room's); stopped after."""
    home = Path(tempfile.mkdtemp(prefix="room_home_", dir=work))
    with browser_tools.streamlit_server(home, work) as server:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            first = room_tools.room(server.url, Plan(visitors=1, seconds=0, keys=(), arrive_s=0, timeout_s=240))
            if first.loads and not any("still loading" in c for c in first.captions):
                break
            time.sleep(2)
        yield server


def load_now() -> float:
    return os.getloadavg()[0]


def record_room(bench: Bench, stem: str, result: room_tools.Room, load: float) -> None:
    """A room's figures under ``stem``: rerun and load percentiles, errors, the server's memory and CPU."""
    reruns = result.rerun_times()
    for share in (0.5, 0.95, 0.99):
        bench.record(f"{stem}_slider_rerun_p{round(share * 100)}_s", percentile(reruns, share), "s")
    bench.record(f"{stem}_slider_shown_p95_s", percentile(result.shown, 0.95), "s")
    bench.record(f"{stem}_initial_load_p50_s", percentile(result.loads, 0.5), "s")
    bench.record(f"{stem}_initial_load_p95_s", percentile(result.loads, 0.95), "s")
    bench.record(f"{stem}_presses", len(reruns), "presses")
    bench.record(f"{stem}_mtcnn_rerun_p95_s", percentile(result.rerun_times(MTCNN_SLIDER), 0.95), "s")
    bench.record(f"{stem}_errors", len(result.errors), "errors")
    bench.record(f"{stem}_server_rss_mb", result.server.peak_rss_mb(), "MB")
    bench.record(f"{stem}_server_cpu_cores", result.cores(), "cores")
    bench.record(f"{stem}_machine_load", load, "load average (1 min) before the room")
    for error in result.errors[:10]:
        print("  ", error)


def room(bench: Bench, work: Path) -> None:
    """30 visitors moving each detector's slider in turn every 3 s: the room's rerun times, errors, RSS, CPU."""
    plan = Plan(visitors=30, seconds=bench.repeats(300, 45), keys=FACE_SLIDERS)
    with served(work) as server:
        load = load_now()
        result = room_tools.room(server.url, plan, server.process.pid)
        record_room(bench, "visitors_30", result, load)


def mtcnn_room(bench: Bench, work: Path) -> None:
    """10 visitors pressing MTCNN's slider as soon as each answer shows, every press a fresh value."""
    plan = Plan(visitors=10, seconds=bench.repeats(60, 30), keys=(MTCNN_SLIDER,), every_s=0.0, values="fresh",
                span=MTCNN_SPAN)
    with served(work) as server:
        load = load_now()
        result = room_tools.room(server.url, plan, server.process.pid)
    bench.record("mtcnn_answers_per_s_10_visitors", result.answers_per_s(), "answers/s")
    bench.record("server_cores_used_10_visitors", result.cores(), "cores")
    bench.record("mtcnn_10_visitors_rerun_p50_s", percentile(result.rerun_times(), 0.5), "s")
    bench.record("mtcnn_10_visitors_errors", len(result.errors), "errors")
    bench.record("mtcnn_10_visitors_machine_load", load, "load average (1 min) before the room")
    for error in result.errors[:10]:
        print("  ", error)


def browser_check(bench: Bench, work: Path) -> None:
    """2 Chromium visitors beside 10 protocol visitors, the same presses: does the protocol's time match a browser's?"""
    plan = Plan(visitors=10, seconds=bench.repeats(60, 30), keys=FACE_SLIDERS)
    with served(work) as server:
        load = load_now()
        protocol, browsers = room_tools.room_with_browsers(server.url, plan, 2, server.process.pid)
    for side, result in (("protocol", protocol), ("chromium", browsers)):
        bench.record(f"room_check_{side}_rerun_p50_s", percentile(result.rerun_times(), 0.5), "s")
        bench.record(f"room_check_{side}_rerun_p95_s", percentile(result.rerun_times(), 0.95), "s")
        bench.record(f"room_check_{side}_errors", len(result.errors), "errors")
    bench.record("room_check_chromium_press_to_done_p50_s", percentile(browsers.shown, 0.5), "s")
    bench.record("room_check_chromium_press_to_done_p95_s", percentile(browsers.shown, 0.95), "s")
    bench.record("room_check_machine_load", load, "load average (1 min) before the room")
    for error in (protocol.errors + browsers.errors)[:10]:
        print("  ", error)


PARTS = {"room": room, "mtcnn": mtcnn_room, "check": browser_check}


def main() -> None:
    bench = Bench("room", __doc__, extra=lambda parser: parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}"))
    with tempfile.TemporaryDirectory(prefix="room_") as work:
        for part in bench.args.only.split(","):
            PARTS[part.strip()](bench, Path(work))


if __name__ == "__main__":
    main()
