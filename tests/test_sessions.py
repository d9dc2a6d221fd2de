"""Server housekeeping (pages/_sessions.py): a session whose browser left is shut down when its time is up."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import pytest

from pages._sessions import ClosingSessionStorage
from streamlit.runtime.session_manager import SessionInfo


@dataclass
class Session:
    """What the storage touches of an AppSession: its id, and ``shutdown``."""

    id: str
    shutdowns: list[str] = field(default_factory=list)

    def shutdown(self) -> None:
        self.shutdowns.append(self.id)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stored(storage: ClosingSessionStorage, *names: str) -> dict[str, Session]:
    sessions = {name: Session(name) for name in names}
    for session in sessions.values():
        storage.save(SessionInfo(client=None, session=session, script_run_count=1))  # type: ignore[arg-type]
    return sessions


def test_expired_sessions_are_shut_down_once_and_taken_ones_never() -> None:
    clock = Clock()
    storage = ClosingSessionStorage(ttl_seconds=10, timer=clock)
    sessions = stored(storage, "a", "b", "c")
    storage.save(SessionInfo(client=None, session=sessions["a"], script_run_count=2))  # saved again: kept
    storage.delete("b")  # resumed by its browser, or closed by Streamlit (which shuts it down itself)
    assert storage.reap() == 0 and not any(s.shutdowns for s in sessions.values())
    clock.now = 11
    assert storage.get("c") is None, "an expired session cannot be resumed"
    assert storage.reap() == 2
    assert [s.shutdowns for s in sessions.values()] == [["a"], [], ["c"]]
    assert storage.reap() == 0 and storage.list() == []


def test_a_session_evicted_for_room_is_shut_down() -> None:
    storage = ClosingSessionStorage(ttl_seconds=100, maxsize=2)
    sessions = stored(storage, "a", "b", "c")
    assert sessions["a"].shutdowns == ["a"], "the least recently used one made room"
    assert [info.session.id for info in storage.list()] == ["b", "c"]


@pytest.mark.slow
@pytest.mark.browser
def test_a_closed_visit_lets_go_of_its_images_when_its_time_is_up(tmp_path) -> None:
    """Before: a session that expired was forgotten but never shut down, and every image it showed stayed
    in the server (and on its URL) for good (streamlit/streamlit#12506)."""
    from browser_tools import chromium, streamlit_server

    with streamlit_server(tmp_path / "home", tmp_path, args=["--server.disconnectedSessionTTL", "2"]) as server, \
            chromium() as browser:
        context = browser.new_context()
        tab = context.new_page()
        tab.set_default_timeout(120_000)
        tab.goto(server.url + "/face_detection")
        tab.get_by_text("YuNet (CNN): ").first.wait_for()
        images = [src for src in tab.locator('[data-testid="stImage"] img').evaluate_all(
            "imgs => imgs.map(i => i.src)") if "/media/" in src]
        assert images, "the page shows its photos from the server's media store"
        assert all(status(src) == 200 for src in images)
        context.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(status(src) == 200 for src in images):
            time.sleep(2)
        assert [status(src) for src in images] == [404] * len(images)


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
