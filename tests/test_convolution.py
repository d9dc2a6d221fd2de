"""Convolution and pooling against TensorFlow; the feature maps of the real MobileNetV2 base; the page."""

from __future__ import annotations

import re

import numpy as np
import pytest

from test_pages import open_tab, start
from vision_backend import convolution as cv
from vision_backend import samples
from vision_backend.transfer.bases import MOBILENET_V2


@pytest.mark.parametrize("seed", range(8))
def test_conv2d_agrees_with_tensorflow(seed: int) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    height, width, channels = rng.integers(5, 40, 2).tolist() + [int(rng.integers(1, 4))]
    k, outputs = int(rng.choice([1, 3, 5])), int(rng.integers(1, 5))
    stride, padding = int(rng.integers(1, 4)), str(rng.choice(["same", "valid"]))
    image = rng.normal(size=(height, width, channels)).astype(np.float32)
    kernels = rng.normal(size=(k, k, channels, outputs)).astype(np.float32)
    ours = cv.conv2d(image, kernels, stride, padding)
    theirs = tf.nn.conv2d(image[None], kernels, stride, padding.upper()).numpy()[0]
    assert ours.shape == theirs.shape
    assert ours.shape[:2] == (cv.output_size(height, k, stride, padding), cv.output_size(width, k, stride, padding))
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pooling_agrees_with_tensorflow(seed: int, mode: str) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(int(rng.integers(4, 30)), int(rng.integers(4, 30)), 3)).astype(np.float32)
    size, stride, padding = int(rng.integers(2, 4)), int(rng.integers(1, 3)), str(rng.choice(["same", "valid"]))
    ours = cv.pool2d(maps, size, stride, mode, padding)
    op = tf.nn.max_pool2d if mode == "max" else tf.nn.avg_pool2d
    theirs = op(maps[None], size, stride, padding.upper()).numpy()[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_named_kernels_do_what_their_names_say() -> None:
    step = np.zeros((9, 9), np.float32)
    step[:, 5:] = 1.0  # a vertical edge
    assert np.abs(cv.conv2d(step, cv.KERNELS["Sobel y"], padding="valid")).max() == 0, "Sobel y ignores vertical edges"
    assert cv.conv2d(step, cv.KERNELS["Sobel x"], padding="valid").max() == 4
    np.testing.assert_array_equal(cv.conv2d(step, cv.KERNELS["identity"])[:, :, 0], step)
    flat = np.full((6, 6), 7.0, np.float32)
    assert np.allclose(cv.conv2d(flat, cv.KERNELS["box blur"], padding="valid"), 7.0)
    assert np.allclose(cv.conv2d(flat, cv.KERNELS["Laplacian edge"], padding="valid"), 0.0)
    assert cv.conv2d(flat, cv.KERNELS["Gaussian blur 5x5"], padding="valid").shape == (2, 2, 1)


def test_a_kernel_bank_computes_what_each_kernel_computes_alone() -> None:
    """A 3x3 kernel centred in a 5x5 layer answers exactly as it does on its own ('same' padding)."""
    image = np.random.default_rng(2).random((20, 17)).astype(np.float32)
    names = ["Sobel x", "Gaussian blur 5x5", "emboss"]
    bank = cv.kernel_bank(names)
    assert bank.shape == (5, 5, 1, 3)
    maps = cv.conv2d(image, bank)
    for i, name in enumerate(names):
        np.testing.assert_allclose(maps[:, :, i], cv.conv2d(image, cv.KERNELS[name])[:, :, 0], atol=1e-5)


def test_working_copy_and_enlarged_maps() -> None:
    grey = cv.working_grey(samples.load_sample("Astronaut (scikit-image)"), 256)
    assert grey.shape == (256, 256) and grey.dtype == np.float32 and 0 <= grey.min() and grey.max() <= 1
    small = np.arange(49, dtype=np.uint8).reshape(7, 7)
    big = cv.enlarged(small, 112)
    assert big.shape == (112, 112) and set(np.unique(big)) == set(range(49)), "nearest: no blurred values"


def test_pooling_steps_halve_the_size_to_seven() -> None:
    steps = cv.pooling_steps(np.random.default_rng(0).random((224, 224, 3)))
    assert [s.shape[0] for s in steps] == [224, 112, 56, 28, 14, 7]
    assert steps[1].max() == steps[0].max(), "max pooling keeps the strongest response"


def test_is_spatial_only_for_feature_map_stacks() -> None:
    """The old guard (``False is not None``) let anything through; these must all be refused."""
    import keras

    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", name="conv")
    dense = keras.layers.Dense(5, name="dense")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(conv(inputs))))
    assert cv.is_spatial(model.get_layer("conv"))
    assert not cv.is_spatial(model.get_layer("dense")), "a Dense layer's output is (N, 5)"
    assert not cv.is_spatial(object()), "an object without .output"
    assert not cv.is_spatial(keras.layers.Conv2D(4, 3)), "a layer never called has no output"
    assert cv.output_shape(object()) is None
    assert cv.conv_layers(model) == ["conv"]


def test_real_mobilenet_feature_maps_go_from_edges_to_blobs(real_model) -> None:
    base = real_model("mobilenet_v2_notop").runtime()
    layers = cv.conv_layers(base)
    assert layers[0] == "Conv1" and "out_relu" in layers
    batch = MOBILENET_V2.preprocess([samples.load_sample("Astronaut (scikit-image)")])
    early, channels = cv.feature_maps(base, "Conv1", batch, 8)
    late, _ = cv.feature_maps(base, "out_relu", batch, 8)
    assert early.shape == (8, 112, 112) and late.shape == (8, 7, 7)
    means = early.mean(axis=(1, 2))
    assert (np.diff(means) <= 1e-6).all(), "strongest channels first"
    assert len(set(channels.tolist())) == 8


def test_cnn_basics_page(real_model) -> None:
    real_model("mobilenet_v2_notop")
    app = start("pages/cnn_basics.py")
    assert not app.exception, app.exception
    assert any("224 → 112 → 56 → 28 → 14 → 7" in c.value for c in open_tab(app, "Pooling").caption)
    loaded = [s for s in open_tab(app, "What a real CNN sees").status if s.label.startswith("MobileNetV2 loaded")]
    assert loaded and loaded[0].state == "complete", "the real CNN says it is loading, then that it is ready"
    open_tab(app, "One kernel").selectbox(key="cb_kernel").set_value("Sobel x").run()
    app.radio(key="cb_padding").set_value("valid").run()
    app.slider(key="cb_stride").set_value(2).run()
    assert not app.exception, app.exception
    caption = next(c.value for c in app.caption if c.value.startswith("Output"))
    (out_h, out_w), (in_h, in_w) = [(int(a), int(b)) for a, b in re.findall(r"(\d+)x(\d+)", caption)[:2]]
    assert max(in_h, in_w) == 256, "the photo is worked on at long side 256"
    assert (out_h, out_w) == (cv.output_size(in_h, 3, 2, "valid"), cv.output_size(in_w, 3, 2, "valid"))
    open_tab(app, "What a real CNN sees").select_slider(key="cb_layer").set_value("out_relu").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("MobileNetV2 layer `out_relu`") and "1280 channels of 7x7" in c.value
               for c in app.caption)


def test_cnn_basics_settings_survive_a_page_switch(real_model) -> None:
    real_model("mobilenet_v2_notop")
    app = start("pages/cnn_basics.py")
    app.selectbox(key="cb_kernel").set_value("emboss").run()
    app.slider(key="cb_stride").set_value(3).run()
    open_tab(app, "A layer = many kernels").multiselect(key="cb_bank").set_value(["Sobel x", "outline"]).run()
    open_tab(app, "What a real CNN sees").select_slider(key="cb_layer").set_value("out_relu").run()
    app.switch_page("pages/home.py").run()
    app.switch_page("pages/cnn_basics.py").run()
    assert not app.exception, app.exception
    assert app.select_slider(key="cb_layer").value == "out_relu", "the tab that was open, open again"
    assert open_tab(app, "One kernel").selectbox(key="cb_kernel").value == "emboss"
    assert app.slider(key="cb_stride").value == 3
    assert open_tab(app, "A layer = many kernels").multiselect(key="cb_bank").value == ["Sobel x", "outline"]
    assert any("2 kernels of 3x3" in c.value for c in app.caption)
