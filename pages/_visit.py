"""The page side of a visit (``vision_backend.visits``, ``vision_backend.resume``): which visit this browser is,
whether its sign-in still holds, and what it was doing, put back in a new session.

Not a page (the underscore). ``pages/_shared.py`` decides where things live (the workspace) and calls these.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

import streamlit as st

from vision_backend import resume, visits
from vision_backend.errors import UserError
from vision_backend.intake import read_photo
from vision_backend.storage import Store, open_store

log = logging.getLogger("vision_lab")
USER_COOKIE = "_streamlit_user"
RESTORED = "Connection restored: your photo and settings are back."


def _cookie(name: str) -> str | None:
    """A cookie the browser sent when this session connected (none in AppTest or without a browser)."""
    try:
        return st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 - no session client (a bare run): no cookies
        return None


# ---- which visit ---------------------------------------------------------------------------------------
def visit() -> str:
    """This browser's visit: the one its signed cookie names, else (no cookie, or a forged or expired one) a new
    one for this session alone. Read once a session."""
    if "_visit" not in st.session_state:
        found = visits.verify(_cookie(visits.COOKIE))
        st.session_state["_visit"] = found or uuid.uuid4().hex
        st.session_state["_visit_kept"] = found is not None
    return st.session_state["_visit"]


def visit_kept() -> bool:
    """True when the browser carries this visit in its cookie (a reload or another replica finds it again)."""
    visit()
    return bool(st.session_state.get("_visit_kept"))


# ---- sign-in that a sign-out ended ----------------------------------------------------------------------
def sign_in_issued_at() -> float | None:
    """When Streamlit issued this browser's sign-in cookie: the timestamp its signature covers (itsdangerous'
    ``URLSafeTimedSerializer``, salted with the cookie's name, as Streamlit 1.67 signs ``_streamlit_user``)."""
    value = _cookie(USER_COOKIE)
    if not value:
        return None
    from itsdangerous import BadData, URLSafeTimedSerializer
    from streamlit.web.server.server_util import get_cookie_secret

    try:
        _, issued = URLSafeTimedSerializer(get_cookie_secret(), salt=USER_COOKIE).loads(value, return_timestamp=True)
    except BadData:
        return None
    return issued.timestamp()


def person() -> tuple[str, str]:
    return str(st.user.get("iss", "")), str(st.user.get("sub", ""))


def sign_in_revoked(store: Store | None = None) -> bool:
    """True when this browser's sign-in was issued before the person last signed out (here or on any replica)."""
    return visits.revoked(store or open_store(), *person(), sign_in_issued_at())


def sign_out() -> None:
    """The sign-out button: recorded in the shared store first (every replica then refuses the cookies issued
    before now, copies included), then Streamlit's own sign-out (this browser's cookie deleted)."""
    try:
        visits.record_sign_out(open_store(), *person())
    except Exception:  # noqa: BLE001 - signed out here all the same; the log says it is not recorded
        log.error("a sign-out could not be recorded: cookies issued before it stay valid elsewhere", exc_info=True)
    st.logout()


# ---- what the visitor was doing -----------------------------------------------------------------------------
def photo_file() -> tuple[str, str, Any] | None:
    """The current photo as bytes can make it again: (name, identity, a callable giving the bytes), or None for a
    sample (its name is among the settings). Set by the photo picker."""
    return st.session_state.get("_photo_file")


def _fingerprint(settings: str, photo: tuple[str, str, Any] | None) -> str:
    return hashlib.blake2b(f"{settings}\n{photo[:2] if photo else None}".encode(), digest_size=16).hexdigest()


def keep_for_later(store: Store, scope: str) -> None:
    """Hand this session's photo and settings to the background writer when they changed since last time."""
    settings, photo = resume.encode_settings(st.session_state.get("_kept", {})), photo_file()
    mark = _fingerprint(settings, photo)
    if st.session_state.get("_resume_mark") == mark:
        return
    st.session_state["_resume_mark"] = mark
    name, fetch = (photo[0], photo[2]) if photo else (None, None)
    resume.SAVER.submit(f"{id(store)}:{scope}", lambda: resume.place(store, scope).save(
        settings, (name, fetch()) if fetch else None))


def restore(store: Store, scope: str) -> bool:
    """Once a session: the photo and settings kept for this visit (or person), put back before any widget is
    drawn. True when something came back."""
    if st.session_state.get("_resume_checked"):
        return False
    st.session_state["_resume_checked"] = True
    resume.SAVER.settle(f"{id(store)}:{scope}")  # a change this replica has not written yet comes first
    try:
        saved = resume.place(store, scope).load()
    except Exception:  # noqa: BLE001 - a store that is down: a fresh session, said in the log
        log.warning("a visitor's photo and settings could not be read back", exc_info=True)
        return False
    if saved is None or (not saved.settings and saved.photo is None):
        return False
    st.session_state["_kept"] = {**saved.settings, **st.session_state.get("_kept", {})}
    if saved.photo is not None and _restore_photo(saved):
        st.session_state["_photo_file"] = (saved.photo_name, f"restored:{saved.key}", lambda: saved.photo)
    mark = _fingerprint(resume.encode_settings(st.session_state["_kept"]), photo_file())
    st.session_state["_resume_mark"] = st.session_state["_restored_mark"] = mark
    return True


def _restore_photo(saved: resume.Saved) -> bool:
    try:
        image = read_photo(saved.photo, saved.photo_name or "photo").image
    except UserError:
        return False
    st.session_state.photo = (saved.photo_name, image)
    if st.session_state["_kept"].get("photo_source") == "Live snapshot":
        st.session_state.live_snapshot = st.session_state.photo
    return True


def restored_note() -> None:
    """The line saying the connection was restored, from the restore until the visitor changes something."""
    if st.session_state.get("_restored_mark") and \
            st.session_state.get("_restored_mark") == st.session_state.get("_resume_mark"):
        st.info(RESTORED, icon=":material/restore:")
