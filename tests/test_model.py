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
