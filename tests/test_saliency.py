"""Saliency for every classifier on every engine: occlusion and RISE from probabilities alone, Grad-CAM where there
are gradients, deletion / insertion against random orders, and the page's explanation tab."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require_real
from test_classification import EXPLAIN_TAB, TFLITE, ZOO, open_tab, tiny_raw_pixel_model
from test_pages import start
from vision_backend import samples
from vision_backend.classification import saliency
from vision_backend.errors import SettingError
from vision_backend.workspace import Workspace

REGION = (slice(32, 64), slice(64, 96))
"""Where the toy classifier looks: rows 32-63, columns 64-95 of a 96x128 photo."""
DOG = "dog_bicycle_truck.jpg"
DOG_BOX = (slice(220, 540), slice(130, 310))
"""The dog in darknet's dog.jpg (rows, columns): what both int8 MobileNetV2s call a malamute."""
FLOOR = (slice(430, 576), slice(450, 700))
"""Empty floor boards at the bottom right of the same photo."""


def toy_photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    photo = rng.integers(60, 190, (96, 128, 3)).astype(np.uint8)
    photo[REGION] = 255
    return photo


def toy_probabilities(images) -> np.ndarray:
    """Class 1 is the brightness of REGION, class 0 the rest: the answer depends on that region alone."""
    bright = np.stack([np.asarray(i, np.float64)[REGION].mean() / 255 for i in images])
    return np.stack([1 - bright, bright], axis=1)


def region_mask(shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    mask[REGION] = True
    return mask


# ---- the toy: exact and cheap --------------------------------------------------------------------
def test_occlusion_with_aligned_patches_marks_exactly_the_region() -> None:
    found = saliency.explain(toy_photo(), toy_probabilities, "occlusion", patch=32, stride=32)
    assert found.class_index == 1 and found.method == "occlusion" and found.map.shape == (96, 128)
    np.testing.assert_array_equal(found.map > 0.5, region_mask(found.map.shape))
    assert found.map.min() == 0 and found.map.max() == 1 and found.evaluations == 3 * 4 + 1


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_a_map_peaks_where_the_toy_classifier_looks(method: str) -> None:
    calls = []
    found = saliency.explain(toy_photo(), toy_probabilities, method, progress=lambda d, t: calls.append((d, t)))
    inside = region_mask(found.map.shape)
    assert inside[np.unravel_index(np.argmax(found.map), found.map.shape)], "the hottest pixel is in the region"
    assert found.map[inside].mean() > 2 * found.map[~inside].mean(), "a 48 px patch smears over a 96 px photo"
    assert 0 <= found.map.min() and found.map.max() <= 1 and found.seconds > 0
    assert calls[-1][0] == calls[-1][1] == found.evaluations - 1, "progress counts every masked copy"


def test_deletion_and_insertion_reward_the_right_map_and_punish_the_wrong_one() -> None:
    photo = toy_photo()
    right = region_mask(photo.shape).astype(np.float32)
    good = saliency.deletion_insertion(photo, toy_probabilities, right, 1)
    bad = saliency.deletion_insertion(photo, toy_probabilities, 1 - right, 1)
    assert good.deletion_vs_random < 1 < bad.deletion_vs_random
    assert good.insertion_vs_random > 1 > bad.insertion_vs_random
    assert good.fractions[0] == 0 and good.fractions[-1] == 1 and len(good.fractions) == 17
    assert good.deletion[0] == good.insertion[-1] == pytest.approx(1.0), "the whole photo at both ends"
    assert good.evaluations == 2 * 5 * 15 + 3, "three shared end points, the inner steps of 1 + 4 orders"


def test_methods_check_their_settings() -> None:
    with pytest.raises(SettingError, match="gradient-free"):
        saliency.explain(toy_photo(), toy_probabilities, "grad_cam")
    with pytest.raises(SettingError, match="no setting"):
        saliency.explain(toy_photo(), toy_probabilities, "rise", stride=4)
    with pytest.raises(SettingError, match="between"):
        saliency.explain(toy_photo(), toy_probabilities, "occlusion", patch=1000)
    with pytest.raises(SettingError, match="no class 7"):
        saliency.explain(toy_photo(), toy_probabilities, "occlusion", 7)
    assert saliency.RISE.settings({"masks": "200"})["masks"] == 200


def test_a_photo_smaller_than_the_patch_still_gets_a_map() -> None:
    found = saliency.explain(toy_photo()[:20, :30], lambda images: toy_probabilities(
        [np.pad(i, ((0, 76), (0, 98), (0, 0))) for i in images]), "occlusion")
    assert found.map.shape == (20, 30) and np.isfinite(found.map).all()


# ---- real int8 classifiers, real photos ------------------------------------------------------------
@pytest.fixture(scope="module")
def int8(real_model):
    require_real("imagenet_class_index")
    require_real("photos")
    return {name: real_model(name) for name in (TFLITE, ZOO)}


@pytest.mark.slow
@pytest.mark.parametrize("name", [TFLITE, ZOO])
def test_int8_maps_sit_on_the_dog_not_the_floor(int8, name: str) -> None:
    photo = samples.load_sample(DOG)
    subject = saliency.classifier_subject(int8[name])
    assert [m.name for m in subject.methods()] == ["occlusion", "rise"], "no gradients: no Grad-CAM"
    for method in ("occlusion", "rise"):
        found = subject.explain(photo, method, **({"masks": 200} if method == "rise" else {}))
        big = cv2.resize(found.map, (photo.shape[1], photo.shape[0]))
        assert big[DOG_BOX].mean() > 1.5 * big[FLOOR].mean(), (method, big[DOG_BOX].mean(), big[FLOOR].mean())
        hottest = big >= np.quantile(big, 0.95)
        rows, cols = np.nonzero(hottest)
        assert DOG_BOX[0].start <= rows.mean() < DOG_BOX[0].stop and DOG_BOX[1].start <= cols.mean() < DOG_BOX[1].stop


@pytest.mark.slow
def test_occlusion_on_the_default_classifier_beats_random_deletion(int8) -> None:
    subject = saliency.classifier_subject(int8[TFLITE], "tflite")
    ratios = []
    for name in (DOG, "person_horse_dog.jpg", "no_face_eagle.jpg", "Coffee cup (scikit-image)"):
        photo = samples.load_sample(name)
        found = subject.explain(photo, "occlusion")
        scored = subject.faithfulness(photo, found, steps=10, randoms=3)
        ratios.append((scored.deletion_vs_random, scored.insertion_vs_random))
    ratios = np.array(ratios)
    assert np.median(ratios[:, 0]) < 1 and (ratios[:, 0] < 1).sum() >= 3, ratios
    assert np.median(ratios[:, 1]) > 1, ratios


@pytest.mark.slow
def test_every_engine_of_the_int8_classifiers_explains_offline(int8) -> None:
    photo = cv2.resize(samples.load_sample(DOG), (128, 96))
    for classifier in int8.values():
        for engine in classifier.engines:
            found = saliency.classifier_subject(classifier, engine).explain(photo, "occlusion", patch=64, stride=32)
            assert found.map.shape == (96, 128) and found.map.max() == 1, (classifier.name, engine)


# ---- Keras: Grad-CAM and the gradient-free methods on one saved model ------------------------------
def test_a_saved_model_gets_grad_cam_and_the_gradient_free_maps(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("VISION_LAB_HOME", str(tmp_path))
    project = Workspace.local().project("pets")
    project.save_model("tiny", tiny_raw_pixel_model(), {"classes": ["cat", "dog"]})
    subject = saliency.saved_subject(project.saved_models()["tiny"])
    assert [m.name for m in subject.methods()] == ["grad_cam", "occlusion", "rise"]
    photo = samples.load_sample("Cat, Chelsea (scikit-image)")
    cam = subject.explain(photo, "grad_cam", 1)
    assert cam.layer == "features" and cam.map.shape == (31, 31) and cam.class_index == 1
    shaded = subject.explain(photo, "occlusion", 1, side=128)
    assert shaded.map.shape == (85, 128) and shaded.class_index == 1
    scored = subject.faithfulness(photo, cam, steps=4, randoms=2)
    assert len(scored.deletion) == 5 and np.isfinite(scored.auc(scored.deletion))
    assert subject.class_names == ["cat", "dog"]


def test_an_int8_classifier_refuses_grad_cam_in_words(int8) -> None:
    with pytest.raises(SettingError, match="no gradients"):
        saliency.classifier_subject(int8[TFLITE]).explain(toy_photo(), "grad_cam")


# ---- the page --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_page_explains_the_default_tflite_classifier(int8) -> None:
    app = start("pages/pretrained.py")
    app.sidebar.selectbox(key="sample_name").set_value(DOG).run()
    open_tab(app, EXPLAIN_TAB)
    assert not app.exception, app.exception
    assert app.selectbox(key="cam_model").value == TFLITE
    assert app.radio(key=f"cam_method_{TFLITE}@tflite").options == ["Occlusion", "RISE"]
    captions = [c.value for c in app.caption]
    assert any("no gradients" in c and "Grad-CAM cannot run" in c for c in captions), captions
    assert any(c.startswith("The raw 168x224 map (Occlusion") for c in captions), captions
    assert {m.label for m in app.metric} >= {"Deletion AUC", "Insertion AUC"}
    assert any(b.label == "Download the overlay (PNG)" for b in app.get("download_button"))
    assert app.selectbox(key=f"cam_class_{TFLITE}").options[0].startswith("malamute"), "its top 5 to choose from"
    app.radio(key=f"cam_engine_{TFLITE}").set_value("onnx").run()
    assert not app.exception, app.exception
    assert any(c.value.startswith("The raw 168x224 map (Occlusion") for c in app.caption)
