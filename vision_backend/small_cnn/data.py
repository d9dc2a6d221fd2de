"""The 28x28 data sets the small CNN trains on, read the way Keras reads them.

Fashion-MNIST and MNIST live where ``keras.datasets`` looks (``$KERAS_HOME/datasets``); the real
MNIST test set (10,000 digits) is split 8,000 / 2,000 for machines that cannot fetch MNIST proper.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

import numpy as np

from vision_backend.cards import AssetFile, ModelCard, shared_file

FASHION_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
DIGITS = tuple(str(d) for d in range(10))

FASHION_MNIST = ModelCard(
    name="fashion_mnist", title="Fashion-MNIST (60,000 + 10,000)", task="28x28 classification data", kind="dataset",
    seedable=True, licence="MIT (Zalando)",
    offline="on Debian or Ubuntu: `sudo apt-get install dataset-fashion-mnist`, then `python -m vision_backend.models "
            "seed /usr/share/datasets/fashion-mnist` (its four files, checked by hash)",
    files=tuple(
        AssetFile(f"datasets/fashion-mnist/{f}", FASHION_MNIST_URL + "fashion-mnist/" + f, size=size,
                  seed_hash=debian_sha256)
        for f, size, debian_sha256 in (
            ("train-labels-idx1-ubyte.gz", 29_515, "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
            ("train-images-idx3-ubyte.gz", 26_421_880,
             "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
            ("t10k-labels-idx1-ubyte.gz", 5_148, "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
            ("t10k-images-idx3-ubyte.gz", 4_422_102, "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
        )
    ),
    note="Seeded from Debian's dataset-fashion-mnist (same images, recompressed: its own hashes).",
)
MNIST = ModelCard(
    name="mnist", title="MNIST (60,000 + 10,000)", task="28x28 classification data", kind="dataset",
    files=(AssetFile("datasets/mnist.npz", FASHION_MNIST_URL + "mnist.npz",
                     "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1", 11_490_434),),
    licence="CC BY-SA 3.0",
)
MNIST_T10K = ModelCard(
    name="mnist_t10k", title="MNIST test set (10,000 real digits)", task="28x28 classification data", kind="dataset",
    seedable=True, licence="CC BY-SA 3.0",
    files=(
        shared_file("datasets/mnist-t10k/t10k-images-idx3-ubyte.gz",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1_648_877,
                    "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz"),
        shared_file("datasets/mnist-t10k/t10k-labels-idx1-ubyte.gz",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4_542,
                    "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz"),
    ),
)


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    card: ModelCard
    classes: tuple[str, ...]


DATASETS = {d.name: d for d in (
    Dataset("fashion_mnist", "Fashion-MNIST (60,000 + 10,000 clothes)", FASHION_MNIST, FASHION_CLASSES),
    Dataset("mnist_t10k", "MNIST test digits (8,000 + 2,000 real digits)", MNIST_T10K, DIGITS),
    Dataset("mnist", "MNIST (60,000 + 10,000 digits)", MNIST, DIGITS),
)}


def read_idx(path: Any) -> np.ndarray:
    """An IDX file (the MNIST format, gzipped): a magic number, the dimensions, then raw uint8 values."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(x_train, y_train), (x_test, y_test)`` as uint8 28x28 images: the arrays ``keras.datasets`` returns, read
    from the same files without importing Keras, so a page can show the data while TensorFlow still loads."""
    card = DATASETS[name].card
    card.require()
    if name == "fashion_mnist":
        x_train, y_train, x_test, y_test = (read_idx(card.path(i)) for i in (1, 0, 3, 2))
        return (x_train, y_train), (x_test, y_test)
    if name == "mnist":
        with np.load(card.path(), allow_pickle=False) as npz:
            return (npz["x_train"], npz["y_train"]), (npz["x_test"], npz["y_test"])
    images, labels = read_idx(MNIST_T10K.path(0)), read_idx(MNIST_T10K.path(1))
    order = np.random.default_rng(0).permutation(len(images))  # the set's two halves differ in writers: shuffle
    train, test = order[:8000], order[8000:]
    return (images[train], labels[train]), (images[test], labels[test])


def scale(images: np.ndarray) -> np.ndarray:
    """Pixels divided by 255, with the channel axis a Conv2D expects: (N, 28, 28, 1) float32."""
    return (np.asarray(images, np.float32) / 255.0)[..., None]


def subset(x: np.ndarray, y: np.ndarray, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images of a fixed shuffle: a quick run on few images still sees every class
    (the files are not in random order), and the same ``count`` always picks the same images."""
    pick = np.random.default_rng(seed).permutation(len(x))[:count]
    return x[pick], y[pick]
