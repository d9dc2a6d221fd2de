"""A workspace: everything one person makes — projects, detection projects, a face gallery, trained models, exports.

On a laptop there is one local workspace, the app's data folder itself. On a shared server each
signed-in person has their own (``people/<id>``, the id a hash of the sign-in provider and the
person's subject, never a name they typed), and a demo room without sign-in gives each browser
visit a temporary one (``visits/<id>``) that is removed after a set time. A workspace is a prefix of
scopes in the configured store (:func:`vision_backend.storage.open_store`: folders and SQLite by
default, PostgreSQL and S3 on several servers), so nothing here knows which. Nothing a person makes
is written outside their workspace, and no name they type ever becomes part of its path unchecked.

``python -m vision_backend.workspace export DIR`` copies workspaces from the store this server is configured
with (PostgreSQL and S3, say) into a folder of SQLite files and blobs, ``import DIR`` the other way: every
collection's rows and files, each collection in one transaction, checked at the end (rows and the SHA-256 of
every file), so a workspace moves between the two with nothing lost.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from vision_backend import resume
from vision_backend.errors import NameTaken, UserError
from vision_backend.face_recognition import gallery as galleries
from vision_backend.face_recognition.gallery import Gallery
from vision_backend.own_detection import projects as detection
from vision_backend.own_detection.projects import DetectionProject
from vision_backend.storage import LocalStore, SavedModels, Store, join, open_store, saved
from vision_backend.transfer import projects
from vision_backend.transfer.projects import CATALOGUE, Project

VISITS = "visits"
SERVER_SCOPE = ".server"
"""The server's own catalogues (``vision_backend.visits``' sign-outs): nobody's workspace, never copied with them."""
KEYS_SCOPE, KEYS_CATALOGUE = "api", "keys"
KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, digest TEXT NOT NULL, writable INTEGER NOT NULL,
    created {REAL} NOT NULL, created_by TEXT NOT NULL, last_used {REAL}, last_from TEXT)
"""
"""The workspace's API keys (:mod:`vision_backend.api.keys` makes and checks them): here, so that a workspace's
copy knows every kind of collection it holds without importing the API."""


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

    def detection_projects(self) -> list[str]:
        """The projects of boxes drawn on photos (the Your own objects page's), by name."""
        return self.store.children(self.scope(detection.FOLDER), detection.CATALOGUE)

    def has_detection_project(self, name: str) -> bool:
        return name in self.detection_projects()

    def detection_project(self, name: str, create: bool = True) -> DetectionProject:
        return DetectionProject(self.store, self.scope(detection.FOLDER), name, create)

    def own_detectors(self, kind: str | None = None) -> dict[str, Any]:
        """The newest detector (of ``kind``: fast or rcnn, if given) trained in each detection project, as model
        objects by name (``<project>/<stem>``), loaded once per process and shared read-only."""
        found = {}
        for name in self.detection_projects():
            project = self.detection_project(name, create=False)
            if project.newest_detector(kind) is not None:
                detector = project.detector(kind=kind)
                found[detector.name] = detector
        return found


def remove_expired_visits(max_age_s: float) -> int:
    """Delete visit workspaces untouched for ``max_age_s`` seconds; returns how many went."""
    return open_store().remove_stale(VISITS, max_age_s)


# ---- moving workspaces between stores ----------------------------------------------------------------
@dataclass(frozen=True)
class Collection:
    """One kind of collection a workspace holds, as a copy must carry it: its catalogue's tables (in the order
    their rows go in, for the foreign keys) and its kinds of blobs. It lives in a scope named ``leaf``, or in
    any scope right under a folder named ``folder`` (a project)."""

    catalogue: str
    schema: str
    tables: tuple[str, ...]
    blobs: tuple[str, ...]
    folder: str = ""
    leaf: str = ""

    def holds(self, scope: str, name: str) -> bool:
        parent, _, leaf = scope.rpartition("/")
        if name != self.catalogue:
            return False
        return parent.rpartition("/")[2] == self.folder if self.folder else leaf == self.leaf


COLLECTIONS = (
    Collection(CATALOGUE, f"{projects.SCHEMA};{saved.SCHEMA}", ("classes", "examples", "saved_models"),
               ("images", "models"), folder="projects"),
    Collection(detection.CATALOGUE, f"{detection.SCHEMA};{saved.SCHEMA}", ("classes", "photos", "boxes", "saved_models"),
               ("photos", "models"), folder=detection.FOLDER),
    Collection("gallery", galleries.SCHEMA, ("people", "faces"), ("crops",), leaf="faces"),
    Collection("catalogue", saved.SCHEMA, ("saved_models",), ("models",), leaf="cnn"),
    Collection(KEYS_CATALOGUE, KEYS_SCHEMA, ("api_keys",), (), leaf=KEYS_SCOPE),
    Collection(resume.CATALOGUE, resume.SCHEMA, ("resume",), ("photos",), leaf=resume.SCOPE),
)


def collection_of(scope: str, name: str) -> Collection:
    """What the catalogue ``name`` of ``scope`` is; one of no known kind stops the copy (never left out)."""
    for kind in COLLECTIONS:
        if kind.holds(scope, name):
            return kind
    raise RuntimeError(f"{scope}/{name}: a catalogue of no known kind; nothing was copied from it.")


def fingerprint(rows: dict[str, list[tuple]]) -> str:
    """A hash of every table's rows, whatever their order and whichever engine read them."""
    digest = hashlib.sha256()
    for table in sorted(rows):
        digest.update(f"{table}:{len(rows[table])}\n".encode())
        for row in sorted(repr(tuple(bytes(v).hex() if isinstance(v, (bytes, memoryview)) else v for v in r))
                          for r in rows[table]):
            digest.update(row.encode() + b"\n")
    return digest.hexdigest()


def _read_rows(db: Any, kind: Collection) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()]
            for table in kind.tables}


def snapshot(store: Store, scope: str, kind: Collection) -> tuple[dict[str, list[tuple]], dict[str, set[str]]]:
    """A collection's rows and blob keys, read in one write transaction (one consistent view; writers wait)."""
    catalogue = store.catalogue(scope, kind.catalogue, kind.schema)
    unknown = set(catalogue.tables()) - set(kind.tables)
    if unknown:
        raise RuntimeError(f"{scope}: tables of no known kind ({', '.join(sorted(unknown))}); nothing was copied.")
    with catalogue.transaction() as db:
        return _read_rows(db, kind), {blob: store.blobs(scope, blob).keys() for blob in kind.blobs}


def _checked(key: str, data: bytes) -> bytes:
    if hashlib.sha256(data).hexdigest() != key[:64]:
        raise RuntimeError(f"the file {key} does not hold the bytes its name says; nothing more was copied.")
    return data


def copy_blobs(source: Store, target: Store, scope: str, keys: dict[str, set[str]]) -> int:
    """Every blob into the target under the same key (its suffix taken from the key itself)."""
    for blob, found in keys.items():
        reader = source.blobs(scope, blob)
        for key in sorted(found):
            if target.blobs(scope, blob, key[64:]).put(_checked(key, reader.read(key))) != key:
                raise RuntimeError(f"{scope}/{blob}/{key}: stored under another name; nothing more was copied.")
    return sum(len(found) for found in keys.values())


def copy_collection(source: Store, target: Store, scope: str, kind: Collection, replace: bool = False) -> str:
    """One collection copied in one transaction of the target (its blobs stored inside it, as every writer does),
    then checked; one line saying what. A target that already holds this very collection is left as it is."""
    rows, keys = snapshot(source, scope, kind)
    catalogue = target.catalogue(scope, kind.catalogue, kind.schema)
    with catalogue.transaction() as db:
        there = _read_rows(db, kind)
        if fingerprint(there) != fingerprint(rows):
            if any(there.values()) and not replace:
                raise NameTaken(f"{target.where} already holds another “{scope}”; nothing was copied into it "
                                "(--replace overwrites it).")
            copy_blobs(source, target, scope, keys)
            for table in reversed(kind.tables):
                db.execute(f"DELETE FROM {table}")
            for table in kind.tables:
                for row in rows[table]:
                    db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
                catalogue.continue_ids(db, table)
    return check_copy(target, scope, kind, rows, keys)


def check_copy(target: Store, scope: str, kind: Collection, rows: dict[str, list[tuple]],
               keys: dict[str, set[str]]) -> str:
    """The target's rows against the source's (counts and a hash of every row), and every file's bytes against
    its name (its SHA-256), read back from the target."""
    catalogue = target.catalogue(scope, kind.catalogue, kind.schema)
    with catalogue.transaction() as db:
        if fingerprint(_read_rows(db, kind)) != fingerprint(rows):
            raise RuntimeError(f"{scope}: the copied rows differ from the source's.")
        for blob, found in keys.items():
            stored = target.blobs(scope, blob)
            if found - stored.keys():
                raise RuntimeError(f"{scope}/{blob}: {len(found - stored.keys())} file(s) missing in the copy.")
            for key in found:
                _checked(key, target.blobs(scope, blob, key[64:]).read(key))
    counts = ", ".join(f"{len(rows[t])} {t}" for t in kind.tables)
    return f"{scope or '.'} ({kind.catalogue}): {counts}, {sum(map(len, keys.values()))} files — copied and checked"


def copy_workspaces(source: Store, target: Store, prefix: str = "", replace: bool = False,
                    say: Any = print) -> int:
    """Every collection at or under ``prefix`` (every workspace for ``""``) copied and checked; how many."""
    found = [(scope, name) for scope, name in source.catalogues(prefix) if not scope.startswith(SERVER_SCOPE)]
    kinds = [(scope, collection_of(scope, name)) for scope, name in found]  # all known before anything is copied
    for scope, kind in kinds:
        say(copy_collection(source, target, scope, kind, replace))
    return len(kinds)


def _shared(args: argparse.Namespace) -> Store:
    """The store given on the command line, else the one this server is configured with."""
    if args.database or args.blobs:
        from vision_backend.storage.remote import RemoteStore

        return RemoteStore(args.database, args.blobs, args.endpoint)
    return open_store()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vision_backend.workspace", description="Copy workspaces "
                                     "between this server's store and a folder (SQLite and files), checked.")
    parser.add_argument("action", choices=("export", "import"), help="export: store -> DIR; import: DIR -> store")
    parser.add_argument("folder", type=Path, help="the folder (a workspace folder: SQLite files and blobs)")
    parser.add_argument("--workspace", default="", help="only this workspace (people/<id>, visits/<id>); default all")
    parser.add_argument("--database", help="PostgreSQL URL (default: VISION_LAB_DATABASE_URL)")
    parser.add_argument("--blobs", help="s3://bucket/prefix (default: VISION_LAB_BLOBS)")
    parser.add_argument("--endpoint", help="the S3 endpoint (default: VISION_LAB_S3_ENDPOINT)")
    parser.add_argument("--replace", action="store_true", help="overwrite collections the target holds otherwise")
    args = parser.parse_args(argv)
    shared, folder = _shared(args), LocalStore(args.folder.expanduser())
    source, target = (shared, folder) if args.action == "export" else (folder, shared)
    print(f"{args.action}: {source.where} -> {target.where}", flush=True)
    try:
        count = copy_workspaces(source, target, args.workspace.strip("/"), args.replace)
    except (UserError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{count} collection(s) copied and checked", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
