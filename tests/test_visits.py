"""A visit that survives and a sign-out that holds (issue 28, items 3 and 7): the signed visit cookie and its
middleware, the laptop's secret, sign-outs recorded for every server, the photo and settings kept server-side; then
in Chromium on a real server: a reload and a second tab keep a demo room's workspace, a forged cookie is a fresh
visit, a reload and a network cut longer than the reconnect time bring the photo and settings back, and a sign-in
cookie copied before its owner signed out is refused (against the real OpenID Connect provider of test_signin)."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from browser_tools import chromium, free_port, streamlit_server
from cluster_tools import a_photo, auth_secrets, enrolled, new_tab, no_error_box, privacy, sign_out, upload
from conftest import ROOT, require_real
from network_cut import cut_proxy
from test_signin import create_project, open_page, provider, sign_in  # noqa: F401 - provider is a fixture
from vision_backend import resume, visits
from vision_backend.storage import LocalStore
from vision_backend.workspace import Workspace, copy_workspaces


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = secrets.token_hex(32)
    monkeypatch.setenv("VISION_LAB_SECRET", value)
    return value


# ---- the cookie -------------------------------------------------------------------------------------------
def test_a_visit_cookie_verifies_and_any_change_to_it_is_a_new_visit(secret: str, monkeypatch) -> None:
    value = visits.issue("a" * 32, now=1_000_000.0, hours=2)
    assert visits.verify(value, now=1_000_000.0 + 7199) == "a" * 32
    assert visits.verify(value, now=1_000_000.0 + 7200) is None, "expired with the visit"
    version, visit, expires, mac = value.split(".")
    forged = [f"{version}.{'1' * 32}.{expires}.{mac}", f"{version}.{visit}.{int(expires) + 3600}.{mac}",
              f"{version}.{visit}.{expires}.{mac[:-2]}AA", f"v2.{visit}.{expires}.{mac}", value + ".x", "", "garbage",
              "v1...", f"{version}.{visit.upper()}.{expires}.{mac}", "v1." + "a" * 300, "v1.\x00.1.2", "%" * 50]
    for bad in forged:
        assert visits.verify(bad, now=1_000_000.0) is None, bad
    monkeypatch.setenv("VISION_LAB_SECRET", secrets.token_hex(32))
    assert visits.verify(value, now=1_000_000.0) is None, "another deployment's secret signs another visit"


def test_a_laptop_secret_is_made_once_kept_private_and_shared_by_processes_starting_together(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    monkeypatch.delenv("VISION_LAB_SECRET", raising=False)
    code = "from vision_backend import visits; print(visits.secret().decode())"
    env = {k: v for k, v in os.environ.items() if k != "VISION_LAB_SECRET"} | {"VISION_LAB_HOME": str(tmp_path),
                                                                               "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
                for _ in range(4)]
    made = {child.communicate(timeout=120)[0].strip() for child in children}
    assert len(made) == 1 and len(made.pop()) == 64, "one secret, whichever process came first"
    kept = tmp_path / visits.SECRET_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [visits.SECRET_FILE], "no temporary file left"


def page_app() -> Starlette:
    async def page(request):
        return HTMLResponse("<html>the app</html>")

    async def health(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/_stcore/health", health), Route("/api/v1/x", health), Route("/{path:path}", page)],
                     middleware=[Middleware(visits.VisitCookie)])


def test_the_middleware_gives_page_loads_a_signed_httponly_cookie_and_replaces_a_bad_one(secret: str,
                                                                                         monkeypatch) -> None:
    monkeypatch.setenv("VISION_LAB_VISIT_HOURS", "3")
    app = page_app()

    def get(path: str, **headers: str):
        return TestClient(app, base_url="http://127.0.0.1").get(path, headers=headers)  # no cookie jar kept

    navigation = {"accept": "text/html,application/xhtml+xml", "sec-fetch-dest": "document"}
    first = get("/face_detection", **navigation)
    header = first.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age=10800" in header and "Path=/" in header
    assert "Secure" not in header
    value = first.cookies[visits.COOKIE]
    visit = visits.verify(value)
    assert visit is not None
    again = get("/", **navigation, cookie=f"{visits.COOKIE}={value}")
    assert "set-cookie" not in again.headers, "a good cookie is left as it is"
    forged = get("/", **navigation, cookie=f"{visits.COOKIE}={value[:-3]}abc")
    replaced = forged.cookies[visits.COOKIE]
    assert visits.verify(replaced) not in (None, visit), "a forged cookie gets a new visit, never the one it named"
    for path in ("/_stcore/health", "/api/v1/x"):
        assert "set-cookie" not in get(path, **navigation).headers, path
    assert "set-cookie" not in get("/", accept="*/*").headers, "not a page load"
    behind_tls = get("/", **navigation, **{"x-forwarded-proto": "https"})
    assert "Secure" in behind_tls.headers["set-cookie"]


def test_a_cookie_half_way_through_its_life_is_renewed_for_the_same_visit(secret: str) -> None:
    now = time.time()
    old = visits.issue("a" * 32, now=now - 3 * 3600)  # 4 h visits: an hour left
    renewed = visits.renewed(old, now=now)
    assert renewed and visits.verify(renewed, now=now + 3 * 3600) == "a" * 32
    assert visits.renewed(visits.issue("b" * 32, now=now), now=now) is None


# ---- sign-outs ---------------------------------------------------------------------------------------------
def test_a_sign_out_refuses_sign_ins_issued_before_it_on_another_server_too(tmp_path: Path) -> None:
    here, there = LocalStore(tmp_path), LocalStore(tmp_path)  # two servers' views of one store
    issuer, alice = "https://accounts.example.org", "alice"
    assert not visits.revoked(there, issuer, alice, time.time())
    out = visits.record_sign_out(here, issuer, alice)
    assert visits.revoked(there, issuer, alice, out - 3600), "a cookie from before the sign-out"
    assert visits.revoked(there, issuer, alice, out), "issued in the very second of the sign-out"
    assert visits.revoked(there, issuer, alice, None), "no readable issue time after a sign-out"
    assert not visits.revoked(there, issuer, alice, out + 1), "signed in again afterwards"
    assert not visits.revoked(there, issuer, "bob", out - 3600), "only the person who signed out"
    assert not visits.revoked(there, "https://other.example.org", alice, out - 3600), "the same name elsewhere"


def test_a_copy_of_the_workspaces_carries_kept_state_and_never_the_servers_sign_outs(tmp_path: Path) -> None:
    source, target = LocalStore(tmp_path / "a"), LocalStore(tmp_path / "b")
    space = Workspace.for_visit("one visit")
    resume.Resume(source, join_scope(space.prefix)).save(resume.encode_settings({"fd_privacy": "blur"}),
                                                         ("me.png", b"photo bytes"))
    visits.record_sign_out(source, "issuer", "alice")
    assert copy_workspaces(source, target, say=lambda line: None) == 1
    saved = resume.Resume(target, join_scope(space.prefix)).load()
    assert saved.settings == {"fd_privacy": "blur"} and saved.photo == b"photo bytes"
    assert not (tmp_path / "b" / visits.SERVER_SCOPE).exists()


def join_scope(prefix: str) -> str:
    return f"{prefix}/{resume.SCOPE}"


# ---- the photo and settings, kept -------------------------------------------------------------------------
def test_photo_and_settings_are_kept_whole_and_a_replaced_photo_leaves_no_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    kept = resume.Resume(store, "visits/x/resume")
    assert kept.load() is None
    settings = {"fd:yunet:score_threshold": 0.55, "fd_chosen": ["yunet", "mtcnn"], "range": (2, 9),
                "n": np.int64(3), "widget": object(), "photo_source": "Upload"}
    kept.save(resume.encode_settings(settings), ("first.jpg", b"first"))
    kept.save(resume.encode_settings(settings), ("second.jpg", b"second"))
    saved = resume.Resume(store, "visits/x/resume").load()
    assert saved.photo_name == "second.jpg" and saved.photo == b"second"
    assert saved.settings == {"fd:yunet:score_threshold": 0.55, "fd_chosen": ["yunet", "mtcnn"], "range": (2, 9),
                              "n": 3, "photo_source": "Upload"}, "tuples stay tuples; what JSON cannot hold is left out"
    assert kept.blobs.keys() == {saved.key}, "the first photo's file went with it"
    kept.save(resume.encode_settings({"photo_source": "Sample"}), None)
    assert kept.load().photo is None and kept.blobs.keys() == set()
    kept.save(json.dumps({"x": "y" * resume.MAX_SETTINGS}), None)
    assert kept.load().settings == {"photo_source": "Sample"}, "an oversized state is not kept"


def test_writes_are_debounced_the_latest_state_wins_and_settle_writes_at_once() -> None:
    saver, written = resume.Debounced(every_s=0.5), []
    for step in range(20):
        saver.submit("visit", lambda step=step: written.append(step))
    assert saver.flush(5)
    time.sleep(0.1)
    for step in range(20, 40):
        saver.submit("visit", lambda step=step: written.append(step))
    started = time.monotonic()
    assert saver.settle("visit", 5)
    assert time.monotonic() - started < 0.4 and written[-1] == 39
    assert len(written) <= 4 and 19 in written, written


def test_a_write_that_fails_is_tried_again_then_given_up() -> None:
    saver, tries = resume.Debounced(every_s=0.0, retries=2, retry_after_s=0.05), []

    def failing() -> None:
        tries.append(time.monotonic())
        raise OSError("the store is down")

    saver.submit("visit", failing)
    assert saver.flush(10)
    time.sleep(0.2)
    saver.flush(10)
    assert len(tries) == 2


# ---- in the browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A demo room on one server whose sessions expire 3 s after their browser left (a cut can outlast it fast)."""
    home = tmp_path_factory.mktemp("visits_home")
    with streamlit_server(home, tmp_path_factory.mktemp("logs"), {"VISION_LAB_WORKSPACES": "per-visit"},
                          args=["--server.disconnectedSessionTTL", "3"]) as server:
        yield server.url, home


@pytest.mark.browser
@pytest.mark.slow
def test_a_reload_and_a_second_tab_keep_the_visit_and_a_forged_cookie_is_a_fresh_one(browser, room, monkeypatch) -> None:
    require_real("photos")
    url, home = room
    context, tab = new_tab(browser, url + "/face_recognition")
    tab.get_by_test_id("stSidebar").get_by_text("this browser keeps it across reloads and tabs").wait_for()
    tab.get_by_role("tab", name="Gallery: enrol people").click()
    tab.get_by_role("button", name=re.compile("Enrol the demo people")).click()
    tab.get_by_text("2 people enrolled").wait_for()
    cookie = next(c for c in context.cookies() if c["name"] == visits.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > time.time() + 3.9 * 3600
    tab.reload()
    enrolled(tab, "2")
    second = context.new_page()
    second.goto(url + "/face_recognition")
    enrolled(second, "2")
    other, stranger = new_tab(browser, url + "/face_recognition")
    enrolled(stranger, "0")
    forger, forged = new_tab(browser, url + "/")
    value = cookie["value"]
    forger.add_cookies([{**cookie, "value": value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB")}])
    forged.goto(url + "/face_recognition")
    enrolled(forged, "0")
    no_error_box(forged)
    monkeypatch.setenv("VISION_LAB_SECRET", (home / visits.SECRET_FILE).read_text())  # the server's, made once
    assert visits.verify(value) is not None
    assert visits.verify(next(c["value"] for c in forger.cookies() if c["name"] == visits.COOKIE)) not in \
        (None, visits.verify(value)), "the forged cookie was replaced by a new visit's"
    for made in (context, other, forger):
        made.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_reload_and_a_cut_longer_than_the_reconnect_time_bring_the_photo_and_settings_back(browser, room,
                                                                                            tmp_path: Path) -> None:
    require_real("photos")
    url, _ = room
    with cut_proxy(url) as proxy:
        context, tab = new_tab(browser, proxy.url + "/face_detection")
        tab.get_by_role("heading", name="Face detection").wait_for()
        tab.get_by_role("tab", name="Detect").wait_for()
        caption = upload(tab, a_photo(tmp_path))
        privacy(tab, "blur")
        tab.reload()
        tab.get_by_text("Connection restored: your photo and settings are back.").wait_for()
        tab.get_by_test_id("stSidebar").get_by_text(caption).wait_for()
        assert privacy(tab) == "blur"
        assert tab.get_by_text("Connection restored").count() == 1
        privacy(tab, "pixelate")
        open_page(tab, "Home", "Vision Lab")
        tab.get_by_text("Connection restored").wait_for(state="detached")  # said once: gone once they go on
        open_page(tab, "Face detection")
        proxy.cut()
        time.sleep(8)  # the session, cut off, expires after 3 s here (30 s in .streamlit/config.toml)
        proxy.mend()
        tab.get_by_text("Connection restored: your photo and settings are back.").wait_for(timeout=90_000)
        tab.get_by_test_id("stSidebar").get_by_text(caption).wait_for()
        assert privacy(tab) == "pixelate"
        assert tab.get_by_role("heading", name="Face detection").count() == 1, "on the same page"
        no_error_box(tab)
        context.close()


# ---- sign-out, against the real provider ------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed_in_app(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    port = free_port()
    secrets_file = auth_secrets(tmp_path_factory.mktemp("secrets"), port, provider)
    with streamlit_server(tmp_path_factory.mktemp("signout_home"), tmp_path_factory.mktemp("logs"), port=port,
                          args=["--secrets.files", str(secrets_file)]) as server:
        yield server.url


def with_cookies(browser, url: str, cookies: list[dict]):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(cookies)
    tab = context.new_page()
    tab.set_default_timeout(180_000)
    tab.goto(url)
    return context, tab


@pytest.mark.browser
@pytest.mark.slow
def test_a_sign_in_cookie_copied_before_the_sign_out_is_refused_afterwards(browser, signed_in_app) -> None:
    url = signed_in_app
    alice, tab = sign_in(browser, url, "alice@example.com")
    open_page(tab, "Transfer learning")
    create_project(tab, "Alice's plans")
    tab.get_by_text("Alice's plans").first.wait_for()
    copied = [c for c in alice.cookies() if c["name"].startswith("_streamlit_user")]
    before, thief = with_cookies(browser, url, copied)
    thief.get_by_test_id("stSidebar").get_by_text("Signed in as alice@example.com").wait_for()  # the copy works...
    before.close()
    sign_out(tab)
    after, thief = with_cookies(browser, url, copied)
    thief.get_by_role("button", name="Sign in").wait_for()  # ...until she signs out
    thief.get_by_text("This browser's sign-in ended when you signed out").wait_for()
    assert thief.get_by_text("Signed in as").count() == 0 and thief.get_by_text("Alice's plans").count() == 0
    no_error_box(thief)
    after.close()
    again, tab = sign_in(browser, url, "alice@example.com")  # she signs in again: a new cookie, accepted
    open_page(tab, "Transfer learning")
    tab.get_by_text("Alice's plans").first.wait_for()
    for context in (alice, again):
        context.close()
