"""Sign-in and workspaces in a real browser: Streamlit's own OpenID Connect sign-in against a real provider
on 127.0.0.1 (oidc-provider-mock), two people in two browser contexts, each seeing only their own work;
and a demo room without sign-in, where each visit has a temporary workspace of its own."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Iterator

import pytest

from browser_tools import chromium, free_port, streamlit_server
from cluster_tools import auth_secrets, create_project, open_page, sign_in
from conftest import require_real

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID Connect provider on 127.0.0.1, stopped after the tests."""
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def app_with_sign_in(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    secrets_file = auth_secrets(tmp_path_factory.mktemp("secrets"), port, provider)
    home = tmp_path_factory.mktemp("signin_home")
    with streamlit_server(home, tmp_path_factory.mktemp("logs"), port=port,
                          args=["--secrets.files", str(secrets_file)]) as server:
        yield server.url, home


def test_two_people_each_see_only_their_own_work(browser, app_with_sign_in) -> None:
    require_real("photos")
    url, home = app_with_sign_in
    alice, alice_tab = sign_in(browser, url, "alice@example.com")
    open_page(alice_tab, "Face recognition")
    alice_tab.get_by_role("tab", name="Gallery: enrol people").click()
    alice_tab.get_by_role("button", name=re.compile("Enrol the demo people")).click()
    alice_tab.get_by_text("2 people enrolled").wait_for()
    open_page(alice_tab, "Transfer learning")
    create_project(alice_tab, "Secret plans")
    alice_tab.get_by_text("Secret plans").first.wait_for()

    bob, bob_tab = sign_in(browser, url, "bob@example.com")
    open_page(bob_tab, "Face recognition")
    bob_tab.get_by_role("tab", name="Gallery: enrol people").click()
    bob_tab.get_by_text("0 people enrolled").wait_for()
    assert bob_tab.get_by_text("Barack Obama").count() == 0
    open_page(bob_tab, "Transfer learning")
    bob_tab.get_by_text("No project yet").wait_for()
    create_project(bob_tab, "../alice/projects/Secret plans")
    bob_tab.get_by_text("cannot contain a slash (/) or a backslash").wait_for()  # a crafted path is a name the rule refuses

    workspaces = sorted(p.name for p in (home / "people").iterdir())
    assert len(workspaces) == 2, "one workspace per signed-in person"
    owners = [sorted(p.name for p in (home / "people" / w / "projects").iterdir())
              if (home / "people" / w / "projects").is_dir() else [] for w in workspaces]
    assert sorted(owners) == [[], ["Secret plans"]], "only Alice's workspace holds her project"
    assert not (home / "projects").exists() and not (home / "faces").exists(), "nothing in a shared workspace"

    bob_tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    bob_tab.get_by_role("button", name="End session").click()  # the provider's own sign-out page
    bob_tab.get_by_role("button", name="Sign in").wait_for()
    for context in (alice, bob):
        context.close()


def test_a_demo_room_gives_each_visit_its_own_workspace(browser, tmp_path_factory) -> None:
    require_real("photos")
    home = tmp_path_factory.mktemp("room_home")
    env = {"VISION_LAB_WORKSPACES": "per-visit", "VISION_LAB_VISIT_HOURS": "2"}
    with streamlit_server(home, tmp_path_factory.mktemp("logs"), env) as server:
        tabs = []
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            tab = context.new_page()
            tab.set_default_timeout(180_000)
            tab.goto(server.url + "/face_recognition")
            tab.get_by_role("heading", name="Face recognition").wait_for()
            tab.get_by_test_id("stSidebar").get_by_text("Your workspace lasts for this visit").wait_for()
            tab.get_by_role("tab", name="Gallery: enrol people").click()
            tabs.append((context, tab))
        tabs[0][1].get_by_role("button", name=re.compile("Enrol the demo people")).click()
        tabs[0][1].get_by_text("2 people enrolled").wait_for()
        second = tabs[1][1]
        open_page(second, "Home", "Vision Lab")
        open_page(second, "Face recognition")  # the same visit, drawn again after the first one enrolled
        second.get_by_role("tab", name="Gallery: enrol people").click()
        second.get_by_text("0 people enrolled").wait_for()
        assert len(list((home / "visits").iterdir())) == 2 and not (home / "faces").exists()
        for context, _ in tabs:
            context.close()
