"""The Your own objects page's training: the kind, its settings from its own list, the share held out, and a run with
a bar per stage (proposals, features, training, evaluation) and the time left, which Stop (or any click) ends
keeping what was trained.

Not a page itself (the underscore): imported by ``pages/own_objects.py``. Streamlit interrupts a running script by
raising at its next call; here that call is a bar's update, so the interruption is caught and becomes the trainer's
``should_stop`` (the head trained so far is kept, measured and saved); the run then raises it again, and the next
run waits for the stopped one to finish keeping it (:func:`wait_for_a_stopped_run`) so it shows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from pages import _stoppable as stoppable
from pages._shared import ensure_ready, keep, literal, settings_widgets
from pages._stoppable import Interruptible, Kept, running
from vision_backend.own_detection import workflow
from vision_backend.own_detection.maps import Stopped
from vision_backend.own_detection.projects import DetectionProject

STAGES = {"proposals": "Region proposals (selective search)", "features": "Feature maps through the base",
          "training": "Training the head", "evaluation": "Measuring on the held-out photos"}
REDRAW_S = 0.25
"""A bar is redrawn at most this often (a training step can take a millisecond)."""


class StageBars(Interruptible):
    """``progress(stage, done, total)`` as one bar a stage with the time left in it; an interruption is caught and
    becomes the trainer's ``should_stop`` (see ``pages/_stoppable.py``)."""

    def __init__(self, where: Any):
        self.where, self.bars, self.started, self.drawn = where, {}, {}, 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        start = self.started.setdefault(stage, now)
        if self.interrupted is not None or (now - self.drawn < REDRAW_S and done < total):
            return
        left = (now - start) / done * (total - done) if done else None
        text = (f"{STAGES.get(stage, stage)}: {done:,} of {total:,}"
                + (f" · {left:.0f} s left" if left is not None and done < total else ""))
        self.draw(lambda: self._bar(stage).progress(min(1.0, done / max(total, 1)), text))
        self.drawn = now

    def _bar(self, stage: str) -> Any:
        if stage not in self.bars:
            self.bars[stage] = self.where.progress(0.0, STAGES.get(stage, stage))
        return self.bars[stage]


def kept() -> Kept:
    return stoppable.kept("_own_training")


def wait_for_a_stopped_run(timeout_s: float = 120) -> None:
    """A training that a click stopped finishes its step, measures and saves within seconds: wait for it."""
    stoppable.wait_for_a_stopped_run("_own_training", "Stopping: keeping what was trained…", timeout_s)


@dataclass(frozen=True)
class Outcome:
    """What the page shows of a training once it is over."""

    project: str
    stem: str
    meta: dict[str, Any]
    history: dict[str, list[float]]
    stopped: bool
    error: str = ""


def train_tab(project: DetectionProject) -> None:
    wait_for_a_stopped_run()
    base = workflow.default_base()
    kind = st.radio("Detector", list(workflow.KIND_TITLES), format_func=workflow.KIND_TITLES.get, horizontal=True,
                    key=keep("own_kind", "fast"))
    settings = settings_widgets(workflow.params(kind), lambda p: f"own_{kind}_{p.name}", columns=4)
    share = settings_widgets((workflow.HELD_OUT,), lambda p: f"own_{p.name}")[workflow.HELD_OUT.name]
    st.caption(f"Both train on the frozen {base.title}'s feature maps (computed once per photo and kept). "
               "The fast detector takes a minute or two for 160 photos on two cores, R-CNN a few minutes.")
    for line in project.advice():
        st.info(literal(line), icon=":material/lightbulb:")
    problems = project.problems()
    for line in problems:
        st.warning(literal(line), icon=":material/warning:")
    last_training(project)
    if not problems and st.button("Train", type="primary", key="own_train", icon=":material/model_training:") \
            and ensure_ready(base.card):
        run_training(project, kind, settings, share, base)


def run_training(project: DetectionProject, kind: str, settings: dict, share: float, base: Any) -> None:
    """Train with a bar a stage; Stop (or any click) keeps the head trained so far. Rerun so every tab shows it."""
    st.button("Stop (keeps what was trained)", key="own_stop", icon=":material/stop:")
    bars = StageBars(st.container())
    with running(kept()) as box:  # no Streamlit call in the block: a stopped run may make none
        try:
            done = workflow.train_project(project, kind, settings, share, base, bars, bars.should_stop)
            box.result = Outcome(project.name, done.saved.stem, done.saved.meta, done.trained.history, done.stopped)
        except Stopped:
            box.result = Outcome(project.name, "", {}, {}, True, "Stopped before the first epoch ended: nothing "
                                                                  "was trained, so nothing was kept.")
    bars.resume()
    st.rerun()


def last_training(project: DetectionProject) -> None:
    """The session's last training of this project: how it went, its AP on the held-out photos, its curves."""
    outcome = kept().result
    if outcome is None or outcome.project != project.name:
        return
    if outcome.error:
        st.warning(outcome.error, icon=":material/stop_circle:")
        return
    meta = outcome.meta
    measured = (f"AP50 **{meta['ap50']:.2f}** and AP (0.5:0.95) {meta['ap']:.2f} on {meta['tested_photos']} "
                "held-out photos" if meta.get("ap50") is not None else "not measured (no photo held out)")
    st.success(f"{'Stopped: kept what was trained' if outcome.stopped else 'Trained'} in {meta['train_s']:.0f} s on "
               f"{meta['photos']} photos ({meta['boxes']} boxes); {measured}. Kept with the project as "
               f"**{literal(outcome.stem)}**: the Evaluate, Detect and Live camera pages use it.",
               icon=":material/stop_circle:" if outcome.stopped else ":material/check:")
    if outcome.history:
        frame = pd.DataFrame(outcome.history).reset_index(names="epoch")
        st.plotly_chart(px.line(frame, x="epoch", y=[c for c in frame if c != "epoch"], markers=len(frame) < 3,
                                title="Training losses (per epoch)"), width="stretch")
