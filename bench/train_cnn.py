"""The deck's CNN and the improved preset: test accuracy per data set, seconds per epoch, images/s.

python bench/train_cnn.py [--quick]

The deck's recipe: validation_split 0.2, 10 epochs, batch 50, the median test accuracy of
eleven runs on Fashion-MNIST and three on the digits (seeds 0, 1, ...: one run's figure moves by
up to a percent and a half). ``fashion_mnist_test_accuracy_plain_keras`` runs the deck's code as
written, with plain Keras and none of this app's code, from the same eleven seeds: the reference
the app's figure should match (here it does, run by run, to the last digit). ``--quick``: 2 epochs, one seed. The improved preset trains 20 epochs with batch 128 and its cosine decay: one
run on Fashion-MNIST (about 13 minutes here), the median of three on the MNIST test digits.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import Recorder

from vision_backend import models, small_cnn  # noqa: E402

RUNS = [  # (data set, preset, epochs, batch size, seeds, figure name)
    ("fashion_mnist", "deck", 10, 50, 11, "fashion_mnist_test_accuracy"),
    ("mnist_t10k", "deck", 10, 50, 3, "mnist_t10k_test_accuracy"),
    ("mnist", "deck", 10, 50, 3, "mnist_test_accuracy"),
    ("fashion_mnist", "improved", 20, 128, 1, "fashion_mnist_test_accuracy_improved"),
    ("mnist_t10k", "improved", 20, 128, 3, "mnist_t10k_test_accuracy_improved"),
]


def run(dataset: str, preset: str, epochs: int, batch: int, seed: int, figure: str) -> tuple[float, float]:
    """One training run from seed ``seed``: (test accuracy, median seconds per epoch after the first)."""
    (x, y), (x_test, y_test) = small_cnn.load(dataset)
    model = small_cnn.build(preset, seed=seed)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_epoch(epoch: int, logs: dict) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        print(f"# {figure} seed {seed} epoch {epoch + 1}: {logs}", flush=True)

    schedule = [small_cnn.cosine_decay(epochs)] if preset == "improved" else []
    small_cnn.train(model, x, y, epochs, batch, 0.2, [small_cnn.epoch_callback(on_epoch), *schedule], seed=seed)
    return small_cnn.evaluate(model, x_test, y_test).accuracy, statistics.median(times[1:] or times)


def plain_keras(seed: int) -> float:
    """The deck's code as written (plain Keras, no app code): its Fashion-MNIST test accuracy."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train[..., None], y_train, validation_split=0.2, epochs=10, batch_size=50, verbose=0)
    return float(model.evaluate(x_test[..., None], y_test, verbose=0)[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated figure names to run")
    args = parser.parse_args()
    record = Recorder("train_cnn")
    for dataset, preset, epochs, batch, seeds, figure in RUNS:
        if args.only and figure not in args.only.split(","):
            continue
        if not models.card(small_cnn.DATASETS[dataset].card).ready():
            print(f"# {figure}: {dataset} is not on this machine; skipped")
            continue
        if args.quick:
            epochs, seeds = 2, 1
        runs = [run(dataset, preset, epochs, batch, seed, figure) for seed in range(seeds)]
        accuracies = [a for a, _ in runs]
        print(f"# {figure}: {[round(a, 4) for a in accuracies]} over seeds 0..{seeds - 1}")
        record(figure, statistics.median(accuracies), "fraction")
        steady = statistics.median(t for _, t in runs)
        if dataset == "fashion_mnist" and preset == "deck":
            record("cnn_epoch_seconds", steady, "s")
            record("cnn_train_images_per_s", len(small_cnn.load(dataset)[0][0]) * 0.8 / steady, "images/s")
        else:
            record(f"{figure}_epoch_seconds", steady, "s")
    figure = "fashion_mnist_test_accuracy_plain_keras"
    if (not args.only or figure in args.only.split(",")) and not args.quick \
            and models.card(small_cnn.DATASETS["fashion_mnist"].card).ready():
        seeds = next(r[4] for r in RUNS if r[5] == "fashion_mnist_test_accuracy")
        accuracies = [plain_keras(seed) for seed in range(seeds)]
        print(f"# {figure}: {[round(a, 4) for a in accuracies]} over seeds 0..{seeds - 1}")
        record(figure, statistics.median(accuracies), "fraction")


if __name__ == "__main__":
    main()
