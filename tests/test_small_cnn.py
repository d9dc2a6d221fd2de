"""The deck's CNN on real 28x28 data: the networks, the data sets, training, MNIST-style digit preparation, the page."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, require_real
from test_pages import open_tab, start
from vision_backend import engines, metrics, models
from vision_backend.intake import encode_png
from vision_backend.small_cnn import data, networks, training
from vision_backend.small_cnn.digits import prepare_digit
from vision_backend.workspace import Workspace


@pytest.fixture(scope="module")
def digits():
    require_real("mnist_t10k")
    return data.load("mnist_t10k")


@pytest.fixture(scope="module")
def digit_model(digits):
    (x, y), _ = digits
    model = networks.build("deck")
    training.train(model, x[:4000], y[:4000], epochs=3, batch_size=50, validation_split=0.0)
    return model


def test_the_decks_model_exactly() -> None:
    model = networks.build("deck")
    rows = networks.summary(model)
    assert [r["type"] for r in rows] == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]
    assert [r["output shape"] for r in rows] == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 11, 11, 64)",
                                                 "(None, 5, 5, 64)", "(None, 1600)", "(None, 128)", "(None, 10)"]
    assert sum(r["parameters"] for r in rows) == 225_034 == model.count_params()
    assert model.loss == "sparse_categorical_crossentropy" and type(model.optimizer).__name__ == "Adam"


def test_data_sets_read_as_keras_reads_them(digits) -> None:
    require_real("fashion_mnist")
    (x, y), (x_test, y_test) = data.load("fashion_mnist")
    assert x.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [6000] * 10
    (dx, dy), (dx_test, dy_test) = digits
    assert dx.shape == (8000, 28, 28) and dx_test.shape == (2000, 28, 28)
    assert min(np.bincount(dy)) > 650, "the shuffled split keeps every digit"
    raw = data.read_idx(models.card("mnist_t10k").path(1))
    assert raw[:5].tolist() == [7, 2, 1, 0, 4], "the MNIST test set starts 7, 2, 1, 0, 4"
    assert data.scale(dx[:2]).shape == (2, 28, 28, 1) and data.scale(dx[:2]).max() <= 1.0


def test_fashion_mnist_is_keras_own_arrays_read_without_tensorflow() -> None:
    """The page shows the data while TensorFlow still loads: the same arrays as ``keras.datasets``, no import."""
    require_real("fashion_mnist")
    code = ("import sys; from vision_backend.small_cnn import data; (x, y), (xt, yt) = data.load('fashion_mnist'); "
            "print(int(x.sum()), int(y.sum()), int(xt.sum()), int(yt.sum()), 'tensorflow' in sys.modules)")
    ours = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    (x, y), (x_test, y_test) = engines.keras().datasets.fashion_mnist.load_data()
    assert ours.stdout.split() == [str(int(a.sum())) for a in (x, y, x_test, y_test)] + ["False"]
    (ox, oy), (ox_test, oy_test) = data.load("fashion_mnist")
    assert all(np.array_equal(a, b) for a, b in ((x, ox), (y, oy), (x_test, ox_test), (y_test, oy_test)))


def test_a_subset_sees_every_class_and_is_repeatable() -> None:
    require_real("fashion_mnist")
    (x, y), _ = data.load("fashion_mnist")
    sx, sy = data.subset(x, y, 1000)
    assert sx.shape == (1000, 28, 28) and min(np.bincount(sy, minlength=10)) > 60, "not the file's first 1000"
    again, _ = data.subset(x, y, 1000)
    np.testing.assert_array_equal(sx, again)
    bigger, _ = data.subset(x, y, 3000)
    np.testing.assert_array_equal(bigger[:1000], sx, err_msg="more images add to the same ones")


def test_training_on_a_small_subset_is_far_above_chance(digits, digit_model) -> None:
    _, (x_test, y_test) = digits
    result = training.evaluate(digit_model, x_test, y_test)
    assert result.accuracy > 0.9, "chance is 0.1"
    assert result.confusion.sum() == len(y_test) and np.trace(result.confusion) == round(result.accuracy * len(y_test))
    wrong = result.misclassified(y_test, 10)
    assert (result.predicted[wrong] != y_test[wrong]).all()


def test_evaluation_confusion_is_the_shared_confusion_matrix(digits, digit_model) -> None:
    """One confusion matrix in the project: evaluate's is metrics.confusion_matrix of the model's own answers,
    rows the true class (each row sums to that class's test images)."""
    _, (x_test, y_test) = digits
    result = training.evaluate(digit_model, x_test, y_test)
    answers = digit_model.predict(data.scale(x_test), verbose=0).argmax(1)
    np.testing.assert_array_equal(result.confusion, metrics.confusion_matrix(y_test, answers, 10))
    np.testing.assert_array_equal(result.confusion.sum(1), np.bincount(y_test, minlength=10))
    np.testing.assert_allclose(training.predict(digit_model, x_test[:5]), result.probabilities[:5], atol=1e-6)


@pytest.mark.slow
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
    app = networks.build("deck", seed=3)
    training.train(app, x, y, epochs=1, batch_size=50, validation_split=0.2, seed=3)
    for ours, theirs in zip(app.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    other = networks.build("deck", seed=4)
    training.train(other, x, y, epochs=1, batch_size=50, validation_split=0.2, seed=4)
    assert not np.allclose(other.get_weights()[0], plain.get_weights()[0], atol=1e-5), "another seed ends elsewhere"


@pytest.mark.slow
def test_fashion_training_learns(digits) -> None:
    require_real("fashion_mnist")
    (x, y), (x_test, y_test) = data.load("fashion_mnist")
    model = networks.build("deck")
    history = training.train(model, x[:3000], y[:3000], epochs=2, batch_size=50)
    assert history["loss"][1] < history["loss"][0] and "val_accuracy" in history
    assert training.evaluate(model, x_test[:2000], y_test[:2000]).accuracy > 0.6


@pytest.mark.slow
def test_the_improved_preset_learns_with_its_cosine_schedule(digits) -> None:
    (x, y), (x_test, y_test) = digits
    assert training.schedule("deck", 4) == [], "the deck's rate is constant"
    model = networks.build("improved")
    rates: list[float] = []
    history = training.train(model, x[:2000], y[:2000], epochs=4, batch_size=64, validation_split=0.0,
                             callbacks=[*training.schedule("improved", 4),
                                        training.epoch_callback(lambda e, logs: rates.append(logs["learning_rate"]))])
    np.testing.assert_allclose(rates, [1e-3, 8.536e-4, 5e-4, 1.464e-4], rtol=1e-3)
    assert history["loss"][-1] < history["loss"][0]
    assert training.evaluate(model, x_test[:1000], y_test[:1000]).accuracy > 0.8, "chance is 0.1"


def stroke_one(size: int = 280) -> np.ndarray:
    canvas = np.zeros((size, size, 4), np.uint8)  # the canvas: transparent, black strokes
    cv2.line(canvas, (150, 50), (135, 240), (0, 0, 0, 255), 18)
    return canvas


def test_a_drawn_one_stays_a_one(digit_model) -> None:
    digit = prepare_digit(stroke_one())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    ink = np.argwhere(digit > 60)
    assert 18 <= np.ptp(ink[:, 0]) + 1 <= 21, "fitted into 20 pixels tall"
    assert np.ptp(ink[:, 1]) + 1 <= 8, "still thin"
    mass = (np.indices(digit.shape) * digit).reshape(2, -1).sum(1) / digit.sum()
    assert np.allclose(mass, 13.5, atol=0.6), "centred by mass"
    assert int(digit_model.predict(data.scale(digit[None]), verbose=0).argmax()) == 1
    assert prepare_digit(np.zeros((280, 280, 4), np.uint8)) is None, "an empty canvas has no digit"


def test_photos_of_real_digits_are_prepared_like_mnist(digits, digit_model) -> None:
    """Real test digits printed big, dark on white and off-centre, come back recognisable."""
    _, (x_test, y_test) = digits
    direct = digit_model.predict(data.scale(x_test[:60]), verbose=0).argmax(1)
    again = []
    for image in x_test[:60]:
        photo = np.full((300, 400, 3), 235, np.uint8)
        big = cv2.resize(255 - image, (196, 196), interpolation=cv2.INTER_CUBIC)
        photo[30:226, 160:356] = np.minimum(photo[30:226, 160:356], big[:, :, None])
        again.append(prepare_digit(photo))
    prepared = digit_model.predict(data.scale(np.stack(again)), verbose=0).argmax(1)
    assert (prepared == direct).mean() >= 0.9
    assert (prepared == y_test[:60]).mean() >= 0.85


def trained_page(images: int, epochs: int):
    """The page after training the deck's CNN on the real MNIST test digits."""
    app = start("pages/train_cnn.py")
    app.selectbox(key="cnn_data").set_value("mnist_t10k").run()
    app.select_slider(key="cnn_count").set_value(images).run()
    app.slider(key="cnn_epochs").set_value(epochs).run()
    assert not app.exception, app.exception
    app.button(key="cnn_train").click().run()
    assert not app.exception, app.exception
    return app


@pytest.mark.slow
def test_train_cnn_page_trains_evaluates_and_reads_a_digit(digits) -> None:
    (_, _), (x_test, _) = digits
    app = start("pages/train_cnn.py")
    assert any("60,000 training and 10,000 test images" in c.value for c in app.caption), "Fashion-MNIST first"
    app.selectbox(key="cnn_data").set_value("mnist_t10k").run()
    assert any("8,000 training and 2,000 test images" in c.value for c in app.caption)
    app.select_slider(key="cnn_count").set_value(3000).run()
    app.slider(key="cnn_epochs").set_value(2).run()
    assert not app.exception, app.exception
    assert any("225,034 parameters" in e.label for e in app.expander)
    app.button(key="cnn_train").click().run()
    assert not app.exception, app.exception
    assert any(p.proto.text.startswith("Done: test accuracy") for p in app.get("progress"))
    open_tab(app, "Evaluate")
    caption = next(c.value for c in app.caption if c.value.startswith("Test accuracy"))
    assert float(caption.split()[2]) > 0.85
    assert app.metric[1].value == "2" and any(b.label == "Download the model (.keras)" for b in app.get("download_button"))

    one = np.full((200, 200, 3), 255, np.uint8)
    cv2.line(one, (105, 20), (95, 180), (20, 20, 20), 14)
    open_tab(app, "Try it: draw a digit")
    app.file_uploader(key="cnn_digit_upload").upload("one.png", encode_png(one), "image/png").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("It says **1**") for c in app.caption)

    open_tab(app, "Train").selectbox(key="cnn_data").set_value("mnist").run()
    if not models.card("mnist").ready():
        assert any("MNIST" in w.value for w in app.warning), "a missing data set says how to fetch it"


@pytest.mark.slow
def test_two_sessions_keep_and_serve_their_own_models(digits, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two visitors training at once save two files in the workspace, and each download serves its own
    model (not whoever trained last); a one-epoch run still draws its curves, as points."""
    import keras
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    served: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        served[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    apps = [trained_page(1000, 1), trained_page(1000, 1)]
    paths = [app.session_state.cnn["path"] for app in apps]
    kept = {m.path for m in Workspace.local().trained_cnns().all().values()}
    assert paths[0] != paths[1] and all(p.is_file() and p in kept for p in paths)
    weights = []
    for app, path in zip(apps, paths):
        curves = json.loads(next(c.proto.spec for c in app.get("plotly_chart") if "epoch" in c.proto.spec))
        assert {t["mode"] for t in curves["data"]} == {"lines+markers"} and len(curves["data"][0]["x"]) == 1
        button = next(b for b in open_tab(app, "Evaluate").get("download_button")
                      if b.label == "Download the model (.keras)")
        file_id = button.proto.url.rsplit("/", 1)[1].split(".")[0]
        assert served[file_id] == path.read_bytes(), "the download is this session's file"
        ours = app.session_state.cnn["model"].get_weights()
        for saved, trained in zip(keras.saving.load_model(path).get_weights(), ours, strict=True):
            np.testing.assert_array_equal(saved, trained)
        weights.append(ours)
    assert not np.allclose(weights[0][0], weights[1][0]), "two different models"
