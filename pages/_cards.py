"""What Home and the Models page share: getting every missing model and data set at one click.

Not a page itself (the underscore).
"""

from __future__ import annotations

import streamlit as st

from pages._shared import ensure_ready
from vision_backend import models
from vision_backend.cards import ModelCard


def to_get() -> list[ModelCard]:
    """The cards that are missing and have a public download (the rest say how to get them)."""
    return [c for c in models.cards() if not c.ready() and c.downloadable()]


def get_everything(key: str) -> None:
    """The "Get everything" button with the total to download: each missing card fetched in turn with its
    progress bar.

    Stops at the first that fails (without the internet every other one would fail the same way, each
    after its retries), saying how many were not tried; ``fetch`` on the command line goes on past failures.
    """
    wanted = to_get()
    if not wanted:
        st.caption("Everything with a public download is on this machine.")
        return
    unknown = sum(1 for c in wanted for f in c.files if not f.present() and not f.size)
    size = f"{sum(c.download_size() for c in wanted) / 1e6:,.0f} MB" + (" and more" if unknown else "")
    note = f"; {unknown} file(s) of unregistered size come on top" if unknown else ""
    if not st.button(f"Get everything ({size})", key=key, icon=":material/download:",
                     help=f"{len(wanted)} models and data sets, from their publishers' addresses{note}"):
        return
    for done, card in enumerate(wanted):
        if not ensure_ready(card):
            st.caption(f"Stopped at {card.title}; {len(wanted) - done - 1} more not tried. Press again once it is "
                       "fixed, or run `python -m vision_backend.models fetch`, which goes on past failures.")
            return
    st.rerun()
