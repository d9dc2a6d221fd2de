"""API keys: made per workspace, stored hashed in that workspace's own catalogue, each reaching that workspace only.

A key reads ``vl_<workspace>_<id>_<secret>``. ``<workspace>`` says where its catalogue is (``local``: this
server's one local workspace; ``p…``: a signed-in person's, ``people/<hash>``; ``v…``: a demo-room visit's,
``visits/<hash>``), so a call finds its key's row without a server-wide table, and a workspace that is removed
(a visit that expired) takes its keys with it. The catalogue (scope ``api``, through the storage interface, so
SQLite on a laptop and PostgreSQL on several servers) keeps each key's SHA-256, never the key: the secret is
192 random bits, so a slow hash would add nothing. A key is read-only or read-write, has a name unique in its
workspace, says who made it, and when and from where it was last used.

A key checked once is remembered for :data:`REMEMBER_S` seconds, so a busy client costs no database read a
call; a revoked key stops at once in this process and within that time on other replicas. Last use is written
at most once a :data:`NOTE_USE_EVERY_S` per key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from vision_backend.api.answers import Unauthorized
from vision_backend.errors import BadInput, NameTaken, NotFound
from vision_backend.storage import check_name, configured, join, open_store
from vision_backend.workspace import KEYS_CATALOGUE, KEYS_SCHEMA, KEYS_SCOPE, VISITS, Workspace

SCOPE, CATALOGUE, SCHEMA = KEYS_SCOPE, KEYS_CATALOGUE, KEYS_SCHEMA
KEY = re.compile(r"vl_(local|[pv][0-9a-f]{24})_([0-9a-f]{12})_([0-9a-f]{48})")
KINDS = {"p": "people", "v": VISITS}
REMEMBER_S = 10.0
NOTE_USE_EVERY_S = 60.0


@dataclass(frozen=True)
class Access:
    """What a checked key may do: its workspace, whether it may change it, and its name."""

    key_id: str
    name: str
    workspace: Workspace
    writable: bool


def workspace_token(space: Workspace) -> str:
    """The part of a key that names ``space`` (``local``, ``p<hash>``, ``v<hash>``)."""
    if not space.prefix:
        return "local"
    kind, _, person = space.prefix.partition("/")
    token = {v: k for k, v in KINDS.items()}.get(kind, "") + person
    if not re.fullmatch(r"[pv][0-9a-f]{24}", token):
        raise ValueError(f"API keys are made for a local, a person's or a visit's workspace, not {space.prefix!r}")
    return token


def prefix_of(token: str) -> str:
    return "" if token == "local" else join(KINDS[token[0]], token[1:])


def digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(f"{key_id}:{secret}".encode()).hexdigest()


class KeyRing:
    """One workspace's keys: made, listed and revoked here (the keys page and the command line)."""

    def __init__(self, space: Workspace):
        self.space = space
        self.db = space.store.catalogue(space.scope(SCOPE), CATALOGUE, SCHEMA)

    def create(self, name: str, writable: bool, by: str) -> str:
        """A new key called ``name``; returns the key itself, which is shown once and never stored."""
        name = check_name(name, "key name")
        key_id, secret = secrets.token_hex(6), secrets.token_hex(24)
        try:
            with self.db.transaction() as db:
                db.execute("INSERT INTO api_keys (id, name, digest, writable, created, created_by) "
                           "VALUES (?, ?, ?, ?, ?, ?)", (key_id, name, digest(key_id, secret), int(writable),
                                                         time.time(), by))
        except Exception as error:
            if self.db.unique_violation(error):
                raise NameTaken(f"A key called “{name}” exists already; pick another name.") from None
            raise
        return f"vl_{workspace_token(self.space)}_{key_id}_{secret}"

    def list(self) -> list[dict[str, Any]]:  # noqa: A003 - a ring's keys
        rows = self.db.rows("SELECT id, name, writable, created, created_by, last_used, last_from FROM api_keys "
                            "ORDER BY created, name")
        return [{"id": i, "name": n, "access": "read-write" if w else "read-only", "created": c, "created_by": b,
                 "last_used": u, "last_from": f or ""} for i, n, w, c, b, u, f in rows]

    def revoke(self, name: str) -> None:
        """Delete the key called ``name``: it stops working at once here (see the module's note on replicas)."""
        found = self.db.rows("SELECT id FROM api_keys WHERE name = ?", (name,))
        if not found:
            raise NotFound(f"There is no key called “{name}” in this workspace.")
        with self.db.transaction() as db:
            db.execute("DELETE FROM api_keys WHERE id = ?", (found[0][0],))
        _REMEMBERED.forget(found[0][0])

    def check(self, key_id: str, secret: str) -> tuple[str, bool] | None:
        """(name, writable) when ``secret`` is key ``key_id``'s, else None."""
        rows = self.db.rows("SELECT name, digest, writable FROM api_keys WHERE id = ?", (key_id,))
        if rows and hmac.compare_digest(rows[0][1], digest(key_id, secret)):
            return rows[0][0], bool(rows[0][2])
        return None

    def note_use(self, key_id: str, when: float, source: str) -> None:
        with self.db.transaction() as db:
            db.execute("UPDATE api_keys SET last_used = ?, last_from = ? WHERE id = ?", (when, source[:200], key_id))


class _Remembered:
    """Keys checked lately (by their digest) and when each one's use was last written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._access: dict[str, tuple[Access, float]] = {}
        self._noted: dict[str, float] = {}
        self._rings: dict[tuple[Any, str], KeyRing] = {}

    def get(self, token: str) -> Access | None:
        with self._lock:
            found = self._access.get(token)
        return found[0] if found and time.monotonic() < found[1] else None

    def keep(self, token: str, access: Access) -> None:
        with self._lock:
            if len(self._access) > 10_000:
                self._access.clear()
            self._access[token] = (access, time.monotonic() + REMEMBER_S)

    def forget(self, key_id: str) -> None:
        with self._lock:
            for token in [t for t, (a, _) in self._access.items() if a.key_id == key_id]:
                del self._access[token]

    def due(self, key_id: str, now: float, claim: bool = True) -> bool:
        """True when ``key_id``'s last use should be written now (and, with ``claim``, notes that it is)."""
        with self._lock:
            if now - self._noted.get(key_id, 0.0) < NOTE_USE_EVERY_S:
                return False
            if claim:
                self._noted[key_id] = now
            return True

    def ring(self, prefix: str) -> KeyRing | None:
        """The key ring of workspace ``prefix`` of this server's store; None when it has no keys at all (a made-up
        workspace is never created by asking)."""
        store, cache_key = open_store(), (configured(), prefix)
        with self._lock:
            if cache_key in self._rings:
                return self._rings[cache_key]
        if not store.has(join(prefix, SCOPE), CATALOGUE):
            return None
        ring = KeyRing(Workspace(store, prefix, "API"))
        with self._lock:
            return self._rings.setdefault(cache_key, ring)


_REMEMBERED = _Remembered()


def _token(header: str | None) -> str:
    scheme, _, key = (header or "").strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def remembered(header: str | None) -> Access | None:
    """The access of a key checked lately whose last use need not be written now: no database, no thread (the
    event loop may call it); None means :func:`authenticate` must decide."""
    token = _token(header)
    access = _REMEMBERED.get(hashlib.sha256(token.encode()).hexdigest()) if token else None
    return access if access is not None and not _REMEMBERED.due(access.key_id, time.time(), claim=False) else None


def authenticate(header: str | None, source: str = "") -> Access:
    """The access an ``Authorization: Bearer KEY`` header gives, or :class:`Unauthorized` (no reason given).

    Blocking (a database read on a key not seen lately): call it off the event loop."""
    token = _token(header)
    found = KEY.fullmatch(token)
    if found is None:
        raise Unauthorized()
    remembered = hashlib.sha256(token.encode()).hexdigest()
    access = _REMEMBERED.get(remembered) or _check(*found.groups())
    _REMEMBERED.keep(remembered, access)
    now = time.time()
    if _REMEMBERED.due(access.key_id, now):
        ring = _REMEMBERED.ring(access.workspace.prefix)
        if ring is not None:
            ring.note_use(access.key_id, now, source)
            access.workspace.touch()  # a visit's workspace (and its keys) lives while it is used
    return access


def _check(token: str, key_id: str, secret: str) -> Access:
    prefix = prefix_of(token)
    ring = _REMEMBERED.ring(prefix)
    checked = ring.check(key_id, secret) if ring is not None else None
    if checked is None:
        raise Unauthorized()
    name, writable = checked
    return Access(key_id, name, Workspace(open_store(), prefix, f"API key “{name}”"), writable)


def command(action: str, home: str | None, name: str | None, read_only: bool = False) -> int:
    """``python -m vision_backend keys create|list|revoke``: an operator's keys for the workspace in ``home`` (this
    machine's local workspace by default); a new key is printed once, on standard output."""
    import getpass
    from datetime import datetime
    from pathlib import Path

    space = Workspace.at(Path(home).expanduser()) if home else Workspace.local()
    if action in ("create", "revoke") and not name:
        raise BadInput(f"keys {action} needs --name NAME")
    if action != "create" and not space.store.has(space.scope(SCOPE), CATALOGUE):
        raise NotFound(f"There are no API keys in {space.where}.")
    ring = KeyRing(space)
    if action == "create":
        print(ring.create(name or "", not read_only, f"{getpass.getuser()} (command line)"))
        print(f"made {'read-only' if read_only else 'read-write'} key “{name}” for {space.where}; it is shown this "
              "once. The server must use this folder as VISION_LAB_HOME.", file=sys.stderr)
    elif action == "revoke":
        ring.revoke(name or "")
        print(f"revoked “{name}” (a server that checked it in the last {REMEMBER_S:.0f} s forgets it by then)")
    else:
        for key in ring.list():
            used = datetime.fromtimestamp(key["last_used"]).isoformat(" ", "minutes") if key["last_used"] else "never"
            print(f"{key['name']:<24} {key['access']:<10} made by {key['created_by']:<28} last used {used} "
                  f"{key['last_from']}".rstrip())
    return 0
