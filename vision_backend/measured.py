"""The figures measured on this machine (``bench/results.json``), by model card.

A card says what its publisher measured; the benchmarks say what the model does here, on the staged
photos and data sets. Results keep every run, quick checks included; a card shows each figure's latest
full (non-``--quick``) value with its date and machine. This VM's speed moves 1.4-4x from day to day, so
beside each time goes its ``_vs_raw`` ratio (the product over the bare library call, measured in the same
run), which holds across days where a time does not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results.json"
TIME_UNITS = ("ms", "s")


@dataclass(frozen=True)
class Figure:
    """One figure's latest full run: value, unit, which bench, when (UTC, ISO) and on what machine."""

    name: str
    value: float
    unit: str
    bench: str
    time: str
    machine: str
    vs_raw: float | None = None
    """The product over the bare library call in the same run, beside a time (None where not measured)."""

    @property
    def date(self) -> str:
        return self.time[:10]

    @property
    def is_time(self) -> bool:
        return self.unit in TIME_UNITS


def _classifier(name: str, *engines: str) -> tuple[str, ...]:
    """What ``bench/pretrained.py`` records per ImageNet classifier and engine (``ENGINE_NAME_...``)."""
    return tuple(f"{engine}_{name}_{what}" for engine in engines for what in (
        "classify_b1_ms", "b1_ms", "b16_images_per_s", "cold_load_s", "peak_rss_mb")) + (f"load_{name}_cold_ms",)


def _face_detector(figure: str) -> tuple[str, ...]:
    """What ``bench/face_detection.py`` and ``bench/live.py`` record per face detector."""
    return (f"{figure}_640x480_ms", f"{figure}_group_photos_recall", f"{figure}_group_photos_precision",
            f"{figure}_scaled_photos_recall_min", f"{figure}_scaled_photos_recall_median", f"live_{figure}_fps")


FIGURES: dict[str, tuple[str, ...]] = {
    "mobilenet_v2_quant_tflite": _classifier("mobilenet_v2_quant_tflite", "tflite", "onnx"),
    "mobilenetv2_int8_onnx": _classifier("mobilenetv2_int8_onnx", "onnx") + (
        "onnx_classifier_load_rss_mb", "batch_classify_photos_per_s", "batch_classify_ms"),
    **{name: _classifier(name, "keras", "onnx") for name in (
        "mobilenet_v2", "vgg16", "resnet50", "densenet121", "efficientnet_b0", "inception_v3", "nasnet_mobile",
        "xception")},
    "mobilenet_v2_notop": (
        "keras_mobilenet_v2_notop_b1_ms", "keras_mobilenet_v2_notop_b16_images_per_s",
        "onnx_mobilenet_v2_notop_b1_ms", "onnx_mobilenet_v2_notop_b16_images_per_s",
        "keras_vs_onnx_mobilenet_v2_max_abs_diff", "features_16_photos_ms", "fast_transfer_100_images_s",
        "fast_transfer_cached_s", "flowers_demo_accuracy", "flowers_demo_accuracy_last_layer",
        "load_mobilenet_v2_notop_cold_ms"),
    "mobilenet_v1_025_notop": ("load_mobilenet_v1_025_notop_cold_ms",),
    "viola_jones": _face_detector("haar") + _face_detector("haar_thorough")[:5] + (
        "haar_grid_settings_meeting_targets", "load_viola_jones_cold_ms"),
    "dlib_hog": _face_detector("hog") + ("load_dlib_hog_cold_ms",),
    "mtcnn": _face_detector("mtcnn") + ("load_mtcnn_cold_ms",),
    "yunet": _face_detector("yunet") + ("batch_faces_photos_per_s", "load_yunet_cold_ms"),
    "dlib_resnet_face": (
        "face_embedding_ms_dlib", "recognise_group_photo_ms", "lfw_fold1_pair_accuracy_dlib", "lfw_fold1_auc_dlib",
        "lfw_people5_accuracy_embeddings", "live_recognition_5_faces_fps", "load_dlib_resnet_face_cold_ms"),
    "nanodet_m": ("nanodet_ms", "nanodet_session_ms", "nanodet_peak_rss_mb", "live_nanodet_fps",
                  "batch_objects_photos_per_s", "load_nanodet_m_cold_ms"),
    "yolov8n_seg": ("yolov8n_seg_ms", "yolov8n_seg_session_ms", "yolov8n_seg_peak_rss_mb", "live_yolov8n_seg_fps",
                    "load_yolov8n_seg_cold_ms"),
    "fashion_mnist": ("fashion_mnist_test_accuracy", "fashion_mnist_test_accuracy_improved",
                      "fashion_mnist_test_accuracy_plain_keras", "cnn_epoch_seconds", "cnn_train_images_per_s"),
    "mnist_t10k": ("mnist_t10k_test_accuracy", "mnist_t10k_test_accuracy_improved",
                   "mnist_t10k_test_accuracy_epoch_seconds"),
    "photos": ("intake_12mp_jpeg_ms",),
    "lfw": ("lfw_fold1_pair_accuracy_dlib", "lfw_fold1_auc_dlib", "lfw_people5_accuracy_embeddings",
            "lfw_people5_accuracy_scratch_cnn"),
    "demo_classes": ("flowers_demo_accuracy", "flowers_demo_accuracy_last_layer"),
}
"""Card name -> the figures the benchmarks measure on it (in the order a card shows them)."""

RATIOS: dict[str, str] = {
    "nanodet_ms": "nanodet_m_adapter_vs_raw",
    "yolov8n_seg_ms": "yolov8n_seg_adapter_vs_raw",
    "face_embedding_ms_dlib": "face_embedding_dlib_vs_raw",
    **{f"live_{f}_fps": f"live_{f}_vs_raw" for f in ("yunet", "hog", "mtcnn", "nanodet", "yolov8n_seg",
                                                     "recognition_5_faces")},
}
"""Figures whose ``_vs_raw`` ratio has another stem (kept names of earlier runs, rates of a timed call);
any other ``NAME_ms`` / ``NAME_s`` goes with ``NAME_vs_raw``."""


def ratio_name(name: str) -> str | None:
    """The ``_vs_raw`` figure that belongs beside ``name``, or None (not a time, or a bare call's own)."""
    if name in RATIOS:
        return RATIOS[name]
    if name.endswith("_raw_ms") or name.endswith("_vs_raw"):
        return None
    for suffix in ("_ms", "_s"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + "_vs_raw"
    return None


def latest(path: Path | None = None) -> dict[str, Figure]:
    """Every figure name's latest full (non-quick) value, with its ``_vs_raw`` ratio; {} without results."""
    try:
        rows = json.loads(Path(path or RESULTS).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    chosen: dict[str, dict] = {}
    for row in rows:
        if not row.get("quick") and row["time"] >= chosen.get(row["name"], {}).get("time", ""):
            chosen[row["name"]] = row
    figures = {name: Figure(name, float(r["value"]), r["unit"], r["bench"], r["time"], r.get("machine", ""))
               for name, r in chosen.items()}
    return {name: _with_ratio(f, figures) for name, f in figures.items()}


def _with_ratio(figure: Figure, figures: dict[str, Figure]) -> Figure:
    ratio = figures.get(ratio_name(figure.name) or "")
    if ratio is None:
        return figure
    return Figure(**{**figure.__dict__, "vs_raw": ratio.value})


def for_card(name: str, figures: dict[str, Figure] | None = None) -> list[Figure]:
    """The figures measured here on card ``name``, in the table's order (those never measured left out)."""
    figures = latest() if figures is None else figures
    return [figures[f] for f in FIGURES.get(name, ()) if f in figures]


def by_bench(figures: Iterable[Figure]) -> dict[str, list[Figure]]:
    """Figures grouped by the bench that measured them, benches and figures sorted by name."""
    groups: dict[str, list[Figure]] = {}
    for figure in sorted(figures, key=lambda f: (f.bench, f.name)):
        groups.setdefault(figure.bench, []).append(figure)
    return groups


def shown(figure: Figure, ratio: bool = True) -> str:
    """A figure as people read it: ``6.39 ms (1.21x raw)``, ``94.1%`` for a fraction."""
    if figure.unit == "fraction":
        text = f"{figure.value:.1%}"
    else:
        text = f"{figure.value:,.4g} {figure.unit}"
    return text + (f" ({figure.vs_raw:.2f}x raw)" if ratio and figure.vs_raw is not None else "")


def headline(name: str, figures: dict[str, Figure] | None = None) -> str:
    """A card's first figure measured here, named (``yunet_640x480_ms: 6.39 ms``); empty when none."""
    found = for_card(name, figures)
    return f"{found[0].name}: {shown(found[0])}" if found else ""
