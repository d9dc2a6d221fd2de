"""The registry: every pretrained model and data set Vision Lab knows, built from the topics' own objects.

Each topic defines its models where they are used (``face_detection.detectors``,
``object_detection.detectors``, ``classification.classifiers``, ``face_recognition.embedders``,
``transfer.bases``), each in its group's dict; this module only reads those dicts, at every call, so
a model registered later (:func:`register`) is everywhere at once: the pages' lists and widgets, the
live camera, the command line's ``--model``, the API and the model cards. ``get(name)`` is the one
shared instance of a model; ``default(role)`` the model a role starts from (each model says its roles);
``card(name)`` any card; ``status()`` says what is ready and how to get the rest.

Command line::

    python -m vision_backend.models status
    python -m vision_backend.models fetch [NAME ...]
    python -m vision_backend.models seed DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from vision_backend import fetch as fetching
from vision_backend.cards import ModelCard
from vision_backend.classification.classifiers import CLASSIFIERS
from vision_backend.classification.imagenet import CLASS_INDEX
from vision_backend.clips import CAR_CLIP
from vision_backend.errors import ModelMissingError, NotFound
from vision_backend.face_detection.detectors import DETECTORS as FACE_DETECTORS
from vision_backend.face_recognition.embedders import EMBEDDERS
from vision_backend.face_recognition.lfw import LFW
from vision_backend.model import Model, with_role
from vision_backend.object_detection.detectors import DETECTORS as OBJECT_DETECTORS
from vision_backend.own_detection.sample import RACCOON_SET
from vision_backend.paths import keras_home
from vision_backend.samples import PHOTOS
from vision_backend.small_cnn.data import FASHION_MNIST, MNIST, MNIST_T10K
from vision_backend.transfer.bases import BASES
from vision_backend.transfer.demo import DEMO_CLASSES

GROUPS: dict[str, dict[str, Model]] = {"classifier": CLASSIFIERS, "base": BASES, "face detector": FACE_DETECTORS,
                                       "embedder": EMBEDDERS, "object detector": OBJECT_DETECTORS}
"""Each group's own registry dict (the one its topic's pages iterate), by the group a model names."""
DATASETS: dict[str, ModelCard] = {c.name: c for c in (CLASS_INDEX, FASHION_MNIST, MNIST, MNIST_T10K, PHOTOS, LFW,
                                                      DEMO_CLASSES, CAR_CLIP, RACCOON_SET)}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
logger = logging.getLogger("vision_lab")

__all__ = ["DATASETS", "GROUPS", "ModelMissingError", "all_models", "card", "cards", "default", "get", "register",
           "status", "unregister", "warm"]


def all_models() -> dict[str, Model]:
    """Every registered model by card name, group by group."""
    return {m.name: m for group in GROUPS.values() for m in group.values()}


def cards() -> tuple[ModelCard, ...]:
    """Every card: the models', then the data sets'."""
    return tuple(m.card for m in all_models().values()) + tuple(DATASETS.values())


def register(model: Model) -> Model:
    """Add ``model`` to its group (``model.group``); from then on every list, page and command has it."""
    if model.group not in GROUPS:
        raise ValueError(f"{model!r} names no known group ({', '.join(GROUPS)}), but {model.group!r}")
    if model.name in all_models() or model.name in DATASETS:
        raise ValueError(f"a model or data set called {model.name!r} is registered already")
    GROUPS[model.group][model.name] = model
    return model


def unregister(name: str) -> None:
    for group in GROUPS.values():
        group.pop(name, None)


def card(name: str) -> ModelCard:
    found = {c.name: c for c in cards()}.get(name)
    if found is None:
        raise NotFound(f"no model called {name!r}; known: {', '.join(c.name for c in cards())}")
    return found


def get(name: str) -> Model:
    """The one shared instance of model ``name`` (its engine loads on first use)."""
    found = all_models().get(name)
    if found is None:
        raise NotFound(f"no model called {name!r}; known: {', '.join(all_models())}")
    return found


def default(role: str) -> Model:
    """The model ``role`` starts from (the first registered model that names it in its ``roles``)."""
    return with_role(all_models().values(), role)


def warm() -> None:
    """Load every model marked ``warm`` whose files are here (the server does this as it starts, so a first
    visit does not wait for them); one that cannot load says so when a page needs it."""
    for model in all_models().values():
        if model.warm and model.ready():
            try:
                model.runtime()
            except Exception:  # noqa: BLE001
                logger.exception("warming %s failed", model.name)


def status() -> list[dict[str, Any]]:
    """One row per card: what it is and whether it is ready, with the command to fix it."""
    rows = []
    for c in cards():
        ready = c.ready()
        size = c.download_size()
        rows.append({
            "name": c.name, "title": c.title, "kind": c.kind, "task": c.task,
            "status": c.status(), "ready": ready, "licence": c.licence,
            "params": c.params, "accuracy": c.accuracy, "MB to fetch": round(size / 1e6, 1) if size else None,
            "get it with": "" if ready else c.how_to_get(),
        })
    return rows


def seed(directories: Iterable[str | Path], log: Callable[[str], None] = print) -> list[str]:
    """Copy every registered file found under ``directories`` into the cache, hash-checked."""
    return fetching.seed(cards(), directories, log)


def _print_status() -> None:
    rows = status()
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['kind']:<7}  {r['status']:<32}  {r['title']}")
        if not r["ready"]:
            print(f"{'':<{width}}  -> {r['get it with']}")
    ready = sum(r["ready"] for r in rows)
    print(f"{ready} of {len(rows)} ready; cache: {keras_home()}")


def _fetch(names: list[str]) -> int:
    """Fetch every missing card (or the named ones); one line per failure, a table, failures as exit code."""
    chosen = [card(n) for n in names] if names else list(cards())
    outcomes = fetching.fetch(chosen)
    failed = [o for o in outcomes if not o.ok]
    every = cards()
    print(f"\n{len(outcomes) - len(failed)} fetched, {len(failed)} failed, "
          f"{sum(c.ready() for c in every)} of {len(every)} ready")
    for outcome in failed:
        print(f"  {outcome.card.name:<26} {outcome.message}")
    return min(len(failed), 100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_backend.models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="list every registered model and whether it is ready")
    fetch_parser = sub.add_parser("fetch", help="download missing files (needs the internet); exit code = failures")
    fetch_parser.add_argument("names", nargs="*")
    seed_parser = sub.add_parser("seed", help="copy files found under DIR into the cache, hash-checked")
    seed_parser.add_argument("dirs", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        return _fetch(args.names)
    if args.command == "seed":
        seed([*args.dirs, *([DEBIAN_FASHION_MNIST] if DEBIAN_FASHION_MNIST.is_dir() else [])])
    _print_status()
    return 0


if __name__ == "__main__":
    sys.exit(main())
