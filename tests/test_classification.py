"""Pretrained ImageNet classifiers on three engines, Keras -> ONNX, pixel scaling, decoding labels, Grad-CAM,
the page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import ROOT, require_real
from test_pages import open_tab, start
from vision_backend import engines, models, paths, samples
from vision_backend.classification import CLASSIFIERS, Prediction, engine_agreement, gradcam, imagenet
from vision_backend.convert import converted_path, keras_to_onnx, tflite_to_onnx
from vision_backend.imageops import PixelScaling, resize_square
from vision_backend.intake import read_image
from vision_backend.transfer import demo
from vision_backend.transfer.bases import MOBILENET_V2
from vision_backend.workspace import Workspace

CHELSEA = "Cat, Chelsea (scikit-image)"
COFFEE = "Coffee cup (scikit-image)"
TFLITE = "mobilenet_v2_quant_tflite"
ZOO = "mobilenetv2_int8_onnx"


@pytest.fixture(scope="module")
def tflite(real_model):
    require_real("imagenet_class_index")
    return real_model(TFLITE)


def labels(prediction: Prediction) -> list[str]:
    return [label for _, label, _ in prediction.top]


def test_tflite_top5_on_the_sample_photos(tflite, photo) -> None:
    cat, cup, staged = tflite.classify([samples.load_sample(CHELSEA), samples.load_sample(COFFEE),
                                        photo("cat_chelsea.png")], "tflite")
    assert labels(cat)[0] == "Egyptian_cat" and {"tiger_cat", "tabby"} <= set(labels(cat))
    assert labels(cup)[0] == "espresso" and cup.top[0][2] > 0.9
    assert labels(staged)[:3] == labels(cat)[:3]
    assert cat.top[0][0] == "n02124075", "ImageNet ids come from Keras' class index"
    probabilities = [p for _, _, p in cat.top]
    assert probabilities == sorted(probabilities, reverse=True) and 0.95 <= cat.probabilities.sum() <= 1.01
    assert cat.probabilities.shape == (1000,), "the background output is dropped: Keras' 1000 classes"
    assert cat.engine == "tflite" and cat.classifier == TFLITE and cat.ms > 0


def test_tflite_converted_to_onnx_gives_the_same_answer(tflite) -> None:
    images = [samples.load_sample(n) for n in (CHELSEA, COFFEE, "Rocket (scikit-image)")]
    on_tflite, on_onnx = tflite.classify(images, "tflite"), tflite.classify(images, "onnx")
    assert {p.engine for p in on_onnx} == {"onnx"}
    assert tflite_to_onnx(tflite.card.path(), converted_path(TFLITE)).is_file(), "converted into the app's folder"
    assert converted_path(TFLITE).is_relative_to(paths.app_home())
    for a, b in zip(on_tflite, on_onnx):
        assert labels(a) == labels(b)
        assert np.abs(a.probabilities - b.probabilities).max() <= 2 / 256, "same int8 arithmetic"
    agreement = engine_agreement(on_tflite[:1] + on_onnx[:1])
    assert len(agreement) == 1 and agreement[0]["same top-1"]
    assert agreement[0]["max probability difference"] <= 2 / 256


def test_onnx_zoo_int8_classifier(real_model, photo) -> None:
    zoo = real_model(ZOO)
    cat, cup = zoo.classify([photo("cat_chelsea.png"), samples.load_sample(COFFEE)])
    assert labels(cat)[0] == "Egyptian_cat" and labels(cup)[0] == "espresso"
    assert cat.probabilities.sum() == pytest.approx(1.0, abs=1e-4), "logits go through a softmax"


def test_onnx_zoo_classifier_never_imports_keras(real_model) -> None:
    """An ONNX-only classifier loads and classifies in a fresh process without TensorFlow or Keras, in under
    250 MB (the process's own peak, VmHWM: ``ru_maxrss`` would start at pytest's)."""
    real_model(ZOO)
    code = ("import sys\n"
            "from vision_backend import samples\n"
            "from vision_backend.classification import CLASSIFIERS\n"
            f"p = CLASSIFIERS[{ZOO!r}].classify([samples.load_sample({CHELSEA!r})])[0]\n"
            "print(p.top[0][1], 'keras' in sys.modules, 'tensorflow' in sys.modules)\n"
            "print(next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM:')))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    answer, peak_kb = result.stdout.strip().splitlines()
    assert answer.split() == ["Egyptian_cat", "False", "False"]
    assert int(peak_kb) / 1024 < 250, "issue #17: the ONNX classifier's process stays under 250 MB"


@pytest.mark.slow
def test_keras_and_onnx_agree_on_the_real_mobilenet_v2_base(real_model, tmp_path: Path) -> None:
    base = real_model("mobilenet_v2_notop").runtime()
    session = engines.onnx_session(keras_to_onnx(base, tmp_path / "base.onnx"))
    images = [samples.load_sample(n) for n in (CHELSEA, COFFEE, "Astronaut (scikit-image)")]
    batch = MOBILENET_V2.preprocess(images)
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
    (cat,), (cup,) = imagenet.decode(one_hot, top=1)
    assert cat[:2] == ("n02124075", "Egyptian_cat") and cup[1] == "espresso"
    assert imagenet.labels()[285] == "Egyptian_cat" and len(imagenet.labels()) == 1000


def test_decode_equals_keras_decode_predictions() -> None:
    require_real("imagenet_class_index")
    import keras

    rng = np.random.default_rng(3)
    probabilities = rng.random((4, 1000)).astype(np.float32)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    ours = imagenet.decode(probabilities, top=5)
    theirs = keras.applications.imagenet_utils.decode_predictions(probabilities.copy(), top=5)
    for our_rows, their_rows in zip(ours, theirs):
        assert [(w, n) for w, n, _ in our_rows] == [(str(w), str(n)) for w, n, _ in their_rows]
        np.testing.assert_allclose([p for *_, p in our_rows], [float(p) for *_, p in their_rows], rtol=1e-6)


def test_a_registered_but_missing_model_says_how_to_fetch_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                             real_model) -> None:
    zoo = real_model(ZOO)
    with pytest.raises(ValueError, match="does not run on Keras"):
        zoo.classify([samples.load_sample(CHELSEA)], "keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(models.ModelMissingError) as caught:
        CLASSIFIERS["vgg16"].runtime("keras")
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in str(caught.value)
    assert "python -m vision_backend.models fetch vgg16" in caught.value.card.how_to_get()
    with pytest.raises(ValueError, match="does not run on LiteRT"):
        CLASSIFIERS["vgg16"].load("tflite")


def test_every_deck_model_is_registered_with_its_own_preprocessing() -> None:
    for name in ("vgg16", "resnet50", "mobilenet_v2", "densenet121", "efficientnet_b0", "inception_v3",
                 "nasnet_mobile", "xception"):
        classifier = CLASSIFIERS[name]
        card = classifier.card
        assert card.files[0].url.startswith("https://storage.googleapis.com/") and card.params and card.accuracy
        assert classifier.engines == ("keras", "onnx")
        assert models.get(name) is classifier, "the registry holds the one shared instance"
    grey = np.full((1, 4, 4, 3), 128, np.float32)
    assert CLASSIFIERS["mobilenet_v2"].scaling(grey).max() == pytest.approx(128 / 127.5 - 1, abs=1e-6)
    assert CLASSIFIERS["vgg16"].scaling(grey)[0, 0, 0, 0] == pytest.approx(128 - 103.939, abs=1e-3), "BGR minus means"
    assert CLASSIFIERS["resnet50"].scaling.mode == "caffe" and CLASSIFIERS["densenet121"].scaling.mode == "torch"
    assert CLASSIFIERS["efficientnet_b0"].scaling.mode == "none"
    assert CLASSIFIERS["inception_v3"].size == CLASSIFIERS["xception"].size == 299
    batch = CLASSIFIERS["inception_v3"].preprocess([samples.load_sample(CHELSEA)])
    assert batch.shape == (1, 299, 299, 3) and -1.0 <= batch.min() and batch.max() <= 1.0


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_pixel_scaling_is_keras_preprocess_input_as_numpy_and_as_layers(mode: str) -> None:
    import keras

    rng = np.random.default_rng(len(mode))
    batch = rng.uniform(0, 255, (2, 6, 5, 3)).astype(np.float32)
    scaling = PixelScaling(mode)
    theirs = np.asarray(keras.applications.imagenet_utils.preprocess_input(batch.copy(), mode=mode))
    np.testing.assert_allclose(scaling(batch), theirs, atol=1e-4)
    inputs = keras.Input((6, 5, 3))
    as_layers = keras.Model(inputs, scaling.keras_layers(inputs))
    np.testing.assert_allclose(np.asarray(as_layers.predict_on_batch(batch)), scaling(batch), atol=1e-4)


@pytest.fixture
def random_mobilenet_v2():
    """The shared MobileNetV2 classifier, unloaded before and after (the test loads it on random weights)."""
    classifier = CLASSIFIERS["mobilenet_v2"]
    classifier.unload()
    yield classifier
    classifier.unload()


@pytest.mark.slow
def test_keras_classifier_path_on_a_weight_file_the_test_writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                random_mobilenet_v2) -> None:
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
    classifier = random_mobilenet_v2
    images = [samples.load_sample(CHELSEA), samples.load_sample(COFFEE)]
    on_keras, on_onnx = classifier.classify(images, "keras"), classifier.classify(images, "onnx")
    assert (tmp_path / "home" / "onnx" / "mobilenet_v2.onnx").is_file()
    expected = np.asarray(reference.predict_on_batch(classifier.preprocess(images)))
    for a, b, row in zip(on_keras, on_onnx, expected):
        assert np.abs(a.probabilities - row).max() < 1e-6
        assert np.abs(a.probabilities - b.probabilities).max() < 1e-5 and labels(a) == labels(b)


def test_engine_agreement_pairs_the_engines_of_each_model() -> None:
    def made(name: str, engine: str, probabilities: list[float]) -> Prediction:
        best = int(np.argmax(probabilities))
        return Prediction([(f"n{best}", f"class {best}", max(probabilities))], np.asarray(probabilities), 1.0,
                          name, engine)

    rows = engine_agreement([made(TFLITE, "tflite", [0.6, 0.4]), made(ZOO, "onnx", [0.1, 0.9]),
                             made(TFLITE, "onnx", [0.58, 0.42]), made("vgg16", "keras", [0.3, 0.7]),
                             made("vgg16", "onnx", [0.8, 0.2])])
    assert [r["model"] for r in rows] == [CLASSIFIERS[TFLITE].title, "VGG16"], "one row per pair, single engines none"
    assert rows[0]["engines"] == "LiteRT (TFLite) vs ONNX Runtime" and rows[1]["engines"] == "Keras vs ONNX Runtime"
    assert rows[0]["same top-1"] and rows[0]["max probability difference"] == pytest.approx(0.02)
    assert not rows[1]["same top-1"] and rows[1]["max probability difference"] == pytest.approx(0.5)


# ---- Grad-CAM on a real base ---------------------------------------------------------------
@pytest.fixture(scope="module")
def flowers():
    require_real("mobilenet_v2_notop")
    require_real("demo_classes")
    model, names = demo.demo_classifier()
    return model, names


@pytest.mark.slow
def test_grad_cam_looks_at_the_class_it_explains(flowers) -> None:
    """A sunflower photo left, a daisy photo right (both unseen in training): each class's map sits on its half."""
    model, names = flowers
    folders = demo.class_folders(demo.DEMO_CLASSES.path())
    unseen = {c: [read_image(p.read_bytes(), p.name) for p in folders[c][40:50]] for c in ("sunflower", "daisy")}
    shares = []
    for sunflower, daisy in zip(unseen["sunflower"], unseen["daisy"]):
        pair = np.concatenate([cv2.resize(sunflower, (224, 224)), cv2.resize(daisy, (224, 224))], axis=1)
        batch = MOBILENET_V2.preprocess([pair])
        left = []
        for name in ("sunflower", "daisy"):
            cam, index = gradcam.grad_cam(model, batch, names.index(name))
            assert cam.shape == (7, 7) and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
            left.append(cam[:, :3].sum() / (cam[:, :3].sum() + cam[:, 4:].sum() + 1e-9))
        shares.append(left)
    shares = np.array(shares)
    assert (shares[:, 0] > shares[:, 1]).sum() >= 8, shares
    assert (shares[:, 0] - shares[:, 1]).mean() > 0.3, shares


def test_grad_cam_explains_the_top_class_by_default(flowers) -> None:
    model, _ = flowers
    batch = MOBILENET_V2.preprocess([samples.load_sample(CHELSEA)])
    _, index = gradcam.grad_cam(model, batch)
    assert index == int(np.argmax(model.predict_on_batch(batch)[0]))
    assert gradcam.last_conv_layer(model) == "out_relu"


@pytest.mark.slow
def test_demo_classifier_is_saved_and_loads_again(flowers) -> None:
    model, names = flowers
    assert demo.demo_classifier_trained() and names == ["daisy", "dandelion", "rose", "sunflower", "tulip"]
    again, again_names = demo.demo_classifier()
    batch = MOBILENET_V2.preprocess([samples.load_sample(CHELSEA)])
    assert again_names == names
    np.testing.assert_allclose(again.predict_on_batch(batch), model.predict_on_batch(batch), atol=1e-6)
    explainable = gradcam.demo_explainable()
    np.testing.assert_allclose(explainable.batch(samples.load_sample(CHELSEA)), batch)  # MobileNetV2's scaling
    top = explainable.top(batch)
    assert top[0][0] == int(np.argmax(model.predict_on_batch(batch)[0])) and explainable.layer == "out_relu"


def tiny_raw_pixel_model():
    """A small classifier that, like an exported transfer model, takes raw 0-255 RGB (random weights: plumbing)."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="classes")(x))


def test_a_model_saved_in_a_project_is_explained_on_raw_pixels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path))
    project = Workspace.local().project("pets")
    saved = project.save_model("tiny", tiny_raw_pixel_model(), {"classes": ["cat", "dog"]})
    explainable = gradcam.saved_explainable(project.saved_models()["tiny"])
    photo = samples.load_sample(CHELSEA)
    batch = explainable.batch(photo)
    np.testing.assert_array_equal(batch[0], resize_square(photo, 64).astype(np.float32))  # raw 0-255 RGB in
    assert explainable.class_names == ["cat", "dog"] and saved.path.is_file()
    top = explainable.top(batch)
    assert sorted(i for i, _ in top) == [0, 1] and sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)
    cam, index = explainable.explain(batch, 1)
    assert index == 1 and cam.shape == (31, 31) and explainable.layer == "features"


# ---- the page ------------------------------------------------------------------------------
EXPLAIN_TAB = "Where did it look?"


@pytest.mark.slow
def test_pretrained_page_classifies_compares_and_explains(real_model) -> None:
    real_model(TFLITE)
    require_real("photos")
    app = start("pages/pretrained.py")
    app.sidebar.selectbox(key="sample_name").set_value(CHELSEA).run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("Top-1: **Egyptian cat**") and "TFLite" in c.value for c in app.caption)

    batch = open_tab(app, "Many photos").dataframe[0].value
    assert len(batch) == len(samples.sample_names())
    assert batch.set_index("photo").loc["Cat (Chelsea)", "top-1"] == "Egyptian cat", "samples by their titles"
    assert any(b.label == "Download the table (CSV)" for b in app.get("download_button"))

    compared, agreement = open_tab(app, "Compare models").dataframe[0].value, app.dataframe[1].value
    assert set(compared["engine"]) == {"LiteRT (TFLite)", "ONNX Runtime"}
    assert (compared["top-1"] == "Egyptian cat").all()
    assert agreement["same top-1"].all() and agreement["max probability difference"].max() <= 2 / 256

    open_tab(app, "Classify").radio(key="pt_engine_mobilenet_v2_quant_tflite").set_value("onnx").run()
    assert any(c.value.startswith("Top-1: **Egyptian cat**") and "ONNX Runtime" in c.value for c in app.caption)

    app.selectbox(key="pt_model").set_value("vgg16").run()
    if not models.card("vgg16").ready():
        assert any("VGG16" in w.value and "not on this machine" in w.value for w in app.warning)
        assert any("fetch vgg16" in c.value for c in app.code)

    open_tab(app, EXPLAIN_TAB)
    app.selectbox(key="cam_model").set_value("demo_flowers").run()
    if not demo.demo_classifier_trained():  # the flowers fixture may have trained it already
        app.button(key="cam_train").click().run()
    assert not app.exception, app.exception
    assert app.radio(key="cam_method_demo_flowers").value == "grad_cam", "Grad-CAM first where there are gradients"
    assert any(c.value.startswith("The raw 7x7 map at layer `out_relu`") for c in app.caption)


@pytest.mark.slow
def test_pretrained_page_without_any_ready_classifier_says_so_on_every_tab(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    """Once "KeyError: None" (Many photos) and "KeyError: 'model'" (Compare models): now a message each."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras"))
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "home"))
    assert not any(c.ready() for c in CLASSIFIERS.values())
    app = start("pages/pretrained.py")
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]
    warnings = [w.value for w in app.warning]
    assert any("not on this machine" in w for w in warnings), "the Classify tab says what is missing"
    assert any("fetch mobilenet_v2_quant_tflite" in c.value for c in app.code)
    infos = [i.value for tab in ("Many photos", "Compare models") for i in open_tab(app, tab).info]
    assert sum("No ImageNet classifier is on this machine yet" in i for i in infos) == 2, infos
    zoo = open_tab(app, "The model zoo").dataframe[-1].value
    assert set(zoo["status"]) == {"missing — fetched on first use"}
    open_tab(app, EXPLAIN_TAB)
    warnings = [w.value for w in app.warning]
    assert any("MobileNetV2 1.0/224 with ImageNet top" in w and "not on this machine" in w for w in warnings), \
        "the explanation tab offers the smallest ImageNet Keras model (for Grad-CAM) and says how to get it"


@pytest.mark.slow
def test_pretrained_page_explains_a_model_saved_in_a_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path))
    Workspace.local().project("pets").save_model("tiny", tiny_raw_pixel_model(), {"classes": ["cat", "dog"]})
    app = start("pages/pretrained.py")
    open_tab(app, EXPLAIN_TAB)
    app.selectbox(key="cam_model").set_value("project:pets/tiny").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("The raw 31x31 map at layer `features`") for c in app.caption)
    options = app.selectbox(key="cam_class_project:pets/tiny").options
    assert sorted(o.split(" (")[0] for o in options) == ["cat", "dog"]
    assert {m.label for m in app.metric} >= {"Deletion AUC", "Insertion AUC"}, "Grad-CAM's map is scored too"
    method = next(key for key in (r.key for r in app.radio) if key.startswith("cam_method_saved:"))
    app.radio(key=method).set_value("occlusion").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("The raw ") and "map (Occlusion" in c.value for c in app.caption), "gradient-free too"
