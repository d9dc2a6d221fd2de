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

from vision_backend.storage import (BlobStore, Database, FeatureCache, InvalidName, atomic_path, atomic_write,
                                    check_name, safe_part, sweep_temp)

HOSTILE = ["../../x", "a/b", "a\\b", "nul\x00byte", "x" * 10_000, ".", "..", ".hidden", "new\nline", "tab\there",
           "", "   ", "界" * 90]


@pytest.mark.parametrize("name", HOSTILE)
def test_the_naming_rule_refuses_hostile_names(name: str) -> None:
    with pytest.raises(InvalidName) as error:
        check_name(name, "class name")
    assert "class name" in str(error.value) or "name" in str(error.value)


@pytest.mark.parametrize("name", ["cat", "Donald Rumsfeld", "crème brûlée", "日本語", "a.b-c_d (2)", "x" * 100,
                                  "  padded  "])
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
    store = BlobStore(tmp_path / "images", ".png")
    a, b = store.put(b"first"), store.put(b"second")
    assert store.put(b"first") == a and store.keys() == {a, b}
    assert store.path(a).read_bytes() == b"first"
    assert store.path("../../etc/passwd").parent == store.folder, "a key never leaves the folder"
    assert store.sweep([a]) == 1 and store.keys() == {a}


def test_database_transactions_roll_back_whole(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.sqlite", "CREATE TABLE IF NOT EXISTS t (k TEXT UNIQUE NOT NULL)")
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(Exception):
        with db.transaction() as c:
            c.execute("INSERT INTO t VALUES ('b')")
            c.execute("INSERT INTO t VALUES ('a')")  # unique: the whole transaction goes
    assert db.rows("SELECT k FROM t") == [("a",)]
    assert db.rows("PRAGMA journal_mode")[0][0] == "wal" and db.integrity() == "ok"


def test_database_writers_in_threads_queue_instead_of_failing(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.sqlite", "CREATE TABLE IF NOT EXISTS t (k INTEGER UNIQUE NOT NULL)")
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
