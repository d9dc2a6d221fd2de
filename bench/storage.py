"""The shared store (PostgreSQL + S3) against the laptop's (SQLite + folders), and kill -9 of each service.

- ``postgres_vs_sqlite_enrol_ratio``: enrolling 100 faces into a gallery, one enrolment each as the page does
  (the centre 150x150 of 100 real LFW photos as crops, 128-float embeddings; the embedder's own time is left
  out, so the figure is the store's), on PostgreSQL + S3 over SQLite + a folder.
- ``s3_vs_folder_import_ratio``: importing a ZIP of the 250 real photos of the flowers demo classes into a new
  project (``Project.import_zip``: each photo decoded, stored and recorded in its own transaction).
- ``postgres_kill9_*`` / ``s3_kill9_*``: a writer imports photos while PostgreSQL (postmaster and backends) or
  the S3 server is killed with SIGKILL at random moments and started again; photos reported saved and then
  missing (lost), files without a row once the project is opened again (orphans). The trials are the crash
  test's own (tests/test_remote_storage.py), counted here instead of asserted.

Both stores run on this machine (127.0.0.1): PostgreSQL and SeaweedFS started by deploy/services.py, in a run
folder removed at the end. Rounds alternate local and remote, after one untimed warm-up each.

python bench/storage.py [--quick]
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from _harness import ROOT, Bench

sys.path.insert(0, str(ROOT / "tests"))
import test_remote_storage as remote  # noqa: E402

from vision_backend import models  # noqa: E402
from vision_backend.storage import LocalStore, Store  # noqa: E402
from vision_backend.workspace import Workspace  # noqa: E402


def faces(count: int = 100) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(embedding, crop, source) for ``count`` real LFW photos: the centre 150x150 of each."""
    from PIL import Image

    photos = sorted(models.card("lfw").path().rglob("*.jpg"))[:count]
    rng = np.random.default_rng(0)
    found = []
    for photo in photos:
        pixels = np.asarray(Image.open(photo).convert("RGB"))
        top, left = (pixels.shape[0] - 150) // 2, (pixels.shape[1] - 150) // 2
        vector = rng.normal(size=128).astype(np.float32)
        found.append((vector / np.linalg.norm(vector), pixels[top:top + 150, left:left + 150].copy(), photo.name))
    return found


def flowers_zip() -> bytes:
    """The 250 photos of the flowers demo classes as one ZIP of class folders."""
    buffer = io.BytesIO()
    folder = models.card("demo_classes").path()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for photo in sorted(folder.glob("*/*.jpg")):
            archive.write(photo, f"{photo.parent.name}/{photo.name}")
    return buffer.getvalue()


def alternate(rounds: int, local: Callable[[], None], shared: Callable[[], None]) -> tuple[float, float]:
    """Median seconds of each, timed in alternating rounds after one untimed warm-up of each."""
    local()
    shared()
    times: dict[str, list[float]] = {"local": [], "shared": []}
    for _ in range(rounds):
        for name, work in (("local", local), ("shared", shared)):
            start = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["local"]), statistics.median(times["shared"])


def enrol_all(store: Store, people: list[tuple[np.ndarray, np.ndarray, str]]) -> None:
    gallery = Workspace(store, f"bench/{uuid.uuid4().hex[:12]}").gallery()
    for i, face in enumerate(people):
        gallery.enrol(f"person {i}", "dlib_resnet_face", [face])


def import_all(store: Store, data: bytes) -> None:
    added, skipped = Workspace(store, f"bench/{uuid.uuid4().hex[:12]}").project("flowers").import_zip(data)
    assert added == 250 and not skipped, (added, skipped)


def ratios(bench: Bench, found: remote.Services, work: Path) -> None:
    local, shared = LocalStore(work / "local"), found.store(work / "node")
    people, data, rounds = faces(), flowers_zip(), bench.repeats(5, 1)
    sqlite_s, postgres_s = alternate(rounds, lambda: enrol_all(local, people), lambda: enrol_all(shared, people))
    bench.record("sqlite_enrol_100_faces_s", sqlite_s, "s")
    bench.record("postgres_enrol_100_faces_s", postgres_s, "s")
    bench.record("postgres_vs_sqlite_enrol_ratio", postgres_s / sqlite_s, "ratio")
    folder_s, s3_s = alternate(rounds, lambda: import_all(local, data), lambda: import_all(shared, data))
    bench.record("folder_import_250_photos_s", folder_s, "s")
    bench.record("s3_import_250_photos_s", s3_s, "s")
    bench.record("s3_vs_folder_import_ratio", s3_s / folder_s, "ratio")


def kills(bench: Bench, found: remote.Services, work: Path) -> None:
    trials = bench.repeats(10, 2)
    for service in ("postgres", "s3"):
        damage = remote.kill_during_imports(found, service, trials, work / f"kill-{service}", seed=11)
        bench.record(f"{service}_kill9_trials", damage.trials, "kills")
        bench.record(f"{service}_kill9_saved", damage.saved, "photos")
        bench.record(f"{service}_kill9_lost", damage.lost, "photos")
        bench.record(f"{service}_kill9_orphans", damage.orphans, "files")
        bench.record(f"{service}_kill9_tracebacks", damage.tracebacks, "tracebacks")
        for message in sorted(damage.messages):
            print(f"# what the writer was told: {message}", flush=True)


def main() -> None:
    bench = Bench("storage", __doc__)
    for card in ("lfw", "demo_classes"):
        if not models.card(card).ready():
            sys.exit(f"{models.card(card).title} is not here: {models.card(card).how_to_get()}")
    with remote.running_services() as found:
        work = found.run_dir / "bench"
        ratios(bench, found, work)
        kills(bench, found, work)


if __name__ == "__main__":
    main()
