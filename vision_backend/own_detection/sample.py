"""The raccoon set: 200 real photos with boxes, registered as a data set (source, licence, every file's hash) so a
person can train a detector on it at one click.

Seeded from the team's shared folder like the demo photos (``python -m vision_backend.models seed DIR``: a folder
called ``raccoon`` whose files match ``vision_backend/manifests/raccoon.sha256``), or built where the internet is
from the author's repository at the commit the shared copy was taken from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vision_backend.cards import AssetFile, ModelCard

RACCOON_COMMIT = "93938849301895fb73909842ba04af9b602f677a"
RACCOON_ARCHIVE = f"https://github.com/datitran/raccoon_dataset/archive/{RACCOON_COMMIT}.tar.gz"
"""The repository at that commit (GitHub makes its archives on demand, so no hash is published: every kept file is
checked against our manifest instead)."""
SPLITS = {"data/train_labels.csv": "train_labels.csv", "data/test_labels.csv": "test_labels.csv"}
SAMPLE_PROJECT = "Raccoons"


def build_raccoon(folder: Path, download: Callable[..., Path]) -> None:
    """``images/``, ``annotations/`` and the author's split out of the repository's archive (read as a stream;
    only the files of our manifest are kept), then the archive is removed."""
    from vision_backend.fetch import extract_members, tree_manifest

    wanted, prefix = set(tree_manifest(RACCOON_SET.files[0])), f"raccoon_dataset-{RACCOON_COMMIT}/"

    def route(member: str) -> list[Path]:
        relative = member[len(prefix):] if member.startswith(prefix) else ""
        relative = SPLITS.get(relative, relative)
        return [folder / relative] if relative in wanted else []

    archive = download(RACCOON_ARCHIVE, ".raccoon_dataset.tar.gz")
    extract_members(archive, route)
    archive.unlink()


RACCOON_SET = ModelCard(
    name="raccoon", title="Raccoon boxes (Dat Tran's raccoon set)", task="object detection data", kind="dataset",
    seedable=True, licence="MIT (the repository); photos from Google and Pixabay, no per-photo licence",
    files=(AssetFile("datasets/vision_lab/raccoon", is_tree=True, build=build_raccoon),),
    input="200 JPEGs (3 greyscale), Pascal VOC XML, the author's split as CSV (160 / 40 photos)",
    accuracy="217 boxes of one class, raccoon; 1-4 a photo",
    note="Credit: Dat Tran's raccoon_dataset (github.com/datitran/raccoon_dataset), MIT. Four photos appear twice "
         "with different boxes; a project keeps each photo once, with the first copy's box.",
)


def load_sample(project: object, progress: Callable[[int, int], None] | None = None) -> object:
    """The raccoon set's photos and boxes into ``project`` (a ``DetectionProject``); returns its import report."""
    return project.import_set(RACCOON_SET.path(), progress)  # type: ignore[attr-defined]


__all__ = ["RACCOON_SET", "SAMPLE_PROJECT", "build_raccoon", "load_sample"]
