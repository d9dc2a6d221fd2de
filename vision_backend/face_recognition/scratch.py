"""The deck's experiment: telling the five LFW people apart from scratch or with transfer.

(a) A small CNN trained from nothing but these photos; (b) logistic regression on the face
embeddings of a network trained on millions of faces. Same stratified held-out quarter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import cv2
import numpy as np

from vision_backend import engines
from vision_backend.face_recognition.embedders import FaceEmbedder
from vision_backend.face_recognition.lfw import embed_files, lfw_people
from vision_backend.intake import read_image_file
from vision_backend.metrics import confusion_matrix


def stratified_split(labels: np.ndarray, test: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(labels)), test_size=test, stratify=labels, random_state=seed)


def centre_face(image: np.ndarray, size: int = 64) -> np.ndarray:
    """LFW's face sits in the middle: the central 120x120 of 250x250, greyscale, ``size`` x ``size``."""
    height, width = image.shape[:2]
    half = round(min(height, width) * 0.24)
    patch = image[height // 2 - half : height // 2 + half, width // 2 - half : width // 2 + half]
    return cv2.resize(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), (size, size), interpolation=cv2.INTER_AREA)


def scratch_cnn(classes: int, size: int = 64) -> Any:
    """A small CNN that learns faces from nothing but these photos (the deck's "from scratch" side)."""
    keras = engines.keras()
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((size, size, 1)),
        layers.RandomFlip("horizontal"), layers.RandomTranslation(0.05, 0.05), layers.RandomRotation(0.03),
        layers.Conv2D(32, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Conv2D(64, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Conv2D(128, 3, activation="relu", padding="same"), layers.MaxPooling2D(),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(128, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ], name="faces_from_scratch")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@dataclass(frozen=True)
class Comparison:
    names: list[str]
    test_labels: np.ndarray
    embeddings_predicted: np.ndarray
    scratch_predicted: np.ndarray

    @property
    def embeddings_accuracy(self) -> float:
        return float((self.embeddings_predicted == self.test_labels).mean())

    @property
    def scratch_accuracy(self) -> float:
        return float((self.scratch_predicted == self.test_labels).mean())

    def confusion(self, predicted: np.ndarray) -> np.ndarray:
        return confusion_matrix(self.test_labels, predicted, len(self.names))


def train_from_scratch(faces: np.ndarray, labels: np.ndarray, classes: int, epochs: int, seed: int,
                       on_epoch: Callable[[int], None]) -> Any:
    """The small CNN trained on centred greyscale faces, classes weighted by their share (Bush has 530)."""
    keras = engines.keras()
    keras.utils.set_random_seed(seed)
    model = scratch_cnn(classes)
    counts = np.bincount(labels, minlength=classes)
    weights = {k: len(labels) / (classes * max(int(c), 1)) for k, c in enumerate(counts)}

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            on_epoch(epoch)

    model.fit(faces, labels, epochs=epochs, batch_size=32, class_weight=weights, verbose=0, callbacks=[Report()])
    return model


def from_scratch_vs_embeddings(embedder: FaceEmbedder, epochs: int = 40,
                               progress: Callable[[str, float], None] | None = None, seed: int = 0) -> Comparison:
    """Classify the five LFW people two ways on one stratified held-out quarter:
    (a) logistic regression on face embeddings (transfer), (b) a small CNN trained from scratch."""
    from sklearn.linear_model import LogisticRegression

    files, labels, names = lfw_people()
    train, test = stratified_split(labels, seed=seed)
    step = progress or (lambda text, share: None)
    vectors = embed_files(embedder, files, lambda done, total: step(f"Embedding faces {done}/{total}", 0.6 * done / total))
    x = np.stack([vectors[f] for f in files])
    head = LogisticRegression(C=10, max_iter=2000).fit(x[train], labels[train])
    faces = np.stack([centre_face(read_image_file(f)) for f in files]).astype(np.float32)[..., None] / 255
    model = train_from_scratch(faces[train], labels[train], len(names), epochs, seed, lambda epoch: step(
        f"Training the CNN from scratch: epoch {epoch + 1}/{epochs}", 0.6 + 0.4 * (epoch + 1) / epochs))
    scratch_predicted = np.asarray(model.predict(faces[test], verbose=0)).argmax(1)
    return Comparison(names, labels[test], head.predict(x[test]), scratch_predicted)
