"""Who a browser is, on every replica: its visit (a signed cookie) and whether its sign-in still holds.

**A visit that survives.** A demo room's workspace (``VISION_LAB_WORKSPACES=per-visit``) used to be named by a
random id in the Streamlit session, so a reload, a second tab or a failover to another replica started a new
one and the visitor's projects were gone. Now the id lives in a cookie, ``vision_lab_visit``: HttpOnly (no
script reads it), SameSite=Lax, expiring with the visit (``VISION_LAB_VISIT_HOURS``, renewed on page loads) and
signed with an HMAC-SHA256 of ``VISION_LAB_SECRET`` (the same on every replica; on a laptop a secret made once
and kept, mode 600, in ``$VISION_LAB_HOME/.secret``). :class:`VisitCookie`, a Starlette middleware, sets it on the
app's HTML answers when it is absent, forged, expired or half-way through its life; a page run reads it back
(``st.context.cookies``) and :func:`verify` it. A cookie that does not verify is never an error: it is a new visit.

**Sign-out that holds everywhere.** Streamlit's sign-in cookie (``_streamlit_user``) is stateless: a copy taken
before a sign-out kept signing a fresh browser in. Each sign-out is recorded in the shared store (a small
server-level catalogue, outside every workspace, so every replica reads it), and a sign-in cookie issued at or
before the person's last sign-out is refused (:func:`revoked`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from vision_backend import paths
from vision_backend.storage import Catalogue, Store, join
from vision_backend.workspace import SERVER_SCOPE  # nobody's workspace: a name a person types never starts with a dot

COOKIE = "vision_lab_visit"
SECRET_FILE = ".secret"
VERSION = "v1"
SIGN_OUTS = "sign_outs"
SIGN_OUTS_SCHEMA = "CREATE TABLE IF NOT EXISTS sign_outs (person TEXT PRIMARY KEY, at {REAL} NOT NULL)"
_VISIT_ID = re.compile(r"[0-9a-f]{32}")


def visit_hours() -> float:
    """How long a visit's work is kept after its last use (and its cookie after the last page load)."""
    try:
        hours = float(os.environ.get("VISION_LAB_VISIT_HOURS") or 4)
    except ValueError:
        hours = 4.0
    return hours if hours > 0 else 4.0


# ---- the secret ---------------------------------------------------------------------------------------
def secret() -> bytes:
    """``VISION_LAB_SECRET`` (every replica the same), else this machine's own, made once."""
    given = os.environ.get("VISION_LAB_SECRET", "").strip()
    return given.encode() if given else _home_secret(paths.app_home())


@functools.lru_cache(maxsize=8)
def _home_secret(home: Path) -> bytes:
    """The secret kept in ``home`` (mode 600), made by whichever process comes first: written whole to a
    temporary file, then linked into place, so two processes starting together end up with one secret."""
    path = home / SECRET_FILE
    if not path.is_file():
        temp = home / f"{SECRET_FILE}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(handle, secrets.token_hex(32).encode())
            os.fsync(handle)
        finally:
            os.close(handle)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process made it first: theirs it is
        finally:
            temp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    value = path.read_bytes().strip()
    if len(value) < 32:
        raise RuntimeError(f"{path} holds no usable secret: remove it and a new one is made.")
    return value


# ---- the visit cookie ----------------------------------------------------------------------------------
def _mac(visit: str, expires: int, key: bytes) -> str:
    digest = hmac.new(key, f"visit|{VERSION}|{visit}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issue(visit: str | None = None, now: float | None = None, hours: float | None = None) -> str:
    """A signed cookie value for ``visit`` (a new visit if None), valid for ``hours`` from ``now``."""
    visit = visit or uuid.uuid4().hex
    expires = int((now or time.time()) + (hours or visit_hours()) * 3600)
    return f"{VERSION}.{visit}.{expires}.{_mac(visit, expires, secret())}"


def _parts(value: str | None, now: float | None = None) -> tuple[str, int] | None:
    """(visit, expires) of a cookie value that is well formed, signed with our secret and not expired."""
    if not value or len(value) > 200:
        return None
    fields = value.split(".")
    if len(fields) != 4 or fields[0] != VERSION or not _VISIT_ID.fullmatch(fields[1]) or not fields[2].isdigit():
        return None
    visit, expires = fields[1], int(fields[2])
    if not hmac.compare_digest(fields[3], _mac(visit, expires, secret())) or expires <= (now or time.time()):
        return None
    return visit, expires


def verify(value: str | None, now: float | None = None) -> str | None:
    """The visit a cookie names, or None when it is absent, malformed, forged or expired (never raises)."""
    found = _parts(value, now)
    return found[0] if found else None


def renewed(value: str | None, now: float | None = None) -> str | None:
    """A new cookie value to send: a new visit for a missing or bad cookie, the same visit with a fresh expiry
    once half of its life is gone, None while it is fine as it is."""
    now = now or time.time()
    found = _parts(value, now)
    if found is None:
        return issue(now=now)
    visit, expires = found
    return issue(visit, now) if expires - now < visit_hours() * 1800 else None


def set_cookie_header(value: str, secure: bool) -> bytes:
    attributes = f"{COOKIE}={value}; Path=/; Max-Age={int(visit_hours() * 3600)}; HttpOnly; SameSite=Lax"
    return (attributes + ("; Secure" if secure else "")).encode("latin-1")


NOT_PAGES = ("/_stcore/", "/static/", "/media/", "/component/", "/app/static/", "/api/", "/auth/",
             "/oauth2callback")
"""Paths that never answer with the app's page (its websocket, files, API, sign-in routes)."""


def _header(scope: dict[str, Any], name: bytes) -> str:
    return next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == name), "")


def is_page_load(scope: dict[str, Any]) -> bool:
    """A browser asking for the app's HTML page (a navigation: the first load, a reload, a second tab)."""
    if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
        return False
    if scope.get("path", "/").startswith(NOT_PAGES):
        return False
    return _header(scope, b"sec-fetch-dest") == "document" or "text/html" in _header(scope, b"accept")


def request_cookie(scope: dict[str, Any], name: str = COOKIE) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(_header(scope, b"cookie"))
    except Exception:  # noqa: BLE001 - a cookie header we cannot parse is a visit without a cookie
        return None
    return jar[name].value if name in jar else None


class VisitCookie:
    """ASGI middleware: the app's page answers carry a signed visit cookie when the browser's is missing, bad or
    getting old (it wraps Streamlit's own server: ``app.py``)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        value = renewed(request_cookie(scope)) if is_page_load(scope) else None
        if value is None:
            await self.app(scope, receive, send)
            return
        secure = scope.get("scheme") == "https" or _header(scope, b"x-forwarded-proto") == "https"

        async def with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", set_cookie_header(value, secure))]}
            await send(message)

        await self.app(scope, receive, with_cookie)


# ---- sign-outs, seen by every replica ------------------------------------------------------------------
def person_key(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def _sign_outs(store: Store) -> Catalogue:
    """The store's sign-out catalogue, opened once per process (opening one makes its table if new)."""
    return store.catalogue(join(SERVER_SCOPE, "sign-outs"), SIGN_OUTS, SIGN_OUTS_SCHEMA)


def record_sign_out(store: Store, issuer: str, subject: str, at: float | None = None) -> float:
    """Note that the person signed out now: every sign-in cookie issued until now is refused from here on."""
    at = at or time.time()
    with _sign_outs(store).transaction() as db:
        db.execute("INSERT INTO sign_outs (person, at) VALUES (?, ?) ON CONFLICT (person) DO UPDATE SET "
                   "at = excluded.at", (person_key(issuer, subject), at))
    return at


def signed_out_at(store: Store, issuer: str, subject: str) -> float | None:
    rows = _sign_outs(store).rows("SELECT at FROM sign_outs WHERE person = ?", (person_key(issuer, subject),))
    return float(rows[0][0]) if rows else None


def revoked(store: Store, issuer: str, subject: str, issued_at: float | None) -> bool:
    """True when a sign-in issued at ``issued_at`` (whole seconds, as the cookie keeps it) came at or before the
    person's last sign-out; a cookie whose issue time cannot be read is refused once they have signed out."""
    out = signed_out_at(store, issuer, subject)
    if out is None:
        return False
    return issued_at is None or int(issued_at) <= int(out)
