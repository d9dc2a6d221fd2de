"""The storage helper every collection uses: the naming rule, atomic files, content-addressed files,
SQLite transactions, the orphan sweep and the feature cache."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from vision_backend.storage import (FeatureCache, FolderBlobs, InvalidName, LocalStore, SavedModels, SQLiteCatalogue,
                                    atomic_path, atomic_write, check_name, file_mode, safe_part, sweep_temp)

HOSTILE = ["../../x", "a/b", "a\\b", "nul\x00byte", "x" * 10_000, ".", "..", ".hidden", "new\nline", "tab\there",
           "", "   ", "界" * 90, "evil\u202etxt.exe", "line\u2028break"]


@pytest.mark.parametrize("name", HOSTILE)
def test_the_naming_rule_refuses_hostile_names(name: str) -> None:
    with pytest.raises(InvalidName) as error:
        check_name(name, "class name")
    assert "class name" in str(error.value) or "name" in str(error.value)


@pytest.mark.parametrize("name", ["cat", "Donald Rumsfeld", "crème brûlée", "日本語", "a.b-c_d (2)", "x" * 100,
                                  "  padded  ", "محمد\u200cرضا", "क्\u200dष", "🐱 cats 👩\u200d👩\u200d👧", "❤\ufe0f"])
def test_the_naming_rule_keeps_ordinary_names(name: str) -> None:
    assert check_name(name) == name.strip()


def test_safe_part_makes_anything_one_path_component() -> None:
    for text in HOSTILE + ["photo.jpg"]:
        part = safe_part(text)
        assert part and "/" not in part and "\\" not in part and not part.startswith(".")
        assert len(part.encode()) <= 120 and part.isprintable()


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target, ".keras") as temp:
            temp.write_bytes(b"half of the new")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"], "no temporary file left"


def test_sweep_removes_temporary_files_of_dead_writers_only(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (tmp_path / f".photo.{pid}.abcd1234.tmp").write_bytes(b"left by a killed writer")
    (tmp_path / f".photo.{os.getpid()}.efgh5678.tmp").write_bytes(b"being written now")
    assert sweep_temp(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == [f".photo.{os.getpid()}.efgh5678.tmp"]


def test_blob_store_keeps_each_content_once_and_sweeps_orphans(tmp_path: Path) -> None:
    store = FolderBlobs(tmp_path / "images", ".png")
    a, b = store.put(b"first"), store.put(b"second")
    assert store.put(b"first") == a and store.keys() == {a, b}
    assert store.path(a).read_bytes() == b"first"
    assert store.path("../../etc/passwd").parent == store.folder, "a key never leaves the folder"
    assert store.sweep([a]) == 1 and store.keys() == {a}


def test_database_transactions_roll_back_whole(tmp_path: Path) -> None:
    db = SQLiteCatalogue(tmp_path / "c.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT UNIQUE NOT NULL)")
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(Exception):
        with db.transaction() as c:
            c.execute("INSERT INTO t VALUES ('b')")
            c.execute("INSERT INTO t VALUES ('a')")  # unique: the whole transaction goes
    assert db.rows("SELECT k FROM t") == [("a",)]
    assert db.rows("PRAGMA journal_mode")[0][0] == "wal" and db.integrity() == "ok"


def test_database_writers_in_threads_queue_instead_of_failing(tmp_path: Path) -> None:
    db = SQLiteCatalogue(tmp_path / "c.sqlite", "CREATE TABLE IF NOT EXISTS t (k INTEGER UNIQUE NOT NULL)")
    errors: list[BaseException] = []

    def write(start: int) -> None:
        try:
            for k in range(start, start + 100):
                with db.transaction() as c:
                    c.execute("INSERT INTO t VALUES (?) ON CONFLICT DO NOTHING", (k % 150,))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(i * 50,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and db.rows("SELECT COUNT(*) FROM t")[0][0] == 150


def test_feature_cache_computes_only_what_is_missing(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "f.npz")
    calls: list[list[str]] = []

    def compute(keys: list[str]) -> np.ndarray:
        calls.append(keys)
        return np.stack([np.full(3, float(len(k))) for k in keys])

    rows, fresh = cache.lookup(["a", "bb"], compute)
    assert fresh == 2 and rows.tolist() == [[1.0] * 3, [2.0] * 3]
    rows, fresh = cache.lookup(["bb", "ccc", "a"], compute)
    assert fresh == 1 and calls[-1] == ["ccc"] and rows[:, 0].tolist() == [2.0, 3.0, 1.0]
    (tmp_path / "f.npz").write_bytes(b"torn")
    assert cache.lookup(["a"], compute)[1] == 1, "an unreadable cache is computed again, not an error"


def test_safe_part_keeps_a_name_the_rule_accepts() -> None:
    """An exported class folder is the class's own name: ZIP import then gives the same class back."""
    for name in ("محمد\u200cرضا", "🐱 cats 👩\u200d👩\u200d👧", "crème brûlée"):
        assert safe_part(check_name(name), limit=255) == name


def test_files_written_atomically_follow_the_umask(tmp_path: Path) -> None:
    """mkstemp makes 0600 files; a file written for a person gets the mode the umask gives any new file."""
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.bin", b"x")
        with atomic_path(tmp_path / "b.parquet") as temp:
            temp.write_bytes(b"y")
        assert file_mode() == 0o644
        assert {oct((tmp_path / n).stat().st_mode & 0o777) for n in ("a.bin", "b.parquet")} == {oct(0o644)}
        os.umask(0o077)
        atomic_write(tmp_path / "c.bin", b"z")
        assert (tmp_path / "c.bin").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_a_saved_model_and_its_metadata_are_one_unit(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    saved = SavedModels(store.catalogue("p", "catalogue", ""), store.blobs("p", "models", ".keras"))
    first = saved.save("head", b"weights 1", {"classes": ["a", "b"]})
    second = saved.save("head", b"weights 2", {"classes": ["b", "c"]})
    assert first.key != second.key and saved.get("head").read() == b"weights 2"
    assert saved.get("head").meta == {"classes": ["b", "c"]}
    assert saved.blobs.keys() == {second.key}, "the replaced file is gone with its row"
    with pytest.raises(LookupError):
        saved.get("nope")


def test_a_store_lists_removes_and_expires_scopes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for name in ("b", "a"):
        store.catalogue(f"w/projects/{name}", "catalogue", "")
    store.blobs("w/projects/c", "images")  # blobs without a catalogue: not a collection
    assert store.children("w/projects", "catalogue") == ["a", "b"] and store.has("w/projects/a", "catalogue")
    store.remove("w/projects/a")
    assert store.children("w/projects", "catalogue") == ["b"] and not (tmp_path / "w/projects/a").exists()
    assert not [p for p in (tmp_path / "w/projects").iterdir() if p.name.startswith(".removed")]
    store.touch("visits/new")
    old = tmp_path / "visits" / "old"
    old.mkdir(parents=True)
    os.utime(old, (1e9, 1e9))
    assert store.remove_stale("visits", 3600) == 1 and (tmp_path / "visits" / "new").is_dir()
