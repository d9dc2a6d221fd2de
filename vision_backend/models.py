"""The registry: every pretrained model and data set Vision Lab knows, built from the topics' own objects.

Each topic defines its models where they are used (``face_detection.detectors``,
``object_detection.detectors``, ``classification.classifiers``, ``face_recognition.embedders``,
``transfer.bases``) and its data sets beside the code that reads them; this module only collects
them. ``get(name)`` is the one shared instance of a model; ``card(name)`` any card; ``status()``
says what is ready and how to get the rest.

Command line::

    python -m vision_backend.models status
    python -m vision_backend.models fetch [NAME ...]
    python -m vision_backend.models seed DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from vision_backend import fetch as fetching
from vision_backend.cards import ModelCard, ModelMissingError
from vision_backend.classification.classifiers import CLASSIFIERS
from vision_backend.classification.imagenet import CLASS_INDEX
from vision_backend.face_detection.detectors import DETECTORS as FACE_DETECTORS
from vision_backend.face_recognition.embedders import EMBEDDERS
from vision_backend.face_recognition.lfw import LFW
from vision_backend.model import Model
from vision_backend.object_detection.detectors import DETECTORS as OBJECT_DETECTORS
from vision_backend.paths import keras_home
from vision_backend.samples import PHOTOS
from vision_backend.small_cnn.data import FASHION_MNIST, MNIST, MNIST_T10K
from vision_backend.transfer.bases import BASES
from vision_backend.transfer.demo import DEMO_CLASSES

MODELS: dict[str, Model] = {m.name: m for group in (CLASSIFIERS, BASES, FACE_DETECTORS, EMBEDDERS, OBJECT_DETECTORS)
                            for m in group.values()}
DATASETS: dict[str, ModelCard] = {c.name: c for c in (CLASS_INDEX, FASHION_MNIST, MNIST, MNIST_T10K, PHOTOS, LFW,
                                                      DEMO_CLASSES)}
CARDS: tuple[ModelCard, ...] = tuple(m.card for m in MODELS.values()) + tuple(DATASETS.values())
REGISTRY: dict[str, ModelCard] = {c.name: c for c in CARDS}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

__all__ = ["CARDS", "DATASETS", "MODELS", "ModelMissingError", "card", "get", "status"]


def card(name: str) -> ModelCard:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no model called {name!r}; known: {', '.join(REGISTRY)}") from None


def get(name: str) -> Model:
    """The one shared instance of model ``name`` (its engine loads on first use)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"no model called {name!r}; known: {', '.join(MODELS)}") from None


def status() -> list[dict[str, Any]]:
    """One row per card: what it is and whether it is ready, with the command to fix it."""
    rows = []
    for c in CARDS:
        ready = c.ready()
        rows.append({
            "name": c.name, "title": c.title, "kind": c.kind, "task": c.task,
            "status": c.status(), "ready": ready, "licence": c.licence,
            "params": c.params, "accuracy": c.accuracy, "MB to fetch": round(c.download_size() / 1e6, 1),
            "get it with": "" if ready else c.how_to_get(),
        })
    return rows


def seed(directories: Iterable[str | Path], log: Callable[[str], None] = print) -> list[str]:
    """Copy every registered file found under ``directories`` into the cache, hash-checked."""
    return fetching.seed(CARDS, directories, log)


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
    cards = [card(n) for n in names] if names else list(CARDS)
    outcomes = fetching.fetch(cards)
    failed = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)} fetched, {len(failed)} failed, "
          f"{sum(c.ready() for c in CARDS)} of {len(CARDS)} ready")
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
