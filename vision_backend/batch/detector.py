"""``python -m vision_backend detector import|train|evaluate``: a detection project from scripts and larger sets.

The page's steps on the batch command's conventions: a workspace folder chosen with ``--home`` (default: this
machine's), settings as ``--set NAME=VALUE`` checked against the trainer's own list, a progress bar (with the time
left) for each stage on stderr, a reason for every file skipped, plain messages and exit code 2 for a mistake.
Ctrl-C during training keeps (and measures) the head trained so far, as the page's Stop does.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from vision_backend.errors import NotFound
from vision_backend.model import settings_from_pairs as settings

EXAMPLES = """examples:
  python -m vision_backend detector import ../shared/data/detection/raccoon --project Raccoons
  python -m vision_backend detector train --project Raccoons --kind fast --set epochs=20 --held-out 0.2
  python -m vision_backend detector train --project Raccoons --kind rcnn --set proposals=500
  python -m vision_backend detector evaluate --project Raccoons --on test_set/ --out metrics.json
  python -m vision_backend objects photos/ --project Raccoons --out raccoons.csv

import reads Pascal VOC XML, COCO JSON, YOLO txt (with classes.txt or data.yaml) or a split's CSV, found by itself,
from a folder or a ZIP; a folder of photos alone comes in without boxes, to draw them on the Your own objects page.
"""
UNITS = {"proposals": "photo", "features": "photo", "training": "step", "evaluation": "photo", "import": "photo"}
SHOWN = 200
"""Skipped files and notes printed one a line; past this, how many more."""


def add_parser(sub: Any) -> None:
    """``detector`` and its three actions, each with its own options."""
    parser = sub.add_parser("detector", help="your own detector: import boxes, train it, evaluate it",
                            description="A detection project from the command line: import photos and their boxes, "
                                        "train a detector on them, evaluate it.", epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    imported = actions.add_parser("import", help="photos and their boxes into a project (made if new)")
    imported.add_argument("source", metavar="DIR", help="a folder or ZIP: VOC, COCO, YOLO or CSV (found by itself)")
    imported.add_argument("--exif", choices=("auto", "stored", "upright"), default="auto",
                          help="which pixels boxes on EXIF-turned photos were drawn on (default: decided per photo)")
    train = actions.add_parser("train", help="train a detector on a project's boxes and keep it with the project")
    train.add_argument("--kind", choices=("fast", "rcnn"), default="fast",
                       help="fast: single shot, for the live camera; rcnn: the deck's R-CNN (default: fast)")
    train.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="a training setting, checked against the kind's own list (repeatable)")
    train.add_argument("--held-out", type=float, default=0.2, metavar="SHARE",
                       help="share of the photos kept out of training to measure AP on (default 0.2; 0: none)")
    evaluated = actions.add_parser("evaluate", help="AP50 and AP 0.5:0.95 per class of a project's detector")
    evaluated.add_argument("--on", required=True, metavar="DIR", help="photos with boxes (any format import reads)")
    evaluated.add_argument("--out", required=True, metavar="FILE", help="the metrics, JSON: ap50, ap, per_class")
    evaluated.add_argument("--detector", metavar="STEM", help="which of the project's detectors (default: newest)")
    evaluated.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                           help="a detector setting (score_threshold counts misses and false alarms; AP ranks all)")
    for action in (imported, train, evaluated):
        action.add_argument("--project", required=True, help="the detection project's name")
        action.add_argument("--home", help="the workspace's folder (default: this machine's local workspace)")
        action.add_argument("--quiet", action="store_true", help="no progress bar")


class StageBars:
    """``progress(stage, done, total)`` as one tqdm bar a stage on stderr (tqdm says the rate and the time left)."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.stage, self.bar = quiet, "", None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if stage != self.stage:
            self.close()
            from tqdm import tqdm

            self.stage, self.bar = stage, tqdm(total=total, desc=stage, unit=UNITS.get(stage, "it"), file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def lines(label: str, items: list[str]) -> None:
    for item in items[:SHOWN]:
        print(f"{label}: {item}")
    if len(items) > SHOWN:
        print(f"{label}: … and {len(items) - SHOWN} more")


def run(args: argparse.Namespace) -> int:
    from vision_backend.batch.tasks import workspace_at

    space = workspace_at(args.home)
    if args.action == "import":
        return import_set(space, args)
    if not space.has_detection_project(args.project):
        raise NotFound(f"There is no detection project called “{args.project}” in {space.where}: import one first "
                       "(python -m vision_backend detector import DIR --project NAME).")
    project = space.detection_project(args.project, create=False)
    return train(project, args) if args.action == "train" else evaluate(project, args)


def import_set(space: Any, args: argparse.Namespace) -> int:
    project = space.detection_project(args.project)
    bars = StageBars(args.quiet)
    report = project.import_set(Path(args.source).expanduser(), lambda done, total: bars("import", done, total),
                                args.exif)
    bars.close()
    lines("skipped", report.skipped)
    lines("note", report.notes)
    counts = project.counts()
    print(report.summary())
    print(f"“{project.name}” now has {len(project.photos())} photos and {sum(counts.values())} boxes of "
          f"{', '.join(f'{name} ({count})' for name, count in counts.items()) or 'no class yet'}.")
    return 0


def train(project: Any, args: argparse.Namespace) -> int:
    from vision_backend.own_detection import workflow

    for line in project.advice():
        print(f"note: {line}")
    bars, stop = StageBars(args.quiet), _CtrlC()
    with stop:
        done = workflow.train_project(project, args.kind, settings(args.set), args.held_out, progress=bars,
                                      should_stop=stop.asked)
    bars.close()
    meta = done.saved.meta
    measured = (f"AP50 {meta['ap50']:.3f}, AP {meta['ap']:.3f} on {meta['tested_photos']} held-out photos"
                if meta.get("ap50") is not None else "not measured (nothing held out)")
    print(f"{'stopped: kept what was trained' if done.stopped else 'trained'} in {meta['train_s']:.1f} s; "
          f"{measured}; kept as {project.name}/{done.saved.stem}")
    return 0


class _CtrlC:
    """While training, Ctrl-C asks the trainer to stop (it keeps the head so far); a second one stops at once."""

    def __init__(self) -> None:
        self.hit, self.previous = False, None

    def asked(self) -> bool:
        return self.hit

    def _handle(self, *_: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        print("\nstopping: keeping what was trained (Ctrl-C again to stop at once)", file=sys.stderr)

    def __enter__(self) -> "_CtrlC":
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        signal.signal(signal.SIGINT, self.previous)


def evaluate(project: Any, args: argparse.Namespace) -> int:
    from vision_backend.own_detection import read_annotations, workflow
    from vision_backend.storage import atomic_write

    detector = project.detector(args.detector)
    chosen = detector.settings(settings(args.set))
    found = read_annotations(Path(args.on).expanduser())
    lines("skipped", [str(s) for s in found.skipped])
    bars = StageBars(args.quiet)
    measured = workflow.measure(detector, found.photos, detector.class_names, chosen["score_threshold"], chosen,
                                lambda done, total: bars("evaluation", done, total))
    bars.close()
    metrics = {"detector": detector.name, **workflow.summary(measured.evaluation), "settings": chosen,
               "skipped": [str(s) for s in found.skipped]}
    unknown = sorted({label for p in found.photos for label in p.labels} - set(detector.class_names))
    if unknown:
        print(f"note: the detector was not trained on {', '.join(unknown)}: their boxes count as misses")
    atomic_write(Path(args.out), json.dumps(metrics, indent=1, ensure_ascii=False).encode() + b"\n")
    for name, row in metrics["per_class"].items():
        print(f"{name}: AP50 {_shown(row['ap50'])}, AP {_shown(row['ap'])} ({row['boxes']} boxes)")
    print(f"mean: AP50 {_shown(metrics['ap50'])}, AP {_shown(metrics['ap'])} on {metrics['photos']} photos; "
          f"written to {args.out}")
    return 0


def _shown(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


__all__ = ["StageBars", "add_parser", "run"]
