"""The Your own objects page's trained detectors at work: R-CNN step by step on one of your photos, the detector
measured on the photos held out (AP per class, the precision-recall curve, misses and false alarms drawn, the registry's
COCO detector beside it on COCO's classes), and the detector on the current photo, with its boxes to download.

Not a page itself (the underscore): imported by ``pages/own_objects.py``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages._own_label import photo_pixels
from pages._shared import keep, kept_choice, literal, photo_cache, photo_key, ready_model, settings_widgets, timing
from vision_backend import drawing, models
from vision_backend.detections import Detections
from vision_backend.own_detection import rcnn, workflow
from vision_backend.own_detection.projects import DetectionProject

SHOWN_PHOTOS = 12
"""Photos with mistakes drawn on the Evaluate tab (the worst first)."""
MOVES_SHOWN = 8
"""Regions whose box regression is drawn on the R-CNN tab (the surest)."""


def pick_detector(project: DetectionProject, key: str, kind: str | None = None) -> Any:
    """A picker of the project's trained detectors (newest first); the one picked as a model object, or None."""
    saved = [m for m in sorted(project.detectors().values(), key=lambda m: -m.saved)
             if kind is None or m.meta.get("kind") == kind]
    if not saved:
        what = "an R-CNN detector" if kind == "rcnn" else "a detector"
        st.info(f"Train {what} first (the Train tab); it is kept with the project.", icon=":material/model_training:")
        return None
    stems = [m.stem for m in saved]
    meta = {m.stem: m.meta for m in saved}
    stem = st.selectbox("Detector", stems, key=kept_choice(key, stems), format_func=lambda s: (
        f"{s} · {meta[s].get('kind')} · " + (f"AP50 {meta[s]['ap50']:.2f}" if meta[s].get("ap50") is not None
                                             else "not measured")))
    return project.detector(stem)


# ---- R-CNN step by step ----------------------------------------------------------------------------------
@photo_cache(max_entries=8, show_spinner="Selective search: region proposals…")
def run_proposals(image: np.ndarray, count: int, side: int) -> Detections:
    return rcnn.proposals(image, count, side)


@st.cache_data(max_entries=8, show_spinner="Every proposal through the head…")
def _steps(photo: str, _image: np.ndarray, _detector: Any, name: str, settings: dict) -> rcnn.RcnnSteps:
    return _detector.steps(_image, **settings)


def run_steps(image: np.ndarray, detector: Any, settings: dict) -> rcnn.RcnnSteps:
    """R-CNN's stages on the photo, kept by the photo's content, the detector (its name) and the settings."""
    return _steps(photo_key(image), image, detector, detector.name, settings)


def rcnn_tab(project: DetectionProject) -> None:
    photos = [p for p in project.photos() if p.boxes]
    if not photos:
        st.info("Draw boxes on a photo first (the Label tab): R-CNN's steps are shown against them.",
                icon=":material/crop_free:")
        return
    by_id = {p.id: p for p in photos}
    chosen = by_id[st.selectbox("Photo", list(by_id), key=kept_choice("own_steps_photo", list(by_id)),
                                format_func=lambda i: f"{by_id[i].name} · {by_id[i].boxes} box(es)")]
    image = photo_pixels(chosen.digest, project, chosen.id)
    truth = project.labelled([chosen])[0]
    detector = pick_detector(project, "own_steps_detector", "rcnn")
    trained = detector.meta.get("settings", {}) if detector is not None else {}
    count, side = int(trained.get("proposals", 1000)), int(trained.get("search_side", 320))
    found = run_proposals(image, count, side)
    proposals_and_roles(image, found, truth, detector.class_names if detector else tuple(project.classes()),
                        float(trained.get("positive_iou", 0.5)))
    if detector is not None:
        head_steps(image, detector, count)


def proposals_and_roles(image: np.ndarray, found: Detections, truth: Any, classes: tuple, positive_iou: float) -> None:
    """Steps 1 and 2: selective search's boxes, then each labelled by its overlap with your boxes."""
    labelled = rcnn.label_regions(found, truth, classes, positive_iou)
    roles = np.asarray(labelled.data["role"], dtype=object)
    s1, s2 = st.columns(2)
    s1.markdown("**1 · Region proposals.** Selective search groups the photo's pixels into regions; every region "
                "seen on the way is a box that may hold *something*. It knows nothing of your classes.")
    s1.image(drawing.draw_boxes(image, found.boxes, drawing.PALETTE[8], 1), width="stretch")
    s1.caption(f"{len(found)} proposals")
    s2.markdown(f"**2 · Positives and negatives.** A proposal overlapping one of your boxes by IoU ≥ {positive_iou:.2f} "
                "learns that box's class (green) and how to move onto it; one overlapping by 0.1 to that learns "
                "*background* from a near miss (red); the rest are background too (grey).")
    s2.image(drawing.draw_labelled(drawing.draw_regions(image, found.boxes, roles), truth.boxes, truth.labels,
                                   list(classes)), width="stretch")
    s2.caption(f"{int((roles == 'positive').sum())} positives, {int((roles == 'negative').sum())} near misses, "
               f"{int((roles == 'easy negative').sum())} easy negatives; your boxes with their class")


def head_steps(image: np.ndarray, detector: Any, count: int) -> None:
    """Steps 3 to 5 with the trained head: scores per region, the regression moving boxes, then NMS."""
    settings = settings_widgets(detector.params, lambda p: f"own_steps:{p.name}", columns=3)
    steps = run_steps(image, detector, settings)
    meta = detector.meta
    st.markdown(f"**3 · Features per region.** The photo goes through the frozen {literal(str(meta.get('base')))} "
                f"once; each proposal is cut out of its {meta.get('taps', ['?'])[0]} feature map by ROI-align into a "
                f"{meta.get('pool')}x{meta.get('pool')} grid (Fast R-CNN's one pass, not R-CNN's one a proposal).")
    over = steps.scored.scores >= settings["score_threshold"]
    surest = np.argsort(-steps.scored.scores, kind="stable")[:MOVES_SHOWN]
    m1, m2 = st.columns(2)
    m1.markdown("**4 · Class scores and box regression.** A softmax over your classes and background for every "
                "region, and per class four numbers that move the proposal onto the object: grey where it started, "
                "blue where the regression put it.")
    m1.image(drawing.draw_moves(image, steps.regressed.data["proposal"][surest], steps.regressed.boxes[surest]),
             width="stretch")
    m1.caption(f"The {len(surest)} surest of {len(steps.scored)} regions; {int(over.sum())} score ≥ "
               f"{settings['score_threshold']:.2f}")
    m2.markdown("**5 · Non-maximum suppression.** Of boxes of one class overlapping by more than the NMS IoU, only "
                "the surest stays.")
    m2.image(drawing.draw_detections(image, steps.detections, show_labels=True, legend=True), width="stretch")
    m2.caption(f"{int(over.sum())} boxes over the threshold → {len(steps.detections)} after NMS")


# ---- Evaluate --------------------------------------------------------------------------------------------
def evaluate_tab(project: DetectionProject) -> None:
    detector = pick_detector(project, "own_eval_detector")
    if detector is None:
        return
    saved = project.models.get(detector.name.rpartition("/")[2])
    photos = workflow.held_out_photos(project, saved)
    threshold = st.slider("Score threshold for the misses and false alarms drawn", 0.05, 0.95, step=0.05,
                          key=keep("own_eval_threshold", float(detector.defaults()["score_threshold"])))
    which = ("held out of training" if saved.meta.get("held_out") else
             "with boxes (none was held out: these taught it, so the figures flatter it)")
    st.caption(f"On the {len(photos)} photos {which}. AP counts every detection scoring 0.05 or more, ranked, as "
               "COCO does.")
    measured = measure_cached(project, detector, [p.digest for p in photos], threshold)
    beside = coco_beside(project, measured, threshold)
    ap_table(measured.evaluation, beside)
    pr_curves(measured.evaluation, beside)
    mistakes(measured)


def measure_cached(project: DetectionProject, detector: Any, digests: list[str], threshold: float) -> Any:
    """The measurement, kept for this detector, these photos and this threshold (a rerun redraws, never reruns)."""
    key = (detector.name, tuple(digests), threshold)
    found = st.session_state.get("_own_measured")
    if found is None or found[0] != key:
        photos = [p for p in project.photos() if p.digest in set(digests)]
        bar = st.progress(0.0, "Running the detector on each photo…")
        measured = workflow.measure(detector, project.labelled(photos), detector.class_names, threshold,
                                    progress=lambda done, total: bar.progress(done / total, f"Photo {done} of {total}"))
        bar.empty()
        found = st.session_state._own_measured = (key, measured)
    return found[1]


def coco_beside(project: DetectionProject, measured: Any, threshold: float) -> Any:
    """The registry's default object detector (trained on COCO) on the same photos where a class is also one of
    COCO's: ``(its title, its measurement)``, or None (no such class, or its files are not here)."""
    names = workflow.coco_names([c.name for c in measured.evaluation.classes])
    if not names:
        st.caption("None of your classes is one of COCO's 80, so no pretrained detector can be compared here.")
        return None
    pretrained = ready_model(models.default("objects").name)
    if pretrained is None:
        return None
    key = (pretrained.name, tuple(p.name for p in measured.photos), threshold)
    found = st.session_state.get("_own_coco_beside")
    if found is None or found[0] != key:
        with st.spinner(f"{pretrained.title} on the same photos…"):
            found = st.session_state._own_coco_beside = (key, workflow.pretrained_beside(
                measured.photos, list(names), pretrained, threshold))
    st.caption(f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} also COCO "
               f"class{'' if len(names) == 1 else 'es'}: {pretrained.title}, trained on COCO's photos, beside yours.")
    return pretrained.title, found[1]


def ap_table(evaluation: Any, beside: Any) -> None:
    """The means and the per-class table, with the pretrained detector's AP50 beside where it ran."""
    a1, a2, a3 = st.columns(3)
    a1.metric("AP50 (mean over classes)", _shown(evaluation.map50), help="Average precision at IoU 0.5 (VOC's).")
    a2.metric("AP 0.5:0.95", _shown(evaluation.map), help="COCO's: the mean over IoU 0.50, 0.55 ... 0.95.")
    a3.metric("Precision / recall at the threshold", f"{evaluation.precision:.2f} / {evaluation.recall:.2f}")
    table = pd.DataFrame(evaluation.table())
    if beside is not None:
        title, theirs = beside[0], {c.name: c.ap50 for c in beside[1].evaluation.classes}
        table[f"{title} AP50"] = [theirs.get(name) for name in table["class"]]
    st.dataframe(table.round(3), hide_index=True, width="stretch")


def _shown(value: float) -> str:
    return "—" if value is None or not np.isfinite(value) else f"{value:.3f}"


def pr_curves(evaluation: Any, beside: Any) -> None:
    """Each class's precision-recall curve at IoU 0.5 (the area under the envelope is its AP50)."""
    chart = go.Figure()
    theirs = [(beside[0], c) for c in beside[1].evaluation.classes if c.boxes] if beside else []
    for source, result in [("yours", c) for c in evaluation.classes if c.boxes] + theirs:
        chart.add_scatter(x=result.curve.recall, y=result.curve.precision, mode="lines", line_shape="hv",
                          name=f"{result.name} ({source}) · AP50 {result.ap50:.2f}")
    chart.update_layout(title="Precision-recall at IoU 0.5", xaxis_title="recall", yaxis_title="precision",
                        xaxis_range=[0, 1.02], yaxis_range=[0, 1.05], height=380)
    st.plotly_chart(chart, width="stretch")


def mistakes(measured: Any) -> None:
    """The photos with the most misses and false alarms, each drawn: green found, red missed, orange false alarms."""
    evaluation = measured.evaluation
    order = sorted(range(len(measured.photos)), key=lambda i: -(len(evaluation.photos[i].misses)
                                                                + len(evaluation.photos[i].false_alarms)))
    wrong = [i for i in order if evaluation.photos[i].misses or evaluation.photos[i].false_alarms][:SHOWN_PHOTOS]
    if not wrong:
        st.success("No miss and no false alarm at this threshold.", icon=":material/check:")
        return
    st.markdown("**Misses and false alarms** (green: found; red: missed; orange: a false alarm, and what it is)")
    columns = st.columns(3)
    for k, i in enumerate(wrong):
        errors, found = evaluation.photos[i], measured.found[i]
        kept = found[found.scores >= evaluation.score_threshold] if len(found) else found
        image = drawing.draw_mistakes(workflow_image(measured.photos[i]), kept, list(errors.misses),
                                      list(errors.false_alarms))
        columns[k % 3].image(image, width="stretch")
        columns[k % 3].caption(f"{literal(errors.name)}: {errors.hits} found, {len(errors.misses)} missed, "
                               f"{len(errors.false_alarms)} false alarm(s)")


def workflow_image(photo: Any) -> np.ndarray:
    from vision_backend.own_detection.maps import photo_image

    return photo_image(photo)


# ---- Detect ----------------------------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner="Detecting…")
def _detected(photo: str, _image: np.ndarray, _detector: Any, name: str, settings: dict) -> Detections:
    return _detector.detect(_image, **settings)


def run_detector(image: np.ndarray, detector: Any, settings: dict) -> Detections:
    return _detected(photo_key(image), image, detector, detector.name, settings)


def detect_tab(project: DetectionProject, photo_name: str, photo: np.ndarray) -> None:
    detector = pick_detector(project, "own_detect_detector")
    if detector is None:
        return
    settings = settings_widgets(detector.params, lambda p: f"own_detect:{detector.meta.get('kind')}:{p.name}",
                                columns=3)
    found = run_detector(photo, detector, settings)
    st.image(drawing.draw_detections(photo, found, show_labels=True, legend=True), width="stretch")
    st.caption(f"{literal(detector.name)} on {literal(photo_name)}: {len(found)} object(s) {timing(found.meta)}. "
               "Pick another photo in the sidebar.")
    rows = workflow.rows(found, photo_name)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    stem = photo_name.rsplit(".", 1)[0]
    d1, d2 = st.columns(2)
    d1.download_button("Boxes (CSV)", pd.DataFrame(rows, columns=list(workflow.ROW_COLUMNS)).to_csv(index=False),
                       f"{stem}_boxes.csv", "text/csv", on_click="ignore", key="own_download_csv")
    d2.download_button("Boxes (JSON)", json.dumps({"photo": photo_name, "detector": detector.name,
                                                   "settings": settings, "objects": rows}, indent=1),
                       f"{stem}_boxes.json", "application/json", on_click="ignore", key="own_download_json")
