"""What a visitor does on the multi-server deployment (issue 28), shared by the browser tests (``test_visits.py``,
``test_failover.py``) and ``bench/cluster.py``: the deployment in a run folder of its own, visitors in Debian's
Chromium through HAProxy, their work (a project, people enrolled, a photo, a setting), the replica each is on, and
what comes back after a reload, a network cut or a failover. Nothing here imports pytest: a bench uses it too.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from playwright.sync_api import expect

from browser_tools import free_port
from deploy import services
from vision_backend import visits

THRESHOLD = "Same-person distance threshold"
RESTORED = "Connection restored: your photo and settings are back."
MODES = ("none", "blur", "pixelate")


# ---- the deployment ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def deployment(replicas: int = 2, app_env: dict[str, str] | None = None, **options: Any) -> Iterator[services.Cluster]:
    """PostgreSQL, S3, the replicas and HAProxy in a run folder of their own; everything stopped after."""
    run_dir = services.make_run_dir("vision-lab-failover-")
    try:
        with services.cluster(run_dir, replicas, app_env, **options) as lab:
            yield lab
    finally:
        services.down(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def oidc_provider() -> Iterator[str]:
    """A real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1 while the block runs: its address."""
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def auth_secrets(folder: Path, port: int, provider: str) -> Path:
    """``folder/secrets.toml`` for Streamlit's sign-in against ``provider``, coming back to port ``port``."""
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(16)}"\n'
        'client_id = "vision-lab"\nclient_secret = "not-a-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n')
    return path


@contextlib.contextmanager
def signed_in_deployment(provider: str, folder: Path) -> Iterator[services.Cluster]:
    """The deployment with sign-in against ``provider``: HAProxy's port chosen first (the provider sends people
    back to it), the secrets file written in ``folder``."""
    port = free_port()
    secrets_file = auth_secrets(folder, port, provider)
    command = [*services.streamlit_command(), "--secrets.files", str(secrets_file)]
    with deployment(command=command, port=port) as lab:
        yield lab


def wait_for(check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()`` is true; TimeoutError after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def in_rotation(lab: services.Cluster, index: int) -> None:
    """Replica ``index`` started again and back in HAProxy's rotation."""
    lab.restart_replica(index)
    wait_for(lambda: set(lab.servers().values()) == {"UP"}, 60)


# ---- visitors ------------------------------------------------------------------------------------------------
def visitor(browser, url: str, cookies: list[dict] | None = None):
    """A browser context of its own (with ``cookies``, if given) and its tab opened on ``url``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    if cookies:
        context.add_cookies(cookies)
    tab = context.new_page()
    tab.set_default_timeout(180_000)
    tab.goto(url)
    return context, tab


new_tab = visitor


def replica_of(context) -> int:
    """The replica HAProxy keeps this browser on (its SERVERID cookie: r0, r1...)."""
    return int(next(c["value"] for c in context.cookies() if c["name"] == "SERVERID")[1:])


def pinned(cookies: list[dict], replica: int) -> list[dict]:
    """The browser's cookies, with HAProxy's SERVERID set to send it to ``replica``."""
    return [{**c, "value": f"r{replica}"} if c["name"] == "SERVERID" else c for c in cookies]


def visit_cookie(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == visits.COOKIE)


def open_page(tab, title: str, heading: str | None = None) -> None:
    tab.get_by_test_id("stSidebar").get_by_role("link", name=title).click()
    tab.get_by_role("heading", name=heading or title).wait_for()


def create_project(tab, name: str) -> None:
    box = tab.get_by_label("New project")
    box.fill(name)
    box.press("Enter")  # Streamlit takes a text box's value on Enter or when it loses focus
    button = tab.get_by_role("button", name="Create")
    expect(button).to_be_enabled(timeout=180_000)  # a locator: a handle goes stale when Streamlit redraws the button
    button.click()


def sign_in(browser, url: str, who: str):
    context, tab = visitor(browser, url)
    tab.get_by_role("button", name="Sign in").click()
    tab.locator("input[name=sub]").fill(who)
    tab.get_by_role("button", name="Authorize").click()
    tab.get_by_test_id("stSidebar").get_by_text(f"Signed in as {who}").wait_for()
    return context, tab


def sign_out(tab) -> None:
    tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    tab.get_by_role("button", name="End session").click()  # the provider's own sign-out page
    tab.get_by_role("button", name="Sign in").wait_for()


def enrolled(tab, count: str) -> None:
    tab.get_by_role("tab", name="Gallery: enrol people").click()
    tab.get_by_text(f"{count} people enrolled").wait_for()


def enrol_demo_people(tab) -> None:
    """On Face recognition: the demo people (two) enrolled in the gallery, shown done."""
    tab.get_by_role("tab", name="Gallery: enrol people").click()
    tab.get_by_role("button", name=re.compile("Enrol the demo people")).click()
    tab.get_by_text("2 people enrolled").wait_for()


def upload(tab, path: Path) -> str:
    """The photo uploaded in the sidebar; the caption that says it is the current photo."""
    sidebar = tab.get_by_test_id("stSidebar")
    sidebar.get_by_text("Upload", exact=True).click()
    sidebar.locator("input[type=file]").set_input_files(str(path))
    from PIL import Image

    width, height = Image.open(path).size
    caption = f"{path.name} · {width}x{height}"
    sidebar.get_by_text(caption).wait_for()
    return caption


def a_photo(folder: Path, name: str = "my holiday.jpg") -> Path:
    from PIL import Image

    from vision_backend import samples

    path = folder / name
    Image.fromarray(samples.load_sample("two_people.jpg")).save(path)
    return path


def privacy(tab, mode: str | None = None) -> str:
    """The Face detection page's Privacy choice (set to ``mode`` first when given): the one checked."""
    group = tab.get_by_test_id("stRadio").filter(has_text="pixelate")
    group.wait_for()
    if mode:
        group.get_by_text(mode, exact=True).click()
        tab.wait_for_function("m => [...document.querySelectorAll('[data-testid=stRadio] input:checked')]"
                              ".some(i => i.closest('label').innerText.trim() == m)", arg=mode)
        tab.wait_for_timeout(1500)  # kept server-side at most once a second
    return next(m for m in MODES if group.get_by_role("radio", name=m, exact=True).is_checked())


def error_boxes(tab) -> int:
    return tab.get_by_test_id("stException").count() + tab.get_by_text("Traceback").count() + \
        tab.get_by_text("Something went wrong").count()


def no_error_box(tab) -> None:
    assert error_boxes(tab) == 0


def threshold(tab, press: str | None = None, settle_ms: int = 1500) -> str:
    """Face recognition's same-person threshold slider (moved one step with ``press`` first): its value."""
    thumb = tab.get_by_test_id("stSlider").filter(has_text=THRESHOLD).get_by_role("slider")
    if press:
        before = thumb.get_attribute("aria-valuenow")
        for _ in range(3):  # a press while the page redraws the slider may miss
            thumb.press(press)
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: thumb.get_attribute("aria-valuenow") != before, 5)  # the locator: redrawn or not
                break
        tab.wait_for_timeout(settle_ms)  # kept server-side at most once a second
    return thumb.get_attribute("aria-valuenow")


def work(tab, photo: Path, project: str) -> dict[str, str]:
    """A visitor's work: a project, two people enrolled, a photo of their own and a setting moved; what to find
    again afterwards."""
    open_page(tab, "Transfer learning")
    create_project(tab, project)
    tab.get_by_text(project).first.wait_for()
    open_page(tab, "Face recognition")
    enrol_demo_people(tab)
    caption = upload(tab, photo)
    return {"caption": caption, "threshold": threshold(tab, "ArrowRight"), "project": project}


def back_in(tab, caption: str, timeout_s: float = 120) -> float:
    """Seconds until the page says the connection was restored and shows the photo ``caption`` again."""
    start = time.monotonic()
    tab.get_by_text(RESTORED).wait_for(timeout=timeout_s * 1000)
    tab.get_by_test_id("stSidebar").get_by_text(caption).wait_for()
    return time.monotonic() - start


def back(tab, done: dict[str, str], timeout_s: float = 120) -> float:
    """Seconds until the page is back (the line, the photo, the setting) after a failover; then checks the rest."""
    taken = back_in(tab, done["caption"], timeout_s)
    tab.get_by_role("heading", name="Face recognition").wait_for()  # the line and the photo may come a moment first
    assert "face_recognition" in tab.url
    assert threshold(tab) == done["threshold"]
    enrolled(tab, "2")
    no_error_box(tab)
    return taken
