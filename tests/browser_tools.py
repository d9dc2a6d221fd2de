"""Driving the whole app in Debian's Chromium: a ``streamlit run`` server on 127.0.0.1, and visitors.

Shared by the browser tests and ``bench/reliability.py`` (eight visitors opening the app together on a
server that has just started). Never downloads a browser: Playwright drives ``/usr/bin/chromium``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update",
]


def require_chromium() -> None:
    """Skip without Debian's Chromium; fail instead under ``VISION_REQUIRE_WEIGHTS=1`` (CI installs it)."""
    import pytest

    if not CHROMIUM.exists():
        if os.environ.get("VISION_REQUIRE_WEIGHTS") == "1":
            pytest.fail("Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed")


@contextlib.contextmanager
def chromium(extra_args: tuple[str, ...] = ()) -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright's synchronous API; closed after."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def streamlit_server(home: Path, log_dir: Path, extra_env: dict[str, str] | None = None,
                     args: list[str] | None = None, port: int | None = None) -> Iterator[Server]:
    """``streamlit run app.py`` on a free port of 127.0.0.1 with its own ``$VISION_LAB_HOME``; stopped after."""
    port = port or free_port()
    env = dict(os.environ, VISION_LAB_HOME=str(home), **(extra_env or {}))
    log_path = log_dir / f"streamlit_{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", *(args or [])],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, process)
            yield Server(f"http://127.0.0.1:{port}", process, log_path)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("streamlit exited; see its log")
            time.sleep(0.5)
    raise TimeoutError("streamlit did not start")


# ---- eight visitors at once --------------------------------------------------------------------
VISITS = {
    # url path: what the page shows once its main work is done
    "": "ready. Missing ones are fetched",  # the models table's caption, the last thing Home draws
    "cnn_basics": "MobileNetV2 layer",
    "train_cnn": "Done: test accuracy",
    "pretrained": "Top-1:",
    "transfer_learning": "examples (stored",
    "face_detection": "YuNet (CNN): ",
    "face_recognition": "recognised at distance",
    "object_detection": "object(s) shown of",
}
ERROR_TEXTS = ("Something went wrong", "Traceback")


async def _visit(browser: object, url: str, path: str, done_text: str, timeout_ms: int) -> tuple[str, bool, str]:
    """One visitor on one page doing its main action: True when it finished with the navigation
    and the photo picker, and without an error box."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        await page.goto(f"{url}/{path}")
        if path == "train_cnn":
            await page.get_by_text("training and").first.wait_for()
            await page.get_by_test_id("stBaseButton-primary").filter(has_text="Train").click()
        if path == "transfer_learning":  # load the demo, unless an earlier visitor to this workspace did
            demo = page.get_by_text("Load the flowers demo project")
            await page.get_by_text(done_text).or_(demo).first.wait_for()
            if await demo.count():
                await demo.click()
        if path == "cnn_basics":  # the real CNN (TensorFlow) is on the last tab
            await page.get_by_role("tab", name="What a real CNN sees").click()
        await page.get_by_text(done_text).first.wait_for()
        sidebar = page.get_by_test_id("stSidebar")
        pickers = await sidebar.get_by_text("Your photo", exact=True).count()
        links = await sidebar.get_by_role("link", name="Object detection", exact=True).count()
        has_app = pickers == 1 and links == 1
        errors = await page.get_by_test_id("stException").count() + \
            sum([await page.get_by_text(t).count() for t in ERROR_TEXTS])
        return path, has_app and errors == 0, "" if has_app else f"photo pickers {pickers}, navigation links {links}"
    except Exception as error:  # noqa: BLE001 — a visitor who did not finish is counted, with why
        return path, False, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        await context.close()


async def _visitors(url: str, timeout_ms: int) -> list[tuple[str, bool, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(_visit(browser, url, path, text, timeout_ms) for path, text in VISITS.items()))
        finally:
            await browser.close()


def eight_visitors(url: str, timeout_s: float = 600) -> list[tuple[str, bool, str]]:
    """Eight visitors open eight pages of the app at the same moment; (page, finished, why not) each.

    Runs in a thread of its own: a test may already drive a browser through Playwright's synchronous
    API, whose event loop owns this thread."""
    results: list[list[tuple[str, bool, str]]] = []
    worker = threading.Thread(target=lambda: results.append(asyncio.run(_visitors(url, int(timeout_s * 1000)))))
    worker.start()
    worker.join()
    return results[0]


# ---- one visitor through every page ----------------------------------------------------------------
async def _walk(url: str, links: dict[str, str], timeout_ms: int) -> list[tuple[str, bool, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        page.set_default_timeout(timeout_ms)
        done = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
        results = []
        try:
            await page.goto(url)
            for link, heading in links.items():
                try:
                    await page.get_by_test_id("stSidebar").get_by_role("link", name=link, exact=True).click()
                    await page.get_by_role("heading", name=heading).first.wait_for()
                    await done.wait_for()
                    errors = await page.get_by_test_id("stException").count() + \
                        sum([await page.get_by_text(t).count() for t in ERROR_TEXTS])
                    results.append((link, errors == 0, f"{errors} error box(es)" if errors else ""))
                except Exception as error:  # noqa: BLE001 — a page that did not finish is counted, with why
                    results.append((link, False, f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"))
        finally:
            await browser.close()
        return results


def walk_pages(url: str, links: dict[str, str], timeout_s: float = 300) -> list[tuple[str, bool, str]]:
    """One visitor opens the app and clicks each sidebar link (``links``: link text -> the page's heading)
    in turn, in one session as a person browses, waiting on each page for its heading and for the script
    run to finish; (link, finished without an error box, why not) each. Runs in a thread of its own, as
    :func:`eight_visitors` does."""
    results: list[list[tuple[str, bool, str]]] = []
    worker = threading.Thread(target=lambda: results.append(asyncio.run(_walk(url, links, int(timeout_s * 1000)))))
    worker.start()
    worker.join()
    return results[0]
