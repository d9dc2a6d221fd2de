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


def folder(space: Workspace) -> Path:
    return space.store.folder(space.prefix)


def test_each_person_and_each_visit_has_a_folder_of_their_own(home: Path) -> None:
    alice = Workspace.for_person("https://issuer", "alice", "alice@example.com")
    bob = Workspace.for_person("https://issuer", "bob", "bob@example.com")
    mallory = Workspace.for_person("https://other-issuer", "alice", "alice@example.com")
    roots = {folder(alice), folder(bob), folder(mallory)}
    assert len(roots) == 3, "the same subject at another provider is someone else"
    assert all(r.parent == home / "people" and "alice" not in r.name for r in roots)
    assert folder(Workspace.for_person("https://issuer", "alice", "x")) == folder(alice), \
        "the same person, the same folder"
    visit = Workspace.for_visit("session-1")
    assert folder(visit).parent == home / "visits" and visit.owner == "this visit"
    assert folder(Workspace.local()) == paths.app_home() == home


def test_projects_and_galleries_stay_in_their_workspace(home: Path) -> None:
    alice = Workspace.for_person("iss", "alice", "Alice")
    bob = Workspace.for_person("iss", "bob", "Bob")
    alice.project("Secret plans").add_class("drafts")
    assert alice.projects() == ["Secret plans"] and bob.projects() == []
    assert bob.project("Secret plans").classes() == [], "the same name in another workspace is another project"
    assert alice.gallery().scope != bob.gallery().scope
    alice.gallery().add_person("Carol")
    assert [p["name"] for p in alice.gallery().people()] == ["Carol"] and bob.gallery().people() == []


def test_visits_untouched_for_a_while_are_removed(home: Path) -> None:
    old, fresh = Workspace.for_visit("old"), Workspace.for_visit("fresh")
    old.project("p").add_class("c")
    fresh.project("p").add_class("c")
    long_ago = time.time() - 3 * 3600
    for path in [folder(old), *folder(old).rglob("*")]:
        os.utime(path, (long_ago, long_ago))
    assert remove_expired_visits(2 * 3600) == 1
    assert not folder(old).exists() and folder(fresh).exists()


def test_models_saved_per_session_keep_only_the_newest(home: Path) -> None:
    kept = Workspace.local().trained_cnns()
    for i in range(5):
        kept.save(f"cnn_mnist_deck_{i}", f"model {i}".encode(), {"run": i})
    removed = kept.keep_newest(2)
    assert sorted(removed) == [f"cnn_mnist_deck_{i}" for i in range(3)]
    assert sorted(kept.all()) == ["cnn_mnist_deck_3", "cnn_mnist_deck_4"]
    assert [m.read() for m in kept.all().values()] == [b"model 3", b"model 4"]
    assert len(kept.blobs.keys()) == 2, "the files of the models that went are gone too"


def test_a_copy_carries_every_kind_of_collection_a_workspace_makes_api_keys_included(tmp_path: Path) -> None:
    """A workspace with a project, a detection project (photos, boxes, a trained detector), a gallery, a trained CNN
    and an API key copies whole to another store; a catalogue of a kind the copy does not know would stop it (and
    lose the person's keys on a move)."""
    import numpy as np

    from vision_backend import intake
    from vision_backend.api.keys import KeyRing
    from vision_backend.storage import LocalStore
    from vision_backend.workspace import copy_workspaces

    person = "people/" + "ab" * 12
    space = Workspace(LocalStore(tmp_path / "laptop"), person)
    space.project("Flowers").add_class("daisy")
    space.gallery().enrol("Ada", "dlib_resnet_face", [(np.eye(1, 128)[0], np.zeros((8, 8, 3), np.uint8), "a.jpg")])
    space.trained_cnns().save("cnn", b"weights", {})
    KeyRing(space).create("scanner", True, "me")
    boxes = space.detection_project("cnn")  # named like the trained CNNs' scope: told apart by its catalogue
    photo = boxes.add_photo(intake.encode_png(np.full((40, 60, 3), 90, np.uint8)), "desk.png", [[1.5, 2, 30, 20]],
                            ["mug"])
    boxes.models.save("fast_1", b"onnx graph", {"kind": "fast", "classes": ["mug"]})
    assert copy_workspaces(space.store, LocalStore(tmp_path / "server"), person, say=lambda line: None) == 5
    copy = Workspace(LocalStore(tmp_path / "server"), person).detection_project("cnn", create=False)
    assert copy.boxes(photo)[0].tolist() == [[1.5, 2, 30, 20]] and copy.photo_bytes(photo) == boxes.photo_bytes(photo)
    assert copy.detectors()["fast_1"].read() == b"onnx graph"
    made, copied = (KeyRing(Workspace(LocalStore(tmp_path / where), person)).list() for where in ("laptop", "server"))
    assert [k["name"] for k in copied] == ["scanner"] and copied == made
