"""Pretrained ImageNet classifiers on three engines, Keras -> ONNX, decoding labels, Grad-CAM, the page."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_real
from test_pages import start
from vision_backend import classification as cl
from vision_backend import models, samples, transfer
from vision_backend.intake import read_image

CHELSEA = "Cat, Chelsea (scikit-image)"
COFFEE = "Coffee cup (scikit-image)"


@pytest.fixture(scope="module")
def tflite_runner() -> cl.Runner:
    require_real("mobilenet_v2_quant_tflite")
    require_real("imagenet_class_index")
    return cl.load_runner(cl.CLASSIFIERS["mobilenet_v2_quant_tflite"], "tflite")


def labels(prediction: cl.Prediction) -> list[str]:
    return [label for _, label, _ in prediction.top]


def test_tflite_top5_on_the_sample_photos(tflite_runner, photo) -> None:
    cat, cup, staged = cl.classify(tflite_runner, [samples.load_sample(CHELSEA), samples.load_sample(COFFEE),
                                                   photo("cat_chelsea.png")])
    assert labels(cat)[0] == "Egyptian_cat" and {"tiger_cat", "tabby"} <= set(labels(cat))
    assert labels(cup)[0] == "espresso" and cup.top[0][2] > 0.9
    assert labels(staged)[:3] == labels(cat)[:3]
    assert cat.top[0][0] == "n02124075", "ImageNet ids come from Keras' class index"
    probabilities = [p for _, _, p in cat.top]
    assert probabilities == sorted(probabilities, reverse=True) and 0.95 <= cat.probabilities.sum() <= 1.01
    assert cat.probabilities.shape == (1000,), "the background output is dropped: Keras' 1000 classes"


def test_tflite_converted_to_onnx_gives_the_same_answer(tflite_runner) -> None:
    onnx_runner = cl.load_runner(cl.CLASSIFIERS["mobilenet_v2_quant_tflite"], "onnx")
    assert cl.converted_path("mobilenet_v2_quant_tflite").is_file()
    images = [samples.load_sample(n) for n in (CHELSEA, COFFEE, "Rocket (scikit-image)")]
    for a, b in zip(cl.classify(tflite_runner, images), cl.classify(onnx_runner, images)):
        assert labels(a) == labels(b)
        assert np.abs(a.probabilities - b.probabilities).max() <= 2 / 256, "same int8 arithmetic"


def test_onnx_zoo_int8_classifier(photo) -> None:
    require_real("mobilenetv2_int8_onnx")
    runner = cl.load_runner(cl.CLASSIFIERS["mobilenetv2_int8_onnx"], "onnx")
    cat, cup = cl.classify(runner, [photo("cat_chelsea.png"), samples.load_sample(COFFEE)])
    assert labels(cat)[0] == "Egyptian_cat" and labels(cup)[0] == "espresso"
    assert cat.probabilities.sum() == pytest.approx(1.0, abs=1e-4), "logits go through a softmax"


def test_keras_and_onnx_agree_on_the_real_mobilenet_v2_base(tmp_path: Path) -> None:
    require_real("mobilenet_v2_notop")
    base = models.load("mobilenet_v2_notop")
    path = cl.keras_to_onnx(base, tmp_path / "base.onnx")
    session = models.onnx_session(path)
    images = [samples.load_sample(n) for n in (CHELSEA, COFFEE, "Astronaut (scikit-image)")]
    batch = cl.keras_preprocess("MobileNetV2")(np.stack([cl.resize(i, 224) for i in images]))
    keras_maps = np.asarray(base.predict_on_batch(batch))
    onnx_maps = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert keras_maps.shape == onnx_maps.shape == (3, 7, 7, 1280)
    assert np.abs(keras_maps.mean(axis=(1, 2)) - onnx_maps.mean(axis=(1, 2))).max() < 1e-4, "pooled features"
    assert np.abs(keras_maps - onnx_maps).max() < 5e-4, "every map value (ReLU6: 0..6)"
    assert keras_maps.std() > 0.1, "real features, not zeros"


def test_decode_predictions_reads_the_cached_class_index() -> None:
    require_real("imagenet_class_index")
    one_hot = np.zeros((2, 1000), np.float32)
    one_hot[0, 285], one_hot[1, 967] = 1.0, 1.0
    (cat,), (cup,) = cl.decode(one_hot, top=1)
    assert cat[:2] == ("n02124075", "Egyptian_cat") and cup[1] == "espresso"
    assert cl.imagenet_labels()[285] == "Egyptian_cat" and len(cl.imagenet_labels()) == 1000


def test_a_registered_but_missing_model_says_how_to_fetch_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(models.ModelMissingError) as caught:
        cl.load_runner(cl.CLASSIFIERS["vgg16"], "keras")
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in str(caught.value)
    assert "python -m vision_backend.models fetch vgg16" in caught.value.card.how_to_get()
    with pytest.raises(ValueError, match="does not run on tflite"):
        cl.load_runner(cl.CLASSIFIERS["vgg16"], "tflite")


def test_every_deck_model_is_registered_with_its_own_preprocessing() -> None:
    for name in ("vgg16", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0", "inception_v3",
                 "nasnet_mobile", "xception"):
        classifier = cl.CLASSIFIERS[name]
        card = classifier.card
        assert card.files[0].url.startswith("https://storage.googleapis.com/") and card.params and card.accuracy
        assert classifier.engines == ("keras", "onnx")
    grey = np.full((1, 4, 4, 3), 128, np.float32)
    assert cl.keras_preprocess("MobileNetV2")(grey).max() == pytest.approx(128 / 127.5 - 1, abs=1e-6)
    assert cl.keras_preprocess("VGG16")(grey)[0, 0, 0, 0] == pytest.approx(128 - 103.939, abs=1e-3), "BGR minus means"
    assert cl.CLASSIFIERS["inception_v3"].size == cl.CLASSIFIERS["xception"].size == 299


def test_keras_classifier_path_on_a_weight_file_the_test_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keras engine and its ONNX conversion for a model we cannot download here (random weights: plumbing only)."""
    require_real("imagenet_class_index")
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    real_index = models.card("imagenet_class_index").path()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))
    keras.utils.set_random_seed(1)
    reference = keras.applications.MobileNetV2(weights=None, include_top=True)
    target = models.card("mobilenet_v2").files[0].local
    target.parent.mkdir(parents=True)
    shutil.copy(real_index, models.card("imagenet_class_index").files[0].local)
    with h5py.File(target, "w") as handle:
        save_weights_to_hdf5_group(handle, reference)
    images = [samples.load_sample(CHELSEA), samples.load_sample(COFFEE)]
    on_keras = cl.classify(cl.load_runner(cl.CLASSIFIERS["mobilenet_v2"], "keras"), images)
    on_onnx = cl.classify(cl.load_runner(cl.CLASSIFIERS["mobilenet_v2"], "onnx"), images)
    assert (tmp_path / "home" / "onnx" / "mobilenet_v2.onnx").is_file()
    expected = np.asarray(reference.predict_on_batch(cl.CLASSIFIERS["mobilenet_v2"].prepare(images)))
    for a, b, row in zip(on_keras, on_onnx, expected):
        assert np.abs(a.probabilities - row).max() < 1e-6
        assert np.abs(a.probabilities - b.probabilities).max() < 1e-5 and labels(a) == labels(b)


# ---- Grad-CAM on a real base ---------------------------------------------------------------
@pytest.fixture(scope="module")
def flowers():
    require_real("mobilenet_v2_notop")
    require_real("demo_classes")
    model, names = transfer.demo_classifier()
    return model, names


def test_grad_cam_looks_at_the_class_it_explains(flowers) -> None:
    """A sunflower photo left, a daisy photo right (both unseen in training): each class's map sits on its half."""
    model, names = flowers
    folders = transfer.class_folders(models.card("demo_classes").path())
    unseen = {c: [read_image(p.read_bytes(), p.name) for p in folders[c][40:50]] for c in ("sunflower", "daisy")}
    shares = []
    for sunflower, daisy in zip(unseen["sunflower"], unseen["daisy"]):
        pair = np.concatenate([cv2.resize(sunflower, (224, 224)), cv2.resize(daisy, (224, 224))], axis=1)
        batch = cl.keras_preprocess("MobileNetV2")(cl.resize(pair, 224)[None])
        left = []
        for name in ("sunflower", "daisy"):
            cam, index = cl.grad_cam(model, batch, names.index(name))
            assert cam.shape == (7, 7) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
            left.append(cam[:, :3].sum() / (cam[:, :3].sum() + cam[:, 4:].sum() + 1e-9))
        shares.append(left)
    shares = np.array(shares)
    assert (shares[:, 0] > shares[:, 1]).sum() >= 8, shares
    assert (shares[:, 0] - shares[:, 1]).mean() > 0.3, shares


def test_grad_cam_explains_the_top_class_by_default(flowers) -> None:
    model, _ = flowers
    batch = cl.keras_preprocess("MobileNetV2")(cl.resize(samples.load_sample(CHELSEA), 224)[None])
    _, index = cl.grad_cam(model, batch)
    assert index == int(np.argmax(model.predict_on_batch(batch)[0]))
    assert cl.last_conv_layer(model) == "out_relu"


def test_demo_classifier_is_saved_and_loads_again(flowers) -> None:
    model, names = flowers
    assert transfer.demo_classifier_trained() and names == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    again, again_names = transfer.demo_classifier()
    batch = cl.keras_preprocess("MobileNetV2")(cl.resize(samples.load_sample(CHELSEA), 224)[None])
    assert again_names == names
    np.testing.assert_allclose(again.predict_on_batch(batch), model.predict_on_batch(batch), atol=1e-6)


# ---- the page ------------------------------------------------------------------------------
def test_pretrained_page_classifies_compares_and_explains() -> None:
    require_real("mobilenet_v2_quant_tflite")
    require_real("photos")
    app = start("pages/pretrained.py")
    app.sidebar.selectbox(key="sample_name").set_value(CHELSEA).run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("Top-1: **Egyptian cat**") and "TFLite" in c.value for c in app.caption)

    batch = app.dataframe[0].value
    assert len(batch) == len(samples.sample_names())
    assert batch.set_index("photo").loc["cat_chelsea.png", "top-1"] == "Egyptian cat"
    assert any(b.label == "Download the table (CSV)" for b in app.get("download_button"))

    compared, agreement = app.dataframe[1].value, app.dataframe[2].value
    assert set(compared["engine"]) == {"TFLite", "ONNX Runtime"} and (compared["top-1"] == "Egyptian cat").all()
    assert agreement["same top-1"].all() and agreement["max probability difference"].max() <= 2 / 256

    app.radio(key="pt_engine_mobilenet_v2_quant_tflite").set_value("onnx").run()
    assert any(c.value.startswith("Top-1: **Egyptian cat**") and "ONNX Runtime" in c.value for c in app.caption)

    app.selectbox(key="pt_model").set_value("vgg16").run()
    if not models.card("vgg16").ready():
        assert any("VGG16" in w.value and "not on this machine" in w.value for w in app.warning)
        assert any("fetch vgg16" in c.value for c in app.code)

    if not transfer.demo_classifier_trained():  # the flowers fixture may have trained it already
        app.button(key="cam_train").click().run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("The raw 7x7 map at layer `out_relu`") for c in app.caption)
