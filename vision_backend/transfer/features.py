"""Features of photos through a frozen base, pooled three ways, and cached per project.

Because the base is frozen, running it again every epoch would compute the same vectors again:
caching them ("fast transfer learning") makes training cost the head's work only. Each cached row
holds a photo's features then its mirror image's, so switching mirroring on or off costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from vision_backend.imageops import l2_normalise
from vision_backend.intake import read_image_file
from vision_backend.transfer.bases import FeatureBase

POOLINGS = {
    "layers": "several layers, averaged and side by side: mid-level textures as well as late parts",
    "average": "global average pooling of the last feature map",
    "flatten": "the last feature map flattened (the deck's recipe; many more weights to learn)",
}


def pool(maps: list[np.ndarray], pooling: str) -> np.ndarray:
    """Feature maps (N, H, W, C) of the tapped layers -> one feature vector per photo."""
    if pooling == "layers":
        return np.concatenate([l2_normalise(m.mean(axis=(1, 2))) for m in maps], axis=1).astype(np.float32)
    if pooling == "flatten":
        return maps[-1].reshape(len(maps[-1]), -1).astype(np.float16)  # half the disk; plenty for a head
    return maps[-1].mean(axis=(1, 2)).astype(np.float32)


def describe(base: FeatureBase, images: list[np.ndarray], pooling: str, batch_size: int = 32,
             progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of photos through a frozen base, pooled the studio's way (see :data:`POOLINGS`)."""
    taps = base.taps if pooling == "layers" else base.taps[-1:]
    rows = []
    for start in range(0, len(images), batch_size):
        rows.append(pool(base.feature_maps(images[start : start + batch_size], taps), pooling))
        if progress:
            progress(min(start + batch_size, len(images)), len(images))
    return np.concatenate(rows)


def image_features(base: FeatureBase, images: list[np.ndarray], pooling: str, mirror: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of photos (and of their mirror images, side by side after them)."""
    features = describe(base, images, pooling, progress=progress)
    if mirror:
        features = np.concatenate([features, describe(base, [i[:, ::-1] for i in images], pooling)], axis=1)
    return features


def read_files(files: list[Path]) -> list[np.ndarray]:
    return [read_image_file(f) for f in files]


def project_features(project: Any, base: FeatureBase, pooling: str = "layers",
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, list[str], list[Any]]:
    """(features, labels, class names, examples) from the project's cache, computing only new photos."""
    examples = project.examples()
    names = sorted({e.label for e in examples})
    cache = project.feature_cache(f"{base.features_key}_{pooling}_mirror")
    features, _ = cache.lookup([e.digest for e in examples], lambda digests: image_features(
        base, read_files([project.image_path(d) for d in digests]), pooling, True, progress))
    labels = np.array([names.index(e.label) for e in examples])
    return features, labels, names, examples
