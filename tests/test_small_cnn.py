"""The deck's CNN on real 28x28 data: the model, the data sets, training, MNIST-style digit preparation, the page."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import require_real
from test_pages import start
from vision_backend import small_cnn
from vision_backend.intake import encode_png


@pytest.fixture(scope="module")
def digits():
    require_real("mnist_t10k")
    return small_cnn.load("mnist_t10k")


@pytest.fixture(scope="module")
def digit_model(digits):
    (x, y), _ = digits
    model = small_cnn.build("deck")
    small_cnn.train(model, x[:4000], y[:4000], epochs=3, batch_size=50, validation_split=0.0)
    return model


def test_the_decks_model_exactly() -> None:
    model = small_cnn.build("deck")
    rows = small_cnn.summary(model)
    assert [r["type"] for r in rows] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert [r["output shape"] for r in rows] == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)",
                                                 "(None, 5, 5, 64)", "(None, 1600)", "(None, 128)", "(None, 10)"]
    assert sum(r["parameters"] for r in rows) == 225_034 == model.count_params()
    assert model.loss == "sparse_categorical_crossentropy" and type(model.optimizer).__name__ == "Adam"


def test_data_sets_read_as_keras_reads_them(digits) -> None:
    require_real("fashion_mnist")
    (x, y), (x_test, y_test) = small_cnn.load("fashion_mnist")
    assert x.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [6000] * 10
    (dx, dy), (dx_test, dy_test) = digits
    assert dx.shape == (8000, 28, 28) and dx_test.shape == (2000, 28, 28)
    assert min(np.bincount(dy)) > 650, "the shuffled split keeps every digit"
    raw = small_cnn.read_idx(__import__("vision_backend.models", fromlist=["card"]).card("mnist_t10k").path(1))
    assert raw[:5].tolist() == [7, 2, 1, 0, 4], "the MNIST test set starts 7, 2, 1, 0, 4"
    assert small_cnn.scale(dx[:2]).shape == (2, 28, 28, 1) and small_cnn.scale(dx[:2]).max() <= 1.0


def test_training_on_a_small_subset_is_far_above_chance(digits, digit_model) -> None:
    _, (x_test, y_test) = digits
    result = small_cnn.evaluate(digit_model, x_test, y_test)
    assert result.accuracy > 0.9, "chance is 0.1"
    assert result.confusion.sum() == len(y_test) and np.trace(result.confusion) == round(result.accuracy * len(y_test))
    wrong = result.misclassified(y_test, 10)
    assert (result.predicted[wrong] != y_test[wrong]).all()


def test_the_app_trains_what_plain_keras_trains(digits) -> None:
    """Seed for seed, the app's deck recipe ends on the weights of the deck's code run in plain Keras."""
    import keras
    from keras import layers

    (x, y), _ = digits
    x, y = x[:2000], y[:2000]
    keras.utils.set_random_seed(3)
    plain = keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)), layers.Flatten(),
        layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])
    plain.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain.fit(x[..., None] / 255.0, y, validation_split=0.2, epochs=1, batch_size=50, verbose=0)
    app = small_cnn.build("deck", seed=3)
    small_cnn.train(app, x, y, epochs=1, batch_size=50, validation_split=0.2, seed=3)
    for ours, theirs in zip(app.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    other = small_cnn.build("deck", seed=4)
    small_cnn.train(other, x, y, epochs=1, batch_size=50, validation_split=0.2, seed=4)
    assert not np.allclose(other.get_weights()[0], plain.get_weights()[0], atol=1e-5), "another seed ends elsewhere"


def test_fashion_training_learns(digits) -> None:
    require_real("fashion_mnist")
    (x, y), (x_test, y_test) = small_cnn.load("fashion_mnist")
    model = small_cnn.build("deck")
    history = small_cnn.train(model, x[:3000], y[:3000], epochs=2, batch_size=50)
    assert history["loss"][1] < history["loss"][0] and "val_accuracy" in history
    assert small_cnn.evaluate(model, x_test[:2000], y_test[:2000]).accuracy > 0.6


def test_the_improved_preset_learns_with_its_cosine_schedule(digits) -> None:
    (x, y), (x_test, y_test) = digits
    model = small_cnn.build("improved")
    rates: list[float] = []
    history = small_cnn.train(model, x[:2000], y[:2000], epochs=4, batch_size=64, validation_split=0.0,
                              callbacks=[small_cnn.cosine_decay(4),
                                         small_cnn.epoch_callback(lambda e, logs: rates.append(logs["learning_rate"]))])
    np.testing.assert_allclose(rates, [1e-3, 8.536e-4, 5e-4, 1.464e-4], rtol=1e-3)
    assert history["loss"][-1] < history["loss"][0]
    assert small_cnn.evaluate(model, x_test[:1000], y_test[:1000]).accuracy > 0.8, "chance is 0.1"


def stroke_one(size: int = 280) -> np.ndarray:
    canvas = np.zeros((size, size, 4), np.uint8)  # the canvas: transparent, black strokes
    cv2.line(canvas, (150, 50), (135, 240), (0, 0, 0, 255), 18)
    return canvas


def test_a_drawn_one_stays_a_one(digit_model) -> None:
    digit = small_cnn.prepare_digit(stroke_one())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    ink = np.argwhere(digit > 60)
    assert 18 <= np.ptp(ink[:, 0]) + 1 <= 21, "fitted into 20 pixels tall"
    assert np.ptp(ink[:, 1]) + 1 <= 8, "still thin"
    mass = (np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / digit.sum()
    assert np.allclose(mass, 13.5, atol=0.6), "centred by mass"
    assert int(digit_model.predict(small_cnn.scale(digit[None]), verbose=0).argmax()) == 1
    assert small_cnn.prepare_digit(np.zeros((280, 280, 4), np.uint8)) is None, "an empty canvas has no digit"


def test_photos_of_real_digits_are_prepared_like_mnist(digits, digit_model) -> None:
    """Real test digits printed big, dark on white and off-centre, come back recognisable."""
    _, (x_test, y_test) = digits
    direct = digit_model.predict(small_cnn.scale(x_test[:60]), verbose=0).argmax(1)
    again = []
    for image in x_test[:60]:
        photo = np.full((300, 400, 3), 235, np.uint8)
        big = cv2.resize(255 - image, (196, 196), interpolation=cv2.INTER_CUBIC)
        photo[30:226, 160:356] = np.minimum(photo[30:226, 160:356], big[:, :, None])
        again.append(small_cnn.prepare_digit(photo))
    prepared = digit_model.predict(small_cnn.scale(np.stack(again)), verbose=0).argmax(1)
    assert (prepared == direct).mean() >= 0.9
    assert (prepared == y_test[:60]).mean() >= 0.85


def test_train_cnn_page_trains_evaluates_and_reads_a_digit(digits) -> None:
    (_, _), (x_test, _) = digits
    app = start("pages/train_cnn.py")
    app.selectbox(key="cnn_data").set_value("mnist_t10k").run()
    app.select_slider(key="cnn_count").set_value(3000).run()
    app.slider(key="cnn_epochs").set_value(2).run()
    assert not app.exception, app.exception
    assert any("225,034 parameters" in e.label for e in app.expander)
    app.button(key="cnn_train").click().run()
    assert not app.exception, app.exception
    caption = next(c.value for c in app.caption if c.value.startswith("Test accuracy"))
    assert float(caption.split()[2]) > 0.85
    assert app.metric[1].value == "2" and any(b.label == "Download the model (.keras)" for b in app.get("download_button"))

    one = np.full((200, 200, 3), 255, np.uint8)
    cv2.line(one, (105, 20), (95, 180), (20, 20, 20), 14)
    app.file_uploader(key="cnn_digit_upload").upload("one.png", encode_png(one), "image/png").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("It says **1**") for c in app.caption)

    app.selectbox(key="cnn_data").set_value("mnist").run()
    from vision_backend import models
    if not models.card("mnist").ready():
        assert any("MNIST" in w.value for w in app.warning), "a missing data set says how to fetch it"
