"""Getting a card's files: downloaded where the internet is, copied from a folder where it is not.

``ensure(card)`` is what a page calls the first time it needs a model: each missing file is
downloaded from its published address into the standard cache (the Keras cache, under Keras's
own names), checked against its published hash, and renamed into place only when whole, so a
failed or refused download never leaves a partial file where a loader would find it. Progress
is reported as (bytes done, bytes in all) with the card's source and licence at hand.

Without the internet every failure is one line ("no internet: copy FILE to PATH, or run
``seed DIR``"), never a traceback; ``seed`` copies files found under folders (the team's
``../shared``) into the cache, checking every file's hash, folder trees file by file against
their manifest.
"""

from __future__ import annotations

import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from vision_backend.errors import FetchError, HashMismatch
from vision_backend.cards import AssetFile, ModelCard, file_digest, hash_matches, seed_hint
from vision_backend.storage import atomic_path

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, bytes in all or None) as a download proceeds."""

TIMEOUT_S = 30
RETRIES = 3
USER_AGENT = "vision-lab/1 (+https://pypi.org/project/streamlit/)"




def _offline(error: BaseException) -> bool:
    reason = getattr(error, "reason", error)
    return isinstance(reason, (socket.gaierror, socket.timeout, ConnectionError, TimeoutError, OSError)) and \
        not isinstance(error, urllib.error.HTTPError)


def _copy_stream(response: object, handle: object, total: int | None, progress: Progress | None) -> int:
    done = 0
    while block := response.read(1 << 16):  # type: ignore[attr-defined]
        handle.write(block)  # type: ignore[attr-defined]
        done += len(block)
        if progress:
            progress(done, total)
    return done


def download(url: str, target: Path, expected_hash: str | None = None, progress: Progress | None = None,
             retries: int = RETRIES, timeout: float = TIMEOUT_S) -> Path:
    """``url`` into ``target``, checked against ``expected_hash`` (sha256 or md5), atomically.

    Retries a dropped connection or a server error with a growing pause; refuses a file whose hash
    is wrong (no retry: the server gives what it has). Nothing is left at ``target`` unless whole.
    ``VISION_LAB_OFFLINE=1`` (an air-gapped machine, or a test run that must not download) says so at once.
    """
    if os.environ.get("VISION_LAB_OFFLINE") == "1":
        raise FetchError(f"no internet (VISION_LAB_OFFLINE=1): copy {target.name} to {target}, or "
                         f"{seed_hint([target.name])}")
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(target) as temp:
                request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
                with urllib.request.urlopen(request, timeout=timeout) as response, open(temp, "wb") as handle:
                    length = response.headers.get("Content-Length")
                    _copy_stream(response, handle, int(length) if length else None, progress)
                if not hash_matches(temp, expected_hash):
                    raise HashMismatch(f"{url} gave a file whose hash is not the published one "
                                       f"(expected {expected_hash}, got {file_digest(temp, 'sha256')}); refused")
            return target
        except HashMismatch:
            raise
        except (urllib.error.URLError, OSError, ValueError) as error:
            http = isinstance(error, urllib.error.HTTPError)
            if (http and error.code < 500) or attempt == retries:  # type: ignore[union-attr]
                raise _failure(url, target, error) from None
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _failure(url: str, target: Path, error: BaseException) -> FetchError:
    if _offline(error):
        return FetchError(f"no internet: copy {target.name} to {target}, or {seed_hint([target.name])}")
    return FetchError(f"could not download {url}: {error}")


def extract_members(archive: Path, route: Callable[[str], list[Path]]) -> int:
    """Stream a .tar.gz and write each regular file to every destination ``route`` gives it; returns how
    many files were written.

    Destinations come from ``route`` (our own mapping), never from the member's name, so an archive
    cannot write outside the folder being built.
    """
    written = 0
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            targets = route(member.name) if member.isfile() else []
            if not targets:
                continue
            data = tar.extractfile(member).read()  # type: ignore[union-attr]  (one photo: small)
            for target in targets:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                written += 1
    return written


# ---- a card's files -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What fetching one card did: ``ok`` with the files written, or the one-line reason it failed."""

    card: ModelCard
    ok: bool
    written: tuple[str, ...] = ()
    message: str = ""


def fetch_file(asset: AssetFile, progress: Progress | None = None) -> None:
    """One missing file (or tree) of a card into the cache."""
    if asset.is_tree:
        _build_tree(asset, progress)
    elif asset.url:
        download(asset.url, asset.local, asset.file_hash, progress)
    else:
        raise FetchError(f"no public download of {asset.name}: copy it to {asset.local}, or "
                         f"{seed_hint([asset.name])}")


def _build_tree(asset: AssetFile, progress: Progress | None) -> None:
    """A folder tree built from public downloads in a staging folder, every file checked against the
    tree's manifest, then renamed into place whole."""
    if asset.build is None:
        raise FetchError(f"no public download of {asset.name}: copy it to {asset.local}, or "
                         f"{seed_hint([asset.name])}")
    staging = asset.local.with_name(f".{asset.local.name}.{os.getpid()}.building")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = tree_manifest(asset)

    def fetch_one(url: str, name: str, sha256: str | None = None) -> Path:
        """One download of a build, into the staging folder, checked against its manifest line."""
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        return download(url, staging / name, sha256 or manifest.get(name), progress)

    try:
        asset.build(staging, fetch_one)
        problems = check_tree(asset, staging)
        if problems:
            raise FetchError(f"{asset.name} built from its downloads is not the registered one: {problems[0]}")
        os.replace(staging, asset.local)
    except FetchError as error:
        if str(error).startswith("no internet"):  # name the folder, not a file of the staging folder
            raise FetchError(f"no internet: copy the folder {asset.name} to {asset.local}, "
                             f"or {seed_hint([asset.name + '/'])}") from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure(card: ModelCard, progress: Callable[[AssetFile, int, int | None], None] | None = None) -> Outcome:
    """Every missing file of ``card`` fetched (the first use of a model); never raises for a failure."""
    written = []
    for asset in card.files:
        if asset.present():
            continue
        try:
            fetch_file(asset, (lambda done, total, a=asset: progress(a, done, total)) if progress else None)
        except FetchError as error:
            return Outcome(card, False, tuple(written), str(error))
        written.append(asset.path)
    return Outcome(card, True, tuple(written))


def fetch(cards: Iterable[ModelCard], log: Callable[[str], None] = print) -> list[Outcome]:
    """:func:`ensure` for each card, going on past failures; one line each."""
    outcomes = []
    for card in cards:
        if card.source != "cache" or card.ready():
            continue
        size = card.download_size()
        log(f"fetching {card.name} ({f'{size / 1e6:.1f} MB' if size else 'size not published'}, {card.licence})")
        outcome = ensure(card)
        log(f"  {'ok' if outcome.ok else 'failed'}: {card.name}" + (f" — {outcome.message}" if outcome.message else ""))
        outcomes.append(outcome)
    return outcomes


# ---- seeding from folders -----------------------------------------------------------------------
def _index(directories: Iterable[str | Path], log: Callable[[str], None]) -> dict[str, list[Path]]:
    by_name: dict[str, list[Path]] = {}
    for directory in map(Path, directories):
        if not directory.exists():
            log(f"skip {directory}: no such folder")
            continue
        for path in [directory, *directory.rglob("*")]:
            by_name.setdefault(path.name, []).append(path)
    return by_name


def _seed_file(card: ModelCard, asset: AssetFile, candidates: list[Path], log: Callable[[str], None]) -> bool:
    good = [p for p in candidates if p.is_file() and hash_matches(p, asset.seed_hash or asset.file_hash)]
    if candidates and not good:
        log(f"refused {candidates[0]}: its hash is not the one registered for {card.name}")
        return False
    if not good:
        return False
    with atomic_path(asset.local) as temp:
        shutil.copyfile(good[0], temp)
    log(f"seeded {card.name}: {good[0]} -> {asset.local}")
    return True


def _seed_tree(card: ModelCard, asset: AssetFile, candidates: list[Path], log: Callable[[str], None]) -> bool:
    folders = [p for p in candidates if p.is_dir()]
    if not folders:
        return False
    staging = asset.local.with_name(f".{asset.local.name}.{os.getpid()}.seeding")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(folders[0], staging)
        problems = check_tree(asset, staging)
        if problems:
            log(f"refused {folders[0]}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
            return False
        asset.local.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, asset.local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"seeded {card.name}: {folders[0]} -> {asset.local} (every file checked)")
    return True


def check_tree(asset: AssetFile, folder: Path) -> list[str]:
    """Every file the tree's manifest lists, present in ``folder`` with its hash (an ``optional`` one may be
    absent: it has no public download); what is wrong, if anything."""
    manifest = tree_manifest(asset)
    problems = []
    for relative, sha256 in manifest.items():
        path = folder / relative
        if not path.is_file():
            if relative not in asset.optional:
                problems.append(f"{relative} is missing")
        elif not hash_matches(path, sha256):
            problems.append(f"{relative} has other bytes than registered")
    return problems if manifest else [f"no manifest for {asset.name}"]


MANIFESTS = Path(__file__).parent / "manifests"


def tree_manifest(asset: AssetFile) -> dict[str, str]:
    """A tree's files and their sha256, from ``vision_backend/manifests/<tree>.sha256`` (sha256sum's format)."""
    path = MANIFESTS / f"{asset.name}.sha256"
    if not path.is_file():
        return {}
    rows = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): sha for sha, name in rows}


def seed(cards: Iterable[ModelCard], directories: Iterable[str | Path], log: Callable[[str], None] = print) -> list[str]:
    """Copy files found under ``directories`` into the cache under their registered names.

    A file is matched by its base name (a tree by its folder name) and copied only if its hash
    (every file of a tree: its manifest's) matches, so a same-named file of other bytes is refused,
    not used. Files already in place are left alone. Returns the cache paths written.
    """
    by_name = _index(directories, log)
    written = []
    for card in cards:
        for asset in (f for f in card.files if card.source == "cache" and not f.present()):
            seeder = _seed_tree if asset.is_tree else _seed_file
            if seeder(card, asset, by_name.get(asset.name, []), log):
                written.append(asset.path)
    return written
