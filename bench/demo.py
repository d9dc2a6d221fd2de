"""A demo in Chromium: how long a page switch, a first visit and a slider move take, and what bad files do.

``page_switch_warm_s``: median over pages of clicking a page's sidebar link on a warm server (every page
visited once before) until the page's heading and what its first tab shows once its main work is done are
there (``PAGES``: the four face detectors' results, the top-1 class, the objects found...).
``first_visit_after_start_s``: the slowest page's first visit, each page opened alone on a server started for
it, from the address typed to its main content. ``*_run_over_s``: the same until the whole script run is over
(every tab drawn, not only the first one). ``face_detection_slider_rerun_s``: median time from one step of
YuNet's score slider to YuNet's caption changing (a fragment: only YuNet reruns). ``bad_inputs_tried``: files
of the bad-file corpus (tests/test_bad_inputs.py), each fed through every uploader of the app under AppTest
(``bad_inputs_uploads`` in all); ``bad_inputs_with_crash_box``: files that gave Streamlit's crash box or the
pages' "Something went wrong" in any uploader (a whole batch counts when a multi-file uploader fails).
``od_settle_after_upload_s``: Object detection on a warm server, median over photos uploaded one after another
in the sidebar (staged photos and raccoon photos, none seen by the page before) from the file given to the upload
until the page's run is over, its detector's caption naming the new result; ``od_model_ms`` the median of the model's
own time that caption gives, so the settle time reads beside it. ``stray_text_on_pages``: strings of a page's
module that stand alone on a line (what Streamlit's magic would write) found in the page's text in Chromium, over
every page. Targets: < 1.0 s, < 5 s, < 0.5 s, >= 40, 0, <= 2 s, 0.

python bench/demo.py [--quick] [--browser-only]   (--quick: three pages for the first visits, fewer repeats)
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))

from browser_tools import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

PAGES = {  # sidebar link -> url path, the page's heading, and what its first tab shows once its main work is done
    "Home": ("", "Vision Lab", "Models and data"),
    "CNN basics": ("cnn_basics", "CNN basics", "from input"),
    "Train a CNN": ("train_cnn", "Train a CNN", "test images of"),
    "Pretrained CNNs": ("pretrained", "Pretrained CNNs", "Top-1:"),
    "Transfer learning": ("transfer_learning", "Transfer learning", re.compile("No project yet|examples \\(stored")),
    "Face detection": ("face_detection", "Face detection", "YuNet (CNN): "),
    "Face recognition": ("face_recognition", "Face recognition", "recognised at distance"),
    "Object detection": ("object_detection", "Object detection", "object(s) shown of"),
    "Video": ("video", "Video", "Track and count"),
    "Your own objects": ("own_objects", "Your own objects", "No detection project yet"),
    "API keys": ("api_keys", "API keys", "No key yet."),
}
MODULES = {"Home": "home", **{link: path for link, (path, _, _) in PAGES.items() if path}}
"""The module of each page (``pages/<module>.py``)."""
QUICK_PAGES = ("Home", "Face detection", "CNN basics")
RUN_OVER = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def shown(tab, link: str) -> None:
    """The page's heading is there, and what its first tab shows once its main work is done."""
    _, heading, main = PAGES[link]
    tab.get_by_role("heading", name=heading).first.wait_for()
    tab.get_by_test_id("stMain").get_by_text(main).first.wait_for()


def run_over(tab) -> None:
    """The script run is over (every tab drawn, not only the first)."""
    tab.locator(RUN_OVER).wait_for()


def new_tab(browser, url: str):
    tab = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    tab.set_default_timeout(300_000)
    return tab


def stray_strings(link: str) -> list[str]:
    """The strings standing alone on a line of the page's module, docstring aside (tests/test_pages.py)."""
    from test_pages import stray_strings as strays

    return [text for text in strays(ROOT / "pages" / f"{MODULES[link]}.py") if len(text) > 20]


def page_switches(bench: Bench, browser, url: str) -> None:
    tab = new_tab(browser, url)
    tab.goto(url)
    shown(tab, "Home")
    run_over(tab)
    order = list(PAGES)[1:] + ["Home"]
    times: dict[str, list[float]] = {link: [] for link in order}
    whole: dict[str, list[float]] = {link: [] for link in order}
    strays = 0
    for lap in range(1 + bench.repeats(3, 1)):  # the first lap warms every page
        for link in order:
            start = time.perf_counter()
            tab.get_by_test_id("stSidebar").get_by_role("link", name=link, exact=True).click()
            shown(tab, link)
            main = time.perf_counter() - start
            run_over(tab)
            if lap:
                times[link].append(main)
                whole[link].append(time.perf_counter() - start)
            else:
                text = tab.get_by_test_id("stMain").inner_text()
                strays += sum(stray in text for stray in stray_strings(link))
    bench.record("stray_text_on_pages", strays, "strings")
    per_page = {link: statistics.median(t) for link, t in times.items()}
    print("page switch, main content (s):", {k: round(v, 2) for k, v in per_page.items()}, flush=True)
    print("page switch, run over (s):", {k: round(statistics.median(v), 2) for k, v in whole.items()}, flush=True)
    bench.record("page_switch_warm_s", statistics.median(per_page.values()), "s")
    bench.record("page_switch_warm_run_over_s", statistics.median(statistics.median(v) for v in whole.values()), "s")
    slider_rerun(bench, tab)
    tab.context.close()


def slider_rerun(bench: Bench, tab) -> None:
    """One step of YuNet's score slider (keyboard) until YuNet's caption shows the new run."""
    tab.get_by_test_id("stSidebar").get_by_role("link", name="Face detection", exact=True).click()
    shown(tab, "Face detection")
    run_over(tab)
    tab.get_by_text("YuNet (CNN) settings").click()
    thumb = tab.get_by_test_id("stSlider").filter(has_text="Score threshold").last.get_by_role("slider")
    caption = tab.get_by_text("YuNet (CNN): ").last
    times = []
    for step in range(bench.repeats(11, 3)):
        before = caption.inner_text()
        start = time.perf_counter()
        thumb.press("ArrowLeft" if step % 2 else "ArrowRight")
        tab.wait_for_function("([text, before]) => text.innerText !== before", arg=[caption.element_handle(), before])
        times.append(time.perf_counter() - start)
        run_over(tab)
    print("slider reruns (s):", [round(t, 2) for t in times], flush=True)
    bench.record("face_detection_slider_rerun_s", statistics.median(times), "s")


def settle_photos() -> list[Path]:
    """Photos the page has not seen: the staged ones with objects in them, then raccoon photos."""
    from vision_backend import samples

    staged = [samples.photos_dir() / n for n in ("dog_bicycle_truck.jpg", "person_horse_dog.jpg", "cat_chelsea.png",
                                                  "group_3faces.jpg", "two_people.jpg")]
    raccoons = sorted((ROOT.parent / "shared" / "data" / "detection" / "raccoon").rglob("*.jpg"))[:6]
    return staged + raccoons


def upload_settle(bench: Bench, browser, url: str) -> None:
    """Object detection: a photo given to the sidebar's uploader, until the page has settled on it."""
    from vision_backend import samples

    tab = new_tab(browser, f"{url}/object_detection")
    tab.goto(f"{url}/object_detection")
    shown(tab, "Object detection")
    run_over(tab)
    sidebar = tab.get_by_test_id("stSidebar")
    sidebar.get_by_text("Upload", exact=True).click()
    run_over(tab)
    settle, model_ms = [], []
    for k, photo in enumerate(settle_photos()[:bench.repeats(11, 4)]):
        start = time.perf_counter()
        sidebar.locator("input[type=file]").set_input_files(str(photo))
        sidebar.get_by_text(re.compile(f"^{re.escape(samples.title(photo.name))} ·")).first.wait_for()
        run_over(tab)
        caption = tab.get_by_test_id("stMain").get_by_text("object(s) shown of").first.inner_text()
        if k:  # the first upload warms the uploader
            settle.append(time.perf_counter() - start)
            model_ms.append(float(re.search(r"in (\d+) ms", caption).group(1)))
    print("settle after upload (s):", [round(t, 2) for t in settle], "model (ms):", model_ms, flush=True)
    bench.record("od_settle_after_upload_s", statistics.median(settle), "s")
    bench.record("od_model_ms", statistics.median(model_ms), "ms")
    tab.context.close()


def first_visits(bench: Bench, browser, work: Path) -> None:
    links = QUICK_PAGES if bench.quick else list(PAGES)
    times, whole = {}, {}
    for link in links:
        path = PAGES[link][0]
        with streamlit_server(work / f"home_{path or 'home'}", work) as server:
            tab = new_tab(browser, server.url)
            start = time.perf_counter()
            tab.goto(f"{server.url}/{path}")
            shown(tab, link)
            times[link] = time.perf_counter() - start
            run_over(tab)
            whole[link] = time.perf_counter() - start
            tab.context.close()
    print("first visits, main content (s):", {k: round(v, 2) for k, v in times.items()}, flush=True)
    print("first visits, run over (s):", {k: round(v, 2) for k, v in whole.items()}, flush=True)
    bench.record("first_visit_after_start_s", max(times.values()), "s")
    bench.record("first_visit_after_start_run_over_s", max(whole.values()), "s")


def bad_inputs(bench: Bench) -> None:
    """The corpus through every uploader under AppTest, in a workspace of its own."""
    os.environ["VISION_LAB_HOME"] = tempfile.mkdtemp(prefix="demo_bad_inputs_")
    from pages._shared import navigation_mode_in_apptest

    navigation_mode_in_apptest()
    import test_bad_inputs as corpus

    outcomes = corpus.feed_every_uploader()
    crashed = sorted({o.name for o in outcomes if o.crashed})
    for line in corpus.failures(outcomes):
        print("  ", line, flush=True)
    bench.record("bad_inputs_tried", len(corpus.corpus()), "files")
    bench.record("bad_inputs_uploads", len(outcomes), "uploads")
    bench.record("bad_inputs_with_crash_box", len(crashed), "files")


def main() -> None:
    bench = Bench("demo", __doc__, extra=lambda parser: parser.add_argument(
        "--browser-only", action="store_true", help="skip the bad files (bad_inputs_*): the Chromium figures only"))
    if not bench.args.browser_only:
        bad_inputs(bench)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="demo_bench_"))
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        with streamlit_server(work / "home", work) as server:
            page_switches(bench, browser, server.url)
            upload_settle(bench, browser, server.url)
        first_visits(bench, browser, work)
        browser.close()


if __name__ == "__main__":
    main()
