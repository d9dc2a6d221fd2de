"""The model registry: cards, status, clear errors, seeding, and loading real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SHARED, require_real, require_shared
from vision_backend import models
from vision_backend.cards import hash_matches
from vision_backend.paths import app_home, keras_home

DECK_MODELS = ["vgg16", "resnet50", "mobilenet_v2", "vggface2_resnet50", "mask_rcnn"]


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "keras"


def test_the_decks_models_are_registered_with_their_download_address() -> None:
    for name in DECK_MODELS:
        card = models.card(name)
        assert card.files[0].url.startswith("https://"), name
    assert "92.7%" in models.card("vgg16").accuracy


def test_status_lists_every_model_with_a_fix_for_missing_ones(empty_cache: Path) -> None:
    rows = models.status()
    assert [r["name"] for r in rows] == [c.name for c in models.cards()]
    cache_rows = [r for r in rows if models.card(r["name"]).source == "cache"]
    assert cache_rows and not any(r["ready"] for r in cache_rows), "an empty cache has nothing ready"
    assert all(r["status"].startswith("missing") and r["get it with"] for r in cache_rows)
    assert models.card("vgg16").status() == "missing — fetched on first use"
    assert next(r for r in rows if r["name"] == "vgg16")["MB to fetch"] == pytest.approx(553.5, abs=0.1)


def test_loading_a_missing_model_names_the_file_and_the_command(empty_cache: Path) -> None:
    with pytest.raises(models.ModelMissingError) as info:
        models.get("vgg16").runtime("keras")  # never loaded here: no weights on this machine
    message = str(info.value)
    assert str(empty_cache / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels.h5") in message
    assert "python -m vision_backend.models fetch vgg16" in message


def test_missing_seedable_model_points_to_seed(empty_cache: Path) -> None:
    with pytest.raises(models.ModelMissingError, match="models seed"):
        type(models.get("yunet"))().runtime()  # a fresh instance: the shared one may have loaded already


def test_unknown_name() -> None:
    with pytest.raises(KeyError, match="no model called"):
        models.card("alexnet")


def test_seed_copies_real_files_under_their_registered_names(empty_cache: Path) -> None:
    require_shared()
    written = models.seed([SHARED / "models", SHARED / "data"], log=lambda _: None)
    assert "models/vision_lab/face_detection_yunet_2023mar.onnx" in written
    assert "models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" in written
    for name in ("yunet", "nanodet_m", "mobilenet_v2_quant_tflite", "mnist_t10k", "lfw", "photos"):
        assert models.card(name).ready(), name
    assert hash_matches(models.card("nanodet_m").path(), models.card("nanodet_m").files[0].file_hash)
    assert models.seed([SHARED / "models"], log=lambda _: None) == [], "a second seed writes nothing"


def test_seed_refuses_a_same_named_file_with_other_bytes(empty_cache: Path, tmp_path: Path) -> None:
    impostor = tmp_path / "impostor"  # an empty cache, and a folder with a lookalike
    impostor.mkdir()
    (impostor / "face_detection_yunet_2023mar.onnx").write_bytes(b"not the real model")
    log: list[str] = []
    assert models.seed([impostor], log=log.append) == []
    assert not models.card("yunet").ready()
    assert any("refused" in line for line in log)


def test_seed_tells_fashion_mnist_from_mnist_by_hash(empty_cache: Path) -> None:
    """Both data sets name their files t10k-images-idx3-ubyte.gz; only the hash tells them apart."""
    debian = models.DEBIAN_FASHION_MNIST
    if not debian.is_dir():
        require_real("fashion_mnist")  # fails under VISION_REQUIRE_WEIGHTS=1
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    shared = require_shared()  # a newcomer's clone may have Debian's files and no team folder beside it
    models.seed([shared / "data", debian], log=lambda _: None)
    fashion = models.card("fashion_mnist").files[3].local
    digits = models.card("mnist_t10k").files[0].local
    assert fashion.read_bytes() == (debian / "t10k-images-idx3-ubyte.gz").read_bytes()
    assert digits.read_bytes() == (shared / "data/mnist-t10k/t10k-images-idx3-ubyte.gz").read_bytes()


def test_status_command_prints_every_model() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vision_backend.models", "status"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    for card in models.cards():
        assert card.name in result.stdout
    assert "ready" in result.stdout and " of " in result.stdout


def test_keras_loader_reads_a_keras_format_weight_file(empty_cache: Path) -> None:
    """The real loading code for a model we cannot download here, on a file in Keras' h5 layout.

    Random weights: this proves plumbing (file name, location, layout), not the model.
    """
    import h5py
    import keras
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    reference = keras.applications.MobileNetV2(weights=None, include_top=True)
    target = models.card("mobilenet_v2").files[0].local
    target.parent.mkdir(parents=True)
    with h5py.File(target, "w") as handle:
        save_weights_to_hdf5_group(handle, reference)
    shutil.copyfile(require_shared() / "models/keras/imagenet_class_index.json",
                    models.card("imagenet_class_index").files[0].local)
    loaded = models.get("mobilenet_v2").runtime("keras").model
    assert loaded.count_params() == models.card("mobilenet_v2").params
    for a, b in zip(reference.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_every_ready_real_model_loads(real_model) -> None:
    expected = ["mobilenet_v2_quant_tflite", "mobilenetv2_int8_onnx", "mobilenet_v2_notop", "mobilenet_v1_025_notop",
                "viola_jones", "dlib_hog", "mtcnn", "yunet", "dlib_resnet_face", "nanodet_m", "yolov8n_seg"]
    for name in expected:
        assert real_model(name).runtime() is not None, name
    base = real_model("mobilenet_v2_notop").runtime()
    assert base.count_params() == models.card("mobilenet_v2_notop").params


def test_real_keras_base_loads_from_the_cache_by_keras_own_name() -> None:
    """keras.applications finds the seeded file itself: the cache layout is Keras'."""
    require_real("mobilenet_v2_notop")
    import keras

    assert Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() == keras_home()
    model = keras.applications.MobileNetV2(weights="imagenet", include_top=False, input_shape=(224, 224, 3))
    ours = models.get("mobilenet_v2_notop").runtime()
    for a, b in zip(model.get_weights()[:5], ours.get_weights()[:5]):
        np.testing.assert_array_equal(a, b)


def test_fashion_mnist_loads_offline_as_keras_reads_it() -> None:
    require_real("fashion_mnist")
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    assert x_train.shape == (60_000, 28, 28) and x_test.shape == (10_000, 28, 28)
    assert sorted(set(y_test.tolist())) == list(range(10))


def test_app_home_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path / "lab"))
    assert app_home() == tmp_path / "lab" and app_home().is_dir()
    shutil.rmtree(tmp_path / "lab")


def test_seed_refuses_a_folder_with_a_file_of_other_bytes(empty_cache: Path, tmp_path: Path) -> None:
    shared = require_shared()
    lookalike = tmp_path / "lookalike" / "photos"
    shutil.copytree(shared / "data" / "photos", lookalike)
    (lookalike / "obama_1.jpg").write_bytes((lookalike / "obama_2.jpg").read_bytes())
    log: list[str] = []
    assert models.seed([lookalike.parent], log=log.append) == []
    assert not models.card("photos").ready()
    assert any("refused" in line and "obama_1.jpg" in line for line in log)
    assert not list(models.card("photos").files[0].local.parent.glob(".*")), "no staging folder left"


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_fetch_without_the_internet_is_one_line_per_model_and_an_exit_code(empty_cache: Path) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"  # every download goes nowhere, as on a machine offline
    env = dict(os.environ, KERAS_HOME=str(empty_cache), https_proxy=proxy, http_proxy=proxy, HTTPS_PROXY=proxy)
    env.pop("VISION_LAB_OFFLINE", None)  # the downloads themselves must fail, and say so
    result = subprocess.run([sys.executable, "-m", "vision_backend.models", "fetch", "yunet", "mnist_t10k"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "no internet: copy" in line]
    assert len(lines) == 4, result.stdout  # each failure as it happens, then in the table
    assert "0 fetched, 2 failed" in result.stdout
