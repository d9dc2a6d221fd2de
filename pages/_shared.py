"""What every page shares: the current photo, cached models, and friendly errors.

Not a page itself (the underscore): imported by ``app.py`` and the topic pages.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import numpy as np
import streamlit as st

from vision_backend import models, samples
from vision_backend.intake import SUPPORTED, ImageIntakeError, read_image

def _leave_folder_mode() -> None:
    """Make the very first request of a fresh server use ``app.py``'s navigation.

    Streamlit sees our ``pages/`` folder at start-up and, until ``st.navigation`` is first
    called, serves a page URL opened directly (``/face_detection``) in its old folder-based
    mode: the page script alone, without ``app.py``'s sidebar. Leaving that mode and
    rerunning once sends the request through ``app.py``. (Runs at first import only.)
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_leave_folder_mode()

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
DEFAULT_SAMPLE = "Astronaut (scikit-image)"
log = logging.getLogger("vision_lab")


@st.cache_resource(show_spinner="Loading model…")
def load_model(name: str) -> Any:
    """One instance per process, shared by all sessions: treat it as read-only."""
    return models.load(name)


@st.cache_resource(show_spinner="Loading the saved model…", max_entries=4)
def load_saved_model(path: str, modified: float) -> Any:
    """A model someone trained here, from its .keras file (``modified``: a retrained file loads afresh)."""
    import keras

    return keras.models.load_model(path)


@st.cache_data(max_entries=16, show_spinner=False)
def decode_upload(data: bytes, name: str) -> np.ndarray:
    return read_image(data, name)


@st.cache_data(max_entries=32, show_spinner=False)
def sample_photo(name: str) -> np.ndarray:
    return samples.load_sample(name)


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn any failure inside the block into a message in the page, never a traceback."""
    try:
        yield
    except ImageIntakeError as error:
        st.error(str(error), icon=":material/broken_image:")
    except models.ModelMissingError as error:
        st.warning(f"**{error.card.title}** is not on this machine. Get it with:", icon=":material/download:")
        st.code(error.card.how_to_get(), language="bash")
    except Exception as error:  # the last line of defence for the browser
        log.exception("page failed")
        st.error(f"Something went wrong: {type(error).__name__}: {error}", icon=":material/error:")


def photo_source(where: Any = None) -> None:
    """The one image picker (sidebar on every page): sample, upload or camera.

    The choice lands in ``st.session_state.photo`` as ``(name, rgb array)`` so one photo
    flows through every topic; a bad upload leaves the previous photo in place.
    """
    for key in ("photo_source", "sample_name"):  # widget state is dropped on a page switch; keep it
        if key not in st.session_state and f"_{key}" in st.session_state:
            st.session_state[key] = st.session_state[f"_{key}"]
    with where or st.sidebar:
        st.subheader("Your photo")
        source = st.radio("Source", ["Sample", "Upload", "Camera"], horizontal=True, key="photo_source",
                          label_visibility="collapsed")
        if source == "Sample":
            names = samples.sample_names()
            name = st.selectbox("Sample photo", names, key="sample_name",
                                index=names.index(DEFAULT_SAMPLE))
            st.session_state._sample_name = name
            st.session_state.photo = (name, sample_photo(name))
        else:
            if source == "Upload":
                upload = st.file_uploader(f"Upload a photo ({SUPPORTED})", type=UPLOAD_TYPES, key="photo_upload")
            else:
                upload = st.camera_input("Take a photo", key="photo_camera")
            if upload is not None:
                try:
                    st.session_state.photo = (upload.name, decode_upload(upload.getvalue(), upload.name))
                except ImageIntakeError as error:
                    st.error(str(error), icon=":material/broken_image:")
        if "photo" not in st.session_state:
            st.session_state.photo = (DEFAULT_SAMPLE, sample_photo(DEFAULT_SAMPLE))
        name, image = st.session_state.photo
        st.image(image, caption=f"{name} · {image.shape[1]}x{image.shape[0]}", width="stretch")


def current_photo() -> tuple[str, np.ndarray]:
    """The photo picked in the sidebar (a sample until the person picks another)."""
    if "photo" not in st.session_state:
        st.session_state.photo = (DEFAULT_SAMPLE, sample_photo(DEFAULT_SAMPLE))
    return st.session_state.photo


def coming_next(what: str) -> None:
    st.info(f"Coming next: {what}", icon=":material/construction:")
