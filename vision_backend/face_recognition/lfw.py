"""Labeled Faces in the Wild: the standard test of face verification, and its five most-photographed people.

Fold 1 of LFW's official View-2 pairs (300 same-person pairs, 300 different-person pairs) gives
the verification accuracy at the best threshold, the ROC curve and its AUC; the five people with
the most photos (1,140 images) are the deck's from-scratch-versus-transfer experiment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vision_backend import paths
from vision_backend.cards import AssetFile, ModelCard
from vision_backend.detections import Detections
from vision_backend.face_detection import DETECTORS
from vision_backend.face_recognition.embedders import FaceEmbedder
from vision_backend.face_recognition.recognise import distances, face_finder
from vision_backend.intake import read_image_file
from vision_backend.metrics import wilson_interval
from vision_backend.storage import FeatureCache

LFW_ARCHIVE = ("https://ndownloader.figshare.com/files/5976018",
               "055f7d9c632d7370e6fb4afc7468d40f970c34a80d4c6f50ffec63f5a8d536c0")
LFW_PAIRS = "https://ndownloader.figshare.com/files/5976006"
"""scikit-learn's addresses and hashes for the original (not funneled) LFW and its official pairs."""
FIVE_PEOPLE = ("Colin_Powell", "Donald_Rumsfeld", "George_W_Bush", "Gerhard_Schroeder", "Tony_Blair")


def build_lfw(folder: Path, download: Callable[..., Path]) -> None:
    """Fold 1 of the official pairs and the images it uses, and every photo of the five people with the
    most photos, out of the original ``lfw.tgz`` (173 MB, read as a stream; only these files are kept)."""
    from vision_backend.fetch import extract_members

    lines = download(LFW_PAIRS, "pairs.txt").read_text().split("\n")
    (folder / "pairs_subset.txt").write_text("1\t300\n" + "\n".join(lines[1:601]) + "\n")
    wanted = {f"lfw/{p.parent.name}/{p.name}": p for pair in lfw_pairs(folder) for p in pair[:2]}
    archive = download(LFW_ARCHIVE[0], ".lfw.tgz", LFW_ARCHIVE[1])

    def route(member: str) -> list[Path]:
        parts = member.split("/")
        person = [folder / "people" / parts[1] / parts[2]] if len(parts) == 3 and parts[1] in FIVE_PEOPLE else []
        return person + ([wanted[member]] if member in wanted else [])

    extract_members(archive, route)
    archive.unlink()


LFW = ModelCard(
    name="lfw", title="LFW: five people + fold-1 pairs", task="face recognition data", kind="dataset",
    seedable=True, licence="research use",
    files=(AssetFile("datasets/vision_lab/lfw", is_tree=True, build=build_lfw, size=180_566_744,
                     optional=("lfw-names.txt",)),),
)


def lfw_root() -> Path:
    return LFW.path()


def lfw_pairs(root: Path | None = None) -> list[tuple[Path, Path, bool]]:
    """Fold 1 of LFW's View-2 pairs: 300 same-person pairs, then 300 different-person pairs."""
    root = root or lfw_root()
    lines = (root / "pairs_subset.txt").read_text().split("\n")
    count = int(lines[0].split()[1])

    def image(name: str, number: str) -> Path:
        return root / "pairs_images" / name / f"{name}_{int(number):04d}.jpg"

    pairs = []
    for line in lines[1 : 1 + 2 * count]:
        parts = line.split("\t")
        if len(parts) == 3:
            pairs.append((image(parts[0], parts[1]), image(parts[0], parts[2]), True))
        else:
            pairs.append((image(parts[0], parts[1]), image(parts[2], parts[3]), False))
    return pairs


def hog_as_is(image: np.ndarray) -> Detections:
    """dlib's HOG on the image at its own size: LFW's faces are ~110 px, so no resizing (the smallest
    face is the detector's window, and the cap is the photo's own long side). This runs the detector's
    own search with its engine: the page's settings would enlarge LFW's 250 px photos 2.5x."""
    hog = DETECTORS[face_finder()]
    return hog.detect(image, min_face=hog.WINDOW, max_side=max(image.shape[:2]), upsample=0, threshold=0.0)


def lfw_face(image: np.ndarray) -> Detections:
    """The face LFW labels: LFW images are centred on it, so the detection nearest the centre;
    where the detector finds none, the central 110x110 box (the standard fallback)."""
    height, width = image.shape[:2]
    faces = hog_as_is(image)
    if len(faces):
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        return faces[[int(np.linalg.norm(centres - [width / 2, height / 2], axis=1).argmin())]]
    box = np.array([[width / 2 - 55, height / 2 - 55, width / 2 + 55, height / 2 + 55]])
    return Detections(box, [0.0], [0], meta={"fallback": True})


def embed_files(embedder: FaceEmbedder, files: list[Path],
                progress: Callable[[int, int], None] | None = None) -> dict[Path, np.ndarray]:
    """One embedding per LFW image (its centred face), cached on disk per embedder (public data: shared)."""
    cache = FeatureCache(paths.app_dir("cache", "lfw") / f"{embedder.name}.npz")
    by_key = {f"{f.parent.name}/{f.name}": f for f in files}

    def compute(keys: list[str]) -> np.ndarray:
        rows = []
        for i, key in enumerate(keys):
            image = read_image_file(by_key[key])
            rows.append(embedder.embed(image, lfw_face(image))[0][0])
            if progress:
                progress(i + 1, len(keys))
        return np.stack(rows)

    vectors, _ = cache.lookup(list(by_key), compute)
    return dict(zip(files, vectors))


@dataclass(frozen=True)
class PairMetrics:
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray  # distance thresholds for the ROC points
    auc: float
    best_threshold: float
    best_accuracy: float
    interval: tuple[float, float]  # 95% Wilson interval of the best accuracy


def pair_metrics(pair_distances: np.ndarray, same: np.ndarray) -> PairMetrics:
    """ROC of "same person if distance <= t", its AUC, and the threshold with the best accuracy."""
    from sklearn.metrics import roc_auc_score, roc_curve

    same = np.asarray(same, bool)
    fpr, tpr, thresholds = roc_curve(same, -np.asarray(pair_distances))
    candidates = np.unique(pair_distances)
    accuracies = [((pair_distances <= t) == same).mean() for t in candidates]
    best = int(np.argmax(accuracies))
    correct = int(round(accuracies[best] * len(same)))
    return PairMetrics(fpr, tpr, -thresholds, float(roc_auc_score(same, -pair_distances)), float(candidates[best]),
                       float(accuracies[best]), wilson_interval(correct, len(same)))


@dataclass(frozen=True)
class PairResults:
    distances: np.ndarray
    same: np.ndarray
    metrics: PairMetrics


def verify_pairs(embedder: FaceEmbedder, progress: Callable[[int, int], None] | None = None) -> PairResults:
    """LFW fold 1 with ``embedder``: every pair's distance, and the verification metrics."""
    pairs = lfw_pairs()
    vectors = embed_files(embedder, sorted({p for a, b, _ in pairs for p in (a, b)}), progress)
    pair_distances = np.array([distances(vectors[a], vectors[b])[0, 0] for a, b, _ in pairs])
    same = np.array([s for _, _, s in pairs])
    return PairResults(pair_distances, same, pair_metrics(pair_distances, same))


def lfw_people(root: Path | None = None) -> tuple[list[Path], np.ndarray, list[str]]:
    """The five LFW people with the most photos (1,140 images): files, labels, names."""
    folder = (root or lfw_root()) / "people"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    files = [f for n in names for f in sorted((folder / n).glob("*.jpg"))]
    labels = np.array([names.index(f.parent.name) for f in files])
    return files, labels, names
