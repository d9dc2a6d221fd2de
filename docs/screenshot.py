"""Remake docs/screenshot.jpg: the Face detection page on the default photo, in Debian's Chromium at 1440x900.

python docs/screenshot.py   (needs the seeded cache; starts its own server on 127.0.0.1 and stops it)
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_tools import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="screenshot_"))
    with streamlit_server(work / "home", work) as server, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1440, "height": 900})
        tab.set_default_timeout(180_000)
        tab.goto(f"{server.url}/face_detection")
        tab.get_by_text("YuNet (CNN): ").first.wait_for()
        tab.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for()
        tab.wait_for_function("Array.from(document.images).every(i => i.complete)")
        png = tab.screenshot()
        browser.close()
    out = ROOT / "docs" / "screenshot.jpg"
    Image.open(io.BytesIO(png)).convert("RGB").save(out, quality=85, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
