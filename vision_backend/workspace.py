"""A workspace: everything one person makes — projects, a face gallery, trained models, exports.

On a laptop there is one local workspace, the app's data folder itself. On a shared server each
signed-in person has their own (``people/<id>``, the id a hash of the sign-in provider and the
person's subject, never a name they typed), and a demo room without sign-in gives each browser
visit a temporary one (``visits/<id>``) that is removed after a set time. A workspace is a prefix of
scopes in the configured store (:func:`vision_backend.storage.open_store`: folders and SQLite by
default, PostgreSQL and S3 on several servers), so nothing here knows which. Nothing a person makes
is written outside their workspace, and no name they type ever becomes part of its path unchecked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from vision_backend.face_recognition.gallery import Gallery
from vision_backend.storage import LocalStore, SavedModels, Store, join, open_store
from vision_backend.transfer.projects import CATALOGUE, Project

VISITS = "visits"


@dataclass(frozen=True)
class Workspace:
    store: Store
    prefix: str = ""
    owner: str = "local"
    """Who it belongs to, as the sidebar says it (an e-mail or name from sign-in, "this visit", "local")."""

    @classmethod
    def local(cls) -> "Workspace":
        """This machine's (or this deployment's) one shared workspace."""
        return cls(open_store())

    @classmethod
    def at(cls, folder: Path) -> "Workspace":
        """The workspace kept in ``folder`` (SQLite and folders), whatever the server is configured with."""
        return cls(LocalStore(Path(folder)))

    @classmethod
    def for_person(cls, issuer: str, subject: str, shown_as: str) -> "Workspace":
        person = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:24]
        return cls(open_store(), join("people", person), shown_as)

    @classmethod
    def for_visit(cls, visit: str) -> "Workspace":
        visit = hashlib.sha256(visit.encode()).hexdigest()[:24]
        return cls(open_store(), join(VISITS, visit), "this visit")

    @property
    def where(self) -> str:
        return f"{self.store.where} ({self.prefix})" if self.prefix else self.store.where

    def scope(self, *parts: str) -> str:
        return join(self.prefix, *parts)

    def touch(self) -> None:
        """Note that the workspace is in use (a visit's expires once unused for a while)."""
        self.store.touch(self.prefix)

    # ---- what it holds ---------------------------------------------------------------------------
    def projects(self) -> list[str]:
        return self.store.children(self.scope("projects"), CATALOGUE)

    def has_project(self, name: str) -> bool:
        return name in self.projects()

    def project(self, name: str, create: bool = True) -> Project:
        return Project(self.store, self.scope("projects"), name, create)

    def has_gallery(self) -> bool:
        return self.store.has(self.scope("faces"), "gallery")

    def gallery(self) -> Gallery:
        return Gallery(self.store, self.scope("faces"))

    def trained_cnns(self) -> SavedModels:
        """The CNNs trained on the Train a CNN page (one per session, the newest few kept)."""
        scope = self.scope("cnn")
        return SavedModels(self.store.catalogue(scope, "catalogue", ""), self.store.blobs(scope, "models", ".keras"))

    def derived(self, *parts: str) -> Path:
        """This machine's folder for files made from the workspace's data (exports in the making, conversions)."""
        return self.store.local_dir(self.scope(*parts))


def remove_expired_visits(max_age_s: float) -> int:
    """Delete visit workspaces untouched for ``max_age_s`` seconds; returns how many went."""
    return open_store().remove_stale(VISITS, max_age_s)
