"""Failover (issue 28, item 4): two replicas, PostgreSQL, S3 and HAProxy started by deploy/services.py, visitors in
Chromium working through HAProxy, and kill -9 of the replica each one is on. The browser reconnects through HAProxy
to the other replica and comes back on the same page with its workspace, photo and settings; a write cut off by
the kill lands whole or not at all; a signed-in person stays signed in across the failover, and a copy of their
sign-in cookie taken before they signed out is refused on every replica.

Every test's services run in a run folder of their own and stop after the module, whatever happened.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

import cluster_tools
from browser_tools import chromium
from cluster_tools import a_photo, back, in_rotation, open_page, pinned, replica_of, visitor, work
from deploy import services
from test_remote_storage import need_services
from test_signin import provider, sign_in  # noqa: F401 - provider is a fixture
from vision_backend import visits
from vision_backend.face_recognition import gallery as galleries
from vision_backend.storage.remote import RemoteStore
from vision_backend.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@contextlib.contextmanager
def deployment(replicas: int = 2, app_env: dict[str, str] | None = None, **options: Any) -> Iterator[services.Cluster]:
    """PostgreSQL, S3, the replicas and HAProxy in a run folder of their own; everything stopped after."""
    need_services()
    with cluster_tools.deployment(replicas, app_env, **options) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def room() -> Iterator[services.Cluster]:
    with deployment(app_env={"VISION_LAB_WORKSPACES": "per-visit"}) as lab:
        yield lab


# ---- what the tests look at ----------------------------------------------------------------------------
def store_of(lab: services.Cluster, home: Path, monkeypatch: pytest.MonkeyPatch) -> RemoteStore:
    """The deployment's store as a replica sees it (its variables set here meanwhile)."""
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    return RemoteStore(lab.env["VISION_LAB_DATABASE_URL"], lab.env["VISION_LAB_BLOBS"],
                       lab.env["VISION_LAB_S3_ENDPOINT"], home=home)


def visit_of(context, lab: services.Cluster, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("VISION_LAB_SECRET", lab.env["VISION_LAB_SECRET"])
    found = visits.verify(next(c["value"] for c in context.cookies() if c["name"] == visits.COOKIE))
    assert found, "the browser's visit cookie verifies with the deployment's secret"
    return found


def gallery_damage(store: RemoteStore, scope: str) -> tuple[int, int, int]:
    """(people, people without a face, faces whose crop file is missing) of a gallery, read without opening it."""
    if not store.has(scope, "gallery"):
        return 0, 0, 0
    db = store.catalogue(scope, "gallery", galleries.SCHEMA)
    counts = db.rows("SELECT p.id, COUNT(f.id) FROM people p LEFT JOIN faces f ON f.person = p.id GROUP BY p.id")
    crops = store.blobs(scope, "crops").keys()
    missing = sum(crop not in crops for (crop,) in db.rows("SELECT crop FROM faces"))
    return len(counts), sum(n == 0 for _, n in counts), missing


# ---- the tests ----------------------------------------------------------------------------------------------
def test_a_visitor_whose_replica_is_killed_comes_back_on_the_other_with_everything(browser, room, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    context, tab = visitor(browser, room.url + "face_recognition")
    done = work(tab, a_photo(tmp_path), "Before the crash")
    dead = replica_of(context)
    room.kill_replica(dead)
    taken = back(tab, done)
    assert replica_of(context) != dead, "answered by the other replica"
    assert taken < 30, f"back after {taken:.1f} s"
    open_page(tab, "Transfer learning")
    tab.get_by_text(done["project"]).first.wait_for()
    space = Workspace(store_of(room, tmp_path / "node", monkeypatch), Workspace.for_visit(
        visit_of(context, room, monkeypatch)).prefix)
    assert space.projects() == [done["project"]] and len(space.gallery().people()) == 2
    context.close()
    in_rotation(room, dead)


@pytest.mark.parametrize("delay_s", [0.2, 0.8])
def test_a_write_cut_off_by_the_kill_lands_whole_or_not_at_all(browser, room, tmp_path: Path, monkeypatch,
                                                               delay_s: float) -> None:
    """The demo enrolment is two writes (a person and their face in one transaction each), killed part-way: each
    person is there with their face and its file, or not at all; the page then works and a new click finishes."""
    context, tab = visitor(browser, room.url + "face_recognition")
    tab.get_by_role("tab", name="Gallery: enrol people").click()
    tab.get_by_text("0 people enrolled").wait_for()
    dead = replica_of(context)
    tab.wait_for_timeout(1500)  # the open tab kept server-side (at most once a second) before the click
    tab.get_by_role("button", name=re.compile("Enrol the demo people")).click()
    time.sleep(delay_s)
    room.kill_replica(dead)
    store = store_of(room, tmp_path / "node", monkeypatch)
    scope = Workspace.for_visit(visit_of(context, room, monkeypatch)).scope("faces")
    people, faceless, missing = gallery_damage(store, scope)
    assert people in (0, 1, 2) and faceless == 0 and missing == 0, (people, faceless, missing)
    tab.get_by_role("heading", name="Face recognition").wait_for()
    tab.get_by_text(f"{people} {'person' if people == 1 else 'people'} enrolled").wait_for()
    tab.get_by_role("button", name=re.compile("Enrol the demo people")).click()
    tab.get_by_text("2 people enrolled").wait_for()
    assert replica_of(context) != dead
    assert store.blobs(scope, "crops").keys() == {c for (c,) in store.catalogue(scope, "gallery", galleries.SCHEMA)
                                                  .rows("SELECT crop FROM faces")}, "no orphan file once reopened"
    context.close()
    in_rotation(room, dead)


# ---- signed in ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signed_in(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Cluster]:  # noqa: F811
    """The deployment with sign-in: HAProxy's port chosen first (the provider sends people back to it)."""
    need_services()
    with cluster_tools.signed_in_deployment(provider, tmp_path_factory.mktemp("secrets")) as lab:
        yield lab


def test_a_signed_in_person_fails_over_signed_in_and_their_old_cookie_is_refused_everywhere(
        browser, signed_in, tmp_path: Path) -> None:
    url = signed_in.url.rstrip("/")
    alice, tab = sign_in(browser, url, "alice@example.com")
    done = work(tab, a_photo(tmp_path, "alice.jpg"), "Alice's plans")
    dead = replica_of(alice)
    signed_in.kill_replica(dead)
    back(tab, done)
    tab.get_by_test_id("stSidebar").get_by_text("Signed in as alice@example.com").wait_for()
    in_rotation(signed_in, dead)
    copied = [c for c in alice.cookies() if c["name"].startswith("_streamlit_user") or c["name"] == "SERVERID"]
    tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    tab.get_by_role("button", name="End session").click()
    tab.get_by_role("button", name="Sign in").wait_for()
    for replica in (0, 1):
        context, thief = visitor(browser, url + "/", pinned(copied, replica))
        thief.get_by_text("This browser's sign-in ended when you signed out").wait_for()
        assert replica_of(context) == replica
        assert thief.get_by_text("Signed in as").count() == 0 and thief.get_by_text("Alice's plans").count() == 0
        context.close()
    alice.close()
