"""Model and data-set cards: what a file is, where it comes from, and whether it is on this machine.

A card is data only (no loading code): title, task, licence, input, published accuracy, and the
files behind it. Files come from a PyPI package (``package``; OpenCV's Haar cascades, mtcnn,
dlib, ...) or live in the Keras cache (``cache``) under the names Keras itself uses
(``$KERAS_HOME/models/...``, ``$KERAS_HOME/datasets/...``) or, for ONNX/TFLite models and our
own data, under ``models/vision_lab/`` and ``datasets/vision_lab/``. The loader, the
preprocessing and the adapter of a model live on its :class:`~vision_backend.model.Model`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vision_backend.errors import ModelMissingError
from vision_backend.paths import keras_home

SEED = "python -m vision_backend.models seed FOLDER"


def seed_hint(names: list[str]) -> str:
    """How a file gets here without the internet: any folder holding it (a colleague's copy, a USB stick, a
    team's shared folder of real files), then ``seed``, which checks each file's hash before copying it."""
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    return f"put {shown} in a folder and run `{SEED}` (it checks each file's hash)"
KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class AssetFile:
    """One file (or folder tree) of a card, relative to the Keras cache root.

    ``file_hash`` is what the publisher gives: sha256 (64 hex digits) or, for Keras' own files,
    md5 (32 digits). ``seed_hash`` is the sha256 of the copy ``seed`` accepts where it differs
    from the download's bytes (Debian's recompressed Fashion-MNIST). A tree is built by
    ``build(target, download)`` from public downloads where it has one.
    """

    path: str
    url: str | None = None
    file_hash: str | None = None
    size: int | None = None
    is_tree: bool = False
    seed_hash: str | None = None
    build: Callable[..., None] | None = None
    optional: tuple[str, ...] = ()
    """Files of a tree that a build from public downloads cannot give (no public address); seeding brings them."""

    @property
    def local(self) -> Path:
        return keras_home() / self.path

    @property
    def name(self) -> str:
        return Path(self.path).name

    def present(self) -> bool:
        if self.is_tree:
            return self.local.is_dir() and any(self.local.iterdir())
        return self.local.is_file()

    def downloadable(self) -> bool:
        return bool(self.url or self.build)


@dataclass(frozen=True)
class ModelCard:
    """What a model or data set is, and the files behind it."""

    name: str
    title: str
    task: str
    licence: str
    source: str = "cache"  # or "package"
    input: str = ""
    preprocessing: str = ""
    params: int | None = None
    accuracy: str = ""
    files: tuple[AssetFile, ...] = ()
    package: str | None = None
    package_files: tuple[str, ...] = ()
    """Files inside ``package`` (relative to its folder) that must exist."""
    kind: str = "model"  # or "dataset"
    seedable: bool = False
    """True where a copy is in the team's shared folder (so ``seed`` can get it offline)."""
    note: str = ""
    offline: str = ""
    """How to get it without the internet where that is not "copy its files and seed them" (a Debian package)."""

    def package_dir(self) -> Path | None:
        spec = importlib.util.find_spec(self.package) if self.package else None
        if spec is None:
            return None
        if spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0])
        return Path(spec.origin).parent if spec.origin else None

    def paths(self) -> list[Path]:
        if self.source == "package":
            folder = self.package_dir()
            return [folder / f for f in self.package_files] if folder else []
        return [f.local for f in self.files]

    def path(self, index: int = 0) -> Path:
        """The card's ``index``-th file, raising :class:`ModelMissingError` if any is absent."""
        self.require()
        return self.paths()[index]

    def missing(self) -> list[str]:
        """Human names of what is missing; empty when the card is ready."""
        if self.source == "package":
            folder = self.package_dir()
            if folder is None:
                return [f"the Python package '{self.package}'"]
            return [str(folder / f) for f in self.package_files if not (folder / f).exists()]
        return [str(f.local) for f in self.files if not f.present()]

    def ready(self) -> bool:
        return not self.missing()

    def downloadable(self) -> bool:
        return self.source == "cache" and all(f.present() or f.downloadable() for f in self.files)

    def download_size(self) -> int:
        """Bytes still to download (0 where unknown or present)."""
        return sum(f.size or 0 for f in self.files if not f.present())

    def how_to_get(self) -> str:
        """The one command that gets it (downloading where it has a public address), for a code box."""
        if self.source == "package":
            return "pip install -r requirements.txt"
        if self.downloadable():
            return f"python -m vision_backend.models fetch {self.name}"
        names = self.file_names()
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        return self.offline or f"{SEED}   # no public download: first put {shown} in FOLDER"

    def offline_hint(self) -> str:
        """How to get it on a machine without the internet, in a sentence a newcomer can act on."""
        if self.source == "package":
            return "install the requirements from a machine that reaches PyPI"
        return self.offline or seed_hint(self.file_names())

    def file_names(self) -> list[str]:
        """The names of its files still missing (all of them when none is), folders with a slash."""
        names = [f.name + ("/" if f.is_tree else "") for f in self.files if not f.present()]
        return names or [f.name for f in self.files]

    def status(self) -> str:
        if self.ready():
            return "ready"
        return "missing — fetched on first use" if self.downloadable() else "missing"

    def require(self) -> None:
        missing = self.missing()
        if missing:
            raise ModelMissingError(self, missing)




def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_matches(path: Path, expected: str | None) -> bool:
    """True when ``path`` has the ``expected`` sha256 (64 hex digits) or md5 (32); no hash matches anything."""
    if not expected:
        return True
    algorithm = "sha256" if len(expected) == 64 else "md5"
    return file_digest(path, algorithm) == expected.lower()


def shared_file(path: str, sha256: str, size: int, url: str | None = None) -> AssetFile:
    """A file with a copy in the team's shared folder, its sha256 and size as the MANIFEST gives them."""
    return AssetFile(path=path, url=url, file_hash=sha256, size=size)
