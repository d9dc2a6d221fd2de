"""The shape every model has: parameters as data, one engine per process built under a lock."""

from __future__ import annotations

import threading
import time

import pytest

from vision_backend import models
from vision_backend.cards import ModelCard
from vision_backend.model import Model, Param


def test_param_kinds_and_coercion() -> None:
    assert Param("t", "T", 0.5, 0.0, 1.0, 0.05).kind == "float"
    assert Param("n", "N", 3, 0, 12, 1).kind == "int"
    assert Param("on", "On", True).kind == "toggle"
    side = Param("side", "Side", 640, options=(320, 640), option_labels=((640, "640 px"),))
    assert side.kind == "choice" and side.coerce("320") == 320 and side.label_of(640) == "640 px"
    assert Param("n", "N", 3, 0, 12, 1).coerce("4.6") == 5
    assert Param("on", "On", True).coerce("false") is False
    with pytest.raises(ValueError):
        Param("t", "T", 0.5, 0.0, 1.0, 0.05).coerce(2)


class Slow(Model):
    card = ModelCard(name="slow", title="Slow", task="test", licence="none", source="package", package="numpy")
    params = (Param("k", "K", 1, 0, 5, 1),)
    loads = 0

    def load(self):
        type(self).loads += 1
        time.sleep(0.2)
        return object()


def test_an_engine_is_built_once_however_many_threads_ask() -> None:
    model = Slow()
    engines: list[object] = []
    threads = [threading.Thread(target=lambda: engines.append(model.runtime())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Slow.loads == 1 and len({id(e) for e in engines}) == 1


def test_every_registered_model_is_complete() -> None:
    """What the pages, the batch command line and the README's "Add a model" rely on."""
    assert models.all_models() and len({c.name for c in models.cards()}) == len(models.cards()), "names are unique"
    for name, model in models.all_models().items():
        card = model.card
        assert name == card.name and model.title and card.task and card.licence, name
        assert card.source in ("package", "cache")
        if card.source == "cache":
            for f in card.files:
                assert f.url or card.seedable or f.is_tree, f"{name}: no way to get {f.path}"
                if f.file_hash:
                    assert len(f.file_hash) in (32, 64) and int(f.file_hash, 16) >= 0
        else:
            assert card.package
        assert type(model).load is not Model.load, f"{name} has no loader"
        settings = model.settings()
        assert set(settings) == {p.name for p in model.params}
        for param in model.params:
            assert param.label and param.coerce(param.default) == param.default, (name, param.name)
        for preset in model.presets.values():
            model.settings(preset)  # every preset names real settings with allowed values


class Busy(Model):
    """An engine that keeps state: one call at a time on each; each call takes 0.3 s."""

    card = ModelCard(name="busy", title="Busy model", task="test", licence="none", source="package", package="numpy")
    pool_size = 2
    queue_limit = 1
    built = 0

    def load(self):
        type(self).built += 1
        return {"in use": threading.Lock()}

    def call(self) -> float:
        with self.using() as engine:
            assert engine["in use"].acquire(blocking=False), "one call at a time on one engine"
            time.sleep(0.3)
            engine["in use"].release()
        return time.perf_counter()


def test_calls_that_overlap_run_side_by_side_on_a_pool_of_engines() -> None:
    """Two visitors at once: a second engine is built and both calls run together (0.3 s, not 0.6 s); a third
    waits its turn; a fourth, with the queue full, is told at once that the model is busy."""
    from vision_backend.errors import Busy as BusyError

    model = Busy()
    started = time.perf_counter()
    ends, errors = [], []

    def visit() -> None:
        try:
            ends.append(model.call() - started)
        except BusyError as error:
            errors.append((time.perf_counter() - started, str(error)))

    threads = [threading.Thread(target=visit) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert Busy.built == 2 and model.pool().made == 2, "one engine a core, built as the calls overlapped"
    assert sorted(round(e, 1) for e in ends)[:2] == [0.3, 0.3], "the first two ran side by side"
    assert len(ends) == 3 and 0.55 < max(ends) < 0.9, "the third waited for a free engine"
    assert len(errors) == 1 and errors[0][0] < 0.2 and "busy" in errors[0][1], "the fourth was told at once"
