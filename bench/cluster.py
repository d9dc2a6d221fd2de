"""Many servers (issue 28): the deployment of ``deploy/services.py`` (PostgreSQL, a SeaweedFS S3 server, 2 Streamlit
replicas, HAProxy on 127.0.0.1) tried by visitors in Debian's Chromium through HAProxy, then a room on one server.

``visits`` (per-visit workspaces, every page through a TCP proxy in front of HAProxy that can cut the network):
``reload_keeps_visit_workspace`` 1 when a visitor who enrolled the demo people sees them again after a reload and in
a second tab (and a stranger does not); ``reload_keeps_photo_and_settings`` 1 when, on Face detection, an uploaded
photo and a Privacy choice come back after a reload with the line that says so; ``blip_45s_keeps_photo_and_settings``
1 when they come back (another Privacy choice) after the network was cut for 45 s, longer than the 30 s a
disconnected session is kept; ``blip_45s_back_s`` from the mend to the page back.

``cross``: a visitor's two tabs pinned to different replicas (HAProxy's SERVERID); tab B shows the default photo of
Obama and Biden on Face recognition with nobody enrolled, tab A enrols the demo people. ``cross_replica_visible_s``:
from A's page saying they are enrolled to B's page naming at least one of them (median over visits); B reads
through on use, so B moves the threshold slider one step (its next use) right after, and again every 3 s.

``failover``: one visitor works (a project, the demo people enrolled, an uploaded photo, the threshold moved), then
each cycle adds a project on Transfer learning, goes back to Face recognition, and the replica it is on is killed
(SIGKILL); the killed replica is restarted and back in HAProxy's rotation before the next cycle, so the visitor
alternates. ``failover_visitor_back_s``: median from the kill to the page saying the connection was restored and
showing the photo again; ``failover_lost_items``: of the visitor's projects (every cycle's), people, photo and
threshold, those missing afterwards (projects and people read from PostgreSQL/S3, photo and threshold on the page),
summed over cycles; ``failover_cycles`` the cycles done (20; ``--quick`` 3); ``failover_not_back``,
``failover_same_replica``, ``failover_error_boxes`` what else went wrong.

``signout``: the deployment with sign-in (a real OpenID Connect provider on 127.0.0.1): alice signs in and makes a
project; a copy of her sign-in cookies taken then works in a fresh browser; she signs out; the copy, pinned to each
replica in turn, is tried. ``revoked_cookie_accepted``: replicas on which it still signed in as alice (of 2).

``room``, ``mtcnn``, ``check``: one Streamlit server, no HAProxy (``bench/_room.py``'s figures, run from here):
``visitors_30_slider_rerun_p95_s``, ``visitors_30_errors``, ``mtcnn_answers_per_s_10_visitors``,
``server_cores_used_10_visitors``, and the 2-Chromium check beside 10 protocol visitors.

Every part has the machine's 1-minute load average beside it: the VM is shared. The full run takes about 50 minutes
(20 failover cycles with a replica restart each: ~25 min; the 5-minute room; the rest ~15 min); ``--quick`` ~10.

python bench/cluster.py [--quick] [--only visits,cross,failover,signout,room,mtcnn,check]
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import _room
from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))
import cluster_tools as ct  # noqa: E402
from browser_tools import chromium  # noqa: E402
from network_cut import cut_proxy  # noqa: E402

from vision_backend import visits as visit_cookies  # noqa: E402
from vision_backend.storage.remote import RemoteStore  # noqa: E402
from vision_backend.workspace import Workspace  # noqa: E402

ON_CLUSTER = ("visits", "cross", "failover")
ROOM_PARTS = tuple(_room.PARTS)
PARTS = (*ON_CLUSTER, "signout", *ROOM_PARTS)
RECOGNISED = re.compile(r"[1-9]\d* recognised at distance")
CUT_S = 45


def ok(check) -> bool:
    """Whether ``check()`` ran through (a page that never showed what it should is a failure, said why)."""
    try:
        check()
        return True
    except Exception as error:  # noqa: BLE001 - a failed check is a figure, with why
        print("   failed:", type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "")
        return False


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """The deployment's variables in this process while the block runs (to read its store as a replica does)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


# ---- visits: a reload, a second tab, a 45 s cut ---------------------------------------------------------------
def keeps_workspace(browser, url: str) -> bool:
    """A visitor enrols the demo people; a reload and a second tab see them, a stranger does not."""
    context, tab = ct.visitor(browser, url + "/face_recognition")
    try:
        ct.enrol_demo_people(tab)
        tab.reload()
        second = context.new_page()
        second.goto(url + "/face_recognition")
        stranger, other = ct.visitor(browser, url + "/face_recognition")
        seen = ok(lambda: ct.enrolled(tab, "2")) and ok(lambda: ct.enrolled(second, "2"))
        alone = ok(lambda: ct.enrolled(other, "0"))
        stranger.close()
        return seen and alone
    finally:
        context.close()


def keeps_photo(bench: Bench, browser, proxy, folder: Path) -> None:
    """On Face detection: a photo and a Privacy choice, back after a reload and after a 45 s cut."""
    context, tab = ct.visitor(browser, proxy.url + "/face_detection")
    tab.get_by_role("tab", name="Detect").wait_for()
    caption = ct.upload(tab, ct.a_photo(folder))
    ct.privacy(tab, "blur")
    tab.reload()
    bench.record("reload_keeps_photo_and_settings", int(ok(lambda: ct.back_in(tab, caption, 60)) and
                                                         ct.privacy(tab) == "blur"), "1 = yes")
    ct.privacy(tab, "pixelate")
    ct.open_page(tab, "Home", "Vision Lab")
    tab.get_by_text("Connection restored").wait_for(state="detached")
    ct.open_page(tab, "Face detection")
    proxy.cut()
    time.sleep(CUT_S)
    proxy.mend()
    taken: list[float] = []
    back = ok(lambda: taken.append(ct.back_in(tab, caption, 120))) and ct.privacy(tab) == "pixelate"
    bench.record("blip_45s_keeps_photo_and_settings", int(back and ct.error_boxes(tab) == 0), "1 = yes")
    bench.record("blip_45s_back_s", taken[0] if taken else 120, "s")
    context.close()


def visits(bench: Bench, browser, lab, folder: Path) -> None:
    load = _room.load_now()
    with cut_proxy(lab.url) as proxy:
        bench.record("reload_keeps_visit_workspace", int(keeps_workspace(browser, proxy.url)), "1 = yes")
        keeps_photo(bench, browser, proxy, folder)
    bench.record("visits_machine_load", load, "load average (1 min) before")


# ---- cross: enrolled on A, recognised on B ----------------------------------------------------------------------
def seen_on(tab, timeout_s: float = 60) -> float:
    """Seconds until ``tab`` (Face recognition's Recognise tab) names someone, moving the threshold one step (and
    back) every 3 s as its visitor's next use; ``timeout_s`` if it never does."""
    start, step = time.monotonic(), 0
    while time.monotonic() - start < timeout_s:
        with contextlib.suppress(Exception):  # a press while the page redraws may miss: the next one counts
            tab.get_by_test_id("stSlider").filter(has_text=ct.THRESHOLD).get_by_role("slider").press(
                ("ArrowRight", "ArrowLeft")[step % 2], timeout=3000)
        step += 1
        with contextlib.suppress(Exception):
            tab.get_by_text(RECOGNISED).first.wait_for(timeout=3000)
            return time.monotonic() - start
    return timeout_s


def cross_once(browser, lab) -> float:
    a, tab_a = ct.visitor(browser, lab.url + "face_recognition")
    tab_a.get_by_text("face(s) in").first.wait_for()
    b, tab_b = ct.visitor(browser, lab.url + "face_recognition", ct.pinned(a.cookies(), 1 - ct.replica_of(a)))
    try:
        tab_b.get_by_text("0 recognised at distance").first.wait_for()
        ct.enrol_demo_people(tab_a)
        taken = seen_on(tab_b)
        assert ct.replica_of(a) != ct.replica_of(b), "the two tabs were on different replicas"
        return taken
    finally:
        a.close()
        b.close()


def cross(bench: Bench, browser, lab, folder: Path) -> None:
    load = _room.load_now()
    times = [cross_once(browser, lab) for _ in range(bench.repeats(5, 2))]
    print("   cross-replica times:", [round(t, 2) for t in times])
    bench.record("cross_replica_visible_s", statistics.median(times), "s")
    bench.record("cross_replica_visible_max_s", max(times), "s")
    bench.record("cross_machine_load", load, "load average (1 min) before")


# ---- failover: kill -9 the visitor's replica, again and again ---------------------------------------------------
class Worker:
    """The visitor who works through every failover, and what of their work is still there."""

    def __init__(self, browser, lab, folder: Path) -> None:
        self.lab, self.folder = lab, folder
        self.context, self.tab = ct.visitor(browser, lab.url + "face_recognition")
        self.done = ct.work(self.tab, ct.a_photo(folder), "Cycle 0")
        self.projects = ["Cycle 0"]
        self.store = RemoteStore(lab.env["VISION_LAB_DATABASE_URL"], lab.env["VISION_LAB_BLOBS"],
                                 lab.env["VISION_LAB_S3_ENDPOINT"], home=folder / "node")

    def add_project(self, cycle: int) -> None:
        name = f"Cycle {cycle}"
        ct.open_page(self.tab, "Transfer learning")
        ct.create_project(self.tab, name)
        self.tab.get_by_text(name).first.wait_for()
        self.projects.append(name)
        ct.open_page(self.tab, "Face recognition")
        self.tab.get_by_test_id("stSidebar").get_by_text(self.done["caption"]).wait_for()

    def space(self) -> Workspace:
        visit = visit_cookies.verify(ct.visit_cookie(self.context))
        assert visit, "the visit cookie verifies with the deployment's secret"
        return Workspace(self.store, Workspace.for_visit(visit).prefix)

    def lost(self) -> int:
        """Of the projects, the two people, the photo and the threshold: how many are not there."""
        space = self.space()
        projects = set(space.projects())
        missing = sum(name not in projects for name in self.projects) + max(0, 2 - len(space.gallery().people()))
        photo = ok(lambda: self.tab.get_by_test_id("stSidebar").get_by_text(self.done["caption"]).wait_for(
            timeout=10_000))
        return missing + (not photo) + (ct.threshold(self.tab) != self.done["threshold"])


def cycle(worker: Worker, number: int) -> dict[str, float]:
    """One failover: a project added, the visitor's replica killed, the time until they are back, what was lost."""
    if number:
        worker.add_project(number)
    dead = ct.replica_of(worker.context)
    killed = time.monotonic()
    worker.lab.kill_replica(dead)
    back = ok(lambda: ct.back_in(worker.tab, worker.done["caption"], 120))
    taken = time.monotonic() - killed
    if not back:
        worker.tab.goto(worker.lab.url + "face_recognition")
    found = {"back_s": taken, "not_back": int(not back), "lost": worker.lost(),
             "same_replica": int(ct.replica_of(worker.context) == dead), "errors": ct.error_boxes(worker.tab)}
    start = time.monotonic()
    ct.in_rotation(worker.lab, dead)
    found["restart_s"] = time.monotonic() - start
    print(f"   cycle {number}: {found}", flush=True)
    return found


def failover(bench: Bench, browser, lab, folder: Path) -> None:
    load = _room.load_now()
    worker = Worker(browser, lab, folder)
    cycles = [cycle(worker, n) for n in range(bench.repeats(20, 3))]
    worker.context.close()
    bench.record("failover_cycles", len(cycles), "cycles")
    bench.record("failover_lost_items", sum(c["lost"] for c in cycles), "items")
    bench.record("failover_visitor_back_s", statistics.median(c["back_s"] for c in cycles), "s")
    bench.record("failover_visitor_back_max_s", max(c["back_s"] for c in cycles), "s")
    bench.record("failover_not_back", sum(c["not_back"] for c in cycles), "cycles")
    bench.record("failover_same_replica", sum(c["same_replica"] for c in cycles), "cycles")
    bench.record("failover_error_boxes", sum(c["errors"] for c in cycles), "error boxes")
    bench.record("failover_replica_restart_s", statistics.median(c["restart_s"] for c in cycles), "s")
    bench.record("failover_items_checked", len(worker.projects) + 4, "items (last cycle)")
    bench.record("failover_machine_load", load, "load average (1 min) before")


# ---- sign-out: a copied sign-in cookie, on every replica ---------------------------------------------------------
def accepted(browser, url: str, cookies: list[dict], replica: int) -> bool:
    """Whether ``cookies`` pinned to ``replica`` sign a fresh browser in as alice."""
    context, tab = ct.visitor(browser, url + "/", ct.pinned(cookies, replica))
    try:
        signed = tab.get_by_test_id("stSidebar").get_by_text("Signed in as alice@example.com")
        tab.get_by_role("button", name="Sign in").or_(signed).first.wait_for()
        assert ct.replica_of(context) == replica
        return signed.count() > 0 or tab.get_by_text("Alice's plans").count() > 0
    finally:
        context.close()


def signout(bench: Bench, browser, lab, folder: Path) -> None:
    url = lab.url.rstrip("/")
    alice, tab = ct.sign_in(browser, url, "alice@example.com")
    ct.open_page(tab, "Transfer learning")
    ct.create_project(tab, "Alice's plans")
    tab.get_by_text("Alice's plans").first.wait_for()
    copied = [c for c in alice.cookies() if c["name"].startswith("_streamlit_user") or c["name"] == "SERVERID"]
    before = accepted(browser, url, copied, 1 - ct.replica_of(alice))
    ct.sign_out(tab)
    after = sum(accepted(browser, url, copied, replica) for replica in (0, 1))
    alice.close()
    bench.record("signout_copy_worked_before", int(before), "1 = yes (else the figure below proves nothing)")
    bench.record("revoked_cookie_accepted", after, "replicas of 2")


# ---- the whole run ------------------------------------------------------------------------------------------------
def on_cluster(bench: Bench, chosen: list[str], folder: Path) -> None:
    with chromium() as browser, ct.deployment(app_env={"VISION_LAB_WORKSPACES": "per-visit"}) as lab, \
            environment(lab.env):
        for part in chosen:
            print(f"-- {part}", flush=True)
            {"visits": visits, "cross": cross, "failover": failover}[part](bench, browser, lab, folder)


def signed_in(bench: Bench, folder: Path) -> None:
    print("-- signout", flush=True)
    with chromium() as browser, ct.oidc_provider() as provider, \
            ct.signed_in_deployment(provider, folder) as lab, environment(lab.env):
        signout(bench, browser, lab, folder)


def main() -> None:
    bench = Bench("cluster", __doc__, extra=lambda parser: parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}"))
    chosen = [part.strip() for part in bench.args.only.split(",") if part.strip()]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        sys.exit(f"unknown parts: {', '.join(sorted(unknown))} (known: {', '.join(PARTS)})")
    with tempfile.TemporaryDirectory(prefix="cluster_") as work:
        folder = Path(work)
        if cluster_parts := [part for part in ON_CLUSTER if part in chosen]:
            on_cluster(bench, cluster_parts, folder)
        if "signout" in chosen:
            signed_in(bench, folder)
        for part in (part for part in ROOM_PARTS if part in chosen):
            print(f"-- {part}", flush=True)
            _room.PARTS[part](bench, folder)


if __name__ == "__main__":
    main()
