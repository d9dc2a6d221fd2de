"""What every page shares: the current photo, settings widgets built from a model's parameters,
settings that survive page switches, models fetched on first use, and friendly errors.

Not a page itself (the underscore): imported by ``app.py`` and the topic pages.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import time
import weakref
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import numpy as np
import streamlit as st

from pages import _visit
from vision_backend import fetch, models, resume, samples, visits
from vision_backend.cards import ModelCard
from vision_backend.errors import ImageIntakeError, ModelMissingError, UserError
from vision_backend.imageops import fit_long_side
from vision_backend.intake import SUPPORTED, Photo, encode_png, read_photo
from vision_backend.model import Model, Param
from vision_backend.storage import Store
from vision_backend.workspace import Workspace, remove_expired_visits

UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
log = logging.getLogger("vision_lab")


# ---- settings that stay put ------------------------------------------------------------------------
def keep(key: str, default: Any = None) -> str:
    """``key`` for a widget whose value survives page switches and reruns.

    Streamlit forgets a widget's value when a run does not draw it (another page was shown); a
    value also kept under a key of our own is put back before the widget is drawn again.
    """
    kept = st.session_state.setdefault("_kept", {})
    if key not in st.session_state:
        st.session_state[key] = kept.get(key, default)
    kept[key] = st.session_state[key]
    return key


def remember_widgets() -> None:
    """Copy every kept widget's current value into the keep (called once per run, by ``app.py``), and hand the
    keep and the photo to the server-side copy a new session restores (:func:`save_for_later`)."""
    kept = st.session_state.setdefault("_kept", {})
    for key in kept:
        if key in st.session_state:
            kept[key] = st.session_state[key]
    save_for_later()


def kept_choice(key: str, options: list[Any]) -> str:
    """``keep`` for a choice whose options come and go (projects, photos, your own detectors): a vanished one falls
    back to the first."""
    key = keep(key, options[0])
    if st.session_state[key] not in options:
        st.session_state[key] = options[0]
    return key


def setting_key(prefix: str, model: Model, param: Param) -> str:
    return f"{prefix}:{model.name}:{param.name}"


def _apply_preset(prefix: str, model: Model) -> None:
    """Move a model's widgets to the chosen preset (runs before they are drawn again)."""
    preset = {**model.defaults(), **model.presets[st.session_state[f"{prefix}:{model.name}:preset"]]}
    for param in model.params:
        st.session_state[setting_key(prefix, model, param)] = preset[param.name]


def param_widget(param: Param, key: str) -> Any:
    """The widget that fits ``param``: a toggle, a slider, a select slider (numbers) or a select box."""
    if param.kind == "toggle":
        return st.toggle(param.label, key=key, help=param.help or None)
    if param.kind == "choice":
        numeric = all(isinstance(o, (int, float)) for o in param.options)
        widget = st.select_slider if numeric else st.selectbox
        return widget(param.label, list(param.options), key=key, help=param.help or None,
                      format_func=param.label_of)
    return st.slider(param.label, param.low, param.high, step=param.step, key=key, help=param.help or None)


def param_widgets(model: Model, prefix: str) -> dict[str, Any]:
    """One widget per parameter of ``model`` (and a switch for its presets); returns the settings."""
    if model.presets:
        st.radio("Setup", list(model.presets), key=keep(f"{prefix}:{model.name}:preset", next(iter(model.presets))),
                 on_change=_apply_preset, args=(prefix, model), horizontal=True)
    return settings_widgets(model.params, lambda p: setting_key(prefix, model, p))


def settings_widgets(params: tuple[Param, ...], key: Callable[[Param], str], columns: int = 1) -> dict[str, Any]:
    """A kept widget per setting (``key`` names each), laid out in ``columns``; returns the chosen values. Every
    settings form is built this way, from the settings as data: a model's, a trainer's."""
    cells = st.columns(columns) if columns > 1 else [st.container()]
    return {p.name: _in(cells[i % len(cells)], p, key(p)) for i, p in enumerate(params)}


def _in(cell: Any, param: Param, key: str) -> Any:
    with cell:
        return param_widget(param, keep(key, param.default))


def current_settings(model: Model, prefix: str) -> dict[str, Any]:
    """The settings chosen for ``model`` on this page, without drawing its widgets (defaults until changed)."""
    kept = st.session_state.get("_kept", {})
    return {p.name: st.session_state.get(setting_key(prefix, model, p), kept.get(setting_key(prefix, model, p),
                                                                               p.default)) for p in model.params}


# ---- models fetched on first use -----------------------------------------------------------------
def ensure_ready(card: ModelCard) -> bool:
    """True when ``card``'s files are here; otherwise fetch them with a progress bar (MB, source,
    licence), or say in one line what is missing and how to get it. Never raises."""
    if card.ready():
        return True
    total_mb = card.download_size() / 1e6
    bar = st.progress(0.0, f"Getting {card.title} ({total_mb:.0f} MB, {card.licence}) — first use only…")

    def progress(asset: Any, done: int, total: int | None) -> None:
        share = done / total if total else 0.0
        source = f" from {urlparse(asset.url).netloc}" if getattr(asset, "url", None) else ""
        bar.progress(min(share, 1.0), f"Getting {card.title}: {asset.name} {done / 1e6:.1f}"
                                      f"{f' of {total / 1e6:.1f}' if total else ''} MB{source} · {card.licence}")

    outcome = fetch.ensure(card, progress) if card.downloadable() else None
    bar.empty()
    if outcome is not None and outcome.ok and card.ready():
        return True
    reason = outcome.message if outcome is not None else "it has no public download"
    st.warning(f"**{card.title}** is not on this machine: {reason}", icon=":material/download:")
    how_to_get(card)
    return False


def how_to_get(card: ModelCard) -> None:
    """The command that gets a card's files (wrapped, never cut at the page's edge), and how without the internet."""
    st.code(card.how_to_get(), language="bash", wrap_lines=True)
    if card.downloadable() and card.source != "package":
        st.caption(f"Without the internet: {card.offline_hint()}.")


def timing(meta: dict) -> str:
    """``in 41 ms``: the model's own time, and apart from it the time waited for other visitors' calls."""
    text = f"in {meta.get('ms', 0):.0f} ms"
    wait = meta.get("wait_ms", 0)
    return text + (f" (and {wait:.0f} ms waiting for other visitors' turns)" if wait >= 20 else "")


def licence_note(card: ModelCard, detail: str = "") -> None:
    """The card's title and licence under a model choice; a copyleft licence gets a plain-words warning."""
    st.caption(f"{card.title} · licence **{card.licence}**{detail}")
    if "AGPL" in card.licence:
        st.warning(f"{card.title}'s weights are licensed **AGPL-3.0**: fine for learning and demos here; using "
                   "them in a product you offer to others obliges you to publish that product's source.",
                   icon=":material/gavel:")


def ready_model(name: str) -> Model | None:
    """The registered model ``name`` once its files are here (fetched on first use), else None."""
    model = models.get(name)
    return model if ensure_ready(model.card) else None


# ---- results cached by photo -------------------------------------------------------------------------
_DIGESTS: dict[int, tuple[Any, str]] = {}


def photo_key(photo: np.ndarray | list[np.ndarray]) -> str:
    """A photo's (or a list's) content digest, as every cache here keys photos: Streamlit's own hash samples
    100,000 of a large array's values, so two photos of one size could share a cached result. Each array's
    digest is kept while the array lives (the current photo is hashed once, not on every rerun)."""
    if isinstance(photo, (list, tuple)):
        return hashlib.blake2b("".join(photo_key(p) for p in photo).encode(), digest_size=16).hexdigest()
    known = _DIGESTS.get(id(photo))
    if known is not None and known[0]() is photo:
        return known[1]
    image = np.ascontiguousarray(photo)
    digest = hashlib.blake2b(f"{image.shape}{image.dtype}".encode() + image.data, digest_size=16).hexdigest()
    for gone in [k for k, (ref, _) in _DIGESTS.items() if ref() is None]:
        _DIGESTS.pop(gone, None)
    _DIGESTS[id(photo)] = (weakref.ref(photo), digest)
    return digest


def photo_cache(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``st.cache_data`` for a function whose first argument is a photo (or a list of photos), keyed by
    :func:`photo_key`: the one way pages cache what a model made of a photo."""
    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        def cached(key: str, _photo: Any, *args: Any, **kwargs: Any) -> Any:
            return function(_photo, *args, **kwargs)

        cached.__module__, cached.__qualname__ = function.__module__, function.__qualname__  # its own cache
        stored = st.cache_data(**options)(cached)

        @functools.wraps(function)
        def call(photo: Any, *args: Any, **kwargs: Any) -> Any:
            return stored(photo_key(photo), photo, *args, **kwargs)

        return call

    return wrap


# ---- the photo --------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def decode_photo(data: bytes, name: str) -> Photo:
    """An upload decoded once (the one intake path every uploader uses), with its note ("frame 1 of 3")."""
    return read_photo(data, name)


def decode_upload(data: bytes, name: str) -> np.ndarray:
    return decode_photo(data, name).image


@st.cache_data(max_entries=32, show_spinner=False)
def sample_photo(name: str) -> np.ndarray:
    return samples.load_sample(name)


def literal(text: str) -> str:
    """Text shown as it is in Markdown (a name a person typed, an error's message): no emphasis, links,
    maths or escapes made from its characters."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


def show_error(error: BaseException) -> None:
    """Any failure as the page shows it: a missing model offers to get it, a person's error says itself,
    anything else is logged and said in one plain line."""
    if isinstance(error, ModelMissingError):
        ensure_ready(error.card)
    elif isinstance(error, UserError):
        st.error(literal(str(error)), icon=":material/error:")
    else:
        log.error("page failed", exc_info=error)
        st.error("Something went wrong on this part of the page; the rest still works. "
                 "The server's log has the details.", icon=":material/error:")


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn any failure inside the block into a message in the page, never a traceback."""
    try:
        yield
    except Exception as error:  # the last line of defence for the browser
        show_error(error)


def guarded_fragment(draw: Callable[..., None]) -> Callable[..., None]:
    """A part of a page that reruns alone when its own widgets change (``st.fragment``), with failures
    shown as a message also on those reruns, which the tab's own guard does not see."""
    @functools.wraps(draw)
    def guarded(*args: Any, **kwargs: Any) -> None:
        with friendly_errors():
            draw(*args, **kwargs)
        save_for_later()  # a fragment's own rerun (a slider in it) never reaches the end of app.py

    return st.fragment(guarded)


def tab_key(labels: list[str]) -> str:
    """The session key that holds which of these tabs is open (kept across page switches)."""
    return "tab:" + "|".join(labels)


def tabbed(parts: dict[str, Callable[[], None]]) -> None:
    """One tab per entry; only the open one runs, under :func:`friendly_errors`.

    Streamlit runs every tab's code on every rerun by default: a page whose other tabs run selective search
    or a second detector made each new photo wait for all of them (11-19 s on a busy server for the object
    detection page, against 41-710 ms for its models). Lazy tabs rerun when another is opened; which one
    is open is kept with the person's settings.
    """
    labels = list(parts)
    key = keep(tab_key(labels), labels[0])
    if st.session_state[key] not in labels:
        st.session_state[key] = labels[0]
    for name, tab in zip(labels, st.tabs(labels, key=key, on_change="rerun")):
        if tab.open:
            with tab, friendly_errors():
                parts[name]()


def photo_source(where: Any = None) -> None:
    """The one image picker (sidebar on every page): sample, upload or camera.

    The choice lands in ``st.session_state.photo`` as ``(name, rgb array)`` so one photo
    flows through every topic; a bad upload leaves the previous photo in place.
    """
    st.session_state.pop("photo_refused", None)  # set again below while the uploader holds a refused file
    with where or st.sidebar:
        st.subheader("Your photo")
        sources = ["Sample", "Upload", "Camera"] + (["Live snapshot"] if "live_snapshot" in st.session_state else [])
        source = st.radio("Source", sources, horizontal=True, key=keep("photo_source", "Sample"),
                          label_visibility="collapsed")
        if source == "Live snapshot":
            st.session_state.photo = st.session_state.live_snapshot
            _snapshot_file(st.session_state.photo)
        elif source == "Sample":
            st.session_state.pop("_photo_file", None)  # a sample is named by the settings
            names = samples.sample_names()
            if st.session_state.get("_kept", {}).get("sample_name") not in names:
                st.session_state.pop("sample_name", None)
                st.session_state.get("_kept", {}).pop("sample_name", None)
            name = st.selectbox("Sample photo", names, key=keep("sample_name", samples.default_sample()),
                                format_func=samples.title)
            st.session_state.photo = (name, sample_photo(name))
        else:
            upload = st.file_uploader(f"Upload a photo ({SUPPORTED})", type=UPLOAD_TYPES, key="photo_upload") \
                if source == "Upload" else st.camera_input("Take a photo", key="photo_camera")
            if upload is not None:
                try:
                    photo = decode_photo(upload.getvalue(), upload.name)
                    st.session_state.photo = (upload.name, photo.image)
                    st.session_state._photo_file = (upload.name, upload.file_id, upload.getvalue)
                    if photo.note:
                        st.info(photo.note, icon=":material/filter_frames:")
                except ImageIntakeError as error:
                    st.error(literal(str(error)), icon=":material/broken_image:")
                    st.session_state.photo_refused = upload.name
        name, image = current_photo()
        st.image(preview(image, 800), caption=f"{samples.title(name)} · {image.shape[1]}x{image.shape[0]}",
                 width="stretch")


def _snapshot_file(photo: tuple[str, np.ndarray]) -> None:
    """A live snapshot kept as PNG bytes (made by the background writer, only when it is a new snapshot)."""
    name, image = photo
    st.session_state._photo_file = (name, f"snapshot:{photo_key(image)}", lambda: encode_png(image))


def preview(image: np.ndarray, side: int = 1600) -> np.ndarray:
    """A photo shrunk for showing (Streamlit encodes the whole array first: 1.5 s for 49 megapixels)."""
    return fit_long_side(image, side)[0]


def current_photo() -> tuple[str, np.ndarray]:
    """The photo picked in the sidebar (a sample until the person picks another)."""
    if "photo" not in st.session_state:
        st.session_state.photo = (samples.default_sample(), sample_photo(samples.default_sample()))
    return st.session_state.photo


# ---- every page ---------------------------------------------------------------------------------
def leave_folder_mode() -> bool:
    """Streamlit's old folder mode switched off for the process; True when this run was in it.

    Streamlit sees our ``pages/`` folder at start-up and, until ``st.navigation`` is first called in the
    process, runs a page URL opened directly (``/face_detection``) in its old folder mode: the page script
    alone, without ``app.py``'s navigation and photo picker. Every session that arrives before that (eight
    visitors opening the link together on a cold server) would get the bare page; so would every run of
    Streamlit's AppTest, which starts each run in that mode. The flag Streamlit reads at each run's start
    says which mode this run is in.
    """
    from streamlit.runtime.pages_manager import PagesManager

    was = bool(PagesManager.uses_pages_directory)
    PagesManager.uses_pages_directory = False
    return was


def navigation_mode_in_apptest() -> None:
    """Streamlit's AppTest (tests and benches) runs every script run through ``app.py``'s navigation, as the
    server does once ``st.navigation`` has been called: AppTest 1.67 resets the flag and makes a new
    PagesManager for every run, which would put each run back in folder mode (and a rerun there loses the
    click that caused it). Idempotent."""
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager.__init__, "navigation_mode", False):
        return
    original = PagesManager.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    init.navigation_mode = True  # type: ignore[attr-defined]
    PagesManager.__init__ = init


def start_page(title: str, caption: str) -> None:
    """A page's title and one-line caption, after making sure the run has the whole app (a run in the old
    folder mode runs again, through ``app.py``)."""
    if leave_folder_mode():
        st.rerun()
    st.title(title)
    st.caption(caption)
    if refused := st.session_state.get("photo_refused"):
        st.warning(f"“{literal(refused)}” could not be used (the sidebar says why): what this page shows is still "
                   f"for the photo before, “{literal(samples.title(current_photo()[0]))}”.", icon=":material/history:")


# ---- the person's workspace ------------------------------------------------------------------------
VISIT_MODE = "per-visit"
HEARTBEAT_S, TOUCH_EVERY_S = 60, 600


def sign_in_configured() -> bool:
    """True when Streamlit's OpenID Connect sign-in is set up (``[auth]`` in ``.streamlit/secrets.toml``)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 — no secrets file at all
        return False


def workspace_mode() -> str:
    """``signed-in``, ``per-visit`` (a demo room: ``VISION_LAB_WORKSPACES=per-visit``) or ``local``."""
    if sign_in_configured():
        return "signed-in"
    return VISIT_MODE if os.environ.get("VISION_LAB_WORKSPACES", "").strip() == VISIT_MODE else "local"


def visit_hours() -> float:
    return visits.visit_hours()


def workspace() -> Workspace:
    """Where what this person makes lives: their own when signed in, this browser visit's own in a demo
    room (the visit its signed cookie names: a reload, a second tab and another server find it again), else
    the one local workspace (a laptop)."""
    mode = workspace_mode()
    if mode == "signed-in":
        user = st.user
        return Workspace.for_person(str(user.get("iss", "")), str(user.get("sub", "")),
                                    str(user.get("email") or user.get("name") or user.get("sub")))
    if mode == VISIT_MODE:
        return Workspace.for_visit(_visit.visit())
    return Workspace.local()


def resume_place() -> tuple[Store, str] | None:
    """Where this session's photo and settings are kept for a new session: with the signed-in person, else
    with the browser's visit (in a demo room, its workspace). None for a session no browser cookie names
    (AppTest, a browser refusing cookies): nothing could find it again."""
    mode = workspace_mode()
    if mode != "signed-in" and not _visit.visit_kept():
        return None
    space = workspace() if mode != "local" else Workspace.for_visit(_visit.visit())
    return space.store, space.scope(resume.SCOPE)


def save_for_later() -> None:
    """This session's photo and settings to the server-side copy, when they changed (written in the background,
    at most once a second); never stops the page."""
    try:
        place = resume_place()
        if place is not None:
            _visit.keep_for_later(*place)
    except Exception:  # noqa: BLE001 - losing the copy must never lose the page
        log.warning("the photo and settings could not be handed over for keeping", exc_info=True)


def restore_visit() -> None:
    """A new session (a reload, a second tab, a drop longer than the reconnect time, another server after a
    failover) gets the photo and settings back, with a line saying so. Call before any kept widget is drawn."""
    try:
        place = resume_place()
        if place is not None and _visit.restore(*place):
            _touch(place)
    except Exception:  # noqa: BLE001 - a fresh session instead
        log.warning("the photo and settings could not be restored", exc_info=True)
    _visit.restored_note()
    _heartbeat()


def _touch(place: tuple[Store, str]) -> None:
    """The visit (or person) whose photo and settings live at ``place`` is in use now (visits expire unused)."""
    st.session_state["_touched"] = time.time()
    Workspace(place[0], place[1].rpartition("/")[0]).touch()


@st.fragment(run_every=HEARTBEAT_S)
def _heartbeat() -> None:
    """A beat a minute from every open page, drawing nothing: the visit counts as used while its tab is open (at
    most one touch every ten minutes). Its ``run_every`` also matters: Streamlit's frontend asks for a whole run on
    reconnecting only when the page holds such a fragment; without one, a browser that failed over to another
    server (or came back after its session expired) sat on the dead session's page until the visitor clicked."""
    if time.time() - st.session_state.get("_touched", 0.0) < TOUCH_EVERY_S:
        return
    try:
        place = resume_place()
        if place is not None:
            _touch(place)
    except Exception:  # noqa: BLE001 - the next beat tries again
        log.warning("a visit could not be marked as used", exc_info=True)


@st.cache_resource(ttl=600, show_spinner=False)
def _sweep_visits(max_age_s: float) -> int:
    """Remove visits (a demo room's workspaces, kept photos and settings) nobody has used for a while (at most
    every ten minutes)."""
    return remove_expired_visits(max_age_s)


def require_sign_in() -> None:
    """With sign-in configured, nothing but a sign-in screen until the person has signed in, with a sign-in
    cookie issued after their last sign-out (a copy of an older one is refused on every server)."""
    if workspace_mode() != "signed-in":
        return
    try:
        if st.user.is_logged_in and not _visit.sign_in_revoked():
            return
    except Exception as error:  # noqa: BLE001 - the store that says whether it holds is down: not signed in
        show_error(error)
        st.stop()
    st.title(":material/biotech: Vision Lab")
    if st.user.is_logged_in:
        st.warning("This browser's sign-in ended when you signed out (here or on another device): sign in again.",
                   icon=":material/logout:")
    st.write("Sign in to get your own workspace: your projects, your enrolled faces and your models, "
             "seen by nobody else.")
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login)
    st.stop()


def account(where: Any = None) -> None:
    """Who this workspace belongs to, in the sidebar, with a sign-out where there is sign-in."""
    mode = workspace_mode()
    with where or st.sidebar:
        if mode == "signed-in":
            st.caption(f"Signed in as **{workspace().owner}**")
            st.button("Sign out", key="sign_out", icon=":material/logout:", on_click=_visit.sign_out)
            return
        try:
            _sweep_visits(visit_hours() * 3600)
        except Exception:  # noqa: BLE001 - a store that is down now is swept on a later visit; the page goes on
            log.warning("expired visits could not be swept", exc_info=True)
        if mode == VISIT_MODE:
            st.caption(f"Your workspace lasts for this visit: this browser keeps it across reloads and tabs, and "
                       f"it is removed {visit_hours():g} h after you leave. Nobody else sees what you make here.")
