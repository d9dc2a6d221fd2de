"""The shape every pretrained model here has: a card, a loader, preprocessing, an adapter, parameters.

A :class:`Model` is one object per model. Its card is data (source, licence, hash, input,
published accuracy); ``load`` builds the engine object from the card's files; the task's
method (``detect``, ``classify``, ``embed``, ``features``) runs the model's own preprocessing
and adapts its raw outputs to the topic's type. Its tunable parameters are data too
(:class:`Param`), so pages build their widgets from the list and the batch command line checks
its options against it: adding a model is one definition.

One instance of each model lives in the registry and is shared by every browser session, so
the loaded engine is built once under the model's lock and, unless the engine is safe to call
from several threads at once (``concurrent``), every call runs under that lock too. Work that runs
on threads of its own (batch lanes, API workers) may instead give a call an engine of its own
(:meth:`Model.worker_engine`), so several calls run side by side without waiting for the lock.

Every fact about a model is on it: its card, its settings (and which of them count photo pixels),
what it is the default for (``roles``), whether the server loads it at start (``warm``), how its
score reads (detectors' ``score_label``), whether its engine may be copied per worker
(``per_worker``); the registry (:mod:`vision_backend.models`) and every page, the live camera, the
command line and the API read them from here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from vision_backend import engines
from vision_backend.cards import ModelCard
from vision_backend.engine_pool import EnginePool
from vision_backend.errors import SettingError



def settings_from_pairs(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as the command line and the API take them; the model checks and converts each value."""
    chosen = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise SettingError(f"--set takes NAME=VALUE, not {pair!r}")
        chosen[name.strip()] = value.strip()
    return chosen


@dataclass(frozen=True)
class Param:
    """One tunable setting: its name in code, its label, default, range or options, and help."""

    name: str
    label: str
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple = ()
    help: str = ""
    option_labels: tuple[tuple[Any, str], ...] = ()
    """Display names for some options, as (option, label) pairs."""
    in_photo_pixels: bool = False
    """True for a size counted in the photo's own pixels (a smallest face): a copy decoded smaller would
    change what it means, so batch work never drafts photos for a model with one set."""

    @property
    def kind(self) -> str:
        """``toggle``, ``choice``, ``int`` or ``float``: which widget shows it."""
        if isinstance(self.default, bool):
            return "toggle"
        if self.options:
            return "choice"
        return "int" if isinstance(self.default, int) else "float"

    def label_of(self, option: Any) -> str:
        return dict(self.option_labels).get(option, str(option))

    def coerce(self, value: Any) -> Any:
        """``value`` as this parameter's type, or :class:`SettingError` saying what is allowed."""
        kind = self.kind
        if kind == "toggle":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind == "choice":
            for option in self.options:
                if value == option or str(value) == str(option):
                    return option
            raise SettingError(f"{self.name} is one of {', '.join(map(str, self.options))}, not {value!r}")
        try:
            number = int(round(float(value))) if kind == "int" else float(value)
        except (TypeError, ValueError, OverflowError):
            raise SettingError(f"{self.name} takes a number, not {value!r}") from None
        if number != number or (self.low is not None and number < self.low) or \
                (self.high is not None and number > self.high):
            raise SettingError(f"{self.name} is between {self.low} and {self.high}, not {value!r}")
        return number


def with_role(candidates: Iterable["Model"], role: str) -> "Model":
    """The first of ``candidates`` that names ``role`` among its ``roles`` (what a page or command starts from)."""
    from vision_backend.errors import NotFound

    found = next((m for m in candidates if role in m.roles), None)
    if found is None:
        raise NotFound(f"no model is the default for {role!r}")
    return found


class Turn:
    """``with model.turn(variant):`` holds the model's engine for the block (see :meth:`Model.turn`); reusable and
    safe from several threads (each thread's own hold)."""

    def __init__(self, model: "Model", variant: Any):
        self.model, self.variant, self._held = model, variant, threading.local()

    def __enter__(self) -> Any:
        held = self.model.using(self.variant)
        self._held.__dict__.setdefault("stack", []).append(held)
        return held.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return self._held.stack.pop().__exit__(*exc)


class Model:
    """A pretrained model: card, loader, preprocessing, adapter and parameters in one object.

    Subclasses set ``card`` and ``params`` and write ``load``; keyword arguments to the
    constructor override class attributes, so one class can define a family (Keras's
    ImageNet applications) with one line a model.
    """

    card: ModelCard
    params: tuple[Param, ...] = ()
    presets: dict[str, dict[str, Any]] = {}
    """Named sets of settings a page offers as one switch (e.g. Viola-Jones's thorough setup)."""
    concurrent: bool = False
    """True when the loaded engine may be called from several threads at once (ONNX Runtime)."""
    short_title: str = ""
    """The name pages show (the card's title when empty)."""
    needs: tuple[str, ...] = ()
    """The engines its loader imports (``engines`` names): a page draws the models that need none still
    loading first, so a first visit after a restart does not wait for TensorFlow to show them."""
    group: str = ""
    """Its registry: ``face detector``, ``object detector``, ``classifier``, ``embedder`` or ``base``."""
    roles: tuple[str, ...] = ()
    """What it is the default for (``faces``, ``face finder``, ``objects``, ``classify``, ``embed``,
    ``transfer base``...): pages, the live camera, the command line and the API all start from it."""
    warm: bool = False
    """Loaded as the server starts (a model most visits use), so a first visit does not wait for it."""
    per_worker: bool = True
    """False where an engine is too costly to copy per worker thread (a large Keras model): workers and visitors
    then share the one engine, one call at a time."""
    pool_size: int = 0
    """Engines the pages' calls may use at once when the engine keeps state (0: one a core; see ``using``)."""
    queue_limit: int = 16
    """Calls that may wait for an engine before a new one is told the server is busy."""

    def __init__(self, **attributes: Any):
        for key, value in attributes.items():
            setattr(self, key, value)
        self._lock = threading.RLock()
        self._loaded: dict[Any, Any] = {}
        self._pools: dict[Any, EnginePool] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def title(self) -> str:
        return self.short_title or self.card.title

    def ready(self) -> bool:
        return self.card.ready()

    @property
    def lock(self) -> threading.RLock:
        """The model's own lock (loading); a call holds an engine through :meth:`using` instead."""
        return self._lock

    def engines_loaded(self) -> bool:
        """True when calling the model cannot wait for an engine's import (see ``needs``)."""
        return engines.loaded(*self.needs)

    # ---- loading ---------------------------------------------------------------------------
    def load(self, variant: Any = None) -> Any:
        """Build the engine object from the card's files (``variant``: a choice among them)."""
        raise NotImplementedError

    def default_variant(self) -> Any:
        """The variant ``runtime()`` means without one (a model with one engine object: None)."""
        return None

    def variants(self) -> tuple[Any, ...]:
        """Every variant it can load (its engines, its cascades); one for most models."""
        return (self.default_variant(),)

    def runtime(self, variant: Any = None) -> Any:
        """The loaded engine object, built once per process (and variant) under the model's lock."""
        variant = self.default_variant() if variant is None else variant
        with self._lock:
            if variant not in self._loaded:
                self.card.require()
                self._loaded[variant] = self.load() if variant is None else self.load(variant)
            return self._loaded[variant]

    @contextlib.contextmanager
    def using(self, variant: Any = None) -> Iterator[Any]:
        """The engine object for one call: the shared one where the engine is ``concurrent`` (ONNX Runtime),
        else one lent by the model's pool (a call at a time on each engine; callers on several engines side by
        side, so a room of visitors uses every core)."""
        if self.concurrent:
            yield self.runtime(variant)
            return
        with self.pool(variant).take() as engine:
            yield engine

    def turn(self, variant: Any = None) -> "Turn":
        """A lock-like object for code that holds the shared engine itself (``runtime``) across several calls
        (Grad-CAM's Keras model): entering it waits for that engine's turn in the pool, as :meth:`using` does."""
        return Turn(self, variant)

    def pool(self, variant: Any = None) -> EnginePool:
        """The pool of engines for ``variant``: the shared engine first, more (one thread each) as calls overlap,
        up to ``pool_size`` (one a core by default; one where engines are not ``per_worker``)."""
        variant = self.default_variant() if variant is None else variant
        with self._lock:
            if variant not in self._pools:
                size = self.pool_limit(variant)
                self._pools[variant] = EnginePool(self.runtime(variant), lambda: self.worker_engine(variant, 1),
                                                  size, self.queue_limit, self.title)
            return self._pools[variant]

    def worker_engine(self, variant: Any = None, threads: int = 1) -> Any:
        """An engine of this worker thread's own, built from the card's files (None: share :meth:`runtime`
        under the lock, see ``per_worker``). Engines with a thread pool of their own take ``threads``: one
        a lane when lanes fill the cores (they would fight over them), every core for a lone worker."""
        if not self.per_worker:
            return None
        self.card.require()
        variant = self.default_variant() if variant is None else variant
        return self.load_worker(variant, threads)

    def load_worker(self, variant: Any, threads: int) -> Any:
        """What :meth:`worker_engine` builds: ``load`` itself where the engine has no pool to size."""
        return self.load() if variant is None else self.load(variant)

    @contextlib.contextmanager
    def engine_for(self, engine: Any, variant: Any = None) -> Iterator[Any]:
        """``engine`` when a worker gives its own, else the shared one (under the lock unless concurrent)."""
        if engine is not None:
            yield engine
            return
        with self.using(variant) as shared:
            yield shared

    def pool_limit(self, variant: Any) -> int:
        """How many engines of ``variant`` the pages may hold at once (one where engines are not copied)."""
        return (self.pool_size or os.cpu_count() or 1) if self.per_worker else 1

    def unload(self) -> None:
        with self._lock:
            self._loaded.clear()
            self._pools.clear()

    # ---- parameters ------------------------------------------------------------------------
    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params)
        raise SettingError(f"{self.title} has no setting {name!r}; " +
                           (f"it has {known}" if known else "it has no settings"))

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def settings(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The defaults with ``overrides`` applied, each checked against its :class:`Param`."""
        chosen = self.defaults()
        for key, value in (overrides or {}).items():
            chosen[key] = self.param(key).coerce(value)
        return chosen


class Detector(Model):
    """A face or object detector: an RGB photo in, :class:`Detections` in the photo's pixels out.

    ``detect`` is the one detect path (pages, the live camera, batch lanes and the API): it checks the
    settings, runs ``infer`` with the loaded engine (or a worker's own) and tidies the result the same
    way for every detector: non-finite rows dropped, boxes clipped to the photo (and dropped when
    nothing is left of them), best first. ``meta["ms"]`` is the model's own time; ``meta["wait_ms"]``
    the time spent waiting for another caller's turn on a shared engine.
    """

    has_masks: bool = False
    has_landmarks: bool = False
    class_names: tuple[str, ...] = ("face",)
    score_label: str = "score"
    """What a box's number is, in a word (Viola-Jones: ``votes``)."""
    score_help: str = "its own confidence, 0 to 1"
    """What the number means, for a caption."""

    def variant(self, settings: dict[str, Any]) -> Any:
        """Which of the card's files a call needs (None: the only one)."""
        return None

    def prepare(self, image: Any) -> Any:
        """The model's own preprocessing where it can run ahead on another thread (batch decoding threads);
        None where there is nothing to gain. ``infer`` takes it back as ``prepared``."""
        return None

    def infer(self, engine: Any, image: Any, **settings: Any) -> Any:
        raise NotImplementedError

    def working_side(self, settings: dict[str, Any]) -> int | None:
        """The long side this model shrinks a photo to before its run, so batch work may decode a large JPEG
        no larger than needed; None where it works at the photo's own size, counts sizes in the photo's
        pixels (``Param.in_photo_pixels``) or draws masks at the photo's size."""
        if self.has_masks or any(p.in_photo_pixels for p in self.params):
            return None
        return settings.get("max_side")

    def caption(self, scores: Any) -> list[str]:
        """Each box's number as people read it (``12 votes``, ``0.93``)."""
        if self.score_label == "score":
            return [f"{score:.2f}" for score in scores]
        return [f"{score:.0f} {self.score_label}" for score in scores]

    def detect(self, image: Any, engine: Any = None, prepared: Any = None, **overrides: Any) -> Any:
        asked = time.perf_counter()
        settings = self.settings(overrides)
        extra = {} if prepared is None else {"prepared": prepared}
        with self.engine_for(engine, self.variant(settings)) as running:
            started = time.perf_counter()
            found = self.infer(running, image, **extra, **settings)
        found = found.finite().clipped(image.shape[1], image.shape[0]).with_area().sorted()
        found.meta.update(ms=(time.perf_counter() - started) * 1000, wait_ms=(started - asked) * 1000)
        return found
