"""What Streamlit does after every script run, made fit for a room of visitors sharing one process.

After each run, a fragment's included, Streamlit 1.67's ScriptRunner calls ``keras.backend.clear_session()``
whenever Keras is imported (it resets TensorFlow's default graph, clears the kernel cache of every model that is
running in other sessions' threads, and runs a full ``gc.collect()``), then a second full collection
(``runner.postScriptGC``). With TensorFlow's millions of objects in the process, both hold the GIL: in a room of
30 visitors moving sliders they were 67% of the time any thread held it (py-spy ``--gil``), so every visitor's
answer, and each model's eager TensorFlow calls between their kernels, waited behind collections, and the server
used under one of its two cores. Models here are loaded once and shared by every session, so there is nothing
per run for Keras to reset. Instead: no Keras reset, matplotlib's figures closed as Streamlit does, and a full
collection at most every ``COLLECT_EVERY_S`` seconds after a run (``runner.postScriptGC`` is off in
``.streamlit/config.toml``), which still gathers what sessions leave in cycles.

This reaches into Streamlit's script runner (a module-level function); on a version laid out differently it
logs one warning and changes nothing.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from typing import Any

_LOG = logging.getLogger("vision_lab.runs")
COLLECT_EVERY_S = 10.0
_collecting = threading.Lock()
_collected_at = time.monotonic()


def after_run() -> None:
    """Streamlit's tidy-up after a run, without the Keras reset, and a full collection only when one is due."""
    global _collected_at
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    if time.monotonic() - _collected_at < COLLECT_EVERY_S or not _collecting.acquire(blocking=False):
        return
    try:
        gc.collect(2)
        _collected_at = time.monotonic()
    finally:
        _collecting.release()


def light_after_runs() -> bool:
    """Once per process (idempotent): Streamlit's after-run clean-up replaced by :func:`after_run`. False when
    Streamlit has no such step (a version laid out differently: nothing changed)."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    current: Any = getattr(script_runner, "_clean_problem_modules", None)
    if current is after_run:
        return True
    if current is None:
        _LOG.warning("Streamlit's after-run clean-up is not where expected: Keras is still reset after every run")
        return False
    script_runner._clean_problem_modules = after_run
    return True
