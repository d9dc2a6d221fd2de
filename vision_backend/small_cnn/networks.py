"""The deck's small CNN and an improved preset that changes one known-good thing at a time.

The recipe is the deck's exactly: Conv2D(32, 3x3, relu) - MaxPool(2) - Conv2D(64, 3x3, relu) -
MaxPool(2) - Flatten - Dense(128, relu) - Dense(10, softmax), Adam, sparse categorical
cross-entropy, pixels divided by 255. The "improved" preset lists what it changes in
``IMPROVEMENTS`` so people can see what each buys.
"""

from __future__ import annotations

from typing import Any, Callable

from vision_backend import engines

IMPROVEMENTS = [
    ("A second 3x3 conv in each block ('same' padding)", "sees 5x5 patterns before each pooling; deeper features"),
    ("Batch normalisation after each conv", "keeps activations well scaled: faster, steadier training"),
    ("Dropout (0.1 after blocks, 0.3 before the output)", "stops the dense layers memorising the training set"),
    ("Light augmentation (shift up to 2 px)", "shows slightly different images every epoch"),
    ("Learning rate decays along a cosine to 0 over the run", "big steps early, fine steps at the end"),
]


def deck_cnn(classes: int = 10) -> Any:
    keras = engines.keras()
    layers = keras.layers

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ], name="deck_cnn")


def improved_cnn(classes: int = 10) -> Any:
    keras = engines.keras()
    layers = keras.layers

    def block(filters: int) -> list:
        # momentum 0.9, not Keras' 0.99: the running statistics used at test time settle within a
        # few dozen steps, so a short demo run (a few hundred steps) is judged fairly
        return [layers.Conv2D(filters, 3, padding="same", use_bias=False), layers.BatchNormalization(momentum=0.9),
                layers.ReLU(), layers.Conv2D(filters, 3, padding="same", use_bias=False),
                layers.BatchNormalization(momentum=0.9), layers.ReLU(), layers.MaxPooling2D(2), layers.Dropout(0.1)]

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant"),
        *block(32), *block(64),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(classes, activation="softmax"),
    ], name="improved_cnn")


PRESETS: dict[str, Callable[[int], Any]] = {"deck": deck_cnn, "improved": improved_cnn}


def build(preset: str = "deck", classes: int = 10, learning_rate: float = 1e-3, seed: int | None = None) -> Any:
    """A compiled preset; ``seed`` fixes its initial weights (for repeatable benchmark runs)."""
    keras = engines.keras()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    model = PRESETS[preset](classes)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def summary(model: Any) -> list[dict[str, Any]]:
    """Layers, output shapes and parameter counts, as ``model.summary()`` prints them."""
    return [{"layer": layer.name, "type": type(layer).__name__,
             "output shape": str(tuple(layer.output.shape)), "parameters": layer.count_params()}
            for layer in model.layers]
