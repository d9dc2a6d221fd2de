"""The deck's CNN and the improved preset: test accuracy per data set, seconds per epoch, images/s.

python bench/train_cnn.py [--quick] [--only FIGURE,...]

The deck's recipe: validation_split 0.2, 10 epochs, batch 50, the median test accuracy of
eleven runs on Fashion-MNIST and three on the digits (seeds 0, 1, ...: one run's figure moves by
up to a percent and a half). ``fashion_mnist_test_accuracy_plain_keras`` runs the deck's code as
written, with plain Keras and none of this app's code, from the same eleven seeds: the reference
the app's figure should match (here it does, run by run, to the last digit). The improved preset
trains 20 epochs with batch 128 and its cosine decay: one run on Fashion-MNIST (about 13 minutes
here), the median of three on the MNIST test digits. ``epoch_deck_fashion_6000_vs_raw``: one epoch
of the deck's CNN on 6,000 Fashion-MNIST images through ``training.train`` over the same epoch of
plain ``model.fit`` on the same model and the same images already scaled (the app's overhead:
scaling, seeding). ``--quick``: one epoch on 1,000 images, one seed, no plain-Keras reference.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from _harness import Bench

from vision_backend.small_cnn import data, networks, training  # noqa: E402

RUNS = [  # (data set, preset, epochs, batch size, seeds, figure name)
    ("fashion_mnist", "deck", 10, 50, 11, "fashion_mnist_test_accuracy"),
    ("mnist_t10k", "deck", 10, 50, 3, "mnist_t10k_test_accuracy"),
    ("mnist", "deck", 10, 50, 3, "mnist_test_accuracy"),
    ("fashion_mnist", "improved", 20, 128, 1, "fashion_mnist_test_accuracy_improved"),
    ("mnist_t10k", "improved", 20, 128, 3, "mnist_t10k_test_accuracy_improved"),
]
PLAIN = "fashion_mnist_test_accuracy_plain_keras"
OVERHEAD = "epoch_deck_fashion_6000"
QUICK_IMAGES = 1000


def run(dataset: str, preset: str, epochs: int, batch: int, seed: int, figure: str,
        images: int | None = None) -> tuple[float, float, int]:
    """One training run from seed ``seed`` on all training images (or ``images`` of them):
    (test accuracy, median seconds per epoch after the first, images trained on per epoch)."""
    (x, y), (x_test, y_test) = data.load(dataset)
    if images:
        x, y = data.subset(x, y, images)
    model = networks.build(preset, seed=seed)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_epoch(epoch: int, logs: dict) -> None:
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        print(f"# {figure} seed {seed} epoch {epoch + 1}: {logs}", flush=True)

    callbacks = [training.epoch_callback(on_epoch), *training.schedule(preset, epochs)]
    training.train(model, x, y, epochs, batch, 0.2, callbacks, seed=seed)
    trained = len(x) - int(len(x) * 0.2)  # Keras holds out the last 20% for validation
    return training.evaluate(model, x_test, y_test).accuracy, statistics.median(times[1:] or times), trained


def accuracy_runs(bench: Bench, dataset: str, preset: str, epochs: int, batch: int, seeds: int, figure: str) -> None:
    images = QUICK_IMAGES if bench.quick else None
    if bench.quick:
        epochs, seeds = 1, 1
    runs = [run(dataset, preset, epochs, batch, seed, figure, images) for seed in range(seeds)]
    accuracies = [a for a, _, _ in runs]
    print(f"# {figure}: {[round(a, 4) for a in accuracies]} over seeds 0..{seeds - 1}")
    bench.record(figure, statistics.median(accuracies), "fraction")
    steady = statistics.median(t for _, t, _ in runs)
    if dataset == "fashion_mnist" and preset == "deck":
        bench.record("cnn_epoch_seconds", steady, "s")
        bench.record("cnn_train_images_per_s", runs[0][2] / steady, "images/s")
    else:
        bench.record(f"{figure}_epoch_seconds", steady, "s")


def epoch_overhead(bench: Bench) -> None:
    """One epoch through ``training.train`` against plain ``model.fit``, alternating on one model."""
    (x, y), _ = data.load("fashion_mnist")
    x, y = data.subset(x, y, 6000)
    model = networks.build("deck", seed=0)
    scaled = (x / np.float32(255.0))[..., None]  # done once, as the deck's code does before fit
    bench.compare(OVERHEAD, lambda: training.train(model, x, y, epochs=1, batch_size=50, validation_split=0.2),
                  lambda: model.fit(scaled, y, epochs=1, batch_size=50, validation_split=0.2, verbose=0),
                  repeats=bench.repeats(7, 2), warmup=1 if bench.quick else 2)


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


def ready(dataset: str, figure: str) -> bool:
    if data.DATASETS[dataset].card.ready():
        return True
    print(f"# {figure}: {dataset} is not on this machine; skipped")
    return False


def main() -> None:
    bench = Bench("train_cnn", __doc__,
                  extra=lambda parser: parser.add_argument("--only", help="comma-separated figure names to run"))
    only = set(bench.args.only.split(",")) if bench.args.only else None
    for dataset, preset, epochs, batch, seeds, figure in RUNS:
        if (only is None or figure in only) and ready(dataset, figure):
            with bench.about(dataset):
                accuracy_runs(bench, dataset, preset, epochs, batch, seeds, figure)
    with bench.about("fashion_mnist"):
        if (only is None or OVERHEAD in only) and ready("fashion_mnist", OVERHEAD):
            epoch_overhead(bench)
        if (only is None or PLAIN in only) and not bench.quick and ready("fashion_mnist", PLAIN):
            seeds = next(r[4] for r in RUNS if r[5] == "fashion_mnist_test_accuracy")
            accuracies = [plain_keras(seed) for seed in range(seeds)]
            print(f"# {PLAIN}: {[round(a, 4) for a in accuracies]} over seeds 0..{seeds - 1}")
            bench.record(PLAIN, statistics.median(accuracies), "fraction")


if __name__ == "__main__":
    main()
