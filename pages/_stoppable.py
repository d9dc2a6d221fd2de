"""A long run in a page (a video tracked, a detector trained) that a click stops without losing what was done.

Not a page itself (the underscore). Streamlit interrupts a running script (the Stop button, any other click,
leaving the page, the session closing) by raising at its next call, and starts the new run at once on another
thread. A run's progress display is that call: :class:`Interruptible` catches the interruption and tells the work
to stop (what was done is kept), and :meth:`Interruptible.resume` raises it again once the page has kept the
results in a :class:`Kept` box. The new run waits for that (:func:`wait_for_a_stopped_run`), so it shows them.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException


class Interruptible:
    """A progress display whose interruption stops the work instead of losing it."""

    interrupted: ScriptControlException | None = None

    def draw(self, update: Callable[[], Any]) -> bool:
        """``update()`` (a Streamlit call); False once the run was interrupted (then or before)."""
        if self.interrupted is not None:
            return False
        try:
            update()
        except ScriptControlException as interruption:  # Stop, or any other click: keep what was done
            self.interrupted = interruption
            return False
        return True

    def should_stop(self) -> bool:
        return self.interrupted is not None

    def resume(self) -> None:
        if self.interrupted is not None:
            raise self.interrupted


@dataclass
class Kept:
    """A session's last run and whether one is in progress: a stopped run may call nothing of Streamlit's any more
    (each call, ``st.session_state`` too, raises again), so it keeps its result here, in a plain object the session
    state already holds."""

    result: Any = None
    idle: threading.Event = field(default_factory=threading.Event)


def kept(key: str) -> Kept:
    if key not in st.session_state:
        st.session_state[key] = Kept()
        st.session_state[key].idle.set()
    return st.session_state[key]


@contextlib.contextmanager
def running(box: Kept) -> Iterator[Kept]:
    """Marks a run in progress until its result is kept (see :func:`wait_for_a_stopped_run`)."""
    box.idle.clear()
    try:
        yield box
    finally:
        box.idle.set()


def wait_for_a_stopped_run(key: str, message: str, timeout_s: float) -> None:
    """A run that a click stopped finishes its step and keeps its result within seconds: wait for it, so this
    run shows it."""
    box = kept(key)
    if not box.idle.is_set():
        with st.spinner(message):
            box.idle.wait(timeout_s)
