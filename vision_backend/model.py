"""The shape every pretrained model here has: a card, a loader, preprocessing, an adapter, parameters.

A :class:`Model` is one object per model. Its card is data (source, licence, hash, input,
published accuracy); ``load`` builds the engine object from the card's files; the task's
method (``detect``, ``classify``, ``embed``, ``features``) runs the model's own preprocessing
and adapts its raw outputs to the topic's type. Its tunable parameters are data too
(:class:`Param`), so pages build their widgets from the list and the batch command line checks
its options against it: adding a model is one definition.

One instance of each model lives in the registry and is shared by every browser session, so
the loaded engine is built once under the model's lock and, unless the engine is safe to call
from several threads at once (``concurrent``), every call runs under that lock too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator

from vision_backend import engines
from vision_backend.cards import ModelCard
from vision_backend.errors import SettingError


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

    def __init__(self, **attributes: Any):
        for key, value in attributes.items():
            setattr(self, key, value)
        self._lock = threading.RLock()
        self._loaded: dict[Any, Any] = {}

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
        """The engine object for one call: under the model's lock unless the engine is ``concurrent``."""
        engine = self.runtime(variant)
        if self.concurrent:
            yield engine
            return
        with self._lock:
            yield engine

    def unload(self) -> None:
        with self._lock:
            self._loaded.clear()

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

    ``detect`` checks the settings, runs ``infer`` with the loaded engine and tidies the result the
    same way for every detector: non-finite rows dropped, boxes clipped to the photo (and dropped when
    nothing is left of them), best first,
    the time taken in ``meta["ms"]``.
    """

    has_masks: bool = False
    has_landmarks: bool = False
    class_names: tuple[str, ...] = ("face",)

    def variant(self, settings: dict[str, Any]) -> Any:
        """Which of the card's files a call needs (None: the only one)."""
        return None

    def infer(self, engine: Any, image: Any, **settings: Any) -> Any:
        raise NotImplementedError

    def detect(self, image: Any, **overrides: Any) -> Any:
        started = time.perf_counter()
        settings = self.settings(overrides)
        with self.using(self.variant(settings)) as engine:
            found = self.infer(engine, image, **settings)
        found = found.finite().clipped(image.shape[1], image.shape[0]).with_area().sorted()
        found.meta["ms"] = (time.perf_counter() - started) * 1000
        return found
