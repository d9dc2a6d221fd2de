"""Workspaces: what one person makes lives in one folder, named by who they are, never by what they type."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from vision_backend import paths
from vision_backend.workspace import Workspace, remove_expired_visits


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "lab"))
    return tmp_path / "lab"


def test_each_person_and_each_visit_has_a_folder_of_their_own(home: Path) -> None:
    alice = Workspace.for_person("https://issuer", "alice", "alice@example.com")
    bob = Workspace.for_person("https://issuer", "bob", "bob@example.com")
    mallory = Workspace.for_person("https://other-issuer", "alice", "alice@example.com")
    roots = {alice.root, bob.root, mallory.root}
    assert len(roots) == 3, "the same subject at another provider is someone else"
    assert all(r.parent == home / "people" and "alice" not in r.name for r in roots)
    assert Workspace.for_person("https://issuer", "alice", "x").root == alice.root, "the same person, the same folder"
    visit = Workspace.for_visit("session-1")
    assert visit.root.parent == home / "visits" and visit.owner == "this visit"
    assert Workspace.local().root == paths.app_home() == home


def test_projects_and_galleries_stay_in_their_workspace(home: Path) -> None:
    alice = Workspace.for_person("iss", "alice", "Alice")
    bob = Workspace.for_person("iss", "bob", "Bob")
    alice.project("Secret plans").add_class("drafts")
    assert alice.projects() == ["Secret plans"] and bob.projects() == []
    assert bob.project("Secret plans").classes() == [], "the same name in another workspace is another project"
    assert alice.gallery().folder != bob.gallery().folder


def test_visits_untouched_for_a_while_are_removed(home: Path) -> None:
    old, fresh = Workspace.for_visit("old"), Workspace.for_visit("fresh")
    old.project("p").add_class("c")
    fresh.project("p").add_class("c")
    long_ago = time.time() - 3 * 3600
    for path in [old.root, *old.root.rglob("*")]:
        os.utime(path, (long_ago, long_ago))
    assert remove_expired_visits(2 * 3600) == 1
    assert not old.root.exists() and fresh.root.exists()


def test_models_saved_per_session_keep_only_the_newest(home: Path) -> None:
    space = Workspace.local()
    for i in range(5):
        path = space.models_dir / f"cnn_mnist_deck_{i}.keras"
        path.write_bytes(b"model")
        os.utime(path, (1_000 + i, 1_000 + i))
    (space.models_dir / "export.onnx").write_bytes(b"other")
    removed = space.prune_models("cnn_*.keras", keep=2)
    assert sorted(p.name for p in removed) == [f"cnn_mnist_deck_{i}.keras" for i in range(3)]
    assert sorted(p.name for p in space.models_dir.iterdir()) == ["cnn_mnist_deck_3.keras", "cnn_mnist_deck_4.keras",
                                                                  "export.onnx"]
