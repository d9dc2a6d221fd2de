"""Object detection: R-CNN's building blocks to play with, and COCO detectors with instance masks."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import (current_photo, guarded_fragment, keep, licence_note, param_widgets, photo_cache, ready_model,
                           start_page, tabbed, timing)
from vision_backend import drawing, models
from vision_backend.detections import Detections
from vision_backend.intake import encode_png
from vision_backend.model import Detector
from vision_backend.object_detection import DETECTORS, coco, rcnn

PREFIX = "od"


def default_detector() -> str:
    return models.default("objects").name


def mask_model() -> Detector | None:
    """The first ready detector with instance masks (what the R-CNN tab shows Mask R-CNN's step with)."""
    return next((d for d in DETECTORS.values() if d.has_masks and d.ready()), None)


@photo_cache(max_entries=16, show_spinner="Detecting…")
def run_detector(image: np.ndarray, name: str, settings: dict) -> Detections:
    return DETECTORS[name].detect(image, **settings)


@photo_cache(max_entries=8, show_spinner="Selective search: grouping superpixels…")
def run_selective_search(image: np.ndarray, mode: str, max_side: int) -> Detections:
    return rcnn.selective_search(image, mode, max_side)


def big_enough(photo: np.ndarray) -> bool:
    """False, with a message, on a photo too small to draw and move boxes on."""
    height, width = photo.shape[:2]
    if min(height, width) >= rcnn.MIN_PHOTO_SIDE:
        return True
    st.info(f"This photo is {width}x{height} px: too small to show this on (it needs {rcnn.MIN_PHOTO_SIDE} px a "
            "side or more). Pick a sample or a larger photo in the sidebar.", icon=":material/photo_size_select_small:")
    return False


def bounded(key: str, default: int, low: int, high: int) -> str:
    """``keep(key, default)`` with the kept value moved into the slider's range (the photo may be smaller now)."""
    keep(key, default)
    st.session_state[key] = min(max(int(st.session_state[key]), low), high)
    return key


# ---- Detect objects -----------------------------------------------------------------------------
def detector_label(name: str) -> str:
    card = DETECTORS[name].card
    missing = " — fetched on first use" if card.downloadable() else " — not on this machine"
    return DETECTORS[name].title + ("" if card.ready() else missing)


def models_help() -> str:
    """Which model is the default, which give masks, which are fetched on first use: from the models themselves."""
    masks = [d.title for d in DETECTORS.values() if d.has_masks]
    fetched = [f"{d.title} ({d.card.download_size() / 1e6:.0f} MB)" for d in DETECTORS.values()
               if not d.ready() and d.card.downloadable()]
    return " ".join([f"{DETECTORS[default_detector()].title} is the default.",
                     f"With instance masks: {', '.join(masks)}." if masks else "",
                     f"Fetched the first time you pick it: {', '.join(fetched)}." if fetched else ""])


def choose_detector() -> Detector | None:
    """The model radio, its card and licence; the chosen model once its files are here (fetched on first use)."""
    name = st.radio("Model", list(DETECTORS), format_func=detector_label, horizontal=True,
                    key=keep("od_model", default_detector()), help=models_help())
    card = DETECTORS[name].card
    licence_note(card, f" · input {card.input} · {card.accuracy}")
    return ready_model(name)


def annotate(photo: np.ndarray, shown: Detections, has_masks: bool) -> np.ndarray:
    t1, t2, t3, t4 = st.columns(4)
    show_boxes = t1.toggle("Boxes", key=keep("od_show_boxes", True))
    show_labels = t2.toggle("Labels", key=keep("od_show_labels", True))
    show_masks = t3.toggle("Masks", key=keep("od_show_masks", True), disabled=not has_masks)
    opacity = t4.slider("Mask opacity", 0.0, 1.0, step=0.05, key=keep("od_opacity", 0.5), disabled=not has_masks)
    annotated = drawing.draw_masks(photo, shown, opacity) if (show_masks and has_masks) else photo
    if show_boxes:
        annotated = drawing.draw_detections(annotated, shown, show_scores=show_labels, show_labels=show_labels,
                                            legend=True)
    return annotated


def found_table(shown: Detections) -> None:
    if not len(shown):
        st.info("Nothing found at this threshold: lower the score threshold or try another photo "
                "(the *Dog, bicycle and truck* sample has three classes).", icon=":material/search_off:")
        return
    counts = pd.Series(shown.names).value_counts().rename_axis("class").reset_index(name="count")
    chart = px.bar(counts, x="count", y="class", orientation="h", title="Objects per class",
                   height=160 + 28 * len(counts))
    chart.update_yaxes(type="category", title=None).update_xaxes(dtick=1)
    st.plotly_chart(chart, width="stretch")
    table = pd.DataFrame(shown.to_records()).rename(columns={"label": "class", "box_xyxy": "box (x1, y1, x2, y2)"})
    st.dataframe(table, hide_index=True, width="stretch")


def keep_people(stem: str, photo: np.ndarray, found: Detections, has_masks: bool) -> None:
    st.subheader("Keep only people")
    st.caption("Background removal from instance masks, as video calls do: every pixel outside a person goes.")
    if not has_masks:
        masks = " or ".join(d.title for d in DETECTORS.values() if d.has_masks) or "a model with masks"
        st.info(f"This model gives boxes only. Pick {masks} above for masks.", icon=":material/info:")
        return
    k1, k2 = st.columns([1, 3])
    background = k1.radio("Background", ["white", "blur", "black"], key=keep("od_background", "white"))
    if k1.button("Keep only people", type="primary", key="od_keep"):
        st.session_state.od_kept = True
    if not st.session_state.get("od_kept"):
        return
    people = found[np.asarray(found.names) == "person"] if len(found) else found
    if not len(people):
        k2.info("No person found in this photo.", icon=":material/person_off:")
        return
    kept = drawing.keep_only(photo, people, "person", background=(0, 0, 0) if background == "black"
                             else (255, 255, 255), blur=41 if background == "blur" else 0)
    k2.image(kept, width="stretch")
    k2.caption(f"Kept {len(people)} person mask(s): {int(np.any(people.masks, 0).mean() * 100)}% of the photo")
    k2.download_button("Download (PNG)", lambda: encode_png(kept), f"{stem}_people_only.png", "image/png",
                       on_click="ignore")  # the PNG is made on the click, not on every run


@guarded_fragment
def detect_tab(name: str, photo: np.ndarray) -> None:
    detector = choose_detector()
    if detector is None:
        return
    with st.container(horizontal=True):
        settings = param_widgets(detector, PREFIX)
    found = run_detector(photo, detector.name, settings)
    present = sorted(set(found.names))
    wanted = st.multiselect("Classes to show", present, key=keep(f"od_classes:{name}:{'|'.join(present)}", present),
                            help="Only classes found at this threshold are listed.")
    shown = found[np.isin(found.names, wanted)] if len(found) else found
    annotated = annotate(photo, shown, detector.has_masks)
    left, right = st.columns([3, 2])
    left.image(annotated, width="stretch")
    size = f" (input {found.meta['input']})" if "input" in found.meta else ""
    left.caption(f"{detector.title}: {len(shown)} object(s) shown of {len(found)} found {timing(found.meta)}"
                 f"{size}. Box label: the class and the model's confidence, 0 to 1, that the box holds it; boxes "
                 "under the score threshold are not shown.")
    with right:
        found_table(shown)
    stem = name.rsplit(".", 1)[0]
    b1, b2 = st.columns(2)
    # the files are made on the click, not on every run (a PNG of the photo costs 50-300 ms, the masks' RLE more)
    b1.download_button("Annotated image (PNG)", lambda: encode_png(annotated), f"{stem}_{detector.name}.png",
                       "image/png", on_click="ignore")
    b2.download_button("Detections (COCO JSON)", lambda: json.dumps(coco.to_coco(shown, name), indent=1),
                       f"{stem}_{detector.name}_coco.json", "application/json", on_click="ignore",
                       help="bbox as [x, y, width, height]; masks as COCO run-length encoding.")
    keep_people(stem, photo, found, detector.has_masks)


# ---- Selective search and IoU -------------------------------------------------------------------
@guarded_fragment
def selective_search_tab(photo: np.ndarray) -> None:
    st.markdown("R-CNN's first step: **selective search** groups similar superpixels again and again; every group "
                "seen on the way is a *region proposal* (about 2,000 per photo). A CNN then looks at each one.")
    if not big_enough(photo):
        return
    c1, c2, c3 = st.columns(3)
    mode = c1.radio("Mode", ["fast", "quality"], horizontal=True, key=keep("ss_mode", "fast"),
                    help="Quality tries more colour spaces and similarity measures: more proposals, several times slower.")
    max_side = c2.select_slider("Search at long side (px)", [240, 320, 480, 640], key=keep("ss_side", 480))
    top = c3.slider("Proposals to draw", 1, 500, key=keep("ss_top", 50))
    proposals = run_selective_search(photo, mode, max_side)
    scale = proposals.meta["scale"]
    st.image(drawing.draw_boxes(photo, proposals.boxes[:top], drawing.PALETTE[2], 1), width="stretch")
    st.caption(f"Top {min(top, len(proposals))} of {len(proposals)} proposals · {proposals.meta['ms'] / 1000:.2f} s "
               f"({mode} mode) on a copy scaled by {scale:.2f} "
               f"({round(photo.shape[1] * scale)}x{round(photo.shape[0] * scale)})")


def box_sliders(column, key: str, start: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    x = column.slider("x", 0, width - 1, key=bounded(f"{key}_x", int(start[0] * width), 0, width - 1))
    y = column.slider("y", 0, height - 1, key=bounded(f"{key}_y", int(start[1] * height), 0, height - 1))
    w = column.slider("width", 1, width, key=bounded(f"{key}_w", int(start[2] * width), 1, width))
    h = column.slider("height", 1, height, key=bounded(f"{key}_h", int(start[3] * height), 1, height))
    return np.array([x, y, min(width, x + w), min(height, y + h)], np.float64)


@guarded_fragment
def iou_tab(photo: np.ndarray) -> None:
    st.markdown("**Intersection over union** = area of overlap ÷ area of union. 1 is the same box, 0 no overlap; "
                "detection benchmarks count a box as found when IoU ≥ 0.5.")
    if not big_enough(photo):
        return
    height, width = photo.shape[:2]
    c1, c2, c3 = st.columns([1, 1, 2])
    c1.markdown(":blue[**Box A**]")
    a = box_sliders(c1, "iou_a", (0.15, 0.2, 0.45, 0.45), width, height)
    c2.markdown(":red[**Box B**]")
    b = box_sliders(c2, "iou_b", (0.4, 0.35, 0.45, 0.45), width, height)
    overlap, area_a, area_b, value = rcnn.iou_parts(a, b)
    c3.image(drawing.draw_iou(photo, a, b), width="stretch")
    c3.metric("IoU", f"{value:.3f}", help="yellow = intersection")
    c3.caption(f"intersection {overlap:,.0f} px² ÷ union ({area_a:,.0f} + {area_b:,.0f} − {overlap:,.0f}) "
               f"= {value:.3f} → {'a match' if value >= 0.5 else 'not a match'} at 0.5")


# ---- Non-max suppression ------------------------------------------------------------------------
def steps_table(raw: Detections, steps: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"step": i + 1, "keep box": s["keep"], "class": raw.class_names[raw.labels[s["keep"]]],
                          "score": round(s["score"], 3), "suppresses": ", ".join(map(str, s["suppressed"])) or "—"}
                         for i, s in enumerate(steps)])


@guarded_fragment
def nms_tab(photo: np.ndarray) -> None:
    st.markdown("A detector fires many overlapping boxes around each object. **Greedy non-maximum suppression** keeps "
                "the best-scoring box, drops every box overlapping it by more than the IoU threshold, and repeats.")
    c1, c2 = st.columns(2)
    nms_iou = c1.slider("IoU threshold", 0.05, 0.95, step=0.05, key=keep("nms_iou", 0.5))
    nms_score = c2.slider("Score threshold", 0.05, 0.9, step=0.05, key=keep("nms_score", 0.3))
    detector = ready_model(default_detector())
    if detector is None:
        return
    raw = run_detector(photo, detector.name, dict(score_threshold=nms_score, iou_threshold=1.0))
    raw = raw[np.arange(min(40, len(raw)))]
    if not len(raw):
        st.info(f"{detector.title} has no raw box at this score threshold; lower it.", icon=":material/search_off:")
        return
    steps = rcnn.nms_steps(raw.boxes, raw.scores, nms_iou, raw.labels)
    kept = raw[[s["keep"] for s in steps]]
    left, right = st.columns(2)
    left.image(drawing.draw_detections(photo, raw, show_scores=False), width="stretch")
    left.caption(f"Before: {detector.title}'s {len(raw)} raw boxes (best 40) above score {nms_score}")
    right.image(drawing.draw_detections(photo, kept, show_labels=True, legend=True), width="stretch")
    right.caption(f"After NMS at IoU {nms_iou}: {len(kept)} box(es)")
    st.dataframe(steps_table(raw, steps), hide_index=True, width="stretch")
    st.caption("Box numbers are ranks by score (0 = best). Boxes of different classes never suppress each other.")


# ---- R-CNN → Mask R-CNN -------------------------------------------------------------------------
def roi_pooling(photo: np.ndarray, proposals: Detections) -> None:
    st.markdown("**2 · Fast R-CNN (2015):** one CNN run on the whole photo, then **ROI pooling** cuts each "
                "proposal's part of the feature map into a fixed 7x7 grid (max of each cell).")
    box = proposals.boxes[rcnn.medium_proposal(proposals.boxes, photo.shape[:2])]
    pooled = rcnn.roi_pool(photo, box)
    x1, y1, x2, y2 = box.astype(int)
    p1, p2 = st.columns(2)
    p1.image(photo[y1:y2, x1:x2], width="stretch")
    p1.caption(f"A proposal, {x2 - x1}x{y2 - y1} px")
    p2.image(np.kron(pooled, np.ones((24, 24, 1), np.uint8)), width="stretch")
    p2.caption("→ 7x7 after ROI max pooling (on the photo's colours here; on CNN features in the paper)")


@guarded_fragment
def anchors(photo: np.ndarray) -> None:
    st.markdown("**3 · Faster R-CNN (2015):** a **Region Proposal Network** replaces selective search; at every "
                "feature-map position it scores 9 anchor boxes (3 scales x 3 ratios) and refines them.")
    height, width = photo.shape[:2]
    ax = st.slider("Anchor position x", 0, width - 1, key=bounded("anchor_x", width // 2, 0, width - 1))
    ay = st.slider("Anchor position y", 0, height - 1, key=bounded("anchor_y", height // 2, 0, height - 1))
    scales = rcnn.anchor_scales(width, height)
    boxes = rcnn.anchor_boxes(ax, ay, scales=scales)
    picture = photo
    for i in range(len(scales)):
        picture = drawing.draw_boxes(picture, boxes[3 * i : 3 * i + 3], drawing.PALETTE[i])
    st.image(picture, width="stretch")
    st.caption(f"9 anchors: scales {', '.join(map(str, scales))} px (colour) x ratios 1:2, 1:1, 2:1")


@guarded_fragment
def instance_masks(photo: np.ndarray) -> None:
    st.markdown("**4 · Mask R-CNN (2017):** adds a small head that predicts a 28x28 mask inside every box, "
                "pasted back at the box's size: instance segmentation.")
    model = mask_model()
    if model is None or not st.toggle(f"Show instance masks ({model.title}, licence {model.card.licence})",
                                      key=keep("rcnn_masks", False)):
        return
    masked = run_detector(photo, model.name, model.defaults())
    if not len(masked):
        st.info("No object found for masks in this photo.")
        return
    st.image(drawing.draw_detections(drawing.draw_masks(photo, masked), masked, show_labels=True, legend=True),
             width="stretch")
    st.caption(f"{len(masked)} instance mask(s)")


def rcnn_tab(photo: np.ndarray) -> None:
    st.markdown("How the R-CNN family grew, each step shown on your photo.")
    if not big_enough(photo):
        return
    proposals = run_selective_search(photo, "fast", 320)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**1 · R-CNN (2014):** region proposals, each warped and fed to a CNN — 2,000 CNN runs a photo.")
        st.image(drawing.draw_boxes(photo, proposals.boxes[:30], drawing.PALETTE[2], 1), width="stretch")
        st.caption("30 selective-search proposals")
    with c2:
        roi_pooling(photo, proposals)
    c3, c4 = st.columns(2)
    with c3:
        anchors(photo)
    with c4:
        instance_masks(photo)


start_page("Object detection", "From region proposals to instance masks: selective search, IoU and non-maximum "
           "suppression as the R-CNN papers use them, then real COCO detectors (80 classes) on ONNX Runtime.")
photo_name, photo = current_photo()
tabbed({"Detect objects": lambda: detect_tab(photo_name, photo), "Selective search": lambda: selective_search_tab(photo),
        "IoU": lambda: iou_tab(photo), "Non-max suppression": lambda: nms_tab(photo),
        "R-CNN → Mask R-CNN": lambda: rcnn_tab(photo)})
