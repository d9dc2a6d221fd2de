"""The deck's CNN and the improved preset: test accuracy per data set, seconds per epoch, images/s.

python bench/train_cnn.py [--quick]

The deck's recipe: validation_split 0.2, 10 epochs, batch 50 (``--quick``: 2 epochs on
Fashion-MNIST). The improved preset trains 20 epochs with batch 128 and its cosine decay (quick: 2).
"""

from __future__ import annotations

import argparse
import time

from _common import Recorder

from vision_backend import models, small_cnn  # noqa: E402

RUNS = [  # (data set, preset, epochs, batch size, figure name)
    ("fashion_mnist", "deck", 10, 50, "fashion_mnist_test_accuracy"),
    ("mnist_t10k", "deck", 10, 50, "mnist_t10k_test_accuracy"),
    ("mnist", "deck", 10, 50, "mnist_test_accuracy"),
    ("fashion_mnist", "improved", 20, 128, "fashion_mnist_test_accuracy_improved"),
    ("mnist_t10k", "improved", 20, 128, "mnist_t10k_test_accuracy_improved"),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated figure names to run")
    args = parser.parse_args()
    record = Recorder("train_cnn")
    for dataset, preset, epochs, batch, figure in RUNS:
        if args.only and figure not in args.only.split(","):
            continue
        if not models.card(small_cnn.DATASETS[dataset].card).ready():
            print(f"# {figure}: {dataset} is not on this machine; skipped")
            continue
        if args.quick:
            epochs = 2
        (x, y), (x_test, y_test) = small_cnn.load(dataset)
        model = small_cnn.build(preset)
        times: list[float] = []
        last = [time.perf_counter()]

        def on_epoch(epoch: int, logs: dict) -> None:
            now = time.perf_counter()
            times.append(now - last[0])
            last[0] = now
            print(f"# {figure} epoch {epoch + 1}: {logs}", flush=True)

        schedule = [small_cnn.cosine_decay(epochs)] if preset == "improved" else []
        small_cnn.train(model, x, y, epochs, batch, 0.2, [small_cnn.epoch_callback(on_epoch), *schedule])
        result = small_cnn.evaluate(model, x_test, y_test)
        record(figure, result.accuracy, "fraction")
        steady = sorted(times[1:] or times)[len(times[1:] or times) // 2]  # median after the first epoch
        if dataset == "fashion_mnist" and preset == "deck":
            record("cnn_epoch_seconds", steady, "s")
            record("cnn_train_images_per_s", len(x) * 0.8 / steady, "images/s")
        else:
            record(f"{figure}_epoch_seconds", steady, "s")
    record.save()


if __name__ == "__main__":
    main()
