"""A room of visitors that speak Streamlit's own websocket protocol to ``streamlit run app.py``.

A browser on this 2-core machine eats the CPU it means to measure (one Chromium per visitor), so a visitor here is
what a browser is to the server and nothing more: a websocket on ``/_stcore/stream`` that sends ``BackMsg``
protobufs (``rerun_script`` with a ``ClientState``: the page's name or script hash, the widgets' states and, for a
widget inside an ``st.fragment``, that fragment's id) and reads ``ForwardMsg`` ones (``new_session``, ``delta``,
``script_finished``), fetching the images the deltas point to as a browser does. Widget ids are taken from the
deltas the server sent (a keyed widget's id ends with its key), as the browser takes them.

Streamlit's own load tests (e2e_playwright/load_testing, streamlit#14470) measure each session's initial load and
rerun times (p50/p95/p99) and the server's RSS and CPU; so does this, from ``/proc`` of the server's pid.
Used by ``bench/_room.py`` (the room's figures) and ``tests/test_room.py`` (the harness kept working).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
"""A run the browser shows as finished (``FINISHED_EARLY_FOR_RERUN``: another run follows at once)."""
CLOSED = -1
"""Put in the queue of finished runs when the websocket closes, so a waiting press ends."""
ERROR_TEXTS = ("Something went wrong", "Traceback", "is busy")


@dataclass
class Slider:
    """A slider as the deltas describe it: its id (ending with its key), range and the fragment it sits in."""

    id: str
    label: str
    low: float
    high: float
    step: float
    value: float
    fragment_id: str

    @property
    def key(self) -> str:
        return self.id.split("-", 2)[-1] if self.id.startswith("$$ID-") else self.id

    def values(self) -> list[float]:
        count = int(round((self.high - self.low) / self.step)) + 1
        return [round(self.low + i * self.step, 6) for i in range(count)]


@dataclass
class Run:
    """One script run as a visitor saw it: until ``script_finished``, and until its images had arrived."""

    seconds: float = 0.0
    shown_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    timed_out: bool = False


class Visitor:
    """One browser tab's worth of protocol: ``await open()``, then ``await move(key, value)`` per press."""

    def __init__(self, base_url: str, page: str, timeout_s: float = 60.0):
        self.base_url, self.page, self.timeout_s = base_url.rstrip("/"), page, timeout_s
        self.sliders: dict[str, Slider] = {}
        self.states: dict[str, WidgetState] = {}
        self.page_hash = ""
        self._finished: asyncio.Queue[int] = asyncio.Queue()
        self._run = Run()
        self._ws: Any = None
        self._reader: asyncio.Task | None = None
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)

    async def open(self) -> Run:
        """Connect and load the page as a browser opening ``/<page>`` does; the run's time includes connecting."""
        started = time.perf_counter()
        ws_url = self.base_url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout_s)
        self._reader = asyncio.create_task(self._read())
        message = BackMsg()
        message.rerun_script.page_name = self.page
        message.rerun_script.query_string = ""
        return await self._request(message, started)

    async def move(self, key: str, value: float) -> Run:
        """Set the slider whose key is ``key`` to ``value`` and wait for the run it causes, as a drag's release."""
        slider = self.sliders[key]
        state = WidgetState(id=slider.id)
        state.double_array_value.data.append(value)
        self.states[slider.id] = state
        message = BackMsg()
        message.rerun_script.page_script_hash = self.page_hash
        message.rerun_script.fragment_id = slider.fragment_id
        message.rerun_script.widget_states.widgets.extend(self.states.values())
        return await self._request(message, time.perf_counter())

    async def _request(self, message: BackMsg, started: float) -> Run:
        self._run = run = Run()
        while not self._finished.empty():
            self._finished.get_nowait()
        await self._ws.send(message.SerializeToString())
        try:
            status = await asyncio.wait_for(self._finished.get(), self.timeout_s)
        except asyncio.TimeoutError:
            run.timed_out = True
            run.errors.append(f"no script_finished within {self.timeout_s:.0f} s")
            status = await self._finished.get()  # the run still ends (or the room's own deadline cancels the wait)
        if status == CLOSED:
            raise ConnectionError("the server closed the websocket")
        run.seconds = time.perf_counter() - started
        await self._fetch_images(run)
        run.shown_seconds = time.perf_counter() - started
        return run

    async def _fetch_images(self, run: Run) -> None:
        """The run's images fetched as the browser does (each ``st.image`` is a URL the server serves)."""
        answers = await asyncio.gather(*(self._http.get(url) for url in run.images), return_exceptions=True)
        for url, answer in zip(run.images, answers):
            status = getattr(answer, "status_code", None)
            if status != 200:
                run.errors.append(f"image {url}: {status or type(answer).__name__}")

    async def _read(self) -> None:
        """Every ForwardMsg, as it comes: widgets and errors noted, ``script_finished`` handed to the waiter."""
        try:
            async for data in self._ws:
                self._message(data)
        except ConnectionClosed:
            pass
        finally:
            self._finished.put_nowait(CLOSED)

    def _message(self, data: bytes) -> None:
        message = ForwardMsg()
        message.ParseFromString(data)
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self.page_hash = message.new_session.page_script_hash or self.page_hash
        elif kind == "delta":
            self._delta(message.delta)
        elif kind == "script_finished" and message.script_finished in DONE:
            self._finished.put_nowait(message.script_finished)
        elif kind == "session_event" and message.session_event.HasField("script_compilation_exception"):
            self._run.errors.append("script compilation exception")

    def _delta(self, delta: Any) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "slider":
            s = element.slider
            self.sliders[Slider(s.id, "", 0, 0, 0, 0, "").key] = Slider(
                s.id, s.label, s.min, s.max, s.step, s.value[0] if s.value else s.default[0], delta.fragment_id)
        elif kind == "imgs":
            self._run.images += [image.url for image in element.imgs.imgs if image.url.startswith("/media/")]
        elif kind == "exception":
            self._run.errors.append(f"exception: {element.exception.type}: {element.exception.message[:200]}")
        elif kind == "alert" and (element.alert.format == element.alert.ERROR or
                                  any(t in element.alert.body for t in ERROR_TEXTS)):
            self._run.errors.append(f"error box: {element.alert.body[:200]}")
        elif kind == "markdown" and element.markdown.element_type == element.markdown.CAPTION:
            self._run.captions.append(element.markdown.body)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        await self._http.aclose()


# ---- the server's own figures --------------------------------------------------------------------------
TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used (``/proc/PID/stat`` fields 14 and 15)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:")) / 1024


def threads(pid: int) -> int:
    return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("Threads:"))


@dataclass
class ServerWatch:
    """The server's RSS, threads and CPU time sampled every second: its peak memory, and the cores it used over
    any stretch of the room (CPU seconds over wall seconds)."""

    pid: int
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)
    """(monotonic time, CPU seconds so far, RSS MB, threads)."""

    def sample(self) -> None:
        self.samples.append((time.monotonic(), cpu_seconds(self.pid), rss_mb(self.pid), threads(self.pid)))

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        self.sample()

    def cores(self, start: float = 0.0, end: float = float("inf")) -> float:
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        return (inside[-1][1] - inside[0][1]) / max(1e-9, inside[-1][0] - inside[0][0])

    def peak_rss_mb(self) -> float:
        return max(s[2] for s in self.samples)

    def max_threads(self) -> int:
        return max(s[3] for s in self.samples)


# ---- a room -----------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What the room's visitors do: how many, for how long, which sliders (by key) in turn, how often."""

    visitors: int
    seconds: float
    keys: tuple[str, ...]
    every_s: float = 3.0
    """A press every so many seconds; a press that takes longer is followed by the next ``think_s`` after it."""
    think_s: float = 0.2
    arrive_s: float = 10.0
    """Visitors arrive evenly over this many seconds (a class opening the link), presses start once loaded."""
    page: str = "face_detection"
    timeout_s: float = 60.0
    seed: int = 28
    values: str = "random"
    """``random``: any value of the slider's range; ``fresh``: the room cycles through the range in one shuffled
    order, so a value comes back only after every other one (with more values than the result cache keeps, each
    press is a model run: a room's throughput measured without the cache's help)."""
    span: tuple[float, float] | None = None
    """Only values between these two (None: the slider's whole range, as the deltas give it)."""


@dataclass
class Room:
    """What a room measured: every load and press, the errors (with the visitor and when) and the server's figures."""

    plan: Plan
    loads: list[float] = field(default_factory=list)
    reruns: list[tuple[str, float, float]] = field(default_factory=list)
    """(slider key, seconds, monotonic time it finished) of every press."""
    shown: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    loaded_at: list[float] = field(default_factory=list)
    deadline: float = 0.0
    visitors_done: int = 0
    server: ServerWatch | None = None

    def rerun_times(self, key: str | None = None) -> list[float]:
        return [s for k, s, _ in self.reruns if key is None or k == key]

    def window(self) -> tuple[float, float]:
        """From the moment every visitor had loaded the page to the last press's deadline: the room in full."""
        return (max(self.loaded_at) if self.loaded_at else self.deadline), self.deadline

    def answers_per_s(self) -> float:
        start, end = self.window()
        return sum(start <= t <= end for _, _, t in self.reruns) / max(1e-9, end - start)

    def cores(self) -> float:
        return self.server.cores(*self.window()) if self.server else float("nan")


def percentile(values: list[float], share: float) -> float:
    """Linear interpolation between the two nearest ranks (as Streamlit's load tests compute it)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * share
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


class Values:
    """The value each press asks for: random, or the next of a shuffled walk over the range shared by the room."""

    def __init__(self, plan: Plan):
        self.mode, self.span, self.random, self.walks = plan.values, plan.span, random.Random(plan.seed), {}

    def next(self, slider: Slider, rng: random.Random) -> float:
        low, high = self.span or (slider.low, slider.high)
        allowed = [v for v in slider.values() if low - 1e-9 <= v <= high + 1e-9]
        if self.mode == "random":
            return rng.choice([v for v in allowed if abs(v - slider.value) > 1e-9] or allowed)
        if slider.key not in self.walks:  # one shuffled order, cycled: a value comes back only after all others
            self.random.shuffle(allowed)
            self.walks[slider.key] = itertools.cycle(allowed)
        return next(self.walks[slider.key])


async def _visitor(room: Room, index: int, base_url: str, values: Values) -> None:
    """One visitor: arrives, loads the page, then presses a slider every ``every_s`` (each in turn) until the end."""
    plan = room.plan
    rng = random.Random(plan.seed * 1000 + index)
    await asyncio.sleep(plan.arrive_s * index / max(1, plan.visitors))
    visitor = Visitor(base_url, plan.page, plan.timeout_s)
    try:
        load = await visitor.open()
        room.loads.append(load.seconds)
        room.loaded_at.append(time.monotonic())
        _note(room, index, "load", load)
        turn, next_press = index, time.monotonic() + rng.uniform(0, plan.every_s)
        while True:
            await asyncio.sleep(max(0.0, next_press - time.monotonic()))
            if time.monotonic() >= room.deadline:
                break
            await _press(room, index, visitor, plan.keys[turn % len(plan.keys)], values, rng)
            turn += 1
            next_press = max(next_press + plan.every_s, time.monotonic() + plan.think_s)
        room.visitors_done += 1
    except Exception as error:  # noqa: BLE001 — a visitor that broke off is an error of the room, with why
        room.errors.append(f"visitor {index}: {type(error).__name__}: {str(error)[:200]}")
    finally:
        await visitor.close()


async def _press(room: Room, index: int, visitor: Visitor, key: str, values: Values, rng: random.Random) -> None:
    if key not in visitor.sliders:
        room.errors.append(f"visitor {index}: no slider {key} on the page")
        return
    slider = visitor.sliders[key]
    slider.value = values.next(slider, rng)
    run = await visitor.move(key, slider.value)
    room.reruns.append((key, run.seconds, time.monotonic()))
    room.shown.append(run.shown_seconds)
    _note(room, index, key, run)


def _note(room: Room, index: int, what: str, run: Run) -> None:
    room.errors += [f"visitor {index} {what}: {e}" for e in run.errors]
    room.captions += run.captions


async def run_room(base_url: str, plan: Plan, pid: int | None = None) -> Room:
    """The whole room at once on one event loop; the server watched from the first arrival to the last press."""
    room, values = Room(plan), Values(plan)
    stop = asyncio.Event()
    watcher = None
    if pid is not None:
        room.server = ServerWatch(pid)
        watcher = asyncio.create_task(room.server.watch(stop))
    room.deadline = time.monotonic() + plan.arrive_s + plan.seconds
    tasks = [asyncio.create_task(_visitor(room, i, base_url, values)) for i in range(plan.visitors)]
    _, late = await asyncio.wait(tasks, timeout=plan.arrive_s + plan.seconds + 2 * plan.timeout_s + 60)
    for task in late:
        task.cancel()
        room.errors.append("a visitor still waiting when the room closed")
    stop.set()
    if watcher is not None:
        await watcher
    return room


def room(base_url: str, plan: Plan, pid: int | None = None) -> Room:
    return asyncio.run(run_room(base_url, plan, pid))


FACE_SLIDERS = ("fd:viola_jones:min_neighbors", "fd:dlib_hog:min_face", "fd:mtcnn:min_face_size",
                "fd:yunet:score_threshold")
"""Each face detector's headline slider, in the page's order: the room presses them in turn."""
CAPTION_TIME = re.compile(r"in (\d+) ms(?: \(and (\d+) ms waiting)?")


def caption_times(captions: list[str], title: str) -> list[tuple[float, float]]:
    """(model's own ms, wait ms) of each caption of the detector titled ``title`` (the page's ``timing(meta)``)."""
    found = []
    for caption in captions:
        if caption.startswith(title) and (match := CAPTION_TIME.search(caption)):
            found.append((float(match.group(1)), float(match.group(2) or 0)))
    return found


# ---- two real browsers beside the room --------------------------------------------------------------------
WATCH_RUNS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__runs = [];
  new MutationObserver(() => window.__runs.push([performance.now(), app.getAttribute('data-test-script-state')]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
"""Every change of the app's script state (``running``/``notRunning``) with the page's own clock."""
WATCH_SENDS = """(() => {
  window.__sent = [];
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) { window.__sent.push(performance.now()); return send.call(this, data); };
})();"""
"""Every websocket message the page sends, timed (installed before the app's own script runs)."""
RUN_AFTER = """(mark) => {
  const runs = window.__runs.filter(r => r[0] > mark);
  const started = runs.findIndex(r => r[1] === 'running');
  const ended = started < 0 ? undefined : runs.slice(started).find(r => r[1] === 'notRunning');
  const sent = window.__sent.find(t => t > mark);
  return ended ? [ended[0] - mark, ended[0] - (sent === undefined ? mark : sent)] : null;
}"""
"""Milliseconds from ``mark``, and from the first message the page sent after it (the rerun request), to the end
of the first run that started after it (null while none has ended)."""


def slider_labels(key: str) -> tuple[str, str]:
    """(the expander's title, the slider's label) the page shows for a ``fd:<detector>:<param>`` key."""
    from vision_backend.face_detection import DETECTORS

    _, name, param = key.split(":")
    return f"{DETECTORS[name].title} settings", DETECTORS[name].param(param).label


async def _browser_press(page: Any, key: str, opened: set[str], rng: random.Random,
                         timeout_s: float) -> tuple[float, float]:
    """One to four arrow presses on a slider's thumb (its expander opened first; towards whichever end leaves room),
    timed until the run they caused has ended: from the first press (the slider sends its value once it settles,
    so its debounce is in), and from the rerun request the page sent (as a protocol visitor's time is)."""
    title, label = slider_labels(key)
    expander = page.get_by_test_id("stExpander").filter(has_text=title)
    if key not in opened:
        await expander.locator("summary").click()
        opened.add(key)
    thumb = expander.get_by_test_id("stSlider").filter(has_text=label).get_by_role("slider")
    now, low, high = await thumb.evaluate("e => [Number(e.value), Number(e.min), Number(e.max)]")  # a range input
    steps = rng.randint(1, 4)
    arrow = "ArrowRight" if (high - now) >= (now - low) else "ArrowLeft"
    await thumb.focus()
    mark = await page.evaluate("performance.now()")
    for _ in range(steps):
        await thumb.press(arrow)
    handle = await page.wait_for_function(RUN_AFTER, arg=mark, timeout=timeout_s * 1000, polling=50)
    from_press, from_send = await handle.json_value()
    return from_press / 1000, from_send / 1000


async def _browser_visitor(browser: Any, url: str, plan: Plan, index: int, out: Room) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.add_init_script(WATCH_SENDS)
    page = await context.new_page()
    page.set_default_timeout(plan.timeout_s * 1000)
    opened: set[str] = set()
    rng = random.Random(plan.seed * 1000 + 500 + index)
    try:
        started = time.perf_counter()
        await page.goto(f"{url}/{plan.page}")
        await page.get_by_text("YuNet (CNN): ").first.wait_for()
        await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
        out.loads.append(time.perf_counter() - started)
        await page.evaluate(WATCH_RUNS)
        for turn in range(10**6):
            if time.monotonic() >= out.deadline:
                break
            pressed = time.monotonic()
            key = plan.keys[(turn + index) % len(plan.keys)]
            from_press, from_send = await _browser_press(page, key, opened, rng, plan.timeout_s)
            out.reruns.append((key, from_send, time.monotonic()))
            out.shown.append(from_press)
            out.errors += [f"browser {index}: error box" for _ in range(await page.get_by_test_id("stException").count())]
            await asyncio.sleep(max(plan.think_s, pressed + plan.every_s - time.monotonic()))
    except Exception as error:  # noqa: BLE001 — counted, with why
        out.errors.append(f"browser {index}: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    finally:
        await context.close()


async def _browsers(url: str, plan: Plan) -> Room:
    from playwright.async_api import async_playwright

    from browser_tools import CHROMIUM, CHROMIUM_ARGS

    out = Room(plan, deadline=time.monotonic() + plan.arrive_s + plan.seconds)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            await asyncio.gather(*(_browser_visitor(browser, url, plan, i, out) for i in range(plan.visitors)))
        finally:
            await browser.close()
    return out


def room_with_browsers(base_url: str, plan: Plan, browsers: int, pid: int | None = None) -> tuple[Room, Room]:
    """The protocol room and, at the same time, ``browsers`` Chromium visitors doing the same (Debian's Chromium
    through Playwright, in a thread of its own): (protocol room, browsers' room)."""
    import threading

    seen: list[Room] = []
    browser_plan = Plan(**{**plan.__dict__, "visitors": browsers})
    worker = threading.Thread(target=lambda: seen.append(asyncio.run(_browsers(base_url, browser_plan))))
    worker.start()
    protocol = room(base_url, plan, pid)
    worker.join()
    return protocol, seen[0]
