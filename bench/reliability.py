"""Many people at once, crashes and hostile input: the figures of issue 16.

Eight visitors open eight pages together on a freshly started server (cold) and again (warm), the
server's memory over five more rounds (held right after them, and kept once their sessions expired);
SIGKILL at random points while photos are imported and faces enrolled (lost items, orphans, duplicates);
two processes writing one project and one gallery; the peak memory of importing a hostile ZIP; files
written outside ``$VISION_LAB_HOME`` by the main flows. The subprocesses are the crash tests' own (tests/test_reliability.py), counted here instead of asserted.

python bench/reliability.py [--quick]
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))
import browser_tools  # noqa: E402
import test_reliability as crash  # noqa: E402

from vision_backend.workspace import Workspace  # noqa: E402
from vision_backend.paths import keras_home  # noqa: E402


TTL_S = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]["disconnectedSessionTTL"]
"""The app's ``server.disconnectedSessionTTL``: how long a visitor's session is kept after the browser left."""
REAPED_S = 40
"""Two of the session reaper's 15 s periods, and time for its ``malloc_trim``."""


def server_rss_mb(pid: int) -> float:
    return next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:")) / 1024


def visitors(bench: Bench, work: Path) -> None:
    """Cold and warm rounds, then five more; the memory the rounds' sessions hold while they may still be
    resumed (Streamlit keeps a session ``disconnectedSessionTTL`` seconds after its browser left), and the
    growth that stays once they have expired and the reaper has closed them."""
    rounds = bench.repeats(5, 1)
    with browser_tools.streamlit_server(work / "home", work) as server:
        cold = browser_tools.eight_visitors(server.url, timeout_s=900)
        bench.record("cold_concurrent_sessions_completed", sum(ok for _, ok, _ in cold), "of 8")
        warm = browser_tools.eight_visitors(server.url, timeout_s=600)
        bench.record("warm_concurrent_sessions_completed", sum(ok for _, ok, _ in warm), "of 8")
        time.sleep(TTL_S + REAPED_S)  # the cold and warm rounds' sessions closed: the same footing as at the end
        before = server_rss_mb(server.process.pid)
        for _ in range(rounds):
            browser_tools.eight_visitors(server.url, timeout_s=600)
        bench.record(f"rss_held_mb_right_after_{rounds}_rounds", server_rss_mb(server.process.pid) - before, "MB")
        time.sleep(TTL_S + REAPED_S)
        bench.record(f"rss_growth_mb_after_{rounds}_rounds", server_rss_mb(server.process.pid) - before, "MB")
        for path, ok, why in cold + warm:
            if not ok:
                print(f"# {path or 'home'}: {why}", flush=True)


def project_damage(root: Path, saved: int) -> tuple[int, int, int]:
    """(lost, orphans, duplicates) of the crash project after it is opened again."""
    project = Workspace.at(root).project("crash test", create=False)
    examples = project.examples()
    on_disk = {p.name for p in project.images.folder.iterdir()}
    digests = [e.digest for e in examples]
    pairs = [(e.label, e.digest) for e in examples]
    lost = max(0, saved - len(examples)) + sum(not e.path.is_file() for e in examples)
    return lost, len(on_disk - set(digests)), len(pairs) - len(set(pairs))


def gallery_damage(root: Path, saved: int) -> tuple[int, int, int]:
    gallery = Workspace.at(root).gallery()
    rows = gallery.db.rows("SELECT person, recogniser, crop FROM faces")
    crops = {p.name for p in gallery.crops.folder.iterdir()}
    lost = max(0, saved - len(rows))
    return lost, len(crops - {c for _, _, c in rows}), len(rows) - len(set(rows))


def kills(bench: Bench, work: Path) -> None:
    """SIGKILL at random moments: what each writer reported as saved, against what is there after reopening."""
    rng, trials = random.Random(3), bench.repeats(8, 2)
    lost = orphans = duplicates = 0
    saved_photos = saved_faces = 0
    for trial in range(trials):
        child = crash.run_child(crash.IMPORT_PHOTOS, str(work / "p"), str(trial), "400")
        saved_photos += len(crash.kill_at_random(child, rng))
        saved_faces = max(saved_faces, len(crash.kill_at_random(crash.run_child(crash.ENROL_FACES, str(work / "g")),
                                                                rng)))
        for damage in (project_damage(work / "p", saved_photos), gallery_damage(work / "g", saved_faces)):
            lost, orphans, duplicates = max(lost, damage[0]), orphans + damage[1], duplicates + damage[2]
    bench.record("kill9_trials", 2 * trials, "kills")
    bench.record("kill9_lost_items", lost, "items")
    bench.record("kill9_orphans", orphans, "items")
    bench.record("kill9_duplicates", duplicates, "items")


def model_saves(bench: Bench, work: Path) -> None:
    """SIGKILL at random while a trained model is saved again and again: the project then opens with a model and
    class names of one version (a mix is a model paired with another save's names) and no temporary file left."""
    rng, trials = random.Random(5), bench.repeats(12, 3)
    first = crash.run_child(crash.SAVE_MODELS, str(work), "0")
    first.stdout.readline()
    first.kill()
    first.communicate(timeout=60)
    mixed = leftover = 0
    for trial in range(1, trials + 1):
        crash.kill_at_random(crash.run_child(crash.SAVE_MODELS, str(work), str(trial * 100)), rng)
        weights, label, stray = crash.saved_pair(work)
        mixed, leftover = mixed + (weights != label), leftover + len(stray)
    bench.record("save_model_kill9_trials", trials, "kills")
    bench.record("save_model_kill9_mixed", mixed, "pairs")
    bench.record("save_model_kill9_leftover_tmp", leftover, "files")


def two_writers(bench: Bench, work: Path) -> None:
    children = [crash.run_child(crash.WRITER, str(work / "w"), str(seed)) for seed in (1, 2)]
    errors = sum(child.wait(timeout=900) != 0 for child in children)
    project = Workspace.at(work / "w").project("shared", create=False)
    missing = 300 - len(project.examples())
    bench.record("two_process_write_errors", errors + abs(missing), "errors")


def hostile_zip(bench: Bench, work: Path) -> None:
    archive = crash.hostile_archive(work / "hostile.zip")
    child = crash.run_child(crash.IMPORT_ZIP, str(work / "z"), str(archive))
    out, _ = child.communicate(timeout=900)
    bench.record("zip_bomb_peak_rss_rise_mb", json.loads(out.strip().splitlines()[-1])["rise_mb"], "MB")


def outside_home(bench: Bench, work: Path) -> None:
    home, temp = work / "h", work / "t"
    home.mkdir()
    temp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(home), TMPDIR=str(temp), KERAS_HOME=str(keras_home()),
               VISION_LAB_HOME=str(work / "lab"))
    subprocess.run([sys.executable, "-c", crash.MAIN_FLOWS], cwd=ROOT, env=env, capture_output=True, check=True)
    bench.record("files_written_outside_home", sum(1 for _ in [*home.rglob("*"), *temp.rglob("*")]), "files")


def main() -> None:
    bench = Bench("reliability", __doc__, extra=lambda parser: parser.add_argument(
        "--only", help="comma-separated parts: kills, model_saves, two_writers, hostile_zip, outside_home, visitors"))
    parts = {"kills": kills, "model_saves": model_saves, "two_writers": two_writers, "hostile_zip": hostile_zip,
             "outside_home": outside_home, "visitors": visitors}
    for name, part in parts.items():
        if bench.args.only and name not in bench.args.only.split(","):
            continue
        with tempfile.TemporaryDirectory() as work:
            part(bench, Path(work))


if __name__ == "__main__":
    main()
