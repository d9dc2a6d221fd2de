"""Object detection: R-CNN's building blocks to play with, and COCO detectors with instance masks."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from pages._shared import current_photo, friendly_errors, load_model
from vision_backend import drawing, models
from vision_backend import object_detection as od
from vision_backend.boxes import iou
from vision_backend.intake import encode_png

st.title("Object detection")
st.caption("From region proposals to instance masks: selective search, IoU and non-maximum suppression as the "
           "R-CNN papers use them, then real COCO detectors (80 classes) on ONNX Runtime.")

name, photo = current_photo()
stem = name.rsplit(".", 1)[0]


@st.cache_data(max_entries=16, show_spinner="Detecting…")
def run_detector(detector: str, image: np.ndarray, settings: dict) -> od.Detections:
    return od.detect(detector, load_model(od.DETECTORS[detector].model), image, **settings)


@st.cache_data(max_entries=8, show_spinner="Selective search: grouping superpixels…")
def run_selective_search(image: np.ndarray, mode: str, max_side: int) -> od.Detections:
    return od.selective_search(image, mode, max_side)


detect_tab, ss_tab, iou_tab, nms_tab, rcnn_tab = st.tabs(
    ["Detect objects", "Selective search", "IoU", "Non-max suppression", "R-CNN → Mask R-CNN"])

with detect_tab, friendly_errors():
    def detector_label(key: str) -> str:
        card = models.card(od.DETECTORS[key].model)
        return od.DETECTORS[key].title + ("" if card.ready() else " — not on this machine")

    detector = st.radio("Model", list(od.DETECTORS), format_func=detector_label, horizontal=True, key="od_model",
                        help="NanoDet-m is the default. YOLOv8n-seg adds instance masks; its weights are AGPL-3.0.")
    chosen = od.DETECTORS[detector]
    card = models.card(chosen.model)
    st.caption(f"{card.title} · licence **{card.licence}** · input {card.input} · {card.accuracy}")
    if "AGPL" in card.licence:
        st.warning("YOLOv8n-seg's weights are licensed **AGPL-3.0**: fine for learning and demos here; using them "
                   "in a product you offer to others obliges you to publish that product's source.",
                   icon=":material/gavel:")
    d = chosen.defaults
    c1, c2, c3 = st.columns(3)
    settings = dict(score_threshold=c1.slider("Score threshold", 0.05, 0.95, d["score_threshold"], 0.05, key="od_score"),
                    iou_threshold=c2.slider("NMS IoU threshold", 0.1, 1.0, d["iou_threshold"], 0.05, key="od_iou",
                                            help="Boxes of one class overlapping a better one by more than this go."))
    if chosen.has_masks:
        settings["mask_threshold"] = c3.slider("Mask threshold", 0.1, 0.9, d["mask_threshold"], 0.05, key="od_mask")
    found = run_detector(detector, photo, settings)
    present = sorted(set(found.names))
    wanted = st.multiselect("Classes to show", present, default=present, key=f"od_classes:{name}:{'|'.join(present)}",
                            help="Only classes found at this threshold are listed.")
    shown = found[np.isin(found.names, wanted)] if len(found) else found
    t1, t2, t3, t4 = st.columns(4)
    show_boxes = t1.toggle("Boxes", True, key="od_show_boxes")
    show_labels = t2.toggle("Labels", True, key="od_show_labels")
    show_masks = t3.toggle("Masks", True, key="od_show_masks", disabled=not chosen.has_masks)
    opacity = t4.slider("Mask opacity", 0.0, 1.0, 0.5, 0.05, key="od_opacity", disabled=not chosen.has_masks)

    annotated = drawing.draw_masks(photo, shown, opacity) if (show_masks and chosen.has_masks) else photo
    if show_boxes:
        annotated = drawing.draw_detections(annotated, shown, show_scores=show_labels, show_labels=show_labels)
    left, right = st.columns([3, 2])
    left.image(annotated, width="stretch")
    left.caption(f"{chosen.title}: {len(shown)} object(s) shown of {len(found)} found in {found.meta['ms']:.0f} ms "
                 f"(input {found.meta['input']})")
    with right:
        if len(shown):
            counts = pd.Series(shown.names).value_counts().rename_axis("class").reset_index(name="count")
            chart = px.bar(counts, x="count", y="class", orientation="h", title="Objects per class",
                           height=160 + 28 * len(counts))
            chart.update_yaxes(type="category", title=None).update_xaxes(dtick=1)
            st.plotly_chart(chart, width="stretch")
            table = pd.DataFrame(shown.to_records()).rename(columns={"label": "class", "box_xyxy": "box (x1, y1, x2, y2)"})
            st.dataframe(table, hide_index=True, width="stretch")
        else:
            st.info("Nothing found at this threshold: lower the score threshold or try another photo "
                    "(the *Dog, bicycle and truck* sample has three classes).", icon=":material/search_off:")
    b1, b2 = st.columns(2)
    b1.download_button("Annotated image (PNG)", encode_png(annotated), f"{stem}_{detector}.png", "image/png")
    b2.download_button("Detections (COCO JSON)", json.dumps(od.to_coco(shown, name), indent=1),
                       f"{stem}_{detector}_coco.json", "application/json",
                       help="bbox as [x, y, width, height]; masks as COCO run-length encoding.")

    st.subheader("Keep only people")
    st.caption("Background removal from instance masks, as video calls do: every pixel outside a person goes.")
    if not chosen.has_masks:
        st.info("This model gives boxes only. Pick **YOLOv8n-seg** above for masks.", icon=":material/info:")
    else:
        k1, k2 = st.columns([1, 3])
        background = k1.radio("Background", ["white", "blur", "black"], key="od_background")
        if k1.button("Keep only people", type="primary", key="od_keep"):
            st.session_state.od_kept = True
        if st.session_state.get("od_kept"):
            people = found[np.asarray(found.names) == "person"] if len(found) else found
            if not len(people):
                k2.info("No person found in this photo.", icon=":material/person_off:")
            else:
                kept = od.keep_only(photo, people, "person", background=(0, 0, 0) if background == "black"
                                    else (255, 255, 255), blur=41 if background == "blur" else 0)
                k2.image(kept, width="stretch")
                k2.caption(f"Kept {len(people)} person mask(s): {int(np.any(people.masks, 0).mean() * 100)}% of the "
                           "photo")
                k2.download_button("Download (PNG)", encode_png(kept), f"{stem}_people_only.png", "image/png")

with ss_tab, friendly_errors():
    st.markdown("R-CNN's first step: **selective search** groups similar superpixels again and again; every group "
                "seen on the way is a *region proposal* (about 2,000 per photo). A CNN then looks at each one.")
    c1, c2, c3 = st.columns(3)
    mode = c1.radio("Mode", ["fast", "quality"], horizontal=True, key="ss_mode",
                    help="Quality tries more colour spaces and similarity measures: more proposals, several times slower.")
    max_side = c2.select_slider("Search at long side (px)", [240, 320, 480, 640], 480, key="ss_side")
    top = c3.slider("Proposals to draw", 1, 500, 50, key="ss_top")
    proposals = run_selective_search(photo, mode, max_side)
    st.image(drawing.draw_boxes(photo, proposals.boxes[:top], drawing.PALETTE[2], 1), width="stretch")
    st.caption(f"Top {min(top, len(proposals))} of {len(proposals)} proposals · {proposals.meta['ms'] / 1000:.2f} s "
               f"({mode} mode) on a copy scaled by {proposals.meta['scale']:.2f} "
               f"({round(photo.shape[1] * proposals.meta['scale'])}x{round(photo.shape[0] * proposals.meta['scale'])})")

with iou_tab:
    st.markdown("**Intersection over union** = area of overlap ÷ area of union. 1 is the same box, 0 no overlap; "
                "detection benchmarks count a box as found when IoU ≥ 0.5.")
    height, width = photo.shape[:2]

    def box_sliders(column, key: str, start: tuple[float, float, float, float]) -> np.ndarray:
        x = column.slider("x", 0, width - 1, int(start[0] * width), key=f"{key}_x")
        y = column.slider("y", 0, height - 1, int(start[1] * height), key=f"{key}_y")
        w = column.slider("width", 1, width, int(start[2] * width), key=f"{key}_w")
        h = column.slider("height", 1, height, int(start[3] * height), key=f"{key}_h")
        return np.array([x, y, min(width, x + w), min(height, y + h)], np.float64)

    c1, c2, c3 = st.columns([1, 1, 2])
    c1.markdown(":blue[**Box A**]")
    a = box_sliders(c1, "iou_a", (0.15, 0.2, 0.45, 0.45))
    c2.markdown(":red[**Box B**]")
    b = box_sliders(c2, "iou_b", (0.4, 0.35, 0.45, 0.45))
    overlap = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area_a, area_b = (a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])
    value = float(iou(a, b)[0, 0])
    c3.image(drawing.draw_iou(photo, a, b), width="stretch")
    c3.metric("IoU", f"{value:.3f}", help="yellow = intersection")
    c3.caption(f"intersection {overlap:,.0f} px² ÷ union ({area_a:,.0f} + {area_b:,.0f} − {overlap:,.0f}) "
               f"= {value:.3f} → {'a match' if value >= 0.5 else 'not a match'} at 0.5")

with nms_tab, friendly_errors():
    st.markdown("A detector fires many overlapping boxes around each object. **Greedy non-maximum suppression** keeps "
                "the best-scoring box, drops every box overlapping it by more than the IoU threshold, and repeats.")
    c1, c2 = st.columns(2)
    nms_iou = c1.slider("IoU threshold", 0.05, 0.95, 0.5, 0.05, key="nms_iou")
    nms_score = c2.slider("Score threshold", 0.05, 0.9, 0.3, 0.05, key="nms_score")
    raw = run_detector("nanodet", photo, dict(score_threshold=nms_score, iou_threshold=1.0))
    raw = raw[np.arange(min(40, len(raw)))]
    if not len(raw):
        st.info("NanoDet has no raw box at this score threshold; lower it.", icon=":material/search_off:")
    else:
        steps = od.nms_steps(raw.boxes, raw.scores, nms_iou, raw.labels)
        kept = raw[[s["keep"] for s in steps]]
        left, right = st.columns(2)
        left.image(drawing.draw_detections(photo, raw, show_scores=False), width="stretch")
        left.caption(f"Before: NanoDet-m's {len(raw)} raw boxes (best 40) above score {nms_score}")
        right.image(drawing.draw_detections(photo, kept, show_labels=True), width="stretch")
        right.caption(f"After NMS at IoU {nms_iou}: {len(kept)} box(es)")
        st.dataframe(pd.DataFrame([{"step": i + 1, "keep box": s["keep"], "class": raw.class_names[raw.labels[s["keep"]]],
                                    "score": round(s["score"], 3), "suppresses": ", ".join(map(str, s["suppressed"])) or "—"}
                                   for i, s in enumerate(steps)]), hide_index=True, width="stretch")
        st.caption("Box numbers are ranks by score (0 = best). Boxes of different classes never suppress each other.")

with rcnn_tab, friendly_errors():
    st.markdown("How the R-CNN family grew, each step shown on your photo.")
    height, width = photo.shape[:2]
    proposals = run_selective_search(photo, "fast", 320)
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**1 · R-CNN (2014):** region proposals, each warped and fed to a CNN — 2,000 CNN runs a photo.")
        st.image(drawing.draw_boxes(photo, proposals.boxes[:30], drawing.PALETTE[2], 1), width="stretch")
        st.caption("30 selective-search proposals")
    with c2:
        st.markdown("**2 · Fast R-CNN (2015):** one CNN run on the whole photo, then **ROI pooling** cuts each "
                    "proposal's part of the feature map into a fixed 7x7 grid (max of each cell).")
        sizes = od.area(proposals.boxes)
        pick = int(np.argmax(np.where((sizes > 0.02 * width * height) & (sizes < 0.5 * width * height), sizes, 0)))
        pooled = od.roi_pool(photo, proposals.boxes[pick])
        x1, y1, x2, y2 = proposals.boxes[pick].astype(int)
        p1, p2 = st.columns(2)
        p1.image(photo[y1:y2, x1:x2], width="stretch")
        p1.caption(f"A proposal, {x2 - x1}x{y2 - y1} px")
        p2.image(np.kron(pooled, np.ones((24, 24, 1), np.uint8)), width="stretch")
        p2.caption("→ 7x7 after ROI max pooling (on the photo's colours here; on CNN features in the paper)")
    c3, c4 = st.columns(2)
    with c3:
        st.markdown("**3 · Faster R-CNN (2015):** a **Region Proposal Network** replaces selective search; at every "
                    "feature-map position it scores 9 anchor boxes (3 scales x 3 ratios) and refines them.")
        ax = st.slider("Anchor position x", 0, width - 1, width // 2, key="anchor_x")
        ay = st.slider("Anchor position y", 0, height - 1, height // 2, key="anchor_y")
        base = max(16, min(width, height) // 8)
        anchors = od.anchor_boxes(ax, ay, scales=(base, base * 2, base * 4))
        picture = photo
        for i in range(3):
            picture = drawing.draw_boxes(picture, anchors[3 * i: 3 * i + 3], drawing.PALETTE[i])
        st.image(picture, width="stretch")
        st.caption(f"9 anchors: scales {base}, {base * 2}, {base * 4} px (colour) x ratios 1:2, 1:1, 2:1")
    with c4:
        st.markdown("**4 · Mask R-CNN (2017):** adds a small head that predicts a 28x28 mask inside every box, "
                    "pasted back at the box's size: instance segmentation.")
        masked = run_detector("yolov8n_seg", photo, od.DETECTORS["yolov8n_seg"].defaults) \
            if models.card("yolov8n_seg").ready() and st.toggle("Show instance masks (YOLOv8n-seg, AGPL-3.0)",
                                                               key="rcnn_masks") else None
        if masked is not None and len(masked):
            st.image(drawing.draw_detections(drawing.draw_masks(photo, masked), masked, show_labels=True),
                     width="stretch")
            st.caption(f"{len(masked)} instance mask(s)")
        elif masked is not None:
            st.info("No object found for masks in this photo.")
