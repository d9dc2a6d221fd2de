"""What a trained head or model is worth: its held-out examples, accuracy, confusion and per-class
figures, and a 2-D map of the features so people see whether their classes separate at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_backend.imageops import l2_normalise
from vision_backend.metrics import confusion_matrix, per_class


@dataclass
class Trained:
    head: Any
    """The head on cached features (fast mode), or None (full mode: see ``model``)."""
    names: list[str]
    history: dict[str, list[float]]
    validation: np.ndarray  # indices of the examples held out
    probabilities: np.ndarray  # validation probabilities
    labels: np.ndarray  # validation labels
    settings: Any  # HeadSettings or FullSettings
    base_name: str
    seconds: float = 0.0
    model: Any = None
    """Full mode: the whole model, raw 224x224 RGB 0..255 in, probabilities out."""

    @property
    def accuracy(self) -> float:
        return float((self.probabilities.argmax(1) == self.labels).mean()) if len(self.labels) else float("nan")

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.labels, self.probabilities.argmax(1), len(self.names))

    def per_class(self) -> list[dict[str, Any]]:
        return per_class(self.confusion(), self.names)

    def misclassified(self) -> list[tuple[int, int]]:
        """(example index, predicted class) of each held-out example the model got wrong."""
        predicted = self.probabilities.argmax(1)
        return [(int(i), int(p)) for i, p, y in zip(self.validation, predicted, self.labels) if p != y]


def project_2d(features: np.ndarray, method: str = "PCA", seed: int = 0) -> np.ndarray:
    """A 2-D map of feature vectors: PCA (the directions of most variance) or t-SNE (neighbours
    kept together), so people see whether their classes separate before any head is trained."""
    x = l2_normalise(np.asarray(features, np.float32))
    if method == "t-SNE" and len(x) > 3:
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed).fit_transform(x)
    from sklearn.decomposition import PCA

    return PCA(2, random_state=seed).fit_transform(x)
