"""Fetching on first use, tested against a real HTTP server on 127.0.0.1: progress, retries, hashes,
no partial file ever left in the cache, and one clear line when the internet is not there."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from vision_backend import fetch
from vision_backend.cards import AssetFile, ModelCard

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server(http.server.ThreadingHTTPServer):
    failures_left = 0
    requests = 0
    files: dict[str, bytes] = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        server: Server = self.server  # type: ignore[assignment]
        server.requests += 1
        if server.failures_left > 0:
            server.failures_left -= 1
            self.send_error(503, "busy")
            return
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files = {"/model.onnx": PAYLOAD, "/a.txt": b"alpha", "/b.txt": b"beta"}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: Server, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Keras cache; downloads allowed (they go to the server on 127.0.0.1 only)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("VISION_LAB_OFFLINE", raising=False)
    return tmp_path / "keras"


def card_for(server: Server, sha: str | None = SHA, path: str = "/model.onnx") -> ModelCard:
    return ModelCard(name="test_model", title="Test model", task="test", licence="MIT",
                     files=(AssetFile("models/vision_lab/test_model.onnx", url(server, path), sha, len(PAYLOAD)),))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_download_reports_progress_and_checks_the_hash(server: Server, cache: Path) -> None:
    card = card_for(server)
    seen: list[tuple[int, int | None]] = []
    outcome = fetch.ensure(card, lambda asset, done, total: seen.append((done, total)))
    assert outcome.ok and card.ready() and card.path().read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 4 and seen == sorted(seen)
    assert leftovers(cache) == ["test_model.onnx"]
    assert fetch.ensure(card).written == (), "a second call downloads nothing"


def test_a_busy_server_is_retried(server: Server, cache: Path) -> None:
    server.failures_left = 2
    assert fetch.ensure(card_for(server)).ok and server.requests == 3


def test_a_wrong_hash_is_refused_and_nothing_is_left(server: Server, cache: Path) -> None:
    card = card_for(server, sha="0" * 64)
    outcome = fetch.ensure(card)
    assert not outcome.ok and "hash" in outcome.message and "\n" not in outcome.message
    assert not card.ready() and leftovers(cache) == [], "no partial or refused file in the cache"
    assert server.requests == 1, "a wrong hash is not retried: the server gives what it has"


def test_a_missing_file_is_one_line_not_a_traceback(server: Server, cache: Path) -> None:
    outcome = fetch.ensure(card_for(server, path="/gone.onnx"))
    assert not outcome.ok and "404" in outcome.message and "\n" not in outcome.message


def test_no_internet_says_how_to_get_the_file(cache: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    card = ModelCard(name="x", title="X", task="t", licence="MIT",
                     files=(AssetFile("models/vision_lab/x.onnx", f"http://127.0.0.1:{port}/x.onnx", SHA),))
    outcome = fetch.ensure(card)
    assert not outcome.ok and outcome.message.startswith("no internet: copy x.onnx to ")
    assert "seed" in outcome.message and "\n" not in outcome.message


def test_fetch_goes_on_past_failures(server: Server, cache: Path) -> None:
    good = card_for(server)
    bad = ModelCard(name="bad", title="Bad", task="t", licence="MIT",
                    files=(AssetFile("models/vision_lab/bad.onnx", url(server, "/nope"), SHA),))
    lines: list[str] = []
    outcomes = fetch.fetch([bad, good], log=lines.append)
    assert [o.ok for o in outcomes] == [False, True] and good.ready()
    assert any("failed: bad" in line for line in lines)


def test_a_tree_is_built_from_downloads_and_checked_against_its_manifest(
        server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "letters.sha256").write_text(
        f"{hashlib.sha256(b'alpha').hexdigest()}  a/a.txt\n{hashlib.sha256(b'beta').hexdigest()}  b.txt\n")
    monkeypatch.setattr(fetch, "MANIFESTS", manifests)

    def build(folder: Path, download) -> None:
        (folder / "a").mkdir()
        download(url(server, "/a.txt"), "a/a.txt")
        download(url(server, "/b.txt"), "b.txt")

    tree = AssetFile("datasets/vision_lab/letters", is_tree=True, build=build)
    card = ModelCard(name="letters", title="Letters", task="t", licence="MIT", kind="dataset", files=(tree,))
    assert fetch.ensure(card).ok and (tree.local / "a" / "a.txt").read_bytes() == b"alpha"
    server.files["/b.txt"] = b"tampered"
    (manifests / "letters.sha256").write_text(f"{hashlib.sha256(b'beta').hexdigest()}  b.txt\n")
    other = AssetFile("datasets/vision_lab/letters2", is_tree=True, build=build)
    monkeypatch.setattr(fetch, "tree_manifest", lambda asset: {"b.txt": hashlib.sha256(b"beta").hexdigest()})
    outcome = fetch.ensure(ModelCard(name="l2", title="L2", task="t", licence="MIT", kind="dataset", files=(other,)))
    assert not outcome.ok and "b.txt" in outcome.message and not other.local.exists()
    assert not [p for p in other.local.parent.iterdir() if p.name.startswith(".")], "no staging folder left"


# ---- the data sets' own builds, on files in the publishers' layouts served from 127.0.0.1 -----------------
def serve_folder(server: Server, files: dict[str, bytes]) -> None:
    server.files.update(files)


def test_the_demo_photos_build_gives_the_registered_folder(server: Server, cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import require_shared
    from vision_backend import samples

    shared = require_shared() / "data" / "photos"
    sources = {name: url(server, f"/photos/{name}") for name in samples.PHOTO_SOURCES}
    serve_folder(server, {f"/photos/{name}": (shared / name).read_bytes() for name in sources})
    monkeypatch.setattr(samples, "PHOTO_SOURCES", sources)
    outcome = fetch.ensure(samples.PHOTOS)
    assert outcome.ok, outcome.message
    folder = samples.photos_dir()
    assert fetch.check_tree(samples.PHOTOS.files[0], folder) == []
    assert (folder / "face_boxes.json").read_bytes() == (shared / "face_boxes.json").read_bytes()
    assert samples.no_face_photos() == ["no_face_eagle.jpg"], "the one photo without a public address is absent"
    assert len(samples.annotated_faces()) == 3


def test_the_lfw_build_takes_the_registered_files_out_of_the_original_archive(
        server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An archive in lfw.tgz's layout (lfw/<Name>/<Name>_0001.jpg) made of the shared LFW files, plus
    pairs.txt, served locally: the build keeps exactly the registered files."""
    import io
    import tarfile

    from conftest import require_shared
    from vision_backend.face_recognition import lfw

    shared = require_shared() / "data" / "lfw"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted((shared / "people").rglob("*.jpg")) + sorted((shared / "pairs_images").rglob("*.jpg")):
            tar.add(path, f"lfw/{path.parent.name}/{path.name}")
        tar.add(shared / "pairs.txt", "lfw/not_wanted.txt")
    archive = buffer.getvalue()
    serve_folder(server, {"/lfw.tgz": archive, "/pairs.txt": (shared / "pairs.txt").read_bytes()})
    monkeypatch.setattr(lfw, "LFW_ARCHIVE", (url(server, "/lfw.tgz"), hashlib.sha256(archive).hexdigest()))
    monkeypatch.setattr(lfw, "LFW_PAIRS", url(server, "/pairs.txt"))
    outcome = fetch.ensure(lfw.LFW)
    assert outcome.ok, outcome.message
    built = lfw.LFW.files[0].local
    assert fetch.check_tree(lfw.LFW.files[0], built) == []
    assert not (built / ".lfw.tgz").exists() and not list(built.rglob("not_wanted.txt"))
    assert len(lfw.lfw_pairs()) == 600 and len(lfw.lfw_people()[0]) == 1140


def test_offline_mode_never_downloads(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_LAB_OFFLINE", "1")
    outcome = fetch.ensure(card_for(server))
    assert not outcome.ok and outcome.message.startswith("no internet") and server.requests == 0
