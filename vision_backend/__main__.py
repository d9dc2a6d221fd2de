"""Vision Lab on folders of photos: ``python -m vision_backend SUBCOMMAND PATHS... --out FILE``.

The pages' models with the pages' default settings, over files, folders (recursively), globs or a
text file listing paths; one row per photo or per detection in CSV, JSON Lines or Parquet; on this
machine, or on a Ray cluster with ``--ray``. ``track`` does videos: one row per tracked box per frame,
with a counting line and zones (see :mod:`vision_backend.batch.video`). See ``--help`` of each subcommand.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from vision_backend import models
from vision_backend.batch import tasks
from vision_backend.batch.paths import expand
from vision_backend.errors import BadInput, UserError
from vision_backend.model import settings_from_pairs as settings

DESCRIPTION = ("Vision Lab on folders of photos: the pages' models at the pages' default settings, "
               "one row per photo or per detection, here or on a Ray cluster.")
EXAMPLES = """examples:
  python -m vision_backend classify ~/Pictures --out labels.csv
  python -m vision_backend classify shop/*.jpg --project "Shoes" --out shoes.jsonl
  python -m vision_backend faces archive/ --blur published/ --out faces.parquet
  python -m vision_backend faces archive/ --model mtcnn --set min_face_size=40 --out faces.csv
  python -m vision_backend recognize list.txt --home ~/.vision_lab --out who.csv
  python -m vision_backend objects 'street/**/*.jpg' --model yolov8n_seg --out objects.jsonl --resume
  python -m vision_backend embed people/ --out faces.npy
  python -m vision_backend faces /mnt/shared/archive --out faces.parquet --ray ray://head:10001
  python -m vision_backend track clips/ --line 0,216,768,216 --out tracks.parquet --counts counts.csv
  python -m vision_backend keys create --home ~/.vision_lab --name "shop scanner"   # an API key, printed once
  python -m vision_backend detector import raccoons/ --project Raccoons   # then: detector train, detector evaluate
  python -m vision_backend objects photos/ --project Raccoons --out raccoons.csv   # your own detector

A bad or unreadable file is a row with an `error` and never stops the run; --resume skips photos
already in --out. Models missing here are fetched on first use (python -m vision_backend.models status).
"""


def _common(parser: argparse.ArgumentParser, detections: bool) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATHS",
                        help="photos, folders (searched recursively), globs, or a .txt file listing paths")
    parser.add_argument("--out", required=True, metavar="FILE", help="results: .csv, .jsonl or .parquet")
    parser.add_argument("--resume", action="store_true", help="skip photos already in --out and add to it")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a model setting, checked against the model's own list (repeatable)")
    if detections:
        parser.add_argument("--per", choices=("detection", "photo"), default="detection",
                            help="one row per detection (default) or per photo with a list")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--batch-size", type=int, default=16, metavar="N", help="photos per batch (default 16)")
    speed.add_argument("--threads", type=int, default=0, metavar="N",
                       help="lanes, each a one-thread engine (default: one a core)")
    speed.add_argument("--spinning", action="store_true",
                       help="one engine on every core with its threads spinning, instead of lanes")
    speed.add_argument("--workers", type=int, default=0, metavar="N", help="decoding threads (default: every core)")
    speed.add_argument("--draft", action="store_true",
                       help="decode large JPEGs at 1/2-1/8 size where the model shrinks them anyway: several times "
                            "faster on camera photos; boxes may move by under one pixel of the model's input")
    speed.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = parser.add_argument_group("Ray")
    ray.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                     help="run on Ray Data: here without ADDRESS, else on that cluster "
                          "(ray://HOST:10001, HOST:6379, auto)")
    ray.add_argument("--actors", type=int, default=0, metavar="N", help="actors (default: the cluster's CPUs)")
    ray.add_argument("--cpus-per-actor", type=int, default=1, metavar="N")


def _subcommand(sub: Any, name: str, help: str, detections: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, epilog=EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser, detections)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vision_backend", description=DESCRIPTION,
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    classify = _subcommand(sub, "classify", "ImageNet labels, or a project's classes", detections=False)
    _model_choice(classify, "classifier", "classify")
    classify.add_argument("--top", type=int, default=5, help="labels kept per photo (default 5)")
    classify.add_argument("--project", help="a project trained on the transfer-learning page (its newest model)")
    classify.add_argument("--home", help="the workspace holding --project (default: this machine's)")
    faces = _subcommand(sub, "faces", "faces found by a detector; --blur writes anonymised copies")
    _model_choice(faces, "face detector", "faces")
    faces.add_argument("--blur", metavar="DIR", help="write a copy of every photo with its faces blurred into DIR")
    faces.add_argument("--pixelate", action="store_true", help="with --blur: pixelate instead of blurring")
    recognize = _subcommand(sub, "recognize", "faces named from a workspace's gallery")
    _face_models(recognize)
    recognize.add_argument("--home", help="the workspace whose gallery is used (default: this machine's)")
    objects = _subcommand(sub, "objects", "COCO objects (masks as COCO RLE for segmenting models), or your own")
    _model_choice(objects, "object detector", "objects")
    objects.add_argument("--project", help="a detection project (Your own objects page): its newest detector")
    objects.add_argument("--home", help="the workspace holding --project (default: this machine's)")
    _face_models(_subcommand(sub, "embed", "face embeddings (.parquet, or .npy with the rows beside it)"))
    _keys(sub)
    _track(sub)
    from vision_backend.batch import detector as detector_command

    detector_command.add_parser(sub)
    return parser


TRACK_EXAMPLES = """examples:
  python -m vision_backend track car-detection.mp4 --line 0,216,768,216 --out tracks.parquet --video annotated.mp4
  python -m vision_backend track clips/ --line 0,216,768,216 --counts counts.csv --out tracks.csv --resume
  python -m vision_backend track lobby.mov --zone "100,300 500,300 500,470 100,470" --set anchor=bottom_center \\
      --set class_aware=true --out people.jsonl --counts counts.csv

A line is x1,y1,x2,y2 in the video's pixels: "in" is to the right walking from its first end to its second (a line
drawn left to right counts downwards as in). The defaults suit a camera looking down (class_aware=false,
anchor=center); for one looking across a scene, --set anchor=bottom_center. A video that cannot be read is a row
with an `error`; --resume skips videos already in --out.
"""


def _track(sub: Any) -> None:
    """``track``: its own options (a video is done on every core, one after another: no lanes, no Ray)."""
    help = "objects tracked through videos (ByteTrack), counted across a line and in zones"
    parser = sub.add_parser("track", help=help, description=help, epilog=TRACK_EXAMPLES,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", metavar="VIDEOS",
                        help="videos (MP4, MOV, WebM, MKV, AVI), folders, globs, or a .txt file listing paths")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="one row per tracked box per frame: .csv, .jsonl or .parquet")
    _model_choice(parser, "object detector", "objects")
    parser.add_argument("--line", metavar="X1,Y1,X2,Y2", help="a counting line, in the video's pixels")
    parser.add_argument("--zone", action="append", default=[], metavar="'X,Y X,Y X,Y...'",
                        help="a zone's corners (repeatable): entries, occupancy and time inside")
    parser.add_argument("--video", metavar="FILE.mp4|DIR", help="write the annotated video (H.264 MP4) here; with "
                        "several videos, FILE_<video>.mp4 each, or DIR/<video>.mp4")
    parser.add_argument("--counts", metavar="FILE",
                        help="the counts, one a row (path, counter, direction, label, count): .csv, .jsonl or .parquet")
    parser.add_argument("--blur-faces", action="store_true", help="blur faces in the annotated video, along their tracks")
    parser.add_argument("--resume", action="store_true", help="skip videos already in --out and add to it")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a detector or tracking setting (track_threshold, class_aware, anchor...), checked")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _keys(sub: Any) -> None:
    """``keys create|list|revoke``: API keys for the HTTP API, made by an operator (the API keys page makes them
    for a person)."""
    keys = sub.add_parser("keys", help="API keys of a workspace: create (printed once), list or revoke",
                          description=_keys.__doc__)
    keys.add_argument("action", choices=("create", "list", "revoke"))
    keys.add_argument("--home", help="the workspace's folder (default: this machine's local workspace)")
    keys.add_argument("--name", help="the key's name (create, revoke)")
    keys.add_argument("--read-only", action="store_true", help="create: a key that cannot change the gallery")


def _face_models(parser: argparse.ArgumentParser) -> None:
    from vision_backend.face_recognition.recognise import face_finder

    _model_choice(parser, "embedder", "embed")
    parser.add_argument("--detector", default=face_finder(),
                        help=f"the face finder: one of {', '.join(models.GROUPS['face detector'])} "
                             "(default: %(default)s, as on the recognition page)")


def _model_choice(parser: argparse.ArgumentParser, group: str, role: str) -> None:
    """``--model``: every registered model of ``group``, the pages' default (the one whose role it is) first."""
    parser.add_argument("--model", default=models.default(role).name,
                        help="one of " + ", ".join(models.GROUPS[group]) + " (default: %(default)s)")


def make_task(args: argparse.Namespace) -> tasks.Task:
    common = dict(settings=settings(args.set), threads=args.threads, draft=args.draft, spinning=args.spinning,
                  per=getattr(args, "per", "detection"))
    if args.command == "classify":
        if args.project:
            return tasks.ProjectClassify(args.project, home=args.home, **common)
        return tasks.Classify(args.model, top=args.top, **common)
    if args.command == "faces":
        return tasks.Faces(args.model, blur=args.blur, pixelate=args.pixelate, **common)
    if args.command == "recognize":
        return tasks.Recognize(args.model, home=args.home, detector=args.detector, **common)
    if args.command == "embed":
        return tasks.Embed(args.model, detector=args.detector, **common)
    if args.project:
        return tasks.ProjectObjects(args.project, home=args.home, **common)
    return tasks.Objects(args.model, **common)


def photos_of(args: argparse.Namespace) -> list[str]:
    """The photos the paths name, minus anything inside --blur's folder (copies are not photos to do)."""
    found = expand(args.paths, warn=lambda message: print(message, file=sys.stderr))
    blur = getattr(args, "blur", None)
    if blur:
        folder = os.path.realpath(blur)
        found = [p for p in found if not Path(os.path.realpath(p)).is_relative_to(folder)]
    if not found:
        raise BadInput("no photos in the paths given")
    return found


def run(args: argparse.Namespace) -> int:
    if args.command == "keys":
        from vision_backend.api.keys import command

        return command(args.action, args.home, args.name, args.read_only)
    if args.command == "track":
        from vision_backend.batch.video import run_track

        return run_track(args, settings(args.set))
    if args.command == "detector":
        from vision_backend.batch.detector import run as run_detector

        return run_detector(args)
    from vision_backend.batch.output import open_writer

    photos = photos_of(args)
    task = make_task(args).resolve(photos)
    with open_writer(args.out, task.columns(), args.resume, task.count) as writer:
        todo = [p for p in photos if p not in writer.done]
        options = dict(batch_size=args.batch_size, progress=not args.quiet, skipped=len(photos) - len(todo))
        if args.ray is None:
            from vision_backend.batch.local import run_local

            summary = run_local(task, todo, writer.write, workers=args.workers, **options)
        else:
            from vision_backend.batch.ray_runner import run_ray

            summary = run_ray(task, todo, writer.write, address=args.ray or None, actors=args.actors,
                              cpus_per_actor=args.cpus_per_actor, **options)
    print(summary.text())
    print(f"rows in {args.out}")
    return 1 if summary.photos and summary.failed == summary.photos else 0  # nothing done: a script must know


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"\nstopped: the rows so far are in {getattr(args, 'out', '')}; carry on with --resume", file=sys.stderr)
        return 130
    except (UserError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
