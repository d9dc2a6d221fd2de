"""A workspace: everything one person makes — projects, a face gallery, trained models, exports.

On a laptop there is one local workspace, the app's data folder itself. On a shared server each
signed-in person has their own (``people/<id>``, the id a hash of the sign-in provider and the
person's subject, never a name they typed), and a demo room without sign-in gives each browser
visit a temporary one (``visits/<id>``) that is removed after a set time. Nothing a person makes
is written outside their workspace, and no name they type ever becomes part of its path.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from vision_backend import paths
from vision_backend.face_recognition.gallery import Gallery
from vision_backend.transfer.projects import Project, list_projects


@dataclass(frozen=True)
class Workspace:
    root: Path
    owner: str = "local"
    """Who it belongs to, as the sidebar says it (an e-mail or name from sign-in, "this visit", "local")."""

    @classmethod
    def local(cls) -> "Workspace":
        return cls(paths.app_home())

    @classmethod
    def for_person(cls, issuer: str, subject: str, shown_as: str) -> "Workspace":
        person = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:24]
        return cls(paths.app_dir("people", person), shown_as)

    @classmethod
    def for_visit(cls, visit: str) -> "Workspace":
        visit = hashlib.sha256(visit.encode()).hexdigest()[:24]
        return cls(paths.app_dir("visits", visit), "this visit")

    def folder(self, *parts: str) -> Path:
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def projects_root(self) -> Path:
        return self.folder("projects")

    def projects(self) -> list[str]:
        return list_projects(self.projects_root)

    def project(self, name: str, create: bool = True) -> Project:
        return Project(self.projects_root, name, create)

    def gallery(self) -> Gallery:
        return Gallery(self.folder("faces"))

    @property
    def models_dir(self) -> Path:
        return self.folder("models")

    def prune_models(self, pattern: str, keep: int) -> list[Path]:
        """Delete all but the ``keep`` newest files matching ``pattern`` in the models folder, so that a
        model saved per session (two tabs never overwrite each other) does not pile up; returns the removed."""
        files = sorted(self.models_dir.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
        return files[keep:]


def remove_expired_visits(max_age_s: float) -> int:
    """Delete visit workspaces untouched for ``max_age_s`` seconds; returns how many went."""
    root = paths.app_home() / "visits"
    removed = 0
    for visit in root.iterdir() if root.is_dir() else ():
        newest = max((p.stat().st_mtime for p in visit.rglob("*")), default=visit.stat().st_mtime)
        if time.time() - newest > max_age_s:
            shutil.rmtree(visit, ignore_errors=True)
            removed += 1
    return removed
