"""Several servers behind the storage interface: catalogues in PostgreSQL, blobs in an S3 object store.

``VISION_LAB_DATABASE_URL`` (``postgresql+psycopg://user:password@host:port/database``) and ``VISION_LAB_BLOBS``
(``s3://bucket/prefix``, with ``VISION_LAB_S3_ENDPOINT`` for a store other than AWS and the usual
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``) choose it (:func:`vision_backend.storage.open_store`). Every
replica reads and writes the same database and bucket; what each derives from them (cached copies of blobs,
features, converted models) stays in its own ``$VISION_LAB_HOME/remote``, per node, made again at will.

The rules are the local store's: a change is one transaction holding its collection's write lock, a blob is
stored inside the transaction that records it (so a crash can only leave an unreferenced blob, which the sweep
on opening removes), blobs are content-addressed one to one with their keys. Nothing is cached in the process
but what is content-addressed (and so never stale): a change on one replica is in the others' next read.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from vision_backend import paths
from vision_backend.storage.postgres import Database, PostgresCatalogue
from vision_backend.storage.s3 import ObjectStore, S3Blobs
from vision_backend.storage.types import Store, join


class RemoteStore(Store):
    """Collections in a PostgreSQL database and an S3 bucket, shared by every server configured with them."""

    def __init__(self, database_url: str, blobs_url: str, endpoint: str | None = None, home: Path | None = None):
        if not database_url or not blobs_url:
            raise ValueError("A shared store needs both VISION_LAB_DATABASE_URL and VISION_LAB_BLOBS.")
        self.database = Database(database_url)
        self.objects = ObjectStore(blobs_url, endpoint)
        self.home = Path(home) if home else None

    def __repr__(self) -> str:
        return f"<RemoteStore {self.where}>"

    @property
    def where(self) -> str:
        return f"{self.database.where} and {self.objects.where}"

    @property
    def node_root(self) -> Path:
        """This node's folder for what it derives from the shared data (read each time: tests move the home)."""
        return self.home or paths.app_home() / "remote"

    def catalogue(self, scope: str, name: str, schema: str) -> PostgresCatalogue:
        return PostgresCatalogue(self.database, scope, name, schema)

    def blobs(self, scope: str, kind: str, suffix: str = "") -> S3Blobs:
        node = self.node_root / scope
        return S3Blobs(self.objects, join(scope, kind), node / ".blobs" / kind, node / ".scratch" / kind, suffix)

    def has(self, scope: str, name: str) -> bool:
        return bool(self.database.registry("SELECT 1 FROM {R}.catalogues WHERE scope = ? AND name = ?", (scope, name)))

    def children(self, parent: str, name: str) -> list[str]:
        rows = self.database.registry("SELECT leaf FROM {R}.catalogues WHERE parent = ? AND name = ?", (parent, name))
        return sorted(leaf for (leaf,) in rows)  # Python's order, as the local store's, whatever the collation

    def catalogues(self, prefix: str = "") -> list[tuple[str, str]]:
        return self.database.catalogues(prefix)

    def remove(self, scope: str) -> None:
        """The catalogues first, in one transaction (gone for every reader at once), then the blobs, then this
        node's derived files. Blobs a failure leaves behind are swept when a collection opens there again."""
        if not scope.strip("/"):
            raise ValueError("remove() needs a scope; the whole store is never removed at once.")
        self.database.drop(scope)
        self.objects.delete_many(self.objects.list(self.objects.key(scope)))
        shutil.rmtree(self.node_root / scope, ignore_errors=True)

    def local_dir(self, scope: str) -> Path:
        folder = self.node_root / scope
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def touch(self, scope: str) -> None:
        self.database.touch_scope(scope)

    def remove_stale(self, parent: str, max_age_s: float) -> int:
        """Scopes under ``parent`` neither touched nor written for ``max_age_s``; then this node's derived folders
        of scopes that no longer exist (each node sweeps its own when its pages run this)."""
        now = time.time()
        used = self.database.last_used(parent)
        stale = [child for child, at in used.items() if now - at > max_age_s]
        for child in stale:
            self.remove(join(parent, child))
        folder = self.node_root / parent
        for left in folder.iterdir() if folder.is_dir() else ():
            if left.is_dir() and not left.name.startswith(".") and left.name not in used \
                    and now - left.stat().st_mtime > max_age_s:
                shutil.rmtree(left, ignore_errors=True)
        return len(stale)
