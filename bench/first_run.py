"""The first run on a fresh machine: what is ready before anything is fetched, whether any page breaks before
the files arrive, and how much the server writes to its log while a visitor walks through every page.

``first_run_models_ready_offline``: cards (models and data sets) ready on an empty Keras cache, with nothing
fetched: those that come in pip packages. ``unseeded_pages_with_error_box``: pages (all but the live camera
page, which needs a browser's WebRTC) that show an exception or an error box under Streamlit's AppTest on an
empty cache without the internet (every download fails at once with a one-line "no internet"; target 0).
``server_log_lines_first_visit_all_pages``: lines in the log of a fresh ``streamlit run app.py`` (seeded
cache, the environment a person's shell has: none of the harness's quiet-engine variables) after one visitor
in Chromium clicks through every page once, each run to its end (target < 30). ``quick_tests_s``: the README's
quick subset (``pytest -q -m "not slow"``) on an empty cache offline, as CI's first step runs it (target < 180);
``full_tests_s`` (with ``--full-tests``): the README's test command on the seeded cache with real weights required.

python bench/first_run.py [--quick] [--full-tests]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))
from vision_backend import fetch, models  # noqa: E402

LINKS = {"Home": "Vision Lab", "Models and data": "Models and data", "CNN basics": "CNN basics",
         "Train a CNN": "Train a CNN", "Pretrained CNNs": "Pretrained CNNs", "Transfer learning": "Transfer learning",
         "Face detection": "Face detection", "Face recognition": "Face recognition",
         "Object detection": "Object detection", "Live camera": "Live camera"}
"""Each sidebar link and the heading its page shows."""
QUIET_ENV = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "ABSL_MIN_LOG_LEVEL")


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """``os.environ`` with ``values`` set (None: removed) for the block, as it was after."""
    def put(settings: dict[str, str | None]) -> None:
        for key, value in settings.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    before = {key: os.environ.get(key) for key in values}
    put(values)
    try:
        yield
    finally:
        put(before)


def offline(url: str, target: Path, *args: object, **kwargs: object) -> Path:
    raise fetch.FetchError(f"no internet: copy {Path(target).name} to {target}, or run `seed DIR`")


def pages_with_error_box() -> tuple[int, list[str]]:
    """AppTest on every page but the live one, on the (empty) cache in the environment; (count, which)."""
    from streamlit.testing.v1 import AppTest

    from pages._shared import navigation_mode_in_apptest

    navigation_mode_in_apptest()
    fetch.download, download = offline, fetch.download
    broken = []
    try:
        for page in sorted(p for p in (ROOT / "pages").glob("[!_]*.py") if p.name != "live.py"):
            app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            app.run()
            app.switch_page(str(page.relative_to(ROOT))).run()
            if app.exception or app.error:
                broken.append(f"{page.name}: {[e.value for e in [*app.exception, *app.error]][:2]}")
    finally:
        fetch.download = download
    return len(broken), broken


def server_log_lines(work: Path) -> tuple[int, str, list]:
    """A fresh server, one visitor through every page: (log lines, the log, each page's outcome)."""
    from browser_tools import streamlit_server, walk_pages

    with environment(**dict.fromkeys(QUIET_ENV)), streamlit_server(work / "home", work) as server:
        walked = walk_pages(server.url, LINKS)
        log = server.log()
    return len(log.splitlines()), log, walked


def test_seconds(work: Path, *args: str, **env: str) -> float:
    """Wall time of ``python -m pytest -q ARGS`` in a fresh workspace; a failing suite is an error, not a figure."""
    env = dict(os.environ, VISION_LAB_HOME=str(work / "tests_home"), **env)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    print(f"# pytest {' '.join(args)}: {result.stdout.strip().splitlines()[-1]}", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"the tests failed:\n{result.stdout[-3000:]}")
    return seconds


def suite_times(bench: Bench, work: Path, full: bool) -> None:
    bench.record("quick_tests_s", test_seconds(work, "-m", "not slow", KERAS_HOME=str(work / "tests_keras"),
                                               VISION_LAB_OFFLINE="1"), "s")
    if full:
        bench.record("full_tests_s", test_seconds(work, VISION_REQUIRE_WEIGHTS="1"), "s")


def main() -> None:
    bench = Bench("first_run", __doc__, extra=lambda parser: parser.add_argument(
        "--full-tests", action="store_true", help="also time the full suite (about a quarter of an hour)"))
    work = Path(tempfile.mkdtemp(prefix="first_run_"))
    with environment(KERAS_HOME=str(work / "empty_keras"), VISION_LAB_HOME=str(work / "empty_home")):
        ready = [c.name for c in models.cards() if c.ready()]
        bench.record("first_run_models_ready_offline", len(ready), "cards")
        print(f"# {len(ready)} of {len(models.cards())} cards ready on an empty cache: {', '.join(ready)}")
        count, broken = pages_with_error_box()
        bench.record("unseeded_pages_with_error_box", count, "pages")
        for line in broken:
            print(f"# {line}")
    lines, log, walked = server_log_lines(work)
    bench.record("server_log_lines_first_visit_all_pages", lines, "lines")
    print(f"# pages visited: {sum(ok for _, ok, _ in walked)} of {len(walked)} finished without an error box")
    for link, ok, why in walked:
        if not ok:
            print(f"#   {link}: {why}")
    print("# the server's log:\n" + "".join(f"#   {line}\n" for line in log.splitlines()[:60]))
    if not bench.quick:
        suite_times(bench, work, bench.args.full_tests)


if __name__ == "__main__":
    main()
