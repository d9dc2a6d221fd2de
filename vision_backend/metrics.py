"""Evaluation arithmetic shared by the topics: confusion matrices, per-class precision and recall,
and a confidence interval for an accuracy measured on few examples."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Rows: the true class; columns: the predicted one."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (np.asarray(true, np.int64), np.asarray(predicted, np.int64)), 1)
    return matrix


def per_class(matrix: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Precision, recall and the number of examples of each class (NaN where undefined)."""
    rows = []
    for k, name in enumerate(names):
        predicted, actual = matrix[:, k].sum(), matrix[k].sum()
        rows.append({"class": name, "precision": matrix[k, k] / predicted if predicted else float("nan"),
                     "recall": matrix[k, k] / actual if actual else float("nan"), "examples": int(actual)})
    return rows


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion (honest for small ``total`` and extreme rates)."""
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)
