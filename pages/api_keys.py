"""API keys: this workspace's models, projects and gallery from any program, with keys made and revoked here."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from pages._api import project_example
from pages._shared import friendly_errors, start_page, workspace
from vision_backend.api.keys import KeyRing

start_page("API keys", "Call this workspace's models, your projects' own classes and your face gallery over HTTP "
           "(curl, Python, any program). A key reaches this workspace only; the server keeps only its hash.")


def when(stamp: float | None) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if stamp else "never"


def new_key(ring: KeyRing, owner: str) -> None:
    """A form that makes a key and shows it once."""
    with st.form("api_new_key", clear_on_submit=True):
        name = st.text_input("Name", placeholder="e.g. shop scanner", help="what the key is for (unique here)")
        access = st.radio("Access", ["read-only", "read-write"], horizontal=True,
                          help="read-only: every model and your projects; read-write: also enrol and delete "
                               "people in your face gallery")
        made = st.form_submit_button("Make a key", type="primary", icon=":material/key:")
    if made:
        with friendly_errors():
            key = ring.create(name, access == "read-write", owner)
            st.success("Copy it now: it is shown this once (the server keeps only its hash).", icon=":material/key:")
            st.code(key, language=None)


def key_table(ring: KeyRing) -> None:
    """Every key: access, who made it, when and from where it was last used; revoke one."""
    keys = ring.list()
    if not keys:
        st.caption("No key yet.")
        return
    st.dataframe(pd.DataFrame([{"name": k["name"], "access": k["access"], "made by": k["created_by"],
                                "made": when(k["created"]), "last used": when(k["last_used"]),
                                "last used from": k["last_from"]} for k in keys]), hide_index=True, width="stretch")
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox("Key", [k["name"] for k in keys], key="api_revoke_name")
    if right.button("Revoke", icon=":material/block:", key="api_revoke"):
        with friendly_errors():
            ring.revoke(chosen)
            st.rerun()


with friendly_errors():
    space = workspace()
    ring = KeyRing(space)
    st.subheader("Make a key")
    new_key(ring, space.owner)
    st.subheader("Keys")
    key_table(ring)
    st.subheader("Use it")
    project_example(space, "api_example_project")
