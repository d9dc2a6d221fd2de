"""ImageNet's 1,000 classes: their labels, top-k decoding, and the deck's ILSVRC table.

Labels come from Keras' own class index (``imagenet_class_index.json`` in the Keras cache, the
file ``keras.applications.*.decode_predictions`` reads), decoded here in numpy so that a
classifier on ONNX Runtime or LiteRT never has to import Keras just to name its classes.
"""

from __future__ import annotations

import json
import threading

import numpy as np

from vision_backend.cards import ModelCard, shared_file

CLASS_INDEX = ModelCard(
    name="imagenet_class_index", title="ImageNet class index (Keras)", task="ImageNet labels", kind="dataset",
    seedable=True, licence="ImageNet terms",
    files=(shared_file("models/imagenet_class_index.json",
                       "a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc", 35_363,
                       "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"),),
    note="Read by keras.applications.*.decode_predictions (md5 c2c37ea5...).",
)

_INDEX: list[tuple[str, str]] = []
_LOCK = threading.Lock()


def class_index() -> list[tuple[str, str]]:
    """(WordNet id, label) for each of the 1,000 classes, in Keras' order (read once)."""
    with _LOCK:
        if not _INDEX:
            index = json.loads(CLASS_INDEX.path().read_text())
            _INDEX.extend((index[str(i)][0], index[str(i)][1]) for i in range(1000))
        return _INDEX


def labels() -> list[str]:
    return [label for _, label in class_index()]


def decode(probabilities: np.ndarray, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Top-k (WordNet id, label, probability) rows per photo, best first: Keras' ``decode_predictions``."""
    index = class_index()
    probabilities = np.atleast_2d(np.asarray(probabilities, np.float32))
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    return [[(*index[k], float(row[k])) for k in order] for row, order in zip(probabilities, best)]


# The deck's ILSVRC table: top-5 error of the winners (and VGG, the runner-up everyone uses).
ILSVRC_TOP5_ERROR = [
    ("2010 · NEC-UIUC (SIFT + SVM)", 28.2), ("2011 · XRCE (Fisher vectors)", 25.8), ("2012 · AlexNet", 16.4),
    ("2013 · ZFNet", 11.7), ("2014 · VGG16 (2nd)", 7.3), ("2014 · GoogLeNet", 6.7), ("2015 · ResNet-152", 3.6),
    ("2016 · Trimps-Soushen", 3.0), ("2017 · SENet", 2.3), ("human (Karpathy)", 5.1),
]
